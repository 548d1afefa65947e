// ClientOptions::max_in_flight: requests beyond it wait their turn, and the
// wait counts against their own timeout.
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace {

using namespace std::chrono_literals;
using namespace passthru_test;
using passthru::Route;
using Clock = std::chrono::steady_clock;

TEST(Capacity, NeverRunsMoreThanTheLimitAndAnswersEveryRequest) {
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  TestHttpServer server;
  server.on("GET", "/crm", [&](const httplib::Request&, httplib::Response& res) {
    const int now = ++running;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    // Simulated lookup time, so requests would overlap without the limit.
    std::this_thread::sleep_for(20ms);
    --running;
    res.set_content("vip-connect", "text/plain");
  });
  LogCollector logs;
  auto options = quiet_options(logs);
  options.max_in_flight = 2;
  OutcomeCollector collector;
  {
    passthru_test::TestClient client(options);
    const auto step = passthru::StepConfig::build(step_options(server.url("/crm")));
    for (int i = 0; i < 12; ++i) client.execute(step, sample_call(), collector.callback());
    ASSERT_TRUE(collector.wait_for(12));
  }
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (const auto& outcome : collector.outcomes())
    EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(server.requests().size(), 12u);
}

TEST(Capacity, AQueuedRequestStillEndsByItsOwnDeadline) {
  SilentServer silent;
  LogCollector logs;
  auto options = quiet_options(logs);
  options.max_in_flight = 1;
  passthru_test::TestClient client(options);
  OutcomeCollector collector;
  // The first request holds the only slot for a minute.
  const auto blocker = client.execute(passthru::StepConfig::build(step_options(silent.url("/hold"), 60s)),
                                      sample_call(), collector.callback());
  const auto started = Clock::now();
  const auto queued = client.execute(passthru::StepConfig::build(step_options(silent.url("/late"), 300ms)),
                                     sample_call(), collector.callback());
  const auto outcome = collector.wait_for_id(queued.id());
  const auto waited = Clock::now() - started;
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::on_timeout);
  EXPECT_EQ(outcome->error, passthru::Errc::timed_out);
  EXPECT_NE(outcome->reason.find("never started: max_in_flight 1 reached"), std::string::npos)
      << outcome->reason;
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, 1300ms);
  blocker.cancel();
  ASSERT_TRUE(collector.wait_for(2));
  EXPECT_TRUE(collector.repeated_ids().empty());
}

TEST(Capacity, CancellingAQueuedRequestSendsNothing) {
  SilentServer silent;
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  LogCollector logs;
  auto options = quiet_options(logs);
  options.max_in_flight = 1;
  OutcomeCollector collector;
  {
    passthru_test::TestClient client(options);
    const auto blocker = client.execute(passthru::StepConfig::build(step_options(silent.url("/hold"), 60s)),
                                        sample_call(), collector.callback());
    const auto queued = client.execute(passthru::StepConfig::build(step_options(server.url("/crm"))),
                                       sample_call(), collector.callback());
    queued.cancel();
    const auto outcome = collector.wait_for_id(queued.id());
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->route, Route::cancelled);
    // Freeing the slot must not start the cancelled request.
    blocker.cancel();
    ASSERT_TRUE(collector.wait_for(2));
  }
  EXPECT_TRUE(server.requests().empty());
  EXPECT_TRUE(collector.repeated_ids().empty());
}

TEST(Capacity, DestroyingTheClientCancelsQueuedRequestsToo) {
  SilentServer silent;
  LogCollector logs;
  auto options = quiet_options(logs);
  options.max_in_flight = 3;
  OutcomeCollector collector;
  {
    passthru_test::TestClient client(options);
    const auto step = passthru::StepConfig::build(step_options(silent.url("/hold"), 60s));
    for (int i = 0; i < 20; ++i) client.execute(step, sample_call(), collector.callback());
  }
  EXPECT_EQ(collector.total_calls(), 20u);
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (const auto& outcome : collector.outcomes()) EXPECT_EQ(outcome.route, Route::cancelled);
}

}  // namespace
