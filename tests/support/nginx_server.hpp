// Debian's nginx as a child process: a real HTTP/2 server (TLS, h2 offered
// by ALPN) for the tests, with an access log that says which connection and
// which protocol carried each request.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace passthru_test {

class TempDir;

/// Settings of an NginxServer.
struct NginxOptions {
  std::string cert_file;  ///< PEM server certificate (TestCa::issue()).
  std::string key_file;   ///< Its key, unencrypted.
  /// Offer HTTP/2 by ALPN (`listen ... ssl http2`); false: HTTP/1.1 only.
  bool http2 = true;
  /// Non-zero: requests to /slow are proxied to http://127.0.0.1:upstream_port,
  /// so a test can hold their answers (a TestHttpServer handler that waits).
  int upstream_port = 0;
};

/// One request in the access log.
struct NginxLogLine {
  std::uint64_t connection = 0;           ///< nginx's serial number of the connection.
  std::uint64_t connection_requests = 0;  ///< Requests the connection had carried by then.
  std::string protocol;                   ///< "HTTP/2.0", "HTTP/1.1".
  int status = 0;                         ///< 499 when the client gave up first.
  std::string uri;                        ///< The request target, "/crm?CallSid=abc123&...".
};

/// /usr/sbin/nginx on 127.0.0.1 at a free port, over TLS, serving
///   /crm    200 text/plain "vip-connect"
///   /slow   proxied to NginxOptions::upstream_port, when set
/// as one process (daemon off, master_process off) whose files live in a
/// temporary directory of its own.
///
/// The constructor returns once nginx has bound its port and accepts
/// connections, and throws std::runtime_error with nginx's own words when it
/// is not installed or does not start. The destructor stops and reaps it
/// (SIGTERM, then SIGKILL); should the test process die first, the kernel
/// kills it (PR_SET_PDEATHSIG), so no nginx outlives its test.
class NginxServer {
 public:
  explicit NginxServer(NginxOptions options);
  ~NginxServer();

  NginxServer(const NginxServer&) = delete;
  NginxServer& operator=(const NginxServer&) = delete;

  int port() const noexcept { return port_; }
  /// "https://127.0.0.1:PORT" + path.
  std::string url(std::string_view path = "/") const;

  /// The access log so far. nginx writes a request's line once it is done
  /// with it, which may be just after the client has its answer.
  std::vector<NginxLogLine> access_log() const;
  /// Waits until the access log holds at least `n` lines; false on timeout.
  bool wait_for_log_lines(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  /// The distinct connections in the access log.
  std::set<std::uint64_t> connections() const;
  /// What nginx wrote to its standard error (its error log), for failure messages.
  std::string error_output() const;

 private:
  bool start(const NginxOptions& options);
  void stop() noexcept;

  std::unique_ptr<TempDir> dir_;
  int pid_ = -1;
  int port_ = -1;
};

}  // namespace passthru_test
