// Signed requests end to end: the client signs, the customer server of
// examples/signed_webhook_server.hpp verifies, and tampered, replayed, stale
// or wrongly keyed requests are refused before the customer's handler runs.
#include "../../examples/signed_webhook_server.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using passthru::Method;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using std::chrono::seconds;

const std::string kKey = "signing-key-one-0123456789abcdefghij";
const std::string kNewKey = "signing-key-two-0123456789abcdefghij";
const std::string kOtherKey = "some-other-tenants-key-0123456789abc";

// A request as the verifying server received it.
struct Captured {
  std::string method;
  std::string target;  // raw request target, "/hook?a=1"
  std::string body;
  std::string content_type;
  std::string id;
  std::string timestamp;
  std::string signature;
};

// What the server answered to a request, recorded before the answer is sent.
struct Answer {
  std::string target;
  int status = 0;
  std::string body;
};

// An httplib server on 127.0.0.1:0 serving GET and POST /hook through
// install_verified_handler(); its handler answers "vip-connect" and records
// every request that reached it.
class VerifyingServer {
 public:
  explicit VerifyingServer(std::vector<std::string> keys) {
    http_.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    http_.set_tcp_nodelay(true);
    // "Connection: close" on every answer: no worker idles on a kept-alive
    // connection of the fixture's client, which outlives this server.
    http_.set_keep_alive_max_count(1);
    port_ = http_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("VerifyingServer: cannot bind 127.0.0.1:0");

    passthru_example::VerifierConfig config;
    config.public_origin = origin();
    config.keys = std::move(keys);
    passthru_example::install_verified_handler(
        http_, "/hook", config, [this](const httplib::Request& req, httplib::Response& res) {
          Captured captured{req.method,
                            req.target,
                            req.body,
                            req.get_header_value("Content-Type"),
                            req.get_header_value(passthru::kSignatureIdHeader),
                            req.get_header_value(passthru::kSignatureTimestampHeader),
                            req.get_header_value(passthru::kSignatureHeader)};
          {
            std::lock_guard<std::mutex> lock(mutex_);
            handled_.push_back(std::move(captured));
          }
          res.set_content("vip-connect", "text/plain");
        });
    // Runs after the handler (or the refusal), before the answer is written.
    http_.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      answers_.push_back({req.target, res.status, res.body});
    });

    thread_ = std::thread([this] { http_.listen_after_bind(); });
    // stop() is a no-op until the listen loop runs; httplib 0.11 has no event for it.
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (!http_.is_running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        thread_.detach();
        throw std::runtime_error("VerifyingServer: listen loop did not start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  ~VerifyingServer() {
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }

  VerifyingServer(const VerifyingServer&) = delete;
  VerifyingServer& operator=(const VerifyingServer&) = delete;

  int port() const { return port_; }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<Captured> handled() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return handled_;
  }
  std::vector<Answer> answers() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return answers_;
  }

 private:
  httplib::Server http_;
  int port_ = -1;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Captured> handled_;
  std::vector<Answer> answers_;
};

// Sends a request with httplib's client, target and body byte for byte as given.
httplib::Result send_raw(int port, const std::string& method, const std::string& target,
                         const httplib::Headers& headers, const std::string& body) {
  httplib::Client client("127.0.0.1", port);
  client.set_url_encode(false);
  client.set_keep_alive(false);
  httplib::Request req;
  req.method = method;
  req.path = target;
  req.headers = headers;
  req.body = body;
  return client.send(req);
}

httplib::Headers signature_headers(const std::string& id, const std::string& timestamp,
                                   const std::string& signature) {
  return {{passthru::kSignatureIdHeader, id},
          {passthru::kSignatureTimestampHeader, timestamp},
          {passthru::kSignatureHeader, signature}};
}

// Resends `c` with its signature headers and Content-Type, with the given changes.
httplib::Result resend(int port, const Captured& c) {
  httplib::Headers headers = signature_headers(c.id, c.timestamp, c.signature);
  if (!c.content_type.empty()) headers.emplace("Content-Type", c.content_type);
  return send_raw(port, c.method, c.target, headers, c.body);
}

