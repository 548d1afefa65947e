#include "curl_global.hpp"
#include "destination_guard.hpp"
#include "redact.hpp"
#include "signing.hpp"
#include "step_data.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace passthru {
inline namespace v0 {

ConfigError::ConfigError(std::string field, const std::string& message)
    : std::invalid_argument(fmt::format("passthru: invalid step config: {}: {}", field, message)),
      field_(std::move(field)) {}

namespace {

using detail::base64;
using detail::contains_name;
using detail::IpAddress;
using detail::IpNetwork;
using detail::kMaxHeaderValueBytes;

// A caller is on the line: a longer wait is a configuration mistake (and a
// deadline of milliseconds::max() would overflow the clock).
constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(1);

struct UrlHandle {
  CURLU* url = curl_url();
  ~UrlHandle() { curl_url_cleanup(url); }
  std::string get(CURLUPart part, unsigned int flags = 0) const {
    char* value = nullptr;
    if (curl_url_get(url, part, &value, flags) != CURLUE_OK || value == nullptr) return {};
    std::string out(value);
    curl_free(value);
    return out;
  }
};

bool is_token_char(unsigned char c) {
  return std::isalnum(c) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

void validate_headers(const std::vector<Header>& headers, std::vector<std::string>& lines) {
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const Header& header = headers[i];
    const std::string field = fmt::format("headers[{}]", i);
    if (header.name.empty()) throw ConfigError(field + ".name", "must not be empty");
    for (unsigned char c : header.name) {
      if (!is_token_char(c)) {
        throw ConfigError(field + ".name", fmt::format("'{}' is not a valid header name", header.name));
      }
    }
    const std::string name = lower(header.name);
    if (name == "content-length" || name == "transfer-encoding" || name == "content-type" || name == "host") {
      throw ConfigError(field + ".name", fmt::format("'{}' is set by the library", header.name));
    }
    // A fixed trace context would put every call of the step in one trace.
    if (name == "traceparent" || name == "tracestate") {
      throw ConfigError(
          field + ".name",
          fmt::format("'{}' is set per call: use CallContext::traceparent and tracestate", header.name));
    }
    // RFC 9110 field values: visible characters, space, tab and obs-text.
    if (header.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      throw ConfigError(field + ".value", "must not contain CR, LF or NUL");
    }
    for (unsigned char c : header.value) {
      if ((c < 0x20 && c != '\t') || c == 0x7F) {
        throw ConfigError(field + ".value", fmt::format("must not contain control characters (0x{:02x})", c));
      }
    }
    if (header.value.size() > kMaxHeaderValueBytes) {
      throw ConfigError(field + ".value", fmt::format("is {} bytes, over the limit of {}",
                                                      header.value.size(), kMaxHeaderValueBytes));
    }
    lines.push_back(header.name + ": " + header.value);
  }
  const bool has_accept = std::any_of(headers.begin(), headers.end(),
                                      [](const Header& header) { return lower(header.name) == "accept"; });
  if (!has_accept) lines.emplace_back("Accept: text/plain, application/json;q=0.9, */*;q=0.1");
}

bool is_secret_header(std::string_view name, const std::vector<std::string>& secret_names) {
  static const std::vector<std::string> always = {"authorization", "proxy-authorization", "cookie"};
  return contains_name(always, name) || contains_name(secret_names, name);
}

// Loopback by name or literal address: the only hosts plain http:// may
// reach without StepOptions::allow_plain_http.
bool is_loopback_host(std::string host) {
  host = lower(std::move(host));
  if (host == "localhost") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  IpAddress address;
  if (!IpAddress::parse(host, address)) return false;
  static IpNetwork v4_loopback;
  static IpNetwork v6_loopback;
  static const bool parsed =
      IpNetwork::parse("127.0.0.0/8", v4_loopback) && IpNetwork::parse("::1/128", v6_loopback);
  return parsed && (v4_loopback.contains(address) || v6_loopback.contains(address));
}

void require_readable(const std::string& path, const char* field) {
  if (path.empty()) return;
  if (::access(path.c_str(), R_OK) != 0) {
    throw ConfigError(field, fmt::format("'{}' cannot be read", path));
  }
}

void validate_tls(const TlsOptions& tls) {
  require_readable(tls.ca_file, "tls.ca_file");
  require_readable(tls.ca_dir, "tls.ca_dir");
  require_readable(tls.client_cert_file, "tls.client_cert_file");
  require_readable(tls.client_key_file, "tls.client_key_file");
  if (!tls.client_key_file.empty() && tls.client_cert_file.empty()) {
    throw ConfigError("tls.client_key_file", "is set without tls.client_cert_file");
  }
  const std::string& pin = tls.pinned_public_key;
  if (pin.rfind("sha256//", 0) == 0) {
    // "sha256//<base64>;sha256//<base64>": 44 base64 characters per SHA-256.
    std::string_view rest = pin;
    while (!rest.empty()) {
      const auto semicolon = rest.find(';');
      const std::string_view entry = rest.substr(0, semicolon);
      rest = semicolon == std::string_view::npos ? std::string_view() : rest.substr(semicolon + 1);
      const bool well_formed =
          entry.rfind("sha256//", 0) == 0 && entry.size() == 8 + 44 &&
          std::all_of(entry.begin() + 8, entry.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '/' || c == '=';
          });
      if (!well_formed) {
        throw ConfigError("tls.pinned_public_key",
                          "must be \"sha256//<base64 of 32 bytes>\" entries joined by ';', or a key file");
      }
    }
  } else {
    require_readable(pin, "tls.pinned_public_key");
  }
}

// HTTP/2 goes over TLS only: h2c (prior knowledge) would do for http://, but
// libcurl 7.88, Debian 12's, fails every request after the first on a reused
// h2c connection with "Error in the HTTP2 framing layer" (curl #10634, fixed
// in 8.0.0).
void validate_http_version(HttpVersion version, const std::string& scheme) {
  if (version == HttpVersion::automatic || version == HttpVersion::http1_1) return;
  if (version != HttpVersion::http2) {
    throw ConfigError("http_version", fmt::format("{} is not an HttpVersion", static_cast<int>(version)));
  }
  if (scheme != "https") {
    throw ConfigError("http_version",
                      "HTTP/2 is offered over https:// only: use automatic or http1_1 for http://");
  }
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  if ((curl->features & CURL_VERSION_HTTP2) == 0) {
    throw ConfigError("http_version",
                      fmt::format("the libcurl in use ({}) was built without HTTP/2", curl->version));
  }
}

void validate_names(const std::vector<std::string>& names, const char* field) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) throw ConfigError(fmt::format("{}[{}]", field, i), "must not be empty");
  }
}

