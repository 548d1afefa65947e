#include "report.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <set>
#include <utility>

namespace flow_engine {

namespace {

using Tally = std::map<std::string, std::size_t>;

// The loop may be busy when a request's wait passes waiting_after: a caller
// who waited this much longer must have heard hold music.
constexpr std::chrono::milliseconds kHoldMusicLeeway{100};

// Nearest rank: the smallest sample with at least p% of the samples at or below it.
double percentile_ms(const std::vector<std::chrono::microseconds>& sorted, double p) {
  const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  return static_cast<double>(sorted[std::max<std::size_t>(rank, 1) - 1].count()) / 1000.0;
}

struct FlowTallies {
  Tally paths;
  Tally detached;
  Tally expected_paths;
  Tally expected_detached;
  std::map<std::string, std::vector<std::chrono::microseconds>> step_latency;  // by applet
  std::map<std::string, std::vector<std::chrono::microseconds>> hold_music;    // by held applet: played
  std::vector<std::chrono::microseconds> call_latency;
  std::size_t calls = 0;
};

std::vector<FlowTallies> tally(const RunResults& results) {
  std::vector<FlowTallies> out(results.flows->flows().size());
  for (std::size_t i = 0; i < results.plan->size(); ++i) {
    FlowTallies& flow = out[(*results.plan)[i].flow];
    const CallRecord& record = (*results.records)[i];
    ++flow.calls;
    ++flow.paths[record.ends == 0 ? "(never ended: " + join_path(record.path) + ")" : join_path(record.path)];
    if (record.ends != 0) flow.call_latency.push_back(record.duration);
    for (const StepRecord& step : record.steps) {
      flow.step_latency[step.applet].push_back(step.elapsed);
      if (!step.held) {
        ++flow.detached[step.label];
        continue;
      }
      std::vector<std::chrono::microseconds>& played = flow.hold_music[step.applet];  // a row even if empty
      if (step.hold_music_starts > 0) played.push_back(step.hold_music_played);
    }
    if (results.expected != nullptr) {
      const ExpectedCall& expected = (*results.expected)[i];
      ++flow.expected_paths[join_path(expected.path)];
      for (const std::string& label : expected.detached) ++flow.expected_detached[label];
    }
  }
  return out;
}

// Rows of both tallies, the largest first.
std::vector<std::string> rows(const Tally& actual, const Tally& expected) {
  std::vector<std::string> keys;
  for (const auto& [key, count] : actual) keys.push_back(key);
  for (const auto& [key, count] : expected) {
    if (actual.count(key) == 0) keys.push_back(key);
  }
  const auto largest = [&](const std::string& key) {
    const auto a = actual.find(key);
    const auto e = expected.find(key);
    return std::max(a == actual.end() ? 0 : a->second, e == expected.end() ? 0 : e->second);
  };
  std::stable_sort(keys.begin(), keys.end(),
                   [&](const std::string& a, const std::string& b) { return largest(a) > largest(b); });
  return keys;
}

std::size_t count_of(const Tally& tally, const std::string& key) {
  const auto found = tally.find(key);
  return found == tally.end() ? 0 : found->second;
}

int width_of(const char* title, const std::vector<std::string>& keys) {
  int width = static_cast<int>(std::char_traits<char>::length(title));
  for (const std::string& key : keys) width = std::max(width, static_cast<int>(key.size()));
  return width;
}

void print_tally(const char* title, const Tally& actual, const Tally& expected, bool checking, int width) {
  const std::vector<std::string> keys = rows(actual, expected);
  std::printf("  %-*s %6s%s\n", width, title, "calls", checking ? "  expected" : "");
  for (const std::string& key : keys) {
    const std::size_t got = count_of(actual, key);
    if (!checking) {
      std::printf("  %-*s %6zu\n", width, key.c_str(), got);
      continue;
    }
    const std::size_t want = count_of(expected, key);
    std::printf("  %-*s %6zu  %8zu%s\n", width, key.c_str(), got, want, got == want ? "" : "  <- differs");
  }
}

void print_latency_row(const std::string& name, std::vector<std::chrono::microseconds> samples) {
  if (samples.empty()) return;
  std::sort(samples.begin(), samples.end());
  std::printf("  %-32s %6zu %9.1f %9.1f %9.1f %9.1f\n", name.c_str(), samples.size(),
              percentile_ms(samples, 50), percentile_ms(samples, 90), percentile_ms(samples, 99),
              percentile_ms(samples, 100));
}

// n: the calls that heard hold music at the step; the times: how long it played.
void print_hold_music_row(const std::string& applet, const std::vector<std::chrono::microseconds>& played) {
  const std::string name = "hold music at " + applet;
  if (played.empty()) {
    std::printf("  %-32s %6d %9s %9s %9s %9s\n", name.c_str(), 0, "-", "-", "-", "-");
    return;
  }
  print_latency_row(name, played);
}

// "10 ms", "1.5 s": a histogram bound, given in seconds.
std::string bound_text(double seconds) {
  char text[32];
  if (seconds < 1.0) {
    std::snprintf(text, sizeof text, "%g ms", seconds * 1000.0);
  } else {
    std::snprintf(text, sizeof text, "%g s", seconds);
  }
  return text;
}

// The upper bound of the histogram bucket holding the p-th percentile: "<= 10 ms".
std::string percentile_bound(const passthru::LatencyHistogram& histogram, double p) {
  if (histogram.count == 0) return "-";
  const auto rank = static_cast<std::uint64_t>(p / 100.0 * static_cast<double>(histogram.count) + 0.999999);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < histogram.upper_bounds.size(); ++i) {
    seen += histogram.counts[i];
    if (seen >= rank) return "<= " + bound_text(histogram.upper_bounds[i]);
  }
  return "> " + bound_text(histogram.upper_bounds.back());
}

// Observations at or below `seconds`, counted in whole buckets.
std::uint64_t within(const passthru::LatencyHistogram& histogram, double seconds) {
  std::uint64_t out = 0;
  for (std::size_t i = 0; i < histogram.upper_bounds.size() && histogram.upper_bounds[i] <= seconds; ++i)
    out += histogram.counts[i];
  return out;
}

// What the client itself counted, per step: the figures an operator's
// dashboard shows (passthru::to_prometheus), to read beside the tables above.
void print_metrics(const passthru::MetricsSnapshot& snapshot) {
  const double slow = std::chrono::duration<double>(snapshot.slow_answer_threshold).count();
  std::vector<std::vector<std::string>> table = {{"step", "requests", "next", "external", "default", "error",
                                                  "timeout", "cancelled", "in_flight", "slow",
                                                  "<= " + bound_text(slow), "p50", "p99"}};
  for (const passthru::StepMetrics& step : snapshot.steps) {
    std::vector<std::string> row = {step.step, std::to_string(step.requests)};
    for (const std::uint64_t count : step.by_route) row.push_back(std::to_string(count));
    row.push_back(std::to_string(step.in_flight));
    row.push_back(std::to_string(step.slow_answers));
    row.push_back(std::to_string(within(step.latency, slow)));
    row.push_back(percentile_bound(step.latency, 50));
    row.push_back(percentile_bound(step.latency, 99));
    table.push_back(std::move(row));
  }
  std::vector<int> widths(table.front().size(), 0);
  for (const auto& row : table) {
    for (std::size_t c = 0; c < row.size(); ++c)
      widths[c] = std::max(widths[c], static_cast<int>(row[c].size()));
  }
  std::printf("\n== client.metrics() per step: %llu in flight, %llu queued ==\n",
              static_cast<unsigned long long>(snapshot.in_flight),
              static_cast<unsigned long long>(snapshot.queued));
  for (const auto& row : table) {
    std::printf("  %-*s", widths[0], row[0].c_str());
    for (std::size_t c = 1; c < row.size(); ++c) std::printf("  %*s", widths[c], row[c].c_str());
    std::printf("\n");
  }
  std::printf(
      "  next ... cancelled: outcomes by route; slow: answers over %s; <= %s, p50, p99: from the latency "
      "histogram\n",
      bound_text(slow).c_str(), bound_text(slow).c_str());
}

// The prompts of the flow's first call that heard a {variable} filled in.
void print_sample(const RunResults& results, std::size_t flow_index) {
  const Flow& flow = results.flows->flows()[flow_index];
  for (std::size_t i = 0; i < results.plan->size(); ++i) {
    if ((*results.plan)[i].flow != flow_index) continue;
    const CallRecord& record = (*results.records)[i];
    const bool filled = std::any_of(record.path.begin(), record.path.end(), [&flow](const std::string& name) {
      const Applet* applet = flow.find(name);
      return applet != nullptr && applet->say.find('{') != std::string::npos;
    });
    if (!filled) continue;
    std::printf("  %s heard:", (*results.plan)[i].call_sid.c_str());
    for (const std::string& prompt : record.said) std::printf(" \"%s\"", prompt.c_str());
    std::printf("\n");
    return;
  }
}

// Hold music comes only once the wait is noticeable (on_waiting never fires
// early), always when the caller waited clearly longer, once per request, and
// never after the outcome (the engine reports that as an anomaly).
void check_hold_music(const RunResults& results, std::vector<std::string>& out) {
  const std::chrono::milliseconds after = results.hold_music_after;
  const auto ms = [](std::chrono::microseconds time) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(time).count()) + " ms";
  };
  for (std::size_t i = 0; i < results.plan->size(); ++i) {
    const PlannedCall& call = (*results.plan)[i];
    const Flow& flow = results.flows->flows()[call.flow];
    const std::string who = call.call_sid + " (" + flow.name + "): ";
    for (const StepRecord& step : (*results.records)[i].steps) {
      if (!step.held) continue;
      const std::string at = " at " + step.applet + " (outcome after " + ms(step.elapsed) + ")";
      if (step.hold_music_starts > 1) {
        out.push_back(who + "hold music started " + std::to_string(step.hold_music_starts) + " times" + at);
      }
      if (step.hold_music_starts > 0 && (after.count() == 0 || step.elapsed < after)) {
        out.push_back(who + "heard hold music" + at + ", sooner than the " + ms(after) +
                      " wait that starts it");
      }
      if (step.hold_music_starts > 0 && step.hold_music_after < after) {
        out.push_back(who + "hold music started after " + ms(step.hold_music_after) + at + ", sooner than " +
                      ms(after));
      }
      const Applet* applet = flow.find(step.applet);
      const bool can_wait_that_long = applet != nullptr && applet->options.timeout > after;
      if (after.count() > 0 && can_wait_that_long && step.elapsed > after + kHoldMusicLeeway &&
          step.hold_music_starts == 0) {
        out.push_back(who + "heard no hold music" + at + ", more than " + ms(after + kHoldMusicLeeway));
      }
    }
  }
}

