// Request, deadline and completion logic shared by every driver.
#pragma once

#include "circuit_breaker.hpp"
#include "destination_guard.hpp"
#include "loop_hooks.hpp"
#include "metrics_registry.hpp"
#include "request_builder.hpp"
#include "trace_context.hpp"

#include <passthru/response_router.hpp>

#include <passthru/client.hpp>

#include <curl/curl.h>
#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace passthru {
inline namespace v0 {
namespace detail {

struct Transfer;
struct Leg;
struct Delivery;

/// What crossed the wire for one request, copied into its Outcome.
struct Wire {
  Timings timings;
  int attempts = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::string remote_address;
  bool connection_reused = false;
  int http_version = 0;  // as Outcome::http_version
};

/// Owns the libcurl multi handle and every request in flight.
///
/// submit() and cancel() may be called from any thread; they queue work and
/// wake the loop. Every other member runs on the loop thread only. Outcome
/// callbacks run on the loop thread, never inside a libcurl callback.
class TransferEngine {
 public:
  /// Throws std::invalid_argument naming the first invalid option.
  explicit TransferEngine(const ClientOptions& options);
  ~TransferEngine();

  TransferEngine(const TransferEngine&) = delete;
  TransferEngine& operator=(const TransferEngine&) = delete;

  /// Called by the driver before the first submit(), and with nullptr once
  /// stopped (after shut_down() and close()).
  void attach(LoopHooks* hooks) noexcept { hooks_ = hooks; }

  /// Any thread. Queues the request; its deadline counts from `started`.
  std::uint64_t submit(StepConfig step, CallContext call, OutcomeCallback on_outcome,
                       Clock::time_point started);

  /// Any thread. The request completes with Route::cancelled unless it has
  /// completed already.
  void cancel(std::uint64_t id) noexcept;

  /// Loop thread: the wake() asked for.
  void on_wake();
  /// Loop thread: `fd` is ready; `events` is a mask of CURL_CSELECT_*.
  void on_socket(int fd, int events);
  /// Loop thread: the armed timer fired.
  void on_timer();
  /// Loop thread: completes every queued and active request with
  /// Route::cancelled (Errc::shut_down) and refuses work from then on.
  void shut_down();
  /// Loop thread, after shut_down(): closes every connection (each socket
  /// unwatched first) and releases the multi handle.
  void close();
  /// Loop thread: true while an outcome callback runs on it.
  bool in_callback() const noexcept { return callback_depth_.load(std::memory_order_relaxed) > 0; }

  /// Requests accepted and not yet completed (approximate from other threads).
  std::size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }

  const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }

  /// Any thread.
  MetricsSnapshot metrics() const;

 private:
  struct Submission {
    std::uint64_t id;
    StepConfig step;
    CallContext call;
    OutcomeCallback on_outcome;
    Clock::time_point started;
    StepCounters* counters;
  };
  struct Command {
    std::uint64_t cancel_id = 0;           // non-zero: a cancellation
    std::optional<Submission> submission;  // otherwise: a new request
  };

  friend struct Transfer;
  friend struct Leg;

  /// A socket libcurl asked to have watched, as the loop knows it.
  struct WatchedSocket {
    int loop_fd;  // the fd the loop watches: libcurl's own, or our duplicate of it
    SocketInterest interest;
    // The socket the number named when first watched: once libcurl has closed
    // it without notice, the same number may name another.
    std::uint64_t device;
    std::uint64_t inode;
    // libcurl no longer watches it (its connection went back to the cache),
    // but the loop still does, for reading: the next request on the same
    // connection costs the loop no change, and an event meanwhile (the
    // server closing it) ends the watch.
    bool parked = false;
  };

  // An easy handle out of libcurl, kept for a later request. One that last
  // ran a request of `step` towards `endpoint` still holds every option
  // that step sets: the next request of the same step and endpoint sets
  // only its own (launch_leg), skipping curl_easy_reset and some thirty
  // options (bench/README.md). `step` keeps that configuration alive, so
  // its address cannot name another step's while the handle waits.
  struct SpareHandle {
    CURL* easy = nullptr;
    std::optional<StepConfig> step;  // empty: reset before use
    Endpoint endpoint = Endpoint::none;
  };

  static int on_curl_socket(CURL* easy, int fd, int what, void* self, void* socket_data);
  static int on_curl_timer(CURLM* multi, long timeout_ms, void* self);
  static int on_close_socket(void* self, curl_socket_t fd);
  void deliver(Transfer& transfer, Outcome outcome, bool with_end_hook = true);
  bool send_in_background(Transfer& transfer);
  void deliver(std::shared_ptr<Delivery> delivery);
  void dispatch(std::function<void()> task, const Transfer& transfer);

  void watch(int fd, SocketInterest interest);
  void unwatch(int fd);
  void park(int fd);
  void connection_busy(CURL* easy, int fd, bool reading);
  void connection_idle(int fd);
  void connection_gone(int fd);
  bool has_idle_connection(const std::string& origin) const;
  void adopt_new_socket(int fd);

  void drain_commands();
  std::unique_ptr<Transfer> make_transfer(Submission& submission);
  void start(Submission submission);
  void describe(Transfer& transfer, bool built);
  void fire_notices(Clock::time_point now);
  void launch(Transfer& transfer);
  std::optional<std::string> launch_leg(Transfer& transfer, Leg& leg);
  void launch_waiting(const std::string* freed_origin = nullptr);
  void schedule(Transfer& transfer);
  bool origin_has_room(const std::string& origin) const;
  void drain_curl_messages();
  HttpResult read_result(Leg& leg, CURLcode code);
  void settle_hedged(Transfer& transfer, Leg& leg, const HttpResult& result);
  void expire_deadlines(Clock::time_point now);
  void rearm_timer();
  std::string timeout_detail(const Transfer& transfer) const;
  void finish(Transfer& transfer, const HttpResult& result);
  void complete(Transfer& transfer, HttpResult result, const Wire* wire = nullptr, Outcome* routed = nullptr);
  void log_outcome(const Transfer& transfer, const Outcome& outcome);
  void judge_origin(Leg& leg, const HttpResult& result);
  bool try_again(Transfer& transfer, const HttpResult& result);
  void end_attempt(Transfer& transfer, Leg& leg, const HttpResult& result);
  Wire stop_leg(Transfer& transfer, Leg& leg, const HttpResult& result, Clock::time_point now,
                const Outcome* routed = nullptr);
  void record_attempt(Transfer& transfer, const Leg& leg, const HttpResult& result, Clock::time_point now,
                      const Outcome* routed = nullptr);
  void switch_to_fallback(Transfer& transfer);
  void start_hedge(Transfer& transfer, Clock::time_point now);
  std::chrono::milliseconds backoff(int retry);
  void fire_attempt_timers(Clock::time_point now);
  void release(std::unique_ptr<Transfer> transfer);
  void recycle(Leg& leg);
  SpareHandle spare_of(CURL* easy, const Transfer& transfer, const Leg& leg) const;
  void configure_for_step(CURL* easy, const StepData& step, const Leg& leg);
  CURL* take_spare(const Transfer& transfer, const Leg& leg, bool& configured);
  std::string now_iso8601() const;

  std::shared_ptr<spdlog::logger> logger_;
  std::optional<std::chrono::minutes> utc_offset_;
  std::string user_agent_;
  std::size_t max_in_flight_;
  std::size_t max_per_origin_;
  std::size_t max_background_;
  std::atomic<std::size_t> background_{0};  // fire-and-forget requests in the background
  long long max_idle_seconds_;
  std::string key_prefix_;
  DestinationGuard guard_;
  Executor executor_;
  std::atomic<int> callback_depth_{0};
  spdlog::level::level_enum request_log_level_;
  bool send_traceparent_;
  std::shared_ptr<const RequestHooks> hooks_config_;  // shared with deliveries that outlive us
  bool describe_requests_ = false;                    // some hook wants a RequestInfo
  MetricsRegistry metrics_;
  CircuitBreakers breakers_;
  TraceIds trace_ids_;  // loop thread

  LoopHooks* hooks_ = nullptr;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::size_t> in_flight_{0};

  std::mutex inbox_mutex_;
  std::vector<Command> inbox_;     // guarded by inbox_mutex_
  bool accepting_ = true;          // guarded by inbox_mutex_
  std::vector<Command> draining_;  // loop thread: swapped with inbox_
  std::size_t draining_next_ = 0;  // first command of draining_ not yet run

  CURLM* multi_ = nullptr;
  std::unordered_map<int, WatchedSocket> watched_;  // by libcurl's fd
  std::unordered_map<int, int> curl_fd_of_;         // the loop's fd -> libcurl's fd
  std::unordered_map<std::uint64_t, std::unique_ptr<Transfer>> active_;
  std::multimap<Clock::time_point, std::uint64_t> deadlines_;
  std::multimap<Clock::time_point, std::uint64_t> notices_;   // RequestHooks::on_waiting
  std::multimap<Clock::time_point, std::uint64_t> backoffs_;  // a retry's start (StepOptions::retries)
  std::multimap<Clock::time_point, std::uint64_t> shares_;    // the end of a primary's share, or its hedge
  std::minstd_rand jitter_;                                   // backoff jitter; loop thread
  std::optional<Clock::time_point> curl_due_;
  std::optional<Clock::time_point> armed_;
  // The connections libcurl holds open, by origin, as its socket callbacks
  // show them: a socket it reads from is connected; one it no longer needs
  // (CURL_POLL_REMOVE) waits idle in its cache until it reads again or
  // closes. A request to an origin with no idle connection is sent on a new
  // one at once (CURLOPT_FRESH_CONNECT): libcurl 7.88 would otherwise walk
  // every connection it has to that host, in use or not, before opening one
  // (ConnectionExists in lib/url.c), which makes a burst of n requests cost
  // n * n / 2 steps. A miscount costs a walk or a connection, never a wrong
  // answer.
  struct OriginConnections {
    std::size_t open = 0;
    std::size_t idle = 0;
  };
  struct KnownConnection {
    std::string origin;
    bool idle = false;
  };
  std::unordered_map<std::string, OriginConnections> origin_connections_;
  std::unordered_map<int, KnownConnection> connections_;  // by libcurl's fd
  std::size_t new_connections_this_turn_ = 0;             // drain_commands() slices by these
  std::vector<SpareHandle> spare_handles_;
  bool defer_removals_ = false;                 // expire_deadlines() removes handles after the outcomes
  std::vector<SpareHandle> deferred_removals_;  // those handles
  std::deque<std::uint64_t> waiting_;           // ids queued for a slot, oldest first
  struct OriginSlots {
    std::size_t running = 0;
    std::deque<std::uint64_t> waiting;  // ids queued behind max_per_origin, oldest first
  };
  std::unordered_map<std::string, OriginSlots> origin_slots_;  // only with max_per_origin
  std::atomic<std::size_t> queued_count_{0};                   // transfers queued for a slot
  std::size_t running_ = 0;                                    // transfers added to multi_
  bool launching_ = false;
  bool shutting_down_ = false;
};

}  // namespace detail
}  // namespace v0
}  // namespace passthru
