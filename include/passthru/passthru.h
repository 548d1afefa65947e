/* passthru's C API: the Passthru step for engines written in C (FreeSWITCH,
 * Asterisk and Kamailio modules, home-grown switches). C99; no C++ exception
 * ever crosses it. Link with passthru::passthru (CMake) or `pkg-config
 * passthru`.
 *
 *   passthru_step_config config;
 *   passthru_step_config_init(&config);
 *   config.url = "https://crm.example.com/route";
 *   config.default_next = "main-menu";
 *   passthru_step *step = NULL;
 *   char why[256];
 *   if (passthru_step_create(&config, &step, why, sizeof why) != PASSTHRU_OK) ...
 *
 *   passthru_client *client = NULL;
 *   passthru_client_create(NULL, &client);          (its own thread)
 *   passthru_call call = {0};
 *   call.call_sid = "abc123";
 *   passthru_execute(client, step, &call, on_outcome, my_call, NULL);
 *
 * Strings handed in are copied before the function returns; strings handed
 * out (in a passthru_outcome or a passthru_request_info) live until the
 * callback returns.
 */
#ifndef PASSTHRU_PASSTHRU_H
#define PASSTHRU_PASSTHRU_H

#include <passthru/export.hpp> /* PASSTHRU_API; plain preprocessor, C-safe */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes --------------------------------------------------------- */

/** What a passthru_* function returns. */
typedef enum passthru_status {
  PASSTHRU_OK = 0,
  PASSTHRU_EINVAL = 1,   /**< A required argument is NULL or out of range. */
  PASSTHRU_ECONFIG = 2,  /**< The step configuration is invalid; the error text names the field. */
  PASSTHRU_ENOMEM = 3,   /**< Out of memory. */
  PASSTHRU_EBUSY = 4,    /**< The loop already drives a client. */
  PASSTHRU_EINTERNAL = 5 /**< Anything else the library refused; never an escaped exception. */
} passthru_status;

/** A short English description of a passthru_status; never NULL. */
PASSTHRU_API const char* passthru_strerror(int status);

/** The library's version, "MAJOR.MINOR.PATCH". */
PASSTHRU_API const char* passthru_version(void);

/* ---- Step configuration -------------------------------------------------- */

typedef enum passthru_method { PASSTHRU_GET = 0, PASSTHRU_POST = 1 } passthru_method;

/** The HTTP version a step asks for (passthru::HttpVersion). */
typedef enum passthru_http_version {
  PASSTHRU_HTTP_AUTOMATIC = 0, /**< HTTP/2 over https:// when the server offers it, else HTTP/1.1. */
  PASSTHRU_HTTP_1_1 = 1,       /**< HTTP/1.1 only. */
  PASSTHRU_HTTP_2 = 2          /**< As automatic; refused for http:// or a libcurl without HTTP/2. */
} passthru_http_version;

/** Which of a step's URLs answered (passthru::Endpoint). */
typedef enum passthru_endpoint {
  PASSTHRU_ENDPOINT_NONE = 0,    /**< No HTTP answer arrived. */
  PASSTHRU_ENDPOINT_PRIMARY = 1, /**< The step's url. */
  PASSTHRU_ENDPOINT_FALLBACK = 2 /**< The step's fallback_url. */
} passthru_endpoint;

/** A name/value pair: a header, a custom call parameter, a variable. */
typedef struct passthru_param {
  const char* name;
  const char* value;
} passthru_param;

/** One Passthru applet's settings; the C form of passthru::StepOptions.
 *  Always start from passthru_step_config_init(), which sets the defaults:
 *  fields added in later versions then keep their defaults too. */