long long unix_now() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Exercises the scheme from the outside: the request a sender holding `key`
// would sign for `target` at `timestamp`.
Captured forge(const VerifyingServer& server, const std::string& key, const std::string& method,
               const std::string& target, const std::string& body, long long timestamp,
               const std::string& id) {
  Captured c;
  c.method = method;
  c.target = target;
  c.body = body;
  if (method == "POST") c.content_type = "application/x-www-form-urlencoded";
  c.id = id;
  c.timestamp = std::to_string(timestamp);
  c.signature = passthru::sign_canonical(
      key, passthru::canonical_form(method, server.origin() + target, c.id, c.timestamp, body));
  return c;
}

void expect_refused(const httplib::Result& result, const std::string& reason) {
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 401);
  EXPECT_EQ(result->body, reason);
}

bool is_lower_hex(const std::string& text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !text.empty();
}

// The guide's sample call, with custom parameters that need every kind of encoding.
passthru::CallContext awkward_call() {
  passthru::CallContext call = passthru_test::sample_call();
  call.custom = {{"note", "a b&c=d"},
                 {"name", "Zo\xC3\xAB \xE6\x9D\xB1\xE4\xBA\xAC"},  // "Zoë 東京"
                 {"raw", std::string("x\xFFy")},
                 {"plus", "+1 (555)"}};
  return call;
}

class SignedRequests : public ::testing::Test {
 protected:
  StepOptions step_for(const std::string& url, Method method, std::vector<std::string> keys) {
    StepOptions options = passthru_test::step_options(url);
    options.method = method;
    options.signing_keys = std::move(keys);
    return options;
  }

  Outcome run(StepOptions options, passthru::CallContext call = awkward_call()) {
    auto outcome =
        passthru_test::execute_and_wait(client_, StepConfig::build(std::move(options)), std::move(call));
    if (!outcome) {
      ADD_FAILURE() << "no outcome within " << passthru_test::kGenerousWait.count() << " ms";
      return {};
    }
    return *outcome;
  }

  // A genuine signed request: the client sends it, the server verifies it and
  // records what it received.
  Captured capture(VerifyingServer& server, Method method,
                   const std::string& path_and_query = "/hook?tenant=7") {
    const std::size_t before = server.handled().size();
    const Outcome outcome = run(step_for(server.origin() + path_and_query, method, {kKey}));
    EXPECT_EQ(outcome.route, Route::next_applet)
        << passthru::to_string(outcome.route) << ": " << outcome.reason;
    const std::vector<Captured> handled = server.handled();
    if (handled.size() != before + 1) {
      ADD_FAILURE() << "the handler ran " << handled.size() - before << " times";
      return {};
    }
    return handled.back();
  }

  passthru_test::LogCollector logs_;
  passthru_test::TestClient client_{passthru_test::quiet_options(logs_)};
};

void expect_vip_connect(const Outcome& outcome) {
  EXPECT_EQ(outcome.route, Route::next_applet)
      << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, "vip-connect");
  EXPECT_EQ(outcome.http_status, 200);
}

void expect_well_formed_headers(const Captured& c, std::size_t signatures = 1) {
  EXPECT_EQ(c.id.size(), 32u) << c.id;
  EXPECT_TRUE(is_lower_hex(c.id)) << c.id;
  const long long sent_at = std::stoll(c.timestamp);
  EXPECT_LE(std::abs(unix_now() - sent_at), 60) << c.timestamp;
  std::size_t entries = 0;
  for (std::size_t at = 0; (at = c.signature.find("v1,", at)) != std::string::npos; at += 3) ++entries;
  EXPECT_EQ(entries, signatures) << c.signature;
}

