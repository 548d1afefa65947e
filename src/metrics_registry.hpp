// The counters behind PassthruClient::metrics(): written by the driver
// thread with relaxed atomics, read by any thread.
#pragma once

#include <passthru/metrics.hpp>
#include <passthru/outcome.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace passthru {
inline namespace v0 {
namespace detail {

/// One step's counters. Never moves or dies while its registry lives, so a
/// request may keep a reference from submit() to its outcome.
class StepCounters {
 public:
  StepCounters(std::string name, std::vector<double> upper_bounds);

  /// A request was accepted.
  void accepted() noexcept;
  /// An accepted request ended with `outcome`.
  void completed(const Outcome& outcome, std::chrono::microseconds slow_threshold) noexcept;
  /// A fire-and-forget request was dropped (it completes too).
  void dropped_from_background() noexcept { background_dropped_.fetch_add(1, std::memory_order_relaxed); }

  StepMetrics read() const;
  const std::string& name() const noexcept { return name_; }

 private:
  using Counter = std::atomic<std::uint64_t>;
  const std::string name_;
  const std::vector<double> upper_bounds_;  // seconds
  const std::vector<std::int64_t> upper_bounds_us_;
  Counter requests_{0};
  Counter in_flight_{0};
  Counter slow_answers_{0};
  Counter background_dropped_{0};
  Counter first_attempts_{0};
  Counter retries_{0};
  Counter fallbacks_{0};
  Counter hedges_{0};
  Counter bytes_sent_{0};
  Counter bytes_received_{0};
  std::array<Counter, kRouteCount> by_route_{};
  std::array<Counter, kStatusClassCount> by_status_class_{};
  std::unique_ptr<Counter[]> buckets_;  // upper_bounds_.size() + 1, the last for +Inf
  Counter observations_{0};
  Counter sum_us_{0};
};

/// Every step's counters, by step name, at most `max_steps` of them.
class MetricsRegistry {
 public:
  /// `upper_bounds`: ClientOptions::latency_buckets, already validated.
  MetricsRegistry(std::vector<double> upper_bounds, std::size_t max_steps,
                  std::chrono::milliseconds slow_threshold);

  /// Any thread. The counters of step `name`, made on first use with the
  /// client's buckets plus `timeout`; past max_steps names, those of "other".
  StepCounters& step(const std::string& name, std::chrono::milliseconds timeout);

  std::chrono::microseconds slow_threshold() const noexcept { return slow_threshold_; }

  /// Any thread.
  MetricsSnapshot snapshot(std::uint64_t in_flight, std::uint64_t queued) const;

 private:
  const std::vector<double> upper_bounds_;
  const std::size_t max_steps_;
  const std::chrono::microseconds slow_threshold_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<StepCounters>> steps_;  // guarded by mutex_
};

/// Throws std::invalid_argument unless `bounds` are ascending, positive and finite.
void validate_latency_buckets(const std::vector<double>& bounds);

}  // namespace detail
}  // namespace v0
}  // namespace passthru
