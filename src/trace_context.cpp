#include "trace_context.hpp"

#include <algorithm>

namespace passthru {
inline namespace v0 {
namespace detail {
namespace {

bool lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view header) {
  constexpr std::size_t kLength = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
  if (header.size() < kLength) return std::nullopt;
  const std::string_view version = header.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return std::nullopt;
  // Version 00 is exactly 55 bytes; a later one may append "-..." fields.
  if (version == "00" ? header.size() != kLength : header.size() > kLength && header[kLength] != '-') {
    return std::nullopt;
  }
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  const std::string_view trace_id = header.substr(3, 32);
  const std::string_view parent_id = header.substr(36, 16);
  const std::string_view flags = header.substr(53, 2);
  if (!lower_hex(trace_id) || !lower_hex(parent_id) || !lower_hex(flags)) return std::nullopt;
  if (all_zero(trace_id) || all_zero(parent_id)) return std::nullopt;
  // We speak version 00: of a later version's flags, only "sampled" is known.
  std::string kept(flags);
  if (version != "00") kept = (std::stoi(kept, nullptr, 16) & 1) != 0 ? "01" : "00";
  return TraceParent{std::string(trace_id), std::move(kept)};
}

bool valid_tracestate(std::string_view value) {
  if (value.empty() || value.size() > 512) return false;
  return std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

TraceIds::TraceIds() {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
  random_.seed(seed);
}

std::uint64_t TraceIds::nonzero() {
  std::uint64_t value = 0;
  while (value == 0) value = random_();
  return value;
}

namespace {

// 16 lower-case hex digits: every request makes two or three ids, so not
// through a format string.
void append_hex64(std::string& out, std::uint64_t value) {
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[16];
  for (int i = 15; i >= 0; --i, value >>= 4) digits[i] = kHex[value & 0xF];
  out.append(digits, sizeof digits);
}

}  // namespace

std::string TraceIds::new_trace_id() {
  std::string id;
  id.reserve(32);
  append_hex64(id, nonzero());
  append_hex64(id, random_());
  return id;
}

std::string TraceIds::new_span_id() {
  std::string id;
  id.reserve(16);
  append_hex64(id, nonzero());
  return id;
}

std::string format_traceparent(std::string_view trace_id, std::string_view span_id, std::string_view flags) {
  std::string header;
  header.reserve(6 + trace_id.size() + span_id.size() + flags.size());
  header.append("00-").append(trace_id).append(1, '-').append(span_id).append(1, '-').append(flags);
  return header;
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
