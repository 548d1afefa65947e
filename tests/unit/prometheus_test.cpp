// to_prometheus(): what a scrape reads, parsed back with a strict reader of
// the text format; and that reader refusing each defect it is there to catch.
#include <passthru/metrics.hpp>
#include <passthru/outcome.hpp>

#include "prometheus_text.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using passthru::kRouteCount;
using passthru::kStatusClassCount;
using passthru::LatencyHistogram;
using passthru::MetricsSnapshot;
using passthru::Route;
using passthru::StepMetrics;
using passthru::to_prometheus;
using passthru_test::PrometheusLabels;
using passthru_test::PrometheusText;
using passthru_test::PrometheusTextError;

// Every family to_prometheus() writes, with its type, by name without prefix.
const std::vector<std::pair<std::string, std::string>> kFamilies = {
    {"_requests_total", "counter"},
    {"_outcomes_total", "counter"},
    {"_answers_total", "counter"},
    {"_slow_answers_total", "counter"},
    {"_in_flight", "gauge"},
    {"_bytes_sent_total", "counter"},
    {"_bytes_received_total", "counter"},
    {"_request_duration_seconds", "histogram"},
    {"_client_in_flight", "gauge"},
    {"_client_queued", "gauge"},
    {"_client_background", "gauge"},
    {"_background_dropped_total", "counter"},
    {"_attempts_total", "counter"},
    {"_slow_answer_threshold_seconds", "gauge"},
    {"_circuit_state", "gauge"},
    {"_circuit_opened_total", "counter"},
    {"_circuit_refused_total", "counter"},
};

StepMetrics ivr_lookup() {
  StepMetrics step;
  step.step = "ivr-lookup";
  step.requests = 12;
  step.in_flight = 1;
  step.by_route = {5, 1, 2, 1, 1, 1};  // in Route order, 11 in all
  step.by_status_class = {3, 0, 8, 0, 0, 0};
  step.slow_answers = 2;
  step.background_dropped = 6;
  step.first_attempts = 11;
  step.retries = 4;
  step.fallbacks = 3;
  step.hedges = 2;
  step.bytes_sent = 4096;
  step.bytes_received = std::uint64_t{1} << 40;
  step.latency.upper_bounds = {0.005, 0.05, 0.5, 1, 3, 15};
  step.latency.counts = {1, 2, 3, 0, 2, 1, 1};
  step.latency.count = 10;
  step.latency.sum_seconds = 31.625;
  return step;
}

StepMetrics crm() {
  StepMetrics step;
  step.step = "crm";
  step.requests = 3;
  step.by_route = {0, 0, 0, 2, 1, 0};
  step.by_status_class = {1, 0, 0, 0, 1, 1};
  step.bytes_sent = 900;
  step.bytes_received = 77;
  step.latency.upper_bounds = {0.1, 3, 8};  // 8: the step's own timeout
  step.latency.counts = {0, 2, 0, 1};
  step.latency.count = 3;
  step.latency.sum_seconds = 0.1 + 2.5 + 9.0;
  return step;
}

MetricsSnapshot two_steps() {
  MetricsSnapshot snapshot;
  snapshot.steps = {crm(), ivr_lookup()};  // sorted by name
  snapshot.in_flight = 1;
  snapshot.queued = 4;
  snapshot.background = 2;
  snapshot.slow_answer_threshold = std::chrono::milliseconds(3000);
  return snapshot;
}

std::size_t samples_of(const StepMetrics& step) {
  return 1 + kRouteCount + kStatusClassCount + 5 + 4 + step.latency.upper_bounds.size() + 1 + 2;
}

