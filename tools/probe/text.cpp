#include "text.hpp"

#include <passthru/error.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace passthru_probe {

std::string format_ms(std::chrono::microseconds duration) {
  const double ms = to_ms(duration);
  return ms < 10000.0 ? fmt::format("{:.1f} ms", ms) : fmt::format("{:.0f} ms", ms);
}

double to_ms(std::chrono::microseconds duration) { return static_cast<double>(duration.count()) / 1000.0; }

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024.0);
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

std::string error_name(const std::error_code& error) {
  if (!error) return {};
  if (error.category() != passthru::error_category()) {
    return fmt::format("{}:{}", error.category().name(), error.value());
  }
  switch (static_cast<passthru::Errc>(error.value())) {
    case passthru::Errc::timed_out: return "timed_out";
    case passthru::Errc::cancelled: return "cancelled";
    case passthru::Errc::shut_down: return "shut_down";
    case passthru::Errc::invalid_request: return "invalid_request";
    case passthru::Errc::dns_failed: return "dns_failed";
    case passthru::Errc::connect_failed: return "connect_failed";
    case passthru::Errc::tls_failed: return "tls_failed";
    case passthru::Errc::send_failed: return "send_failed";
    case passthru::Errc::receive_failed: return "receive_failed";
    case passthru::Errc::answer_too_large: return "answer_too_large";
    case passthru::Errc::http_status: return "http_status";
    case passthru::Errc::unexpected_answer: return "unexpected_answer";
    case passthru::Errc::external_flow_denied: return "external_flow_denied";
    case passthru::Errc::transport_failed: return "transport_failed";
    case passthru::Errc::blocked_destination: return "blocked_destination";
    case passthru::Errc::circuit_open: return "circuit_open";
    case passthru::Errc::background_full: return "background_full";
  }
  return fmt::format("passthru:{}", error.value());
}

std::string printable_body(std::string_view body, std::string_view indent, const BodyLimit* limit) {
  std::size_t shown = body.size();
  if (limit != nullptr) {
    shown = std::min(shown, limit->max_bytes);
    std::size_t lines = 0;
    for (std::size_t i = 0; i < shown; ++i) {
      if (body[i] == '\n' && ++lines == limit->max_lines) {
        shown = i;
        break;
      }
    }
  }
  std::string out(indent);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto byte = static_cast<unsigned char>(body[i]);
    if (byte == '\n') {
      // A final newline ends the body's last line; it starts no new one.
      if (i + 1 < body.size()) {
        out += '\n';
        out += indent;
      }
    } else if (byte == '\t' || (byte >= 0x20 && byte != 0x7f)) {
      out += static_cast<char>(byte);
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  if (shown < body.size()) {
    out += fmt::format("\n{}... {} more bytes not shown (-v shows the whole answer)", indent,
                       body.size() - shown);
  }
  return out;
}

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else {
      out += c;
    }
  }
  return out;
}

std::string dump_json(const nlohmann::ordered_json& value) {
  return value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace passthru_probe
