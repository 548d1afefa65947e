// execute() itself: it validates its callback and never waits on the network.
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::Errc;
using passthru::OutcomeCallback;
using PassthruClient = passthru_test::TestClient;
using passthru::RequestHandle;
using passthru::Route;
using passthru::StepConfig;
using passthru_test::OutcomeCollector;
using Clock = std::chrono::steady_clock;

// execute() must not wait on the network; far below any DNS or connect time.
constexpr std::chrono::milliseconds kImmediate{100};

TEST(Execute, EmptyCallbackThrowsInvalidArgumentAndSendsNothing) {
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto step = StepConfig::build(passthru_test::step_options(server.url("/crm")));
  EXPECT_THROW(client.execute(step, passthru_test::sample_call(), OutcomeCallback{}), std::invalid_argument);

  // The client is unharmed, and only the valid request reached the server.
  auto outcome = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::next_applet) << outcome->reason;
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(Execute, ReturnsAtOnceWhenTheHostDoesNotResolveAndRoutesToOnErrorAsDnsFailed) {
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto step = StepConfig::build(
      passthru_test::step_options("https://" + std::string(64, 'a') + ".invalid:1/crm", 60s));
  OutcomeCollector collector;
  const auto start = Clock::now();
  auto handle = client.execute(step, passthru_test::sample_call(), collector.callback());
  EXPECT_LT(Clock::now() - start, kImmediate) << "execute() waited on DNS";

  auto outcome = collector.wait_for_id(handle.id(), 90s);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::on_error) << outcome->reason;
  EXPECT_EQ(outcome->target, "error-applet");
  EXPECT_EQ(outcome->error, passthru::make_error_code(Errc::dns_failed)) << outcome->error.message();
  EXPECT_EQ(outcome->http_status, 0);
  EXPECT_EQ(collector.total_calls(), 1u);
}

TEST(Execute, ReturnsAtOnceWhileManyRequestsWaitOnASilentServer) {
  passthru_test::SilentServer silent;
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto step = StepConfig::build(passthru_test::step_options(silent.url("/crm"), 60s));
  OutcomeCollector collector;
  std::vector<RequestHandle> handles;
  auto slowest = Clock::duration::zero();
  for (int i = 0; i < 200; ++i) {
    const auto start = Clock::now();
    handles.push_back(client.execute(step, passthru_test::sample_call(), collector.callback()));
    slowest = std::max(slowest, Clock::now() - start);
  }
  EXPECT_LT(slowest, kImmediate);
  for (const auto& handle : handles) handle.cancel();
  ASSERT_TRUE(collector.wait_for(handles.size()));
  EXPECT_TRUE(collector.repeated_ids().empty());
}

TEST(Execute, OneStepConfigServesManyCallsWithTheirOwnData) {
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto step = StepConfig::build(passthru_test::step_options(server.url("/crm")));
  for (int i = 0; i < 3; ++i) {
    auto call = passthru_test::sample_call();
    call.call_sid = "sid-" + std::to_string(i);
    auto outcome = passthru_test::execute_and_wait(client, step, call);
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->route, Route::next_applet) << outcome->reason;
  }
  auto received = server.requests();
  ASSERT_EQ(received.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(passthru_test::form_value(received[static_cast<std::size_t>(i)].query(), "CallSid"),
              "sid-" + std::to_string(i));
  }
}

}  // namespace

// Engines start the next step from the previous step's outcome, on the
// client's own thread: execute() and cancel() must work from a callback.
TEST(Execute, ChainsTheNextStepFromInsideACallback) {
  using namespace passthru_test;
  TestHttpServer server;
  server.reply("GET", "/first", 200, "standard-queue");
  server.reply("GET", "/second", 200, "vip-connect");
  SilentServer silent;
  LogCollector logs;
  passthru_test::TestClient client(quiet_options(logs));
  const auto first = passthru::StepConfig::build(step_options(server.url("/first")));
  const auto second = passthru::StepConfig::build(step_options(server.url("/second")));
  const auto stalled = passthru::StepConfig::build(step_options(silent.url("/stall")));

  OutcomeCollector collector;
  client.execute(first, sample_call(), [&, record = collector.callback()](passthru::Outcome outcome) {
    EXPECT_EQ(outcome.target, "standard-queue");
    record(outcome);
    // Started and cancelled from inside the callback: must end cancelled.
    client.execute(stalled, sample_call(), collector.callback()).cancel();
    client.execute(second, sample_call(), collector.callback());
  });

  ASSERT_TRUE(collector.wait_for(3));
  EXPECT_TRUE(collector.repeated_ids().empty());
  std::map<passthru::Route, int> routes;
  for (const auto& outcome : collector.outcomes()) ++routes[outcome.route];
  EXPECT_EQ(routes[passthru::Route::next_applet], 2);
  EXPECT_EQ(routes[passthru::Route::cancelled], 1);
}
