// StepConfig::build: validation of StepOptions, and what a valid step keeps.
#include "step_data.hpp"

#include <passthru/step_config.hpp>

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using passthru::ConfigError;
using passthru::Header;
using passthru::Method;
using passthru::StepConfig;
using passthru::StepOptions;
using namespace std::chrono_literals;

StepOptions valid_options() {
  StepOptions options;
  options.url = "https://crm.example.com/passthru";
  options.routes.default_next = "default-applet";
  return options;
}

StepOptions with_url(std::string url) {
  StepOptions options = valid_options();
  options.url = std::move(url);
  return options;
}

StepOptions with_headers(std::vector<Header> headers) {
  StepOptions options = valid_options();
  options.headers = std::move(headers);
  return options;
}

// The field named by the ConfigError that build() throws, or "<accepted>".
std::string rejected_field(StepOptions options) {
  try {
    (void)StepConfig::build(std::move(options));
  } catch (const ConfigError& e) {
    return e.field();
  }
  return "<accepted>";
}

// --- url ---

TEST(StepConfig, RejectsAnEmptyUrl) { EXPECT_EQ(rejected_field(with_url("")), "url"); }

TEST(StepConfig, RejectsAUrlWithoutAScheme) {
  EXPECT_EQ(rejected_field(with_url("crm.example.com/passthru")), "url");
}

TEST(StepConfig, RejectsARelativeUrl) { EXPECT_EQ(rejected_field(with_url("/passthru")), "url"); }

TEST(StepConfig, RejectsText) { EXPECT_EQ(rejected_field(with_url("not a url")), "url"); }

TEST(StepConfig, RejectsAnFtpUrl) {
  EXPECT_EQ(rejected_field(with_url("ftp://crm.example.com/passthru")), "url");
}

TEST(StepConfig, RejectsAFileUrl) { EXPECT_EQ(rejected_field(with_url("file:///etc/passwd")), "url"); }

TEST(StepConfig, RejectsAUrlWithoutAHost) { EXPECT_EQ(rejected_field(with_url("https://")), "url"); }

TEST(StepConfig, RejectsAUrlWithAnEmptyHostBeforeThePath) {
  EXPECT_EQ(rejected_field(with_url("https:///passthru")), "url");
}

TEST(StepConfig, RejectsAUrlWithOnlyAPort) {
  EXPECT_EQ(rejected_field(with_url("https://:8443/passthru")), "url");
}

TEST(StepConfig, RejectsAUrlWithALineBreak) {
  EXPECT_EQ(rejected_field(with_url("https://crm.example.com/passthru\r\nX-Injected: 1")), "url");
}

TEST(StepConfig, AcceptsHttpWithAPortAndAnIpAddress) {
  EXPECT_EQ(rejected_field(with_url("http://127.0.0.1:8080/passthru")), "<accepted>");
}

TEST(StepConfig, AcceptsHttpsWithoutAPath) {
  EXPECT_EQ(rejected_field(with_url("https://crm.example.com")), "<accepted>");
}

TEST(StepConfig, AcceptsAUrlWithAQueryAndFragment) {
  EXPECT_EQ(rejected_field(with_url("https://crm.example.com/passthru?key=abc#top")), "<accepted>");
}

TEST(StepConfig, RejectsASchemeWithoutBothSlashes) {
  EXPECT_EQ(rejected_field(with_url("http:/example.com/cb")), "url");
  EXPECT_EQ(rejected_field(with_url("HTTPS:/example.com/cb")), "url");
  EXPECT_EQ(rejected_field(with_url("http:example.com/cb")), "url");
  EXPECT_EQ(rejected_field(with_url("HTTPS://example.com/cb")), "<accepted>");
}

// --- timeout ---

TEST(StepConfig, RejectsAZeroTimeout) {
  StepOptions options = valid_options();
  options.timeout = 0ms;
  EXPECT_EQ(rejected_field(options), "timeout");
}

