// How late do timeouts arrive? Requests go to a server that accepts and never
// answers (bench::SilentServer, a child process); each outcome's arrival is
// compared with its own deadline: the time just before execute() plus the
// request's timeout. Prints lateness p50/p99/max and the earliest arrival,
// which must never be before the deadline ("EARLY" if one is).
//
// Two scenarios (issue 8, item 3):
//   same_ms    1,000 requests all due in the same millisecond, 200 ms after
//              the first is submitted (each gets the whole milliseconds left
//              until then as its timeout). Target p99 <= 5 ms.
//   spread_1s  10,000 in flight with deadlines spread evenly over one second
//              (500 ms to 1.5 s after the first is submitted). Target p99 <= 2 ms.
// Three clients, measured in the same run so their ratio means something:
//   passthru/thread  PassthruClient(options): the library's own thread
//   passthru/uv      PassthruClient(loop, options) on a libuv loop (this thread),
//                    requests submitted 500 per turn of the loop (--uv-burst:
//                    all of them before uv_run())
//   naive_curl       one CURLM, CURLOPT_TIMEOUT_MS per handle, a
//                    curl_multi_poll() loop; lateness taken when
//                    curl_multi_info_read() hands over the message
//
// Usage: deadline_lateness [--quick] [--client all|thread|uv|naive] [--scenario all|same_ms|spread_1s]
//                          [--uv-burst]
//   --quick  200 and 1,000 requests instead of 1,000 and 10,000 (CI smoke, < 30 s)
// Prints a table and one `RESULT {json}` line per client and scenario. Exits
// 1 if an outcome was not a timeout (a broken run), 0 otherwise; an early
// outcome is reported (EARLY), not an exit status.
#include "bench_support.hpp"

#include <passthru/passthru.hpp>
#ifdef PASSTHRU_BENCH_WITH_UV
#include <passthru/uv.hpp>

#include <uv.h>
#endif

#include <curl/curl.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

using bench::Clock;
using std::chrono::milliseconds;

struct Scenario {
  const char* name;
  int requests;
  milliseconds first;   // the first deadline, from the scenario's start
  milliseconds spread;  // deadlines run evenly from first to first + spread
  double target_p99_ms;
};

// Each request's timeout: the whole milliseconds from now to its planned
// deadline, rounded up, so every deadline lands within 1 ms after the plan.
struct Plan {
  Clock::time_point start;
  const Scenario* scenario;

  milliseconds timeout_for(int i, Clock::time_point now) const {
    const auto planned = start + scenario->first +
                         scenario->spread * static_cast<long>(i) / static_cast<long>(scenario->requests);
    return std::max(milliseconds(1), std::chrono::ceil<milliseconds>(planned - now));
  }
};

// What one client produced for one scenario.
struct Measured {
  std::vector<double> late_ms;
  int misrouted = 0;            // outcomes other than a timeout
  std::string first_misrouted;  // the first one's route and reason
  double submit_ms = 0;
  bool finished = true;  // every outcome arrived
};

double ms_since(Clock::time_point then) {
  return std::chrono::duration<double, std::milli>(Clock::now() - then).count();
}

// StepConfigs by timeout: a step is built once per distinct timeout, not per call.
class Steps {
 public:
  explicit Steps(std::string url) : url_(std::move(url)) {}
  const passthru::StepConfig& with_timeout(milliseconds timeout) {
    auto found = steps_.find(timeout.count());
    if (found != steps_.end()) return found->second;
    passthru::StepOptions step;
    step.url = url_;
    step.timeout = timeout;
    step.routes.default_next = "menu";
    return steps_.emplace(timeout.count(), passthru::StepConfig::build(step)).first->second;
  }

 private:
  std::string url_;
  std::map<long, passthru::StepConfig> steps_;
};

passthru::ClientOptions client_options() {
  passthru::ClientOptions options;
  options.log_level = passthru::LogLevel::off;
  options.max_in_flight = 0;  // all of them on the wire at once
  return options;
}

