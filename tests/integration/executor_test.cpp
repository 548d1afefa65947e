// ClientOptions::executor: outcomes handed to the engine's own thread, each
// exactly once, whatever the executor does, on either driver.
#include "outcome_collector.hpp"
#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"
#include "work_queue.hpp"

#include <passthru/passthru.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
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
using passthru::RequestHandle;
using passthru::Route;
using passthru::StepConfig;
using passthru_test::kGenerousWait;
using passthru_test::OutcomeCollector;
using passthru_test::TestClient;
using passthru_test::WorkQueue;

constexpr std::chrono::milliseconds kLongTimeout{60000};

/// Thread ids seen at some point (the executor's caller, a callback), from any thread.
class ThreadLog {
 public:
  void record() {
    std::lock_guard<std::mutex> lock(mutex_);
    threads_.insert(std::this_thread::get_id());
    ++count_;
  }
  std::set<std::thread::id> threads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_;
  }
  std::size_t count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }

 private:
  mutable std::mutex mutex_;
  std::set<std::thread::id> threads_;
  std::size_t count_ = 0;
};

/// A callback that records the thread it runs on, then the Outcome.
passthru::OutcomeCallback recording(const OutcomeCollector& collector,
                                    const std::shared_ptr<ThreadLog>& log) {
  return [record = collector.callback(), log](Outcome outcome) {
    log->record();
    record(std::move(outcome));
  };
}

void expect_cancelled(const Outcome& outcome, Errc why) {
  EXPECT_EQ(outcome.route, Route::cancelled) << passthru::to_string(outcome.route) << ": " << outcome.reason;
  EXPECT_EQ(outcome.error, passthru::make_error_code(why)) << outcome.error.message();
}

StepConfig step_for(const std::string& url, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  return StepConfig::build(passthru_test::step_options(url, timeout));
}

/// Answered, refused, timed out and cancelled requests: every way an outcome comes.
struct Peers {
  passthru_test::TestHttpServer server;
  passthru_test::RefusedPort refused;
  passthru_test::SilentServer silent;
  Peers() { server.reply("GET", "/crm", 200, "vip-connect"); }
};

std::vector<RequestHandle> execute_mix(TestClient& client, Peers& peers,
                                       const passthru::OutcomeCallback& callback, int rounds) {
  const auto answered = step_for(peers.server.url("/crm"));
  const auto refused = step_for(peers.refused.url("/"));
  const auto timed_out = step_for(peers.silent.url("/"), 100ms);
  const auto stalled = step_for(peers.silent.url("/"), kLongTimeout);
  std::vector<RequestHandle> handles;
  for (int i = 0; i < rounds; ++i) {
    handles.push_back(client.execute(answered, passthru_test::sample_call(), callback));
    handles.push_back(client.execute(refused, passthru_test::sample_call(), callback));
    handles.push_back(client.execute(timed_out, passthru_test::sample_call(), callback));
    handles.push_back(client.execute(stalled, passthru_test::sample_call(), callback));
    handles.back().cancel();
  }
  return handles;
}

void expect_mix_routed(const OutcomeCollector& collector, const std::vector<RequestHandle>& handles) {
  const Route expected[] = {Route::next_applet, Route::on_error, Route::on_timeout, Route::cancelled};
  for (std::size_t i = 0; i < handles.size(); ++i) {
    const auto outcome = collector.outcome(handles[i].id());
    ASSERT_TRUE(outcome) << "request " << handles[i].id() << " got no outcome";
    EXPECT_EQ(outcome->route, expected[i % 4]) << outcome->reason;
  }
}

