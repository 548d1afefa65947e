#include "probe_options.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string_view>

namespace passthru_probe {
namespace {

constexpr const char* kRequest = "Request";
constexpr const char* kCall = "Call context (sent as the guide's parameters)";
constexpr const char* kStep = "Step (routing and limits, as an engine configures the applet)";
constexpr const char* kSecurity = "TLS and signing";
constexpr const char* kOutput = "Output";
constexpr const char* kLoad = "Load test";

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

std::string read_key_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw UsageError(fmt::format("--signing-key-file '{}' cannot be read: {}", path, std::strerror(errno)));
  }
  std::string key((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // A key written with `echo` or an editor ends with a newline that is not
  // part of it.
  if (!key.empty() && key.back() == '\n') key.pop_back();
  if (!key.empty() && key.back() == '\r') key.pop_back();
  if (key.empty()) throw UsageError(fmt::format("--signing-key-file '{}' is empty", path));
  return key;
}

// "sha256//<base64>" entries joined by ';' as the library takes them; a bare
// base64 hash gets its prefix, a file name is kept.
std::string pinned_key(const std::string& pin) {
  if (pin.empty() || pin.rfind("sha256//", 0) == 0) return pin;
  if (std::ifstream(pin).good()) return pin;
  std::string joined;
  std::istringstream entries(pin);
  for (std::string entry; std::getline(entries, entry, ';');) {
    if (!joined.empty()) joined += ';';
    joined += entry.rfind("sha256//", 0) == 0 ? entry : "sha256//" + entry;
  }
  return joined;
}

// "headers[2].name" -> 2; npos when `field` is not an entry of `list`.
std::size_t index_in(const std::string& field, std::string_view list) {
  if (field.compare(0, list.size(), list) != 0 || field.size() <= list.size() || field[list.size()] != '[') {
    return std::string::npos;
  }
  try {
    return std::stoul(field.substr(list.size() + 1));
  } catch (const std::exception&) {
    return std::string::npos;
  }
}

}  // namespace

void add_probe_flags(CLI::App& app, ProbeOptions& o) {
  const passthru::StepOptions defaults;
  o.timeout_ms = static_cast<long>(defaults.timeout.count());
  o.max_answer_bytes = defaults.max_answer_bytes;
  o.max_redirects = defaults.max_redirects;

  app.add_option("url", o.url, "The customer's endpoint: https://, or http:// to loopback; a query is kept")
      ->required()
      ->type_name("URL")
      ->group(kRequest);
  app.add_option("-X,--method", o.method, "GET sends the call in the query string, POST as a form body")
      ->transform(CLI::IsMember({"GET", "POST"}, CLI::ignore_case))
      ->capture_default_str()
      ->type_name("METHOD")
      ->group(kRequest);
  app.add_option("--timeout", o.timeout_ms, "No answer by then routes on_timeout (the guide's default: 15 s)")
      ->capture_default_str()
      ->type_name("MS")
      ->group(kRequest);
  app.add_option("-H,--header", o.headers, "Extra request header, repeatable")
      ->allow_extra_args(false)
      ->type_name("'NAME: VALUE'")
      ->group(kRequest);

  app.add_option("--call-sid", o.call_sid, "CallSid (default: probe-<random hex>; --count adds -<n>)")
      ->type_name("SID")
      ->group(kCall);
  app.add_option("--from", o.from, "CallFrom, the caller's number (default: empty)")
      ->type_name("NUMBER")
      ->group(kCall);
  app.add_option("--to", o.to, "CallTo, the number called (default: empty)")
      ->type_name("NUMBER")
      ->group(kCall);
  app.add_option("--direction", o.direction, "Direction")
      ->transform(CLI::IsMember({"incoming", "outgoing"}, CLI::ignore_case))
      ->capture_default_str()
      ->type_name("DIRECTION")
      ->group(kCall);
  app.add_option("--current-time", o.current_time,
                 "CurrentTime, ISO 8601 with offset (default: stamped by the library)")
      ->type_name("TIME")
      ->group(kCall);
  app.add_option("--dial-whom", o.dial_whom, "DialWhomNumber, the number dialled (default: empty)")
      ->type_name("NUMBER")
      ->group(kCall);
  app.add_option_function<std::string>(
         "--digits", [&o](const std::string& digits) { o.digits = digits; },
         "digits, DTMF digits collected earlier (default: not sent)")
      ->type_name("DIGITS")
      ->group(kCall);
  app.add_option("--param", o.params, "A custom parameter, after the standard ones; repeatable")
      ->allow_extra_args(false)
      ->type_name("NAME=VALUE")
      ->group(kCall);
  app.add_option("--traceparent", o.traceparent,
                 "W3C trace context to join (default: a new trace; its id is shown)")
      ->type_name("TRACEPARENT")
      ->group(kCall);

  app.add_option("--name", o.name, "The step's name in log lines (default: the URL's host)")
      ->type_name("NAME")
      ->group(kStep);
  app.add_option("--default", o.default_next, "routes.default_next: empty answers and answers not understood")
      ->capture_default_str()
      ->type_name("APPLET")
      ->group(kStep);
  app.add_option("--on-error", o.on_error,
                 "routes.on_error: 3xx/4xx/5xx, transport failures (default: --default)")
      ->type_name("APPLET")
      ->group(kStep);
  app.add_option("--on-timeout", o.on_timeout, "routes.on_timeout: no answer in time (default: --on-error)")
      ->type_name("APPLET")
      ->group(kStep);
  app.add_option("--applet", o.applets, "An applet the answer may name; repeatable (default: any name)")
      ->allow_extra_args(false)
      ->type_name("NAME")
      ->group(kStep);
  app.add_option("--flow-host", o.flow_hosts,
                 "A host a flow URL may point at (*.example.com); repeatable (default: any)")
      ->allow_extra_args(false)
      ->type_name("HOST")
      ->group(kStep);
  app.add_flag("--quote-digits", o.quote_digits, "Send digits in double quotes (\"1234\"), as Exotel does")
      ->group(kStep);
  app.add_option("--max-answer-bytes", o.max_answer_bytes, "Larger answers route on_error")
      ->capture_default_str()
      ->type_name("BYTES")
      ->group(kStep);
  app.add_flag("--allow-plain-http", o.allow_plain_http,
               "Allow http:// beyond loopback (the call's data in clear)")
      ->group(kStep);
  app.add_option("--max-redirects", o.max_redirects,
                 "Redirects followed (<= 5, https:// only); 0: a 3xx routes on_error")
      ->capture_default_str()
      ->type_name("N")
      ->group(kStep);

  app.add_option("--cacert", o.cacert, "PEM bundle of the CAs to trust instead of the system's")
      ->type_name("FILE")
      ->group(kSecurity);
  app.add_option("--cert", o.cert, "PEM client certificate, for mutual TLS")
      ->type_name("FILE")
      ->group(kSecurity);
  app.add_option("--key", o.key, "PEM key of --cert (default: in the --cert file)")
      ->type_name("FILE")
      ->group(kSecurity);
  app.add_flag("--insecure", o.insecure, "Skip certificate and host name checks (a lab only; warns)")
      ->group(kSecurity);
  app.add_option("--pin", o.pin,
                 "Pin the server's public key: base64 SHA-256 (sha256// optional,\n"
                 "';' between several) or a key file")
      ->type_name("SHA256")
      ->group(kSecurity);
  app.add_option("--signing-key-file", o.signing_key_file,
                 "Sign requests (Passthru-Signature) with the key in FILE, >= 32\n"
                 "bytes, a final newline dropped; never a key on the command line")
      ->type_name("FILE")
      ->group(kSecurity);

  app.add_flag("--json", o.json, "Print one JSON object instead of the report")->group(kOutput);
  app.add_flag("-q,--quiet", o.quiet, "Only the route (or the tally), no progress line; --json unchanged")
      ->group(kOutput);
  app.add_flag("-v,--verbose", o.verbose, "The library's log lines (debug) on standard error; whole bodies")
      ->group(kOutput);

  app.add_option("--count", o.count, "Requests to send, each with its own CallSid")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}).description(""))
      ->capture_default_str()
      ->type_name("N")
      ->group(kLoad);
  app.add_option("--concurrency", o.concurrency, "Requests kept in flight until --count are done")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}).description(""))
      ->capture_default_str()
      ->type_name("C")
      ->group(kLoad);
  app.add_option("--slow-ms", o.slow_ms, "Warn about answers slower than this (the guide: within 3 s)")
      ->check(CLI::Range(1L, 3'600'000L).description(""))
      ->capture_default_str()
      ->type_name("MS")
      ->group(kLoad);
}

