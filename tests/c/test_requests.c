/* The client with its own thread, against real HTTP servers on loopback. */
#define _POSIX_C_SOURCE 200809L

#include "c_test.h"
#include "c_test_servers.h"

/* The percent-decoded parameter `name` of request `index`'s query (GET) or
 * body (POST) equals `expected`; NULL expects it absent. */
static void check_param(c_http_server* server, size_t index, const char* part, const char* name,
                        const char* expected, int line) {
  char* text = c_http_server_request(server, index, part);
  char* value = text == NULL ? NULL : c_form_value(text, name);
  int ok = expected == NULL ? value == NULL : (value != NULL && strcmp(value, expected) == 0);
  if (!ok) {
    fprintf(stderr, "line %d: %s parameter %s is %s%s%s, expected %s%s%s (%s: %s)\n", line, part, name,
            value ? "\"" : "", value ? value : "absent", value ? "\"" : "", expected ? "\"" : "",
            expected ? expected : "absent", expected ? "\"" : "", part, text ? text : "(no request)");
    ++c_test_failures;
  }
  free(value);
  free(text);
}

#define CHECK_PARAM(server, index, part, name, expected) \
  check_param((server), (index), (part), (name), (expected), __LINE__)

static void check_request_part(c_http_server* server, size_t index, const char* part, const char* expected,
                               int line) {
  char* value = c_http_server_request(server, index, part);
  if (value == NULL || strcmp(value, expected) != 0) {
    fprintf(stderr, "line %d: request %zu %s is \"%s\", expected \"%s\"\n", line, index, part,
            value ? value : "(none)", expected);
    ++c_test_failures;
  }
  free(value);
}

#define CHECK_REQUEST(server, index, part, expected) \
  check_request_part((server), (index), (part), (expected), __LINE__)

/* Runs one request of `call` through `step` on a fresh client and returns its record. */
static c_record run_one(passthru_step* step, const passthru_call* call) {
  passthru_client_options options = c_test_quiet_options();
  passthru_client* client = NULL;
  c_collector collector;
  c_record record;
  uint64_t id = 0;
  collector_init(&collector, 1);
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  REQUIRE(passthru_execute(client, step, call, collector_on_outcome, collector_slot(&collector, 0), &id) ==
          PASSTHRU_OK);
  CHECK(id != 0);
  REQUIRE(collector_wait(&collector, 1, C_TEST_GENEROUS_WAIT_MS));
  passthru_client_destroy(client);
  /* Destroy completes everything: a second callback would have run by now. */
  CHECK_INT(collector_calls(&collector, 0), 1);
  record = collector_record(&collector, 0);
  CHECK_INT(record.request_id, id);
  CHECK(record.elapsed_us > 0);
  collector_destroy(&collector);
  return record;
}

static void get_sends_the_call_in_the_query(void) {
  static const passthru_param custom[] = {{"Lang", "hi"}, {"Note", "a b&c=d"}};
  c_http_server* server = c_http_server_start();
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  c_record record;
  char url[256];
  REQUIRE(server != NULL);
  c_http_server_reply(server, "GET", "/crm", 200, "vip-connect\n", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm?tenant=acme", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  call.digits = "1234";
  call.custom = custom;
  call.custom_count = 2;

  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_NEXT_APPLET);
  CHECK_STR(record.target, "vip-connect");
  CHECK_INT(record.http_status, 200);
  CHECK_INT(record.error, PASSTHRU_ERROR_NONE);
  CHECK_STR(record.error_text, "");
  CHECK(strlen(record.reason) > 0);
  /* The wire facts reach C too. */
  CHECK_INT(record.attempts, 1);
  CHECK(record.bytes_sent > strlen("GET /crm HTTP/1.1\r\n\r\n"));
  CHECK(record.bytes_received > strlen("vip-connect\n"));
  CHECK(strncmp(record.remote_address, "127.0.0.1:", 10) == 0);
  CHECK(record.first_byte_us > 0 && record.first_byte_us <= record.transfer_us);
  CHECK_INT(record.http_version, 11); /* plain http:// is HTTP/1.1 */

  REQUIRE(c_http_server_request_count(server) == 1);
  CHECK_REQUEST(server, 0, "method", "GET");
  CHECK_REQUEST(server, 0, "path", "/crm");
  CHECK_PARAM(server, 0, "query", "tenant", "acme");
  CHECK_PARAM(server, 0, "query", "CallSid", "abc123");
  CHECK_PARAM(server, 0, "query", "CallFrom", "+919876543210");
  CHECK_PARAM(server, 0, "query", "CallTo", "+914412345678");
  CHECK_PARAM(server, 0, "query", "Direction", "incoming");
  CHECK_PARAM(server, 0, "query", "CurrentTime", "2024-01-15T10:30:00+05:30");
  CHECK_PARAM(server, 0, "query", "DialWhomNumber", "+918000000000");
  CHECK_PARAM(server, 0, "query", "digits", "1234");
  CHECK_PARAM(server, 0, "query", "Lang", "hi");
  CHECK_PARAM(server, 0, "query", "Note", "a b&c=d");
  CHECK_REQUEST(server, 0, "body", "");

  passthru_step_destroy(step);
  c_http_server_stop(server);
}

