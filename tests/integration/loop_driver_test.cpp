// The EventLoop contract, checked with a loop of the test's own: a poll()
// loop stepped from the test thread that records every hook the client calls
// and checks each against the rules of <passthru/event_loop.hpp>.
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using passthru::Errc;
using passthru::Outcome;
using passthru::PassthruClient;
using passthru::RequestHandle;
using passthru::Route;
using passthru::StepConfig;
using passthru::Watch;
using passthru_test::kGenerousWait;
using passthru_test::OutcomeCollector;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kLongTimeout{60000};

// These tests drive a PassthruClient through a loop of their own, whatever
// driver the run is for: once per suite run is enough.
#define SKIP_UNLESS_THREAD_RUN()                                                         \
  do {                                                                                   \
    if (passthru_test::driver_under_test() != passthru_test::DriverKind::thread) {       \
      GTEST_SKIP() << "drives its own EventLoop; run once, under the thread driver run"; \
    }                                                                                    \
  } while (false)

// What an fd refers to: a closed fd number reused by a new socket has another inode.
struct FdIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const FdIdentity& other) const { return device == other.device && inode == other.inode; }
  bool operator!=(const FdIdentity& other) const { return !(*this == other); }
};

std::optional<FdIdentity> identity_of(int fd) {
  struct stat status {};
  if (::fstat(fd, &status) != 0) return std::nullopt;
  return FdIdentity{status.st_dev, status.st_ino};
}

const char* to_string(Watch what) {
  switch (what) {
    case Watch::none: return "none";
    case Watch::read: return "read";
    case Watch::write: return "write";
    case Watch::read_write: return "read_write";
  }
  return "?";
}

/// When the loop fires the timer relative to the time the client asked for.
struct TimerSkew {
  std::chrono::milliseconds early_min{0};  ///< fire between early_min and early_max
  std::chrono::milliseconds early_max{0};  ///< before `when` (0, 0: on time)
  std::chrono::milliseconds late{0};       ///< or this much after it
};

/// A poll() event loop stepped by the thread that built it. Every hook call
/// is recorded and checked against the EventLoop rules; a breach is kept as
/// a violation for the test to report. Only wake() and post() are
/// thread-safe, as the contract requires.
class RecordingLoop final : public passthru::EventLoop {
 public:
  enum class Hook { watch_socket, arm_timer, cancel_timer, wake };
  struct HookCall {
    Hook hook;
    int fd = -1;
    Watch what = Watch::none;
  };

  explicit RecordingLoop(TimerSkew skew = {}) : skew_(skew), owner_(std::this_thread::get_id()) {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
  }
  ~RecordingLoop() override { ::close(wake_fd_); }

  // Hooks.

  void watch_socket(int fd, Watch what) override {
    std::lock_guard<std::mutex> lock(mutex_);
    record_locked({Hook::watch_socket, fd, what});
    const auto found = watches_.find(fd);
    if (what == Watch::none) {
      if (found == watches_.end()) return;  // harmless: a socket never watched
      // The rule under test: the socket is still open, and still the one
      // that was watched, when the loop is told to forget it.
      const auto now = identity_of(fd);
      if (!now) {
        violation_locked("watch_socket(" + std::to_string(fd) + ", none) after the fd was closed");
      } else if (*now != found->second.identity) {
        violation_locked("watch_socket(" + std::to_string(fd) +
                         ", none) after the fd was closed and reused by another socket");
      }
      watches_.erase(found);
      ++unwatched_;
      return;
    }
    const auto now = identity_of(fd);
    if (!now) {
      violation_locked("watch_socket(" + std::to_string(fd) + ", " + to_string(what) + ") of a closed fd");
      return;
    }
    if (found == watches_.end()) {
      watches_.emplace(fd, Watched{what, *now});
      ++watch_starts_;
      return;
    }
    if (found->second.identity != *now) {
      violation_locked("fd " + std::to_string(fd) + " was closed and reused while watched");
      found->second.identity = *now;
    }
    found->second.what = what;
  }

  void arm_timer(Clock::time_point when) override {
    std::lock_guard<std::mutex> lock(mutex_);
    record_locked({Hook::arm_timer});
    timer_when_ = when;
    if (skew_.early_max > 0ms) {
      std::uniform_int_distribution<long long> pick(skew_.early_min.count(), skew_.early_max.count());
      fire_at_ = when - std::chrono::milliseconds(pick(random_));
    } else {
      fire_at_ = when + skew_.late;
    }
  }

  void cancel_timer() override {
    std::lock_guard<std::mutex> lock(mutex_);
    record_locked({Hook::cancel_timer});
    timer_when_.reset();
    fire_at_.reset();
  }

