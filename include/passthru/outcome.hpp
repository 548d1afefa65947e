// The single result every accepted request ends with.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <system_error>

namespace passthru {
inline namespace v0 {

/// Where the call goes next.
enum class Route {
  next_applet,    ///< 2xx naming an applet: continue at Outcome::target.
  external_flow,  ///< 2xx with an http(s) flow URL: continue at that URL.
  default_next,   ///< 2xx with an empty body, or data not understood.
  on_error,       ///< 3xx/4xx/5xx, or a transport failure.
  on_timeout,     ///< No answer within the step's timeout.
  cancelled,      ///< Cancelled by the engine, or the client shut down.
};

/// "next_applet", "external_flow", "default", "on_error", "on_timeout", "cancelled".
inline const char* to_string(Route r) noexcept {
  switch (r) {
    case Route::next_applet: return "next_applet";
    case Route::external_flow: return "external_flow";
    case Route::default_next: return "default";
    case Route::on_error: return "on_error";
    case Route::on_timeout: return "on_timeout";
    case Route::cancelled: return "cancelled";
  }
  return "unknown";
}

/// One request's result, delivered exactly once to the execute() callback.
struct Outcome {
  std::uint64_t request_id = 0;  ///< Same id as the RequestHandle's.
  Route route = Route::default_next;
  /// The applet name or flow URL the call continues at. For on_error and
  /// on_timeout it is already resolved through the fallback chain
  /// (on_timeout -> on_error -> default_next), so it is never empty except
  /// for Route::cancelled.
  std::string target;
  /// What happened, for a person: "answer names applet 'vip-connect'",
  /// "HTTP 503", "no answer within 15000 ms", "connection refused".
  std::string reason;
  /// Empty when the server answered and the answer was understood.
  std::error_code error;
  int http_status = 0;  ///< The final HTTP status, 0 when none arrived.
  /// String variables handed back by a JSON answer's "variables" object.
  std::map<std::string, std::string> variables;
  /// From execute() to this outcome, including queueing.
  std::chrono::microseconds elapsed{0};

  /// True when the server answered and the router understood it.
  bool ok() const noexcept { return !error; }
};

}  // namespace v0
}  // namespace passthru
