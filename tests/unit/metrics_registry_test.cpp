// detail::MetricsRegistry: which bucket an outcome lands in, what is counted,
// and the bound on how many steps are kept apart.
#include "metrics_registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::Outcome;
using passthru::Route;
using passthru::StepMetrics;
using passthru::detail::MetricsRegistry;
using passthru::detail::validate_latency_buckets;

Outcome outcome(Route route, int status, std::chrono::microseconds elapsed) {
  Outcome o;
  o.route = route;
  o.http_status = status;
  o.elapsed = elapsed;
  o.bytes_sent = 100;
  o.bytes_received = 10;
  return o;
}

StepMetrics only_step(const MetricsRegistry& registry) {
  const auto snapshot = registry.snapshot(0, 0);
  EXPECT_EQ(snapshot.steps.size(), 1u);
  return snapshot.steps.empty() ? StepMetrics{} : snapshot.steps.front();
}

TEST(MetricsRegistry, AnOutcomeOnABoundLandsInThatBoundsBucket) {
  MetricsRegistry registry({0.1, 1, 3}, 10, 3000ms);
  auto& step = registry.step("crm", 3000ms);  // the timeout is already a bound
  for (auto elapsed : {100000us, 100001us, 3000000us, 3000001us}) {
    step.accepted();
    step.completed(outcome(Route::next_applet, 200, elapsed), registry.slow_threshold());
  }
  const StepMetrics m = only_step(registry);
  EXPECT_EQ(m.latency.upper_bounds, (std::vector<double>{0.1, 1, 3}));
  EXPECT_EQ(m.latency.counts, (std::vector<std::uint64_t>{1, 1, 1, 1}));  // le is inclusive
  EXPECT_EQ(m.latency.count, 4u);
  EXPECT_DOUBLE_EQ(m.latency.sum_seconds, 6.200002);
  EXPECT_EQ(m.slow_answers, 1u);  // 3 s exactly is not over the guide's limit
  EXPECT_EQ(m.requests, 4u);
  EXPECT_EQ(m.in_flight, 0u);
  EXPECT_EQ(m.bytes_sent, 400u);
  EXPECT_EQ(m.bytes_received, 40u);
}

TEST(MetricsRegistry, TheStepsTimeoutBecomesABucketOfItsOwn) {
  MetricsRegistry registry({1, 10}, 10, 3000ms);
  registry.step("crm", 8000ms);
  EXPECT_EQ(only_step(registry).latency.upper_bounds, (std::vector<double>{1, 8, 10}));
  EXPECT_EQ(only_step(registry).latency.counts.size(), 4u);
}

TEST(MetricsRegistry, CountsRoutesAndStatusClassesAndLeavesCancelledOutOfTheHistogram) {
  MetricsRegistry registry({1}, 10, 3000ms);
  auto& step = registry.step("crm", 15000ms);
  const std::vector<Outcome> outcomes = {
      outcome(Route::next_applet, 200, 1ms), outcome(Route::default_next, 204, 1ms),
      outcome(Route::on_error, 503, 1ms),    outcome(Route::on_error, 404, 1ms),
      outcome(Route::on_error, 0, 1ms),      outcome(Route::on_timeout, 0, 15s),
      outcome(Route::cancelled, 0, 20s)};
  for (const Outcome& o : outcomes) {
    step.accepted();
    step.completed(o, registry.slow_threshold());
  }
  step.accepted();  // one still waiting
  const StepMetrics m = only_step(registry);
  EXPECT_EQ(m.requests, 8u);
  EXPECT_EQ(m.in_flight, 1u);
  EXPECT_EQ(m.by_route[static_cast<std::size_t>(Route::next_applet)], 1u);
  EXPECT_EQ(m.by_route[static_cast<std::size_t>(Route::default_next)], 1u);
  EXPECT_EQ(m.by_route[static_cast<std::size_t>(Route::on_error)], 3u);
  EXPECT_EQ(m.by_route[static_cast<std::size_t>(Route::on_timeout)], 1u);
  EXPECT_EQ(m.by_route[static_cast<std::size_t>(Route::cancelled)], 1u);
  EXPECT_EQ(m.by_status_class, (std::array<std::uint64_t, passthru::kStatusClassCount>{3, 0, 2, 0, 1, 1}));
  EXPECT_EQ(m.latency.count, 6u);  // not the cancelled one
  EXPECT_EQ(m.slow_answers, 0u);   // a timeout is not a slow answer
}

TEST(MetricsRegistry, StepsBeyondTheLimitAreCountedTogetherAsOther) {
  MetricsRegistry registry({1}, 2, 3000ms);
  for (const char* name : {"a", "b", "per-call-1", "per-call-2", "a"}) {
    auto& step = registry.step(name, 1000ms);
    step.accepted();
  }
  const auto snapshot = registry.snapshot(0, 0);
  ASSERT_EQ(snapshot.steps.size(), 3u);
  EXPECT_EQ(snapshot.steps[0].step, "a");
  EXPECT_EQ(snapshot.steps[0].requests, 2u);
  EXPECT_EQ(snapshot.steps[1].step, "b");
  EXPECT_EQ(snapshot.steps[2].step, "other");
  EXPECT_EQ(snapshot.steps[2].requests, 2u);
}

TEST(MetricsRegistry, ASnapshotWhileOtherThreadsCountIsSelfConsistent) {
  MetricsRegistry registry({0.001, 1}, 10, 3000ms);
  auto& step = registry.step("crm", 15000ms);
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        step.accepted();
        step.completed(outcome(Route::next_applet, 200, 2ms), registry.slow_threshold());
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    const StepMetrics m = only_step(registry);
    std::uint64_t sum = 0;
    for (auto c : m.latency.counts) sum += c;
    ASSERT_EQ(sum, m.latency.count);
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(only_step(registry).latency.count, 40000u);
}

TEST(LatencyBuckets, MustBePositiveFiniteAndStrictlyAscending) {
  EXPECT_NO_THROW(validate_latency_buckets({0.005, 3, 15}));
  EXPECT_NO_THROW(validate_latency_buckets({}));
  EXPECT_THROW(validate_latency_buckets({0, 1}), std::invalid_argument);
  EXPECT_THROW(validate_latency_buckets({-1}), std::invalid_argument);
  EXPECT_THROW(validate_latency_buckets({1, 1}), std::invalid_argument);
  EXPECT_THROW(validate_latency_buckets({2, 1}), std::invalid_argument);
  EXPECT_THROW(validate_latency_buckets({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_THROW(validate_latency_buckets({std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
}

}  // namespace
