// What does a request in flight cost while it waits? N requests go to a
// server that accepts and never answers (bench::SilentServer, a child
// process, so its memory and CPU are not counted); once all N requests have
// arrived at the server (connected, sent, waiting), this process's RSS is
// read again and its CPU time is measured over a stretch of waiting.
//
//   rss_per_request_kb    (VmRSS once N wait - VmRSS before submitting) / N
//   anon_per_request_kb   the same for RssAnon (heap and stacks only)
//   cpu_ms_per_s          user + system CPU of this process per second of
//                         waiting wall time (target: ~0)
//   teardown_us_per_request  ending them all (cancel, or naive: remove and
//                         clean up each handle), per request: the clean-up
//                         a burst of expiring deadlines pays too
//
// Issue 8, item 4; target <= 8 KB per request at 10,000 in flight. Clients:
//   thread    PassthruClient(options): the library's own thread
//   uv        PassthruClient(loop, options) on a libuv loop
//   naive     one CURLM with N easy handles, default settings
//   naive_1k  the same with CURLOPT_BUFFERSIZE 1024
// Each figure comes from a fresh process (this program runs itself once per
// client and N), so that one measurement's freed memory is not the next's.
//
// Usage: memory [--quick] [--client thread|uv|naive|naive_1k --n N] [--wait-ms MS]
//   --quick        N = 100 and 1,000, 0.5 s of waiting (CI smoke, < 30 s);
//                  otherwise N = 1,000 and 10,000, 2 s of waiting
//   --client, --n  one measurement only, in this process
// Prints a table and one `RESULT {json}` line per client and N. Exits 1 if
// a measurement broke (requests not all waiting, or an outcome other than
// the cancellation at the end).
#include "bench_support.hpp"

#include <passthru/passthru.hpp>
#ifdef PASSTHRU_BENCH_WITH_UV
#include <passthru/uv.hpp>

#include <uv.h>
#endif

#include <curl/curl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

using bench::Clock;
using std::chrono::milliseconds;

// How long requests wait at most: far past the measurement, which cancels them.
constexpr milliseconds kLongTimeout{60000};
// The longest the N requests may take to reach the server.
constexpr milliseconds kConnectLimit{60000};
// After the N requests arrived: time for the client to settle before reading RSS.
constexpr milliseconds kSettle{200};
// Requests submitted to the uv client per turn of its loop.
constexpr long kUvBatch = 500;

struct Measured {
  long rss_before_kb = 0, rss_after_kb = 0;
  long anon_before_kb = 0, anon_after_kb = 0;
  long waiting = 0;  // requests the server saw arrive
  double cpu_ms = 0, wall_ms = 0;
  // Ending the N waiting requests: the client's destructor (every outcome
  // cancelled) or, naive, curl_multi_remove_handle() and curl_easy_cleanup()
  // of each; and for naive the removals alone, which close the connections.
  double teardown_ms = 0, remove_ms = -1;
  int wrong_outcomes = 0;   // outcomes other than the final cancellation
  std::string first_wrong;  // the first one's route and reason
  bool all_waiting = false;
};

// Takes the readings around "every request is waiting"; `turn` lets the
// client's loop run for a while (or just sleeps when the client has a thread).
template <typename Turn>
void measure_waiting(const bench::SilentServer& server, long n, milliseconds wait, Measured& out, Turn turn) {
  out.all_waiting = server.wait_for_waiting(n, kConnectLimit, [&] { turn(milliseconds(10)); });
  turn(kSettle);
  out.waiting = server.waiting();
  out.rss_after_kb = bench::status_kb("VmRSS");
  out.anon_after_kb = bench::status_kb("RssAnon");
  const double cpu_start = bench::cpu_ms();
  const auto wall_start = Clock::now();
  turn(wait);
  out.cpu_ms = bench::cpu_ms() - cpu_start;
  out.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - wall_start).count();
}

double ms_since(Clock::time_point then) {
  return std::chrono::duration<double, std::milli>(Clock::now() - then).count();
}