typedef struct passthru_step_config {
  const char* url;        /**< Required: absolute http:// or https:// URL. */
  passthru_method method; /**< PASSTHRU_GET (default) or PASSTHRU_POST. */
  long timeout_ms;        /**< From execute to outcome; default 15000, at most 3600000. */

  const char* default_next;         /**< Required: 2xx with an empty or unreadable body. */
  const char* on_error;             /**< NULL: default_next. */
  const char* on_timeout;           /**< NULL: on_error, then default_next. */
  const char* const* known_applets; /**< Applet names an answer may name; none: any well-formed name. */
  size_t known_applet_count;
  const char* const* external_flow_hosts; /**< Hosts a flow URL may name ("*.example.com"); none: any. */
  size_t external_flow_host_count;

  const passthru_param* headers; /**< Extra request headers. */
  size_t header_count;
  int quote_digits;        /**< Non-zero: digits sent as "1234" (with the quotes). */
  size_t max_answer_bytes; /**< Default 65536; larger answers route to on-error. */
  const char* name;        /**< Label in logs; NULL: the URL's host. */

  int tls_min_version_1_3;             /**< Non-zero: refuse TLS 1.2 too. Default: TLS 1.2 minimum. */
  const char* tls_ca_file;             /**< PEM CA bundle replacing the system store. */
  const char* tls_ca_dir;              /**< Hashed CA directory replacing the system store. */
  const char* tls_client_cert_file;    /**< Mutual TLS certificate (PEM). */
  const char* tls_client_key_file;     /**< Its key; NULL: inside the certificate file. */
  const char* tls_client_key_password; /**< Never logged. */
  const char* tls_pinned_public_key;   /**< "sha256//<base64>[;...]" or a key file. */
  int tls_verify_peer;                 /**< Default 1. */
  int tls_verify_host;                 /**< Default 1. */

  int allow_plain_http;            /**< Non-zero: allow http:// to non-loopback hosts. Default 0. */
  int max_redirects;               /**< Default 0 (not followed); at most 5, https:// only. */
  const char* const* signing_keys; /**< HMAC-SHA256 keys (one, or two while rotating), >= 32 bytes. */
  size_t signing_key_count;
  const char* const* secret_names; /**< Parameters and headers whose values are never logged. */
  size_t secret_name_count;
  passthru_http_version http_version; /**< Default PASSTHRU_HTTP_AUTOMATIC. */
  /** Non-zero: fire and forget (the call-logging case). The outcome comes at
   *  once, PASSTHRU_ROUTE_DEFAULT with `background` set, and the request goes
   *  on without the call. Default 0. */
  int fire_and_forget;
  /* Attempts within the timeout (StepOptions::fallback_url and retries); zero: none. */
  const char* fallback_url; /**< Validated like url; NULL: no fallback. */
  long primary_timeout_ms;  /**< The primary's share of timeout_ms with a fallback; 0: half. */
  int retries;              /**< Retries of a failure before anything was sent; at most 5. */
  int retry_after_send;     /**< Non-zero (GET only): also retry 5xx, resets, a share run out. */
  /* Per-attempt limits (StepOptions::connect_timeout, read_timeout); 0: the
   * deadline only. The url's fragment may set them ("#ct=2000&rt=5000"). */
  long connect_timeout_ms; /**< Connecting (DNS, TCP, TLS); a connect run out is retried. */
  long read_timeout_ms;    /**< The answer: an attempt ends connect + read after its start. */
  /** Hedging (StepOptions::hedge_after): past this, the fallback is sent
   *  alongside a primary that has not answered; the first answer wins and
   *  the other is cancelled. Needs fallback_url; excludes primary_timeout_ms.
   *  0 (the default): none. */
  long hedge_after_ms;
} passthru_step_config;

/** Fills `config` with the defaults (and NULL/0 everywhere else). */
PASSTHRU_API void passthru_step_config_init(passthru_step_config* config);

/** A validated, immutable step: build once per flow, use from any thread. */
typedef struct passthru_step passthru_step;

/** Validates `config` and creates a step. On PASSTHRU_ECONFIG, `error` (if
 *  not NULL) receives "field: what is wrong", the field named as in
 *  passthru_step_config ("url", "timeout_ms", "default_next",
 *  "headers[1].value", "known_applets[0]"), truncated to `error_size` and
 *  always NUL-terminated. */
PASSTHRU_API int passthru_step_create(const passthru_step_config* config, passthru_step** step, char* error,
                                      size_t error_size);

/** Frees a step. Requests already started with it are unaffected. NULL is ignored. */
PASSTHRU_API void passthru_step_destroy(passthru_step* step);

/* ---- Call context ---------------------------------------------------------- */

