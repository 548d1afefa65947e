// detail::CircuitBreakers: when an origin's breaker opens, probes, closes and
// opens again, judged by a clock the tests hold.
#include "circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace {

using namespace std::chrono_literals;
using passthru::CircuitBreakerOptions;
using passthru::CircuitState;
using passthru::detail::CircuitBreakers;
using Admission = CircuitBreakers::Admission;
using Change = CircuitBreakers::Change;

const std::string kOrigin = "https://crm.example.com:443";
const CircuitBreakers::Clock::time_point kStart{std::chrono::seconds(1000)};

CircuitBreakerOptions after_failures(std::size_t n) {
  CircuitBreakerOptions options;
  options.consecutive_failures = n;
  options.open_for = 1000ms;
  options.probes = 2;
  return options;
}

// Sends one request at `now` and ends it as `failed`; returns what changed.
Change request(CircuitBreakers& breakers, bool failed, CircuitBreakers::Clock::time_point now = kStart) {
  const Admission admission = breakers.admit(kOrigin, now);
  EXPECT_NE(admission, Admission::refuse);
  return breakers.record(kOrigin, admission, failed, now);
}

TEST(CircuitBreaker, IsOffByDefaultAndThenNeverRefuses) {
  CircuitBreakers breakers(CircuitBreakerOptions{});
  EXPECT_FALSE(breakers.enabled());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(request(breakers, true), Change::none);
  EXPECT_EQ(breakers.admit(kOrigin, kStart), Admission::send);
  EXPECT_TRUE(breakers.snapshot().empty());
}

TEST(CircuitBreaker, OpensAfterTheConfiguredRunOfFailuresAndASuccessResetsTheRun) {
  CircuitBreakers breakers(after_failures(3));
  EXPECT_EQ(request(breakers, true), Change::none);
  EXPECT_EQ(request(breakers, true), Change::none);
  EXPECT_EQ(request(breakers, false), Change::none);  // the run starts over
  EXPECT_EQ(request(breakers, true), Change::none);
  EXPECT_EQ(request(breakers, true), Change::none);
  EXPECT_EQ(request(breakers, true), Change::opened);
  EXPECT_EQ(breakers.why_open(kOrigin), "3 failures in a row");
  EXPECT_EQ(breakers.admit(kOrigin, kStart + 999ms), Admission::refuse);
  EXPECT_EQ(breakers.retry_after(kOrigin, kStart + 400ms), 600ms);
  EXPECT_EQ(breakers.admit("https://other.example.com:443", kStart), Admission::send) << "per origin";
  const auto origins = breakers.snapshot();
  ASSERT_EQ(origins.size(), 1u);
  EXPECT_EQ(origins[0].origin, kOrigin);
  EXPECT_EQ(origins[0].circuit, CircuitState::open);
  EXPECT_EQ(origins[0].circuit_opened, 1u);
  EXPECT_EQ(origins[0].circuit_refused, 1u);
}

TEST(CircuitBreaker, AfterTheCoolDownProbesDecideAndOthersWaitMeanwhile) {
  CircuitBreakers breakers(after_failures(1));
  ASSERT_EQ(request(breakers, true), Change::opened);
  const auto later = kStart + 1000ms;
  const Admission first = breakers.admit(kOrigin, later);
  const Admission second = breakers.admit(kOrigin, later);
  EXPECT_EQ(first, Admission::probe);
  EXPECT_EQ(second, Admission::probe);
  EXPECT_EQ(breakers.admit(kOrigin, later), Admission::refuse) << "only `probes` requests while half-open";
  EXPECT_EQ(breakers.snapshot()[0].circuit, CircuitState::half_open);
  EXPECT_EQ(breakers.record(kOrigin, first, false, later), Change::none);
  EXPECT_EQ(breakers.admit(kOrigin, later), Admission::refuse) << "a passed probe does not free a slot";
  EXPECT_EQ(breakers.record(kOrigin, second, false, later), Change::closed);
  EXPECT_EQ(breakers.admit(kOrigin, later), Admission::send);
  EXPECT_EQ(breakers.snapshot()[0].circuit, CircuitState::closed);
  // Closed again, it needs a whole new run of failures to open.
  EXPECT_EQ(request(breakers, true, later), Change::opened);
}

