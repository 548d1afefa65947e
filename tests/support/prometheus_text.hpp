// A strict reader of the Prometheus text exposition format 0.0.4, for tests of
// what to_prometheus() renders and what a /metrics endpoint serves.
//
//   auto text = passthru_test::PrometheusText::parse(body);  // throws on any defect
//   EXPECT_EQ(text.value("passthru_outcomes_total", {{"step", "crm"}, {"route", "on_timeout"}}), 1);
//
// parse() throws PrometheusTextError, naming the line, for any of:
// - a line the grammar does not allow: metric names [a-zA-Z_:][a-zA-Z0-9_:]*,
//   label names [a-zA-Z_][a-zA-Z0-9_]*, label values in double quotes with only
//   \\ \" \n escaped, a value that is a decimal number, +Inf, -Inf or NaN, an
//   optional integer timestamp (milliseconds); the last line must end in \n;
// - a HELP or TYPE line given twice for one name, a TYPE that is not counter,
//   gauge, histogram, summary or untyped, a HELP without a TYPE;
// - a sample with no TYPE line for its family before it (every sample must
//   have one, untyped included), or a family's samples not in one group;
// - the same series twice (same name, same labels in any order), or a label
//   given twice in one sample;
// - a counter whose name does not end in _total, or a counter sample that is
//   negative or NaN (a convention of Prometheus' naming, not of the format);
// - a histogram series (one label set but `le`) whose samples are not
//   _bucket{le=...}, _sum and _count, whose `le` is not a number or is given
//   twice, whose bucket counts decrease as `le` grows, that has no le="+Inf"
//   bucket, no _sum or no _count, or whose _count differs from its +Inf bucket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace passthru_test {

/// Label name to its value, unescaped. Order does not matter.
using PrometheusLabels = std::map<std::string, std::string>;

/// One sample line.
struct PrometheusSample {
  std::string name;         ///< As written: "passthru_request_duration_seconds_bucket".
  PrometheusLabels labels;  ///< Unescaped; `le` and `quantile` included.
  double value = 0.0;       ///< +Inf, -Inf and NaN as such.
  std::optional<std::int64_t> timestamp_ms;
  std::size_t line = 0;  ///< 1-based line number in the text.
};

/// A metric family, named as its TYPE line names it: "passthru_requests_total",
/// "passthru_request_duration_seconds" (whose samples are _bucket, _sum, _count).
struct PrometheusFamily {
  std::string name;
  std::string type;  ///< "counter", "gauge", "histogram", "summary" or "untyped".
  std::string help;  ///< Unescaped; empty without a HELP line.
  bool has_help = false;
  std::size_t type_line = 0;
};

/// What parse() found wrong. what() reads "line N: <defect>: <the line>".
class PrometheusTextError : public std::runtime_error {
 public:
  PrometheusTextError(std::size_t line, const std::string& message);
  /// 1-based; 0 for a defect of the whole text.
  std::size_t line() const noexcept { return line_; }

 private:
  std::size_t line_;
};

/// `name{a="1",b="2"}` with values escaped as the format escapes them, for
/// messages.
std::string series_to_string(const std::string& name, const PrometheusLabels& labels);

/// A parsed, checked exposition.
class PrometheusText {
 public:
  /// Throws PrometheusTextError for the first defect found (see above).
  static PrometheusText parse(std::string_view text);

  /// True when the series `name` with exactly these labels (no more, no
  /// fewer) is present.
  bool has(const std::string& name, const PrometheusLabels& labels = {}) const;
  /// The value of that series; std::out_of_range, listing the series of that
  /// name that are present, when it is not.
  double value(const std::string& name, const PrometheusLabels& labels = {}) const;
  /// Every sample named `name` (a histogram's are "<family>_bucket" and so on).
  std::vector<const PrometheusSample*> samples_named(const std::string& name) const;
  /// The family of that TYPE name, or nullptr.
  const PrometheusFamily* family(const std::string& name) const;

  /// In the order of their first HELP or TYPE line.
  const std::vector<PrometheusFamily>& families() const noexcept { return families_; }
  /// In the order of the text.
  const std::vector<PrometheusSample>& samples() const noexcept { return samples_; }

 private:
  std::vector<PrometheusFamily> families_;
  std::vector<PrometheusSample> samples_;
  std::map<std::string, std::size_t> family_index_;
  std::map<std::pair<std::string, PrometheusLabels>, std::size_t> series_index_;
};

}  // namespace passthru_test
