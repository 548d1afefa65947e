// Sequential attempts within a step's timeout: StepOptions::fallback_url,
// primary_timeout, retries and retry_after_send.
#include "fault_server.hpp"
#include "one_client_test.hpp"
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
using passthru_test::LogCollector;
using passthru_test::RefusedPort;
using passthru_test::SilentServer;
using passthru_test::TestClient;
using passthru_test::TestHttpServer;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Slack for a loaded machine; the contract is "deadline + a few milliseconds".
constexpr std::chrono::milliseconds kSlack{1000};

void answer(TestHttpServer& server, const std::string& path, int status, const std::string& body) {
  server.on("GET", path, [status, body](const httplib::Request&, httplib::Response& res) {
    res.status = status;
    res.set_content(body, "text/plain");
  });
  server.on("POST", path, [status, body](const httplib::Request&, httplib::Response& res) {
    res.status = status;
    res.set_content(body, "text/plain");
  });
}

class Attempts : public passthru_test::OneClientTest {};

TEST_F(Attempts, PrimaryRefusedFallbackAnswers) {
  RefusedPort refused;
  answer(server_, "/backup", 200, "vip-connect");
  auto options = passthru_test::step_options(refused.url("/crm"), 5s);
  options.fallback_url = server_.url("/backup");
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  EXPECT_EQ(outcome.target, "vip-connect");
  EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
  ASSERT_EQ(outcome.attempts, 2);
  EXPECT_EQ(outcome.attempt_log[0].endpoint, Endpoint::primary);
  EXPECT_EQ(outcome.attempt_log[0].error, passthru::make_error_code(Errc::connect_failed));
  EXPECT_EQ(outcome.attempt_log[0].http_status, 0);
  EXPECT_EQ(outcome.attempt_log[1].endpoint, Endpoint::fallback);
  EXPECT_EQ(outcome.attempt_log[1].http_status, 200);
  EXPECT_EQ(outcome.attempt_log[1].host, "127.0.0.1:" + std::to_string(server_.port()));
  EXPECT_GE(outcome.attempt_log[1].started, outcome.attempt_log[0].started + outcome.attempt_log[0].elapsed);
  // The fallback's GET carries the call's parameters in its own query.
  ASSERT_EQ(server_.requests_to("/backup").size(), 1u);
  EXPECT_NE(server_.requests_to("/backup")[0].query().find("CallSid=abc123"), std::string::npos);

  const auto metrics = client_.client().metrics();
  ASSERT_EQ(metrics.steps.size(), 1u);
  EXPECT_EQ(metrics.steps[0].first_attempts, 1u);
  EXPECT_EQ(metrics.steps[0].fallbacks, 1u);
  EXPECT_EQ(metrics.steps[0].retries, 0u);
}

TEST_F(Attempts, TheLogLineSaysTheFallbackAnswered) {
  answer(server_, "/crm", 503, "down");
  answer(server_, "/backup", 502, "down too");
  auto options = passthru_test::step_options(server_.url("/crm"), 5s);
  options.fallback_url = server_.url("/backup");
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.route, Route::on_error);
  EXPECT_EQ(outcome.http_status, 502);
  EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
  bool logged = false;
  for (const auto& line : logs_.lines()) {
    logged |= line.message.find("attempts=2") != std::string::npos &&
              line.message.find("answered_by=fallback") != std::string::npos;
  }
  EXPECT_TRUE(logged);
}

TEST_F(Attempts, Primary503GoesToTheFallback) {
  answer(server_, "/crm", 503, "down");
  answer(server_, "/backup", 200, "standard-queue");
  auto options = passthru_test::step_options(server_.url("/crm"), 5s);
  options.fallback_url = server_.url("/backup");
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.target, "standard-queue") << outcome.reason;
  EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
  ASSERT_EQ(outcome.attempts, 2);
  EXPECT_EQ(outcome.attempt_log[0].http_status, 503);
  EXPECT_EQ(outcome.attempt_log[0].reason, "HTTP 503");
  EXPECT_EQ(outcome.http_status, 200);
}

TEST_F(Attempts, A4xxFromThePrimaryIsItsAnswer) {
  answer(server_, "/crm", 404, "no");
  answer(server_, "/backup", 200, "standard-queue");
  auto options = passthru_test::step_options(server_.url("/crm"), 5s);
  options.fallback_url = server_.url("/backup");
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.route, Route::on_error);
  EXPECT_EQ(outcome.http_status, 404);
  EXPECT_EQ(outcome.answered_by, Endpoint::primary);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(server_.requests_to("/backup").size(), 0u);
}

