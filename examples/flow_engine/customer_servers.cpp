#include "customer_servers.hpp"

#include <httplib.h>
#include <sys/socket.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <stdexcept>
#include <utility>

namespace flow_engine {

// Reaches the listening socket, which httplib keeps protected.
class CustomerServer::Http : public httplib::Server {
 public:
  socket_t listening_socket() const { return svr_sock_; }
};

CustomerServer::CustomerServer(std::string name, std::string path, std::size_t threads,
                               const CustomerData& data, Answer answer)
    : name_(std::move(name)),
      threads_(threads),
      data_(data),
      answer_(std::move(answer)),
      http_(std::make_unique<Http>()) {
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // A worker stays with its connection for the connection's whole keep-alive
  // life, so connections the client keeps for reuse would hold workers idle
  // while other calls queue: one request per connection.
  http_->set_keep_alive_max_count(1);
  // httplib writes headers and body separately: Nagle and delayed ACK would add 40 ms.
  http_->set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which can let two servers share a port.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  const auto handler = [this](const httplib::Request& request, httplib::Response& response) {
    handle(request, response);
  };
  http_->Get(path, handler);
  http_->Post(path, handler);
  http_->Get("/ready", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ready", "text/plain");
  });

  port_ = http_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error(name_ + ": cannot bind 127.0.0.1:0");
  // httplib 0.11 listens with a backlog of 5: a burst of calls would overflow
  // it, and a dropped SYN is retried only after 1 s. Listening again raises it.
  if (::listen(http_->listening_socket(), 4096) != 0)
    throw std::runtime_error(name_ + ": cannot raise backlog");
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  // stop() does nothing until the accept loop runs, and httplib 0.11 has no
  // event for that; an answer proves it runs.
  httplib::Client probe("127.0.0.1", port_);
  probe.set_connection_timeout(std::chrono::seconds(10));
  probe.set_read_timeout(std::chrono::seconds(10));
  const httplib::Result ready = probe.Get("/ready");
  if (!ready || ready->status != 200) {
    stop();
    throw std::runtime_error(name_ + ": the server does not answer on 127.0.0.1:" + std::to_string(port_));
  }
}

CustomerServer::~CustomerServer() { stop(); }

void CustomerServer::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  stopping_changed_.notify_all();
  http_->stop();  // its pool finishes the requests still queued, then joins
  if (thread_.joinable()) thread_.join();
}

std::map<std::string, int> CustomerServer::received() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return received_;
}

// Runs on many server threads at once; data_ is read-only by now.
void CustomerServer::handle(const httplib::Request& request, httplib::Response& response) {
  const std::string call_sid = request.get_param_value("CallSid");
  const auto fault = data_.faults.find(call_sid);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ++received_[call_sid];  // stored on arrival, as a call log would be
    if (fault != data_.faults.end() && fault->second == Fault::slow) {
      // Held past every step's timeout; released early only when the server stops.
      stopping_changed_.wait_for(lock, kSlowAnswer, [this] { return stopping_; });
    }
  }
  std::this_thread::sleep_for(database_latency(call_sid));  // the customer's database
  if (fault != data_.faults.end() && fault->second == Fault::server_error) {
    response.status = 500;
    response.set_content("internal error", "text/plain");
    return;
  }
  answer_(request, response);
}

namespace {

// Exotel sends digits as "1234" (StepOptions::quote_digits); accept both.
std::string unquoted(std::string digits) {
  if (digits.size() >= 2 && digits.front() == '"' && digits.back() == '"')
    return digits.substr(1, digits.size() - 2);
  return digits;
}

}  // namespace

const std::vector<std::string>& customer_server_names() {
  static const std::vector<std::string> names = {"crm", "orders", "call-log", "hours", "language"};
  return names;
}

std::unique_ptr<CustomerServer> start_customer_server(const std::string& name, std::size_t threads,
                                                      const CustomerData& data) {
  using httplib::Request;
  using httplib::Response;
  if (name == "crm") {  // 1. CRM lookup for VIP routing
    return std::make_unique<CustomerServer>(
        name, "/crm/lookup", threads, data, [&data](const Request& request, Response& response) {
          const auto found = data.crm.find(request.get_param_value("CallFrom"));
          const CrmTier tier = found == data.crm.end() ? CrmTier::unknown : found->second;
          response.set_content(crm_answer(tier), "application/plain");
        });
  }
  if (name == "orders") {  // 2. Order status via DTMF: the status read back as a variable
    return std::make_unique<CustomerServer>(
        name, "/orders/status", threads, data, [&data](const Request& request, Response& response) {
          const auto order = data.orders.find(unquoted(request.get_param_value("digits")));
          nlohmann::json answer;
          if (order == data.orders.end()) {
            answer["next"] = "order-not-found";
          } else {
            answer["variables"]["order_status"] = order->second;  // no "next": the step's default
          }
          response.set_content(answer.dump(), "application/json");
        });
  }
  if (name == "call-log") {  // 3. Call data logging: store (counted on arrival), answer at once
    return std::make_unique<CustomerServer>(
        name, "/calls", threads, data, [](const Request&, Response& response) { response.status = 200; });
  }
  if (name == "hours") {  // 4. Dynamic business hours check
    return std::make_unique<CustomerServer>(
        name, "/hours", threads, data, [](const Request& request, Response& response) {
          LocalTime time;
          int hour = 0;
          int minute = 0;
          const std::string now = request.get_param_value("CurrentTime");
          if (std::sscanf(now.c_str(), "%4d-%2d-%2dT%2d:%2d", &time.year, &time.month, &time.day, &hour,
                          &minute) != 5) {
            response.status = 400;
            response.set_content("CurrentTime is not ISO 8601", "text/plain");
            return;
          }
          time.minute_of_day = hour * 60 + minute;
          const std::optional<bool> open = department_open(request.get_param_value("Department"), time);
          if (!open) {
            response.status = 400;
            response.set_content("unknown Department", "text/plain");
            return;
          }
          response.set_content(*open ? "connect-agents" : "after-hours", "text/plain");
        });
  }
  if (name == "language") {  // 5. Language selection by caller location
    return std::make_unique<CustomerServer>(
        name, "/language", threads, data, [](const Request& request, Response& response) {
          response.set_content(language_applet(request.get_param_value("CallFrom")), "text/plain");
        });
  }
  throw std::invalid_argument("no customer server named '" + name +
                              "' (crm, orders, call-log, hours, language)");
}

}  // namespace flow_engine