  void wake() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Any thread: not checked against the loop thread.
      if (!attached()) violation_locked("wake() with no client attached");
      calls_.push_back({Hook::wake});
    }
    if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) signal();
  }

  // Loop.

  /// Runs `task` on the loop thread on a later turn. Any thread.
  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      posted_.push_back(std::move(task));
    }
    signal();
  }

  /// One turn: waits up to `max_wait` for a watched socket, the timer, a
  /// wake-up or a posted task, and dispatches what is due.
  void run_once(std::chrono::milliseconds max_wait) {
    check_loop_thread("run_once()");
    struct Polled {
      int fd;
      FdIdentity identity;
    };
    std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
    std::vector<Polled> polled;
    std::optional<Clock::time_point> fire_at;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& [fd, watched] : watches_) {
        const short events = static_cast<short>(
            (watched.what == Watch::read || watched.what == Watch::read_write ? POLLIN : 0) |
            (watched.what == Watch::write || watched.what == Watch::read_write ? POLLOUT : 0));
        fds.push_back({fd, events, 0});
        polled.push_back({fd, watched.identity});
      }
      fire_at = fire_at_;
    }
    auto wait = max_wait;
    if (fire_at) {
      const auto now = Clock::now();
      wait = *fire_at <= now ? 0ms
                             : std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(*fire_at - now));
    }
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
    if (ready < 0 && errno != EINTR) violation("poll() failed");
    ++turns_;

    for (std::size_t i = 1; ready > 0 && i < fds.size(); ++i) {
      const short revents = fds[i].revents;
      if (revents == 0) continue;
      const int fd = polled[i - 1].fd;
      if ((revents & POLLNVAL) != 0) {
        violation("fd " + std::to_string(fd) + " was closed while watched");
        continue;
      }
      {
        // Unwatched earlier in this turn (its number may be a new socket now).
        std::lock_guard<std::mutex> lock(mutex_);
        const auto found = watches_.find(fd);
        if (found == watches_.end() || found->second.identity != polled[i - 1].identity) continue;
      }
      int events = 0;
      if ((revents & (POLLIN | POLLHUP)) != 0) events |= passthru::Ready::read;
      if ((revents & POLLOUT) != 0) events |= passthru::Ready::write;
      if ((revents & POLLERR) != 0) events |= passthru::Ready::error;
      ++socket_events_;
      socket_ready(fd, events);
    }

    if ((fds[0].revents & POLLIN) != 0) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto got = ::read(wake_fd_, &count, sizeof count);
      std::vector<std::function<void()>> tasks;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        tasks.swap(posted_);
      }
      if (wake_pending_.exchange(false, std::memory_order_acq_rel)) {
        ++woken_;
        woken();
      }
      for (auto& task : tasks) task();
    }

    bool fire = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto now = Clock::now();
      if (fire_at_ && *fire_at_ <= now) {
        if (now < *timer_when_) ++early_fires_;
        fire_at_.reset();
        timer_when_.reset();
        fire = true;
      }
    }
    if (fire) {
      ++timer_fires_;
      timer_expired();
    }
    check_watched_fds();
  }

  /// Runs turns until `done()` or `timeout`; true if done.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = kGenerousWait) {
    const auto give_up = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() >= give_up) return false;
      run_once(10ms);
    }
    return true;
  }

  /// Runs turns for `period` whatever happens (to observe that nothing does).
  void run_for(std::chrono::milliseconds period) {
    const auto end = Clock::now() + period;
    for (auto now = Clock::now(); now < end; now = Clock::now()) {
      run_once(std::chrono::ceil<std::chrono::milliseconds>(end - now));
    }
  }

  // Observations.

  std::vector<HookCall> hook_calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }
  std::size_t hook_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_.size();
  }
  std::size_t count(Hook hook) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<std::size_t>(std::count_if(
        calls_.begin(), calls_.end(), [hook](const HookCall& call) { return call.hook == hook; }));
  }
  std::map<int, Watch> watched() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<int, Watch> fds;
    for (const auto& [fd, watched] : watches_) fds.emplace(fd, watched.what);
    return fds;
  }
  bool timer_armed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return timer_when_.has_value();
  }
  std::vector<std::string> violations() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return violations_;
  }
  std::size_t watch_starts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return watch_starts_;
  }
  std::size_t unwatched() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return unwatched_;
  }
  /// Entry points this loop has called (socket_ready, woken, timer_expired).
  std::size_t dispatches() const { return socket_events_ + woken_ + timer_fires_; }
  std::size_t turns() const { return turns_; }
  std::size_t timer_fires() const { return timer_fires_; }
  std::size_t early_fires() const { return early_fires_; }
  std::size_t woken_count() const { return woken_; }

 private:
  struct Watched {
    Watch what;
    FdIdentity identity;
  };

  void signal() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
  }

  void record_locked(HookCall call) {
    calls_.push_back(call);
    if (!attached()) violation_locked("a hook was called with no client attached");
    if (std::this_thread::get_id() != owner_)
      violation_locked("a hook other than wake() off the loop thread");
  }

  void check_loop_thread(const char* what) {
    if (std::this_thread::get_id() != owner_) violation(std::string(what) + " off the loop thread");
  }

  // Between turns every watched fd must still be the socket that was watched.
  void check_watched_fds() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [fd, watched] : watches_) {
      const auto now = identity_of(fd);
      if (!now) {
        violation_locked("fd " + std::to_string(fd) + " was closed while watched");
      } else if (*now != watched.identity) {
        violation_locked("fd " + std::to_string(fd) + " was closed and reused while watched");
      }
    }
  }

  void violation(std::string what) {
    std::lock_guard<std::mutex> lock(mutex_);
    violation_locked(std::move(what));
  }
  void violation_locked(std::string what) { violations_.push_back(std::move(what)); }

  const TimerSkew skew_;
  const std::thread::id owner_;
  int wake_fd_ = -1;
  std::atomic<bool> wake_pending_{false};
  std::mt19937 random_{20240115};

  mutable std::mutex mutex_;
  std::vector<HookCall> calls_;
  std::vector<std::string> violations_;
  std::map<int, Watched> watches_;
  std::optional<Clock::time_point> timer_when_;
  std::optional<Clock::time_point> fire_at_;
  std::vector<std::function<void()>> posted_;
  std::size_t watch_starts_ = 0;
  std::size_t unwatched_ = 0;

  // Loop thread only.
  std::size_t turns_ = 0;
  std::size_t socket_events_ = 0;
  std::size_t woken_ = 0;
  std::size_t timer_fires_ = 0;
  std::size_t early_fires_ = 0;
};

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