TEST(StepConfig, RejectsANegativeTimeout) {
  StepOptions options = valid_options();
  options.timeout = -1000ms;
  EXPECT_EQ(rejected_field(options), "timeout");
}

TEST(StepConfig, AcceptsAOneMillisecondTimeout) {
  StepOptions options = valid_options();
  options.timeout = 1ms;
  EXPECT_EQ(rejected_field(options), "<accepted>");
}

TEST(StepConfig, AcceptsAnHourButNotLonger) {
  StepOptions options = valid_options();
  options.timeout = std::chrono::hours(1);
  EXPECT_EQ(rejected_field(options), "<accepted>");
  options.timeout = std::chrono::hours(1) + 1ms;
  EXPECT_EQ(rejected_field(options), "timeout");
  options.timeout = std::chrono::milliseconds::max();
  EXPECT_EQ(rejected_field(options), "timeout");
}

// --- routes ---

TEST(StepConfig, RejectsAnEmptyDefaultNext) {
  StepOptions options = valid_options();
  options.routes.default_next.clear();
  EXPECT_EQ(rejected_field(options), "routes.default_next");
}

TEST(StepConfig, AcceptsEmptyOnErrorAndOnTimeout) {
  StepOptions options = valid_options();
  options.routes.on_error.clear();
  options.routes.on_timeout.clear();
  EXPECT_EQ(rejected_field(options), "<accepted>");
}

// --- headers ---

TEST(StepConfig, RejectsAHeaderNameWithASpace) {
  EXPECT_EQ(rejected_field(with_headers({{"X Api Key", "s3cret"}})), "headers[0].name");
}

TEST(StepConfig, RejectsAnEmptyHeaderName) {
  EXPECT_EQ(rejected_field(with_headers({{"", "s3cret"}})), "headers[0].name");
}

TEST(StepConfig, RejectsAHeaderNameWithAColon) {
  EXPECT_EQ(rejected_field(with_headers({{"X-Api-Key:", "s3cret"}})), "headers[0].name");
}

TEST(StepConfig, RejectsAHeaderNameWithALineBreak) {
  EXPECT_EQ(rejected_field(with_headers({{"X-Api\r\nX-Injected", "1"}})), "headers[0].name");
}

TEST(StepConfig, AcceptsEveryTokenCharacterInAHeaderName) {
  EXPECT_EQ(rejected_field(with_headers({{"X-Api_Key.v1~!#$%&'*+^`|", "s3cret"}})), "<accepted>");
}

TEST(StepConfig, RejectsACarriageReturnInTheSecondHeadersValue) {
  EXPECT_EQ(rejected_field(with_headers({{"X-Api-Key", "s3cret"}, {"X-Tenant", "acme\rX-Injected: 1"}})),
            "headers[1].value");
}

TEST(StepConfig, RejectsALineFeedInTheSecondHeadersValue) {
  EXPECT_EQ(rejected_field(with_headers({{"X-Api-Key", "s3cret"}, {"X-Tenant", "acme\nX-Injected: 1"}})),
            "headers[1].value");
}

TEST(StepConfig, RejectsANulInTheSecondHeadersValue) {
  EXPECT_EQ(
      rejected_field(with_headers({{"X-Api-Key", "s3cret"}, {"X-Tenant", std::string("acme\0corp", 9)}})),
      "headers[1].value");
}

TEST(StepConfig, NamesTheIndexOfTheBadHeader) {
  EXPECT_EQ(rejected_field(with_headers({{"A", "1"}, {"B", "2"}, {"C D", "3"}})), "headers[2].name");
}

TEST(StepConfig, AcceptsATabAndAnEmptyValueInAHeader) {
  EXPECT_EQ(rejected_field(with_headers({{"X-Tab", "a\tb"}, {"X-Empty", ""}})), "<accepted>");
}

// --- max_answer_bytes ---

