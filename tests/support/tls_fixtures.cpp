#include "tls_fixtures.hpp"

#include "raw_socket_peers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace passthru_test {
namespace {

// ---------------------------------------------------------------------------
// OpenSSL helpers

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const noexcept { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const noexcept { BIO_free_all(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
};
struct SslCtxFree {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const noexcept { SSL_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ExtFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// The texts of OpenSSL's error queue, oldest first, joined by "; " (and the queue cleared).
std::string openssl_errors() {
  std::string text;
  char buffer[256];
  while (const unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text;
}

[[noreturn]] void openssl_fail(const std::string& what) {
  const std::string errors = openssl_errors();
  throw std::runtime_error("tls_fixtures: " + what + (errors.empty() ? "" : ": " + errors));
}

void check(bool ok, const char* what) {
  if (!ok) openssl_fail(what);
}

PkeyPtr make_p256_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen(P-256)");
  return key;
}

void set_random_serial(X509* cert) {
  unsigned char bytes[16];
  check(RAND_bytes(bytes, sizeof(bytes)) == 1, "RAND_bytes");
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x01;  // and never zero
  BnPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  check(bn != nullptr, "BN_bin2bn");
  check(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr, "BN_to_ASN1_INTEGER");
}

void set_subject(X509* cert, const std::string& common_name) {
  X509_NAME* name = X509_get_subject_name(cert);
  const auto add = [name](const char* field, const std::string& value) {
    check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) == 1,
          "X509_NAME_add_entry_by_txt");
  };
  add("O", "passthru tests");
  add("CN", common_name);
}

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  check(ext != nullptr, ("X509V3_EXT_conf_nid " + value).c_str());
  check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

void set_validity(X509* cert, std::chrono::seconds not_before, std::chrono::seconds not_after) {
  check(X509_gmtime_adj(X509_getm_notBefore(cert), static_cast<long>(not_before.count())) != nullptr,
        "X509_gmtime_adj notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(not_after.count())) != nullptr,
        "X509_gmtime_adj notAfter");
}

BioPtr open_for_writing(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "w"));
  check(bio != nullptr, ("BIO_new_file " + path).c_str());
  return bio;
}

void write_cert(const std::string& path, X509* cert) {
  auto bio = open_for_writing(path);
  check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
}

void write_key(const std::string& path, EVP_PKEY* key, const std::string& password) {
  auto bio = open_for_writing(path);
  if (password.empty()) {
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  } else {
    std::string pass = password;  // PEM_write_* takes a non-const buffer
    check(PEM_write_bio_PrivateKey(bio.get(), key, EVP_aes_256_cbc(),
                                   reinterpret_cast<unsigned char*>(pass.data()),
                                   static_cast<int>(pass.size()), nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey (encrypted)");
  }
}

void write_pubkey(const std::string& path, EVP_PKEY* key) {
  auto bio = open_for_writing(path);
  check(PEM_write_bio_PUBKEY(bio.get(), key) == 1, "PEM_write_bio_PUBKEY");
}

// "sha256//" + base64(SHA-256(DER SubjectPublicKeyInfo)), as CURLOPT_PINNEDPUBLICKEY takes it.
std::string public_key_pin(EVP_PKEY* key) {
  const int length = i2d_PUBKEY(key, nullptr);
  check(length > 0, "i2d_PUBKEY");
  std::vector<unsigned char> der(static_cast<std::size_t>(length));
  unsigned char* out = der.data();
  check(i2d_PUBKEY(key, &out) == length, "i2d_PUBKEY");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der.data(), der.size(), digest);
  unsigned char base64[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1];
  const int encoded = EVP_EncodeBlock(base64, digest, SHA256_DIGEST_LENGTH);
  return "sha256//" + std::string(reinterpret_cast<const char*>(base64), static_cast<std::size_t>(encoded));
}

std::string join_alt_names(const CertOptions& options) {
  std::string names;
  for (const auto& dns : options.dns_names) names += (names.empty() ? "" : ",") + ("DNS:" + dns);
  for (const auto& ip : options.ip_addresses) names += (names.empty() ? "" : ",") + ("IP:" + ip);
  return names;
}

// ---------------------------------------------------------------------------
// HTTP helpers

std::optional<std::size_t> parse_size(std::string_view text) {
  std::size_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    default: return "Status";
  }
}

constexpr std::size_t kMaxRequestBytes = 1024 * 1024;
// A client that neither talks nor leaves is dropped after this long.
constexpr std::chrono::seconds kConnectionLimit{30};
// After the answer, how long the server waits for the client to close first.
constexpr std::chrono::seconds kLingerLimit{2};

}  // namespace

