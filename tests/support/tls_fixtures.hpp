// TLS for the tests: a certificate authority that issues certificates at test
// time (OpenSSL 3 C API, EC P-256, SHA-256, PEM files in a fresh temporary
// directory), and an HTTPS server on 127.0.0.1:0 that serves one fixed answer
// with them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace passthru_test {

/// A directory made with mkdtemp under $TMPDIR (or /tmp); removed with
/// everything in it when the object is destroyed.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "passthru-tls");
  ~TempDir();

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const noexcept { return path_; }
  /// path() + "/" + name.
  std::string file(std::string_view name) const;

 private:
  std::string path_;
};

/// What a leaf certificate is for: its extendedKeyUsage.
enum class CertUsage { server, client };

/// Settings of a certificate TestCa::issue() makes.
struct CertOptions {
  std::string common_name = "localhost";
  /// subjectAltName DNS entries.
  std::vector<std::string> dns_names = {"localhost"};
  /// subjectAltName IP entries ("127.0.0.1", "::1").
  std::vector<std::string> ip_addresses = {"127.0.0.1", "::1"};
  /// Validity, relative to now: notBefore = now + not_before, notAfter = now +
  /// not_after. An expired certificate: {-10 days, -1 day}.
  std::chrono::seconds not_before = -std::chrono::hours(1);
  std::chrono::seconds not_after = std::chrono::hours(24 * 30);
  CertUsage usage = CertUsage::server;
  /// Non-empty: the key file is encrypted (AES-256-CBC) with this passphrase.
  std::string key_password;
};

/// An expired server certificate's CertOptions: valid from 10 days ago to 1 day ago.
CertOptions expired_cert_options();

/// The files of one certificate, and its public key pin.
struct IssuedCert {
  std::string cert_file;    ///< PEM certificate.
  std::string key_file;     ///< PEM private key (PKCS#8; encrypted if key_password was set).
  std::string pubkey_file;  ///< PEM SubjectPublicKeyInfo, for a pin given as a file.
  /// libcurl's pin format: "sha256//" + base64(SHA-256(DER SubjectPublicKeyInfo)).
  std::string pin;
};

/// A self-signed certificate authority (basicConstraints CA:TRUE, keyUsage
/// keyCertSign) whose files, and those of every certificate it issues, live
/// in a temporary directory of its own until it is destroyed.
///
/// Not thread-safe: make certificates before starting servers and clients.
class TestCa {
 public:
  explicit TestCa(std::string common_name = "passthru test CA");
  ~TestCa();

  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  /// The CA certificate (PEM), to trust as a ca_file.
  const std::string& cert_file() const noexcept;
  /// The CA certificate's public key pin.
  const std::string& pin() const noexcept;
  /// The directory every file of this CA is written to.
  const std::string& dir() const noexcept;

  /// A leaf certificate signed by this CA.
  IssuedCert issue(const CertOptions& options = {});
  /// A self-signed leaf certificate (no CA at all) with the same options.
  IssuedCert self_signed(const CertOptions& options = {});
  /// An OpenSSL hashed directory (for CURLOPT_CAPATH) that holds only this
  /// CA's certificate, as "<X509_NAME_hash>.0". Made once; the same path after.
  const std::string& hashed_dir();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Settings of a TlsTestServer. Versions are OpenSSL's constants
/// (TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION); 0 leaves
/// that end to OpenSSL's configuration.
struct TlsServerOptions {
  std::string cert_file;
  std::string key_file;
  int min_version = 0;
  int max_version = 0;
  /// Non-empty: the server asks for a client certificate and verifies it
  /// against these CAs.
  std::string client_ca_file;
  /// With client_ca_file: refuse a client that presents no certificate
  /// (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
  bool require_client_cert = false;
  /// Issue session tickets (and keep a session cache) so clients may resume
  /// sessions; off by default, so every connection makes a full handshake.
  bool session_tickets = false;
  /// The answer to every request.
  int status = 200;
  std::string content_type = "text/plain";
  std::string body = "vip-connect";
  /// Non-empty: sent as a Location header (see redirect_to()).
  std::string location;

  /// Options for `cert`'s files, answering 200 text/plain "vip-connect".
  static TlsServerOptions with(const IssuedCert& cert);
  /// Answer every request with `status` (302 by default) and `Location: location`.
  TlsServerOptions& redirect_to(std::string target, int redirect_status = 302);
};

/// An HTTPS server on 127.0.0.1:0, on a thread of its own, that answers
/// every request with the fixed answer of its options and `Connection: close`.
/// Each connection is served on a thread of its own with non-blocking I/O
/// that also waits on a stop event, so the destructor never hangs, whatever
/// a client does. A handshake that fails ends that connection only.
///
/// Unless TlsServerOptions::session_tickets is set, sessions are never
/// resumed (no session cache, no tickets): every connection makes a full
/// handshake.
///
/// Legacy servers (max_version below TLS 1.2) run at OpenSSL security level
/// 0 with the cipher list "DEFAULT:@SECLEVEL=0", so TLS 1.0/1.1 can work.
class TlsTestServer {
 public:
  explicit TlsTestServer(TlsServerOptions options);
  ~TlsTestServer();

  TlsTestServer(const TlsTestServer&) = delete;
  TlsTestServer& operator=(const TlsTestServer&) = delete;

  int port() const noexcept { return port_; }
  /// "https://localhost:PORT" + path.
  std::string url(std::string_view path = "/") const;
  /// "https://127.0.0.1:PORT" + path.
  std::string url_ip(std::string_view path = "/") const;

  /// TCP connections accepted so far.
  std::size_t connections_accepted() const;
  /// Connections the server is done with (served, failed, or the client left).
  std::size_t connections_finished() const;
  /// TLS handshakes that completed.
  std::size_t handshakes_completed() const;
  /// Completed handshakes that resumed an earlier session.
  std::size_t sessions_resumed() const;
  /// TLS handshakes that failed (the client gave up, or OpenSSL refused).
  std::size_t handshakes_failed() const;
  /// OpenSSL's error text for the last failed handshake ("" when none).
  std::string last_handshake_error() const;
  /// SSL_version() of the last completed handshake (TLS1_3_VERSION, ...); 0 when none.
  int last_protocol_version() const;
  /// Whether the client of the last completed handshake presented a certificate.
  bool client_cert_presented() const;
  /// Requests read in full and answered (counted before the answer is sent,
  /// so a client holding the answer always finds it counted).
  std::size_t requests_served() const;
  /// The request targets of the served requests ("/crm?CallSid=abc123"), in order.
  std::vector<std::string> request_targets() const;

  /// Waits until `n` connections are finished; false on timeout.
  bool wait_for_finished_connections(std::size_t n,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

 private:
  struct Context;
  class Connection;

  void accept_loop();
  void serve(int fd);
  void record_handshake(int version, bool client_cert, bool resumed);
  void record_handshake_failure(std::string error);
  void record_request(std::string target);

  TlsServerOptions options_;
  std::unique_ptr<Context> context_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd, readable once the destructor runs
  int port_ = -1;
  std::thread acceptor_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<std::thread> connections_;
  std::size_t accepted_ = 0;
  std::size_t finished_ = 0;
  std::size_t handshakes_ = 0;
  std::size_t resumed_ = 0;
  std::size_t handshake_failures_ = 0;
  std::string last_handshake_error_;
  int last_version_ = 0;
  bool client_cert_ = false;
  std::vector<std::string> targets_;
};

}  // namespace passthru_test
