// A server that misbehaves in every way the fault server knows: each request
// still ends with exactly one Outcome, by its deadline, whose route, error and
// reason say what happened.
#include "fault_server.hpp"
#include "outcome_collector.hpp"
#include "test_helpers.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using passthru::Errc;
using passthru::Method;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::FaultServer;
using passthru_test::OutcomeCollector;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Slack for a loaded machine; the contract is "deadline + a few milliseconds".
constexpr milliseconds kTimeoutSlack{1000};
// Long enough that no fault but a deliberate stall comes near it.
constexpr milliseconds kLongTimeout{10000};

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// One request's outcome, how long the test waited for it, and how many
// callbacks ran in all once the client was gone.
struct FaultRun {
  Outcome outcome;
  Clock::duration waited{};
  std::size_t callbacks = 0;
};

class Faults : public ::testing::Test {
 protected:
  StepOptions options(const std::string& path, milliseconds timeout = kLongTimeout,
                      Method method = Method::get) const {
    auto step = passthru_test::step_options(server_.url(path), timeout);
    step.method = method;
    return step;
  }

  // Runs one request and waits for its outcome, then destroys the client: a
  // request still in flight would be completed a second time (as cancelled)
  // there, so `callbacks` counts every callback the request will ever get.
  FaultRun run(const StepOptions& step_options) {
    OutcomeCollector collector;
    FaultRun result;
    const auto start = Clock::now();
    auto handle =
        client_->execute(StepConfig::build(step_options), passthru_test::sample_call(), collector.callback());
    auto outcome = collector.wait_for_id(handle.id());
    result.waited = Clock::now() - start;
    client_.reset();
    result.callbacks = collector.total_calls();
    if (!outcome) {
      ADD_FAILURE() << "no outcome within " << passthru_test::kGenerousWait.count() << " ms";
      return result;
    }
    result.outcome = *outcome;
    return result;
  }

  // The outcome of a transport failure: on-error, no HTTP status, a reason.
  static void expect_on_error(const FaultRun& run, Errc error) {
    EXPECT_EQ(run.callbacks, 1u);
    EXPECT_EQ(run.outcome.route, Route::on_error) << run.outcome.reason;
    EXPECT_EQ(run.outcome.target, "error-applet");
    EXPECT_EQ(run.outcome.error, passthru::make_error_code(error)) << run.outcome.error.message();
    EXPECT_LT(run.outcome.elapsed, kLongTimeout);
  }

  // The outcome of a stall: on-timeout, at the deadline and not much later.
  static void expect_timed_out(const FaultRun& run, milliseconds timeout) {
    EXPECT_EQ(run.callbacks, 1u);
    EXPECT_EQ(run.outcome.route, Route::on_timeout) << run.outcome.reason;
    EXPECT_EQ(run.outcome.target, "timeout-applet");
    EXPECT_EQ(run.outcome.error, passthru::make_error_code(Errc::timed_out)) << run.outcome.error.message();
    EXPECT_GE(run.waited, timeout);
    EXPECT_LT(run.waited, timeout + kTimeoutSlack);
    EXPECT_GE(run.outcome.elapsed, timeout);
    EXPECT_LT(run.outcome.elapsed, timeout + kTimeoutSlack);
  }

  // A step whose cap admits the 100000 bytes /reset-after-body promises, so
  // the reset, not the promised length, is what ends the answer.
  StepOptions reset_options(const std::string& path, Method method = Method::get) const {
    auto step = options(path, kLongTimeout, method);
    step.max_answer_bytes = 1024 * 1024;
    return step;
  }

  static void expect_vip_connect(const FaultRun& run) {
    EXPECT_EQ(run.callbacks, 1u);
    EXPECT_EQ(run.outcome.route, Route::next_applet) << run.outcome.reason;
    EXPECT_EQ(run.outcome.target, "vip-connect");
    EXPECT_FALSE(run.outcome.error) << run.outcome.reason;
    EXPECT_EQ(run.outcome.http_status, 200);
  }

  // Declared first so it outlives the client, which may hold connections to it.
  FaultServer server_;
  passthru_test::LogCollector logs_;
  std::unique_ptr<passthru_test::TestClient> client_ =
      std::make_unique<passthru_test::TestClient>(passthru_test::quiet_options(logs_));
};

TEST_F(Faults, AnswerDelayedWithinTheTimeoutRoutesToTheNamedApplet) {
  auto result = run(options("/delay/100"));
  expect_vip_connect(result);
  EXPECT_GE(result.outcome.elapsed, milliseconds(100));
  EXPECT_EQ(server_.received_count("/delay/100"), 1u);
}

