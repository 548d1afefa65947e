// HTTP/2 against Debian's nginx over TLS: the version each answer came in,
// many requests multiplexed on one connection (CURLOPT_PIPEWAIT), HTTP/1.1
// when the step or the server says so, and deadlines and cancellations of one
// stream that leave the others on its connection alone.
#include "nginx_server.hpp"
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"
#include "tls_fixtures.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::HttpVersion;
using passthru::Outcome;
using passthru::RequestHandle;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::NginxLogLine;
using passthru_test::NginxOptions;
using passthru_test::NginxServer;
using passthru_test::OutcomeCollector;
using passthru_test::TestClient;
using passthru_test::TestHttpServer;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kLongTimeout{60000};

void expect_answered(const Outcome& outcome, int http_version) {
  EXPECT_EQ(outcome.route, Route::next_applet)
      << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, "vip-connect");
  EXPECT_EQ(outcome.http_status, 200);
  EXPECT_EQ(outcome.http_version, http_version) << outcome.reason;
}

std::size_t count_protocol(const std::vector<NginxLogLine>& log, std::string_view protocol) {
  std::size_t n = 0;
  for (const NginxLogLine& line : log) n += line.protocol == protocol ? 1 : 0;
  return n;
}

class Http2 : public ::testing::Test {
 protected:
  NginxOptions nginx_options(bool http2 = true, int upstream_port = 0) const {
    NginxOptions options;
    options.cert_file = cert_.cert_file;
    options.key_file = cert_.key_file;
    options.http2 = http2;
    options.upstream_port = upstream_port;
    return options;
  }

  // A step to `url` that trusts the test CA.
  StepOptions step_options(std::string url, std::chrono::milliseconds timeout = kLongTimeout) const {
    StepOptions options = passthru_test::step_options(std::move(url), timeout);
    options.tls.ca_file = ca_.cert_file();
    return options;
  }

  // Executes `n` requests of `step` at once and waits for every outcome.
  std::vector<Outcome> execute_all(TestClient& client, const StepConfig& step, std::size_t n) {
    OutcomeCollector collector;
    for (std::size_t i = 0; i < n; ++i)
      client.execute(step, passthru_test::sample_call(), collector.callback());
    EXPECT_TRUE(collector.wait_for(n)) << collector.total_calls() << " of " << n << " outcomes";
    EXPECT_TRUE(collector.repeated_ids().empty());
    return collector.outcomes();
  }

  passthru_test::TestCa ca_;
  passthru_test::IssuedCert cert_ = ca_.issue();
  passthru_test::LogCollector logs_;
};

