// The run's tables (where calls went, latencies) and the check against the servers' design.
#pragma once

#include "call_plan.hpp"
#include "engine.hpp"
#include "expectations.hpp"
#include "flow.hpp"

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
};

/// Per flow: where the calls went (with the expected count when checking),
/// the requests the callers did not wait for, and latency percentiles.
void print_tables(const RunResults& results);

/// Every way the run differs from the design: tallies, each call's path and
/// prompts, calls that did not end exactly once, requests each server received.
/// Empty when the run is exactly as designed. Needs `results.expected`.
std::vector<std::string> differences(const RunResults& results);

}  // namespace flow_engine
