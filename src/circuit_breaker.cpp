#include "circuit_breaker.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace passthru {
inline namespace v0 {
namespace detail {
namespace {

// Origins are kept while they have something to say; past this many, the
// healthy ones (closed, never opened, no failure pending) are forgotten.
constexpr std::size_t kMaxOrigins = 4096;

void validate(const CircuitBreakerOptions& options) {
  const auto refuse = [](const char* what) {
    throw std::invalid_argument(std::string("passthru: ClientOptions::circuit_breaker.") + what);
  };
  if (!(options.failure_ratio >= 0.0 && options.failure_ratio <= 1.0))
    refuse("failure_ratio: not within 0 to 1");
  if (options.window.count() <= 0) refuse("window: must be greater than 0");
  if (options.minimum_requests == 0) refuse("minimum_requests: must be at least 1");
  if (options.open_for.count() <= 0) refuse("open_for: must be greater than 0");
  if (options.probes == 0) refuse("probes: must be at least 1");
}

}  // namespace

CircuitBreakers::CircuitBreakers(const CircuitBreakerOptions& options)
    : options_(options), enabled_(options.consecutive_failures > 0 || options.failure_ratio != 0.0) {
  // The other settings matter, and are checked, only when a rule is on.
  if (enabled_) validate(options);
}

CircuitBreakers::Breaker& CircuitBreakers::find(const std::string& origin) {
  const auto found = breakers_.find(origin);
  if (found != breakers_.end()) return found->second;
  std::lock_guard<std::mutex> lock(mutex_);
  if (breakers_.size() >= kMaxOrigins) forget_healthy_origins();
  return breakers_[origin];
}

void CircuitBreakers::forget_healthy_origins() {
  for (auto it = breakers_.begin(); it != breakers_.end();) {
    const Breaker& b = it->second;
    const bool healthy = b.state == State::closed && b.opened == 0 && b.failures_in_a_row == 0;
    it = healthy ? breakers_.erase(it) : std::next(it);
  }
}

CircuitBreakers::Admission CircuitBreakers::admit(const std::string& origin, Clock::time_point now) {
  if (!enabled_) return Admission::send;
  Breaker& b = find(origin);
  std::lock_guard<std::mutex> lock(mutex_);
  if (b.state == State::open && now >= b.open_until) {
    b.state = State::half_open;
    b.probes_out = 0;
    b.probes_passed = 0;
  }
  switch (b.state) {
    case State::closed: return Admission::send;
    case State::half_open:
      if (b.probes_out + b.probes_passed < options_.probes) {
        ++b.probes_out;
        return Admission::probe;
      }
      break;
    case State::open: break;
  }
  ++b.refused;
  return Admission::refuse;
}

CircuitBreakers::Change CircuitBreakers::open(Breaker& b, Clock::time_point now, std::string why) {
  const bool again = b.state == State::half_open;
  b.state = State::open;
  b.open_until = now + options_.open_for;
  b.probes_out = 0;
  b.probes_passed = 0;
  b.why = std::move(why);
  ++b.opened;
  return again ? Change::reopened : Change::opened;
}

CircuitBreakers::Change CircuitBreakers::record(const std::string& origin, Admission admitted, bool failed,
                                                Clock::time_point now) {
  if (!enabled_ || admitted == Admission::refuse) return Change::none;
  Breaker& b = find(origin);
  std::lock_guard<std::mutex> lock(mutex_);
  if (admitted == Admission::probe) {
    if (b.state != State::half_open) return Change::none;  // a stale probe
    --b.probes_out;
    if (failed) return open(b, now, "a probe failed");
    if (++b.probes_passed < options_.probes) return Change::none;
    b = Breaker{State::closed, 0, now, 0, 0, {}, 0, 0, {}, b.opened, b.refused};
    return Change::closed;
  }
  if (b.state != State::closed) return Change::none;  // sent before it opened: already judged
  if (now - b.window_start >= options_.window) {
    b.window_start = now;
    b.window_requests = 0;
    b.window_failures = 0;
  }
  ++b.window_requests;
  if (!failed) {
    b.failures_in_a_row = 0;
    return Change::none;
  }
  ++b.window_failures;
  ++b.failures_in_a_row;
  if (options_.consecutive_failures > 0 && b.failures_in_a_row >= options_.consecutive_failures) {
    return open(b, now, fmt::format("{} failures in a row", b.failures_in_a_row));
  }
  if (options_.failure_ratio > 0.0 && b.window_requests >= options_.minimum_requests &&
      static_cast<double>(b.window_failures) >=
          options_.failure_ratio * static_cast<double>(b.window_requests)) {
    return open(b, now,
                fmt::format("{} of {} requests failed within {} ms", b.window_failures, b.window_requests,
                            options_.window.count()));
  }
  return Change::none;
}

void CircuitBreakers::abandon(const std::string& origin, Admission admitted) {
  if (!enabled_ || admitted != Admission::probe) return;
  Breaker& b = find(origin);
  std::lock_guard<std::mutex> lock(mutex_);
  if (b.state == State::half_open && b.probes_out > 0) --b.probes_out;  // another request may probe
}

std::chrono::milliseconds CircuitBreakers::retry_after(const std::string& origin,
                                                       Clock::time_point now) const {
  const auto found = breakers_.find(origin);
  if (found == breakers_.end() || found->second.state != State::open || found->second.open_until <= now) {
    return std::chrono::milliseconds(0);
  }
  return std::chrono::ceil<std::chrono::milliseconds>(found->second.open_until - now);
}

std::string CircuitBreakers::why_open(const std::string& origin) const {
  const auto found = breakers_.find(origin);
  return found == breakers_.end() ? std::string() : found->second.why;
}

std::vector<OriginMetrics> CircuitBreakers::snapshot() const {
  std::vector<OriginMetrics> origins;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [origin, b] : breakers_) {
    if (b.state == State::closed && b.opened == 0) continue;
    OriginMetrics m;
    m.origin = origin;
    m.circuit = b.state == State::closed ? CircuitState::closed
                : b.state == State::open ? CircuitState::open
                                         : CircuitState::half_open;
    m.circuit_opened = b.opened;
    m.circuit_refused = b.refused;
    origins.push_back(std::move(m));
  }
  return origins;
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