TEST(StepConfig, RejectsAZeroMaxAnswerBytes) {
  StepOptions options = valid_options();
  options.max_answer_bytes = 0;
  EXPECT_EQ(rejected_field(options), "max_answer_bytes");
}

// --- the error itself ---

TEST(StepConfig, ConfigErrorIsAnInvalidArgumentNamingTheField) {
  StepOptions options = valid_options();
  options.timeout = 0ms;
  try {
    (void)StepConfig::build(options);
    FAIL() << "a zero timeout was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("timeout"), std::string::npos) << e.what();
  }
}

TEST(StepConfig, NamesTheFirstBadField) {
  StepOptions options = valid_options();
  options.url = "ftp://crm.example.com/passthru";
  options.timeout = 0ms;
  options.routes.default_next.clear();
  options.max_answer_bytes = 0;
  EXPECT_EQ(rejected_field(options), "url");
}

// --- a valid step ---

TEST(StepOptions, DefaultToGetFifteenSecondsAnd64KiB) {
  const StepOptions options;
  EXPECT_EQ(options.method, Method::get);
  EXPECT_EQ(options.timeout, 15s);
  EXPECT_EQ(options.max_answer_bytes, std::size_t{64 * 1024});
  EXPECT_FALSE(options.quote_digits);
}

TEST(StepConfig, KeepsTheDefaultsOfAMinimalStep) {
  const StepConfig config = StepConfig::build(valid_options());
  EXPECT_EQ(config.options().method, Method::get);
  EXPECT_EQ(config.options().timeout, 15s);
  EXPECT_EQ(config.options().max_answer_bytes, std::size_t{64 * 1024});
}

TEST(StepConfig, OptionsRoundTrip) {
  StepOptions options;
  options.url = "https://crm.example.com/passthru?key=abc#top";
  options.method = Method::post;
  options.timeout = 2500ms;
  options.routes.default_next = "default-applet";
  options.routes.on_error = "error-applet";
  options.routes.on_timeout = "timeout-applet";
  options.routes.known_applets = {"vip-connect", "standard-queue"};
  options.routes.external_flow_hosts = {"flows.example.com", "*.exotel.com"};
  options.headers = {{"X-Api-Key", "s3cret"}, {"X-Tenant", "acme"}};
  options.quote_digits = true;
  options.max_answer_bytes = 4096;
  options.name = "CRM lookup";

  const StepConfig config = StepConfig::build(options);
  const StepOptions& kept = config.options();
  EXPECT_EQ(kept.url, options.url);
  EXPECT_EQ(kept.method, Method::post);
  EXPECT_EQ(kept.timeout, 2500ms);
  EXPECT_EQ(kept.routes.default_next, "default-applet");
  EXPECT_EQ(kept.routes.on_error, "error-applet");
  EXPECT_EQ(kept.routes.on_timeout, "timeout-applet");
  EXPECT_EQ(kept.routes.known_applets, options.routes.known_applets);
  EXPECT_EQ(kept.routes.external_flow_hosts, options.routes.external_flow_hosts);
  ASSERT_EQ(kept.headers.size(), 2u);
  EXPECT_EQ(kept.headers[0].name, "X-Api-Key");
  EXPECT_EQ(kept.headers[0].value, "s3cret");
  EXPECT_EQ(kept.headers[1].name, "X-Tenant");
  EXPECT_EQ(kept.headers[1].value, "acme");
  EXPECT_TRUE(kept.quote_digits);
  EXPECT_EQ(kept.max_answer_bytes, std::size_t{4096});
  EXPECT_EQ(kept.name, "CRM lookup");
}

TEST(StepConfig, CopiesShareOneValidatedStep) {
  const StepConfig config = StepConfig::build(valid_options());
  const StepConfig copy = config;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_EQ(&copy.data(), &config.data());
  EXPECT_EQ(&copy.options(), &config.options());
}

