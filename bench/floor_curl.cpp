// The floor: the cheapest client that still goes through libcurl, so what
// libcurl costs at least per request; a wrapper's overhead is the difference
// between its figure and this one. It does the naive loop's work per request
// (bench/naive_curl.cpp: the same URL and six call parameters, built the same
// way, the same GET or POST, the same answer check) with every saving a
// wrapper could make on libcurl's side:
//   - curl_multi_socket_action on its own epoll loop (CURLMOPT_SOCKETFUNCTION,
//     CURLMOPT_TIMERFUNCTION); a 0 ms timer is run at the end of the loop's
//     turn, never waited for in epoll;
//   - one easy handle per slot, made once and reused: no curl_easy_init,
//     curl_easy_reset or curl_easy_cleanup per request; only the request
//     target (GET) or the body (POST) is set again;
//   - the URL handed over parsed, once (CURLOPT_CURLU, one CURLU per slot),
//     and a GET's query in the request target (CURLOPT_REQUEST_TARGET
//     "/passthru?CallSid=..."): libcurl 7.88 formats URLs back into strings
//     with its printf, a byte at a time, a large part of what it spends on a
//     request, while a request target is copied as it is. The bytes on the
//     wire are the naive loop's; this holds with no proxy (a proxy wants the
//     whole URL as target) and no redirects followed, as here;
//   - a kept-alive connection stays in epoll while libcurl holds it idle in
//     its cache, so a request on it costs no epoll_ctl. libcurl mostly does
//     this itself (a reused connection's socket keeps its entry, and the
//     socket callback hears again only of a change); for the transfers where
//     it does say CURL_POLL_REMOVE, the loop leaves a connection's socket
//     registered all the same. The sockets libcurl opens and closes for
//     connections pass through CURLOPT_OPENSOCKETFUNCTION and
//     CURLOPT_CLOSESOCKETFUNCTION, so the loop knows each one's life;
//   - no proxy (CURLOPT_PROXY and CURLOPT_NOPROXY ""), so no environment
//     lookups per request;
//   - CURLMOPT_MAXCONNECTS = C, as the naive loop.
//
// Usage: floor_curl --url URL [--method get|post] [--concurrency C] [--warmup S] [--duration S]
// Prints one human line and one `RESULT {json}` line.
#include "throughput_common.hpp"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Transfer {
  CURL* easy = nullptr;
  std::string answer;
  CURLU* url = nullptr;  // the URL without query, parsed once (CURLOPT_CURLU)
  std::string path;      // its path: a GET's request target is path?query
  std::string body;      // POST: the form body CURLOPT_POSTFIELDS points at (not copied)
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

// The six call parameters, form-encoded; CallSid unique per request. As
// naive_curl.cpp builds them.
std::string call_parameters(CURL* easy, unsigned long long sequence) {
  const std::string sid = "call-" + std::to_string(sequence);
  return "CallSid=" + escaped(easy, sid.c_str()) + "&CallFrom=" + escaped(easy, bench::kCallFrom) +
         "&CallTo=" + escaped(easy, bench::kCallTo) + "&Direction=" + escaped(easy, bench::kDirection) +
         "&CurrentTime=" + escaped(easy, bench::kCurrentTime) +
         "&DialWhomNumber=" + escaped(easy, bench::kDialWhomNumber);
}

// What the loop knows of a descriptor, indexed by its number.
struct Watch {
  bool connection = false;  // opened by open_socket, not yet closed by close_socket
  bool wanted = false;      // libcurl asked for it (CURL_POLL_IN/OUT/INOUT) and has not removed it
  bool registered = false;  // in the epoll set
  uint32_t events = 0;      // what it is registered for
};

// The epoll loop: libcurl's socket and timer callbacks land here.
struct Loop {
  int epoll = -1;
  CURLM* multi = nullptr;
  std::vector<Watch> watches;
  bool timer_now = false;  // a 0 ms timer: run at the end of this turn
  bool timer_armed = false;
  bench::Clock::time_point timer_at;

  Watch& watch(curl_socket_t socket) {
    const auto index = static_cast<std::size_t>(socket);
    if (index >= watches.size()) watches.resize(index + 64);
    return watches[index];
  }

  void control(int operation, curl_socket_t socket, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = socket;
    if (epoll_ctl(epoll, operation, socket, &event) != 0) std::perror("floor: epoll_ctl");
  }

  void unregister(curl_socket_t socket, Watch& w) {
    if (!w.registered) return;
    control(EPOLL_CTL_DEL, socket, 0);
    w.registered = false;
    w.events = 0;
  }
};

int on_socket(CURL*, curl_socket_t socket, int what, void* user, void*) {
  Loop& loop = *static_cast<Loop*>(user);
  Watch& w = loop.watch(socket);
  if (what == CURL_POLL_REMOVE) {
    w.wanted = false;
    // A connection going back to libcurl's cache stays registered: the next
    // request on it then needs no epoll_ctl. Any other socket leaves now.
    if (!w.connection) loop.unregister(socket, w);
    return 0;
  }
  w.wanted = true;
  const uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
  if (!w.registered) {
    loop.control(EPOLL_CTL_ADD, socket, events);
    w.registered = true;
  } else if (w.events != events) {
    loop.control(EPOLL_CTL_MOD, socket, events);
  }
  w.events = events;
  return 0;
}

int on_timer(CURLM*, long timeout_ms, void* user) {
  Loop& loop = *static_cast<Loop*>(user);
  loop.timer_now = timeout_ms == 0;
  loop.timer_armed = timeout_ms > 0;
  if (timeout_ms > 0) loop.timer_at = bench::Clock::now() + std::chrono::milliseconds(timeout_ms);
  return 0;
}

