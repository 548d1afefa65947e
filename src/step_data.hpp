// The validated form of StepOptions that requests are built from.
#pragma once

#include <passthru/response_router.hpp>
#include <passthru/step_config.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace passthru {
inline namespace v0 {
namespace detail {

/// StepOptions::fallback_url, as StepData holds the primary's.
struct EndpointUrl {
  std::string base_url;
  std::string signed_url;
  std::string host;
  std::string path;
  std::string origin;
};

/// Which failures after the request was sent are retried (within
/// StepOptions::retries): StepOptions::retry_after_send sets all three, the
/// url fragment's rp some of them. Failures before sending always are.
struct RetryAfterSend {
  bool server_error = false;  // a 5xx answer
  bool timeout = false;       // read_timeout, or the primary's share, ran out
  bool failure = false;       // reset, closed, or another transport failure
  bool any() const { return server_error || timeout || failure; }
};

struct StepData {
  StepOptions options;
  std::string base_url;    // the normalised URL without its fragment: what is sent
  std::string signed_url;  // base_url without user-info: what a signature covers
  std::string host;        // for log lines
  std::string path;        // for log lines; never the query (it may hold secrets)
  std::string label;       // options.name, or host when empty
  std::string origin;      // "https://crm.example.com:443": what a circuit breaker guards
  ResponseRouter router;
  std::vector<std::string> header_lines;  // "Name: value", validated
  bool has_idempotency_key = false;       // the step sets its own Idempotency-Key
  std::vector<std::string> secrets;       // values never to show in a reason or log line
  std::optional<EndpointUrl> fallback;    // StepOptions::fallback_url, validated
  RetryAfterSend retry_after_send;        // from retry_after_send and the url's rp

  /// StepOptions::primary_timeout, its default resolved; with hedge_after,
  /// when the fallback joins the primary.
  std::chrono::milliseconds primary_share() const {
    if (options.hedge_after.count() > 0) return options.hedge_after;
    return options.primary_timeout.count() > 0 ? options.primary_timeout : options.timeout / 2;
  }
};

/// Limits on what one request may carry; larger is refused, never truncated.
inline constexpr std::size_t kMaxUrlBytes = 8192;
inline constexpr std::size_t kMaxHeaderValueBytes = 8192;
inline constexpr std::size_t kMaxPostBodyBytes = 1024 * 1024;
inline constexpr int kMaxRedirects = 5;
inline constexpr int kMaxRetries = 5;
inline constexpr std::size_t kMinSigningKeyBytes = 32;
inline constexpr std::size_t kMaxSigningKeys = 2;

}  // namespace detail
}  // namespace v0
}  // namespace passthru