TEST(Executor, CallbacksRunOnTheExecutorsThreadNeverOnTheDriverThreadEachExactlyOnce) {
  Peers peers;
  WorkQueue queue;
  auto posting = std::make_shared<ThreadLog>();
  auto running = std::make_shared<ThreadLog>();
  passthru_test::LogCollector logs;
  auto options = passthru_test::quiet_options(logs);
  options.executor = [&queue, posting](std::function<void()> task) {
    posting->record();
    queue.post(std::move(task));
  };
  OutcomeCollector collector;
  TestClient client(options);

  const auto handles = execute_mix(client, peers, recording(collector, running), 10);
  ASSERT_TRUE(collector.wait_for(handles.size()));
  ASSERT_TRUE(queue.wait_idle());

  EXPECT_EQ(collector.total_calls(), handles.size());
  EXPECT_TRUE(collector.repeated_ids().empty());
  expect_mix_routed(collector, handles);
  EXPECT_EQ(posting->count(), handles.size()) << "each outcome is handed to the executor once";
  EXPECT_EQ(running->threads(), std::set<std::thread::id>{queue.thread_id()});
  EXPECT_EQ(posting->threads().count(queue.thread_id()), 0u);
  if (client.kind() != passthru_test::DriverKind::thread) {
    EXPECT_EQ(posting->threads(), std::set<std::thread::id>{client.loop_thread()});
  }
}

TEST(Executor, AThrowingExecutorStillRunsEachCallbackOnceOnTheDriverThreadAndLogsAnError) {
  Peers peers;
  auto posting = std::make_shared<ThreadLog>();
  auto running = std::make_shared<ThreadLog>();
  passthru_test::LogCollector logs;
  auto options = passthru_test::quiet_options(logs);
  options.executor = [posting](std::function<void()>) {
    posting->record();
    throw std::runtime_error("work queue full");
  };
  OutcomeCollector collector;
  TestClient client(options);

  const auto handles = execute_mix(client, peers, recording(collector, running), 3);
  ASSERT_TRUE(collector.wait_for(handles.size()));
  EXPECT_EQ(collector.total_calls(), handles.size());
  EXPECT_TRUE(collector.repeated_ids().empty());
  expect_mix_routed(collector, handles);
  EXPECT_EQ(posting->count(), handles.size());
  // Run where the executor was called: the driver's thread.
  EXPECT_EQ(running->threads(), posting->threads());
  EXPECT_EQ(running->threads().size(), 1u);
  EXPECT_EQ(running->threads().count(std::this_thread::get_id()), 0u);
  if (client.kind() != passthru_test::DriverKind::thread) {
    EXPECT_EQ(running->threads(), std::set<std::thread::id>{client.loop_thread()});
  }

  std::size_t errors = 0;
  for (const auto& line : logs.lines()) {
    if (line.level == passthru::LogLevel::error && line.message.find("executor threw") != std::string::npos &&
        line.message.find("work queue full") != std::string::npos) {
      ++errors;
    }
  }
  EXPECT_EQ(errors, handles.size());
}

// An executor that queued the task and then threw: the task runs on the
// driver thread, and the queued copy, when it runs, does nothing.
TEST(Executor, AnExecutorThatQueuesTheTaskAndThenThrowsStillGivesOneOutcome) {
  Peers peers;
  WorkQueue queue;
  passthru_test::LogCollector logs;
  auto options = passthru_test::quiet_options(logs);
  options.executor = [&queue](std::function<void()> task) {
    queue.post(std::move(task));
    throw std::runtime_error("queued, but reported a failure");
  };
  OutcomeCollector collector;
  TestClient client(options);

  const auto handles = execute_mix(client, peers, collector.callback(), 3);
  ASSERT_TRUE(collector.wait_for(handles.size()));
  ASSERT_TRUE(queue.wait_idle());
  // Every queued copy has run by now.
  EXPECT_EQ(collector.total_calls(), handles.size());
  EXPECT_TRUE(collector.repeated_ids().empty());
  expect_mix_routed(collector, handles);
}

TEST(Executor, AnExecutorThatRunsTasksInlineWorks) {
  Peers peers;
  auto posting = std::make_shared<ThreadLog>();
  auto running = std::make_shared<ThreadLog>();
  passthru_test::LogCollector logs;
  auto options = passthru_test::quiet_options(logs);
  options.executor = [posting](std::function<void()> task) {
    posting->record();
    task();
  };
  OutcomeCollector collector;
  TestClient client(options);

  auto handles = execute_mix(client, peers, recording(collector, running), 3);
  // A callback run inline may start the next step.
  const auto chain_step = step_for(peers.server.url("/crm"));
  passthru_test::Event chained;
  client.execute(chain_step, passthru_test::sample_call(), [&](Outcome) {
    client.execute(chain_step, passthru_test::sample_call(), [&](Outcome outcome) {
      EXPECT_EQ(outcome.route, Route::next_applet) << outcome.reason;
      chained.set();
    });
  });

  ASSERT_TRUE(collector.wait_for(handles.size()));
  ASSERT_TRUE(chained.wait_for());
  EXPECT_EQ(collector.total_calls(), handles.size());
  EXPECT_TRUE(collector.repeated_ids().empty());
  expect_mix_routed(collector, handles);
  EXPECT_EQ(running->threads(), posting->threads());
  EXPECT_EQ(running->threads().count(std::this_thread::get_id()), 0u);
}

