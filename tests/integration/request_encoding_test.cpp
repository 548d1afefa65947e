// What the customer's server receives, checked byte for byte on the server side.
#include "outcome_collector.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <regex>
#include <set>
#include <string>

namespace {

using passthru::Method;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru_test::RecordedRequest;
using passthru_test::TestHttpServer;

// The guide's sample call, encoded in wire order.
constexpr const char* kSampleParams =
    "CallSid=abc123&CallFrom=%2B919876543210&CallTo=%2B914412345678&Direction=incoming"
    "&CurrentTime=2024-01-15T10%3A30%3A00%2B05%3A30&DialWhomNumber=&digits=1234";

class RequestEncoding : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.reply("GET", "/crm", 200, "vip-connect");
    server_.reply("POST", "/crm", 200, "vip-connect");
  }

  // Sends `call` through a step built from `options` and returns what the
  // server received; the request must also route to vip-connect.
  RecordedRequest send(StepOptions options, passthru::CallContext call = passthru_test::sample_call()) {
    return send_with(client_, std::move(options), std::move(call));
  }

  RecordedRequest send_with(passthru_test::TestClient& client, StepOptions options,
                            passthru::CallContext call) {
    auto step = StepConfig::build(std::move(options));
    auto outcome = passthru_test::execute_and_wait(client, step, std::move(call));
    if (!outcome) {
      ADD_FAILURE() << "no outcome";
    } else {
      EXPECT_EQ(outcome->route, Route::next_applet) << outcome->reason;
      EXPECT_EQ(outcome->target, "vip-connect");
    }
    auto received = server_.requests();
    if (received.size() != 1) {
      ADD_FAILURE() << "server received " << received.size() << " requests, expected 1";
      return {};
    }
    return received.front();
  }

  StepOptions get_step(const std::string& path_and_query = "/crm") {
    return passthru_test::step_options(server_.url(path_and_query));
  }

  StepOptions post_step(const std::string& path_and_query = "/crm") {
    auto options = get_step(path_and_query);
    options.method = Method::post;
    return options;
  }

  TestHttpServer server_;
  passthru_test::LogCollector logs_;
  passthru_test::TestClient client_{passthru_test::quiet_options(logs_)};
};

TEST_F(RequestEncoding, GetSendsTheGuideParametersInOrderAsTheQueryString) {
  auto received = send(get_step());
  EXPECT_EQ(received.method, "GET");
  EXPECT_EQ(received.target, std::string("/crm?") + kSampleParams);
  EXPECT_EQ(received.body, "");
}

TEST_F(RequestEncoding, GetMergesTheParametersIntoAnExistingQuery) {
  auto received = send(get_step("/crm?tenant=7"));
  EXPECT_EQ(received.target, std::string("/crm?tenant=7&") + kSampleParams);
}

// A GET's request line is handed to libcurl whole (CURLOPT_REQUEST_TARGET):
// the path must still be the one libcurl makes of the step's URL.
TEST_F(RequestEncoding, GetSendsThePathAsLibcurlNormalisesIt) {
  server_.reply("GET", "/crm/", 200, "vip-connect");
  auto received = send(get_step("/app/../crm/./?tenant=7"));
  EXPECT_EQ(received.target, std::string("/crm/?tenant=7&") + kSampleParams);
}

TEST_F(RequestEncoding, GetToAUrlWithoutAPathSendsSlash) {
  server_.reply("GET", "/", 200, "vip-connect");
  auto received = send(get_step(""));
  EXPECT_EQ(received.target, std::string("/?") + kSampleParams);
}

TEST_F(RequestEncoding, GetDropsTheUrlFragment) {
  auto received = send(get_step("/crm#section"));
  EXPECT_EQ(received.target, std::string("/crm?") + kSampleParams);
}

