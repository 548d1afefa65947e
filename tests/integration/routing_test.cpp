// Every row of docs/ROUTING.md, end to end: a real server answers, the client routes.
#include "outcome_collector.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace {

using passthru::Errc;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::TestHttpServer;

class RoutingEndToEnd : public ::testing::Test {
 protected:
  // Answers GET /route with `status`, `body` and `content_type`, runs one
  // request against it and returns the outcome.
  Outcome answer_with(int status, const std::string& body, const std::string& content_type = "text/plain") {
    return answer_with(status, body, content_type, passthru_test::step_options(server_.url("/route")));
  }

  Outcome answer_with(int status, const std::string& body, const std::string& content_type,
                      StepOptions options) {
    server_.reply("GET", "/route", status, body, content_type);
    auto step = StepConfig::build(std::move(options));
    auto outcome = passthru_test::execute_and_wait(client_, step, passthru_test::sample_call());
    if (!outcome) {
      ADD_FAILURE() << "no outcome within " << passthru_test::kGenerousWait.count() << " ms";
      return {};
    }
    EXPECT_NE(outcome->request_id, 0u) << outcome->reason;
    EXPECT_EQ(server_.requests_to("/route").size(), 1u);
    return *outcome;
  }

  TestHttpServer server_;
  passthru_test::LogCollector logs_;
  passthru_test::TestClient client_{passthru_test::quiet_options(logs_)};
};

void expect_next_applet(const Outcome& outcome, const std::string& applet) {
  EXPECT_EQ(outcome.route, Route::next_applet)
      << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, applet);
  EXPECT_TRUE(outcome.ok()) << outcome.error.message();
  EXPECT_EQ(outcome.http_status, 200);
}

void expect_default(const Outcome& outcome, int status = 200) {
  EXPECT_EQ(outcome.route, Route::default_next)
      << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, "default-applet");
  EXPECT_TRUE(outcome.ok()) << outcome.error.message();
  EXPECT_EQ(outcome.http_status, status);
}

void expect_unexpected_answer(const Outcome& outcome) {
  EXPECT_EQ(outcome.route, Route::default_next)
      << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, "default-applet");
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::unexpected_answer)) << outcome.error.message();
  EXPECT_FALSE(outcome.reason.empty());
}

TEST_F(RoutingEndToEnd, AppletNameAsTextPlainRoutesToNextApplet) {
  expect_next_applet(answer_with(200, "vip-connect", "text/plain"), "vip-connect");
}

TEST_F(RoutingEndToEnd, AppletNameAsApplicationPlainRoutesToNextApplet) {
  expect_next_applet(answer_with(200, "standard-queue", "application/plain"), "standard-queue");
}

TEST_F(RoutingEndToEnd, AppletNameAsTextHtmlRoutesToNextApplet) {
  expect_next_applet(answer_with(200, "new-customer", "text/html; charset=utf-8"), "new-customer");
}

TEST_F(RoutingEndToEnd, AppletNameWithTrailingNewlineIsTrimmed) {
  expect_next_applet(answer_with(200, "vip-connect\n"), "vip-connect");
}

TEST_F(RoutingEndToEnd, AppletNameWithTrailingCrLfAndLeadingSpacesIsTrimmed) {
  expect_next_applet(answer_with(200, "  vip-connect\r\n"), "vip-connect");
}

TEST_F(RoutingEndToEnd, AppletNameWithoutContentTypeRoutesToNextApplet) {
  expect_next_applet(answer_with(200, "vip-connect", ""), "vip-connect");
}

TEST_F(RoutingEndToEnd, AnyWellFormedNameRoutesToNextAppletWhenNoAppletsAreListed) {
  auto options = passthru_test::step_options(server_.url("/route"));
  options.routes.known_applets.clear();
  expect_next_applet(answer_with(200, "applet-4711", "text/plain", options), "applet-4711");
}

