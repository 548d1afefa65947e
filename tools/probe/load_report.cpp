#include "load_report.hpp"

#include "exit_status.hpp"
#include "text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace passthru_probe {
namespace {

constexpr std::size_t kRoutes = 6;
constexpr std::size_t kBarWidth = 40;
constexpr std::size_t kTopTargets = 5;
constexpr std::size_t kTopErrors = 5;

struct RouteTally {
  std::size_t count = 0;
  std::map<std::string, std::size_t> targets;
};

struct ErrorTally {
  std::string error;
  std::string reason;
  std::size_t count = 0;
};

struct Latency {
  std::chrono::microseconds min{0}, p50{0}, p90{0}, p99{0}, max{0}, mean{0};
};

struct Histogram {
  std::vector<std::chrono::milliseconds> upper_bounds;  ///< Then one bucket above the last.
  std::vector<std::size_t> counts;                      ///< upper_bounds.size() + 1 of them.
  std::size_t slow_bucket = 0;                          ///< The bucket whose bound is --slow-ms.
};

struct Summary {
  Latency latency;
  Histogram histogram;
  std::array<RouteTally, kRoutes> routes{};
  std::vector<ErrorTally> errors;  ///< Most frequent first.
  std::size_t slow_answers = 0;
  double rate = 0.0;  ///< Outcomes per second.
};

// Nearest rank: the smallest sample with at least p% of them at or below it.
std::chrono::microseconds percentile(const std::vector<std::chrono::microseconds>& sorted, double p) {
  if (sorted.empty()) return std::chrono::microseconds(0);
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

Histogram make_histogram(const std::vector<std::chrono::microseconds>& sorted,
                         const LoadReportSettings& settings) {
  Histogram h;
  for (long ms : {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 3000, 5000, 10000, 15000, 30000, 60000}) {
    h.upper_bounds.emplace_back(ms);
  }
  h.upper_bounds.push_back(settings.slow);
  h.upper_bounds.push_back(settings.timeout);
  std::sort(h.upper_bounds.begin(), h.upper_bounds.end());
  h.upper_bounds.erase(std::unique(h.upper_bounds.begin(), h.upper_bounds.end()), h.upper_bounds.end());
  h.slow_bucket = static_cast<std::size_t>(
      std::find(h.upper_bounds.begin(), h.upper_bounds.end(), settings.slow) - h.upper_bounds.begin());
  h.counts.assign(h.upper_bounds.size() + 1, 0);
  std::size_t bucket = 0;
  for (const auto elapsed : sorted) {
    while (bucket < h.upper_bounds.size() && elapsed > h.upper_bounds[bucket]) ++bucket;
    ++h.counts[bucket];
  }
  return h;
}

Summary summarize(const LoadRun& run, const LoadReportSettings& settings) {
  Summary s;
  std::vector<std::chrono::microseconds> sorted;
  sorted.reserve(run.samples.size());
  std::map<std::pair<std::string, std::string>, std::size_t> errors;
  std::chrono::microseconds total{0};
  for (const Sample& sample : run.samples) {
    sorted.push_back(sample.elapsed);
    total += sample.elapsed;
    RouteTally& tally = s.routes[std::min(static_cast<std::size_t>(sample.route), kRoutes - 1)];
    ++tally.count;
    if (!sample.target.empty()) ++tally.targets[sample.target];
    if (!sample.error.empty()) ++errors[{sample.error, sample.reason}];
    if (sample.http_status != 0 && sample.elapsed > settings.slow) ++s.slow_answers;
  }
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.empty()) {
    s.latency = {sorted.front(),         percentile(sorted, 50), percentile(sorted, 90),
                 percentile(sorted, 99), sorted.back(),          total / static_cast<long>(sorted.size())};
  }
  s.histogram = make_histogram(sorted, settings);
  for (auto& [key, count] : errors) s.errors.push_back({key.first, key.second, count});
  std::stable_sort(s.errors.begin(), s.errors.end(),
                   [](const ErrorTally& a, const ErrorTally& b) { return a.count > b.count; });
  const double seconds = std::chrono::duration<double>(run.wall).count();
  s.rate = seconds > 0 ? static_cast<double>(run.samples.size()) / seconds : 0.0;
  return s;
}

const char* route_name(std::size_t index) { return passthru::to_string(static_cast<passthru::Route>(index)); }

// "vip-connect 12, standard-queue 6", the most frequent first.
std::string top_targets(const std::map<std::string, std::size_t>& targets) {
  std::vector<std::pair<std::string, std::size_t>> sorted(targets.begin(), targets.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text;
  for (std::size_t i = 0; i < sorted.size() && i < kTopTargets; ++i) {
    text += fmt::format("{}{} {}", i == 0 ? "" : ", ", one_line(sorted[i].first), sorted[i].second);
  }
  if (sorted.size() > kTopTargets) text += fmt::format(", {} more targets", sorted.size() - kTopTargets);
  return text;
}

std::string route_tally_line(const Summary& s) {
  std::string line;
  for (std::size_t r = 0; r < kRoutes; ++r) {
    if (s.routes[r].count == 0) continue;
    line += fmt::format("{}{} {}", line.empty() ? "" : ", ", route_name(r), s.routes[r].count);
  }
  return line.empty() ? "no outcomes" : line;
}

std::string bucket_label(const Histogram& h, std::size_t bucket) {
  return bucket < h.upper_bounds.size() ? fmt::format("<= {} ms", h.upper_bounds[bucket].count())
                                        : fmt::format("> {} ms", h.upper_bounds.back().count());
}

void print_histogram(std::FILE* out, const Summary& s, const LoadReportSettings& settings) {
  const Histogram& h = s.histogram;
  const auto most = *std::max_element(h.counts.begin(), h.counts.end());
  std::size_t first = h.counts.size();
  std::size_t last = 0;
  for (std::size_t b = 0; b < h.counts.size(); ++b) {
    if (h.counts[b] == 0) continue;
    first = std::min(first, b);
    last = b;
  }
  if (first == h.counts.size()) return;
  // From the fastest answers to the slowest, and never without the limit.
  first = std::min(first, h.slow_bucket);
  last = std::max(last, h.slow_bucket);
  std::size_t samples = 0;
  for (const auto count : h.counts) samples += count;

  fmt::print(out, "Latency histogram (the caller's wait, per request)\n");
  for (std::size_t b = first; b <= last; ++b) {
    const std::size_t count = h.counts[b];
    // A run of empty buckets before the limit's own row is one line.
    std::size_t empty_run = 0;
    while (b + empty_run < h.slow_bucket && h.counts[b + empty_run] == 0) ++empty_run;
    if (empty_run >= 3) {
      fmt::print(out, "  {:>11} |{:<{}}| {:>6}         none from {} to {} ms\n", "...", "", kBarWidth, 0,
                 b == 0 ? 0 : h.upper_bounds[b - 1].count(), h.upper_bounds[b + empty_run - 1].count());
      b += empty_run - 1;
      continue;
    }
    const std::size_t bar = (count * kBarWidth + most - 1) / most;  // rounded up: one mark for any count
    fmt::print(out, "  {:>11} |{:<{}}| {:>6} {:>5.1f}%\n", bucket_label(h, b), std::string(bar, '#'),
               kBarWidth, count, 100.0 * static_cast<double>(count) / static_cast<double>(samples));
    if (b == h.slow_bucket) {
      fmt::print(out, "  {:->11}-+{:->{}}+ {} ms (--slow-ms): the guide's limit\n", "", "", kBarWidth,
                 settings.slow.count());
    }
  }
}

}  // namespace

passthru::Route worst_route(const LoadRun& run) {
  if (run.samples.empty()) return passthru::Route::cancelled;
  passthru::Route worst = run.samples.front().route;
  for (const Sample& sample : run.samples) worst = worse_route(worst, sample.route);
  return worst;
}

void print_load_report(std::FILE* out, const LoadRun& run, const LoadReportSettings& settings) {
  const Summary s = summarize(run, settings);
  if (settings.quiet) {
    fmt::print(out, "{}\n", route_tally_line(s));
    return;
  }
  fmt::print(out, "{:<11}{} in {:.2f} s ({:.1f}/s), {} in flight at a time\n", "Requests", run.samples.size(),
             std::chrono::duration<double>(run.wall).count(), s.rate, settings.concurrency);
  fmt::print(out, "{:<11}min {}, p50 {}, p90 {}, p99 {}, max {}, mean {}\n", "Latency",
             format_ms(s.latency.min), format_ms(s.latency.p50), format_ms(s.latency.p90),
             format_ms(s.latency.p99), format_ms(s.latency.max), format_ms(s.latency.mean));
  fmt::print(out, "\n");
  print_histogram(out, s, settings);
  fmt::print(out, "\nRoutes\n");
  for (std::size_t r = 0; r < kRoutes; ++r) {
    const RouteTally& tally = s.routes[r];
    if (tally.count == 0) continue;
    fmt::print(out, "  {:<13} {:>6} {:>5.1f}%  {}\n", route_name(r), tally.count,
               100.0 * static_cast<double>(tally.count) / static_cast<double>(run.samples.size()),
               top_targets(tally.targets));
  }
  if (!s.errors.empty()) {
    fmt::print(out, "\nErrors\n");
    for (std::size_t i = 0; i < s.errors.size() && i < kTopErrors; ++i) {
      fmt::print(out, "  {:>6}  {}: {}\n", s.errors[i].count, s.errors[i].error,
                 one_line(s.errors[i].reason));
    }
    if (s.errors.size() > kTopErrors) fmt::print(out, "  ... {} more kinds\n", s.errors.size() - kTopErrors);
  }
  if (s.slow_answers > 0) {
    fmt::print(out,
               "\n{:<11}{} of {} answers took longer than --slow-ms {} ms. The guide asks for answers within "
               "3 s: callers wait in silence or hold music meanwhile.\n",
               "WARNING", s.slow_answers, run.samples.size(), settings.slow.count());
  }
}

nlohmann::ordered_json load_json(const LoadRun& run, const LoadReportSettings& settings) {
  const Summary s = summarize(run, settings);
  nlohmann::ordered_json json;
  json["count"] = run.samples.size();
  json["concurrency"] = settings.concurrency;
  json["duration_ms"] = to_ms(run.wall);
  json["rate_per_s"] = s.rate;
  json["latency_ms"] = {{"min", to_ms(s.latency.min)}, {"p50", to_ms(s.latency.p50)},
                        {"p90", to_ms(s.latency.p90)}, {"p99", to_ms(s.latency.p99)},
                        {"max", to_ms(s.latency.max)}, {"mean", to_ms(s.latency.mean)}};
  nlohmann::ordered_json histogram = nlohmann::ordered_json::array();
  for (std::size_t b = 0; b < s.histogram.counts.size(); ++b) {
    nlohmann::ordered_json bound = nullptr;  // the last bucket has none
    if (b < s.histogram.upper_bounds.size()) bound = s.histogram.upper_bounds[b].count();
    histogram.push_back({{"le_ms", bound}, {"count", s.histogram.counts[b]}});
  }
  json["histogram"] = std::move(histogram);
  json["slow_ms"] = settings.slow.count();
  json["slow_answers"] = s.slow_answers;
  nlohmann::ordered_json routes = nlohmann::ordered_json::object();
  for (std::size_t r = 0; r < kRoutes; ++r) {
    routes[route_name(r)] = {{"count", s.routes[r].count}, {"targets", s.routes[r].targets}};
  }
  json["routes"] = std::move(routes);
  nlohmann::ordered_json errors = nlohmann::ordered_json::array();
  for (const ErrorTally& e : s.errors)
    errors.push_back({{"error", e.error}, {"reason", e.reason}, {"count", e.count}});
  json["errors"] = std::move(errors);
  json["exit_status"] = exit_status(worst_route(run));
  return json;
}

}  // namespace passthru_probe
