// Fuzzes the request builder: a call's fields and custom parameters go
// through call_params, encode_params and build_request; the encoding must
// use only unreserved characters, '%', '=' and '&', and decode back to the
// original bytes.
//
// Input (FuzzedDataProvider): the call's strings in order, each ended by a
// lone backslash; flags and counts are taken from the end of the input.
#include "request_builder.hpp"
#include "step_data.hpp"

#include <passthru/step_config.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace pt = passthru;
using Params = std::vector<std::pair<std::string, std::string>>;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;  // percent_encode uses upper case only
  return -1;
}

// Decodes %XX; traps on anything but unreserved characters and %XX.
std::string decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      check(i + 2 < text.size());
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      check(high >= 0 && low >= 0);
      const auto byte = static_cast<unsigned char>(high * 16 + low);
      check(!is_unreserved(byte));  // unreserved bytes are never encoded
      out.push_back(static_cast<char>(byte));
      i += 2;
    } else {
      check(is_unreserved(static_cast<unsigned char>(c)));
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// `encoded` is exactly `params`, encoded in order.
void check_encoding(std::string_view encoded, const Params& params) {
  for (char c : encoded) {
    check(is_unreserved(static_cast<unsigned char>(c)) || c == '%' || c == '=' || c == '&');
  }
  if (params.empty()) {
    check(encoded.empty());
    return;
  }
  const std::vector<std::string_view> pairs = split(encoded, '&');
  check(pairs.size() == params.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const std::vector<std::string_view> sides = split(pairs[i], '=');
    check(sides.size() == 2);
    check(decode(sides[0]) == params[i].first);
    check(decode(sides[1]) == params[i].second);
  }
}

pt::StepConfig make_step(const char* url, pt::Method method, bool quote_digits) {
  pt::StepOptions options;
  options.url = url;
  options.allow_plain_http = true;
  options.method = method;
  options.quote_digits = quote_digits;
  options.routes.default_next = "next";
  options.headers = {{"X-Api-Key", "secret"}};
  return pt::StepConfig::build(std::move(options));
}

const pt::StepConfig& step_for(unsigned which) {
  static const pt::StepConfig steps[] = {
      make_step("https://hooks.example.com/passthru?token=abc#frag", pt::Method::get, false),
      make_step("http://127.0.0.1:8080/cb", pt::Method::get, true),
      make_step("http://hooks.example.com/cb?", pt::Method::get, false),
      make_step("https://hooks.example.com/passthru#frag", pt::Method::post, true),
  };
  return steps[which % 4];
}

bool repeats_standard(const std::string& name) {
  static const char* const kStandard[] = {"CallSid",     "CallFrom",       "CallTo", "Direction",
                                          "CurrentTime", "DialWhomNumber", "digits"};
  for (const char* standard : kStandard) {
    if (name == standard) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const unsigned which_step = in.ConsumeIntegral<std::uint8_t>();
  const bool has_digits = in.ConsumeBool();
  const bool outgoing = in.ConsumeBool();
  const std::size_t custom_count = in.ConsumeIntegralInRange<std::size_t>(0, 6);

  pt::CallContext call;
  call.call_sid = in.ConsumeRandomLengthString(256);
  call.call_from = in.ConsumeRandomLengthString(256);
  call.call_to = in.ConsumeRandomLengthString(256);
  call.direction = outgoing ? pt::Direction::outgoing : pt::Direction::incoming;
  call.current_time = in.ConsumeRandomLengthString(64);
  call.dial_whom_number = in.ConsumeRandomLengthString(256);
  if (has_digits) call.digits = in.ConsumeRandomLengthString(64);
  for (std::size_t i = 0; i < custom_count; ++i) {
    std::string name = in.ConsumeRandomLengthString(64);
    call.custom.emplace_back(std::move(name), in.ConsumeRandomLengthString(256));
  }
  const std::string now = in.ConsumeRandomLengthString(64);

  // Any byte string goes through percent_encode and back.
  const std::string leftover = in.ConsumeRemainingBytesAsString();
  check(decode(pt::detail::percent_encode(leftover)) == leftover);

  bool invalid_expected = false;
  for (const auto& custom : call.custom) {
    if (custom.first.empty() || repeats_standard(custom.first)) invalid_expected = true;
  }

  const pt::StepConfig& config = step_for(which_step);
  const pt::detail::StepData& step = config.data();
  const bool quote = step.options.quote_digits;

  Params params;
  try {
    params = pt::detail::call_params(call, quote, now);
    check(!invalid_expected);
  } catch (const pt::detail::InvalidCall&) {
    check(invalid_expected);
    try {
      (void)pt::detail::build_request(step, call, now);
      check(false);
    } catch (const pt::detail::InvalidCall&) {
    }
    return 0;
  }

  // Standard parameters first, with the guide's names, then the custom ones.
  check(params.size() == 6 + (call.digits ? 1 : 0) + call.custom.size());
  check(params[0] == Params::value_type("CallSid", call.call_sid));
  check(params[1] == Params::value_type("CallFrom", call.call_from));
  check(params[2] == Params::value_type("CallTo", call.call_to));
  check(params[3] == Params::value_type("Direction", outgoing ? "outgoing" : "incoming"));
  check(params[4] == Params::value_type("CurrentTime", call.current_time.empty() ? now : call.current_time));
  check(params[5] == Params::value_type("DialWhomNumber", call.dial_whom_number));
  std::size_t next = 6;
  if (call.digits) {
    check(params[next++] == Params::value_type("digits", quote ? "\"" + *call.digits + "\"" : *call.digits));
  }
  for (const auto& custom : call.custom) check(params[next++] == custom);

  const std::string encoded = pt::detail::encode_params(params);
  check_encoding(encoded, params);

  // A GET URL over 8 KiB (or a POST body over 1 MiB) is refused, never cut.
  const std::size_t wire_size =
      step.options.method == pt::Method::get ? step.base_url.size() + 1 + encoded.size() : encoded.size();
  pt::detail::BuiltRequest request;
  try {
    request = pt::detail::build_request(step, call, now);
  } catch (const pt::detail::InvalidCall&) {
    check(step.options.method == pt::Method::get ? wire_size > pt::detail::kMaxUrlBytes
                                                 : wire_size > pt::detail::kMaxPostBodyBytes);
    return 0;
  }
  check(request.method == step.options.method);
  check(request.method == pt::Method::get ? request.url.size() <= pt::detail::kMaxUrlBytes
                                          : request.body.size() <= pt::detail::kMaxPostBodyBytes);
  // The signed URL is the sent URL without its user-info.
  check(request.signed_url.find('@') == std::string::npos || request.url.find('@') != std::string::npos);
  const std::string& base = step.base_url;
  check(base.find('#') == std::string::npos);
  if (request.method == pt::Method::get) {
    check(request.body.empty());
    check(request.url.size() > base.size() && request.url.compare(0, base.size(), base) == 0);
    std::string_view query = std::string_view(request.url).substr(base.size());
    const char last = base.back();
    if (base.find('?') == std::string::npos) {
      check(query.front() == '?');
      query.remove_prefix(1);
    } else if (last != '?' && last != '&') {
      check(query.front() == '&');
      query.remove_prefix(1);
    }
    check(query == encoded);
    check(request.headers == step.header_lines);
  } else {
    check(request.url == base);
    check(request.body == encoded);
    check(request.headers.size() == step.header_lines.size() + 2);
    check(request.headers[request.headers.size() - 2] == "Content-Type: application/x-www-form-urlencoded");
  }
  return 0;
}