TEST(StepConfig, DataSplitsTheUrlForSendingAndLogging) {
  const StepConfig config = StepConfig::build(with_url("https://crm.example.com/passthru?key=secret#top"));
  const passthru::detail::StepData& data = config.data();
  EXPECT_EQ(data.base_url, "https://crm.example.com/passthru?key=secret");
  EXPECT_EQ(data.host, "crm.example.com");
  EXPECT_EQ(data.path, "/passthru");
}

TEST(StepConfig, LabelDefaultsToTheHost) {
  const StepConfig config = StepConfig::build(valid_options());
  EXPECT_EQ(config.data().label, "crm.example.com");
}

TEST(StepConfig, LabelIsTheNameWhenGiven) {
  StepOptions options = valid_options();
  options.name = "CRM lookup";
  EXPECT_EQ(StepConfig::build(options).data().label, "CRM lookup");
}

TEST(StepConfig, DataHoldsTheHeaderLinesAndTheRouter) {
  StepOptions options = with_headers({{"X-Api-Key", "s3cret"}, {"X-Tenant", "acme"}});
  options.routes.on_error = "error-applet";
  const StepConfig config = StepConfig::build(options);
  // The library may add lines of its own (e.g. Accept); the step's come through unchanged and in order.
  const std::vector<std::string>& lines = config.data().header_lines;
  const auto api_key = std::find(lines.begin(), lines.end(), "X-Api-Key: s3cret");
  const auto tenant = std::find(lines.begin(), lines.end(), "X-Tenant: acme");
  ASSERT_NE(api_key, lines.end());
  ASSERT_NE(tenant, lines.end());
  EXPECT_LT(api_key, tenant);
  EXPECT_EQ(config.data().router.routes().default_next, "default-applet");
  EXPECT_EQ(config.data().router.routes().on_error, "error-applet");
}

TEST(Method, ToStringNamesTheHttpMethod) {
  EXPECT_STREQ(passthru::to_string(Method::get), "GET");
  EXPECT_STREQ(passthru::to_string(Method::post), "POST");
}

}  // namespace

namespace {

// A trace context belongs to a call, not to a step: a fixed one would put
// every call of the step in one trace.
TEST(StepConfigTrace, RejectsATraceparentOrTracestateHeader) {
  EXPECT_EQ(rejected_field(with_headers({{"X-Api-Key", "k"}, {"Traceparent", "00-x"}})), "headers[1].name");
  EXPECT_EQ(rejected_field(with_headers({{"tracestate", "a=b"}})), "headers[0].name");
}

}  // namespace

namespace {

using passthru::HttpVersion;

StepOptions with_http_version(std::string url, HttpVersion version) {
  StepOptions options = with_url(std::move(url));
  options.http_version = version;
  return options;
}

TEST(StepConfigHttpVersion, IsAutomaticByDefault) {
  EXPECT_EQ(StepOptions().http_version, HttpVersion::automatic);
  EXPECT_NO_THROW(StepConfig::build(with_http_version("http://127.0.0.1:8080/", HttpVersion::automatic)));
  EXPECT_NO_THROW(StepConfig::build(with_http_version("http://127.0.0.1:8080/", HttpVersion::http1_1)));
}

TEST(StepConfigHttpVersion, Http2IsRefusedForPlainHttp) {
  EXPECT_EQ(rejected_field(with_http_version("http://127.0.0.1:8080/", HttpVersion::http2)), "http_version");
}

TEST(StepConfigHttpVersion, Http2OverHttpsNeedsALibcurlWithHttp2) {
  const StepOptions options = with_http_version("https://crm.example.com/", HttpVersion::http2);
  if ((curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2) != 0) {
    EXPECT_NO_THROW(StepConfig::build(options));
  } else {
    EXPECT_EQ(rejected_field(options), "http_version");
  }
}

TEST(StepConfigHttpVersion, RefusesAValueOutsideTheEnum) {
  EXPECT_EQ(rejected_field(with_http_version("https://crm.example.com/", static_cast<HttpVersion>(7))),
            "http_version");
}

}  // namespace

