// PassthruClient: runs Passthru requests asynchronously and routes their answers.
#pragma once

#include <passthru/call_context.hpp>
#include <passthru/circuit_breaker.hpp>
#include <passthru/event_loop.hpp>
#include <passthru/export.hpp>
#include <passthru/hooks.hpp>
#include <passthru/log.hpp>
#include <passthru/metrics.hpp>
#include <passthru/outcome.hpp>
#include <passthru/step_config.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace passthru {
inline namespace v0 {

namespace detail {
class TransferEngine;
class Driver;
}  // namespace detail

/// Called exactly once per accepted request: on the client's driver thread
/// (its own thread, or the loop thread of a loop-driven client), or wherever
/// ClientOptions::executor runs it. Must not block; an exception it throws is
/// caught and logged.
using OutcomeCallback = std::function<void(Outcome)>;

/// Runs `task` exactly once, typically on another thread: posts it to the
/// engine's own event loop or work queue.
using Executor = std::function<void(std::function<void()> task)>;

/// Client-wide settings, with their defaults.
struct ClientOptions {
  /// Receives log lines. Empty: lines go to standard error.
  LogSink log_sink;
  /// Lines below this level are dropped. The default, warn, logs only requests
  /// routed to on-error or on-timeout, slow answers and internal faults.
  LogLevel log_level = LogLevel::warn;
  /// Level of the one line logged per request that ended well and in time:
  /// info by default; debug or trace keep them out of an info log. Lines for
  /// on-error and on-timeout outcomes and for answers slower than
  /// slow_answer_threshold are always warn.
  LogLevel request_log_level = LogLevel::info;
  /// An answer slower than this is logged at warn and counted in
  /// StepMetrics::slow_answers. The guide asks customers to answer within 3 s.
  /// Greater than 0.
  std::chrono::milliseconds slow_answer_threshold{3000};
  /// Upper bounds, in seconds, of every step's latency histogram: ascending,
  /// positive and finite (the constructor throws std::invalid_argument
  /// otherwise). Each step adds its own timeout to them.
  std::vector<double> latency_buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 30};
  /// Steps the metrics keep apart (by StepOptions::name). Further names are
  /// counted together under the step "other", so a name made per call cannot
  /// grow memory or a Prometheus server's series without bound.
  std::size_t max_metric_steps = 256;
  /// Called as each request starts, waits long, and ends (see <passthru/hooks.hpp>).
  RequestHooks hooks;
  /// Per-origin circuit breakers (see <passthru/circuit_breaker.hpp>). Off
  /// by default; set circuit_breaker.consecutive_failures (for example 5) so
  /// that, while a customer's server is down, callers go to on-error at once
  /// instead of each waiting out the timeout.
  CircuitBreakerOptions circuit_breaker;
  /// Send a W3C `traceparent` header (and `tracestate`, when the call has
  /// one) with every request. The trace id is in the Outcome and the log
  /// line either way.
  bool send_traceparent = true;
  /// Offset used when stamping CurrentTime, within ±24 h. Empty: the
  /// process's local time zone.
  std::optional<std::chrono::minutes> utc_offset;
  /// User-Agent header. Empty: "passthru/<version>". At most 8 KiB, no
  /// control characters (the constructor throws std::invalid_argument).
  std::string user_agent;
  /// Requests running at once (each holds a connection and a socket). Further
  /// requests wait in a first-in first-out queue; the wait counts against
  /// their own timeout, so a request that never gets a slot still ends
  /// on_timeout by its deadline. 0: no limit.
  std::size_t max_in_flight = 4096;
  /// Requests running at once to one origin (scheme, host and port), so one
  /// slow customer cannot take every slot of max_in_flight from the others.
  /// Further requests to it wait, oldest first, within their own timeout
  /// (reason "never started: max_per_origin N reached for ORIGIN" if the
  /// wait outlasts it). 0 (the default): no limit.
  std::size_t max_per_origin = 0;
  /// Fire-and-forget requests (StepOptions::fire_and_forget) in the
  /// background at once; further ones are dropped unsent and counted. At least 1.
  std::size_t max_background = 1024;
  /// A kept-alive connection idle longer than this is closed, not reused.
  /// Shorter than the common server keep-alive of 5 s, so we rarely reuse a
  /// connection the server is closing (libcurl would then send the request
  /// again; the Idempotency-Key header lets the server spot such a copy).
  std::chrono::seconds connection_max_idle{4};  ///< Not negative.
  /// SSRF guard, for engines whose customers type their own URLs: refuse to
  /// connect to loopback, private (RFC 1918, fc00::/7, 100.64.0.0/10),
  /// link-local (169.254.0.0/16 with the cloud metadata address, fe80::/10),
  /// unspecified, multicast and reserved addresses. Judged on each address
  /// actually connected to, after DNS, so a name that resolves (or rebinds)
  /// to such an address is refused too. The request routes to on-error with
  /// Errc::blocked_destination and reason "blocked destination (ADDRESS)".
  bool block_private_destinations = false;
  /// Networks exempted from the guard, in CIDR form ("10.20.0.0/16",
  /// "fd00::/8", "127.0.0.1/32"). Invalid entries make the constructor throw
  /// std::invalid_argument.
  std::vector<std::string> allowed_destinations;
  /// Where outcome callbacks run. Empty (the default): on the driver thread.
  /// Set: each callback is wrapped in a task handed to this function, which
  /// must run it exactly once (for example `asio::post(io, std::move(task))`),
  /// so the engine receives outcomes on its own thread. If the executor
  /// throws, the task runs on the driver thread instead: never lost, never
  /// twice. When the client is destroyed, the cancelled outcomes of requests
  /// still in flight are handed to the executor before the destructor returns.
  Executor executor;
};

