// detail::request_builder: percent-encoding, query strings, timestamps and the
// parameters a Passthru request carries.
#include "request_builder.hpp"
#include "step_data.hpp"

#include <passthru/call_context.hpp>
#include <passthru/step_config.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using passthru::CallContext;
using passthru::Direction;
using passthru::Method;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru::detail::BuiltRequest;
using passthru::detail::InvalidCall;
using Params = std::vector<std::pair<std::string, std::string>>;
using namespace std::chrono_literals;

constexpr std::string_view kNow = "2024-01-15T10:30:00+05:30";

// 2024-01-15T05:00:00Z, which is 10:30 in India (+05:30).
const std::chrono::system_clock::time_point kJan15 = std::chrono::system_clock::from_time_t(1705294800);
// 2024-07-15T05:00:00Z.
const std::chrono::system_clock::time_point kJul15 = std::chrono::system_clock::from_time_t(1721019600);

CallContext sample_call() {
  CallContext call;
  call.call_sid = "abc123def456";
  call.call_from = "+919876543210";
  call.call_to = "+914412345678";
  call.direction = Direction::incoming;
  call.dial_whom_number = "+919812345678";
  call.digits = "1234";
  call.custom = {{"order", "A-1"}, {"lang", "hi"}};
  return call;
}

const Params kSampleParams{{"CallSid", "abc123def456"},
                           {"CallFrom", "+919876543210"},
                           {"CallTo", "+914412345678"},
                           {"Direction", "incoming"},
                           {"CurrentTime", "2024-01-15T10:30:00+05:30"},
                           {"DialWhomNumber", "+919812345678"},
                           {"digits", "1234"},
                           {"order", "A-1"},
                           {"lang", "hi"}};

constexpr std::string_view kSampleQuery =
    "CallSid=abc123def456&CallFrom=%2B919876543210&CallTo=%2B914412345678&Direction=incoming"
    "&CurrentTime=2024-01-15T10%3A30%3A00%2B05%3A30&DialWhomNumber=%2B919812345678&digits=1234"
    "&order=A-1&lang=hi";

StepConfig step(std::string url, Method method, std::vector<passthru::Header> headers = {}) {
  StepOptions options;
  options.url = std::move(url);
  options.method = method;
  options.routes.default_next = "default-applet";
  options.headers = std::move(headers);
  return StepConfig::build(std::move(options));
}

bool has_header(const BuiltRequest& request, const std::string& line) {
  return std::find(request.headers.begin(), request.headers.end(), line) != request.headers.end();
}

bool has_param(const Params& params, const std::string& name) {
  return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
}

