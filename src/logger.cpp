#include "logger.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>
#include <string>

namespace passthru {
inline namespace v0 {
namespace detail {
namespace {

LogLevel from_spdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return LogLevel::trace;
    case spdlog::level::debug: return LogLevel::debug;
    case spdlog::level::info: return LogLevel::info;
    case spdlog::level::warn: return LogLevel::warn;
    case spdlog::level::err:
    case spdlog::level::critical: return LogLevel::error;
    default: return LogLevel::off;
  }
}

// Hands the bare message to the engine's function: the engine's logger adds
// its own time stamp and prefix.
class FunctionSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit FunctionSink(LogSink function) : sink_(std::move(function)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    try {
      sink_(from_spdlog(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
    } catch (...) {
      // A faulty sink must not take a call's outcome down with it.
    }
  }
  void flush_() override {}

 private:
  LogSink sink_;
};

}  // namespace

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
    case LogLevel::off: return spdlog::level::off;
  }
  return spdlog::level::off;
}

std::shared_ptr<spdlog::logger> make_logger(LogSink sink, LogLevel level) {
  spdlog::sink_ptr target;
  if (sink) {
    target = std::make_shared<FunctionSink>(std::move(sink));
  } else {
    target = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    target->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [passthru] [%l] %v");
  }
  auto logger = std::make_shared<spdlog::logger>("passthru", std::move(target));
  logger->set_level(to_spdlog(level));
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
