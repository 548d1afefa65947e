// Micro-benchmarks of a step's validation (StepConfig::build) and of the
// Prometheus text a scrape reads (to_prometheus).
#include <passthru/metrics.hpp>
#include <passthru/step_config.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

using passthru::StepConfig;
using passthru::StepOptions;

StepOptions typical_options() {
  StepOptions options;
  options.url = "https://crm.example.com/ivr/lookup?tenant=acme#ct=2000&rt=5000";
  options.method = passthru::Method::post;
  options.routes.default_next = "main-menu";
  options.routes.on_error = "apology";
  options.routes.on_timeout = "general-queue";
  options.routes.known_applets = {"vip-connect", "standard-queue", "collections"};
  options.routes.external_flow_hosts = {"*.example.com"};
  options.headers = {{"Authorization", "Bearer 0123456789abcdef"}, {"X-Tenant", "acme"}};
  options.signing_keys = {std::string(32, 'k')};
  options.secret_names = {"token"};
  return options;
}

void BM_StepConfigBuild(benchmark::State& state) {
  const StepOptions options = typical_options();
  for (auto _ : state) {
    auto step = StepConfig::build(options);
    benchmark::DoNotOptimize(step);
  }
}
BENCHMARK(BM_StepConfigBuild);

void BM_StepConfigRefused(benchmark::State& state) {
  StepOptions options = typical_options();
  options.headers.push_back({"Bad Name", "x"});
  for (auto _ : state) {
    try {
      auto step = StepConfig::build(options);
      benchmark::DoNotOptimize(step);
    } catch (const passthru::ConfigError& error) {
      benchmark::DoNotOptimize(error.field());
    }
  }
}
BENCHMARK(BM_StepConfigRefused);

// A scrape of a client with `steps` steps, each with a filled histogram.
void BM_ToPrometheus(benchmark::State& state) {
  passthru::MetricsSnapshot snapshot;
  const std::vector<double> bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 30};
  for (int i = 0; i < state.range(0); ++i) {
    passthru::StepMetrics step;
    step.step = "step-" + std::to_string(i);
    step.requests = 1000 + static_cast<std::uint64_t>(i);
    step.by_route = {700, 50, 100, 100, 40, 10};
    step.latency.upper_bounds = bounds;
    step.latency.counts.assign(bounds.size() + 1, 60);
    step.latency.count = 60 * (bounds.size() + 1);
    step.latency.sum_seconds = 123.4;
    snapshot.steps.push_back(step);
  }
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto text = passthru::to_prometheus(snapshot);
    bytes += text.size();
    benchmark::DoNotOptimize(text);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_ToPrometheus)->Arg(1)->Arg(16);

}  // namespace
