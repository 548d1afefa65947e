// A load test's results: latency percentiles, a latency histogram with the
// guide's 3 s limit marked, and where the calls went.
#pragma once

#include "load_test.hpp"

#include <passthru/outcome.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>

namespace passthru_probe {

struct LoadReportSettings {
  std::size_t concurrency = 1;
  std::chrono::milliseconds slow{3000};      ///< --slow-ms, marked in the histogram.
  std::chrono::milliseconds timeout{15000};  ///< The step's: a bucket bound of its own.
  bool quiet = false;                        ///< The route tally only.
};

void print_load_report(std::FILE* out, const LoadRun& run, const LoadReportSettings& settings);

/// count, concurrency, duration, rate, latency_ms, histogram, slow answers,
/// routes (with targets), errors, exit_status.
nlohmann::ordered_json load_json(const LoadRun& run, const LoadReportSettings& settings);

/// The worst route of the run (see worse_route); cancelled when it is empty.
passthru::Route worst_route(const LoadRun& run);

}  // namespace passthru_probe
