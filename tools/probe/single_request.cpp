#include "single_request.hpp"

#include <future>
#include <memory>
#include <mutex>
#include <utility>

namespace passthru_probe {

SingleResult run_single(const passthru::StepConfig& step, passthru::CallContext call,
                        passthru::ClientOptions client_options) {
  struct Seen {
    std::mutex mutex;
    std::optional<passthru::RequestInfo> request;
  };
  auto seen = std::make_shared<Seen>();
  client_options.hooks.on_start = [seen](const passthru::RequestInfo& request) {
    const std::lock_guard<std::mutex> lock(seen->mutex);
    seen->request = request;
  };

  std::promise<passthru::Outcome> done;
  std::future<passthru::Outcome> outcome = done.get_future();
  SingleResult result;
  {
    passthru::PassthruClient client(std::move(client_options));
    client.execute(step, std::move(call), [&done](passthru::Outcome o) { done.set_value(std::move(o)); });
    result.outcome = outcome.get();
  }
  const std::lock_guard<std::mutex> lock(seen->mutex);
  result.request = std::move(seen->request);
  return result;
}

}  // namespace passthru_probe