TEST_F(Faults, AnswerDelayedPastTheTimeoutRoutesToOnTimeoutAtTheDeadline) {
  const milliseconds timeout{300};
  auto result = run(options("/delay/5000", timeout));
  expect_timed_out(result, timeout);
  EXPECT_EQ(result.outcome.reason, "no answer within 300 ms");
  EXPECT_EQ(result.outcome.http_status, 0);
  EXPECT_EQ(server_.received_count("/delay/5000"), 1u);
}

TEST_F(Faults, ServerThatReadsTheRequestAndNeverAnswersRoutesToOnTimeoutAtTheDeadline) {
  const milliseconds timeout{300};
  auto result = run(options("/hang", timeout));
  expect_timed_out(result, timeout);
  EXPECT_EQ(result.outcome.reason, "no answer within 300 ms");
  EXPECT_EQ(server_.received_count("/hang"), 1u);
}

TEST_F(Faults, ServerThatReadsAPostAndNeverAnswersRoutesToOnTimeoutAtTheDeadline) {
  const milliseconds timeout{300};
  auto result = run(options("/hang", timeout, Method::post));
  expect_timed_out(result, timeout);
  EXPECT_EQ(result.outcome.reason, "no answer within 300 ms");
  ASSERT_EQ(server_.received_count("/hang"), 1u);
  const auto request = server_.requests().front();
  EXPECT_EQ(request.method, "POST");
  EXPECT_TRUE(contains(request.body, "CallSid=abc123")) << request.body;
}

TEST_F(Faults, ConnectionClosedWithoutAnAnswerRoutesToOnErrorSayingSo) {
  auto result = run(options("/close"));
  expect_on_error(result, Errc::receive_failed);
  EXPECT_EQ(result.outcome.reason, "connection closed without an answer");
  EXPECT_EQ(result.outcome.http_status, 0);
  EXPECT_EQ(server_.received_count("/close"), 1u);
}

TEST_F(Faults, ConnectionClosedWithoutAnAnswerToAPostRoutesToOnErrorSayingSo) {
  auto result = run(options("/close", kLongTimeout, Method::post));
  expect_on_error(result, Errc::receive_failed);
  EXPECT_EQ(result.outcome.reason, "connection closed without an answer");
  ASSERT_EQ(server_.received_count("/close"), 1u);
  EXPECT_EQ(server_.requests().front().method, "POST");
}

TEST_F(Faults, ConnectionResetMidBodyRoutesToOnErrorNamingTheBytes) {
  auto result = run(reset_options("/reset-after-body/500"));
  expect_on_error(result, Errc::receive_failed);
  // Every byte the server sent (head and 500 of the promised 100000) arrived.
  const std::size_t sent = server_.bytes_sent("/reset-after-body/500");
  EXPECT_GT(sent, 500u);
  EXPECT_EQ(result.outcome.reason, "connection reset after " + std::to_string(sent) + " bytes of the answer");
  EXPECT_EQ(server_.received_count("/reset-after-body/500"), 1u);
}

TEST_F(Faults, ConnectionResetMidBodyOfAPostAnswerRoutesToOnErrorNamingTheBytes) {
  auto result = run(reset_options("/reset-after-body/500", Method::post));
  expect_on_error(result, Errc::receive_failed);
  const std::size_t sent = server_.bytes_sent("/reset-after-body/500");
  EXPECT_EQ(result.outcome.reason, "connection reset after " + std::to_string(sent) + " bytes of the answer");
  EXPECT_EQ(server_.received_count("/reset-after-body/500"), 1u);
}

TEST_F(Faults, ConnectionResetRightAfterTheHeadersRoutesToOnErrorNamingTheBytes) {
  auto result = run(reset_options("/reset-after-body/0"));
  expect_on_error(result, Errc::receive_failed);
  const std::size_t sent = server_.bytes_sent("/reset-after-body/0");
  EXPECT_GT(sent, 0u);
  EXPECT_EQ(result.outcome.reason, "connection reset after " + std::to_string(sent) + " bytes of the answer");
}

TEST_F(Faults, AnswerThatIsNotHttpRoutesToOnErrorSayingSo) {
  auto result = run(options("/garbage"));
  expect_on_error(result, Errc::receive_failed);
  EXPECT_EQ(result.outcome.reason.rfind("answer is not HTTP", 0), 0u) << result.outcome.reason;
  EXPECT_EQ(result.outcome.http_status, 0);
  EXPECT_EQ(server_.received_count("/garbage"), 1u);
}

TEST_F(Faults, HugeChunkedAnswerIsCutOffAtTheCapAndRoutesToOnError) {
  auto result = run(options("/huge"));
  expect_on_error(result, Errc::answer_too_large);
  EXPECT_EQ(result.outcome.reason, "answer larger than 65536 bytes");
  // Receiving and buffering 50 MB is not what took the time: the client hung
  // up long before the server could send it all.
  EXPECT_LT(result.outcome.elapsed, milliseconds(3000));
  ASSERT_TRUE(server_.wait_for_finished_connections(1));
  EXPECT_LT(server_.bytes_sent("/huge"), 16u * 1024 * 1024);
}

