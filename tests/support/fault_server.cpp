#include "fault_server.hpp"

#include "raw_socket_peers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>

namespace passthru_test {
namespace {

constexpr std::size_t kHugeBytes = 50u * 1024 * 1024;
constexpr std::size_t kHugeChunk = 64u * 1024;
constexpr std::size_t kMaxRequestBytes = 1024 * 1024;
constexpr std::string_view kApplet = "vip-connect";

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

std::string plain_answer(std::string_view status_line, std::string_view body) {
  return std::string(status_line) +
         "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + std::string(body);
}

const char* reason_phrase(int code) {
  switch (code) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    default: return "Redirect";
  }
}

}  // namespace

// One accepted connection: reads the request, then misbehaves as its path says.
class FaultServer::Connection {
 public:
  Connection(FaultServer& server, int fd) : server_(server), fd_(fd) {}
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void serve() {
    auto request = read_request();
    if (!request) return;
    path_ = request->path;
    server_.record_request(std::move(*request));
    if (path_ == "/keepalive-once") return keep_alive_once();
    behave();
  }

 private:
  enum class Io { ok, peer_gone, stopped, timed_out };

  // Waits for `events` on the connection, or for the server to stop.
  Io wait(short events, int timeout_ms) {
    pollfd fds[2] = {{fd_, events, 0}, {server_.stop_fd_, POLLIN, 0}};
    for (;;) {
      const int n = ::poll(fds, 2, timeout_ms);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Io::stopped;
      }
      if (n == 0) return Io::timed_out;
      if (fds[1].revents != 0) return Io::stopped;
      if ((fds[0].revents & (POLLERR | POLLNVAL)) != 0) return Io::peer_gone;
      return Io::ok;
    }
  }

  Io send_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        server_.record_sent(path_, static_cast<std::size_t>(n));
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const Io waited = wait(POLLOUT, -1);
        if (waited != Io::ok) return waited;
        continue;
      }
      return Io::peer_gone;  // EPIPE, ECONNRESET: the client went away
    }
    return Io::ok;
  }

  // Holds the connection for `timeout` (forever when negative), discarding
  // anything the client sends; returns early when the client closes or the
  // server stops.
  Io hold(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int timeout_ms = -1;
      if (timeout.count() >= 0) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return Io::timed_out;
        timeout_ms = static_cast<int>(left.count());
      }
      const Io waited = wait(POLLIN, timeout_ms);
      if (waited != Io::ok) return waited;
      char scratch[4096];
      const ssize_t n = ::recv(fd_, scratch, sizeof(scratch), 0);
      if (n == 0) return Io::peer_gone;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Io::peer_gone;
    }
  }

  std::optional<FaultRequest> read_request() {
    std::string data;
    std::size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (data.size() > kMaxRequestBytes || !receive_more(data)) return std::nullopt;
    }
    const std::string_view head(data.data(), head_end);
    FaultRequest request;
    const auto line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    const auto sp1 = line.find(' ');
    const auto sp2 = line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return std::nullopt;
    request.method = std::string(line.substr(0, sp1));
    request.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    request.path = request.target.substr(0, request.target.find('?'));

    std::size_t content_length = 0;
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
      const auto end = rest.find("\r\n");
      const std::string_view header = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
      const auto colon = header.find(':');
      if (colon == std::string_view::npos) continue;
      if (iequals(trim(header.substr(0, colon)), "Idempotency-Key")) {
        request.idempotency_key = std::string(trim(header.substr(colon + 1)));
      }
      if (iequals(trim(header.substr(0, colon)), "Content-Length")) {
        content_length = parse_size(trim(header.substr(colon + 1))).value_or(0);
      }
    }
    const std::size_t body_start = head_end + 4;
    while (data.size() < body_start + content_length) {
      if (data.size() > kMaxRequestBytes || !receive_more(data)) return std::nullopt;
    }
    request.body = data.substr(body_start, content_length);
    return request;
  }

  bool receive_more(std::string& data) {
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n > 0) {
        data.append(buffer, static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (wait(POLLIN, -1) != Io::ok) return false;
    }
  }

  void behave() {
    const std::string_view path = path_;
    if (path.rfind("/delay/", 0) == 0) {
      const auto ms = parse_size(path.substr(7));
      if (!ms) return not_found();
      if (hold(std::chrono::milliseconds(*ms)) != Io::timed_out) return;
      send_all(plain_answer("HTTP/1.1 200 OK", kApplet));
    } else if (path == "/hang") {
      hold(std::chrono::milliseconds(-1));
    } else if (path == "/close") {
      // Closing is the whole behaviour: the destructor does it.
    } else if (path.rfind("/reset-after-body/", 0) == 0) {
      const auto bytes = parse_size(path.substr(18));
      if (!bytes) return not_found();
      reset_after(*bytes);
    } else if (path == "/garbage") {
      send_all(std::string_view("\x16\x03\x01 hello not http\r\n\r\n"));
    } else if (path == "/huge") {
      huge(/*chunked=*/true);
    } else if (path == "/huge-length") {
      huge(/*chunked=*/false);
    } else if (path == "/drip") {
      drip();
    } else if (path.rfind("/redirect/", 0) == 0) {
      redirect(path.substr(10));
    } else if (path == "/continue-stall") {
      if (send_all("HTTP/1.1 100 Continue\r\n\r\n") != Io::ok) return;
      hold(std::chrono::milliseconds(-1));
    } else if (path == "/chunked") {
      send_all(
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
          "Connection: close\r\n\r\n4\r\nvip-\r\n7\r\nconnect\r\n0\r\n\r\n");
    } else if (path == "/http10") {
      send_all("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nvip-connect");
    } else if (path == "/target") {
      send_all(plain_answer("HTTP/1.1 200 OK", kApplet));
    } else {
      not_found();
    }
  }

  // The classic keep-alive race: the server drops an idle connection just as
  // the client reuses it, so the next request on it gets no answer.
  void keep_alive_once() {
    if (send_all("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nvip-connect") !=
        Io::ok) {
      return;
    }
    auto again = read_request();
    if (!again) return;
    server_.record_request(std::move(*again));
  }

  void not_found() { send_all(plain_answer("HTTP/1.1 404 Not Found", "no fault at " + path_)); }

  // Sends a head promising 100000 bytes and `bytes` of them, then aborts the
  // connection: SO_LINGER {1, 0} makes close() send RST instead of FIN.
  void reset_after(std::size_t bytes) {
    const std::string answer =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n" +
        std::string(bytes, 'v');
    if (send_all(answer) != Io::ok) return;
    // An abortive close discards what is still queued, so first let the
    // client's kernel take (acknowledge) everything sent: then the client
    // reads every byte before it sees the reset.
    for (;;) {
      int unsent = 0;
      if (::ioctl(fd_, TIOCOUTQ, &unsent) != 0 || unsent == 0) break;
      const Io waited = hold(std::chrono::milliseconds(1));
      if (waited != Io::timed_out) return;
    }
    const linger abort{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  }

  void huge(bool chunked) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n";
    head +=
        chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: " + std::to_string(kHugeBytes) + "\r\n";
    head += "Connection: close\r\n\r\n";
    if (send_all(head) != Io::ok) return;
    std::string chunk(kHugeChunk, 'x');
    if (chunked) {
      char size_line[32];
      const int n = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", kHugeChunk);
      chunk = std::string(size_line, static_cast<std::size_t>(n)) + chunk + "\r\n";
    }
    for (std::size_t sent = 0; sent < kHugeBytes; sent += kHugeChunk) {
      if (send_all(chunk) != Io::ok) return;
    }
    if (chunked) send_all("0\r\n\r\n");
  }

  void drip() {
    if (send_all("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n") != Io::ok) {
      return;
    }
    for (int i = 0; i < 1000; ++i) {
      if (send_all("v") != Io::ok) return;
      if (hold(std::chrono::seconds(1)) != Io::timed_out) return;
    }
  }

  void redirect(std::string_view code_and_kind) {
    const auto slash = code_and_kind.find('/');
    const auto code = parse_size(code_and_kind.substr(0, slash));
    if (slash == std::string_view::npos || !code) return not_found();
    const std::string_view kind = code_and_kind.substr(slash + 1);
    std::string location;
    if (kind == "http") {
      location = server_.url("/target");
    } else if (kind == "https") {
      location = "https://127.0.0.1:" + std::to_string(server_.port()) + "/target";
    } else if (kind == "file") {
      location = "file:///etc/passwd";
    } else {
      return not_found();
    }
    const int status = static_cast<int>(*code);
    send_all("HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\nLocation: " +
             location + "\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  }

  FaultServer& server_;
  int fd_;
  std::string path_;
};

FaultServer::FaultServer() {
  const LoopbackListener listener = open_loopback_listener("FaultServer", 4096);
  listen_fd_ = listener.listen_fd;
  stop_fd_ = listener.stop_fd;
  port_ = listener.port;
  acceptor_ = std::thread([this] { accept_loop(); });
}

FaultServer::~FaultServer() {
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

void FaultServer::accept_loop() {
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
    connections_.emplace_back([this, fd] {
      {
        Connection connection(*this, fd);
        connection.serve();
      }
      record_finished();
    });
    changed_.notify_all();
  }
}

std::string FaultServer::url(std::string_view path_and_query) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path_and_query);
}