// --- fallback_url, primary_timeout, retries, retry_after_send ---

namespace {

StepOptions with_fallback(std::string url) {
  StepOptions options = valid_options();
  options.fallback_url = std::move(url);
  return options;
}

}  // namespace

TEST(StepConfigAttempts, HasNoFallbackAndNoRetriesByDefault) {
  const StepConfig config = StepConfig::build(valid_options());
  EXPECT_FALSE(config.data().fallback.has_value());
  EXPECT_EQ(config.options().retries, 0);
  EXPECT_FALSE(config.options().retry_after_send);
}

TEST(StepConfigAttempts, KeepsTheFallbackNormalisedWithItsOwnOrigin) {
  const StepConfig config =
      StepConfig::build(with_fallback("https://backup.example.com:8443/a/../passthru#x"));
  ASSERT_TRUE(config.data().fallback.has_value());
  EXPECT_EQ(config.data().fallback->base_url, "https://backup.example.com:8443/passthru");
  EXPECT_EQ(config.data().fallback->origin, "https://backup.example.com:8443");
  EXPECT_EQ(config.data().fallback->host, "backup.example.com:8443");
  EXPECT_EQ(config.data().origin, "https://crm.example.com:443");
}

TEST(StepConfigAttempts, ValidatesTheFallbackLikeTheUrl) {
  EXPECT_EQ(rejected_field(with_fallback("ftp://backup.example.com/")), "fallback_url");
  EXPECT_EQ(rejected_field(with_fallback("/relative")), "fallback_url");
  EXPECT_EQ(rejected_field(with_fallback("https:///path")), "fallback_url");
  EXPECT_EQ(rejected_field(with_fallback("https://backup.example.com/a b")), "fallback_url");
  EXPECT_EQ(rejected_field(with_fallback("http:/backup.example.com/")), "fallback_url");
  EXPECT_EQ(rejected_field(with_fallback("https://backup.example.com/" + std::string(9000, 'a'))),
            "fallback_url");
}

TEST(StepConfigAttempts, RefusesAPlainHttpFallbackUnlessAllowedOrLoopback) {
  EXPECT_EQ(rejected_field(with_fallback("http://backup.example.com/")), "fallback_url");
  EXPECT_EQ(rejected_field(with_fallback("http://127.0.0.1:8080/")), "<accepted>");
  StepOptions options = with_fallback("http://backup.example.com/");
  options.allow_plain_http = true;
  EXPECT_EQ(rejected_field(options), "<accepted>");
}

TEST(StepConfigAttempts, KeepsTheFallbacksUserInfoAndSecretQueryOutOfLogs) {
  StepOptions options = with_fallback("https://bob:hunter2-secret@backup.example.com/p?token=tok-secret-123");
  options.secret_names = {"token"};
  const StepConfig config = StepConfig::build(options);
  const auto& secrets = config.data().secrets;
  EXPECT_NE(std::find(secrets.begin(), secrets.end(), "hunter2-secret"), secrets.end());
  EXPECT_NE(std::find(secrets.begin(), secrets.end(), "tok-secret-123"), secrets.end());
}

TEST(StepConfigAttempts, ErrorsShowTheFallbackWithoutItsPassword) {
  try {
    (void)StepConfig::build(with_fallback("ftp://bob:hunter2-secret@backup.example.com/"));
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "fallback_url");
    EXPECT_EQ(std::string(e.what()).find("hunter2-secret"), std::string::npos) << e.what();
  }
}

TEST(StepConfigAttempts, PrimaryTimeoutDefaultsToHalfTheTimeout) {
  StepOptions options = with_fallback("https://backup.example.com/");
  options.timeout = 3000ms;
  EXPECT_EQ(StepConfig::build(options).data().primary_share(), 1500ms);
  options.primary_timeout = 2000ms;
  EXPECT_EQ(StepConfig::build(options).data().primary_share(), 2000ms);
}