// The call's data as the server decodes it.
void expect_awkward_call_data(const std::string& form) {
  EXPECT_EQ(passthru_test::form_value(form, "CallSid"), "abc123");
  EXPECT_EQ(passthru_test::form_value(form, "CallFrom"), "+919876543210");
  EXPECT_EQ(passthru_test::form_value(form, "digits"), "1234");
  EXPECT_EQ(passthru_test::form_value(form, "note"), "a b&c=d");
  EXPECT_EQ(passthru_test::form_value(form, "name"), "Zo\xC3\xAB \xE6\x9D\xB1\xE4\xBA\xAC");
  EXPECT_EQ(passthru_test::form_value(form, "raw"), std::string("x\xFFy"));
  EXPECT_EQ(passthru_test::form_value(form, "plus"), "+1 (555)");
}

// --- genuine requests verify ---

TEST_F(SignedRequests, SignedGetVerifiesAndRoutes) {
  VerifyingServer server({kKey});
  expect_vip_connect(run(step_for(server.origin() + "/hook?tenant=7", Method::get, {kKey})));

  const std::vector<Captured> handled = server.handled();
  ASSERT_EQ(handled.size(), 1u);
  const Captured& c = handled[0];
  EXPECT_EQ(c.method, "GET");
  EXPECT_EQ(c.body, "");
  EXPECT_EQ(c.target.rfind("/hook?tenant=7&CallSid=abc123&", 0), 0u) << c.target;
  expect_well_formed_headers(c);
  expect_awkward_call_data(c.target.substr(c.target.find('?') + 1));
}

TEST_F(SignedRequests, SignedPostVerifiesAndRoutes) {
  VerifyingServer server({kKey});
  expect_vip_connect(run(step_for(server.origin() + "/hook?tenant=7", Method::post, {kKey})));

  const std::vector<Captured> handled = server.handled();
  ASSERT_EQ(handled.size(), 1u);
  const Captured& c = handled[0];
  EXPECT_EQ(c.method, "POST");
  EXPECT_EQ(c.target, "/hook?tenant=7");
  EXPECT_EQ(c.content_type, "application/x-www-form-urlencoded");
  expect_well_formed_headers(c);
  expect_awkward_call_data(c.body);
}

TEST_F(SignedRequests, EachRequestHasItsOwnId) {
  VerifyingServer server({kKey});
  for (int i = 0; i < 3; ++i)
    expect_vip_connect(run(step_for(server.origin() + "/hook", Method::post, {kKey})));
  const std::vector<Captured> handled = server.handled();
  ASSERT_EQ(handled.size(), 3u);
  EXPECT_NE(handled[0].id, handled[1].id);
  EXPECT_NE(handled[1].id, handled[2].id);
  EXPECT_NE(handled[0].id, handled[2].id);
}

TEST_F(SignedRequests, UserInfoIsNotPartOfTheSignedUrl) {
  VerifyingServer server({kKey});
  const std::string url = "http://user:pass@127.0.0.1:" + std::to_string(server.port()) + "/hook";
  expect_vip_connect(run(step_for(url, Method::get, {kKey})));
  expect_vip_connect(run(step_for(url, Method::post, {kKey})));
  EXPECT_EQ(server.handled().size(), 2u);
}

TEST_F(SignedRequests, DotSegmentsAreNormalisedBeforeSigning) {
  VerifyingServer server({kKey});
  expect_vip_connect(run(step_for(server.origin() + "/a/../hook", Method::get, {kKey})));
  expect_vip_connect(run(step_for(server.origin() + "/a/b/../../hook?tenant=7", Method::post, {kKey})));
  const std::vector<Captured> handled = server.handled();
  ASSERT_EQ(handled.size(), 2u);
  EXPECT_EQ(handled[0].target.rfind("/hook?", 0), 0u) << handled[0].target;
  EXPECT_EQ(handled[1].target, "/hook?tenant=7");
}

TEST_F(SignedRequests, FragmentIsNotSentNorSigned) {
  VerifyingServer server({kKey});
  expect_vip_connect(run(step_for(server.origin() + "/hook?tenant=7#section", Method::post, {kKey})));
  const std::vector<Captured> handled = server.handled();
  ASSERT_EQ(handled.size(), 1u);
  EXPECT_EQ(handled[0].target, "/hook?tenant=7");
}

