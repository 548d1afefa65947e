#include "test_client.hpp"

#include <passthru/asio.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>

namespace passthru_test {

DriverKind driver_under_test() {
  static const DriverKind kind = [] {
    const char* name = std::getenv("PASSTHRU_TEST_DRIVER");
    if (name == nullptr || *name == '\0' || std::strcmp(name, "thread") == 0) return DriverKind::thread;
    if (std::strcmp(name, "asio") == 0) return DriverKind::asio;
    std::fprintf(stderr, "PASSTHRU_TEST_DRIVER=%s: expected thread or asio\n", name);
    std::abort();
  }();
  return kind;
}

const char* to_string(DriverKind kind) noexcept {
  switch (kind) {
    case DriverKind::thread: return "thread";
    case DriverKind::asio: return "asio";
  }
  return "unknown";
}

struct TestClient::Loop {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::optional<passthru::AsioEventLoop> events;
  std::thread thread;
};

TestClient::TestClient(passthru::ClientOptions options)
    : TestClient(std::move(options), driver_under_test()) {}

TestClient::TestClient(passthru::ClientOptions options, DriverKind kind) : kind_(kind) {
  if (kind_ == DriverKind::thread) {
    client_ = std::make_unique<passthru::PassthruClient>(std::move(options));
    return;
  }
  loop_ = std::make_unique<Loop>();
  // Built before the loop runs, as an engine does at start-up.
  loop_->events.emplace(loop_->io);
  client_ = std::make_unique<passthru::PassthruClient>(*loop_->events, std::move(options));
  loop_->thread = std::thread([loop = loop_.get()] { loop->io.run(); });
}

TestClient::~TestClient() {
  if (!loop_) return;
  if (std::this_thread::get_id() == loop_->thread.get_id()) {
    // From inside a callback: the client itself reports the misuse.
    client_.reset();
    return;
  }
  std::promise<void> done;
  asio::post(loop_->io, [this, &done] {
    client_.reset();
    loop_->events.reset();
    done.set_value();
  });
  done.get_future().wait();
  loop_->work.reset();
  loop_->io.stop();
  loop_->thread.join();
}

std::thread::id TestClient::loop_thread() const noexcept {
  return loop_ ? loop_->thread.get_id() : std::thread::id();
}

}  // namespace passthru_test