passthru::StepOptions make_step_options(const ProbeOptions& o) {
  passthru::StepOptions step;
  step.url = o.url;
  step.method = o.method == "POST" ? passthru::Method::post : passthru::Method::get;
  step.timeout = std::chrono::milliseconds(o.timeout_ms);
  step.routes.default_next = o.default_next;
  step.routes.on_error = o.on_error;
  step.routes.on_timeout = o.on_timeout;
  step.routes.known_applets = o.applets;
  step.routes.external_flow_hosts = o.flow_hosts;
  for (const std::string& line : o.headers) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      throw UsageError(fmt::format("-H/--header '{}': expected 'Name: value'", line));
    }
    // The name as typed, so the library names what is wrong with it.
    step.headers.push_back({line.substr(0, colon), trim(std::string_view(line).substr(colon + 1))});
  }
  step.quote_digits = o.quote_digits;
  step.max_answer_bytes = o.max_answer_bytes;
  step.name = o.name;
  step.allow_plain_http = o.allow_plain_http;
  step.max_redirects = o.max_redirects;
  step.tls.ca_file = o.cacert;
  step.tls.client_cert_file = o.cert;
  step.tls.client_key_file = o.key;
  step.tls.pinned_public_key = pinned_key(o.pin);
  step.tls.verify_peer = !o.insecure;
  step.tls.verify_host = !o.insecure;
  if (!o.signing_key_file.empty()) step.signing_keys.push_back(read_key_file(o.signing_key_file));
  return step;
}

