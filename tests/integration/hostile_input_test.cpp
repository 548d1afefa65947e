// Hostile call contexts end to end: a call that cannot become a valid request
// routes to on-error with Errc::invalid_request and nothing is sent; one that
// can arrives byte for byte.
#include "outcome_collector.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace {

using passthru::Errc;
using PassthruClient = passthru_test::TestClient;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::LogCollector;
using passthru_test::TestHttpServer;
using namespace std::chrono_literals;

class HostileInputEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.reply("GET", "/crm", 200, "vip-connect");
    server_.reply("POST", "/crm", 200, "vip-connect");
  }

  void expect_invalid(const std::optional<passthru::Outcome>& outcome, const std::string& mentions) {
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->route, Route::on_error) << outcome->reason;
    EXPECT_EQ(outcome->target, "error-applet");
    EXPECT_EQ(outcome->error, passthru::make_error_code(Errc::invalid_request)) << outcome->reason;
    EXPECT_EQ(outcome->reason.rfind("invalid call context: ", 0), 0u) << outcome->reason;
    EXPECT_NE(outcome->reason.find(mentions), std::string::npos) << outcome->reason;
    EXPECT_EQ(outcome->http_status, 0);
    EXPECT_LT(outcome->elapsed, 1s);
  }

  TestHttpServer server_;
  LogCollector logs_;
  PassthruClient client_{passthru_test::quiet_options(logs_)};
};

TEST_F(HostileInputEndToEnd, AGetCallTooLargeForAUrlRoutesToOnErrorUnsent) {
  const StepConfig step = StepConfig::build(passthru_test::step_options(server_.url("/crm")));
  passthru::CallContext call = passthru_test::sample_call();
  call.custom = {{"history", std::string(9000, 'h')}};
  expect_invalid(passthru_test::execute_and_wait(client_, step, call), "POST");
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(HostileInputEndToEnd, APostBodyOverOneMebibyteRoutesToOnErrorUnsent) {
  StepOptions options = passthru_test::step_options(server_.url("/crm"));
  options.method = passthru::Method::post;
  const StepConfig step = StepConfig::build(options);
  passthru::CallContext call = passthru_test::sample_call();
  call.custom = {{"history", std::string(1024 * 1024, 'h')}};
  expect_invalid(passthru_test::execute_and_wait(client_, step, call), "POST body");
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(HostileInputEndToEnd, ACallTooLargeForAGetArrivesWholeAsAPost) {
  // 8020 bytes: the GET URL would be over 8192 bytes, the form body is not
  // (the test server, cpp-httplib, refuses form bodies over 8192 bytes).
  passthru::CallContext call = passthru_test::sample_call();
  call.custom = {{"history", std::string(8020, 'h')}};
  const StepConfig get = StepConfig::build(passthru_test::step_options(server_.url("/crm")));
  expect_invalid(passthru_test::execute_and_wait(client_, get, call), "POST");
  EXPECT_EQ(server_.request_count(), 0u);

  StepOptions options = passthru_test::step_options(server_.url("/crm"));
  options.method = passthru::Method::post;
  const auto outcome = passthru_test::execute_and_wait(client_, StepConfig::build(options), call);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::next_applet) << outcome->reason;
  ASSERT_EQ(server_.request_count(), 1u);
  EXPECT_EQ(passthru_test::form_value(server_.requests()[0].body, "history"), std::string(8020, 'h'));
}

TEST_F(HostileInputEndToEnd, ControlNulAndNonUtf8BytesArriveByteForByte) {
  const StepConfig step = StepConfig::build(passthru_test::step_options(server_.url("/crm")));
  passthru::CallContext call = passthru_test::sample_call();
  call.call_sid = std::string("CA\0\r\nX-Injected: 1\r\n\r\n", 22);
  call.custom = {{std::string("n\xFF\0", 3), std::string("\xC3\x28\0\x80 &=#%", 9)}};
  const auto outcome = passthru_test::execute_and_wait(client_, step, call);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::next_applet) << outcome->reason;
  ASSERT_EQ(server_.request_count(), 1u);
  const auto request = server_.requests()[0];
  EXPECT_FALSE(request.has_header("X-Injected"));
  EXPECT_EQ(passthru_test::form_value(request.query(), "CallSid"), call.call_sid);
  EXPECT_EQ(passthru_test::form_value(request.query(), std::string("n\xFF\0", 3)),
            std::string("\xC3\x28\0\x80 &=#%", 9));
}

TEST_F(HostileInputEndToEnd, ACustomParameterRepeatingAStandardNameIsNotSent) {
  const StepConfig step = StepConfig::build(passthru_test::step_options(server_.url("/crm")));
  passthru::CallContext call = passthru_test::sample_call();
  call.custom = {{"CallFrom", "+10000000000"}};
  expect_invalid(passthru_test::execute_and_wait(client_, step, call), "CallFrom");
  EXPECT_EQ(server_.request_count(), 0u);
}

}  // namespace

// Client-wide options are checked like a step's: a CR/LF in the User-Agent
// would otherwise add a header to every request the client sends.
TEST(HostileClientOptions, ARefusedOptionIsNamedAndNothingIsSent) {
  const auto refused = [](passthru::ClientOptions options, const std::string& names) {
    try {
      PassthruClient client(std::move(options));
      ADD_FAILURE() << "accepted an invalid " << names;
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find(names), std::string::npos) << error.what();
    }
  };
  passthru::ClientOptions options;
  options.user_agent = "engine/1.0\r\nX-Injected: yes";
  refused(options, "user_agent");
  options.user_agent = std::string("engine\0/1.0", 11);
  refused(options, "user_agent");
  options.user_agent = std::string(8 * 1024 + 1, 'a');
  refused(options, "user_agent");
  options = {};
  options.utc_offset = std::chrono::hours(25);
  refused(options, "utc_offset");
  options = {};
  options.connection_max_idle = std::chrono::seconds(-1);
  refused(options, "connection_max_idle");
}

TEST(HostileClientOptions, AUserAgentWithATabIsSentAsGiven) {
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.user_agent = "engine/1.0\t(telephony)";
  PassthruClient client(options);
  const StepConfig step = StepConfig::build(passthru_test::step_options(server.url("/crm")));
  const auto outcome = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::next_applet) << outcome->reason;
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests().front().header("User-Agent"), "engine/1.0\t(telephony)");
}
