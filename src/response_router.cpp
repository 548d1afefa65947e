#include <passthru/error.hpp>
#include <passthru/response_router.hpp>

#include <curl/curl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>

namespace passthru {
inline namespace v0 {
namespace {

constexpr std::size_t kMaxNameLength = 256;
constexpr std::size_t kMaxQuoted = 60;
constexpr std::size_t kMaxUrlLength = 2048;

enum class BodyKind { plain, json, other };

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

BodyKind kind_of(std::string_view content_type) {
  const std::string media = lower(trim(content_type.substr(0, content_type.find(';'))));
  if (media.empty() || media == "application/plain" || media.rfind("text/", 0) == 0) return BodyKind::plain;
  if (media == "application/json" || (media.size() > 5 && media.compare(media.size() - 5, 5, "+json") == 0)) {
    return BodyKind::json;
  }
  return BodyKind::other;
}

// Enough of an answer to show in a reason without flooding a log line.
std::string excerpt(std::string_view text) {
  const std::string_view shown = text.substr(0, kMaxQuoted);
  std::string out;
  out.reserve(shown.size() + 5);
  out.push_back('\'');
  for (char c : shown) out.push_back((static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? '?' : c);
  if (text.size() > kMaxQuoted) out.append("...");
  out.push_back('\'');
  return out;
}

bool is_well_formed_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  // Letters, digits and the punctuation applet names and ids use; never
  // markup or quotes, so a one-line HTML page or JSON text is not a name.
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("-_.:@+/~#=%?&!$*,;").find(c) != std::string_view::npos;
  });
}

// The host of an absolute http(s) URL, or nothing when `text` is not one.
std::optional<std::string> flow_url_host(std::string_view text) {
  const std::string lowered = lower(text.substr(0, 8));
  if (lowered.rfind("http://", 0) != 0 && lowered.rfind("https://", 0) != 0) return std::nullopt;
  if (text.size() > kMaxUrlLength ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7F; })) {
    return std::nullopt;
  }
  CURLU* url = curl_url();
  if (url == nullptr) return std::nullopt;
  std::optional<std::string> host;
  const std::string copy(text);
  if (curl_url_set(url, CURLUPART_URL, copy.c_str(), 0) == CURLUE_OK) {
    char* value = nullptr;
    if (curl_url_get(url, CURLUPART_HOST, &value, 0) == CURLUE_OK && value != nullptr && *value != '\0') {
      host = lower(value);
    }
    curl_free(value);
  }
  curl_url_cleanup(url);
  return host;
}

}  // namespace

ResponseRouter::ResponseRouter(Routes routes) : routes_(std::move(routes)) {
  known_.insert(routes_.known_applets.begin(), routes_.known_applets.end());
}

Outcome ResponseRouter::fallback(Route route, std::error_code error, std::string reason, int status) const {
  Outcome out;
  out.route = route;
  out.error = error;
  out.reason = std::move(reason);
  out.http_status = status;
  if (route == Route::on_timeout && !routes_.on_timeout.empty()) {
    out.target = routes_.on_timeout;
  } else if (route == Route::on_timeout || route == Route::on_error) {
    out.target = routes_.on_error.empty() ? routes_.default_next : routes_.on_error;
  } else if (route == Route::default_next) {
    out.target = routes_.default_next;
  }
  return out;
}

bool ResponseRouter::host_allowed(const std::string& host) const {
  if (routes_.external_flow_hosts.empty()) return true;
  for (const std::string& allowed : routes_.external_flow_hosts) {
    const std::string pattern = lower(allowed);
    if (pattern.rfind("*.", 0) == 0) {
      const std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.com"
      if (host.size() > suffix.size() &&
          host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return true;
      }
    } else if (host == pattern) {
      return true;
    }
  }
  return false;
}

