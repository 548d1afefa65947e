// Per-origin circuit breakers: a state machine fed by outcomes and a clock.
// Driver thread only, except snapshot().
#pragma once

#include <passthru/circuit_breaker.hpp>
#include <passthru/metrics.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace passthru {
inline namespace v0 {
namespace detail {

class CircuitBreakers {
 public:
  using Clock = std::chrono::steady_clock;

  /// What a request may do.
  enum class Admission {
    send,   ///< Closed: send it.
    probe,  ///< Half-open: send it as one of the probes; report its end.
    refuse  ///< Open, or half-open with every probe out: fail at once.
  };

  /// What changed when a request ended, for the log.
  enum class Change { none, opened, reopened, closed };

  /// Throws std::invalid_argument naming the first invalid option.
  explicit CircuitBreakers(const CircuitBreakerOptions& options);

  bool enabled() const noexcept { return enabled_; }

  /// May a request to `origin` go out at `now`? An open breaker whose
  /// open_for has passed turns half-open here.
  Admission admit(const std::string& origin, Clock::time_point now);

  /// A request admitted for `origin` ended; `failed` as the class comment
  /// of CircuitBreakerOptions defines it. A probe that ended without a
  /// verdict (cancelled) calls abandon() instead.
  Change record(const std::string& origin, Admission admitted, bool failed, Clock::time_point now);
  void abandon(const std::string& origin, Admission admitted);

  /// When a refused request could next go out; for the reason.
  std::chrono::milliseconds retry_after(const std::string& origin, Clock::time_point now) const;
  /// Why it opened, for the log: "5 failures in a row" or "12 of 20 failed".
  std::string why_open(const std::string& origin) const;

  /// Any thread. Origins whose breaker is not closed or has ever opened.
  std::vector<OriginMetrics> snapshot() const;

 private:
  enum class State { closed, open, half_open };
  struct Breaker {
    State state = State::closed;
    std::size_t failures_in_a_row = 0;
    Clock::time_point window_start{};
    std::size_t window_requests = 0;
    std::size_t window_failures = 0;
    Clock::time_point open_until{};
    std::size_t probes_out = 0;
    std::size_t probes_passed = 0;
    std::string why;
    std::uint64_t opened = 0;
    std::uint64_t refused = 0;
  };

  Breaker& find(const std::string& origin);
  Change open(Breaker& breaker, Clock::time_point now, std::string why);
  void forget_healthy_origins();

  const CircuitBreakerOptions options_;
  const bool enabled_;
  mutable std::mutex mutex_;  // for snapshot(); the driver thread is the only writer
  std::unordered_map<std::string, Breaker> breakers_;
};

}  // namespace detail
}  // namespace v0
}  // namespace passthru
