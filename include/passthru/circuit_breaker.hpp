// The circuit breaker: when a customer's server is down, callers stop waiting
// out the whole timeout one after another.
#pragma once

#include <chrono>
#include <cstddef>

namespace passthru {
inline namespace v0 {

/// Settings of the client's circuit breakers (ClientOptions::circuit_breaker),
/// one per origin (scheme, host and port), shared by every step that calls
/// it. Off by default: set consecutive_failures or failure_ratio.
///
/// Closed, every request goes out. A failure is a transport failure (refused,
/// reset, DNS, TLS, too large), a 5xx answer or a timeout; any other answer,
/// 4xx included, is the server speaking and counts as a success. After
/// `consecutive_failures` failures in a row, or a `failure_ratio` of
/// failures among at least `minimum_requests` ended within one `window`, the
/// breaker opens: requests to that origin route to on-error at once, with
/// Errc::circuit_open and the reason "circuit open (...)", and nothing is
/// sent. After `open_for` it lets `probes` requests through (half-open):
/// when they all succeed it closes; the first failure opens it again for
/// another `open_for`. Other requests are refused while the probes run.
/// State changes are logged (warn when opening) and counted in the metrics.
struct CircuitBreakerOptions {
  /// Failures in a row that open the breaker; 0: this rule is off.
  std::size_t consecutive_failures = 0;
  /// Share of failed requests, from 0 (this rule is off) to 1, that opens
  /// the breaker within one window.
  double failure_ratio = 0.0;
  /// The window of failure_ratio: counts start over every window. Greater than 0.
  std::chrono::milliseconds window{10000};
  /// Requests a window must have seen before failure_ratio is judged; at least 1.
  std::size_t minimum_requests = 20;
  /// How long an open breaker refuses requests before probing. Greater than 0.
  std::chrono::milliseconds open_for{5000};
  /// Requests let through when half-open; all must succeed to close. At least 1.
  std::size_t probes = 3;
};

}  // namespace v0
}  // namespace passthru