TEST_F(Http2, AnHttpsServerThatOffersHttp2AnswersOverIt) {
  NginxServer nginx(nginx_options());
  passthru::ClientOptions options = passthru_test::quiet_options(logs_);
  options.log_level = passthru::LogLevel::info;
  TestClient client(options);
  StepOptions get = step_options(nginx.url("/crm"));
  StepOptions post = get;
  post.method = passthru::Method::post;

  for (const StepOptions& step : {get, post}) {
    const auto outcome =
        passthru_test::execute_and_wait(client, StepConfig::build(step), passthru_test::sample_call());
    ASSERT_TRUE(outcome);
    expect_answered(*outcome, 20);
    EXPECT_GT(outcome->bytes_received, 0u);
  }
  ASSERT_TRUE(nginx.wait_for_log_lines(2)) << nginx.error_output();
  EXPECT_EQ(count_protocol(nginx.access_log(), "HTTP/2.0"), 2u);
  // The request's log line names the version.
  std::size_t lines_with_version = 0;
  for (const auto& line : logs_.lines()) {
    lines_with_version += line.message.find(" http=2 ") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(lines_with_version, 2u);
}

TEST_F(Http2, AHundredRequestsAtOnceShareOneConnection) {
  NginxServer nginx(nginx_options());
  TestClient client(passthru_test::quiet_options(logs_));
  const StepConfig step = StepConfig::build(step_options(nginx.url("/crm")));

  const std::vector<Outcome> outcomes = execute_all(client, step, 100);
  ASSERT_EQ(outcomes.size(), 100u);
  std::size_t new_connections = 0;
  for (const Outcome& outcome : outcomes) {
    expect_answered(outcome, 20);
    new_connections += outcome.connection_reused ? 0 : 1;
  }
  ASSERT_TRUE(nginx.wait_for_log_lines(100)) << nginx.error_output();
  const auto log = nginx.access_log();
  EXPECT_EQ(count_protocol(log, "HTTP/2.0"), 100u);
  // One connection, unless the first filled its 100 streams before a
  // request ended (libcurl's CURLMOPT_MAX_CONCURRENT_STREAMS): then two.
  EXPECT_LE(nginx.connections().size(), 2u);
  EXPECT_LE(new_connections, 2u);
}

TEST_F(Http2, AnHttp11StepNeitherAsksForHttp2NorWaitsToShareAConnection) {
  NginxServer nginx(nginx_options());
  TestClient client(passthru_test::quiet_options(logs_));
  StepOptions options = step_options(nginx.url("/crm"));
  options.http_version = HttpVersion::http1_1;
  const StepConfig step = StepConfig::build(options);

  const std::vector<Outcome> outcomes = execute_all(client, step, 20);
  ASSERT_EQ(outcomes.size(), 20u);
  for (const Outcome& outcome : outcomes) expect_answered(outcome, 11);
  ASSERT_TRUE(nginx.wait_for_log_lines(20)) << nginx.error_output();
  EXPECT_EQ(count_protocol(nginx.access_log(), "HTTP/1.1"), 20u);
  EXPECT_GT(nginx.connections().size(), 1u) << "20 HTTP/1.1 requests at once went over one connection";
}

TEST_F(Http2, AutomaticUsesHttp11WhenTheServerOffersOnlyThat) {
  NginxServer nginx(nginx_options(/*http2=*/false));
  TestClient client(passthru_test::quiet_options(logs_));
  const StepConfig step = StepConfig::build(step_options(nginx.url("/crm")));

  const std::vector<Outcome> outcomes = execute_all(client, step, 20);
  ASSERT_EQ(outcomes.size(), 20u);
  for (const Outcome& outcome : outcomes) expect_answered(outcome, 11);
  ASSERT_TRUE(nginx.wait_for_log_lines(20)) << nginx.error_output();
  EXPECT_EQ(count_protocol(nginx.access_log(), "HTTP/1.1"), 20u);
}

TEST_F(Http2, AStepThatWantsHttp2IsAnsweredOverIt) {
  NginxServer nginx(nginx_options());
  TestClient client(passthru_test::quiet_options(logs_));
  StepOptions options = step_options(nginx.url("/crm"));
  options.http_version = HttpVersion::http2;
  const auto outcome =
      passthru_test::execute_and_wait(client, StepConfig::build(options), passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  expect_answered(*outcome, 20);
}

// Answers to /slow, proxied by nginx to this upstream, wait for release().
class HeldUpstream {
 public:
  HeldUpstream() {
    server_.on("GET", "/slow", [this](const httplib::Request&, httplib::Response& res) {
      released_.wait_for(kLongTimeout);
      res.set_content("vip-connect", "text/plain");
    });
  }
  ~HeldUpstream() { released_.set(); }  // before server_'s workers are joined

  int port() const noexcept { return server_.port(); }
  bool wait_for_requests(std::size_t n) const { return server_.wait_for_requests(n); }
  void release() { released_.set(); }

 private:
  passthru_test::Event released_;
  TestHttpServer server_;
};

TEST_F(Http2, CancellingOneStreamLeavesTheOthersOnItsConnectionAnswered) {
  HeldUpstream upstream;
  NginxServer nginx(nginx_options(true, upstream.port()));
  TestClient client(passthru_test::quiet_options(logs_));
  const StepConfig step = StepConfig::build(step_options(nginx.url("/slow")));

  OutcomeCollector collector;
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 10; ++i)
    handles.push_back(client.execute(step, passthru_test::sample_call(), collector.callback()));
  // All ten are streams nginx is serving: it has asked the upstream for each.
  ASSERT_TRUE(upstream.wait_for_requests(10));

  handles[3].cancel();
  const auto cancelled = collector.wait_for_id(handles[3].id());
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->route, Route::cancelled) << cancelled->reason;

  upstream.release();
  ASSERT_TRUE(collector.wait_for(10));
  for (std::size_t i = 0; i < handles.size(); ++i) {
    if (i == 3) continue;
    const auto outcome = collector.outcome(handles[i].id());
    ASSERT_TRUE(outcome);
    expect_answered(*outcome, 20);
  }
  EXPECT_TRUE(collector.repeated_ids().empty());
  ASSERT_TRUE(nginx.wait_for_log_lines(10)) << nginx.error_output();
  EXPECT_EQ(nginx.connections().size(), 1u) << "the ten requests did not share one connection";
}