TEST(Executor, DestroyingTheClientHandsEveryCancelledOutcomeToTheExecutorBeforeReturning) {
  passthru_test::SilentServer silent;
  std::mutex stash_mutex;
  std::vector<std::function<void()>> stash;  // the engine's queue, not run yet
  passthru_test::LogCollector logs;
  auto options = passthru_test::quiet_options(logs);
  options.executor = [&](std::function<void()> task) {
    std::lock_guard<std::mutex> lock(stash_mutex);
    stash.push_back(std::move(task));
  };
  OutcomeCollector collector;
  auto client = std::make_unique<TestClient>(options);
  const auto step = step_for(silent.url("/"), kLongTimeout);
  std::vector<RequestHandle> handles;
  for (int i = 0; i < 50; ++i)
    handles.push_back(client->execute(step, passthru_test::sample_call(), collector.callback()));

  client.reset();

  std::vector<std::function<void()>> handed;
  {
    std::lock_guard<std::mutex> lock(stash_mutex);
    handed.swap(stash);
  }
  EXPECT_EQ(handed.size(), handles.size())
      << "outcomes handed to the executor by the time the destructor returned";
  EXPECT_EQ(collector.total_calls(), 0u) << "the executor runs them, not the client";
  for (auto& task : handed) task();
  EXPECT_EQ(collector.total_calls(), handles.size());
  EXPECT_TRUE(collector.repeated_ids().empty());
  for (const auto& handle : handles) {
    const auto outcome = collector.outcome(handle.id());
    ASSERT_TRUE(outcome) << "request " << handle.id() << " got no outcome";
    expect_cancelled(*outcome, Errc::shut_down);
  }
}

// The executor runs callbacks on the engine's thread, not the driver's: one
// of them may destroy the client.
TEST(Executor, DestroyingTheClientFromInsideACallbackTheExecutorRunsIsSafe) {
  passthru_test::TestHttpServer server;
  server.reply("GET", "/crm", 200, "vip-connect");
  passthru_test::SilentServer silent;
  WorkQueue queue;
  auto running = std::make_shared<ThreadLog>();
  passthru_test::LogCollector logs;
  auto options = passthru_test::quiet_options(logs);
  options.executor = [&queue](std::function<void()> task) { queue.post(std::move(task)); };
  OutcomeCollector collector;
  auto client = std::make_unique<TestClient>(options);

  std::vector<RequestHandle> stalled;
  for (int i = 0; i < 20; ++i) {
    stalled.push_back(client->execute(step_for(silent.url("/"), kLongTimeout), passthru_test::sample_call(),
                                      recording(collector, running)));
  }
  passthru_test::Event destroyed;
  const auto first = client->execute(step_for(server.url("/crm")), passthru_test::sample_call(),
                                     [&, record = recording(collector, running)](Outcome outcome) {
                                       record(std::move(outcome));
                                       client.reset();
                                       destroyed.set();
                                     });

  ASSERT_TRUE(destroyed.wait_for());
  EXPECT_EQ(client, nullptr);
  ASSERT_TRUE(collector.wait_for(stalled.size() + 1));
  ASSERT_TRUE(queue.wait_idle());
  EXPECT_EQ(collector.total_calls(), stalled.size() + 1);
  EXPECT_TRUE(collector.repeated_ids().empty());
  EXPECT_EQ(collector.outcome(first.id())->route, Route::next_applet)
      << collector.outcome(first.id())->reason;
  for (const auto& handle : stalled) expect_cancelled(*collector.outcome(handle.id()), Errc::shut_down);
  EXPECT_EQ(running->threads(), std::set<std::thread::id>{queue.thread_id()});
}

}  // namespace
