// MetricsSnapshot in the Prometheus text exposition format 0.0.4: one string,
// written once, for a scrape handler to serve as it is.
#include <passthru/metrics.hpp>
#include <passthru/outcome.hpp>

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <stdexcept>

namespace passthru {
inline namespace v0 {
namespace detail {
namespace {

static_assert(kRouteCount == static_cast<std::size_t>(Route::cancelled) + 1,
              "kRouteCount must cover every Route");

bool is_metric_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Prometheus reads values with Go's ParseFloat plus "+Inf", "-Inf" and "NaN";
// fmt's "{}" is the shortest form that reads back to the same double ("3",
// "0.005", "1e-05"), but spells the specials "inf" and "nan".
void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", value);
  }
}

void append_count(std::string& out, std::uint64_t value) {
  fmt::format_to(std::back_inserter(out), "{}", value);
}

void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

class Exposition {
 public:
  Exposition(std::string& out, std::string_view prefix) : out_(out), prefix_(prefix) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {}{} {}\n# TYPE {}{} {}\n", prefix_, name, help, prefix_,
                   name, type);
  }

  // Leaves the label set open after step="..." for the caller's own labels.
  void open_step_series(std::string_view name, std::string_view step) {
    out_ += prefix_;
    out_ += name;
    out_ += "{step=\"";
    append_label_value(out_, step);
    out_ += '"';
  }

  void step_sample(std::string_view name, std::string_view step, std::uint64_t value) {
    open_step_series(name, step);
    close_with(value);
  }

  void step_sample(std::string_view name, std::string_view step, std::string_view label,
                   std::string_view label_value, std::uint64_t value) {
    open_step_series(name, step);
    out_ += ',';
    out_ += label;
    out_ += "=\"";
    out_ += label_value;  // one of our own names, nothing to escape
    out_ += '"';
    close_with(value);
  }

  void origin_sample(std::string_view name, std::string_view origin, std::uint64_t value) {
    out_ += prefix_;
    out_ += name;
    out_ += "{origin=\"";
    append_label_value(out_, origin);
    out_ += '"';
    close_with(value);
  }

  void close_with(std::uint64_t value) {
    out_ += "} ";
    append_count(out_, value);
    out_ += '\n';
  }

  void close_with(double value) {
    out_ += "} ";
    append_number(out_, value);
    out_ += '\n';
  }

  void sample(std::string_view name, std::uint64_t value) {
    out_ += prefix_;
    out_ += name;
    out_ += ' ';
    append_count(out_, value);
    out_ += '\n';
  }

  void sample(std::string_view name, double value) {
    out_ += prefix_;
    out_ += name;
    out_ += ' ';
    append_number(out_, value);
    out_ += '\n';
  }

  void histogram(std::string_view step, const LatencyHistogram& latency) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < latency.upper_bounds.size(); ++i) {
      if (i < latency.counts.size()) cumulative += latency.counts[i];
      const double bound = latency.upper_bounds[i];
      if (!std::isfinite(bound)) continue;  // +Inf is ours to write, once
      open_step_series("_request_duration_seconds_bucket", step);
      out_ += ",le=\"";
      append_number(out_, bound);
      out_ += '"';
      close_with(cumulative);
    }
    for (std::size_t i = latency.upper_bounds.size(); i < latency.counts.size(); ++i) {
      cumulative += latency.counts[i];
    }
    open_step_series("_request_duration_seconds_bucket", step);
    out_ += ",le=\"+Inf\"";
    close_with(cumulative);
    open_step_series("_request_duration_seconds_sum", step);
    close_with(latency.sum_seconds);
    // The +Inf bucket, not latency.count: a snapshot reads its counters one
    // by one, and a _count that disagrees with +Inf breaks histogram_quantile.
    open_step_series("_request_duration_seconds_count", step);
    close_with(cumulative);
  }

 private:
  std::string& out_;
  std::string_view prefix_;
};

std::size_t expected_size(const MetricsSnapshot& snapshot, std::string_view prefix) {
  constexpr std::size_t kFamilies = 12;
  constexpr std::size_t kHeaderBytes = 160;
  constexpr std::size_t kSampleBytes = 64;
  constexpr std::size_t kStepSamples = 1 + kRouteCount + kStatusClassCount + 4 + 3 + 3;
  std::size_t size = kFamilies * (kHeaderBytes + 2 * prefix.size());
  for (const StepMetrics& step : snapshot.steps) {
    const std::size_t samples = kStepSamples + step.latency.upper_bounds.size();
    size += samples * (kSampleBytes + prefix.size() + step.step.size());
  }
  return size;
}

}  // namespace
}  // namespace detail

const char* status_class_name(std::size_t index) noexcept {
  static constexpr const char* kNames[kStatusClassCount] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  return index < kStatusClassCount ? kNames[index] : "unknown";
}

