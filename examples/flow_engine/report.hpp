// The run's tables (where calls went, latencies) and the check against the servers' design.
#pragma once

#include "call_plan.hpp"
#include "engine.hpp"
#include "expectations.hpp"
#include "flow.hpp"

#include <passthru/metrics.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace flow_engine {

/// Everything a run produced, and (for --check) what it should have produced.
struct RunResults {
  const FlowBook* flows = nullptr;
  const std::vector<PlannedCall>* plan = nullptr;
  const std::vector<CallRecord>* records = nullptr;
  const EngineStats* stats = nullptr;
  /// Per call, by the servers' design; null without --check.
  const std::vector<ExpectedCall>* expected = nullptr;
  /// Requests each customer server received, by CallSid.
  std::map<std::string, std::map<std::string, int>> received;
  /// RequestHooks::waiting_after: a held caller hears hold music after this wait; 0: never.
  std::chrono::milliseconds hold_music_after{0};
  /// client.metrics(), taken after every call ended, just before the client was destroyed.
  const passthru::MetricsSnapshot* metrics = nullptr;
};

/// Per flow: where the calls went (with the expected count when checking),
/// the requests the callers did not wait for, latency percentiles and the
/// calls that heard hold music; then the client's metrics per step.
void print_tables(const RunResults& results);

/// Every way the run differs from the design: tallies, each call's path and
/// prompts, calls that did not end exactly once, requests each server received,
/// hold music where the wait was not noticeable (or none where it was), and
/// client metrics that disagree with the engine's own tallies.
/// Empty when the run is exactly as designed. Needs `results.expected`.
std::vector<std::string> differences(const RunResults& results);

}  // namespace flow_engine