// What the client counted for each step must be what the engine saw: one
// request and one outcome per StepRecord, by route; every outcome but the
// cancelled ones in the latency histogram; answers slower than the threshold.
void check_metrics(const RunResults& results, std::vector<std::string>& out) {
  const passthru::MetricsSnapshot& snapshot = *results.metrics;
  struct Counted {
    std::uint64_t requests = 0;
    std::array<std::uint64_t, passthru::kRouteCount> by_route{};
    std::uint64_t timed = 0;  // not cancelled: in the histogram
    std::uint64_t slow = 0;
  };
  std::map<std::string, Counted> engine;  // by step name, which is the applet's name
  for (const CallRecord& record : *results.records) {
    for (const StepRecord& step : record.steps) {
      Counted& counted = engine[step.applet];
      ++counted.requests;
      ++counted.by_route[static_cast<std::size_t>(step.route)];
      if (step.route != passthru::Route::cancelled) ++counted.timed;
      if (step.http_status != 0 && step.elapsed > snapshot.slow_answer_threshold) ++counted.slow;
    }
  }
  const auto differ = [&out](const std::string& step, const std::string& what, std::uint64_t metric,
                             std::uint64_t counted) {
    if (metric == counted) return;
    out.push_back("metrics " + step + ": " + what + " " + std::to_string(metric) + ", the engine counted " +
                  std::to_string(counted));
  };
  differ("(client)", "in_flight", snapshot.in_flight, 0);
  differ("(client)", "queued", snapshot.queued, 0);
  for (const passthru::StepMetrics& step : snapshot.steps) {
    const auto found = engine.find(step.step);
    const Counted counted = found == engine.end() ? Counted{} : found->second;
    differ(step.step, "requests", step.requests, counted.requests);
    for (std::size_t r = 0; r < passthru::kRouteCount; ++r) {
      differ(step.step, passthru::to_string(static_cast<passthru::Route>(r)), step.by_route[r],
             counted.by_route[r]);
    }
    differ(step.step, "in_flight", step.in_flight, 0);
    differ(step.step, "latency observations", step.latency.count, counted.timed);
    differ(step.step, "slow answers", step.slow_answers, counted.slow);
  }
  for (const auto& [name, counted] : engine) {
    const bool listed = std::any_of(snapshot.steps.begin(), snapshot.steps.end(),
                                    [&name](const passthru::StepMetrics& step) { return step.step == name; });
    if (!listed) differ(name, "requests (step missing from the metrics)", 0, counted.requests);
  }
}

}  // namespace

