// An in-process HTTP server on 127.0.0.1:0 that records every request it receives.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace passthru_test {

/// One request as the server received it.
struct RecordedRequest {
  std::string method;        ///< "GET", "POST", ...
  std::string path;          ///< The path as httplib decoded it, without the query.
  std::string target;        ///< The request target exactly as on the wire ("/crm?a=1").
  std::string body;          ///< The raw body.
  httplib::Headers headers;  ///< Case-insensitive multimap.
  std::string remote_addr;
  int remote_port = -1;  ///< The peer's port: one per client connection.

  /// The raw query string of the target (after "?"), empty when none.
  std::string query() const;
  /// The first value of header `name`, or "" when absent.
  std::string header(const std::string& name) const;
  bool has_header(const std::string& name) const { return headers.count(name) > 0; }
};

/// Settings of a TestHttpServer.
struct ServerOptions {
  /// Worker threads; each serves one connection at a time.
  std::size_t threads = 64;
  /// Requests served on one connection before the server closes it. 1 answers
  /// every request with "Connection: close", which keeps a worker from idling
  /// on a connection its client will not use again.
  std::size_t keep_alive_max_count = 100;
  /// How long a worker waits for the next request on an idle connection.
  std::chrono::seconds keep_alive_timeout{2};
  /// Listen backlog (httplib's compiled default is 5, too small for bursts).
  int backlog = 4096;
  /// Keep every request for requests(); a soak turns this off so the
  /// server's own memory does not grow with the request count.
  bool record_requests = true;
};

/// An httplib::Server on its own thread, bound to 127.0.0.1 on a free port.
///
/// Handlers are set per method and path (the decoded path, without the query);
/// a request with no handler is answered 404. Handlers may be changed while the
/// server runs. Every request is recorded before its handler runs.
///
/// Destroy clients before their server: httplib's workers wait up to
/// keep_alive_timeout on connections a client still holds open.
class TestHttpServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  explicit TestHttpServer(ServerOptions options = {});
  ~TestHttpServer();

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  int port() const noexcept { return port_; }
  /// "http://127.0.0.1:PORT" + path_and_query.
  std::string url(std::string_view path_and_query = "/") const;

  /// Sets the handler for `method` ("GET", "POST") and `path` ("/crm").
  void on(const std::string& method, const std::string& path, Handler handler);
  /// Answers `method` `path` with a fixed status, body and Content-Type
  /// (no Content-Type header when `content_type` is empty).
  void reply(const std::string& method, const std::string& path, int status, std::string body = "",
             std::string content_type = "text/plain");

  /// Every request received so far, in arrival order.
  std::vector<RecordedRequest> requests() const;
  /// The requests received for `path` (decoded, without query).
  std::vector<RecordedRequest> requests_to(const std::string& path) const;
  std::size_t request_count() const;
  /// Distinct client ports seen: the number of connections that carried requests.
  std::set<int> remote_ports() const;

  /// Waits until at least `n` requests have arrived; false on timeout.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

 private:
  class Server;

  void handle(const httplib::Request& req, httplib::Response& res);

  std::unique_ptr<Server> server_;
  int port_ = -1;
  std::thread thread_;

  mutable std::mutex mutex_;
  mutable std::condition_variable arrived_;
  std::vector<RecordedRequest> requests_;
  bool record_requests_ = true;
  std::size_t unrecorded_ = 0;  // requests counted but not kept
  std::map<std::pair<std::string, std::string>, Handler> handlers_;
};

}  // namespace passthru_test
