// detail::DestinationGuard (the SSRF guard): address and network parsing,
// which addresses count as non-public, and the allow-list exemptions.
#include "destination_guard.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using passthru::detail::DestinationGuard;
using passthru::detail::IpAddress;
using passthru::detail::IpNetwork;
using passthru::detail::is_non_public;

IpAddress address(std::string_view text) {
  IpAddress out;
  EXPECT_TRUE(IpAddress::parse(text, out)) << "'" << text << "' did not parse";
  return out;
}

IpNetwork net(std::string_view text) {
  IpNetwork out;
  EXPECT_TRUE(IpNetwork::parse(text, out)) << "'" << text << "' did not parse";
  return out;
}

// Every address the guard must refuse when it is on and nothing is allowed.
const std::vector<std::string> kBlocked = {
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "::1", "fe80::1",
    "fc00::1", "fd12::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  // NAT64 of 169.254.169.254
    "2002:7f00:1::1",      // 6to4 of 127.0.0.1
    // A few more of the documented ranges.
    "0.1.2.3", "10.255.255.255", "100.127.255.255", "192.0.0.8", "192.0.2.1", "198.18.0.1", "198.19.255.255",
    "198.51.100.7", "203.0.113.9", "240.0.0.1", "239.255.255.250", "::127.0.0.1" /* IPv4-compatible */,
    "2001:db8::1", "fec0::1", "100::1", "2001::1" /* Teredo */, "64:ff9b::a00:1" /* NAT64 of 10.0.0.1 */,
    "2002:c0a8:101::1" /* 6to4 of 192.168.1.1 */, "febf:ffff::1", "fdff:ffff::1"};

// Addresses outside every blocked range (public unicast, and the neighbours
// of blocked ranges): always permitted.
const std::vector<std::string> kPublic = {
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",      // just above 172.16.0.0/12
    "172.15.255.255",  // just below it
    "100.128.0.1",     // just above 100.64.0.0/10
    "100.63.255.255",  // just below it
    "169.253.255.255",
    "11.0.0.0",
    "223.255.255.255",  // just below multicast
    "2606:4700:4700::1111",
    "64:ff9b::808:808",  // NAT64 of 8.8.8.8
    "2002:808:808::1",   // 6to4 of 8.8.8.8
    "::ffff:8.8.8.8",
    "2a00:1450:4001:81c::200e",
    "fbff:ffff::1",  // just below fc00::/7
    "2001:4860:4860::8888",
};

// --- IpAddress::parse ---

TEST(IpAddress, ParsesIpv4IntoTheMappedForm) {
  const IpAddress a = address("10.1.2.3");
  const std::array<std::uint8_t, 16> expected = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 1, 2, 3};
  EXPECT_EQ(a.bytes, expected);
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.to_string(), "10.1.2.3");
}

TEST(IpAddress, ParsesIpv6) {
  const IpAddress a = address("fe80::1");
  const std::array<std::uint8_t, 16> expected = {0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(a.bytes, expected);
  EXPECT_FALSE(a.is_v4());
  EXPECT_EQ(a.to_string(), "fe80::1");
}

TEST(IpAddress, AnIpv4MappedIpv6AddressIsTheSameAsItsIpv4Form) {
  EXPECT_EQ(address("::ffff:127.0.0.1").bytes, address("127.0.0.1").bytes);
  EXPECT_EQ(address("::ffff:7f00:1").bytes, address("127.0.0.1").bytes);
  EXPECT_TRUE(address("::ffff:127.0.0.1").is_v4());
  EXPECT_EQ(address("::ffff:169.254.169.254").to_string(), "169.254.169.254");
}

TEST(IpAddress, UnspecifiedAndLoopbackIpv6AreNotIpv4) {
  EXPECT_FALSE(address("::").is_v4());
  EXPECT_FALSE(address("::1").is_v4());
  EXPECT_EQ(address("::").to_string(), "::");
  EXPECT_EQ(address("::1").to_string(), "::1");
}

TEST(IpAddress, RefusesWhatIsNotABareAddress) {
  for (const char* text : {"", "localhost", "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "[::1]",
                           "127.0.0.1:80", "::1/128", " 127.0.0.1", "127.0.0.1 ", "256.0.0.1", "1.2.3",
                           "1.2.3.4.5", "fe80::1%eth0", ":::1", "12345::1", "example.com", "1.2.3.-4"}) {
    IpAddress out;
    EXPECT_FALSE(IpAddress::parse(text, out)) << "'" << text << "' parsed";
  }
}

TEST(IpAddress, RefusesTextLongerThanAnyAddress) {
  IpAddress out;
  EXPECT_FALSE(IpAddress::parse(std::string(INET6_ADDRSTRLEN, '1'), out));
  EXPECT_FALSE(IpAddress::parse(std::string(1000, ':'), out));
  // The longest IPv6 text form still fits.
  EXPECT_TRUE(IpAddress::parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", out));
}

TEST(IpAddress, FromSockaddrReadsBothFamiliesAndRefusesOthers) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  ASSERT_EQ(inet_pton(AF_INET, "169.254.169.254", &v4.sin_addr), 1);
  IpAddress out;
  ASSERT_TRUE(IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&v4), out));
  EXPECT_EQ(out.bytes, address("169.254.169.254").bytes);

  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  ASSERT_EQ(inet_pton(AF_INET6, "fd00::1", &v6.sin6_addr), 1);
  ASSERT_TRUE(IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&v6), out));
  EXPECT_EQ(out.bytes, address("fd00::1").bytes);

  sockaddr_in6 mapped{};
  mapped.sin6_family = AF_INET6;
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr), 1);
  ASSERT_TRUE(IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&mapped), out));
  EXPECT_EQ(out.to_string(), "127.0.0.1");

  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_FALSE(IpAddress::from_sockaddr(&unix_like, out));
  EXPECT_FALSE(IpAddress::from_sockaddr(nullptr, out));
}

