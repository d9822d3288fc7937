#include "trellis/core/buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "trellis/core/error.hpp"

namespace trellis::core {
namespace {

TEST(byte_buffer, allocates_nothing_until_written) {
  byte_buffer b(1024);
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.view(), "");
}

TEST(byte_buffer, appends_and_consumes_in_order) {
  byte_buffer b(1024);
  ASSERT_TRUE(b.append("hello "));
  ASSERT_TRUE(b.append("world"));
  EXPECT_EQ(b.view(), "hello world");
  b.consume(6);
  EXPECT_EQ(b.view(), "world");
  b.consume(5);
  EXPECT_TRUE(b.empty());
}

TEST(byte_buffer, prepare_commit_exposes_only_committed_bytes) {
  byte_buffer b(64);
  auto space = b.prepare(10);
  ASSERT_TRUE(space);
  ASSERT_EQ(space->size(), 10u);
  std::memcpy(space->data(), "abcdefghij", 10);
  b.commit(4);
  EXPECT_EQ(b.view(), "abcd");
}

TEST(byte_buffer, refuses_to_grow_past_its_cap_and_keeps_its_bytes) {
  byte_buffer b(16);
  ASSERT_TRUE(b.append("0123456789"));
  auto r = b.append("0123456789");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::buffer_full);
  EXPECT_EQ(b.view(), "0123456789");
  EXPECT_TRUE(b.append("012345"));  // exactly up to the cap is fine
  EXPECT_EQ(b.size(), 16u);
  EXPECT_LE(b.capacity(), 16u);
}

TEST(byte_buffer, compacts_before_growing) {
  byte_buffer b(256);
  ASSERT_TRUE(b.append(std::string(200, 'x')));
  const std::size_t cap = b.capacity();
  b.consume(190);
  // 10 readable bytes at the back; 100 more fit only after sliding them.
  ASSERT_TRUE(b.append(std::string(100, 'y')));
  EXPECT_EQ(b.capacity(), cap);
  EXPECT_EQ(b.view(), std::string(10, 'x') + std::string(100, 'y'));
}

TEST(byte_buffer, release_frees_an_empty_buffer_only) {
  byte_buffer b(1024);
  ASSERT_TRUE(b.append("pending"));
  EXPECT_FALSE(b.release());
  EXPECT_GT(b.capacity(), 0u);
  b.consume(b.size());
  EXPECT_TRUE(b.release());
  EXPECT_EQ(b.capacity(), 0u);
  ASSERT_TRUE(b.append("again"));
  EXPECT_EQ(b.view(), "again");
}

TEST(byte_buffer, byte_at_a_time_appends_equal_one_append) {
  const std::string text = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  byte_buffer whole(4096), pieces(4096);
  ASSERT_TRUE(whole.append(text));
  for (char c : text) ASSERT_TRUE(pieces.append(std::string_view(&c, 1)));
  EXPECT_EQ(whole.view(), pieces.view());
}

TEST(byte_buffer, moves_leave_the_source_empty) {
  byte_buffer a(64);
  ASSERT_TRUE(a.append("data"));
  byte_buffer b = std::move(a);
  EXPECT_EQ(b.view(), "data");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): documented state
}

}  // namespace
}  // namespace trellis::core
