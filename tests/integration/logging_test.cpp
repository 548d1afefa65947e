// One log line per completed request, at the documented levels, through the
// engine's sink or an existing spdlog logger, and never the query string.
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>
#include <passthru/spdlog.hpp>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <sstream>

using namespace passthru_test;

namespace {

std::vector<LogCollector::Line> lines_mentioning(const LogCollector& logs, const std::string& text) {
  std::vector<LogCollector::Line> found;
  for (const auto& line : logs.lines()) {
    if (line.message.find(text) != std::string::npos) found.push_back(line);
  }
  return found;
}

}  // namespace

TEST(Logging, WritesOneInfoLinePerCompletedRequestWithItsFacts) {
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect", "application/plain");
  LogCollector logs;
  passthru::ClientOptions options = quiet_options(logs);
  options.log_level = passthru::LogLevel::info;
  passthru_test::TestClient client(options);
  auto step_opts = step_options(server.url("/crm?token=s3cret"));
  step_opts.name = "crm-lookup";
  const auto step = passthru::StepConfig::build(step_opts);

  auto call = sample_call();
  call.call_sid = "CA-log-1";
  const auto outcome = execute_and_wait(client, step, call);
  ASSERT_TRUE(outcome);
  ASSERT_EQ(outcome->route, passthru::Route::next_applet);

  const auto lines = lines_mentioning(logs, "CA-log-1");
  ASSERT_EQ(lines.size(), 1u);
  const std::string& line = lines[0].message;
  EXPECT_EQ(lines[0].level, passthru::LogLevel::info);
  EXPECT_NE(line.find("step=crm-lookup"), std::string::npos) << line;
  EXPECT_NE(line.find("method=GET host=127.0.0.1:" + std::to_string(server.port()) + " path=/crm "),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("status=200"), std::string::npos) << line;
  EXPECT_NE(line.find("route=next_applet"), std::string::npos) << line;
  EXPECT_NE(line.find("target=vip-connect"), std::string::npos) << line;
  EXPECT_NE(line.find("elapsed_ms="), std::string::npos) << line;
  EXPECT_NE(line.find(" trace_id=" + outcome->trace_id), std::string::npos) << line;
  // The query may carry tokens and the call's numbers: never logged.
  for (const auto& any : logs.lines()) {
    EXPECT_EQ(any.message.find("s3cret"), std::string::npos) << any.message;
    EXPECT_EQ(any.message.find("919876543210"), std::string::npos) << any.message;
  }
}

TEST(Logging, DefaultLevelLogsOnlyFailuresAsWarnings) {
  TestHttpServer server;
  server.reply("GET", "/ok", 200, "vip-connect");
  server.reply("GET", "/down", 503, "");
  LogCollector logs;
  passthru_test::TestClient client(quiet_options(logs));  // log_level left at its default
  const auto ok_step = passthru::StepConfig::build(step_options(server.url("/ok")));
  const auto down_step = passthru::StepConfig::build(step_options(server.url("/down")));

  auto ok_call = sample_call();
  ok_call.call_sid = "CA-ok";
  auto down_call = sample_call();
  down_call.call_sid = "CA-down";
  ASSERT_TRUE(execute_and_wait(client, ok_step, ok_call));
  const auto down = execute_and_wait(client, down_step, down_call);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->route, passthru::Route::on_error);

  EXPECT_TRUE(lines_mentioning(logs, "CA-ok").empty());
  const auto failures = lines_mentioning(logs, "CA-down");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].level, passthru::LogLevel::warn);
  EXPECT_NE(failures[0].message.find("HTTP 503"), std::string::npos) << failures[0].message;
}

TEST(Logging, SpdlogAdapterForwardsToTheEnginesLogger) {
  TestHttpServer server;
  server.reply("POST", "/crm", 404, "");
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto engine_logger = std::make_shared<spdlog::logger>("engine", sink);
  engine_logger->set_pattern("%l|%v");

  passthru::ClientOptions options;
  options.log_sink = passthru::spdlog_sink(engine_logger);
  {
    passthru_test::TestClient client(options);
    auto opts = step_options(server.url("/crm"));
    opts.method = passthru::Method::post;
    auto call = sample_call();
    call.call_sid = "CA-spdlog";
    const auto outcome = execute_and_wait(client, passthru::StepConfig::build(opts), call);
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->route, passthru::Route::on_error);
  }
  const std::string text = captured.str();
  EXPECT_NE(text.find("warning|call=CA-spdlog"), std::string::npos) << text;
  EXPECT_NE(text.find("method=POST host=127.0.0.1"), std::string::npos) << text;
}

TEST(Logging, ASinkThatThrowsDoesNotCostTheOutcome) {
  RefusedPort refused;
  passthru::ClientOptions options;
  options.log_level = passthru::LogLevel::trace;
  options.log_sink = [](passthru::LogLevel, std::string_view) { throw std::runtime_error("sink broke"); };
  passthru_test::TestClient client(options);
  const auto step = passthru::StepConfig::build(step_options(refused.url("/x")));
  for (int i = 0; i < 3; ++i) {
    const auto outcome = execute_and_wait(client, step, sample_call());
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->route, passthru::Route::on_error);
  }
}
