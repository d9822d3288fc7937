// Tests of gateway::redis_rate_limit_store against a real redis-server on
// 127.0.0.1: the arithmetic is the local store's, charges are all or
// nothing, keys expire by themselves, two "gateways" (separate runtimes,
// separate connections) share one limit exactly, and a Redis that is gone
// is reported as unavailable.
#include "trellis/gateway/redis_rate_limit_store.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.hpp"
#include "trellis/core/runtime.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;

// Runs `body` on each of `rt`'s workers (once per worker) and returns when
// all have finished; the runtime then stops.
void run_on_workers(core::runtime& rt, std::function<asio::awaitable<void>(std::size_t)> body) {
  std::atomic<std::size_t> left{rt.size()};
  rt.spawn_on_all(
      [&](core::worker& w) -> asio::awaitable<void> {
        co_await body(w.index());
        if (--left == 0) rt.drain();
      },
      "test");
  rt.run();
}

// What redis-cli printed, without the line end.
std::string cli_out(const test::redis_server& redis, std::vector<std::string> args) {
  auto r = redis.cli(std::move(args));
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) r.out.pop_back();
  return r.out;
}

rate_limit_policy bucket(std::int64_t limit, std::chrono::microseconds period,
                         std::int64_t burst = 0, std::string name = "default") {
  rate_limit_policy p;
  p.name = std::move(name);
  p.limit = limit;
  p.period = period;
  p.burst = burst;
  return p;
}

struct one_charge {
  rate_limit_decision decision;
  result<bool> allowed = false;
};

// One acquire of `cost` for `key` under `p`.
asio::awaitable<one_charge> charge(rate_limit_store& store, const rate_limit_policy& p,
                                   std::string key, std::int64_t cost = 1) {
  rate_limit_charge c{&p, key};
  one_charge out;
  std::span<const rate_limit_charge> cs(&c, 1);
  std::span<rate_limit_decision> ds(&out.decision, 1);
  out.allowed = co_await store.acquire(cs, cost, std::chrono::microseconds(0), ds);
  co_return out;
}

TEST(RedisRateLimitStore, AdmitsTheBurstThenRefusesWithTheTimeToWait) {
  REQUIRE_REDIS();
  test::redis_server redis;
  core::runtime rt({.workers = 1, .handle_signals = false});
  redis_rate_limit_store store(rt, redis.endpoint());
  // 5 per hour, burst 5: T = 720 s, so time passing during the test is
  // far below one token.
  const auto p = bucket(5, std::chrono::hours(1));
  std::vector<one_charge> got;
  run_on_workers(rt, [&](std::size_t) -> asio::awaitable<void> {
    for (int i = 0; i < 7; ++i) got.push_back(co_await charge(store, p, "ip:192.0.2.1"));
  });
  ASSERT_EQ(got.size(), 7u);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(got[i].allowed) << got[i].allowed.error().message();
    EXPECT_TRUE(*got[i].allowed) << i;
    EXPECT_EQ(got[i].decision.remaining, 4 - i) << i;
  }
  for (int i = 5; i < 7; ++i) {
    ASSERT_TRUE(got[i].allowed);
    EXPECT_FALSE(*got[i].allowed) << i;
    EXPECT_EQ(got[i].decision.remaining, 0);
    // The next token is T = 720 s after the first request, less what passed.
    EXPECT_GT(got[i].decision.retry_after, 700s);
    EXPECT_LE(got[i].decision.retry_after, 720s);
  }
  // The state is in Redis under the documented key, with a time to live
  // of about the time until the bucket is full again (5 x 720 s).
  const auto ttl = cli_out(redis, {"PTTL", "trellis:rl:default:ip:192.0.2.1"});
  EXPECT_GT(std::stoll(ttl), 3'500'000) << ttl;
  EXPECT_LE(std::stoll(ttl), 3'600'000) << ttl;
}

TEST(RedisRateLimitStore, ACostThatCanNeverFitIsRefusedWithoutCharging) {
  REQUIRE_REDIS();
  test::redis_server redis;
  core::runtime rt({.workers = 1, .handle_signals = false});
  redis_rate_limit_store store(rt, redis.endpoint());
  const auto p = bucket(5, std::chrono::hours(1));
  one_charge big, small;
  run_on_workers(rt, [&](std::size_t) -> asio::awaitable<void> {
    big = co_await charge(store, p, "k", 6);
    small = co_await charge(store, p, "k", 5);
  });
  ASSERT_TRUE(big.allowed);
  EXPECT_FALSE(*big.allowed);
  EXPECT_TRUE(big.decision.over_capacity);
  ASSERT_TRUE(small.allowed);
  EXPECT_TRUE(*small.allowed) << "the refused cost took nothing";
}