Outcome ResponseRouter::answer_to(const std::string& answer, Outcome out) const {
  const std::string_view name = trim(answer);
  if (name.empty()) {
    out.route = Route::default_next;
    out.target = routes_.default_next;
    out.reason = out.reason.empty() ? "empty answer" : out.reason;
    return out;
  }
  const std::string key(name);
  if (known_.count(key) != 0) {
    out.route = Route::next_applet;
    out.target = key;
    out.reason = "answer names applet " + excerpt(name);
    return out;
  }
  if (const auto host = flow_url_host(name)) {
    if (!host_allowed(*host)) {
      Outcome denied =
          fallback(Route::default_next, Errc::external_flow_denied,
                   fmt::format("flow URL host '{}' is not in external_flow_hosts", *host), out.http_status);
      denied.variables = std::move(out.variables);
      return denied;
    }
    out.route = Route::external_flow;
    out.target = key;
    out.reason = "answer names flow URL " + excerpt(name);
    return out;
  }
  const bool is_url_like = name.find("://") != std::string_view::npos;
  if (known_.empty() && !is_url_like && is_well_formed_name(name)) {
    out.route = Route::next_applet;
    out.target = key;
    out.reason = "answer names applet " + excerpt(name);
    return out;
  }
  Outcome unexpected = fallback(
      Route::default_next, Errc::unexpected_answer,
      fmt::format("unexpected answer: {} is not a known applet or flow URL", excerpt(name)), out.http_status);
  return unexpected;
}

Outcome ResponseRouter::route_json(const HttpResult& result, Outcome out) const {
  const auto unexpected = [&](std::string why) {
    return fallback(Route::default_next, Errc::unexpected_answer, "unexpected answer: " + why, result.status);
  };
  const nlohmann::json doc = nlohmann::json::parse(result.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return unexpected("invalid JSON");
  if (!doc.is_object()) return unexpected("JSON answer is not an object");
  if (const auto vars = doc.find("variables"); vars != doc.end() && !vars->is_null()) {
    if (!vars->is_object()) return unexpected("\"variables\" is not an object");
    for (const auto& item : vars->items()) {
      const std::string& name = item.key();
      if (!item.value().is_string()) return unexpected(fmt::format("variable '{}' is not a string", name));
      out.variables.emplace(name, item.value().get<std::string>());
    }
  }
  const auto next = doc.find("next");
  if (next == doc.end() || next->is_null()) return answer_to({}, std::move(out));
  if (!next->is_string()) return unexpected("\"next\" is not a string");
  return answer_to(next->get<std::string>(), std::move(out));
}

Outcome ResponseRouter::route(const HttpResult& result) const {
  switch (result.transport) {
    case Transport::cancelled: {
      Outcome out = fallback(Route::cancelled, result.error ? result.error : Errc::cancelled,
                             result.detail.empty() ? "cancelled" : result.detail, result.status);
      return out;
    }
    case Transport::timed_out:
      return fallback(Route::on_timeout, result.error ? result.error : Errc::timed_out,
                      result.detail.empty() ? "no answer within the timeout" : result.detail, result.status);
    case Transport::failed:
      return fallback(Route::on_error, result.error ? result.error : Errc::transport_failed,
                      result.detail.empty() ? "transport failure" : result.detail, result.status);
    case Transport::completed: break;
  }
  const int status = result.status;
  if (status < 200 || status > 299) {
    std::string reason = fmt::format("HTTP {}", status);
    if (status >= 300 && status <= 399) {
      reason += result.location.empty()
                    ? " (redirect not followed)"
                    : fmt::format(" (redirect to {} not followed)", excerpt(result.location));
    }
    return fallback(Route::on_error, Errc::http_status, std::move(reason), status);
  }
  Outcome out;
  out.http_status = status;
  switch (kind_of(result.content_type)) {
    case BodyKind::plain: return answer_to(result.body, std::move(out));
    case BodyKind::json:
      if (trim(result.body).empty()) return answer_to({}, std::move(out));
      return route_json(result, std::move(out));
    case BodyKind::other:
      if (trim(result.body).empty()) return answer_to({}, std::move(out));
      break;
  }
  return fallback(Route::default_next, Errc::unexpected_answer,
                  fmt::format("unexpected answer: content type '{}'", result.content_type), status);
}

}  // namespace v0
}  // namespace passthru
