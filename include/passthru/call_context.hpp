// The call's data that a Passthru step sends to the customer's server.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace passthru {
inline namespace v0 {

/// Direction of the call, sent as `Direction=incoming` or `outgoing`.
enum class Direction { incoming, outgoing };

/// One call's data, as the engine knows it when the call reaches the step.
///
/// On the wire the fields carry exactly the guide's names: `CallSid`,
/// `CallFrom`, `CallTo`, `Direction`, `CurrentTime`, `DialWhomNumber`, then
/// `digits` when present, then the custom parameters in order. GET sends them
/// as a query string, POST as an application/x-www-form-urlencoded body; every
/// byte outside RFC 3986's unreserved set is percent-encoded, so `+` arrives
/// as `+`, never as a space.
struct CallContext {
  std::string call_sid;                       ///< `CallSid`, e.g. "abc123def456".
  std::string call_from;                      ///< `CallFrom`, e.g. "+919876543210".
  std::string call_to;                        ///< `CallTo`, the called number.
  Direction direction = Direction::incoming;  ///< `Direction`.
  /// `CurrentTime` as ISO 8601 with offset ("2024-01-15T10:30:00+05:30").
  /// When empty, the library stamps the moment the request is built.
  std::string current_time;
  std::string dial_whom_number;  ///< `DialWhomNumber` (sent even if empty).
  /// DTMF digits collected by an earlier IVR step, sent as `digits` when set
  /// (wrapped in double quotes when StepOptions::quote_digits is true).
  std::optional<std::string> digits;
  /// Extra parameters, sent after the standard ones in this order. A name
  /// that repeats a standard one (e.g. "CallSid" or "digits") is refused: the
  /// request routes to on-error with Errc::invalid_request and is not sent.
  std::vector<std::pair<std::string, std::string>> custom;
  /// The engine's W3C trace context for this call
  /// ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"). When valid,
  /// the request joins that trace: its `traceparent` header carries the same
  /// trace id and flags with a new span id. Empty or invalid: a new trace.
  std::string traceparent;
  /// W3C `tracestate`, sent unchanged when traceparent is valid. At most 512
  /// bytes of printable ASCII; anything else is not sent.
  std::string tracestate;
};

/// "incoming" or "outgoing".
inline const char* to_string(Direction d) noexcept {
  return d == Direction::incoming ? "incoming" : "outgoing";
}

}  // namespace v0
}  // namespace passthru
