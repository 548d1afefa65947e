// The library's own spdlog logger, feeding the engine's LogSink or stderr.
// Never registered in spdlog's global registry: two clients, two loggers.
#pragma once

#include <passthru/log.hpp>

#include <spdlog/logger.h>

#include <memory>

namespace passthru {
inline namespace v0 {
namespace detail {

/// A logger named "passthru" at `level`, writing to `sink` (or standard
/// error when `sink` is empty). A sink that throws is ignored.
std::shared_ptr<spdlog::logger> make_logger(LogSink sink, LogLevel level);

/// spdlog's level for `level`.
spdlog::level::level_enum to_spdlog(LogLevel level);

}  // namespace detail
}  // namespace v0
}  // namespace passthru