TEST_F(Faults, HugeAnswerWithContentLengthIsRefusedAndRoutesToOnError) {
  auto result = run(options("/huge-length"));
  expect_on_error(result, Errc::answer_too_large);
  EXPECT_EQ(result.outcome.reason, "answer larger than 65536 bytes");
  EXPECT_LT(result.outcome.elapsed, milliseconds(3000));
  ASSERT_TRUE(server_.wait_for_finished_connections(1));
  EXPECT_LT(server_.bytes_sent("/huge-length"), 16u * 1024 * 1024);
}

TEST_F(Faults, AnswerDrippingAByteASecondRoutesToOnTimeoutNamingTheBytesReceived) {
  const milliseconds timeout{1000};
  auto result = run(options("/drip", timeout));
  expect_timed_out(result, timeout);
  EXPECT_EQ(result.outcome.reason.rfind("no complete answer within 1000 ms (", 0), 0u)
      << result.outcome.reason;
  // One byte a second for a second: the first byte at most, of the 1000 promised.
  EXPECT_TRUE(contains(result.outcome.reason, "(headers and 0 of 1000 body bytes received)") ||
              contains(result.outcome.reason, "(headers and 1 of 1000 body bytes received)") ||
              contains(result.outcome.reason, "(headers and 2 of 1000 body bytes received)"))
      << result.outcome.reason;
  EXPECT_EQ(server_.received_count("/drip"), 1u);
}

TEST_F(Faults, InterimContinueThenSilenceRoutesToOnTimeoutAtTheDeadline) {
  const milliseconds timeout{500};
  auto result = run(options("/continue-stall", timeout));
  expect_timed_out(result, timeout);
  // A 100 Continue is not part of the answer: nothing of the answer came, so
  // the reason must not count its bytes as a partial answer.
  EXPECT_EQ(result.outcome.reason.rfind("no answer within 500 ms", 0), 0u) << result.outcome.reason;
  EXPECT_EQ(server_.received_count("/continue-stall"), 1u);
}

TEST_F(Faults, InterimContinueToAPostThenSilenceRoutesToOnTimeoutAtTheDeadline) {
  const milliseconds timeout{500};
  auto result = run(options("/continue-stall", timeout, Method::post));
  expect_timed_out(result, timeout);
  EXPECT_EQ(result.outcome.reason.rfind("no answer within 500 ms", 0), 0u) << result.outcome.reason;
  EXPECT_EQ(server_.received_count("/continue-stall"), 1u);
}

TEST_F(Faults, ChunkedAnswerInTwoChunksRoutesToTheNamedApplet) {
  expect_vip_connect(run(options("/chunked")));
  EXPECT_EQ(server_.received_count("/chunked"), 1u);
}

TEST_F(Faults, Http10AnswerEndedByClosingRoutesToTheNamedApplet) {
  expect_vip_connect(run(options("/http10")));
  EXPECT_EQ(server_.received_count("/http10"), 1u);
}

TEST_F(Faults, Http10AnswerToAPostRoutesToTheNamedApplet) {
  expect_vip_connect(run(options("/http10", kLongTimeout, Method::post)));
  EXPECT_EQ(server_.received_count("/http10"), 1u);
}

TEST_F(Faults, FaultServerShutsDownAtOnceWhileConnectionsHangAndDrip) {
  auto server = std::make_unique<FaultServer>();
  OutcomeCollector collector;
  const std::vector<std::string> paths = {"/hang", "/drip", "/continue-stall", "/delay/60000"};
  std::map<std::uint64_t, std::string> path_of;
  for (const auto& path : paths) {
    auto step = StepConfig::build(passthru_test::step_options(server->url(path), kLongTimeout));
    path_of[client_->execute(step, passthru_test::sample_call(), collector.callback()).id()] = path;
  }
  for (const auto& path : paths) ASSERT_TRUE(server->wait_for_requests(path, 1)) << path;
  // The drip's head is out, so closing cuts an answer short rather than preventing it.
  ASSERT_TRUE(server->wait_for_bytes_sent("/drip", 1));
  const auto start = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - start, milliseconds(500));

  // Every connection was closed under the client: each request ends on-error,
  // and the reason tells a closed connection from a cut-off answer.
  ASSERT_TRUE(collector.wait_for(paths.size()));
  client_.reset();
  EXPECT_EQ(collector.total_calls(), paths.size());
  for (const auto& outcome : collector.outcomes()) {
    const std::string& path = path_of[outcome.request_id];
    EXPECT_EQ(outcome.route, Route::on_error) << path << ": " << outcome.reason;
    EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::receive_failed))
        << path << ": " << outcome.reason;
    if (path == "/drip") {
      EXPECT_EQ(outcome.reason.rfind("connection closed after ", 0), 0u) << outcome.reason;
      EXPECT_TRUE(contains(outcome.reason, " bytes, before the whole answer")) << outcome.reason;
    } else {
      EXPECT_EQ(outcome.reason, "connection closed without an answer") << path;
    }
  }
}

