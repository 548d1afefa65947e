// The engine: every call's state machine on one Asio io_context thread.
#pragma once

#include "call_plan.hpp"
#include "flow.hpp"

#include <passthru/client.hpp>
#include <passthru/hooks.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace flow_engine {

/// One Passthru request a call made.
struct StepRecord {
  std::string applet;
  std::string label;  ///< as in the path: `crm-lookup[on_timeout]`, or the route of a request not held
  bool held = true;   ///< false: the call had moved on when the outcome came
  passthru::Route route = passthru::Route::default_next;  ///< Outcome::route
  int http_status = 0;                                    ///< Outcome::http_status
  std::chrono::microseconds elapsed{0};                   ///< Outcome::elapsed
  std::string reason;                                     ///< Outcome::reason

  // Hold music, held steps only: started by RequestHooks::on_waiting, stopped by the outcome.
  int hold_music_starts = 0;                       ///< must be 0 or 1
  std::chrono::microseconds hold_music_after{0};   ///< from execute() to the music starting
  std::chrono::microseconds hold_music_played{0};  ///< from the music starting to the outcome
};

/// What happened to one call.
struct CallRecord {
  std::vector<std::string> path;  ///< every applet the call ran, Passthru steps with their route
  std::vector<std::string> said;  ///< the prompts it heard, rendered
  std::vector<StepRecord> steps;
  std::chrono::microseconds duration{0};  ///< from its arrival to its last applet
  int ends = 0;                           ///< must be exactly 1
  std::string problem;                    ///< why it ended abnormally, empty otherwise
};

struct EngineStats {
  std::size_t peak_calls = 0;     ///< calls in progress at once
  std::size_t peak_requests = 0;  ///< Passthru requests in flight at once
  std::chrono::microseconds wall{0};
  std::vector<std::string> anomalies;  ///< outcomes that came for no one, watchdog, ...
};

/// Plays every planned call through its flow. All of it, the outcome
/// callbacks included, runs on the io_context's thread: no locks.
///
/// A call is a small state machine: `play` and `gather` wait on the call's
/// timer, a held Passthru step waits for its outcome, everything else runs
/// at once; a call ends at `connect`, `voicemail` or `hangup`. A Passthru
/// step with `hold_caller: false` starts its request and moves the call on
/// in the same turn; the outcome is only recorded when it comes.
class FlowEngine {
 public:
  /// `flows` must be bound (FlowBook::bind); all three must outlive the engine.
  FlowEngine(asio::io_context& io, const FlowBook& flows, const std::vector<PlannedCall>& plan);

  /// Starts the calls at their arrival times and runs `io` until every call
  /// has ended and every request has its outcome (or the watchdog gives up).
  /// `client` must be driven by `io` (passthru::AsioEventLoop).
  void run(passthru::PassthruClient& client);

  /// For RequestHooks::on_waiting: the request has waited long enough for
  /// the caller to notice, so the call it holds hears hold music until its
  /// outcome comes. A request the caller does not wait for (hold_caller
  /// false) has no one to play to and is ignored. Runs on the io_context
  /// thread, like the outcome callbacks (the client has no executor).
  void start_hold_music(const passthru::RequestInfo& request);

  const std::vector<CallRecord>& records() const noexcept { return records_; }
  const EngineStats& stats() const noexcept { return stats_; }

 private:
  using Clock = std::chrono::steady_clock;

  struct LiveCall {
    const PlannedCall* plan = nullptr;
    const Flow* flow = nullptr;
    passthru::CallContext context;
    std::map<std::string, std::string> variables;  ///< for {placeholders} and branches
    std::unique_ptr<asio::steady_timer> timer;
    Clock::time_point started;
    std::size_t applets_run = 0;
    std::uint64_t awaiting = 0;  ///< id of the held request, 0 when none
    Clock::time_point sent;      ///< when the held request was made
    int hold_music_starts = 0;   ///< for the held request
    Clock::time_point hold_music_started;
    bool ended = false;
  };

  void admit_arrivals();
  void start_call(std::size_t index);
  void advance(std::size_t index, const Applet* applet);
  void pause(std::size_t index, std::chrono::milliseconds duration, const Applet* next);
  void send(std::size_t index, const Applet& step);
  void on_outcome(std::size_t index, const Applet& step, passthru::Outcome outcome);
  void stop_hold_music(LiveCall& call, StepRecord& step);
  void on_detached_outcome(std::size_t index, const Applet& step, passthru::Outcome outcome);
  void end_call(std::size_t index, std::string problem = {});
  void finish_if_done();

  asio::io_context& io_;
  const FlowBook& flows_;
  const std::vector<PlannedCall>& plan_;
  passthru::PassthruClient* client_ = nullptr;

  std::vector<LiveCall> calls_;
  /// Held request id -> its call. Kept after the outcome, so that a late
  /// on_waiting is caught rather than taken for a request not held.
  std::unordered_map<std::uint64_t, std::size_t> held_requests_;
  std::vector<CallRecord> records_;
  std::vector<std::size_t> arrival_order_;
  std::size_t next_arrival_ = 0;
  asio::steady_timer arrivals_;
  asio::steady_timer watchdog_;
  Clock::time_point run_started_;

  std::size_t live_calls_ = 0;
  std::size_t ended_calls_ = 0;
  std::size_t requests_in_flight_ = 0;
  std::size_t detached_in_flight_ = 0;
  bool finished_ = false;
  EngineStats stats_;
};

}  // namespace flow_engine
