// The single result every accepted request ends with.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <system_error>
#include <vector>

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

/// Which of a step's URLs an attempt went to (StepOptions::url or fallback_url).
enum class Endpoint { none, primary, fallback };

/// "none", "primary", "fallback".
inline const char* to_string(Endpoint e) noexcept {
  switch (e) {
    case Endpoint::none: return "none";
    case Endpoint::primary: return "primary";
    case Endpoint::fallback: return "fallback";
  }
  return "unknown";
}

/// One HTTP attempt of a request (StepOptions::retries, fallback_url).
struct Attempt {
  Endpoint endpoint = Endpoint::primary;
  bool hedged = false;                   ///< Sent alongside the primary (StepOptions::hedge_after).
  std::string host;                      ///< "crm.example.com:8443", as in log lines.
  std::chrono::microseconds started{0};  ///< From execute() to the attempt's start.
  std::chrono::microseconds elapsed{0};  ///< The attempt's own duration.
  int http_status = 0;                   ///< 0 when no answer arrived.
  std::error_code error;                 ///< Empty when it was answered and understood.
  std::string reason;                    ///< "HTTP 503", "connection refused (...)".
};

/// Where one request's time went. Phases follow each other; a phase that
/// did not happen (no DNS for a reused connection or an IP literal, no TLS
/// for http://, no answer) is 0.
struct Timings {
  std::chrono::microseconds queued{0};      ///< Waiting for a slot under ClientOptions::max_in_flight.
  std::chrono::microseconds dns{0};         ///< Name resolution.
  std::chrono::microseconds connect{0};     ///< TCP connect, after DNS.
  std::chrono::microseconds tls{0};         ///< TLS handshake, after connect.
  std::chrono::microseconds first_byte{0};  ///< From the request's start to the answer's first byte.
  std::chrono::microseconds transfer{0};    ///< From the request's start to its end (or its deadline).
};

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
  /// The phases of the request (timings.queued + timings.transfer ~ elapsed).
  Timings timings;
  /// HTTP attempts started for this outcome (attempt_log.size()): 0 when
  /// none was (an invalid call, a request cancelled or timed out while
  /// queued), more than 1 with StepOptions::retries or fallback_url.
  int attempts = 0;
  /// Every attempt, in order; timings and the fields below describe the last.
  std::vector<Attempt> attempt_log;
  /// The URL whose HTTP answer this outcome routes; Endpoint::none when no
  /// HTTP answer arrived.
  Endpoint answered_by = Endpoint::none;
  std::uint64_t bytes_sent = 0;      ///< Request head and body, as sent.
  std::uint64_t bytes_received = 0;  ///< Answer heads and body, as received.
  /// The address connected to, "127.0.0.1:8080" or "[::1]:8443"; empty when
  /// no connection was attempted.
  std::string remote_address;
  /// True when the request went over a kept-alive connection (for HTTP/2,
  /// also one another request was using at the same time).
  bool connection_reused = false;
  /// The HTTP version of the answer: 11 for HTTP/1.1, 20 for HTTP/2, 10 for
  /// HTTP/1.0; 0 when no answer arrived.
  int http_version = 0;
  /// The W3C trace id (32 lower-case hex digits) the request carried: the
  /// call's own (CallContext::traceparent) or a new one. For a request the
  /// client never started (destroyed first), the call's own or empty.
  std::string trace_id;
  /// The span id (16 hex digits) sent as the parent id in `traceparent`: the
  /// server's span for this request is its child. Empty when never started.
  std::string span_id;
  /// True for the outcome a fire-and-forget step (StepOptions::fire_and_forget)
  /// gives at once: route default_next while the request goes on in the
  /// background (or, with Errc::background_full, was dropped unsent).
  bool background = false;
  /// The answer's Content-Type, as sent; empty when none.
  std::string content_type;
  /// The answer's body as received (at most StepOptions::max_answer_bytes),
  /// for engines and tools that want to show it. Not redacted: it is the
  /// customer's data, so log it with care.
  std::string answer;

  /// True when the server answered and the router understood it.
  bool ok() const noexcept { return !error; }
};

}  // namespace v0
}  // namespace passthru
