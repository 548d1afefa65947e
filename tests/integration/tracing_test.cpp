// W3C Trace Context: every request carries a traceparent header, joining the
// engine's trace of the call when it hands one in; the trace id is in the
// Outcome and the log line.
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using passthru::Outcome;
using passthru::StepConfig;
using passthru_test::LogCollector;
using passthru_test::TestClient;

constexpr const char* kEngineTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kEngineSpan = "00f067aa0ba902b7";

class Tracing : public ::testing::Test {
 protected:
  Tracing() { server_.reply("GET", "/crm", 200, "vip-connect", "text/plain"); }

  Outcome run(passthru::CallContext call, passthru::ClientOptions options = {}) {
    options.log_sink = logs_.sink();
    TestClient client(options);
    const auto outcome = passthru_test::execute_and_wait(
        client, StepConfig::build(passthru_test::step_options(server_.url("/crm"))), std::move(call));
    EXPECT_TRUE(outcome);
    return outcome.value_or(Outcome{});
  }

  passthru_test::RecordedRequest last() const { return server_.requests().back(); }

  passthru_test::TestHttpServer server_;
  LogCollector logs_;
};

bool is_hex(const std::string& text, std::size_t length) {
  return text.size() == length && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST_F(Tracing, ACallWithoutATraceStartsOneAndTheServerSeesIt) {
  const Outcome first = run(passthru_test::sample_call());
  ASSERT_TRUE(is_hex(first.trace_id, 32)) << first.trace_id;
  ASSERT_TRUE(is_hex(first.span_id, 16)) << first.span_id;
  EXPECT_EQ(last().header("traceparent"), "00-" + first.trace_id + "-" + first.span_id + "-01");
  EXPECT_FALSE(last().has_header("tracestate"));
  const Outcome second = run(passthru_test::sample_call());
  EXPECT_NE(second.trace_id, first.trace_id);
}

TEST_F(Tracing, TheEnginesTraceIsJoinedWithANewSpanAndItsFlagsAndState) {
  auto call = passthru_test::sample_call();
  call.traceparent = std::string("00-") + kEngineTrace + "-" + kEngineSpan + "-00";
  call.tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  const Outcome outcome = run(call);
  EXPECT_EQ(outcome.trace_id, kEngineTrace);
  ASSERT_TRUE(is_hex(outcome.span_id, 16));
  EXPECT_NE(outcome.span_id, kEngineSpan) << "the request is a child of the engine's span, not the span";
  EXPECT_EQ(last().header("traceparent"), std::string("00-") + kEngineTrace + "-" + outcome.span_id + "-00");
  EXPECT_EQ(last().header("tracestate"), call.tracestate);
}

TEST_F(Tracing, AnInvalidTraceFromTheEngineStartsANewOneAndItsStateIsNotSent) {
  auto call = passthru_test::sample_call();
  call.traceparent = std::string("00-00000000000000000000000000000000-") + kEngineSpan + "-01";
  call.tracestate = "congo=t61rcWkgMzE";
  const Outcome outcome = run(call);
  ASSERT_TRUE(is_hex(outcome.trace_id, 32));
  EXPECT_NE(outcome.trace_id, std::string(32, '0'));
  EXPECT_EQ(last().header("traceparent"), "00-" + outcome.trace_id + "-" + outcome.span_id + "-01");
  EXPECT_FALSE(last().has_header("tracestate"));
}

TEST_F(Tracing, ATracestateThatCouldInjectAHeaderIsNotSent) {
  auto call = passthru_test::sample_call();
  call.traceparent = std::string("00-") + kEngineTrace + "-" + kEngineSpan + "-01";
  call.tracestate = "a=b\r\nX-Injected: 1";
  const Outcome outcome = run(call);
  EXPECT_EQ(outcome.route, passthru::Route::next_applet);
  EXPECT_FALSE(last().has_header("tracestate"));
  EXPECT_FALSE(last().has_header("X-Injected"));
}

TEST_F(Tracing, WithTheHeaderTurnedOffTheTraceIdIsStillKeptForTheLogs) {
  passthru::ClientOptions options;
  options.send_traceparent = false;
  options.log_level = passthru::LogLevel::info;
  auto call = passthru_test::sample_call();
  call.traceparent = std::string("00-") + kEngineTrace + "-" + kEngineSpan + "-01";
  const Outcome outcome = run(call, options);
  EXPECT_FALSE(last().has_header("traceparent"));
  EXPECT_EQ(outcome.trace_id, kEngineTrace);
  const auto lines = logs_.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].message.find(std::string("trace_id=") + kEngineTrace), std::string::npos);
}

TEST_F(Tracing, TheOutcomeCarriesTheAnswerAsReceived) {
  server_.reply("GET", "/json", 200, "{\"next\": \"vip-connect\"}", "application/json; charset=utf-8");
  TestClient client(passthru_test::quiet_options(logs_));
  const auto outcome = passthru_test::execute_and_wait(
      client, StepConfig::build(passthru_test::step_options(server_.url("/json"))),
      passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, passthru::Route::next_applet);
  EXPECT_EQ(outcome->content_type, "application/json; charset=utf-8");
  EXPECT_EQ(outcome->answer, "{\"next\": \"vip-connect\"}");
}

}  // namespace