Measured run_thread(const Scenario& scenario, Steps& steps) {
  Measured out;
  out.late_ms.reserve(static_cast<std::size_t>(scenario.requests));
  std::mutex mutex;
  std::condition_variable done;
  {
    passthru::PassthruClient client(client_options());
    const Plan plan{Clock::now(), &scenario};
    for (int i = 0; i < scenario.requests; ++i) {
      const auto now = Clock::now();
      const auto timeout = plan.timeout_for(i, now);
      const auto& step = steps.with_timeout(timeout);
      const auto deadline = now + timeout;
      client.execute(step, {}, [&, deadline](passthru::Outcome outcome) {
        const double late = std::chrono::duration<double, std::milli>(Clock::now() - deadline).count();
        std::lock_guard<std::mutex> lock(mutex);
        if (outcome.route != passthru::Route::on_timeout && out.misrouted++ == 0) {
          out.first_misrouted = std::string(passthru::to_string(outcome.route)) + ": " + outcome.reason;
        }
        out.late_ms.push_back(late);
        if (out.late_ms.size() == static_cast<std::size_t>(scenario.requests)) done.notify_all();
      });
    }
    out.submit_ms = ms_since(plan.start);
    std::unique_lock<std::mutex> lock(mutex);
    out.finished = done.wait_for(lock, scenario.first + scenario.spread + std::chrono::seconds(30), [&] {
      return out.late_ms.size() == static_cast<std::size_t>(scenario.requests);
    });
  }  // the client's destructor cancels any left (a broken run)
  return out;
}

#ifdef PASSTHRU_BENCH_WITH_UV
// Without `burst`, requests are submitted 500 at a time with a turn of the
// loop between batches, as calls reach an engine; with it, all before
// uv_run(), which shows what a burst costs a loop-driven client.
Measured run_uv(const Scenario& scenario, Steps& steps, bool burst) {
  Measured out;
  out.late_ms.reserve(static_cast<std::size_t>(scenario.requests));
  uv_loop_t uv;
  uv_loop_init(&uv);
  std::optional<passthru::UvEventLoop> loop(std::in_place, &uv);
  std::optional<passthru::PassthruClient> client(std::in_place, *loop, client_options());
  const Plan plan{Clock::now(), &scenario};
  for (int i = 0; i < scenario.requests; ++i) {
    const auto now = Clock::now();
    const auto timeout = plan.timeout_for(i, now);
    const auto& step = steps.with_timeout(timeout);
    const auto deadline = now + timeout;
    // Callbacks run inside uv_run(), on this thread: no lock.
    client->execute(step, {}, [&out, deadline](passthru::Outcome outcome) {
      out.late_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - deadline).count());
      if (outcome.route != passthru::Route::on_timeout && out.misrouted++ == 0) {
        out.first_misrouted = std::string(passthru::to_string(outcome.route)) + ": " + outcome.reason;
      }
    });
    if (!burst && (i + 1) % 500 == 0) uv_run(&uv, UV_RUN_NOWAIT);
  }
  out.submit_ms = ms_since(plan.start);
  uv_run(&uv, UV_RUN_DEFAULT);  // returns once no request is in flight
  out.finished = out.late_ms.size() == static_cast<std::size_t>(scenario.requests);
  client.reset();
  loop.reset();
  uv_run(&uv, UV_RUN_DEFAULT);
  uv_loop_close(&uv);
  return out;
}
#endif

// The loop an engine author writes first from libcurl's documentation.
Measured run_naive(const Scenario& scenario, const std::string& url) {
  Measured out;
  out.late_ms.reserve(static_cast<std::size_t>(scenario.requests));
  CURLM* multi = curl_multi_init();
  std::vector<Clock::time_point> deadlines(static_cast<std::size_t>(scenario.requests));
  std::vector<CURL*> handles(static_cast<std::size_t>(scenario.requests), nullptr);
  const auto discard = +[](char*, size_t size, size_t count, void*) -> size_t { return size * count; };
  const Plan plan{Clock::now(), &scenario};
  for (int i = 0; i < scenario.requests; ++i) {
    const auto now = Clock::now();
    const auto timeout = plan.timeout_for(i, now);
    deadlines[static_cast<std::size_t>(i)] = now + timeout;
    CURL* easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, reinterpret_cast<void*>(static_cast<std::intptr_t>(i)));
    curl_multi_add_handle(multi, easy);
    handles[static_cast<std::size_t>(i)] = easy;
  }
  out.submit_ms = ms_since(plan.start);
  const auto give_up = Clock::now() + scenario.first + scenario.spread + std::chrono::seconds(30);
  int running = 1;
  while (out.late_ms.size() < static_cast<std::size_t>(scenario.requests) && Clock::now() < give_up) {
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      void* private_data = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &private_data);
      const auto index = static_cast<std::size_t>(reinterpret_cast<std::intptr_t>(private_data));
      const auto deadline = deadlines[index];
      handles[index] = nullptr;
      out.late_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - deadline).count());
      if (message->data.result != CURLE_OPERATION_TIMEDOUT && out.misrouted++ == 0) {
        out.first_misrouted = curl_easy_strerror(message->data.result);
      }
      CURL* easy = message->easy_handle;
      curl_multi_remove_handle(multi, easy);
      curl_easy_cleanup(easy);
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  out.finished = out.late_ms.size() == static_cast<std::size_t>(scenario.requests);
  // A broken run may leave handles: clean them up too.
  for (CURL* easy : handles) {
    if (easy == nullptr) continue;
    curl_multi_remove_handle(multi, easy);
    curl_easy_cleanup(easy);
  }
  curl_multi_cleanup(multi);
  return out;
}