// --- the raw client used below is faithful: a correctly signed request passes ---

TEST_F(SignedRequests, ForgedWithTheRightKeyIsAccepted) {
  VerifyingServer server({kKey});
  const Captured c =
      forge(server, kKey, "POST", "/hook?x=1", "a=1", unix_now(), "00112233445566778899aabbccddeeff");
  const httplib::Result result = resend(server.port(), c);
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "vip-connect");
  EXPECT_EQ(server.handled().size(), 1u);
}

// --- tampering, replay, staleness ---

TEST_F(SignedRequests, TamperedPostIsRefusedBeforeTheHandler) {
  VerifyingServer server({kKey});
  const Captured genuine = capture(server, Method::post);
  ASSERT_FALSE(genuine.id.empty());

  Captured body = genuine;
  body.body.replace(body.body.find("digits=1234"), 11, "digits=9999");
  expect_refused(resend(server.port(), body), "mismatch");

  Captured appended = genuine;
  appended.body += "&vip=1";
  expect_refused(resend(server.port(), appended), "mismatch");

  Captured query = genuine;
  query.target = "/hook?tenant=8";
  expect_refused(resend(server.port(), query), "mismatch");

  Captured method = genuine;  // the same bytes presented as a GET
  method.method = "GET";
  method.body.clear();
  method.content_type.clear();
  expect_refused(resend(server.port(), method), "mismatch");

  Captured timestamp = genuine;
  timestamp.timestamp = std::to_string(std::stoll(genuine.timestamp) + 1);
  expect_refused(resend(server.port(), timestamp), "mismatch");

  Captured id = genuine;
  id.id[0] = id.id[0] == 'a' ? 'b' : 'a';
  expect_refused(resend(server.port(), id), "mismatch");

  Captured other_key = genuine;  // well formed, but under a key the server does not hold
  other_key.signature = passthru::sign_canonical(
      kOtherKey, passthru::canonical_form(genuine.method, server.origin() + genuine.target, genuine.id,
                                          genuine.timestamp, genuine.body));
  expect_refused(resend(server.port(), other_key), "mismatch");

  Captured unsigned_copy = genuine;
  unsigned_copy.signature.clear();
  expect_refused(resend(server.port(), unsigned_copy), "missing");

  // None of them reached the handler; the verifier did not remember their ids
  // either, so the genuine request, resent as is, is refused as a replay.
  EXPECT_EQ(server.handled().size(), 1u);
  expect_refused(resend(server.port(), genuine), "replayed");
  EXPECT_EQ(server.handled().size(), 1u);
}

TEST_F(SignedRequests, TamperedGetQueryIsRefused) {
  VerifyingServer server({kKey});
  const Captured genuine = capture(server, Method::get);
  ASSERT_FALSE(genuine.id.empty());

  Captured caller = genuine;
  const std::string from = "CallFrom=%2B919876543210";
  const std::size_t at = caller.target.find(from);
  ASSERT_NE(at, std::string::npos) << caller.target;
  caller.target.replace(at, from.size(), "CallFrom=%2B910000000000");
  expect_refused(resend(server.port(), caller), "mismatch");

  Captured dropped = genuine;  // a parameter removed
  dropped.target = genuine.target.substr(0, genuine.target.find("&digits="));
  expect_refused(resend(server.port(), dropped), "mismatch");

  Captured method = genuine;  // the same target presented as a POST
  method.method = "POST";
  expect_refused(resend(server.port(), method), "mismatch");

  EXPECT_EQ(server.handled().size(), 1u);
  expect_refused(resend(server.port(), genuine), "replayed");
  EXPECT_EQ(server.handled().size(), 1u);
}

