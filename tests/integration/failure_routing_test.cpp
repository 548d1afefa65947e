// Requests that get no usable answer: timeouts, refused connections, bad calls, unknown hosts.
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace {

using passthru::Errc;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::OutcomeCollector;
using passthru_test::RefusedPort;
using passthru_test::SilentServer;
using passthru_test::TestHttpServer;
using Clock = std::chrono::steady_clock;

class FailureRouting : public ::testing::Test {
 protected:
  passthru_test::LogCollector logs_;
  passthru_test::TestClient client_{passthru_test::quiet_options(logs_)};
};

constexpr std::chrono::milliseconds kShortTimeout{300};
// Slack for a loaded machine; the contract is "deadline + a few milliseconds".
constexpr std::chrono::milliseconds kTimeoutSlack{1000};

// Runs one request to a server that never answers and checks the timing.
Outcome time_out(passthru_test::TestClient& client, const StepOptions& options) {
  auto step = StepConfig::build(options);
  OutcomeCollector collector;
  const auto start = Clock::now();
  auto handle = client.execute(step, passthru_test::sample_call(), collector.callback());
  auto outcome = collector.wait_for_id(handle.id());
  const auto waited = Clock::now() - start;
  if (!outcome) {
    ADD_FAILURE() << "no outcome";
    return {};
  }
  EXPECT_EQ(collector.total_calls(), 1u);
  EXPECT_GE(waited, options.timeout);
  EXPECT_LT(waited, options.timeout + kTimeoutSlack);
  EXPECT_GE(outcome->elapsed, options.timeout);
  EXPECT_LT(outcome->elapsed, options.timeout + kTimeoutSlack);
  EXPECT_EQ(outcome->route, Route::on_timeout) << outcome->reason;
  EXPECT_EQ(outcome->error, passthru::make_error_code(Errc::timed_out)) << outcome->error.message();
  EXPECT_EQ(outcome->http_status, 0);
  EXPECT_FALSE(outcome->reason.empty());
  return *outcome;
}

TEST_F(FailureRouting, SilentServerRoutesToOnTimeoutAtTheDeadline) {
  SilentServer silent;
  auto outcome = time_out(client_, passthru_test::step_options(silent.url("/crm"), kShortTimeout));
  EXPECT_EQ(outcome.target, "timeout-applet");
}

TEST_F(FailureRouting, TimeoutWithoutAnOnTimeoutTargetFallsBackToOnError) {
  SilentServer silent;
  auto options = passthru_test::step_options(silent.url("/crm"), kShortTimeout);
  options.routes.on_timeout.clear();
  EXPECT_EQ(time_out(client_, options).target, "error-applet");
}

TEST_F(FailureRouting, TimeoutWithoutOnTimeoutOrOnErrorTargetsFallsBackToDefault) {
  SilentServer silent;
  auto options = passthru_test::step_options(silent.url("/crm"), kShortTimeout);
  options.routes.on_timeout.clear();
  options.routes.on_error.clear();
  EXPECT_EQ(time_out(client_, options).target, "default-applet");
}

TEST_F(FailureRouting, ServerThatStallsAfterTheHeadersRoutesToOnTimeout) {
  passthru_test::Event release;  // outlives the server, whose worker waits on it
  TestHttpServer server;
  passthru_test::SetOnExit release_at_exit(release);
  server.on("GET", "/drip", [&release](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [&release](size_t offset, httplib::DataSink& sink) {
      if (offset == 0) {
        sink.write("vip-", 4);
        return true;
      }
      // Hold the answer open until the test is over.
      release.wait_for(std::chrono::seconds(30));
      sink.done();
      return true;
    });
  });
  auto outcome = time_out(client_, passthru_test::step_options(server.url("/drip"), kShortTimeout));
  EXPECT_EQ(outcome.target, "timeout-applet");
}

TEST_F(FailureRouting, RefusedConnectionRoutesToOnErrorAsConnectFailed) {
  RefusedPort refused;
  auto step = StepConfig::build(passthru_test::step_options(refused.url("/crm")));
  auto outcome = passthru_test::execute_and_wait(client_, step, passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::on_error) << outcome->reason;
  EXPECT_EQ(outcome->target, "error-applet");
  EXPECT_EQ(outcome->error, passthru::make_error_code(Errc::connect_failed)) << outcome->error.message();
  EXPECT_EQ(outcome->http_status, 0);
  EXPECT_FALSE(outcome->reason.empty());
}

TEST_F(FailureRouting, RefusedConnectionWithoutAnOnErrorTargetFallsBackToDefault) {
  RefusedPort refused;
  auto options = passthru_test::step_options(refused.url("/crm"));
  options.routes.on_error.clear();
  auto outcome =
      passthru_test::execute_and_wait(client_, StepConfig::build(options), passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::on_error) << outcome->reason;
  EXPECT_EQ(outcome->target, "default-applet");
}

// A custom parameter may not repeat a standard one: the request is refused
// before anything is sent.
class RefusedCall : public FailureRouting, public ::testing::WithParamInterface<std::string> {};

TEST_P(RefusedCall, RoutesToOnErrorAsInvalidRequestAndSendsNothing) {
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  auto call = passthru_test::sample_call();
  call.custom = {{"lang", "ta"}, {GetParam(), "forged"}};
  // A client of its own, destroyed before the server it keeps a connection to.
  passthru_test::TestClient client(passthru_test::quiet_options(logs_));
  auto step = StepConfig::build(passthru_test::step_options(server.url("/crm")));
  auto outcome = passthru_test::execute_and_wait(client, step, call);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::on_error) << outcome->reason;
  EXPECT_EQ(outcome->target, "error-applet");
  EXPECT_EQ(outcome->error, passthru::make_error_code(Errc::invalid_request)) << outcome->error.message();
  EXPECT_FALSE(outcome->reason.empty());

  // The client still works, and the refused request never reached the server.
  auto good = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
  ASSERT_TRUE(good);
  EXPECT_EQ(good->route, Route::next_applet) << good->reason;
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests().front().query().find("forged"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(StandardNames, RefusedCall,
                         ::testing::Values("CallSid", "CallFrom", "CallTo", "Direction", "CurrentTime",
                                           "DialWhomNumber", "digits", ""),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param.empty() ? std::string("EmptyName") : param_info.param;
                         });

}  // namespace
