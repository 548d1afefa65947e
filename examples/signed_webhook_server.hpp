// The customer's side of signed Passthru requests, for a cpp-httplib server:
// copy this header into your server. Header-only; needs passthru and cpp-httplib.
//
//   httplib::Server server;
//   passthru_example::install_verified_handler(
//       server, "/passthru", {"https://crm.example.com", {key}},
//       [](const httplib::Request& req, httplib::Response& res) {
//         res.set_content("vip-connect", "text/plain");  // reached only by genuine, fresh requests
//       });
//
// Every request to the path is checked before the handler runs; a request that
// fails is answered 401 with a short reason ("mismatch", "replayed", ...) and
// never reaches the handler. The signature scheme is in <passthru/signature.hpp>.
#pragma once

#include <passthru/signature.hpp>

#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace passthru_example {

struct VerifierConfig {
  /// Scheme, host and port exactly as in the step's URL, no trailing slash:
  /// "https://crm.example.com", "http://127.0.0.1:8080". Configure it; never
  /// take it from the Host or X-Forwarded-* headers, which the sender controls.
  std::string public_origin;
  /// The step's signing keys: one, or the old and the new one while rotating.
  std::vector<std::string> keys;
  /// How far a request's timestamp may be from this server's clock.
  std::chrono::seconds tolerance{300};
};

/// Checks signed requests and remembers the ids of those it accepted, so the
/// same request sent twice is refused. Thread-safe.
class RequestVerifier {
 public:
  explicit RequestVerifier(VerifierConfig config)
      : config_(std::move(config)), seen_(2 * config_.tolerance) {}

  /// Empty when the request is genuine, fresh and seen for the first time;
  /// otherwise why it is refused.
  std::string check(const httplib::Request& req) {
    // The signed URL is the public origin followed by the request target
    // exactly as received (path and raw query), not re-encoded or decoded.
    const std::string url = config_.public_origin + req.target;
    const std::string id = req.get_header_value(passthru::kSignatureIdHeader);
    const std::string timestamp = req.get_header_value(passthru::kSignatureTimestampHeader);
    const std::string signature = req.get_header_value(passthru::kSignatureHeader);

    passthru::VerifyOptions options;
    options.keys = config_.keys;
    options.tolerance = config_.tolerance;
    const passthru::SignatureStatus status =
        passthru::verify_signature({req.method, url, req.body, id, timestamp, signature}, options);
    if (status != passthru::SignatureStatus::valid) return passthru::to_string(status);

    // Only a verified id is remembered: a forged request cannot burn a real one.
    if (!seen_.first_use(id)) return "replayed";
    return {};
  }

 private:
  VerifierConfig config_;
  passthru::ReplayGuard seen_;
};

using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

/// Serves GET and POST `path` (an httplib pattern) with `handler`, for
/// verified requests only; the others get 401 and the reason as text/plain.
inline void install_verified_handler(httplib::Server& server, const std::string& path, VerifierConfig config,
                                     Handler handler) {
  auto verifier = std::make_shared<RequestVerifier>(std::move(config));
  auto verified = [verifier, handler = std::move(handler)](const httplib::Request& req,
                                                           httplib::Response& res) {
    const std::string refused = verifier->check(req);
    if (!refused.empty()) {
      res.status = 401;
      res.set_content(refused, "text/plain");
      return;
    }
    handler(req, res);
  };
  server.Get(path, verified);
  server.Post(path, verified);
}

}  // namespace passthru_example
