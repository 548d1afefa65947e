#include "curl_global.hpp"

#include <curl/curl.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace passthru {
inline namespace v0 {
namespace detail {

void ensure_curl_global_init() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    throw std::runtime_error(std::string("passthru: curl_global_init failed: ") + curl_easy_strerror(result));
  }
  // Built against new headers, run with an older libcurl.so: an option it
  // does not know (CURLOPT_QUICK_EXIT) would be ignored in silence.
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  if (info->version_num < 0x075700) {
    throw std::runtime_error(std::string("passthru: needs libcurl 7.87.0 or later at run time, found ") +
                             info->version);
  }
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
