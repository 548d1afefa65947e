// The engine's own event loop, driving a PassthruClient without a thread of ours.
#pragma once

#include <passthru/export.hpp>

#include <chrono>

namespace passthru {
inline namespace v0 {

namespace detail {
class TransferEngine;
class LoopDriver;
}  // namespace detail

/// What a socket is to be watched for. `none` means stop watching it.
enum class Watch { none, read, write, read_write };

/// Bits of the `events` mask handed to EventLoop::socket_ready().
struct Ready {
  static constexpr int read = 1;   ///< The socket is readable (or hung up).
  static constexpr int write = 2;  ///< The socket is writable.
  static constexpr int error = 4;  ///< The socket reported an error.
};

/// The seam between a PassthruClient and an event loop the engine already
/// runs (Asio, libuv, libevent, its own epoll). Derive from it, implement the
/// four hooks, and have the loop call the three entry points; then construct
/// the client with `PassthruClient(loop, options)`. No thread of ours exists:
/// requests advance, and outcome callbacks run, inside the entry points.
///
///     loop                          client
///     ────                          ──────
///     watch_socket(fd, what)  ◄──   wants readiness of fd (none: forget it)
///     arm_timer(when)         ◄──   wants timer_expired() at `when`
///     cancel_timer()          ◄──   no longer wants it
///     wake()                  ◄──   wants woken() soon (any thread)
///     socket_ready(fd, ev)    ──►   fd is ready
///     timer_expired()         ──►   the armed time has come
///     woken()                 ──►   the wake() asked for
///
/// Rules, which the shipped adapters (<passthru/asio.hpp>, <passthru/uv.hpp>)
/// keep and are the example to copy:
/// - The hooks other than wake() are called on the loop thread, often from
///   inside an entry point. They must not call an entry point back
///   synchronously: record the wish and act on it on a later turn.
/// - watch_socket(fd, none) is always called before the library closes fd,
///   so an fd number reused later is a new socket to the loop.
/// - wake() is called from any thread and must be thread-safe; several calls
///   may be merged into one woken(). Most come from the loop thread itself
///   (execute() from an outcome callback, as a call flow moves on): there a
///   flag the loop reads on its next turn beats a cross-thread wake-up's
///   system calls (<passthru/uv.hpp> starts a uv_idle_t).
/// - One timer: each arm_timer() replaces the previous one. A time in the
///   past means "as soon as possible". Firing late delays outcomes by as
///   much; firing early is harmless (the client re-arms).
/// - The entry points are called on the loop thread only, never concurrently.
///   They do nothing once no client is attached, so a late event is safe.
/// - The loop object outlives the client attached to it; one client per loop.
class PASSTHRU_API EventLoop {
 public:
  using Clock = std::chrono::steady_clock;

  EventLoop() = default;
  /// Aborts with a message if a client is still attached: the client would
  /// otherwise call hooks of a destroyed object.
  virtual ~EventLoop();

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Hooks the engine implements.

  /// Start, change or (with Watch::none) stop watching `fd`.
  virtual void watch_socket(int fd, Watch what) = 0;
  /// Call timer_expired() once at `when`, replacing any earlier arming.
  virtual void arm_timer(Clock::time_point when) = 0;
  /// Forget the armed timer, if any.
  virtual void cancel_timer() = 0;
  /// From any thread: call woken() soon on the loop thread.
  virtual void wake() = 0;

  // Entry points the engine's loop calls, on the loop thread.

  /// `fd` is ready; `events` is a mask of Ready bits.
  void socket_ready(int fd, int events) noexcept;
  /// The time given to arm_timer() has come.
  void timer_expired() noexcept;
  /// The wake-up asked for by wake().
  void woken() noexcept;

  /// True while a client is attached.
  bool attached() const noexcept { return engine_ != nullptr; }

 private:
  friend class detail::LoopDriver;
  detail::TransferEngine* engine_ = nullptr;
};

}  // namespace v0
}  // namespace passthru
