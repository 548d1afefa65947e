// Internal side of <passthru/signature.hpp>: what the engine adds to a request.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace passthru {
inline namespace v0 {
namespace detail {

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Standard base64 (with padding) of `bytes`.
std::string base64(std::string_view bytes);

/// `bytes` random bytes from OpenSSL's CSPRNG, as lower-case hex.
std::string random_hex(std::size_t bytes);

/// The three header lines ("Name: value") of a request signed with `keys`.
std::vector<std::string> signature_headers(const std::vector<std::string>& keys, std::string_view method,
                                           std::string_view url, std::string_view body,
                                           std::chrono::system_clock::time_point now);

}  // namespace detail
}  // namespace v0
}  // namespace passthru