struct UrlParts {
  std::string scheme;
  std::string base_url;
  std::string signed_url;
  std::string authority;
  std::string path;
  std::string host;
  std::string origin;
  std::string fragment;  // never sent; connection overrides when it holds a '='
  std::vector<std::string> secrets;
};

// Validates one of a step's URLs (`field`: "url" or "fallback_url") and
// returns what is sent and shown for it.
UrlParts parse_step_url(const std::string& raw, const char* field, const StepOptions& options) {
  using namespace detail;
  // Error messages show the URL without its user-info or secret values.
  const std::string shown = redact_url(raw, options.secret_names, /*malformed=*/true);
  if (raw.empty()) throw ConfigError(field, "is required");
  if (raw.size() > kMaxUrlBytes) {
    throw ConfigError(field, fmt::format("is {} bytes, over the limit of {}", raw.size(), kMaxUrlBytes));
  }
  for (unsigned char c : raw) {
    if (c <= 0x20 || c == 0x7F) throw ConfigError(field, "must not contain spaces or control characters");
  }
  // libcurl reads "https:///path" as host "path": refuse an empty authority
  // before it gets the chance.
  if (const auto authority = raw.find("://");
      authority != std::string::npos && (authority + 3 == raw.size() || raw[authority + 3] == '/')) {
    throw ConfigError(field, fmt::format("'{}' has no host", shown));
  }
  UrlHandle url;
  if (url.url == nullptr) throw std::bad_alloc();
  if (const CURLUcode rc = curl_url_set(url.url, CURLUPART_URL, raw.c_str(), CURLU_NON_SUPPORT_SCHEME);
      rc != CURLUE_OK) {
    throw ConfigError(field, fmt::format("'{}' is not an absolute URL ({})", shown, curl_url_strerror(rc)));
  }
  const std::string scheme = lower(url.get(CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") {
    throw ConfigError(field, fmt::format("scheme '{}' is not allowed: use http or https", scheme));
  }
  // libcurl also accepts "http:/host" and "http:///host"; what is sent must
  // be exactly what the customer configured, so demand the canonical form.
  if (lower(raw.substr(0, scheme.size() + 3)) != scheme + "://") {
    throw ConfigError(field, fmt::format("'{}' must start with {}://", shown, scheme));
  }
  std::string host = url.get(CURLUPART_HOST);
  if (host.empty()) throw ConfigError(field, "has no host");
  if (scheme == "http" && !options.allow_plain_http && !is_loopback_host(host)) {
    throw ConfigError(field, fmt::format("plain http:// to '{}' would send the call's data unencrypted: use "
                                         "https://, or set StepOptions::allow_plain_http = true for a "
                                         "trusted network",
                                         host));
  }
  UrlParts parts;
  parts.scheme = scheme;
  parts.secrets = url_secrets(raw, options.secret_names);
  // libcurl turns URL user-info into "Authorization: Basic <base64>".
  if (const std::string user = url.get(CURLUPART_USER, CURLU_URLDECODE); !user.empty()) {
    const std::string password = url.get(CURLUPART_PASSWORD, CURLU_URLDECODE);
    parts.secrets.push_back(user + ":" + password);
    parts.secrets.push_back(base64(user + ":" + password));
    parts.secrets.push_back(password.empty() ? user : password);
  }
  // What is sent is libcurl's normalised form of the URL (dot segments
  // removed, "/" for an empty path), so the URL a signature covers is
  // exactly the one on the wire.
  const std::string port = url.get(CURLUPART_PORT);
  std::string authority = port.empty() ? host : host + ":" + port;
  parts.fragment = url.get(CURLUPART_FRAGMENT);
  curl_url_set(url.url, CURLUPART_FRAGMENT, nullptr, 0);
  std::string base_url = url.get(CURLUPART_URL);
  curl_url_set(url.url, CURLUPART_USER, nullptr, 0);
  curl_url_set(url.url, CURLUPART_PASSWORD, nullptr, 0);
  curl_url_set(url.url, CURLUPART_OPTIONS, nullptr, 0);
  std::string signed_url = url.get(CURLUPART_URL);
  std::string path = url.get(CURLUPART_PATH);
  std::string origin =
      scheme + "://" + lower(host) + ":" + (port.empty() ? (scheme == "https" ? "443" : "80") : port);
  parts.base_url = std::move(base_url);
  parts.signed_url = std::move(signed_url);
  parts.authority = std::move(authority);
  parts.path = std::move(path);
  parts.host = std::move(host);
  parts.origin = std::move(origin);
  return parts;
}

// "a&b&" is "a", "b" and "": an empty item is refused, not skipped.
std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> items;
  for (;;) {
    const auto at = text.find(separator);
    items.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return items;
    text.remove_prefix(at + 1);
  }
}