TEST_F(RequestEncoding, PostSendsTheParametersAsAFormBody) {
  auto received = send(post_step());
  EXPECT_EQ(received.method, "POST");
  EXPECT_EQ(received.target, "/crm");
  EXPECT_EQ(received.body, kSampleParams);
  EXPECT_EQ(received.header("Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(received.header("Content-Length"), std::to_string(std::string(kSampleParams).size()));
}

TEST_F(RequestEncoding, PostKeepsTheUrlQueryAndSendsParametersOnlyInTheBody) {
  auto received = send(post_step("/crm?tenant=7"));
  EXPECT_EQ(received.target, "/crm?tenant=7");
  EXPECT_EQ(received.body, kSampleParams);
}

TEST_F(RequestEncoding, QuotedDigitsAreSentInDoubleQuotes) {
  auto options = get_step();
  options.quote_digits = true;
  auto received = send(options);
  EXPECT_EQ(received.query(),
            "CallSid=abc123&CallFrom=%2B919876543210&CallTo=%2B914412345678&Direction=incoming"
            "&CurrentTime=2024-01-15T10%3A30%3A00%2B05%3A30&DialWhomNumber=&digits=%221234%22");
}

TEST_F(RequestEncoding, DigitsAreLeftOutWhenTheCallHasNone) {
  auto call = passthru_test::sample_call();
  call.digits.reset();
  auto received = send(get_step(), call);
  EXPECT_EQ(received.query(),
            "CallSid=abc123&CallFrom=%2B919876543210&CallTo=%2B914412345678&Direction=incoming"
            "&CurrentTime=2024-01-15T10%3A30%3A00%2B05%3A30&DialWhomNumber=");
}

TEST_F(RequestEncoding, OutgoingCallSendsDirectionAndDialWhomNumber) {
  auto call = passthru_test::sample_call();
  call.direction = passthru::Direction::outgoing;
  call.dial_whom_number = "+919876543210";
  call.digits.reset();
  auto received = send(post_step(), call);
  EXPECT_EQ(received.body,
            "CallSid=abc123&CallFrom=%2B919876543210&CallTo=%2B914412345678&Direction=outgoing"
            "&CurrentTime=2024-01-15T10%3A30%3A00%2B05%3A30&DialWhomNumber=%2B919876543210");
}

TEST_F(RequestEncoding, CustomParametersFollowTheStandardOnesInOrderAndAreEncoded) {
  auto call = passthru_test::sample_call();
  call.custom = {
      {"order id", "A&B=1 +x"}, {"lang", "ta"}, {"city", "Chennai/\xC3\xA9"}, {"tilde", "a-b_c.d~e"}};
  const std::string custom = "&order%20id=A%26B%3D1%20%2Bx&lang=ta&city=Chennai%2F%C3%A9&tilde=a-b_c.d~e";

  auto received = send(get_step(), call);
  EXPECT_EQ(received.target, std::string("/crm?") + kSampleParams + custom);
}

TEST_F(RequestEncoding, CustomParametersFollowTheStandardOnesInAPostBody) {
  auto call = passthru_test::sample_call();
  call.custom = {{"order id", "A&B=1 +x"}, {"lang", "ta"}};
  auto received = send(post_step(), call);
  EXPECT_EQ(received.body, std::string(kSampleParams) + "&order%20id=A%26B%3D1%20%2Bx&lang=ta");
}

// ISO 8601 with seconds and a numeric offset (or Z), as the guide shows.
const std::regex kIso8601WithOffset(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$)");

// Seconds between `stamp` (ISO 8601 with offset) and now; empty if unparsable.
std::optional<long long> seconds_from_now(const std::string& stamp) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, off_h = 0, off_m = 0;
  char sign = 'Z';
  if (std::sscanf(stamp.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d", &year, &month, &day, &hour, &minute,
                  &second, &sign, &off_h, &off_m) < 7) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  long long local_as_utc = static_cast<long long>(timegm(&tm));
  long long offset = (off_h * 60LL + off_m) * 60LL;
  long long utc = sign == '-' ? local_as_utc + offset : sign == '+' ? local_as_utc - offset : local_as_utc;
  return utc - static_cast<long long>(std::time(nullptr));
}

// CurrentTime as the server received it, from the query (GET) or the body (POST).
std::string stamped_time(const RecordedRequest& received) {
  auto value =
      passthru_test::form_value(received.method == "POST" ? received.body : received.query(), "CurrentTime");
  if (!value) {
    ADD_FAILURE() << "no CurrentTime in " << received.target;
    return {};
  }
  return *value;
}

TEST_F(RequestEncoding, CurrentTimeIsStampedWhenTheCallHasNone) {
  auto call = passthru_test::sample_call();
  call.current_time.clear();
  auto received = send(get_step(), call);
  auto stamp = stamped_time(received);
  EXPECT_TRUE(std::regex_match(stamp, kIso8601WithOffset)) << stamp;
  auto skew = seconds_from_now(stamp);
  ASSERT_TRUE(skew) << stamp;
  EXPECT_LE(std::llabs(*skew), 120) << stamp << " is not now";
  // Still in wire order, percent-encoded.
  EXPECT_EQ(received.query().rfind("CallSid=abc123&CallFrom=%2B919876543210&CallTo=%2B914412345678"
                                   "&Direction=incoming&CurrentTime=",
                                   0),
            0u)
      << received.target;
  EXPECT_EQ(received.query().find(':'), std::string::npos)
      << "':' must be percent-encoded: " << received.target;
}

TEST_F(RequestEncoding, CurrentTimeUsesTheConfiguredPositiveUtcOffset) {
  passthru::ClientOptions options = passthru_test::quiet_options(logs_);
  options.utc_offset = std::chrono::minutes(330);
  passthru_test::TestClient ist_client(options);
  auto call = passthru_test::sample_call();
  call.current_time.clear();
  auto stamp = stamped_time(send_with(ist_client, get_step(), call));
  EXPECT_TRUE(std::regex_match(stamp, kIso8601WithOffset)) << stamp;
  ASSERT_GE(stamp.size(), 6u);
  EXPECT_EQ(stamp.substr(stamp.size() - 6), "+05:30") << stamp;
  auto skew = seconds_from_now(stamp);
  ASSERT_TRUE(skew) << stamp;
  EXPECT_LE(std::llabs(*skew), 120) << stamp << " is not now in +05:30";
}

TEST_F(RequestEncoding, CurrentTimeUsesTheConfiguredNegativeUtcOffset) {
  passthru::ClientOptions options = passthru_test::quiet_options(logs_);
  options.utc_offset = std::chrono::minutes(-300);
  passthru_test::TestClient est_client(options);
  auto call = passthru_test::sample_call();
  call.current_time.clear();
  auto stamp = stamped_time(send_with(est_client, post_step(), call));
  EXPECT_TRUE(std::regex_match(stamp, kIso8601WithOffset)) << stamp;
  ASSERT_GE(stamp.size(), 6u);
  EXPECT_EQ(stamp.substr(stamp.size() - 6), "-05:00") << stamp;
  auto skew = seconds_from_now(stamp);
  ASSERT_TRUE(skew) << stamp;
  EXPECT_LE(std::llabs(*skew), 120) << stamp << " is not now in -05:00";
}

TEST_F(RequestEncoding, GivenCurrentTimeIsSentUnchanged) {
  passthru::ClientOptions options = passthru_test::quiet_options(logs_);
  options.utc_offset = std::chrono::minutes(0);
  passthru_test::TestClient utc_client(options);
  auto received = send_with(utc_client, get_step(), passthru_test::sample_call());
  EXPECT_EQ(passthru_test::form_value(received.query(), "CurrentTime"), "2024-01-15T10:30:00+05:30");
}

TEST_F(RequestEncoding, ExtraHeadersArrive) {
  auto options = get_step();
  options.headers = {{"X-Api-Key", "secret-1"}, {"X-Tenant", "7"}};
  auto received = send(options);
  EXPECT_EQ(received.header("X-Api-Key"), "secret-1");
  EXPECT_EQ(received.header("X-Tenant"), "7");
}

TEST_F(RequestEncoding, DefaultUserAgentNamesTheLibraryAndVersion) {
  auto received = send(get_step());
  EXPECT_EQ(received.header("User-Agent"), std::string("passthru/") + PASSTHRU_VERSION_STRING);
}

TEST_F(RequestEncoding, ConfiguredUserAgentArrives) {
  passthru::ClientOptions options = passthru_test::quiet_options(logs_);
  options.user_agent = "acme-ivr/2.1";
  passthru_test::TestClient custom_client(options);
  auto received = send_with(custom_client, get_step(), passthru_test::sample_call());
  EXPECT_EQ(received.header("User-Agent"), "acme-ivr/2.1");
}

TEST(IdempotencyKey, IsNewForEveryExecutionOfTheSameCallAndStepAndEndsInTheRequestId) {
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect", "text/plain");
  passthru_test::LogCollector logs;
  passthru_test::TestClient client(passthru_test::quiet_options(logs));
  const StepConfig step = StepConfig::build(passthru_test::step_options(server.url("/crm")));
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    const auto outcome = passthru_test::execute_and_wait(client, step, passthru_test::sample_call());
    ASSERT_TRUE(outcome);
    ids.push_back(outcome->request_id);
  }
  std::set<std::string> keys;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const std::string key = requests[i].header("Idempotency-Key");
    ASSERT_EQ(key.size(), 33 + std::to_string(ids[i]).size()) << key;
    EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), 32u) << key;
    EXPECT_EQ(key.substr(32), "-" + std::to_string(ids[i])) << key;
    keys.insert(key.substr(0, 32));
  }
  EXPECT_EQ(keys.size(), 3u) << "two executions shared a key";
}

}  // namespace
