// HTTPS end to end: real TLS servers on loopback with certificates made at
// test time, and the step's TLS settings (trust, host name, validity,
// versions, pins, client certificates), plain-HTTP refusal and redirects.
#include "outcome_collector.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"
#include "tls_fixtures.hpp"

#include <passthru/passthru.hpp>

#include <openssl/tls1.h>

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using passthru::ConfigError;
using passthru::Errc;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru::StepOptions;
using passthru::TlsVersion;
using passthru_test::CertOptions;
using passthru_test::CertUsage;
using passthru_test::IssuedCert;
using passthru_test::TestCa;
using passthru_test::TestHttpServer;
using passthru_test::TlsServerOptions;
using passthru_test::TlsTestServer;

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Plain loopback servers that close after each answer, so none of their
// workers waits on a connection the client keeps.
passthru_test::ServerOptions closing_server() {
  passthru_test::ServerOptions options;
  options.keep_alive_max_count = 1;
  options.threads = 4;
  return options;
}

void expect_next_applet(const Outcome& outcome) {
  EXPECT_EQ(outcome.route, Route::next_applet)
      << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, "vip-connect");
  EXPECT_FALSE(outcome.error) << outcome.error.message() << ": " << outcome.reason;
  EXPECT_EQ(outcome.http_status, 200);
}

// A TLS failure: on-error, Errc::tls_failed, `reason_part` in the reason, and
// no HTTP status (unless a redirect brought the request there).
void expect_tls_failure(const Outcome& outcome, std::string_view reason_part, int http_status = 0) {
  EXPECT_EQ(outcome.route, Route::on_error) << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.target, "error-applet");
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::tls_failed))
      << outcome.error.message() << ": " << outcome.reason;
  EXPECT_TRUE(contains(outcome.reason, reason_part))
      << "reason '" << outcome.reason << "' lacks '" << reason_part << "'";
  EXPECT_EQ(outcome.http_status, http_status);
}

// Builds `options` expecting a ConfigError for `field` whose message names `message_part`.
void expect_config_error(StepOptions options, const std::string& field, std::string_view message_part = "") {
  try {
    StepConfig::build(std::move(options));
    ADD_FAILURE() << "no ConfigError (expected one for '" << field << "')";
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.field(), field) << error.what();
    EXPECT_TRUE(contains(error.what(), message_part))
        << "message '" << error.what() << "' lacks '" << message_part << "'";
  }
}

class Tls : public ::testing::Test {
 protected:
  // A step for `url` that trusts the test CA.
  StepOptions trusting(const std::string& url) const {
    auto options = passthru_test::step_options(url);
    options.tls.ca_file = ca_.cert_file();
    return options;
  }

  Outcome run(StepOptions options) {
    const auto step = StepConfig::build(std::move(options));
    auto outcome = passthru_test::execute_and_wait(client_, step, passthru_test::sample_call());
    if (!outcome) {
      ADD_FAILURE() << "no outcome within " << passthru_test::kGenerousWait.count() << " ms";
      return {};
    }
    EXPECT_NE(outcome->request_id, 0u) << outcome->reason;
    // The reason is what an operator reads; keep it in the test's XML output.
    RecordProperty("reason", outcome->reason);
    return *outcome;
  }

  // The log lines so far, joined, for "never logged" checks.
  std::string all_logs() const {
    std::string text;
    for (const auto& line : logs_.lines()) text += line.message + "\n";
    return text;
  }

  TestCa ca_;
  passthru_test::LogCollector logs_;
  passthru_test::TestClient client_{passthru_test::quiet_options(logs_)};
};

// ---------------------------------------------------------------------------
// Trust

TEST_F(Tls, ValidChainFromCaFileRoutesToNextApplet) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  expect_next_applet(run(trusting(server.url("/crm"))));
  EXPECT_EQ(server.requests_served(), 1u);
  EXPECT_EQ(server.handshakes_completed(), 1u);
  ASSERT_EQ(server.request_targets().size(), 1u);
  EXPECT_EQ(server.request_targets()[0].rfind("/crm?CallSid=abc123", 0), 0u) << server.request_targets()[0];
}

