// Drives a PassthruClient from a standalone Asio io_context (Debian libasio-dev).
//
//     asio::io_context io;
//     passthru::AsioEventLoop loop(io);
//     passthru::PassthruClient client(loop, options);
//     client.execute(step, call, [](passthru::Outcome outcome) { /* on io's thread */ });
//     io.run();
//
// Header-only, like Asio itself, so it always matches the engine's Asio.
// CMake: find_package(passthru COMPONENTS asio) and link passthru::asio.
#pragma once

#include <passthru/event_loop.hpp>

#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace passthru {
inline namespace v0 {

/// An EventLoop on an Asio io_context: sockets are watched with
/// posix::stream_descriptor::async_wait (the descriptor is borrowed, never
/// closed), the timer is one steady_timer, and wake() is asio::post.
///
/// One thread runs `io` (or the client's work is confined to one strand's
/// worth of handlers: this class is not internally locked, except wake()).
/// Construct and destroy it on that thread (or while `io` is not running);
/// destroy the client first. `io.run()` returns once no request is in
/// flight, as it does for any Asio work.
class AsioEventLoop final : public EventLoop {
 public:
  explicit AsioEventLoop(asio::io_context& io) : io_(io), timer_(io), shared_(std::make_shared<Shared>()) {
    shared_->loop = this;
  }

  ~AsioEventLoop() override {
    shared_->loop = nullptr;  // handlers still queued in io find no loop
    for (auto& [fd, watch] : watches_) forget(*watch);
    timer_.cancel();
  }

  /// The io_context this loop runs on.
  asio::io_context& context() noexcept { return io_; }

  void watch_socket(int fd, Watch what) override {
    auto found = watches_.find(fd);
    if (what == Watch::none) {
      if (found == watches_.end()) return;
      forget(*found->second);
      watches_.erase(found);
      return;
    }
    if (found == watches_.end()) {
      auto watch = std::make_shared<Socket>(io_, fd);
      std::error_code error;
      watch->descriptor.assign(fd, error);
      if (error) return;  // the request then ends by its deadline, never hangs
      found = watches_.emplace(fd, std::move(watch)).first;
    }
    found->second->what = what;
    arm(found->second);
  }

  void arm_timer(Clock::time_point when) override {
    const std::uint64_t generation = ++timer_generation_;
    timer_.expires_at(when);
    timer_.async_wait([shared = shared_, generation](const std::error_code& error) {
      AsioEventLoop* loop = shared->loop;
      if (error || loop == nullptr || generation != loop->timer_generation_) return;
      loop->timer_expired();
    });
  }

  void cancel_timer() override {
    ++timer_generation_;
    timer_.cancel();
  }

  void wake() override {
    // Any thread. One posted handler at a time: a burst of execute() calls
    // costs one turn of the loop.
    if (shared_->wake_pending.exchange(true, std::memory_order_acq_rel)) return;
    asio::post(io_, [shared = shared_] {
      shared->wake_pending.store(false, std::memory_order_release);
      if (AsioEventLoop* loop = shared->loop) loop->woken();
    });
  }

 private:
  // Outlives the loop inside queued handlers, which check `loop` first.
  struct Shared {
    AsioEventLoop* loop = nullptr;  // io's thread only
    std::atomic<bool> wake_pending{false};
  };

  struct Socket {
    Socket(asio::io_context& io, int f) : descriptor(io), fd(f) {}
    asio::posix::stream_descriptor descriptor;
    int fd;
    Watch what = Watch::none;
    bool live = true;
    bool reading = false;  // an async_wait(wait_read) is outstanding
    bool writing = false;
  };

  static bool wants_read(Watch what) { return what == Watch::read || what == Watch::read_write; }
  static bool wants_write(Watch what) { return what == Watch::write || what == Watch::read_write; }

  // Asio's reactor is edge-triggered and an async_wait never completes for
  // readiness that came before it (say, an answer that arrived while libcurl
  // still watched for write). One poll() restores level semantics: what is
  // ready now is reported on the next turn, the rest is waited for.
  void arm(const std::shared_ptr<Socket>& watch) {
    const bool read = wants_read(watch->what) && !watch->reading;
    const bool write = wants_write(watch->what) && !watch->writing;
    if (!read && !write) return;
    pollfd probe{watch->fd, static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0)), 0};
    if (::poll(&probe, 1, 0) != 1) probe.revents = 0;
    const bool failed = (probe.revents & (POLLERR | POLLNVAL)) != 0;
    if (read) {
      watch->reading = true;
      auto done = [shared = shared_, watch](const std::error_code& error) {
        watch->reading = false;
        ready(shared, watch, error, Ready::read);
      };
      if (failed || (probe.revents & (POLLIN | POLLHUP)) != 0) {
        asio::post(io_, [done] { done(std::error_code()); });
      } else {
        watch->descriptor.async_wait(asio::posix::stream_descriptor::wait_read, std::move(done));
      }
    }
    if (write) {
      watch->writing = true;
      auto done = [shared = shared_, watch](const std::error_code& error) {
        watch->writing = false;
        ready(shared, watch, error, Ready::write);
      };
      if (failed || (probe.revents & (POLLOUT | POLLHUP)) != 0) {
        asio::post(io_, [done] { done(std::error_code()); });
      } else {
        watch->descriptor.async_wait(asio::posix::stream_descriptor::wait_write, std::move(done));
      }
    }
  }

  static void ready(const std::shared_ptr<Shared>& shared, const std::shared_ptr<Socket>& watch,
                    const std::error_code& error, int events) {
    AsioEventLoop* loop = shared->loop;
    // A forgotten watch may share its fd number with a newer socket: never
    // report it.
    if (loop == nullptr || !watch->live) return;
    if (error == asio::error::operation_aborted) return;
    loop->socket_ready(watch->fd, error ? Ready::error : events);
    // libcurl said what it wants next through watch_socket(); keep waiting
    // for it unless the watch was forgotten meanwhile.
    if (watch->live && shared->loop == loop) loop->arm(watch);
  }

  static void forget(Socket& watch) {
    watch.live = false;
    std::error_code ignored;
    watch.descriptor.cancel(ignored);
    // Deregisters from the reactor without closing: libcurl owns the socket.
    watch.descriptor.release();
  }

  asio::io_context& io_;
  asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;
  std::shared_ptr<Shared> shared_;
  std::unordered_map<int, std::shared_ptr<Socket>> watches_;
};

}  // namespace v0
}  // namespace passthru
