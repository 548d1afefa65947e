/* The harness of c_test.h and the runner: `passthru_c_api_tests NAME` runs
 * one test (CTest registers each as c_api.NAME); `--list` names them all. */
#define _POSIX_C_SOURCE 200809L

#include "c_test.h"

#include <errno.h>
#include <time.h>

int c_test_failures = 0;

static void copy_text(char* buffer, size_t size, const char* text) {
  size_t n = text == NULL ? 0 : strlen(text);
  if (n >= size) n = size - 1;
  if (n > 0) memcpy(buffer, text, n);
  buffer[n] = '\0';
}

void c_test_check_str(const char* actual, const char* expected, const char* what, const char* file,
                      int line) {
  if (actual == NULL || strcmp(actual, expected) != 0) {
    fprintf(stderr, "%s:%d: CHECK failed: %s is \"%s\", expected \"%s\"\n", file, line, what,
            actual == NULL ? "(null)" : actual, expected);
    ++c_test_failures;
  }
}

void c_test_check_prefix(const char* text, const char* prefix, const char* what, const char* file, int line) {
  if (text == NULL || strncmp(text, prefix, strlen(prefix)) != 0) {
    fprintf(stderr, "%s:%d: CHECK failed: %s is \"%s\", expected to begin with \"%s\"\n", file, line, what,
            text == NULL ? "(null)" : text, prefix);
    ++c_test_failures;
  }
}

void c_test_check_contains(const char* text, const char* part, const char* what, const char* file, int line) {
  if (text == NULL || strstr(text, part) == NULL) {
    fprintf(stderr, "%s:%d: CHECK failed: %s is \"%s\", expected to contain \"%s\"\n", file, line, what,
            text == NULL ? "(null)" : text, part);
    ++c_test_failures;
  }
}

/* ---- Outcome collector ---------------------------------------------------- */

void collector_init(c_collector* collector, size_t capacity) {
  pthread_condattr_t attributes;
  size_t i;
  REQUIRE(pthread_mutex_init(&collector->mutex, NULL) == 0);
  REQUIRE(pthread_condattr_init(&attributes) == 0);
  REQUIRE(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC) == 0);
  REQUIRE(pthread_cond_init(&collector->changed, &attributes) == 0);
  pthread_condattr_destroy(&attributes);
  collector->total = 0;
  collector->capacity = capacity;
  collector->slots = (c_slot*)calloc(capacity, sizeof(c_slot));
  REQUIRE(collector->slots != NULL);
  for (i = 0; i < capacity; ++i) collector->slots[i].collector = collector;
}

void collector_destroy(c_collector* collector) {
  free(collector->slots);
  pthread_cond_destroy(&collector->changed);
  pthread_mutex_destroy(&collector->mutex);
}

c_slot* collector_slot(c_collector* collector, size_t index) {
  REQUIRE(index < collector->capacity);
  return &collector->slots[index];
}

void collector_on_outcome(const passthru_outcome* outcome, void* user_data) {
  c_slot* slot = (c_slot*)user_data;
  c_collector* collector = slot->collector;
  size_t i;
  pthread_mutex_lock(&collector->mutex);
  if (slot->calls++ == 0) {
    c_record* r = &slot->record;
    r->request_id = outcome->request_id;
    r->route = outcome->route;
    copy_text(r->target, sizeof r->target, outcome->target);
    copy_text(r->reason, sizeof r->reason, outcome->reason);
    r->http_status = outcome->http_status;
    r->error = outcome->error;
    copy_text(r->error_text, sizeof r->error_text, outcome->error_text);
    r->elapsed_us = outcome->elapsed_us;
    r->first_byte_us = outcome->first_byte_us;
    r->transfer_us = outcome->transfer_us;
    r->attempts = outcome->attempts;
    r->bytes_sent = outcome->bytes_sent;
    r->bytes_received = outcome->bytes_received;
    snprintf(r->remote_address, sizeof r->remote_address, "%s", outcome->remote_address);
    r->http_version = outcome->http_version;
    r->background = outcome->background;
    r->answered_by = outcome->answered_by;
    r->hedged = outcome->hedged;
    r->variable_count = outcome->variable_count;
    for (i = 0; i < outcome->variable_count && i < C_TEST_MAX_VARIABLES; ++i) {
      copy_text(r->variable_names[i], sizeof r->variable_names[i], outcome->variables[i].name);
      copy_text(r->variable_values[i], sizeof r->variable_values[i], outcome->variables[i].value);
    }
    copy_text(r->trace_id, sizeof r->trace_id, outcome->trace_id);
    copy_text(r->span_id, sizeof r->span_id, outcome->span_id);
    copy_text(r->content_type, sizeof r->content_type, outcome->content_type);
    copy_text(r->answer, sizeof r->answer, outcome->answer);
    r->answer_length = outcome->answer_length;
    r->thread = pthread_self();
  }
  ++collector->total;
  pthread_cond_broadcast(&collector->changed);
  pthread_mutex_unlock(&collector->mutex);
}

