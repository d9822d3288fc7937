#include "trellis/cache/loading_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace trellis::cache {
namespace {

using namespace std::chrono_literals;
using string_loading_cache = loading_cache<std::string, std::string>;

TEST(loading_cache, loads_on_a_miss_and_serves_hits_from_memory) {
  manual_clock clock;
  int calls = 0;
  string_loading_cache c({.ttl = 60s, .clock = clock.function()},
                         [&](const std::string& key) -> result<std::string> {
                           ++calls;
                           clock.advance(20ms);  // what the load costs
                           return "value of " + key;
                         });
  EXPECT_EQ(c.get("a").value_or(""), "value of a");
  EXPECT_EQ(c.get("a").value_or(""), "value of a");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c.get_if_present("b"), std::nullopt);
  const stats s = c.counters();
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.load_failures, 0u);
  EXPECT_EQ(s.total_load_time, 20ms);
  EXPECT_EQ(s.last_load_time, 20ms);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
}

TEST(loading_cache, reloads_after_the_ttl) {
  manual_clock clock;
  int calls = 0;
  loading_cache<int, int> c({.ttl = 10s, .beta = 0, .clock = clock.function()},
                            [&](const int& k) -> result<int> { return k * 10 + ++calls; });
  EXPECT_EQ(c.get(1).value_or(0), 11);
  clock.advance(9s);
  EXPECT_EQ(c.get(1).value_or(0), 11);
  clock.advance(1s);
  EXPECT_EQ(c.get(1).value_or(0), 12) << "expired: loaded again";
  EXPECT_EQ(c.counters().expirations, 1u);
}

TEST(loading_cache, errors_are_returned_and_not_cached) {
  int calls = 0;
  loading_cache<int, int> c({}, [&](const int&) -> result<int> {
    if (++calls == 1) return unexpected(error::not_found);
    return 5;
  });
  auto first = c.get(1);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error(), error::not_found);
  EXPECT_EQ(c.get(1).value_or(0), 5);
  EXPECT_EQ(calls, 2);
  const stats s = c.counters();
  EXPECT_EQ(s.load_failures, 1u);
  EXPECT_EQ(s.loads, 1u);
}

TEST(loading_cache, n_threads_missing_one_key_cause_one_load) {
  constexpr int threads = 8;
  std::atomic<int> calls{0};
  loading_cache<std::string, int>* cache = nullptr;
  loading_cache<std::string, int> c({}, [&](const std::string& key) -> result<int> {
    ++calls;
    // Hold the load until every other thread is waiting for it (bounded).
    for (int i = 0; i < 10'000 && cache->waiters(key) < threads - 1; ++i)
      std::this_thread::sleep_for(1ms);
    return 7;
  });
  cache = &c;
  std::vector<std::thread> pool;
  std::atomic<int> sevens{0};
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] { sevens += c.get("hot").value_or(0) == 7; });
  for (auto& th : pool) th.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(sevens.load(), threads);
  EXPECT_EQ(c.counters().loads, 1u);
  EXPECT_EQ(c.loads_in_flight(), 0u);
}

TEST(loading_cache, a_failed_load_reaches_every_waiter_then_is_retried) {
  constexpr int threads = 5;
  std::atomic<int> calls{0};
  loading_cache<int, int>* cache = nullptr;
  loading_cache<int, int> c({}, [&](const int& key) -> result<int> {
    if (++calls == 1) {
      for (int i = 0; i < 10'000 && cache->waiters(key) < threads - 1; ++i)
        std::this_thread::sleep_for(1ms);
      return unexpected(std::make_error_code(std::errc::connection_refused));
    }
    return 1;
  });
  cache = &c;
  std::vector<std::thread> pool;
  std::atomic<int> refused{0};
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      auto r = c.get(3);
      refused += !r && r.error() == std::errc::connection_refused;
    });
  for (auto& th : pool) th.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(refused.load(), threads);
  EXPECT_EQ(c.get(3).value_or(0), 1);
  EXPECT_EQ(calls.load(), 2);
}

// XFetch with the random draw fixed: a draw r adds delta * beta * -ln(r)
// to now before comparing with the expiry.
TEST(loading_cache, early_refresh_never_happens_with_a_draw_of_one) {
  manual_clock clock;
  int calls = 0;
  loading_cache<int, int> c(
      {.ttl = 60s, .beta = 1.0, .random = [] { return 1.0; }, .clock = clock.function()},
      [&](const int&) -> result<int> {
        clock.advance(2s);
        return ++calls;
      });
  EXPECT_EQ(c.get(1).value_or(0), 1);
  clock.advance(59s);  // one second before expiry
  EXPECT_EQ(c.get(1).value_or(0), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c.counters().refreshes, 0u);
}

