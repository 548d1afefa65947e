// Guide use case 1, "CRM Lookup for VIP Routing", end to end: an embedded customer
// server plays the CRM, and N simulated calls run concurrently through one Passthru
// step. The program checks itself: it exits 1 unless every call got exactly one
// outcome, routed where the CRM was built to send it.
//
// Usage: crm_vip_routing [calls]   (default 300, 1 to 500)

#include <passthru/passthru.hpp>

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kStepTimeout{500};
constexpr milliseconds kSlowLookup{800};     // Past kStepTimeout: these calls must go on-timeout.
constexpr milliseconds kOverallWait{30000};  // Only stops a broken build from hanging CI.
constexpr std::size_t kDefaultCalls = 300;
// The 64 server threads queue a burst (300 lookups of ~20 ms is ~100 ms of queueing,
// visible in the latencies); past ~500 calls the last ones would time out.
constexpr std::size_t kMaxCalls = 500;

enum class Tier { vip, regular, unknown };
enum class Fault { none, slow, failing };

// One simulated caller, and how the CRM was built to treat their lookup.
struct Caller {
  std::string number;
  Tier tier = Tier::unknown;
  Fault fault = Fault::none;
  milliseconds lookup_latency{0};
};

const char* applet_for(Tier tier) {
  static const char* const kApplets[] = {"vip-connect", "standard-queue", "new-customer"};
  return kApplets[static_cast<int>(tier)];
}

std::string class_of(const Caller& caller) {
  static const char* const kTiers[] = {"vip", "regular", "unknown"};
  static const char* const kFaults[] = {"", "+slow", "+503"};
  return std::string(kTiers[static_cast<int>(caller.tier)]) + kFaults[static_cast<int>(caller.fault)];
}

std::string route_label(passthru::Route route, const std::string& target) {
  return std::string(passthru::to_string(route)) + " -> " + (target.empty() ? "(none)" : target);
}

// Where the step must send each caller: what the library is checked against.
std::string expected_label(const Caller& caller) {
  if (caller.fault == Fault::slow) return route_label(passthru::Route::on_timeout, "general-queue");
  if (caller.fault == Fault::failing) return route_label(passthru::Route::on_error, "apology-greeting");
  return route_label(passthru::Route::next_applet, applet_for(caller.tier));
}

