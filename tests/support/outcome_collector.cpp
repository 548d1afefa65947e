#include "outcome_collector.hpp"

#include <utility>

namespace passthru_test {

OutcomeCollector::OutcomeCollector() : state_(std::make_shared<State>()) {}

passthru::OutcomeCallback OutcomeCollector::callback() const {
  return [state = state_](passthru::Outcome outcome) {
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      ++state->calls[outcome.request_id];
      state->outcomes.push_back(std::move(outcome));
    }
    state->changed.notify_all();
  };
}

bool OutcomeCollector::wait_for(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mutex);
  return state_->changed.wait_for(lock, timeout, [&] { return state_->outcomes.size() >= n; });
}

std::optional<passthru::Outcome> OutcomeCollector::wait_for_id(std::uint64_t id,
                                                               std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (!state_->changed.wait_for(lock, timeout, [&] { return state_->calls.count(id) > 0; })) {
    return std::nullopt;
  }
  for (const auto& o : state_->outcomes) {
    if (o.request_id == id) return o;
  }
  return std::nullopt;
}

std::size_t OutcomeCollector::total_calls() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->outcomes.size();
}

std::size_t OutcomeCollector::calls_for(std::uint64_t id) const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  auto it = state_->calls.find(id);
  return it == state_->calls.end() ? 0 : it->second;
}

std::vector<std::uint64_t> OutcomeCollector::repeated_ids() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  std::vector<std::uint64_t> ids;
  for (const auto& [id, count] : state_->calls) {
    if (count > 1) ids.push_back(id);
  }
  return ids;
}

std::optional<passthru::Outcome> OutcomeCollector::outcome(std::uint64_t id) const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  for (const auto& o : state_->outcomes) {
    if (o.request_id == id) return o;
  }
  return std::nullopt;
}

std::vector<passthru::Outcome> OutcomeCollector::outcomes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->outcomes;
}

}  // namespace passthru_test
