// How late do timeouts arrive? Requests go to a listener that never answers;
// each outcome's arrival is compared with its own deadline (execute() time +
// timeout). Prints lateness p50/p99/max and the earliest arrival, which must
// never be before the deadline.
//
// Usage: deadline_lateness
#include <passthru/passthru.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Listens on 127.0.0.1 and never accepts: the kernel completes handshakes
// into the backlog, and nothing is ever answered.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd_, 65535) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      std::perror("silent listener");
      std::exit(2);
    }
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() { close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/never"; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct Scenario {
  const char* name;
  int requests;
  milliseconds first_timeout;
  milliseconds spread;  // timeouts run from first_timeout to first_timeout + spread
};

void run(const Scenario& scenario, const std::string& url) {
  passthru::ClientOptions options;
  options.log_level = passthru::LogLevel::off;
  options.max_in_flight = 0;
  passthru::PassthruClient client(options);

  std::vector<passthru::StepConfig> steps;
  const int distinct = scenario.spread.count() == 0 ? 1 : 100;
  for (int i = 0; i < distinct; ++i) {
    passthru::StepOptions step;
    step.url = url;
    step.timeout = scenario.first_timeout + scenario.spread * i / distinct;
    step.routes.default_next = "menu";
    steps.push_back(passthru::StepConfig::build(step));
  }

  std::mutex mutex;
  std::condition_variable done;
  std::vector<double> lateness_ms;
  lateness_ms.reserve(static_cast<std::size_t>(scenario.requests));
  int not_timeout = 0;
  for (int i = 0; i < scenario.requests; ++i) {
    const auto& step = steps[static_cast<std::size_t>(i % distinct)];
    const auto deadline = Clock::now() + step.options().timeout;
    client.execute(step, {}, [&, deadline](passthru::Outcome outcome) {
      const double late = std::chrono::duration<double, std::milli>(Clock::now() - deadline).count();
      std::lock_guard<std::mutex> lock(mutex);
      if (outcome.route != passthru::Route::on_timeout) ++not_timeout;
      lateness_ms.push_back(late);
      if (lateness_ms.size() == static_cast<std::size_t>(scenario.requests)) done.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return lateness_ms.size() == static_cast<std::size_t>(scenario.requests); });
  std::sort(lateness_ms.begin(), lateness_ms.end());
  const auto at = [&](double q) {
    return lateness_ms[static_cast<std::size_t>(q * (lateness_ms.size() - 1))];
  };
  std::printf("%-44s %7d %9.3f %9.3f %9.3f %10.3f %s\n", scenario.name, scenario.requests, at(0.5), at(0.99),
              lateness_ms.back(), lateness_ms.front(),
              lateness_ms.front() < 0 || not_timeout != 0 ? "EARLY OR MISROUTED" : "ok");
}

}  // namespace

int main() {
  SilentListener silent;
  std::printf("%-44s %7s %9s %9s %9s %10s\n", "scenario (lateness in ms)", "n", "p50", "p99", "max",
              "earliest");
  run({"1,000 due in the same millisecond (200 ms)", 1000, milliseconds(200), milliseconds(0)}, silent.url());
  run({"10,000 with deadlines spread over 1 s", 10000, milliseconds(500), milliseconds(1000)}, silent.url());
}