#define EXPECT_NO_VIOLATIONS(loop) EXPECT_TRUE((loop).violations().empty()) << joined((loop).violations())

void expect_cancelled(const Outcome& outcome, Errc why) {
  EXPECT_EQ(outcome.route, Route::cancelled) << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.error, passthru::make_error_code(why)) << outcome.error.message();
}

StepConfig step_for(const std::string& url, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  return StepConfig::build(passthru_test::step_options(url, timeout));
}

// Sockets: opened, watched, unwatched, closed, on every path a request can
// end by: an answer (kept alive or closed by the server), a refusal, a
// timeout, an answer over the cap, a cancellation, a failed DNS lookup, and
// the client's destruction. The loop checks at each unwatch that the fd is
// still the socket it watched, and between turns that no watched fd was
// closed under it.
TEST(LoopDriver, UnwatchesEverySocketBeforeItIsClosed) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::TestHttpServer server;
  server.reply("GET", "/keep", 200, "vip-connect");
  server.on("GET", "/close", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Connection", "close");
    res.set_content("standard-queue", "text/plain");
  });
  server.reply("GET", "/big", 200, std::string(200000, 'x'));
  passthru_test::SilentServer silent;
  passthru_test::RefusedPort refused;

  RecordingLoop loop;
  passthru_test::LogCollector logs;
  auto client = std::make_unique<PassthruClient>(loop, passthru_test::quiet_options(logs));
  OutcomeCollector collector;
  std::size_t expected = 0;
  const auto run = [&](const StepConfig& step, int times) {
    for (int i = 0; i < times; ++i) client->execute(step, passthru_test::sample_call(), collector.callback());
    expected += static_cast<std::size_t>(times);
    ASSERT_TRUE(loop.run_until([&] { return collector.total_calls() == expected; }));
  };
  run(step_for(server.url("/keep")), 5);
  run(step_for(server.url("/close")), 5);
  run(step_for(server.url("/big")), 3);
  run(step_for(refused.url("/")), 5);
  // "localhost" is ::1 and 127.0.0.1 to libcurl: a refused or missing first
  // address, then the next one, on one request.
  run(step_for("http://localhost:" + std::to_string(server.port()) + "/keep"), 3);
  run(step_for("http://localhost:" + std::to_string(refused.port()) + "/"), 3);
  run(step_for(silent.url("/"), 100ms), 5);

  // Cancelled while connecting, while waiting for an answer, and while the
  // name is being looked up.
  std::vector<RequestHandle> handles;
  const auto stalled = step_for(silent.url("/"), kLongTimeout);
  const auto unresolvable = step_for("https://" + std::string(40, 'a') + ".invalid/crm", kLongTimeout);
  for (int i = 0; i < 3; ++i) {
    handles.push_back(client->execute(stalled, passthru_test::sample_call(), collector.callback()));
    handles.push_back(client->execute(unresolvable, passthru_test::sample_call(), collector.callback()));
  }
  loop.run_once(0ms);
  for (auto& handle : handles) handle.cancel();
  expected += handles.size();
  ASSERT_TRUE(loop.run_until([&] { return collector.total_calls() == expected; }));

  // Left in flight for the destructor, with kept-alive connections around.
  for (int i = 0; i < 5; ++i) client->execute(stalled, passthru_test::sample_call(), collector.callback());
  expected += 5;
  ASSERT_TRUE(loop.run_until([&] { return loop.watched().size() >= 5; }));
  client.reset();

  EXPECT_EQ(collector.total_calls(), expected);
  EXPECT_TRUE(collector.repeated_ids().empty());
  EXPECT_NO_VIOLATIONS(loop);
  EXPECT_TRUE(loop.watched().empty()) << loop.watched().size() << " fds still watched";
  // Not vacuous: sockets of every kind were watched and unwatched.
  EXPECT_GE(loop.watch_starts(), 25u);
  EXPECT_EQ(loop.unwatched(), loop.watch_starts());
}