// ---------------------------------------------------------------------------
// TempDir

TempDir::TempDir(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  pattern += "/" + std::string(prefix) + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("TempDir: mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::file(std::string_view name) const { return path_ + "/" + std::string(name); }

// ---------------------------------------------------------------------------
// TestCa

CertOptions expired_cert_options() {
  CertOptions options;
  options.not_before = -std::chrono::hours(24 * 10);
  options.not_after = -std::chrono::hours(24);
  return options;
}

struct TestCa::Impl {
  TempDir dir{"passthru-tls"};
  PkeyPtr key;
  X509Ptr cert;
  std::string cert_file;
  std::string pin;
  std::string hashed_dir;
  int issued = 0;

  // A fresh certificate for `options`, signed by `signer_key` as `issuer`
  // (the certificate itself when self-signed), with its files written.
  IssuedCert make(const CertOptions& options, bool self_signed) {
    const int serial = ++issued;
    const std::string stem = dir.file((self_signed ? "self-" : "leaf-") + std::to_string(serial));
    PkeyPtr leaf_key = make_p256_key();
    X509Ptr leaf(X509_new());
    check(leaf != nullptr, "X509_new");
    check(X509_set_version(leaf.get(), X509_VERSION_3) == 1, "X509_set_version");
    set_random_serial(leaf.get());
    set_subject(leaf.get(), options.common_name);
    X509* issuer = self_signed ? leaf.get() : cert.get();
    EVP_PKEY* signer = self_signed ? leaf_key.get() : key.get();
    check(X509_set_issuer_name(leaf.get(), X509_get_subject_name(issuer)) == 1, "X509_set_issuer_name");
    set_validity(leaf.get(), options.not_before, options.not_after);
    check(X509_set_pubkey(leaf.get(), leaf_key.get()) == 1, "X509_set_pubkey");

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, leaf.get(), nullptr, nullptr, 0);
    add_extension(leaf.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(leaf.get(), &ctx, NID_key_usage, "critical,digitalSignature,keyAgreement");
    add_extension(leaf.get(), &ctx, NID_ext_key_usage,
                  options.usage == CertUsage::server ? "serverAuth" : "clientAuth");
    add_extension(leaf.get(), &ctx, NID_subject_key_identifier, "hash");
    if (!self_signed) add_extension(leaf.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    const std::string alt_names = join_alt_names(options);
    if (!alt_names.empty()) add_extension(leaf.get(), &ctx, NID_subject_alt_name, alt_names);
    check(X509_sign(leaf.get(), signer, EVP_sha256()) > 0, "X509_sign");

    IssuedCert issued_cert;
    issued_cert.cert_file = stem + "-cert.pem";
    issued_cert.key_file = stem + "-key.pem";
    issued_cert.pubkey_file = stem + "-pubkey.pem";
    write_cert(issued_cert.cert_file, leaf.get());
    write_key(issued_cert.key_file, leaf_key.get(), options.key_password);
    write_pubkey(issued_cert.pubkey_file, leaf_key.get());
    issued_cert.pin = public_key_pin(leaf_key.get());
    return issued_cert;
  }
};

TestCa::TestCa(std::string common_name) : impl_(std::make_unique<Impl>()) {
  auto& ca = *impl_;
  ca.key = make_p256_key();
  ca.cert.reset(X509_new());
  check(ca.cert != nullptr, "X509_new");
  X509* cert = ca.cert.get();
  check(X509_set_version(cert, X509_VERSION_3) == 1, "X509_set_version");
  set_random_serial(cert);
  set_subject(cert, common_name);
  check(X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1, "X509_set_issuer_name");
  set_validity(cert, -std::chrono::hours(24 * 30), std::chrono::hours(24 * 365));
  check(X509_set_pubkey(cert, ca.key.get()) == 1, "X509_set_pubkey");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  add_extension(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert, &ctx, NID_subject_key_identifier, "hash");
  check(X509_sign(cert, ca.key.get(), EVP_sha256()) > 0, "X509_sign");
  ca.cert_file = ca.dir.file("ca-cert.pem");
  write_cert(ca.cert_file, cert);
  ca.pin = public_key_pin(ca.key.get());
}

TestCa::~TestCa() = default;

const std::string& TestCa::cert_file() const noexcept { return impl_->cert_file; }
const std::string& TestCa::pin() const noexcept { return impl_->pin; }
const std::string& TestCa::dir() const noexcept { return impl_->dir.path(); }

IssuedCert TestCa::issue(const CertOptions& options) { return impl_->make(options, /*self_signed=*/false); }

IssuedCert TestCa::self_signed(const CertOptions& options) {
  return impl_->make(options, /*self_signed=*/true);
}

const std::string& TestCa::hashed_dir() {
  auto& ca = *impl_;
  if (!ca.hashed_dir.empty()) return ca.hashed_dir;
  int ok = 0;
  const unsigned long hash = X509_NAME_hash_ex(X509_get_subject_name(ca.cert.get()), nullptr, nullptr, &ok);
  check(ok == 1, "X509_NAME_hash_ex");
  const std::string dir = ca.dir.file("hashed");
  std::filesystem::create_directory(dir);
  char name[32];
  std::snprintf(name, sizeof(name), "%08lx.0", hash);
  std::filesystem::copy_file(ca.cert_file, dir + "/" + name);
  ca.hashed_dir = dir;
  return ca.hashed_dir;
}

// ---------------------------------------------------------------------------
// TlsServerOptions

TlsServerOptions TlsServerOptions::with(const IssuedCert& cert) {
  TlsServerOptions options;
  options.cert_file = cert.cert_file;
  options.key_file = cert.key_file;
  return options;
}

TlsServerOptions& TlsServerOptions::redirect_to(std::string target, int redirect_status) {
  status = redirect_status;
  location = std::move(target);
  body.clear();
  return *this;
}

// ---------------------------------------------------------------------------
// TlsTestServer

struct TlsTestServer::Context {
  SslCtxPtr ctx;
  std::string answer;  // the whole HTTP answer, the same for every request
};

// One accepted connection: handshake, one request, the answer, a lingering close.
class TlsTestServer::Connection {
 public:
  Connection(TlsTestServer& server, int fd)
      : server_(server), fd_(fd), deadline_(std::chrono::steady_clock::now() + kConnectionLimit) {}
  ~Connection() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void serve() {
    ssl_.reset(SSL_new(server_.context_->ctx.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_) != 1) {
      server_.record_handshake_failure("SSL_new/SSL_set_fd: " + openssl_errors());
      return;
    }
    std::string failure;
    if (drive([this] { return SSL_accept(ssl_.get()); }, &failure) != Io::ok) {
      server_.record_handshake_failure(failure);
      linger();
      return;
    }
    server_.record_handshake(SSL_version(ssl_.get()), SSL_get0_peer_certificate(ssl_.get()) != nullptr,
                             SSL_session_reused(ssl_.get()) == 1);
    auto target = read_request();
    if (!target) return linger();
    server_.record_request(std::move(*target));
    const std::string& answer = server_.context_->answer;
    if (drive([&] { return SSL_write(ssl_.get(), answer.data(), static_cast<int>(answer.size())); },
              nullptr) != Io::ok) {
      return;
    }
    drive([this] { return SSL_shutdown(ssl_.get()) >= 0 ? 1 : -1; }, nullptr);
    linger();
  }

 private:
  enum class Io { ok, failed, peer_gone, stopped, timed_out };

  // Waits for `events` on the connection, for the server to stop, or for `until`.
  Io wait(short events, std::chrono::steady_clock::time_point until) {
    pollfd fds[2] = {{fd_, events, 0}, {server_.stop_fd_, POLLIN, 0}};
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
      if (left <= 0) return Io::timed_out;
      const int n = ::poll(fds, 2, static_cast<int>(left));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Io::stopped;
      }
      if (n == 0) return Io::timed_out;
      if (fds[1].revents != 0) return Io::stopped;
      if ((fds[0].revents & POLLNVAL) != 0) return Io::peer_gone;
      return Io::ok;  // readable, writable, or an error the next call reports
    }
  }

  // Runs a non-blocking OpenSSL call until it succeeds, waiting as it asks.
  // On failure, `failure` (when given) gets OpenSSL's account of it.
  template <typename Op>
  Io drive(Op op, std::string* failure) {
    for (;;) {
      ERR_clear_error();
      const int result = op();
      if (result > 0) return Io::ok;
      const int error = SSL_get_error(ssl_.get(), result);
      Io waited = Io::failed;
      if (error == SSL_ERROR_WANT_READ) {
        waited = wait(POLLIN, deadline_);
      } else if (error == SSL_ERROR_WANT_WRITE) {
        waited = wait(POLLOUT, deadline_);
      }
      if (waited == Io::ok) continue;
      if (failure != nullptr) *failure = describe(error, waited);
      return waited == Io::ok ? Io::failed : waited;
    }
  }

  static std::string describe(int ssl_error, Io waited) {
    if (waited == Io::stopped) return "server stopped";
    if (waited == Io::timed_out) return "timed out";
    std::string text = openssl_errors();
    if (!text.empty()) return text;
    if (ssl_error == SSL_ERROR_ZERO_RETURN) return "peer sent close_notify";
    if (ssl_error == SSL_ERROR_SYSCALL) {
      return errno != 0 ? std::string("syscall: ") + std::strerror(errno) : "peer closed the connection";
    }
    return "SSL_get_error " + std::to_string(ssl_error);
  }

  // The request target of one HTTP/1.1 request (head, then a Content-Length body).
  std::optional<std::string> read_request() {
    std::string data;
    std::size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (data.size() > kMaxRequestBytes || !receive_more(data)) return std::nullopt;
    }
    const std::string_view head(data.data(), head_end);
    const auto line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return std::nullopt;
    std::string target(line.substr(sp1 + 1, sp2 - sp1 - 1));

    std::size_t content_length = 0;
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
      const auto end = rest.find("\r\n");
      const std::string_view header = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
      const auto colon = header.find(':');
      if (colon == std::string_view::npos) continue;
      if (iequals(trim(header.substr(0, colon)), "Content-Length")) {
        content_length = parse_size(trim(header.substr(colon + 1))).value_or(0);
      }
    }
    const std::size_t body_start = head_end + 4;
    while (data.size() < body_start + content_length) {
      if (data.size() > kMaxRequestBytes || !receive_more(data)) return std::nullopt;
    }
    return target;
  }

  bool receive_more(std::string& data) {
    char buffer[4096];
    int received = 0;
    const Io io = drive(
        [&] {
          received = SSL_read(ssl_.get(), buffer, sizeof(buffer));
          return received;
        },
        nullptr);
    if (io != Io::ok) return false;
    data.append(buffer, static_cast<std::size_t>(received));
    return true;
  }

  // Closes only after the client has: closing with unread data in the socket
  // would send a reset, which can overtake the answer or the alert the
  // client has not read yet.
  void linger() {
    ::shutdown(fd_, SHUT_WR);
    const auto until = std::min(deadline_, std::chrono::steady_clock::now() + kLingerLimit);
    for (;;) {
      if (wait(POLLIN, until) != Io::ok) return;
      char scratch[4096];
      const ssize_t n = ::recv(fd_, scratch, sizeof(scratch), 0);
      if (n == 0) return;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return;
    }
  }

  TlsTestServer& server_;
  int fd_;
  std::chrono::steady_clock::time_point deadline_;
  SslPtr ssl_;
};

