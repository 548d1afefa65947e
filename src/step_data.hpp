// The validated form of StepOptions that requests are built from.
#pragma once

#include <passthru/response_router.hpp>
#include <passthru/step_config.hpp>

#include <string>
#include <vector>

namespace passthru {
inline namespace v0 {
namespace detail {

struct StepData {
  StepOptions options;
  std::string base_url;  // options.url without its fragment: what is sent
  std::string host;      // for log lines
  std::string path;      // for log lines; never the query (it may hold secrets)
  std::string label;     // options.name, or host when empty
  ResponseRouter router;
  std::vector<std::string> header_lines;  // "Name: value", validated
  bool has_idempotency_key = false;       // the step sets its own Idempotency-Key
};

}  // namespace detail
}  // namespace v0
}  // namespace passthru
