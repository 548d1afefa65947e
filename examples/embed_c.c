/* embed_c: a C engine runs Passthru steps from its own event loop.
 *
 * Engines written in C (FreeSWITCH, Asterisk and Kamailio modules, home-grown
 * switches) already run a loop; passthru starts no thread of its own there.
 * The loop below is the smallest one that works: poll() over the sockets the
 * library asks it to watch, one timer, and a pipe that other threads write to
 * when the library wants a turn. Replace it with your engine's loop by
 * implementing the four hooks and calling the three passthru_loop_* entry
 * points.
 *
 *   embed_c https://crm.example.com/route     (or an http:// loopback URL)
 *
 * Prints one line per call and exits 0 once every call got its outcome.
 */
#define _POSIX_C_SOURCE 200809L

#include <passthru/passthru.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 256

/* ---- The engine's event loop ---------------------------------------------- */

struct engine_loop {
  passthru_client* client;
  struct pollfd watched[MAX_SOCKETS]; /* the sockets the library asked for */
  int watched_count;
  int timer_armed;
  int64_t timer_due_us; /* CLOCK_MONOTONIC */
  int wake_pipe[2];     /* [0] polled by the loop, [1] written by wake() */
};

static int64_t now_us(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

/* Hook: watch `fd` for PASSTHRU_WATCH_* (NONE: forget it, it is about to close). */
static void loop_watch_socket(void* user_data, int fd, int what) {
  struct engine_loop* loop = user_data;
  short events =
      (short)(((what & PASSTHRU_WATCH_READ) ? POLLIN : 0) | ((what & PASSTHRU_WATCH_WRITE) ? POLLOUT : 0));
  int i;
  for (i = 0; i < loop->watched_count; ++i) {
    if (loop->watched[i].fd == fd) break;
  }
  if (what == PASSTHRU_WATCH_NONE) {
    if (i < loop->watched_count) loop->watched[i] = loop->watched[--loop->watched_count];
    return;
  }
  if (i == loop->watched_count) {
    if (loop->watched_count == MAX_SOCKETS) {
      fprintf(stderr, "embed_c: more than %d sockets\n", MAX_SOCKETS);
      return; /* the request still ends, by its timeout */
    }
    ++loop->watched_count;
  }
  loop->watched[i].fd = fd;
  loop->watched[i].events = events;
}

/* Hook: call passthru_loop_timer_expired() once, `delay_us` from now. */
static void loop_arm_timer(void* user_data, int64_t delay_us) {
  struct engine_loop* loop = user_data;
  loop->timer_armed = 1;
  loop->timer_due_us = now_us() + delay_us;
}

/* Hook: forget the timer. */
static void loop_cancel_timer(void* user_data) {
  struct engine_loop* loop = user_data;
  loop->timer_armed = 0;
}

/* Hook, from any thread: have the loop call passthru_loop_woken() soon. */
static void loop_wake(void* user_data) {
  struct engine_loop* loop = user_data;
  const char byte = 1;
  /* A full pipe already holds a wake-up: EAGAIN is fine. */
  while (write(loop->wake_pipe[1], &byte, 1) < 0 && errno == EINTR) {
  }
}

/* One turn of the loop: wait for a socket, the timer or a wake-up (at most
 * `max_wait_ms`), then tell the client what happened. */
static void loop_turn(struct engine_loop* loop, int max_wait_ms) {
  struct pollfd polled[MAX_SOCKETS + 1];
  int count = loop->watched_count;
  int wait_ms = max_wait_ms;
  int i;

  polled[0].fd = loop->wake_pipe[0];
  polled[0].events = POLLIN;
  for (i = 0; i < count; ++i) polled[i + 1] = loop->watched[i];
  for (i = 0; i <= count; ++i) polled[i].revents = 0;
  if (loop->timer_armed) {
    const int64_t left_us = loop->timer_due_us - now_us();
    const int64_t left_ms = left_us <= 0 ? 0 : (left_us + 999) / 1000; /* round up: never early */
    if (left_ms < wait_ms) wait_ms = (int)left_ms;
  }
  if (poll(polled, (nfds_t)(count + 1), wait_ms) < 0) return; /* EINTR: next turn */

  if (polled[0].revents != 0) {
    char drain[64];
    while (read(loop->wake_pipe[0], drain, sizeof drain) > 0) {
    }
    passthru_loop_woken(loop->client);
  }
  for (i = 1; i <= count; ++i) {
    int events = 0;
    if (polled[i].revents & (POLLIN | POLLHUP)) events |= PASSTHRU_READY_READ;
    if (polled[i].revents & POLLOUT) events |= PASSTHRU_READY_WRITE;
    if (polled[i].revents & POLLERR) events |= PASSTHRU_READY_ERROR;
    if (events != 0) passthru_loop_socket_ready(loop->client, polled[i].fd, events);
  }
  if (loop->timer_armed && now_us() >= loop->timer_due_us) {
    loop->timer_armed = 0;
    passthru_loop_timer_expired(loop->client);
  }
}

/* ---- The engine's calls ----------------------------------------------------- */

struct call {
  const char* sid;
  const char* from;
  int finished;
};

/* Runs once per call, on the loop thread: resume the call at outcome->target.
 * The strings in `outcome` live until this returns; copy what you keep. */
static void on_outcome(const passthru_outcome* outcome, void* user_data) {
  struct call* call = user_data;
  printf("call=%s route=%s target=%s reason=\"%s\"\n", call->sid, passthru_route_name(outcome->route),
         outcome->target, outcome->reason);
  fflush(stdout);
  call->finished = 1;
}

int main(int argc, char** argv) {
  struct call calls[] = {{"call-1", "+919876543210", 0},
                         {"call-2", "+919812345678", 0},
                         {"call-3", "+14155550100", 0},
                         {"call-4", "+442071838750", 0},
                         {"call-5", "+919000000005", 0}};
  const int call_count = (int)(sizeof calls / sizeof calls[0]);
  const long timeout_ms = 3000;
  struct engine_loop loop;
  passthru_loop_hooks hooks;
  passthru_step_config config;
  passthru_step* step = NULL;
  passthru_client* client = NULL;
  char why[256];
  int64_t give_up_us;
  int i, finished = 0, status;

  /* One Passthru applet of a flow, validated once. */
  passthru_step_config_init(&config);
  config.url = argc > 1 ? argv[1] : "http://127.0.0.1:8080/passthru";
  config.method = PASSTHRU_POST;
  config.timeout_ms = timeout_ms;
  config.default_next = "main-menu";
  config.on_error = "apology-greeting";
  config.on_timeout = "general-queue";
  status = passthru_step_create(&config, &step, why, sizeof why);
  if (status != PASSTHRU_OK) {
    fprintf(stderr, "embed_c: %s: %s\n", passthru_strerror(status), why);
    return 2;
  }

  /* The engine's loop, and a client it drives. */
  memset(&loop, 0, sizeof loop);
  if (pipe(loop.wake_pipe) != 0 || fcntl(loop.wake_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
      fcntl(loop.wake_pipe[1], F_SETFL, O_NONBLOCK) != 0) {
    perror("embed_c: pipe");
    return 2;
  }
  hooks.user_data = &loop;
  hooks.watch_socket = loop_watch_socket;
  hooks.arm_timer = loop_arm_timer;
  hooks.cancel_timer = loop_cancel_timer;
  hooks.wake = loop_wake;
  status = passthru_client_create_on_loop(&hooks, NULL, &client);
  if (status != PASSTHRU_OK) {
    fprintf(stderr, "embed_c: passthru_client_create_on_loop: %s\n", passthru_strerror(status));
    return 2;
  }
  loop.client = client;

  /* Calls reach the step; each request starts at once and never blocks. */
  for (i = 0; i < call_count; ++i) {
    passthru_call call;
    memset(&call, 0, sizeof call);
    call.call_sid = calls[i].sid;
    call.call_from = calls[i].from;
    call.call_to = "+914412345678";
    call.direction = PASSTHRU_INCOMING;
    status = passthru_execute(client, step, &call, on_outcome, &calls[i], NULL);
    if (status != PASSTHRU_OK) {
      fprintf(stderr, "embed_c: passthru_execute: %s\n", passthru_strerror(status));
      calls[i].finished = -1;
    }
  }

  /* The engine's loop runs; every call has its outcome by the step's timeout. */
  give_up_us = now_us() + (int64_t)(timeout_ms + 5000) * 1000;
  for (;;) {
    finished = 0;
    for (i = 0; i < call_count; ++i) finished += calls[i].finished == 1;
    if (finished == call_count || now_us() >= give_up_us) break;
    loop_turn(&loop, 100);
  }

  /* On the loop thread: any request still running ends "cancelled" here. */
  passthru_client_destroy(client);
  passthru_step_destroy(step);
  close(loop.wake_pipe[0]);
  close(loop.wake_pipe[1]);
  if (finished != call_count) {
    fprintf(stderr, "embed_c: %d of %d calls got their outcome\n", finished, call_count);
    return 1;
  }
  return 0;
}
