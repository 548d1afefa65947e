// A customer server that accepts only signed Passthru requests: it answers
// "vip-connect" to a verified request and 401 with the reason to any other.
//
// Usage: PASSTHRU_SIGNING_KEYS=key1[,key2] signed_webhook_server [port]
//
// Listens on 127.0.0.1 (port 0, the default, picks a free one), prints the
// port on standard output, serves GET and POST /passthru, and runs until
// SIGINT or SIGTERM. Point a step at it with the same key:
//
//   options.url = "http://127.0.0.1:<port>/passthru";
//   options.signing_keys = {key1};
#include "signed_webhook_server.hpp"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<std::string> keys_from_environment() {
  std::vector<std::string> keys;
  const char* value = std::getenv("PASSTHRU_SIGNING_KEYS");
  std::istringstream list(value != nullptr ? value : "");
  for (std::string key; std::getline(list, key, ',');) {
    if (!key.empty()) keys.push_back(key);
  }
  return keys;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> keys = keys_from_environment();
  if (keys.empty()) {
    std::cerr
        << "set PASSTHRU_SIGNING_KEYS to the step's signing key (two, comma-separated, while rotating)\n";
    return 2;
  }
  const int wanted_port = argc > 1 ? std::atoi(argv[1]) : 0;

  // SIGINT and SIGTERM are blocked in every thread and taken by sigwait() below,
  // so no signal handler has to touch the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  httplib::Server server;
  const int port = wanted_port > 0 ? (server.bind_to_port("127.0.0.1", wanted_port) ? wanted_port : -1)
                                   : server.bind_to_any_port("127.0.0.1");
  if (port <= 0) {
    std::cerr << "cannot listen on 127.0.0.1:" << wanted_port << "\n";
    return 1;
  }

  // The origin the step's URL names. Behind a proxy, configure the public one
  // ("https://crm.example.com"): the signature covers the URL the step sent to.
  passthru_example::VerifierConfig config;
  config.public_origin = "http://127.0.0.1:" + std::to_string(port);
  config.keys = keys;
  passthru_example::install_verified_handler(
      server, "/passthru", config,
      [](const httplib::Request&, httplib::Response& res) { res.set_content("vip-connect", "text/plain"); });
  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    std::cerr << req.method << " " << req.path << " -> " << res.status
              << (res.status == 401 ? " " + res.body : std::string()) << "\n";
  });

  std::thread listener([&server] { server.listen_after_bind(); });
  // stop() does nothing before the accept loop runs; httplib 0.11 has no event for it.
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::cout << port << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server.stop();
  listener.join();
  std::cerr << "stopped by signal " << signal_number << "\n";
  return 0;
}
