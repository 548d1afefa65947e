// Hostile input at the edges: header and URL injection refused when a step is
// built, size limits on URLs, headers and bodies, byte-exact encoding of
// whatever a call carries, and the plain-http policy.
#include "request_builder.hpp"
#include "step_data.hpp"

#include <passthru/call_context.hpp>
#include <passthru/step_config.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using passthru::CallContext;
using passthru::ConfigError;
using passthru::Header;
using passthru::Method;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru::detail::build_request;
using passthru::detail::BuiltRequest;
using passthru::detail::InvalidCall;
using passthru::detail::kMaxHeaderValueBytes;
using passthru::detail::kMaxPostBodyBytes;
using passthru::detail::kMaxUrlBytes;

constexpr std::string_view kNow = "2024-01-15T10:30:00+05:30";

StepOptions valid_options(std::string url = "https://crm.example.com/passthru") {
  StepOptions options;
  options.url = std::move(url);
  options.routes.default_next = "default-applet";
  return options;
}

struct Rejection {
  std::string field;    // "<accepted>" when build() succeeded
  std::string message;  // what()
};

Rejection build_result(StepOptions options) {
  try {
    (void)StepConfig::build(std::move(options));
  } catch (const ConfigError& e) {
    return {e.field(), e.what()};
  }
  return {"<accepted>", ""};
}

Rejection with_header(std::string name, std::string value, std::size_t index = 0) {
  StepOptions options = valid_options();
  for (std::size_t i = 0; i < index; ++i) options.headers.push_back({"X-Fine-" + std::to_string(i), "ok"});
  options.headers.push_back({std::move(name), std::move(value)});
  return build_result(std::move(options));
}

Rejection with_url(std::string url) { return build_result(valid_options(std::move(url))); }

CallContext plain_call() {
  CallContext call;
  call.call_sid = "abc123";
  call.call_from = "+919876543210";
  call.call_to = "+914412345678";
  call.current_time = std::string(kNow);
  return call;
}

// --- header names ---

TEST(HostileInput, HeaderNamesWithSeparatorsOrControlBytesAreRefusedNamingTheField) {
  const std::vector<std::string> bad_names = {"X-Bad\r",
                                              "X-Bad\n",
                                              "X\r\nInjected: 1",
                                              std::string("X-Bad\0Name", 10),
                                              "X Bad",
                                              "X-Bad:",
                                              "X:Bad",
                                              "\tX-Bad",
                                              "X-Bad\x7f",
                                              "X-B\xC3\xA9",
                                              "X-Bad\"",
                                              "X-(Bad)",
                                              "X-Bad/1",
                                              "X-Bad[1]",
                                              "X-Bad{}",
                                              "X-Bad;",
                                              "X-Bad=1",
                                              "X-Bad,Y",
                                              "X-Bad@",
                                              "X-Bad?",
                                              "X-Bad\\",
                                              ":authority",
                                              " ",
                                              "\x1b[31m"};
  for (const std::string& name : bad_names) {
    const Rejection r = with_header(name, "value", 2);
    EXPECT_EQ(r.field, "headers[2].name") << "name '" << name << "' gave " << r.field;
  }
}

TEST(HostileInput, HeaderNamesMadeOfTokenCharactersAreAccepted) {
  EXPECT_EQ(with_header("X-Api-Key", "v").field, "<accepted>");
  EXPECT_EQ(with_header("!#$%&'*+-.^_`|~09AZaz", "v").field, "<accepted>");
}

// --- header values ---

TEST(HostileInput, HeaderValuesWithCrLfOrNulAreRefused) {
  const std::vector<std::string> bad_values = {"a\rb",
                                               "a\nb",
                                               std::string("a\0b", 3),
                                               "v\r\nX-Injected: 1",
                                               "\r\n\r\nGET /smuggled HTTP/1.1",
                                               "trailing\n",
                                               "\rleading",
                                               std::string(1, '\0')};
  for (const std::string& value : bad_values) {
    const Rejection r = with_header("X-Value", value, 1);
    EXPECT_EQ(r.field, "headers[1].value") << r.message;
    EXPECT_NE(r.message.find("CR, LF or NUL"), std::string::npos) << r.message;
  }
}

