#include "loop_driver.hpp"

#include "transfer_engine.hpp"

#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace passthru {
inline namespace v0 {

static_assert(Ready::read == CURL_CSELECT_IN && Ready::write == CURL_CSELECT_OUT &&
                  Ready::error == CURL_CSELECT_ERR,
              "Ready bits are handed to curl_multi_socket_action unchanged");

EventLoop::~EventLoop() {
  if (engine_ != nullptr) {
    // The client would go on calling the hooks of a destroyed object.
    std::fputs("passthru: EventLoop destroyed while a PassthruClient is still attached to it\n", stderr);
    std::abort();
  }
}

void EventLoop::socket_ready(int fd, int events) noexcept {
  if (engine_ != nullptr) engine_->on_socket(fd, events);
}

void EventLoop::timer_expired() noexcept {
  if (engine_ != nullptr) engine_->on_timer();
}

void EventLoop::woken() noexcept {
  if (engine_ != nullptr) engine_->on_wake();
}

namespace detail {

LoopDriver::LoopDriver(EventLoop& loop, std::shared_ptr<TransferEngine> engine)
    : loop_(loop), engine_(std::move(engine)) {
  if (loop_.engine_ != nullptr) {
    throw std::logic_error("passthru: this EventLoop already drives a PassthruClient");
  }
  engine_->attach(this);
  loop_.engine_ = engine_.get();
}

LoopDriver::~LoopDriver() { stop(); }

void LoopDriver::stop() {
  if (stopped_) return;
  if (engine_->in_callback()) {
    // The engine is in the middle of delivering an outcome: tearing it down
    // here would pull the ground from under that loop. Fail loudly.
    std::fputs("passthru: PassthruClient destroyed from inside an outcome callback\n", stderr);
    std::abort();
  }
  stopped_ = true;
  engine_->shut_down();
  // Connections close while the loop is still attached, so it hears
  // watch_socket(fd, none) for each socket it watches.
  engine_->close();
  loop_.cancel_timer();
  loop_.engine_ = nullptr;
  engine_->attach(nullptr);
}

void LoopDriver::watch_socket(int fd, SocketInterest interest) {
  switch (interest) {
    case SocketInterest::none: loop_.watch_socket(fd, Watch::none); return;
    case SocketInterest::read: loop_.watch_socket(fd, Watch::read); return;
    case SocketInterest::write: loop_.watch_socket(fd, Watch::write); return;
    case SocketInterest::read_write: loop_.watch_socket(fd, Watch::read_write); return;
  }
}

void LoopDriver::arm_timer(std::optional<Clock::time_point> when) {
  if (when) {
    loop_.arm_timer(*when);
  } else {
    loop_.cancel_timer();
  }
}

void LoopDriver::wake() { loop_.wake(); }

}  // namespace detail
}  // namespace v0
}  // namespace passthru