TEST_F(SignedRequests, ReplayedRequestIsRefusedEveryTime) {
  VerifyingServer server({kKey});
  const Captured genuine = capture(server, Method::post);
  ASSERT_FALSE(genuine.id.empty());
  for (int i = 0; i < 3; ++i) expect_refused(resend(server.port(), genuine), "replayed");
  EXPECT_EQ(server.handled().size(), 1u);
}

TEST_F(SignedRequests, StaleOrFutureTimestampIsOutsideTheWindow) {
  VerifyingServer server({kKey});
  const Captured stale = forge(server, kKey, "POST", "/hook", "CallSid=abc123", unix_now() - 600,
                               "0123456789abcdef0123456789abcdef");
  expect_refused(resend(server.port(), stale), "outside window");
  const Captured future = forge(server, kKey, "GET", "/hook?CallSid=abc123", "", unix_now() + 600,
                                "fedcba9876543210fedcba9876543210");
  expect_refused(resend(server.port(), future), "outside window");
  EXPECT_TRUE(server.handled().empty());
}

TEST_F(SignedRequests, MalformedHeadersAreRefused) {
  VerifyingServer server({kKey});
  Captured bad_id = forge(server, kKey, "POST", "/hook", "a=1", unix_now(), "not-hex!");
  expect_refused(resend(server.port(), bad_id), "malformed");
  Captured bad_timestamp =
      forge(server, kKey, "POST", "/hook", "a=1", unix_now(), "0123456789abcdef0123456789abcdef");
  bad_timestamp.timestamp = "yesterday";
  expect_refused(resend(server.port(), bad_timestamp), "malformed");
  expect_refused(send_raw(server.port(), "GET", "/hook?CallSid=abc123", {}, ""), "missing");
  EXPECT_TRUE(server.handled().empty());
}

// --- key rotation ---

TEST_F(SignedRequests, RotationClientWithOldAndNewServerWithNew) {
  VerifyingServer server({kNewKey});
  expect_vip_connect(run(step_for(server.origin() + "/hook", Method::post, {kKey, kNewKey})));
  const std::vector<Captured> handled = server.handled();
  ASSERT_EQ(handled.size(), 1u);
  expect_well_formed_headers(handled[0], 2);
}

TEST_F(SignedRequests, RotationServerWithOldAndNewClientWithOld) {
  VerifyingServer server({kKey, kNewKey});
  expect_vip_connect(run(step_for(server.origin() + "/hook", Method::get, {kKey})));
  EXPECT_EQ(server.handled().size(), 1u);
}

TEST_F(SignedRequests, ServerWithAnotherKeyRefusesAsMismatch) {
  VerifyingServer server({kOtherKey});
  const Outcome outcome = run(step_for(server.origin() + "/hook", Method::post, {kKey, kNewKey}));
  EXPECT_EQ(outcome.route, Route::on_error) << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, "error-applet");
  EXPECT_EQ(outcome.http_status, 401);
  EXPECT_TRUE(server.handled().empty());
  const std::vector<Answer> answers = server.answers();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 401);
  EXPECT_EQ(answers[0].body, "mismatch");
}

// --- unsigned steps ---

TEST_F(SignedRequests, WithoutSigningKeysNoSignatureHeadersAreSent) {
  passthru_test::ServerOptions options;
  options.keep_alive_max_count = 1;  // the fixture's client outlives this server
  passthru_test::TestHttpServer server(options);
  server.reply("GET", "/plain", 200, "vip-connect");
  server.reply("POST", "/plain", 200, "vip-connect");
  expect_vip_connect(run(step_for(server.url("/plain"), Method::get, {})));
  expect_vip_connect(run(step_for(server.url("/plain"), Method::post, {})));
  const std::vector<passthru_test::RecordedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  for (const auto& request : requests) {
    EXPECT_FALSE(request.has_header(passthru::kSignatureIdHeader)) << request.method;
    EXPECT_FALSE(request.has_header(passthru::kSignatureTimestampHeader)) << request.method;
    EXPECT_FALSE(request.has_header(passthru::kSignatureHeader)) << request.method;
  }
}

}  // namespace