TEST(StepConfigAttempts, PrimaryTimeoutMustBeBelowTheTimeout) {
  StepOptions options = with_fallback("https://backup.example.com/");
  options.timeout = 3000ms;
  options.primary_timeout = 3000ms;
  EXPECT_EQ(rejected_field(options), "primary_timeout");
  options.primary_timeout = -1ms;
  EXPECT_EQ(rejected_field(options), "primary_timeout");
  options.primary_timeout = 2999ms;
  EXPECT_EQ(rejected_field(options), "<accepted>");
}

TEST(StepConfigAttempts, HedgeAfterNeedsAFallbackAndIsBelowTheTimeout) {
  StepOptions options = valid_options();
  options.timeout = 3000ms;
  options.hedge_after = 500ms;
  EXPECT_EQ(rejected_field(options), "hedge_after");  // no fallback_url
  options.fallback_url = "https://backup.example.com/";
  EXPECT_EQ(rejected_field(options), "<accepted>");
  EXPECT_EQ(StepConfig::build(options).data().primary_share(), 500ms);  // when the hedge goes
  options.hedge_after = 3000ms;
  EXPECT_EQ(rejected_field(options), "hedge_after");
  options.hedge_after = -1ms;
  EXPECT_EQ(rejected_field(options), "hedge_after");
  options.hedge_after = 2999ms;
  EXPECT_EQ(rejected_field(options), "<accepted>");
}

TEST(StepConfigAttempts, HedgeAfterAndPrimaryTimeoutExcludeEachOther) {
  StepOptions options = with_fallback("https://backup.example.com/");
  options.timeout = 3000ms;
  options.hedge_after = 500ms;
  options.primary_timeout = 1000ms;
  EXPECT_EQ(rejected_field(options), "hedge_after");
}

TEST(StepConfigAttempts, RetriesAreBetweenZeroAndFive) {
  StepOptions options = valid_options();
  options.retries = -1;
  EXPECT_EQ(rejected_field(options), "retries");
  options.retries = 6;
  EXPECT_EQ(rejected_field(options), "retries");
  options.retries = 5;
  EXPECT_EQ(rejected_field(options), "<accepted>");
}

TEST(StepConfigAttempts, RetryAfterSendIsForGetOnly) {
  StepOptions options = valid_options();
  options.retry_after_send = true;
  EXPECT_EQ(rejected_field(options), "<accepted>");
  options.method = Method::post;
  EXPECT_EQ(rejected_field(options), "retry_after_send");
}

TEST(StepConfigAttempts, Http2RefusesAPlainHttpFallback) {
  if ((curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2) == 0) GTEST_SKIP();
  StepOptions options = with_fallback("http://127.0.0.1:8080/");
  options.http_version = passthru::HttpVersion::http2;
  EXPECT_EQ(rejected_field(options), "fallback_url");
}

// --- connect_timeout, read_timeout, and the url fragment's overrides ---

namespace {

// The message of the ConfigError that build() throws for `url`, or "<accepted>".
std::string url_error(const std::string& url, Method method = Method::get) {
  StepOptions options = with_url(url);
  options.method = method;
  try {
    (void)StepConfig::build(std::move(options));
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "url") << e.what();
    return e.what();
  }
  return "<accepted>";
}

const std::string kUrl = "https://crm.example.com/passthru";

}  // namespace

TEST(StepConfigOverrides, ConnectAndReadTimeoutsAreOffByDefault) {
  const StepConfig config = StepConfig::build(valid_options());
  EXPECT_EQ(config.options().connect_timeout, 0ms);
  EXPECT_EQ(config.options().read_timeout, 0ms);
}

