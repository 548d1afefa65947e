// One request, sent as an engine sends it, with what the hooks saw of it.
#pragma once

#include <passthru/call_context.hpp>
#include <passthru/client.hpp>
#include <passthru/hooks.hpp>
#include <passthru/outcome.hpp>
#include <passthru/step_config.hpp>

#include <optional>

namespace passthru_probe {

struct SingleResult {
  /// The request as RequestHooks::on_start saw it (secrets redacted); empty
  /// when it was refused before it was built.
  std::optional<passthru::RequestInfo> request;
  passthru::Outcome outcome;
};

/// Sends `call` through a client of its own made with `client_options`, and
/// waits for the outcome (by the step's timeout at the latest).
SingleResult run_single(const passthru::StepConfig& step, passthru::CallContext call,
                        passthru::ClientOptions client_options);

}  // namespace passthru_probe
