#include "destination_guard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace passthru {
inline namespace v0 {
namespace detail {
namespace {

IpAddress mapped_v4(const std::uint8_t (&v4)[4]) {
  IpAddress out;
  out.bytes[10] = 0xFF;
  out.bytes[11] = 0xFF;
  std::memcpy(&out.bytes[12], v4, 4);
  return out;
}

IpNetwork network(std::string_view text) {
  IpNetwork out;
  IpNetwork::parse(text, out);
  return out;
}

// Every range no Passthru request has a reason to reach. IPv4 ranges are
// written in mapped form by IpNetwork::parse.
const std::vector<IpNetwork>& blocked_networks() {
  static const std::vector<IpNetwork> networks = {
      network("0.0.0.0/8"),        // "this network", includes 0.0.0.0
      network("10.0.0.0/8"),       // private
      network("100.64.0.0/10"),    // shared address space (CGNAT)
      network("127.0.0.0/8"),      // loopback
      network("169.254.0.0/16"),   // link-local, cloud metadata 169.254.169.254
      network("172.16.0.0/12"),    // private
      network("192.0.0.0/24"),     // IETF protocol assignments
      network("192.0.2.0/24"),     // documentation
      network("192.88.99.0/24"),   // 6to4 relay anycast
      network("192.168.0.0/16"),   // private
      network("198.18.0.0/15"),    // benchmarking
      network("198.51.100.0/24"),  // documentation
      network("203.0.113.0/24"),   // documentation
      network("224.0.0.0/4"),      // multicast
      network("240.0.0.0/4"),      // reserved, includes 255.255.255.255
      network("::/128"),           // unspecified
      network("::1/128"),          // loopback
      network("::/96"),            // IPv4-compatible (deprecated)
      network("64:ff9b:1::/48"),   // local-use NAT64 (RFC 8215)
      network("100::/64"),         // discard
      network("2001::/23"),        // IETF protocol assignments (Teredo, ORCHID...)
      network("2001:db8::/32"),    // documentation
      network("fc00::/7"),         // unique local
      network("fe80::/10"),        // link-local
      network("fec0::/10"),        // site-local (deprecated)
      network("ff00::/8"),         // multicast
  };
  return networks;
}

}  // namespace

bool IpAddress::parse(std::string_view text, IpAddress& out) {
  int width = 0;
  return parse(text, out, width);
}

bool IpAddress::parse(std::string_view text, IpAddress& out, int& width) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  if (text.find('\0') != std::string_view::npos) return false;
  char buffer[INET6_ADDRSTRLEN] = {};
  std::memcpy(buffer, text.data(), text.size());
  std::uint8_t v4[4];
  if (inet_pton(AF_INET, buffer, v4) == 1) {
    out = mapped_v4(v4);
    width = 32;
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buffer, &v6) == 1) {
    std::memcpy(out.bytes.data(), &v6, 16);
    width = 128;
    return true;
  }
  return false;
}

bool IpAddress::from_sockaddr(const sockaddr* address, IpAddress& out) {
  if (address == nullptr) return false;
  if (address->sa_family == AF_INET) {
    sockaddr_in v4{};
    std::memcpy(&v4, address, sizeof v4);
    std::uint8_t raw[4];
    std::memcpy(raw, &v4.sin_addr, 4);
    out = mapped_v4(raw);
    return true;
  }
  if (address->sa_family == AF_INET6) {
    sockaddr_in6 v6{};
    std::memcpy(&v6, address, sizeof v6);
    std::memcpy(out.bytes.data(), &v6.sin6_addr, 16);
    return true;
  }
  return false;
}

bool IpAddress::is_v4() const noexcept {
  for (int i = 0; i < 10; ++i)
    if (bytes[i] != 0) return false;
  return bytes[10] == 0xFF && bytes[11] == 0xFF;
}

std::string IpAddress::to_string() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, &bytes[12], buffer, sizeof buffer);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buffer, sizeof buffer);
  }
  return buffer;
}

bool IpNetwork::parse(std::string_view text, IpNetwork& out) {
  const auto slash = text.find('/');
  IpAddress base;
  int width = 0;  // 32 for "a.b.c.d", 128 for any IPv6 text, "::ffff:a.b.c.d" included
  if (!IpAddress::parse(text.substr(0, slash), base, width)) return false;
  int prefix = width;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || prefix < 0 ||
        prefix > width) {
      return false;
    }
  }
  out.base = base;
  out.prefix = width == 32 ? prefix + 96 : prefix;
  return true;
}

bool IpNetwork::contains(const IpAddress& address) const noexcept {
  int bits = prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const std::uint8_t mask = bits >= 8 ? 0xFF : static_cast<std::uint8_t>(0xFF << (8 - bits));
    if ((address.bytes[i] & mask) != (base.bytes[i] & mask)) return false;
  }
  return true;
}

bool is_non_public(const IpAddress& address) noexcept {
  // IPv6 forms that carry an IPv4 address are judged by that address.
  const auto& b = address.bytes;
  static const IpNetwork nat64 = network("64:ff9b::/96");
  static const IpNetwork six_to_four = network("2002::/16");
  if (nat64.contains(address)) {
    const std::uint8_t v4[4] = {b[12], b[13], b[14], b[15]};
    return is_non_public(mapped_v4(v4));
  }
  if (six_to_four.contains(address)) {
    const std::uint8_t v4[4] = {b[2], b[3], b[4], b[5]};
    return is_non_public(mapped_v4(v4));
  }
  for (const IpNetwork& blocked : blocked_networks()) {
    if (blocked.contains(address)) return true;
  }
  return false;
}

DestinationGuard::DestinationGuard(bool enabled, const std::vector<std::string>& allowed)
    : enabled_(enabled) {
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    IpNetwork parsed;
    if (!IpNetwork::parse(allowed[i], parsed)) {
      throw std::invalid_argument(fmt::format(
          "passthru: allowed_destinations[{}]: '{}' is not an address or CIDR network", i, allowed[i]));
    }
    allowed_.push_back(parsed);
  }
}

bool DestinationGuard::permits(const IpAddress& address) const noexcept {
  if (!enabled_ || !is_non_public(address)) return true;
  for (const IpNetwork& allowed : allowed_) {
    if (allowed.contains(address)) return true;
  }
  return false;
}

}  // namespace detail
}  // namespace v0
}  // namespace passthru