// A fixed seed, so every run builds the same callers and outputs compare.
std::vector<Caller> make_callers(std::size_t count) {
  std::mt19937 rng(20240115);
  std::uniform_int_distribution<int> percent(0, 99);
  std::uniform_int_distribution<int> latency_ms(3, 40);  // A CRM database on a good day.
  std::vector<Caller> callers(count);
  for (std::size_t i = 0; i < count; ++i) {
    char number[24];  // Distinct "+9198........" numbers: 7919 is coprime with 10^8.
    std::snprintf(number, sizeof number, "+9198%08zu", (12345678 + i * 7919) % 100000000);
    const int draw = percent(rng);
    callers[i].number = number;
    callers[i].tier = draw < 20 ? Tier::vip : draw < 70 ? Tier::regular : Tier::unknown;
    callers[i].lookup_latency = milliseconds(latency_ms(rng));
  }
  // Exactly 2% (at least one) slow and 2% failing lookups, spread over all tiers.
  std::vector<std::size_t> order(count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  const std::size_t faulty = std::max<std::size_t>(1, count / 50);
  for (std::size_t k = 0; k < 2 * faulty && k < count; ++k) {
    Caller& caller = callers[order[k]];
    caller.fault = k < faulty ? Fault::slow : Fault::failing;
    if (caller.fault == Fault::slow) caller.lookup_latency = kSlowLookup;
  }
  return callers;
}

// The customer's server: POST /crm with the guide's form fields, answering an applet name.
class CrmServer {
 public:
  explicit CrmServer(const std::vector<Caller>& callers) {
    for (const Caller& caller : callers) directory_.emplace(caller.number, &caller);

    http_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    // An httplib worker stays with one connection for its whole keep-alive life, so
    // idle kept-alive connections would starve the queued calls: one request each.
    http_.set_keep_alive_max_count(1);
    // httplib writes headers and body separately; Nagle plus delayed ACK would add 40 ms.
    http_.set_tcp_nodelay(true);
    // httplib's default also sets SO_REUSEPORT, which can let two servers share a port.
    http_.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    http_.Post("/crm", [this](const httplib::Request& req, httplib::Response& res) { answer(req, res); });

    port_ = http_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("cannot bind 127.0.0.1:0");
    // httplib 0.11 listens with a backlog of 5: a burst of calls overflows it, and each
    // dropped SYN is retried after 1 s, past the step's timeout. Listening again raises it.
    if (::listen(http_.listening_socket(), 1024) != 0) throw std::runtime_error("cannot raise backlog");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    // stop() does nothing until the accept loop runs, and httplib 0.11 has no event for it.
    while (!http_.is_running()) std::this_thread::sleep_for(milliseconds(1));
  }

  ~CrmServer() {
    http_.stop();  // Its thread pool also finishes the slow lookups still sleeping.
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/crm"; }

 private:
  struct Http : httplib::Server {  // Reaches the listening socket, which httplib keeps protected.
    socket_t listening_socket() const { return svr_sock_; }
  };

  // Runs on many server threads at once; directory_ is read-only by then.
  void answer(const httplib::Request& req, httplib::Response& res) const {
    const auto found = directory_.find(req.get_param_value("CallFrom"));
    const Caller* caller = found == directory_.end() ? nullptr : found->second;
    std::this_thread::sleep_for(caller ? caller->lookup_latency : milliseconds(5));  // The database.
    if (caller && caller->fault == Fault::failing) {
      res.status = 503;
      res.set_content("CRM unavailable", "text/plain");
      return;
    }
    res.set_content(applet_for(caller ? caller->tier : Tier::unknown), "application/plain");  // As the guide.
  }

  std::unordered_map<std::string, const Caller*> directory_;
  Http http_;
  int port_ = 0;
  std::thread thread_;
};

// A latch that also keeps each call's outcome. record() runs on the client's driver
// thread, which must not block, so it only stores under a short lock.
class OutcomeBoard {
 public:
  explicit OutcomeBoard(std::size_t calls) : outcomes_(calls), deliveries_(calls, 0), pending_(calls) {}

  void record(std::size_t call, passthru::Outcome outcome) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (++deliveries_[call] != 1) return;  // A duplicate must not release the latch early.
      outcomes_[call] = std::move(outcome);
      if (--pending_ != 0) return;
    }
    all_done_.notify_all();
  }

  bool wait_all(milliseconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    return all_done_.wait_for(lock, limit, [this] { return pending_ == 0; });
  }

  // Read these only after the client is destroyed: then no callback can run any more.
  const std::vector<passthru::Outcome>& outcomes() const { return outcomes_; }
  const std::vector<int>& deliveries() const { return deliveries_; }

 private:
  std::mutex mutex_;
  std::condition_variable all_done_;
  std::vector<passthru::Outcome> outcomes_;
  std::vector<int> deliveries_;
  std::size_t pending_;
};

double percentile_ms(const std::vector<std::chrono::microseconds>& sorted, double p) {
  const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  return static_cast<double>(sorted[std::max<std::size_t>(rank, 1) - 1].count()) / 1000.0;
}

}  // namespace

#if defined(__SANITIZE_THREAD__)
// Debian's libcpp-httplib is not built with TSan: the inlined guards of its static regexes
// look like races to it. Ignore what that library does; passthru and this file stay checked.
extern "C" const char* __tsan_default_suppressions() { return "called_from_lib:libcpp-httplib.so\n"; }
#endif

