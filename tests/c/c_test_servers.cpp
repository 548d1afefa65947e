// tests/support's servers behind the C interface of c_test_servers.h.
#include "c_test_servers.h"

#include "raw_socket_peers.hpp"
#include "test_helpers.hpp"
#include "test_http_server.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>

struct c_http_server {
  // The gate of c_http_server_reply_when_released. Declared before the
  // server, so it outlives the handlers waiting on it.
  std::mutex gate_mutex;
  std::condition_variable gate_opened;
  bool released = false;
  // One request per connection: a worker never idles on a connection the
  // client will not reuse, so bursts of concurrent requests do not queue.
  passthru_test::TestHttpServer server{passthru_test::ServerOptions{64, 1}};
};
struct c_silent_server {
  passthru_test::SilentServer server;
};
struct c_refused_port {
  passthru_test::RefusedPort port;
};

namespace {

char* duplicate(const std::string& text) {
  char* copy = static_cast<char*>(std::malloc(text.size() + 1));
  if (copy != nullptr) std::memcpy(copy, text.c_str(), text.size() + 1);
  return copy;
}

int copy_url(const std::string& url, char* buffer, std::size_t size) {
  if (buffer == nullptr || url.size() + 1 > size) return 0;
  std::memcpy(buffer, url.c_str(), url.size() + 1);
  return 1;
}

template <typename T>
T* start(const char* what) {
  try {
    return new T{};
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", what, error.what());
    return nullptr;
  }
}

}  // namespace

extern "C" {

c_http_server* c_http_server_start(void) { return start<c_http_server>("c_http_server_start"); }

void c_http_server_stop(c_http_server* server) {
  if (server != nullptr) c_http_server_release(server);  // held handlers must not hold up the stop
  delete server;
}

void c_http_server_reply(c_http_server* server, const char* method, const char* path, int status,
                         const char* body, const char* content_type) {
  server->server.reply(method, path, status, body == nullptr ? "" : body,
                       content_type == nullptr ? "" : content_type);
}

void c_http_server_reply_when_released(c_http_server* server, const char* method, const char* path,
                                       int status, const char* body, const char* content_type) {
  server->server.on(method, path,
                    [server, status, body = std::string(body == nullptr ? "" : body),
                     content_type = std::string(content_type == nullptr ? "" : content_type)](
                        const httplib::Request&, httplib::Response& res) {
                      {
                        std::unique_lock<std::mutex> lock(server->gate_mutex);
                        server->gate_opened.wait_for(lock, std::chrono::seconds(60),
                                                     [server] { return server->released; });
                      }
                      res.status = status;
                      res.body = body;
                      if (!content_type.empty()) res.set_header("Content-Type", content_type);
                    });
}

void c_http_server_release(c_http_server* server) {
  {
    std::lock_guard<std::mutex> lock(server->gate_mutex);
    server->released = true;
  }
  server->gate_opened.notify_all();
}

int c_http_server_url(const c_http_server* server, const char* path_and_query, char* buffer,
                      std::size_t size) {
  return copy_url(server->server.url(path_and_query == nullptr ? "/" : path_and_query), buffer, size);
}

std::size_t c_http_server_request_count(const c_http_server* server) {
  return server->server.request_count();
}

int c_http_server_wait_for_requests(const c_http_server* server, std::size_t n, long timeout_ms) {
  return server->server.wait_for_requests(n, std::chrono::milliseconds(timeout_ms)) ? 1 : 0;
}

char* c_http_server_request(const c_http_server* server, std::size_t index, const char* part) {
  const auto requests = server->server.requests();
  if (index >= requests.size()) return nullptr;
  const passthru_test::RecordedRequest& r = requests[index];
  const std::string which = part;
  if (which == "method") return duplicate(r.method);
  if (which == "path") return duplicate(r.path);
  if (which == "target") return duplicate(r.target);
  if (which == "query") return duplicate(r.query());
  if (which == "body") return duplicate(r.body);
  if (which.rfind("header:", 0) == 0) {
    const std::string name = which.substr(7);
    return r.has_header(name) ? duplicate(r.header(name)) : nullptr;
  }
  return nullptr;
}

c_silent_server* c_silent_server_start(void) { return start<c_silent_server>("c_silent_server_start"); }

void c_silent_server_stop(c_silent_server* server) { delete server; }

int c_silent_server_url(const c_silent_server* server, char* buffer, std::size_t size) {
  return copy_url(server->server.url("/"), buffer, size);
}

c_refused_port* c_refused_port_start(void) { return start<c_refused_port>("c_refused_port_start"); }

void c_refused_port_stop(c_refused_port* port) { delete port; }

int c_refused_port_url(const c_refused_port* port, char* buffer, std::size_t size) {
  return copy_url(port->port.url("/"), buffer, size);
}

char* c_form_value(const char* text, const char* name) {
  const auto value = passthru_test::form_value(text, name);
  return value ? duplicate(*value) : nullptr;
}

}  // extern "C"