typedef enum passthru_direction { PASSTHRU_INCOMING = 0, PASSTHRU_OUTGOING = 1 } passthru_direction;

/** One call's data. A zeroed struct is valid: NULL strings are sent empty. */
typedef struct passthru_call {
  const char* call_sid;
  const char* call_from;
  const char* call_to;
  passthru_direction direction;
  const char* current_time; /**< ISO 8601; NULL or "": stamped when the request is sent. */
  const char* dial_whom_number;
  const char* digits;           /**< NULL: no `digits` parameter. */
  const passthru_param* custom; /**< Extra parameters, in order. */
  size_t custom_count;
  /** The engine's W3C trace context ("00-<32 hex>-<16 hex>-01"). When valid,
   *  the request joins that trace with a new span id; NULL, "" or invalid: a
   *  new trace. */
  const char* traceparent;
  const char* tracestate; /**< W3C tracestate, sent when traceparent is valid; NULL or "": none. */
} passthru_call;

/* ---- Outcome --------------------------------------------------------------- */

typedef enum passthru_route {
  PASSTHRU_ROUTE_NEXT_APPLET = 0,   /**< 2xx naming an applet: continue at target. */
  PASSTHRU_ROUTE_EXTERNAL_FLOW = 1, /**< 2xx with a flow URL: continue at target. */
  PASSTHRU_ROUTE_DEFAULT = 2,       /**< 2xx empty, or data not understood. */
  PASSTHRU_ROUTE_ON_ERROR = 3,      /**< 3xx/4xx/5xx or a transport failure. */
  PASSTHRU_ROUTE_ON_TIMEOUT = 4,    /**< No answer within the timeout. */
  PASSTHRU_ROUTE_CANCELLED = 5      /**< Cancelled, or the client was destroyed. */
} passthru_route;

/** "next_applet", "external_flow", "default", "on_error", "on_timeout", "cancelled". */
PASSTHRU_API const char* passthru_route_name(passthru_route route);

/** Why a request did not end with an understood answer: passthru_outcome's
 *  `error`, the values of passthru::Errc. */
typedef enum passthru_error {
  PASSTHRU_ERROR_NONE = 0,                  /**< The answer was understood. */
  PASSTHRU_ERROR_TIMED_OUT = 1,             /**< No answer within the step's timeout. */
  PASSTHRU_ERROR_CANCELLED = 2,             /**< passthru_cancel(). */
  PASSTHRU_ERROR_SHUT_DOWN = 3,             /**< The client was destroyed with the request in flight. */
  PASSTHRU_ERROR_INVALID_REQUEST = 4,       /**< The call could not be turned into a request. */
  PASSTHRU_ERROR_DNS_FAILED = 5,            /**< The host name did not resolve. */
  PASSTHRU_ERROR_CONNECT_FAILED = 6,        /**< Connection refused or not made. */
  PASSTHRU_ERROR_TLS_FAILED = 7,            /**< TLS handshake or certificate check failed. */
  PASSTHRU_ERROR_SEND_FAILED = 8,           /**< The connection broke while sending. */
  PASSTHRU_ERROR_RECEIVE_FAILED = 9,        /**< The connection broke or spoke non-HTTP while answering. */
  PASSTHRU_ERROR_ANSWER_TOO_LARGE = 10,     /**< Over max_answer_bytes. */
  PASSTHRU_ERROR_HTTP_STATUS = 11,          /**< A 3xx/4xx/5xx status. */
  PASSTHRU_ERROR_UNEXPECTED_ANSWER = 12,    /**< A 2xx answer the router could not understand. */
  PASSTHRU_ERROR_EXTERNAL_FLOW_DENIED = 13, /**< A flow URL whose host is not allowed. */
  PASSTHRU_ERROR_TRANSPORT_FAILED = 14,     /**< Any other transport failure (see reason). */
  PASSTHRU_ERROR_BLOCKED_DESTINATION = 15,  /**< block_private_destinations refused the address. */
  PASSTHRU_ERROR_CIRCUIT_OPEN = 16,         /**< The origin's circuit breaker is open: nothing was sent. */
  PASSTHRU_ERROR_BACKGROUND_FULL = 17 /**< A fire-and-forget request found max_background busy: not sent. */
} passthru_error;

