// Optional adapter: send passthru's log lines to an existing spdlog::logger.
// Include it only where the engine already uses spdlog.
#pragma once

#include <passthru/log.hpp>

#include <spdlog/logger.h>

#include <memory>

namespace passthru {
inline namespace v0 {

/// A LogSink that forwards every line to `logger` at the same level.
inline LogSink spdlog_sink(std::shared_ptr<spdlog::logger> logger) {
  return [logger = std::move(logger)](LogLevel level, std::string_view message) {
    auto lvl = spdlog::level::off;
    switch (level) {
      case LogLevel::trace: lvl = spdlog::level::trace; break;
      case LogLevel::debug: lvl = spdlog::level::debug; break;
      case LogLevel::info: lvl = spdlog::level::info; break;
      case LogLevel::warn: lvl = spdlog::level::warn; break;
      case LogLevel::error: lvl = spdlog::level::err; break;
      case LogLevel::off: return;
    }
    logger->log(lvl, "{}", message);
  };
}

}  // namespace v0
}  // namespace passthru
