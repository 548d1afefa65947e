#include "single_report.hpp"

#include "exit_status.hpp"
#include "text.hpp"

#include <fmt/format.h>

#include <string>

namespace passthru_probe {
namespace {

constexpr const char* kIndent = "           ";  // under the labels' column

void print_row(std::FILE* out, const char* label, const std::string& text) {
  fmt::print(out, "{:<11}{}\n", label, text);
}

void print_request(std::FILE* out, const SingleResult& result, const BodyLimit* limit) {
  if (!result.request || result.request->url.empty()) {
    print_row(out, "Request", "not sent: the request could not be built (see Reason)");
    return;
  }
  const passthru::RequestInfo& request = *result.request;
  print_row(out, "Request", fmt::format("{} {}", passthru::to_string(request.method), request.url));
  for (const std::string& header : request.headers) fmt::print(out, "{}{}\n", kIndent, header);
  if (!request.body.empty()) {
    fmt::print(out, "{}\n{}\n", kIndent, printable_body(request.body, kIndent, limit));
  }
}

void print_answer(std::FILE* out, const passthru::Outcome& outcome, const BodyLimit* limit) {
  if (outcome.http_status == 0) {
    print_row(out, "Answer", "none");
    return;
  }
  print_row(out, "Answer",
            fmt::format("HTTP {}, {}, {}", outcome.http_status,
                        outcome.content_type.empty() ? "no content type" : one_line(outcome.content_type),
                        format_bytes(outcome.answer.size())));
  if (outcome.answer.empty()) {
    fmt::print(out, "{}(empty body)\n", kIndent);
  } else {
    fmt::print(out, "{}\n", printable_body(outcome.answer, kIndent, limit));
  }
}

std::string timing_line(const passthru::Outcome& outcome) {
  const passthru::Timings& t = outcome.timings;
  return fmt::format("total {}: queued {}, DNS {}, connect {}, TLS {}, first byte {}",
                     format_ms(outcome.elapsed), format_ms(t.queued), format_ms(t.dns), format_ms(t.connect),
                     format_ms(t.tls), format_ms(t.first_byte));
}

std::string connection_line(const passthru::Outcome& outcome) {
  if (outcome.remote_address.empty()) {
    return fmt::format("none established; sent {}, received {}", format_bytes(outcome.bytes_sent),
                       format_bytes(outcome.bytes_received));
  }
  return fmt::format("{}, {}; sent {}, received {}", outcome.remote_address,
                     outcome.connection_reused ? "reused" : "new", format_bytes(outcome.bytes_sent),
                     format_bytes(outcome.bytes_received));
}

}  // namespace

bool is_slow_answer(const passthru::Outcome& outcome, std::chrono::milliseconds slow) {
  return outcome.http_status != 0 && outcome.elapsed > slow;
}

void print_single_report(std::FILE* out, const SingleResult& result, const ReportSettings& settings) {
  const passthru::Outcome& outcome = result.outcome;
  const std::string route =
      outcome.target.empty()
          ? std::string(passthru::to_string(outcome.route))
          : fmt::format("{} -> {}", passthru::to_string(outcome.route), one_line(outcome.target));
  if (settings.quiet) {
    fmt::print(out, "{}\n", route);
    return;
  }
  const BodyLimit limit;
  const BodyLimit* body_limit = settings.verbose ? nullptr : &limit;

  print_request(out, result, body_limit);
  print_answer(out, outcome, body_limit);
  print_row(out, "Route", route);
  print_row(out, "Reason", one_line(outcome.reason));
  if (outcome.error) {
    print_row(out, "Error", fmt::format("{} ({})", error_name(outcome.error), outcome.error.message()));
  }
  // One per line: the answer's JSON "variables", as the engine would store them.
  const char* label = "Variables";
  for (const auto& [name, value] : outcome.variables) {
    print_row(out, label, fmt::format("{} = {}", one_line(name), one_line(value)));
    label = "";
  }
  print_row(out, "Trace id", outcome.trace_id.empty() ? "none" : outcome.trace_id);
  print_row(out, "Timing", timing_line(outcome));
  print_row(out, "Connection", connection_line(outcome));
  if (is_slow_answer(outcome, settings.slow)) {
    print_row(out, "WARNING",
              fmt::format("slow answer: {} is over --slow-ms {} ms. The guide asks for answers within 3 s: "
                          "the caller waits in silence or hold music meanwhile.",
                          format_ms(outcome.elapsed), settings.slow.count()));
  }
}

nlohmann::ordered_json timings_json(const passthru::Outcome& outcome) {
  const passthru::Timings& t = outcome.timings;
  return {{"queued_ms", to_ms(t.queued)},         {"dns_ms", to_ms(t.dns)},
          {"connect_ms", to_ms(t.connect)},       {"tls_ms", to_ms(t.tls)},
          {"first_byte_ms", to_ms(t.first_byte)}, {"transfer_ms", to_ms(t.transfer)},
          {"total_ms", to_ms(outcome.elapsed)}};
}

nlohmann::ordered_json single_json(const SingleResult& result, const ReportSettings& settings) {
  const passthru::Outcome& outcome = result.outcome;
  nlohmann::ordered_json json;
  if (result.request && !result.request->url.empty()) {
    const passthru::RequestInfo& request = *result.request;
    json["request"] = {{"call_sid", request.call_sid},
                       {"step", request.step},
                       {"method", passthru::to_string(request.method)},
                       {"url", request.url},
                       {"headers", request.headers},
                       {"body", request.body},
                       {"timeout_ms", request.timeout.count()}};
  } else {
    json["request"] = nullptr;
  }
  if (outcome.http_status != 0) {
    json["answer"] = {{"status", outcome.http_status},
                      {"content_type", outcome.content_type},
                      {"body", outcome.answer},
                      {"bytes", outcome.answer.size()}};
  } else {
    json["answer"] = nullptr;
  }
  json["route"] = passthru::to_string(outcome.route);
  json["target"] = outcome.target;
  json["reason"] = outcome.reason;
  if (outcome.error) {
    json["error"] = {{"name", error_name(outcome.error)}, {"message", outcome.error.message()}};
  } else {
    json["error"] = nullptr;
  }
  json["variables"] = outcome.variables;
  json["trace_id"] = outcome.trace_id;
  json["span_id"] = outcome.span_id;
  json["timings"] = timings_json(outcome);
  json["attempts"] = outcome.attempts;
  json["bytes_sent"] = outcome.bytes_sent;
  json["bytes_received"] = outcome.bytes_received;
  json["remote_address"] = outcome.remote_address;
  json["connection_reused"] = outcome.connection_reused;
  json["slow"] = is_slow_answer(outcome, settings.slow);
  json["slow_ms"] = settings.slow.count();
  json["exit_status"] = exit_status(outcome.route);
  return json;
}

}  // namespace passthru_probe