/** One request's result. Every pointer in it is valid until the callback returns. */
typedef struct passthru_outcome {
  uint64_t request_id;
  passthru_route route;
  const char* target;              /**< Applet or flow URL to continue at ("" only when cancelled). */
  const char* reason;              /**< What happened, for a person. */
  int http_status;                 /**< 0 when no answer arrived. */
  int error;                       /**< A passthru_error: PASSTHRU_ERROR_NONE (0) when understood. */
  const char* error_text;          /**< "" when error is 0, else its description. */
  int64_t elapsed_us;              /**< From passthru_execute() to this outcome. */
  const passthru_param* variables; /**< From a JSON answer's "variables" object. */
  size_t variable_count;
  /* Where the time went (see passthru::Timings); a phase that did not happen is 0. */
  int64_t queued_us;          /**< Waiting for a slot under max_in_flight. */
  int64_t dns_us;             /**< Name resolution. */
  int64_t connect_us;         /**< TCP connect, after DNS. */
  int64_t tls_us;             /**< TLS handshake, after connect. */
  int64_t first_byte_us;      /**< From the request's start to the answer's first byte. */
  int64_t transfer_us;        /**< From the request's start to its end. */
  int attempts;               /**< HTTP attempts started: 0 (never sent), more with retries or a fallback. */
  uint64_t bytes_sent;        /**< Request head and body. */
  uint64_t bytes_received;    /**< Answer heads and body. */
  const char* remote_address; /**< "127.0.0.1:8080", "[::1]:8443"; "" when none. */
  int connection_reused;      /**< Non-zero over a kept-alive connection. */
  const char* trace_id;       /**< The W3C trace id the request carried (32 lower-case hex digits). */
  const char* span_id;        /**< The span id sent in traceparent (16 hex digits). */
  const char* content_type;   /**< The answer's Content-Type as sent; "" when none. */
  /** The answer's body as received (at most max_answer_bytes), NUL-terminated
   *  but possibly holding NULs itself: use answer_length. Not redacted. */
  const char* answer;
  size_t answer_length;
  int http_version; /**< 11 for HTTP/1.1, 20 for HTTP/2, 10 for HTTP/1.0; 0 when no answer arrived. */
  int background;   /**< Non-zero: a fire-and-forget step's immediate outcome. */
  passthru_endpoint answered_by; /**< Which URL's HTTP answer routed the call; NONE when none came. */
  int hedged;                    /**< Non-zero: the fallback was sent alongside the primary (hedge_after_ms). */
} passthru_outcome;

/** Called exactly once per request accepted by passthru_execute(). Must not
 *  block; must not destroy the client it came from. */
typedef void (*passthru_outcome_fn)(const passthru_outcome* outcome, void* user_data);

/* ---- Client ---------------------------------------------------------------- */

typedef enum passthru_log_level {
  PASSTHRU_LOG_TRACE = 0,
  PASSTHRU_LOG_DEBUG = 1,
  PASSTHRU_LOG_INFO = 2,
  PASSTHRU_LOG_WARN = 3,
  PASSTHRU_LOG_ERROR = 4,
  PASSTHRU_LOG_OFF = 5
} passthru_log_level;

/** Receives a log line (not NUL-terminated: use `length`). */
typedef void (*passthru_log_fn)(passthru_log_level level, const char* message, size_t length,
                                void* user_data);

/** Runs `task(task_data)` exactly once, typically on the engine's own thread. */
typedef void (*passthru_executor_fn)(void (*task)(void* task_data), void* task_data, void* user_data);

/* ---- Hooks ------------------------------------------------------------------ */

/** One request as the hooks see it; the C form of passthru::RequestInfo.
 *  Secrets are already replaced by "***". */
typedef struct passthru_request_info {
  uint64_t request_id; /**< Same id as passthru_execute()'s and the outcome's. */
  const char* call_sid;
  const char* step; /**< The step's name, or the URL's host. */
  passthru_method method;
  const char* url;            /**< With a GET's query string; "" if the request was never built. */
  const char* const* headers; /**< Header lines sent besides libcurl's own ("User-Agent: passthru/0.1.0"). */
  size_t header_count;
  const char* body;     /**< A POST's form body; "" for GET. */
  const char* trace_id; /**< The W3C trace id this request carries. */
  int64_t timeout_ms;   /**< The step's timeout. */
} passthru_request_info;