TEST(LoopDriver, ASecondClientOnTheSameLoopThrowsLogicErrorAndLeavesTheFirstWorking) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  const auto step = step_for(server.url("/crm"));
  RecordingLoop loop;
  passthru_test::LogCollector logs;
  auto first = std::make_unique<PassthruClient>(loop, passthru_test::quiet_options(logs));
  ASSERT_TRUE(loop.attached());

  const std::size_t hooks_before = loop.hook_count();
  EXPECT_THROW(PassthruClient(loop, passthru_test::quiet_options(logs)), std::logic_error);
  EXPECT_EQ(loop.hook_count(), hooks_before) << "the refused client touched the loop";
  EXPECT_TRUE(loop.attached());

  OutcomeCollector collector;
  const auto handle = first->execute(step, passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(loop.run_until([&] { return collector.total_calls() == 1; }));
  EXPECT_EQ(collector.outcome(handle.id())->route, Route::next_applet)
      << collector.outcome(handle.id())->reason;

  // Once the first is gone, the loop takes a new client.
  first.reset();
  EXPECT_FALSE(loop.attached());
  PassthruClient second(loop, passthru_test::quiet_options(logs));
  const auto again = second.execute(step, passthru_test::sample_call(), collector.callback());
  ASSERT_TRUE(loop.run_until([&] { return collector.total_calls() == 2; }));
  EXPECT_EQ(collector.outcome(again.id())->route, Route::next_applet)
      << collector.outcome(again.id())->reason;
  EXPECT_NO_VIOLATIONS(loop);
}

TEST(LoopDriver, NoHookIsCalledAfterTheClientIsDestroyedAndLateEventsAreHarmless) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::SilentServer silent;
  RecordingLoop loop;
  passthru_test::LogCollector logs;
  auto client = std::make_unique<PassthruClient>(loop, passthru_test::quiet_options(logs));
  OutcomeCollector collector;
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 4; ++i) {
    handles.push_back(client->execute(step_for(silent.url("/"), kLongTimeout), passthru_test::sample_call(),
                                      collector.callback()));
  }
  ASSERT_TRUE(loop.run_until([&] { return loop.watched().size() == 4 && loop.timer_armed(); }));
  const auto fds = loop.watched();
  client.reset();
  ASSERT_EQ(collector.total_calls(), 4u);
  EXPECT_FALSE(loop.attached());
  const std::size_t hooks_after = loop.hook_count();

  // Events the loop had already collected arrive after the client is gone.
  for (const auto& [fd, what] : fds) {
    loop.socket_ready(fd, passthru::Ready::read | passthru::Ready::write | passthru::Ready::error);
  }
  loop.timer_expired();
  loop.woken();
  for (const auto& handle : handles) handle.cancel();
  loop.run_for(50ms);

  EXPECT_EQ(loop.hook_count(), hooks_after) << "a hook was called after the client was destroyed";
  EXPECT_EQ(collector.total_calls(), 4u);
  EXPECT_TRUE(collector.repeated_ids().empty());
  EXPECT_NO_VIOLATIONS(loop);
}

TEST(LoopDriver, DestroyingTheClientCancelsEveryRequestOnceUnwatchesEverySocketAndCancelsTheTimer) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::SilentServer silent;
  RecordingLoop loop;
  passthru_test::LogCollector logs;
  auto options = passthru_test::quiet_options(logs);
  options.max_in_flight = 6;
  auto client = std::make_unique<PassthruClient>(loop, options);
  const auto step = step_for(silent.url("/"), kLongTimeout);
  OutcomeCollector collector;
  std::vector<RequestHandle> handles;
  // Six running with their sockets watched, four queued for a slot...
  for (int i = 0; i < 10; ++i)
    handles.push_back(client->execute(step, passthru_test::sample_call(), collector.callback()));
  ASSERT_TRUE(loop.run_until([&] { return loop.watched().size() == 6 && loop.timer_armed(); }));
  // ...and three the loop has not even seen.
  for (int i = 0; i < 3; ++i)
    handles.push_back(client->execute(step, passthru_test::sample_call(), collector.callback()));
  ASSERT_EQ(collector.total_calls(), 0u);

  client.reset();

  // No waiting and no turn of the loop: all of it happened in the destructor.
  EXPECT_EQ(collector.total_calls(), handles.size());
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (const auto& handle : handles) {
    const auto outcome = collector.outcome(handle.id());
    ASSERT_TRUE(outcome) << "request " << handle.id() << " got no outcome";
    expect_cancelled(*outcome, Errc::shut_down);
  }
  EXPECT_TRUE(loop.watched().empty()) << loop.watched().size() << " fds still watched";
  EXPECT_FALSE(loop.timer_armed());
  EXPECT_FALSE(loop.attached());
  EXPECT_NO_VIOLATIONS(loop);
}

