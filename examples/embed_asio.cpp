// Embedding passthru in an engine built on Asio: the client runs on the
// engine's own io_context through passthru::AsioEventLoop. No thread of
// ours exists; every outcome callback runs on the thread that runs io.run(),
// so the engine resumes its calls without locks.
//
// Usage: embed_asio URL     (the customer's Passthru URL)
// Prints one line per call: call=<sid> route=<route> target=<target> reason="..."
//
// CMake: find_package(passthru CONFIG REQUIRED COMPONENTS asio)
//        target_link_libraries(engine PRIVATE passthru::asio)

#include <passthru/asio.hpp>
#include <passthru/passthru.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }

  // One Passthru applet of a flow, validated once.
  passthru::StepOptions options;
  options.url = argv[1];
  options.method = passthru::Method::post;
  options.timeout = std::chrono::seconds(3);
  options.routes.default_next = "main-menu";
  options.routes.on_error = "apology-greeting";
  options.routes.on_timeout = "general-queue";
  std::optional<passthru::StepConfig> step;
  try {
    step = passthru::StepConfig::build(options);
  } catch (const passthru::ConfigError& error) {
    std::fprintf(stderr, "invalid step: %s\n", error.what());
    return 2;
  }

  // The engine's loop, the adapter on it, and one client for every call.
  // Declared in this order, they are destroyed client first.
  asio::io_context io;
  passthru::AsioEventLoop loop(io);
  passthru::PassthruClient client(loop);

  constexpr int kCalls = 3;
  int answered = 0;
  for (int i = 1; i <= kCalls; ++i) {
    passthru::CallContext call;
    call.call_sid = "call-" + std::to_string(i);
    call.call_from = "+91987654321" + std::to_string(i);
    call.call_to = "+914412345678";
    // Returns at once; the callback runs later, inside io.run(), on this thread.
    client.execute(*step, call, [sid = call.call_sid, &answered](passthru::Outcome outcome) {
      ++answered;  // no lock: only io's thread runs callbacks
      std::printf("call=%s route=%s target=%s reason=\"%s\"\n", sid.c_str(),
                  passthru::to_string(outcome.route), outcome.target.c_str(), outcome.reason.c_str());
    });
  }

  // An engine runs its loop forever; this one returns once no call is waiting.
  io.run();
  return answered == kCalls ? 0 : 1;
}
