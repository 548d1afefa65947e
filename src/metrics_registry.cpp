#include "metrics_registry.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace passthru {
inline namespace v0 {
namespace detail {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
const std::string kOtherStep = "other";

std::vector<std::int64_t> to_microseconds(const std::vector<double>& seconds) {
  std::vector<std::int64_t> us;
  us.reserve(seconds.size());
  for (const double s : seconds) us.push_back(static_cast<std::int64_t>(std::llround(s * 1e6)));
  return us;
}

}  // namespace

StepCounters::StepCounters(std::string name, std::vector<double> upper_bounds)
    : name_(std::move(name)),
      upper_bounds_(std::move(upper_bounds)),
      upper_bounds_us_(to_microseconds(upper_bounds_)),
      buckets_(new Counter[upper_bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= upper_bounds_.size(); ++i) buckets_[i].store(0, kRelaxed);
}

void StepCounters::accepted() noexcept {
  requests_.fetch_add(1, kRelaxed);
  in_flight_.fetch_add(1, kRelaxed);
}

void StepCounters::completed(const Outcome& outcome, std::chrono::microseconds slow_threshold) noexcept {
  in_flight_.fetch_sub(1, kRelaxed);
  by_route_[static_cast<std::size_t>(outcome.route)].fetch_add(1, kRelaxed);
  by_status_class_[status_class_of(outcome.http_status)].fetch_add(1, kRelaxed);
  bytes_sent_.fetch_add(outcome.bytes_sent, kRelaxed);
  bytes_received_.fetch_add(outcome.bytes_received, kRelaxed);
  if (outcome.http_status != 0 && outcome.elapsed > slow_threshold) slow_answers_.fetch_add(1, kRelaxed);
  Endpoint previous = Endpoint::none;
  for (const Attempt& attempt : outcome.attempt_log) {
    if (attempt.hedged) {
      hedges_.fetch_add(1, kRelaxed);
      continue;
    }
    if (attempt.endpoint == Endpoint::fallback && previous != Endpoint::fallback) {
      fallbacks_.fetch_add(1, kRelaxed);
    } else if (previous == Endpoint::none) {
      first_attempts_.fetch_add(1, kRelaxed);
    } else {
      retries_.fetch_add(1, kRelaxed);
    }
    previous = attempt.endpoint;
  }
  // A cancelled request measures the caller (who hung up), not the server.
  if (outcome.route == Route::cancelled) return;
  const std::int64_t us = std::max<std::int64_t>(outcome.elapsed.count(), 0);
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(upper_bounds_us_.begin(), upper_bounds_us_.end(), us) - upper_bounds_us_.begin());
  buckets_[bucket].fetch_add(1, kRelaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(us), kRelaxed);
  observations_.fetch_add(1, kRelaxed);
}

StepMetrics StepCounters::read() const {
  StepMetrics metrics;
  metrics.step = name_;
  metrics.requests = requests_.load(kRelaxed);
  metrics.in_flight = in_flight_.load(kRelaxed);
  for (std::size_t i = 0; i < kRouteCount; ++i) metrics.by_route[i] = by_route_[i].load(kRelaxed);
  for (std::size_t i = 0; i < kStatusClassCount; ++i) {
    metrics.by_status_class[i] = by_status_class_[i].load(kRelaxed);
  }
  metrics.slow_answers = slow_answers_.load(kRelaxed);
  metrics.background_dropped = background_dropped_.load(kRelaxed);
  metrics.first_attempts = first_attempts_.load(kRelaxed);
  metrics.retries = retries_.load(kRelaxed);
  metrics.fallbacks = fallbacks_.load(kRelaxed);
  metrics.hedges = hedges_.load(kRelaxed);
  metrics.bytes_sent = bytes_sent_.load(kRelaxed);
  metrics.bytes_received = bytes_received_.load(kRelaxed);
  metrics.latency.upper_bounds = upper_bounds_;
  metrics.latency.counts.resize(upper_bounds_.size() + 1);
  // count is the sum of the buckets as read, so a scrape is self-consistent
  // even while observations land.
  for (std::size_t i = 0; i <= upper_bounds_.size(); ++i) {
    metrics.latency.counts[i] = buckets_[i].load(kRelaxed);
    metrics.latency.count += metrics.latency.counts[i];
  }
  metrics.latency.sum_seconds = static_cast<double>(sum_us_.load(kRelaxed)) / 1e6;
  return metrics;
}

MetricsRegistry::MetricsRegistry(std::vector<double> upper_bounds, std::size_t max_steps,
                                 std::chrono::milliseconds slow_threshold)
    : upper_bounds_(std::move(upper_bounds)), max_steps_(max_steps), slow_threshold_(slow_threshold) {}

StepCounters& MetricsRegistry::step(const std::string& name, std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (const auto found = steps_.find(name); found != steps_.end()) return *found->second;
  std::vector<double> bounds = upper_bounds_;
  const std::string* key = &name;
  if (steps_.size() >= max_steps_) {
    key = &kOtherStep;
    if (const auto other = steps_.find(kOtherStep); other != steps_.end()) return *other->second;
  } else {
    // The step's timeout is a bucket of its own: "answered in time" is one series.
    const double seconds = std::chrono::duration<double>(timeout).count();
    if (timeout.count() > 0 && std::find(bounds.begin(), bounds.end(), seconds) == bounds.end()) {
      bounds.insert(std::upper_bound(bounds.begin(), bounds.end(), seconds), seconds);
    }
  }
  auto counters = std::make_unique<StepCounters>(*key, std::move(bounds));
  StepCounters& ref = *counters;
  steps_.emplace(*key, std::move(counters));
  return ref;
}

MetricsSnapshot MetricsRegistry::snapshot(std::uint64_t in_flight, std::uint64_t queued) const {
  MetricsSnapshot snapshot;
  snapshot.in_flight = in_flight;
  snapshot.queued = queued;
  snapshot.slow_answer_threshold = std::chrono::duration_cast<std::chrono::milliseconds>(slow_threshold_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    snapshot.steps.reserve(steps_.size());
    for (const auto& [name, counters] : steps_) snapshot.steps.push_back(counters->read());
  }
  std::sort(snapshot.steps.begin(), snapshot.steps.end(),
            [](const StepMetrics& a, const StepMetrics& b) { return a.step < b.step; });
  return snapshot;
}

void validate_latency_buckets(const std::vector<double>& bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || bounds[i] <= 0) {
      throw std::invalid_argument(
          "passthru: ClientOptions::latency_buckets: each bound must be positive and finite");
    }
    if (i > 0 && bounds[i] <= bounds[i - 1]) {
      throw std::invalid_argument(
          "passthru: ClientOptions::latency_buckets: bounds must be strictly ascending");
    }
  }
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
