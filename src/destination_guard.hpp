// The SSRF guard: which addresses a client may connect to.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace passthru {
inline namespace v0 {
namespace detail {

/// An IPv4 or IPv6 address as 16 bytes; IPv4 is stored IPv4-mapped
/// (::ffff:a.b.c.d), so one set of rules covers both families.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};

  /// Parses "10.0.0.1" or "fe80::1" (no brackets, no port). False if neither.
  static bool parse(std::string_view text, IpAddress& out);
  /// As above; `width` becomes 32 for IPv4 text and 128 for IPv6 text.
  static bool parse(std::string_view text, IpAddress& out, int& width);
  /// From a connected-to socket address (AF_INET or AF_INET6). False otherwise.
  static bool from_sockaddr(const sockaddr* address, IpAddress& out);

  bool is_v4() const noexcept;
  /// "127.0.0.1" or "::1".
  std::string to_string() const;
};

/// A network in CIDR form.
struct IpNetwork {
  IpAddress base;
  int prefix = 0;  // over the 128-bit form

  /// Parses "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128).
  static bool parse(std::string_view text, IpNetwork& out);
  bool contains(const IpAddress& address) const noexcept;
};

/// True for loopback, private, shared (CGNAT), link-local, unspecified,
/// multicast, broadcast, documentation and reserved addresses, including
/// IPv4 addresses embedded in IPv4-mapped, NAT64 (64:ff9b::/96) and 6to4
/// (2002::/16) IPv6 addresses. Public unicast addresses are false.
bool is_non_public(const IpAddress& address) noexcept;

/// Decides each connection a client opens.
class DestinationGuard {
 public:
  DestinationGuard() = default;
  /// Throws std::invalid_argument naming an invalid entry of `allowed`.
  DestinationGuard(bool enabled, const std::vector<std::string>& allowed);

  bool enabled() const noexcept { return enabled_; }
  /// True when connecting to `address` is allowed.
  bool permits(const IpAddress& address) const noexcept;

 private:
  bool enabled_ = false;
  std::vector<IpNetwork> allowed_;
};

}  // namespace detail
}  // namespace v0
}  // namespace passthru