TEST_F(Attempts, PrimaryHangsItsShareRunsOutAndTheFallbackAnswersWithinTheTimeout) {
  FaultServer faults;
  answer(server_, "/backup", 200, "vip-connect");
  auto options = passthru_test::step_options(faults.url("/hang"), 2000ms);
  options.fallback_url = server_.url("/backup");
  options.primary_timeout = 400ms;
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.target, "vip-connect") << outcome.reason;
  EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
  ASSERT_EQ(outcome.attempts, 2);
  EXPECT_EQ(outcome.attempt_log[0].error, passthru::make_error_code(Errc::timed_out));
  EXPECT_GE(outcome.attempt_log[1].started, 400ms);
  EXPECT_GE(outcome.elapsed, 400ms);
  EXPECT_LT(outcome.elapsed, options.timeout);
}

TEST_F(Attempts, BothDownRoutesToOnErrorWithBothAttemptsRecorded) {
  RefusedPort primary;
  RefusedPort fallback;
  auto options = passthru_test::step_options(primary.url("/crm"), 3s);
  options.fallback_url = fallback.url("/backup");
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.route, Route::on_error);
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::connect_failed));
  EXPECT_EQ(outcome.answered_by, Endpoint::none);
  ASSERT_EQ(outcome.attempts, 2);
  EXPECT_EQ(outcome.attempt_log[0].endpoint, Endpoint::primary);
  EXPECT_EQ(outcome.attempt_log[1].endpoint, Endpoint::fallback);
  EXPECT_EQ(outcome.attempt_log[1].host, "127.0.0.1:" + std::to_string(fallback.port()));
  EXPECT_LT(outcome.elapsed, options.timeout);
}

TEST_F(Attempts, SilentPrimaryAndFallbackEndAtTheDeadlineNeverEarlier) {
  SilentServer primary;
  SilentServer fallback;
  auto options = passthru_test::step_options(primary.url("/crm"), 600ms);
  options.fallback_url = fallback.url("/backup");
  const auto start = Clock::now();
  const Outcome outcome = run(options);
  const auto waited = Clock::now() - start;
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  EXPECT_GE(waited, options.timeout);
  EXPECT_LT(waited, options.timeout + kSlack);
  EXPECT_GE(outcome.elapsed, options.timeout);
  ASSERT_EQ(outcome.attempts, 2);
  EXPECT_GE(outcome.attempt_log[1].started, 300ms);  // half the timeout, by default
  EXPECT_LT(outcome.attempt_log[1].started, 300ms + kSlack);
  EXPECT_EQ(outcome.attempt_log[1].error, passthru::make_error_code(Errc::timed_out));
}

TEST_F(Attempts, RetriesARefusedConnectionAfterABackoff) {
  RefusedPort refused;
  auto options = passthru_test::step_options(refused.url("/crm"), 5s);
  options.retries = 3;
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.route, Route::on_error);
  ASSERT_EQ(outcome.attempts, 4);
  // Equal jitter: retry n waits at least half of 50 ms * 2^n.
  const std::chrono::milliseconds minimum[] = {25ms, 50ms, 100ms};
  for (std::size_t i = 0; i + 1 < outcome.attempt_log.size(); ++i) {
    const auto& attempt = outcome.attempt_log[i];
    EXPECT_EQ(attempt.endpoint, Endpoint::primary);
    EXPECT_GE(outcome.attempt_log[i + 1].started - (attempt.started + attempt.elapsed), minimum[i]) << i;
  }
  EXPECT_GE(outcome.elapsed, 175ms);
  EXPECT_LT(outcome.elapsed, options.timeout);
  const auto metrics = client_.client().metrics();
  ASSERT_EQ(metrics.steps.size(), 1u);
  EXPECT_EQ(metrics.steps[0].first_attempts, 1u);
  EXPECT_EQ(metrics.steps[0].retries, 3u);
}

TEST_F(Attempts, NoRetryStartsWhoseBackoffWouldEndPastTheDeadline) {
  RefusedPort refused;
  auto options = passthru_test::step_options(refused.url("/crm"), 120ms);
  options.retries = 5;
  const Outcome outcome = run(options);
  // Refused at once, or (a retry started just before the deadline, on a
  // loaded machine) ended by the deadline: never later.
  EXPECT_TRUE(outcome.route == Route::on_error || outcome.route == Route::on_timeout) << outcome.reason;
  EXPECT_LT(outcome.elapsed, options.timeout + kSlack);
  // 25-50 + 50-100 ms fit at most; 100-200 ms more cannot.
  EXPECT_GE(outcome.attempts, 2);
  EXPECT_LE(outcome.attempts, 3);
  for (const auto& attempt : outcome.attempt_log) EXPECT_LT(attempt.started, options.timeout);
}

