#include "thread_driver.hpp"

#include "transfer_engine.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace passthru {
inline namespace v0 {
namespace detail {

namespace {

constexpr int kMaxEvents = 256;

// The driver whose loop runs on this thread, if any.
thread_local const ThreadDriver* running_here = nullptr;

std::uint32_t epoll_events_for(SocketInterest interest) {
  switch (interest) {
    case SocketInterest::read: return EPOLLIN;
    case SocketInterest::write: return EPOLLOUT;
    case SocketInterest::read_write: return EPOLLIN | EPOLLOUT;
    case SocketInterest::none: break;
  }
  return 0;
}

}  // namespace

ThreadDriver::ThreadDriver(std::shared_ptr<TransferEngine> engine) : engine_(std::move(engine)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "passthru: epoll_create1");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int error = errno;
    close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "passthru: eventfd");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  engine_->attach(this);
  thread_ = std::thread([this] { run(); });
}

ThreadDriver::~ThreadDriver() {
  stop();
  close(wake_fd_);
  close(epoll_fd_);
}

void ThreadDriver::stop() {
  if (!thread_.joinable()) return;
  if (std::this_thread::get_id() == thread_.get_id()) {
    // Joining ourselves would hang the engine forever; fail loudly instead.
    std::fputs("passthru: PassthruClient destroyed from inside an outcome callback\n", stderr);
    std::abort();
  }
  stopping_.store(true, std::memory_order_release);
  wake();
  thread_.join();
}

void ThreadDriver::watch_socket(int fd, SocketInterest interest) {
  if (interest == SocketInterest::none) {
    // libcurl may already have closed the socket; EBADF/ENOENT are harmless.
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    return;
  }
  epoll_event event{};
  event.events = epoll_events_for(interest);
  event.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0 && errno == ENOENT) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
}

void ThreadDriver::arm_timer(std::optional<Clock::time_point> when) { timer_ = when; }

void ThreadDriver::wake() {
  if (running_here == this) {
    // On the driver thread, most often execute() from an outcome callback:
    // the loop calls on_wake() at the end of this turn, after the other
    // ready sockets, with no eventfd write and read in between.
    woken_here_ = true;
    return;
  }
  const std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: a wake-up is pending.
  [[maybe_unused]] const auto written = write(wake_fd_, &one, sizeof one);
}

int ThreadDriver::wait_timeout_ms() const {
  if (!timer_) return -1;
  const auto now = Clock::now();
  if (*timer_ <= now) return 0;
  // Round up: waking a little late costs under a millisecond; waking early
  // costs a spin. Deadlines are checked against the clock, never this value.
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*timer_ - now).count();
  return wait > INT_MAX ? INT_MAX : static_cast<int>(wait);
}

void ThreadDriver::run() {
  running_here = this;
  epoll_event events[kMaxEvents];
  while (!stopping_.load(std::memory_order_acquire)) {
    // A wake-up owed from the last turn: look at the sockets, do not sleep.
    const int ready = epoll_wait(epoll_fd_, events, kMaxEvents, woken_here_ ? 0 : wait_timeout_ms());
    if (ready < 0 && errno != EINTR) {
      engine_->logger()->critical("epoll_wait failed: {}", std::strerror(errno));
      break;
    }
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto got = read(wake_fd_, &count, sizeof count);
        engine_->on_wake();
        continue;
      }
      const std::uint32_t flags = events[i].events;
      int mask = 0;
      if (flags & (EPOLLIN | EPOLLHUP)) mask |= CURL_CSELECT_IN;
      if (flags & EPOLLOUT) mask |= CURL_CSELECT_OUT;
      if (flags & EPOLLERR) mask |= CURL_CSELECT_ERR;
      engine_->on_socket(fd, mask);
    }
    if (timer_ && *timer_ <= Clock::now()) engine_->on_timer();
    if (woken_here_) {
      woken_here_ = false;
      engine_->on_wake();
    }
  }
  engine_->shut_down();
  engine_->close();
  engine_->attach(nullptr);
  running_here = nullptr;
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
