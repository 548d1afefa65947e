// The library under load, through its public API only: C requests kept in
// flight against the bench's nginx, each outcome's callback executing the
// next request, with either driver:
//   thread  PassthruClient(options): the library's own thread runs requests
//           and callbacks (the CPU of both threads is counted: whole process);
//   uv      PassthruClient(loop, options) on a libuv loop through
//           passthru::UvEventLoop, everything on this one thread.
// Every outcome must route next_applet to "vip-connect" (nginx's answer);
// any other is counted as an error, and the first one is printed.
//
// Usage: load --url URL [--method get|post] [--concurrency C] [--warmup S] [--duration S]
//             [--driver thread|uv]
// Prints one human line and one `RESULT {json}` line.
#include "throughput_common.hpp"

#include <passthru/passthru.hpp>
#include <passthru/uv.hpp>

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

enum class Phase { warmup, measuring, stopping };

// Keeps `concurrency` requests in flight: each outcome issues the next one.
// Outcome callbacks run on one thread (the driver's or the loop's), so
// latencies, errors and first_error need no lock; they are read once the
// client is gone.
class Load {
 public:
  explicit Load(const passthru::StepConfig& step) : step_(step) {}

  void attach(passthru::PassthruClient* client) { client_ = client; }

  void issue() {
    passthru::CallContext call;
    call.call_sid = "call-" + std::to_string(sequence_.fetch_add(1, std::memory_order_relaxed) + 1);
    call.call_from = bench::kCallFrom;
    call.call_to = bench::kCallTo;
    call.direction = passthru::Direction::incoming;
    call.current_time = bench::kCurrentTime;
    call.dial_whom_number = bench::kDialWhomNumber;
    const auto started = bench::Clock::now();
    client_->execute(step_, std::move(call),
                     [this, started](passthru::Outcome outcome) { on_outcome(outcome, started); });
  }

  bench::Mark mark() const { return bench::mark(completed_.load(std::memory_order_relaxed)); }
  void set_phase(Phase phase) { phase_.store(phase, std::memory_order_relaxed); }

  std::vector<double>& latencies_ms() { return latencies_ms_; }
  long long errors() const { return errors_; }
  long long new_connections() const { return new_connections_; }
  const std::string& first_error() const { return first_error_; }

 private:
  void on_outcome(const passthru::Outcome& outcome, bench::Clock::time_point started) {
    const Phase phase = phase_.load(std::memory_order_relaxed);
    if (phase == Phase::stopping) return;  // includes the cancelled outcomes of shutdown
    const double latency = bench::ms_since(started);
    completed_.fetch_add(1, std::memory_order_relaxed);
    if (phase == Phase::measuring) {
      latencies_ms_.push_back(latency);
      if (!outcome.connection_reused) ++new_connections_;
      if (outcome.route != passthru::Route::next_applet || outcome.target != bench::kAnswer) {
        if (errors_++ == 0) {
          first_error_ =
              std::string(passthru::to_string(outcome.route)) + " " + outcome.target + ": " + outcome.reason;
        }
      }
    }
    issue();
  }

  const passthru::StepConfig& step_;
  passthru::PassthruClient* client_ = nullptr;
  std::atomic<unsigned long long> sequence_{0};
  std::atomic<long long> completed_{0};
  std::atomic<Phase> phase_{Phase::warmup};
  std::vector<double> latencies_ms_;
  long long errors_ = 0;
  long long new_connections_ = 0;
  std::string first_error_;
};

struct Window {
  bench::Mark from;
  bench::Mark until;
};

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

Window run_thread_driver(Load& load, const bench::Args& args, const passthru::ClientOptions& options) {
  passthru::PassthruClient client(options);
  load.attach(&client);
  for (int i = 0; i < args.concurrency; ++i) load.issue();
  std::this_thread::sleep_for(to_ms(args.warmup_s));
  Window window;
  window.from = load.mark();
  load.set_phase(Phase::measuring);
  std::this_thread::sleep_for(to_ms(args.duration_s));
  window.until = load.mark();
  load.set_phase(Phase::stopping);
  return window;  // ~PassthruClient cancels what is in flight and joins its thread
}

// State the libuv timer callbacks reach through handle->data.
struct UvRun {
  Load* load;
  Window window;
  uv_timer_t warmup_timer;
  uv_timer_t end_timer;
};

Window run_uv_driver(Load& load, const bench::Args& args, const passthru::ClientOptions& options) {
  uv_loop_t uv;
  uv_loop_init(&uv);
  UvRun run{&load, {}, {}, {}};
  std::optional<passthru::UvEventLoop> loop(std::in_place, &uv);
  std::optional<passthru::PassthruClient> client(std::in_place, *loop, options);
  load.attach(&*client);

  uv_timer_init(&uv, &run.warmup_timer);
  uv_timer_init(&uv, &run.end_timer);
  run.warmup_timer.data = &run;
  run.end_timer.data = &run;
  const auto warmup_ms = static_cast<uint64_t>(to_ms(args.warmup_s).count());
  uv_timer_start(
      &run.warmup_timer,
      [](uv_timer_t* timer) {
        auto* state = static_cast<UvRun*>(timer->data);
        state->window.from = state->load->mark();
        state->load->set_phase(Phase::measuring);
      },
      warmup_ms, 0);
  uv_timer_start(
      &run.end_timer,
      [](uv_timer_t* timer) {
        auto* state = static_cast<UvRun*>(timer->data);
        state->window.until = state->load->mark();
        state->load->set_phase(Phase::stopping);
        uv_stop(timer->loop);
      },
      warmup_ms + static_cast<uint64_t>(to_ms(args.duration_s).count()), 0);

  for (int i = 0; i < args.concurrency; ++i) load.issue();
  uv_run(&uv, UV_RUN_DEFAULT);

  // The loop is stopped: the client may go (cancelling what is in flight),
  // then the adapter; their handles and ours close on one more turn.
  client.reset();
  loop.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&run.warmup_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&run.end_timer), nullptr);
  uv_run(&uv, UV_RUN_DEFAULT);
  if (const int status = uv_loop_close(&uv); status != 0) {
    std::fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(status));
  }
  return run.window;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv, true);
  if (args.driver != "thread" && args.driver != "uv") bench::usage(argv[0], " [--driver thread|uv]");

  passthru::StepOptions step_options;
  step_options.url = args.url;
  step_options.method = args.post ? passthru::Method::post : passthru::Method::get;
  step_options.timeout = std::chrono::seconds(15);
  step_options.routes.default_next = "main-menu";
  step_options.routes.on_error = "apology-greeting";
  step_options.routes.known_applets = {bench::kAnswer};
  const passthru::StepConfig step = passthru::StepConfig::build(step_options);

  // Defaults otherwise (traceparent sent, metrics kept), as an engine runs it.
  passthru::ClientOptions options;
  options.log_level = passthru::LogLevel::off;
  options.max_in_flight = static_cast<std::size_t>(args.concurrency);

  Load load(step);
  load.latencies_ms().reserve(1 << 20);
  const Window window =
      args.driver == "uv" ? run_uv_driver(load, args, options) : run_thread_driver(load, args, options);

  const std::string client = "passthru-" + args.driver;
  std::printf("%s: %lld new connections in the window\n", client.c_str(), load.new_connections());
  if (load.errors() != 0) std::printf("%s: first error: %s\n", client.c_str(), load.first_error().c_str());
  bench::report(client.c_str(), args, window.from, window.until, std::move(load.latencies_ms()),
                load.errors());
  return load.errors() == 0 ? 0 : 1;
}
