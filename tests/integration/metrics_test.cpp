// PassthruClient::metrics(): every outcome counted once, by step, route and
// status class, with the in-flight gauge, slow answers and the histogram.
#include "fault_server.hpp"
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace {

using namespace std::chrono_literals;
using passthru::MetricsSnapshot;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepMetrics;
using passthru::StepOptions;
using passthru_test::LogCollector;
using passthru_test::TestClient;

const StepMetrics* find_step(const MetricsSnapshot& snapshot, const std::string& name) {
  for (const StepMetrics& step : snapshot.steps) {
    if (step.step == name) return &step;
  }
  return nullptr;
}

std::uint64_t routed(const StepMetrics& step, Route route) {
  return step.by_route[static_cast<std::size_t>(route)];
}

StepConfig named_step(const std::string& url, const std::string& name,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  StepOptions options = passthru_test::step_options(url, timeout);
  options.name = name;
  return StepConfig::build(std::move(options));
}

TEST(Metrics, EveryOutcomeIsCountedOnceByStepRouteAndStatusClass) {
  passthru_test::TestHttpServer server;
  server.reply("GET", "/vip", 200, "vip-connect", "text/plain");
  server.reply("GET", "/empty", 200, "", "text/plain");
  server.reply("GET", "/down", 503, "down", "text/plain");
  server.reply("GET", "/missing", 404, "", "text/plain");
  passthru_test::RefusedPort refused;
  LogCollector logs;
  TestClient client(passthru_test::quiet_options(logs));

  const auto run = [&](const StepConfig& step) {
    const auto outcome = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
    ASSERT_TRUE(outcome);
  };
  for (int i = 0; i < 3; ++i) run(named_step(server.url("/vip"), "crm-lookup"));
  run(named_step(server.url("/empty"), "crm-lookup"));
  run(named_step(server.url("/down"), "crm-lookup"));
  run(named_step(server.url("/missing"), "crm-lookup"));
  run(named_step(refused.url("/x"), "crm-lookup"));
  run(named_step(server.url("/vip"), "call-log"));

  const MetricsSnapshot snapshot = client.client().metrics();
  ASSERT_EQ(snapshot.steps.size(), 2u);
  EXPECT_EQ(snapshot.steps[0].step, "call-log");  // sorted by name
  const StepMetrics* crm = find_step(snapshot, "crm-lookup");
  ASSERT_NE(crm, nullptr);
  EXPECT_EQ(crm->requests, 7u);
  EXPECT_EQ(crm->in_flight, 0u);
  EXPECT_EQ(routed(*crm, Route::next_applet), 3u);
  EXPECT_EQ(routed(*crm, Route::default_next), 1u);
  EXPECT_EQ(routed(*crm, Route::on_error), 3u);
  EXPECT_EQ(routed(*crm, Route::on_timeout), 0u);
  // none (refused), 2xx x4, 4xx, 5xx
  EXPECT_EQ(crm->by_status_class, (std::array<std::uint64_t, passthru::kStatusClassCount>{1, 0, 4, 0, 1, 1}));
  EXPECT_EQ(crm->latency.count, 7u);
  EXPECT_GT(crm->latency.sum_seconds, 0.0);
  EXPECT_GT(crm->bytes_sent, 7u * 100u);
  EXPECT_GT(crm->bytes_received, 0u);
  // The step's 20 s timeout is one of its bounds, and so is the guide's 3 s.
  const auto& bounds = crm->latency.upper_bounds;
  EXPECT_NE(std::find(bounds.begin(), bounds.end(), 20.0), bounds.end());
  EXPECT_NE(std::find(bounds.begin(), bounds.end(), 3.0), bounds.end());
  EXPECT_EQ(crm->latency.counts.size(), bounds.size() + 1);
  EXPECT_EQ(find_step(snapshot, "call-log")->requests, 1u);
  EXPECT_EQ(snapshot.in_flight, 0u);
  EXPECT_EQ(snapshot.slow_answer_threshold, 3000ms);
}

TEST(Metrics, TheInFlightGaugeCountsARequestWhileTheCallerWaits) {
  passthru_test::FaultServer server;
  LogCollector logs;
  TestClient client(passthru_test::quiet_options(logs));
  passthru_test::OutcomeCollector outcomes;
  const auto handle = client.execute(named_step(server.url("/hang"), "slow-crm"),
                                     passthru_test::sample_call(), outcomes.callback());
  ASSERT_TRUE(server.wait_for_requests("/hang", 1));
  MetricsSnapshot snapshot = client.client().metrics();
  ASSERT_EQ(snapshot.steps.size(), 1u);
  EXPECT_EQ(snapshot.steps[0].in_flight, 1u);
  EXPECT_EQ(snapshot.in_flight, 1u);
  handle.cancel();
  ASSERT_TRUE(outcomes.wait_for(1));
  snapshot = client.client().metrics();
  EXPECT_EQ(snapshot.steps[0].in_flight, 0u);
  EXPECT_EQ(routed(snapshot.steps[0], Route::cancelled), 1u);
  EXPECT_EQ(snapshot.steps[0].latency.count, 0u) << "a hung-up caller says nothing of the server";
}

TEST(Metrics, RequestsWaitingForASlotAreShownAsQueued) {
  passthru_test::FaultServer server;
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.max_in_flight = 1;
  TestClient client(options);
  passthru_test::OutcomeCollector outcomes;
  const StepConfig step = named_step(server.url("/hang"), "crm", 20s);
  const auto first = client.execute(step, passthru_test::sample_call(), outcomes.callback());
  ASSERT_TRUE(server.wait_for_requests("/hang", 1));
  const auto second = client.execute(step, passthru_test::sample_call(), outcomes.callback());
  const auto third = client.execute(step, passthru_test::sample_call(), outcomes.callback());
  // execute() hands the requests to the driver; wait until it has queued them.
  const auto until = std::chrono::steady_clock::now() + passthru_test::kGenerousWait;
  while (client.client().metrics().queued != 2 && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  EXPECT_EQ(client.client().metrics().queued, 2u);
  EXPECT_EQ(client.client().metrics().in_flight, 3u);
  second.cancel();
  third.cancel();
  first.cancel();
  ASSERT_TRUE(outcomes.wait_for(3));
  EXPECT_EQ(client.client().metrics().queued, 0u);
}

TEST(Metrics, AnswersSlowerThanTheThresholdAreCountedAndLoggedAsWarnings) {
  passthru_test::FaultServer server;
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.log_level = passthru::LogLevel::info;
  options.slow_answer_threshold = 100ms;  // the guide's 3 s, scaled down
  TestClient client(options);
  auto call = passthru_test::sample_call();
  call.call_sid = "CA-slow";
  auto slow = passthru_test::execute_and_wait(client, named_step(server.url("/delay/250"), "crm"), call);
  ASSERT_TRUE(slow);
  ASSERT_EQ(slow->route, Route::next_applet);
  call.call_sid = "CA-fast";
  ASSERT_TRUE(passthru_test::execute_and_wait(client, named_step(server.url("/delay/0"), "crm"), call));
  call.call_sid = "CA-timeout";
  const auto timed_out =
      passthru_test::execute_and_wait(client, named_step(server.url("/hang"), "crm", 150ms), call);
  ASSERT_TRUE(timed_out);
  ASSERT_EQ(timed_out->route, Route::on_timeout);

  const StepMetrics crm = client.client().metrics().steps.at(0);
  EXPECT_EQ(crm.slow_answers, 1u) << "a timeout is counted by its route, not as a slow answer";
  for (const auto& line : logs.lines()) {
    if (line.message.find("call=CA-slow ") == 0) {
      EXPECT_EQ(line.level, passthru::LogLevel::warn) << line.message;
      EXPECT_NE(line.message.find(" slow=true"), std::string::npos) << line.message;
    } else if (line.message.find("call=CA-fast ") == 0) {
      EXPECT_EQ(line.level, passthru::LogLevel::info) << line.message;
      EXPECT_EQ(line.message.find("slow="), std::string::npos) << line.message;
    } else if (line.message.find("call=CA-timeout ") == 0) {
      EXPECT_EQ(line.level, passthru::LogLevel::warn) << line.message;
    }
  }
}

TEST(Metrics, RoutineRequestLinesCanBeLoggedAtDebug) {
  passthru_test::TestHttpServer server;
  server.reply("GET", "/vip", 200, "vip-connect", "text/plain");
  server.reply("GET", "/down", 503, "", "text/plain");
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.log_level = passthru::LogLevel::info;
  options.request_log_level = passthru::LogLevel::debug;
  TestClient client(options);
  ASSERT_TRUE(passthru_test::execute_and_wait(client, named_step(server.url("/vip"), "crm"),
                                              passthru_test::sample_call()));
  ASSERT_TRUE(passthru_test::execute_and_wait(client, named_step(server.url("/down"), "crm"),
                                              passthru_test::sample_call()));
  const auto lines = logs.lines();
  ASSERT_EQ(lines.size(), 1u) << "the routine line went to debug, below the sink's info";
  EXPECT_EQ(lines[0].level, passthru::LogLevel::warn);
  EXPECT_NE(lines[0].message.find("route=on_error"), std::string::npos);
}

TEST(Metrics, TheLogLineCarriesEveryFieldAnOperatorSearchesBy) {
  passthru_test::TestHttpServer server;
  server.reply("POST", "/crm", 200, "vip-connect", "text/plain");
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.log_level = passthru::LogLevel::info;
  TestClient client(options);
  StepOptions step = passthru_test::step_options(server.url("/crm?token=s3cret-token"));
  step.method = passthru::Method::post;
  step.name = "crm lookup";
  step.secret_names = {"token"};
  const auto outcome =
      passthru_test::execute_and_wait(client, StepConfig::build(step), passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  const auto lines = logs.lines();
  ASSERT_EQ(lines.size(), 1u);
  const std::string& line = lines[0].message;
  const std::string port = std::to_string(server.port());
  for (const std::string& field : {std::string("call=abc123 "),
                                   std::string(" step=\"crm lookup\" "),
                                   std::string(" method=POST "),
                                   " host=127.0.0.1:" + port + " ",
                                   std::string(" path=/crm "),
                                   std::string(" status=200 "),
                                   std::string(" route=next_applet "),
                                   std::string(" target=vip-connect "),
                                   std::string(" reason=\""),
                                   std::string(" elapsed_ms="),
                                   std::string(" queued_ms="),
                                   std::string(" dns_ms="),
                                   std::string(" connect_ms="),
                                   std::string(" tls_ms="),
                                   std::string(" first_byte_ms="),
                                   std::string(" attempts=1 "),
                                   " sent=" + std::to_string(outcome->bytes_sent) + " ",
                                   " received=" + std::to_string(outcome->bytes_received),
                                   " remote=127.0.0.1:" + port + " ",
                                   std::string(" reused=false"),
                                   " trace_id=" + outcome->trace_id}) {
    EXPECT_NE(line.find(field), std::string::npos) << "missing '" << field << "' in " << line;
  }
  EXPECT_EQ(line.find("s3cret"), std::string::npos) << line;
}

TEST(Metrics, InvalidMetricOptionsAreRefusedWhenTheClientIsMade) {
  passthru::ClientOptions options;
  options.slow_answer_threshold = 0ms;
  EXPECT_THROW(passthru::PassthruClient{options}, std::invalid_argument);
  options = {};
  options.latency_buckets = {1, 0.5};
  EXPECT_THROW(passthru::PassthruClient{options}, std::invalid_argument);
  options = {};
  options.hooks.waiting_after = -1ms;
  EXPECT_THROW(passthru::PassthruClient{options}, std::invalid_argument);
}

}  // namespace