TEST(StepConfigOverrides, ConnectAndReadTimeoutsAreZeroToOneHour) {
  StepOptions options = valid_options();
  options.connect_timeout = -1ms;
  EXPECT_EQ(rejected_field(options), "connect_timeout");
  options.connect_timeout = 3600001ms;
  EXPECT_EQ(rejected_field(options), "connect_timeout");
  options.connect_timeout = 3600000ms;
  options.read_timeout = -1ms;
  EXPECT_EQ(rejected_field(options), "read_timeout");
  options.read_timeout = 3600001ms;
  EXPECT_EQ(rejected_field(options), "read_timeout");
  options.read_timeout = 1ms;
  EXPECT_EQ(rejected_field(options), "<accepted>");
}

TEST(StepConfigOverrides, TheFragmentOverridesTheStepsSettingsAndIsNeverSent) {
  StepOptions options = with_url(kUrl + "?key=abc#ct=2000&rt=5000&tt=8000&rc=2&rp=ct,5xx");
  options.timeout = 20s;
  options.retries = 0;
  options.connect_timeout = 100ms;
  const StepConfig config = StepConfig::build(options);
  EXPECT_EQ(config.options().url, options.url);  // as given
  EXPECT_EQ(config.options().connect_timeout, 2000ms);
  EXPECT_EQ(config.options().read_timeout, 5000ms);
  EXPECT_EQ(config.options().timeout, 8000ms);
  EXPECT_EQ(config.options().retries, 2);
  EXPECT_FALSE(config.options().retry_after_send);
  EXPECT_TRUE(config.data().retry_after_send.server_error);
  EXPECT_FALSE(config.data().retry_after_send.timeout);
  EXPECT_FALSE(config.data().retry_after_send.failure);
  EXPECT_EQ(config.data().base_url, kUrl + "?key=abc");
  EXPECT_EQ(config.data().signed_url, kUrl + "?key=abc");
}

TEST(StepConfigOverrides, KeysLeftOutKeepTheStepsSettings) {
  StepOptions options = with_url(kUrl + "#rc=1");
  options.timeout = 7s;
  options.read_timeout = 300ms;
  const StepConfig config = StepConfig::build(options);
  EXPECT_EQ(config.options().retries, 1);
  EXPECT_EQ(config.options().timeout, 7s);
  EXPECT_EQ(config.options().read_timeout, 300ms);
  EXPECT_EQ(config.options().connect_timeout, 0ms);
}

TEST(StepConfigOverrides, AFragmentWithoutAnEqualsSignIsAnAnchorAsBefore) {
  const StepConfig config = StepConfig::build(with_url(kUrl + "#top"));
  EXPECT_EQ(config.options().timeout, 15s);
  EXPECT_EQ(config.data().base_url, kUrl);
  EXPECT_EQ(url_error(kUrl + "#"), "<accepted>");
}

TEST(StepConfigOverrides, RetryPolicies) {
  const auto policy = [](const std::string& rp) {
    return StepConfig::build(with_url(kUrl + "#rc=1&rp=" + rp)).data().retry_after_send;
  };
  EXPECT_FALSE(policy("ct").any());
  EXPECT_TRUE(policy("rt").timeout);
  EXPECT_FALSE(policy("rt").server_error);
  EXPECT_FALSE(policy("rt").failure);
  const auto both = policy("5xx,rt");
  EXPECT_TRUE(both.server_error && both.timeout && !both.failure);
  const auto all = policy("all");
  EXPECT_TRUE(all.server_error && all.timeout && all.failure);
  EXPECT_TRUE(StepConfig::build(with_url(kUrl + "#rp=all")).options().retry_after_send);
  StepOptions options = valid_options();
  options.retry_after_send = true;
  const auto from_option = StepConfig::build(options).data().retry_after_send;
  EXPECT_TRUE(from_option.server_error && from_option.timeout && from_option.failure);
}

