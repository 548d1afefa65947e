// Signed requests: the canonical form and HMAC against independently computed
// vectors, every verify_signature() status, ReplayGuard, and the validation of
// StepOptions::signing_keys.
#include <passthru/signature.hpp>
#include <passthru/step_config.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace {

using passthru::ReplayGuard;
using passthru::SignatureStatus;
using passthru::SignedRequest;
using passthru::VerifyOptions;
using std::chrono::seconds;
using std::chrono::system_clock;

// --- known answers ---
//
// Computed outside the library, with these exact commands (one line each):
/*
python3 -c 'import hmac,hashlib,base64; key=b"passthru-test-key-0123456789abcdef";
body=b"CallSid=abc123def456&CallFrom=%2B919876543210&digits=1234";
c=b"v1\n5f2b8e1c9a7d4e3f8b6a1c2d3e4f5a6b\n1705309200\nPOST\nhttps://crm.example.com/passthru?tenant=7\n"+hashlib.sha256(body).hexdigest().encode();
print(hashlib.sha256(body).hexdigest());
print("v1,"+base64.b64encode(hmac.new(key,c,hashlib.sha256).digest()).decode())'

printf 'v1\n5f2b8e1c9a7d4e3f8b6a1c2d3e4f5a6b\n1705309200\nPOST\nhttps://crm.example.com/passthru?tenant=7\n%s'
"$(printf 'CallSid=abc123def456&CallFrom=%%2B919876543210&digits=1234' | openssl dgst -sha256 -r | cut -d' '
-f1)" | openssl dgst -sha256 -hmac 'passthru-test-key-0123456789abcdef' -binary | base64

python3 -c 'import hmac,hashlib,base64; key=b"passthru-test-key-0123456789abcdef";
c=b"v1\n00112233445566778899aabbccddeeff\n1705309200\nGET\nhttp://127.0.0.1:8080/hook?CallSid=abc123&CallFrom=%2B919876543210\n"+hashlib.sha256(b"").hexdigest().encode();
print("v1,"+base64.b64encode(hmac.new(key,c,hashlib.sha256).digest()).decode())'
*/
// The first prints the body's SHA-256 and the POST signature, the second (OpenSSL's
// command line) the same signature without "v1,", the third the GET signature.

const std::string kKey = "passthru-test-key-0123456789abcdef";  // 34 bytes
const std::string kOtherKey = "another-key-of-at-least-32-bytes-long";
const std::string kId = "5f2b8e1c9a7d4e3f8b6a1c2d3e4f5a6b";
const std::string kTimestamp = "1705309200";  // 2024-01-15T09:00:00Z
const std::string kUrl = "https://crm.example.com/passthru?tenant=7";
const std::string kBody = "CallSid=abc123def456&CallFrom=%2B919876543210&digits=1234";
const std::string kBodySha256 = "07272f993b6b4fc583149e98aecd6a88bcab48702d4c23edc993a1105f9b5563";
const std::string kSignature = "v1,/u5hMH6EpPwhOQDhlIn5bBqlXXjn4qwe+5Hgq6PbMas=";
const system_clock::time_point kSignedAt = system_clock::time_point(seconds(1705309200));

// The vectors of examples/verify_signature.py's self-test: the Python
// verifier in docs/SECURITY.md and the library agree on them.
TEST(SignatureKnownAnswer, MatchesThePythonVerifiersSelfTest) {
  const std::string key = "an-example-signing-key-of-32-bytes!!";
  EXPECT_EQ(
      passthru::sign_canonical(
          key, passthru::canonical_form(
                   "GET", "https://crm.example.com/passthru?CallSid=CA123&CallFrom=%2B15551230000&digits=42",
                   "0123456789abcdef0123456789abcdef", "1764068400", "")),
      "v1,pGVFgUjJFB4Q0nalTQknJsgRm+DC+iNIL/rx86gYbVI=");
  EXPECT_EQ(passthru::sign_canonical(key, passthru::canonical_form("POST", "https://crm.example.com/passthru",
                                                                   "fedcba9876543210fedcba9876543210",
                                                                   "1764068400", "CallSid=CA123&digits=42")),
            "v1,QQVzaJbXCFdRz0p1mznSEGkU8Sctxm8MiNEreqYFaaI=");
}