void print_tables(const RunResults& results) {
  const bool checking = results.expected != nullptr;
  const std::vector<FlowTallies> tallies = tally(results);
  for (std::size_t f = 0; f < tallies.size(); ++f) {
    const Flow& flow = results.flows->flows()[f];
    const FlowTallies& t = tallies[f];
    std::printf("\n== %s: %zu calls%s%s ==\n", flow.name.c_str(), t.calls,
                flow.use_case.empty() ? "" : " -- ", flow.use_case.c_str());
    const char* const went = "where the calls went";
    const char* const not_held = "requests the caller did not wait for";
    const bool any_not_held = !t.detached.empty() || !t.expected_detached.empty();
    const int width = std::max(width_of(went, rows(t.paths, t.expected_paths)),
                               any_not_held ? width_of(not_held, rows(t.detached, t.expected_detached)) : 0);
    print_tally(went, t.paths, t.expected_paths, checking, width);
    if (any_not_held) print_tally(not_held, t.detached, t.expected_detached, checking, width);
    std::printf("  %-32s %6s %9s %9s %9s %9s\n", "latency (ms)", "n", "p50", "p90", "p99", "max");
    for (const auto& [applet, samples] : t.step_latency) {
      const Applet* step = flow.find(applet);
      const bool held = step == nullptr || step->hold_caller;
      print_latency_row("Passthru " + applet + (held ? "" : " (not held)"), samples);
    }
    if (results.hold_music_after.count() > 0) {
      for (const auto& [applet, played] : t.hold_music) print_hold_music_row(applet, played);
    }
    print_latency_row("whole call", t.call_latency);
    print_sample(results, f);
  }
  if (results.metrics != nullptr) print_metrics(*results.metrics);
}