TEST(RedisRateLimitStore, ChargesEveryPolicyOrNone) {
  REQUIRE_REDIS();
  test::redis_server redis;
  core::runtime rt({.workers = 1, .handle_signals = false});
  redis_rate_limit_store store(rt, redis.endpoint());
  const auto roomy = bucket(100, std::chrono::hours(1), 0, "roomy");
  const auto tight = bucket(2, std::chrono::hours(1), 0, "tight");
  std::vector<bool> both;
  one_charge after;
  run_on_workers(rt, [&](std::size_t) -> asio::awaitable<void> {
    const std::string key = "sub:alice";
    const rate_limit_charge cs[] = {{&roomy, key}, {&tight, key}};
    for (int i = 0; i < 4; ++i) {
      rate_limit_decision ds[2];
      auto r = co_await store.acquire(cs, 1, std::chrono::microseconds(0), ds);
      both.push_back(r && *r);
    }
    after = co_await charge(store, roomy, key);
  });
  EXPECT_EQ(both, (std::vector<bool>{true, true, false, false}));
  ASSERT_TRUE(after.allowed);
  // roomy was charged for the two admitted requests only, not the refused
  // ones: 100 - 2 - this one.
  EXPECT_EQ(after.decision.remaining, 97);
}

TEST(RedisRateLimitStore, SlidingWindowCountsDownAndExpires) {
  REQUIRE_REDIS();
  test::redis_server redis;
  core::runtime rt({.workers = 1, .handle_signals = false});
  redis_rate_limit_store store(rt, redis.endpoint());
  rate_limit_policy p;
  p.name = "quota";
  p.algorithm = rate_limit_algorithm::sliding_window;
  p.limit = 3;
  p.period = std::chrono::hours(1);
  std::vector<one_charge> got;
  run_on_workers(rt, [&](std::size_t) -> asio::awaitable<void> {
    for (int i = 0; i < 4; ++i) got.push_back(co_await charge(store, p, "k"));
  });
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(*got[i].allowed) << i;
    EXPECT_EQ(got[i].decision.remaining, 2 - i);
  }
  EXPECT_FALSE(*got[3].allowed);
  EXPECT_GT(got[3].decision.retry_after, 0s);
  EXPECT_EQ(cli_out(redis, {"HGET", "trellis:rl:quota:k", "c"}), "3");
  EXPECT_GT(std::stoll(cli_out(redis, {"PTTL", "trellis:rl:quota:k"})), 0);
}

TEST(RedisRateLimitStore, TwoGatewaysShareOneLimitExactly) {
  REQUIRE_REDIS();
  test::redis_server redis;
  // Two processes' worth of stores: separate runtimes, two workers each,
  // four connections to Redis, all charging one key at once.
  core::runtime a({.workers = 2, .handle_signals = false});
  core::runtime b({.workers = 2, .handle_signals = false});
  redis_rate_limit_store sa(a, redis.endpoint());
  redis_rate_limit_store sb(b, redis.endpoint());
  const auto p = bucket(50, std::chrono::hours(1));  // burst 50, T = 72 s
  std::atomic<int> admitted{0}, refused{0}, failed{0};
  auto hammer = [&](rate_limit_store& s) {
    return [&](std::size_t) -> asio::awaitable<void> {
      for (int i = 0; i < 40; ++i) {
        auto r = co_await charge(s, p, "shared");
        if (!r.allowed)
          ++failed;
        else if (*r.allowed)
          ++admitted;
        else
          ++refused;
      }
    };
  };
  std::thread other([&] { run_on_workers(b, hammer(sb)); });
  run_on_workers(a, hammer(sa));
  other.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(admitted.load(), 50) << "4 x 40 requests against a burst of 50";
  EXPECT_EQ(refused.load(), 110);
}

TEST(RedisRateLimitStore, ARedisThatIsGoneIsReportedUnavailable) {
  REQUIRE_REDIS();
  test::redis_server redis;
  const auto ep = redis.endpoint();
  redis.kill();
  core::runtime rt({.workers = 1, .handle_signals = false});
  redis_rate_limit_store_options o;
  o.client.connect_timeout = 500ms;
  redis_rate_limit_store store(rt, ep, o);
  const auto p = bucket(5, std::chrono::hours(1));
  one_charge got;
  run_on_workers(
      rt, [&](std::size_t) -> asio::awaitable<void> { got = co_await charge(store, p, "k"); });
  ASSERT_FALSE(got.allowed);
  EXPECT_EQ(got.allowed.error(), make_error_code(rate_limit_error::store_unavailable));
}

TEST(RedisRateLimitStore, RefusesMalformedCharges) {
  REQUIRE_REDIS();
  test::redis_server redis;
  core::runtime rt({.workers = 1, .handle_signals = false});
  redis_rate_limit_store store(rt, redis.endpoint());
  const auto p = bucket(5, std::chrono::hours(1));
  std::error_code dup, negative;
  run_on_workers(rt, [&](std::size_t) -> asio::awaitable<void> {
    const rate_limit_charge twice[] = {{&p, "k"}, {&p, "k"}};
    rate_limit_decision ds[2];
    auto r = co_await store.acquire(twice, 1, std::chrono::microseconds(0), ds);
    if (!r) dup = r.error();
    const rate_limit_charge once[] = {{&p, "k"}};
    auto n = co_await store.acquire(once, -1, std::chrono::microseconds(0),
                                    std::span<rate_limit_decision>(ds, 1));
    if (!n) negative = n.error();
  });
  EXPECT_EQ(dup, make_error_code(rate_limit_error::bad_charge));
  EXPECT_EQ(negative, make_error_code(rate_limit_error::bad_charge));
}

}  // namespace
}  // namespace trellis::gateway
