#include "request_builder.hpp"

#include "step_data.hpp"

#include <fmt/format.h>

#include <array>
#include <ctime>

namespace passthru {
inline namespace v0 {
namespace detail {
namespace {

constexpr std::array<const char*, 7> kStandardNames = {"CallSid",     "CallFrom",       "CallTo", "Direction",
                                                       "CurrentTime", "DialWhomNumber", "digits"};

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace

namespace {

// Appends `text` with every byte but the unreserved ones as %XX. This runs
// for every parameter of every call: a table, not a chain of comparisons,
// and written through a small buffer rather than byte by byte into `out`.
void append_percent_encoded(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  static const std::array<bool, 256> kUnreserved = [] {
    std::array<bool, 256> table{};
    for (int c = 0; c < 256; ++c)
      table[static_cast<std::size_t>(c)] = is_unreserved(static_cast<unsigned char>(c));
    return table;
  }();
  char buffer[256];
  std::size_t used = 0;
  for (const char ch : text) {
    if (used > sizeof buffer - 3) {
      out.append(buffer, used);
      used = 0;
    }
    const auto c = static_cast<unsigned char>(ch);
    if (kUnreserved[c]) {
      buffer[used++] = ch;
    } else {
      buffer[used++] = '%';
      buffer[used++] = kHex[c >> 4];
      buffer[used++] = kHex[c & 0xF];
    }
  }
  out.append(buffer, used);
}

}  // namespace

std::string percent_encode(std::string_view text) {
  std::string out;
  append_percent_encoded(out, text);
  return out;
}

std::string encode_params(const std::vector<std::pair<std::string, std::string>>& params) {
  std::size_t worst = 0;
  for (const auto& [name, value] : params) worst += (name.size() + value.size()) * 3 + 2;
  std::string out;
  out.reserve(worst);
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    append_percent_encoded(out, name);
    out.push_back('=');
    append_percent_encoded(out, value);
  }
  return out;
}

std::string append_query(std::string_view url, std::string_view query) {
  url = url.substr(0, url.find('#'));
  std::string out(url);
  if (query.empty()) return out;
  const auto question = url.find('?');
  if (question == std::string_view::npos) {
    out.push_back('?');
  } else if (url.back() != '?' && url.back() != '&') {
    out.push_back('&');
  }
  out += query;
  return out;
}

std::string format_iso8601(std::chrono::system_clock::time_point when, std::chrono::minutes utc_offset) {
  const auto shifted = std::chrono::floor<std::chrono::seconds>(when + utc_offset);
  const std::time_t seconds = std::chrono::system_clock::to_time_t(shifted);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  const long total = utc_offset.count();
  const long magnitude = total < 0 ? -total : total;
  // YYYY-MM-DDTHH:MM:SS+HH:MM, for every call: written digit by digit.
  char text[] = "0000-00-00T00:00:00+00:00";
  const auto put = [&text](std::size_t at, long value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10)
      text[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
  };
  const long year = tm.tm_year + 1900L;
  if (year < 0 || year > 9999) {
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}", year, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, total < 0 ? '-' : '+', magnitude / 60,
                       magnitude % 60);
  }
  put(0, year, 4);
  put(5, tm.tm_mon + 1, 2);
  put(8, tm.tm_mday, 2);
  put(11, tm.tm_hour, 2);
  put(14, tm.tm_min, 2);
  put(17, tm.tm_sec, 2);
  text[19] = total < 0 ? '-' : '+';
  put(20, magnitude / 60 % 100, 2);
  put(23, magnitude % 60, 2);
  return std::string(text, sizeof text - 1);
}

std::chrono::minutes local_utc_offset(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  localtime_r(&t, &tm);
  return std::chrono::duration_cast<std::chrono::minutes>(std::chrono::seconds(tm.tm_gmtoff));
}

std::vector<std::pair<std::string, std::string>> call_params(const CallContext& call, bool quote_digits,
                                                             std::string_view now) {
  std::vector<std::pair<std::string, std::string>> params;
  params.reserve(7 + call.custom.size());
  params.emplace_back("CallSid", call.call_sid);
  params.emplace_back("CallFrom", call.call_from);
  params.emplace_back("CallTo", call.call_to);
  params.emplace_back("Direction", to_string(call.direction));
  params.emplace_back("CurrentTime", call.current_time.empty() ? std::string(now) : call.current_time);
  params.emplace_back("DialWhomNumber", call.dial_whom_number);
  if (call.digits) {
    params.emplace_back("digits", quote_digits ? "\"" + *call.digits + "\"" : *call.digits);
  }
  for (const auto& [name, value] : call.custom) {
    if (name.empty()) throw InvalidCall("custom parameter with an empty name");
    for (const char* standard : kStandardNames) {
      if (name == standard) {
        throw InvalidCall(fmt::format("custom parameter '{}' repeats a standard parameter", name));
      }
    }
    params.emplace_back(name, value);
  }
  return params;
}

namespace {

BuiltRequest build_for(const StepData& step, const std::string& base_url, const std::string& signed_url,
                       const CallContext& call, std::string_view now) {
  BuiltRequest request;
  request.method = step.options.method;
  std::string encoded = encode_params(call_params(call, step.options.quote_digits, now));
  request.headers = step.header_lines;
  // What a signature covers; without signing keys, nothing needs it.
  const bool signs = !step.options.signing_keys.empty();
  if (request.method == Method::get) {
    request.url = append_query(base_url, encoded);
    if (signs) request.signed_url = append_query(signed_url, encoded);
    if (request.url.size() > kMaxUrlBytes) {
      throw InvalidCall(
          fmt::format("the GET URL would be {} bytes, over the limit of {}: use POST for large "
                      "call contexts",
                      request.url.size(), kMaxUrlBytes));
    }
  } else {
    if (encoded.size() > kMaxPostBodyBytes) {
      throw InvalidCall(fmt::format("the POST body would be {} bytes, over the limit of {}", encoded.size(),
                                    kMaxPostBodyBytes));
    }
    request.url = base_url;
    if (signs) request.signed_url = signed_url;
    request.body = std::move(encoded);
    request.implied_by_libcurl = request.headers.size();
    request.headers.emplace_back("Content-Type: application/x-www-form-urlencoded");
    // libcurl would otherwise ask for 100-continue on larger bodies and wait
    // a second for it: a second of silence on the caller's line.
    request.headers.emplace_back("Expect:");
  }
  return request;
}

}  // namespace

BuiltRequest build_request(const StepData& step, const CallContext& call, std::string_view now) {
  return build_for(step, step.base_url, step.signed_url, call, now);
}

BuiltRequest build_fallback_request(const StepData& step, const CallContext& call, std::string_view now) {
  return build_for(step, step.fallback->base_url, step.fallback->signed_url, call, now);
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