// --- IpNetwork::parse and contains ---

TEST(IpNetwork, ParsesIpv4CidrOverTheMappedForm) {
  const IpNetwork n = net("10.0.0.0/8");
  EXPECT_EQ(n.prefix, 96 + 8);
  EXPECT_TRUE(n.contains(address("10.0.0.0")));
  EXPECT_TRUE(n.contains(address("10.255.255.255")));
  EXPECT_TRUE(n.contains(address("::ffff:10.9.8.7")));
  EXPECT_FALSE(n.contains(address("11.0.0.0")));
  EXPECT_FALSE(n.contains(address("9.255.255.255")));
  // An IPv6 address whose last 32 bits are 10.x is not in an IPv4 network.
  EXPECT_FALSE(n.contains(address("::a00:1")));
  EXPECT_FALSE(n.contains(address("2001:db8::a00:1")));
}

TEST(IpNetwork, ParsesIpv6Cidr) {
  const IpNetwork n = net("fd00::/8");
  EXPECT_EQ(n.prefix, 8);
  EXPECT_TRUE(n.contains(address("fd00::1")));
  EXPECT_TRUE(n.contains(address("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(n.contains(address("fc00::1")));
  EXPECT_FALSE(n.contains(address("fe00::1")));
}

TEST(IpNetwork, ABareAddressIsASingleHost) {
  const IpNetwork v4 = net("127.0.0.1");
  EXPECT_EQ(v4.prefix, 128);
  EXPECT_TRUE(v4.contains(address("127.0.0.1")));
  EXPECT_FALSE(v4.contains(address("127.0.0.2")));
  const IpNetwork v6 = net("::1");
  EXPECT_EQ(v6.prefix, 128);
  EXPECT_TRUE(v6.contains(address("::1")));
  EXPECT_FALSE(v6.contains(address("::2")));
}

TEST(IpNetwork, PrefixesThatAreNotOnAByteBoundary) {
  const IpNetwork n = net("172.16.0.0/12");
  EXPECT_TRUE(n.contains(address("172.16.0.0")));
  EXPECT_TRUE(n.contains(address("172.31.255.255")));
  EXPECT_FALSE(n.contains(address("172.32.0.0")));
  EXPECT_FALSE(n.contains(address("172.15.255.255")));
  const IpNetwork cgnat = net("100.64.0.0/10");
  EXPECT_TRUE(cgnat.contains(address("100.127.255.255")));
  EXPECT_FALSE(cgnat.contains(address("100.128.0.0")));
  const IpNetwork ula = net("fc00::/7");
  EXPECT_TRUE(ula.contains(address("fc00::")));
  EXPECT_TRUE(ula.contains(address("fdff::1")));
  EXPECT_FALSE(ula.contains(address("fe00::")));
  EXPECT_FALSE(ula.contains(address("fbff::1")));
}

TEST(IpNetwork, HostBitsInTheBaseDoNotMatter) {
  const IpNetwork n = net("10.1.2.3/8");
  EXPECT_TRUE(n.contains(address("10.200.0.1")));
  EXPECT_FALSE(n.contains(address("11.1.2.3")));
}

TEST(IpNetwork, ZeroPrefixes) {
  const IpNetwork all_v4 = net("0.0.0.0/0");
  EXPECT_TRUE(all_v4.contains(address("8.8.8.8")));
  EXPECT_TRUE(all_v4.contains(address("255.255.255.255")));
  EXPECT_FALSE(all_v4.contains(address("::1")));
  const IpNetwork all = net("::/0");
  EXPECT_TRUE(all.contains(address("::1")));
  EXPECT_TRUE(all.contains(address("8.8.8.8")));  // the mapped form is an IPv6 address too
}

TEST(IpNetwork, FullLengthPrefixes) {
  EXPECT_TRUE(net("127.0.0.1/32").contains(address("127.0.0.1")));
  EXPECT_FALSE(net("127.0.0.1/32").contains(address("127.0.0.0")));
  EXPECT_TRUE(net("::1/128").contains(address("::1")));
  EXPECT_FALSE(net("::1/128").contains(address("::")));
}

TEST(IpNetwork, RefusesMalformedNetworks) {
  for (const char* text : {"",
                           "/",
                           "/8",
                           "10.0.0.0/33",
                           "10.0.0.0/-1",
                           "10.0.0.0/",
                           "1.2.3.4/",
                           "::1/129",
                           "::/",
                           "nonsense",
                           "nonsense/8",
                           "10.0.0.0/8/8",
                           "10.0.0.0/8 ",
                           " 10.0.0.0/8",
                           "10.0.0.0/+8",
                           "10.0.0.0/0x8",
                           "10.0.0.0/8a",
                           "10.0.0.0/99999999999999999999",
                           "10.0.0/8",
                           "[::1]/128",
                           "fd00::/8%eth0",
                           "localhost/32"}) {
    IpNetwork out;
    EXPECT_FALSE(IpNetwork::parse(text, out)) << "'" << text << "' parsed";
  }
}

// --- is_non_public ---

TEST(NonPublic, EveryBlockedRangeIsNonPublic) {
  for (const std::string& text : kBlocked) {
    EXPECT_TRUE(is_non_public(address(text))) << text;
  }
}

TEST(NonPublic, PublicUnicastIsPublic) {
  for (const std::string& text : kPublic) {
    EXPECT_FALSE(is_non_public(address(text))) << text;
  }
}

TEST(NonPublic, EmbeddedIpv4IsJudgedByTheIpv4Address) {
  // NAT64 and 6to4 forms of each blocked IPv4 address are blocked too.
  for (const char* v4 :
       {"127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.0.1", "100.64.0.1", "0.0.0.0"}) {
    const IpAddress a = address(v4);
    char nat64[INET6_ADDRSTRLEN];
    char six_to_four[INET6_ADDRSTRLEN];
    std::snprintf(nat64, sizeof nat64, "64:ff9b::%x:%x", (a.bytes[12] << 8) | a.bytes[13],
                  (a.bytes[14] << 8) | a.bytes[15]);
    std::snprintf(six_to_four, sizeof six_to_four, "2002:%x:%x::1", (a.bytes[12] << 8) | a.bytes[13],
                  (a.bytes[14] << 8) | a.bytes[15]);
    EXPECT_TRUE(is_non_public(address(nat64))) << nat64;
    EXPECT_TRUE(is_non_public(address(six_to_four))) << six_to_four;
  }
}

// --- DestinationGuard ---

TEST(DestinationGuard, ADefaultGuardIsDisabledAndPermitsEverything) {
  const DestinationGuard guard;
  EXPECT_FALSE(guard.enabled());
  for (const std::string& text : kBlocked) EXPECT_TRUE(guard.permits(address(text))) << text;
  for (const std::string& text : kPublic) EXPECT_TRUE(guard.permits(address(text))) << text;
}

TEST(DestinationGuard, ADisabledGuardPermitsEverythingWhateverItsAllowList) {
  const DestinationGuard guard(false, {"127.0.0.1/32"});
  EXPECT_FALSE(guard.enabled());
  for (const std::string& text : kBlocked) EXPECT_TRUE(guard.permits(address(text))) << text;
}

TEST(DestinationGuard, AnEnabledGuardRefusesEveryNonPublicAddress) {
  const DestinationGuard guard(true, {});
  EXPECT_TRUE(guard.enabled());
  for (const std::string& text : kBlocked) EXPECT_FALSE(guard.permits(address(text))) << text;
}

TEST(DestinationGuard, AnEnabledGuardPermitsPublicAddresses) {
  const DestinationGuard guard(true, {});
  for (const std::string& text : kPublic) EXPECT_TRUE(guard.permits(address(text))) << text;
}

TEST(DestinationGuard, ASingleHostExemptionPermitsThatHostOnly) {
  const DestinationGuard guard(true, {"127.0.0.1/32"});
  EXPECT_TRUE(guard.permits(address("127.0.0.1")));
  EXPECT_TRUE(guard.permits(address("::ffff:127.0.0.1")));  // the same address, mapped
  EXPECT_FALSE(guard.permits(address("127.0.0.2")));
  EXPECT_FALSE(guard.permits(address("::1")));
  EXPECT_FALSE(guard.permits(address("10.0.0.1")));
  EXPECT_FALSE(guard.permits(address("169.254.169.254")));
  // The exemption is for the address, not for IPv6 forms that embed it.
  EXPECT_FALSE(guard.permits(address("64:ff9b::7f00:1")));
  EXPECT_FALSE(guard.permits(address("2002:7f00:1::1")));
}

TEST(DestinationGuard, ABareAddressExemptsThatHost) {
  const DestinationGuard guard(true, {"10.20.30.40"});
  EXPECT_TRUE(guard.permits(address("10.20.30.40")));
  EXPECT_FALSE(guard.permits(address("10.20.30.41")));
}

TEST(DestinationGuard, APrivateNetworkExemption) {
  const DestinationGuard guard(true, {"10.0.0.0/8"});
  EXPECT_TRUE(guard.permits(address("10.0.0.1")));
  EXPECT_TRUE(guard.permits(address("10.255.255.255")));
  EXPECT_FALSE(guard.permits(address("172.16.0.1")));
  EXPECT_FALSE(guard.permits(address("192.168.1.1")));
  EXPECT_FALSE(guard.permits(address("127.0.0.1")));
}

TEST(DestinationGuard, AnIpv6NetworkExemption) {
  const DestinationGuard guard(true, {"fd00::/8"});
  EXPECT_TRUE(guard.permits(address("fd00::1")));
  EXPECT_TRUE(guard.permits(address("fd12::1")));
  EXPECT_FALSE(guard.permits(address("fc00::1")));
  EXPECT_FALSE(guard.permits(address("::1")));
  EXPECT_FALSE(guard.permits(address("fe80::1")));
}

TEST(DestinationGuard, SeveralExemptionsEachApply) {
  const DestinationGuard guard(true, {"10.0.0.0/8", "fd00::/8", "127.0.0.1/32"});
  EXPECT_TRUE(guard.permits(address("10.1.2.3")));
  EXPECT_TRUE(guard.permits(address("fd00::1")));
  EXPECT_TRUE(guard.permits(address("127.0.0.1")));
  EXPECT_FALSE(guard.permits(address("127.0.0.2")));
  EXPECT_FALSE(guard.permits(address("192.168.0.1")));
  EXPECT_TRUE(guard.permits(address("8.8.8.8")));
}

TEST(DestinationGuard, InvalidAllowEntriesThrowInvalidArgumentNamingTheEntry) {
  for (const char* entry : {"10.0.0.0/33", "nonsense", "1.2.3.4/", "::1/129", "", "10.0.0.0/8 "}) {
    try {
      DestinationGuard guard(true, {"127.0.0.1/32", entry});
      ADD_FAILURE() << "'" << entry << "' was accepted";
    } catch (const std::invalid_argument& error) {
      const std::string what = error.what();
      EXPECT_NE(what.find("allowed_destinations[1]"), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("'") + entry + "'"), std::string::npos) << what;
    }
  }
}

TEST(DestinationGuard, InvalidAllowEntriesThrowEvenWhenTheGuardIsOff) {
  EXPECT_THROW(DestinationGuard(false, {"nonsense"}), std::invalid_argument);
}

TEST(IpAddress, RefusesTextWithAnEmbeddedNul) {
  IpAddress address;
  EXPECT_FALSE(IpAddress::parse(std::string("10.0.0.1\0junk", 13), address));
  IpNetwork network;
  EXPECT_FALSE(IpNetwork::parse(std::string("10.0.0.0\0/8", 11), network));
}

TEST(IpNetwork, AcceptsIpv4MappedNetworksWrittenInIpv6) {
  IpNetwork mapped_all;
  ASSERT_TRUE(IpNetwork::parse("::ffff:0:0/96", mapped_all));
  IpNetwork mapped_ten;
  ASSERT_TRUE(IpNetwork::parse("::ffff:10.0.0.0/104", mapped_ten));
  IpAddress ten;
  IpAddress eleven;
  ASSERT_TRUE(IpAddress::parse("10.1.2.3", ten));
  ASSERT_TRUE(IpAddress::parse("11.1.2.3", eleven));
  EXPECT_TRUE(mapped_all.contains(ten));
  EXPECT_TRUE(mapped_ten.contains(ten));
  EXPECT_FALSE(mapped_ten.contains(eleven));
  IpNetwork too_long;
  EXPECT_FALSE(IpNetwork::parse("10.0.0.0/33", too_long));
  EXPECT_TRUE(IpNetwork::parse("::ffff:10.0.0.0/128", too_long));
}

TEST(NonPublic, LocalUseNat64IsNonPublic) {
  IpAddress address;
  ASSERT_TRUE(IpAddress::parse("64:ff9b:1::7f00:1", address));
  EXPECT_TRUE(passthru::detail::is_non_public(address));
}

}  // namespace
