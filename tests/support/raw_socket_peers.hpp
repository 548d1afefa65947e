// Raw TCP peers on 127.0.0.1 for failure paths: one that never answers, one that refuses.
#pragma once

#include <string>
#include <string_view>

namespace passthru_test {

/// Listens on 127.0.0.1:0 with a large backlog and never accepts: the kernel
/// completes the handshake, the client sends its request, and no answer ever
/// comes. For timeouts and cancellation.
class SilentServer {
 public:
  SilentServer();
  ~SilentServer();

  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;

  int port() const noexcept { return port_; }
  /// "http://127.0.0.1:PORT" + path_and_query.
  std::string url(std::string_view path_and_query = "/") const;

 private:
  int fd_ = -1;
  int port_ = -1;
};

/// A port on 127.0.0.1 where connect() is refused: a bound TCP socket that
/// never listens, held for the object's lifetime so no one else takes the port.
class RefusedPort {
 public:
  RefusedPort();
  ~RefusedPort();

  RefusedPort(const RefusedPort&) = delete;
  RefusedPort& operator=(const RefusedPort&) = delete;

  int port() const noexcept { return port_; }
  /// "http://127.0.0.1:PORT" + path_and_query.
  std::string url(std::string_view path_and_query = "/") const;

 private:
  int fd_ = -1;
  int port_ = -1;
};

/// A listening socket on 127.0.0.1:0 and an eventfd to stop an accept loop:
/// what FaultServer and TlsTestServer each start with. Throws
/// std::runtime_error naming `owner` and the failing call.
struct LoopbackListener {
  int listen_fd = -1;  ///< non-blocking, close-on-exec
  int stop_fd = -1;    ///< eventfd, non-blocking; write to it to stop
  int port = -1;
};
LoopbackListener open_loopback_listener(const char* owner, int backlog);

}  // namespace passthru_test