TEST_F(Tls, ValidChainFromHashedCaDirRoutesToNextApplet) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  auto options = passthru_test::step_options(server.url());
  options.tls.ca_dir = ca_.hashed_dir();
  expect_next_applet(run(std::move(options)));
  EXPECT_EQ(server.requests_served(), 1u);
}

TEST_F(Tls, IpAddressUrlMatchesAnIpSubjectAltName) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  expect_next_applet(run(trusting(server.url_ip())));
  EXPECT_EQ(server.requests_served(), 1u);
}

TEST_F(Tls, PostOverTlsRoutesToNextApplet) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  auto options = trusting(server.url("/crm"));
  options.method = passthru::Method::post;
  expect_next_applet(run(std::move(options)));
  ASSERT_EQ(server.request_targets().size(), 1u);
  EXPECT_EQ(server.request_targets()[0], "/crm");
}

TEST_F(Tls, CaUnknownToTheSystemStoreIsNotTrusted) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  expect_tls_failure(run(passthru_test::step_options(server.url())), "TLS certificate is not trusted");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, CertificateOfAnotherCaIsNotTrusted) {
  TestCa other("another test CA");
  TlsTestServer server(TlsServerOptions::with(other.issue()));
  expect_tls_failure(run(trusting(server.url())), "TLS certificate is not trusted");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, SelfSignedCertificateIsNotTrusted) {
  TlsTestServer server(TlsServerOptions::with(ca_.self_signed()));
  expect_tls_failure(run(trusting(server.url())), "TLS certificate is not trusted");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, CertificateForAnotherHostDoesNotMatch) {
  CertOptions cert;
  cert.common_name = "other.example";
  cert.dns_names = {"other.example"};
  cert.ip_addresses = {};
  TlsTestServer server(TlsServerOptions::with(ca_.issue(cert)));
  expect_tls_failure(run(trusting(server.url())), "TLS certificate does not match the host name");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, IpAddressUrlDoesNotMatchACertificateWithOnlyDnsNames) {
  CertOptions cert;
  cert.ip_addresses = {};
  TlsTestServer server(TlsServerOptions::with(ca_.issue(cert)));
  expect_tls_failure(run(trusting(server.url_ip())), "TLS certificate does not match the host name");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, ExpiredCertificateIsRefused) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue(passthru_test::expired_cert_options())));
  expect_tls_failure(run(trusting(server.url())), "TLS certificate has expired");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, CertificateNotYetValidIsRefused) {
  CertOptions cert;
  cert.not_before = std::chrono::hours(24);
  cert.not_after = std::chrono::hours(24 * 30);
  TlsTestServer server(TlsServerOptions::with(ca_.issue(cert)));
  expect_tls_failure(run(trusting(server.url())), "TLS certificate");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, ClientAuthOnlyCertificateIsRefusedAsAServerCertificate) {
  CertOptions cert;
  cert.usage = CertUsage::client;
  TlsTestServer server(TlsServerOptions::with(ca_.issue(cert)));
  expect_tls_failure(run(trusting(server.url())), "TLS certificate");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, HttpsUrlToAPlainHttpServerFailsAsTls) {
  TestHttpServer plain(closing_server());
  plain.reply("GET", "/", 200, "vip-connect");
  expect_tls_failure(run(trusting("https://127.0.0.1:" + std::to_string(plain.port()) + "/")),
                     "the server did not answer in TLS");
}

// ---------------------------------------------------------------------------
// Turning verification off (a lab's setting)

TEST_F(Tls, VerificationOffAcceptsAnUnknownCaAndAnotherHostName) {
  TestCa other("another test CA");
  CertOptions cert;
  cert.dns_names = {"other.example"};
  cert.ip_addresses = {};
  TlsTestServer server(TlsServerOptions::with(other.issue(cert)));
  auto options = passthru_test::step_options(server.url());
  options.tls.verify_peer = false;
  options.tls.verify_host = false;
  expect_next_applet(run(std::move(options)));
  EXPECT_EQ(server.requests_served(), 1u);
}

