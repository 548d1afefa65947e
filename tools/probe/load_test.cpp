#include "load_test.hpp"

#include "text.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <utility>

namespace passthru_probe {
namespace {

constexpr std::size_t kRoutes = 6;  // Route's values, cancelled the last

struct Progress {
  std::size_t done = 0;
  std::size_t in_flight = 0;
  std::array<std::size_t, kRoutes> by_route{};
};

std::string progress_line(const Progress& p, std::size_t count, std::chrono::steady_clock::duration running) {
  const double seconds = std::chrono::duration<double>(running).count();
  std::string line =
      fmt::format("passthru-probe: {}/{} done, {} in flight, {:.1f} s, {:.1f}/s", p.done, count, p.in_flight,
                  seconds, seconds > 0 ? static_cast<double>(p.done) / seconds : 0.0);
  const char* separator = "; ";
  for (std::size_t r = 0; r < kRoutes; ++r) {
    if (p.by_route[r] == 0) continue;
    line += fmt::format("{}{} {}", separator, passthru::to_string(static_cast<passthru::Route>(r)),
                        p.by_route[r]);
    separator = ", ";
  }
  return line;
}

class LoadTest {
 public:
  LoadTest(const passthru::StepConfig& step, const passthru::CallContext& call,
           const std::string& base_call_sid, const LoadSettings& settings)
      : step_(step), call_(call), base_call_sid_(base_call_sid), settings_(settings) {
    samples_.reserve(settings.count);
  }

  LoadRun run(passthru::ClientOptions client_options) {
    const bool tty = ::isatty(::fileno(stderr)) == 1;
    const auto tick = tty ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
    const auto start = std::chrono::steady_clock::now();
    auto finished = start;
    {
      passthru::PassthruClient client(std::move(client_options));
      client_ = &client;
      const std::size_t first = std::min(settings_.concurrency, settings_.count);
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        launched_ = first;
        progress_.in_flight = first;
      }
      for (std::size_t i = 0; i < first; ++i) launch(i);

      std::unique_lock<std::mutex> lock(mutex_);
      auto next_tick = start + tick;
      while (!changed_.wait_until(lock, next_tick, [this] { return progress_.done == settings_.count; })) {
        next_tick += tick;
        if (settings_.progress) {
          const std::string line =
              progress_line(progress_, settings_.count, std::chrono::steady_clock::now() - start);
          if (tty) {
            fmt::print(stderr, "\r{}\x1b[K", line);
          } else {
            fmt::print(stderr, "{}\n", line);
          }
          std::fflush(stderr);
        }
      }
      lock.unlock();
      finished = std::chrono::steady_clock::now();
      // Every outcome is in; the client's destructor waits for the callback
      // still returning.
    }
    LoadRun result;
    result.wall = std::chrono::duration_cast<std::chrono::microseconds>(finished - start);
    if (settings_.progress) {
      const std::string line = progress_line(progress_, settings_.count, result.wall);
      if (tty) {
        fmt::print(stderr, "\r{}\x1b[K\n", line);
      } else {
        fmt::print(stderr, "{}\n", line);
      }
    }
    result.samples = std::move(samples_);
    return result;
  }

 private:
  void launch(std::size_t index) {
    passthru::CallContext call = call_;
    call.call_sid = fmt::format("{}-{}", base_call_sid_, index + 1);
    client_->execute(step_, std::move(call),
                     [this](passthru::Outcome outcome) { completed(std::move(outcome)); });
  }

  // On the client's thread.
  void completed(passthru::Outcome outcome) {
    Sample sample;
    sample.route = outcome.route;
    sample.target = std::move(outcome.target);
    sample.error = error_name(outcome.error);
    if (outcome.error) sample.reason = std::move(outcome.reason);
    sample.http_status = outcome.http_status;
    sample.elapsed = outcome.elapsed;

    std::optional<std::size_t> next;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto route = static_cast<std::size_t>(sample.route);
      if (route < kRoutes) ++progress_.by_route[route];
      samples_.push_back(std::move(sample));
      ++progress_.done;
      if (launched_ < settings_.count) next = launched_++;
      progress_.in_flight = launched_ - progress_.done;
    }
    changed_.notify_all();
    if (next) launch(*next);
  }

  const passthru::StepConfig& step_;
  const passthru::CallContext& call_;
  const std::string& base_call_sid_;
  const LoadSettings settings_;
  passthru::PassthruClient* client_ = nullptr;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t launched_ = 0;
  Progress progress_;
  std::vector<Sample> samples_;
};

}  // namespace

LoadRun run_load(const passthru::StepConfig& step, const passthru::CallContext& call,
                 const std::string& base_call_sid, passthru::ClientOptions client_options,
                 const LoadSettings& settings) {
  LoadTest test(step, call, base_call_sid, settings);
  return test.run(std::move(client_options));
}

}  // namespace passthru_probe