int main(int argc, char** argv) try {
  const std::size_t calls = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : kDefaultCalls;
  if (calls < 1 || calls > kMaxCalls) throw std::invalid_argument("usage: crm_vip_routing [calls], 1 to 500");
  const std::vector<Caller> callers = make_callers(calls);
  CrmServer crm(callers);

  // Built once per flow, not per call: validated here, then shared by every call.
  passthru::StepOptions options;
  options.name = "crm-lookup";
  options.url = crm.url();
  options.method = passthru::Method::post;
  options.timeout = kStepTimeout;
  options.routes.default_next = "main-menu";
  options.routes.on_error = "apology-greeting";
  options.routes.on_timeout = "general-queue";
  options.routes.known_applets = {"vip-connect", "standard-queue", "new-customer"};
  const passthru::StepConfig step = passthru::StepConfig::build(options);
  std::printf("crm_vip_routing: %zu concurrent calls -> POST %s (timeout %lld ms)\n", calls,
              crm.url().c_str(), static_cast<long long>(kStepTimeout.count()));

  OutcomeBoard board(calls);  // Outlives the client, whose callbacks write to it.
  bool all_answered = false;
  {
    passthru::ClientOptions client_options;
    // This program reports every route itself; an engine would pass its own LogSink.
    client_options.log_level = passthru::LogLevel::error;
    passthru::PassthruClient client(client_options);  // One per process, shared by every call.
    for (std::size_t i = 0; i < calls; ++i) {
      passthru::CallContext call;
      call.call_sid = "demo" + std::to_string(1000000 + i);
      call.call_from = callers[i].number;
      call.call_to = "+914412345678";
      call.direction = passthru::Direction::incoming;  // CurrentTime left empty: stamped when sent.
      // execute() returns at once; an engine would resume the call from this callback.
      client.execute(step, std::move(call),
                     [&board, i](passthru::Outcome outcome) { board.record(i, std::move(outcome)); });
    }
    // Every outcome is due by the step's timeout; this limit only catches a hang.
    all_answered = board.wait_all(kOverallWait);
  }  // ~PassthruClient completes anything still in flight (as cancelled) and joins its thread.

  std::map<std::tuple<Tier, std::string, std::string>, std::size_t> tally;  // vip, regular, unknown
  std::map<std::string, std::vector<std::chrono::microseconds>> latencies;
  std::vector<std::string> differences;
  for (std::size_t i = 0; i < calls; ++i) {
    const Caller& caller = callers[i];
    const passthru::Outcome& outcome = board.outcomes()[i];
    const std::string who = caller.number + " (" + class_of(caller) + "): ";
    if (board.deliveries()[i] != 1) {
      differences.push_back(who + std::to_string(board.deliveries()[i]) + " outcomes, expected exactly 1");
      if (board.deliveries()[i] == 0) continue;
    }
    const std::string label = route_label(outcome.route, outcome.target);
    ++tally[{caller.tier, class_of(caller), label}];
    latencies[label].push_back(outcome.elapsed);
    if (label != expected_label(caller)) {
      differences.push_back(who + "expected " + expected_label(caller) + ", got " + label + " (" +
                            outcome.reason + ")");
    }
  }

  std::printf("\n%-14s %-36s %6s\n", "caller class", "route -> target", "calls");
  for (const auto& [key, count] : tally) {
    std::printf("%-14s %-36s %6zu\n", std::get<1>(key).c_str(), std::get<2>(key).c_str(), count);
  }
  std::printf("\n%-36s %6s %8s %8s %8s %8s\n", "route -> target", "calls", "p50 ms", "p90 ms", "p99 ms",
              "max ms");
  for (auto& [label, elapsed] : latencies) {
    std::sort(elapsed.begin(), elapsed.end());
    std::printf("%-36s %6zu %8.1f %8.1f %8.1f %8.1f\n", label.c_str(), elapsed.size(),
                percentile_ms(elapsed, 50), percentile_ms(elapsed, 90), percentile_ms(elapsed, 99),
                percentile_ms(elapsed, 100));
  }

  if (all_answered && differences.empty()) {
    std::printf("\nOK: every call got exactly one outcome, routed as the CRM was built to answer\n");
    return 0;
  }
  if (!all_answered) std::printf("\nsome calls had no outcome within the overall wait\n");
  std::printf("\nFAILED: %zu calls differ from what the CRM was built to answer\n", differences.size());
  for (std::size_t k = 0; k < differences.size() && k < 20; ++k) {
    std::printf("  %s\n", differences[k].c_str());
  }
  if (differences.size() > 20) std::printf("  ... and %zu more\n", differences.size() - 20);
  return 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "crm_vip_routing: %s\n", e.what());
  return 1;
}
