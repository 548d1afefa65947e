// The boundary between the transfer logic and whoever runs the event loop.
//
// TransferEngine holds everything a request needs: building it, the libcurl
// multi handle, deadlines, routing and the single callback. A driver only
// supplies readiness and time through this interface, so the ThreadDriver
// (our own epoll thread) and a driver run by the engine's own loop share
// every line of request, routing and deadline logic.
#pragma once

#include <chrono>
#include <optional>

namespace passthru {
inline namespace v0 {
namespace detail {

using Clock = std::chrono::steady_clock;

/// Which readiness a socket is watched for.
enum class SocketInterest { none, read, write, read_write };

class LoopHooks {
 public:
  virtual ~LoopHooks() = default;

  /// Loop thread, possibly from inside a libcurl callback: start, change or
  /// (with none) stop watching `fd`. Must not call back into the engine.
  virtual void watch_socket(int fd, SocketInterest interest) = 0;

  /// Loop thread: fire TransferEngine::on_timer() once at `when` (replacing
  /// any earlier arming); nullopt disarms. A time in the past means now.
  virtual void arm_timer(std::optional<Clock::time_point> when) = 0;

  /// Any thread: make the loop call TransferEngine::on_wake() soon.
  virtual void wake() = 0;

  /// True when a socket closed while watched is simply dropped by the loop
  /// (epoll: closing the last descriptor of a socket removes it), so that
  /// idle connections may stay watched between requests, saving the watch
  /// and unwatch of every request. False (the default) keeps the rule that
  /// an fd is unwatched before it is closed: libcurl 7.88 closes some idle
  /// connections without CURLOPT_CLOSESOCKETFUNCTION, and an EventLoop's
  /// adapter must never be left polling a closed fd (libuv, asio).
  virtual bool tolerates_closed_fds() const noexcept { return false; }
};

/// What PassthruClient holds: the LoopHooks of one driver, plus its end.
class Driver : public LoopHooks {
 public:
  /// Completes every request with Route::cancelled, closes every connection
  /// and detaches from the engine. Idempotent.
  virtual void stop() = 0;
};

}  // namespace detail
}  // namespace v0
}  // namespace passthru
