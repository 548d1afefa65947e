// Drives a TransferEngine from one internal thread with epoll.
#pragma once

#include "loop_hooks.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

namespace passthru {
inline namespace v0 {
namespace detail {

class TransferEngine;

/// Runs `engine` on a thread of its own until stop(). Socket readiness comes
/// from epoll, wake-ups from other threads from an eventfd, and the engine's
/// single timer is the epoll_wait timeout, so an idle client sleeps in the
/// kernel. A wake-up asked for on the driver thread itself (execute() from an
/// outcome callback) is a flag the loop reads at the end of its turn.
class ThreadDriver final : public Driver {
 public:
  explicit ThreadDriver(std::shared_ptr<TransferEngine> engine);
  ~ThreadDriver() override;

  ThreadDriver(const ThreadDriver&) = delete;
  ThreadDriver& operator=(const ThreadDriver&) = delete;

  /// Shuts the engine down on the driver thread (every request completes
  /// with Route::cancelled) and joins it. Idempotent.
  void stop() override;

  void watch_socket(int fd, SocketInterest interest) override;
  void arm_timer(std::optional<Clock::time_point> when) override;
  void wake() override;
  bool tolerates_closed_fds() const noexcept override { return true; }

 private:
  void run();
  int wait_timeout_ms() const;

  std::shared_ptr<TransferEngine> engine_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::optional<Clock::time_point> timer_;
  bool woken_here_ = false;  // driver thread only
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace detail
}  // namespace v0
}  // namespace passthru
