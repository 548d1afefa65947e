/* What the engine sees besides the route: trace context, the answer itself,
 * the request hooks and the Prometheus metrics, against loopback servers. */
#define _POSIX_C_SOURCE 200809L

#include "c_test.h"
#include "c_test_servers.h"

#include <errno.h>
#include <time.h>

static const char kEngineTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
static const char kEngineTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";

/* `text` is exactly `length` lower-case hex digits, not all zero (W3C's invalid id). */
static int is_hex_id(const char* text, size_t length) {
  size_t i;
  int nonzero = 0;
  if (strlen(text) != length) return 0;
  for (i = 0; i < length; ++i) {
    const char c = text[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    if (c != '0') nonzero = 1;
  }
  return nonzero;
}

/* Runs one request of `call` through `step` on a fresh client made from
 * `options`, and returns its record. */
static c_record run_one(const passthru_client_options* options, passthru_step* step,
                        const passthru_call* call) {
  passthru_client* client = NULL;
  c_collector collector;
  c_record record;
  uint64_t id = 0;
  collector_init(&collector, 1);
  REQUIRE(passthru_client_create(options, &client) == PASSTHRU_OK);
  REQUIRE(passthru_execute(client, step, call, collector_on_outcome, collector_slot(&collector, 0), &id) ==
          PASSTHRU_OK);
  REQUIRE(collector_wait(&collector, 1, C_TEST_GENEROUS_WAIT_MS));
  passthru_client_destroy(client);
  CHECK_INT(collector_calls(&collector, 0), 1);
  record = collector_record(&collector, 0);
  CHECK_INT(record.request_id, id);
  collector_destroy(&collector);
  return record;
}

/* ---- Options ---------------------------------------------------------------- */

static void client_options_init_sets_the_observability_defaults(void) {
  passthru_client_options options;
  passthru_client* client = NULL;
  memset(&options, 0x5a, sizeof options);
  passthru_client_options_init(&options);
  CHECK_INT(options.request_log_level, PASSTHRU_LOG_INFO);
  CHECK_INT(options.slow_answer_threshold_ms, 3000);
  CHECK_INT(options.send_traceparent, 1);
  CHECK(options.hooks.on_start == NULL && options.hooks.on_waiting == NULL && options.hooks.on_end == NULL);
  CHECK_INT(options.hooks.waiting_after_ms, 0);
  CHECK(options.hooks.user_data == NULL);

  options = c_test_quiet_options();
  options.request_log_level = (passthru_log_level)9;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);
  CHECK(client == NULL);

  options = c_test_quiet_options();
  options.slow_answer_threshold_ms = 0;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);
  options.slow_answer_threshold_ms = -3000;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);

  options = c_test_quiet_options();
  options.hooks.waiting_after_ms = -1;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);
  CHECK(client == NULL);

  options = c_test_quiet_options();
  options.request_log_level = PASSTHRU_LOG_DEBUG;
  options.slow_answer_threshold_ms = 250;
  options.send_traceparent = 0;
  options.hooks.waiting_after_ms = 400;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_OK);
  CHECK(client != NULL);
  passthru_client_destroy(client);
}

/* ---- Trace context ---------------------------------------------------------- */

