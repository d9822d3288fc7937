#include "trellis/cache/sharded_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace trellis::cache {
namespace {

using namespace std::chrono_literals;

TEST(sharded_cache, splits_the_capacity_between_power_of_two_shards) {
  sharded_cache<int, int> c({.cache = {.capacity = 1000}, .shards = 5});
  EXPECT_EQ(c.shard_count(), 8u);
  EXPECT_EQ(c.shard_capacity(), 125u);
  sharded_cache<int, int> tiny({.cache = {.capacity = 3}, .shards = 16});
  EXPECT_EQ(tiny.shard_count(), 2u) << "no shard may hold nothing";
  EXPECT_EQ(tiny.shard_capacity(), 2u);
}

TEST(sharded_cache, behaves_as_a_cache) {
  manual_clock clock;
  sharded_cache<std::string, int> c({.cache = {.capacity = 64, .clock = clock.function()}});
  EXPECT_FALSE(c.get("a"));
  EXPECT_TRUE(c.put("a", 1));
  EXPECT_TRUE(c.put("b", 2, 10s));
  EXPECT_EQ(c.get("a"), 1);
  EXPECT_EQ(c.peek("b"), 2);
  clock.advance(10s);
  EXPECT_FALSE(c.get("b"));
  EXPECT_TRUE(c.put_until("c", 3, clock.now() + 1s));
  clock.advance(1s);
  EXPECT_EQ(c.purge_expired(), 1u);
  EXPECT_TRUE(c.erase("a"));
  EXPECT_EQ(c.size(), 0u);
  const stats s = c.counters();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.expirations, 2u);
  EXPECT_EQ(s.inserts, 3u);
}

TEST(sharded_cache, total_size_stays_within_the_summed_shard_capacities) {
  sharded_cache<int, int> c({.cache = {.capacity = 100}, .shards = 4});
  for (int i = 0; i < 10'000; ++i) c.put(i, i);
  EXPECT_LE(c.size(), 100u);
  EXPECT_GT(c.size(), 90u) << "keys spread evenly: every shard fills";
  EXPECT_EQ(c.weight(), c.size());
  c.clear();
  EXPECT_EQ(c.size(), 0u);
}

// Many threads on overlapping keys, with TTLs and a clock moved by another
// thread. Run under ThreadSanitizer (the tsan preset) this is the data-race
// check of the shards' locking; here it also checks the counters add up.
TEST(sharded_cache, threads_share_it_safely) {
  manual_clock clock;
  sharded_cache<int, std::string> c(
      {.cache = {.capacity = 256, .policy = eviction::s3fifo, .clock = clock.function()},
       .shards = 8});
  constexpr int threads = 4;
  constexpr int ops = 20'000;
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    for (int i = 0; i < 100'000 && !stop.load(); ++i) {
      clock.advance(1ms);
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> workers;
  std::atomic<std::uint64_t> gets{0};
  std::atomic<int> wrong{0};
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::uint64_t x = static_cast<std::uint64_t>(t) + 1;
      for (int i = 0; i < ops; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const int key = static_cast<int>((x >> 33) % 1000);
        if (i % 4 == 0) {
          c.put(key, std::to_string(key), std::chrono::milliseconds(1 + key % 50));
        } else if (i % 97 == 0) {
          c.erase(key);
        } else {
          ++gets;
          if (auto v = c.get(key); v && *v != std::to_string(key)) ++wrong;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  stop = true;
  ticker.join();
  const stats s = c.counters();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(s.hits + s.misses, gets.load());
  EXPECT_GT(s.hits, 0u);
  EXPECT_LE(c.size(), 256u);
}

}  // namespace
}  // namespace trellis::cache