void read_before(Measured& out) {
  out.rss_before_kb = bench::status_kb("VmRSS");
  out.anon_before_kb = bench::status_kb("RssAnon");
}

passthru::StepConfig step_with(const std::string& url, milliseconds timeout) {
  passthru::StepOptions step;
  step.url = url;
  step.timeout = timeout;
  step.routes.default_next = "menu";
  return passthru::StepConfig::build(step);
}

passthru::ClientOptions client_options() {
  passthru::ClientOptions options;
  options.log_level = passthru::LogLevel::off;
  options.max_in_flight = 0;  // all of them on the wire at once
  return options;
}

// A call as an engine sends it: the standard parameters filled in.
passthru::CallContext typical_call(long i) {
  passthru::CallContext call;
  call.call_sid = "CA" + std::to_string(1000000000 + i);
  call.call_from = "+919876543210";
  call.call_to = "+914412345678";
  call.dial_whom_number = "+918012345678";
  return call;
}

// Waits until the server has closed every connection (the warm-up's).
void wait_closed(const bench::SilentServer& server) {
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (server.open() > 0 && Clock::now() < until) std::this_thread::sleep_for(milliseconds(5));
}

Measured run_thread(const bench::SilentServer& server, long n, milliseconds wait) {
  Measured out;
  const auto warm_up = step_with(server.url(), milliseconds(50));
  const auto step = step_with(server.url(), kLongTimeout);
  std::mutex mutex;
  std::condition_variable done;
  int finished = 0;
  std::atomic<int> wrong{0};
  {
    std::optional<passthru::PassthruClient> client(std::in_place, client_options());
    // One request first: what is allocated once per client is not per request.
    client->execute(warm_up, typical_call(0), [&](passthru::Outcome) {
      std::lock_guard<std::mutex> lock(mutex);
      ++finished;
      done.notify_all();
    });
    {
      std::unique_lock<std::mutex> lock(mutex);
      done.wait(lock, [&] { return finished == 1; });
    }
    wait_closed(server);
    read_before(out);
    for (long i = 0; i < n; ++i) {
      client->execute(step, typical_call(i), [&](passthru::Outcome outcome) {
        if (outcome.route != passthru::Route::cancelled && wrong++ == 0) {
          std::lock_guard<std::mutex> lock(mutex);
          out.first_wrong = std::string(passthru::to_string(outcome.route)) + ": " + outcome.reason;
        }
      });
    }
    measure_waiting(server, n, wait, out, [](milliseconds d) { std::this_thread::sleep_for(d); });
    const auto teardown = Clock::now();
    client.reset();  // cancels the N requests
    out.teardown_ms = ms_since(teardown);
  }
  out.wrong_outcomes = wrong.load();
  return out;
}