// The parse error of `text`, or "" when it parses.
std::string parse_error(std::string_view text) {
  try {
    PrometheusText::parse(text);
  } catch (const PrometheusTextError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// Every figure of `step` is the value of its series in `parsed`.
void expect_step_reads_back(const PrometheusText& parsed, const StepMetrics& step,
                            const std::string& prefix = "passthru") {
  SCOPED_TRACE("step " + step.step);
  const PrometheusLabels of_step = {{"step", step.step}};
  EXPECT_EQ(parsed.value(prefix + "_requests_total", of_step), step.requests);
  EXPECT_EQ(parsed.value(prefix + "_in_flight", of_step), step.in_flight);
  EXPECT_EQ(parsed.value(prefix + "_slow_answers_total", of_step), step.slow_answers);
  EXPECT_EQ(parsed.value(prefix + "_background_dropped_total", of_step), step.background_dropped);
  EXPECT_EQ(parsed.value(prefix + "_attempts_total", {{"step", step.step}, {"kind", "first"}}),
            step.first_attempts);
  EXPECT_EQ(parsed.value(prefix + "_attempts_total", {{"step", step.step}, {"kind", "retry"}}), step.retries);
  EXPECT_EQ(parsed.value(prefix + "_attempts_total", {{"step", step.step}, {"kind", "fallback"}}),
            step.fallbacks);
  EXPECT_EQ(parsed.value(prefix + "_attempts_total", {{"step", step.step}, {"kind", "hedge"}}), step.hedges);
  EXPECT_EQ(parsed.value(prefix + "_bytes_sent_total", of_step), step.bytes_sent);
  EXPECT_EQ(parsed.value(prefix + "_bytes_received_total", of_step), step.bytes_received);
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    const char* route = to_string(static_cast<Route>(r));
    EXPECT_EQ(parsed.value(prefix + "_outcomes_total", {{"step", step.step}, {"route", route}}),
              step.by_route[r])
        << route;
  }
  for (std::size_t c = 0; c < kStatusClassCount; ++c) {
    const char* status_class = passthru::status_class_name(c);
    EXPECT_EQ(parsed.value(prefix + "_answers_total", {{"step", step.step}, {"status_class", status_class}}),
              step.by_status_class[c])
        << status_class;
  }
  const std::string histogram = prefix + "_request_duration_seconds";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < step.latency.upper_bounds.size(); ++i) {
    cumulative += step.latency.counts[i];
    double bound_read = -1;
    for (const auto* bucket : parsed.samples_named(histogram + "_bucket")) {
      if (bucket->labels.at("step") == step.step && bucket->labels.at("le") != "+Inf" &&
          std::stod(bucket->labels.at("le")) == step.latency.upper_bounds[i]) {
        bound_read = step.latency.upper_bounds[i];
        EXPECT_EQ(bucket->value, cumulative) << "le=" << bucket->labels.at("le");
      }
    }
    EXPECT_EQ(bound_read, step.latency.upper_bounds[i]) << "no bucket for bound " << i;
  }
  EXPECT_EQ(parsed.value(histogram + "_bucket", {{"step", step.step}, {"le", "+Inf"}}), step.latency.count);
  EXPECT_EQ(parsed.value(histogram + "_count", of_step), step.latency.count);
  EXPECT_EQ(parsed.value(histogram + "_sum", of_step), step.latency.sum_seconds);
}

// --- to_prometheus ---

TEST(ToPrometheus, TwoStepsParseBackWithEveryValueAsPutIn) {
  const MetricsSnapshot snapshot = two_steps();
  const PrometheusText parsed = PrometheusText::parse(to_prometheus(snapshot));

  expect_step_reads_back(parsed, snapshot.steps[0]);
  expect_step_reads_back(parsed, snapshot.steps[1]);
  EXPECT_EQ(parsed.value("passthru_client_in_flight"), 1);
  EXPECT_EQ(parsed.value("passthru_client_queued"), 4);
  EXPECT_EQ(parsed.value("passthru_client_background"), 2);
  EXPECT_EQ(parsed.value("passthru_slow_answer_threshold_seconds"), 3.0);
  EXPECT_EQ(parsed.samples().size(), samples_of(snapshot.steps[0]) + samples_of(snapshot.steps[1]) + 4)
      << "a series nobody asked for";
}

