// The interposed getaddrinfo() (and curl_easy_init()) of passthru_dns_tests.
// See slow_dns.hpp.
#include "slow_dns.hpp"

#include <dlfcn.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace passthru_test {
namespace {

// Only a broken test leaves a lookup blocked this long: SlowDns releases
// every lookup when it goes, and a test releases them well before.
constexpr std::chrono::seconds kUpperBound{60};

using GetaddrinfoFn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
using EasyInitFn = void* (*)();

// dlsym(RTLD_NEXT) from the executable: the next definition in the lookup
// order after ours. That is libc's, or, under ASan or TSan (whose runtimes
// GCC links as shared objects loaded first), the sanitizer's interceptor,
// which then calls libc's: the sanitizer keeps its bookkeeping.
void* next_symbol(const char* name) {
  void* symbol = dlsym(RTLD_NEXT, name);
  if (symbol == nullptr) {
    std::fprintf(stderr, "slow_dns: dlsym(RTLD_NEXT, \"%s\") failed: %s\n", name, dlerror());
    std::abort();
  }
  return symbol;
}

GetaddrinfoFn real_getaddrinfo() {
  static const auto real = reinterpret_cast<GetaddrinfoFn>(next_symbol("getaddrinfo"));
  return real;
}

bool is_slow(const char* node) {
  if (node == nullptr) return false;
  const std::string_view name(node);
  return name.size() > kSlowSuffix.size() && name.substr(name.size() - kSlowSuffix.size()) == kSlowSuffix;
}

struct State {
  std::mutex mutex;
  std::condition_variable changed;
  bool released = true;  // no SlowDns: nothing blocks
  std::size_t blocked = 0;
  std::vector<pid_t> threads;  // that made a slow lookup since the SlowDns began
};

// Never destroyed: a resolver thread still blocked at exit must not find it gone.
State& state() {
  static State* const instance = new State;
  return *instance;
}

std::atomic<std::size_t> easy_inits{0};

int slow_lookup(const char* service, const addrinfo* hints, addrinfo** result) {
  State& s = state();
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    s.threads.push_back(gettid());
    ++s.blocked;
    s.changed.notify_all();
    s.changed.wait_for(lock, kUpperBound, [&s] { return s.released; });
    --s.blocked;
    s.changed.notify_all();
  }
  addrinfo numeric{};
  if (hints != nullptr) {
    numeric.ai_family = hints->ai_family;
    numeric.ai_socktype = hints->ai_socktype;
    numeric.ai_protocol = hints->ai_protocol;
    numeric.ai_flags = hints->ai_flags;
  }
  numeric.ai_flags |= AI_NUMERICHOST;
  // libc allocates the answer, so the caller's freeaddrinfo() frees it.
  return real_getaddrinfo()("127.0.0.1", service, &numeric, result);
}

}  // namespace

std::string slow_host(std::string_view label) {
  std::string host(label);
  host += kSlowSuffix;
  return host;
}

SlowDns::SlowDns() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.released = false;
  s.threads.clear();
}

SlowDns::~SlowDns() {
  release_all();
  if (!wait_for_lookup_threads_to_exit(std::chrono::seconds(30))) {
    std::fputs("slow_dns: a resolver thread is still alive 30 s after its lookup was released\n", stderr);
    std::abort();
  }
}

std::size_t SlowDns::blocked() const {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.blocked;
}

bool SlowDns::wait_until_blocked(std::size_t n, std::chrono::milliseconds timeout) const {
  State& s = state();
  std::unique_lock<std::mutex> lock(s.mutex);
  return s.changed.wait_for(lock, timeout, [&s, n] { return s.blocked >= n; });
}

void SlowDns::release_all() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.released = true;
  s.changed.notify_all();
}

bool SlowDns::wait_for_lookup_threads_to_exit(std::chrono::milliseconds timeout) const {
  std::vector<pid_t> threads;
  {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    threads = s.threads;
  }
  // No event marks a detached thread's exit; the kernel drops its
  // /proc/self/task entry when it has exited, so poll that, briefly.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    bool alive = false;
    for (const pid_t tid : threads) {
      const std::string path = "/proc/self/task/" + std::to_string(tid);
      if (access(path.c_str(), F_OK) == 0) alive = true;
    }
    if (!alive) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::size_t SlowDns::easy_handles_created() { return easy_inits.load(); }

std::string SlowDns::next_getaddrinfo_origin() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(real_getaddrinfo()), &info) == 0 || info.dli_fname == nullptr) {
    return "(unknown)";
  }
  return info.dli_fname;
}

}  // namespace passthru_test

// The interposers. The executable exports them (ENABLE_EXPORTS), so the
// dynamic linker binds libcurl's calls to these.

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** result) {
  if (passthru_test::is_slow(node)) return passthru_test::slow_lookup(service, hints, result);
  return passthru_test::real_getaddrinfo()(node, service, hints, result);
}

// CURL is void in <curl/curl.h>: the same signature as libcurl's.
extern "C" void* curl_easy_init() {
  static const auto real =
      reinterpret_cast<passthru_test::EasyInitFn>(passthru_test::next_symbol("curl_easy_init"));
  passthru_test::easy_inits.fetch_add(1);
  return real();
}
