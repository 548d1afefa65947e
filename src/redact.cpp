#include "redact.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

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
  std::size_t authority = 0;                   // first byte after "://", or 0
  std::size_t at = std::string_view::npos;     // '@' ending the user-info
  std::size_t query = std::string_view::npos;  // the '?'
  std::size_t query_end = std::string_view::npos;
};

// `wary`: for text shown in an error message, where the URL may be malformed
// ("https:/user:pa/ss@host"): the user-info is taken to run to the last '@'
// of the whole URL, so a password holding '/', '?' or '#' is still hidden
// (at the price of hiding more than needed when the query holds an '@').
UrlParts split(std::string_view url, bool wary) {
  UrlParts parts;
  if (const auto scheme_end = url.find("://"); scheme_end != std::string_view::npos) {
    parts.authority = scheme_end + 3;
  } else if (const auto colon = url.find(':'); wary && colon != std::string_view::npos && colon > 0 &&
                                               colon + 1 < url.size() && url[colon + 1] == '/' &&
                                               std::all_of(url.begin(), url.begin() + colon, [](char c) {
                                                 return std::isalpha(static_cast<unsigned char>(c)) != 0;
                                               })) {
    // "https:/user:pw@host": a scheme and too few slashes.
    parts.authority = url.find_first_not_of('/', colon + 1);
    if (parts.authority == std::string_view::npos) parts.authority = url.size();
  }
  if (wary) {
    if (const auto at = url.rfind('@'); at != std::string_view::npos && at >= parts.authority) parts.at = at;
  } else {
    const auto authority_end = url.find_first_of("/?#", parts.authority);
    const std::string_view authority = url.substr(parts.authority, authority_end == std::string_view::npos
                                                                       ? std::string_view::npos
                                                                       : authority_end - parts.authority);
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) parts.at = parts.authority + at;
  }
  const auto fragment = url.find('#');
  parts.query = url.find('?');
  if (parts.query != std::string_view::npos && fragment != std::string_view::npos && fragment < parts.query) {
    parts.query = std::string_view::npos;
  }
  parts.query_end = fragment == std::string_view::npos ? url.size() : fragment;
  return parts;
}

std::size_t at_end(const UrlParts& parts) { return parts.at == std::string_view::npos ? 0 : parts.at; }

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

std::string redact_url(std::string_view url, const std::vector<std::string>& secret_names, bool malformed) {
  const UrlParts parts = split(url, malformed);
  // Collect the value ranges to mask, then rebuild left to right.
  std::vector<std::pair<std::size_t, std::size_t>> masks;
  if (parts.at != std::string_view::npos) masks.emplace_back(parts.authority, parts.at);
  for_each_param(url, parts, [&](std::string_view name, std::size_t begin, std::size_t end) {
    if (contains_name(secret_names, percent_decode(name)) && end > begin && begin > at_end(parts)) {
      masks.emplace_back(begin, end);
    }
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
  const UrlParts parts = split(url, false);
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

namespace {

// How many bytes of `text` from `at` spell the first `matched` bytes of
// `secret`, each byte written raw or percent-encoded in either case (and a
// space also as '+'): the forms libcurl and servers re-encode a value into.
std::size_t match_at(std::string_view text, std::size_t at, std::string_view secret, std::size_t& matched) {
  std::size_t pos = at;
  matched = 0;
  while (matched < secret.size() && pos < text.size()) {
    const char want = secret[matched];
    if (text[pos] == want) {
      pos += 1;
    } else if (text[pos] == '%' && pos + 2 < text.size() && hex_value(text[pos + 1]) >= 0 &&
               hex_value(text[pos + 2]) >= 0 &&
               hex_value(text[pos + 1]) * 16 + hex_value(text[pos + 2]) == static_cast<unsigned char>(want)) {
      pos += 3;
    } else if (want == ' ' && text[pos] == '+') {
      pos += 1;
    } else {
      break;
    }
    ++matched;
  }
  return pos - at;
}

}  // namespace

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  // Longest first, so a secret that contains another is masked whole.
  std::vector<std::string_view> ordered;
  for (const std::string& secret : secrets) {
    if (secret.size() >= kMinSecretLength) ordered.emplace_back(secret);
  }
  std::sort(ordered.begin(), ordered.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  for (const std::string_view secret : ordered) {
    std::string out;
    std::size_t copied = 0;
    for (std::size_t at = 0; at < text.size();) {
      std::size_t matched = 0;
      const std::size_t length = match_at(text, at, secret, matched);
      // A whole secret, or the start of one that a quoted excerpt cut short
      // ("...") or the text ends in.
      const std::string_view after = std::string_view(text).substr(at + length);
      const bool cut = matched >= kMinSecretLength && (after.empty() || after.rfind("...", 0) == 0);
      if (matched == secret.size() || cut) {
        out.append(text, copied, at - copied);
        out.append(kMask);
        at += length;
        copied = at;
      } else {
        ++at;
      }
    }
    out.append(text, copied, std::string::npos);
    text = std::move(out);
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