// execute() only queues: the callback never runs inside it, even when the
// outcome is known at once, and with a loop stepped on the calling thread
// not before the loop's next turn.
TEST(LoopDriver, ExecuteNeverRunsTheCallbackBeforeItReturns) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  RecordingLoop loop;
  passthru_test::LogCollector logs;
  PassthruClient client(loop, passthru_test::quiet_options(logs));
  OutcomeCollector collector;
  bool inside_execute = false;
  int ran_inside = 0;
  auto callback = [&, record = collector.callback()](Outcome outcome) {
    if (inside_execute) ++ran_inside;
    record(std::move(outcome));
  };
  const auto execute = [&](const StepConfig& step, passthru::CallContext call) {
    inside_execute = true;
    const auto handle = client.execute(step, std::move(call), callback);
    inside_execute = false;
    return handle;
  };

  auto invalid_call = passthru_test::sample_call();
  invalid_call.custom.emplace_back("", "a custom parameter with no name");
  const auto invalid = execute(step_for(server.url("/crm")), invalid_call);

  const auto tiny = step_for(server.url("/crm"), 1ms);
  const auto too_late = execute(tiny, passthru_test::sample_call());
  const auto deadline_passed = Clock::now() + 5ms;
  while (Clock::now() < deadline_passed) std::this_thread::sleep_for(1ms);  // the deadline, not a sync

  const auto normal = execute(step_for(server.url("/crm")), passthru_test::sample_call());
  EXPECT_EQ(collector.total_calls(), 0u) << "an outcome arrived before the loop turned";

  std::uint64_t nested = 0;
  execute(step_for(server.url("/crm")), passthru_test::sample_call());
  // A callback that executes again: that callback, too, waits for a turn.
  client.execute(step_for(server.url("/crm")), passthru_test::sample_call(), [&](Outcome outcome) {
    callback(std::move(outcome));
    nested = execute(tiny, passthru_test::sample_call()).id();
  });

  ASSERT_TRUE(loop.run_until(
      [&] { return nested != 0 && collector.calls_for(nested) == 1 && collector.total_calls() == 6; }));
  EXPECT_EQ(ran_inside, 0);
  EXPECT_EQ(collector.total_calls(), 6u);
  EXPECT_TRUE(collector.repeated_ids().empty());

  const auto invalid_outcome = collector.outcome(invalid.id());
  EXPECT_EQ(invalid_outcome->route, Route::on_error) << invalid_outcome->reason;
  EXPECT_EQ(invalid_outcome->error, passthru::make_error_code(Errc::invalid_request));
  const auto late_outcome = collector.outcome(too_late.id());
  EXPECT_EQ(late_outcome->route, Route::on_timeout) << late_outcome->reason;
  EXPECT_NE(late_outcome->reason.find("before the request could start"), std::string::npos)
      << late_outcome->reason;
  EXPECT_EQ(collector.outcome(normal.id())->route, Route::next_applet)
      << collector.outcome(normal.id())->reason;
  EXPECT_NO_VIOLATIONS(loop);
}

// On every driver: a callback that starts the next step never has that
// step's callback run inside its execute() call, even when the outcome is
// known at once (an invalid call context, a deadline already passed).
thread_local bool inside_execute_on_this_thread = false;

TEST(ExecuteContract, ExecuteFromACallbackNeverRunsTheNewCallbackInsideIt) {
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::LogCollector logs;
  passthru_test::TestClient client(passthru_test::quiet_options(logs));
  const auto step = step_for(server.url("/crm"));
  const auto tiny = step_for(server.url("/crm"), 1ms);
  auto invalid_call = passthru_test::sample_call();
  invalid_call.custom.emplace_back("", "a custom parameter with no name");

  OutcomeCollector collector;
  std::atomic<int> ran_inside{0};
  auto record = [&, record = collector.callback()](Outcome outcome) {
    if (inside_execute_on_this_thread) ++ran_inside;
    record(std::move(outcome));
  };
  client.execute(step, passthru_test::sample_call(), [&](Outcome outcome) {
    record(std::move(outcome));
    inside_execute_on_this_thread = true;
    client.execute(step, invalid_call, record);
    client.execute(tiny, passthru_test::sample_call(), record);
    client.execute(step, passthru_test::sample_call(), record);
    inside_execute_on_this_thread = false;
  });
  ASSERT_TRUE(collector.wait_for(4));
  EXPECT_EQ(ran_inside.load(), 0);
  EXPECT_TRUE(collector.repeated_ids().empty());
  std::map<Route, int> routes;
  for (const auto& outcome : collector.outcomes()) ++routes[outcome.route];
  EXPECT_EQ(routes[Route::on_error], 1) << "the invalid call context";
  EXPECT_GE(routes[Route::next_applet], 2);
}

