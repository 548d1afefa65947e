// A customer whose DNS hangs: every request still ends by its deadline, a
// cancel or a shutdown at once, and the loop thread never waits for
// getaddrinfo(). libcurl's threaded resolver runs getaddrinfo() on a thread
// of its own; removing a handle whose lookup is still running waits for that
// thread (libcurl 7.88, Curl_resolver_kill) unless CURLOPT_QUICK_EXIT is set.
#include "slow_dns.hpp"
#include "outcome_collector.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <netdb.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using passthru::Errc;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru_test::OutcomeCollector;
using passthru_test::SlowDns;
using passthru_test::TestClient;
using passthru_test::TestHttpServer;
using Clock = std::chrono::steady_clock;

// How late an outcome may be and still count as "by the deadline" or "at
// once": generous, for sanitizer builds on a loaded machine, and far below
// the seconds a hanging lookup takes.
constexpr auto kMargin = 150ms;
// How soon after the slow request's timeout the healthy server's answer,
// sent then, is delivered: a round trip through a server thread, so looser.
constexpr auto kServed = 1s;
// How long a test waits for something that should take milliseconds before
// it calls the loop stuck. Short, so a stuck loop fails fast, not at 30 s.
constexpr auto kStuck = 3s;
constexpr auto kShortTimeout = 200ms;
constexpr auto kLongTimeout = 60s;

long long ms(std::chrono::nanoseconds duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

// Durations as numbers, so a failed comparison prints them.
long long us(std::chrono::nanoseconds duration) {
  return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
}

// A step whose host resolves only when the test releases it, then to
// 127.0.0.1 (and so to `port`'s server, when one listens there).
StepConfig slow_step(std::string_view label, std::chrono::milliseconds timeout, int port = 9) {
  auto options = passthru_test::step_options(
      "http://" + passthru_test::slow_host(label) + ":" + std::to_string(port) + "/crm", timeout);
  options.allow_plain_http = true;  // not a loopback name, though it resolves to one
  return StepConfig::build(options);
}

void expect_route(const Outcome& outcome, Route route, Errc why) {
  EXPECT_EQ(outcome.route, route) << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.error, passthru::make_error_code(why)) << outcome.error.message();
}

// Each test declares its SlowDns after its client and servers: it goes
// first, releasing every lookup still blocked (else a client whose loop did
// wait for DNS would wait in its destructor), then waits for the resolver
// threads to exit.
class SlowDnsTest : public ::testing::Test {
 protected:
  passthru_test::LogCollector logs_;
};

TEST_F(SlowDnsTest, InterposerForwardsOtherNamesToTheRealGetaddrinfo) {
  SlowDns dns;
  const std::string origin = SlowDns::next_getaddrinfo_origin();
  RecordProperty("next_getaddrinfo", origin);
  // libc's, or the ASan/TSan runtime's interceptor in front of it; never ours.
  EXPECT_TRUE(origin.find("libc.so") != std::string::npos || origin.find("libasan") != std::string::npos ||
              origin.find("libtsan") != std::string::npos)
      << origin;

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  ASSERT_EQ(getaddrinfo("localhost", "80", &hints, &result), 0);
  ASSERT_NE(result, nullptr);
  freeaddrinfo(result);

  // A slow name blocks until released, then resolves to 127.0.0.1.
  std::thread lookup([hints]() mutable {
    addrinfo* slow = nullptr;
    hints.ai_family = AF_INET;
    EXPECT_EQ(getaddrinfo(passthru_test::slow_host("direct").c_str(), "80", &hints, &slow), 0);
    ASSERT_NE(slow, nullptr);
    char address[NI_MAXHOST] = {};
    EXPECT_EQ(
        getnameinfo(slow->ai_addr, slow->ai_addrlen, address, sizeof address, nullptr, 0, NI_NUMERICHOST), 0);
    EXPECT_STREQ(address, "127.0.0.1");
    freeaddrinfo(slow);
  });
  EXPECT_TRUE(dns.wait_until_blocked(1, kStuck));
  dns.release_all();
  lookup.join();
  EXPECT_EQ(dns.blocked(), 0u);
}