void FaultServer::record_request(FaultRequest request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++received_[request.path];
    requests_.push_back(std::move(request));
  }
  changed_.notify_all();
}

void FaultServer::record_sent(const std::string& path, std::size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    sent_[path] += bytes;
  }
  changed_.notify_all();
}

void FaultServer::record_finished() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++finished_;
  }
  changed_.notify_all();
}

std::size_t FaultServer::received_count(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = received_.find(path);
  return it == received_.end() ? 0 : it->second;
}

std::vector<FaultRequest> FaultServer::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

std::size_t FaultServer::bytes_sent(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = sent_.find(path);
  return it == sent_.end() ? 0 : it->second;
}

std::size_t FaultServer::connections_accepted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return accepted_;
}

std::size_t FaultServer::connections_finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return finished_;
}

bool FaultServer::wait_for_requests(const std::string& path, std::size_t n,
                                    std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    const auto it = received_.find(path);
    return it != received_.end() && it->second >= n;
  });
}

bool FaultServer::wait_for_bytes_sent(const std::string& path, std::size_t n,
                                      std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    const auto it = sent_.find(path);
    return it != sent_.end() && it->second >= n;
  });
}

bool FaultServer::wait_for_finished_connections(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return finished_ >= n; });
}

}  // namespace passthru_test