TEST(ToPrometheus, HistogramBucketsAreCumulativeAndEndInInfEqualToCount) {
  MetricsSnapshot snapshot;
  StepMetrics step;
  step.step = "s";
  step.latency.upper_bounds = {0.5, 1, 3};
  step.latency.counts = {4, 0, 2, 3};
  step.latency.count = 9;
  step.latency.sum_seconds = 20;
  snapshot.steps = {step};
  const std::string text = to_prometheus(snapshot);

  EXPECT_TRUE(contains(text,
                       "passthru_request_duration_seconds_bucket{step=\"s\",le=\"0.5\"} 4\n"
                       "passthru_request_duration_seconds_bucket{step=\"s\",le=\"1\"} 4\n"
                       "passthru_request_duration_seconds_bucket{step=\"s\",le=\"3\"} 6\n"
                       "passthru_request_duration_seconds_bucket{step=\"s\",le=\"+Inf\"} 9\n"
                       "passthru_request_duration_seconds_sum{step=\"s\"} 20\n"
                       "passthru_request_duration_seconds_count{step=\"s\"} 9\n"))
      << text;
  EXPECT_EQ(parse_error(text), "");
}

TEST(ToPrometheus, BoundsAndSumsAreWrittenInTheirShortestExactForm) {
  MetricsSnapshot snapshot;
  StepMetrics step;
  step.step = "s";
  step.latency.upper_bounds = {0.005, 0.1, 3, 15, 120};
  step.latency.counts = {0, 1, 0, 0, 0, 0};
  step.latency.count = 1;
  step.latency.sum_seconds = 0.1;
  snapshot.steps = {step};
  snapshot.slow_answer_threshold = std::chrono::milliseconds(2500);
  const std::string text = to_prometheus(snapshot);

  for (const char* le : {"le=\"0.005\"", "le=\"0.1\"", "le=\"3\"", "le=\"15\"", "le=\"120\""}) {
    EXPECT_TRUE(contains(text, le)) << le << " in\n" << text;
  }
  EXPECT_TRUE(contains(text, "passthru_request_duration_seconds_sum{step=\"s\"} 0.1\n")) << text;
  EXPECT_TRUE(contains(text, "passthru_slow_answer_threshold_seconds 2.5\n")) << text;
  EXPECT_FALSE(contains(text, "000000")) << text;
}

TEST(ToPrometheus, EveryRouteAndStatusClassHasASeriesEvenAtZero) {
  MetricsSnapshot snapshot;
  StepMetrics step;
  step.step = "quiet";
  snapshot.steps = {step};
  const PrometheusText parsed = PrometheusText::parse(to_prometheus(snapshot));

  for (const char* route :
       {"next_applet", "external_flow", "default", "on_error", "on_timeout", "cancelled"}) {
    EXPECT_EQ(parsed.value("passthru_outcomes_total", {{"step", "quiet"}, {"route", route}}), 0) << route;
  }
  for (const char* status_class : {"none", "1xx", "2xx", "3xx", "4xx", "5xx"}) {
    EXPECT_EQ(parsed.value("passthru_answers_total", {{"step", "quiet"}, {"status_class", status_class}}), 0)
        << status_class;
  }
  EXPECT_EQ(parsed.value("passthru_request_duration_seconds_bucket", {{"step", "quiet"}, {"le", "+Inf"}}), 0);
  EXPECT_EQ(parsed.value("passthru_request_duration_seconds_count", {{"step", "quiet"}}), 0);
}

TEST(ToPrometheus, StepNameWithQuoteBackslashAndNewlineRoundTrips) {
  MetricsSnapshot snapshot;
  StepMetrics step = crm();
  step.step = "say \"hi\"\\to\nme";
  snapshot.steps = {step};
  const std::string text = to_prometheus(snapshot);

  EXPECT_TRUE(contains(text, "passthru_requests_total{step=\"say \\\"hi\\\"\\\\to\\nme\"} 3\n")) << text;
  const PrometheusText parsed = PrometheusText::parse(text);
  expect_step_reads_back(parsed, step);
}

