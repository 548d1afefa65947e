// Keeping secrets out of logs, reasons and error messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace passthru {
inline namespace v0 {
namespace detail {

/// `url` with its user-info replaced by "***" and the values of query
/// parameters named in `secret_names` (case-insensitive) by "***".
/// `malformed`: for a URL that failed to parse, shown in an error message.
/// The user-info is then taken to run to the URL's last '@' (a password may
/// hold an unencoded '/', '?' or '#'), and "https:/user@host" is understood:
/// more may be hidden than needed, never less.
std::string redact_url(std::string_view url, const std::vector<std::string>& secret_names,
                       bool malformed = false);

/// The values of query parameters named in `secret_names` (decoded and as
/// written), and the user-info of `url`.
std::vector<std::string> url_secrets(std::string_view url, const std::vector<std::string>& secret_names);

/// Replaces every occurrence of each secret (and of its percent-encoded form)
/// in `text` with "***". Secrets shorter than 4 bytes are ignored: replacing
/// them would garble the text without protecting anything.
std::string redact(std::string text, const std::vector<std::string>& secrets);

/// `text` with control bytes, backslash and '"' escaped (\n, \x1b, \"), so a
/// value from a caller or a server cannot forge or break a log line.
std::string escape_for_log(std::string_view text);

/// True when `name` equals one of `names`, ignoring ASCII case.
bool contains_name(const std::vector<std::string>& names, std::string_view name);

}  // namespace detail
}  // namespace v0
}  // namespace passthru
