// Records the Outcomes that execute() callbacks receive, for tests to wait on.
#pragma once

#include <passthru/client.hpp>
#include <passthru/outcome.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace passthru_test {

/// How long a test waits for an event that should come in milliseconds.
/// Generous so a loaded machine does not fail a correct library.
inline constexpr std::chrono::milliseconds kGenerousWait{30000};

/// Sanitizer builds run several times slower: a test's timing bounds (never
/// its correctness checks) are multiplied by this.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr int kSanitizerSlowdown = 3;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

/// Collects outcomes keyed by request id and counts the callbacks per id, so
/// a test sees a request that is answered twice or never.
///
/// The callbacks share the collector's state, so one may outlive the collector.
class OutcomeCollector {
 public:
  OutcomeCollector();

  /// A callback for PassthruClient::execute() that records its Outcome.
  passthru::OutcomeCallback callback() const;

  /// Waits until callbacks have been called at least `n` times in all.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = kGenerousWait) const;
  /// Waits for the outcome of request `id`; empty on timeout.
  std::optional<passthru::Outcome> wait_for_id(std::uint64_t id,
                                               std::chrono::milliseconds timeout = kGenerousWait) const;

  /// Callbacks called so far, counting repeats.
  std::size_t total_calls() const;
  /// Callbacks called so far for request `id`.
  std::size_t calls_for(std::uint64_t id) const;
  /// Request ids whose callback was called more than once.
  std::vector<std::uint64_t> repeated_ids() const;
  /// The first outcome recorded for `id`, if any.
  std::optional<passthru::Outcome> outcome(std::uint64_t id) const;
  /// Every outcome, in the order the callbacks were called.
  std::vector<passthru::Outcome> outcomes() const;

 private:
  struct State {
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::vector<passthru::Outcome> outcomes;
    std::map<std::uint64_t, std::size_t> calls;
  };
  std::shared_ptr<State> state_;
};

}  // namespace passthru_test
