// StepOptions::fire_and_forget: the call goes on at once while the request
// completes in the background, at most max_background at a time.
#include "fault_server.hpp"
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::Errc;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru_test::LogCollector;
using passthru_test::OutcomeCollector;
using passthru_test::TestClient;

StepConfig background_step(const std::string& url, std::chrono::milliseconds timeout = 20s) {
  passthru::StepOptions options = passthru_test::step_options(url, timeout);
  options.fire_and_forget = true;
  options.name = "call-log";
  return StepConfig::build(std::move(options));
}

/// The ends on_end saw, in order.
struct Ends {
  std::mutex mutex;
  std::vector<Outcome> outcomes;
  passthru_test::Event first;

  void hook(passthru::ClientOptions& options) {
    options.hooks.on_end = [this](const passthru::RequestInfo&, const Outcome& outcome) {
      std::lock_guard<std::mutex> lock(mutex);
      outcomes.push_back(outcome);
      first.set();
    };
  }
  std::vector<Outcome> seen() {
    std::lock_guard<std::mutex> lock(mutex);
    return outcomes;
  }
};

TEST(FireAndForget, TheCallGoesOnAtOnceWhileTheRequestCompletesInTheBackground) {
  passthru_test::FaultServer server;
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  Ends ends;
  ends.hook(options);
  TestClient client(options);
  OutcomeCollector collector;
  const auto handle = client.execute(background_step(server.url("/delay/300")), passthru_test::sample_call(),
                                     collector.callback());
  const auto now = collector.wait_for_id(handle.id());
  ASSERT_TRUE(now);
  EXPECT_EQ(now->route, Route::default_next);
  EXPECT_EQ(now->target, "default-applet");
  EXPECT_TRUE(now->background);
  EXPECT_TRUE(now->ok());
  EXPECT_EQ(now->attempts, 0);
  EXPECT_LT(now->elapsed, 250ms) << "the caller waited for the answer";
  EXPECT_EQ(now->trace_id.size(), 32u);
  EXPECT_TRUE(ends.seen().empty()) << "on_end waits for the request's own end";

  // The request goes on, and its end is seen by on_end, logs and metrics.
  ASSERT_TRUE(ends.first.wait_for());
  const std::vector<Outcome> seen = ends.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].request_id, handle.id());
  EXPECT_EQ(seen[0].route, Route::next_applet);
  EXPECT_EQ(seen[0].attempts, 1);
  EXPECT_GE(seen[0].elapsed, 300ms);
  EXPECT_EQ(seen[0].trace_id, now->trace_id);
  EXPECT_EQ(server.received_count("/delay/300"), 1u);
  const auto metrics = client.client().metrics();
  EXPECT_EQ(metrics.background, 0u);
  ASSERT_EQ(metrics.steps.size(), 1u);
  EXPECT_EQ(metrics.steps[0].by_route[static_cast<std::size_t>(Route::next_applet)], 1u);
  EXPECT_EQ(metrics.steps[0].in_flight, 0u);
  EXPECT_EQ(collector.calls_for(handle.id()), 1u) << "the callback had exactly one outcome";
}

TEST(FireAndForget, AtMostMaxBackgroundRunAndTheRestAreDroppedUnsentAndCounted) {
  passthru_test::FaultServer server;
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.max_background = 3;
  TestClient client(options);
  OutcomeCollector collector;
  std::vector<passthru::RequestHandle> handles;
  for (int i = 0; i < 10; ++i) {
    handles.push_back(client.execute(background_step(server.url("/hang")), passthru_test::sample_call(),
                                     collector.callback()));
  }
  ASSERT_TRUE(collector.wait_for(10));
  std::size_t sent = 0;
  std::size_t dropped = 0;
  for (const Outcome& outcome : collector.outcomes()) {
    EXPECT_EQ(outcome.route, Route::default_next);
    EXPECT_EQ(outcome.target, "default-applet");
    EXPECT_TRUE(outcome.background);
    if (outcome.error == passthru::make_error_code(Errc::background_full)) {
      ++dropped;
      EXPECT_NE(outcome.reason.find("not sent: 3 fire-and-forget requests already in the background"),
                std::string::npos)
          << outcome.reason;
    } else {
      EXPECT_TRUE(outcome.ok()) << outcome.reason;
      ++sent;
    }
  }
  EXPECT_EQ(sent, 3u);
  EXPECT_EQ(dropped, 7u);
  ASSERT_TRUE(server.wait_for_requests("/hang", 3));
  auto metrics = client.client().metrics();
  EXPECT_EQ(metrics.background, 3u);
  EXPECT_EQ(metrics.steps.at(0).background_dropped, 7u);
  EXPECT_EQ(metrics.steps.at(0).in_flight, 3u);
  EXPECT_NE(passthru::to_prometheus(metrics).find("passthru_background_dropped_total{step=\"call-log\"} 7\n"),
            std::string::npos);

  // Cancelling a background request ends it without a second callback.
  for (const auto& handle : handles) handle.cancel();
  const auto until = std::chrono::steady_clock::now() + passthru_test::kGenerousWait;
  while (client.client().metrics().background != 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  EXPECT_EQ(client.client().metrics().background, 0u);
  EXPECT_EQ(server.received_count("/hang"), 3u);
  EXPECT_EQ(collector.total_calls(), 10u);
  EXPECT_TRUE(collector.repeated_ids().empty());
}

TEST(FireAndForget, ABackgroundRequestStillEndsByItsTimeout) {
  passthru_test::SilentServer silent;
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.log_level = passthru::LogLevel::warn;
  Ends ends;
  ends.hook(options);
  TestClient client(options);
  OutcomeCollector collector;
  client.execute(background_step(silent.url("/log"), 200ms), passthru_test::sample_call(),
                 collector.callback());
  ASSERT_TRUE(collector.wait_for(1));
  ASSERT_TRUE(ends.first.wait_for());
  EXPECT_EQ(ends.seen().at(0).route, Route::on_timeout);
  EXPECT_GE(ends.seen().at(0).elapsed, 200ms);
  bool logged = false;
  for (const auto& line : logs.lines()) {
    if (line.message.find("route=on_timeout") != std::string::npos &&
        line.message.find(" background=true") != std::string::npos) {
      logged = true;
    }
  }
  EXPECT_TRUE(logged);
  EXPECT_EQ(collector.total_calls(), 1u);
}

TEST(FireAndForget, DestroyingTheClientNeverCallsTheCallbackASecondTime) {
  passthru_test::FaultServer server;
  LogCollector logs;
  OutcomeCollector collector;
  {
    TestClient client(passthru_test::quiet_options(logs));
    for (int i = 0; i < 5; ++i) {
      client.execute(background_step(server.url("/hang")), passthru_test::sample_call(),
                     collector.callback());
    }
    ASSERT_TRUE(collector.wait_for(5));
    ASSERT_TRUE(server.wait_for_requests("/hang", 5));
  }
  EXPECT_EQ(collector.total_calls(), 5u);
  EXPECT_TRUE(collector.repeated_ids().empty());
}

TEST(FireAndForget, MaxBackgroundOfZeroIsRefused) {
  passthru::ClientOptions options;
  options.max_background = 0;
  EXPECT_THROW(passthru::PassthruClient{options}, std::invalid_argument);
}

}  // namespace
