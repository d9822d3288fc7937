#include "trellis/cache/stats.hpp"

#include <gtest/gtest.h>

namespace trellis::cache {
namespace {

using namespace std::chrono_literals;

TEST(cache_stats, hit_ratio_is_hits_over_lookups) {
  stats s;
  EXPECT_EQ(s.hit_ratio(), 0.0) << "no lookups yet";
  s.hits = 3;
  s.misses = 1;
  EXPECT_EQ(s.lookups(), 4u);
  EXPECT_DOUBLE_EQ(s.hit_ratio(), 0.75);
}

TEST(cache_stats, adding_sums_counts_and_takes_the_last_load_time_of_a_loader) {
  stats a;
  a.hits = 1;
  a.evictions = 2;
  a.loads = 1;
  a.total_load_time = 5ms;
  a.last_load_time = 5ms;
  stats b;
  b.hits = 10;
  b.expirations = 4;
  b.loads = 2;
  b.load_failures = 1;
  b.refreshes = 1;
  b.total_load_time = 9ms;
  b.last_load_time = 2ms;
  a += b;
  EXPECT_EQ(a.hits, 11u);
  EXPECT_EQ(a.evictions, 2u);
  EXPECT_EQ(a.expirations, 4u);
  EXPECT_EQ(a.loads, 3u);
  EXPECT_EQ(a.load_failures, 1u);
  EXPECT_EQ(a.refreshes, 1u);
  EXPECT_EQ(a.total_load_time, 14ms);
  EXPECT_EQ(a.last_load_time, 2ms);
  a += stats{};  // a shard that never loaded leaves the last load time alone
  EXPECT_EQ(a.last_load_time, 2ms);
}

}  // namespace
}  // namespace trellis::cache