TEST_F(Tls, HostVerificationOffAcceptsAnotherHostNameFromATrustedCa) {
  CertOptions cert;
  cert.dns_names = {"other.example"};
  cert.ip_addresses = {};
  TlsTestServer server(TlsServerOptions::with(ca_.issue(cert)));
  auto options = trusting(server.url());
  options.tls.verify_host = false;
  expect_next_applet(run(std::move(options)));
}

// A step that turns verification off must not lend its session or connection
// to a step that verifies: each is judged by its own settings.
TEST_F(Tls, AnUnverifiedStepDoesNotLetAVerifyingStepIn) {
  TestCa other("another test CA");
  auto server_options = TlsServerOptions::with(other.issue());
  server_options.session_tickets = true;
  TlsTestServer server(server_options);

  auto lab = passthru_test::step_options(server.url());
  lab.tls.verify_peer = false;
  lab.tls.verify_host = false;
  expect_next_applet(run(lab));
  expect_tls_failure(run(trusting(server.url())), "TLS certificate is not trusted");
  expect_next_applet(run(lab));
  EXPECT_EQ(server.requests_served(), 2u);
}

// libcurl resumes TLS sessions across a client's requests (see
// SessionsAreResumedWithinAStep); a resumed session skips the server's
// certificate and the client's, so a session must only be resumed by a step
// whose TLS settings are those it was made under.

TEST_F(Tls, SessionsAreResumedWithinAStep) {
  auto server_options = TlsServerOptions::with(ca_.issue());
  server_options.session_tickets = true;
  TlsTestServer server(server_options);
  const auto options = trusting(server.url());
  expect_next_applet(run(options));
  expect_next_applet(run(options));
  expect_next_applet(run(options));
  EXPECT_EQ(server.handshakes_completed(), 3u);
  RecordProperty("sessions_resumed", static_cast<int>(server.sessions_resumed()));
  EXPECT_GE(server.sessions_resumed(), 1u) << "no session was resumed: the cross-step tests below prove less";
}

TEST_F(Tls, ASessionTrustedThroughACaFileIsNotResumedWithoutIt) {
  auto server_options = TlsServerOptions::with(ca_.issue());
  server_options.session_tickets = true;
  TlsTestServer server(server_options);
  expect_next_applet(run(trusting(server.url())));
  expect_next_applet(run(trusting(server.url())));
  expect_tls_failure(run(passthru_test::step_options(server.url())), "TLS certificate is not trusted");
  EXPECT_EQ(server.requests_served(), 2u);
}

TEST_F(Tls, APinIsCheckedOnAResumedSession) {
  auto server_options = TlsServerOptions::with(ca_.issue());
  server_options.session_tickets = true;
  TlsTestServer server(server_options);
  expect_next_applet(run(trusting(server.url())));
  expect_next_applet(run(trusting(server.url())));
  auto pinned = trusting(server.url());
  pinned.tls.pinned_public_key = ca_.issue().pin;
  expect_tls_failure(run(std::move(pinned)), "TLS public key does not match the pinned key");
  EXPECT_EQ(server.requests_served(), 2u);
}

TEST_F(Tls, PinIsCheckedEvenWithVerificationOff) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  auto options = passthru_test::step_options(server.url());
  options.tls.verify_peer = false;
  options.tls.verify_host = false;
  options.tls.pinned_public_key = ca_.issue().pin;
  expect_tls_failure(run(std::move(options)), "TLS public key does not match the pinned key");
  EXPECT_EQ(server.requests_served(), 0u);
}

// ---------------------------------------------------------------------------
// Protocol versions

TEST_F(Tls, DefaultSettingsNegotiateTls13) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  expect_next_applet(run(trusting(server.url())));
  EXPECT_EQ(server.last_protocol_version(), TLS1_3_VERSION);
}

