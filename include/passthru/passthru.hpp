// Umbrella header: everything an engine needs to run Passthru steps.
#pragma once

#include <passthru/call_context.hpp>
#include <passthru/circuit_breaker.hpp>
#include <passthru/client.hpp>
#include <passthru/error.hpp>
#include <passthru/hooks.hpp>
#include <passthru/log.hpp>
#include <passthru/metrics.hpp>
#include <passthru/outcome.hpp>
#include <passthru/response_router.hpp>
#include <passthru/signature.hpp>
#include <passthru/step_config.hpp>
#include <passthru/version.hpp>