TEST(HostileInput, TheRefusalOfAHeaderValueDoesNotQuoteIt) {
  const Rejection r = with_header("X-Api-Key", "S3cr3t-Value-77\r\nX-Injected: 1");
  EXPECT_EQ(r.field, "headers[0].value");
  EXPECT_EQ(r.message.find("S3cr3t-Value-77"), std::string::npos) << r.message;
}

TEST(HostileInput, HeaderValuesUpTo8192BytesAreAcceptedAndLongerRefused) {
  ASSERT_EQ(kMaxHeaderValueBytes, 8192u);
  EXPECT_EQ(with_header("X-Big", std::string(8192, 'v')).field, "<accepted>");
  const Rejection r = with_header("X-Big", std::string(8193, 'v'));
  EXPECT_EQ(r.field, "headers[0].value");
  EXPECT_NE(r.message.find("8193"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("8192"), std::string::npos) << r.message;
  EXPECT_EQ(with_header("X-Huge", std::string(1 << 20, 'v')).field, "headers[0].value");
}

TEST(HostileInput, HeaderValuesWithTabsAndHighBytesAreAccepted) {
  EXPECT_EQ(with_header("X-Value", "a\tb c").field, "<accepted>");
  EXPECT_EQ(with_header("X-Value", "caf\xC3\xA9 \xFF").field, "<accepted>");
}

// --- URLs ---

TEST(HostileInput, UrlsWithSpacesOrControlBytesAreRefused) {
  const std::vector<std::string> bad_urls = {
      "https://crm.example.com/pass thru",
      "https://crm.example.com/pass\tthru",
      "https://crm.example.com/pass\rthru",
      "https://crm.example.com/pass\nthru",
      "https://crm.example.com/p\r\nHost: evil.example",
      std::string("https://crm.example.com/pass\0thru", 33),
      std::string("https://crm.example.com\0.evil.example/", 38),
      "https://crm.example.com/pass\x7fthru",
      "https://crm.example.com/pass\x1bthru",
      " https://crm.example.com/",
      "https://crm.example.com/ ",
      "https://crm .example.com/",
  };
  for (const std::string& url : bad_urls) {
    const Rejection r = with_url(url);
    EXPECT_EQ(r.field, "url") << "accepted: " << url;
    EXPECT_NE(r.message.find("spaces or control characters"), std::string::npos) << r.message;
  }
}

TEST(HostileInput, UrlsUpTo8192BytesAreAcceptedAndLongerRefused) {
  ASSERT_EQ(kMaxUrlBytes, 8192u);
  const std::string base = "https://crm.example.com/";
  const std::string exact = base + std::string(8192 - base.size(), 'p');
  ASSERT_EQ(exact.size(), 8192u);
  EXPECT_EQ(with_url(exact).field, "<accepted>");
  const Rejection r = with_url(exact + "p");
  EXPECT_EQ(r.field, "url");
  EXPECT_NE(r.message.find("8193"), std::string::npos) << r.message;
  EXPECT_EQ(with_url(base + std::string(1 << 20, 'p')).field, "url");
}

TEST(HostileInput, AUrlWithUserInfoIsAccepted) {
  const StepConfig step = StepConfig::build(valid_options("https://alice:S3cr3t@crm.example.com/passthru"));
  EXPECT_EQ(step.data().base_url, "https://alice:S3cr3t@crm.example.com/passthru");
  EXPECT_EQ(step.data().signed_url, "https://crm.example.com/passthru");
  // The label and the log path carry no credentials.
  EXPECT_EQ(step.data().label, "crm.example.com");
  EXPECT_EQ(step.data().path, "/passthru");
}

// --- call contexts ---

TEST(HostileInput, NonUtf8AndNulBytesInTheCallArePercentEncodedByteForByte) {
  const StepConfig step = StepConfig::build(valid_options());
  CallContext call = plain_call();
  call.call_sid = std::string("CA\0\xFF\r\n", 6);
  call.call_from = "\xC3\x28\xA0\xA1\xE2\x82";  // invalid UTF-8 sequences
  call.custom = {{std::string("n\0\x80", 3), std::string("v\0\xFE\xFF&=#", 7)}};
  const BuiltRequest request = build_request(step.data(), call, kNow);
  EXPECT_NE(request.url.find("?CallSid=CA%00%FF%0D%0A&"), std::string::npos) << request.url;
  EXPECT_NE(request.url.find("&CallFrom=%C3%28%A0%A1%E2%82&"), std::string::npos) << request.url;
  EXPECT_NE(request.url.find("&n%00%80=v%00%FE%FF%26%3D%23"), std::string::npos) << request.url;
  // Only URL-safe bytes went out.
  for (const char c : request.url) {
    const auto byte = static_cast<unsigned char>(c);
    EXPECT_TRUE(byte > 0x20 && byte < 0x7F) << "raw byte " << static_cast<int>(byte) << " in the URL";
  }
}

TEST(HostileInput, NonUtf8AndNulBytesInAPostBodyArePercentEncodedByteForByte) {
  StepOptions options = valid_options();
  options.method = Method::post;
  const StepConfig step = StepConfig::build(options);
  CallContext call = plain_call();
  call.custom = {{"blob", std::string("\0\x01\x7F\x80\xFF", 5)}};
  const BuiltRequest request = build_request(step.data(), call, kNow);
  const std::string tail = "&blob=%00%01%7F%80%FF";
  ASSERT_GE(request.body.size(), tail.size());
  EXPECT_EQ(request.body.substr(request.body.size() - tail.size()), tail) << request.body;
}

// The GET URL for `call` with one custom parameter "blob" of `n` bytes of 'a'.
CallContext call_with_blob(std::size_t n) {
  CallContext call = plain_call();
  call.custom = {{"blob", std::string(n, 'a')}};
  return call;
}

TEST(HostileInput, AGetUrlOfExactly8192BytesIsBuiltAndOneByteMoreRefusedSuggestingPost) {
  const StepConfig step = StepConfig::build(valid_options());
  const std::size_t empty_size = build_request(step.data(), call_with_blob(0), kNow).url.size();
  ASSERT_LT(empty_size, kMaxUrlBytes);
  const std::size_t fits = kMaxUrlBytes - empty_size;
  EXPECT_EQ(build_request(step.data(), call_with_blob(fits), kNow).url.size(), kMaxUrlBytes);
  try {
    (void)build_request(step.data(), call_with_blob(fits + 1), kNow);
    ADD_FAILURE() << "a URL of 8193 bytes was built";
  } catch (const InvalidCall& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("POST"), std::string::npos) << what;
    EXPECT_NE(what.find("8193"), std::string::npos) << what;
  }
}

