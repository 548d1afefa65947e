// Fuzzes StepConfig::build with arbitrary options. A refused config must
// throw ConfigError; an accepted one must have an http(s) URL and header
// lines free of CR, LF and NUL, plain http only to loopback unless allowed,
// a signed URL without user-info, and an error message or redacted URL
// that never shows user-info.
//
// Input (FuzzedDataProvider): the URL first, then header names and values,
// each ended by a lone backslash; the timeout, counts and flags are taken
// from the end of the input.
#include "destination_guard.hpp"
#include "redact.hpp"
#include "step_data.hpp"

#include <passthru/step_config.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace {

namespace pt = passthru;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
  return text;
}

std::chrono::milliseconds timeout_from(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return std::chrono::milliseconds(in.ConsumeIntegral<std::int64_t>());
    case 1: return std::chrono::milliseconds(in.ConsumeIntegralInRange<std::int64_t>(-2, 3'600'002));
    default: return std::chrono::milliseconds(15000);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  pt::StepOptions options;
  options.method = in.ConsumeBool() ? pt::Method::post : pt::Method::get;
  options.quote_digits = in.ConsumeBool();
  options.timeout = timeout_from(in);
  options.max_answer_bytes = in.ConsumeIntegralInRange<std::size_t>(0, 3);
  const bool with_default = in.ConsumeIntegralInRange<int>(0, 7) != 0;
  const std::size_t header_count = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  const std::size_t known_count = in.ConsumeIntegralInRange<std::size_t>(0, 2);
  const std::size_t host_count = in.ConsumeIntegralInRange<std::size_t>(0, 2);
  options.allow_plain_http = in.ConsumeBool();
  options.max_redirects = in.ConsumeIntegralInRange<int>(-1, 7);
  options.tls.min_version = in.ConsumeBool() ? pt::TlsVersion::v1_3 : pt::TlsVersion::v1_2;
  const std::size_t key_count = in.ConsumeIntegralInRange<std::size_t>(0, 3);
  for (std::size_t i = 0; i < key_count; ++i) {
    options.signing_keys.emplace_back(in.ConsumeIntegralInRange<std::size_t>(30, 40), 'k');
  }
  if (in.ConsumeBool()) options.secret_names = {"token", "api_key"};
  if (in.ConsumeBool()) options.tls.pinned_public_key = in.ConsumeRandomLengthString(64);

  options.url = in.ConsumeRandomLengthString(1024);
  for (std::size_t i = 0; i < header_count; ++i) {
    pt::Header header;
    header.name = in.ConsumeRandomLengthString(64);
    header.value = in.ConsumeRandomLengthString(256);
    options.headers.push_back(std::move(header));
  }
  if (with_default) options.routes.default_next = "next";
  for (std::size_t i = 0; i < known_count; ++i) {
    options.routes.known_applets.push_back(in.ConsumeRandomLengthString(32));
  }
  for (std::size_t i = 0; i < host_count; ++i) {
    options.routes.external_flow_hosts.push_back(in.ConsumeRandomLengthString(32));
  }
  options.name = in.ConsumeRemainingBytesAsString();

  const pt::StepOptions given = options;
  try {
    const pt::StepConfig config = pt::StepConfig::build(std::move(options));
    const pt::StepOptions& kept = config.options();
    const pt::detail::StepData& step = config.data();

    // The URL is an absolute http(s) URL with a host, as given; what is sent
    // is its normalised form, without a fragment.
    check(kept.url == given.url);
    const std::string scheme = lower(kept.url.substr(0, 8));
    const bool plain = scheme.rfind("http://", 0) == 0;
    check(plain || scheme.rfind("https://", 0) == 0);
    for (char c : kept.url) check(static_cast<unsigned char>(c) > 0x20 && c != 0x7F);
    check(!step.host.empty());
    for (const std::string* sent : {&step.base_url, &step.signed_url}) {
      check(sent->find('#') == std::string::npos);
      check(lower(sent->substr(0, 8)).rfind(plain ? "http://" : "https://", 0) == 0);
      for (char c : *sent) check(static_cast<unsigned char>(c) > 0x20 && c != 0x7F);
    }
    // Plain http only to loopback, unless the engine allowed it.
    if (plain && !kept.allow_plain_http) {
      std::string host = lower(step.host);
      if (!host.empty() && host.front() == '[') {
        host = host.substr(1, host.find(']') - 1);
      } else {
        host = host.substr(0, host.rfind(':'));
      }
      pt::detail::IpAddress address;
      pt::detail::IpNetwork loopback4;
      pt::detail::IpNetwork loopback6;
      pt::detail::IpNetwork::parse("127.0.0.0/8", loopback4);
      pt::detail::IpNetwork::parse("::1", loopback6);
      check(host == "localhost" || (pt::detail::IpAddress::parse(host, address) &&
                                    (loopback4.contains(address) || loopback6.contains(address))));
    }
    // A signature never covers (or reveals) user-info.
    const std::string& signed_url = step.signed_url;
    const std::size_t authority = signed_url.find("://") + 3;
    check(signed_url.substr(authority, signed_url.find_first_of("/?", authority) - authority).find('@') ==
          std::string::npos);
    check(kept.max_redirects >= 0 && kept.max_redirects <= 5);
    check(kept.signing_keys.size() <= 2);
    for (const std::string& key : kept.signing_keys) check(key.size() >= 32);
    check(!step.label.empty() && (kept.name.empty() || step.label == kept.name));

    // Header lines are the given headers (plus a default Accept), without
    // CR, LF or NUL.
    bool has_accept = false;
    for (const pt::Header& header : kept.headers) has_accept = has_accept || lower(header.name) == "accept";
    check(step.header_lines.size() == kept.headers.size() + (has_accept ? 0 : 1));
    for (std::size_t i = 0; i < kept.headers.size(); ++i) {
      check(!kept.headers[i].name.empty());
      check(step.header_lines[i] == kept.headers[i].name + ": " + kept.headers[i].value);
    }
    for (const std::string& line : step.header_lines) {
      check(line.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
    }

    check(kept.timeout > std::chrono::milliseconds::zero() && kept.timeout <= std::chrono::hours(1));
    check(kept.max_answer_bytes > 0);
    check(!kept.routes.default_next.empty());
    for (const std::string& name : kept.routes.known_applets) check(!name.empty());
    for (const std::string& host : kept.routes.external_flow_hosts) check(!host.empty());
  } catch (const pt::ConfigError& error) {
    check(!error.field().empty());
    // The redacted form of the URL keeps no user-info.
    const std::string shown = pt::detail::redact_url(given.url, given.secret_names, true);
    const std::size_t scheme_end = shown.find("://");
    if (scheme_end != std::string::npos) {
      const std::size_t begin = scheme_end + 3;
      const std::string authority = shown.substr(begin, shown.find_first_of("/?#", begin) - begin);
      const std::size_t at = authority.rfind('@');
      check(at == std::string::npos || authority.substr(0, at) == "***");
    }
    check(std::string_view(error.what()).find(error.field()) != std::string_view::npos);
  }
  return 0;
}
