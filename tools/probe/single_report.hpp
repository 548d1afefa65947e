// What one request sent, what came back, where the call goes and where the
// time went: as a report for people, or as one JSON object.
#pragma once

#include "single_request.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>

namespace passthru_probe {

struct ReportSettings {
  std::chrono::milliseconds slow{3000};  ///< --slow-ms
  bool verbose = false;                  ///< Whole bodies, not the first lines.
  bool quiet = false;                    ///< The route line only.
};

/// An answer arrived, later than `slow`. A timeout is not a slow answer: it
/// has its own route.
bool is_slow_answer(const passthru::Outcome& outcome, std::chrono::milliseconds slow);

void print_single_report(std::FILE* out, const SingleResult& result, const ReportSettings& settings);

/// request, answer, route, target, reason, error, variables, trace_id,
/// timings (in ms), wire figures, slow, exit_status.
nlohmann::ordered_json single_json(const SingleResult& result, const ReportSettings& settings);

/// The Outcome's timings in milliseconds, for JSON.
nlohmann::ordered_json timings_json(const passthru::Outcome& outcome);

}  // namespace passthru_probe
