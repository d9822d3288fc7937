#include "trellis/codec/ascii.hpp"

#include <gtest/gtest.h>

namespace trellis::codec {
namespace {

TEST(ascii, compares_names_without_regard_to_case) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Content-Length", "Content-Lengths"));
  EXPECT_FALSE(iequals("a", "b"));
  // Only ASCII letters fold: '@' (0x40) and '`' (0x60) differ by the case bit but are not letters.
  EXPECT_FALSE(iequals("@", "`"));
  EXPECT_FALSE(iequals("\xC0", "\xE0"));
  static_assert(iequals("HOST", "host"));
}

TEST(ascii, trims_only_spaces_and_tabs) {
  EXPECT_EQ(trim_ows(" \t value \t"), "value");
  EXPECT_EQ(trim_ows("\r\nvalue\r\n"), "\r\nvalue\r\n");
  EXPECT_EQ(trim_ows("   "), "");
  EXPECT_EQ(trim_ows(""), "");
  EXPECT_EQ(trim_ows("a b"), "a b");
}

}  // namespace
}  // namespace trellis::codec
