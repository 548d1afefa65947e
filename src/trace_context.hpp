// W3C Trace Context (https://www.w3.org/TR/trace-context/): the traceparent
// header that ties each request to the engine's trace of the call.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace passthru {
inline namespace v0 {
namespace detail {

/// The parts of a traceparent header that a request inherits.
struct TraceParent {
  std::string trace_id;  // 32 lower-case hex digits, not all zero
  std::string flags;     // 2 hex digits: "01" sampled
};

/// Reads `header` by the W3C rules: version 00 exactly
/// "00-<32 hex>-<16 hex>-<2 hex>"; a later version at least that long, with
/// '-' or the end after the flags; version ff, upper-case hex and all-zero
/// ids are invalid. Empty when invalid.
std::optional<TraceParent> parse_traceparent(std::string_view header);

/// True when `value` may be sent as a tracestate header: 1 to 512 bytes of
/// printable ASCII (space to '~').
bool valid_tracestate(std::string_view value);

/// Random trace and span ids. One per driver thread, never shared.
class TraceIds {
 public:
  TraceIds();
  std::string new_trace_id();  // 32 hex digits, never all zero
  std::string new_span_id();   // 16 hex digits, never all zero

 private:
  std::uint64_t nonzero();
  std::mt19937_64 random_;
};

/// "00-<trace_id>-<span_id>-<flags>".
std::string format_traceparent(std::string_view trace_id, std::string_view span_id, std::string_view flags);

}  // namespace detail
}  // namespace v0
}  // namespace passthru
