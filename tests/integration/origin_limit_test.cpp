// ClientOptions::max_per_origin: one slow customer cannot take every slot
// from the others; requests over the limit wait within their own timeout.
#include "fault_server.hpp"
#include "outcome_collector.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru_test::LogCollector;
using passthru_test::OutcomeCollector;
using passthru_test::TestClient;

passthru::ClientOptions limited(const LogCollector& logs, std::size_t in_flight, std::size_t per_origin) {
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.max_in_flight = in_flight;
  options.max_per_origin = per_origin;
  return options;
}

TEST(OriginLimit, OneSlowCustomerCannotTakeEverySlotFromTheOthers) {
  passthru_test::FaultServer slow;
  passthru_test::TestHttpServer healthy;
  healthy.reply("GET", "/crm", 200, "vip-connect", "text/plain");
  LogCollector logs;
  TestClient client(limited(logs, 8, 4));
  OutcomeCollector hung;
  std::vector<passthru::RequestHandle> handles;
  const StepConfig hang = StepConfig::build(passthru_test::step_options(slow.url("/hang"), 60s));
  for (int i = 0; i < 20; ++i)
    handles.push_back(client.execute(hang, passthru_test::sample_call(), hung.callback()));
  ASSERT_TRUE(slow.wait_for_requests("/hang", 4));

  // The healthy customer's calls go through the four slots left, at once.
  OutcomeCollector answered;
  const StepConfig crm = StepConfig::build(passthru_test::step_options(healthy.url("/crm")));
  for (int i = 0; i < 10; ++i) client.execute(crm, passthru_test::sample_call(), answered.callback());
  ASSERT_TRUE(answered.wait_for(10));
  for (const Outcome& outcome : answered.outcomes()) {
    EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
    EXPECT_LT(outcome.elapsed, 5s);
  }
  EXPECT_EQ(slow.received_count("/hang"), 4u) << "the slow origin got more than max_per_origin at once";
  EXPECT_EQ(client.client().metrics().queued, 16u);
  // The waiting ones first (newest first), then the four running: cancelling
  // a running one first would free its slot for a waiting request whose
  // cancel has not arrived yet, and that request is rightly sent.
  for (auto handle = handles.rbegin(); handle != handles.rend(); ++handle) handle->cancel();
  ASSERT_TRUE(hung.wait_for(20));
  EXPECT_EQ(slow.received_count("/hang"), 4u) << "a request cancelled while waiting was sent";
  EXPECT_EQ(client.client().metrics().queued, 0u);
}

TEST(OriginLimit, ARequestThatNeverGetsItsOriginsSlotEndsOnTimeoutSayingWhy) {
  passthru_test::FaultServer slow;
  LogCollector logs;
  TestClient client(limited(logs, 0, 1));
  OutcomeCollector outcomes;
  // The first holds the origin's one slot well past the second's deadline.
  const auto first = client.execute(StepConfig::build(passthru_test::step_options(slow.url("/hang"), 60s)),
                                    passthru_test::sample_call(), outcomes.callback());
  ASSERT_TRUE(slow.wait_for_requests("/hang", 1));
  const auto second = client.execute(StepConfig::build(passthru_test::step_options(slow.url("/hang"), 300ms)),
                                     passthru_test::sample_call(), outcomes.callback());
  const auto waited = outcomes.wait_for_id(second.id());
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->route, Route::on_timeout);
  EXPECT_EQ(waited->attempts, 0);
  EXPECT_NE(waited->reason.find("never started: max_per_origin 1 reached for http://127.0.0.1:" +
                                std::to_string(slow.port())),
            std::string::npos)
      << waited->reason;
  EXPECT_GE(waited->elapsed, 300ms);
  EXPECT_EQ(slow.received_count("/hang"), 1u);
  first.cancel();
  ASSERT_TRUE(outcomes.wait_for(2));
  EXPECT_EQ(outcomes.outcome(first.id())->attempts, 1);
}

TEST(OriginLimit, WhenASlotFreesTheOriginsOldestWaitingRequestGoesNext) {
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect", "text/plain");
  LogCollector logs;
  TestClient client(limited(logs, 0, 1));
  OutcomeCollector outcomes;
  const StepConfig step = StepConfig::build(passthru_test::step_options(server.url("/crm")));
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(client.execute(step, passthru_test::sample_call(), outcomes.callback()).id());
  ASSERT_TRUE(outcomes.wait_for(20));
  for (const Outcome& outcome : outcomes.outcomes()) EXPECT_EQ(outcome.route, Route::next_applet);
  // The Idempotency-Key ends in the request id: the server saw them in order.
  std::vector<std::uint64_t> seen;
  for (const auto& request : server.requests()) {
    const std::string key = request.header("Idempotency-Key");
    seen.push_back(std::stoull(key.substr(key.rfind('-') + 1)));
  }
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(client.client().metrics().queued, 0u);
}

TEST(OriginLimit, OriginsAreTheirSchemeHostAndPort) {
  passthru_test::FaultServer first;
  passthru_test::FaultServer second;
  LogCollector logs;
  TestClient client(limited(logs, 0, 1));
  OutcomeCollector outcomes;
  const auto a = client.execute(StepConfig::build(passthru_test::step_options(first.url("/hang"), 60s)),
                                passthru_test::sample_call(), outcomes.callback());
  const auto b = client.execute(StepConfig::build(passthru_test::step_options(second.url("/hang"), 60s)),
                                passthru_test::sample_call(), outcomes.callback());
  // Each port is an origin of its own: both are sent though the limit is 1.
  ASSERT_TRUE(first.wait_for_requests("/hang", 1));
  ASSERT_TRUE(second.wait_for_requests("/hang", 1));
  a.cancel();
  b.cancel();
  ASSERT_TRUE(outcomes.wait_for(2));
}

}  // namespace
