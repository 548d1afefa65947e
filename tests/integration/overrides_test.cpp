// Connection overrides in the url's fragment ("#ct=2000&rt=5000&tt=8000&rc=2&rp=ct,5xx")
// and StepOptions::connect_timeout and read_timeout, against real servers.
#include "fault_server.hpp"
#include "one_client_test.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

namespace {

using passthru::ConfigError;
using passthru::Errc;
using passthru::Method;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::FaultServer;
using passthru_test::LogCollector;
using passthru_test::RefusedPort;
using passthru_test::SilentServer;
using passthru_test::TestClient;
using passthru_test::TestHttpServer;
using namespace std::chrono_literals;

// Slack for a loaded machine; the contract is "limit + a few milliseconds".
constexpr std::chrono::milliseconds kSlack{1000};

// A listener on 127.0.0.1 whose accept queue is full: Linux drops further
// SYNs, so a connect to it neither succeeds nor fails until it gives up.
class FullBacklog {
 public:
  FullBacklog() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 0) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
    // Connect until one hangs: the queue is full from then on.
    for (int i = 0; i < 8 && !full_; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      fillers_.push_back(fd);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0) continue;
      if (errno != EINPROGRESS) return;
      pollfd waiting{fd, POLLOUT, 0};
      full_ = ::poll(&waiting, 1, 100) == 0;
    }
  }
  ~FullBacklog() {
    for (int fd : fillers_) ::close(fd);
    if (listener_ >= 0) ::close(listener_);
  }
  FullBacklog(const FullBacklog&) = delete;
  FullBacklog& operator=(const FullBacklog&) = delete;

  bool full() const { return full_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  int listener_ = -1;
  int port_ = 0;
  bool full_ = false;
  std::vector<int> fillers_;
};

class Overrides : public passthru_test::OneClientTest {};

TEST_F(Overrides, TheFragmentsTotalEndsASilentServerAtItsTimeNotTheSteps) {
  SilentServer silent;
  const Outcome outcome = run(passthru_test::step_options(silent.url("/crm#tt=300"), 20s));
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::timed_out));
  EXPECT_NE(outcome.reason.find("300 ms"), std::string::npos) << outcome.reason;
  EXPECT_GE(outcome.elapsed, 300ms);
  EXPECT_LT(outcome.elapsed, 300ms + kSlack);
}

TEST_F(Overrides, TheFragmentsRetryCountMakesThreeAttemptsAtARefusedPort) {
  RefusedPort refused;
  const Outcome outcome = run(passthru_test::step_options(refused.url("/crm#rc=2"), 5s));
  EXPECT_EQ(outcome.route, Route::on_error) << outcome.reason;
  ASSERT_EQ(outcome.attempts, 3);
  for (const auto& attempt : outcome.attempt_log) {
    EXPECT_EQ(attempt.error, passthru::make_error_code(Errc::connect_failed)) << attempt.reason;
  }
}

TEST_F(Overrides, AReadTimeoutRetriedByThePolicyEndsEachAttemptInTime) {
  FaultServer faults;
  const Outcome outcome = run(passthru_test::step_options(faults.url("/hang#rt=200&rc=1&rp=rt"), 5s));
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  ASSERT_EQ(outcome.attempts, 2) << outcome.reason;
  for (const auto& attempt : outcome.attempt_log) {
    EXPECT_EQ(attempt.error, passthru::make_error_code(Errc::timed_out)) << attempt.reason;
    EXPECT_NE(attempt.reason.find("read timeout of 200 ms"), std::string::npos) << attempt.reason;
    EXPECT_GE(attempt.elapsed, 195ms);  // libcurl's timer may fire a millisecond early
    EXPECT_LT(attempt.elapsed, 200ms + kSlack);
  }
  EXPECT_GE(outcome.attempt_log[1].started, outcome.attempt_log[0].started + outcome.attempt_log[0].elapsed);
  EXPECT_LT(outcome.elapsed, 5s);
  EXPECT_EQ(faults.received_count("/hang"), 2u);
}