TEST_F(Attempts, APostTo503IsSentOnce) {
  answer(server_, "/crm", 503, "down");
  auto options = passthru_test::step_options(server_.url("/crm"), 5s);
  options.method = passthru::Method::post;
  options.retries = 3;
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.http_status, 503);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(server_.requests_to("/crm").size(), 1u);
}

TEST_F(Attempts, AGetWithRetryAfterSendIsRetriedOn503) {
  answer(server_, "/crm", 503, "down");
  auto options = passthru_test::step_options(server_.url("/crm"), 5s);
  options.retries = 2;
  options.retry_after_send = true;
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.route, Route::on_error);
  EXPECT_EQ(outcome.http_status, 503);
  EXPECT_EQ(outcome.answered_by, Endpoint::primary);
  EXPECT_EQ(outcome.attempts, 3);
  EXPECT_EQ(server_.requests_to("/crm").size(), 3u);
}

TEST_F(Attempts, EveryAttemptCarriesTheSameIdempotencyKey) {
  answer(server_, "/crm", 503, "down");
  answer(server_, "/backup", 200, "vip-connect");
  auto options = passthru_test::step_options(server_.url("/crm"), 5s);
  options.retries = 1;
  options.retry_after_send = true;
  options.fallback_url = server_.url("/backup");
  options.primary_timeout = 4000ms;
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.target, "vip-connect") << outcome.reason;
  ASSERT_EQ(outcome.attempts, 3);
  EXPECT_EQ(outcome.attempt_log[1].endpoint, Endpoint::primary);
  EXPECT_EQ(outcome.attempt_log[2].endpoint, Endpoint::fallback);
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  const std::string key = requests[0].header("Idempotency-Key");
  EXPECT_FALSE(key.empty());
  for (const auto& request : requests) EXPECT_EQ(request.header("Idempotency-Key"), key) << request.path;
}

TEST_F(Attempts, TheFallbackIsSignedForItsOwnUrl) {
  answer(server_, "/crm", 500, "down");
  answer(server_, "/backup", 200, "vip-connect");
  auto options = passthru_test::step_options(server_.url("/crm"), 5s);
  options.fallback_url = server_.url("/backup");
  options.signing_keys = {std::string(32, 'k')};
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.target, "vip-connect") << outcome.reason;
  ASSERT_EQ(server_.requests().size(), 2u);
  const auto fallback = server_.requests_to("/backup").at(0);
  const std::string url = server_.url(fallback.target);
  const std::string id = fallback.header(passthru::kSignatureIdHeader);
  const std::string timestamp = fallback.header(passthru::kSignatureTimestampHeader);
  const std::string signature = fallback.header(passthru::kSignatureHeader);
  const passthru::SignedRequest signed_request{"GET", url, fallback.body, id, timestamp, signature};
  passthru::VerifyOptions verify;
  verify.keys = options.signing_keys;
  EXPECT_EQ(passthru::verify_signature(signed_request, verify), passthru::SignatureStatus::valid);
}

TEST(AttemptsCircuit, AnOpenPrimaryCircuitGoesStraightToTheFallback) {
  RefusedPort refused;
  TestHttpServer server;
  answer(server, "/backup", 200, "vip-connect");
  LogCollector logs;
  passthru::ClientOptions client_options = passthru_test::quiet_options(logs);
  client_options.circuit_breaker.consecutive_failures = 2;
  client_options.circuit_breaker.open_for = 60s;
  TestClient client(client_options);
  const StepConfig primary_only = StepConfig::build(passthru_test::step_options(refused.url("/crm"), 5s));
  for (int i = 0; i < 2; ++i) {
    const auto outcome = passthru_test::execute_and_wait(client, primary_only, passthru_test::sample_call());
    ASSERT_TRUE(outcome);
    ASSERT_EQ(outcome->error, passthru::make_error_code(Errc::connect_failed));
  }
  auto options = passthru_test::step_options(refused.url("/crm"), 5s);
  options.fallback_url = server.url("/backup");
  const auto outcome =
      passthru_test::execute_and_wait(client, StepConfig::build(options), passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->target, "vip-connect") << outcome->reason;
  EXPECT_EQ(outcome->answered_by, Endpoint::fallback);
  ASSERT_EQ(outcome->attempts, 1);
  EXPECT_EQ(outcome->attempt_log[0].endpoint, Endpoint::fallback);
  EXPECT_LT(outcome->attempt_log[0].started, 500ms);  // no wait for the primary's share (2.5 s)
}