passthru::CallContext make_call(const ProbeOptions& o, std::string call_sid) {
  passthru::CallContext call;
  call.call_sid = std::move(call_sid);
  call.call_from = o.from;
  call.call_to = o.to;
  call.direction = o.direction == "outgoing" ? passthru::Direction::outgoing : passthru::Direction::incoming;
  call.current_time = o.current_time;
  call.dial_whom_number = o.dial_whom;
  call.digits = o.digits;
  for (const std::string& param : o.params) {
    const auto equals = param.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw UsageError(fmt::format("--param '{}': expected NAME=VALUE", param));
    }
    call.custom.emplace_back(param.substr(0, equals), param.substr(equals + 1));
  }
  call.traceparent = o.traceparent;
  return call;
}

std::string base_call_sid(const ProbeOptions& o) {
  if (!o.call_sid.empty()) return o.call_sid;
  std::random_device entropy;
  std::uniform_int_distribution<std::uint64_t> digits(0, (std::uint64_t{1} << 48) - 1);
  return fmt::format("probe-{:012x}", digits(entropy));
}

passthru::ClientOptions make_client_options(const ProbeOptions& o) {
  passthru::ClientOptions client;
  client.slow_answer_threshold = std::chrono::milliseconds(o.slow_ms);
  if (!o.verbose) {
    client.log_level = passthru::LogLevel::off;
    return client;
  }
  client.log_level = passthru::LogLevel::debug;
  client.log_sink = [](passthru::LogLevel level, std::string_view message) {
    static constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error", "off"};
    const auto index = static_cast<std::size_t>(level);
    const std::string line = fmt::format("passthru [{}] {}\n", index < 6 ? kNames[index] : "?", message);
    std::fwrite(line.data(), 1, line.size(), stderr);  // one call: lines from threads do not interleave
  };
  return client;
}

std::string flag_of_field(const ProbeOptions& o, const std::string& field) {
  if (field == "url") return "URL";
  if (field == "timeout") return "--timeout";
  if (field == "routes.default_next") return "--default";
  if (field == "routes.on_error") return "--on-error";
  if (field == "routes.on_timeout") return "--on-timeout";
  if (field == "max_answer_bytes") return "--max-answer-bytes";
  if (field == "max_redirects") return "--max-redirects";
  if (field == "name") return "--name";
  if (field.rfind("signing_keys", 0) == 0) return "--signing-key-file";
  if (field == "tls.ca_file") return "--cacert";
  if (field == "tls.client_cert_file") return "--cert";
  if (field == "tls.client_key_file") return "--key";
  if (field == "tls.pinned_public_key") return "--pin";
  if (const auto i = index_in(field, "headers"); i < o.headers.size()) {
    // The name only: the value may be a credential.
    return fmt::format("-H/--header #{}: {}", i + 1, o.headers[i].substr(0, o.headers[i].find(':')));
  }
  if (const auto i = index_in(field, "routes.known_applets"); i < o.applets.size()) {
    return fmt::format("--applet '{}'", o.applets[i]);
  }
  if (const auto i = index_in(field, "routes.external_flow_hosts"); i < o.flow_hosts.size()) {
    return fmt::format("--flow-host '{}'", o.flow_hosts[i]);
  }
  return {};
}

}  // namespace passthru_probe
