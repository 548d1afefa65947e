// Drives a PassthruClient from a libuv loop (Debian libuv1-dev).
//
//     uv_loop_t* loop = uv_default_loop();
//     std::optional<passthru::UvEventLoop> events(std::in_place, loop);
//     std::optional<passthru::PassthruClient> client(std::in_place, *events, options);
//     client->execute(step, call, [](passthru::Outcome outcome) { /* on the loop thread */ });
//     uv_run(loop, UV_RUN_DEFAULT);  // returns once no request is in flight
//     client.reset();                // then the adapter, then one more turn:
//     events.reset();                // uv_close() is asynchronous
//     uv_run(loop, UV_RUN_DEFAULT);
//
// Header-only, like <passthru/asio.hpp>, so it always matches the engine's
// libuv and libpassthru itself never links libuv.
// CMake: find_package(passthru COMPONENTS uv) and link passthru::uv.
#pragma once

#include <passthru/event_loop.hpp>

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>

namespace passthru {
inline namespace v0 {

/// An EventLoop on a libuv loop: one uv_poll_t per watched socket, one
/// uv_timer_t, a uv_async_t for wake() from other threads and a uv_idle_t
/// for wake() on the loop thread.
///
/// Thread: construct, use and destroy it on the thread that runs `loop`
/// (libuv loops belong to one thread); only wake(), that is execute() and
/// cancel() of the client, may come from other threads. Destroy the client
/// first.
///
/// Lifetime of the loop: while a request is in flight the adapter holds an
/// active handle (its timer, at the request's deadline), so uv_run(loop,
/// UV_RUN_DEFAULT) returns once no request is in flight and the engine has
/// nothing else to do. execute() on the loop thread keeps the loop alive
/// until the request has started, even before uv_run() is called; from
/// another thread it wakes a running loop but cannot keep an idle one from
/// returning (libuv offers no thread-safe uv_ref()), so an engine that calls
/// execute() from other threads keeps its loop running by its own handles,
/// as any server does.
///
/// Closing: handles are closed with uv_close(), which completes on a later
/// turn of the loop; their memory is owned by those close callbacks, not by
/// this object. After destroying the adapter, let the loop run once more
/// (keep running it, or uv_run(loop, UV_RUN_DEFAULT) / UV_RUN_NOWAIT) before
/// uv_loop_close(), which otherwise answers UV_EBUSY.
class UvEventLoop final : public EventLoop {
 public:
  /// Throws std::runtime_error if libuv cannot create the timer or the
  /// async handle (out of descriptors).
  explicit UvEventLoop(uv_loop_t* loop) : loop_(loop), thread_(std::this_thread::get_id()) {
    auto* timer = new Timer;
    if (const int error = uv_timer_init(loop_, &timer->handle); error != 0) {
      delete timer;
      throw std::runtime_error(std::string("passthru: uv_timer_init: ") + uv_strerror(error));
    }
    auto* waker = new Waker;
    if (const int error = uv_async_init(loop_, &waker->handle, &UvEventLoop::on_woken); error != 0) {
      delete waker;
      close_handle(&timer->handle);
      throw std::runtime_error(std::string("passthru: uv_async_init: ") + uv_strerror(error));
    }
    auto* idler = new Idler;
    uv_idle_init(loop_, &idler->handle);  // cannot fail on Unix
    timer->handle.data = this;
    waker->handle.data = this;
    idler->handle.data = this;
    // A wake-up from another thread cannot keep an idle loop alive (see
    // wake()); one from the loop thread is an active idle handle, which does.
    uv_unref(reinterpret_cast<uv_handle_t*>(&waker->handle));
    timer_ = timer;
    waker_ = waker;
    idler_ = idler;
  }

  ~UvEventLoop() override {
    // Still attached: leave every handle as it is, for ~EventLoop aborts
    // with a message and wake() may yet be running on another thread.
    if (attached()) return;
    for (auto& [fd, socket] : sockets_) close_handle(&socket->handle);
    close_handle(&timer_->handle);
    close_handle(&waker_->handle);
    close_handle(&idler_->handle);
  }

  /// The libuv loop this adapter runs on.
  uv_loop_t* loop() const noexcept { return loop_; }

  void watch_socket(int fd, Watch what) override {
    auto found = sockets_.find(fd);
    if (what == Watch::none) {
      if (found == sockets_.end()) return;
      // Stops polling at once (libcurl closes fd right after this returns);
      // the memory goes when the close callback runs. Closed, not stopped
      // and kept for the number's next socket: closing a uv_poll_t takes its
      // fd number out of epoll, and by then the number may be a socket of
      // the engine's own on this loop.
      close_handle(&found->second->handle);
      sockets_.erase(found);
      return;
    }
    if (found == sockets_.end()) {
      auto* socket = new Socket;
      socket->fd = fd;
      if (uv_poll_init_socket(loop_, &socket->handle, fd) != 0) {
        delete socket;
        return;  // the request then ends by its deadline, never hangs
      }
      socket->handle.data = this;
      found = sockets_.emplace(fd, socket).first;
    }
    found->second->what = what;
    // Also restarts a handle libuv stopped after reporting an error.
    uv_poll_start(&found->second->handle, poll_events(what), &UvEventLoop::on_socket);
  }

  void arm_timer(Clock::time_point when) override {
    uv_timer_start(&timer_->handle, &UvEventLoop::on_timer, delay_ms(when), 0);
  }

  void cancel_timer() override { uv_timer_stop(&timer_->handle); }

  void wake() override {
    if (std::this_thread::get_id() == thread_) {
      // On the loop thread (execute() from an outcome callback, or before
      // uv_run()): the idle handle runs woken() on the loop's next turn,
      // before it polls, and keeps the loop alive until then. No system
      // call, where uv_async_send() costs an eventfd write and read.
      uv_idle_start(&idler_->handle, &UvEventLoop::on_idle);  // no-op when started
      return;
    }
    // One uv_async_send() per woken(): libuv merges them anyway, this only
    // saves the system call of a burst of execute() calls.
    if (waker_->pending.exchange(true, std::memory_order_acq_rel)) return;
    uv_async_send(&waker_->handle);
  }

 private:
  // Each handle lives on the heap until its close callback runs, which may
  // be after this object is gone.
  struct Socket {
    uv_poll_t handle;
    int fd = -1;
    Watch what = Watch::none;
  };
  struct Timer {
    uv_timer_t handle;
  };
  struct Waker {
    uv_async_t handle;
    std::atomic<bool> pending{false};
  };
  struct Idler {
    uv_idle_t handle;
  };
  // on_closed() finds each holder from its handle, the first member.
  static_assert(std::is_standard_layout_v<Socket> && std::is_standard_layout_v<Timer> &&
                    std::is_standard_layout_v<Waker> && std::is_standard_layout_v<Idler>,
                "a handle's address is its holder's");

  template <typename Handle>
  static void close_handle(Handle* handle) {
    handle->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle), &UvEventLoop::on_closed<Handle>);
  }

