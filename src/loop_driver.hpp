// Drives a TransferEngine from an event loop the engine runs.
#pragma once

#include "loop_hooks.hpp"

#include <passthru/event_loop.hpp>

#include <memory>

namespace passthru {
inline namespace v0 {
namespace detail {

class TransferEngine;

/// Forwards the engine's wishes (watch a socket, arm the timer, wake up) to
/// the engine-supplied EventLoop, whose entry points call back into the
/// TransferEngine. Everything else is the TransferEngine's, shared with the
/// ThreadDriver.
class LoopDriver final : public Driver {
 public:
  /// Attaches `engine` to `loop`; throws std::logic_error if the loop
  /// already has a client.
  LoopDriver(EventLoop& loop, std::shared_ptr<TransferEngine> engine);
  ~LoopDriver() override;

  LoopDriver(const LoopDriver&) = delete;
  LoopDriver& operator=(const LoopDriver&) = delete;

  /// Must run on the loop thread (or with the loop stopped), outside any
  /// outcome callback.
  void stop() override;

  void watch_socket(int fd, SocketInterest interest) override;
  void arm_timer(std::optional<Clock::time_point> when) override;
  void wake() override;

 private:
  EventLoop& loop_;
  std::shared_ptr<TransferEngine> engine_;
  bool stopped_ = false;
};

}  // namespace detail
}  // namespace v0
}  // namespace passthru