// The cancelled callbacks the destructor runs may start the next step: that
// request, too, ends cancelled before the destructor returns, and its
// callback does not run inside execute().
TEST(LoopDriver, ExecuteFromACallbackTheDestructorRunsEndsCancelledNotInsideExecute) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::SilentServer silent;
  RecordingLoop loop;
  passthru_test::LogCollector logs;
  auto client = std::make_unique<PassthruClient>(loop, passthru_test::quiet_options(logs));
  PassthruClient* const raw = client.get();  // the unique_ptr is empty while it destroys
  const auto step = step_for(silent.url("/"), kLongTimeout);
  OutcomeCollector collector;
  bool inside_execute = false;
  int ran_inside = 0;
  std::vector<std::uint64_t> chained;
  auto record = [&, record = collector.callback()](Outcome outcome) {
    if (inside_execute) ++ran_inside;
    record(std::move(outcome));
  };
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 3; ++i) {
    handles.push_back(client->execute(step, passthru_test::sample_call(), [&](Outcome outcome) {
      record(std::move(outcome));
      inside_execute = true;
      chained.push_back(raw->execute(step, passthru_test::sample_call(), record).id());
      inside_execute = false;
    }));
  }
  ASSERT_TRUE(loop.run_until([&] { return loop.watched().size() == 3; }));

  client.reset();

  EXPECT_EQ(ran_inside, 0);
  ASSERT_EQ(chained.size(), 3u);
  EXPECT_EQ(collector.total_calls(), 6u);
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (const auto id : chained) {
    const auto outcome = collector.outcome(id);
    ASSERT_TRUE(outcome) << "request " << id << " started during destruction got no outcome";
    expect_cancelled(*outcome, Errc::shut_down);
  }
  EXPECT_TRUE(loop.watched().empty());
  EXPECT_NO_VIOLATIONS(loop);
}

// wake() comes from every thread that calls execute(), while the loop thread
// drains the requests: merged or not, no wake-up may strand a request.
TEST(LoopDriver, WakeFromEightThreadsAtOnceLosesNoRequest) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::ServerOptions server_options;
  server_options.keep_alive_max_count = 1;
  passthru_test::TestHttpServer server(server_options);
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::RefusedPort refused;
  RecordingLoop loop;
  passthru_test::LogCollector logs;
  PassthruClient client(loop, passthru_test::quiet_options(logs));
  const auto answered = step_for(server.url("/crm"));
  const auto refused_step = step_for(refused.url("/crm"));

  constexpr std::size_t kThreads = 8;
  constexpr std::size_t kPerThread = 200;
  OutcomeCollector collector;
  std::mutex ids_mutex;
  std::vector<std::uint64_t> ids;
  passthru_test::StartGate gate(kThreads);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      gate.arrive_and_wait();
      std::vector<std::uint64_t> mine;
      for (std::size_t i = 0; i < kPerThread; ++i) {
        const auto& step = (i + t) % 8 == 0 ? answered : refused_step;
        mine.push_back(client.execute(step, passthru_test::sample_call(), collector.callback()).id());
      }
      std::lock_guard<std::mutex> lock(ids_mutex);
      ids.insert(ids.end(), mine.begin(), mine.end());
    });
  }
  // The test thread is the loop thread: it turns while the others execute().
  const bool all = loop.run_until([&] { return collector.total_calls() >= kThreads * kPerThread; });
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(all) << collector.total_calls() << " of " << kThreads * kPerThread << " outcomes";

  EXPECT_EQ(collector.total_calls(), kThreads * kPerThread);
  EXPECT_TRUE(collector.repeated_ids().empty());
  ASSERT_EQ(ids.size(), kThreads * kPerThread);
  EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), ids.size()) << "request ids repeat";
  std::size_t next_applet = 0;
  for (const auto id : ids) {
    const auto outcome = collector.outcome(id);
    ASSERT_TRUE(outcome) << "request " << id << " got no outcome";
    if (outcome->route == Route::next_applet) ++next_applet;
  }
  EXPECT_EQ(next_applet, kThreads * kPerThread / 8);
  EXPECT_GE(loop.count(RecordingLoop::Hook::wake), 1u);
  EXPECT_NO_VIOLATIONS(loop);
}

