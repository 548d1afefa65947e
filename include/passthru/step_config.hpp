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

/// The lowest TLS version an https:// request accepts.
enum class TlsVersion { v1_2, v1_3 };

/// TLS settings of an https:// step. The defaults verify the server's
/// certificate chain and host name against the system's CA store and refuse
/// anything older than TLS 1.2, whatever the system's OpenSSL configuration
/// says. File paths are checked for readability when the step is built.
struct TlsOptions {
  TlsVersion min_version = TlsVersion::v1_2;  ///< TLS 1.2 by default; v1_3 refuses 1.2 too.
  std::string ca_file;                        ///< PEM bundle of trusted CAs. Empty: the system store.
  std::string ca_dir;                         ///< OpenSSL hashed directory of CAs (c_rehash). Empty: none.
  std::string client_cert_file;               ///< PEM client certificate for mutual TLS. Empty: none.
  std::string client_key_file;                ///< PEM key of client_cert_file. Empty: in client_cert_file.
  std::string client_key_password;            ///< Passphrase of the key, if encrypted. Never logged.
  /// Pins the server's public key: "sha256//<base64>" (several joined by ";")
  /// or the path of a PEM/DER public key file. Empty: no pin.
  std::string pinned_public_key;
  /// Check the certificate chain (verify_peer) and that the certificate
  /// names the URL's host (verify_host). Both on by default; turning one off
  /// is for a lab, never for production. A pinned key is checked either way.
  bool verify_peer = true;
  bool verify_host = true;
};

/// The HTTP version a step asks for. libcurl's connection reuse may still
/// send a request over a connection that speaks another version;
/// Outcome::http_version says which one answered.
enum class HttpVersion {
  /// HTTP/2 over https:// when the server offers it by ALPN, HTTP/1.1
  /// otherwise (and always for http://). Requests to one https origin that
  /// start together wait for its first connection to say whether it
  /// multiplexes, then share it; with a libcurl built without HTTP/2, HTTP/1.1.
  automatic,
  /// HTTP/1.1 only, one request per connection at a time: for a server that
  /// mishandles HTTP/2, or to open connections without waiting for the first.
  http1_1,
  /// As automatic, but StepConfig::build() refuses the step when the libcurl
  /// in use cannot do HTTP/2, or when the URL is http:// (no cleartext h2c).
  /// A server that does not offer h2 is still answered over HTTP/1.1: libcurl
  /// offers both by ALPN.
  http2,
};

/// Everything that configures one Passthru step, with its defaults.
/// Turn it into a StepConfig with StepConfig::build(), which validates it.
struct StepOptions {
  /// Required: absolute http:// or https:// URL. Its fragment is never sent;
  /// when it holds a '=' it is read as connection overrides, the convention
  /// of Twilio and Plivo: "#ct=2000&rt=5000&tt=8000&rc=2&rp=ct,5xx" sets
  /// connect_timeout, read_timeout, timeout (total) and retries, and which
  /// failures are retried (rp: ct, the default: before anything was sent;
  /// 5xx; rt: timed out after sending; all: as retry_after_send; all but ct
  /// GET only). Validated like the fields they set, and they win over them:
  /// StepConfig::options() shows the effective values.
  std::string url;
  Method method = Method::get;               ///< GET (query string) or POST (form body).
  std::chrono::milliseconds timeout{15000};  ///< From execute() to the outcome; > 0, <= 1 h.
  Routes routes;                             ///< Where each answer sends the call.
  std::vector<Header> headers;               ///< Extra headers sent with every request.
  bool quote_digits = false;                 ///< Send digits as `"1234"`, as Exotel does.
  std::size_t max_answer_bytes = 64 * 1024;  ///< Larger answers route to on-error; > 0.
  std::string name;                          ///< Label in logs; defaults to the URL's host.
  /// Fire and forget (the guide's call-logging use case): execute() gives
  /// its outcome at once, default_next with Outcome::background set, and the
  /// request goes on in the background within its timeout, its end seen by
  /// logs, metrics and RequestHooks::on_end only. At most
  /// ClientOptions::max_background run so; beyond that a request is dropped,
  /// not sent, and counted (StepMetrics::background_dropped).
  bool fire_and_forget = false;

