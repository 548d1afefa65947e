#include "test_http_server.hpp"

#include <sys/socket.h>

#include <stdexcept>

namespace passthru_test {

std::string RecordedRequest::query() const {
  auto q = target.find('?');
  return q == std::string::npos ? std::string() : target.substr(q + 1);
}

std::string RecordedRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

// Reaches the listening socket, which httplib keeps protected, to raise its backlog.
class TestHttpServer::Server : public httplib::Server {
 public:
  socket_t listening_socket() const { return svr_sock_; }
};

TestHttpServer::TestHttpServer(ServerOptions options)
    : server_(std::make_unique<Server>()), record_requests_(options.record_requests) {
  const std::size_t threads = options.threads == 0 ? 1 : options.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_keep_alive_max_count(options.keep_alive_max_count == 0 ? 1 : options.keep_alive_max_count);
  server_->set_keep_alive_timeout(static_cast<time_t>(options.keep_alive_timeout.count()));
  // httplib writes headers and body separately; without TCP_NODELAY, Nagle
  // and the client's delayed ACK add 40 ms to every answer on a reused connection.
  server_->set_tcp_nodelay(true);
  // httplib's default sets SO_REUSEPORT, which may let two servers share a port.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  auto record_and_dispatch = [this](const httplib::Request& req, httplib::Response& res) {
    handle(req, res);
  };
  const std::string any_path = ".*";
  server_->Get(any_path, record_and_dispatch);
  server_->Post(any_path, record_and_dispatch);
  server_->Put(any_path, record_and_dispatch);
  server_->Patch(any_path, record_and_dispatch);
  server_->Delete(any_path, record_and_dispatch);
  server_->Options(any_path, record_and_dispatch);

  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("TestHttpServer: cannot bind 127.0.0.1:0");
  // Listening again on a listening socket only changes its backlog.
  if (::listen(server_->listening_socket(), options.backlog) != 0) {
    throw std::runtime_error("TestHttpServer: cannot raise the listen backlog");
  }

  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the listen loop runs, so wait for it before
  // handing the server out; httplib 0.11 offers no event for this.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!server_->is_running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      thread_.detach();
      throw std::runtime_error("TestHttpServer: listen loop did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

TestHttpServer::~TestHttpServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string TestHttpServer::url(std::string_view path_and_query) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path_and_query);
}

void TestHttpServer::on(const std::string& method, const std::string& path, Handler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  handlers_[{method, path}] = std::move(handler);
}

void TestHttpServer::reply(const std::string& method, const std::string& path, int status, std::string body,
                           std::string content_type) {
  on(method, path,
     [status, body = std::move(body), content_type = std::move(content_type)](const httplib::Request&,
                                                                              httplib::Response& res) {
       res.status = status;
       res.body = body;
       if (!content_type.empty()) res.set_header("Content-Type", content_type);
     });
}

void TestHttpServer::handle(const httplib::Request& req, httplib::Response& res) {
  Handler handler;
  {
    RecordedRequest recorded;
    recorded.method = req.method;
    recorded.path = req.path;
    recorded.target = req.target;
    recorded.body = req.body;
    recorded.headers = req.headers;
    recorded.remote_addr = req.remote_addr;
    recorded.remote_port = req.remote_port;

    std::lock_guard<std::mutex> lock(mutex_);
    if (record_requests_) {
      requests_.push_back(std::move(recorded));
    } else {
      ++unrecorded_;
    }
    auto it = handlers_.find({req.method, req.path});
    if (it != handlers_.end()) handler = it->second;
  }
  arrived_.notify_all();

  if (handler) {
    handler(req, res);
  } else {
    res.status = 404;
    res.set_content("no handler for " + req.method + " " + req.path, "text/plain");
  }
}

std::vector<RecordedRequest> TestHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

std::vector<RecordedRequest> TestHttpServer::requests_to(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<RecordedRequest> out;
  for (const auto& r : requests_) {
    if (r.path == path) out.push_back(r);
  }
  return out;
}

std::size_t TestHttpServer::request_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_.size() + unrecorded_;
}

std::set<int> TestHttpServer::remote_ports() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::set<int> ports;
  for (const auto& r : requests_) ports.insert(r.remote_port);
  return ports;
}

bool TestHttpServer::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return arrived_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

}  // namespace passthru_test