TEST(StepConfigOverrides, RefusesUnknownKeysNamingKeyAndValue) {
  const std::string message = url_error(kUrl + "#ct=100&xt=5");
  EXPECT_NE(message.find("xt=5"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown override"), std::string::npos) << message;
  EXPECT_NE(url_error(kUrl + "#CT=100"), "<accepted>");
}

TEST(StepConfigOverrides, RefusesDuplicates) {
  const std::string message = url_error(kUrl + "#ct=100&ct=200");
  EXPECT_NE(message.find("ct=200"), std::string::npos) << message;
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
}

TEST(StepConfigOverrides, RefusesItemsThatAreNotKeyValue) {
  EXPECT_NE(url_error(kUrl + "#ct=100&top").find("#top"), std::string::npos);
  EXPECT_NE(url_error(kUrl + "#ct=100&"), "<accepted>");
}

TEST(StepConfigOverrides, RefusesNonNumbers) {
  for (const char* fragment :
       {"ct=", "ct=abc", "rt=1.5", "tt=-300", "tt=+300", "rc=two", "ct=2000ms", "tt=99999999999999999999"}) {
    const std::string message = url_error(kUrl + "#" + fragment);
    EXPECT_NE(message.find(fragment), std::string::npos) << fragment << ": " << message;
  }
}

TEST(StepConfigOverrides, RefusesOutOfRangeValues) {
  for (const char* fragment : {"ct=0", "rt=0", "tt=0", "ct=3600001", "rt=3600001", "tt=3600001", "rc=6"}) {
    const std::string message = url_error(kUrl + "#" + fragment);
    EXPECT_NE(message.find(fragment), std::string::npos) << fragment << ": " << message;
  }
  EXPECT_EQ(url_error(kUrl + "#ct=3600000&rt=3600000&tt=3600000&rc=5"), "<accepted>");
  EXPECT_EQ(url_error(kUrl + "#rc=0&tt=1&ct=1&rt=1"), "<accepted>");
}

TEST(StepConfigOverrides, RefusesUnknownAndFourXxRetryPolicies) {
  EXPECT_NE(url_error(kUrl + "#rp=4xx").find("4xx"), std::string::npos);
  EXPECT_NE(url_error(kUrl + "#rp=ct,dns").find("'dns'"), std::string::npos);
  EXPECT_NE(url_error(kUrl + "#rp="), "<accepted>");
  EXPECT_NE(url_error(kUrl + "#rp=ct,"), "<accepted>");
}

TEST(StepConfigOverrides, RetryingAfterSendingIsForGetOnly) {
  EXPECT_EQ(url_error(kUrl + "#rp=ct", Method::post), "<accepted>");
  for (const char* rp : {"5xx", "rt", "all", "ct,5xx"}) {
    const std::string message = url_error(kUrl + "#rp=" + rp, Method::post);
    EXPECT_NE(message.find(std::string("#rp=") + rp), std::string::npos) << message;
    EXPECT_NE(message.find("GET"), std::string::npos) << message;
  }
}

TEST(StepConfigOverrides, AnOverriddenTotalIsCheckedAgainstThePrimaryTimeout) {
  StepOptions options = with_fallback("https://backup.example.com/passthru");
  options.url = kUrl + "#tt=1000";
  options.primary_timeout = 2000ms;
  EXPECT_EQ(rejected_field(options), "primary_timeout");
  options.primary_timeout = 999ms;
  EXPECT_EQ(rejected_field(options), "<accepted>");
}

TEST(StepConfigOverrides, AreReadFromTheUrlOnlyNotTheFallback) {
  EXPECT_EQ(rejected_field(with_fallback("https://backup.example.com/passthru#rc=2")), "fallback_url");
  EXPECT_EQ(rejected_field(with_fallback("https://backup.example.com/passthru#top")), "<accepted>");
}

TEST(StepConfigOverrides, LongValuesAreShortenedInTheMessage) {
  const std::string message = url_error(kUrl + "#ct=" + std::string(500, '9'));
  EXPECT_LT(message.size(), 200u) << message;
}
