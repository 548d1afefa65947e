/* Loopback servers for the C API tests: tests/support's C++ servers behind a
 * C interface. Every function catches what the C++ side throws; a server
 * that cannot start is NULL. */
#ifndef PASSTHRU_C_TEST_SERVERS_H
#define PASSTHRU_C_TEST_SERVERS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An HTTP server on 127.0.0.1:0 that records every request (TestHttpServer). */
typedef struct c_http_server c_http_server;

c_http_server* c_http_server_start(void);
void c_http_server_stop(c_http_server* server);
/* Answers `method` `path` with `status`, `body` and `content_type` ("" or
 * NULL: no Content-Type header). Unset paths answer 404. */
void c_http_server_reply(c_http_server* server, const char* method, const char* path, int status,
                         const char* body, const char* content_type);
/* Like c_http_server_reply, but every request to `method` `path` waits for
 * c_http_server_release() before it is answered (at most 60 s, so a failed
 * test cannot wedge the server): a slow customer server, on cue. */
void c_http_server_reply_when_released(c_http_server* server, const char* method, const char* path,
                                       int status, const char* body, const char* content_type);
/* Lets every held and future request to a c_http_server_reply_when_released path be answered. */
void c_http_server_release(c_http_server* server);
/* "http://127.0.0.1:PORT" + path_and_query, into `buffer`; 0 if it does not fit. */
int c_http_server_url(const c_http_server* server, const char* path_and_query, char* buffer, size_t size);
size_t c_http_server_request_count(const c_http_server* server);
/* 1 once at least `n` requests arrived, 0 if `timeout_ms` passed first. */
int c_http_server_wait_for_requests(const c_http_server* server, size_t n, long timeout_ms);
/* A part of request `index` (arrival order): "method", "path", "target",
 * "query", "body", or "header:<Name>". A malloc()ed copy for free(); NULL
 * when there is no such request. */
char* c_http_server_request(const c_http_server* server, size_t index, const char* part);

/* Listens and never accepts: requests get no answer (SilentServer). */
typedef struct c_silent_server c_silent_server;
c_silent_server* c_silent_server_start(void);
void c_silent_server_stop(c_silent_server* server);
int c_silent_server_url(const c_silent_server* server, char* buffer, size_t size);

/* A port where connect() is refused (RefusedPort). */
typedef struct c_refused_port c_refused_port;
c_refused_port* c_refused_port_start(void);
void c_refused_port_stop(c_refused_port* port);
int c_refused_port_url(const c_refused_port* port, char* buffer, size_t size);

/* The percent-decoded value of parameter `name` in "a=1&b=2" (a query or a
 * form body): a malloc()ed copy for free(), NULL when absent. */
char* c_form_value(const char* text, const char* name);

#ifdef __cplusplus
}
#endif

#endif /* PASSTHRU_C_TEST_SERVERS_H */