static void post_sends_the_call_as_a_form(void) {
  static const passthru_param headers[] = {{"X-Tenant", "acme"}};
  c_http_server* server = c_http_server_start();
  passthru_step_config config;
  passthru_call call = c_test_sample_call();
  passthru_step* step = NULL;
  c_record record;
  char url[256];
  char why[256];
  REQUIRE(server != NULL);
  c_http_server_reply(server, "POST", "/crm", 200, "standard-queue", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  passthru_step_config_init(&config);
  config.url = url;
  config.method = PASSTHRU_POST;
  config.default_next = "main-menu";
  config.headers = headers;
  config.header_count = 1;
  config.quote_digits = 1;
  REQUIRE(passthru_step_create(&config, &step, why, sizeof why) == PASSTHRU_OK);
  call.direction = PASSTHRU_OUTGOING;
  call.digits = "42";

  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_NEXT_APPLET);
  CHECK_STR(record.target, "standard-queue");

  REQUIRE(c_http_server_request_count(server) == 1);
  CHECK_REQUEST(server, 0, "method", "POST");
  CHECK_REQUEST(server, 0, "target", "/crm");
  CHECK_REQUEST(server, 0, "header:Content-Type", "application/x-www-form-urlencoded");
  CHECK_REQUEST(server, 0, "header:X-Tenant", "acme");
  CHECK_PARAM(server, 0, "body", "CallSid", "abc123");
  CHECK_PARAM(server, 0, "body", "CallFrom", "+919876543210");
  CHECK_PARAM(server, 0, "body", "Direction", "outgoing");
  CHECK_PARAM(server, 0, "body", "digits", "\"42\"");

  passthru_step_destroy(step);
  c_http_server_stop(server);
}

static void a_zeroed_call_is_sent_with_empty_fields(void) {
  c_http_server* server = c_http_server_start();
  passthru_call call;
  passthru_step* step;
  c_record record;
  char url[256];
  REQUIRE(server != NULL);
  c_http_server_reply(server, "GET", "/crm", 200, "", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  memset(&call, 0, sizeof call);

  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_DEFAULT);
  REQUIRE(c_http_server_request_count(server) == 1);
  CHECK_PARAM(server, 0, "query", "CallSid", "");
  CHECK_PARAM(server, 0, "query", "Direction", "incoming");
  CHECK_PARAM(server, 0, "query", "digits", NULL);
  {
    /* Stamped by the library when the call has none. */
    char* query = c_http_server_request(server, 0, "query");
    char* stamped = query ? c_form_value(query, "CurrentTime") : NULL;
    CHECK(stamped != NULL && strlen(stamped) == strlen("2024-01-15T10:30:00+05:30"));
    free(stamped);
    free(query);
  }
  passthru_step_destroy(step);
  c_http_server_stop(server);
}

/* Strings handed in are copied before the function returns: the buffers
 * are overwritten at once, and the server still sees the originals. */