/** Client-wide hooks (passthru_client_options.hooks); the C form of
 *  passthru::RequestHooks. Each may be NULL. They run where outcome callbacks
 *  run (the driver thread, or the executor) and, for one request, in this
 *  order: on_start, on_waiting, on_end, then the request's own outcome
 *  callback. They must not block. A zeroed struct: no hooks. */
typedef struct passthru_hooks {
  /** The request is built and about to be sent (or queued for a slot). */
  void (*on_start)(const passthru_request_info* request, void* user_data);
  /** No outcome yet `waited_ms` after passthru_execute(): the moment for hold
   *  music. At most once per request, never after on_end. */
  void (*on_waiting)(const passthru_request_info* request, int64_t waited_ms, void* user_data);
  /** The outcome is decided; called just before the outcome callback, with the same outcome. */
  void (*on_end)(const passthru_request_info* request, const passthru_outcome* outcome, void* user_data);
  /** When on_waiting fires; 0 (the default): never. Not negative. */
  int64_t waiting_after_ms;
  void* user_data; /**< Passed to every hook. */
} passthru_hooks;

/** Per-origin circuit breakers (passthru_client_options.circuit_breaker);
 *  the C form of passthru::CircuitBreakerOptions, whose comment says how they
 *  work. Off unless consecutive_failures or failure_ratio is set. */
typedef struct passthru_circuit_breaker {
  size_t consecutive_failures; /**< Failures in a row that open it; 0: rule off (default). */
  double failure_ratio;        /**< Share of failures in a window that opens it, 0 to 1; 0: rule off. */
  int64_t window_ms;           /**< The failure_ratio window; default 10000, > 0. */
  size_t minimum_requests;     /**< Requests a window needs before failure_ratio is judged; default 20. */
  int64_t open_for_ms;         /**< How long it refuses before probing; default 5000, > 0. */
  size_t probes;               /**< Requests let through when half-open; all must succeed; default 3. */
} passthru_circuit_breaker;

/** Client-wide settings; start from passthru_client_options_init(). */
typedef struct passthru_client_options {
  passthru_log_fn log; /**< NULL: standard error. */
  void* log_user_data;
  passthru_log_level log_level;            /**< Default PASSTHRU_LOG_WARN. */
  const char* user_agent;                  /**< NULL: "passthru/<version>". */
  size_t max_in_flight;                    /**< Default 4096; 0: no limit. */
  long connection_max_idle_s;              /**< Default 4. */
  int has_utc_offset;                      /**< Non-zero: stamp CurrentTime at utc_offset_minutes. */
  int utc_offset_minutes;                  /**< Default: the process's local time zone. */
  int block_private_destinations;          /**< Non-zero: the SSRF guard. Default 0. */
  const char* const* allowed_destinations; /**< CIDRs exempted from the guard. */
  size_t allowed_destination_count;
  passthru_executor_fn executor; /**< NULL: callbacks run on the driver thread. */
  void* executor_user_data;
  /** Level of the line logged per request that ended well and in time;
   *  default PASSTHRU_LOG_INFO. Errors, timeouts and slow answers log at warn. */
  passthru_log_level request_log_level;
  int64_t slow_answer_threshold_ms; /**< Slower answers log at warn and count as slow; default 3000, > 0. */
  int send_traceparent;             /**< Non-zero (the default): send W3C traceparent and tracestate. */
  passthru_hooks hooks;             /**< Zeroed: no hooks. */
  passthru_circuit_breaker circuit_breaker; /**< Off by default. */
  size_t max_per_origin; /**< Requests running at once to one origin; default 0: no limit. */
  size_t max_background; /**< Fire-and-forget requests in the background at once; 0: the default, 1024. */
} passthru_client_options;

/** Fills `options` with the defaults. */
PASSTHRU_API void passthru_client_options_init(passthru_client_options* options);

typedef struct passthru_client passthru_client;