TEST(SignatureCanonicalForm, IsSixLinesWithTheBodyDigestAndNoTrailingNewline) {
  EXPECT_EQ(passthru::canonical_form("POST", kUrl, kId, kTimestamp, kBody),
            "v1\n" + kId + "\n" + kTimestamp + "\nPOST\n" + kUrl + "\n" + kBodySha256);
}

TEST(SignatureCanonicalForm, DigestsTheEmptyBodyOfAGet) {
  EXPECT_EQ(passthru::canonical_form("GET", "http://h/x", "ab", "1", ""),
            "v1\nab\n1\nGET\nhttp://h/x\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SignatureKnownAnswer, PostMatchesPythonAndOpenssl) {
  const std::string canonical = passthru::canonical_form("POST", kUrl, kId, kTimestamp, kBody);
  EXPECT_EQ(passthru::sign_canonical(kKey, canonical), kSignature);
}

TEST(SignatureKnownAnswer, GetMatchesPython) {
  const std::string canonical =
      passthru::canonical_form("GET", "http://127.0.0.1:8080/hook?CallSid=abc123&CallFrom=%2B919876543210",
                               "00112233445566778899aabbccddeeff", kTimestamp, "");
  EXPECT_EQ(passthru::sign_canonical(kKey, canonical), "v1,DgqIVFGjkObqBbw8AplRA1IuHWUt2DioYyHkFN9EiOM=");
}

// --- verify_signature ---

// The known-answer request, and options that accept it at the moment it was signed.
struct Fixture {
  std::string method = "POST";
  std::string url = kUrl;
  std::string body = kBody;
  std::string id = kId;
  std::string timestamp = kTimestamp;
  std::string signature = kSignature;
  VerifyOptions options;

  Fixture() {
    options.keys = {kKey};
    options.now = kSignedAt;
  }

  SignatureStatus verify() const {
    return passthru::verify_signature(SignedRequest{method, url, body, id, timestamp, signature}, options);
  }
};

TEST(SignatureVerify, AcceptsTheKnownAnswer) { EXPECT_EQ(Fixture().verify(), SignatureStatus::valid); }

TEST(SignatureVerify, EachEmptyHeaderIsMissing) {
  Fixture no_id;
  no_id.id.clear();
  EXPECT_EQ(no_id.verify(), SignatureStatus::missing);
  Fixture no_timestamp;
  no_timestamp.timestamp.clear();
  EXPECT_EQ(no_timestamp.verify(), SignatureStatus::missing);
  Fixture no_signature;
  no_signature.signature.clear();
  EXPECT_EQ(no_signature.verify(), SignatureStatus::missing);
}

TEST(SignatureVerify, NonHexIdIsMalformed) {
  for (const char* id : {"5f2b8e1c9a7d4e3f8b6a1c2d3e4f5a6g", "5f2b 8e1c", "id=1", "5f2b8e1c\n"}) {
    Fixture f;
    f.id = id;
    EXPECT_EQ(f.verify(), SignatureStatus::malformed) << id;
  }
}

TEST(SignatureVerify, NonNumericOrNegativeTimestampIsMalformed) {
  for (const char* timestamp : {"abc", "-1705309200", "-1", "1705309200.5", "1705309200 ", " 1705309200",
                                "+1705309200", "0x65a4f0d0", "99999999999999999999999"}) {
    Fixture f;
    f.timestamp = timestamp;
    EXPECT_EQ(f.verify(), SignatureStatus::malformed) << timestamp;
  }
}

TEST(SignatureVerify, SignatureWithoutAV1EntryIsMalformed) {
  for (const char* signature :
       {"v2,abc", "/u5hMH6EpPwhOQDhlIn5bBqlXXjn4qwe+5Hgq6PbMas=", "   ", "V1,abc", "v1"}) {
    Fixture f;
    f.signature = signature;
    EXPECT_EQ(f.verify(), SignatureStatus::malformed) << signature;
  }
}

TEST(SignatureVerify, TimestampBeyondTheToleranceEitherWayIsOutsideTheWindow) {
  Fixture late;
  late.options.now = kSignedAt + seconds(301);
  EXPECT_EQ(late.verify(), SignatureStatus::outside_window);
  Fixture early;  // the sender's clock is ahead
  early.options.now = kSignedAt - seconds(301);
  EXPECT_EQ(early.verify(), SignatureStatus::outside_window);
  Fixture custom;
  custom.options.tolerance = seconds(10);
  custom.options.now = kSignedAt + seconds(11);
  EXPECT_EQ(custom.verify(), SignatureStatus::outside_window);
}

TEST(SignatureVerify, TimestampExactlyAtTheToleranceIsValid) {
  Fixture late;
  late.options.now = kSignedAt + seconds(300);
  EXPECT_EQ(late.verify(), SignatureStatus::valid);
  Fixture early;
  early.options.now = kSignedAt - seconds(300);
  EXPECT_EQ(early.verify(), SignatureStatus::valid);
}

TEST(SignatureVerify, WindowIsCheckedBeforeTheSignature) {
  Fixture f;
  f.options.now = kSignedAt + seconds(3600);
  f.signature = "v1,forged";
  EXPECT_EQ(f.verify(), SignatureStatus::outside_window);
}

TEST(SignatureVerify, DefaultNowIsTheSystemClock) {
  // Signed 2024-01-15: far outside any window today, with the default `now`.
  Fixture f;
  f.options.now = {};
  EXPECT_EQ(f.verify(), SignatureStatus::outside_window);

  // Signed a second ago: valid.
  const std::string now =
      std::to_string(std::chrono::duration_cast<seconds>(system_clock::now().time_since_epoch()).count() - 1);
  Fixture fresh;
  fresh.options.now = {};
  fresh.timestamp = now;
  fresh.signature = passthru::sign_canonical(kKey, passthru::canonical_form("POST", kUrl, kId, now, kBody));
  EXPECT_EQ(fresh.verify(), SignatureStatus::valid);
}

TEST(SignatureVerify, AnyChangedPartIsAMismatch) {
  Fixture method;
  method.method = "GET";
  EXPECT_EQ(method.verify(), SignatureStatus::mismatch);
  Fixture url;
  url.url = "https://crm.example.com/passthru?tenant=8";
  EXPECT_EQ(url.verify(), SignatureStatus::mismatch);
  Fixture origin;
  origin.url = "https://evil.example.com/passthru?tenant=7";
  EXPECT_EQ(origin.verify(), SignatureStatus::mismatch);
  Fixture body;
  body.body = "CallSid=abc123def456&CallFrom=%2B919876543210&digits=9999";
  EXPECT_EQ(body.verify(), SignatureStatus::mismatch);
  Fixture id;
  id.id = "5f2b8e1c9a7d4e3f8b6a1c2d3e4f5a6c";
  EXPECT_EQ(id.verify(), SignatureStatus::mismatch);
  Fixture timestamp;
  timestamp.timestamp = "1705309201";
  EXPECT_EQ(timestamp.verify(), SignatureStatus::mismatch);
  Fixture truncated;
  truncated.signature = kSignature.substr(0, kSignature.size() - 1);
  EXPECT_EQ(truncated.verify(), SignatureStatus::mismatch);
}

TEST(SignatureVerify, WrongKeyOrNoKeysIsAMismatch) {
  Fixture wrong;
  wrong.options.keys = {kOtherKey};
  EXPECT_EQ(wrong.verify(), SignatureStatus::mismatch);
  Fixture none;
  none.options.keys.clear();
  EXPECT_EQ(none.verify(), SignatureStatus::mismatch);
}

TEST(SignatureVerify, UnknownVersionEntriesAreIgnored) {
  Fixture f;
  f.signature = "v2,xxx " + kSignature;
  EXPECT_EQ(f.verify(), SignatureStatus::valid);
  f.signature = kSignature + " v2,xxx";
  EXPECT_EQ(f.verify(), SignatureStatus::valid);
  f.signature = "v2,xxx v1,notthesignature";
  EXPECT_EQ(f.verify(), SignatureStatus::mismatch);
}

TEST(SignatureVerify, RotationAcceptsAnyEntryUnderAnyKey) {
  const std::string canonical = passthru::canonical_form("POST", kUrl, kId, kTimestamp, kBody);
  const std::string by_other = passthru::sign_canonical(kOtherKey, canonical);

  Fixture two_signatures;  // a step rotating from kOtherKey to kKey
  two_signatures.signature = by_other + " " + kSignature;
  EXPECT_EQ(two_signatures.verify(), SignatureStatus::valid);

  Fixture two_keys;  // a server accepting both while rotating
  two_keys.signature = by_other;
  two_keys.options.keys = {kKey, kOtherKey};
  EXPECT_EQ(two_keys.verify(), SignatureStatus::valid);
}

TEST(SignatureStatusNames, EachStatusHasItsName) {
  EXPECT_STREQ(passthru::to_string(SignatureStatus::valid), "valid");
  EXPECT_STREQ(passthru::to_string(SignatureStatus::missing), "missing");
  EXPECT_STREQ(passthru::to_string(SignatureStatus::malformed), "malformed");
  EXPECT_STREQ(passthru::to_string(SignatureStatus::outside_window), "outside window");
  EXPECT_STREQ(passthru::to_string(SignatureStatus::mismatch), "mismatch");
}

// --- ReplayGuard ---

TEST(ReplayGuard, FirstUseOnlyOnceWithinTheWindow) {
  ReplayGuard guard(seconds(600));
  const system_clock::time_point t0 = kSignedAt;
  EXPECT_TRUE(guard.first_use(kId, t0));
  EXPECT_FALSE(guard.first_use(kId, t0));
  EXPECT_FALSE(guard.first_use(kId, t0 + seconds(599)));
  EXPECT_TRUE(guard.first_use("00112233445566778899aabbccddeeff", t0 + seconds(1)));
  EXPECT_EQ(guard.size(), 2u);
}

TEST(ReplayGuard, FirstUseAgainAfterTheWindowPasses) {
  ReplayGuard guard(seconds(600));
  const system_clock::time_point t0 = kSignedAt;
  EXPECT_TRUE(guard.first_use(kId, t0));
  EXPECT_TRUE(guard.first_use(kId, t0 + seconds(600)));
  // Remembered again from then on.
  EXPECT_FALSE(guard.first_use(kId, t0 + seconds(601)));
}

TEST(ReplayGuard, SweepForgetsExpiredIds) {
  ReplayGuard guard(seconds(600));
  const system_clock::time_point t0 = kSignedAt;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(guard.first_use("id-" + std::to_string(i), t0));
  EXPECT_EQ(guard.size(), 100u);
  // Past the window: the next call sweeps the 100 expired ids and keeps only its own.
  EXPECT_TRUE(guard.first_use("later", t0 + seconds(601)));
  EXPECT_EQ(guard.size(), 1u);
}

TEST(ReplayGuard, SweepKeepsIdsStillInTheirWindow) {
  ReplayGuard guard(seconds(600));
  const system_clock::time_point t0 = kSignedAt;
  EXPECT_TRUE(guard.first_use("old", t0));
  EXPECT_TRUE(guard.first_use("recent", t0 + seconds(300)));
  EXPECT_TRUE(guard.first_use("now", t0 + seconds(650)));
  EXPECT_EQ(guard.size(), 2u);  // "old" swept, "recent" kept
  EXPECT_FALSE(guard.first_use("recent", t0 + seconds(651)));
}

// --- StepOptions::signing_keys ---

passthru::StepOptions signed_step(std::vector<std::string> keys) {
  passthru::StepOptions options;
  options.url = "https://crm.example.com/passthru";
  options.routes.default_next = "default-applet";
  options.signing_keys = std::move(keys);
  return options;
}

std::string rejected_field(passthru::StepOptions options) {
  try {
    (void)passthru::StepConfig::build(std::move(options));
  } catch (const passthru::ConfigError& e) {
    return e.field();
  }
  return "<accepted>";
}

TEST(SignatureStepConfig, RejectsAKeyShorterThan32Bytes) {
  EXPECT_EQ(rejected_field(signed_step({std::string(31, 'k')})), "signing_keys[0]");
  EXPECT_EQ(rejected_field(signed_step({std::string(32, 'k'), ""})), "signing_keys[1]");
}

TEST(SignatureStepConfig, RejectsThreeKeys) {
  EXPECT_EQ(rejected_field(signed_step({kKey, kOtherKey, std::string(40, 'k')})), "signing_keys");
}

TEST(SignatureStepConfig, AcceptsOneOrTwoKeysOfAtLeast32Bytes) {
  EXPECT_EQ(rejected_field(signed_step({std::string(32, 'k')})), "<accepted>");
  EXPECT_EQ(rejected_field(signed_step({kKey, kOtherKey})), "<accepted>");
  EXPECT_EQ(rejected_field(signed_step({})), "<accepted>");
}

TEST(SignatureStepConfig, KeysNeverAppearInTheError) {
  const std::string short_key = "short-secret-key-value";
  try {
    (void)passthru::StepConfig::build(signed_step({short_key}));
    FAIL() << "accepted a short key";
  } catch (const passthru::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find(short_key), std::string::npos) << e.what();
  }
}

}  // namespace