// A key's value as the fragment gave it, shortened for an error message.
std::string shown_value(std::string_view value) {
  constexpr std::size_t kShown = 32;
  return value.size() <= kShown ? std::string(value) : std::string(value.substr(0, kShown)) + "...";
}

// "#ct=2000": milliseconds, a whole number from `min` to `max`.
long long fragment_number(std::string_view key, std::string_view value, long long min, long long max) {
  const bool digits = !value.empty() && value.size() <= 10 &&
                      std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  long long number = 0;
  if (digits) {
    for (char c : value) number = number * 10 + (c - '0');
  }
  if (!digits || number < min || number > max) {
    throw ConfigError("url", fmt::format("#{}={}: must be a whole number from {} to {}", key,
                                         shown_value(value), min, max));
  }
  return number;
}

// The url's fragment as connection overrides ("#ct=2000&rt=5000&tt=8000&rc=2&rp=ct,5xx",
// as Twilio and Plivo read it), applied to `options`. A fragment without a
// '=' is an anchor, dropped as ever.
void apply_url_overrides(const std::string& fragment, StepOptions& options, detail::RetryAfterSend& retry) {
  using std::chrono::milliseconds;
  if (fragment.find('=') == std::string::npos) return;
  const long long max_ms = kMaxTimeout.count();
  std::vector<std::string_view> seen;
  for (const std::string_view item : split(fragment, '&')) {
    const auto equals = item.find('=');
    if (equals == std::string_view::npos) {
      throw ConfigError("url", fmt::format("#{}: connection overrides are key=value pairs joined by '&'",
                                           shown_value(item)));
    }
    const std::string_view key = item.substr(0, equals);
    const std::string_view value = item.substr(equals + 1);
    if (key != "ct" && key != "rt" && key != "tt" && key != "rc" && key != "rp") {
      throw ConfigError("url", fmt::format("#{}={}: unknown override '{}' (known: ct, rt, tt, rc, rp)",
                                           shown_value(key), shown_value(value), shown_value(key)));
    }
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      throw ConfigError("url", fmt::format("#{}={}: '{}' is given twice", key, shown_value(value), key));
    }
    seen.push_back(key);
    if (key == "ct") {
      options.connect_timeout = milliseconds(fragment_number(key, value, 1, max_ms));
    } else if (key == "rt") {
      options.read_timeout = milliseconds(fragment_number(key, value, 1, max_ms));
    } else if (key == "tt") {
      options.timeout = milliseconds(fragment_number(key, value, 1, max_ms));
    } else if (key == "rc") {
      options.retries = static_cast<int>(fragment_number(key, value, 0, detail::kMaxRetries));
    } else {
      for (const std::string_view policy : split(value, ',')) {
        if (policy == "ct") {
          // Failures before anything was sent: always retried.
        } else if (policy == "5xx") {
          retry.server_error = true;
        } else if (policy == "rt") {
          retry.timeout = true;
        } else if (policy == "all") {
          retry = {true, true, true};
          options.retry_after_send = true;
        } else if (policy == "4xx") {
          throw ConfigError("url", "#rp=4xx: a 4xx is the server's answer and is never retried");
        } else {
          throw ConfigError("url", fmt::format("#rp={}: unknown policy '{}' (known: ct, 5xx, rt, all)",
                                               shown_value(value), shown_value(policy)));
        }
      }
      if (retry.any() && options.method != Method::get) {
        throw ConfigError("url", fmt::format("#rp={}: retrying after the request was sent is only allowed "
                                             "with GET: a POST sent again may act twice",
                                             shown_value(value)));
      }
    }
  }
}

}  // namespace

