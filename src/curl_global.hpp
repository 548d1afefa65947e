// libcurl's process-wide initialisation, done once and never undone: a
// library must not call curl_global_cleanup() behind its host's back.
#pragma once

namespace passthru {
inline namespace v0 {
namespace detail {

/// Calls curl_global_init(CURL_GLOBAL_DEFAULT) once per process; throws
/// std::runtime_error if it fails. Cheap after the first call.
void ensure_curl_global_init();

}  // namespace detail
}  // namespace v0
}  // namespace passthru
