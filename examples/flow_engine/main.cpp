// A toy call-flow engine: a few thousand simulated calls run through the five
// use cases of the Passthru applet guide, as flows read from a JSON flow file,
// on one Asio io_context that drives the engine and the PassthruClient
// together. Each use case has its own customer server on loopback, built to
// answer deterministically from the call, so --check can tell whether every
// call went where the servers' design says it must.
//
// Usage: flow_engine [--calls N] [--flows PATH] [--ramp-ms MS] [--seed N] [--check] [--metrics-out FILE]

#include "call_plan.hpp"
#include "customer_servers.hpp"
#include "engine.hpp"
#include "expectations.hpp"
#include "flow.hpp"
#include "report.hpp"

#include <passthru/asio.hpp>
#include <passthru/passthru.hpp>

#include <sys/resource.h>
#include <asio/io_context.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef FLOW_ENGINE_DEFAULT_FLOWS
#define FLOW_ENGINE_DEFAULT_FLOWS "flows.json"
#endif

namespace {

using namespace flow_engine;

constexpr std::size_t kMaxCalls = 20000;
constexpr std::size_t kBaseServerThreads = 32;
constexpr std::size_t kDifferencesShown = 30;

struct Options {
  std::size_t calls = 3000;
  std::string flows = FLOW_ENGINE_DEFAULT_FLOWS;
  std::chrono::milliseconds ramp{500};
  std::uint32_t seed = 20240122;
  bool check = false;
  std::string metrics_out;  ///< empty: the metrics are only printed
};

const char* const kUsage =
    "usage: flow_engine [--calls N] [--flows PATH] [--ramp-ms MS] [--seed N] [--check] [--metrics-out FILE]\n"
    "  --calls N     simulated calls, 1 to 20000, spread round robin over the flows (default 3000)\n"
    "  --flows PATH  the flow file (default " FLOW_ENGINE_DEFAULT_FLOWS
    ")\n"
    "  --ramp-ms MS  calls arrive uniformly over this time (default 500)\n"
    "  --seed N      the same seed makes the same calls (default 20240122)\n"
    "  --check       compare every tally with the servers' design; exit 1 on any difference\n"
    "  --metrics-out FILE  also write the client's metrics there, in the Prometheus text format\n";

unsigned long long number(const char* flag, const char* text, unsigned long long low,
                          unsigned long long high) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value < low || value > high) {
    throw std::invalid_argument(std::string(flag) + " must be a number from " + std::to_string(low) + " to " +
                                std::to_string(high));
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--calls") {
      options.calls = number("--calls", value(), 1, kMaxCalls);
    } else if (arg == "--flows") {
      options.flows = value();
    } else if (arg == "--ramp-ms") {
      options.ramp = std::chrono::milliseconds(number("--ramp-ms", value(), 0, 60000));
    } else if (arg == "--seed") {
      options.seed = static_cast<std::uint32_t>(number("--seed", value(), 0, 0xffffffffULL));
    } else if (arg == "--check") {
      options.check = true;
    } else if (arg == "--metrics-out") {
      options.metrics_out = value();
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'\n" + kUsage);
    }
  }
  return options;
}

// Both ends of every connection are in this process (the client's socket and
// the server's), so a few thousand calls need more descriptors than the usual
// soft limit of 1024. Raises it to the hard limit and returns it.
rlim_t raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  const rlim_t wanted = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
  if (limit.rlim_cur < wanted) {
    rlimit raised = limit;
    raised.rlim_cur = wanted;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) return wanted;
  }
  return limit.rlim_cur;
}

}  // namespace

#if defined(__SANITIZE_THREAD__)
// Debian's libcpp-httplib is not built with TSan: the inlined guards of its static regexes
// look like races to it. Ignore what that library does; passthru and this program stay checked.
extern "C" const char* __tsan_default_suppressions() { return "called_from_lib:libcpp-httplib.so\n"; }
#endif