static void strings_are_copied_before_returning(void) {
  c_http_server* server = c_http_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_client* client = NULL;
  passthru_step_config config;
  passthru_step* step = NULL;
  passthru_call call;
  passthru_param custom[1];
  c_collector collector;
  c_record record;
  char url[256], next[32], sid[32], name[32], value[32];
  REQUIRE(server != NULL);
  c_http_server_reply(server, "GET", "/copied", 200, "", "text/plain");
  REQUIRE(c_http_server_url(server, "/copied", url, sizeof url));
  strcpy(next, "main-menu");
  passthru_step_config_init(&config);
  config.url = url;
  config.default_next = next;
  REQUIRE(passthru_step_create(&config, &step, NULL, 0) == PASSTHRU_OK);
  memset(url, 0, sizeof url);
  memset(next, 0, sizeof next);

  collector_init(&collector, 1);
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  strcpy(sid, "sid-original");
  strcpy(name, "Param");
  strcpy(value, "value-original");
  custom[0].name = name;
  custom[0].value = value;
  memset(&call, 0, sizeof call);
  call.call_sid = sid;
  call.custom = custom;
  call.custom_count = 1;
  REQUIRE(passthru_execute(client, step, &call, collector_on_outcome, collector_slot(&collector, 0), NULL) ==
          PASSTHRU_OK);
  strcpy(sid, "sid-clobbered");
  strcpy(name, "Clobbered");
  strcpy(value, "value-clobbered");
  memset(custom, 0, sizeof custom);
  REQUIRE(collector_wait(&collector, 1, C_TEST_GENEROUS_WAIT_MS));
  passthru_client_destroy(client);
  record = collector_record(&collector, 0);
  CHECK_INT(record.route, PASSTHRU_ROUTE_DEFAULT);
  CHECK_STR(record.target, "main-menu");

  REQUIRE(c_http_server_request_count(server) == 1);
  CHECK_REQUEST(server, 0, "path", "/copied");
  CHECK_PARAM(server, 0, "query", "CallSid", "sid-original");
  CHECK_PARAM(server, 0, "query", "Param", "value-original");
  collector_destroy(&collector);
  passthru_step_destroy(step);
  c_http_server_stop(server);
}

static void answers_route_to_next_applet_flow_and_default(void) {
  c_http_server* server = c_http_server_start();
  passthru_call call = c_test_sample_call();
  struct {
    const char* path;
    int status;
    const char* body;
    passthru_route route;
    const char* target;
    int error;
  } cases[] = {
      {"/applet", 200, "standard-queue\n", PASSTHRU_ROUTE_NEXT_APPLET, "standard-queue", 0},
      {"/flow", 200, "https://flows.example.com/ivr/7", PASSTHRU_ROUTE_EXTERNAL_FLOW,
       "https://flows.example.com/ivr/7", 0},
      {"/empty", 200, "  \n", PASSTHRU_ROUTE_DEFAULT, "main-menu", 0},
      {"/nocontent", 204, "", PASSTHRU_ROUTE_DEFAULT, "main-menu", 0},
      {"/unknown", 200, "hello world", PASSTHRU_ROUTE_DEFAULT, "main-menu", PASSTHRU_ERROR_UNEXPECTED_ANSWER},
  };
  size_t i;
  REQUIRE(server != NULL);
  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    char url[256];
    passthru_step* step;
    c_record record;
    c_http_server_reply(server, "GET", cases[i].path, cases[i].status, cases[i].body, "text/plain");
    REQUIRE(c_http_server_url(server, cases[i].path, url, sizeof url));
    step = c_test_step(url, PASSTHRU_GET, 20000);
    record = run_one(step, &call);
    if (record.route != cases[i].route || strcmp(record.target, cases[i].target) != 0 ||
        record.error != cases[i].error || record.http_status != cases[i].status) {
      fprintf(stderr, "%s: route %s target \"%s\" error %d status %d reason \"%s\"\n", cases[i].path,
              passthru_route_name(record.route), record.target, record.error, record.http_status,
              record.reason);
      ++c_test_failures;
    }
    if (cases[i].error != 0) {
      CHECK_STR(record.error_text, "unexpected answer");
      CHECK_CONTAINS(record.reason, "hello world");
    } else {
      CHECK_STR(record.error_text, "");
    }
    passthru_step_destroy(step);
  }
  c_http_server_stop(server);
}

