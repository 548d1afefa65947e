#include "curl_global.hpp"
#include "step_data.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace passthru {
inline namespace v0 {

ConfigError::ConfigError(std::string field, const std::string& message)
    : std::invalid_argument(fmt::format("passthru: invalid step config: {}: {}", field, message)),
      field_(std::move(field)) {}

namespace {

// A caller is on the line: a longer wait is a configuration mistake (and a
// deadline of milliseconds::max() would overflow the clock).
constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(1);

struct UrlHandle {
  CURLU* url = curl_url();
  ~UrlHandle() { curl_url_cleanup(url); }
  std::string get(CURLUPart part) const {
    char* value = nullptr;
    if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) return {};
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
    if (header.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      throw ConfigError(field + ".value", "must not contain CR, LF or NUL");
    }
    lines.push_back(header.name + ": " + header.value);
  }
  const bool has_accept = std::any_of(headers.begin(), headers.end(),
                                      [](const Header& header) { return lower(header.name) == "accept"; });
  if (!has_accept) lines.emplace_back("Accept: text/plain, application/json;q=0.9, */*;q=0.1");
}

void validate_names(const std::vector<std::string>& names, const char* field) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) throw ConfigError(fmt::format("{}[{}]", field, i), "must not be empty");
  }
}

}  // namespace

StepConfig::StepConfig(std::shared_ptr<const detail::StepData> data) noexcept : data_(std::move(data)) {}

const StepOptions& StepConfig::options() const noexcept { return data_->options; }

StepConfig StepConfig::build(StepOptions options) {
  detail::ensure_curl_global_init();
  const std::string& raw = options.url;
  if (raw.empty()) throw ConfigError("url", "is required");
  for (unsigned char c : raw) {
    if (c <= 0x20 || c == 0x7F) throw ConfigError("url", "must not contain spaces or control characters");
  }
  // libcurl reads "https:///path" as host "path": refuse an empty authority
  // before it gets the chance.
  if (const auto authority = raw.find("://");
      authority != std::string::npos && (authority + 3 == raw.size() || raw[authority + 3] == '/')) {
    throw ConfigError("url", fmt::format("'{}' has no host", raw));
  }
  UrlHandle url;
  if (url.url == nullptr) throw std::bad_alloc();
  if (const CURLUcode rc = curl_url_set(url.url, CURLUPART_URL, raw.c_str(), CURLU_NON_SUPPORT_SCHEME);
      rc != CURLUE_OK) {
    throw ConfigError("url", fmt::format("'{}' is not an absolute URL ({})", raw, curl_url_strerror(rc)));
  }
  const std::string scheme = lower(url.get(CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") {
    throw ConfigError("url", fmt::format("scheme '{}' is not allowed: use http or https", scheme));
  }
  // libcurl also accepts "http:/host" and "http:///host"; what is sent must
  // be exactly what the customer configured, so demand the canonical form.
  if (lower(raw.substr(0, scheme.size() + 3)) != scheme + "://") {
    throw ConfigError("url", fmt::format("'{}' must start with {}://", raw, scheme));
  }
  std::string host = url.get(CURLUPART_HOST);
  if (host.empty()) throw ConfigError("url", "has no host");
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

  std::vector<std::string> header_lines;
  validate_headers(options.headers, header_lines);

  const std::string port = url.get(CURLUPART_PORT);
  std::string authority = port.empty() ? host : host + ":" + port;
  std::string base_url = raw.substr(0, raw.find('#'));
  std::string path = url.get(CURLUPART_PATH);
  std::string label = options.name.empty() ? host : options.name;
  const bool has_idempotency_key =
      std::any_of(options.headers.begin(), options.headers.end(),
                  [](const Header& h) { return lower(h.name) == "idempotency-key"; });
  ResponseRouter router(options.routes);
  auto data = std::make_shared<detail::StepData>(
      detail::StepData{std::move(options), std::move(base_url), std::move(authority), std::move(path),
                       std::move(label), std::move(router), std::move(header_lines), has_idempotency_key});
  return StepConfig(std::move(data));
}

}  // namespace v0
}  // namespace passthru
