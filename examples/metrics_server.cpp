// Serves a PassthruClient's metrics for Prometheus: GET /metrics renders
// passthru::to_prometheus(client.metrics()) on every scrape.
//
// To have something to show, it plays a customer server on loopback (fast
// applet names, empty bodies, 503s, slow answers, the odd answer too late)
// and sends calls through two steps, "crm-lookup" and "call-log", until
// SIGINT or SIGTERM.
//
// Usage: metrics_server [--port N] [--calls-per-second N] [--duration-seconds N] [--customer-url URL]
//   --port N              where /metrics listens on 127.0.0.1 (default 9464; 0 picks a free port)
//   --calls-per-second N  default 20
//   --duration-seconds N  stop after N seconds (default: only on a signal)
//   --customer-url URL    send both steps to a real server instead of the built-in one
//
// The first line on standard output is "metrics on http://127.0.0.1:PORT/metrics".
// Prometheus scrape config:  - targets: ['127.0.0.1:9464']
#include <passthru/passthru.hpp>

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

using std::chrono::milliseconds;

struct Settings {
  int port = 9464;
  double calls_per_second = 20;
  double duration_seconds = 0;  // 0: until a signal
  std::string customer_url;     // empty: the built-in customer server
};

// An httplib server on 127.0.0.1, listening on its own thread until destroyed.
class LoopbackServer {
 public:
  // `port` 0 picks a free port. `setup` adds the handlers.
  template <typename Setup>
  LoopbackServer(int port, Setup setup) {
    http_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    // One request per connection: a worker never idles on a kept-alive one.
    http_.set_keep_alive_max_count(1);
    http_.set_tcp_nodelay(true);
    setup(http_);
    port_ =
        port == 0 ? http_.bind_to_any_port("127.0.0.1") : (http_.bind_to_port("127.0.0.1", port) ? port : -1);
    if (port_ <= 0) throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port));
    // httplib 0.11 listens with a backlog of 5; a burst of calls would overflow it.
    ::listen(http_.listening_socket(), 1024);
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    // stop() does nothing until the accept loop runs; httplib 0.11 has no event for it.
    while (!http_.is_running()) std::this_thread::sleep_for(milliseconds(1));
  }

  ~LoopbackServer() {
    http_.stop();
    thread_.join();
  }

  int port() const { return port_; }

 private:
  struct Http : httplib::Server {  // Reaches the listening socket, which httplib keeps protected.
    socket_t listening_socket() const { return svr_sock_; }
  };
  Http http_;
  int port_ = -1;
  std::thread thread_;
};

// The customer's server: a mix of what real ones answer, by request number.
void serve_customer(httplib::Server& http) {
  static std::atomic<unsigned> lookups{0}, logs{0};
  http.Get("/crm-lookup", [](const httplib::Request&, httplib::Response& res) {
    const unsigned n = lookups++ % 20;
    if (n < 10) {
      res.set_content(n % 2 == 0 ? "vip-connect" : "standard-queue", "text/plain");
    } else if (n < 13) {
      res.status = 200;  // an empty body: the step's default_next
    } else if (n < 16) {
      res.status = 503;
      res.set_content("database unavailable", "text/plain");
    } else {
      // Slower than the client's slow_answer_threshold; the last one past the step's timeout.
      std::this_thread::sleep_for(n < 19 ? milliseconds(300) : milliseconds(1200));
      res.set_content("standard-queue", "text/plain");
    }
  });
  http.Post("/call-log", [](const httplib::Request&, httplib::Response& res) {
    res.status = logs++ % 10 == 0 ? 503 : 204;
  });
}

passthru::StepConfig crm_lookup(const std::string& url) {
  passthru::StepOptions options;
  options.name = "crm-lookup";  // the metrics' step label
  options.url = url;
  options.method = passthru::Method::get;
  options.timeout = milliseconds(1000);
  options.routes.default_next = "main-menu";
  options.routes.on_error = "apology-greeting";
  options.routes.on_timeout = "general-queue";
  options.routes.known_applets = {"vip-connect", "standard-queue"};
  return passthru::StepConfig::build(options);
}