TEST(CircuitBreaker, AFailedProbeOpensItAgainForAnotherCoolDown) {
  CircuitBreakers breakers(after_failures(1));
  ASSERT_EQ(request(breakers, true), Change::opened);
  const auto later = kStart + 1500ms;
  const Admission probe = breakers.admit(kOrigin, later);
  ASSERT_EQ(probe, Admission::probe);
  EXPECT_EQ(breakers.record(kOrigin, probe, true, later), Change::reopened);
  EXPECT_EQ(breakers.admit(kOrigin, later + 999ms), Admission::refuse);
  EXPECT_EQ(breakers.admit(kOrigin, later + 1000ms), Admission::probe);
  EXPECT_EQ(breakers.snapshot()[0].circuit_opened, 2u);
}

TEST(CircuitBreaker, AnAbandonedProbeLetsAnotherRequestProbe) {
  CircuitBreakers breakers(after_failures(1));
  ASSERT_EQ(request(breakers, true), Change::opened);
  const auto later = kStart + 1000ms;
  const Admission a = breakers.admit(kOrigin, later);
  const Admission b = breakers.admit(kOrigin, later);
  ASSERT_EQ(breakers.admit(kOrigin, later), Admission::refuse);
  breakers.abandon(kOrigin, a);  // cancelled: no verdict
  EXPECT_EQ(breakers.admit(kOrigin, later), Admission::probe);
  (void)b;
}

TEST(CircuitBreaker, ARequestSentBeforeItOpenedDoesNotCountTwice) {
  CircuitBreakers breakers(after_failures(2));
  const Admission early = breakers.admit(kOrigin, kStart);  // sent while closed
  ASSERT_EQ(request(breakers, true), Change::none);
  ASSERT_EQ(request(breakers, true), Change::opened);
  EXPECT_EQ(breakers.record(kOrigin, early, true, kStart), Change::none);
  EXPECT_EQ(breakers.snapshot()[0].circuit_opened, 1u);
}

TEST(CircuitBreaker, OpensWhenTheFailureRatioOfAWindowIsReached) {
  CircuitBreakerOptions options;
  options.failure_ratio = 0.5;
  options.minimum_requests = 10;
  options.window = 1000ms;
  CircuitBreakers breakers(options);
  // 4 of 9 failed: too few requests to judge, and under half.
  for (int i = 0; i < 9; ++i) ASSERT_EQ(request(breakers, i % 2 == 0 && i < 8), Change::none) << i;
  EXPECT_EQ(request(breakers, true), Change::opened);  // 5 of 10
  EXPECT_EQ(breakers.why_open(kOrigin), "5 of 10 requests failed within 1000 ms");
}

TEST(CircuitBreaker, TheRatioWindowStartsOver) {
  CircuitBreakerOptions options;
  options.failure_ratio = 0.5;
  options.minimum_requests = 4;
  options.window = 1000ms;
  CircuitBreakers breakers(options);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(request(breakers, true, kStart), Change::none);
  // A new window: the three old failures are forgotten.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(request(breakers, i == 0, kStart + 1000ms), Change::none);
  EXPECT_EQ(request(breakers, false, kStart + 1000ms), Change::none);  // 1 of 4
}

TEST(CircuitBreaker, InvalidOptionsAreNamed) {
  const auto message = [](CircuitBreakerOptions options) {
    try {
      CircuitBreakers breakers(options);
    } catch (const std::invalid_argument& error) {
      return std::string(error.what());
    }
    return std::string("<accepted>");
  };
  CircuitBreakerOptions options;
  options.failure_ratio = 1.5;
  EXPECT_NE(message(options).find("circuit_breaker.failure_ratio"), std::string::npos);
  options.failure_ratio = -0.5;
  EXPECT_NE(message(options).find("circuit_breaker.failure_ratio"), std::string::npos);
  options = after_failures(1);
  options.open_for = 0ms;
  EXPECT_NE(message(options).find("circuit_breaker.open_for"), std::string::npos);
  options = after_failures(1);
  options.probes = 0;
  EXPECT_NE(message(options).find("circuit_breaker.probes"), std::string::npos);
  options = after_failures(1);
  options.window = -1ms;
  EXPECT_NE(message(options).find("circuit_breaker.window"), std::string::npos);
  options = after_failures(1);
  options.minimum_requests = 0;
  EXPECT_NE(message(options).find("circuit_breaker.minimum_requests"), std::string::npos);
  // Off, the other settings are not judged: a zeroed struct is valid.
  EXPECT_EQ(message(CircuitBreakerOptions{0, 0.0, 0ms, 0, 0ms, 0}), "<accepted>");
}

}  // namespace