static void a_slow_primary_is_hedged_by_the_fallback(void) {
  c_http_server* primary = c_http_server_start();
  c_http_server* fallback = c_http_server_start();
  passthru_call call = c_test_sample_call();
  passthru_step_config config;
  passthru_step* step = NULL;
  c_record record;
  char primary_url[256], fallback_url[256];
  REQUIRE(primary != NULL && fallback != NULL);
  c_http_server_reply_when_released(primary, "GET", "/crm", 200, "vip-connect", "text/plain");
  c_http_server_reply(fallback, "GET", "/backup", 200, "standard-queue", "text/plain");
  REQUIRE(c_http_server_url(primary, "/crm", primary_url, sizeof primary_url));
  REQUIRE(c_http_server_url(fallback, "/backup", fallback_url, sizeof fallback_url));

  passthru_step_config_init(&config);
  config.url = primary_url;
  config.fallback_url = fallback_url;
  config.hedge_after_ms = 100;
  config.timeout_ms = 20000;
  config.default_next = "main-menu";
  REQUIRE(passthru_step_create(&config, &step, NULL, 0) == PASSTHRU_OK);
  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_NEXT_APPLET);
  CHECK_STR(record.target, "standard-queue");
  CHECK_INT(record.answered_by, PASSTHRU_ENDPOINT_FALLBACK);
  CHECK_INT(record.hedged, 1);
  CHECK_INT(record.attempts, 2);
  CHECK(record.elapsed_us >= 100000);
  CHECK(record.elapsed_us < 100000 + C_TEST_GENEROUS_WAIT_MS * 1000);
  passthru_step_destroy(step);

  c_http_server_release(primary);
  c_http_server_stop(fallback);
  c_http_server_stop(primary);
}

static void server_errors_and_refused_connections_route_on_error(void) {
  c_http_server* server = c_http_server_start();
  c_refused_port* refused = c_refused_port_start();
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  c_record record;
  char url[256];
  REQUIRE(server != NULL && refused != NULL);

  c_http_server_reply(server, "GET", "/fail", 500, "boom", "text/plain");
  REQUIRE(c_http_server_url(server, "/fail", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_ON_ERROR);
  CHECK_STR(record.target, "apology");
  CHECK_INT(record.http_status, 500);
  CHECK_INT(record.error, PASSTHRU_ERROR_HTTP_STATUS);
  CHECK(strlen(record.error_text) > 0);
  CHECK_CONTAINS(record.reason, "500");
  passthru_step_destroy(step);

  REQUIRE(c_refused_port_url(refused, url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_ON_ERROR);
  CHECK_STR(record.target, "apology");
  CHECK_INT(record.http_status, 0);
  CHECK_INT(record.error, PASSTHRU_ERROR_CONNECT_FAILED);
  CHECK_STR(record.error_text, "could not connect");
  CHECK_CONTAINS(record.reason, "refused");
  passthru_step_destroy(step);

  c_refused_port_stop(refused);
  c_http_server_stop(server);
}

static void silence_routes_on_timeout_by_the_deadline(void) {
  c_silent_server* silent = c_silent_server_start();
  passthru_call call = c_test_sample_call();
  passthru_step_config config;
  passthru_step* step;
  c_record record;
  char url[256];
  REQUIRE(silent != NULL);
  REQUIRE(c_silent_server_url(silent, url, sizeof url));

  step = c_test_step(url, PASSTHRU_GET, 300);
  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_ON_TIMEOUT);
  CHECK_STR(record.target, "general-queue");
  CHECK_INT(record.error, PASSTHRU_ERROR_TIMED_OUT);
  CHECK_INT(record.http_status, 0);
  CHECK_CONTAINS(record.reason, "300 ms");
  CHECK(record.elapsed_us >= 300000);
  CHECK(record.elapsed_us < 300000 + C_TEST_GENEROUS_WAIT_MS * 1000);
  passthru_step_destroy(step);

  /* No on_timeout: on_error; neither: default_next. */
  passthru_step_config_init(&config);
  config.url = url;
  config.timeout_ms = 100;
  config.default_next = "main-menu";
  config.on_error = "apology";
  REQUIRE(passthru_step_create(&config, &step, NULL, 0) == PASSTHRU_OK);
  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_ON_TIMEOUT);
  CHECK_STR(record.target, "apology");
  passthru_step_destroy(step);
  config.on_error = NULL;
  REQUIRE(passthru_step_create(&config, &step, NULL, 0) == PASSTHRU_OK);
  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_ON_TIMEOUT);
  CHECK_STR(record.target, "main-menu");
  passthru_step_destroy(step);

  c_silent_server_stop(silent);
}

/* Checks every variable inside the callback, where the array is valid. */
typedef struct many_variables {
  size_t count;
  int all_match;
  c_slot* slot; /* then recorded there */
} many_variables;

