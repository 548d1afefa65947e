// Cancelling requests and destroying the client: exactly one outcome, always.
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::Errc;
using passthru::Outcome;
using PassthruClient = passthru_test::TestClient;
using passthru::RequestHandle;
using passthru::Route;
using passthru::StepConfig;
using passthru_test::OutcomeCollector;
using passthru_test::SilentServer;
using passthru_test::TestHttpServer;
using Clock = std::chrono::steady_clock;

// Long enough that only a cancellation or shutdown can end these requests.
constexpr std::chrono::milliseconds kLongTimeout{60000};

void expect_cancelled(const Outcome& outcome, Errc why) {
  EXPECT_EQ(outcome.route, Route::cancelled) << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, "");
  EXPECT_EQ(outcome.error, passthru::make_error_code(why)) << outcome.error.message();
}

class Cancellation : public ::testing::Test {
 protected:
  passthru_test::LogCollector logs_;
  std::unique_ptr<PassthruClient> client_ =
      std::make_unique<PassthruClient>(passthru_test::quiet_options(logs_));
};

TEST_F(Cancellation, CancelBeforeAnAnswerRoutesToCancelledExactlyOnce) {
  SilentServer silent;
  auto step = StepConfig::build(passthru_test::step_options(silent.url("/crm"), kLongTimeout));
  OutcomeCollector collector;
  const auto start = Clock::now();
  auto handle = client_->execute(step, passthru_test::sample_call(), collector.callback());
  handle.cancel();
  auto outcome = collector.wait_for_id(handle.id());
  ASSERT_TRUE(outcome);
  EXPECT_LT(Clock::now() - start, 10s) << "the outcome came from the timeout, not the cancel";
  expect_cancelled(*outcome, Errc::cancelled);
  EXPECT_EQ(outcome->request_id, handle.id());

  handle.cancel();  // again: nothing happens
  client_.reset();  // shutdown must not deliver it a second time
  EXPECT_EQ(collector.calls_for(handle.id()), 1u);
  EXPECT_EQ(collector.total_calls(), 1u);
}

TEST_F(Cancellation, CancelWhileTheServerIsAnsweringRoutesToCancelledExactlyOnce) {
  passthru_test::Event release;  // outlives the server, whose worker waits on it
  TestHttpServer server;
  passthru_test::SetOnExit release_at_exit(release);
  server.on("GET", "/slow", [&release](const httplib::Request&, httplib::Response& res) {
    release.wait_for(30s);
    res.set_content("vip-connect", "text/plain");
  });

  auto step = StepConfig::build(passthru_test::step_options(server.url("/slow"), kLongTimeout));
  OutcomeCollector collector;
  auto handle = client_->execute(step, passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(server.wait_for_requests(1));
  handle.cancel();
  auto outcome = collector.wait_for_id(handle.id());
  ASSERT_TRUE(outcome);
  expect_cancelled(*outcome, Errc::cancelled);

  release.set();  // the late answer must be ignored
  client_.reset();
  EXPECT_EQ(collector.total_calls(), 1u);
}

TEST_F(Cancellation, CancelAfterCompletionChangesNothing) {
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  auto step = StepConfig::build(passthru_test::step_options(server.url("/crm")));
  OutcomeCollector collector;
  auto handle = client_->execute(step, passthru_test::sample_call(), collector.callback());
  auto outcome = collector.wait_for_id(handle.id());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::next_applet) << outcome->reason;

  handle.cancel();
  handle.cancel();
  // A later request completes normally, so the client digested the cancels.
  auto later = passthru_test::execute_and_wait(*client_, step, passthru_test::sample_call());
  ASSERT_TRUE(later);
  EXPECT_EQ(later->route, Route::next_applet) << later->reason;
  EXPECT_NE(later->request_id, handle.id());

  client_.reset();
  EXPECT_EQ(collector.calls_for(handle.id()), 1u);
  EXPECT_EQ(collector.total_calls(), 1u);
  EXPECT_EQ(collector.outcome(handle.id())->route, Route::next_applet);
}

