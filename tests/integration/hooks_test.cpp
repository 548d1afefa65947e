// RequestHooks: the engine hears when a request starts, when the caller has
// waited long enough for hold music, and when it ends, in that order.
#include "fault_server.hpp"
#include "outcome_collector.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"
#include "work_queue.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::Outcome;
using passthru::RequestInfo;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::LogCollector;
using passthru_test::TestClient;

/// What the hooks and the outcome callback saw, in order.
class EventLog {
 public:
  void add(std::string event) {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  void keep(const RequestInfo& info) {
    std::lock_guard<std::mutex> lock(mutex_);
    infos_.push_back(info);
  }
  std::vector<RequestInfo> infos() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return infos_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> events_;
  std::vector<RequestInfo> infos_;
};

passthru::ClientOptions recording(const LogCollector& logs, EventLog& log, std::chrono::milliseconds after) {
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.hooks.waiting_after = after;
  options.hooks.on_start = [&log](const RequestInfo& info) {
    log.add("start " + std::to_string(info.request_id));
    log.keep(info);
  };
  options.hooks.on_waiting = [&log](const RequestInfo& info, std::chrono::milliseconds waited) {
    log.add("waiting " + std::to_string(info.request_id));
    EXPECT_GE(waited, 50ms);
  };
  options.hooks.on_end = [&log](const RequestInfo& info, const Outcome& outcome) {
    log.add("end " + std::to_string(info.request_id) + " " + passthru::to_string(outcome.route));
    EXPECT_EQ(info.request_id, outcome.request_id);
  };
  return options;
}

std::vector<std::string> expected(std::uint64_t id, bool waited, const char* route = "next_applet") {
  const std::string n = std::to_string(id);
  std::vector<std::string> events{"start " + n};
  if (waited) events.push_back("waiting " + n);
  events.push_back("end " + n + " " + route);
  events.push_back("outcome " + n);
  return events;
}

TEST(Hooks, ASlowAnswerHearsStartThenWaitingThenEndThenItsOutcome) {
  passthru_test::FaultServer server;
  LogCollector logs;
  EventLog log;
  TestClient client(recording(logs, log, 50ms));
  passthru_test::Event done;
  const auto handle = client.execute(StepConfig::build(passthru_test::step_options(server.url("/delay/300"))),
                                     passthru_test::sample_call(), [&](Outcome outcome) {
                                       log.add("outcome " + std::to_string(outcome.request_id));
                                       done.set();
                                     });
  ASSERT_TRUE(done.wait_for());
  EXPECT_EQ(log.events(), expected(handle.id(), true));
}

TEST(Hooks, AFastAnswerNeverHearsWaiting) {
  passthru_test::FaultServer server;
  LogCollector logs;
  EventLog log;
  TestClient client(recording(logs, log, 2000ms));
  passthru_test::Event done;
  const auto handle = client.execute(StepConfig::build(passthru_test::step_options(server.url("/delay/0"))),
                                     passthru_test::sample_call(), [&](Outcome outcome) {
                                       log.add("outcome " + std::to_string(outcome.request_id));
                                       done.set();
                                     });
  ASSERT_TRUE(done.wait_for());
  EXPECT_EQ(log.events(), expected(handle.id(), false));
}

TEST(Hooks, WaitingIsHeardBeforeATimeoutAndNeverForAStepNoLongerThanTheWait) {
  passthru_test::FaultServer server;
  LogCollector logs;
  EventLog log;
  TestClient client(recording(logs, log, 60ms));
  passthru_test::OutcomeCollector outcomes;
  const auto waits =
      client.execute(StepConfig::build(passthru_test::step_options(server.url("/hang"), 200ms)),
                     passthru_test::sample_call(), outcomes.callback());
  ASSERT_TRUE(outcomes.wait_for(1));
  const auto short_step =
      client.execute(StepConfig::build(passthru_test::step_options(server.url("/hang"), 60ms)),
                     passthru_test::sample_call(), outcomes.callback());
  ASSERT_TRUE(outcomes.wait_for(2));
  std::vector<std::string> want = expected(waits.id(), true, "on_timeout");
  want.pop_back();  // the collector's callback logs nothing
  std::vector<std::string> rest = expected(short_step.id(), false, "on_timeout");
  rest.pop_back();
  want.insert(want.end(), rest.begin(), rest.end());
  EXPECT_EQ(log.events(), want);
}

TEST(Hooks, RunOnTheEnginesExecutorInOrderWithTheOutcome) {
  passthru_test::FaultServer server;
  passthru_test::WorkQueue queue;
  LogCollector logs;
  EventLog log;
  passthru::ClientOptions options = recording(logs, log, 50ms);
  options.executor = [&queue](std::function<void()> task) { queue.post(std::move(task)); };
  const auto on_queue = [&queue](const char* what) {
    EXPECT_EQ(std::this_thread::get_id(), queue.thread_id()) << what;
  };
  auto start = options.hooks.on_start;
  options.hooks.on_start = [&, start](const RequestInfo& info) {
    on_queue("on_start");
    start(info);
  };
  auto end = options.hooks.on_end;
  options.hooks.on_end = [&, end](const RequestInfo& info, const Outcome& outcome) {
    on_queue("on_end");
    end(info, outcome);
  };
  TestClient client(options);
  passthru_test::Event done;
  const auto handle = client.execute(StepConfig::build(passthru_test::step_options(server.url("/delay/300"))),
                                     passthru_test::sample_call(), [&](Outcome outcome) {
                                       on_queue("outcome");
                                       log.add("outcome " + std::to_string(outcome.request_id));
                                       done.set();
                                     });
  ASSERT_TRUE(done.wait_for());
  EXPECT_EQ(log.events(), expected(handle.id(), true));
}

TEST(Hooks, TheStartHookSeesTheRequestAsSentWithItsSecretsHidden) {
  passthru_test::TestHttpServer server;
  server.reply("POST", "/crm", 200, "vip-connect", "text/plain");
  LogCollector logs;
  EventLog log;
  TestClient client(recording(logs, log, 0ms));
  StepOptions options = passthru_test::step_options(server.url("/crm?api_token=t0ken-in-url"));
  options.method = passthru::Method::post;
  options.name = "crm-lookup";
  options.headers = {{"Authorization", "Bearer abcdefgh"}, {"X-Tenant", "acme"}};
  options.secret_names = {"api_token", "Pin"};
  auto call = passthru_test::sample_call();
  call.custom = {{"Pin", "4321-secret"}};
  const auto outcome = passthru_test::execute_and_wait(client, StepConfig::build(options), call);
  ASSERT_TRUE(outcome);
  const auto infos = log.infos();
  ASSERT_EQ(infos.size(), 1u);
  const RequestInfo& info = infos[0];
  EXPECT_EQ(info.request_id, outcome->request_id);
  EXPECT_EQ(info.call_sid, "abc123");
  EXPECT_EQ(info.step, "crm-lookup");
  EXPECT_EQ(info.method, passthru::Method::post);
  EXPECT_EQ(info.trace_id, outcome->trace_id);
  EXPECT_EQ(info.timeout, 20000ms);
  EXPECT_EQ(info.url, server.url("/crm?api_token=***"));
  EXPECT_NE(info.body.find("CallSid=abc123&"), std::string::npos) << info.body;
  EXPECT_NE(info.body.find("Pin=***"), std::string::npos) << info.body;
  EXPECT_EQ(info.body.find("4321-secret"), std::string::npos) << info.body;
  const auto has = [&](const std::string& line) {
    return std::find(info.headers.begin(), info.headers.end(), line) != info.headers.end();
  };
  EXPECT_TRUE(has("Authorization: ***"));
  EXPECT_TRUE(has("X-Tenant: acme"));
  EXPECT_TRUE(has("User-Agent: passthru/" PASSTHRU_VERSION_STRING));
  EXPECT_TRUE(std::any_of(info.headers.begin(), info.headers.end(), [&](const std::string& line) {
    return line == "traceparent: 00-" + outcome->trace_id + "-" + outcome->span_id + "-01";
  }));
  // What the server got is the same request, secrets and all.
  const auto received = server.requests().at(0);
  EXPECT_TRUE(has("Idempotency-Key: " + received.header("Idempotency-Key")));
  EXPECT_TRUE(has("traceparent: " + received.header("traceparent")));
  EXPECT_TRUE(std::none_of(info.headers.begin(), info.headers.end(), [](const std::string& line) {
    return line.rfind("Expect", 0) == 0;
  })) << "libcurl is told not to send Expect; the hook must not show it";
  EXPECT_EQ(received.header("Authorization"), "Bearer abcdefgh");
  EXPECT_EQ(passthru_test::form_value(received.body, "Pin"), "4321-secret");
}

TEST(Hooks, ARequestRefusedBeforeItWasBuiltStillHearsItsEnd) {
  passthru_test::TestHttpServer server;
  LogCollector logs;
  EventLog log;
  TestClient client(recording(logs, log, 0ms));
  auto call = passthru_test::sample_call();
  call.custom = {{"CallSid", "forged"}};
  passthru_test::Event done;
  const auto handle = client.execute(StepConfig::build(passthru_test::step_options(server.url("/crm"))), call,
                                     [&](Outcome outcome) {
                                       log.add("outcome " + std::to_string(outcome.request_id));
                                       done.set();
                                     });
  ASSERT_TRUE(done.wait_for());
  const std::string n = std::to_string(handle.id());
  EXPECT_EQ(log.events(), (std::vector<std::string>{"end " + n + " on_error", "outcome " + n}));
  EXPECT_EQ(server.request_count(), 0u);
}

TEST(Hooks, AHookThatThrowsIsLoggedAndCostsNothing) {
  passthru_test::FaultServer server;
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.hooks.waiting_after = 20ms;
  options.hooks.on_start = [](const RequestInfo&) { throw std::runtime_error("start broke"); };
  options.hooks.on_waiting = [](const RequestInfo&, std::chrono::milliseconds) { throw 42; };
  options.hooks.on_end = [](const RequestInfo&, const Outcome&) { throw std::runtime_error("end broke"); };
  TestClient client(options);
  const auto outcome = passthru_test::execute_and_wait(
      client, StepConfig::build(passthru_test::step_options(server.url("/delay/150"))),
      passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->route, Route::next_applet);
  int logged = 0;
  for (const auto& line : logs.lines()) {
    if (line.level == passthru::LogLevel::error && line.message.find("threw") != std::string::npos) ++logged;
  }
  EXPECT_EQ(logged, 3);
}

}  // namespace