curl_socket_t open_socket(void* user, curlsocktype, curl_sockaddr* address) {
  const curl_socket_t socket = ::socket(address->family, address->socktype, address->protocol);
  if (socket != CURL_SOCKET_BAD) static_cast<Loop*>(user)->watch(socket).connection = true;
  return socket;
}

int close_socket(void* user, curl_socket_t socket) {
  Loop& loop = *static_cast<Loop*>(user);
  Watch& w = loop.watch(socket);
  loop.unregister(socket, w);  // before close: the number may come back as another socket
  w = Watch{};
  return ::close(socket);
}

// Sets what every request of the slot shares, once.
void prepare(Transfer& transfer, Loop& loop, const bench::Args& args) {
  transfer.easy = curl_easy_init();
  CURL* easy = transfer.easy;
  transfer.url = curl_url();
  char* path = nullptr;
  if (curl_url_set(transfer.url, CURLUPART_URL, args.url.c_str(), 0) != CURLUE_OK ||
      curl_url_get(transfer.url, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
    std::fprintf(stderr, "floor: not a URL: %s\n", args.url.c_str());
    std::exit(2);
  }
  curl_easy_setopt(easy, CURLOPT_CURLU, transfer.url);
  transfer.path = path;
  curl_free(path);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &transfer);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  // No proxy, said outright: libcurl then reads no proxy variables from the
  // environment for each request (the library sets CURLOPT_PROXY "" too).
  curl_easy_setopt(easy, CURLOPT_PROXY, "");
  curl_easy_setopt(easy, CURLOPT_NOPROXY, "");
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, &loop);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, &loop);
}

void start(CURLM* multi, Transfer& transfer, const bench::Args& args, unsigned long long sequence) {
  transfer.answer.clear();
  CURL* easy = transfer.easy;
  if (args.post) {
    transfer.body = call_parameters(easy, sequence);
    // Sets POST and Content-Type: application/x-www-form-urlencoded.
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, transfer.body.c_str());
  } else {
    // The request line the naive loop's URL args.url + "?" + parameters makes.
    // (Setting CURLUPART_QUERY on the CURLU instead costs more, and libcurl
    // 7.88 then sends the query's %-escapes in lowercase.)
    const std::string target = transfer.path + "?" + call_parameters(easy, sequence);
    curl_easy_setopt(easy, CURLOPT_REQUEST_TARGET, target.c_str());
  }
  transfer.started = bench::Clock::now();
  curl_multi_add_handle(multi, easy);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv, false);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Loop loop;
  loop.epoll = epoll_create1(EPOLL_CLOEXEC);
  if (loop.epoll < 0) {
    std::perror("floor: epoll_create1");
    return 1;
  }
  CURLM* multi = curl_multi_init();
  loop.multi = multi;
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(args.concurrency));
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &loop);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &loop);

  std::vector<Transfer> slots(static_cast<std::size_t>(args.concurrency));
  unsigned long long sequence = 0;
  for (Transfer& slot : slots) {
    prepare(slot, loop, args);
    start(multi, slot, args, ++sequence);
  }

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

  // Collects the finished transfers and starts each slot's next request.
  const auto finish = [&] {
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
      ++completed;
      if (measuring) {
        latencies_ms.push_back(latency);
        if (!good) ++errors;
        if (connects != 0) ++new_connections;
      }
      start(multi, *transfer, args, ++sequence);
    }
  };

  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  int running = 0;
  for (;;) {
    int wait_ms = 100;  // the measuring window is checked at least this often
    if (loop.timer_now) {
      wait_ms = 0;
    } else if (loop.timer_armed) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(loop.timer_at - bench::Clock::now());
      wait_ms = static_cast<int>(std::max<long long>(0, std::min<long long>(wait_ms, left.count() + 1)));
    }
    const int ready = epoll_wait(loop.epoll, events, kMaxEvents, wait_ms);
    for (int i = 0; i < ready; ++i) {
      const curl_socket_t socket = events[i].data.fd;
      Watch& w = loop.watch(socket);
      if (!w.wanted) {
        // An idle connection in libcurl's cache (the server closed it, say):
        // stop watching it until libcurl asks again.
        loop.unregister(socket, w);
        continue;
      }
      const uint32_t happened = events[i].events;
      const int mask = (happened & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                       (happened & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                       (happened & EPOLLERR ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(multi, socket, mask, &running);
    }
    finish();
    const auto now = bench::Clock::now();
    if (loop.timer_armed && now >= loop.timer_at) {
      loop.timer_armed = false;
      loop.timer_now = true;
    }
    // A 0 ms timer (each curl_multi_add_handle sets one) runs now, for every
    // transfer started this turn at once. Once per turn: the transfers it
    // completes start others, whose own 0 ms timer waits for the next turn,
    // after an epoll_wait that does not block.
    if (loop.timer_now) {
      loop.timer_now = false;
      curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
      finish();
    }
    if (!measuring && now >= measure_from) {
      from = bench::mark(completed);
      measuring = true;
    }
    if (measuring && now >= measure_until) break;
  }
  const bench::Mark until = bench::mark(completed);
  std::printf("floor: %lld new connections in the window\n", new_connections);
  bench::report("floor", args, from, until, std::move(latencies_ms), errors);

  for (Transfer& slot : slots) {
    curl_multi_remove_handle(multi, slot.easy);
    curl_easy_cleanup(slot.easy);
    curl_url_cleanup(slot.url);
  }
  curl_multi_cleanup(multi);
  close(loop.epoll);
  return errors == 0 ? 0 : 1;
}