passthru::StepConfig call_log(const std::string& url) {
  passthru::StepOptions options;
  options.name = "call-log";
  options.url = url;
  options.method = passthru::Method::post;
  options.timeout = milliseconds(2000);
  options.routes.default_next = "continue";  // logging never changes the call's path
  return passthru::StepConfig::build(options);
}

bool parse(int argc, char** argv, Settings& settings) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--port") {
      settings.port = std::atoi(value);
    } else if (flag == "--calls-per-second") {
      settings.calls_per_second = std::atof(value);
    } else if (flag == "--duration-seconds") {
      settings.duration_seconds = std::atof(value);
    } else if (flag == "--customer-url") {
      settings.customer_url = value;
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && settings.port >= 0 && settings.port <= 65535 && settings.calls_per_second > 0 &&
         settings.duration_seconds >= 0;
}

}  // namespace

#if defined(__SANITIZE_THREAD__)
// Debian's libcpp-httplib is not built with TSan: the inlined guards of its static regexes
// look like races to it. Ignore what that library does; passthru and this file stay checked.
extern "C" const char* __tsan_default_suppressions() { return "called_from_lib:libcpp-httplib.so\n"; }
#endif

int main(int argc, char** argv) {
  Settings settings;
  if (!parse(argc, argv, settings)) {
    std::cerr << "usage: metrics_server [--port N] [--calls-per-second N] [--duration-seconds N]"
                 " [--customer-url URL]\n";
    return 2;
  }

  // SIGINT and SIGTERM are blocked in every thread (so before any starts) and
  // taken by sigtimedwait() in the call loop: no signal handler needed.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    // Declared in this order so they stop in the reverse one: the metrics
    // endpoint, then the client (its requests end cancelled), then the
    // customer server it talks to.
    std::unique_ptr<LoopbackServer> customer;
    std::string lookup_url = settings.customer_url, log_url = settings.customer_url;
    if (settings.customer_url.empty()) {
      customer = std::make_unique<LoopbackServer>(0, serve_customer);
      const std::string origin = "http://127.0.0.1:" + std::to_string(customer->port());
      lookup_url = origin + "/crm-lookup";
      log_url = origin + "/call-log";
    }
    const passthru::StepConfig lookup = crm_lookup(lookup_url);
    const passthru::StepConfig log = call_log(log_url);

    passthru::ClientOptions options;
    options.log_level = passthru::LogLevel::info;       // one line per request on standard error
    options.slow_answer_threshold = milliseconds(250);  // the guide's 3 s is too long for a demo
    passthru::PassthruClient client(options);

    LoopbackServer metrics(settings.port, [&client](httplib::Server& http) {
      http.Get("/metrics", [&client](const httplib::Request&, httplib::Response& res) {
        res.set_content(passthru::to_prometheus(client.metrics()),
                        "text/plain; version=0.0.4; charset=utf-8");
      });
    });
    std::cout << "metrics on http://127.0.0.1:" << metrics.port() << "/metrics" << std::endl;

    // One call a tick; each goes through both steps, as an engine's flow would.
    using Clock = std::chrono::steady_clock;
    const auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / settings.calls_per_second));
    const auto end = settings.duration_seconds > 0
                         ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(settings.duration_seconds))
                         : Clock::time_point::max();
    unsigned long calls = 0;
    for (auto next = Clock::now(); next < end; next += interval) {
      // Waits for the next tick, or returns early with a stop signal (a
      // zero wait, when behind, still picks up a pending one).
      const auto wait = std::max(std::chrono::duration_cast<std::chrono::nanoseconds>(next - Clock::now()),
                                 std::chrono::nanoseconds(0));
      const timespec timeout{static_cast<std::time_t>(wait.count() / 1000000000),
                             static_cast<long>(wait.count() % 1000000000)};
      if (sigtimedwait(&stop_signals, nullptr, &timeout) > 0) break;
      passthru::CallContext call;
      call.call_sid = "demo-" + std::to_string(++calls);
      call.call_from = "+9198765" + std::to_string(10000 + calls % 90000);
      call.call_to = "+914412345678";
      // A real engine resumes the call from these callbacks.
      client.execute(lookup, call, [](passthru::Outcome) {});
      client.execute(log, std::move(call), [](passthru::Outcome) {});
    }
    std::cerr << "stopping after " << calls << " calls\n";
  } catch (const std::exception& error) {
    std::cerr << "metrics_server: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