TEST(ToPrometheus, EmptySnapshotStillHasHelpAndTypeForEveryFamily) {
  const std::string text = to_prometheus(MetricsSnapshot{});
  const PrometheusText parsed = PrometheusText::parse(text);

  ASSERT_EQ(parsed.families().size(), kFamilies.size()) << text;
  for (const auto& [name, type] : kFamilies) {
    const auto* family = parsed.family("passthru" + name);
    ASSERT_NE(family, nullptr) << name;
    EXPECT_EQ(family->type, type) << name;
    EXPECT_TRUE(family->has_help) << name;
    EXPECT_FALSE(family->help.empty()) << name;
  }
  EXPECT_EQ(parsed.samples().size(), 4u) << "only the client's own gauges";
  EXPECT_EQ(parsed.value("passthru_slow_answer_threshold_seconds"), 0);
}

TEST(ToPrometheus, EachOriginsCircuitBreakerIsShownByState) {
  MetricsSnapshot snapshot;
  passthru::OriginMetrics open;
  open.origin = "https://crm.example.com:443";
  open.circuit = passthru::CircuitState::open;
  open.circuit_opened = 2;
  open.circuit_refused = 1000;
  passthru::OriginMetrics half;
  half.origin = "http://127.0.0.1:8080";
  half.circuit = passthru::CircuitState::half_open;
  half.circuit_opened = 1;
  snapshot.origins = {open, half};
  const PrometheusText parsed = PrometheusText::parse(to_prometheus(snapshot));
  EXPECT_EQ(parsed.value("passthru_circuit_state", {{"origin", open.origin}}), 1);
  EXPECT_EQ(parsed.value("passthru_circuit_state", {{"origin", half.origin}}), 2);
  EXPECT_EQ(parsed.value("passthru_circuit_opened_total", {{"origin", open.origin}}), 2);
  EXPECT_EQ(parsed.value("passthru_circuit_refused_total", {{"origin", open.origin}}), 1000);
  EXPECT_EQ(parsed.value("passthru_circuit_refused_total", {{"origin", half.origin}}), 0);
}

TEST(ToPrometheus, CustomPrefixStartsEveryMetricName) {
  const MetricsSnapshot snapshot = two_steps();
  const PrometheusText parsed = PrometheusText::parse(to_prometheus(snapshot, "ivr:engine_7"));

  for (const auto& family : parsed.families()) {
    EXPECT_EQ(family.name.rfind("ivr:engine_7_", 0), 0u) << family.name;
  }
  for (const auto& sample : parsed.samples()) {
    EXPECT_EQ(sample.name.rfind("ivr:engine_7_", 0), 0u) << sample.name;
  }
  EXPECT_EQ(parsed.families().size(), kFamilies.size());
  expect_step_reads_back(parsed, snapshot.steps[1], "ivr:engine_7");
}

TEST(ToPrometheus, PrefixThatIsNotAMetricNameThrows) {
  for (const char* prefix : {"", "7passthru", "pass-thru", "pass thru", "passthru{", "caf\xc3\xa9", "a\nb"}) {
    EXPECT_THROW(to_prometheus(two_steps(), prefix), std::invalid_argument) << '"' << prefix << '"';
  }
  for (const char* prefix : {"p", "_p", ":p", "pass_thru:v2", "P9"}) {
    EXPECT_NO_THROW(to_prometheus(two_steps(), prefix)) << prefix;
  }
}

TEST(StatusClassName, NamesEveryIndexAndFitsStatusClassOf) {
  EXPECT_STREQ(passthru::status_class_name(0), "none");
  EXPECT_STREQ(passthru::status_class_name(1), "1xx");
  EXPECT_STREQ(passthru::status_class_name(5), "5xx");
  EXPECT_STREQ(passthru::status_class_name(passthru::status_class_of(404)), "4xx");
  EXPECT_STREQ(passthru::status_class_name(passthru::status_class_of(0)), "none");
}

