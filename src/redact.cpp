#include "redact.hpp"

#include "request_builder.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace passthru {
inline namespace v0 {
namespace detail {
namespace {

constexpr std::string_view kMask = "***";
constexpr std::size_t kMinSecretLength = 4;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i] == '+' ? ' ' : text[i]);
    }
  }
  return out;
}

// The parts of a URL, found by position only: "scheme://" userinfo "@" rest,
// query after the first '?', fragment after the first '#'.
struct UrlParts {
  std::size_t authority = 0;  // first byte after "://", or 0
  std::size_t at = std::string_view::npos;  // '@' ending the user-info
  std::size_t query = std::string_view::npos;  // the '?'
  std::size_t query_end = std::string_view::npos;
};

UrlParts split(std::string_view url) {
  UrlParts parts;
  const auto scheme_end = url.find("://");
  parts.authority = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const auto authority_end = url.find_first_of("/?#", parts.authority);
  const std::string_view authority =
      url.substr(parts.authority, authority_end == std::string_view::npos ? std::string_view::npos
                                                                          : authority_end - parts.authority);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) parts.at = parts.authority + at;
  const auto fragment = url.find('#');
  parts.query = url.find('?');
  if (parts.query != std::string_view::npos && fragment != std::string_view::npos && fragment < parts.query) {
    parts.query = std::string_view::npos;
  }
  parts.query_end = fragment == std::string_view::npos ? url.size() : fragment;
  return parts;
}

template <typename Visit>
void for_each_param(std::string_view url, const UrlParts& parts, Visit visit) {
  if (parts.query == std::string_view::npos) return;
  std::size_t begin = parts.query + 1;
  while (begin <= parts.query_end) {
    std::size_t end = url.find('&', begin);
    if (end == std::string_view::npos || end > parts.query_end) end = parts.query_end;
    const std::string_view pair = url.substr(begin, end - begin);
    const auto equals = pair.find('=');
    if (equals != std::string_view::npos) visit(pair.substr(0, equals), begin + equals + 1, end);
    begin = end + 1;
  }
}

}  // namespace

bool contains_name(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, name); });
}

std::string redact_url(std::string_view url, const std::vector<std::string>& secret_names) {
  const UrlParts parts = split(url);
  // Collect the value ranges to mask, then rebuild left to right.
  std::vector<std::pair<std::size_t, std::size_t>> masks;
  if (parts.at != std::string_view::npos) masks.emplace_back(parts.authority, parts.at);
  for_each_param(url, parts, [&](std::string_view name, std::size_t begin, std::size_t end) {
    if (contains_name(secret_names, percent_decode(name)) && end > begin) masks.emplace_back(begin, end);
  });
  std::string out;
  std::size_t at = 0;
  for (const auto& [begin, end] : masks) {
    out.append(url.substr(at, begin - at));
    out.append(kMask);
    at = end;
  }
  out.append(url.substr(at));
  return out;
}

std::vector<std::string> url_secrets(std::string_view url, const std::vector<std::string>& secret_names) {
  const UrlParts parts = split(url);
  std::vector<std::string> secrets;
  if (parts.at != std::string_view::npos) {
    const std::string_view userinfo = url.substr(parts.authority, parts.at - parts.authority);
    const auto colon = userinfo.find(':');
    secrets.emplace_back(userinfo);
    if (colon != std::string_view::npos) {
      secrets.emplace_back(userinfo.substr(colon + 1));
      secrets.push_back(percent_decode(userinfo.substr(colon + 1)));
    }
  }
  for_each_param(url, parts, [&](std::string_view name, std::size_t begin, std::size_t end) {
    if (!contains_name(secret_names, percent_decode(name))) return;
    const std::string_view value = url.substr(begin, end - begin);
    secrets.emplace_back(value);
    secrets.push_back(percent_decode(value));
  });
  return secrets;
}

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  const auto mask_all = [&text](std::string_view secret) {
    if (secret.size() < kMinSecretLength) return;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + kMask.size())) {
      text.replace(at, secret.size(), kMask);
    }
  };
  for (const std::string& secret : secrets) {
    mask_all(secret);
    const std::string encoded = percent_encode(secret);
    if (encoded != secret) mask_all(encoded);
  }
  return text;
}

std::string escape_for_log(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      default:
        if (byte < 0x20 || byte == 0x7F) {
          out += fmt::format("\\x{:02x}", byte);
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
