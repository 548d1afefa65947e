// One Passthru applet's settings, validated once when built.
#pragma once

#include <passthru/export.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace passthru {
inline namespace v0 {

/// The HTTP method of the step.
enum class Method { get, post };

/// "GET" or "POST".
inline const char* to_string(Method m) noexcept { return m == Method::get ? "GET" : "POST"; }

/// Where the call may go next. Targets are opaque to the library: applet
/// names or ids as the engine's flow knows them.
struct Routes {
  /// Required. The next applet when the server answers 2xx with an empty
  /// body, or with data the router cannot understand.
  std::string default_next;
  /// Where a 3xx/4xx/5xx answer or a transport failure goes. Empty: default_next.
  std::string on_error;
  /// Where a timeout goes. Empty: on_error, then default_next.
  std::string on_timeout;
  /// Applet names a 2xx answer may name. Empty: any well-formed name (1 to 256
  /// letters, digits or -_.:@+/~#=%?&!$*,;) is accepted and the engine resolves it.
  std::vector<std::string> known_applets;
  /// Hosts a flow URL in an answer may point at ("flows.example.com", or
  /// "*.example.com" for any subdomain). Empty: any http(s) host.
  std::vector<std::string> external_flow_hosts;
};

/// An extra request header. Names must be RFC 9110 tokens; values must not
/// contain CR, LF or NUL. Content-Type, Content-Length, Transfer-Encoding and
/// Host are set by the library and refused here.
struct Header {
  std::string name;
  std::string value;
};

/// Everything that configures one Passthru step, with its defaults.
/// Turn it into a StepConfig with StepConfig::build(), which validates it.
struct StepOptions {
  std::string url;                           ///< Required: absolute http:// or https:// URL.
  Method method = Method::get;               ///< GET (query string) or POST (form body).
  std::chrono::milliseconds timeout{15000};  ///< From execute() to the outcome; > 0, <= 1 h.
  Routes routes;                             ///< Where each answer sends the call.
  std::vector<Header> headers;               ///< Extra headers sent with every request.
  bool quote_digits = false;                 ///< Send digits as `"1234"`, as Exotel does.
  std::size_t max_answer_bytes = 64 * 1024;  ///< Larger answers route to on-error; > 0.
  std::string name;                          ///< Label in logs; defaults to the URL's host.
};

/// Thrown by StepConfig::build() for an invalid StepOptions. what() names
/// the field ("url", "timeout", "headers[2].value", "routes.default_next", ...).
class PASSTHRU_API ConfigError : public std::invalid_argument {
 public:
  ConfigError(std::string field, const std::string& message);
  /// The offending field, e.g. "headers[0].name".
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

namespace detail {
struct StepData;
}

/// A validated, immutable step configuration. Cheap to copy (shared), safe
/// to use from any thread, and build once per flow, not per call.
class PASSTHRU_API StepConfig {
 public:
  /// Validates `options`; throws ConfigError naming the first bad field.
  static StepConfig build(StepOptions options);

  /// The options as given (after validation).
  const StepOptions& options() const noexcept;

  /// Internal representation; not part of the stable API.
  const detail::StepData& data() const noexcept { return *data_; }

 private:
  explicit StepConfig(std::shared_ptr<const detail::StepData> data) noexcept;
  std::shared_ptr<const detail::StepData> data_;
};

}  // namespace v0
}  // namespace passthru
