// What the deadline and memory benchmarks share: a silent HTTP server in a
// child process, the process's descriptor limit, RSS and CPU readings,
// percentiles, and the one-line RESULT records the orchestrator collects.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new limit.
/// Call before forking the server, so that it inherits the limit too.
inline long raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<long>(limit.rlim_cur);
}

/// A field of /proc/self/status in kB ("VmRSS", "RssAnon"), -1 if absent.
inline long status_kb(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::size_t length = std::strlen(field);
  while (std::getline(status, line)) {
    if (line.compare(0, length, field) == 0 && line.size() > length && line[length] == ':') {
      return std::strtol(line.c_str() + length + 1, nullptr, 10);
    }
  }
  return -1;
}

/// User plus system CPU time of this process (every thread), in ms.
inline double cpu_ms() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

/// An HTTP server that accepts every connection and never answers: each
/// request waits for its timeout on an established connection, as against
/// a customer's server that hangs. It runs in a forked child, so that its
/// descriptors count against its own RLIMIT_NOFILE (10,000 connections
/// need 10,000 on each side) and its memory and CPU are not ours.
///
/// Construct it while no other thread runs (fork() copies only the caller).
class SilentServer {
 public:
  SilentServer() {
    void* shared = mmap(nullptr, sizeof(Counters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) fail("mmap");
    counters_ = new (shared) Counters;
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    // The backlog is capped by net.core.somaxconn; the child drains it fast.
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(listener, 65535) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      fail("silent server");
    }
    port_ = ntohs(address.sin_port);
    const pid_t parent = getpid();
    child_ = fork();
    if (child_ < 0) fail("fork");
    if (child_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      serve(listener, *counters_);
    }
    close(listener);
  }

  ~SilentServer() {
    kill(child_, SIGKILL);
    waitpid(child_, nullptr, 0);
    munmap(counters_, sizeof(Counters));
  }

  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/never"; }

  /// Connections open now.
  long open() const { return counters_->open.load(); }
  /// Open connections whose request has arrived: requests truly in flight.
  long waiting() const { return counters_->waiting.load(); }

  /// Waits until waiting() >= n or `limit` passes, calling `turn` between
  /// looks (an event loop's turn; a short sleep by default).
  template <typename Turn>
  bool wait_for_waiting(long n, Clock::duration limit, Turn turn) const {
    const auto until = Clock::now() + limit;
    while (waiting() < n) {
      if (Clock::now() >= until) return false;
      turn();
    }
    return true;
  }
  bool wait_for_waiting(long n, Clock::duration limit) const {
    return wait_for_waiting(n, limit, [] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
  }

 private:
  struct Counters {
    std::atomic<long> open{0};
    std::atomic<long> waiting{0};
  };

  [[noreturn]] static void fail(const char* what) {
    std::perror(what);
    std::exit(2);
  }

  // Edge-triggered epoll: one event when the request arrives (counted, never
  // read), one when the client closes (the descriptor is closed in turn).
  [[noreturn]] static void serve(int listener, Counters& counters) {
    const int poller = epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = listener;
    epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
    std::vector<char> arrived;  // by fd: the request has arrived
    std::vector<epoll_event> events(1024);
    for (;;) {
      const int count = epoll_wait(poller, events.data(), static_cast<int>(events.size()), -1);
      for (int i = 0; i < count; ++i) {
        const int fd = events[static_cast<std::size_t>(i)].data.fd;
        const std::uint32_t what = events[static_cast<std::size_t>(i)].events;
        if (fd == listener) {
          for (int peer; (peer = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
            epoll_event watch{};
            watch.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
            watch.data.fd = peer;
            epoll_ctl(poller, EPOLL_CTL_ADD, peer, &watch);
            if (arrived.size() <= static_cast<std::size_t>(peer))
              arrived.resize(static_cast<std::size_t>(peer) + 1);
            arrived[static_cast<std::size_t>(peer)] = 0;
            ++counters.open;
          }
          continue;
        }
        char& seen = arrived[static_cast<std::size_t>(fd)];
        if ((what & EPOLLIN) != 0 && seen == 0) {
          seen = 1;
          ++counters.waiting;
        }
        if ((what & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
          if (seen != 0) --counters.waiting;
          seen = 0;
          --counters.open;
          close(fd);  // also leaves the epoll set
        }
      }
    }
  }

  Counters* counters_ = nullptr;
  pid_t child_ = -1;
  int port_ = 0;
};

/// Lateness figures of one run, in ms relative to each request's deadline.
struct Lateness {
  double p50 = 0, p99 = 0, max = 0, earliest = 0;
};

inline Lateness summarize(std::vector<double> late_ms) {
  Lateness out;
  if (late_ms.empty()) return out;
  std::sort(late_ms.begin(), late_ms.end());
  const auto at = [&](double q) { return late_ms[static_cast<std::size_t>(q * (late_ms.size() - 1))]; };
  out.p50 = at(0.5);
  out.p99 = at(0.99);
  out.max = late_ms.back();
  out.earliest = late_ms.front();
  return out;
}

/// Builds one `RESULT {...}` line: a flat JSON object, keys in the order added.
class Result {
 public:
  explicit Result(const char* bench) { add("bench", bench); }
  Result& add(const char* key, const std::string& value) {
    std::string quoted = "\"";
    for (const char c : value) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    return raw(key, quoted + "\"");
  }
  Result& add(const char* key, const char* value) { return add(key, std::string(value)); }
  Result& add(const char* key, long value) { return raw(key, std::to_string(value)); }
  Result& add(const char* key, int value) { return raw(key, std::to_string(value)); }
  Result& add(const char* key, bool value) { return raw(key, value ? "true" : "false"); }
  Result& add(const char* key, double value) {
    char text[64];
    std::snprintf(text, sizeof text, "%.3f", value);
    return raw(key, text);
  }
  void print() const {
    std::printf("RESULT {%s}\n", fields_.c_str());
    std::fflush(stdout);
  }

 private:
  Result& raw(const char* key, const std::string& value) {
    if (!fields_.empty()) fields_ += ",";
    fields_ += "\"" + std::string(key) + "\":" + value;
    return *this;
  }
  std::string fields_;
};

/// True when `flag` is among the arguments.
inline bool has_flag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], flag) == 0) return true;
  }
  return false;
}

/// The argument after `flag`, or `fallback`.
inline std::string flag_value(int argc, char** argv, const char* flag, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], flag) == 0) return argv[i + 1];
  }
  return fallback;
}

}  // namespace bench