TEST(loading_cache, early_refresh_starts_within_delta_beta_ln_r_of_expiry) {
  manual_clock clock;
  int calls = 0;
  const double r = std::exp(-10.0);  // -ln(r) = 10: refresh within 10 * delta * beta
  loading_cache<int, int> c(
      {.ttl = 60s, .beta = 1.0, .random = [r] { return r; }, .clock = clock.function()},
      [&](const int&) -> result<int> {
        clock.advance(2s);  // delta = 2 s: window 20 s
        return ++calls;
      });
  EXPECT_EQ(c.get(1).value_or(0), 1);  // expires 60 s after the load ended
  clock.advance(39s);                  // 21 s before expiry: outside the window
  EXPECT_EQ(c.get(1).value_or(0), 1);
  EXPECT_EQ(calls, 1);
  clock.advance(2s);  // 19 s before expiry: inside
  EXPECT_EQ(c.get(1).value_or(0), 2) << "the refreshing caller gets the new value";
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(c.counters().refreshes, 1u);
  clock.advance(30s);  // the old value's expiry has passed; the new one lives on
  EXPECT_EQ(c.get(1).value_or(0), 2);
  EXPECT_EQ(calls, 2);
}

TEST(loading_cache, a_failed_early_refresh_keeps_serving_the_value) {
  manual_clock clock;
  int calls = 0;
  loading_cache<int, int> c(
      {.ttl = 60s, .beta = 5.0, .random = [] { return 0.5; }, .clock = clock.function()},
      [&](const int&) -> result<int> {
        clock.advance(10s);
        if (++calls > 1) return unexpected(error::not_found);
        return 1;
      });
  EXPECT_EQ(c.get(1).value_or(0), 1);
  clock.advance(30s);  // 30 s left; window 10 * 5 * ln 2 = 34.7 s
  EXPECT_EQ(c.get(1).value_or(0), 1);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(c.counters().load_failures, 1u);
}

TEST(loading_cache, a_throwing_loader_throws_from_get_on_a_miss) {
  int calls = 0;
  loading_cache<int, int> c({}, [&](const int&) -> result<int> {
    ++calls;
    throw std::runtime_error("store down");
  });
  EXPECT_THROW((void)c.get(2), std::runtime_error) << "a miss has nothing else to give";
  EXPECT_THROW((void)c.get(2), std::runtime_error);
  EXPECT_EQ(calls, 2) << "nothing was cached";
  EXPECT_EQ(c.counters().load_failures, 2u);
}

TEST(loading_cache, a_refresh_that_throws_keeps_serving_the_value) {
  manual_clock clock;
  int calls = 0;
  // A draw this small makes every hit refresh.
  loading_cache<int, int> c(
      {.ttl = 60s, .beta = 1.0, .random = [] { return 1e-30; }, .clock = clock.function()},
      [&](const int& k) -> result<int> {
        clock.advance(1s);
        if (++calls > 1) throw std::runtime_error("store down");
        return k;
      });
  EXPECT_EQ(c.get(7).value_or(0), 7);
  EXPECT_EQ(c.get(7).value_or(0), 7);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(c.counters().load_failures, 1u);
  EXPECT_EQ(c.counters().refreshes, 1u);
}

TEST(loading_cache, put_and_erase) {
  int calls = 0;
  loading_cache<int, int> c({}, [&](const int&) -> result<int> { return ++calls; });
  EXPECT_TRUE(c.put(1, 100));
  EXPECT_EQ(c.get(1).value_or(0), 100);
  EXPECT_TRUE(c.erase(1));
  EXPECT_EQ(c.get(1).value_or(0), 1);
  EXPECT_EQ(c.size(), 1u);
}

TEST(loading_cache, byte_capacity_weighs_the_values) {
  loading_cache<int, std::string> c(
      {.capacity = 100,
       .weigher = [](const int&, const std::string& v) { return v.size(); },
       .shards = 1},
      [](const int& k) -> result<std::string> {
        return std::string(40, static_cast<char>('a' + k));
      });
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(c.get(k));
  EXPECT_LE(c.size(), 2u) << "two 40-byte values fit in 100 bytes, three do not";
}

}  // namespace
}  // namespace trellis::cache
