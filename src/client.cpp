#include <passthru/client.hpp>

#include "loop_driver.hpp"
#include "thread_driver.hpp"
#include "transfer_engine.hpp"

#include <stdexcept>

namespace passthru {
inline namespace v0 {

void RequestHandle::cancel() const noexcept {
  if (auto engine = engine_.lock()) engine->cancel(id_);
}

PassthruClient::PassthruClient(ClientOptions options)
    : engine_(std::make_shared<detail::TransferEngine>(options)),
      driver_(std::make_unique<detail::ThreadDriver>(engine_)) {}

PassthruClient::PassthruClient(EventLoop& loop, ClientOptions options)
    : engine_(std::make_shared<detail::TransferEngine>(options)),
      driver_(std::make_unique<detail::LoopDriver>(loop, engine_)) {}

PassthruClient::~PassthruClient() { driver_->stop(); }

RequestHandle PassthruClient::execute(const StepConfig& step, CallContext call, OutcomeCallback on_outcome) {
  const auto started = detail::Clock::now();
  if (!on_outcome) throw std::invalid_argument("passthru: execute() needs an outcome callback");
  const std::uint64_t id = engine_->submit(step, std::move(call), std::move(on_outcome), started);
  return RequestHandle(id, engine_);
}

void PassthruClient::cancel(std::uint64_t request_id) noexcept {
  if (request_id != 0) engine_->cancel(request_id);
}

MetricsSnapshot PassthruClient::metrics() const { return engine_->metrics(); }

}  // namespace v0
}  // namespace passthru
