// Turns a step and a call into the bytes of an HTTP request. No networking.
#pragma once

#include <passthru/call_context.hpp>
#include <passthru/step_config.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace passthru {
inline namespace v0 {
namespace detail {

struct StepData;

/// A request ready for the transport.
struct BuiltRequest {
  Method method = Method::get;
  std::string url;                   // with the call's query string for GET
  std::string signed_url;            // url without user-info: what a signature covers (if signed)
  std::string body;                  // form body for POST, empty for GET
  std::vector<std::string> headers;  // "Name: value" lines, in order
  // A POST's Content-Type and "Expect:" lines start here (else npos). libcurl
  // sends that Content-Type itself for a CURLOPT_POSTFIELDS body and no
  // Expect for one of at most 1 MiB, so they are listed (for the hooks and
  // the tests) but not handed to it: it formats each custom header a byte
  // at a time.
  std::size_t implied_by_libcurl = std::string::npos;
};

/// Thrown when a call context cannot become a request (never for a step:
/// steps are validated when built).
class InvalidCall : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// RFC 3986 percent-encoding: every byte outside ALPHA / DIGIT / "-._~"
/// becomes %XX with upper-case hex; "+" becomes "%2B" and " " "%20".
std::string percent_encode(std::string_view text);

/// "name=value&name=value", both sides percent-encoded, in order.
std::string encode_params(const std::vector<std::pair<std::string, std::string>>& params);

/// `url` with `query` appended: after "?" when it has no query, after "&"
/// when it has one, directly when it ends in "?" or "&". A fragment is dropped.
std::string append_query(std::string_view url, std::string_view query);

/// ISO 8601 with offset, seconds precision: "2024-01-15T10:30:00+05:30".
std::string format_iso8601(std::chrono::system_clock::time_point when, std::chrono::minutes utc_offset);

/// The offset of the process's local time zone at `when`.
std::chrono::minutes local_utc_offset(std::chrono::system_clock::time_point when);

/// The parameters sent for `call`, in wire order, with the guide's names.
/// `now` is used for CurrentTime when the call has none. Throws InvalidCall
/// when a custom parameter repeats a standard name or has an empty name.
std::vector<std::pair<std::string, std::string>> call_params(const CallContext& call, bool quote_digits,
                                                             std::string_view now);

/// The full request for `call` at `step`. Throws InvalidCall when the call
/// makes a GET URL longer than kMaxUrlBytes or a POST body longer than
/// kMaxPostBodyBytes.
BuiltRequest build_request(const StepData& step, const CallContext& call, std::string_view now);

/// As build_request, for StepOptions::fallback_url: the same parameters and
/// headers, the query (GET) on the fallback's URL.
BuiltRequest build_fallback_request(const StepData& step, const CallContext& call, std::string_view now);

}  // namespace detail
}  // namespace v0
}  // namespace passthru
