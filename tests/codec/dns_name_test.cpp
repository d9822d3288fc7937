#include "trellis/codec/dns/name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <unordered_set>

namespace trellis::dns {
namespace {

name N(std::string_view text) {
  return name::from_text(text).value();
}

TEST(DnsName, TextToWireAndBack) {
  const auto n = N("www.Example.com.");
  EXPECT_EQ(n.wire(), std::string_view("\3www\7Example\3com\0", 17));
  EXPECT_EQ(n.to_string(), "www.Example.com.");
  EXPECT_EQ(n.label_count(), 3u);
  EXPECT_EQ(n.label(1), "Example");
  EXPECT_TRUE(name{}.is_root());
  EXPECT_EQ(name{}.to_string(), ".");
  EXPECT_EQ(N(".").wire(), std::string_view("\0", 1));
}

TEST(DnsName, RelativeNamesUseTheOrigin) {
  const auto origin = N("example.com.");
  EXPECT_EQ(name::from_text("www", origin).value().to_string(), "www.example.com.");
  EXPECT_EQ(name::from_text("@", origin).value(), origin);
  EXPECT_EQ(name::from_text("a.b.", origin).value().to_string(), "a.b.");
  // Without an origin, text without a trailing dot is taken from the root.
  EXPECT_EQ(N("example.com"), N("example.com."));
}

TEST(DnsName, EscapesRoundTrip) {
  const auto n = name::from_text(R"(a\.b\032c\\d\"e.test.)").value();
  EXPECT_EQ(n.label_count(), 2u);
  EXPECT_EQ(n.label(0), std::string_view("a.b c\\d\"e"));
  EXPECT_EQ(n.to_string(), R"(a\.b\032c\\d\"e.test.)");
  EXPECT_EQ(name::from_text(n.to_string()).value(), n);
  // Every octet value survives text.
  std::string all;
  for (int c = 0; c < 63; ++c) all.push_back(static_cast<char>(c * 4 + 1));
  const auto odd = N("x.").prepend(all).value();
  EXPECT_EQ(name::from_text(odd.to_string()).value().wire(), odd.wire());
}

TEST(DnsName, RejectsBadText) {
  EXPECT_EQ(name::from_text("").error(), error::bad_name_text);
  EXPECT_EQ(name::from_text("a..b").error(), error::bad_name_text);
  EXPECT_EQ(name::from_text(".a").error(), error::bad_name_text);
  EXPECT_EQ(name::from_text("a\\").error(), error::bad_name_text);
  EXPECT_EQ(name::from_text("a\\25").error(), error::bad_name_text);
  EXPECT_EQ(name::from_text("a\\256").error(), error::bad_name_text);
}

TEST(DnsName, EnforcesLengthLimits) {
  const std::string l63(63, 'a'), l64(64, 'a');
  EXPECT_TRUE(name::from_text(l63 + ".com."));
  EXPECT_EQ(name::from_text(l64 + ".com.").error(), error::label_too_long);
  // 4 labels of 63 + 1 of 1: 4*64 + 2 + 1 = 259 > 255.
  const std::string long_name = l63 + "." + l63 + "." + l63 + "." + l63 + ".a.";
  EXPECT_EQ(name::from_text(long_name).error(), error::name_too_long);
  // Exactly 255 octets: 3*64 + 62 + 1 (root) = 255.
  const std::string l61(61, 'b');
  const auto max = name::from_text(l63 + "." + l63 + "." + l63 + "." + l61 + ".");
  ASSERT_TRUE(max) << max.error().message();
  EXPECT_EQ(max->wire().size(), 255u);
  EXPECT_EQ(max->prepend("x").error(), error::name_too_long);
  EXPECT_EQ(N("a.").prepend(l64).error(), error::label_too_long);
  EXPECT_EQ(N("a.").prepend("").error(), error::bad_name_text);
}

TEST(DnsName, ComparisonIsCaseInsensitive) {
  EXPECT_EQ(N("WWW.example.COM."), N("www.EXAMPLE.com."));
  EXPECT_EQ(N("WWW.example.COM.").hash(), N("www.EXAMPLE.com.").hash());
  EXPECT_NE(N("www.example.com."), N("ww.example.com."));
  std::unordered_set<name> set{N("A.test.")};
  EXPECT_TRUE(set.contains(N("a.TEST.")));
}

TEST(DnsName, CanonicalOrderOfRfc4034) {
  // The example list of RFC 4034 §6.1, in order.
  const char* ordered[] = {"example.",         "a.example.",      "yljkjljk.a.example.",
                           "Z.a.example.",     "zABC.a.EXAMPLE.", "z.example.",
                           "\\001.z.example.", "*.z.example.",    "\\200.z.example."};
  for (std::size_t i = 0; i + 1 < std::size(ordered); ++i) {
    EXPECT_TRUE(N(ordered[i]) < N(ordered[i + 1])) << ordered[i] << " < " << ordered[i + 1];
    EXPECT_FALSE(N(ordered[i + 1]) < N(ordered[i])) << ordered[i + 1];
  }
  EXPECT_FALSE(N("a.example.") < N("A.EXAMPLE."));
}

TEST(DnsName, SubdomainsParentsAndConcat) {
  EXPECT_TRUE(N("a.b.example.").is_subdomain_of(N("EXAMPLE.")));
  EXPECT_TRUE(N("example.").is_subdomain_of(N("example.")));
  EXPECT_TRUE(N("example.").is_subdomain_of(name{}));
  EXPECT_FALSE(N("badexample.").is_subdomain_of(N("example.")));
  EXPECT_FALSE(N("example.").is_subdomain_of(N("a.example.")));
  EXPECT_EQ(N("www.example.com.").parent(), N("example.com."));
  EXPECT_TRUE(N("com.").parent().is_root());
  EXPECT_EQ(N("www.").concat(N("example.com.")).value(), N("www.example.com."));
}

TEST(DnsName, FromWireValidates) {
  EXPECT_TRUE(name::from_wire(std::string_view("\1a\0", 3)));
  EXPECT_FALSE(name::from_wire(std::string_view("\1a", 2)));
  EXPECT_FALSE(name::from_wire(std::string_view("\1a\0x", 4)));
  EXPECT_FALSE(name::from_wire(std::string_view("\xC0\x0C", 2)));
}

TEST(DnsName, AssignWireValidatesAndKeepsTheNameOnError) {
  name n = N("www.example.com.");
  EXPECT_EQ(n.assign_wire(std::string_view("\1a", 2)), error::truncated_message);
  EXPECT_EQ(n, N("www.example.com.")) << "unchanged on an error";
  EXPECT_FALSE(n.assign_wire(std::string_view("\1a\0", 3)));
  EXPECT_EQ(n, N("a."));
  // Its own parent, inline and on the heap: the octets are copied first.
  name self = N("www.example.com.");
  EXPECT_FALSE(self.assign_wire(self.wire().substr(4)));
  EXPECT_EQ(self, N("example.com."));
  const std::string long_text = std::string(40, 'x') + "." + std::string(40, 'y') + ".example.";
  name heap = N(long_text);
  EXPECT_FALSE(heap.assign_wire(heap.wire().substr(41)));
  EXPECT_EQ(heap, N(std::string(40, 'y') + ".example."));
}

// Names up to inline_capacity octets live in the object, longer ones on the
// heap; copies, moves and assignments between the two must keep the octets.
TEST(DnsName, ShortAndLongNamesCopyMoveAndAssign) {
  const name short_name = N("www.example.com.");
  const std::string long_text = std::string(40, 'x') + "." + std::string(40, 'y') + ".example.";
  const name long_name = N(long_text);
  ASSERT_LE(short_name.wire().size(), name::inline_capacity);
  ASSERT_GT(long_name.wire().size(), name::inline_capacity);
  // The boundary itself: inline_capacity octets exactly, then one more.
  const name at_capacity = N(std::string(name::inline_capacity - 2, 'c') + ".");
  const name over_capacity = N(std::string(name::inline_capacity - 1, 'd') + ".");
  EXPECT_EQ(at_capacity.wire().size(), name::inline_capacity);
  EXPECT_EQ(over_capacity.wire().size(), name::inline_capacity + 1);
  EXPECT_EQ(over_capacity.to_string(), std::string(name::inline_capacity - 1, 'd') + ".");

  for (const name* original : {&short_name, &long_name, &at_capacity, &over_capacity}) {
    name copy = *original;
    EXPECT_EQ(copy.wire(), original->wire());
    name moved = std::move(copy);
    EXPECT_EQ(moved.wire(), original->wire());
    EXPECT_TRUE(copy.is_root()) << "a moved-from name is the root";  // NOLINT(bugprone-use-after-move)
    // Assignment across the two storages, both ways.
    name target = *original == short_name ? long_name : short_name;
    target = *original;
    EXPECT_EQ(target.wire(), original->wire());
    target = std::move(moved);
    EXPECT_EQ(target.wire(), original->wire());
    const name& same = target;
    target = same;  // self-assignment keeps the name
    EXPECT_EQ(target.wire(), original->wire());
  }
  EXPECT_EQ(long_name.to_string(), long_text);
  EXPECT_EQ(long_name.parent().to_string(), std::string(40, 'y') + ".example.");
  EXPECT_EQ(N("www").concat(long_name).value().to_string(), "www." + long_text);
}

}  // namespace
}  // namespace trellis::dns
