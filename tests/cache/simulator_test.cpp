#include "trellis/cache/simulator.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace trellis::cache::sim {
namespace {

trace keys_only(std::initializer_list<std::uint64_t> keys) {
  trace t;
  for (const auto k : keys) t.push_back({k, 1});
  return t;
}

TEST(cache_simulator, parses_the_text_form) {
  std::size_t bad = 0;
  auto t = parse_trace("# key size\n17 512\n\n  4\t2048\r\n9\n", &bad);
  ASSERT_TRUE(t);
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].key, 17u);
  EXPECT_EQ((*t)[0].size, 512u);
  EXPECT_EQ((*t)[1].key, 4u);
  EXPECT_EQ((*t)[1].size, 2048u);
  EXPECT_EQ((*t)[2].size, 1u) << "size defaults to 1";
  EXPECT_EQ(parse_trace(format_trace(*t))->size(), 3u);
}

TEST(cache_simulator, rejects_malformed_lines_with_their_number) {
  for (const char* text : {"1 1\nx 2\n", "1 1\n3 -4\n", "1 1\n5 0\n", "1 1\n5 6 7\n"}) {
    std::size_t bad = 0;
    auto t = parse_trace(text, &bad);
    EXPECT_FALSE(t) << text;
    EXPECT_EQ(bad, 2u) << text;
  }
}

TEST(cache_simulator, format_and_parse_round_trip) {
  const trace t = zipf(100, 500, 0.9, 3);
  auto back = parse_trace(format_trace(t));
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), t.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ((*back)[i].key, t[i].key);
    EXPECT_EQ((*back)[i].size, t[i].size);
  }
}