struct timespec c_test_deadline(long timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000L;
  }
  return deadline;
}

int collector_wait(c_collector* collector, size_t n, long timeout_ms) {
  struct timespec deadline;
  int reached;
  deadline = c_test_deadline(timeout_ms);
  pthread_mutex_lock(&collector->mutex);
  while (collector->total < n) {
    if (pthread_cond_timedwait(&collector->changed, &collector->mutex, &deadline) == ETIMEDOUT) break;
  }
  reached = collector->total >= n;
  pthread_mutex_unlock(&collector->mutex);
  return reached;
}

size_t collector_total(c_collector* collector) {
  size_t total;
  pthread_mutex_lock(&collector->mutex);
  total = collector->total;
  pthread_mutex_unlock(&collector->mutex);
  return total;
}

int collector_calls(c_collector* collector, size_t index) {
  int calls;
  pthread_mutex_lock(&collector->mutex);
  calls = collector_slot(collector, index)->calls;
  pthread_mutex_unlock(&collector->mutex);
  return calls;
}

c_record collector_record(c_collector* collector, size_t index) {
  c_record record;
  pthread_mutex_lock(&collector->mutex);
  record = collector_slot(collector, index)->record;
  pthread_mutex_unlock(&collector->mutex);
  return record;
}

/* ---- Helpers -------------------------------------------------------------- */

static void drop_log_line(passthru_log_level level, const char* message, size_t length, void* user_data) {
  (void)level;
  (void)message;
  (void)length;
  (void)user_data;
}

passthru_client_options c_test_quiet_options(void) {
  passthru_client_options options;
  passthru_client_options_init(&options);
  options.log = drop_log_line;
  return options;
}

passthru_call c_test_sample_call(void) {
  passthru_call call;
  memset(&call, 0, sizeof call);
  call.call_sid = "abc123";
  call.call_from = "+919876543210";
  call.call_to = "+914412345678";
  call.direction = PASSTHRU_INCOMING;
  call.current_time = "2024-01-15T10:30:00+05:30";
  call.dial_whom_number = "+918000000000";
  return call;
}

passthru_step* c_test_step(const char* url, passthru_method method, long timeout_ms) {
  static const char* const known[] = {"vip-connect", "standard-queue"};
  passthru_step_config config;
  passthru_step* step = NULL;
  char why[256];
  int status;
  passthru_step_config_init(&config);
  config.url = url;
  config.method = method;
  config.timeout_ms = timeout_ms;
  config.default_next = "main-menu";
  config.on_error = "apology";
  config.on_timeout = "general-queue";
  config.known_applets = known;
  config.known_applet_count = 2;
  status = passthru_step_create(&config, &step, why, sizeof why);
  if (status != PASSTHRU_OK)
    fprintf(stderr, "passthru_step_create(%s): %s: %s\n", url, passthru_strerror(status), why);
  REQUIRE(status == PASSTHRU_OK && step != NULL);
  return step;
}

int64_t c_test_now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- Runner --------------------------------------------------------------- */

static const c_test_case* const all_suites[] = {c_api_basic_tests, c_api_request_tests, c_api_loop_tests,
                                                c_api_observability_tests};

int main(int argc, char** argv) {
  size_t s;
  const c_test_case* test;
  if (argc != 2) {
    fprintf(stderr, "usage: %s TEST | --list\n", argv[0]);
    return 2;
  }
  for (s = 0; s < sizeof all_suites / sizeof all_suites[0]; ++s) {
    for (test = all_suites[s]; test->name != NULL; ++test) {
      if (strcmp(argv[1], "--list") == 0) {
        printf("%s\n", test->name);
      } else if (strcmp(argv[1], test->name) == 0) {
        test->run();
        if (c_test_failures > 0) {
          fprintf(stderr, "%s: %d check(s) failed\n", test->name, c_test_failures);
          return 1;
        }
        printf("%s: passed\n", test->name);
        return 0;
      }
    }
  }
  if (strcmp(argv[1], "--list") == 0) return 0;
  fprintf(stderr, "no test named %s\n", argv[1]);
  return 2;
}