// "Firing early is harmless (the client re-arms)": a timer that comes 1 to
// 5 ms before the time asked for must not bring any outcome early.
TEST(LoopDriver, ATimerThatFiresEarlyNeverBringsAnOutcomeBeforeItsDeadline) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::SilentServer silent;
  RecordingLoop loop(TimerSkew{1ms, 5ms, 0ms});
  passthru_test::LogCollector logs;
  PassthruClient client(loop, passthru_test::quiet_options(logs));

  struct Timed {
    std::chrono::milliseconds timeout;
    Clock::time_point before_execute;
    std::optional<Clock::time_point> arrived;
    std::optional<Outcome> outcome;
    int calls = 0;
  };
  std::vector<Timed> requests(20);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    Timed& timed = requests[i];
    timed.timeout = std::chrono::milliseconds(30 + 7 * static_cast<int>(i));
    timed.before_execute = Clock::now();
    client.execute(step_for(silent.url("/"), timed.timeout), passthru_test::sample_call(),
                   [&timed](Outcome outcome) {
                     timed.arrived = Clock::now();
                     timed.outcome = std::move(outcome);
                     ++timed.calls;
                   });
  }
  ASSERT_TRUE(loop.run_until([&] {
    return std::all_of(requests.begin(), requests.end(), [](const Timed& timed) { return timed.calls > 0; });
  }));

  for (std::size_t i = 0; i < requests.size(); ++i) {
    const Timed& timed = requests[i];
    EXPECT_EQ(timed.calls, 1) << "request " << i;
    EXPECT_EQ(timed.outcome->route, Route::on_timeout) << timed.outcome->reason;
    EXPECT_GE(*timed.arrived - timed.before_execute, timed.timeout)
        << "request " << i << " with a timeout of " << timed.timeout.count() << " ms ended "
        << std::chrono::duration_cast<std::chrono::microseconds>(timed.before_execute + timed.timeout -
                                                                 *timed.arrived)
               .count()
        << " us early";
    EXPECT_GE(timed.outcome->elapsed, timed.timeout) << "request " << i;
  }
  // Not vacuous: the loop did fire before the time asked for.
  EXPECT_GE(loop.early_fires(), 1u);
  EXPECT_NO_VIOLATIONS(loop);
}

// "Firing late delays outcomes by as much": late, but every one of them, and
// answers that arrive on sockets are not held back.
TEST(LoopDriver, ATimerThatFiresLateDelaysOutcomesButLosesNone) {
  SKIP_UNLESS_THREAD_RUN();
  constexpr auto kLate = 150ms;
  passthru_test::SilentServer silent;
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  RecordingLoop loop(TimerSkew{0ms, 0ms, kLate});
  passthru_test::LogCollector logs;
  PassthruClient client(loop, passthru_test::quiet_options(logs));

  OutcomeCollector collector;
  std::map<std::uint64_t, std::chrono::milliseconds> timeouts;
  for (int i = 0; i < 10; ++i) {
    const auto timeout = std::chrono::milliseconds(50 + 40 * i);
    timeouts[client
                 .execute(step_for(silent.url("/"), timeout), passthru_test::sample_call(),
                          collector.callback())
                 .id()] = timeout;
  }
  std::vector<std::uint64_t> answered;
  for (int i = 0; i < 5; ++i) {
    answered.push_back(
        client.execute(step_for(server.url("/crm")), passthru_test::sample_call(), collector.callback())
            .id());
  }
  ASSERT_TRUE(loop.run_until([&] { return collector.total_calls() == 15; }));
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (const auto id : answered) {
    EXPECT_EQ(collector.outcome(id)->route, Route::next_applet) << collector.outcome(id)->reason;
  }
  std::chrono::microseconds latest{0};  // the most any outcome came after its deadline
  for (const auto& [id, timeout] : timeouts) {
    const auto outcome = collector.outcome(id);
    EXPECT_EQ(outcome->route, Route::on_timeout) << outcome->reason;
    EXPECT_GE(outcome->elapsed, timeout);
    latest = std::max(latest, std::chrono::duration_cast<std::chrono::microseconds>(outcome->elapsed - timeout));
  }
  // A deadline is met on any turn of the loop, a socket's as well as the
  // timer's; once the answered requests are done, only the late timer ends
  // the rest. Not vacuous: the skew showed.
  EXPECT_GE(latest, kLate / 2);
  EXPECT_GE(loop.timer_fires(), 1u);
  EXPECT_NO_VIOLATIONS(loop);
}

// An idle client costs the loop nothing: no timer, no socket, no wake-up.
TEST(LoopDriver, AnIdleClientArmsNoTimerAndWatchesNoSocket) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::RefusedPort refused;
  passthru_test::SilentServer silent;
  RecordingLoop loop;
  passthru_test::LogCollector logs;
  PassthruClient client(loop, passthru_test::quiet_options(logs));
  EXPECT_EQ(loop.hook_count(), 0u) << "a new client asked the loop for something";

  OutcomeCollector collector;
  for (int i = 0; i < 5; ++i)
    client.execute(step_for(server.url("/crm")), passthru_test::sample_call(), collector.callback());
  client.execute(step_for(refused.url("/")), passthru_test::sample_call(), collector.callback());
  client.execute(step_for(silent.url("/"), 50ms), passthru_test::sample_call(), collector.callback());
  client.execute(step_for(silent.url("/"), kLongTimeout), passthru_test::sample_call(), collector.callback())
      .cancel();
  ASSERT_TRUE(loop.run_until([&] { return collector.total_calls() == 8; }));

  // Idle as soon as the last outcome's turn ends (kept-alive connections
  // stay open, unwatched)...
  EXPECT_FALSE(loop.timer_armed());
  EXPECT_TRUE(loop.watched().empty()) << loop.watched().size() << " fds still watched";
  // ...and stays idle: nothing wakes the loop.
  const std::size_t dispatches = loop.dispatches();
  const std::size_t hooks = loop.hook_count();
  loop.run_for(300ms);
  EXPECT_EQ(loop.dispatches(), dispatches);
  EXPECT_EQ(loop.hook_count(), hooks);
  EXPECT_NO_VIOLATIONS(loop);
}