TEST(AttemptsCircuit, EachAttemptIsJudgedByItsOwnOriginsBreaker) {
  RefusedPort refused;
  TestHttpServer server;
  answer(server, "/backup", 200, "vip-connect");
  LogCollector logs;
  passthru::ClientOptions client_options = passthru_test::quiet_options(logs);
  client_options.circuit_breaker.consecutive_failures = 2;
  client_options.circuit_breaker.open_for = 60s;
  TestClient client(client_options);
  auto options = passthru_test::step_options(refused.url("/crm"), 5s);
  options.fallback_url = server.url("/backup");
  const StepConfig step = StepConfig::build(options);
  // Two calls answered by the fallback: the primary failed twice, the fallback never.
  for (int i = 0; i < 2; ++i) {
    const auto outcome = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
    ASSERT_TRUE(outcome);
    ASSERT_EQ(outcome->attempts, 2) << outcome->reason;
  }
  const auto outcome = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->target, "vip-connect");
  ASSERT_EQ(outcome->attempts, 1);
  EXPECT_EQ(outcome->attempt_log[0].endpoint, Endpoint::fallback);
}

TEST_F(Attempts, CancelledWhileWaitingToRetryEndsOnceAsCancelled) {
  RefusedPort refused;
  auto options = passthru_test::step_options(refused.url("/crm"), 10s);
  options.retries = 5;
  passthru_test::OutcomeCollector collector;
  const auto start = Clock::now();
  auto handle =
      client_.execute(StepConfig::build(options), passthru_test::sample_call(), collector.callback());
  std::this_thread::sleep_for(60ms);  // within the retries' backoffs (25 ms to 1 s)
  handle.cancel();
  const auto outcome = collector.wait_for_id(handle.id());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::cancelled);
  EXPECT_GE(outcome->attempts, 1);
  EXPECT_LT(Clock::now() - start, 5s);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(collector.total_calls(), 1u);
}

TEST_F(Attempts, TheDeadlineEndsARequestWaitingToRetry) {
  FaultServer faults;
  auto options = passthru_test::step_options(faults.url("/close"), 700ms);
  options.retries = 5;
  options.retry_after_send = true;
  const auto start = Clock::now();
  const Outcome outcome = run(options);
  const auto waited = Clock::now() - start;
  EXPECT_TRUE(outcome.route == Route::on_timeout || outcome.route == Route::on_error) << outcome.reason;
  EXPECT_LT(waited, options.timeout + kSlack);
  EXPECT_GE(outcome.attempts, 3);  // 25-50, 50-100, 100-200 ms fit; 200-400 may
  for (const auto& attempt : outcome.attempt_log) EXPECT_LT(attempt.started, options.timeout);
}

TEST(AttemptsLimits, RetriesAndFallbacksKeepToMaxPerOriginAndMaxInFlight) {
  RefusedPort refused;
  TestHttpServer server;
  server.on("GET", "/backup", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(20ms);  // holds the fallback's one slot a while
    res.set_content("vip-connect", "text/plain");
  });
  LogCollector logs;
  passthru::ClientOptions client_options = passthru_test::quiet_options(logs);
  client_options.max_per_origin = 1;
  client_options.max_in_flight = 2;
  TestClient client(client_options);
  auto options = passthru_test::step_options(refused.url("/crm"), 10s);
  options.fallback_url = server.url("/backup");
  options.retries = 1;
  const StepConfig step = StepConfig::build(options);
  passthru_test::OutcomeCollector collector;
  constexpr int kCalls = 6;
  for (int i = 0; i < kCalls; ++i) client.execute(step, passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(collector.wait_for(kCalls));
  for (const Outcome& outcome : collector.outcomes()) {
    EXPECT_EQ(outcome.target, "vip-connect") << outcome.reason;
    EXPECT_EQ(outcome.answered_by, Endpoint::fallback);
    EXPECT_EQ(outcome.attempts, 3);  // the primary, its retry, the fallback
  }
  EXPECT_TRUE(collector.repeated_ids().empty());
  const auto metrics = client.client().metrics();
  EXPECT_EQ(metrics.in_flight, 0u);
  EXPECT_EQ(metrics.queued, 0u);
}

}  // namespace