#ifdef PASSTHRU_BENCH_WITH_UV
// Runs the loop for `duration`: a timer stops it, so it sleeps in epoll
// like an engine's loop that has nothing else to do.
void run_loop_for(uv_loop_t* uv, milliseconds duration) {
  uv_timer_t stop;
  uv_timer_init(uv, &stop);
  uv_timer_start(
      &stop, [](uv_timer_t* timer) { uv_stop(timer->loop); }, static_cast<std::uint64_t>(duration.count()),
      0);
  uv_run(uv, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
  uv_run(uv, UV_RUN_NOWAIT);  // completes the close
}

Measured run_uv(const bench::SilentServer& server, long n, milliseconds wait) {
  Measured out;
  const auto warm_up = step_with(server.url(), milliseconds(50));
  const auto step = step_with(server.url(), kLongTimeout);
  int wrong = 0;
  uv_loop_t uv;
  uv_loop_init(&uv);
  std::optional<passthru::UvEventLoop> loop(std::in_place, &uv);
  std::optional<passthru::PassthruClient> client(std::in_place, *loop, client_options());
  client->execute(warm_up, typical_call(0), [](passthru::Outcome) {});
  uv_run(&uv, UV_RUN_DEFAULT);  // until the warm-up's outcome
  wait_closed(server);
  read_before(out);
  // Submitted in batches, the loop running between them, as calls reach an
  // engine: all at once, a loop-driven client briefly holds two descriptors
  // per connecting request (the duplicate its loop watches while libcurl
  // 7.88 connects), and 10,000 of them reach the 20,000 limit (EMFILE).
  for (long i = 0; i < n; ++i) {
    client->execute(step, typical_call(i), [&wrong, &out](passthru::Outcome outcome) {
      if (outcome.route != passthru::Route::cancelled && wrong++ == 0) {
        out.first_wrong = std::string(passthru::to_string(outcome.route)) + ": " + outcome.reason;
      }
    });
    if ((i + 1) % kUvBatch == 0) run_loop_for(&uv, milliseconds(5));
  }
  measure_waiting(server, n, wait, out, [&](milliseconds d) { run_loop_for(&uv, d); });
  const auto teardown = Clock::now();
  client.reset();  // cancels the N requests
  out.teardown_ms = ms_since(teardown);
  loop.reset();
  uv_run(&uv, UV_RUN_DEFAULT);
  uv_loop_close(&uv);
  out.wrong_outcomes = wrong;
  return out;
}
#endif

// Runs a naive multi loop for `duration`; returns the transfers that ended.
int pump(CURLM* multi, milliseconds duration) {
  const auto until = Clock::now() + duration;
  int ended = 0;
  for (;;) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg == CURLMSG_DONE) ++ended;
    }
    const auto remaining = std::chrono::ceil<milliseconds>(until - Clock::now());
    if (remaining.count() <= 0) return ended;
    curl_multi_poll(multi, nullptr, 0, static_cast<int>(remaining.count()), nullptr);
  }
}

Measured run_naive(const bench::SilentServer& server, long n, milliseconds wait, long buffer_size) {
  Measured out;
  const auto discard = +[](char*, size_t size, size_t count, void*) -> size_t { return size * count; };
  CURLM* multi = curl_multi_init();
  const auto make = [&](long timeout_ms) {
    CURL* easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, server.url().c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    if (buffer_size > 0) curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, buffer_size);
    curl_multi_add_handle(multi, easy);
    return easy;
  };
  // The warm-up, as for the library.
  CURL* warm_up = make(50);
  while (pump(multi, milliseconds(10)) == 0) {
  }
  curl_multi_remove_handle(multi, warm_up);
  curl_easy_cleanup(warm_up);
  wait_closed(server);
  read_before(out);
  std::vector<CURL*> handles;
  handles.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) handles.push_back(make(static_cast<long>(kLongTimeout.count())));
  int ended = 0;
  measure_waiting(server, n, wait, out, [&](milliseconds d) { ended += pump(multi, d); });
  const auto teardown = Clock::now();
  for (CURL* easy : handles) curl_multi_remove_handle(multi, easy);
  out.remove_ms = ms_since(teardown);
  for (CURL* easy : handles) curl_easy_cleanup(easy);
  out.teardown_ms = ms_since(teardown);
  curl_multi_cleanup(multi);
  out.wrong_outcomes = ended;
  return out;
}

void print_header() {
  std::printf("memory and CPU of requests waiting on a silent server (this process only)\n");
  std::printf("%-10s %-7s %6s %8s %9s %9s %10s %10s %9s %11s  %s\n", "client", "driver", "n", "waiting",
              "rss0_kb", "rss1_kb", "kb/request", "anon_kb/rq", "cpu_ms/s", "end_us/rq", "status");
  std::fflush(stdout);
}

