// The customers' servers of the five use cases, each a cpp-httplib server on 127.0.0.1:0.
#pragma once

#include "call_plan.hpp"

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace flow_engine {

/// One customer's server. It answers from the CustomerData and the request
/// alone, so what it answers for a call can be computed without it, and it
/// counts the requests it receives by CallSid.
///
/// Every answer holds one of its threads for the whole handling: the database
/// latency (1-15 ms) of every request, and kSlowAnswer of a slow one. So the
/// pool gets a thread for each slow answer it is built to give on top of a
/// base for the rest; fewer, and the slow answers would starve the others
/// into timeouts.
class CustomerServer {
 public:
  using Answer = std::function<void(const httplib::Request&, httplib::Response&)>;

  /// Starts serving `path` (GET and POST) on 127.0.0.1:0 and returns once it answers.
  CustomerServer(std::string name, std::string path, std::size_t threads, const CustomerData& data,
                 Answer answer);
  /// stop()s it.
  ~CustomerServer();

  CustomerServer(const CustomerServer&) = delete;
  CustomerServer& operator=(const CustomerServer&) = delete;

  /// Releases the slow answers still held, stops accepting, joins every thread.
  void stop();

  const std::string& name() const noexcept { return name_; }
  int port() const noexcept { return port_; }
  std::size_t threads() const noexcept { return threads_; }

  /// Requests received, by CallSid.
  std::map<std::string, int> received() const;

 private:
  class Http;

  void handle(const httplib::Request& request, httplib::Response& response);

  std::string name_;
  std::size_t threads_;
  const CustomerData& data_;
  Answer answer_;
  std::unique_ptr<Http> http_;
  int port_ = 0;
  std::thread thread_;

  mutable std::mutex mutex_;
  std::condition_variable stopping_changed_;
  bool stopping_ = false;
  std::map<std::string, int> received_;
};

/// The names start_customer_server() knows.
const std::vector<std::string>& customer_server_names();

/// The server of that name: "crm" (use case 1), "orders" (2), "call-log" (3),
/// "hours" (4) or "language" (5). Throws std::invalid_argument for any other name.
std::unique_ptr<CustomerServer> start_customer_server(const std::string& name, std::size_t threads,
                                                      const CustomerData& data);

}  // namespace flow_engine