TEST_F(Overrides, AReadTimeoutIsNotRetriedWithoutThePolicy) {
  FaultServer faults;
  const Outcome outcome = run(passthru_test::step_options(faults.url("/hang#rt=200&rc=2"), 5s));
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  EXPECT_EQ(outcome.attempts, 1) << outcome.reason;
  EXPECT_LT(outcome.elapsed, 200ms + kSlack);
  EXPECT_EQ(faults.received_count("/hang"), 1u);
}

TEST_F(Overrides, TheDeadlineWinsOverALongerReadTimeout) {
  FaultServer faults;
  const Outcome outcome = run(passthru_test::step_options(faults.url("/hang#rt=5000&tt=300"), 20s));
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  EXPECT_GE(outcome.elapsed, 300ms);
  EXPECT_LT(outcome.elapsed, 300ms + kSlack);
}

TEST_F(Overrides, AConnectTimeoutDoesNotLimitTheAnswerOnceConnected) {
  // The silent server's kernel accepts the connection: ct is met, and only
  // the total ends the wait for an answer.
  SilentServer silent;
  const Outcome outcome = run(passthru_test::step_options(silent.url("/crm#ct=100&tt=600"), 20s));
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_GE(outcome.elapsed, 600ms);
  EXPECT_LT(outcome.elapsed, 600ms + kSlack);
}

TEST_F(Overrides, AConnectTimeoutEndsAnAttemptThatCannotConnectAndIsRetried) {
  FullBacklog backlog;
  if (!backlog.full()) GTEST_SKIP() << "this kernel answers SYNs to a full accept queue";
  const Outcome outcome = run(passthru_test::step_options(backlog.url("/crm#ct=200&rc=1&tt=5000"), 20s));
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  ASSERT_EQ(outcome.attempts, 2) << outcome.reason;  // nothing was sent: retried without rp
  for (const auto& attempt : outcome.attempt_log) {
    EXPECT_EQ(attempt.error, passthru::make_error_code(Errc::timed_out)) << attempt.reason;
    EXPECT_NE(attempt.reason.find("connect timeout of 200 ms"), std::string::npos) << attempt.reason;
    EXPECT_GE(attempt.elapsed, 195ms);
    EXPECT_LT(attempt.elapsed, 200ms + kSlack);
  }
  EXPECT_LT(outcome.elapsed, 5s);
}

TEST_F(Overrides, AStepsReadTimeoutOptionLimitsEachAttemptToo) {
  FaultServer faults;
  StepOptions options = passthru_test::step_options(faults.url("/hang"), 5s);
  options.read_timeout = 200ms;
  options.connect_timeout = 1000ms;  // the attempt's limit is ct + rt: the connect here takes ~0
  const Outcome outcome = run(options);
  EXPECT_EQ(outcome.route, Route::on_timeout) << outcome.reason;
  EXPECT_GE(outcome.elapsed, 1195ms);
  EXPECT_LT(outcome.elapsed, 1200ms + kSlack);
}

TEST_F(Overrides, TheServerNeverSeesTheFragment) {
  server_.reply("GET", "/crm", 200, "vip-connect");
  const Outcome outcome =
      run(passthru_test::step_options(server_.url("/crm?key=abc#tt=5000&rc=1&ct=2000"), 20s));
  EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  const auto requests = server_.requests_to("/crm");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target.find('#'), std::string::npos) << requests[0].target;
  EXPECT_EQ(requests[0].target.find("tt="), std::string::npos) << requests[0].target;
  EXPECT_EQ(requests[0].target.rfind("/crm?key=abc&", 0), 0u) << requests[0].target;
}

TEST_F(Overrides, APostThatWouldRetryAfterSendingIsRefusedAtBuild) {
  StepOptions options = passthru_test::step_options(server_.url("/crm#rc=2&rp=5xx"), 5s);
  options.method = Method::post;
  try {
    (void)StepConfig::build(options);
    FAIL() << "built";
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.field(), "url");
    EXPECT_NE(std::string(error.what()).find("#rp=5xx"), std::string::npos) << error.what();
  }
  EXPECT_EQ(server_.request_count(), 0u);
}

}  // namespace