  template <typename Handle>
  static void on_closed(uv_handle_t* handle) {
    if constexpr (std::is_same_v<Handle, uv_poll_t>) delete reinterpret_cast<Socket*>(handle);
    if constexpr (std::is_same_v<Handle, uv_timer_t>) delete reinterpret_cast<Timer*>(handle);
    if constexpr (std::is_same_v<Handle, uv_async_t>) delete reinterpret_cast<Waker*>(handle);
    if constexpr (std::is_same_v<Handle, uv_idle_t>) delete reinterpret_cast<Idler*>(handle);
  }

  static int poll_events(Watch what) {
    switch (what) {
      case Watch::read: return UV_READABLE;
      case Watch::write: return UV_WRITABLE;
      case Watch::read_write: return UV_READABLE | UV_WRITABLE;
      case Watch::none: break;
    }
    return 0;
  }

  // libuv fires a timer on the first turn whose cached loop time (whole
  // milliseconds of its monotonic clock, truncated and possibly coarse, so
  // never ahead of the real time) has reached the timer's due time. Due at
  // `when` rounded up to a whole millisecond of that same clock, the timer
  // can never fire before `when`, however stale the cached time is now.
  std::uint64_t delay_ms(Clock::time_point when) const {
    // Read in this order, the measured offset errs towards a later due time.
    const auto steady_now = Clock::now();
    const std::chrono::nanoseconds uv_now_ns(uv_hrtime());
    constexpr std::chrono::hours kFarAway{24 * 365};  // no overflow below
    const auto wait = when - steady_now;
    const auto when_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(wait < kFarAway ? wait : kFarAway) + uv_now_ns;
    if (when_ns <= std::chrono::nanoseconds::zero()) return 0;
    const std::uint64_t due_ms =
        static_cast<std::uint64_t>(std::chrono::ceil<std::chrono::milliseconds>(when_ns).count());
    const std::uint64_t loop_ms = uv_now(loop_);
    return due_ms > loop_ms ? due_ms - loop_ms : 0;
  }

  static void on_socket(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<UvEventLoop*>(handle->data);
    if (self == nullptr) return;  // closed: never report a forgotten socket
    auto* socket = reinterpret_cast<Socket*>(handle);
    int ready = 0;
    if (status < 0) {
      // libuv reports POLLERR as a status and stops the handle. Like the
      // library's own epoll loop, hand libcurl the error with what it waits
      // for, so its own read or write finds the precise cause.
      ready = Ready::error;
      if (socket->what != Watch::write) ready |= Ready::read;
      if (socket->what != Watch::read) ready |= Ready::write;
    } else {
      if ((events & (UV_READABLE | UV_DISCONNECT)) != 0) ready |= Ready::read;
      if ((events & UV_WRITABLE) != 0) ready |= Ready::write;
    }
    self->socket_ready(socket->fd, ready);
    // Still watched and stopped by libuv after an error: keep waiting for
    // what libcurl last asked for (its memory is valid until the close
    // callback, which runs later in this turn at the earliest).
    if (handle->data != nullptr && !uv_is_active(reinterpret_cast<uv_handle_t*>(handle))) {
      uv_poll_start(handle, poll_events(socket->what), &UvEventLoop::on_socket);
    }
  }

  static void on_timer(uv_timer_t* handle) {
    if (auto* self = static_cast<UvEventLoop*>(handle->data)) self->timer_expired();
  }

  static void on_woken(uv_async_t* handle) {
    auto* self = static_cast<UvEventLoop*>(handle->data);
    if (self == nullptr) return;
    // Before woken(): a wake() from inside it asks for another turn.
    self->waker_->pending.exchange(false, std::memory_order_acq_rel);
    self->woken();
  }

  static void on_idle(uv_idle_t* handle) {
    auto* self = static_cast<UvEventLoop*>(handle->data);
    if (self == nullptr) return;
    // Before woken(): a wake() from inside it asks for another turn.
    uv_idle_stop(handle);
    self->woken();
  }

  uv_loop_t* loop_;
  std::thread::id thread_;
  Timer* timer_ = nullptr;
  Waker* waker_ = nullptr;
  Idler* idler_ = nullptr;
  std::unordered_map<int, Socket*> sockets_;
};

}  // namespace v0
}  // namespace passthru
