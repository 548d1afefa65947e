// What a client has done, per step: counters, a gauge and a latency histogram,
// read with PassthruClient::metrics() and rendered for Prometheus.
#pragma once

#include <passthru/export.hpp>
#include <passthru/outcome.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace passthru {
inline namespace v0 {

/// Number of Route values; StepMetrics::by_route is indexed by the Route.
inline constexpr std::size_t kRouteCount = 6;

/// Status classes of StepMetrics::by_status_class: index 0 counts outcomes
/// with no HTTP answer (transport failure, timeout, cancelled before an
/// answer), indexes 1 to 5 the final status 1xx to 5xx.
inline constexpr std::size_t kStatusClassCount = 6;

/// "none", "1xx", "2xx", "3xx", "4xx" or "5xx" for an index of by_status_class.
PASSTHRU_API const char* status_class_name(std::size_t index) noexcept;

/// Index into StepMetrics::by_status_class of an HTTP status (0: none).
constexpr std::size_t status_class_of(int http_status) noexcept {
  return http_status >= 100 && http_status <= 599 ? static_cast<std::size_t>(http_status / 100) : 0;
}

/// The caller's wait (Outcome::elapsed) of every outcome but the cancelled
/// ones, in seconds.
struct LatencyHistogram {
  /// Ascending upper bounds in seconds; a last bucket, +Inf, is implied. The
  /// client's bounds (ClientOptions::latency_buckets, which include 3 s and
  /// the default 15 s timeout) plus the step's own timeout when it is not one
  /// of them, so "answered within the timeout" is always one bucket.
  std::vector<double> upper_bounds;
  /// Observations per bucket, not cumulative: counts[i] for
  /// (upper_bounds[i-1], upper_bounds[i]], counts.back() for the +Inf bucket.
  std::vector<std::uint64_t> counts;
  std::uint64_t count = 0;   ///< Observations, the sum of counts.
  double sum_seconds = 0.0;  ///< Their sum.
};

/// One step's figures since the client was made. Steps are named by
/// StepOptions::name (the URL's host when empty).
struct StepMetrics {
  std::string step;
  std::uint64_t requests = 0;   ///< Accepted by execute().
  std::uint64_t in_flight = 0;  ///< Accepted and not yet completed.
  /// Outcomes by route, indexed by static_cast<std::size_t>(Route).
  std::array<std::uint64_t, kRouteCount> by_route{};
  /// Outcomes by final HTTP status class (see kStatusClassCount).
  std::array<std::uint64_t, kStatusClassCount> by_status_class{};
  /// Answers (an HTTP status arrived) that took longer than
  /// ClientOptions::slow_answer_threshold, 3 s by default: the guide's limit.
  /// Timeouts are not counted here; they have their own route.
  std::uint64_t slow_answers = 0;
  /// Fire-and-forget requests dropped unsent: max_background were running.
  std::uint64_t background_dropped = 0;
  /// HTTP attempts by kind (Outcome::attempt_log): a request's first, a
  /// retry at the same URL (StepOptions::retries), a try of fallback_url
  /// after the primary, a hedge (fallback_url alongside the primary).
  std::uint64_t first_attempts = 0;
  std::uint64_t retries = 0;
  std::uint64_t fallbacks = 0;
  std::uint64_t hedges = 0;
  std::uint64_t bytes_sent = 0;      ///< Request heads and bodies.
  std::uint64_t bytes_received = 0;  ///< Answer heads and bodies.
  LatencyHistogram latency;
};

/// The state of an origin's circuit breaker (see <passthru/circuit_breaker.hpp>).
enum class CircuitState { closed = 0, open = 1, half_open = 2 };

/// One origin ("https://crm.example.com:443") whose circuit breaker is not
/// closed or has opened at least once.
struct OriginMetrics {
  std::string origin;
  CircuitState circuit = CircuitState::closed;
  std::uint64_t circuit_opened = 0;   ///< Times it opened (half-open to open included).
  std::uint64_t circuit_refused = 0;  ///< Requests routed to on-error at once while it was open.
};

/// A consistent-enough copy of a client's metrics: each counter is read
/// atomically, not all of them at one instant.
struct MetricsSnapshot {
  std::vector<StepMetrics> steps;  ///< Sorted by step name.
  /// Requests accepted and not completed, across steps.
  std::uint64_t in_flight = 0;
  /// Requests waiting for a slot under ClientOptions::max_in_flight.
  std::uint64_t queued = 0;
  /// Fire-and-forget requests running in the background.
  std::uint64_t background = 0;
  /// The client's ClientOptions::slow_answer_threshold.
  std::chrono::milliseconds slow_answer_threshold{0};
  /// Origins whose circuit breaker has something to say, sorted by origin.
  std::vector<OriginMetrics> origins;
};

/// Renders `snapshot` in the Prometheus text exposition format (version
/// 0.0.4, served as "text/plain; version=0.0.4"). Metric names start with
/// `prefix` ("passthru" by default), which must match [a-zA-Z_:][a-zA-Z0-9_:]*
/// (std::invalid_argument otherwise). Step names are escaped as label values.
/// The metrics, each with a `step` label:
///   <prefix>_requests_total, _outcomes_total{route}, _answers_total{status_class},
///   _slow_answers_total, _in_flight, _background_dropped_total, _bytes_sent_total, _bytes_received_total,
///   _attempts_total{kind="first|retry|fallback"},
///   _request_duration_seconds (histogram),
/// without labels, <prefix>_client_in_flight, _client_queued, _client_background and
/// _slow_answer_threshold_seconds, and with an `origin` label,
/// <prefix>_circuit_state (0 closed, 1 open, 2 half-open),
/// _circuit_opened_total and _circuit_refused_total.
PASSTHRU_API std::string to_prometheus(const MetricsSnapshot& snapshot, std::string_view prefix = "passthru");

}  // namespace v0
}  // namespace passthru