// --- the parser: a well-formed text, then each defect alone ---

constexpr std::string_view kWellFormed =
    "# HELP t_duration_seconds Time.\n"              // 1
    "# TYPE t_duration_seconds histogram\n"          // 2
    "t_duration_seconds_bucket{le=\"1\"} 1\n"        // 3
    "t_duration_seconds_bucket{le=\"2\"} 3\n"        // 4
    "t_duration_seconds_bucket{le=\"+Inf\"} 4\n"     // 5
    "t_duration_seconds_sum 5.5\n"                   // 6
    "t_duration_seconds_count 4\n"                   // 7
    "# TYPE t_requests_total counter\n"              // 8
    "t_requests_total{step=\"a\",route=\"x\"} 2\n"   // 9
    "t_requests_total{step=\"b\",route=\"x\"} 0\n";  // 10

std::string with_line(std::size_t line_no, std::string_view replacement) {
  std::string text(kWellFormed);
  std::size_t start = 0;
  for (std::size_t i = 1; i < line_no; ++i) start = text.find('\n', start) + 1;
  const std::size_t end = text.find('\n', start);
  return text.replace(start, end - start, replacement);
}

TEST(PrometheusTextParser, ReadsTheWellFormedTextTheRejectionTestsStartFrom) {
  const PrometheusText parsed = PrometheusText::parse(kWellFormed);
  EXPECT_EQ(parsed.value("t_duration_seconds_bucket", {{"le", "2"}}), 3);
  EXPECT_EQ(parsed.value("t_duration_seconds_sum"), 5.5);
  EXPECT_EQ(parsed.value("t_requests_total", {{"route", "x"}, {"step", "b"}}), 0);
  EXPECT_FALSE(parsed.has("t_requests_total", {{"step", "a"}}));
  EXPECT_THROW(parsed.value("t_requests_total", {{"step", "a"}}), std::out_of_range);
  ASSERT_NE(parsed.family("t_duration_seconds"), nullptr);
  EXPECT_EQ(parsed.family("t_duration_seconds")->help, "Time.");
}

TEST(PrometheusTextParser, ReadsEscapesSpecialValuesTimestampsAndComments) {
  const PrometheusText parsed = PrometheusText::parse(
      "# a comment\n"
      "# HELP g A \\\\ and a\\nline.\n"
      "# TYPE g gauge\n"
      "g{v=\"q\\\"b\\\\n\\n\"} +Inf 1700000000000\n"
      "g{v=\"neg\",} -Inf\n"
      "g{v=\"nan\"} NaN\n"
      "g{v=\"exp\"} -1.5e-3\n"
      "\n");
  EXPECT_EQ(parsed.family("g")->help, "A \\ and a\nline.");
  const auto& samples = parsed.samples();
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_EQ(samples[0].labels.at("v"), "q\"b\\n\n");
  EXPECT_EQ(samples[0].value, std::numeric_limits<double>::infinity());
  EXPECT_EQ(samples[0].timestamp_ms, 1700000000000);
  EXPECT_EQ(parsed.value("g", {{"v", "neg"}}), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(parsed.value("g", {{"v", "nan"}})));
  EXPECT_EQ(parsed.value("g", {{"v", "exp"}}), -1.5e-3);
}

TEST(PrometheusTextParser, RejectsBucketCountsThatDecrease) {
  const std::string error = parse_error(with_line(4, "t_duration_seconds_bucket{le=\"2\"} 0"));
  EXPECT_TRUE(contains(error, "line 4: bucket counts of t_duration_seconds decrease")) << error;
}