TEST_F(Http2, ATimeoutOnOneStreamLeavesTheOthersOnItsConnectionAnswered) {
  HeldUpstream upstream;
  NginxServer nginx(nginx_options(true, upstream.port()));
  TestClient client(passthru_test::quiet_options(logs_));
  const StepConfig patient = StepConfig::build(step_options(nginx.url("/slow")));
  const std::chrono::milliseconds short_timeout{1000};
  const StepConfig hasty = StepConfig::build(step_options(nginx.url("/slow"), short_timeout));

  OutcomeCollector collector;
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 5; ++i)
    handles.push_back(client.execute(patient, passthru_test::sample_call(), collector.callback()));
  ASSERT_TRUE(upstream.wait_for_requests(5));
  const auto start = Clock::now();
  const RequestHandle timed = client.execute(hasty, passthru_test::sample_call(), collector.callback());

  const auto timed_out = collector.wait_for_id(timed.id());
  ASSERT_TRUE(timed_out);
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(timed_out->route, Route::on_timeout) << timed_out->reason;
  EXPECT_GE(elapsed, short_timeout);
  EXPECT_LT(elapsed, short_timeout + 1s * passthru_test::kSanitizerSlowdown);
  EXPECT_TRUE(timed_out->connection_reused) << "the request did not go over the others' connection";

  upstream.release();
  ASSERT_TRUE(collector.wait_for(6));
  for (const RequestHandle& handle : handles) {
    const auto outcome = collector.outcome(handle.id());
    ASSERT_TRUE(outcome);
    expect_answered(*outcome, 20);
  }
  ASSERT_TRUE(nginx.wait_for_log_lines(6)) << nginx.error_output();
  EXPECT_EQ(nginx.connections().size(), 1u);
}

// Requests that wait for an origin's first connection (CURLOPT_PIPEWAIT)
// have no connection of their own: their deadlines must hold all the same.
TEST_F(Http2, RequestsWaitingForTheFirstConnectionEndAtTheirDeadline) {
  passthru_test::SilentServer silent;  // the TLS handshake never completes
  TestClient client(passthru_test::quiet_options(logs_));
  const std::chrono::milliseconds timeout{500};
  const StepConfig step =
      StepConfig::build(step_options("https://127.0.0.1:" + std::to_string(silent.port()) + "/crm", timeout));

  const auto start = Clock::now();
  const std::vector<Outcome> outcomes = execute_all(client, step, 10);
  const auto elapsed = Clock::now() - start;
  ASSERT_EQ(outcomes.size(), 10u);
  for (const Outcome& outcome : outcomes) {
    EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
    EXPECT_EQ(outcome.http_version, 0);
    EXPECT_GE(outcome.elapsed, timeout);
  }
  EXPECT_LT(elapsed, timeout + 1s * passthru_test::kSanitizerSlowdown);
}

}  // namespace
