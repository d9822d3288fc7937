#include "trellis/proxy/forwarding.hpp"

#include <gtest/gtest.h>

namespace {

using namespace trellis;
using proxy::downstream_info;
using proxy::forwarding_options;

http::fields make(std::initializer_list<std::pair<const char*, const char*>> lines) {
  http::fields f;
  for (const auto& [n, v] : lines) EXPECT_TRUE(f.add(n, v));
  return f;
}

downstream_info from(const char* peer, bool secure = false, std::string_view host = "example.com") {
  downstream_info d;
  d.peer = asio::ip::make_address(peer);
  d.secure = secure;
  d.host = host;
  return d;
}

TEST(RemoveHopByHop, DropsTheStandardFieldsAndEveryFieldConnectionNames) {
  auto f = make({{"Host", "a"},
                 {"Connection", "keep-alive, X-Secret"},
                 {"Connection", "x-other"},
                 {"X-Secret", "1"},
                 {"X-Other", "2"},
                 {"Keep-Alive", "timeout=5"},
                 {"Proxy-Connection", "keep-alive"},
                 {"TE", "trailers"},
                 {"Transfer-Encoding", "chunked"},
                 {"Upgrade", "websocket"},
                 {"Accept", "*/*"}});
  proxy::remove_hop_by_hop(f);
  EXPECT_EQ(f.size(), 2u);
  EXPECT_EQ(f.get("Host"), "a");
  EXPECT_EQ(f.get("Accept"), "*/*");
}

TEST(RemoveHopByHop, ConnectionListWithEmptyElementsAndSpaces) {
  auto f = make({{"Connection", " ,  X-A ,,x-b , "}, {"X-A", "1"}, {"X-B", "2"}, {"X-C", "3"}});
  proxy::remove_hop_by_hop(f);
  EXPECT_EQ(f.size(), 1u);
  EXPECT_EQ(f.get("X-C"), "3");
}

TEST(SetForwardingFields, UntrustedPeerStartsANewChain) {
  auto f = make({{"X-Forwarded-For", "10.0.0.1"},
                 {"X-Forwarded-Proto", "https"},
                 {"X-Forwarded-Host", "evil.example"},
                 {"Forwarded", "for=10.0.0.1"}});
  proxy::set_forwarding_fields(f, from("192.0.2.7"), forwarding_options{});
  EXPECT_EQ(f.get("X-Forwarded-For"), "192.0.2.7");
  EXPECT_EQ(f.get("X-Forwarded-Proto"), "http");
  EXPECT_EQ(f.get("X-Forwarded-Host"), "example.com");
  EXPECT_EQ(f.get("Forwarded"), "for=192.0.2.7;host=example.com;proto=http");
  EXPECT_EQ(f.get("Via"), "1.1 trellis");
  EXPECT_EQ(f.count("X-Forwarded-For"), 1u);
}

TEST(SetForwardingFields, TrustedPeerIsAppendedTo) {
  forwarding_options o;
  o.trusted_proxies = net::cidr_set({"10.0.0.0/8"}, "trusted");
  auto f = make({{"X-Forwarded-For", "203.0.113.5"},
                 {"X-Forwarded-For", "198.51.100.1"},
                 {"X-Forwarded-Proto", "https"},
                 {"X-Forwarded-Host", "shop.example"},
                 {"Forwarded", "for=203.0.113.5;proto=https"},
                 {"Via", "1.1 edge"}});
  proxy::set_forwarding_fields(f, from("10.1.2.3", false, "internal:8080"), o);
  EXPECT_EQ(f.get("X-Forwarded-For"), "203.0.113.5, 198.51.100.1, 10.1.2.3");
  EXPECT_EQ(f.get("X-Forwarded-Proto"), "https");  // the original scheme stands
  EXPECT_EQ(f.get("X-Forwarded-Host"), "shop.example");
  EXPECT_EQ(f.get("Forwarded"),
            "for=203.0.113.5;proto=https, for=10.1.2.3;host=\"internal:8080\";proto=http");
  EXPECT_EQ(f.get("Via"), "1.1 edge, 1.1 trellis");
}

TEST(SetForwardingFields, TrustedPeerWithoutIncomingFieldsStillSetsThem) {
  forwarding_options o;
  o.trusted_proxies = net::cidr_set({"127.0.0.1"}, "trusted");
  http::fields f;
  proxy::set_forwarding_fields(f, from("127.0.0.1", true), o);
  EXPECT_EQ(f.get("X-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(f.get("X-Forwarded-Proto"), "https");
  EXPECT_EQ(f.get("Forwarded"), "for=127.0.0.1;host=example.com;proto=https");
}

TEST(SetForwardingFields, Ipv6AndMappedPeers) {
  http::fields f;
  proxy::set_forwarding_fields(f, from("2001:db8::17"), forwarding_options{});
  EXPECT_EQ(f.get("X-Forwarded-For"), "2001:db8::17");
  EXPECT_EQ(f.get("Forwarded"), "for=\"[2001:db8::17]\";host=example.com;proto=http");
  http::fields g;
  proxy::set_forwarding_fields(g, from("::ffff:192.0.2.1"), forwarding_options{});
  EXPECT_EQ(g.get("X-Forwarded-For"), "192.0.2.1");
}

TEST(SetForwardingFields, AddressesAreWrittenAsTheirUsualText) {
  for (const char* a : {"0.0.0.0", "255.255.255.255", "10.200.3.40", "192.0.2.1"}) {
    EXPECT_EQ(proxy::forwarded_for(asio::ip::make_address(a)), a);
    EXPECT_EQ(proxy::forwarded_node(asio::ip::make_address(a)), a);
  }
  EXPECT_EQ(proxy::forwarded_for(asio::ip::make_address("::ffff:10.1.2.3")), "10.1.2.3");
  EXPECT_EQ(proxy::forwarded_for(asio::ip::make_address("2001:db8::1")), "2001:db8::1");
  EXPECT_EQ(proxy::forwarded_node(asio::ip::make_address("2001:db8::1")), "\"[2001:db8::1]\"");
}

TEST(SetForwardingFields, EachFieldFamilyCanBeTurnedOff) {
  forwarding_options o;
  o.x_forwarded = false;
  o.forwarded = false;
  o.via.clear();
  auto f = make({{"X-Forwarded-For", "1.2.3.4"}});
  proxy::set_forwarding_fields(f, from("192.0.2.7"), o);
  // Off means "not touched": an untrusted value is left for the backend to
  // ignore, exactly as a proxy without the feature would.
  EXPECT_EQ(f.get("X-Forwarded-For"), "1.2.3.4");
  EXPECT_FALSE(f.contains("Forwarded"));
  EXPECT_FALSE(f.contains("Via"));
}

TEST(AppendVia, KeepsTheChainAndTheVersion) {
  http::fields f;
  proxy::append_via(f, 0, "edge");
  proxy::append_via(f, 1, "trellis");
  EXPECT_EQ(f.get("Via"), "1.0 edge, 1.1 trellis");
  proxy::append_via(f, 1, "");
  EXPECT_EQ(f.get("Via"), "1.0 edge, 1.1 trellis");
}

}  // namespace