TEST(PrometheusTextParser, RejectsACountThatIsNotTheInfBucket) {
  const std::string error = parse_error(with_line(7, "t_duration_seconds_count 5"));
  EXPECT_TRUE(contains(error, "line 7: _count of t_duration_seconds is 5")) << error;
}

TEST(PrometheusTextParser, RejectsAHistogramWithoutAnInfBucket) {
  std::string text = with_line(5, "t_duration_seconds_bucket{le=\"3\"} 4");
  const std::string error = parse_error(text);
  EXPECT_TRUE(contains(error, "line 3: histogram t_duration_seconds has no le=\"+Inf\" bucket")) << error;
}

TEST(PrometheusTextParser, RejectsADuplicateSeriesWhateverItsLabelOrder) {
  const std::string error = parse_error(with_line(10, "t_requests_total{route=\"x\",step=\"a\"} 2"));
  EXPECT_TRUE(
      contains(error, "line 10: duplicate series t_requests_total{route=\"x\",step=\"a\"}, first at line 9"))
      << error;
}

TEST(PrometheusTextParser, RejectsASampleBeforeItsType) {
  std::string text(kWellFormed);
  text += "t_late_total 1\n# TYPE t_late_total counter\n";
  const std::string error = parse_error(text);
  EXPECT_TRUE(contains(error, "line 11: sample t_late_total has no TYPE line before it")) << error;
}

TEST(PrometheusTextParser, RejectsABadMetricName) {
  const std::string in_sample = parse_error(with_line(9, "t-requests_total{step=\"a\",route=\"x\"} 2"));
  EXPECT_TRUE(contains(in_sample, "line 9: bad metric name \"t-requests_total\"")) << in_sample;
  const std::string in_type = parse_error(with_line(8, "# TYPE 9t_requests_total counter"));
  EXPECT_TRUE(contains(in_type, "line 8: bad metric name \"9t_requests_total\"")) << in_type;
}

TEST(PrometheusTextParser, RejectsABadLabelNameOrEscape) {
  const std::string name = parse_error(with_line(9, "t_requests_total{st-ep=\"a\",route=\"x\"} 2"));
  EXPECT_TRUE(contains(name, "line 9: bad label name \"st-ep\"")) << name;
  const std::string escape = parse_error(with_line(9, "t_requests_total{step=\"a\\t\",route=\"x\"} 2"));
  EXPECT_TRUE(contains(escape, "line 9: bad escape in the value of label step")) << escape;
}

TEST(PrometheusTextParser, RejectsASecondTypeLine) {
  std::string text(kWellFormed);
  text += "# TYPE t_requests_total counter\n";
  const std::string error = parse_error(text);
  EXPECT_TRUE(contains(error, "line 11: second TYPE line for t_requests_total, first at line 8")) << error;
}

TEST(PrometheusTextParser, RejectsANegativeCounter) {
  const std::string error = parse_error(with_line(10, "t_requests_total{step=\"b\",route=\"x\"} -1"));
  EXPECT_TRUE(contains(error, "line 10: counter sample t_requests_total is -1")) << error;
}

TEST(PrometheusTextParser, RejectsAFamilySplitInTwoGroups) {
  std::string text(kWellFormed);
  text += "t_duration_seconds_sum{step=\"other\"} 1\n";
  const std::string error = parse_error(text);
  EXPECT_TRUE(contains(error, "line 11: samples of t_duration_seconds are not in one group")) << error;
}

TEST(PrometheusTextParser, RejectsABadValueAndAMissingFinalLineFeed) {
  const std::string value = parse_error(with_line(10, "t_requests_total{step=\"b\",route=\"x\"} 3.000.1"));
  EXPECT_TRUE(contains(value, "line 10: bad value \"3.000.1\"")) << value;
  const std::string text(kWellFormed.substr(0, kWellFormed.size() - 1));
  const std::string feed = parse_error(text);
  EXPECT_TRUE(contains(feed, "line 10: the last line does not end with a line feed")) << feed;
}

}  // namespace
