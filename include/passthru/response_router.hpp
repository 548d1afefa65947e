// The pure mapping from an HTTP exchange's result to an Outcome.
#pragma once

#include <passthru/export.hpp>
#include <passthru/outcome.hpp>
#include <passthru/step_config.hpp>

#include <string>
#include <system_error>
#include <unordered_set>

namespace passthru {
inline namespace v0 {

/// How the transport ended, judged before any HTTP status: libcurl can
/// report a status such as 200 for a transfer that then failed.
enum class Transport {
  completed,  ///< A whole HTTP answer arrived.
  timed_out,  ///< The deadline passed first.
  failed,     ///< The transport failed; see HttpResult::error and detail.
  cancelled,  ///< Cancelled or shut down before an answer.
};

/// What the network produced for one request: the router's only input.
struct HttpResult {
  Transport transport = Transport::completed;
  std::error_code error;     ///< Set when transport != completed.
  std::string detail;        ///< Transport detail for the reason ("connection refused").
  int status = 0;            ///< HTTP status, 0 when none arrived.
  std::string content_type;  ///< Content-Type header value, may be empty.
  std::string body;          ///< The answer body (already capped).
  std::string location;      ///< Location header of a 3xx answer.
};

/// Maps an HttpResult to an Outcome following the routing rules (README,
/// "Routing"). Pure: no I/O, clocks or globals, so it can be tested alone.
class PASSTHRU_API ResponseRouter {
 public:
  explicit ResponseRouter(Routes routes);

  /// The outcome for `result`. Outcome::request_id and elapsed are left 0.
  Outcome route(const HttpResult& result) const;

  const Routes& routes() const noexcept { return routes_; }

 private:
  Outcome answer_to(const std::string& answer, Outcome out) const;
  Outcome route_json(const HttpResult& result, Outcome out) const;
  Outcome fallback(Route route, std::error_code error, std::string reason, int status) const;
  bool host_allowed(const std::string& host) const;

  Routes routes_;
  std::unordered_set<std::string> known_;
};

}  // namespace v0
}  // namespace passthru
