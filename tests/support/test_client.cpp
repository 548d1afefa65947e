#include "test_client.hpp"

#ifdef PASSTHRU_TEST_WITH_ASIO
#include <passthru/asio.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#endif

#ifdef PASSTHRU_TEST_WITH_UV
#include <passthru/uv.hpp>

#include <uv.h>
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <optional>

namespace passthru_test {

namespace {

bool built(DriverKind kind) {
  switch (kind) {
    case DriverKind::thread: return true;
#ifdef PASSTHRU_TEST_WITH_ASIO
    case DriverKind::asio: return true;
#endif
#ifdef PASSTHRU_TEST_WITH_UV
    case DriverKind::uv: return true;
#endif
    default: return false;
  }
}

}  // namespace

DriverKind driver_under_test() {
  static const DriverKind kind = [] {
    const char* name = std::getenv("PASSTHRU_TEST_DRIVER");
    if (name == nullptr || *name == '\0') return DriverKind::thread;
    for (DriverKind candidate : {DriverKind::thread, DriverKind::asio, DriverKind::uv}) {
      if (std::strcmp(name, to_string(candidate)) != 0) continue;
      if (built(candidate)) return candidate;
      std::fprintf(stderr, "PASSTHRU_TEST_DRIVER=%s: this build has no %s adapter\n", name, name);
      std::abort();
    }
    std::fprintf(stderr, "PASSTHRU_TEST_DRIVER=%s: expected thread, asio or uv\n", name);
    std::abort();
  }();
  return kind;
}

const char* to_string(DriverKind kind) noexcept {
  switch (kind) {
    case DriverKind::thread: return "thread";
    case DriverKind::asio: return "asio";
    case DriverKind::uv: return "uv";
  }
  return "unknown";
}

class TestClient::Loop {
 public:
  virtual ~Loop() = default;
  /// Destroys `client` on the loop thread, then ends the loop and joins its thread.
  virtual void stop(std::unique_ptr<passthru::PassthruClient>& client) = 0;
  std::thread thread;
};

namespace {

#ifdef PASSTHRU_TEST_WITH_ASIO
class AsioLoop final : public TestClient::Loop {
 public:
  // The client is built before the loop runs, as an engine does at start-up.
  AsioLoop(passthru::ClientOptions options, std::unique_ptr<passthru::PassthruClient>& client) {
    events_.emplace(io_);
    client = std::make_unique<passthru::PassthruClient>(*events_, std::move(options));
    thread = std::thread([this] { io_.run(); });
  }

  void stop(std::unique_ptr<passthru::PassthruClient>& client) override {
    std::promise<void> done;
    asio::post(io_, [this, &client, &done] {
      client.reset();
      events_.reset();
      done.set_value();
    });
    done.get_future().wait();
    work_.reset();
    io_.stop();
    thread.join();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::optional<passthru::AsioEventLoop> events_;
};
#endif

#ifdef PASSTHRU_TEST_WITH_UV
// libuv handles belong to the loop's thread: the adapter and the client are
// built on it, before uv_run(), and destroyed on it, from a uv_async_t.
class UvLoop final : public TestClient::Loop {
 public:
  UvLoop(passthru::ClientOptions options, std::unique_ptr<passthru::PassthruClient>& client)
      : client_(client) {
    check("uv_loop_init", uv_loop_init(&loop_));
    check("uv_async_init", uv_async_init(&loop_, &stop_, &UvLoop::on_stop));
    stop_.data = this;  // and a referenced handle: the loop runs until stop()
    std::promise<void> started;
    thread = std::thread([this, &options, &started] {
      try {
        events_.emplace(&loop_);
        client_ = std::make_unique<passthru::PassthruClient>(*events_, std::move(options));
      } catch (...) {
        // As an engine would: close what was opened, let the loop finish.
        events_.reset();
        uv_close(reinterpret_cast<uv_handle_t*>(&stop_), nullptr);
        uv_run(&loop_, UV_RUN_DEFAULT);
        started.set_exception(std::current_exception());
        return;
      }
      started.set_value();
      uv_run(&loop_, UV_RUN_DEFAULT);
    });
    try {
      started.get_future().get();
    } catch (...) {
      thread.join();
      close_loop();
      throw;  // what the client's constructor threw, as with the other drivers
    }
  }

  void stop(std::unique_ptr<passthru::PassthruClient>&) override {
    // Published by an atomic of ours: TSan cannot see libuv's own atomics.
    stopping_.store(true, std::memory_order_release);
    uv_async_send(&stop_);
    thread.join();
    close_loop();
  }

 private:
  static void check(const char* what, int status) {
    if (status == 0) return;
    std::fprintf(stderr, "%s: %s\n", what, uv_strerror(status));
    std::abort();
  }

  static void on_stop(uv_async_t* handle) {
    auto* self = static_cast<UvLoop*>(handle->data);
    if (!self->stopping_.load(std::memory_order_acquire)) return;
    self->client_.reset();
    // The adapter closes its handles; uv_run() returns once they are closed.
    self->events_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
  }

  // UV_EBUSY here is a handle left open: a leak in the adapter.
  void close_loop() { check("uv_loop_close", uv_loop_close(&loop_)); }

  std::unique_ptr<passthru::PassthruClient>& client_;
  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::atomic<bool> stopping_{false};
  std::optional<passthru::UvEventLoop> events_;
};
#endif

}  // namespace

TestClient::TestClient(passthru::ClientOptions options)
    : TestClient(std::move(options), driver_under_test()) {}

TestClient::TestClient(passthru::ClientOptions options, DriverKind kind) : kind_(kind) {
  switch (kind_) {
#ifdef PASSTHRU_TEST_WITH_ASIO
    case DriverKind::asio: loop_ = std::make_unique<AsioLoop>(std::move(options), client_); return;
#endif
#ifdef PASSTHRU_TEST_WITH_UV
    case DriverKind::uv: loop_ = std::make_unique<UvLoop>(std::move(options), client_); return;
#endif
    case DriverKind::thread: client_ = std::make_unique<passthru::PassthruClient>(std::move(options)); return;
    default:
      std::fprintf(stderr, "TestClient: this build has no %s adapter\n", to_string(kind_));
      std::abort();
  }
}

TestClient::~TestClient() {
  if (!loop_) return;
  if (std::this_thread::get_id() == loop_->thread.get_id()) {
    // From inside a callback: the client itself reports the misuse.
    client_.reset();
    return;
  }
  loop_->stop(client_);
}

std::thread::id TestClient::loop_thread() const noexcept {
  return loop_ ? loop_->thread.get_id() : std::thread::id();
}

}  // namespace passthru_test
