// Small helpers shared by the integration tests: sample calls, log capture,
// a start gate for threads, and form decoding that keeps "+" as "+".
#pragma once

#include "outcome_collector.hpp"
#include "test_client.hpp"

#include <passthru/call_context.hpp>
#include <passthru/client.hpp>
#include <passthru/log.hpp>
#include <passthru/step_config.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace passthru_test {

/// The guide's example call: CallSid abc123, from +919876543210 to
/// +914412345678, incoming, at 2024-01-15T10:30:00+05:30, digits 1234.
passthru::CallContext sample_call();

/// Routes every step in these tests uses unless a test says otherwise.
passthru::Routes sample_routes();

/// A step for `url` with sample_routes() and `timeout`.
passthru::StepOptions step_options(std::string url,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(20));

/// Captures log lines so tests stay quiet and may inspect them.
class LogCollector {
 public:
  struct Line {
    passthru::LogLevel level;
    std::string message;
  };

  LogCollector();
  passthru::LogSink sink() const;
  std::vector<Line> lines() const;

 private:
  struct State {
    mutable std::mutex mutex;
    std::vector<Line> lines;
  };
  std::shared_ptr<State> state_;
};

/// ClientOptions whose log lines go to `logs` instead of standard error.
passthru::ClientOptions quiet_options(const LogCollector& logs);

/// Runs one request and waits for its outcome; empty if none came within
/// `timeout`. The outcome is returned only when its callback ran exactly once
/// by then (otherwise the returned Outcome's request_id is 0 and reason says so).
std::optional<passthru::Outcome> execute_and_wait(passthru_test::TestClient& client,
                                                  const passthru::StepConfig& step,
                                                  passthru::CallContext call,
                                                  std::chrono::milliseconds timeout = kGenerousWait);

/// Releases waiting threads all at once, so they call into the library together.
class StartGate {
 public:
  explicit StartGate(std::size_t parties) : waiting_for_(parties) {}
  /// Blocks until `parties` threads have arrived.
  void arrive_and_wait();

 private:
  std::mutex mutex_;
  std::condition_variable open_;
  std::size_t waiting_for_;
};

/// A one-shot event: set() once, wait from any number of threads.
class Event {
 public:
  void set();
  bool is_set() const;
  /// True when set before `timeout` passed.
  bool wait_for(std::chrono::milliseconds timeout = kGenerousWait) const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool set_ = false;
};

/// Sets an Event when the scope ends, so a server worker blocked on it is
/// released before the server's destructor waits for its workers.
class SetOnExit {
 public:
  explicit SetOnExit(Event& event) : event_(event) {}
  ~SetOnExit() { event_.set(); }
  SetOnExit(const SetOnExit&) = delete;
  SetOnExit& operator=(const SetOnExit&) = delete;

 private:
  Event& event_;
};

/// Decodes %XX escapes only; "+" stays "+" (the library never sends "+" for a space).
std::string percent_decode(std::string_view text);

/// Splits "a=1&b=2" into decoded name/value pairs, in order.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view text);

/// The decoded value of the first parameter `name` in `text`, if present.
std::optional<std::string> form_value(std::string_view text, std::string_view name);

}  // namespace passthru_test