// Redirects are never followed, whatever the status, the scheme of the
// Location or the method: the call goes on-error and the reason names the
// Location, so an engineer sees where the server wanted to send it.
struct RedirectCase {
  int status;
  std::string kind;  // the Location's scheme: http, https or file
  Method method;
};

class FaultsRedirect : public Faults, public ::testing::WithParamInterface<RedirectCase> {};

TEST_P(FaultsRedirect, IsNeverFollowedAndRoutesToOnErrorNamingTheLocation) {
  const RedirectCase& param = GetParam();
  const std::string path = "/redirect/" + std::to_string(param.status) + "/" + param.kind;
  std::string location = "file:///etc/passwd";
  if (param.kind == "http") location = server_.url("/target");
  if (param.kind == "https") location = "https://127.0.0.1:" + std::to_string(server_.port()) + "/target";

  auto result = run(options(path, kLongTimeout, param.method));
  EXPECT_EQ(result.callbacks, 1u);
  EXPECT_EQ(result.outcome.route, Route::on_error) << result.outcome.reason;
  EXPECT_EQ(result.outcome.target, "error-applet");
  EXPECT_EQ(result.outcome.error, passthru::make_error_code(Errc::http_status))
      << result.outcome.error.message();
  EXPECT_EQ(result.outcome.http_status, param.status);
  EXPECT_EQ(result.outcome.reason,
            "HTTP " + std::to_string(param.status) + " (redirect to '" + location + "' not followed)");

  EXPECT_EQ(server_.received_count(path), 1u);
  EXPECT_EQ(server_.received_count("/target"), 0u);
  EXPECT_EQ(server_.connections_accepted(), 1u);
}

std::vector<RedirectCase> redirect_cases() {
  std::vector<RedirectCase> cases;
  for (Method method : {Method::get, Method::post}) {
    for (int status : {301, 302, 307}) {
      for (const char* kind : {"http", "https", "file"}) cases.push_back({status, kind, method});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Faults, FaultsRedirect, ::testing::ValuesIn(redirect_cases()),
                         [](const ::testing::TestParamInfo<RedirectCase>& param_info) {
                           std::string kind = param_info.param.kind;
                           kind[0] = static_cast<char>(kind[0] - 'a' + 'A');
                           return std::string(param_info.param.method == Method::get ? "Get" : "Post") +
                                  std::to_string(param_info.param.status) + "To" + kind;
                         });

}  // namespace

// libcurl sends a request again, unasked, when a reused keep-alive connection
// closes before answering: the server sees one POST twice. Every copy carries
// the same Idempotency-Key, and different requests never share one, so the
// server can always tell a duplicate.
TEST_F(Faults, ResentPostAfterAKeepAliveRaceCarriesTheSameIdempotencyKey) {
  OutcomeCollector collector;
  const auto step = StepConfig::build(options("/keepalive-once", kLongTimeout, Method::post));
  const auto first =
      collector.wait_for_id(client_->execute(step, passthru_test::sample_call(), collector.callback()).id());
  ASSERT_TRUE(first);
  EXPECT_EQ(first->route, Route::next_applet) << first->reason;
  const auto second =
      collector.wait_for_id(client_->execute(step, passthru_test::sample_call(), collector.callback()).id());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->route, Route::next_applet) << second->reason;
  client_.reset();
  EXPECT_EQ(collector.total_calls(), 2u);

  // Proof of the duplicate: two executes, three POSTs received.
  const auto received = server_.requests();
  ASSERT_EQ(received.size(), 3u);
  EXPECT_EQ(server_.connections_accepted(), 2u);
  for (const auto& request : received) EXPECT_EQ(request.method, "POST");
  EXPECT_FALSE(received[0].idempotency_key.empty());
  EXPECT_NE(received[0].idempotency_key, received[1].idempotency_key);
  EXPECT_EQ(received[1].idempotency_key, received[2].idempotency_key);
  EXPECT_EQ(received[1].body, received[2].body);
}

TEST_F(Faults, AStepsOwnIdempotencyKeyIsSentUnchanged) {
  auto step = options("/target");
  step.headers.push_back({"Idempotency-Key", "engine-chosen-42"});
  const auto result = run(step);
  EXPECT_EQ(result.outcome.route, Route::next_applet) << result.outcome.reason;
  const auto received = server_.requests();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].idempotency_key, "engine-chosen-42");
}