TEST(cache_simulator, zipf_is_deterministic_and_skewed) {
  EXPECT_EQ(format_trace(zipf(1000, 2000, 0.9, 1)), format_trace(zipf(1000, 2000, 0.9, 1)));
  EXPECT_NE(format_trace(zipf(1000, 2000, 0.9, 1)), format_trace(zipf(1000, 2000, 0.9, 2)));
  std::map<std::uint64_t, int> count;
  for (const request& r : zipf(1000, 100'000, 1.0, 5)) {
    ASSERT_LT(r.key, 1000u);
    ++count[r.key];
  }
  // With skew 1 the most popular key gets 1/H(1000) = 13.4% of requests.
  EXPECT_NEAR(count[0] / 100'000.0, 0.134, 0.01);
  EXPECT_GT(count[0], count[9]);
  EXPECT_GT(count[9], count[99]);
  EXPECT_GT(count[99], count[999]);
}

TEST(cache_simulator, object_sizes_are_fixed_per_key_and_within_range) {
  for (std::uint64_t k = 0; k < 1000; ++k) {
    EXPECT_GE(object_size(k), 64u);
    EXPECT_LE(object_size(k), 16384u);
    EXPECT_EQ(object_size(k), object_size(k));
  }
  for (const request& r : zipf(50, 200, 0.9, 1)) EXPECT_EQ(r.size, object_size(r.key));
}

TEST(cache_simulator, loop_cycles_through_the_keys) {
  const trace t = loop(3, 7);
  std::vector<std::uint64_t> keys;
  for (const request& r : t) keys.push_back(r.key);
  EXPECT_EQ(keys, (std::vector<std::uint64_t>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(cache_simulator, scan_mix_mixes_in_runs_of_keys_seen_once) {
  const trace t = scan_mix(1000, 200'000, 0.9, 0.3, 500, 9);
  ASSERT_EQ(t.size(), 200'000u);
  std::map<std::uint64_t, int> scan_keys;
  std::size_t scans = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i].key < 1000) continue;
    ++scan_keys[t[i].key];
    if (i > 0 && t[i - 1].key >= 1000) {
      EXPECT_EQ(t[i].key, t[i - 1].key + 1) << "sequential";
    }
    ++scans;
  }
  for (const auto& [key, n] : scan_keys) EXPECT_EQ(n, 1) << key;
  EXPECT_NEAR(static_cast<double>(scans) / 200'000.0, 0.3, 0.05);
}

TEST(cache_simulator, one_hit_mix_has_the_share_of_one_hit_wonders_asked) {
  const trace t = one_hit_mix(1000, 100'000, 0.9, 0.25, 4);
  std::size_t once = 0;
  std::set<std::uint64_t> seen;
  for (const request& r : t) {
    if (r.key >= 1000) {
      EXPECT_TRUE(seen.insert(r.key).second);
      ++once;
    }
  }
  EXPECT_NEAR(static_cast<double>(once) / 100'000.0, 0.25, 0.01);
  EXPECT_LE(distinct_keys(t), seen.size() + 1000);
}

TEST(cache_simulator, replay_counts_what_the_cache_does) {
  // LRU, two entries: 1m 2m 1h 3m(evicts 2) 1h 2m(evicts 3).
  const trace t = keys_only({1, 2, 1, 3, 1, 2});
  const outcome o = replay(t, eviction::lru, 2);
  EXPECT_EQ(o.requests, 6u);
  EXPECT_EQ(o.hits, 2u);
  EXPECT_DOUBLE_EQ(o.hit_ratio(), 2.0 / 6.0);
  // FIFO on the same trace: 1m 2m 1h 3m(evicts 1) 1m(evicts 2) 2m.
  EXPECT_EQ(replay(t, eviction::fifo, 2).hits, 1u);
}

TEST(cache_simulator, replay_by_size_counts_bytes) {
  trace t = {{1, 60}, {2, 60}, {1, 60}};
  EXPECT_EQ(replay(t, eviction::lru, 100, true).hits, 0u) << "the two never fit together";
  EXPECT_EQ(replay(t, eviction::lru, 120, true).hits, 1u);
}

TEST(cache_simulator, optimal_matches_the_textbook_example) {
  // The classic reference string with three frames: Belady's MIN faults 7
  // times (the best possible), so 5 of the 12 references hit.
  const trace t = keys_only({1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5});
  EXPECT_EQ(optimal(t, 3).hits, 5u);
  EXPECT_EQ(replay(t, eviction::lru, 3).hits, 2u);
}

TEST(cache_simulator, optimal_declines_to_store_a_key_needed_later_than_the_rest) {
  // One entry: A B A. Storing B would cost A's hit; MIN keeps A instead.
  EXPECT_EQ(optimal(keys_only({1, 2, 1}), 1).hits, 1u);
  EXPECT_EQ(optimal(keys_only({1, 2, 1}), 0).hits, 0u);
}

TEST(cache_simulator, static_optimal_keeps_the_most_requested_keys) {
  const trace t = keys_only({1, 1, 1, 2, 2, 3});
  EXPECT_EQ(static_optimal(t, 1).hits, 2u);
  EXPECT_EQ(static_optimal(t, 2).hits, 3u);
  EXPECT_EQ(static_optimal(t, 10).hits, 3u);
}

TEST(cache_simulator, no_policy_beats_optimal) {
  const trace t = scan_mix(2000, 30'000, 0.8, 0.2, 300, 2);
  const std::size_t keys = distinct_keys(t);
  for (const std::size_t capacity : {keys / 100, keys / 10}) {
    const auto best = optimal(t, capacity).hits;
    for (const eviction e : all_evictions)
      EXPECT_LE(replay(t, e, capacity).hits, best) << to_string(e) << " at " << capacity;
  }
}

TEST(cache_simulator, bounds_for_several_capacities_match_one_at_a_time) {
  const trace t = one_hit_mix(500, 20'000, 1.0, 0.2, 3);
  const std::vector<std::size_t> capacities = {1, 10, 100, 1000};
  const auto mins = optimal(t, capacities);
  const auto tops = static_optimal(t, capacities);
  ASSERT_EQ(mins.size(), 4u);
  ASSERT_EQ(tops.size(), 4u);
  for (std::size_t i = 0; i < capacities.size(); ++i) {
    EXPECT_EQ(mins[i].hits, optimal(t, capacities[i]).hits);
    EXPECT_EQ(tops[i].hits, static_optimal(t, capacities[i]).hits);
    EXPECT_LE(tops[i].hits, mins[i].hits) << "hindsight of the set never beats MIN";
    if (i > 0) {
      EXPECT_GE(mins[i].hits, mins[i - 1].hits) << "more room never hurts MIN";
    }
  }
}

TEST(cache_simulator, distinct_counts) {
  const trace t = {{5, 10}, {6, 20}, {5, 10}};
  EXPECT_EQ(distinct_keys(t), 2u);
  EXPECT_EQ(distinct_bytes(t), 30u);
}

}  // namespace
}  // namespace trellis::cache::sim
