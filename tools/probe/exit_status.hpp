// The exit status that tells a script where the call would have gone.
#pragma once

#include <passthru/outcome.hpp>

namespace passthru_probe {

inline constexpr int kExitInternalFailure = 1;
inline constexpr int kExitUsage = 2;

/// 0 next_applet, 3 external_flow, 4 default, 5 on_error, 6 on_timeout;
/// 1 for cancelled, which only an internal failure causes.
int exit_status(passthru::Route route) noexcept;

/// The worse of two routes for a load test's exit status, in the order
/// next_applet, external_flow, default, on_error, on_timeout, cancelled.
passthru::Route worse_route(passthru::Route a, passthru::Route b) noexcept;

}  // namespace passthru_probe
