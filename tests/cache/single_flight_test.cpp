#include "trellis/cache/single_flight.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "trellis/cache/error.hpp"

namespace trellis::cache {
namespace {

using namespace std::chrono_literals;

// Waits (a bounded number of times) until `n` callers wait for key's call.
template <class Flights>
void await_waiters(const Flights& f, const std::string& key, std::size_t n) {
  for (int i = 0; i < 10'000 && f.waiters(key) < n; ++i) std::this_thread::sleep_for(1ms);
}

TEST(cache_single_flight, concurrent_calls_for_one_key_run_once_and_share_the_value) {
  single_flight<std::string, int> flights;
  constexpr int threads = 8;
  std::atomic<int> calls{0};
  std::vector<int> got(threads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto r = flights.run("k", [&]() -> result<int> {
        ++calls;
        await_waiters(flights, "k", threads - 1);
        return 42;
      });
      got[static_cast<std::size_t>(t)] = r ? *r : -1;
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(calls.load(), 1);
  for (const int v : got) EXPECT_EQ(v, 42);
  EXPECT_EQ(flights.in_flight(), 0u);
}

TEST(cache_single_flight, an_error_reaches_every_waiter_and_is_not_remembered) {
  single_flight<std::string, int> flights;
  constexpr int threads = 6;
  std::atomic<int> calls{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      auto r = flights.run("k", [&]() -> result<int> {
        ++calls;
        await_waiters(flights, "k", threads - 1);
        return unexpected(error::not_found);
      });
      if (!r && r.error() == error::not_found) ++errors;
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(errors.load(), threads);
  auto again = flights.run("k", [&]() -> result<int> {
    ++calls;
    return 7;
  });
  EXPECT_EQ(calls.load(), 2) << "the failure was not kept";
  EXPECT_EQ(again.value_or(0), 7);
}

TEST(cache_single_flight, an_exception_is_rethrown_in_every_waiter) {
  single_flight<int, int> flights;
  constexpr int threads = 4;
  std::atomic<int> calls{0};
  std::atomic<int> caught{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      try {
        (void)flights.run(1, [&]() -> result<int> {
          ++calls;
          for (int i = 0; i < 10'000 && flights.waiters(1) < threads - 1; ++i)
            std::this_thread::sleep_for(1ms);
          throw std::runtime_error("database down");
        });
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "database down") ++caught;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(caught.load(), threads);
  EXPECT_EQ(flights.in_flight(), 0u);
}

TEST(cache_single_flight, different_keys_do_not_wait_for_each_other) {
  single_flight<int, int> flights;
  std::atomic<int> calls{0};
  // The call for key 1 runs a call for key 2 inside it: with one lock per
  // flight rather than per key this would deadlock.
  auto r = flights.run(1, [&]() -> result<int> {
    ++calls;
    auto inner = flights.run(2, [&]() -> result<int> {
      ++calls;
      return 2;
    });
    return *inner + 1;
  });
  EXPECT_EQ(r.value_or(0), 3);
  EXPECT_EQ(calls.load(), 2);
}

TEST(cache_single_flight, try_run_gives_up_when_a_call_is_running) {
  single_flight<int, int> flights;
  std::optional<result<int>> skipped;
  auto r = flights.run(1, [&]() -> result<int> {
    skipped = flights.try_run(1, []() -> result<int> { return 99; });
    return 1;
  });
  EXPECT_EQ(r.value_or(0), 1);
  EXPECT_FALSE(skipped.has_value()) << "the same key was in flight";
  auto ran = flights.try_run(1, []() -> result<int> { return 5; });
  ASSERT_TRUE(ran.has_value());
  EXPECT_EQ(ran->value_or(0), 5);
}

}  // namespace
}  // namespace trellis::cache
