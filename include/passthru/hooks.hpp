// Callbacks that tell the engine how each request is getting on: started,
// still waiting, ended.
#pragma once

#include <passthru/outcome.hpp>
#include <passthru/step_config.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace passthru {
inline namespace v0 {

/// One request as the hooks see it. Secrets (StepOptions::secret_names,
/// Authorization, signatures, URL user-info) are already replaced by "***".
struct RequestInfo {
  std::uint64_t request_id = 0;  ///< Same id as the RequestHandle's and the Outcome's.
  std::string call_sid;
  std::string step;  ///< StepOptions::name, or the URL's host.
  Method method = Method::get;
  /// The URL requested, with a GET's query string. Empty if the request was
  /// never built (an invalid call context, or the client shut down first).
  std::string url;
  /// Header lines sent, in order, but for Host and Content-Length (libcurl
  /// adds them): "User-Agent: passthru/0.1.0", "Accept: ...", the step's
  /// headers, "Idempotency-Key: ...", "traceparent: ...". A signed request's
  /// Passthru-Id and Passthru-Timestamp are made as it is sent, after
  /// on_start, so they read "(made when sent)".
  std::vector<std::string> headers;
  std::string body;      ///< A POST's form body; empty for GET.
  std::string trace_id;  ///< The W3C trace id this request carries (Outcome::trace_id).
  /// The outcome's timeout, from execute(): StepOptions::timeout.
  std::chrono::milliseconds timeout{0};
};

/// Client-wide hooks (ClientOptions::hooks); each one is optional. They run
/// where outcome callbacks run (the driver thread, or ClientOptions::executor)
/// and, for one request, in this order: on_start, on_waiting, on_end, then
/// the request's own outcome callback (with an executor, if it runs tasks in
/// the order given). They must not block; an exception they throw is caught
/// and logged. The RequestInfo is only valid during the call.
struct RequestHooks {
  /// The request is built and about to be sent (or queued for a slot). Not
  /// called for a request refused before it was built.
  std::function<void(const RequestInfo& request)> on_start;
  /// The caller has waited `waiting_after` (from execute()) and no outcome
  /// has come yet: the moment to start hold music or a filler prompt, as the
  /// guide recommends, only when the wait is noticeable. Called at most once
  /// per request, never after on_end.
  std::function<void(const RequestInfo& request, std::chrono::milliseconds waited)> on_waiting;
  /// 0 (the default): on_waiting is never called. Not negative. A step whose
  /// timeout is not longer than this never calls it either.
  std::chrono::milliseconds waiting_after{0};
  /// The outcome is decided; called for every accepted request, just before
  /// its outcome callback, with the same Outcome.
  std::function<void(const RequestInfo& request, const Outcome& outcome)> on_end;
};

}  // namespace v0
}  // namespace passthru