// Sets TZ for one test and restores it after.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* tz) {
    if (const char* old = std::getenv("TZ")) saved_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTimeZone() {
    if (saved_) {
      setenv("TZ", saved_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  ScopedTimeZone(const ScopedTimeZone&) = delete;
  ScopedTimeZone& operator=(const ScopedTimeZone&) = delete;

 private:
  std::optional<std::string> saved_;
};

// --- percent_encode ---

TEST(PercentEncode, PlusBecomesPercent2B) {
  EXPECT_EQ(passthru::detail::percent_encode("+919876543210"), "%2B919876543210");
}

TEST(PercentEncode, SpaceBecomesPercent20NotPlus) {
  EXPECT_EQ(passthru::detail::percent_encode("a b"), "a%20b");
}

TEST(PercentEncode, UnreservedCharactersAreUntouched) {
  const std::string unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
  EXPECT_EQ(passthru::detail::percent_encode(unreserved), unreserved);
}

TEST(PercentEncode, ReservedCharactersAreEncodedInUpperCaseHex) {
  EXPECT_EQ(passthru::detail::percent_encode("&=?/#%:@!*'()[],;$"),
            "%26%3D%3F%2F%23%25%3A%40%21%2A%27%28%29%5B%5D%2C%3B%24");
}

TEST(PercentEncode, Utf8BytesAreEncodedOneByOneInUpperCase) {
  EXPECT_EQ(passthru::detail::percent_encode("caf\xC3\xA9 \xE0\xA4\xA8"), "caf%C3%A9%20%E0%A4%A8");
}

TEST(PercentEncode, HighAndControlBytesAreEncoded) {
  EXPECT_EQ(passthru::detail::percent_encode(std::string_view("\x00\x0A\x0D\x7F\xFF", 5)), "%00%0A%0D%7F%FF");
}

TEST(PercentEncode, EmptyStaysEmpty) { EXPECT_EQ(passthru::detail::percent_encode(""), ""); }

// --- encode_params ---

TEST(EncodeParams, JoinsEncodedPairsInOrder) {
  EXPECT_EQ(passthru::detail::encode_params({{"b", "2"}, {"a b", "x&y=z"}, {"c", "+1"}}),
            "b=2&a%20b=x%26y%3Dz&c=%2B1");
}

TEST(EncodeParams, KeepsEmptyValues) {
  EXPECT_EQ(passthru::detail::encode_params({{"DialWhomNumber", ""}, {"a", "1"}}), "DialWhomNumber=&a=1");
}

TEST(EncodeParams, NoParamsGiveAnEmptyString) { EXPECT_EQ(passthru::detail::encode_params({}), ""); }

// --- append_query ---

TEST(AppendQuery, AddsAQuestionMarkWhenThereIsNoQuery) {
  EXPECT_EQ(passthru::detail::append_query("https://crm.example.com/passthru", "a=1&b=2"),
            "https://crm.example.com/passthru?a=1&b=2");
}

TEST(AppendQuery, AddsAnAmpersandAfterAnExistingQuery) {
  EXPECT_EQ(passthru::detail::append_query("https://crm.example.com/passthru?key=abc", "a=1"),
            "https://crm.example.com/passthru?key=abc&a=1");
}

TEST(AppendQuery, AppendsDirectlyAfterATrailingQuestionMark) {
  EXPECT_EQ(passthru::detail::append_query("https://crm.example.com/passthru?", "a=1"),
            "https://crm.example.com/passthru?a=1");
}

TEST(AppendQuery, AppendsDirectlyAfterATrailingAmpersand) {
  EXPECT_EQ(passthru::detail::append_query("https://crm.example.com/passthru?key=abc&", "a=1"),
            "https://crm.example.com/passthru?key=abc&a=1");
}

TEST(AppendQuery, DropsTheFragment) {
  EXPECT_EQ(passthru::detail::append_query("https://crm.example.com/passthru#section", "a=1"),
            "https://crm.example.com/passthru?a=1");
}

TEST(AppendQuery, DropsTheFragmentAfterAnExistingQuery) {
  EXPECT_EQ(passthru::detail::append_query("https://crm.example.com/passthru?key=abc#section", "a=1"),
            "https://crm.example.com/passthru?key=abc&a=1");
}

TEST(AppendQuery, QuestionMarkInsideTheFragmentIsNotAQuery) {
  EXPECT_EQ(passthru::detail::append_query("https://crm.example.com/passthru#x?y", "a=1"),
            "https://crm.example.com/passthru?a=1");
}

// --- format_iso8601 and local_utc_offset ---

TEST(FormatIso8601, WritesThePositiveOffsetOfIndia) {
  EXPECT_EQ(passthru::detail::format_iso8601(kJan15, 330min), "2024-01-15T10:30:00+05:30");
}

TEST(FormatIso8601, WritesANegativeOffset) {
  EXPECT_EQ(passthru::detail::format_iso8601(kJan15, -180min), "2024-01-15T02:00:00-03:00");
}

TEST(FormatIso8601, WritesANegativeOffsetWithMinutesAcrossMidnight) {
  EXPECT_EQ(passthru::detail::format_iso8601(kJan15, -570min), "2024-01-14T19:30:00-09:30");
}

TEST(FormatIso8601, WritesZeroOffsetAsPlusZero) {
  EXPECT_EQ(passthru::detail::format_iso8601(kJan15, 0min), "2024-01-15T05:00:00+00:00");
}

TEST(FormatIso8601, TruncatesToWholeSeconds) {
  EXPECT_EQ(passthru::detail::format_iso8601(kJan15 + 999ms, 330min), "2024-01-15T10:30:00+05:30");
}

TEST(LocalUtcOffset, FollowsTheProcessTimeZone) {
  const ScopedTimeZone tz("IST-5:30");
  EXPECT_EQ(passthru::detail::local_utc_offset(kJan15), 330min);
}

TEST(LocalUtcOffset, DependsOnTheMomentAcrossDaylightSaving) {
  const ScopedTimeZone tz("EST5EDT,M3.2.0,M11.1.0");
  EXPECT_EQ(passthru::detail::local_utc_offset(kJan15), -300min);
  EXPECT_EQ(passthru::detail::local_utc_offset(kJul15), -240min);
}

// --- call_params ---

TEST(CallParams, UseTheGuideNamesInWireOrder) {
  EXPECT_EQ(passthru::detail::call_params(sample_call(), false, kNow), kSampleParams);
}

TEST(CallParams, SendOutgoingDirection) {
  CallContext call = sample_call();
  call.direction = Direction::outgoing;
  const Params params = passthru::detail::call_params(call, false, kNow);
  ASSERT_GE(params.size(), 4u);
  EXPECT_EQ(params[3], (std::pair<std::string, std::string>{"Direction", "outgoing"}));
}

TEST(CallParams, QuoteDigitsWrapsThemInDoubleQuotes) {
  const Params params = passthru::detail::call_params(sample_call(), true, kNow);
  ASSERT_GE(params.size(), 7u);
  EXPECT_EQ(params[6], (std::pair<std::string, std::string>{"digits", "\"1234\""}));
}

TEST(CallParams, LeaveDigitsOutWhenNoneWereCollected) {
  CallContext call = sample_call();
  call.digits = std::nullopt;
  const Params params = passthru::detail::call_params(call, true, kNow);
  EXPECT_FALSE(has_param(params, "digits"));
  Params expected = kSampleParams;
  expected.erase(expected.begin() + 6);
  EXPECT_EQ(params, expected);
}

TEST(CallParams, CurrentTimeFromTheCallWinsOverNow) {
  CallContext call = sample_call();
  call.current_time = "2023-12-31T23:59:59-08:00";
  const Params params = passthru::detail::call_params(call, false, kNow);
  ASSERT_GE(params.size(), 5u);
  EXPECT_EQ(params[4], (std::pair<std::string, std::string>{"CurrentTime", "2023-12-31T23:59:59-08:00"}));
}

TEST(CallParams, SendDialWhomNumberEvenWhenEmpty) {
  CallContext call;
  call.call_sid = "abc";
  const Params expected{{"CallSid", "abc"},
                        {"CallFrom", ""},
                        {"CallTo", ""},
                        {"Direction", "incoming"},
                        {"CurrentTime", std::string(kNow)},
                        {"DialWhomNumber", ""}};
  EXPECT_EQ(passthru::detail::call_params(call, false, kNow), expected);
}

TEST(CallParams, RefuseACustomNameThatRepeatsCallSid) {
  CallContext call = sample_call();
  call.custom.emplace_back("CallSid", "spoofed");
  EXPECT_THROW((void)passthru::detail::call_params(call, false, kNow), InvalidCall);
}

TEST(CallParams, RefuseACustomNameThatRepeatsCurrentTime) {
  CallContext call = sample_call();
  call.custom.emplace_back("CurrentTime", "yesterday");
  EXPECT_THROW((void)passthru::detail::call_params(call, false, kNow), InvalidCall);
}

TEST(CallParams, RefuseACustomNameThatRepeatsDigits) {
  CallContext call = sample_call();
  call.custom.emplace_back("digits", "9999");
  EXPECT_THROW((void)passthru::detail::call_params(call, false, kNow), InvalidCall);
}

TEST(CallParams, RefuseACustomDigitsEvenWhenNoDigitsWereCollected) {
  CallContext call = sample_call();
  call.digits = std::nullopt;
  call.custom.emplace_back("digits", "9999");
  EXPECT_THROW((void)passthru::detail::call_params(call, false, kNow), InvalidCall);
}

TEST(CallParams, RefuseAnEmptyCustomName) {
  CallContext call = sample_call();
  call.custom.emplace_back("", "value");
  EXPECT_THROW((void)passthru::detail::call_params(call, false, kNow), InvalidCall);
}

// --- build_request ---

TEST(BuildRequest, GetSendsTheParamsInTheQueryAndNoBody) {
  const StepConfig config = step("https://crm.example.com/passthru", Method::get);
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_EQ(request.method, Method::get);
  EXPECT_EQ(request.url, "https://crm.example.com/passthru?" + std::string(kSampleQuery));
  EXPECT_TRUE(request.body.empty()) << request.body;
}

TEST(BuildRequest, GetKeepsTheStepsOwnQuery) {
  const StepConfig config = step("https://crm.example.com/passthru?key=abc", Method::get);
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_EQ(request.url, "https://crm.example.com/passthru?key=abc&" + std::string(kSampleQuery));
}

TEST(BuildRequest, GetDropsTheStepUrlsFragment) {
  const StepConfig config = step("https://crm.example.com/passthru#top", Method::get);
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_EQ(request.url, "https://crm.example.com/passthru?" + std::string(kSampleQuery));
}

TEST(BuildRequest, PostSendsAFormBodyAndLeavesTheUrlAlone) {
  const StepConfig config = step("https://crm.example.com/passthru?key=abc", Method::post);
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_EQ(request.method, Method::post);
  EXPECT_EQ(request.url, "https://crm.example.com/passthru?key=abc");
  EXPECT_EQ(request.body, kSampleQuery);
  EXPECT_TRUE(has_header(request, "Content-Type: application/x-www-form-urlencoded"));
}

TEST(BuildRequest, PostDropsTheStepUrlsFragment) {
  const StepConfig config = step("https://crm.example.com/passthru#top", Method::post);
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_EQ(request.url, "https://crm.example.com/passthru");
}

TEST(BuildRequest, PlusInTheCallerNumberArrivesAsPercent2B) {
  const StepConfig config = step("https://crm.example.com/passthru", Method::post);
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_NE(request.body.find("CallFrom=%2B919876543210&"), std::string::npos) << request.body;
}

TEST(BuildRequest, StepHeadersAreSent) {
  const StepConfig config = step("https://crm.example.com/passthru", Method::get,
                                 {{"X-Api-Key", "s3cret"}, {"Authorization", "Bearer abc.def"}});
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_TRUE(has_header(request, "X-Api-Key: s3cret"));
  EXPECT_TRUE(has_header(request, "Authorization: Bearer abc.def"));
}

TEST(BuildRequest, PostSendsStepHeadersAlongsideTheContentType) {
  const StepConfig config = step("https://crm.example.com/passthru", Method::post, {{"X-Api-Key", "s3cret"}});
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_TRUE(has_header(request, "X-Api-Key: s3cret"));
  EXPECT_TRUE(has_header(request, "Content-Type: application/x-www-form-urlencoded"));
}

TEST(BuildRequest, QuoteDigitsFromTheStepIsApplied) {
  StepOptions options;
  options.url = "https://crm.example.com/passthru";
  options.method = Method::post;
  options.routes.default_next = "default-applet";
  options.quote_digits = true;
  const StepConfig config = StepConfig::build(options);
  const BuiltRequest request = passthru::detail::build_request(config.data(), sample_call(), kNow);
  EXPECT_NE(request.body.find("&digits=%221234%22&"), std::string::npos) << request.body;
}

TEST(BuildRequest, RefusesACallWithACollidingCustomName) {
  const StepConfig config = step("https://crm.example.com/passthru", Method::get);
  CallContext call = sample_call();
  call.custom.emplace_back("CallFrom", "+10000000000");
  EXPECT_THROW((void)passthru::detail::build_request(config.data(), call, kNow), InvalidCall);
}

}  // namespace
