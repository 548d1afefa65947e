#include <passthru/error.hpp>

namespace passthru {
inline namespace v0 {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "passthru"; }

  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::timed_out: return "no answer within the step's timeout";
      case Errc::cancelled: return "cancelled";
      case Errc::shut_down: return "client shut down";
      case Errc::invalid_request: return "invalid call context";
      case Errc::dns_failed: return "host name did not resolve";
      case Errc::connect_failed: return "could not connect";
      case Errc::tls_failed: return "TLS failure";
      case Errc::send_failed: return "failed to send the request";
      case Errc::receive_failed: return "failed to receive the answer";
      case Errc::answer_too_large: return "answer too large";
      case Errc::http_status: return "HTTP status routed to on-error";
      case Errc::unexpected_answer: return "unexpected answer";
      case Errc::external_flow_denied: return "flow URL host not allowed";
      case Errc::transport_failed: return "transport failure";
      case Errc::blocked_destination: return "blocked destination";
      case Errc::circuit_open: return "circuit open";
      case Errc::background_full: return "background queue full";
    }
    return "unknown passthru error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace v0
}  // namespace passthru