TEST_F(Tls, DefaultSettingsAcceptATls12Server) {
  auto server_options = TlsServerOptions::with(ca_.issue());
  server_options.max_version = TLS1_2_VERSION;
  TlsTestServer server(server_options);
  expect_next_applet(run(trusting(server.url())));
  EXPECT_EQ(server.last_protocol_version(), TLS1_2_VERSION);
}

TEST_F(Tls, MinimumTls13RefusesATls12Server) {
  auto server_options = TlsServerOptions::with(ca_.issue());
  server_options.max_version = TLS1_2_VERSION;
  TlsTestServer server(server_options);
  auto options = trusting(server.url());
  options.tls.min_version = TlsVersion::v1_3;
  expect_tls_failure(run(std::move(options)), "TLS handshake failed");
  EXPECT_EQ(server.requests_served(), 0u);
  EXPECT_EQ(server.handshakes_completed(), 0u);
}

TEST_F(Tls, MinimumTls13AcceptsATls13Server) {
  auto server_options = TlsServerOptions::with(ca_.issue());
  server_options.min_version = TLS1_3_VERSION;
  TlsTestServer server(server_options);
  auto options = trusting(server.url());
  options.tls.min_version = TlsVersion::v1_3;
  expect_next_applet(run(std::move(options)));
  EXPECT_EQ(server.last_protocol_version(), TLS1_3_VERSION);
}

// ---------------------------------------------------------------------------
// Public key pins

TEST_F(Tls, CorrectPinRoutesToNextApplet) {
  const IssuedCert cert = ca_.issue();
  TlsTestServer server(TlsServerOptions::with(cert));
  auto options = trusting(server.url());
  options.tls.pinned_public_key = cert.pin;
  expect_next_applet(run(std::move(options)));
}

TEST_F(Tls, PinOfAnotherKeyIsRefused) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  auto options = trusting(server.url());
  options.tls.pinned_public_key = ca_.issue().pin;
  expect_tls_failure(run(std::move(options)), "TLS public key does not match the pinned key");
  EXPECT_EQ(server.requests_served(), 0u);
}

// The pin is the server's own key, not its CA's.
TEST_F(Tls, PinOfTheCaKeyDoesNotMatchTheServer) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  auto options = trusting(server.url());
  options.tls.pinned_public_key = ca_.pin();
  expect_tls_failure(run(std::move(options)), "TLS public key does not match the pinned key");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Tls, OneMatchingPinAmongSeveralIsEnough) {
  const IssuedCert cert = ca_.issue();
  TlsTestServer server(TlsServerOptions::with(cert));
  auto options = trusting(server.url());
  options.tls.pinned_public_key = ca_.issue().pin + ";" + cert.pin;
  expect_next_applet(run(std::move(options)));
}

TEST_F(Tls, PinFromAPublicKeyFileRoutesToNextApplet) {
  const IssuedCert cert = ca_.issue();
  TlsTestServer server(TlsServerOptions::with(cert));
  auto options = trusting(server.url());
  options.tls.pinned_public_key = cert.pubkey_file;
  expect_next_applet(run(std::move(options)));
}

// ---------------------------------------------------------------------------
// Mutual TLS

class MutualTls : public Tls {
 protected:
  TlsServerOptions requiring_client_cert(int max_version = 0) {
    auto options = TlsServerOptions::with(ca_.issue());
    options.client_ca_file = ca_.cert_file();
    options.require_client_cert = true;
    options.max_version = max_version;
    return options;
  }

  IssuedCert client_cert(std::string key_password = "") {
    CertOptions cert;
    cert.common_name = "passthru client";
    cert.dns_names = {};
    cert.ip_addresses = {};
    cert.usage = CertUsage::client;
    cert.key_password = std::move(key_password);
    return ca_.issue(cert);
  }
};

