// Many requests at once: --count requests, --concurrency of them in flight,
// with a live progress line.
#pragma once

#include <passthru/call_context.hpp>
#include <passthru/client.hpp>
#include <passthru/outcome.hpp>
#include <passthru/step_config.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace passthru_probe {

/// What a load test keeps of one outcome.
struct Sample {
  passthru::Route route = passthru::Route::default_next;
  std::string target;
  std::string error;   ///< error_name(), empty when the answer was understood.
  std::string reason;  ///< Kept only with an error.
  int http_status = 0;
  std::chrono::microseconds elapsed{0};
};

struct LoadRun {
  std::vector<Sample> samples;  ///< In completion order.
  std::chrono::microseconds wall{0};
};

struct LoadSettings {
  std::size_t count = 1;
  std::size_t concurrency = 1;
  bool progress = true;  ///< The progress line on standard error.
};

/// Sends `count` copies of `call`, the n-th (from 1) with CallSid
/// `<base_call_sid>-<n>`, keeping `concurrency` in flight, and returns once
/// every one has its outcome. The progress line is rewritten in place when
/// standard error is a terminal, and printed once a second otherwise.
LoadRun run_load(const passthru::StepConfig& step, const passthru::CallContext& call,
                 const std::string& base_call_sid, passthru::ClientOptions client_options,
                 const LoadSettings& settings);

}  // namespace passthru_probe