TEST(HostileInput, EncodingCountsTowardsTheGetLimit) {
  // 3000 bytes that each become %XX: 9000 bytes on the wire.
  const StepConfig step = StepConfig::build(valid_options());
  CallContext call = plain_call();
  call.custom = {{"blob", std::string(3000, '\xFF')}};
  EXPECT_THROW((void)build_request(step.data(), call, kNow), InvalidCall);
}

TEST(HostileInput, AUserInfoCountsTowardsTheGetLimitToo) {
  const StepConfig plain = StepConfig::build(valid_options());
  const StepConfig with_user = StepConfig::build(valid_options("https://alice:pw@crm.example.com/passthru"));
  const std::size_t fits = kMaxUrlBytes - build_request(plain.data(), call_with_blob(0), kNow).url.size();
  EXPECT_NO_THROW((void)build_request(plain.data(), call_with_blob(fits), kNow));
  EXPECT_THROW((void)build_request(with_user.data(), call_with_blob(fits), kNow), InvalidCall);
}

TEST(HostileInput, APostCarriesWhatAGetCannot) {
  StepOptions options = valid_options();
  options.method = Method::post;
  const StepConfig step = StepConfig::build(options);
  const BuiltRequest request = build_request(step.data(), call_with_blob(100000), kNow);
  EXPECT_GT(request.body.size(), 100000u);
  EXPECT_EQ(request.url, "https://crm.example.com/passthru");
}

