// Many requests at once, from many threads, with misbehaving callbacks; connection reuse.
#include "outcome_collector.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::Outcome;
using PassthruClient = passthru_test::TestClient;
using passthru::RequestHandle;
using passthru::Route;
using passthru::StepConfig;
using passthru_test::OutcomeCollector;
using passthru_test::ServerOptions;
using passthru_test::TestHttpServer;

// Bursts open one connection per request; closing each after its answer
// keeps the server's workers from idling on connections no one reuses.
ServerOptions burst_server() {
  ServerOptions options;
  options.threads = 64;
  options.keep_alive_max_count = 1;
  return options;
}

// Answers each request with the applet named in its "Applet" parameter.
void echo_applet(TestHttpServer& server, const std::string& path) {
  server.on("GET", path, [](const httplib::Request& req, httplib::Response& res) {
    auto q = req.target.find('?');
    auto applet = passthru_test::form_value(q == std::string::npos ? "" : req.target.substr(q + 1), "Applet");
    res.set_content(applet.value_or(""), "text/plain");
  });
}

TEST(Concurrency, ThousandConcurrentRequestsAreEachAnsweredOnceWithTheirOwnApplet) {
  constexpr int kRequests = 1000;
  TestHttpServer server(burst_server());
  echo_applet(server, "/echo");
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto options = passthru_test::step_options(server.url("/echo"), 90s);
  options.routes.known_applets.clear();  // any well-formed name
  auto step = StepConfig::build(options);

  OutcomeCollector collector;
  std::map<std::uint64_t, std::string> expected;
  for (int i = 0; i < kRequests; ++i) {
    auto call = passthru_test::sample_call();
    call.call_sid = "call-" + std::to_string(i);
    std::string applet = "applet-" + std::to_string(i);
    call.custom = {{"Applet", applet}};
    auto handle = client.execute(step, std::move(call), collector.callback());
    ASSERT_TRUE(expected.emplace(handle.id(), applet).second) << "request id " << handle.id() << " reused";
  }

  ASSERT_TRUE(collector.wait_for(kRequests, 120s)) << "only " << collector.total_calls() << " outcomes";
  EXPECT_EQ(collector.total_calls(), static_cast<std::size_t>(kRequests));
  EXPECT_TRUE(collector.repeated_ids().empty());
  int wrong = 0;
  for (const auto& [id, applet] : expected) {
    auto outcome = collector.outcome(id);
    const bool right = outcome && collector.calls_for(id) == 1 && outcome->route == Route::next_applet &&
                       outcome->target == applet;
    if (!right && ++wrong <= 5) {
      ADD_FAILURE() << "request " << id << " expected " << applet << ", got "
                    << (outcome ? std::string(passthru::to_string(outcome->route)) + " '" + outcome->target +
                                      "' (" + outcome->reason + ")"
                                : std::string("no outcome"))
                    << ", " << collector.calls_for(id) << " calls";
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(server.request_count(), static_cast<std::size_t>(kRequests));
}

TEST(Concurrency, ExecuteFromEightThreadsAtOnceGivesExactlyOneOutcomeEach) {
  constexpr std::size_t kThreads = 8;
  constexpr std::size_t kPerThread = 100;
  TestHttpServer server(burst_server());
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto step = StepConfig::build(passthru_test::step_options(server.url("/crm"), 90s));

  OutcomeCollector collector;
  passthru_test::StartGate gate(kThreads);
  std::vector<std::vector<std::uint64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      gate.arrive_and_wait();
      for (std::size_t i = 0; i < kPerThread; ++i) {
        ids[t].push_back(client.execute(step, passthru_test::sample_call(), collector.callback()).id());
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::set<std::uint64_t> all_ids;
  for (const auto& per_thread : ids) all_ids.insert(per_thread.begin(), per_thread.end());
  EXPECT_EQ(all_ids.size(), kThreads * kPerThread) << "request ids are not unique";
  EXPECT_EQ(all_ids.count(0), 0u);

  ASSERT_TRUE(collector.wait_for(kThreads * kPerThread, 120s)) << "only " << collector.total_calls();
  EXPECT_EQ(collector.total_calls(), kThreads * kPerThread);
  EXPECT_TRUE(collector.repeated_ids().empty());
  std::size_t routed = 0;
  for (auto id : all_ids) {
    auto outcome = collector.outcome(id);
    if (outcome && outcome->route == Route::next_applet && outcome->target == "vip-connect") ++routed;
  }
  EXPECT_EQ(routed, kThreads * kPerThread);
}

TEST(Concurrency, ThrowingCallbacksDoNotStopOtherRequests) {
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto step = StepConfig::build(passthru_test::step_options(server.url("/crm")));

  OutcomeCollector collector;
  auto record = collector.callback();
  auto throw_std = [record](Outcome outcome) {
    record(std::move(outcome));
    throw std::runtime_error("engine bug");
  };
  auto throw_other = [record](Outcome outcome) {
    record(std::move(outcome));
    throw 42;
  };

  // One throwing callback alone first, then throwing and quiet ones mixed.
  auto first = client.execute(step, passthru_test::sample_call(), throw_std);
  ASSERT_TRUE(collector.wait_for_id(first.id()));
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 30; ++i) {
    if (i % 3 == 0) {
      handles.push_back(client.execute(step, passthru_test::sample_call(), throw_std));
    } else if (i % 3 == 1) {
      handles.push_back(client.execute(step, passthru_test::sample_call(), throw_other));
    } else {
      handles.push_back(client.execute(step, passthru_test::sample_call(), record));
    }
  }
  ASSERT_TRUE(collector.wait_for(31)) << "only " << collector.total_calls();

  // The client still works afterwards.
  auto after = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->route, Route::next_applet) << after->reason;

  EXPECT_EQ(collector.total_calls(), 31u);
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (const auto& handle : handles) {
    auto outcome = collector.outcome(handle.id());
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->route, Route::next_applet) << outcome->reason;
  }
}

