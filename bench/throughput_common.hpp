// What the throughput clients (naive_curl, load) share: their command line,
// the six call parameters, the measuring window and the RESULT line, so
// every client is measured exactly the same way and only the client differs.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

// The call every request carries, as an engine would hand it over. CallSid
// is made unique per request by a counter; CurrentTime is fixed so that no
// client pays for formatting the clock and the others do not.
constexpr const char* kCallFrom = "+919876543210";
constexpr const char* kCallTo = "+914412345678";
constexpr const char* kDirection = "incoming";
constexpr const char* kCurrentTime = "2024-01-15T10:30:00+05:30";
constexpr const char* kDialWhomNumber = "+918012345678";
// What the bench's nginx answers: an applet name, routed to next_applet.
constexpr const char* kAnswer = "vip-connect";

struct Args {
  std::string url;          // nginx, without query
  bool post = false;        // POST form body instead of GET query
  int concurrency = 1;      // requests kept in flight
  double warmup_s = 0.5;    // run, not measured
  double duration_s = 5.0;  // measured
  std::string driver = "thread";
};

[[noreturn]] inline void usage(const char* program, const char* extra) {
  std::fprintf(stderr,
               "usage: %s --url URL [--method get|post] [--concurrency C] [--warmup S] [--duration S]%s\n",
               program, extra);
  std::exit(2);
}

// Parses the flags every client takes; `with_driver` adds --driver thread|uv.
inline Args parse_args(int argc, char** argv, bool with_driver) {
  Args args;
  const char* extra = with_driver ? " [--driver thread|uv]" : "";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(argv[0], extra);
    const std::string value = argv[++i];
    if (flag == "--url") {
      args.url = value;
    } else if (flag == "--method") {
      if (value != "get" && value != "post") usage(argv[0], extra);
      args.post = value == "post";
    } else if (flag == "--concurrency") {
      args.concurrency = std::atoi(value.c_str());
    } else if (flag == "--warmup") {
      args.warmup_s = std::atof(value.c_str());
    } else if (flag == "--duration") {
      args.duration_s = std::atof(value.c_str());
    } else if (flag == "--driver" && with_driver) {
      args.driver = value;
    } else {
      usage(argv[0], extra);
    }
  }
  if (args.url.empty() || args.concurrency < 1 || args.duration_s <= 0 || args.warmup_s < 0) {
    usage(argv[0], extra);
  }
  return args;
}

// User plus system CPU time of the whole process, every thread included.
inline double process_cpu_us() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + t.tv_usec; };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

// One point of the measured window: taken at its start and at its end.
struct Mark {
  Clock::time_point when;
  double cpu_us = 0;
  long long completed = 0;
};

inline Mark mark(long long completed) { return {Clock::now(), process_cpu_us(), completed}; }

// Prints the human line and the machine line of one run. `latencies_ms`
// holds the requests completed inside the window; `errors` those of them
// that did not end as expected.
inline void report(const char* client, const Args& args, const Mark& start, const Mark& end,
                   std::vector<double> latencies_ms, long long errors) {
  const double seconds = std::chrono::duration<double>(end.when - start.when).count();
  const long long requests = end.completed - start.completed;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const auto at = [&](double q) {
    if (latencies_ms.empty()) return 0.0;
    return latencies_ms[static_cast<std::size_t>(q * static_cast<double>(latencies_ms.size() - 1))];
  };
  const double rps = seconds > 0 ? static_cast<double>(requests) / seconds : 0;
  const double cpu_per_request =
      requests > 0 ? (end.cpu_us - start.cpu_us) / static_cast<double>(requests) : 0;
  const char* method = args.post ? "POST" : "GET";
  std::printf(
      "%s %s C=%d: %lld requests in %.2f s, %.0f req/s, p50 %.3f ms, p99 %.3f ms, %.2f CPU us/req, %lld "
      "errors\n",
      client, method, args.concurrency, requests, seconds, rps, at(0.5), at(0.99), cpu_per_request, errors);
  std::printf(
      "RESULT {\"bench\":\"throughput\",\"client\":\"%s\",\"method\":\"%s\",\"concurrency\":%d,"
      "\"requests\":%lld,\"seconds\":%.4f,\"rps\":%.1f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
      "\"cpu_us_per_req\":%.3f,\"errors\":%lld}\n",
      client, method, args.concurrency, requests, seconds, rps, at(0.5), at(0.99), cpu_per_request, errors);
  std::fflush(stdout);
}

inline double ms_since(Clock::time_point started) {
  return std::chrono::duration<double, std::milli>(Clock::now() - started).count();
}

}  // namespace bench
