// Signed requests: how a step signs each request, and how the customer's
// server checks one.
//
// A step with StepOptions::signing_keys adds three headers to every request:
//
//   Passthru-Id:        32 hex digits, unique per request sent (a verifier
//                       accepts 1 to 128 hex digits and '-')
//   Passthru-Timestamp: seconds since the Unix epoch when it was sent
//   Passthru-Signature: "v1,<base64 HMAC-SHA256>", one per key, space-separated
//
// The HMAC-SHA256 is computed with the key over the canonical form, six
// lines joined by "\n" (no trailing newline):
//
//   v1
//   <Passthru-Id>
//   <Passthru-Timestamp>
//   <method: GET or POST>
//   <URL: scheme://host[:port]/path?query exactly as sent, without user-info or fragment>
//   <lower-case hex SHA-256 of the body (of the empty string for GET)>
//
// The URL is not rebuilt from parsed parts: the server must use its public
// origin as configured in the step ("https://crm.example.com") followed by
// the request target exactly as received ("/hook?CallSid=..."), never the
// Host or X-Forwarded-* headers of a proxy. docs/SECURITY.md has a worked
// example.
#pragma once

#include <passthru/export.hpp>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace passthru {
inline namespace v0 {

/// Header names of a signed request.
inline constexpr const char* kSignatureIdHeader = "Passthru-Id";
inline constexpr const char* kSignatureTimestampHeader = "Passthru-Timestamp";
inline constexpr const char* kSignatureHeader = "Passthru-Signature";

/// A request as the customer's server received it.
struct SignedRequest {
  std::string_view method;     ///< "GET" or "POST".
  std::string_view url;        ///< Public origin + request target, as described above.
  std::string_view body;       ///< Raw body bytes (empty for GET).
  std::string_view id;         ///< Value of Passthru-Id.
  std::string_view timestamp;  ///< Value of Passthru-Timestamp.
  std::string_view signature;  ///< Value of Passthru-Signature.
};

/// The result of verify_signature().
enum class SignatureStatus {
  valid,           ///< A signature matches one of the keys, within the window.
  missing,         ///< A signature header is absent (empty).
  malformed,       ///< A header is not in the documented form.
  outside_window,  ///< The timestamp is further from now than the tolerance.
  mismatch,        ///< No signature matches any key: tampered, or a wrong key.
};

/// "valid", "missing", "malformed", "outside window", "mismatch".
PASSTHRU_API const char* to_string(SignatureStatus status) noexcept;

/// How verify_signature() judges a request.
struct VerifyOptions {
  /// Keys accepted; during a rotation, the old and the new one.
  std::vector<std::string> keys;
  /// Largest accepted distance between the timestamp and now, either way.
  std::chrono::seconds tolerance{300};
  /// The time to judge against. Default (epoch): the system clock's now.
  std::chrono::system_clock::time_point now{};
};

/// Checks a request's signature in constant time per key. It does not detect
/// a replay inside the window: pair it with ReplayGuard.
PASSTHRU_API SignatureStatus verify_signature(const SignedRequest& request, const VerifyOptions& options);

/// The canonical form a request's signature covers (see above).
PASSTHRU_API std::string canonical_form(std::string_view method, std::string_view url, std::string_view id,
                                        std::string_view timestamp, std::string_view body);

/// "v1,<base64 HMAC-SHA256(key, canonical)>": one entry of Passthru-Signature.
PASSTHRU_API std::string sign_canonical(std::string_view key, std::string_view canonical);

/// Remembers the Passthru-Id of every verified request for the replay
/// window, so the same signed request sent twice is refused the second time.
/// Thread-safe. Memory is bounded by the requests of one window.
class PASSTHRU_API ReplayGuard {
 public:
  /// `window` should be at least twice VerifyOptions::tolerance.
  explicit ReplayGuard(std::chrono::seconds window = std::chrono::seconds(600));

  /// True the first time `id` is seen within the window, false afterwards.
  bool first_use(std::string_view id,
                 std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  /// Ids currently remembered.
  std::size_t size() const;

 private:
  std::chrono::seconds window_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::chrono::system_clock::time_point> seen_;
  std::chrono::system_clock::time_point next_sweep_{};
};

}  // namespace v0
}  // namespace passthru
