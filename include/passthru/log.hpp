// How the library hands its log lines to the engine.
#pragma once

#include <functional>
#include <string_view>

namespace passthru {
inline namespace v0 {

/// Severity of a log line, lowest first.
enum class LogLevel { trace, debug, info, warn, error, off };

/// Receives each log line the library emits at or above ClientOptions::log_level.
/// Called from the driver thread; must not block. Exceptions are swallowed.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

}  // namespace v0
}  // namespace passthru