TEST_F(RoutingEndToEnd, FlowUrlRoutesToExternalFlow) {
  auto outcome = answer_with(200, "https://my.exotel.com/exoml/start/vip-flow\n", "text/html");
  EXPECT_EQ(outcome.route, Route::external_flow) << outcome.reason;
  EXPECT_EQ(outcome.target, "https://my.exotel.com/exoml/start/vip-flow");
  EXPECT_TRUE(outcome.ok()) << outcome.error.message();
  EXPECT_EQ(outcome.http_status, 200);
}

TEST_F(RoutingEndToEnd, FlowUrlOnAnAllowedHostRoutesToExternalFlow) {
  auto options = passthru_test::step_options(server_.url("/route"));
  options.routes.external_flow_hosts = {"*.exotel.com"};
  auto outcome = answer_with(200, "https://my.exotel.com/exoml/start/vip-flow", "text/plain", options);
  EXPECT_EQ(outcome.route, Route::external_flow) << outcome.reason;
  EXPECT_EQ(outcome.target, "https://my.exotel.com/exoml/start/vip-flow");
}

TEST_F(RoutingEndToEnd, FlowUrlOnAHostOutsideTheAllowListRoutesToDefaultAsDenied) {
  auto options = passthru_test::step_options(server_.url("/route"));
  options.routes.external_flow_hosts = {"flows.example.com"};
  auto outcome = answer_with(200, "https://evil.example.net/flow", "text/plain", options);
  EXPECT_EQ(outcome.route, Route::default_next) << outcome.reason;
  EXPECT_EQ(outcome.target, "default-applet");
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::external_flow_denied));
}

TEST_F(RoutingEndToEnd, EmptyBodyRoutesToDefault) { expect_default(answer_with(200, "")); }

TEST_F(RoutingEndToEnd, WhitespaceOnlyBodyRoutesToDefault) { expect_default(answer_with(200, " \r\n\t\n")); }

TEST_F(RoutingEndToEnd, NoContentAnswerRoutesToDefault) { expect_default(answer_with(204, "", ""), 204); }

TEST_F(RoutingEndToEnd, JsonNextAndVariablesRouteToNextAppletWithVariables) {
  auto outcome = answer_with(200, R"({"next": "vip-connect", "variables": {"tier": "gold", "agent": "42"}})",
                             "application/json");
  expect_next_applet(outcome, "vip-connect");
  std::map<std::string, std::string> expected{{"tier", "gold"}, {"agent", "42"}};
  EXPECT_EQ(outcome.variables, expected);
}

TEST_F(RoutingEndToEnd, JsonNextWithAFlowUrlRoutesToExternalFlow) {
  auto outcome = answer_with(200, R"({"next": "https://my.exotel.com/exoml/start/standard-flow"})",
                             "application/json; charset=utf-8");
  EXPECT_EQ(outcome.route, Route::external_flow) << outcome.reason;
  EXPECT_EQ(outcome.target, "https://my.exotel.com/exoml/start/standard-flow");
}

TEST_F(RoutingEndToEnd, JsonWithoutNextRoutesToDefault) {
  expect_default(answer_with(200, R"({"variables": {"order": "shipped"}})", "application/json"));
}

TEST_F(RoutingEndToEnd, JsonWithANonStringVariableRoutesToDefaultAsUnexpectedAnswer) {
  expect_unexpected_answer(
      answer_with(200, R"({"next": "vip-connect", "variables": {"agent": 42}})", "application/json"));
}

TEST_F(RoutingEndToEnd, MalformedJsonRoutesToDefaultAsUnexpectedAnswer) {
  expect_unexpected_answer(answer_with(200, R"({"next": "vip-connect")", "application/json"));
}

TEST_F(RoutingEndToEnd, UnknownAppletRoutesToDefaultAsUnexpectedAnswer) {
  expect_unexpected_answer(answer_with(200, "no-such-applet", "text/plain"));
}

TEST_F(RoutingEndToEnd, SeveralLinesRouteToDefaultAsUnexpectedAnswer) {
  expect_unexpected_answer(answer_with(200, "vip-connect\nstandard-queue\n", "text/plain"));
}

