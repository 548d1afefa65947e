// Kept-alive connections stay kept: a burst of completions does not shrink
// libcurl's connection cache, and an idle connection the loop still watches
// (parked between requests) costs nothing when its server closes it.
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_client.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace {

using passthru::Route;
using passthru::StepConfig;
using passthru_test::LogCollector;
using passthru_test::OutcomeCollector;
using passthru_test::TestClient;
using passthru_test::TestHttpServer;
using namespace std::chrono_literals;

std::chrono::microseconds process_cpu() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto us = [](const timeval& t) {
    return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
  };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

TEST(ConnectionReuse, ABurstThenOneRequestThenABurstUsesTheSameConnections) {
  // libcurl's default cache holds 4 idle connections per easy handle added
  // when a connection comes back: after a burst, one lone request would close
  // all but 4 of the burst's connections, and the next burst reopen them.
  constexpr int kBurst = 32;
  TestHttpServer server;
  // Each burst is answered once all of it has arrived, so it is all in
  // flight at once and needs kBurst connections however fast the client
  // opens them (a few per loop turn).
  std::mutex mutex;
  std::condition_variable arrivals;
  std::size_t arrived = 0;
  std::size_t release_at = 0;
  server.on("GET", "/crm", [&](const httplib::Request&, httplib::Response& res) {
    std::unique_lock<std::mutex> lock(mutex);
    ++arrived;
    arrivals.notify_all();
    arrivals.wait_for(lock, 10s, [&] { return arrived >= release_at; });
    res.set_content("vip-connect", "text/plain");
  });
  LogCollector logs;
  TestClient client(passthru_test::quiet_options(logs));
  const auto step = StepConfig::build(passthru_test::step_options(server.url("/crm"), 20s));
  std::size_t expected = 0;
  const auto burst = [&](int n) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      release_at = arrived + static_cast<std::size_t>(n);
    }
    OutcomeCollector collector;
    for (int i = 0; i < n; ++i) client.execute(step, passthru_test::sample_call(), collector.callback());
    expected += static_cast<std::size_t>(n);
    ASSERT_TRUE(collector.wait_for(static_cast<std::size_t>(n)));
    for (const auto& outcome : collector.outcomes())
      EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
  };
  burst(kBurst);
  const std::size_t connections = server.remote_ports().size();
  EXPECT_EQ(connections, static_cast<std::size_t>(kBurst));
  for (int round = 0; round < 3; ++round) {
    burst(1);
    burst(kBurst);
  }
  ASSERT_EQ(server.request_count(), expected);
  EXPECT_EQ(server.remote_ports().size(), connections) << "connections were closed and opened again";
}

// Answers one request on one connection, keeps it open, and closes it on cue.
class CloseOnCue {
 public:
  CloseOnCue() : listener_(passthru_test::open_loopback_listener("CloseOnCue", 16)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~CloseOnCue() {
    cue();
    const std::uint64_t one = 1;
    (void)::write(listener_.stop_fd, &one, sizeof one);
    thread_.join();
    ::close(listener_.listen_fd);
    ::close(listener_.stop_fd);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(listener_.port) + "/crm"; }
  void cue() {
    std::lock_guard<std::mutex> lock(mutex_);
    cued_ = true;
    changed_.notify_all();
  }
  bool wait_closed() {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return closed_; });
  }

 private:
  void serve() {
    pollfd fds[2] = {{listener_.listen_fd, POLLIN, 0}, {listener_.stop_fd, POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0 && errno == EINTR) {
    }
    const int connection =
        (fds[1].revents & POLLIN) != 0 ? -1 : ::accept4(listener_.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection >= 0) {
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(connection, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<std::size_t>(n));
      }
      const std::string answer =
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nvip-connect";
      (void)::send(connection, answer.data(), answer.size(), MSG_NOSIGNAL);
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return cued_; });
      ::close(connection);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }

  passthru_test::LoopbackListener listener_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool cued_ = false;
  bool closed_ = false;
};

TEST(ConnectionReuse, AnIdleConnectionItsServerClosesCostsNoCpu) {
  CloseOnCue peer;
  TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  LogCollector logs;
  TestClient client(passthru_test::quiet_options(logs));
  const auto outcome = passthru_test::execute_and_wait(
      client, StepConfig::build(passthru_test::step_options(peer.url(), 10s)), passthru_test::sample_call());
  ASSERT_TRUE(outcome);
  ASSERT_EQ(outcome->route, Route::next_applet) << outcome->reason;
  // The connection is idle in libcurl's cache, its socket still watched by
  // the loop. The server closes it: the socket turns readable for good, and a
  // loop that kept watching it would spin on a core from now on.
  peer.cue();
  ASSERT_TRUE(peer.wait_closed());
  const auto before = process_cpu();
  std::this_thread::sleep_for(500ms);  // the window measured, not a wait for an event
  EXPECT_LT(process_cpu() - before, 250ms);
  // The client goes on working.
  const auto next = passthru_test::execute_and_wait(
      client, StepConfig::build(passthru_test::step_options(server.url("/crm"), 10s)),
      passthru_test::sample_call());
  ASSERT_TRUE(next);
  EXPECT_EQ(next->route, Route::next_applet) << next->reason;
}

}  // namespace