TEST_F(Cancellation, CancelAfterTheClientIsGoneIsHarmless) {
  SilentServer silent;
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  OutcomeCollector collector;
  auto done = client_->execute(StepConfig::build(passthru_test::step_options(server.url("/crm"))),
                               passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(collector.wait_for_id(done.id()));
  auto pending =
      client_->execute(StepConfig::build(passthru_test::step_options(silent.url("/"), kLongTimeout)),
                       passthru_test::sample_call(), collector.callback());

  client_.reset();
  ASSERT_EQ(collector.total_calls(), 2u);
  expect_cancelled(*collector.outcome(pending.id()), Errc::shut_down);

  done.cancel();
  pending.cancel();
  RequestHandle{}.cancel();
  EXPECT_EQ(RequestHandle{}.id(), 0u);
  EXPECT_EQ(collector.calls_for(done.id()), 1u);
  EXPECT_EQ(collector.calls_for(pending.id()), 1u);
  EXPECT_EQ(collector.total_calls(), 2u);
}

TEST_F(Cancellation, CancelFromManyThreadsAtOnceDeliversOneOutcome) {
  SilentServer silent;
  auto step = StepConfig::build(passthru_test::step_options(silent.url("/crm"), kLongTimeout));
  OutcomeCollector collector;
  auto handle = client_->execute(step, passthru_test::sample_call(), collector.callback());

  constexpr std::size_t kThreads = 8;
  passthru_test::StartGate gate(kThreads);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      gate.arrive_and_wait();
      handle.cancel();
    });
  }
  for (auto& t : threads) t.join();

  auto outcome = collector.wait_for_id(handle.id());
  ASSERT_TRUE(outcome);
  expect_cancelled(*outcome, Errc::cancelled);
  client_.reset();
  EXPECT_EQ(collector.total_calls(), 1u);
}

TEST_F(Cancellation, CancellingSomeRequestsLeavesTheOthersRunning) {
  SilentServer silent;
  auto step = StepConfig::build(passthru_test::step_options(silent.url("/crm"), kLongTimeout));
  OutcomeCollector collector;
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 100; ++i) {
    handles.push_back(client_->execute(step, passthru_test::sample_call(), collector.callback()));
  }
  for (std::size_t i = 0; i < handles.size(); i += 2) handles[i].cancel();
  ASSERT_TRUE(collector.wait_for(50));

  auto cancelled = collector.outcomes();
  EXPECT_EQ(cancelled.size(), 50u);
  for (std::size_t i = 0; i < handles.size(); ++i) {
    const bool was_cancelled = i % 2 == 0;
    EXPECT_EQ(collector.calls_for(handles[i].id()), was_cancelled ? 1u : 0u) << "request " << i;
  }

  client_.reset();
  EXPECT_EQ(collector.total_calls(), 100u);
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (std::size_t i = 0; i < handles.size(); ++i) {
    auto outcome = collector.outcome(handles[i].id());
    ASSERT_TRUE(outcome) << "request " << i;
    expect_cancelled(*outcome, i % 2 == 0 ? Errc::cancelled : Errc::shut_down);
  }
}

TEST(Shutdown, DestroyingTheClientCancelsEveryRequestInFlightBeforeReturning) {
  SilentServer silent;
  passthru_test::LogCollector logs;
  auto client = std::make_unique<PassthruClient>(passthru_test::quiet_options(logs));
  auto step = StepConfig::build(passthru_test::step_options(silent.url("/crm"), kLongTimeout));
  OutcomeCollector collector;
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 100; ++i) {
    handles.push_back(client->execute(step, passthru_test::sample_call(), collector.callback()));
  }

  const auto start = Clock::now();
  client.reset();
  EXPECT_LT(Clock::now() - start, 10s);

  // No waiting: every callback must have run before the destructor returned.
  EXPECT_EQ(collector.total_calls(), 100u);
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (const auto& handle : handles) {
    auto outcome = collector.outcome(handle.id());
    ASSERT_TRUE(outcome) << "request " << handle.id() << " got no outcome";
    expect_cancelled(*outcome, Errc::shut_down);
    handle.cancel();
  }
  EXPECT_EQ(collector.total_calls(), 100u);
}

TEST(Shutdown, DestroyingAnIdleClientReturnsPromptly) {
  const auto start = Clock::now();
  {
    passthru_test::LogCollector logs;
    PassthruClient client(passthru_test::quiet_options(logs));
  }
  EXPECT_LT(Clock::now() - start, 5s);
}

}  // namespace