TlsTestServer::TlsTestServer(TlsServerOptions options)
    : options_(std::move(options)), context_(std::make_unique<Context>()) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  check(ctx != nullptr, "SSL_CTX_new");
  if (options_.min_version != 0) {
    check(SSL_CTX_set_min_proto_version(ctx.get(), options_.min_version) == 1,
          "SSL_CTX_set_min_proto_version");
  }
  if (options_.max_version != 0) {
    check(SSL_CTX_set_max_proto_version(ctx.get(), options_.max_version) == 1,
          "SSL_CTX_set_max_proto_version");
  }
  if (options_.max_version != 0 && options_.max_version < TLS1_2_VERSION) {
    // OpenSSL 3 refuses TLS 1.0/1.1 (SHA-1 and MD5 signatures) above security level 0.
    SSL_CTX_set_security_level(ctx.get(), 0);
    check(SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0") == 1, "SSL_CTX_set_cipher_list");
  }
  check(SSL_CTX_use_certificate_chain_file(ctx.get(), options_.cert_file.c_str()) == 1,
        ("SSL_CTX_use_certificate_chain_file " + options_.cert_file).c_str());
  check(SSL_CTX_use_PrivateKey_file(ctx.get(), options_.key_file.c_str(), SSL_FILETYPE_PEM) == 1,
        ("SSL_CTX_use_PrivateKey_file " + options_.key_file).c_str());
  check(SSL_CTX_check_private_key(ctx.get()) == 1, "SSL_CTX_check_private_key");
  if (!options_.session_tickets) {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    check(SSL_CTX_set_num_tickets(ctx.get(), 0) == 1, "SSL_CTX_set_num_tickets");
  }
  static const unsigned char kSessionContext[] = "passthru-tls-test";
  check(SSL_CTX_set_session_id_context(ctx.get(), kSessionContext, sizeof(kSessionContext) - 1) == 1,
        "SSL_CTX_set_session_id_context");
  if (!options_.client_ca_file.empty()) {
    check(SSL_CTX_load_verify_locations(ctx.get(), options_.client_ca_file.c_str(), nullptr) == 1,
          ("SSL_CTX_load_verify_locations " + options_.client_ca_file).c_str());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options_.client_ca_file.c_str());
    check(names != nullptr, "SSL_load_client_CA_file");
    SSL_CTX_set_client_CA_list(ctx.get(), names);  // takes ownership
    SSL_CTX_set_verify(ctx.get(),
                       SSL_VERIFY_PEER | (options_.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       nullptr);
  }
  context_->ctx = std::move(ctx);

  std::string& answer = context_->answer;
  answer = "HTTP/1.1 " + std::to_string(options_.status) + " " + reason_phrase(options_.status) + "\r\n";
  if (!options_.content_type.empty()) answer += "Content-Type: " + options_.content_type + "\r\n";
  if (!options_.location.empty()) answer += "Location: " + options_.location + "\r\n";
  answer += "Content-Length: " + std::to_string(options_.body.size()) + "\r\nConnection: close\r\n\r\n";
  answer += options_.body;

  const LoopbackListener listener = open_loopback_listener("TlsTestServer", 1024);
  listen_fd_ = listener.listen_fd;
  stop_fd_ = listener.stop_fd;
  port_ = listener.port;
  acceptor_ = std::thread([this] { accept_loop(); });
}