std::string to_prometheus(const MetricsSnapshot& snapshot, std::string_view prefix) {
  if (!detail::is_metric_name(prefix)) {
    throw std::invalid_argument(
        fmt::format("metrics prefix \"{}\" does not match [a-zA-Z_:][a-zA-Z0-9_:]*", prefix));
  }
  std::string out;
  out.reserve(detail::expected_size(snapshot, prefix));
  detail::Exposition exposition(out, prefix);
  const auto& steps = snapshot.steps;

  exposition.family("_requests_total", "counter", "Requests accepted by execute(), per step.");
  for (const StepMetrics& s : steps) exposition.step_sample("_requests_total", s.step, s.requests);

  exposition.family("_outcomes_total", "counter", "Outcomes per step and route.");
  for (const StepMetrics& s : steps) {
    for (std::size_t r = 0; r < kRouteCount; ++r) {
      exposition.step_sample("_outcomes_total", s.step, "route", to_string(static_cast<Route>(r)),
                             s.by_route[r]);
    }
  }

  exposition.family("_answers_total", "counter",
                    "Outcomes per step and final HTTP status class; none: no HTTP answer.");
  for (const StepMetrics& s : steps) {
    for (std::size_t c = 0; c < kStatusClassCount; ++c) {
      exposition.step_sample("_answers_total", s.step, "status_class", status_class_name(c),
                             s.by_status_class[c]);
    }
  }

  exposition.family("_slow_answers_total", "counter",
                    "Answers slower than the slow answer threshold, per step; timeouts not included.");
  for (const StepMetrics& s : steps) exposition.step_sample("_slow_answers_total", s.step, s.slow_answers);

  exposition.family("_in_flight", "gauge", "Requests accepted and not yet completed, per step.");
  for (const StepMetrics& s : steps) exposition.step_sample("_in_flight", s.step, s.in_flight);

  exposition.family("_background_dropped_total", "counter",
                    "Fire-and-forget requests dropped unsent because max_background were running, per step.");
  for (const StepMetrics& s : steps) {
    exposition.step_sample("_background_dropped_total", s.step, s.background_dropped);
  }

  exposition.family(
      "_attempts_total", "counter",
      "HTTP attempts per step and kind: a request's first, a retry of the same URL, a fallback, a hedge.");
  for (const StepMetrics& s : steps) {
    exposition.step_sample("_attempts_total", s.step, "kind", "first", s.first_attempts);
    exposition.step_sample("_attempts_total", s.step, "kind", "retry", s.retries);
    exposition.step_sample("_attempts_total", s.step, "kind", "fallback", s.fallbacks);
    exposition.step_sample("_attempts_total", s.step, "kind", "hedge", s.hedges);
  }

  exposition.family("_bytes_sent_total", "counter", "Request heads and bodies sent, per step, in bytes.");
  for (const StepMetrics& s : steps) exposition.step_sample("_bytes_sent_total", s.step, s.bytes_sent);

  exposition.family("_bytes_received_total", "counter",
                    "Answer heads and bodies received, per step, in bytes.");
  for (const StepMetrics& s : steps) {
    exposition.step_sample("_bytes_received_total", s.step, s.bytes_received);
  }

  exposition.family("_request_duration_seconds", "histogram",
                    "The caller's wait for an outcome, cancelled ones excepted, per step, in seconds.");
  for (const StepMetrics& s : steps) exposition.histogram(s.step, s.latency);

  exposition.family("_client_in_flight", "gauge", "Requests accepted and not yet completed, across steps.");
  exposition.sample("_client_in_flight", snapshot.in_flight);

  exposition.family("_client_queued", "gauge", "Requests waiting for a slot under max_in_flight.");
  exposition.sample("_client_queued", snapshot.queued);

  exposition.family("_client_background", "gauge", "Fire-and-forget requests running in the background.");
  exposition.sample("_client_background", snapshot.background);

  exposition.family("_slow_answer_threshold_seconds", "gauge",
                    "Answers slower than this are counted as slow answers.");
  exposition.sample("_slow_answer_threshold_seconds",
                    std::chrono::duration<double>(snapshot.slow_answer_threshold).count());

  const auto& origins = snapshot.origins;
  exposition.family("_circuit_state", "gauge",
                    "Circuit breaker of an origin that has opened: 0 closed, 1 open, 2 half-open.");
  for (const OriginMetrics& o : origins) {
    exposition.origin_sample("_circuit_state", o.origin, static_cast<std::uint64_t>(o.circuit));
  }
  exposition.family("_circuit_opened_total", "counter", "Times an origin's circuit breaker opened.");
  for (const OriginMetrics& o : origins)
    exposition.origin_sample("_circuit_opened_total", o.origin, o.circuit_opened);
  exposition.family("_circuit_refused_total", "counter",
                    "Requests routed to on-error at once because their origin's circuit was open.");
  for (const OriginMetrics& o : origins) {
    exposition.origin_sample("_circuit_refused_total", o.origin, o.circuit_refused);
  }
  return out;
}

}  // namespace v0
}  // namespace passthru
