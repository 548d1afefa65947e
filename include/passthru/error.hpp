// Error codes carried by an Outcome: why a request did not end with an
// understood answer from the customer's server.
#pragma once

#include <passthru/export.hpp>

#include <string>
#include <system_error>
#include <type_traits>

namespace passthru {
inline namespace v0 {

/// What went wrong with one Passthru request. Zero is never used, so a
/// default-constructed std::error_code means "no error".
enum class Errc {
  timed_out = 1,         ///< The step's timeout passed before an answer arrived.
  cancelled,             ///< RequestHandle::cancel() was called.
  shut_down,             ///< The client was destroyed with the request in flight.
  invalid_request,       ///< The call context could not be turned into a request.
  dns_failed,            ///< The server's host name did not resolve.
  connect_failed,        ///< The TCP connection was refused or could not be made.
  tls_failed,            ///< The TLS handshake or certificate check failed.
  send_failed,           ///< The connection broke while sending the request.
  receive_failed,        ///< The connection broke or spoke non-HTTP while answering.
  answer_too_large,      ///< The answer exceeded StepOptions::max_answer_bytes.
  http_status,           ///< The server answered with a status routed to on-error.
  unexpected_answer,     ///< A 2xx answer the router could not understand.
  external_flow_denied,  ///< A flow URL whose host is not in the allow-list.
  transport_failed,      ///< Any other transport failure (see Outcome::reason).
  blocked_destination,   ///< ClientOptions::block_private_destinations refused the address.
  circuit_open,          ///< The origin's circuit breaker is open: nothing was sent.
  background_full,       ///< A fire-and-forget request found max_background in the background: not sent.
};

/// The category of passthru::Errc values; name() is "passthru".
PASSTHRU_API const std::error_category& error_category() noexcept;

/// Makes std::error_code{e, passthru::error_category()}.
PASSTHRU_API std::error_code make_error_code(Errc e) noexcept;

}  // namespace v0
}  // namespace passthru

template <>
struct std::is_error_code_enum<passthru::Errc> : std::true_type {};
