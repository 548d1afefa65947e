#include "prometheus_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <system_error>

namespace passthru_test {
namespace {

constexpr std::size_t kShownLineChars = 160;

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

bool is_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_letter(s[i]) && s[i] != ':' && !(i > 0 && is_digit(s[i]))) return false;
  }
  return true;
}

bool is_label_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_letter(s[i]) && !(i > 0 && is_digit(s[i]))) return false;
  }
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Decimal numbers as Go's ParseFloat reads them, and the three specials the
// format names; not "inf", "nan", hex floats or digit separators.
std::optional<double> parse_value(std::string_view s) {
  if (s == "+Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t digits = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) ++digits;
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && is_digit(s[i]); ++i) ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const std::size_t exponent_start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == exponent_start) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);  // from_chars takes no '+'
  double value = 0.0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_timestamp(std::string_view s) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::string number_text(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string number_text(const PrometheusSample& sample) { return number_text(sample.value); }

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

enum class Role { plain, bucket, sum, count };

// One histogram series: the samples of one family with one label set but le.
struct HistogramSeries {
  std::string name;  // the family's, with the labels, for messages
  std::size_t first_line = 0;
  std::vector<std::pair<double, std::size_t>> buckets;  // le, sample index
  std::optional<std::size_t> sum;
  std::optional<std::size_t> count;
};

class Parser {
 public:
  std::vector<PrometheusFamily> families;
  std::vector<PrometheusSample> samples;
  std::map<std::string, std::size_t> family_index;
  std::map<std::pair<std::string, PrometheusLabels>, std::size_t> series_index;

  void run(std::string_view text) {
    if (!text.empty() && text.back() != '\n') {
      line_no_ = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
      line_ = text.substr(text.rfind('\n') == std::string_view::npos ? 0 : text.rfind('\n') + 1);
      fail("the last line does not end with a line feed");
    }
    std::size_t start = 0;
    while (start < text.size()) {
      const std::size_t end = text.find('\n', start);
      line_ = text.substr(start, end - start);
      lines_.push_back(line_);
      ++line_no_;
      pos_ = 0;
      parse_line();
      start = end + 1;
    }
    finish();
  }

 private:
  std::vector<std::string_view> lines_;
  std::string_view line_;
  std::size_t line_no_ = 0;
  std::size_t pos_ = 0;
  std::map<std::size_t, std::size_t> help_lines_;  // family index to its HELP line
  std::optional<std::size_t> current_family_;      // of the last sample
  std::set<std::size_t> finished_families_;        // whose group of samples has ended
  std::map<std::pair<std::size_t, PrometheusLabels>, HistogramSeries> histograms_;

  [[noreturn]] void fail(const std::string& what) const { fail_at(line_no_, what); }

  [[noreturn]] void fail_at(std::size_t line_no, const std::string& what) const {
    std::string_view shown = line_no >= 1 && line_no <= lines_.size() ? lines_[line_no - 1] : line_;
    std::string text(shown.substr(0, kShownLineChars));
    if (shown.size() > kShownLineChars) text += "...";
    throw PrometheusTextError(line_no, "line " + std::to_string(line_no) + ": " + what + ": " + text);
  }

  bool at_end() const { return pos_ >= line_.size(); }
  char peek() const { return at_end() ? '\0' : line_[pos_]; }

  bool skip_blanks() {
    const std::size_t start = pos_;
    while (!at_end() && is_blank(line_[pos_])) ++pos_;
    return pos_ > start;
  }

  template <typename Stop>
  std::string_view read_until(Stop stop) {
    const std::size_t start = pos_;
    while (!at_end() && !stop(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }

  std::string_view read_token() {
    return read_until([](char c) { return is_blank(c); });
  }

  std::size_t family_of(std::string_view name) {
    const auto found = family_index.find(std::string(name));
    if (found != family_index.end()) return found->second;
    PrometheusFamily family;
    family.name = std::string(name);
    families.push_back(std::move(family));
    family_index.emplace(std::string(name), families.size() - 1);
    return families.size() - 1;
  }

  void parse_line() {
    skip_blanks();
    if (at_end()) return;
    if (peek() == '#') {
      ++pos_;
      parse_comment();
    } else {
      parse_sample();
    }
  }

  void parse_comment() {
    skip_blanks();
    const std::string_view keyword = read_token();
    if (keyword != "HELP" && keyword != "TYPE") return;  // any other comment
    skip_blanks();
    const std::string_view name = read_token();
    if (name.empty()) fail(std::string(keyword) + " line without a metric name");
    if (!is_metric_name(name)) fail("bad metric name " + quoted(name));
    const std::size_t index = family_of(name);
    skip_blanks();
    if (keyword == "HELP") {
      if (families[index].has_help) fail("second HELP line for " + std::string(name));
      families[index].help = unescape_help();
      families[index].has_help = true;
      help_lines_[index] = line_no_;
      return;
    }
    const std::string_view type = read_token();
    skip_blanks();
    if (!at_end()) fail("text after the type");
    if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
        type != "untyped") {
      fail("unknown metric type " + quoted(type));
    }
    if (families[index].type_line != 0) {
      fail("second TYPE line for " + std::string(name) + ", first at line " +
           std::to_string(families[index].type_line));
    }
    if (type == "counter" && !ends_with(name, "_total")) {
      fail("counter " + std::string(name) + " does not end in _total");
    }
    families[index].type = std::string(type);
    families[index].type_line = line_no_;
  }

  std::string unescape_help() {
    std::string help;
    for (; !at_end(); ++pos_) {
      const char c = line_[pos_];
      if (c != '\\') {
        help += c;
        continue;
      }
      ++pos_;
      if (peek() == '\\') {
        help += '\\';
      } else if (peek() == 'n') {
        help += '\n';
      } else {
        fail("bad escape in HELP text (only \\\\ and \\n)");
      }
    }
    return help;
  }

  void parse_sample() {
    PrometheusSample sample;
    sample.line = line_no_;
    const std::string_view name = read_until([](char c) { return is_blank(c) || c == '{'; });
    if (!is_metric_name(name)) fail("bad metric name " + quoted(name));
    sample.name = std::string(name);
    bool blank = skip_blanks();
    if (peek() == '{') {
      parse_labels(sample.labels);
      blank = skip_blanks();
    }
    if (at_end()) fail("sample without a value");
    if (!blank) fail("no blank before the value");
    const std::string_view value_text = read_token();
    const std::optional<double> value = parse_value(value_text);
    if (!value) fail("bad value " + quoted(value_text));
    sample.value = *value;
    skip_blanks();
    if (!at_end()) {
      const std::string_view timestamp_text = read_token();
      sample.timestamp_ms = parse_timestamp(timestamp_text);
      if (!sample.timestamp_ms) fail("bad timestamp " + quoted(timestamp_text));
      skip_blanks();
      if (!at_end()) fail("text after the timestamp");
    }
    add(std::move(sample));
  }

  void parse_labels(PrometheusLabels& labels) {
    ++pos_;  // '{'
    for (;;) {
      skip_blanks();
      if (peek() == '}') break;  // also after a trailing comma, as Prometheus allows
      const std::string_view label = read_until([](char c) { return is_blank(c) || c == '=' || c == '}'; });
      if (!is_label_name(label)) fail("bad label name " + quoted(label));
      skip_blanks();
      if (peek() != '=') fail("no '=' after label " + std::string(label));
      ++pos_;
      skip_blanks();
      if (peek() != '"') fail("the value of label " + std::string(label) + " is not in double quotes");
      ++pos_;
      std::string value = read_label_value(label);
      if (!labels.emplace(std::string(label), std::move(value)).second) {
        fail("label " + std::string(label) + " given twice");
      }
      skip_blanks();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail("no ',' or '}' after the value of label " + std::string(label));
      }
    }
    ++pos_;  // '}'
  }

  std::string read_label_value(std::string_view label) {
    std::string value;
    for (; !at_end(); ++pos_) {
      const char c = line_[pos_];
      if (c == '"') {
        ++pos_;
        return value;
      }
      if (c != '\\') {
        value += c;
        continue;
      }
      ++pos_;
      switch (peek()) {
        case '\\': value += '\\'; break;
        case '"': value += '"'; break;
        case 'n': value += '\n'; break;
        default:
          fail("bad escape in the value of label " + std::string(label) + " (only \\\\, \\\" and \\n)");
      }
    }
    fail("the value of label " + std::string(label) + " has no closing quote");
  }

  // The family a sample belongs to by its TYPE line, and the sample's part in it.
  std::pair<std::size_t, Role> classify(const std::string& name) const {
    const auto exact = family_index.find(name);
    if (exact != family_index.end() && families[exact->second].type_line != 0) {
      if (families[exact->second].type == "histogram") {
        fail("a histogram's samples are " + name + "_bucket, " + name + "_sum and " + name + "_count");
      }
      return {exact->second, Role::plain};
    }
    static const std::pair<std::string_view, Role> kSuffixes[] = {
        {"_bucket", Role::bucket}, {"_sum", Role::sum}, {"_count", Role::count}};
    for (const auto& [suffix, role] : kSuffixes) {
      if (!ends_with(name, suffix)) continue;
      const auto base = family_index.find(name.substr(0, name.size() - suffix.size()));
      if (base == family_index.end() || families[base->second].type_line == 0) continue;
      const std::string& type = families[base->second].type;
      if (type == "histogram" || (type == "summary" && role != Role::bucket)) return {base->second, role};
    }
    fail("sample " + name + " has no TYPE line before it");
  }

  void add(PrometheusSample sample) {
    const auto [family, role] = classify(sample.name);
    if (current_family_ != family) {
      if (finished_families_.count(family) != 0) {
        fail("samples of " + families[family].name + " are not in one group");
      }
      if (current_family_) finished_families_.insert(*current_family_);
      current_family_ = family;
    }

    const std::string& type = families[family].type;
    const bool is_count = type == "counter" || (type == "histogram" && role != Role::sum) ||
                          (type == "summary" && role == Role::count);
    if (is_count && (std::isnan(sample.value) || sample.value < 0)) {
      fail(type + " sample " + sample.name + " is " + number_text(sample) + "; counts are never negative");
    }

    auto key = std::make_pair(sample.name, sample.labels);
    const auto [found, inserted] = series_index.emplace(key, samples.size());
    if (!inserted) {
      fail("duplicate series " + series_to_string(sample.name, sample.labels) + ", first at line " +
           std::to_string(samples[found->second].line));
    }

    if (type == "histogram") add_to_histogram(family, role, sample);
    samples.push_back(std::move(sample));
  }

  void add_to_histogram(std::size_t family, Role role, const PrometheusSample& sample) {
    PrometheusLabels labels = sample.labels;
    const auto le = labels.find("le");
    double bound = 0.0;
    if (role == Role::bucket) {
      if (le == labels.end()) fail("bucket " + sample.name + " has no le label");
      const std::optional<double> parsed = parse_value(le->second);
      if (!parsed || std::isnan(*parsed)) fail("le " + quoted(le->second) + " is not a number");
      bound = *parsed;
      labels.erase(le);
    } else if (le != labels.end()) {
      fail("le label on " + sample.name);
    }
    HistogramSeries& series = histograms_[{family, labels}];
    if (series.first_line == 0) {
      series.first_line = sample.line;
      series.name = series_to_string(families[family].name, labels);
    }
    const std::size_t index = samples.size();
    switch (role) {
      case Role::bucket: series.buckets.emplace_back(bound, index); break;
      case Role::sum: series.sum = index; break;
      case Role::count: series.count = index; break;
      case Role::plain: break;
    }
  }

  void finish() {
    for (const auto& [family, help_line] : help_lines_) {
      if (families[family].type_line == 0)
        fail_at(help_line, "HELP for " + families[family].name + " has no TYPE line");
    }
    std::vector<HistogramSeries*> in_order;
    for (auto& entry : histograms_) in_order.push_back(&entry.second);
    std::sort(in_order.begin(), in_order.end(), [](const HistogramSeries* a, const HistogramSeries* b) {
      return a->first_line < b->first_line;
    });
    for (HistogramSeries* series : in_order) check(*series);
  }

  void check(HistogramSeries& series) const {
    auto& buckets = series.buckets;
    if (buckets.empty()) fail_at(series.first_line, "histogram " + series.name + " has no buckets");
    std::stable_sort(buckets.begin(), buckets.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (std::size_t i = 1; i < buckets.size(); ++i) {
      const PrometheusSample& previous = samples[buckets[i - 1].second];
      const PrometheusSample& bucket = samples[buckets[i].second];
      if (buckets[i].first == buckets[i - 1].first) {
        fail_at(bucket.line, "second bucket of " + series.name + " with le=" + number_text(buckets[i].first) +
                                 ", first at line " + std::to_string(previous.line));
      }
      if (bucket.value < previous.value) {
        fail_at(bucket.line, "bucket counts of " + series.name +
                                 " decrease: le=" + quoted(bucket.labels.at("le")) + " has " +
                                 number_text(bucket) + ", le=" + quoted(previous.labels.at("le")) +
                                 " (line " + std::to_string(previous.line) + ") has " +
                                 number_text(previous) + "; buckets are cumulative");
      }
    }
    const PrometheusSample& last = samples[buckets.back().second];
    if (!std::isinf(buckets.back().first)) {
      fail_at(samples[buckets.front().second].line,
              "histogram " + series.name + " has no le=\"+Inf\" bucket");
    }
    if (!series.count) fail_at(series.first_line, "histogram " + series.name + " has no _count");
    if (!series.sum) fail_at(series.first_line, "histogram " + series.name + " has no _sum");
    const PrometheusSample& count = samples[*series.count];
    if (count.value != last.value) {
      fail_at(count.line, "_count of " + series.name + " is " + number_text(count) +
                              ", its le=\"+Inf\" bucket (line " + std::to_string(last.line) + ") " +
                              number_text(last) + "; they must be equal");
    }
  }
};

}  // namespace

PrometheusTextError::PrometheusTextError(std::size_t line, const std::string& message)
    : std::runtime_error(message), line_(line) {}

std::string series_to_string(const std::string& name, const PrometheusLabels& labels) {
  std::string text = name;
  if (labels.empty()) return text;
  text += '{';
  for (const auto& [label, value] : labels) {
    if (text.back() != '{') text += ',';
    text += label;
    text += "=\"";
    for (const char c : value) {
      if (c == '\\') {
        text += "\\\\";
      } else if (c == '"') {
        text += "\\\"";
      } else if (c == '\n') {
        text += "\\n";
      } else {
        text += c;
      }
    }
    text += '"';
  }
  text += '}';
  return text;
}

PrometheusText PrometheusText::parse(std::string_view text) {
  Parser parser;
  parser.run(text);
  PrometheusText parsed;
  parsed.families_ = std::move(parser.families);
  parsed.samples_ = std::move(parser.samples);
  parsed.family_index_ = std::move(parser.family_index);
  parsed.series_index_ = std::move(parser.series_index);
  return parsed;
}

bool PrometheusText::has(const std::string& name, const PrometheusLabels& labels) const {
  return series_index_.count({name, labels}) != 0;
}

double PrometheusText::value(const std::string& name, const PrometheusLabels& labels) const {
  const auto found = series_index_.find({name, labels});
  if (found != series_index_.end()) return samples_[found->second].value;
  std::string message = "no series " + series_to_string(name, labels) + "; series named " + name + ":";
  std::size_t listed = 0;
  for (const PrometheusSample& sample : samples_) {
    if (sample.name != name) continue;
    if (++listed > 20) {
      message += " ...";
      break;
    }
    message += ' ' + series_to_string(sample.name, sample.labels);
  }
  if (listed == 0) message += " none";
  throw std::out_of_range(message);
}

std::vector<const PrometheusSample*> PrometheusText::samples_named(const std::string& name) const {
  std::vector<const PrometheusSample*> named;
  for (const PrometheusSample& sample : samples_) {
    if (sample.name == name) named.push_back(&sample);
  }
  return named;
}

const PrometheusFamily* PrometheusText::family(const std::string& name) const {
  const auto found = family_index_.find(name);
  return found == family_index_.end() ? nullptr : &families_[found->second];
}

}  // namespace passthru_test