// One measurement in this process; prints its row and RESULT line.
int measure_one(const std::string& client, long n, milliseconds wait) {
  bench::raise_fd_limit();
  bench::SilentServer server;  // forks: before any thread of ours
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Measured m;
  const char* client_name = "passthru";
  const char* driver = client.c_str();
  if (client == "thread") {
    m = run_thread(server, n, wait);
#ifdef PASSTHRU_BENCH_WITH_UV
  } else if (client == "uv") {
    m = run_uv(server, n, wait);
#endif
  } else if (client == "naive" || client == "naive_1k") {
    m = run_naive(server, n, wait, client == "naive_1k" ? 1024 : 0);
    client_name = "naive_curl";
    driver = client == "naive" ? "-" : "buf1k";
  } else {
    std::fprintf(stderr, "memory: unknown client %s\n", client.c_str());
    return 2;
  }
  const double per_request = static_cast<double>(m.rss_after_kb - m.rss_before_kb) / static_cast<double>(n);
  const double anon_per_request =
      static_cast<double>(m.anon_after_kb - m.anon_before_kb) / static_cast<double>(n);
  const double cpu_per_s = m.wall_ms > 0 ? m.cpu_ms / (m.wall_ms / 1000.0) : 0;
  const bool broken = !m.all_waiting || m.wrong_outcomes != 0;
  const bool meets = !broken && per_request <= 8.0;
  const double teardown_us = m.teardown_ms * 1000.0 / static_cast<double>(n);
  std::printf("%-10s %-7s %6ld %8ld %9ld %9ld %10.2f %10.2f %9.2f %11.1f  %s\n", client_name, driver, n,
              m.waiting, m.rss_before_kb, m.rss_after_kb, per_request, anon_per_request, cpu_per_s,
              teardown_us,
              broken  ? "BROKEN"
              : meets ? "ok"
                      : "over 8 KB");
  if (m.wrong_outcomes != 0) {
    std::printf("  %d ended before the cancellation, the first: %s\n", m.wrong_outcomes,
                m.first_wrong.c_str());
  }
  bench::Result("memory")
      .add("client", client_name)
      .add("driver", driver)
      .add("n", n)
      .add("waiting", m.waiting)
      .add("rss_before_kb", m.rss_before_kb)
      .add("rss_after_kb", m.rss_after_kb)
      .add("rss_per_request_kb", per_request)
      .add("anon_per_request_kb", anon_per_request)
      .add("cpu_ms_while_waiting", m.cpu_ms)
      .add("wait_ms", m.wall_ms)
      .add("cpu_ms_per_s", cpu_per_s)
      .add("teardown_us_per_request", teardown_us)
      .add("remove_us_per_request", m.remove_ms < 0 ? -1.0 : m.remove_ms * 1000.0 / static_cast<double>(n))
      .add("wrong_outcomes", m.wrong_outcomes)
      .add("first_wrong", m.first_wrong)
      .add("target_kb_per_request", 8.0)
      .add("meets_target", meets)
      .print();
  return broken ? 1 : 0;
}

// Runs this program once per client and N; returns false if one broke.
bool run_child(const std::vector<std::string>& arguments) {
  std::vector<char*> argv;
  for (const auto& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    execv("/proc/self/exe", argv.data());
    std::perror("execv");
    _exit(2);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = bench::has_flag(argc, argv, "--quick");
  const milliseconds wait(std::stol(bench::flag_value(argc, argv, "--wait-ms", quick ? "500" : "2000")));
  const std::string client = bench::flag_value(argc, argv, "--client", "");
  if (!client.empty()) {
    return measure_one(client, std::stol(bench::flag_value(argc, argv, "--n", "1000")), wait);
  }
  print_header();
  std::vector<std::string> clients{"thread"};
#ifdef PASSTHRU_BENCH_WITH_UV
  clients.emplace_back("uv");
#endif
  clients.emplace_back("naive");
  clients.emplace_back("naive_1k");
  bool ok = true;
  for (const long n : quick ? std::vector<long>{100, 1000} : std::vector<long>{1000, 10000}) {
    for (const auto& name : clients) {
      ok &= run_child(
          {argv[0], "--client", name, "--n", std::to_string(n), "--wait-ms", std::to_string(wait.count())});
    }
  }
  std::printf("target: <= 8 KB per request at 10,000 in flight; no measurable CPU while waiting\n");
  return ok ? 0 : 1;
}
