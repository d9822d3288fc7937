#include "trellis/cache/error.hpp"

#include <gtest/gtest.h>

#include <system_error>

namespace trellis::cache {
namespace {

TEST(cache_error, codes_have_messages_and_portable_equivalents) {
  const std::error_code full = error::queue_full;
  EXPECT_STREQ(full.category().name(), "trellis.cache");
  EXPECT_EQ(full.message(), "write-behind queue full");
  EXPECT_EQ(full, std::errc::resource_unavailable_try_again);
  EXPECT_EQ(std::error_code(error::not_found).message(), "no value for the key");
  EXPECT_EQ(std::error_code(error::shut_down).message(), "cache shut down");
  EXPECT_NE(std::error_code(error::shut_down), std::errc::resource_unavailable_try_again);
}

}  // namespace
}  // namespace trellis::cache
