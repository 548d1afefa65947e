// Hedging (StepOptions::hedge_after): the fallback is sent alongside a
// primary that has not answered, the first answer wins, the other request
// is cancelled and its connection closed.
#include "fault_server.hpp"
#include "one_client_test.hpp"
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace {

using passthru::Endpoint;
using passthru::Errc;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::FaultServer;
using passthru_test::SilentServer;
using passthru_test::TestClient;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Slack for a loaded machine; the contract is "deadline + a few milliseconds".
constexpr std::chrono::milliseconds kSlack{1000};
// How long a closed connection may take to be seen by the server. A loser
// left running would hold its connection for the whole 20 s delay.
constexpr std::chrono::milliseconds kClosed{10000};

class Hedging : public passthru_test::OneClientTest {
 protected:
  StepOptions hedged(const std::string& primary, const std::string& fallback,
                     std::chrono::milliseconds timeout, std::chrono::milliseconds hedge_after) {
    auto options = passthru_test::step_options(primary, timeout);
    options.fallback_url = fallback;
    options.hedge_after = hedge_after;
    return options;
  }
};

TEST_F(Hedging, ASlowPrimaryIsJoinedByTheFallbackWhoseAnswerWins) {
  FaultServer primary;
  server_.reply("GET", "/backup", 200, "standard-queue", "text/plain");
  const auto options = hedged(primary.url("/delay/20000"), server_.url("/backup"), 5s, 200ms);
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  EXPECT_EQ(outcome.target, "standard-queue");
  EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
  EXPECT_GE(outcome.elapsed, 200ms);
  EXPECT_LT(outcome.elapsed, 200ms + kSlack);
  ASSERT_EQ(outcome.attempts, 2);
  // The loser first, cancelled; the winner last.
  EXPECT_EQ(outcome.attempt_log[0].endpoint, Endpoint::primary);
  EXPECT_FALSE(outcome.attempt_log[0].hedged);
  EXPECT_EQ(outcome.attempt_log[0].http_status, 0);
  EXPECT_EQ(outcome.attempt_log[0].error, passthru::make_error_code(Errc::cancelled));
  EXPECT_EQ(outcome.attempt_log[0].reason, "cancelled: the fallback answered first");
  EXPECT_EQ(outcome.attempt_log[1].endpoint, Endpoint::fallback);
  EXPECT_TRUE(outcome.attempt_log[1].hedged);
  EXPECT_EQ(outcome.attempt_log[1].http_status, 200);
  EXPECT_GE(outcome.attempt_log[1].started, 200ms);
  // The primary ran alongside all along: it started first.
  EXPECT_LT(outcome.attempt_log[0].started, outcome.attempt_log[1].started);

  // The loser's connection is closed now, not when its answer would come.
  EXPECT_TRUE(primary.wait_for_finished_connections(1, kClosed));
  // One request each, with the same Idempotency-Key.
  ASSERT_EQ(primary.requests().size(), 1u);
  ASSERT_EQ(server_.requests_to("/backup").size(), 1u);
  EXPECT_FALSE(primary.requests()[0].idempotency_key.empty());
  EXPECT_EQ(server_.requests_to("/backup")[0].header("Idempotency-Key"),
            primary.requests()[0].idempotency_key);

  const auto metrics = client_.client().metrics();
  ASSERT_EQ(metrics.steps.size(), 1u);
  EXPECT_EQ(metrics.steps[0].first_attempts, 1u);
  EXPECT_EQ(metrics.steps[0].hedges, 1u);
  EXPECT_EQ(metrics.steps[0].fallbacks, 0u);
  EXPECT_EQ(metrics.steps[0].retries, 0u);
}

TEST_F(Hedging, APrimaryThatAnswersInTimeSendsNoHedge) {
  server_.reply("GET", "/crm", 200, "vip-connect", "text/plain");
  server_.reply("GET", "/backup", 200, "standard-queue", "text/plain");
  const Outcome outcome = run(hedged(server_.url("/crm"), server_.url("/backup"), 5s, 2000ms));
  EXPECT_EQ(outcome.target, "vip-connect") << outcome.reason;
  EXPECT_EQ(outcome.answered_by, Endpoint::primary);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(server_.requests_to("/backup").size(), 0u);
  EXPECT_EQ(client_.client().metrics().steps.at(0).hedges, 0u);
}

TEST_F(Hedging, ThePrimaryWinsWhenItAnswersFirst) {
  FaultServer primary;
  FaultServer fallback;
  const Outcome outcome = run(hedged(primary.url("/delay/600"), fallback.url("/delay/20000"), 5s, 100ms));
  EXPECT_EQ(outcome.target, "vip-connect") << outcome.reason;
  EXPECT_EQ(outcome.answered_by, Endpoint::primary);
  EXPECT_GE(outcome.elapsed, 600ms);
  EXPECT_LT(outcome.elapsed, 600ms + kSlack);
  ASSERT_EQ(outcome.attempts, 2);
  EXPECT_EQ(outcome.attempt_log[0].endpoint, Endpoint::fallback);
  EXPECT_TRUE(outcome.attempt_log[0].hedged);
  EXPECT_EQ(outcome.attempt_log[0].reason, "cancelled: the primary answered first");
  EXPECT_EQ(outcome.attempt_log[1].endpoint, Endpoint::primary);
  EXPECT_EQ(outcome.attempt_log[1].http_status, 200);
  ASSERT_EQ(fallback.requests().size(), 1u);
  EXPECT_TRUE(fallback.wait_for_finished_connections(1, kClosed));
}

TEST_F(Hedging, AFailedHedgeLeavesThePrimaryToAnswer) {
  FaultServer primary;
  server_.reply("GET", "/backup", 503, "down", "text/plain");
  const Outcome outcome = run(hedged(primary.url("/delay/800"), server_.url("/backup"), 5s, 100ms));
  EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  EXPECT_EQ(outcome.target, "vip-connect");
  EXPECT_EQ(outcome.answered_by, Endpoint::primary);
  EXPECT_GE(outcome.elapsed, 800ms);
  ASSERT_EQ(outcome.attempts, 2);
  EXPECT_EQ(outcome.attempt_log[0].endpoint, Endpoint::fallback);
  EXPECT_TRUE(outcome.attempt_log[0].hedged);
  EXPECT_EQ(outcome.attempt_log[0].http_status, 503);
  EXPECT_EQ(outcome.attempt_log[1].endpoint, Endpoint::primary);
  EXPECT_EQ(outcome.attempt_log[1].http_status, 200);
}

TEST_F(Hedging, AFailedPrimaryLeavesTheHedgeToAnswer) {
  FaultServer fallback;
  // The primary fails only once the hedge has reached the fallback.
  server_.on("GET", "/crm", [&fallback](const httplib::Request&, httplib::Response& res) {
    fallback.wait_for_requests("/delay/700", 1, 10s);
    res.status = 503;
    res.set_content("down", "text/plain");
  });
  const Outcome outcome = run(hedged(server_.url("/crm"), fallback.url("/delay/700"), 5s, 100ms));
  EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  EXPECT_EQ(outcome.target, "vip-connect");
  EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
  ASSERT_EQ(outcome.attempts, 2);
  EXPECT_EQ(outcome.attempt_log[0].endpoint, Endpoint::primary);
  EXPECT_EQ(outcome.attempt_log[0].http_status, 503);
  EXPECT_EQ(outcome.attempt_log[1].endpoint, Endpoint::fallback);
  EXPECT_TRUE(outcome.attempt_log[1].hedged);
  EXPECT_EQ(outcome.attempt_log[1].http_status, 200);
}

TEST_F(Hedging, A4xxFromTheHedgeIsTheAnswer) {
  FaultServer primary;
  server_.reply("GET", "/backup", 404, "no such flow", "text/plain");
  const Outcome outcome = run(hedged(primary.url("/delay/20000"), server_.url("/backup"), 5s, 100ms));
  EXPECT_EQ(outcome.route, Route::on_error);
  EXPECT_EQ(outcome.http_status, 404);
  EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
  EXPECT_LT(outcome.elapsed, 100ms + kSlack);
  EXPECT_TRUE(primary.wait_for_finished_connections(1, kClosed));
  // On-error is logged at warn: the line says the hedge answered.
  bool logged = false;
  for (const auto& line : logs_.lines()) {
    logged |= line.message.find("hedged=true") != std::string::npos &&
              line.message.find("answered_by=fallback") != std::string::npos;
  }
  EXPECT_TRUE(logged);
}

TEST_F(Hedging, BothSilentEndAtTheDeadlineNeverEarlier) {
  SilentServer primary;
  SilentServer fallback;
  const auto options = hedged(primary.url("/crm"), fallback.url("/backup"), 600ms, 200ms);
  const auto start = Clock::now();
  const Outcome outcome = run(options);
  const auto waited = Clock::now() - start;
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  EXPECT_NE(outcome.reason.find("nor from the fallback sent after 200 ms"), std::string::npos)
      << outcome.reason;
  EXPECT_GE(waited, options.timeout);
  EXPECT_LT(waited, options.timeout + kSlack);
  EXPECT_GE(outcome.elapsed, options.timeout);
  ASSERT_EQ(outcome.attempts, 2);
  for (const auto& attempt : outcome.attempt_log) {
    EXPECT_EQ(attempt.error, passthru::make_error_code(Errc::timed_out)) << attempt.reason;
  }
  const auto& hedge = outcome.attempt_log[0].hedged ? outcome.attempt_log[0] : outcome.attempt_log[1];
  EXPECT_TRUE(hedge.hedged);
  EXPECT_EQ(hedge.endpoint, Endpoint::fallback);
  EXPECT_GE(hedge.started, 200ms);
  EXPECT_LT(hedge.started, 200ms + kSlack);
}

TEST_F(Hedging, APostIsHedgedWithTheSameBodyAndKey) {
  FaultServer primary;
  FaultServer fallback;
  auto options = hedged(primary.url("/delay/20000"), fallback.url("/delay/0"), 5s, 100ms);
  options.method = passthru::Method::post;
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.target, "vip-connect") << outcome.reason;
  EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
  ASSERT_EQ(primary.requests().size(), 1u);
  ASSERT_EQ(fallback.requests().size(), 1u);
  EXPECT_EQ(primary.requests()[0].method, "POST");
  EXPECT_EQ(fallback.requests()[0].method, "POST");
  EXPECT_NE(primary.requests()[0].body.find("CallSid=abc123"), std::string::npos);
  EXPECT_EQ(fallback.requests()[0].body, primary.requests()[0].body);
  EXPECT_EQ(fallback.requests()[0].idempotency_key, primary.requests()[0].idempotency_key);
}