// An executor that posts to the loop itself: the callback runs on the loop
// thread, on a turn of its own, and may destroy the client there.
TEST(LoopDriver, AClientMayBeDestroyedFromACallbackItsExecutorPostedToTheLoop) {
  SKIP_UNLESS_THREAD_RUN();
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::SilentServer silent;
  RecordingLoop loop;
  passthru_test::LogCollector logs;
  auto options = passthru_test::quiet_options(logs);
  options.executor = [&loop](std::function<void()> task) { loop.post(std::move(task)); };
  auto client = std::make_unique<PassthruClient>(loop, options);
  OutcomeCollector collector;
  std::vector<RequestHandle> stalled;
  for (int i = 0; i < 5; ++i) {
    stalled.push_back(client->execute(step_for(silent.url("/"), kLongTimeout), passthru_test::sample_call(),
                                      collector.callback()));
  }
  const auto first = client->execute(step_for(server.url("/crm")), passthru_test::sample_call(),
                                     [&, record = collector.callback()](Outcome outcome) {
                                       record(std::move(outcome));
                                       client.reset();
                                     });
  ASSERT_TRUE(loop.run_until([&] { return collector.total_calls() == 6; }));
  EXPECT_EQ(client, nullptr);
  EXPECT_EQ(collector.outcome(first.id())->route, Route::next_applet);
  for (const auto& handle : stalled) expect_cancelled(*collector.outcome(handle.id()), Errc::shut_down);
  EXPECT_TRUE(collector.repeated_ids().empty());
  EXPECT_TRUE(loop.watched().empty());
  EXPECT_FALSE(loop.timer_armed());
  EXPECT_NO_VIOLATIONS(loop);
}

// Misuse that would otherwise corrupt memory aborts with a message instead.
// Death tests fork; "threadsafe" re-runs the test in a fresh process first.
class LoopDriverDeathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_THREAD_RUN();
    GTEST_FLAG_SET(death_test_style, "threadsafe");
  }
};

TEST_F(LoopDriverDeathTest, DestroyingTheLoopWithAClientAttachedAborts) {
  EXPECT_DEATH(
      {
        auto loop = std::make_unique<RecordingLoop>();
        PassthruClient client(*loop);
        loop.reset();
      },
      "EventLoop destroyed while a PassthruClient is still attached");
}

TEST_F(LoopDriverDeathTest, DestroyingTheClientFromInsideItsCallbackAborts) {
  passthru_test::RefusedPort refused;
  EXPECT_DEATH(
      {
        RecordingLoop loop;
        passthru_test::LogCollector logs;
        auto client = std::make_unique<PassthruClient>(loop, passthru_test::quiet_options(logs));
        bool called = false;
        client->execute(step_for(refused.url("/")), passthru_test::sample_call(), [&](Outcome) {
          called = true;
          client.reset();
        });
        loop.run_until([&] { return called; });
        client.reset();
        loop.run_for(10ms);
      },
      "PassthruClient destroyed from inside an outcome callback");
}

TEST_F(LoopDriverDeathTest, DestroyingTheClientFromACallbackAnInlineExecutorRunsAborts) {
  passthru_test::RefusedPort refused;
  EXPECT_DEATH(
      {
        RecordingLoop loop;
        passthru_test::LogCollector logs;
        auto options = passthru_test::quiet_options(logs);
        options.executor = [](std::function<void()> task) { task(); };
        auto client = std::make_unique<PassthruClient>(loop, options);
        bool called = false;
        client->execute(step_for(refused.url("/")), passthru_test::sample_call(), [&](Outcome) {
          called = true;
          client.reset();
        });
        loop.run_until([&] { return called; });
        client.reset();
      },
      "PassthruClient destroyed from inside an outcome callback");
}

// The ThreadDriver keeps the same rule: its destructor would otherwise join
// its own thread.
TEST_F(LoopDriverDeathTest, DestroyingAThreadDrivenClientFromInsideItsCallbackAborts) {
  passthru_test::RefusedPort refused;
  EXPECT_DEATH(
      {
        passthru_test::LogCollector logs;
        auto client = std::make_unique<PassthruClient>(passthru_test::quiet_options(logs));
        passthru_test::Event called;
        client->execute(step_for(refused.url("/")), passthru_test::sample_call(), [&](Outcome) {
          called.set();
          client.reset();
        });
        called.wait_for();
        // Block until the abort kills this process; should it not come, the
        // statement ends after the wait and the death test fails.
        passthru_test::Event never;
        never.wait_for(kGenerousWait);
      },
      "PassthruClient destroyed from inside an outcome callback");
}

}  // namespace
