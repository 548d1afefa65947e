#include "nginx_server.hpp"

#include "tls_fixtures.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace passthru_test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kNginx = "/usr/sbin/nginx";
constexpr auto kStartTimeout = std::chrono::seconds(15);
constexpr auto kStopTimeout = std::chrono::seconds(5);
constexpr auto kPollInterval = std::chrono::milliseconds(5);
// The port is found free, then handed to nginx: another process may take it
// in between, and nginx then exits with EADDRINUSE and is started again.
constexpr int kStartAttempts = 5;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("NginxServer: cannot write " + path);
}

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// A port nothing listens on now: bound on 127.0.0.1:0, then released.
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("NginxServer: socket: ") + std::strerror(errno));
  sockaddr_in address = loopback(0);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("NginxServer: finding a free port: " + error);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

bool accepts_connections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const sockaddr_in address = loopback(port);
  const bool connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

std::string configuration(const NginxOptions& options, const TempDir& dir, int port) {
  std::ostringstream conf;
  const std::string& d = dir.path();
  conf << "daemon off;\n"
       << "master_process off;\n"
       << "pid " << d << "/nginx.pid;\n"
       << "error_log stderr warn;\n"
       << "events { worker_connections 1024; }\n"
       << "http {\n"
       // Debian's compiled-in paths are under /var/lib/nginx: keep to our directory.
       << "  client_body_temp_path " << d << "/client_body;\n"
       << "  proxy_temp_path " << d << "/proxy;\n"
       << "  fastcgi_temp_path " << d << "/fastcgi;\n"
       << "  uwsgi_temp_path " << d << "/uwsgi;\n"
       << "  scgi_temp_path " << d << "/scgi;\n"
       << "  log_format passthru_test '$connection $connection_requests $server_protocol $status "
          "$request_uri';\n"
       << "  access_log " << d << "/access.log passthru_test;\n"
       << "  default_type text/plain;\n"
       << "  keepalive_requests 100000;\n"
       << "  keepalive_timeout 60s;\n"
       << "  server {\n"
       << "    listen 127.0.0.1:" << port << (options.http2 ? " ssl http2;\n" : " ssl;\n")
       << "    ssl_certificate " << options.cert_file << ";\n"
       << "    ssl_certificate_key " << options.key_file << ";\n"
       << "    location /crm { return 200 \"vip-connect\"; }\n";
  if (options.upstream_port != 0) {
    conf << "    location /slow {\n"
         << "      proxy_pass http://127.0.0.1:" << options.upstream_port << ";\n"
         << "      proxy_read_timeout 120s;\n"
         << "    }\n";
  }
  conf << "    location / { return 404; }\n"
       << "  }\n"
       << "}\n";
  return conf.str();
}

}  // namespace

NginxServer::NginxServer(NginxOptions options) : dir_(std::make_unique<TempDir>("passthru-nginx")) {
  if (::access(kNginx, X_OK) != 0) {
    throw std::runtime_error(std::string("NginxServer: ") + kNginx +
                             " not found: the HTTP/2 tests need Debian's nginx package "
                             "(apt-get install nginx; .ci/install-deps installs it)");
  }
  for (int attempt = 1;; ++attempt) {
    if (start(options)) return;
    const std::string output = error_output();
    if (attempt == kStartAttempts || output.find("Address already in use") == std::string::npos) {
      throw std::runtime_error("NginxServer: nginx exited at start: " + output);
    }
  }
}

NginxServer::~NginxServer() { stop(); }

bool NginxServer::start(const NginxOptions& options) {
  port_ = free_loopback_port();
  const std::string conf = dir_->file("nginx.conf");
  const std::string pid_file = dir_->file("nginx.pid");
  write_file(conf, configuration(options, *dir_, port_));
  ::unlink(pid_file.c_str());

  // Everything the child needs is made before fork(): after it, in a process
  // with other threads, only async-signal-safe calls.
  std::vector<std::string> args = {kNginx, "-p", dir_->path() + "/", "-c", conf, "-e", "stderr"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int output = ::open(dir_->file("stderr.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int input = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (output < 0 || input < 0) {
    if (output >= 0) ::close(output);
    if (input >= 0) ::close(input);
    throw std::runtime_error(std::string("NginxServer: open: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(input, 0);
    ::dup2(output, 1);
    ::dup2(output, 2);
    // No descriptor of the test process (a client's socket) may stay open in nginx.
    if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    }
    ::execv(kNginx, argv.data());
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(output);
  ::close(input);
  if (pid < 0) throw std::runtime_error(std::string("NginxServer: fork: ") + std::strerror(fork_error));
  pid_ = pid;

  // nginx writes its pid file once its sockets are bound, so a listener on
  // the port is known to be this nginx, not whoever took the port first.
  const auto deadline = Clock::now() + kStartTimeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (read_file(pid_file) == std::to_string(pid_) + "\n" && accepts_connections(port_)) return true;
    std::this_thread::sleep_for(kPollInterval);
  }
  stop();
  throw std::runtime_error("NginxServer: nginx did not accept connections within 15 s: " + error_output());
}

void NginxServer::stop() noexcept {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + kStopTimeout;
  for (;;) {
    int status = 0;
    const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_ || (reaped < 0 && errno != EINTR)) break;
    if (Clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  pid_ = -1;
}

std::string NginxServer::url(std::string_view path) const {
  return "https://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

std::vector<NginxLogLine> NginxServer::access_log() const {
  std::vector<NginxLogLine> lines;
  std::istringstream log(read_file(dir_->file("access.log")));
  std::string text;
  while (std::getline(log, text)) {
    std::istringstream fields(text);
    NginxLogLine line;
    if (fields >> line.connection >> line.connection_requests >> line.protocol >> line.status >> line.uri) {
      lines.push_back(std::move(line));
    }
  }
  return lines;
}

bool NginxServer::wait_for_log_lines(std::size_t n, std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (access_log().size() >= n) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::set<std::uint64_t> NginxServer::connections() const {
  std::set<std::uint64_t> ids;
  for (const NginxLogLine& line : access_log()) ids.insert(line.connection);
  return ids;
}

std::string NginxServer::error_output() const { return read_file(dir_->file("stderr.log")); }

}  // namespace passthru_test
