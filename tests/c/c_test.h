/* A small test harness in C99 for the C API: checks, an outcome collector
 * that counts callbacks per request, and the test registry. */
#ifndef PASSTHRU_C_TEST_H
#define PASSTHRU_C_TEST_H

#include <passthru/passthru.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a test waits for something that should take milliseconds:
 * generous, so a loaded machine does not fail a correct library. */
#define C_TEST_GENEROUS_WAIT_MS 30000L

extern int c_test_failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++c_test_failures;                                                       \
    }                                                                          \
  } while (0)

/* Ends the test at once: what follows depends on it. */
#define REQUIRE(cond)                                                            \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

#define CHECK_INT(actual, expected)                                                                  \
  do {                                                                                               \
    long long c_test_a_ = (long long)(actual), c_test_e_ = (long long)(expected);                    \
    if (c_test_a_ != c_test_e_) {                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #actual, \
              #expected, c_test_a_, c_test_e_);                                                      \
      ++c_test_failures;                                                                             \
    }                                                                                                \
  } while (0)

#define CHECK_STR(actual, expected) c_test_check_str((actual), (expected), #actual, __FILE__, __LINE__)
/* `text` begins with `prefix`. */
#define CHECK_PREFIX(text, prefix) c_test_check_prefix((text), (prefix), #text, __FILE__, __LINE__)
/* `text` contains `part`. */
#define CHECK_CONTAINS(text, part) c_test_check_contains((text), (part), #text, __FILE__, __LINE__)

void c_test_check_str(const char* actual, const char* expected, const char* what, const char* file, int line);
void c_test_check_prefix(const char* text, const char* prefix, const char* what, const char* file, int line);
void c_test_check_contains(const char* text, const char* part, const char* what, const char* file, int line);

/* ---- Outcome collector ---------------------------------------------------- */

#define C_TEST_MAX_VARIABLES 8

/* One outcome, copied out of the callback (its strings die with it). */
typedef struct c_record {
  uint64_t request_id;
  passthru_route route;
  char target[256];
  char reason[512];
  int http_status;
  int error;
  char error_text[128];
  int64_t elapsed_us;
  int64_t first_byte_us;
  int64_t transfer_us;
  int attempts;
  uint64_t bytes_sent;
  uint64_t bytes_received;
  char remote_address[64];
  size_t variable_count;
  char variable_names[C_TEST_MAX_VARIABLES][64];
  char variable_values[C_TEST_MAX_VARIABLES][64];
  char trace_id[64];
  char span_id[32];
  char content_type[128];
  char answer[256]; /* the first bytes of the answer, NUL-terminated */
  size_t answer_length;
  int http_version;
  int background;
  passthru_endpoint answered_by;
  int hedged;
  pthread_t thread; /* where the callback ran */
} c_record;

struct c_collector;

/* The user_data of one request: its callbacks are counted, so a request
 * answered twice or never shows. */
typedef struct c_slot {
  struct c_collector* collector;
  int calls;
  c_record record;
} c_slot;

typedef struct c_collector {
  pthread_mutex_t mutex;
  pthread_cond_t changed;
  size_t total; /* callbacks so far, repeats included */
  size_t capacity;
  c_slot* slots;
} c_collector;

void collector_init(c_collector* collector, size_t capacity);
void collector_destroy(c_collector* collector);
/* The user_data for request `index` (< capacity). */
c_slot* collector_slot(c_collector* collector, size_t index);
/* The passthru_outcome_fn: records into the c_slot given as user_data. */
void collector_on_outcome(const passthru_outcome* outcome, void* user_data);
/* 1 once `n` callbacks have run in all, 0 if `timeout_ms` passed first. */
int collector_wait(c_collector* collector, size_t n, long timeout_ms);
/** CLOCK_MONOTONIC now + timeout_ms, for pthread_cond_timedwait on a monotonic condition. */
struct timespec c_test_deadline(long timeout_ms);
size_t collector_total(c_collector* collector);
/* Calls of request `index`'s callback so far. */
int collector_calls(c_collector* collector, size_t index);
/* A copy of request `index`'s record, taken under the lock. */
c_record collector_record(c_collector* collector, size_t index);

/* ---- Helpers -------------------------------------------------------------- */

/* Client options whose log lines are dropped (tests stay quiet). */
passthru_client_options c_test_quiet_options(void);
/* The guide's sample call: abc123, +919876543210 -> +914412345678, incoming. */
passthru_call c_test_sample_call(void);
/* A step for `url`: default_next "main-menu", on_error "apology",
 * on_timeout "general-queue", known applets vip-connect and standard-queue. */
passthru_step* c_test_step(const char* url, passthru_method method, long timeout_ms);
/* Milliseconds on CLOCK_MONOTONIC. */
int64_t c_test_now_ms(void);

/* ---- Registry ------------------------------------------------------------- */

typedef struct c_test_case {
  const char* name;
  void (*run)(void);
} c_test_case;

/* Each test file's cases, ended by {NULL, NULL}. */
extern const c_test_case c_api_basic_tests[];
extern const c_test_case c_api_request_tests[];
extern const c_test_case c_api_loop_tests[];
extern const c_test_case c_api_observability_tests[];

#endif /* PASSTHRU_C_TEST_H */