TlsTestServer::~TlsTestServer() {
  const std::uint64_t one = 1;
  // The event stays readable from now on, waking every wait at once.
  [[maybe_unused]] const ssize_t written = ::write(stop_fd_, &one, sizeof(one));
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> connections;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    connections.swap(connections_);
  }
  for (auto& thread : connections) thread.join();
  ::close(stop_fd_);
}

std::string TlsTestServer::url(std::string_view path) const {
  return "https://localhost:" + std::to_string(port_) + std::string(path);
}

std::string TlsTestServer::url_ip(std::string_view path) const {
  return "https://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void TlsTestServer::accept_loop() {
  // OpenSSL's socket BIO writes with write(): a client that hangs up first
  // (a failed pin, a refused certificate) would raise SIGPIPE and kill the
  // test process. Blocked in this thread and the connection threads it
  // starts, the write fails with EPIPE instead. The process-wide disposition
  // is left alone, so the library under test still has to avoid SIGPIPE itself.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    const int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // EAGAIN after a spurious wake, or a connection already gone
    const int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    std::lock_guard<std::mutex> lock(mutex_);
    ++accepted_;
    connections_.emplace_back([this, fd] { serve(fd); });
    changed_.notify_all();
  }
}

void TlsTestServer::serve(int fd) {
  {
    Connection connection(*this, fd);
    connection.serve();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++finished_;
  }
  changed_.notify_all();
}