std::vector<std::string> differences(const RunResults& results) {
  std::vector<std::string> out;
  const std::vector<FlowTallies> tallies = tally(results);
  for (std::size_t f = 0; f < tallies.size(); ++f) {
    const std::string& flow = results.flows->flows()[f].name;
    const FlowTallies& t = tallies[f];
    for (const std::string& key : rows(t.paths, t.expected_paths)) {
      const std::size_t got = count_of(t.paths, key);
      const std::size_t want = count_of(t.expected_paths, key);
      if (got != want) {
        out.push_back("tally " + flow + ": " + key + ": " + std::to_string(got) + " calls, expected " +
                      std::to_string(want));
      }
    }
    for (const std::string& key : rows(t.detached, t.expected_detached)) {
      const std::size_t got = count_of(t.detached, key);
      const std::size_t want = count_of(t.expected_detached, key);
      if (got != want) {
        out.push_back("tally " + flow + ": not held " + key + ": " + std::to_string(got) + ", expected " +
                      std::to_string(want));
      }
    }
  }

  std::map<std::string, std::map<std::string, int>> expected_received;  // server -> CallSid -> requests
  for (std::size_t i = 0; i < results.plan->size(); ++i) {
    const PlannedCall& call = (*results.plan)[i];
    const CallRecord& record = (*results.records)[i];
    const ExpectedCall& expected = (*results.expected)[i];
    const std::string who = call.call_sid + " (" + results.flows->flows()[call.flow].name + "): ";
    for (const auto& [server, count] : expected.requests) expected_received[server][call.call_sid] = count;
    if (record.ends != 1)
      out.push_back(who + "ended " + std::to_string(record.ends) + " times, expected once");
    if (!record.problem.empty()) out.push_back(who + record.problem);
    if (record.path != expected.path) {
      std::string reasons;
      for (const StepRecord& step : record.steps) reasons += " [" + step.applet + ": " + step.reason + "]";
      out.push_back(who + "went " + join_path(record.path) + ", expected " + join_path(expected.path) +
                    reasons);
    } else if (record.said != expected.said) {
      out.push_back(who + "heard '" + join_path(record.said) + "', expected '" + join_path(expected.said) +
                    "'");
    }
    std::vector<std::string> detached;
    for (const StepRecord& step : record.steps) {
      if (!step.held) detached.push_back(step.label);
    }
    std::vector<std::string> expected_detached = expected.detached;
    std::sort(detached.begin(), detached.end());
    std::sort(expected_detached.begin(), expected_detached.end());
    if (detached != expected_detached) {
      out.push_back(who + "requests not held ended " + join_path(detached) + ", expected " +
                    join_path(expected_detached));
    }
  }

  // Each request reached its server exactly once: none lost, none sent twice.
  std::set<std::string> servers;
  for (const auto& [server, counts] : expected_received) servers.insert(server);
  for (const auto& [server, counts] : results.received) servers.insert(server);
  for (const std::string& server : servers) {
    const auto received = results.received.find(server);
    const std::map<std::string, int> none;
    const std::map<std::string, int>& got = received == results.received.end() ? none : received->second;
    const std::map<std::string, int>& want = expected_received[server];
    for (const auto& [sid, count] : got) {
      const auto expected = want.find(sid);
      const int expected_count = expected == want.end() ? 0 : expected->second;
      if (count != expected_count) {
        out.push_back("server " + server + " received " + std::to_string(count) + " requests for " + sid +
                      ", expected " + std::to_string(expected_count));
      }
    }
    for (const auto& [sid, count] : want) {
      if (got.count(sid) == 0) {
        out.push_back("server " + server + " received no request for " + sid + ", expected " +
                      std::to_string(count));
      }
    }
  }
  check_hold_music(results, out);
  if (results.metrics != nullptr) check_metrics(results, out);
  for (const std::string& anomaly : results.stats->anomalies) out.push_back(anomaly);
  return out;
}

}  // namespace flow_engine