/** Creates a client with its own driver thread. `options` may be NULL. */
PASSTHRU_API int passthru_client_create(const passthru_client_options* options, passthru_client** client);

/** Completes every request in flight with PASSTHRU_ROUTE_CANCELLED, then
 *  frees the client. Not from inside an outcome callback; a loop-driven
 *  client on its loop thread. NULL is ignored. */
PASSTHRU_API void passthru_client_destroy(passthru_client* client);

/** Starts the step's request for `call` and returns at once; `on_outcome`
 *  runs exactly once, by the step's timeout at the latest, never before this
 *  returns. Any thread. `request_id` (may be NULL) receives the id to cancel. */
PASSTHRU_API int passthru_execute(passthru_client* client, const passthru_step* step,
                                  const passthru_call* call, passthru_outcome_fn on_outcome, void* user_data,
                                  uint64_t* request_id);

/** Asks for the request to end with PASSTHRU_ROUTE_CANCELLED; nothing
 *  happens if it has already completed. Any thread. */
PASSTHRU_API void passthru_cancel(passthru_client* client, uint64_t request_id);

/** The client's metrics in the Prometheus text format (version 0.0.4, to be
 *  served as "text/plain; version=0.0.4"), metric names starting with
 *  `prefix` (NULL: "passthru"; must match [a-zA-Z_:][a-zA-Z0-9_:]*). A
 *  malloc()ed, NUL-terminated string to release with passthru_free(); NULL
 *  if `client` is NULL, the prefix is invalid, or memory ran out. Any
 *  thread; it takes a lock and allocates, so call it at a scrape's pace. */
PASSTHRU_API char* passthru_client_metrics_text(const passthru_client* client, const char* prefix);

/** Frees what the library allocated for the caller (passthru_client_metrics_text()).
 *  NULL is ignored. */
PASSTHRU_API void passthru_free(void* memory);

/* ---- Driving the client from the engine's event loop ---------------------- */

enum {
  PASSTHRU_WATCH_NONE = 0, /**< Stop watching the socket (always before it is closed). */
  PASSTHRU_WATCH_READ = 1,
  PASSTHRU_WATCH_WRITE = 2,
  PASSTHRU_WATCH_READ_WRITE = 3
};

enum { PASSTHRU_READY_READ = 1, PASSTHRU_READY_WRITE = 2, PASSTHRU_READY_ERROR = 4 };

/** What an engine's loop implements; the C form of passthru::EventLoop (see
 *  <passthru/event_loop.hpp> for the full contract). All but `wake` are
 *  called on the loop thread, often from inside a passthru_loop_* call, and
 *  must not call passthru_loop_* back synchronously. */
typedef struct passthru_loop_hooks {
  void* user_data;
  /** Watch `fd` for PASSTHRU_WATCH_* readiness (NONE: stop). */
  void (*watch_socket)(void* user_data, int fd, int what);
  /** Call passthru_loop_timer_expired() once, `delay_us` microseconds from
   *  now (round up), replacing any armed timer. 0: on the next turn. */
  void (*arm_timer)(void* user_data, int64_t delay_us);
  /** Forget the armed timer. */
  void (*cancel_timer)(void* user_data);
  /** Any thread: call passthru_loop_woken() soon on the loop thread. */
  void (*wake)(void* user_data);
} passthru_loop_hooks;

/** Creates a client driven by the engine's loop through `hooks` (copied);
 *  it starts no thread. `options` may be NULL. */
PASSTHRU_API int passthru_client_create_on_loop(const passthru_loop_hooks* hooks,
                                                const passthru_client_options* options,
                                                passthru_client** client);

/** Loop thread: `fd` is ready; `events` is a mask of PASSTHRU_READY_*. */
PASSTHRU_API void passthru_loop_socket_ready(passthru_client* client, int fd, int events);
/** Loop thread: the armed timer has fired. */
PASSTHRU_API void passthru_loop_timer_expired(passthru_client* client);
/** Loop thread: the wake-up asked for by hooks->wake. */
PASSTHRU_API void passthru_loop_woken(passthru_client* client);

#ifdef __cplusplus
}
#endif

#endif /* PASSTHRU_PASSTHRU_H */