// Prints the row and the RESULT line; returns false for a broken run.
bool report(const char* client, const char* driver, const Scenario& scenario, const Measured& measured) {
  const bench::Lateness late = bench::summarize(measured.late_ms);
  const bool early = !measured.late_ms.empty() && late.earliest < 0;
  const bool broken = measured.misrouted != 0 || !measured.finished;
  const bool meets = !early && !broken && late.p99 <= scenario.target_p99_ms;
  const char* status = broken ? "BROKEN" : early ? "EARLY" : meets ? "ok" : "over target";
  std::printf("%-10s %-8s %-10s %6d %9.3f %9.3f %9.3f %9.3f %9.1f  %s\n", client, driver, scenario.name,
              scenario.requests, late.p50, late.p99, late.max, late.earliest, measured.submit_ms, status);
  if (measured.misrouted != 0) {
    std::printf("  %d not timed out, the first: %s\n", measured.misrouted, measured.first_misrouted.c_str());
  }
  bench::Result("deadline_lateness")
      .add("client", client)
      .add("driver", driver)
      .add("scenario", scenario.name)
      .add("n", scenario.requests)
      .add("p50_ms", late.p50)
      .add("p99_ms", late.p99)
      .add("max_ms", late.max)
      .add("earliest_ms", late.earliest)
      .add("submit_ms", measured.submit_ms)
      .add("early", early)
      .add("misrouted", measured.misrouted)
      .add("first_misrouted", measured.first_misrouted)
      .add("finished", measured.finished)
      .add("target_p99_ms", scenario.target_p99_ms)
      .add("meets_target", meets)
      .print();
  return !broken;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = bench::has_flag(argc, argv, "--quick");
  const std::string only_client = bench::flag_value(argc, argv, "--client", "all");
  const std::string only_scenario = bench::flag_value(argc, argv, "--scenario", "all");
  [[maybe_unused]] const bool uv_burst = bench::has_flag(argc, argv, "--uv-burst");
  const long fd_limit = bench::raise_fd_limit();
  curl_global_init(CURL_GLOBAL_DEFAULT);

  const Scenario scenarios[] = {
      {"same_ms", quick ? 200 : 1000, milliseconds(200), milliseconds(0), 5.0},
      {"spread_1s", quick ? 1000 : 10000, milliseconds(500), milliseconds(1000), 2.0},
  };
  std::printf("deadline lateness against a silent server, ms after each deadline (fd limit %ld)\n", fd_limit);
  std::printf("%-10s %-8s %-10s %6s %9s %9s %9s %9s %9s\n", "client", "driver", "scenario", "n", "p50", "p99",
              "max", "earliest", "submit");
  bool ok = true;
  for (const Scenario& scenario : scenarios) {
    if (only_scenario != "all" && only_scenario != scenario.name) continue;
    const auto wants = [&](const char* client) { return only_client == "all" || only_client == client; };
    // Each run has a server of its own (a new port), so that the client
    // ports left in TIME_WAIT by the previous run cannot collide with it.
    // Forked between runs, when no thread of ours is left.
    if (wants("thread")) {
      bench::SilentServer server;
      Steps steps(server.url());
      ok &= report("passthru", "thread", scenario, run_thread(scenario, steps));
    }
#ifdef PASSTHRU_BENCH_WITH_UV
    if (wants("uv")) {
      bench::SilentServer server;
      Steps steps(server.url());
      ok &= report("passthru", uv_burst ? "uv_burst" : "uv", scenario, run_uv(scenario, steps, uv_burst));
    }
#endif
    if (wants("naive")) {
      bench::SilentServer server;
      ok &= report("naive_curl", "-", scenario, run_naive(scenario, server.url()));
    }
  }
  std::printf("targets: same_ms p99 <= 5 ms, spread_1s p99 <= 2 ms; never early\n");
  return ok ? 0 : 1;
}