static void check_many_variables(const passthru_outcome* outcome, void* user_data) {
  many_variables* seen = (many_variables*)user_data;
  size_t i;
  seen->count = outcome->variable_count;
  seen->all_match = outcome->variable_count == 0 || outcome->variables != NULL;
  for (i = 0; seen->all_match && i < outcome->variable_count; ++i) {
    char name[16], value[16];
    /* The names sort as v00..v19. */
    snprintf(name, sizeof name, "v%02u", (unsigned)i);
    snprintf(value, sizeof value, "value-%u", (unsigned)i);
    seen->all_match =
        strcmp(outcome->variables[i].name, name) == 0 && strcmp(outcome->variables[i].value, value) == 0;
  }
  collector_on_outcome(outcome, seen->slot);
}

static void json_answers_hand_variables_back(void) {
  c_http_server* server = c_http_server_start();
  passthru_call call = c_test_sample_call();
  passthru_step* step;
  c_record record;
  char url[256];
  char json[2048];
  size_t i, n;
  REQUIRE(server != NULL);
  c_http_server_reply(server, "GET", "/json", 200,
                      "{\"next\": \"vip-connect\", \"variables\": {\"tier\": \"gold\", \"crm_id\": \"42\"}}",
                      "application/json");
  REQUIRE(c_http_server_url(server, "/json", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  record = run_one(step, &call);
  CHECK_INT(record.route, PASSTHRU_ROUTE_NEXT_APPLET);
  CHECK_STR(record.target, "vip-connect");
  REQUIRE(record.variable_count == 2);
  CHECK_STR(record.variable_names[0], "crm_id");
  CHECK_STR(record.variable_values[0], "42");
  CHECK_STR(record.variable_names[1], "tier");
  CHECK_STR(record.variable_values[1], "gold");
  passthru_step_destroy(step);

  /* More variables than fit on the stack of the outcome's conversion. */
  n = (size_t)snprintf(json, sizeof json, "{\"next\": \"vip-connect\", \"variables\": {");
  for (i = 0; i < 20; ++i) {
    n += (size_t)snprintf(json + n, sizeof json - n, "%s\"v%02u\": \"value-%u\"", i ? ", " : "", (unsigned)i,
                          (unsigned)i);
  }
  snprintf(json + n, sizeof json - n, "}}");
  c_http_server_reply(server, "GET", "/many", 200, json, "application/json");
  REQUIRE(c_http_server_url(server, "/many", url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  {
    passthru_client_options options = c_test_quiet_options();
    passthru_client* client = NULL;
    many_variables seen = {0, 0, NULL};
    c_collector collector;
    collector_init(&collector, 1);
    seen.slot = collector_slot(&collector, 0);
    REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
    REQUIRE(passthru_execute(client, step, &call, check_many_variables, &seen, NULL) == PASSTHRU_OK);
    REQUIRE(collector_wait(&collector, 1, C_TEST_GENEROUS_WAIT_MS));
    passthru_client_destroy(client);
    CHECK_INT(collector_record(&collector, 0).route, PASSTHRU_ROUTE_NEXT_APPLET);
    CHECK_INT(seen.count, 20);
    CHECK(seen.all_match);
    collector_destroy(&collector);
  }
  passthru_step_destroy(step);
  c_http_server_stop(server);
}

static void cancel_ends_a_request_cancelled(void) {
  c_silent_server* silent = c_silent_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_call call = c_test_sample_call();
  passthru_client* client = NULL;
  passthru_step* step;
  c_collector collector;
  c_record record;
  uint64_t first = 0, second = 0;
  char url[256];
  REQUIRE(silent != NULL);
  REQUIRE(c_silent_server_url(silent, url, sizeof url));
  step = c_test_step(url, PASSTHRU_GET, 20000);
  collector_init(&collector, 2);
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  REQUIRE(passthru_execute(client, step, &call, collector_on_outcome, collector_slot(&collector, 0),
                           &first) == PASSTHRU_OK);
  REQUIRE(passthru_execute(client, step, &call, collector_on_outcome, collector_slot(&collector, 1),
                           &second) == PASSTHRU_OK);
  CHECK(first != 0 && second != 0 && first != second);

  passthru_cancel(client, first);
  REQUIRE(collector_wait(&collector, 1, C_TEST_GENEROUS_WAIT_MS));
  record = collector_record(&collector, 0);
  CHECK_INT(record.request_id, first);
  CHECK_INT(record.route, PASSTHRU_ROUTE_CANCELLED);
  CHECK_STR(record.target, "");
  CHECK_INT(record.error, PASSTHRU_ERROR_CANCELLED);
  CHECK_STR(record.error_text, "cancelled");
  CHECK(record.elapsed_us < 20000 * 1000L);
  /* The other request is still waiting on the silent server. */
  CHECK_INT(collector_calls(&collector, 1), 0);

  /* Cancelling again, or an unknown id, changes nothing. */
  passthru_cancel(client, first);
  passthru_cancel(client, first + second + 1000);
  passthru_cancel(client, second);
  REQUIRE(collector_wait(&collector, 2, C_TEST_GENEROUS_WAIT_MS));
  CHECK_INT(collector_record(&collector, 1).route, PASSTHRU_ROUTE_CANCELLED);
  passthru_client_destroy(client);
  CHECK_INT(collector_calls(&collector, 0), 1);
  CHECK_INT(collector_calls(&collector, 1), 1);
  CHECK_INT(collector_total(&collector), 2);

  collector_destroy(&collector);
  passthru_step_destroy(step);
  c_silent_server_stop(silent);
}

#define IN_FLIGHT 24

static void destroy_completes_every_request_in_flight(void) {
  c_silent_server* silent = c_silent_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_call call = c_test_sample_call();
  passthru_client* client = NULL;
  passthru_step* step;
  c_collector collector;
  uint64_t ids[IN_FLIGHT];
  char url[256];
  size_t i;
  REQUIRE(silent != NULL);
  REQUIRE(c_silent_server_url(silent, url, sizeof url));
  step = c_test_step(url, PASSTHRU_POST, 20000);
  collector_init(&collector, IN_FLIGHT);
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  for (i = 0; i < IN_FLIGHT; ++i) {
    REQUIRE(passthru_execute(client, step, &call, collector_on_outcome, collector_slot(&collector, i),
                             &ids[i]) == PASSTHRU_OK);
  }
  /* The step outlives nothing it started: requests hold their own copy. */
  passthru_step_destroy(step);

  passthru_client_destroy(client);
  /* Every outcome arrived before destroy returned, each exactly once. */
  CHECK_INT(collector_total(&collector), IN_FLIGHT);
  for (i = 0; i < IN_FLIGHT; ++i) {
    c_record record = collector_record(&collector, i);
    CHECK_INT(collector_calls(&collector, i), 1);
    CHECK_INT(record.request_id, ids[i]);
    CHECK_INT(record.route, PASSTHRU_ROUTE_CANCELLED);
    CHECK_INT(record.error, PASSTHRU_ERROR_SHUT_DOWN);
    CHECK_STR(record.target, "");
  }
  collector_destroy(&collector);
  c_silent_server_stop(silent);
}

/* ---- Executor: outcomes delivered on the engine's own thread ------------- */

typedef struct executor_task {
  void (*run)(void*);
  void* data;
} executor_task;

#define EXECUTOR_CAPACITY 64

typedef struct test_executor {
  pthread_mutex_t mutex;
  pthread_cond_t changed;
  executor_task queue[EXECUTOR_CAPACITY];
  size_t head, tail; /* tasks queue[head..tail) wait */
  size_t received, ran;
  int stopping;
  pthread_t thread;
} test_executor;

static void executor_submit(void (*task)(void* task_data), void* task_data, void* user_data) {
  test_executor* executor = (test_executor*)user_data;
  pthread_mutex_lock(&executor->mutex);
  REQUIRE(executor->tail < EXECUTOR_CAPACITY);
  executor->queue[executor->tail].run = task;
  executor->queue[executor->tail].data = task_data;
  ++executor->tail;
  ++executor->received;
  pthread_cond_broadcast(&executor->changed);
  pthread_mutex_unlock(&executor->mutex);
}

static void* executor_main(void* argument) {
  test_executor* executor = (test_executor*)argument;
  pthread_mutex_lock(&executor->mutex);
  for (;;) {
    while (executor->head == executor->tail && !executor->stopping) {
      pthread_cond_wait(&executor->changed, &executor->mutex);
    }
    if (executor->head == executor->tail) break;
    {
      executor_task task = executor->queue[executor->head++];
      pthread_mutex_unlock(&executor->mutex);
      task.run(task.data);
      pthread_mutex_lock(&executor->mutex);
      ++executor->ran;
    }
  }
  pthread_mutex_unlock(&executor->mutex);
  return NULL;
}

static void outcomes_run_on_the_executor(void) {
  enum { kAnswered = 6, kInFlight = 5, kTotal = kAnswered + kInFlight };
  c_http_server* server = c_http_server_start();
  c_silent_server* silent = c_silent_server_start();
  passthru_client_options options = c_test_quiet_options();
  passthru_call call = c_test_sample_call();
  passthru_client* client = NULL;
  passthru_step *answered, *hanging;
  test_executor executor;
  c_collector collector;
  char url[256];
  size_t i, received_at_destroy;
  REQUIRE(server != NULL && silent != NULL);
  c_http_server_reply(server, "GET", "/crm", 200, "vip-connect", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  answered = c_test_step(url, PASSTHRU_GET, 20000);
  REQUIRE(c_silent_server_url(silent, url, sizeof url));
  hanging = c_test_step(url, PASSTHRU_GET, 20000);

  memset(&executor, 0, sizeof executor);
  REQUIRE(pthread_mutex_init(&executor.mutex, NULL) == 0);
  REQUIRE(pthread_cond_init(&executor.changed, NULL) == 0);
  REQUIRE(pthread_create(&executor.thread, NULL, executor_main, &executor) == 0);
  collector_init(&collector, kTotal);

  options.executor = executor_submit;
  options.executor_user_data = &executor;
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  for (i = 0; i < kAnswered; ++i) {
    REQUIRE(passthru_execute(client, answered, &call, collector_on_outcome, collector_slot(&collector, i),
                             NULL) == PASSTHRU_OK);
  }
  REQUIRE(collector_wait(&collector, kAnswered, C_TEST_GENEROUS_WAIT_MS));
  for (i = kAnswered; i < kTotal; ++i) {
    REQUIRE(passthru_execute(client, hanging, &call, collector_on_outcome, collector_slot(&collector, i),
                             NULL) == PASSTHRU_OK);
  }
  passthru_client_destroy(client);
  /* The cancelled outcomes were handed to the executor before destroy returned. */
  pthread_mutex_lock(&executor.mutex);
  received_at_destroy = executor.received;
  executor.stopping = 1;
  pthread_cond_broadcast(&executor.changed);
  pthread_mutex_unlock(&executor.mutex);
  CHECK_INT(received_at_destroy, kTotal);
  REQUIRE(pthread_join(executor.thread, NULL) == 0);

  CHECK_INT(executor.received, kTotal);
  CHECK_INT(executor.ran, kTotal);
  CHECK_INT(collector_total(&collector), kTotal);
  for (i = 0; i < kTotal; ++i) {
    c_record record = collector_record(&collector, i);
    CHECK_INT(collector_calls(&collector, i), 1);
    CHECK(pthread_equal(record.thread, executor.thread));
    CHECK_INT(record.route, i < kAnswered ? PASSTHRU_ROUTE_NEXT_APPLET : PASSTHRU_ROUTE_CANCELLED);
  }

  collector_destroy(&collector);
  pthread_cond_destroy(&executor.changed);
  pthread_mutex_destroy(&executor.mutex);
  passthru_step_destroy(answered);
  passthru_step_destroy(hanging);
  c_silent_server_stop(silent);
  c_http_server_stop(server);
}

/* ---- Log callback ---------------------------------------------------------- */

#define LOG_LINES 64

typedef struct log_lines {
  pthread_mutex_t mutex;
  size_t count;
  int bad_level;
  int empty;
  passthru_log_level levels[LOG_LINES];
  char text[LOG_LINES][512];
} log_lines;

static void collect_log_line(passthru_log_level level, const char* message, size_t length, void* user_data) {
  log_lines* lines = (log_lines*)user_data;
  pthread_mutex_lock(&lines->mutex);
  if (level < PASSTHRU_LOG_TRACE || level >= PASSTHRU_LOG_OFF) lines->bad_level = 1;
  if (message == NULL || length == 0) lines->empty = 1;
  if (lines->count < LOG_LINES && message != NULL) {
    size_t n = length < sizeof lines->text[0] - 1 ? length : sizeof lines->text[0] - 1;
    memcpy(lines->text[lines->count], message, n);
    lines->text[lines->count][n] = '\0';
    lines->levels[lines->count] = level;
  }
  ++lines->count;
  pthread_mutex_unlock(&lines->mutex);
}

static void log_lines_reach_the_log_callback(void) {
  c_refused_port* refused = c_refused_port_start();
  c_http_server* server = c_http_server_start();
  passthru_client_options options;
  passthru_call call = c_test_sample_call();
  passthru_client* client = NULL;
  passthru_step *failing, *answered;
  c_collector collector;
  log_lines lines;
  char url[256];
  size_t i;
  int warned = 0, informed = 0;
  REQUIRE(refused != NULL && server != NULL);
  REQUIRE(c_refused_port_url(refused, url, sizeof url));
  failing = c_test_step(url, PASSTHRU_GET, 20000);
  c_http_server_reply(server, "GET", "/crm", 200, "vip-connect", "text/plain");
  REQUIRE(c_http_server_url(server, "/crm", url, sizeof url));
  answered = c_test_step(url, PASSTHRU_GET, 20000);
  memset(&lines, 0, sizeof lines);
  REQUIRE(pthread_mutex_init(&lines.mutex, NULL) == 0);
  collector_init(&collector, 2);

  passthru_client_options_init(&options);
  options.log = collect_log_line;
  options.log_user_data = &lines;
  options.log_level = PASSTHRU_LOG_INFO;
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  call.call_sid = "log-sid-1";
  REQUIRE(passthru_execute(client, failing, &call, collector_on_outcome, collector_slot(&collector, 0),
                           NULL) == PASSTHRU_OK);
  call.call_sid = "log-sid-2";
  REQUIRE(passthru_execute(client, answered, &call, collector_on_outcome, collector_slot(&collector, 1),
                           NULL) == PASSTHRU_OK);
  REQUIRE(collector_wait(&collector, 2, C_TEST_GENEROUS_WAIT_MS));
  passthru_client_destroy(client);

  pthread_mutex_lock(&lines.mutex);
  CHECK(lines.count >= 2);
  CHECK(!lines.bad_level);
  CHECK(!lines.empty);
  for (i = 0; i < lines.count && i < LOG_LINES; ++i) {
    if (strstr(lines.text[i], "call=log-sid-1") != NULL && strstr(lines.text[i], "route=on_error") != NULL) {
      CHECK_INT(lines.levels[i], PASSTHRU_LOG_WARN);
      warned = 1;
    }
    if (strstr(lines.text[i], "call=log-sid-2") != NULL &&
        strstr(lines.text[i], "route=next_applet") != NULL) {
      CHECK_INT(lines.levels[i], PASSTHRU_LOG_INFO);
      informed = 1;
    }
  }
  pthread_mutex_unlock(&lines.mutex);
  CHECK(warned);
  CHECK(informed);

  pthread_mutex_destroy(&lines.mutex);
  collector_destroy(&collector);
  passthru_step_destroy(failing);
  passthru_step_destroy(answered);
  c_http_server_stop(server);
  c_refused_port_stop(refused);
}

const c_test_case c_api_request_tests[] = {
    {"get_sends_the_call_in_the_query", get_sends_the_call_in_the_query},
    {"post_sends_the_call_as_a_form", post_sends_the_call_as_a_form},
    {"a_zeroed_call_is_sent_with_empty_fields", a_zeroed_call_is_sent_with_empty_fields},
    {"strings_are_copied_before_returning", strings_are_copied_before_returning},
    {"answers_route_to_next_applet_flow_and_default", answers_route_to_next_applet_flow_and_default},
    {"a_slow_primary_is_hedged_by_the_fallback", a_slow_primary_is_hedged_by_the_fallback},
    {"server_errors_and_refused_connections_route_on_error",
     server_errors_and_refused_connections_route_on_error},
    {"silence_routes_on_timeout_by_the_deadline", silence_routes_on_timeout_by_the_deadline},
    {"json_answers_hand_variables_back", json_answers_hand_variables_back},
    {"cancel_ends_a_request_cancelled", cancel_ends_a_request_cancelled},
    {"destroy_completes_every_request_in_flight", destroy_completes_every_request_in_flight},
    {"outcomes_run_on_the_executor", outcomes_run_on_the_executor},
    {"log_lines_reach_the_log_callback", log_lines_reach_the_log_callback},
    {NULL, NULL}};
