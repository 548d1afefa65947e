// Every Outcome says where its time went and what crossed the wire: phases,
// queue wait, attempts, bytes, the address connected to, connection reuse.
#include "fault_server.hpp"
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace {

using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::FaultServer;
using passthru_test::LogCollector;
using passthru_test::TestClient;
using namespace std::chrono_literals;

class Timings : public ::testing::Test {
 protected:
  Outcome run(StepOptions options, passthru::CallContext call = passthru_test::sample_call()) {
    const auto outcome =
        passthru_test::execute_and_wait(client_, StepConfig::build(std::move(options)), call);
    EXPECT_TRUE(outcome);
    return outcome.value_or(Outcome{});
  }

  LogCollector logs_;
  TestClient client_{passthru_test::quiet_options(logs_)};
};

TEST_F(Timings, AnAnsweredPostCountsEveryByteBothWaysAndOrdersItsPhases) {
  FaultServer server;
  StepOptions options = passthru_test::step_options(server.url("/delay/20"));
  options.method = passthru::Method::post;
  passthru::CallContext call = passthru_test::sample_call();
  call.custom = {{"Notes", std::string(4000, 'n')}};  // a body counted twice would show
  const Outcome outcome = run(options, call);
  ASSERT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  ASSERT_EQ(server.requests().size(), 1u);
  const auto& request = server.requests().front();
  EXPECT_EQ(outcome.attempts, 1);
  // The head is at least its request line; the body is counted once.
  const std::size_t least = std::string("POST /delay/20 HTTP/1.1\r\n\r\n").size() + request.body.size();
  EXPECT_GE(outcome.bytes_sent, least);
  EXPECT_LT(outcome.bytes_sent, least + 1024) << "the body counted twice?";
  ASSERT_TRUE(server.wait_for_bytes_sent("/delay/20", 1));
  EXPECT_EQ(outcome.bytes_received, server.bytes_sent("/delay/20"));
  EXPECT_EQ(outcome.remote_address, "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_FALSE(outcome.connection_reused);
  EXPECT_EQ(outcome.timings.tls.count(), 0);  // http://
  // The server waited 20 ms before its first byte.
  EXPECT_GE(outcome.timings.first_byte, 20ms);
  EXPECT_GE(outcome.timings.first_byte, outcome.timings.dns + outcome.timings.connect);
  EXPECT_GE(outcome.timings.transfer, outcome.timings.first_byte);
  EXPECT_LE(outcome.timings.queued + outcome.timings.transfer, outcome.elapsed);
}

TEST_F(Timings, ABodyTooLargeToGoWithTheHeadIsCountedOnce) {
  FaultServer server;
  StepOptions options = passthru_test::step_options(server.url("/delay/0"));
  options.method = passthru::Method::post;
  passthru::CallContext call = passthru_test::sample_call();
  call.custom = {{"Notes", std::string(200 * 1024, 'n')}};
  const Outcome outcome = run(options, call);
  ASSERT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  ASSERT_EQ(server.requests().size(), 1u);
  const std::size_t body = server.requests().front().body.size();
  EXPECT_GE(outcome.bytes_sent, body + std::string("POST /delay/0 HTTP/1.1\r\n\r\n").size());
  EXPECT_LT(outcome.bytes_sent, body + 2048);
}

TEST_F(Timings, ASecondRequestOnAKeptAliveConnectionSaysSo) {
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  const StepOptions options = passthru_test::step_options(server.url("/crm"));
  const Outcome first = run(options);
  const Outcome second = run(options);
  ASSERT_EQ(first.route, Route::next_applet) << first.reason;
  ASSERT_EQ(second.route, Route::next_applet) << second.reason;
  EXPECT_FALSE(first.connection_reused);
  EXPECT_TRUE(second.connection_reused);
  EXPECT_EQ(second.timings.connect.count(), 0);
  EXPECT_EQ(first.remote_address, second.remote_address);
}

TEST_F(Timings, ATimeoutCountsTheWholeWaitAsTransferAndNoFirstByte) {
  passthru_test::SilentServer silent;
  const Outcome outcome = run(passthru_test::step_options(silent.url("/never"), 150ms));
  ASSERT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(outcome.timings.first_byte.count(), 0);
  EXPECT_GE(outcome.timings.transfer, 140ms);
  EXPECT_EQ(outcome.bytes_received, 0u);
  EXPECT_FALSE(outcome.remote_address.empty());
}

TEST_F(Timings, ARefusedConnectionIsOneAttemptWithNothingReceived) {
  passthru_test::RefusedPort refused;
  const Outcome outcome = run(passthru_test::step_options(refused.url("/crm")));
  ASSERT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(outcome.bytes_received, 0u);
  EXPECT_FALSE(outcome.connection_reused);
}

TEST_F(Timings, ACallThatCannotBecomeARequestMadeNoAttempt) {
  passthru_test::TestHttpServer server;
  passthru::CallContext call = passthru_test::sample_call();
  call.custom = {{"CallSid", "twice"}};
  const Outcome outcome = run(passthru_test::step_options(server.url("/crm")), call);
  ASSERT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_EQ(outcome.attempts, 0);
  EXPECT_EQ(outcome.bytes_sent, 0u);
  EXPECT_TRUE(outcome.remote_address.empty());
}

TEST(TimingsQueue, ARequestWaitingForASlotReportsItsQueueTime) {
  FaultServer server;
  LogCollector logs;
  passthru::ClientOptions options = passthru_test::quiet_options(logs);
  options.max_in_flight = 1;
  TestClient client(options);
  passthru_test::OutcomeCollector outcomes;
  const auto slow = StepConfig::build(passthru_test::step_options(server.url("/delay/100")));
  const auto fast = StepConfig::build(passthru_test::step_options(server.url("/delay/0")));
  const auto first = client.execute(slow, passthru_test::sample_call(), outcomes.callback());
  const auto second = client.execute(fast, passthru_test::sample_call(), outcomes.callback());
  ASSERT_TRUE(outcomes.wait_for(2));
  const Outcome queued = outcomes.outcome(second.id()).value();
  EXPECT_EQ(outcomes.outcome(first.id()).value().route, Route::next_applet);
  EXPECT_EQ(queued.route, Route::next_applet) << queued.reason;
  EXPECT_GE(queued.timings.queued, 90ms);
  EXPECT_EQ(queued.attempts, 1);
}

}  // namespace
