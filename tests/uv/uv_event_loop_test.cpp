// UvEventLoop on its own, without a client: what it leaves behind on an
// engine's libuv loop once it has forgotten a socket.
#include <passthru/uv.hpp>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <optional>

namespace {

using passthru::UvEventLoop;
using passthru::Watch;

struct Pair {
  int mine = -1;
  int peer = -1;
  Pair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0) {
      mine = fds[0];
      peer = fds[1];
    }
  }
  ~Pair() {
    if (mine >= 0) close(mine);
    if (peer >= 0) close(peer);
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
};

// libcurl closes a socket right after the adapter is told to forget it, and
// the engine may open one of its own with that number next and poll it on
// the same loop. Nothing the adapter does later (not even its destruction)
// may touch the engine's socket: a handle left on the old number would take
// the number out of epoll when it is closed, and the engine's socket would
// never be reported readable again.
TEST(UvEventLoop, ASocketNumberItForgotIsTheEnginesOnceClosed) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::optional<UvEventLoop> events(std::in_place, &loop);

  // Watched and forgotten, then closed, as the library does with a socket.
  int number = -1;
  {
    Pair curl;
    ASSERT_GE(curl.mine, 0);
    number = curl.mine;
    events->watch_socket(curl.mine, Watch::read);
    uv_run(&loop, UV_RUN_NOWAIT);
    events->watch_socket(curl.mine, Watch::none);
  }

  // The engine's own socket gets the number; the engine polls it.
  Pair engine;
  ASSERT_GE(engine.mine, 0);
  if (engine.mine != number) GTEST_SKIP() << "the number was not reused (" << engine.mine << ")";
  struct Seen {
    bool readable = false;
  } seen;
  uv_poll_t poll;
  ASSERT_EQ(uv_poll_init_socket(&loop, &poll, engine.mine), 0);
  poll.data = &seen;
  ASSERT_EQ(uv_poll_start(&poll, UV_READABLE,
                          [](uv_poll_t* handle, int, int) {
                            static_cast<Seen*>(handle->data)->readable = true;
                            uv_stop(handle->loop);
                          }),
            0);
  uv_run(&loop, UV_RUN_NOWAIT);  // the engine's socket is in epoll now

  events.reset();                // the adapter closes every handle it holds
  uv_run(&loop, UV_RUN_NOWAIT);  // and their close callbacks run

  // A bound, not a pause: the loop stops at the first readiness.
  uv_timer_t bound;
  uv_timer_init(&loop, &bound);
  uv_timer_start(
      &bound, [](uv_timer_t* handle) { uv_stop(handle->loop); }, 5000, 0);
  ASSERT_EQ(write(engine.peer, "x", 1), 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_TRUE(seen.readable) << "the engine's socket was never reported readable";

  uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&bound), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
