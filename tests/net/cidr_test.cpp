#include "trellis/net/cidr.hpp"

#include <gtest/gtest.h>

#include "trellis/core/error.hpp"

namespace {

using trellis::net::cidr;
using trellis::net::cidr_set;

asio::ip::address ip(const char* s) {
  return asio::ip::make_address(s);
}

TEST(Cidr, Ipv4BlockContainsItsAddressesOnly) {
  auto c = cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(ip("10.0.0.0")));
  EXPECT_TRUE(c->contains(ip("10.255.255.255")));
  EXPECT_FALSE(c->contains(ip("11.0.0.0")));
  EXPECT_FALSE(c->contains(ip("9.255.255.255")));
  EXPECT_EQ(c->to_string(), "10.0.0.0/8");
}

TEST(Cidr, PrefixNotOnAByteBoundary) {
  auto c = cidr::parse("192.168.4.0/22");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(ip("192.168.4.1")));
  EXPECT_TRUE(c->contains(ip("192.168.7.255")));
  EXPECT_FALSE(c->contains(ip("192.168.8.0")));
  EXPECT_FALSE(c->contains(ip("192.168.3.255")));
}

TEST(Cidr, BareAddressIsASingleHost) {
  auto c = cidr::parse("127.0.0.1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix_length(), 32u);
  EXPECT_TRUE(c->contains(ip("127.0.0.1")));
  EXPECT_FALSE(c->contains(ip("127.0.0.2")));
  auto v6 = cidr::parse("::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->prefix_length(), 128u);
  EXPECT_TRUE(v6->contains(ip("::1")));
}

TEST(Cidr, ZeroPrefixMatchesTheWholeFamily) {
  auto all4 = cidr::parse("0.0.0.0/0");
  ASSERT_TRUE(all4);
  EXPECT_TRUE(all4->contains(ip("203.0.113.9")));
  EXPECT_FALSE(all4->contains(ip("2001:db8::1")));
  auto all6 = cidr::parse("::/0");
  ASSERT_TRUE(all6);
  EXPECT_TRUE(all6->contains(ip("2001:db8::1")));
  EXPECT_FALSE(all6->contains(ip("203.0.113.9")));
}

TEST(Cidr, Ipv6Block) {
  auto c = cidr::parse("fd00::/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(ip("fd12:3456::1")));
  EXPECT_FALSE(c->contains(ip("fe80::1")));
  EXPECT_EQ(c->to_string(), "fd00::/8");
}

TEST(Cidr, Ipv4BlockMatchesIpv4MappedPeers) {
  auto c = cidr::parse("127.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(ip("::ffff:127.0.0.1")));
  EXPECT_FALSE(c->contains(ip("::ffff:128.0.0.1")));
}

TEST(Cidr, RejectsMalformedBlocks) {
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1",
                          "10.0.0.0/8x", "10.0.0/8", "example.com/8", "10.1.0.0/8",
                          "fe80::1%1/128", "10.0.0.0/0008", "fd00::1/8"}) {
    EXPECT_FALSE(cidr::parse(bad)) << bad;
  }
}

TEST(CidrSet, MatchesAnyBlockAndNamesTheBadEntry) {
  cidr_set set({"10.0.0.0/8", "::1"}, "trusted");
  EXPECT_TRUE(set.contains(ip("10.1.2.3")));
  EXPECT_TRUE(set.contains(ip("::1")));
  EXPECT_FALSE(set.contains(ip("127.0.0.1")));
  EXPECT_TRUE(cidr_set().empty());
  try {
    cidr_set({"10.0.0.0/8", "nonsense"}, "proxy.trusted_proxies");
    FAIL() << "expected a config_error";
  } catch (const trellis::core::config_error& e) {
    EXPECT_EQ(e.field(), "proxy.trusted_proxies[1]");
  }
}

}  // namespace
