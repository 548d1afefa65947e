// Turning durations, sizes, error codes and answer bodies into text a person
// reads on a terminal, and into JSON values.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace passthru_probe {

/// Milliseconds with one decimal below 10 s ("0.4 ms", "1532.7 ms").
std::string format_ms(std::chrono::microseconds duration);

/// Milliseconds as a JSON number, to the microsecond.
double to_ms(std::chrono::microseconds duration);

/// "0 B", "512 B", "12.5 KiB".
std::string format_bytes(std::uint64_t bytes);

/// The Errc's own name ("timed_out", "http_status"), or "category:value"
/// for a code of another category. Empty for no error.
std::string error_name(const std::error_code& error);

/// Longest part of a body shown without --verbose.
struct BodyLimit {
  std::size_t max_bytes = 2048;
  std::size_t max_lines = 20;
};

/// `body` made safe for a terminal: control characters other than newline and
/// tab become \xNN, so an answer cannot move the cursor or forge a line of
/// the report. Cut at `limit` (with a note of what was left out) unless
/// `limit` is empty. Each line is prefixed with `indent`.
std::string printable_body(std::string_view body, std::string_view indent, const BodyLimit* limit);

/// `text` for one line of a terminal: every control character, newline
/// included, becomes \xNN.
std::string one_line(std::string_view text);

/// `value` as indented JSON text. An answer is the server's bytes, so invalid
/// UTF-8 in a string becomes U+FFFD rather than an exception.
std::string dump_json(const nlohmann::ordered_json& value);

}  // namespace passthru_probe