void TlsTestServer::record_handshake(int version, bool client_cert, bool resumed) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++handshakes_;
  if (resumed) ++resumed_;
  last_version_ = version;
  client_cert_ = client_cert;
}

void TlsTestServer::record_handshake_failure(std::string error) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++handshake_failures_;
  last_handshake_error_ = std::move(error);
}

void TlsTestServer::record_request(std::string target) {
  std::lock_guard<std::mutex> lock(mutex_);
  targets_.push_back(std::move(target));
}

std::size_t TlsTestServer::connections_accepted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return accepted_;
}

std::size_t TlsTestServer::connections_finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return finished_;
}

std::size_t TlsTestServer::handshakes_completed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return handshakes_;
}

std::size_t TlsTestServer::sessions_resumed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return resumed_;
}

std::size_t TlsTestServer::handshakes_failed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return handshake_failures_;
}

std::string TlsTestServer::last_handshake_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_handshake_error_;
}

int TlsTestServer::last_protocol_version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_version_;
}

bool TlsTestServer::client_cert_presented() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return client_cert_;
}

std::size_t TlsTestServer::requests_served() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return targets_.size();
}

std::vector<std::string> TlsTestServer::request_targets() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return targets_;
}

bool TlsTestServer::wait_for_finished_connections(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return finished_ >= n; });
}

}  // namespace passthru_test
