// Name resolution that hangs until the test says so, for this process only.
//
// slow_dns.cpp defines getaddrinfo() in the test executable, which the
// dynamic linker then binds every caller to (libcurl's resolver threads
// included), ahead of libc's and of a sanitizer runtime's interceptor. A
// name ending in kSlowSuffix blocks in it until release_all(), then resolves
// to 127.0.0.1; every other name goes to the getaddrinfo() that would have
// answered without us (dlsym(RTLD_NEXT)). Nothing leaves loopback and no
// system configuration changes.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace passthru_test {

/// Host names ending in this hang in getaddrinfo() until released.
inline constexpr std::string_view kSlowSuffix = ".slow-dns.test";

/// `label` + kSlowSuffix: "abandoned" -> "abandoned.slow-dns.test".
std::string slow_host(std::string_view label);

/// Holds lookups of slow names from construction until release_all() or
/// destruction; one at a time. The destructor releases whatever is still
/// blocked, then waits (bounded) until every thread that made a slow lookup
/// has exited, so no resolver thread outlives the test that started it (and
/// LeakSanitizer never sees one mid-flight at exit). Declare it after the
/// clients, so it releases their lookups before they are destroyed.
class SlowDns {
 public:
  SlowDns();
  ~SlowDns();
  SlowDns(const SlowDns&) = delete;
  SlowDns& operator=(const SlowDns&) = delete;

  /// Lookups of slow names blocked right now.
  std::size_t blocked() const;
  /// Waits until at least `n` lookups are blocked at once; false on timeout.
  bool wait_until_blocked(std::size_t n, std::chrono::milliseconds timeout) const;
  /// Lets every blocked lookup, and every later one, resolve to 127.0.0.1.
  /// Any thread.
  void release_all();
  /// Waits until every thread that has made a slow lookup since construction
  /// has exited (polls /proc/self/task, bounded); false on timeout.
  bool wait_for_lookup_threads_to_exit(std::chrono::milliseconds timeout) const;

  /// Calls to curl_easy_init() in this process so far (the executable
  /// interposes it too, to count them): how a test sees that an easy handle
  /// was reused rather than created.
  static std::size_t easy_handles_created();
  /// The shared object the real getaddrinfo() was found in (dladdr), for
  /// checking that the interposer forwards to libc or a sanitizer runtime.
  static std::string next_getaddrinfo_origin();
};

}  // namespace passthru_test