TEST(Concurrency, SequentialRequestsReuseTheConnection) {
  constexpr std::size_t kRequests = 20;
  ServerOptions keep_alive;
  keep_alive.keep_alive_max_count = 1000;
  keep_alive.keep_alive_timeout = 10s;
  TestHttpServer server(keep_alive);
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto step = StepConfig::build(passthru_test::step_options(server.url("/crm")));

  for (std::size_t i = 0; i < kRequests; ++i) {
    auto outcome = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
    ASSERT_TRUE(outcome) << "request " << i;
    ASSERT_EQ(outcome->route, Route::next_applet) << outcome->reason;
  }
  ASSERT_EQ(server.request_count(), kRequests);
  // One connection is expected; allow one reconnect.
  EXPECT_LE(server.remote_ports().size(), 2u)
      << server.remote_ports().size() << " connections for " << kRequests << " sequential requests";
}

TEST(Concurrency, StepsToDifferentServersShareOneClient) {
  TestHttpServer crm;
  TestHttpServer hours;
  crm.reply("GET", "/crm", 200, "vip-connect");
  hours.reply("POST", "/hours", 200, "standard-queue");
  passthru_test::LogCollector logs;
  PassthruClient client(passthru_test::quiet_options(logs));
  auto crm_step = StepConfig::build(passthru_test::step_options(crm.url("/crm")));
  auto hours_options = passthru_test::step_options(hours.url("/hours"));
  hours_options.method = passthru::Method::post;
  auto hours_step = StepConfig::build(hours_options);

  OutcomeCollector collector;
  std::vector<std::pair<RequestHandle, std::string>> expected;
  for (int i = 0; i < 50; ++i) {
    expected.emplace_back(client.execute(crm_step, passthru_test::sample_call(), collector.callback()),
                          "vip-connect");
    expected.emplace_back(client.execute(hours_step, passthru_test::sample_call(), collector.callback()),
                          "standard-queue");
  }
  ASSERT_TRUE(collector.wait_for(expected.size()));
  for (const auto& [handle, applet] : expected) {
    auto outcome = collector.outcome(handle.id());
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->target, applet) << outcome->reason;
  }
  EXPECT_EQ(crm.request_count(), 50u);
  EXPECT_EQ(hours.request_count(), 50u);
  EXPECT_EQ(collector.total_calls(), 100u);
}

}  // namespace
