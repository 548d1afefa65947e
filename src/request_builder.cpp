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

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    if (is_unreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string encode_params(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out += percent_encode(name);
    out.push_back('=');
    out += percent_encode(value);
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
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, total < 0 ? '-' : '+', magnitude / 60,
                     magnitude % 60);
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
  const std::string encoded = encode_params(call_params(call, step.options.quote_digits, now));
  request.headers = step.header_lines;
  if (request.method == Method::get) {
    request.url = append_query(base_url, encoded);
    request.signed_url = append_query(signed_url, encoded);
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
    request.signed_url = signed_url;
    request.body = encoded;
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