TEST_F(RoutingEndToEnd, HtmlPageRoutesToDefaultAsUnexpectedAnswer) {
  expect_unexpected_answer(answer_with(200, "<html><body>vip-connect</body></html>", "text/html"));
}

TEST_F(RoutingEndToEnd, BinaryAnswerRoutesToDefaultAsUnexpectedAnswer) {
  expect_unexpected_answer(answer_with(200, "vip-connect", "application/octet-stream"));
}

TEST_F(RoutingEndToEnd, RedirectRoutesToOnErrorAndIsNotFollowed) {
  server_.reply("GET", "/elsewhere", 200, "vip-connect");
  server_.on("GET", "/route", [this](const httplib::Request&, httplib::Response& res) {
    res.status = 301;
    res.set_header("Location", server_.url("/elsewhere"));
    res.set_content("moved", "text/plain");
  });
  auto step = StepConfig::build(passthru_test::step_options(server_.url("/route")));
  auto outcome = passthru_test::execute_and_wait(client_, step, passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::on_error) << outcome->reason;
  EXPECT_EQ(outcome->target, "error-applet");
  EXPECT_EQ(outcome->error, passthru::make_error_code(Errc::http_status));
  EXPECT_EQ(outcome->http_status, 301);
  EXPECT_EQ(server_.requests_to("/route").size(), 1u);
  EXPECT_EQ(server_.requests_to("/elsewhere").size(), 0u) << "the redirect was followed";
}

TEST_F(RoutingEndToEnd, ErrorStatusWithoutAnOnErrorTargetFallsBackToDefault) {
  auto options = passthru_test::step_options(server_.url("/route"));
  options.routes.on_error.clear();
  auto outcome = answer_with(500, "boom", "text/plain", options);
  EXPECT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_EQ(outcome.target, "default-applet");
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::http_status));
}

TEST_F(RoutingEndToEnd, AnswerLargerThanTheCapRoutesToOnErrorAsTooLarge) {
  auto options = passthru_test::step_options(server_.url("/route"));
  options.max_answer_bytes = 1024;
  auto outcome = answer_with(200, std::string(256 * 1024, 'x'), "text/plain", options);
  EXPECT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_EQ(outcome.target, "error-applet");
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::answer_too_large)) << outcome.error.message();
}

TEST_F(RoutingEndToEnd, AnswerJustUnderTheCapIsRead) {
  auto options = passthru_test::step_options(server_.url("/route"));
  options.max_answer_bytes = 1024;
  expect_next_applet(answer_with(200, std::string(1000, ' ') + "vip-connect", "text/plain", options),
                     "vip-connect");
}

// The receive buffer is 1 KiB: an answer of many buffers is read whole, the
// applet at its end included.
TEST_F(RoutingEndToEnd, AnAnswerOfManyReceiveBuffersIsReadWhole) {
  auto options = passthru_test::step_options(server_.url("/route"));
  ASSERT_GT(options.max_answer_bytes, 60u * 1024);
  expect_next_applet(answer_with(200, std::string(60 * 1024, ' ') + "vip-connect", "text/plain", options),
                     "vip-connect");
}

// 3xx, 4xx and 5xx all route to on-error with the status in the outcome.
class ErrorStatusEndToEnd : public RoutingEndToEnd, public ::testing::WithParamInterface<int> {};

TEST_P(ErrorStatusEndToEnd, RoutesToOnErrorWithTheStatus) {
  const int status = GetParam();
  // A body naming an applet must not matter: the status decides.
  auto outcome = answer_with(status, "vip-connect", "text/plain");
  EXPECT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_EQ(outcome.target, "error-applet");
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::http_status)) << outcome.error.message();
  EXPECT_EQ(outcome.http_status, status);
  EXPECT_NE(outcome.reason.find(std::to_string(status)), std::string::npos) << outcome.reason;
}

INSTANTIATE_TEST_SUITE_P(Statuses, ErrorStatusEndToEnd, ::testing::Values(301, 302, 400, 404, 500, 503),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return "Http" + std::to_string(param_info.param);
                         });

}  // namespace