TEST_F(Hedging, CancelledWhileHedgedEndsOnceAndClosesBoth) {
  FaultServer primary;
  FaultServer fallback;
  passthru_test::OutcomeCollector collector;
  auto handle =
      client_.execute(StepConfig::build(hedged(primary.url("/hang"), fallback.url("/hang"), 10s, 100ms)),
                      passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(fallback.wait_for_requests("/hang", 1, 10s));
  handle.cancel();
  const auto outcome = collector.wait_for_id(handle.id());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::cancelled);
  EXPECT_EQ(outcome->attempts, 2);
  EXPECT_TRUE(primary.wait_for_finished_connections(1, kClosed));
  EXPECT_TRUE(fallback.wait_for_finished_connections(1, kClosed));
  EXPECT_EQ(collector.total_calls(), 1u);
}

TEST_F(Hedging, NoHedgeIsSentWhileMaxInFlightIsReached) {
  FaultServer primary;
  server_.reply("GET", "/backup", 200, "standard-queue", "text/plain");
  auto client_options = passthru_test::quiet_options(logs_);
  client_options.max_in_flight = 1;
  TestClient client(client_options);
  const auto outcome = passthru_test::execute_and_wait(
      client, StepConfig::build(hedged(primary.url("/delay/700"), server_.url("/backup"), 5s, 100ms)),
      passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->target, "vip-connect") << outcome->reason;
  EXPECT_EQ(outcome->answered_by, Endpoint::primary);
  EXPECT_EQ(outcome->attempts, 1);
  EXPECT_EQ(server_.requests_to("/backup").size(), 0u);
}

TEST_F(Hedging, AHedgeAnswersEachOfManyConcurrentCalls) {
  FaultServer primary;
  server_.reply("GET", "/backup", 200, "standard-queue", "text/plain");
  constexpr int kCalls = 50;
  passthru_test::OutcomeCollector collector;
  const auto step = StepConfig::build(hedged(primary.url("/delay/20000"), server_.url("/backup"), 5s, 100ms));
  for (int i = 0; i < kCalls; ++i) client_.execute(step, passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(collector.wait_for(kCalls, 30s));
  for (const Outcome& outcome : collector.outcomes()) {
    EXPECT_EQ(outcome.target, "standard-queue") << outcome.reason;
    EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
    EXPECT_EQ(outcome.attempts, 2);
  }
  EXPECT_TRUE(primary.wait_for_finished_connections(kCalls, kClosed));
  EXPECT_EQ(collector.total_calls(), static_cast<std::size_t>(kCalls));
}

}  // namespace
