/* The client driven by an event loop written here in C: poll() over a watch
 * list, one timer, and a pipe for wake-ups, as a C engine's own loop would
 * be. The loop also checks the hook contract as it goes. */
#define _POSIX_C_SOURCE 200809L

#include "c_test.h"
#include "c_test_servers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define MAX_WATCHES 1024

typedef struct c_loop {
  pthread_t thread; /* the loop thread: every hook but wake runs on it */
  passthru_client* client;
  int fds[MAX_WATCHES];
  int whats[MAX_WATCHES];
  size_t watch_count;
  size_t most_watched;
  int timer_armed;
  int64_t timer_due_us; /* CLOCK_MONOTONIC */
  int wake_read, wake_write;
  size_t woken; /* passthru_loop_woken() calls */
  /* Contract violations, each a failure. */
  int off_thread_hooks;
  int negative_delays;
  int bad_watch;
  int closed_while_watched;
} c_loop;

static int64_t now_us(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static void check_loop_thread(c_loop* loop) {
  if (!pthread_equal(pthread_self(), loop->thread)) ++loop->off_thread_hooks;
}

static long find_watch(const c_loop* loop, int fd) {
  size_t i;
  for (i = 0; i < loop->watch_count; ++i) {
    if (loop->fds[i] == fd) return (long)i;
  }
  return -1;
}

static void hook_watch_socket(void* user_data, int fd, int what) {
  c_loop* loop = (c_loop*)user_data;
  long at = find_watch(loop, fd);
  check_loop_thread(loop);
  if (fd < 0 || what < PASSTHRU_WATCH_NONE || what > PASSTHRU_WATCH_READ_WRITE) {
    ++loop->bad_watch;
    return;
  }
  if (what == PASSTHRU_WATCH_NONE) {
    if (at < 0) return; /* never watched: harmless */
    loop->fds[at] = loop->fds[loop->watch_count - 1];
    loop->whats[at] = loop->whats[loop->watch_count - 1];
    --loop->watch_count;
    return;
  }
  if (at < 0) {
    REQUIRE(loop->watch_count < MAX_WATCHES);
    at = (long)loop->watch_count++;
    loop->fds[at] = fd;
    if (loop->watch_count > loop->most_watched) loop->most_watched = loop->watch_count;
  }
  loop->whats[at] = what;
}

static void hook_arm_timer(void* user_data, int64_t delay_us) {
  c_loop* loop = (c_loop*)user_data;
  check_loop_thread(loop);
  if (delay_us < 0) ++loop->negative_delays;
  loop->timer_armed = 1;
  loop->timer_due_us = now_us() + (delay_us > 0 ? delay_us : 0);
}

static void hook_cancel_timer(void* user_data) {
  c_loop* loop = (c_loop*)user_data;
  check_loop_thread(loop);
  loop->timer_armed = 0;
}

/* Any thread. A full pipe already holds a wake-up, so EAGAIN is fine. */
static void hook_wake(void* user_data) {
  c_loop* loop = (c_loop*)user_data;
  const char byte = 1;
  ssize_t written;
  do {
    written = write(loop->wake_write, &byte, 1);
  } while (written < 0 && errno == EINTR);
}

static void loop_init(c_loop* loop) {
  int fds[2];
  memset(loop, 0, sizeof *loop);
  loop->thread = pthread_self();
  REQUIRE(pipe(fds) == 0);
  REQUIRE(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0 && fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0);
  loop->wake_read = fds[0];
  loop->wake_write = fds[1];
}

static passthru_loop_hooks loop_hooks(c_loop* loop) {
  passthru_loop_hooks hooks;
  hooks.user_data = loop;
  hooks.watch_socket = hook_watch_socket;
  hooks.arm_timer = hook_arm_timer;
  hooks.cancel_timer = hook_cancel_timer;
  hooks.wake = hook_wake;
  return hooks;
}

/* Creates the loop's client with quiet options. */
static void loop_create_client(c_loop* loop) {
  passthru_loop_hooks hooks = loop_hooks(loop);
  passthru_client_options options = c_test_quiet_options();
  REQUIRE(passthru_client_create_on_loop(&hooks, &options, &loop->client) == PASSTHRU_OK);
  REQUIRE(loop->client != NULL);
}

/* The contract held throughout. */
static void loop_check_contract(const c_loop* loop) {
  CHECK_INT(loop->off_thread_hooks, 0);
  CHECK_INT(loop->negative_delays, 0);
  CHECK_INT(loop->bad_watch, 0);
  CHECK_INT(loop->closed_while_watched, 0);
}

/* Destroys the client on the loop thread: every socket is unwatched and the
 * timer cancelled before it returns. */
static void loop_destroy_client(c_loop* loop) {
  passthru_client_destroy(loop->client);
  loop->client = NULL;
  CHECK_INT(loop->watch_count, 0);
  CHECK_INT(loop->timer_armed, 0);
  loop_check_contract(loop);
}

static void loop_close(c_loop* loop) {
  close(loop->wake_read);
  close(loop->wake_write);
}

/* One turn: waits at most `max_wait_ms` for a socket, the timer or a
 * wake-up, then hands what happened to the client. */
static void loop_turn(c_loop* loop, int64_t max_wait_ms) {
  struct pollfd polled[MAX_WATCHES + 1];
  size_t count = 0, i;
  int64_t wait_ms = max_wait_ms;
  int ready;

  polled[count].fd = loop->wake_read;
  polled[count].events = POLLIN;
  polled[count].revents = 0;
  ++count;
  for (i = 0; i < loop->watch_count; ++i) {
    polled[count].fd = loop->fds[i];
    polled[count].events = (short)(((loop->whats[i] & PASSTHRU_WATCH_READ) ? POLLIN : 0) |
                                   ((loop->whats[i] & PASSTHRU_WATCH_WRITE) ? POLLOUT : 0));
    polled[count].revents = 0;
    ++count;
  }
  if (loop->timer_armed) {
    /* Rounded up to the next millisecond: never wakes before the timer is due. */
    const int64_t remaining_us = loop->timer_due_us - now_us();
    const int64_t remaining_ms = remaining_us <= 0 ? 0 : (remaining_us + 999) / 1000;
    if (remaining_ms < wait_ms) wait_ms = remaining_ms;
  }
  ready = poll(polled, (nfds_t)count, (int)wait_ms);
  if (ready < 0) {
    REQUIRE(errno == EINTR);
    return;
  }
  if (polled[0].revents != 0) {
    char drain[64];
    while (read(loop->wake_read, drain, sizeof drain) > 0) {
    }
    ++loop->woken;
    passthru_loop_woken(loop->client);
  }
  for (i = 1; i < count; ++i) {
    const short revents = polled[i].revents;
    int events = 0;
    if (revents == 0) continue;
    /* The library unwatches a socket before closing it: a watched fd is open. */
    if (revents & POLLNVAL) {
      ++loop->closed_while_watched;
      continue;
    }
    /* An earlier event of this turn may have unwatched it. */
    if (find_watch(loop, polled[i].fd) < 0) continue;
    if (revents & (POLLIN | POLLHUP)) events |= PASSTHRU_READY_READ;
    if (revents & POLLOUT) events |= PASSTHRU_READY_WRITE;
    if (revents & POLLERR) events |= PASSTHRU_READY_ERROR;
    passthru_loop_socket_ready(loop->client, polled[i].fd, events);
  }
  if (loop->timer_armed && now_us() >= loop->timer_due_us) {
    loop->timer_armed = 0;
    passthru_loop_timer_expired(loop->client);
  }
}

/* Runs the loop until `n` outcomes arrived; 0 if `bound_ms` passed first. */
static int loop_run_until_outcomes(c_loop* loop, c_collector* collector, size_t n, int64_t bound_ms) {
  const int64_t deadline = c_test_now_ms() + bound_ms;
  while (collector_total(collector) < n) {
    const int64_t left = deadline - c_test_now_ms();
    if (left <= 0) return 0;
    loop_turn(loop, left);
  }
  return 1;
}

/* Runs the loop until it watches `n` sockets at once; 0 if `bound_ms` passed first. */
static int loop_run_until_watching(c_loop* loop, size_t n, int64_t bound_ms) {
  const int64_t deadline = c_test_now_ms() + bound_ms;
  while (loop->watch_count < n) {
    const int64_t left = deadline - c_test_now_ms();
    if (left <= 0) return 0;
    loop_turn(loop, left);
  }
  return 1;
}

/* ---- Tests ------------------------------------------------------------------ */

static void loop_runs_many_concurrent_requests(void) {
  enum { kAnswered = 150, kTimedOut = 20, kRefused = 20, kCancelled = 10 };
  enum { kTotal = kAnswered + kTimedOut + kRefused + kCancelled };
  c_http_server* server = c_http_server_start();
  c_silent_server* silent = c_silent_server_start();
  c_refused_port* refused = c_refused_port_start();
  passthru_step *answered, *timing_out, *refusing, *hanging;
  passthru_call call = c_test_sample_call();
  c_collector collector;
  c_loop loop;
  uint64_t ids[kTotal];
  char url[256], sid[32];
  size_t i;
  REQUIRE(server != NULL && silent != NULL && refused != NULL);
  c_http_server_reply(server, "POST", "/crm", 200, "vip-connect", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  answered = c_test_step(url, PASSTHRU_POST, 20000);
  REQUIRE(c_silent_server_url(silent, url, sizeof url));
  timing_out = c_test_step(url, PASSTHRU_GET, 300);
  hanging = c_test_step(url, PASSTHRU_GET, 20000);
  REQUIRE(c_refused_port_url(refused, url, sizeof url));
  refusing = c_test_step(url, PASSTHRU_GET, 20000);

  loop_init(&loop);
  loop_create_client(&loop);
  collector_init(&collector, kTotal);
  for (i = 0; i < kTotal; ++i) {
    const passthru_step* step = i < kAnswered                          ? answered
                                : i < kAnswered + kTimedOut            ? timing_out
                                : i < kAnswered + kTimedOut + kRefused ? refusing
                                                                       : hanging;
    snprintf(sid, sizeof sid, "loop-%u", (unsigned)i);
    call.call_sid = sid;
    REQUIRE(passthru_execute(loop.client, step, &call, collector_on_outcome, collector_slot(&collector, i),
                             &ids[i]) == PASSTHRU_OK);
  }
  /* Nothing runs before the loop turns: callbacks come only from the entry points. */
  CHECK_INT(collector_total(&collector), 0);
  for (i = kAnswered + kTimedOut + kRefused; i < kTotal; ++i) passthru_cancel(loop.client, ids[i]);

  REQUIRE(loop_run_until_outcomes(&loop, &collector, kTotal, C_TEST_GENEROUS_WAIT_MS));
  CHECK(loop.woken > 0);
  CHECK(loop.most_watched > 1);
  loop_destroy_client(&loop);

  CHECK_INT(collector_total(&collector), kTotal);
  for (i = 0; i < kTotal; ++i) {
    const c_record record = collector_record(&collector, i);
    passthru_route route;
    const char* target;
    CHECK_INT(collector_calls(&collector, i), 1);
    CHECK_INT(record.request_id, ids[i]);
    CHECK(pthread_equal(record.thread, loop.thread));
    if (i < kAnswered) {
      route = PASSTHRU_ROUTE_NEXT_APPLET;
      target = "vip-connect";
    } else if (i < kAnswered + kTimedOut) {
      route = PASSTHRU_ROUTE_ON_TIMEOUT;
      target = "general-queue";
      CHECK(record.elapsed_us >= 300000);
    } else if (i < kAnswered + kTimedOut + kRefused) {
      route = PASSTHRU_ROUTE_ON_ERROR;
      target = "apology";
    } else {
      route = PASSTHRU_ROUTE_CANCELLED;
      target = "";
    }
    if (record.route != route || strcmp(record.target, target) != 0) {
      fprintf(stderr, "request %u: route %s target \"%s\" reason \"%s\", expected %s \"%s\"\n", (unsigned)i,
              passthru_route_name(record.route), record.target, record.reason, passthru_route_name(route),
              target);
      ++c_test_failures;
    }
  }
  CHECK_INT(c_http_server_request_count(server), kAnswered);

  collector_destroy(&collector);
  loop_close(&loop);
  passthru_step_destroy(answered);
  passthru_step_destroy(timing_out);
  passthru_step_destroy(hanging);
  passthru_step_destroy(refusing);
  c_refused_port_stop(refused);
  c_silent_server_stop(silent);
  c_http_server_stop(server);
}

/* A thread of the engine other than the loop's starts requests. */
typedef struct submitter {
  passthru_client* client;
  const passthru_step* step;
  c_collector* collector;
  size_t count;
  int failures;
} submitter;

static void* submit_requests(void* argument) {
  submitter* s = (submitter*)argument;
  passthru_call call = c_test_sample_call();
  size_t i;
  for (i = 0; i < s->count; ++i) {
    if (passthru_execute(s->client, s->step, &call, collector_on_outcome, collector_slot(s->collector, i),
                         NULL) != PASSTHRU_OK) {
      ++s->failures;
    }
  }
  return NULL;
}

static void execute_from_another_thread_wakes_the_loop(void) {
  enum { kRequests = 50 };
  c_http_server* server = c_http_server_start();
  passthru_step* step;
  c_collector collector;
  c_loop loop;
  submitter s;
  pthread_t thread;
  char url[256];
  size_t i;
  REQUIRE(server != NULL);
  c_http_server_reply(server, "GET", "/crm", 200, "standard-queue", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  loop_init(&loop);
  loop_create_client(&loop);
  collector_init(&collector, kRequests);
  /* An idle client arms no timer: only a wake-up can make this loop move. */
  CHECK_INT(loop.timer_armed, 0);

  s.client = loop.client;
  s.step = step;
  s.collector = &collector;
  s.count = kRequests;
  s.failures = 0;
  REQUIRE(pthread_create(&thread, NULL, submit_requests, &s) == 0);
  REQUIRE(loop_run_until_outcomes(&loop, &collector, kRequests, C_TEST_GENEROUS_WAIT_MS));
  REQUIRE(pthread_join(thread, NULL) == 0);
  CHECK_INT(s.failures, 0);
  CHECK(loop.woken > 0);
  loop_destroy_client(&loop);

  for (i = 0; i < kRequests; ++i) {
    const c_record record = collector_record(&collector, i);
    CHECK_INT(collector_calls(&collector, i), 1);
    CHECK_INT(record.route, PASSTHRU_ROUTE_NEXT_APPLET);
    CHECK_STR(record.target, "standard-queue");
    /* On the loop thread, not the submitter's. */
    CHECK(pthread_equal(record.thread, loop.thread));
  }
  collector_destroy(&collector);
  loop_close(&loop);
  passthru_step_destroy(step);
  c_http_server_stop(server);
}

static void loop_destroy_completes_requests_in_flight(void) {
  enum { kRequests = 10 };
  c_silent_server* silent = c_silent_server_start();
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  c_collector collector;
  c_loop loop;
  char url[256];
  size_t i;
  REQUIRE(silent != NULL);
  REQUIRE(c_silent_server_url(silent, url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  loop_init(&loop);
  loop_create_client(&loop);
  collector_init(&collector, kRequests);
  for (i = 0; i < kRequests; ++i) {
    REQUIRE(passthru_execute(loop.client, step, &call, collector_on_outcome, collector_slot(&collector, i),
                             NULL) == PASSTHRU_OK);
  }
  /* Every request connected and waits for its answer. */
  REQUIRE(loop_run_until_watching(&loop, kRequests, C_TEST_GENEROUS_WAIT_MS));
  CHECK(loop.timer_armed);
  CHECK_INT(collector_total(&collector), 0);

  loop_destroy_client(&loop); /* checks: nothing watched, no timer */
  CHECK_INT(collector_total(&collector), kRequests);
  for (i = 0; i < kRequests; ++i) {
    CHECK_INT(collector_calls(&collector, i), 1);
    CHECK_INT(collector_record(&collector, i).route, PASSTHRU_ROUTE_CANCELLED);
    CHECK(pthread_equal(collector_record(&collector, i).thread, loop.thread));
  }
  collector_destroy(&collector);
  loop_close(&loop);
  passthru_step_destroy(step);
  c_silent_server_stop(silent);
}

static void every_loop_hook_is_required(void) {
  c_loop loop;
  passthru_loop_hooks hooks;
  passthru_client* client = NULL;
  loop_init(&loop);
  hooks = loop_hooks(&loop);
  hooks.watch_socket = NULL;
  CHECK_INT(passthru_client_create_on_loop(&hooks, NULL, &client), PASSTHRU_EINVAL);
  hooks = loop_hooks(&loop);
  hooks.arm_timer = NULL;
  CHECK_INT(passthru_client_create_on_loop(&hooks, NULL, &client), PASSTHRU_EINVAL);
  hooks = loop_hooks(&loop);
  hooks.cancel_timer = NULL;
  CHECK_INT(passthru_client_create_on_loop(&hooks, NULL, &client), PASSTHRU_EINVAL);
  hooks = loop_hooks(&loop);
  hooks.wake = NULL;
  CHECK_INT(passthru_client_create_on_loop(&hooks, NULL, &client), PASSTHRU_EINVAL);
  CHECK(client == NULL);

  /* The hooks are copied: the struct may go once the client exists. */
  hooks = loop_hooks(&loop);
  CHECK_INT(passthru_client_create_on_loop(&hooks, NULL, &client), PASSTHRU_OK);
  memset(&hooks, 0, sizeof hooks);
  loop.client = client;
  loop_destroy_client(&loop);
  loop_close(&loop);
}

const c_test_case c_api_loop_tests[] = {
    {"loop_runs_many_concurrent_requests", loop_runs_many_concurrent_requests},
    {"execute_from_another_thread_wakes_the_loop", execute_from_another_thread_wakes_the_loop},
    {"loop_destroy_completes_requests_in_flight", loop_destroy_completes_requests_in_flight},
    {"every_loop_hook_is_required", every_loop_hook_is_required},
    {NULL, NULL}};
