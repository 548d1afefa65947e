// TLS 1.0/1.1 under a process-wide OpenSSL configuration that permits them
// (openssl-legacy.cnf through OPENSSL_CONF; see tests/CMakeLists.txt): the
// configuration is first shown to work, so the step's refusal cannot pass
// vacuously, then a step with default TLS settings must still refuse the
// legacy server.
#include "test_helpers.hpp"
#include "tls_fixtures.hpp"

#include <passthru/passthru.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#ifndef PASSTHRU_LEGACY_OPENSSL_CONF
#error "PASSTHRU_LEGACY_OPENSSL_CONF must name openssl-legacy.cnf (tests/CMakeLists.txt sets it)"
#endif

namespace {

using passthru::Errc;
using passthru::Outcome;
using passthru::Route;
using passthru::StepConfig;
using passthru_test::TestCa;
using passthru_test::TlsServerOptions;
using passthru_test::TlsTestServer;

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

std::string real_path(const char* path) {
  char resolved[PATH_MAX];
  return ::realpath(path, resolved) != nullptr ? std::string(resolved) : std::string();
}

std::string openssl_errors() {
  std::string text;
  char buffer[256];
  while (const unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buffer, sizeof(buffer));
    text += (text.empty() ? "" : "; ") + std::string(buffer);
  }
  return text;
}

// The result of a raw OpenSSL client's handshake.
struct RawHandshake {
  bool completed = false;
  int version = 0;  // SSL_version() when completed
  std::string error;
};

// Connects to 127.0.0.1:`port` with SSL_CTX_new(TLS_client_method()) and
// nothing else set, so only OpenSSL's configuration decides the versions and
// ciphers; verification is off (the server's certificate is not the point).
RawHandshake raw_handshake(int port) {
  RawHandshake result;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
  if (!ctx) {
    result.error = "SSL_CTX_new: " + openssl_errors();
    return result;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    result.error = std::string("socket: ") + std::strerror(errno);
    return result;
  }
  // A bounded wait, so a server that never answers fails the test instead of hanging it.
  const timeval limit{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    result.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return result;
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    result.error = "SSL_new: " + openssl_errors();
    ::close(fd);
    return result;
  }
  ERR_clear_error();
  if (SSL_connect(ssl.get()) == 1) {
    result.completed = true;
    result.version = SSL_version(ssl.get());
    SSL_shutdown(ssl.get());
  } else {
    result.error = openssl_errors();
    if (result.error.empty()) result.error = "SSL_connect failed without an OpenSSL error";
  }
  ssl.reset();
  ::close(fd);
  return result;
}

class LegacyTls : public ::testing::Test {
 protected:
  void SetUp() override {
    // Without the configuration the raw handshake below fails and the
    // step's refusal would prove nothing: fail loudly instead.
    const char* conf = std::getenv("OPENSSL_CONF");
    ASSERT_NE(conf, nullptr) << "OPENSSL_CONF is not set; run these tests through ctest, or with "
                             << "OPENSSL_CONF=" << PASSTHRU_LEGACY_OPENSSL_CONF;
    const std::string expected = real_path(PASSTHRU_LEGACY_OPENSSL_CONF);
    ASSERT_FALSE(expected.empty()) << PASSTHRU_LEGACY_OPENSSL_CONF << " is missing";
    ASSERT_EQ(real_path(conf), expected) << "OPENSSL_CONF is '" << conf << "', not " << expected;
  }

  // A server that speaks TLS 1.0 and 1.1 only.
  TlsServerOptions legacy_server() {
    auto options = TlsServerOptions::with(ca_.issue());
    options.min_version = TLS1_VERSION;
    options.max_version = TLS1_1_VERSION;
    return options;
  }

  TestCa ca_;
  passthru_test::LogCollector logs_;
};

TEST_F(LegacyTls, TheConfigurationPermitsTls11ToAPlainOpenSslClient) {
  TlsTestServer server(legacy_server());
  const RawHandshake handshake = raw_handshake(server.port());
  ASSERT_TRUE(handshake.completed) << "OpenSSL refused TLS 1.1 under " << PASSTHRU_LEGACY_OPENSSL_CONF << ": "
                                   << handshake.error << " (server: " << server.last_handshake_error() << ")";
  EXPECT_EQ(handshake.version, TLS1_1_VERSION);
  ASSERT_TRUE(server.wait_for_finished_connections(1));
  EXPECT_EQ(server.handshakes_completed(), 1u);
  EXPECT_EQ(server.last_protocol_version(), TLS1_1_VERSION);
}

TEST_F(LegacyTls, AStepWithDefaultSettingsRefusesTls11AllTheSame) {
  TlsTestServer server(legacy_server());
  // The same configuration lets OpenSSL itself in, as the test above shows...
  const RawHandshake handshake = raw_handshake(server.port());
  ASSERT_TRUE(handshake.completed) << handshake.error;
  ASSERT_EQ(handshake.version, TLS1_1_VERSION);

  // ...but a step's default TlsOptions do not.
  passthru_test::TestClient client(passthru_test::quiet_options(logs_));
  auto options = passthru_test::step_options(server.url());
  options.tls.ca_file = ca_.cert_file();
  const auto outcome =
      passthru_test::execute_and_wait(client, StepConfig::build(options), passthru_test::sample_call());
  ASSERT_TRUE(outcome.has_value()) << "no outcome";
  RecordProperty("reason", outcome->reason);
  EXPECT_EQ(outcome->route, Route::on_error)
      << passthru::to_string(outcome->route) << ": " << outcome->reason;
  EXPECT_EQ(outcome->target, "error-applet");
  EXPECT_EQ(outcome->error, passthru::make_error_code(Errc::tls_failed))
      << outcome->error.message() << ": " << outcome->reason;
  EXPECT_TRUE(contains(outcome->reason, "TLS handshake failed")) << outcome->reason;
  EXPECT_TRUE(contains(outcome->reason, "TLS 1.2")) << outcome->reason;
  EXPECT_EQ(outcome->http_status, 0);
  EXPECT_EQ(server.requests_served(), 0u);
  EXPECT_EQ(server.handshakes_completed(), 1u);  // the raw client's only
}

}  // namespace
