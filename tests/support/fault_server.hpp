// A raw-socket HTTP peer on 127.0.0.1:0 that misbehaves in the way each path names.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace passthru_test {

/// One request as the fault server read it off the wire.
struct FaultRequest {
  std::string method;           ///< "GET", "POST", ...
  std::string target;           ///< The request target as sent ("/close?CallSid=abc123").
  std::string path;             ///< The target without its query ("/close").
  std::string body;             ///< The Content-Length body, if any.
  std::string idempotency_key;  ///< The Idempotency-Key header, if any.
};

/// Serves every connection on a thread of its own and behaves by the path of
/// the request line (the query is ignored):
///
/// | path | behaviour |
/// | /keepalive-once | answers the first request and keeps the connection; reads
///   the next request on it, then closes without answering |
/// |---|---|
/// | `/delay/N` | 200 text/plain `vip-connect` after N ms |
/// | `/hang` | reads the request, never answers |
/// | `/close` | reads the request, closes without answering |
/// | `/reset-after-body/N` | headers with Content-Length 100000, N body bytes, then RST |
/// | `/garbage` | bytes that are not HTTP, then closes |
/// | `/huge` | 50 MB chunked body, streamed until the client goes away |
/// | `/huge-length` | 50 MB body with Content-Length, streamed likewise |
/// | `/drip` | headers with Content-Length 1000, then one body byte a second |
/// | `/redirect/CODE/KIND` | CODE with Location `http://`, `https://` (KIND http, https: this server's
/// /target) or `file:///etc/passwd` (file) | | `/continue-stall` | `100 Continue`, then nothing | |
/// `/chunked` | 200 text/plain, chunked: `vip-` then `connect` | | `/http10` | HTTP/1.0 200 text/plain
/// `vip-connect`, ended by closing (no Content-Length) | | `/target` | 200 text/plain `vip-connect` (where
/// redirects point) | | anything else | 404 |
///
/// Every answer carries `Connection: close`. Waits are on the connection and
/// an event, never sleeps, so the destructor returns at once even while
/// connections hang or drip.
class FaultServer {
 public:
  FaultServer();
  ~FaultServer();

  FaultServer(const FaultServer&) = delete;
  FaultServer& operator=(const FaultServer&) = delete;

  int port() const noexcept { return port_; }
  /// "http://127.0.0.1:PORT" + path_and_query.
  std::string url(std::string_view path_and_query = "/") const;

  /// Requests whose request-line path (without query) is exactly `path`.
  std::size_t received_count(const std::string& path) const;
  /// Every request read so far, in arrival order.
  std::vector<FaultRequest> requests() const;
  /// Bytes (head and body) written to clients for requests to `path`.
  std::size_t bytes_sent(const std::string& path) const;
  /// TCP connections accepted so far.
  std::size_t connections_accepted() const;
  /// Connections the server is done with (answered, failed, or the client left).
  std::size_t connections_finished() const;

  /// Waits until `n` requests to `path` have been read; false on timeout.
  bool wait_for_requests(const std::string& path, std::size_t n,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  /// Waits until `n` bytes have been written for requests to `path`; false on timeout.
  bool wait_for_bytes_sent(const std::string& path, std::size_t n,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  /// Waits until `n` connections are finished; false on timeout.
  bool wait_for_finished_connections(std::size_t n,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

 private:
  class Connection;

  void accept_loop();
  void record_request(FaultRequest request);
  void record_sent(const std::string& path, std::size_t bytes);
  void record_finished();

  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd, readable once the destructor runs
  int port_ = -1;
  std::thread acceptor_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<std::thread> connections_;
  std::vector<FaultRequest> requests_;
  std::map<std::string, std::size_t> received_;
  std::map<std::string, std::size_t> sent_;
  std::size_t accepted_ = 0;
  std::size_t finished_ = 0;
};

}  // namespace passthru_test
