// The naive baseline: the libcurl multi loop a competent engineer writes in
// an afternoon, with none of the library's routing, deadlines, logging or
// metrics. One CURLM keeps C transfers in flight; each request is a fresh
// easy handle (connections are reused through the multi's cache), its
// answer collected into a std::string, and the loop is the plain
// curl_multi_perform + curl_multi_poll of curl's documentation.
//
// Usage: naive_curl --url URL [--method get|post] [--concurrency C] [--warmup S] [--duration S]
// Prints one human line and one `RESULT {json}` line.
#include "throughput_common.hpp"

#include <curl/curl.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

struct Transfer {
  CURL* easy = nullptr;
  std::string answer;
  bench::Clock::time_point started;
};

size_t collect(char* data, size_t size, size_t count, void* user) {
  static_cast<Transfer*>(user)->answer.append(data, size * count);
  return size * count;
}

std::string escaped(CURL* easy, const char* value) {
  char* text = curl_easy_escape(easy, value, 0);
  std::string out = text;
  curl_free(text);
  return out;
}

// The six call parameters, form-encoded; CallSid unique per request.
std::string call_parameters(CURL* easy, unsigned long long sequence) {
  const std::string sid = "call-" + std::to_string(sequence);
  return "CallSid=" + escaped(easy, sid.c_str()) + "&CallFrom=" + escaped(easy, bench::kCallFrom) +
         "&CallTo=" + escaped(easy, bench::kCallTo) + "&Direction=" + escaped(easy, bench::kDirection) +
         "&CurrentTime=" + escaped(easy, bench::kCurrentTime) +
         "&DialWhomNumber=" + escaped(easy, bench::kDialWhomNumber);
}

void start(CURLM* multi, Transfer& transfer, const bench::Args& args, unsigned long long sequence) {
  transfer.easy = curl_easy_init();
  transfer.answer.clear();
  CURL* easy = transfer.easy;
  const std::string parameters = call_parameters(easy, sequence);
  if (args.post) {
    curl_easy_setopt(easy, CURLOPT_URL, args.url.c_str());
    // Sets POST and Content-Type: application/x-www-form-urlencoded.
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, parameters.c_str());
  } else {
    const std::string url = args.url + "?" + parameters;
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  }
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &transfer);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  transfer.started = bench::Clock::now();
  curl_multi_add_handle(multi, easy);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv, false);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(args.concurrency));

  std::vector<Transfer> slots(static_cast<std::size_t>(args.concurrency));
  unsigned long long sequence = 0;
  for (Transfer& slot : slots) start(multi, slot, args, ++sequence);

  const auto begin = bench::Clock::now();
  const auto measure_from = begin + std::chrono::duration_cast<bench::Clock::duration>(
                                        std::chrono::duration<double>(args.warmup_s));
  const auto measure_until = measure_from + std::chrono::duration_cast<bench::Clock::duration>(
                                                std::chrono::duration<double>(args.duration_s));
  bool measuring = false;
  long long completed = 0;
  long long errors = 0;
  long long new_connections = 0;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(1 << 20);
  bench::Mark from;

  for (;;) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg != CURLMSG_DONE) continue;
      CURL* easy = message->easy_handle;
      Transfer* transfer = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &transfer);
      const double latency = bench::ms_since(transfer->started);
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      const bool good =
          message->data.result == CURLE_OK && status == 200 && transfer->answer == bench::kAnswer;
      long connects = 0;  // connections this transfer opened: 0 when it reused one
      curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
      curl_multi_remove_handle(multi, easy);
      curl_easy_cleanup(easy);
      ++completed;
      if (measuring) {
        latencies_ms.push_back(latency);
        if (!good) ++errors;
        if (connects != 0) ++new_connections;
      }
      start(multi, *transfer, args, ++sequence);
    }
    const auto now = bench::Clock::now();
    if (!measuring && now >= measure_from) {
      from = bench::mark(completed);
      measuring = true;
    }
    if (measuring && now >= measure_until) break;
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  const bench::Mark until = bench::mark(completed);
  std::printf("naive: %lld new connections in the window\n", new_connections);
  bench::report("naive", args, from, until, std::move(latencies_ms), errors);

  for (Transfer& slot : slots) {
    curl_multi_remove_handle(multi, slot.easy);
    curl_easy_cleanup(slot.easy);
  }
  curl_multi_cleanup(multi);
  return errors == 0 ? 0 : 1;
}