static void traceparent_joins_the_engines_trace(void) {
  c_http_server* server = c_http_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  c_record record;
  char url[256];
  char expected[128];
  char* header;
  REQUIRE(server != NULL);
  c_http_server_reply(server, "GET", "/crm", 200, "vip-connect", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  call.traceparent = kEngineTraceparent;
  call.tracestate = "engine=7f3a";

  record = run_one(&options, step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_NEXT_APPLET);
  CHECK_STR(record.trace_id, kEngineTraceId);
  CHECK(is_hex_id(record.span_id, 16));
  /* A span of its own, a child of the engine's. */
  CHECK(strcmp(record.span_id, "00f067aa0ba902b7") != 0);

  REQUIRE(c_http_server_request_count(server) == 1);
  header = c_http_server_request(server, 0, "header:traceparent");
  snprintf(expected, sizeof expected, "00-%s-%s-01", kEngineTraceId, record.span_id);
  CHECK_STR(header, expected);
  free(header);
  header = c_http_server_request(server, 0, "header:tracestate");
  CHECK_STR(header, "engine=7f3a");
  free(header);

  passthru_step_destroy(step);
  c_http_server_stop(server);
}

static void a_call_without_traceparent_starts_a_new_trace(void) {
  c_http_server* server = c_http_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_call call;
  passthru_step* step;
  c_record first, second;
  char url[256];
  char* header;
  REQUIRE(server != NULL);
  c_http_server_reply(server, "GET", "/crm", 200, "vip-connect", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  memset(&call, 0, sizeof call); /* traceparent and tracestate NULL */

  first = run_one(&options, step, &call);
  CHECK(is_hex_id(first.trace_id, 32));
  CHECK(is_hex_id(first.span_id, 16));
  call.traceparent = ""; /* "" means none, as NULL does */
  call.tracestate = "";
  second = run_one(&options, step, &call);
  CHECK(is_hex_id(second.trace_id, 32));
  CHECK(strcmp(first.trace_id, second.trace_id) != 0);

  REQUIRE(c_http_server_request_count(server) == 2);
  header = c_http_server_request(server, 0, "header:traceparent");
  CHECK_PREFIX(header, "00-");
  CHECK_CONTAINS(header, first.trace_id);
  free(header);
  header = c_http_server_request(server, 1, "header:tracestate");
  CHECK(header == NULL);
  free(header);

  /* send_traceparent 0: no header, but the outcome still has its trace id. */
  options.send_traceparent = 0;
  call.traceparent = kEngineTraceparent;
  first = run_one(&options, step, &call);
  CHECK_STR(first.trace_id, kEngineTraceId);
  REQUIRE(c_http_server_request_count(server) == 3);
  header = c_http_server_request(server, 2, "header:traceparent");
  CHECK(header == NULL);
  free(header);

  passthru_step_destroy(step);
  c_http_server_stop(server);
}

/* ---- The answer -------------------------------------------------------------- */

static void outcome_carries_the_answer_and_its_content_type(void) {
  static const char json[] = "{\"next\": \"vip-connect\", \"variables\": {\"tier\": \"gold\"}}";
  c_http_server* server = c_http_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  c_record record;
  char url[256];
  REQUIRE(server != NULL);
  c_http_server_reply(server, "GET", "/text", 200, "standard-queue\n", "text/plain; charset=utf-8");
  c_http_server_reply(server, "GET", "/json", 200, json, "application/json");
  c_http_server_reply(server, "GET", "/down", 503, "maintenance", "text/html");

  REQUIRE(c_http_server_url(server, "/text", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  record = run_one(&options, step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_NEXT_APPLET);
  CHECK_STR(record.content_type, "text/plain; charset=utf-8");
  CHECK_STR(record.answer, "standard-queue\n");
  CHECK_INT(record.answer_length, strlen("standard-queue\n"));
  passthru_step_destroy(step);

  REQUIRE(c_http_server_url(server, "/json", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  record = run_one(&options, step, &call);
  CHECK_STR(record.target, "vip-connect");
  CHECK_STR(record.content_type, "application/json");
  CHECK_STR(record.answer, json);
  CHECK_INT(record.answer_length, strlen(json));
  passthru_step_destroy(step);

  /* An error answer is kept too: it is what a person debugging wants to see. */
  REQUIRE(c_http_server_url(server, "/down", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  record = run_one(&options, step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_ON_ERROR);
  CHECK_INT(record.http_status, 503);
  CHECK_STR(record.content_type, "text/html");
  CHECK_STR(record.answer, "maintenance");
  CHECK_INT(record.answer_length, strlen("maintenance"));
  passthru_step_destroy(step);

  c_http_server_stop(server);
}

/* ---- Hooks -------------------------------------------------------------------- */

typedef enum hook_kind { HOOK_START, HOOK_WAITING, HOOK_END, HOOK_OUTCOME } hook_kind;

/* One hook call (or the outcome callback), copied out of it. */
typedef struct hook_event {
  hook_kind kind;
  uint64_t request_id;
  int64_t waited_ms;
  char call_sid[64];
  char step[64];
  passthru_method method;
  char url[256];
  char body[512];
  char trace_id[64];
  int64_t timeout_ms;
  int sends_user_agent; /* a "User-Agent: passthru/" line among the headers */
  passthru_route route; /* HOOK_END and HOOK_OUTCOME */
  char outcome_trace_id[64];
} hook_event;

#define MAX_HOOK_EVENTS 16

typedef struct hook_log {
  pthread_mutex_t mutex;
  pthread_cond_t changed;
  size_t count;
  size_t dropped; /* events past MAX_HOOK_EVENTS */
  hook_event events[MAX_HOOK_EVENTS];
} hook_log;

static void hook_log_init(hook_log* log) {
  pthread_condattr_t attributes;
  memset(log, 0, sizeof *log);
  REQUIRE(pthread_mutex_init(&log->mutex, NULL) == 0);
  REQUIRE(pthread_condattr_init(&attributes) == 0);
  REQUIRE(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC) == 0);
  REQUIRE(pthread_cond_init(&log->changed, &attributes) == 0);
  pthread_condattr_destroy(&attributes);
}

static void hook_log_destroy(hook_log* log) {
  pthread_cond_destroy(&log->changed);
  pthread_mutex_destroy(&log->mutex);
}

static void copy_field(char* buffer, size_t size, const char* text) {
  snprintf(buffer, size, "%s", text == NULL ? "(null)" : text);
}

static void hook_log_add(hook_log* log, hook_kind kind, const passthru_request_info* request,
                         int64_t waited_ms, const passthru_outcome* outcome) {
  hook_event event;
  size_t i;
  memset(&event, 0, sizeof event);
  event.kind = kind;
  event.waited_ms = waited_ms;
  if (request != NULL) {
    event.request_id = request->request_id;
    copy_field(event.call_sid, sizeof event.call_sid, request->call_sid);
    copy_field(event.step, sizeof event.step, request->step);
    event.method = request->method;
    copy_field(event.url, sizeof event.url, request->url);
    copy_field(event.body, sizeof event.body, request->body);
    copy_field(event.trace_id, sizeof event.trace_id, request->trace_id);
    event.timeout_ms = request->timeout_ms;
    for (i = 0; i < request->header_count; ++i) {
      if (strncmp(request->headers[i], "User-Agent: passthru/", 21) == 0) event.sends_user_agent = 1;
    }
  }
  if (outcome != NULL) {
    if (request == NULL) event.request_id = outcome->request_id;
    event.route = outcome->route;
    copy_field(event.outcome_trace_id, sizeof event.outcome_trace_id, outcome->trace_id);
  }
  pthread_mutex_lock(&log->mutex);
  if (log->count < MAX_HOOK_EVENTS) {
    log->events[log->count++] = event;
  } else {
    ++log->dropped;
  }
  pthread_cond_broadcast(&log->changed);
  pthread_mutex_unlock(&log->mutex);
}

static void on_start(const passthru_request_info* request, void* user_data) {
  hook_log_add((hook_log*)user_data, HOOK_START, request, 0, NULL);
}

static void on_waiting(const passthru_request_info* request, int64_t waited_ms, void* user_data) {
  hook_log_add((hook_log*)user_data, HOOK_WAITING, request, waited_ms, NULL);
}

static void on_end(const passthru_request_info* request, const passthru_outcome* outcome, void* user_data) {
  hook_log_add((hook_log*)user_data, HOOK_END, request, 0, outcome);
}

static void on_outcome(const passthru_outcome* outcome, void* user_data) {
  hook_log_add((hook_log*)user_data, HOOK_OUTCOME, NULL, 0, outcome);
}

/* 1 once an event of `kind` is in the log, 0 if `timeout_ms` passed first. */
static int hook_log_wait_for(hook_log* log, hook_kind kind, long timeout_ms) {
  struct timespec deadline;
  int found = 0;
  size_t i;
  deadline = c_test_deadline(timeout_ms);
  pthread_mutex_lock(&log->mutex);
  for (;;) {
    for (i = 0; i < log->count && !found; ++i) found = log->events[i].kind == kind;
    if (found) break;
    if (pthread_cond_timedwait(&log->changed, &log->mutex, &deadline) == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&log->mutex);
  return found;
}

/* A copy of the events, taken under the lock; returns their number. */
static size_t hook_log_copy(hook_log* log, hook_event* events) {
  size_t n;
  pthread_mutex_lock(&log->mutex);
  n = log->count;
  memcpy(events, log->events, n * sizeof events[0]);
  CHECK_INT(log->dropped, 0);
  pthread_mutex_unlock(&log->mutex);
  return n;
}

static passthru_client_options hooked_options(hook_log* log, int64_t waiting_after_ms) {
  passthru_client_options options = c_test_quiet_options();
  options.hooks.on_start = on_start;
  options.hooks.on_waiting = on_waiting;
  options.hooks.on_end = on_end;
  options.hooks.waiting_after_ms = waiting_after_ms;
  options.hooks.user_data = log;
  return options;
}

static passthru_step* named_step(const char* url, const char* name, long timeout_ms) {
  passthru_step_config config;
  passthru_step* step = NULL;
  char why[256];
  passthru_step_config_init(&config);
  config.url = url;
  config.method = PASSTHRU_POST;
  config.timeout_ms = timeout_ms;
  config.default_next = "main-menu";
  config.on_error = "apology";
  config.name = name;
  if (passthru_step_create(&config, &step, why, sizeof why) != PASSTHRU_OK) fprintf(stderr, "%s\n", why);
  REQUIRE(step != NULL);
  return step;
}

static void hooks_run_start_then_end_with_the_request_id(void) {
  c_http_server* server = c_http_server_start();
  hook_log log;
  passthru_client_options options;
  passthru_client* client = NULL;
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  hook_event events[MAX_HOOK_EVENTS];
  size_t n, i;
  uint64_t id = 0;
  char url[256];
  REQUIRE(server != NULL);
  hook_log_init(&log);
  c_http_server_reply(server, "POST", "/crm", 200, "vip-connect", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  step = named_step(url, "crm-lookup", 20000);
  options = hooked_options(&log, 0); /* no on_waiting */

  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  REQUIRE(passthru_execute(client, step, &call, on_outcome, &log, &id) == PASSTHRU_OK);
  REQUIRE(hook_log_wait_for(&log, HOOK_OUTCOME, C_TEST_GENEROUS_WAIT_MS));
  passthru_client_destroy(client); /* no hook runs after this */

  n = hook_log_copy(&log, events);
  REQUIRE(n == 3);
  CHECK_INT(events[0].kind, HOOK_START);
  CHECK_INT(events[1].kind, HOOK_END);
  CHECK_INT(events[2].kind, HOOK_OUTCOME);
  for (i = 0; i < n; ++i) CHECK_INT(events[i].request_id, id);

  /* The request as sent. */
  CHECK_STR(events[0].call_sid, "abc123");
  CHECK_STR(events[0].step, "crm-lookup");
  CHECK_INT(events[0].method, PASSTHRU_POST);
  CHECK_STR(events[0].url, url);
  CHECK_CONTAINS(events[0].body, "CallSid=abc123");
  CHECK(is_hex_id(events[0].trace_id, 32));
  CHECK_INT(events[0].timeout_ms, 20000);
  CHECK_INT(events[0].sends_user_agent, 1);
  /* on_end sees the same request and the outcome the callback gets. */
  CHECK_STR(events[1].url, url);
  CHECK_INT(events[1].route, PASSTHRU_ROUTE_NEXT_APPLET);
  CHECK_INT(events[2].route, PASSTHRU_ROUTE_NEXT_APPLET);
  CHECK_STR(events[1].outcome_trace_id, events[0].trace_id);
  CHECK_STR(events[2].outcome_trace_id, events[0].trace_id);

  passthru_step_destroy(step);
  c_http_server_stop(server);
  hook_log_destroy(&log);
}

static void on_waiting_fires_while_the_server_holds_its_answer(void) {
  c_http_server* server = c_http_server_start();
  hook_log log;
  passthru_client_options options;
  passthru_client* client = NULL;
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  hook_event events[MAX_HOOK_EVENTS];
  size_t n, i;
  uint64_t id = 0;
  char url[256];
  REQUIRE(server != NULL);
  hook_log_init(&log);
  c_http_server_reply_when_released(server, "POST", "/slow", 200, "vip-connect", "text/plain");
  REQUIRE(c_http_server_url(server, "/slow", url, sizeof url));
  step = named_step(url, "crm-lookup", 60000);
  options = hooked_options(&log, 50);

  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  REQUIRE(passthru_execute(client, step, &call, on_outcome, &log, &id) == PASSTHRU_OK);
  /* The server answers only once the caller has been told to wait. */
  CHECK(hook_log_wait_for(&log, HOOK_WAITING, C_TEST_GENEROUS_WAIT_MS));
  c_http_server_release(server);
  REQUIRE(hook_log_wait_for(&log, HOOK_OUTCOME, C_TEST_GENEROUS_WAIT_MS));
  passthru_client_destroy(client);

  n = hook_log_copy(&log, events);
  REQUIRE(n == 4);
  CHECK_INT(events[0].kind, HOOK_START);
  CHECK_INT(events[1].kind, HOOK_WAITING);
  CHECK_INT(events[2].kind, HOOK_END);
  CHECK_INT(events[3].kind, HOOK_OUTCOME);
  for (i = 0; i < n; ++i) CHECK_INT(events[i].request_id, id);
  CHECK(events[1].waited_ms >= 50);
  CHECK_STR(events[1].step, "crm-lookup");
  CHECK_INT(events[3].route, PASSTHRU_ROUTE_NEXT_APPLET);

  passthru_step_destroy(step);
  c_http_server_stop(server);
  hook_log_destroy(&log);
}

/* ---- Metrics ------------------------------------------------------------------ */

static void metrics_text_counts_requests_per_step(void) {
  c_http_server* server = c_http_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_client* client = NULL;
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  c_collector collector;
  char url[256];
  char* text;
  size_t i;
  REQUIRE(server != NULL);
  collector_init(&collector, 2);
  c_http_server_reply(server, "POST", "/crm", 200, "vip-connect", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  step = named_step(url, "crm-lookup", 20000);
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);

  text = passthru_client_metrics_text(client, NULL);
  REQUIRE(text != NULL);
  CHECK(strstr(text, "step=\"crm-lookup\"") == NULL); /* no request yet */
  passthru_free(text);

  for (i = 0; i < 2; ++i) {
    REQUIRE(passthru_execute(client, step, &call, collector_on_outcome, collector_slot(&collector, i),
                             NULL) == PASSTHRU_OK);
  }
  REQUIRE(collector_wait(&collector, 2, C_TEST_GENEROUS_WAIT_MS));

  text = passthru_client_metrics_text(client, NULL);
  REQUIRE(text != NULL);
  CHECK_CONTAINS(text, "# TYPE passthru_requests_total counter\n");
  CHECK_CONTAINS(text, "passthru_requests_total{step=\"crm-lookup\"} 2\n");
  CHECK_CONTAINS(text, "# TYPE passthru_request_duration_seconds histogram\n");
  passthru_free(text);

  text = passthru_client_metrics_text(client, "engine_passthru");
  REQUIRE(text != NULL);
  CHECK_CONTAINS(text, "engine_passthru_requests_total{step=\"crm-lookup\"} 2\n");
  CHECK(strstr(text, "\npassthru_") == NULL && strncmp(text, "passthru_", 9) != 0);
  passthru_free(text);

  /* A prefix Prometheus would refuse, and no client: NULL. */
  CHECK(passthru_client_metrics_text(client, "9-bad prefix") == NULL);
  CHECK(passthru_client_metrics_text(NULL, NULL) == NULL);
  passthru_free(NULL);

  passthru_client_destroy(client);
  passthru_step_destroy(step);
  collector_destroy(&collector);
  c_http_server_stop(server);
}

/* ---- Circuit breaker ------------------------------------------------------- */

static void an_open_circuit_routes_on_error_at_once(void) {
  c_refused_port* refused = c_refused_port_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_call call = c_test_sample_call();
  passthru_client* client = NULL;
  passthru_step* step;
  c_collector collector;
  c_record record;
  char url[256];
  size_t i;
  REQUIRE(refused != NULL);
  CHECK_INT(options.circuit_breaker.consecutive_failures, 0);
  CHECK_INT(options.circuit_breaker.window_ms, 10000);
  CHECK_INT(options.circuit_breaker.minimum_requests, 20);
  CHECK_INT(options.circuit_breaker.open_for_ms, 5000);
  CHECK_INT(options.circuit_breaker.probes, 3);

  options.circuit_breaker.consecutive_failures = 2;
  options.circuit_breaker.open_for_ms = 0;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);
  options.circuit_breaker.open_for_ms = 60000;

  REQUIRE(c_refused_port_url(refused, url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  collector_init(&collector, 3);
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  for (i = 0; i < 3; ++i) {
    REQUIRE(passthru_execute(client, step, &call, collector_on_outcome, collector_slot(&collector, i),
                             NULL) == PASSTHRU_OK);
    REQUIRE(collector_wait(&collector, i + 1, C_TEST_GENEROUS_WAIT_MS));
  }
  CHECK_INT(collector_record(&collector, 0).error, PASSTHRU_ERROR_CONNECT_FAILED);
  CHECK_INT(collector_record(&collector, 1).error, PASSTHRU_ERROR_CONNECT_FAILED);
  record = collector_record(&collector, 2);
  CHECK_INT(record.route, PASSTHRU_ROUTE_ON_ERROR);
  CHECK_INT(record.error, PASSTHRU_ERROR_CIRCUIT_OPEN);
  CHECK_STR(record.error_text, "circuit open");
  CHECK_CONTAINS(record.reason, "2 failures in a row");
  passthru_client_destroy(client);
  passthru_step_destroy(step);
  collector_destroy(&collector);
  c_refused_port_stop(refused);
}

/* ---- Fire and forget ------------------------------------------------------- */

static void a_fire_and_forget_step_answers_at_once(void) {
  c_http_server* server = c_http_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_call call = c_test_sample_call();
  passthru_step_config config;
  passthru_step* step = NULL;
  c_record record;
  char url[256];
  char why[256];
  REQUIRE(server != NULL);
  CHECK_INT(options.max_background, 1024);
  CHECK_INT(options.max_per_origin, 0);
  c_http_server_reply(server, "POST", "/log", 200, "", "text/plain");
  REQUIRE(c_http_server_url(server, "/log", url, sizeof url));
  passthru_step_config_init(&config);
  CHECK_INT(config.fire_and_forget, 0);
  config.url = url;
  config.method = PASSTHRU_POST;
  config.default_next = "main-menu";
  config.fire_and_forget = 1;
  REQUIRE(passthru_step_create(&config, &step, why, sizeof why) == PASSTHRU_OK);
  record = run_one(&options, step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_DEFAULT);
  CHECK_STR(record.target, "main-menu");
  CHECK_INT(record.background, 1);
  CHECK_INT(record.error, PASSTHRU_ERROR_NONE);
  CHECK_INT(record.attempts, 0);
  passthru_step_destroy(step);
  c_http_server_stop(server);
}

const c_test_case c_api_observability_tests[] = {
    {"client_options_init_sets_the_observability_defaults",
     client_options_init_sets_the_observability_defaults},
    {"traceparent_joins_the_engines_trace", traceparent_joins_the_engines_trace},
    {"a_call_without_traceparent_starts_a_new_trace", a_call_without_traceparent_starts_a_new_trace},
    {"outcome_carries_the_answer_and_its_content_type", outcome_carries_the_answer_and_its_content_type},
    {"hooks_run_start_then_end_with_the_request_id", hooks_run_start_then_end_with_the_request_id},
    {"on_waiting_fires_while_the_server_holds_its_answer",
     on_waiting_fires_while_the_server_holds_its_answer},
    {"metrics_text_counts_requests_per_step", metrics_text_counts_requests_per_step},
    {"an_open_circuit_routes_on_error_at_once", an_open_circuit_routes_on_error_at_once},
    {"a_fire_and_forget_step_answers_at_once", a_fire_and_forget_step_answers_at_once},
    {NULL, NULL}};