StepConfig::StepConfig(std::shared_ptr<const detail::StepData> data) noexcept : data_(std::move(data)) {}

const StepOptions& StepConfig::options() const noexcept { return data_->options; }

StepConfig StepConfig::build(StepOptions options) {
  using namespace detail;
  ensure_curl_global_init();
  UrlParts primary = parse_step_url(options.url, "url", options);
  const std::string& scheme = primary.scheme;
  std::optional<UrlParts> fallback;
  if (!options.fallback_url.empty()) fallback = parse_step_url(options.fallback_url, "fallback_url", options);
  RetryAfterSend retry_after_send;
  apply_url_overrides(primary.fragment, options, retry_after_send);
  if (fallback && fallback->fragment.find('=') != std::string::npos) {
    throw ConfigError("fallback_url", "connection overrides (#ct=...) are read from url's fragment only");
  }
  if (options.timeout <= std::chrono::milliseconds::zero()) {
    throw ConfigError("timeout", fmt::format("must be positive, got {} ms", options.timeout.count()));
  }
  if (options.timeout > kMaxTimeout) {
    throw ConfigError("timeout", fmt::format("must be at most {} ms (one hour), got {} ms",
                                             kMaxTimeout.count(), options.timeout.count()));
  }
  if (options.routes.default_next.empty()) {
    throw ConfigError("routes.default_next", "is required: a call must always have somewhere to go");
  }
  validate_names(options.routes.known_applets, "routes.known_applets");
  validate_names(options.routes.external_flow_hosts, "routes.external_flow_hosts");
  if (options.max_answer_bytes == 0) throw ConfigError("max_answer_bytes", "must be positive");

  validate_tls(options.tls);
  if (options.max_redirects < 0 || options.max_redirects > kMaxRedirects) {
    throw ConfigError("max_redirects",
                      fmt::format("must be between 0 and {}, got {}", kMaxRedirects, options.max_redirects));
  }
  validate_http_version(options.http_version, scheme);
  if (fallback) {
    try {
      validate_http_version(options.http_version, fallback->scheme);
    } catch (const ConfigError& error) {
      throw ConfigError("fallback_url", error.what());
    }
    if (options.primary_timeout.count() < 0 || options.primary_timeout >= options.timeout) {
      throw ConfigError("primary_timeout",
                        fmt::format("must be 0 (half the timeout) or between 1 and {} ms, got {} ms",
                                    options.timeout.count() - 1, options.primary_timeout.count()));
    }
  }
  if (options.hedge_after.count() != 0) {
    if (!fallback) throw ConfigError("hedge_after", "needs a fallback_url to send the hedge to");
    if (options.hedge_after.count() < 0 || options.hedge_after >= options.timeout) {
      throw ConfigError("hedge_after", fmt::format("must be 0 (no hedging) or between 1 and {} ms, got {} ms",
                                                   options.timeout.count() - 1, options.hedge_after.count()));
    }
    if (options.primary_timeout.count() != 0) {
      throw ConfigError("hedge_after",
                        "and primary_timeout exclude each other: a hedged primary is never abandoned");
    }
  }
  if (options.retries < 0 || options.retries > kMaxRetries) {
    throw ConfigError("retries",
                      fmt::format("must be between 0 and {}, got {}", kMaxRetries, options.retries));
  }
  if (options.retry_after_send && options.method != Method::get) {
    throw ConfigError("retry_after_send",
                      "is only allowed with GET: a POST sent again may act twice on the customer's server");
  }
  if (options.retry_after_send) retry_after_send = {true, true, true};
  for (const auto& [field, value] : {std::pair{"connect_timeout", options.connect_timeout},
                                     std::pair{"read_timeout", options.read_timeout}}) {
    if (value.count() < 0 || value > kMaxTimeout) {
      throw ConfigError(field, fmt::format("must be 0 (none) or at most {} ms (one hour), got {} ms",
                                           kMaxTimeout.count(), value.count()));
    }
  }
  if (options.signing_keys.size() > kMaxSigningKeys) {
    throw ConfigError("signing_keys", fmt::format("holds {} keys: at most {} (the current key and the next)",
                                                  options.signing_keys.size(), kMaxSigningKeys));
  }
  for (std::size_t i = 0; i < options.signing_keys.size(); ++i) {
    if (options.signing_keys[i].size() < kMinSigningKeyBytes) {
      throw ConfigError(fmt::format("signing_keys[{}]", i),
                        fmt::format("must be at least {} bytes", kMinSigningKeyBytes));
    }
  }
  validate_names(options.secret_names, "secret_names");

  std::vector<std::string> header_lines;
  validate_headers(options.headers, header_lines);

  std::vector<std::string> secrets = primary.secrets;
  if (fallback) secrets.insert(secrets.end(), fallback->secrets.begin(), fallback->secrets.end());
  for (const Header& header : options.headers) {
    if (is_secret_header(header.name, options.secret_names)) {
      secrets.push_back(header.value);
      // "Bearer <token>", "Basic <base64>": the credential alone too.
      if (const auto space = header.value.find(' '); space != std::string::npos) {
        secrets.push_back(header.value.substr(space + 1));
      }
    }
  }
  for (const std::string& key : options.signing_keys) secrets.push_back(key);
  if (!options.tls.client_key_password.empty()) secrets.push_back(options.tls.client_key_password);

  std::string label = options.name.empty() ? primary.host : options.name;
  std::optional<EndpointUrl> fallback_endpoint;
  if (fallback) {
    fallback_endpoint =
        EndpointUrl{std::move(fallback->base_url), std::move(fallback->signed_url),
                    std::move(fallback->authority), std::move(fallback->path), std::move(fallback->origin)};
  }
  const bool has_idempotency_key =
      std::any_of(options.headers.begin(), options.headers.end(),
                  [](const Header& h) { return lower(h.name) == "idempotency-key"; });
  ResponseRouter router(options.routes);
  auto data = std::make_shared<StepData>(
      StepData{std::move(options), std::move(primary.base_url), std::move(primary.signed_url),
               std::move(primary.authority), std::move(primary.path), std::move(label),
               std::move(primary.origin), std::move(router), std::move(header_lines), has_idempotency_key,
               std::move(secrets), std::move(fallback_endpoint), retry_after_send});
  return StepConfig(std::move(data));
}

}  // namespace v0
}  // namespace passthru