// (a) The deadline passes while getaddrinfo() hangs: on_timeout by the
// deadline, and a request to a healthy server alongside is served as usual.
TEST_F(SlowDnsTest, TimeoutWhileResolvingEndsByTheDeadlineAndTheLoopKeepsServing) {
  passthru_test::Event timed_out;  // outlives the server, whose worker waits on it
  TestHttpServer server;
  passthru_test::SetOnExit release_at_exit(timed_out);
  // The healthy server answers only once the slow request has timed out,
  // so its answer is handled after the slow request's handle was removed.
  server.on("GET", "/crm", [&timed_out](const httplib::Request&, httplib::Response& res) {
    timed_out.wait_for(passthru_test::kGenerousWait);
    res.set_content("vip-connect", "text/plain");
  });
  TestClient client(passthru_test::quiet_options(logs_));
  OutcomeCollector collector;
  SlowDns dns;

  const auto record = collector.callback();
  auto slow = client.execute(slow_step("timeout", kShortTimeout), passthru_test::sample_call(),
                             [&timed_out, record](Outcome outcome) {
                               record(std::move(outcome));
                               timed_out.set();
                             });
  auto fast = client.execute(StepConfig::build(passthru_test::step_options(server.url("/crm"), 10s)),
                             passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(dns.wait_until_blocked(1, kStuck));
  ASSERT_TRUE(server.wait_for_requests(1));

  const auto slow_outcome = collector.wait_for_id(slow.id(), kStuck);
  ASSERT_TRUE(slow_outcome) << "no outcome " << ms(kStuck) << " ms after a " << ms(kShortTimeout)
                            << " ms deadline: the loop thread is waiting for getaddrinfo()";
  expect_route(*slow_outcome, Route::on_timeout, Errc::timed_out);
  EXPECT_EQ(slow_outcome->target, "timeout-applet");
  EXPECT_GE(us(slow_outcome->elapsed), us(kShortTimeout));
  EXPECT_LT(us(slow_outcome->elapsed), us(kShortTimeout + kMargin)) << "microseconds after execute()";
  RecordProperty("timeout_elapsed_us", std::to_string(us(slow_outcome->elapsed)));
  EXPECT_EQ(dns.blocked(), 1u) << "the lookup is still running: the outcome did not wait for it";

  const auto fast_outcome = collector.wait_for_id(fast.id(), kStuck);
  ASSERT_TRUE(fast_outcome) << "the loop stopped serving other requests";
  EXPECT_EQ(fast_outcome->route, Route::next_applet) << fast_outcome->reason;
  EXPECT_LT(us(fast_outcome->elapsed), us(slow_outcome->elapsed + kServed))
      << "microseconds after execute(); the slow request timed out at " << us(slow_outcome->elapsed);
  RecordProperty("fast_elapsed_us", std::to_string(us(fast_outcome->elapsed)));
}

// (b) Cancelled while resolving: the outcome comes at once.
TEST_F(SlowDnsTest, CancelWhileResolvingRoutesToCancelledAtOnce) {
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  TestClient client(passthru_test::quiet_options(logs_));
  OutcomeCollector collector;
  SlowDns dns;
  auto handle =
      client.execute(slow_step("cancel", kLongTimeout), passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(dns.wait_until_blocked(1, kStuck));

  const auto cancelled_at = Clock::now();
  handle.cancel();
  const auto outcome = collector.wait_for_id(handle.id(), kStuck);
  ASSERT_TRUE(outcome) << "no outcome " << ms(kStuck)
                       << " ms after cancel(): the loop thread is waiting for getaddrinfo()";
  const auto took = Clock::now() - cancelled_at;
  expect_route(*outcome, Route::cancelled, Errc::cancelled);
  EXPECT_LT(us(took), us(kMargin)) << "microseconds from cancel() to the outcome";
  RecordProperty("cancel_to_outcome_us", std::to_string(us(took)));
  EXPECT_EQ(dns.blocked(), 1u);

  // The loop goes on serving.
  const auto later = passthru_test::execute_and_wait(
      client, StepConfig::build(passthru_test::step_options(server.url("/crm"))),
      passthru_test::sample_call(), kStuck);
  ASSERT_TRUE(later);
  EXPECT_EQ(later->route, Route::next_applet) << later->reason;
  EXPECT_EQ(collector.total_calls(), 1u);
}

// (c) The client is destroyed while a lookup hangs: the destructor returns
// at once, with exactly one cancelled outcome.
TEST_F(SlowDnsTest, DestroyingTheClientWhileResolvingDoesNotWaitForDns) {
  auto client = std::make_unique<TestClient>(passthru_test::quiet_options(logs_));
  OutcomeCollector collector;
  SlowDns dns;
  auto handle = client->execute(slow_step("shutdown", kLongTimeout), passthru_test::sample_call(),
                                collector.callback());
  ASSERT_TRUE(dns.wait_until_blocked(1, kStuck));

  // Should the destructor wait for DNS after all, this frees it after kStuck
  // and the test fails on the time taken instead of hanging.
  passthru_test::Event destroyed;
  std::thread watchdog([&] {
    if (!destroyed.wait_for(kStuck)) dns.release_all();
  });
  const auto started = Clock::now();
  client.reset();
  const auto took = Clock::now() - started;
  destroyed.set();
  watchdog.join();

  EXPECT_LT(us(took), us(kMargin)) << "microseconds in the destructor: it waited for getaddrinfo()";
  RecordProperty("destructor_us", std::to_string(us(took)));
  ASSERT_EQ(collector.total_calls(), 1u);
  const auto outcome = collector.outcome(handle.id());
  ASSERT_TRUE(outcome);
  expect_route(*outcome, Route::cancelled, Errc::shut_down);
}

// (d) Lookups abandoned by a timeout, a cancel and a shutdown finish long
// after: their threads clean up after themselves (ASan: no use after free of
// the handles or the multi handle, all gone by then) and nothing more is
// delivered.
TEST_F(SlowDnsTest, LookupsReleasedAfterTimeoutCancelAndShutdownChangeNothing) {
  auto client = std::make_unique<TestClient>(passthru_test::quiet_options(logs_));
  OutcomeCollector collector;
  SlowDns dns;
  auto timed_out = client->execute(slow_step("late-timeout", kShortTimeout), passthru_test::sample_call(),
                                   collector.callback());
  auto cancelled = client->execute(slow_step("late-cancel", kLongTimeout), passthru_test::sample_call(),
                                   collector.callback());
  auto shut_down = client->execute(slow_step("late-shutdown", kLongTimeout), passthru_test::sample_call(),
                                   collector.callback());
  ASSERT_TRUE(dns.wait_until_blocked(3, kStuck));
  cancelled.cancel();
  ASSERT_TRUE(collector.wait_for_id(cancelled.id(), kStuck))
      << "the loop thread is waiting for getaddrinfo()";
  ASSERT_TRUE(collector.wait_for_id(timed_out.id(), kStuck))
      << "the loop thread is waiting for getaddrinfo()";
  passthru_test::Event destroyed;
  std::thread watchdog([&] {
    if (!destroyed.wait_for(kStuck)) dns.release_all();
  });
  client.reset();
  destroyed.set();
  watchdog.join();
  ASSERT_EQ(collector.total_calls(), 3u);
  EXPECT_EQ(dns.blocked(), 3u) << "every lookup outlived its request";

  dns.release_all();
  ASSERT_TRUE(dns.wait_for_lookup_threads_to_exit(passthru_test::kGenerousWait));
  EXPECT_EQ(dns.blocked(), 0u);

  EXPECT_EQ(collector.total_calls(), 3u);
  EXPECT_TRUE(collector.repeated_ids().empty());
  expect_route(*collector.outcome(timed_out.id()), Route::on_timeout, Errc::timed_out);
  expect_route(*collector.outcome(cancelled.id()), Route::cancelled, Errc::cancelled);
  expect_route(*collector.outcome(shut_down.id()), Route::cancelled, Errc::shut_down);
}

// The engine keeps the easy handles of finished requests for reuse. One
// whose lookup was abandoned goes back while its resolver thread still runs:
// libcurl detached that thread and gave it its own copy of everything it
// touches, so the next requests reuse the handle safely, and the old thread's
// late answer reaches none of them.
TEST_F(SlowDnsTest, AHandleWhoseLookupWasAbandonedIsReusedSafely) {
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  TestClient client(passthru_test::quiet_options(logs_));
  OutcomeCollector collector;
  SlowDns dns;
  const std::size_t created_before = SlowDns::easy_handles_created();

  auto abandoned = client.execute(slow_step("abandoned", kShortTimeout), passthru_test::sample_call(),
                                  collector.callback());
  ASSERT_TRUE(dns.wait_until_blocked(1, kStuck));
  const auto first = collector.wait_for_id(abandoned.id(), kStuck);
  ASSERT_TRUE(first) << "the loop thread is waiting for getaddrinfo()";
  expect_route(*first, Route::on_timeout, Errc::timed_out);

  // The abandoned lookup still hangs; the next request takes its handle.
  const auto fast = passthru_test::execute_and_wait(
      client, StepConfig::build(passthru_test::step_options(server.url("/crm"))),
      passthru_test::sample_call(), kStuck);
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->route, Route::next_applet) << fast->reason;

  // And so does a request whose own lookup hangs too, until released: it
  // then resolves to 127.0.0.1 and reaches the server.
  auto resolved = client.execute(slow_step("reused", kLongTimeout, server.port()),
                                 passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(dns.wait_until_blocked(2, kStuck));
  EXPECT_EQ(SlowDns::easy_handles_created() - created_before, 1u)
      << "the later requests did not reuse the first one's handle: the case under test did not happen";

  dns.release_all();
  const auto second = collector.wait_for_id(resolved.id(), kStuck);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->route, Route::next_applet) << second->reason;
  ASSERT_TRUE(dns.wait_for_lookup_threads_to_exit(passthru_test::kGenerousWait));

  // The old lookup's answer changed nothing.
  EXPECT_EQ(collector.total_calls(), 2u);
  EXPECT_TRUE(collector.repeated_ids().empty());
  EXPECT_EQ(server.requests_to("/crm").size(), 2u);
  const auto again = passthru_test::execute_and_wait(
      client, StepConfig::build(passthru_test::step_options(server.url("/crm"))),
      passthru_test::sample_call(), kStuck);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->route, Route::next_applet) << again->reason;
}

}  // namespace