/// Names one request; cheap to copy, and safe to use after the request has
/// completed or the client is gone (cancel() then does nothing).
class PASSTHRU_API RequestHandle {
 public:
  RequestHandle() = default;

  /// The request's id, also found in its Outcome. 0 for an empty handle.
  std::uint64_t id() const noexcept { return id_; }

  /// Asks for cancellation and returns at once. If the request has not
  /// completed yet, its callback receives Route::cancelled (exactly once, as
  /// always); otherwise nothing happens. Safe from any thread.
  void cancel() const noexcept;

 private:
  friend class PassthruClient;
  RequestHandle(std::uint64_t id, std::weak_ptr<detail::TransferEngine> engine) noexcept
      : id_(id), engine_(std::move(engine)) {}
  std::uint64_t id_ = 0;
  std::weak_ptr<detail::TransferEngine> engine_;
};

/// Runs Passthru requests through a libcurl multi handle, driven either by
/// one internal thread (the ThreadDriver) or by the engine's own event loop
/// (the LoopDriver). Connections are reused across requests; there is no
/// thread per request. Both drivers share every line of request, routing and
/// deadline logic, so outcomes do not depend on the driver.
class PASSTHRU_API PassthruClient {
 public:
  /// ThreadDriver: one internal thread runs the requests and, unless
  /// `options.executor` is set, the outcome callbacks. Throws
  /// std::invalid_argument naming the first invalid option.
  explicit PassthruClient(ClientOptions options = {});

  /// LoopDriver: `loop` (the engine's event loop, see <passthru/event_loop.hpp>,
  /// or an adapter such as passthru::AsioEventLoop) runs the requests and the
  /// callbacks; the client starts no thread. `loop` must outlive the client
  /// and drive no other client. Throws std::logic_error if it already does.
  explicit PassthruClient(EventLoop& loop, ClientOptions options = {});

  /// Completes every request still in flight with Route::cancelled, closes
  /// its connections, then returns. Must not be called from inside an
  /// outcome callback. A loop-driven client must be destroyed on the loop
  /// thread (or while the loop is not running).
  ~PassthruClient();

  PassthruClient(const PassthruClient&) = delete;
  PassthruClient& operator=(const PassthruClient&) = delete;

  /// Starts the step's request for `call` and returns at once: it never
  /// waits on the network or DNS, and never calls `on_outcome` before it
  /// returns. `on_outcome` is called exactly once, by the step's timeout at
  /// the latest (measured from this call). Safe from any thread, with either
  /// driver.
  /// Throws std::invalid_argument if `on_outcome` is empty.
  RequestHandle execute(const StepConfig& step, CallContext call, OutcomeCallback on_outcome);

  /// Same as RequestHandle::cancel() for the request with this id; an id
  /// that is unknown or already completed is ignored. Safe from any thread.
  void cancel(std::uint64_t request_id) noexcept;

  /// A copy of the client's counters, per step. Safe from any thread, at any
  /// time; it takes one short lock and allocates, so scrape it at a human
  /// pace (every few seconds), not per request.
  MetricsSnapshot metrics() const;

 private:
  std::shared_ptr<detail::TransferEngine> engine_;
  std::unique_ptr<detail::Driver> driver_;
};

}  // namespace v0
}  // namespace passthru