int main(int argc, char** argv) try {
  const Options options = parse(argc, argv);
  // A customer server answering a call that already timed out writes to a
  // socket the client has closed; that must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  const rlim_t open_files = raise_open_files_limit();
  std::ofstream metrics_file;  // opened now, so a bad path fails before the run
  if (!options.metrics_out.empty()) {
    metrics_file.open(options.metrics_out);
    if (!metrics_file)
      throw std::invalid_argument("--metrics-out: cannot write '" + options.metrics_out + "'");
  }

  FlowBook book = FlowBook::load(options.flows);
  const std::vector<std::string>& known = customer_server_names();
  for (const std::string& server : book.servers()) {
    if (std::find(known.begin(), known.end(), server) == known.end()) {
      throw FlowError(options.flows + ": a URL names {port:" + server +
                      "}, but the customer servers are crm, orders, call-log, hours and language");
    }
  }
  const std::vector<PlannedCall> plan =
      plan_calls(options.calls, book.flows().size(), options.ramp, options.seed);
  const CustomerData data = customer_data(plan);
  // What every call must do, from the plan and the customers' data alone.
  // It also sizes each server's pool: one thread per answer it holds back.
  std::vector<ExpectedCall> expected;
  std::map<std::string, std::size_t> slow_answers;
  for (const PlannedCall& call : plan) {
    expected.push_back(expect_call(book.flows()[call.flow], call, data));
    for (const auto& [server, count] : expected.back().slow_requests) slow_answers[server] += count;
  }

  std::vector<std::unique_ptr<CustomerServer>> servers;
  std::map<std::string, int> ports;
  for (const std::string& name : book.servers()) {
    servers.push_back(start_customer_server(name, kBaseServerThreads + slow_answers[name], data));
    ports[name] = servers.back()->port();
  }
  book.bind(ports);

  passthru::ClientOptions client_options;
  client_options.log_level = passthru::LogLevel::error;  // the tables report every route
  // Out of descriptors, connect() and accept() fail (EMFILE) and calls route
  // on-error; rather cap the requests running at once, so the rest queue.
  // A running request holds up to three here: the client's socket, the
  // duplicate the library watches while it connects, and the server's end.
  // A slow answer's server end stays open until the servers stop.
  const rlim_t descriptors_per_request = 3;
  rlim_t spare = 256;
  for (const auto& [server, count] : slow_answers) spare += count;
  if (open_files < spare + descriptors_per_request * client_options.max_in_flight) {
    client_options.max_in_flight =
        open_files > 2 * spare ? static_cast<std::size_t>((open_files - spare) / descriptors_per_request)
                               : 64;
  }

  std::printf("flow_engine: %zu calls over %zu flows from %s, arriving over %lld ms (seed %u)\n",
              options.calls, book.flows().size(), options.flows.c_str(),
              static_cast<long long>(options.ramp.count()), options.seed);
  std::printf(
      "one io_context thread runs the engine and the PassthruClient (AsioEventLoop); max_in_flight %zu, "
      "open files limit %llu\n",
      client_options.max_in_flight, static_cast<unsigned long long>(open_files));
  if (book.hold_music_after().count() > 0) {
    std::printf("a held caller hears hold music once the request has waited %lld ms (hooks.waiting_after)\n",
                static_cast<long long>(book.hold_music_after().count()));
  }
  std::printf("customer servers on 127.0.0.1:");
  for (const auto& server : servers) {
    std::printf(" %s :%d (%zu threads)%s", server->name().c_str(), server->port(), server->threads(),
                server == servers.back() ? "\n" : ",");
  }

  asio::io_context io(1);  // one thread: Asio may skip its locks
  passthru::AsioEventLoop loop(io);
  FlowEngine engine(io, book, plan);
  // Hold music only when the wait is noticeable: the client calls on_waiting
  // once a request has waited waiting_after with no outcome yet (never for a
  // step whose timeout is not longer), and the engine stops the music when
  // the outcome comes. Without an executor, hooks run where the outcome
  // callbacks do: on io's thread, so the engine needs no lock here either.
  client_options.hooks.waiting_after = book.hold_music_after();
  client_options.hooks.on_waiting = [&engine](const passthru::RequestInfo& request,
                                              std::chrono::milliseconds /*waited*/) {
    engine.start_hold_music(request);
  };
  passthru::MetricsSnapshot metrics;
  {
    passthru::PassthruClient client(loop, client_options);
    engine.run(client);
    // Every call has ended and every request has its outcome: the run's final figures.
    metrics = client.metrics();
  }  // destroyed before the engine its callbacks reach, while io is not running

  RunResults results;
  results.flows = &book;
  results.plan = &plan;
  results.records = &engine.records();
  results.stats = &engine.stats();
  results.expected = options.check ? &expected : nullptr;
  results.hold_music_after = book.hold_music_after();
  results.metrics = &metrics;
  for (const auto& server : servers) {
    server->stop();  // releases the answers still held back, then every count is final
    results.received[server->name()] = server->received();
  }

  print_tables(results);
  if (metrics_file.is_open()) {
    metrics_file << passthru::to_prometheus(metrics);
    metrics_file.close();
    if (!metrics_file) throw std::runtime_error("--metrics-out: cannot write '" + options.metrics_out + "'");
    std::printf("metrics written to %s (Prometheus text format)\n", options.metrics_out.c_str());
  }
  const EngineStats& stats = engine.stats();
  std::printf(
      "\nran %zu calls in %.2f s; at most %zu calls in progress and %zu Passthru requests in flight at "
      "once\n",
      options.calls, static_cast<double>(stats.wall.count()) / 1e6, stats.peak_calls, stats.peak_requests);

  if (!options.check) {
    for (const std::string& anomaly : stats.anomalies) std::printf("%s\n", anomaly.c_str());
    const bool all_ended = std::all_of(engine.records().begin(), engine.records().end(),
                                       [](const CallRecord& record) { return record.ends == 1; });
    return stats.anomalies.empty() && all_ended ? 0 : 1;
  }
  const std::vector<std::string> found = differences(results);
  if (found.empty()) {
    std::printf(
        "check: OK: every call ended exactly once, where the customer servers were built to send it, and "
        "each server received each of its requests exactly once; hold music played only once the wait was "
        "noticeable, and client.metrics() agrees with the engine's tallies\n");
    return 0;
  }
  std::printf("check: FAILED: %zu differences from the servers' design\n", found.size());
  for (std::size_t i = 0; i < found.size() && i < kDifferencesShown; ++i)
    std::printf("  %s\n", found[i].c_str());
  if (found.size() > kDifferencesShown) std::printf("  ... and %zu more\n", found.size() - kDifferencesShown);
  return 1;
} catch (const std::exception& error) {
  std::fprintf(stderr, "flow_engine: %s\n", error.what());
  return 2;
}