  /// TLS settings for https:// URLs.
  TlsOptions tls;
  /// http:// is refused unless the host is loopback (localhost, 127.0.0.0/8,
  /// [::1]) or this is true: the call context would cross the network in clear.
  bool allow_plain_http = false;
  /// Redirects followed, at most 5. 0 (the default): a 3xx answer is not
  /// followed and routes to on-error. When followed, only https:// targets
  /// are accepted.
  int max_redirects = 0;
  /// HMAC-SHA256 keys that sign every request (see <passthru/signature.hpp>
  /// for the scheme). Empty: requests are not signed. One key, or two while
  /// rotating (each request then carries both signatures). At least 32 bytes
  /// each; never logged.
  std::vector<std::string> signing_keys;
  /// Names of query parameters (in the URL or the call's custom parameters)
  /// and headers whose values are secret: they never appear in logs, reasons
  /// or errors. Authorization, Proxy-Authorization and Cookie headers, URL
  /// user-info, signing keys and the TLS key password always are.
  std::vector<std::string> secret_names;
  /// HTTP/2 when the server offers it (the default), or HTTP/1.1 only.
  HttpVersion http_version = HttpVersion::automatic;

  /// A second URL for the same request, validated like `url` (same TLS,
  /// allow_plain_http and secret rules; signed for its own URL). Empty: none.
  /// When the primary fails (transport error, 5xx, or primary_timeout runs
  /// out), or its origin's circuit is open, the request goes here within what
  /// is left of `timeout`, with the same parameters and Idempotency-Key.
  std::string fallback_url;
  /// The primary's share of `timeout` when fallback_url is set: past it, its
  /// attempt is abandoned for the fallback. 0 (the default): half of timeout.
  /// Must be below timeout; ignored without a fallback_url.
  std::chrono::milliseconds primary_timeout{0};
  /// Hedging: when the primary has not answered after this long, the same
  /// request (same Idempotency-Key) goes to fallback_url too, and the first
  /// answer to route by (any 1xx-4xx, or 200) wins; the other request is
  /// cancelled, its connection closed. A 5xx or a failure of one leaves the
  /// other to go on. Not sent while max_in_flight or the fallback's
  /// max_per_origin is reached, or its circuit is open. 0 (the default): no
  /// hedging. Needs fallback_url; below timeout; instead of primary_timeout
  /// (the primary is never abandoned, only joined).
  std::chrono::milliseconds hedge_after{0};
  /// Attempts again at the same URL when one fails before any byte of the
  /// request was sent (connection refused, DNS failure), at most 5. Each
  /// waits a backoff first: equal jitter, between half and all of 50 ms
  /// doubled per retry (capped at 1 s), and none starts past the deadline.
  int retries = 0;
  /// Also retry a failure after the request was sent (5xx, reset, the
  /// primary's share or read_timeout running out). GET only: a POST may
  /// have had effects.
  bool retry_after_send = false;
  /// Each attempt's limit on connecting (DNS, TCP and TLS), primary or
  /// fallback, from the attempt's start. 0 (the default): only the deadline.
  /// Never past the deadline; at most 1 h. A connect that runs out is a
  /// failure before anything was sent, so `retries` retries it.
  std::chrono::milliseconds connect_timeout{0};
  /// Each attempt's limit on its answer: an attempt ends, timed out, at most
  /// connect_timeout + read_timeout after it started (read_timeout alone
  /// when connect_timeout is 0), never past the deadline. 0 (the default):
  /// only the deadline. At most 1 h. The request was sent, so only
  /// retry_after_send (or the fragment's rp=rt) retries it.
  std::chrono::milliseconds read_timeout{0};
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

  /// The options as given (after validation), with the overrides of the
  /// url's fragment applied: what the step runs with.
  const StepOptions& options() const noexcept;

  /// Internal representation; not part of the stable API.
  const detail::StepData& data() const noexcept { return *data_; }

 private:
  explicit StepConfig(std::shared_ptr<const detail::StepData> data) noexcept;
  std::shared_ptr<const detail::StepData> data_;
};

}  // namespace v0
}  // namespace passthru