// TLS 1.3: the client's side of the handshake ends before the server judges
// its (missing) certificate, so the refusal arrives as an alert on the read.
TEST_F(MutualTls, WithoutAClientCertificateOverTls13IsRefused) {
  TlsTestServer server(requiring_client_cert());
  expect_tls_failure(run(trusting(server.url())), "TLS");
  EXPECT_EQ(server.requests_served(), 0u);
  EXPECT_EQ(server.handshakes_completed(), 0u);
}

TEST_F(MutualTls, WithoutAClientCertificateOverTls12IsRefused) {
  TlsTestServer server(requiring_client_cert(TLS1_2_VERSION));
  expect_tls_failure(run(trusting(server.url())), "TLS");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(MutualTls, WithAClientCertificateRoutesToNextApplet) {
  TlsTestServer server(requiring_client_cert());
  const IssuedCert client = client_cert();
  auto options = trusting(server.url());
  options.tls.client_cert_file = client.cert_file;
  options.tls.client_key_file = client.key_file;
  expect_next_applet(run(std::move(options)));
  EXPECT_TRUE(server.client_cert_presented());
  EXPECT_EQ(server.requests_served(), 1u);
}

TEST_F(MutualTls, WithAClientCertificateOverTls12RoutesToNextApplet) {
  TlsTestServer server(requiring_client_cert(TLS1_2_VERSION));
  const IssuedCert client = client_cert();
  auto options = trusting(server.url());
  options.tls.client_cert_file = client.cert_file;
  options.tls.client_key_file = client.key_file;
  expect_next_applet(run(std::move(options)));
  EXPECT_TRUE(server.client_cert_presented());
  EXPECT_EQ(server.last_protocol_version(), TLS1_2_VERSION);
}

TEST_F(MutualTls, WithAClientCertificateOfAnotherCaIsRefused) {
  TlsTestServer server(requiring_client_cert());
  TestCa other("another test CA");
  CertOptions cert;
  cert.common_name = "passthru client";
  cert.usage = CertUsage::client;
  const IssuedCert client = other.issue(cert);
  auto options = trusting(server.url());
  options.tls.client_cert_file = client.cert_file;
  options.tls.client_key_file = client.key_file;
  expect_tls_failure(run(std::move(options)), "TLS");
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(MutualTls, EncryptedClientKeyWithItsPasswordRoutesToNextApplet) {
  TlsTestServer server(requiring_client_cert());
  const std::string password = "correct horse battery staple";
  const IssuedCert client = client_cert(password);
  auto options = trusting(server.url());
  options.tls.client_cert_file = client.cert_file;
  options.tls.client_key_file = client.key_file;
  options.tls.client_key_password = password;
  expect_next_applet(run(std::move(options)));
  EXPECT_TRUE(server.client_cert_presented());
  EXPECT_FALSE(contains(all_logs(), password));
}

TEST_F(MutualTls, EncryptedClientKeyWithAWrongPasswordFailsWithoutShowingIt) {
  TlsTestServer server(requiring_client_cert());
  const IssuedCert client = client_cert("correct horse battery staple");
  auto options = trusting(server.url());
  options.tls.client_cert_file = client.cert_file;
  options.tls.client_key_file = client.key_file;
  options.tls.client_key_password = "wrong-password-7c1e";
  const Outcome outcome = run(std::move(options));
  expect_tls_failure(outcome, "TLS");
  EXPECT_FALSE(contains(outcome.reason, "wrong-password-7c1e")) << outcome.reason;
  EXPECT_FALSE(contains(all_logs(), "wrong-password-7c1e")) << all_logs();
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(MutualTls, ASessionMadeWithAClientCertificateIsNotResumedByAStepWithout) {
  auto server_options = requiring_client_cert();
  server_options.session_tickets = true;
  TlsTestServer server(server_options);
  const IssuedCert client = client_cert();
  auto with_cert = trusting(server.url());
  with_cert.tls.client_cert_file = client.cert_file;
  with_cert.tls.client_key_file = client.key_file;
  expect_next_applet(run(with_cert));
  expect_next_applet(run(with_cert));
  // The server would take a resumed session as proof of the first step's identity.
  expect_tls_failure(run(trusting(server.url())), "TLS");
  EXPECT_EQ(server.requests_served(), 2u);
}

// OpenSSL asks for the passphrase of an encrypted key on /dev/tty, or on
// standard input when the process has no terminal, unless the application
// supplies one. A step without client_key_password must fail instead: asking
// would block the client's only thread, and every call with it. The child
// process has no terminal and the right passphrase waiting on its standard
// input, so a library that lets OpenSSL ask gets in.
TEST(TlsClientKey, EncryptedKeyWithoutPasswordFailsWithoutAskingStdin) {
  const std::string password = "stdin-passphrase-5b2d";
  int input[2];
  ASSERT_EQ(::pipe(input), 0);
  const std::string line = password + "\n" + password + "\n" + password + "\n";
  ASSERT_EQ(::write(input[1], line.data(), line.size()), static_cast<ssize_t>(line.size()));
  ::close(input[1]);

  enum Result { refused = 0, read_stdin = 10, other_outcome = 11, no_outcome = 12, threw = 13, setup = 14 };
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = setup;
    if (::setsid() >= 0 && ::dup2(input[0], STDIN_FILENO) == STDIN_FILENO) {
      try {
        TestCa ca;
        auto server_options = TlsServerOptions::with(ca.issue());
        server_options.client_ca_file = ca.cert_file();
        server_options.require_client_cert = true;
        CertOptions cert;
        cert.usage = CertUsage::client;
        cert.key_password = password;
        const IssuedCert client_cert = ca.issue(cert);
        TlsTestServer server(server_options);
        passthru_test::LogCollector logs;
        passthru_test::TestClient client(passthru_test::quiet_options(logs));
        auto options = passthru_test::step_options(server.url());
        options.tls.ca_file = ca.cert_file();
        options.tls.client_cert_file = client_cert.cert_file;
        options.tls.client_key_file = client_cert.key_file;
        const auto outcome =
            passthru_test::execute_and_wait(client, StepConfig::build(options), passthru_test::sample_call());
        if (!outcome) {
          code = no_outcome;
        } else {
          std::fprintf(stderr, "child: %s: %s\n", passthru::to_string(outcome->route),
                       outcome->reason.c_str());
          if (outcome->route == Route::next_applet) {
            code = read_stdin;
          } else if (outcome->route == Route::on_error &&
                     outcome->error == passthru::make_error_code(Errc::tls_failed)) {
            code = refused;
          } else {
            code = other_outcome;
          }
        }
      } catch (const std::exception& error) {
        std::fprintf(stderr, "child: %s\n", error.what());
        code = threw;
      }
    }
    std::fflush(stderr);
    ::_exit(code);
  }
  ::close(input[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child died: status " << status;
  EXPECT_NE(WEXITSTATUS(status), read_stdin) << "the step read the key's passphrase from standard input";
  EXPECT_EQ(WEXITSTATUS(status), refused) << "child exit code " << WEXITSTATUS(status);
}

// ---------------------------------------------------------------------------
// Many at once: one client, one server, every handshake on the client's thread.

TEST_F(Tls, ManyConcurrentRequestsAllSucceed) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  const auto step = StepConfig::build(trusting(server.url()));
  constexpr std::size_t kRequests = 24;
  passthru_test::OutcomeCollector collector;
  for (std::size_t i = 0; i < kRequests; ++i)
    client_.execute(step, passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(collector.wait_for(kRequests));
  for (const auto& outcome : collector.outcomes()) expect_next_applet(outcome);
  EXPECT_TRUE(collector.repeated_ids().empty());
  EXPECT_EQ(server.requests_served(), kRequests);
}

// ---------------------------------------------------------------------------
// Configuration errors, caught when the step is built

TEST(TlsConfig, MissingCaFileIsAConfigError) {
  auto options = passthru_test::step_options("https://localhost:8443/");
  options.tls.ca_file = "/nonexistent/passthru-test/ca.pem";
  expect_config_error(std::move(options), "tls.ca_file");
}

TEST(TlsConfig, MissingCaDirIsAConfigError) {
  auto options = passthru_test::step_options("https://localhost:8443/");
  options.tls.ca_dir = "/nonexistent/passthru-test/certs";
  expect_config_error(std::move(options), "tls.ca_dir");
}

TEST(TlsConfig, MissingClientCertFileIsAConfigError) {
  auto options = passthru_test::step_options("https://localhost:8443/");
  options.tls.client_cert_file = "/nonexistent/passthru-test/client.pem";
  expect_config_error(std::move(options), "tls.client_cert_file");
}

TEST(TlsConfig, MissingClientKeyFileIsAConfigError) {
  TestCa ca;
  const IssuedCert client = ca.issue();
  auto options = passthru_test::step_options("https://localhost:8443/");
  options.tls.client_cert_file = client.cert_file;
  options.tls.client_key_file = "/nonexistent/passthru-test/client-key.pem";
  expect_config_error(std::move(options), "tls.client_key_file");
}

TEST(TlsConfig, MalformedPinIsAConfigError) {
  auto options = passthru_test::step_options("https://localhost:8443/");
  options.tls.pinned_public_key = "sha256//not-base64!";
  expect_config_error(std::move(options), "tls.pinned_public_key");
}

TEST(TlsConfig, MissingPinFileIsAConfigError) {
  auto options = passthru_test::step_options("https://localhost:8443/");
  options.tls.pinned_public_key = "/nonexistent/passthru-test/server-pubkey.pem";
  expect_config_error(std::move(options), "tls.pinned_public_key");
}

TEST(TlsConfig, PlainHttpToANonLoopbackHostIsAConfigError) {
  expect_config_error(passthru_test::step_options("http://example.com/crm"), "url", "allow_plain_http");
}

TEST(TlsConfig, PlainHttpToANonLoopbackHostBuildsWhenAllowed) {
  auto options = passthru_test::step_options("http://example.com/crm");
  options.allow_plain_http = true;
  EXPECT_NO_THROW(StepConfig::build(std::move(options)));
}

TEST(TlsConfig, PlainHttpToLoopbackAlwaysBuilds) {
  for (const char* url : {"http://127.0.0.1:8080/crm", "http://localhost/crm", "http://[::1]:8080/crm"}) {
    EXPECT_NO_THROW(StepConfig::build(passthru_test::step_options(url))) << url;
  }
}

TEST(TlsConfig, MaxRedirectsIsAtMostFive) {
  auto options = passthru_test::step_options("https://localhost:8443/");
  options.max_redirects = 5;
  EXPECT_NO_THROW(StepConfig::build(options));
  options.max_redirects = 6;
  expect_config_error(options, "max_redirects");
  options.max_redirects = -1;
  expect_config_error(options, "max_redirects");
}

// ---------------------------------------------------------------------------
// Redirects

class Redirects : public Tls {
 protected:
  // The plain loopback server answers GET /go with 302 to `location`.
  void redirect_to(const std::string& location) {
    entry_.on("GET", "/go", [location](const httplib::Request&, httplib::Response& res) {
      res.status = 302;
      res.set_header("Location", location);
    });
  }

  StepOptions step(int max_redirects) const {
    auto options = trusting(entry_.url("/go"));
    options.max_redirects = max_redirects;
    return options;
  }

  TestHttpServer entry_{closing_server()};
};

TEST_F(Redirects, NotFollowedByDefault) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  redirect_to(server.url("/landing"));
  const Outcome outcome = run(step(0));
  EXPECT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_EQ(outcome.target, "error-applet");
  EXPECT_EQ(outcome.error, passthru::make_error_code(Errc::http_status)) << outcome.reason;
  EXPECT_EQ(outcome.http_status, 302);
  EXPECT_EQ(server.requests_served(), 0u);
  EXPECT_EQ(server.connections_accepted(), 0u);
}

TEST_F(Redirects, FollowedToHttpsWhenAllowed) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  redirect_to(server.url("/landing"));
  expect_next_applet(run(step(2)));
  EXPECT_EQ(entry_.requests_to("/go").size(), 1u);
  EXPECT_EQ(server.requests_served(), 1u);
  ASSERT_EQ(server.request_targets().size(), 1u);
  EXPECT_EQ(server.request_targets()[0], "/landing");
}

TEST_F(Redirects, ToPlainHttpAreRefused) {
  TestHttpServer plain(closing_server());
  plain.reply("GET", "/plain", 200, "vip-connect");
  redirect_to(plain.url("/plain"));
  const Outcome outcome = run(step(2));
  EXPECT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_EQ(outcome.target, "error-applet");
  EXPECT_TRUE(outcome.error) << outcome.reason;
  EXPECT_NE(outcome.reason.find("redirect refused: only https:// targets are followed"), std::string::npos)
      << outcome.reason;
  EXPECT_EQ(plain.request_count(), 0u);
}

TEST_F(Redirects, FromHttpsDownToPlainHttpAreRefused) {
  TestHttpServer plain(closing_server());
  plain.reply("GET", "/plain", 200, "vip-connect");
  TlsTestServer server(TlsServerOptions::with(ca_.issue()).redirect_to(plain.url("/plain")));
  auto options = trusting(server.url("/start"));
  options.max_redirects = 2;
  const Outcome outcome = run(std::move(options));
  EXPECT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_TRUE(outcome.error) << outcome.reason;
  EXPECT_EQ(server.requests_served(), 1u);
  EXPECT_EQ(plain.request_count(), 0u);
}

TEST_F(Redirects, TheRedirectTargetsCertificateIsVerified) {
  TestCa other("another test CA");
  TlsTestServer server(TlsServerOptions::with(other.issue()));
  redirect_to(server.url("/landing"));
  // The status is the redirect's: the last one that arrived.
  expect_tls_failure(run(step(2)), "TLS certificate is not trusted", 302);
  EXPECT_EQ(server.requests_served(), 0u);
}

TEST_F(Redirects, AChainLongerThanTheLimitIsNotFollowedToItsEnd) {
  TlsTestServer last(TlsServerOptions::with(ca_.issue()));
  TlsTestServer middle(TlsServerOptions::with(ca_.issue()).redirect_to(last.url("/final")));
  redirect_to(middle.url("/middle"));
  const Outcome outcome = run(step(1));
  EXPECT_EQ(outcome.route, Route::on_error) << outcome.reason;
  EXPECT_TRUE(outcome.error) << outcome.reason;
  EXPECT_EQ(middle.requests_served(), 1u);
  EXPECT_EQ(last.requests_served(), 0u);
}

TEST_F(Redirects, AChainWithinTheLimitIsFollowedToItsEnd) {
  TlsTestServer last(TlsServerOptions::with(ca_.issue()));
  TlsTestServer middle(TlsServerOptions::with(ca_.issue()).redirect_to(last.url("/final")));
  redirect_to(middle.url("/middle"));
  expect_next_applet(run(step(2)));
  EXPECT_EQ(middle.requests_served(), 1u);
  EXPECT_EQ(last.requests_served(), 1u);
}

}  // namespace

TEST_F(Tls, TheOutcomeTimesTheHandshakeBetweenConnectAndTheFirstByte) {
  TlsTestServer server(TlsServerOptions::with(ca_.issue()));
  const passthru::Outcome outcome = run(trusting(server.url("/crm")));
  expect_next_applet(outcome);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_GT(outcome.timings.tls.count(), 0);
  EXPECT_GE(outcome.timings.first_byte, outcome.timings.dns + outcome.timings.connect + outcome.timings.tls);
  EXPECT_EQ(outcome.remote_address, "127.0.0.1:" + std::to_string(server.port()));
}
