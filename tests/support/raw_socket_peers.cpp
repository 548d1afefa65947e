#include "raw_socket_peers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace passthru_test {
namespace {

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

// A TCP socket bound to 127.0.0.1 on a port the kernel picks; returns the fd
// and stores the port.
int bind_loopback(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    fail("bind 127.0.0.1:0");
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    fail("getsockname");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

std::string loopback_url(int port, std::string_view path_and_query) {
  return "http://127.0.0.1:" + std::to_string(port) + std::string(path_and_query);
}

}  // namespace

SilentServer::SilentServer() {
  fd_ = bind_loopback(port_);
  if (::listen(fd_, 4096) != 0) {
    ::close(fd_);
    fail("listen");
  }
}

SilentServer::~SilentServer() { ::close(fd_); }

std::string SilentServer::url(std::string_view path_and_query) const {
  return loopback_url(port_, path_and_query);
}

RefusedPort::RefusedPort() { fd_ = bind_loopback(port_); }

RefusedPort::~RefusedPort() { ::close(fd_); }

std::string RefusedPort::url(std::string_view path_and_query) const {
  return loopback_url(port_, path_and_query);
}

LoopbackListener open_loopback_listener(const char* owner, int backlog) {
  LoopbackListener out;
  const auto give_up = [&](const char* what) {
    const int saved = errno;
    if (out.listen_fd >= 0) ::close(out.listen_fd);
    if (out.stop_fd >= 0) ::close(out.stop_fd);
    throw std::runtime_error(std::string(owner) + ": " + what + ": " + std::strerror(saved));
  };
  out.stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (out.stop_fd < 0) give_up("eventfd");
  out.listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (out.listen_fd < 0) give_up("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(out.listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    give_up("bind 127.0.0.1:0");
  socklen_t len = sizeof(addr);
  if (::getsockname(out.listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) give_up("getsockname");
  out.port = ntohs(addr.sin_port);
  if (::listen(out.listen_fd, backlog) != 0) give_up("listen");
  return out;
}

}  // namespace passthru_test