TEST(HostileInput, APostBodyOfExactlyOneMebibyteIsBuiltAndOneByteMoreRefused) {
  ASSERT_EQ(kMaxPostBodyBytes, 1024u * 1024u);
  StepOptions options = valid_options();
  options.method = Method::post;
  const StepConfig step = StepConfig::build(options);
  const std::size_t empty_size = build_request(step.data(), call_with_blob(0), kNow).body.size();
  const std::size_t fits = kMaxPostBodyBytes - empty_size;
  EXPECT_EQ(build_request(step.data(), call_with_blob(fits), kNow).body.size(), kMaxPostBodyBytes);
  try {
    (void)build_request(step.data(), call_with_blob(fits + 1), kNow);
    ADD_FAILURE() << "a POST body over 1 MiB was built";
  } catch (const InvalidCall& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find(std::to_string(kMaxPostBodyBytes + 1)), std::string::npos) << what;
  }
  EXPECT_THROW((void)build_request(step.data(), call_with_blob(4 * kMaxPostBodyBytes), kNow), InvalidCall);
}

TEST(HostileInput, ACustomParameterCannotImpersonateAStandardOne) {
  const StepConfig step = StepConfig::build(valid_options());
  for (const char* name :
       {"CallSid", "CallFrom", "CallTo", "Direction", "CurrentTime", "DialWhomNumber", "digits"}) {
    CallContext call = plain_call();
    call.custom = {{name, "forged"}};
    EXPECT_THROW((void)build_request(step.data(), call, kNow), InvalidCall) << name;
  }
  // Encoded look-alikes are separate names and are sent encoded, never merged.
  CallContext call = plain_call();
  call.custom = {{"CallSid ", "x"}, {"Call%53id", "y"}, {"&CallSid", "z"}};
  const BuiltRequest request = build_request(step.data(), call, kNow);
  EXPECT_NE(request.url.find("&CallSid%20=x&Call%2553id=y&%26CallSid=z"), std::string::npos) << request.url;
}

// --- plain http:// ---

TEST(HostileInput, PlainHttpToANonLoopbackHostNeedsAllowPlainHttp) {
  for (const char* url :
       {"http://example.com/", "HTTP://example.com/", "http://10.0.0.1/", "http://0.0.0.0:1/",
        "http://169.254.169.254/latest/meta-data/", "http://[fd00::1]:1/", "http://localhost.:1/",
        "http://localhost.example.com/", "http://127.0.0.1.example.com/", "http://[::127.0.0.1]:1/"}) {
    const Rejection r = with_url(url);
    EXPECT_EQ(r.field, "url") << url;
    EXPECT_NE(r.message.find("allow_plain_http"), std::string::npos) << r.message;

    StepOptions allowed = valid_options(url);
    allowed.allow_plain_http = true;
    EXPECT_EQ(build_result(allowed).field, "<accepted>") << url;
  }
}

TEST(HostileInput, PlainHttpToLoopbackIsAcceptedWithoutAllowPlainHttp) {
  for (const char* url :
       {"http://localhost:1/", "http://LocalHost:1/", "http://127.0.0.2:1/", "http://127.0.0.1/",
        "http://127.255.255.254:8080/x", "http://[::1]:1/", "http://127.1:1/", "http://2130706433:1/",
        "http://0x7f.0.0.1:1/", "http://[::ffff:127.0.0.1]:1/"}) {
    EXPECT_EQ(with_url(url).field, "<accepted>") << url;
  }
}

TEST(HostileInput, HttpsNeedsNoPermission) {
  EXPECT_EQ(with_url("https://example.com/").field, "<accepted>");
  EXPECT_EQ(with_url("https://10.0.0.1/").field, "<accepted>");
}

TEST(HostileInput, HeaderValuesWithOtherControlBytesAreRefused) {
  for (const char* value : {"a\x1b[31mb", "a\x01", "a\x7f", "a\x0b"}) {
    EXPECT_EQ(with_header("X-Value", value).field, "headers[0].value") << value;
  }
}

}  // namespace
