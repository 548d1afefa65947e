// The client every integration test uses, on the driver chosen for the run,
// so the whole suite checks that outcomes do not depend on the driver.
#pragma once

#include <passthru/client.hpp>

#include <memory>
#include <thread>

namespace passthru_test {

/// Which driver runs the client under test.
enum class DriverKind {
  thread,  ///< PassthruClient(options): the library's own thread.
  asio,    ///< PassthruClient(AsioEventLoop, options): an io_context on a test thread.
  uv,      ///< PassthruClient(UvEventLoop, options): a libuv loop on a test thread.
};

/// The driver of this test run: the PASSTHRU_TEST_DRIVER environment
/// variable ("thread", "asio" or "uv"; unset: thread). CTest registers every
/// integration test once per driver built. An unknown value, or the driver
/// of an adapter this build lacks, aborts the run.
DriverKind driver_under_test();

const char* to_string(DriverKind kind) noexcept;

/// A PassthruClient on driver_under_test() (or the given driver). A
/// loop-driven one runs on an event loop thread owned by this object, and is
/// created and destroyed on that thread, as an engine would.
class TestClient {
 public:
  explicit TestClient(passthru::ClientOptions options = {});
  TestClient(passthru::ClientOptions options, DriverKind kind);
  /// Destroys the client (every request in flight ends cancelled), then
  /// stops the loop thread, if any.
  ~TestClient();

  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  passthru::RequestHandle execute(const passthru::StepConfig& step, passthru::CallContext call,
                                  passthru::OutcomeCallback on_outcome) {
    return client_->execute(step, std::move(call), std::move(on_outcome));
  }

  passthru::PassthruClient& client() noexcept { return *client_; }
  DriverKind kind() const noexcept { return kind_; }
  /// The event loop's thread; a default id for the ThreadDriver.
  std::thread::id loop_thread() const noexcept;

  /// An event loop on a thread of its own, running a loop-driven client.
  class Loop;

 private:
  DriverKind kind_;
  std::unique_ptr<Loop> loop_;
  std::unique_ptr<passthru::PassthruClient> client_;
};

}  // namespace passthru_test
