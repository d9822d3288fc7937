// Tests of rate limiting: the GCRA and sliding-window steps to the
// microsecond with hand-picked times, the local store (all-or-nothing
// charges, no lost update under several threads, bounded keys), the
// middleware driven through http::router with hand-made requests, and one
// end-to-end run of a real server answering curl on 127.0.0.1. Time is
// always injected: nothing here sleeps or reads a clock.
#include "trellis/gateway/rate_limit.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/process.hpp"
#include "support/routed.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/metrics.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;

// An arbitrary start far from 0, as a steady clock would give.
constexpr std::int64_t k_t0 = 5'000'000'000;
constexpr std::int64_t k_s = 1'000'000;  // one second in microseconds

rate_limit_policy bucket(std::string name, std::int64_t limit, microseconds period,
                         std::int64_t burst) {
  rate_limit_policy p;
  p.name = std::move(name);
  p.limit = limit;
  p.period = period;
  p.burst = burst;
  return p;
}

rate_limit_policy window(std::string name, std::int64_t limit, microseconds period) {
  rate_limit_policy p;
  p.name = std::move(name);
  p.algorithm = rate_limit_algorithm::sliding_window;
  p.limit = limit;
  p.period = period;
  return p;
}

// Whether f throws core::config_error naming `field`.
::testing::AssertionResult throws_config_error(const std::function<void()>& f,
                                               const std::string& field) {
  try {
    f();
  } catch (const core::config_error& e) {
    if (e.field() == field) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "names '" << e.field() << "': " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw something else: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// --------------------------------------------------------------------- GCRA

// 10 per second, burst 5: T = 100 ms, tau = 500 ms.
constexpr gcra_params k_p{.emission_interval = 100'000, .tolerance = 500'000};

static_assert(gcra_step(0, 1000, 1, k_p).allowed, "a fresh key is allowed");
static_assert(gcra_step(0, 1000, 6, k_p).retry_after == -1, "cost > burst never fits");

TEST(rate_limit_gcra, params_are_period_over_limit_rounded_up_times_burst) {
  auto p = gcra_params_of(bucket("a", 10, 1s, 5));
  EXPECT_EQ(p.emission_interval, 100'000);
  EXPECT_EQ(p.tolerance, 500'000);
  p = gcra_params_of(bucket("a", 10, 1s, 0));
  EXPECT_EQ(p.tolerance, 1'000'000) << "burst 0 means burst = limit";
  p = gcra_params_of(bucket("a", 3, 1s, 1));
  EXPECT_EQ(p.emission_interval, 333'334) << "rounded up: never faster than the policy";
  p = gcra_params_of(bucket("a", 1000, 1h, 1));
  EXPECT_EQ(p.emission_interval, 3'600'000) << "exact when the limit divides the period";
}

TEST(rate_limit_gcra, admits_the_burst_at_once_then_one_per_emission_interval) {
  std::int64_t tat = k_t0;  // no state yet
  for (int i = 0; i < 5; ++i) {
    const auto o = gcra_step(tat, k_t0, 1, k_p);
    ASSERT_TRUE(o.allowed) << i;
    EXPECT_EQ(o.remaining, 4 - i) << i;
    EXPECT_EQ(o.reset, (i + 1) * 100'000) << "full again after (i+1) emission intervals";
    EXPECT_EQ(o.retry_after, 0);
    tat = o.tat;
  }
  EXPECT_EQ(tat, k_t0 + 500'000);

  auto o = gcra_step(tat, k_t0, 1, k_p);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.tat, tat) << "a refusal stores nothing new";
  EXPECT_EQ(o.remaining, 0);
  EXPECT_EQ(o.retry_after, 100'000) << "one emission interval";
  EXPECT_EQ(o.reset, 500'000);

  // One microsecond early is refused, with exactly that microsecond to wait.
  o = gcra_step(tat, k_t0 + 99'999, 1, k_p);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.retry_after, 1);

  // Then exactly one request per emission interval, never two.
  for (int i = 1; i <= 20; ++i) {
    const std::int64_t now = k_t0 + i * 100'000;
    o = gcra_step(tat, now, 1, k_p);
    ASSERT_TRUE(o.allowed) << i;
    EXPECT_EQ(o.remaining, 0) << i;
    tat = o.tat;
    o = gcra_step(tat, now, 1, k_p);
    ASSERT_FALSE(o.allowed) << i;
    EXPECT_EQ(o.retry_after, 100'000) << i;
  }

  // Idle for the whole tolerance: the burst is back, exactly.
  o = gcra_step(tat, tat, 0, k_p);
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.remaining, 5);
  EXPECT_EQ(o.reset, 0);
}

TEST(rate_limit_gcra, cost_above_one_takes_that_many_tokens_and_waits_for_them) {
  auto o = gcra_step(k_t0, k_t0, 3, k_p);
  ASSERT_TRUE(o.allowed);
  EXPECT_EQ(o.remaining, 2);
  EXPECT_EQ(o.reset, 300'000);
  const std::int64_t tat = o.tat;

  o = gcra_step(tat, k_t0, 3, k_p);
  EXPECT_FALSE(o.allowed) << "2 tokens left, 3 asked";
  EXPECT_EQ(o.remaining, 2);
  EXPECT_EQ(o.retry_after, 100'000) << "the third token refills in one interval";

  o = gcra_step(tat, k_t0 + 100'000, 3, k_p);
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.remaining, 0);

  EXPECT_TRUE(gcra_step(tat, k_t0, 2, k_p).allowed) << "the two left are usable at once";
}

TEST(rate_limit_gcra, cost_above_burst_is_refused_forever_without_side_effects) {
  const auto fresh = gcra_step(k_t0, k_t0, 6, k_p);
  EXPECT_FALSE(fresh.allowed);
  EXPECT_EQ(fresh.retry_after, -1);
  EXPECT_EQ(fresh.tat, k_t0) << "state untouched";
  EXPECT_EQ(fresh.remaining, 5) << "the bucket is still full";
  EXPECT_EQ(fresh.reset, 0);
  const auto huge = gcra_step(k_t0, k_t0, std::int64_t{1} << 62, k_p);
  EXPECT_FALSE(huge.allowed) << "no overflow for an absurd cost";
  EXPECT_EQ(huge.retry_after, -1);
  EXPECT_TRUE(gcra_step(k_t0, k_t0, 5, k_p).allowed) << "cost == burst fits a full bucket";
}

TEST(rate_limit_gcra, a_tat_ahead_of_now_by_more_than_tau_reports_zero_remaining) {
  // A state written by a clock running ahead: no negative counts.
  const auto o = gcra_step(k_t0 + 2'000'000, k_t0, 1, k_p);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.remaining, 0);
  EXPECT_EQ(o.retry_after, 2'000'000 + 100'000 - 500'000);
}

// GCRA is a token bucket: compare it, on random arrivals, with the
// textbook one that counts tokens (in units of 1/T so it stays exact) and
// refills them from the last update time.
TEST(rate_limit_gcra, decides_exactly_like_a_counting_token_bucket) {
  std::mt19937_64 rng(7);
  for (const auto& p :
       {gcra_params{100'000, 500'000}, gcra_params{333'334, 333'334}, gcra_params{7, 700}}) {
    std::int64_t tat = 0;
    std::int64_t level = p.tolerance;  // tokens x T: full
    std::int64_t last = 0;
    std::int64_t now = 1'000;
    for (int i = 0; i < 20'000; ++i) {
      now += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(p.emission_interval * 2));
      const std::int64_t cost = static_cast<std::int64_t>(rng() % 4);
      level = std::min(p.tolerance, level + (now - last));
      last = now;
      const bool bucket_allows = level >= cost * p.emission_interval;
      if (bucket_allows) level -= cost * p.emission_interval;
      const auto o = gcra_step(tat, now, cost, p);
      ASSERT_EQ(o.allowed, bucket_allows) << "step " << i << " T=" << p.emission_interval;
      ASSERT_EQ(o.remaining, level / p.emission_interval) << "step " << i;
      tat = o.tat;
    }
  }
}

// ----------------------------------------------------------- sliding window

constexpr std::int64_t k_w = 1'000'000;  // 1 s windows

TEST(rate_limit_sliding_window, counts_up_to_the_limit_within_one_window) {
  sliding_window_state s;
  for (int i = 0; i < 10; ++i) {
    const auto o = sliding_window_step(s, 3 * k_w + 100, 1, 10, k_w);
    ASSERT_TRUE(o.allowed) << i;
    EXPECT_EQ(o.remaining, 9 - i);
    EXPECT_EQ(o.reset, 2 * k_w - 100) << "counted until the next window ends";
    s = o.state;
  }
  EXPECT_EQ(s, (sliding_window_state{3 * k_w, 10, 0}));
  const auto o = sliding_window_step(s, 4 * k_w - 1, 1, 10, k_w);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.retry_after, 1 + k_w / 10)
      << "into the next window, until a tenth of the previous has slid out";
}

TEST(rate_limit_sliding_window, weighs_the_previous_window_by_its_overlap) {
  const sliding_window_state full{0, 10, 0};  // 10 in window [0, W)

  // At the very start of the next window the previous counts whole.
  auto o = sliding_window_step(full, k_w, 1, 10, k_w);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.state, (sliding_window_state{k_w, 0, 10})) << "rolled";
  EXPECT_EQ(o.remaining, 0);
  EXPECT_EQ(o.retry_after, k_w / 10);
  EXPECT_EQ(o.reset, k_w) << "the previous window weighs until this one ends";

  // 10 * (W - e) / W <= 9 from e = W/10 on: one microsecond before is refused.
  o = sliding_window_step(full, k_w + k_w / 10 - 1, 1, 10, k_w);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.retry_after, 1);
  o = sliding_window_step(full, k_w + k_w / 10, 1, 10, k_w);
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.remaining, 0);

  // Half-way, half the previous window counts: 5 are admitted, not 6.
  sliding_window_state s = full;
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    o = sliding_window_step(s, k_w + k_w / 2, 1, 10, k_w);
    s = o.state;
    admitted += o.allowed ? 1 : 0;
  }
  EXPECT_EQ(admitted, 5);
  EXPECT_EQ(s, (sliding_window_state{k_w, 5, 10}));

  // In the last microsecond of the window the previous weighs 10 * 1 / W.
  o = sliding_window_step(full, 2 * k_w - 1, 1, 10, k_w);
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.remaining, 8) << "floor((10W - W - 10) / W)";
}

TEST(rate_limit_sliding_window, forgets_windows_older_than_the_previous_one) {
  const sliding_window_state old{0, 10, 7};
  const auto o = sliding_window_step(old, 2 * k_w, 1, 10, k_w);
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.state, (sliding_window_state{2 * k_w, 1, 0}));
  EXPECT_EQ(o.remaining, 9);
  const auto fresh = sliding_window_step({}, 7 * k_w + 5, 0, 10, k_w);
  EXPECT_EQ(fresh.remaining, 10);
  EXPECT_EQ(fresh.reset, 0) << "an empty window has nothing to reset";
}

TEST(rate_limit_sliding_window, cost_above_the_limit_never_fits_and_costs_nothing) {
  const sliding_window_state s{k_w, 3, 0};
  const auto o = sliding_window_step(s, k_w + 10, 11, 10, k_w);
  EXPECT_FALSE(o.allowed);
  EXPECT_EQ(o.retry_after, -1);
  EXPECT_EQ(o.state, s);
  EXPECT_EQ(o.remaining, 7);
}

TEST(rate_limit_sliding_window, retry_after_is_the_first_microsecond_that_fits) {
  // Exhaustively: from many states, stepping to now + retry_after admits
  // and now + retry_after - 1 does not (nothing else arriving).
  int checked = 0;
  for (std::int64_t prev = 0; prev <= 6; ++prev)
    for (std::int64_t cur = 0; cur <= 6; ++cur)
      for (std::int64_t cost = 1; cost <= 6; ++cost)
        for (std::int64_t e : {0, 1, 333, 500, 999}) {
          const std::int64_t w = 1000;
          const sliding_window_state s{10 * w, cur, prev};
          const std::int64_t now = 10 * w + e;
          const auto o = sliding_window_step(s, now, cost, 6, w);
          if (o.allowed) continue;
          ASSERT_GT(o.retry_after, 0);
          EXPECT_TRUE(sliding_window_step(s, now + o.retry_after, cost, 6, w).allowed)
              << prev << " " << cur << " " << cost << " " << e;
          EXPECT_FALSE(sliding_window_step(s, now + o.retry_after - 1, cost, 6, w).allowed)
              << prev << " " << cur << " " << cost << " " << e;
          ++checked;
        }
  EXPECT_GT(checked, 200);
}

TEST(rate_limit_sliding_window, a_now_behind_the_stored_window_counts_as_its_start) {
  const sliding_window_state s{2 * k_w, 4, 0};
  const auto o = sliding_window_step(s, 2 * k_w - 50, 1, 10, k_w);
  EXPECT_TRUE(o.allowed);
  EXPECT_EQ(o.state, (sliding_window_state{2 * k_w, 5, 0})) << "not rolled backwards";
}

// ------------------------------------------------------------------ validate

TEST(rate_limit_policy, validate_names_the_offending_field) {
  EXPECT_NO_THROW(validate(bucket("per-second_1.x", 10, 1s, 20)));
  EXPECT_TRUE(throws_config_error([] { validate(bucket("", 10, 1s, 0), "p"); }, "p.name"));
  EXPECT_TRUE(throws_config_error([] { validate(bucket("a:b", 10, 1s, 0), "p"); }, "p.name"));
  EXPECT_TRUE(throws_config_error([] { validate(bucket("a\"", 10, 1s, 0), "p"); }, "p.name"));
  EXPECT_TRUE(throws_config_error([] { validate(bucket("a", 0, 1s, 0), "p"); }, "p.limit"));
  EXPECT_TRUE(throws_config_error([] { validate(bucket("a", 1, 0s, 0), "p"); }, "p.period"));
  EXPECT_TRUE(throws_config_error([] { validate(bucket("a", 1, 1s, -1), "p"); }, "p.burst"));
  EXPECT_TRUE(throws_config_error([] { validate(bucket("a", 2'000'000, 1s, 0), "p"); }, "p.limit"))
      << "faster than one per microsecond";
  EXPECT_TRUE(throws_config_error(
      [] { validate(bucket("a", 1, std::chrono::hours(24 * 365), 1'000'000), "p"); }, "p.burst"))
      << "burst x T beyond 2^52";
  EXPECT_NO_THROW(validate(window("w", 2'000'000, 1h)));
  EXPECT_TRUE(throws_config_error([] { validate(window("w", 3'000'000, 1h), "p"); }, "p.limit"))
      << "limit x window beyond 2^53";
}

// --------------------------------------------------------------------- store

// Charges `cost` to `key` under each policy; the decisions, and whether
// all allowed.
struct charged {
  bool allowed = false;
  std::vector<rate_limit_decision> d;
};

charged charge(local_rate_limit_store& store, const std::vector<const rate_limit_policy*>& ps,
               std::string_view key, std::int64_t now, std::int64_t cost = 1) {
  std::vector<rate_limit_charge> cs;
  for (const auto* p : ps) cs.push_back({p, key});
  charged out;
  out.d.resize(cs.size());
  auto r = store.try_acquire(cs, cost, microseconds(now), out.d);
  EXPECT_TRUE(r) << r.error().message();
  out.allowed = r.value_or(false);
  return out;
}

TEST(rate_limit_store, keeps_keys_and_policies_apart) {
  local_rate_limit_store store;
  const auto a = bucket("a", 1, 1s, 1);
  const auto b = bucket("b", 1, 1s, 1);
  EXPECT_TRUE(charge(store, {&a}, "ip:1", k_t0).allowed);
  EXPECT_FALSE(charge(store, {&a}, "ip:1", k_t0).allowed);
  EXPECT_TRUE(charge(store, {&a}, "ip:2", k_t0).allowed) << "another key";
  EXPECT_TRUE(charge(store, {&b}, "ip:1", k_t0).allowed) << "another policy";
  const auto again = charge(store, {&a}, "ip:1", k_t0 + k_s);
  EXPECT_TRUE(again.allowed) << "refilled after T";
  EXPECT_EQ(store.stats().keys, 3u);
}

TEST(rate_limit_store, charges_all_policies_or_none) {
  local_rate_limit_store store;
  const auto per_second = bucket("per-second", 5, 1s, 5);
  const auto per_hour = window("per-hour", 2, 1h);
  const std::vector<const rate_limit_policy*> both{&per_second, &per_hour};
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(charge(store, both, "k", k_t0).allowed);

  const auto refused = charge(store, both, "k", k_t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_TRUE(refused.d[0].allowed) << "the per-second bucket alone would allow";
  EXPECT_EQ(refused.d[0].remaining, 2) << "what it would leave if charged";
  EXPECT_FALSE(refused.d[1].allowed);
  EXPECT_GT(refused.d[1].retry_after, 0us);

  // The refused request took nothing from the bucket that allowed it.
  for (int i = 0; i < 5; ++i) charge(store, both, "k", k_t0);
  const auto peek = charge(store, {&per_second}, "k", k_t0, 0);
  EXPECT_EQ(peek.d[0].remaining, 3);
}

TEST(rate_limit_store, refuses_malformed_charges) {
  local_rate_limit_store store;
  const auto p = bucket("a", 1, 1s, 1);
  std::vector<rate_limit_charge> cs{{&p, "k"}};
  std::vector<rate_limit_decision> out(2);
  EXPECT_EQ(store.try_acquire(cs, 1, microseconds(k_t0), out).error(),
            rate_limit_error::bad_charge);
  out.resize(1);
  EXPECT_EQ(store.try_acquire(cs, -1, microseconds(k_t0), out).error(),
            rate_limit_error::bad_charge);
  cs[0].policy = nullptr;
  EXPECT_EQ(store.try_acquire(cs, 1, microseconds(k_t0), out).error(),
            rate_limit_error::bad_charge);
}

// Several threads, each its own io_context like a worker, hammer one key
// through the async interface, all starting together. The store is
// linearizable if the total admitted is exactly what the arithmetic
// allows: the burst at one instant, then one per emission interval.
TEST(rate_limit_store, several_threads_on_one_key_lose_no_update) {
  local_rate_limit_store store({.max_keys = 1000, .shards = 4});
  const auto tb = bucket("tb", 4000, 1s, 4000);  // T = 250 us
  const auto sw = window("sw", 6000, 1s);
  constexpr int k_threads = 4;
  constexpr int k_attempts = 2000;
  std::atomic<std::int64_t> now{k_t0};
  std::atomic<int> tb_admitted{0}, sw_admitted{0}, failures{0};

  auto run = [&](const rate_limit_policy& p, std::atomic<int>& admitted) {
    std::latch start(k_threads);
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t)
      threads.emplace_back([&] {
        asio::io_context ctx;
        asio::co_spawn(
            ctx,
            [&]() -> asio::awaitable<void> {
              std::vector<rate_limit_charge> cs{{&p, "hot"}};
              std::vector<rate_limit_decision> d(1);
              const std::span<const rate_limit_charge> cspan(cs);
              const std::span<rate_limit_decision> dspan(d);
              for (int i = 0; i < k_attempts; ++i) {
                const microseconds at(now.load());
                auto r = co_await store.acquire(cspan, 1, at, dspan);
                if (!r) failures.fetch_add(1);
                if (r && *r) admitted.fetch_add(1);
              }
            },
            [&](std::exception_ptr e) {
              if (e) failures.fetch_add(1);
            });
        start.arrive_and_wait();  // all threads hammer at once
        ctx.run_for(20s);
      });
    for (auto& th : threads) th.join();
  };

  run(tb, tb_admitted);
  EXPECT_EQ(tb_admitted.load(), 4000) << "exactly the burst, at one instant";
  now += 250'000;  // 1000 emission intervals
  run(tb, tb_admitted);
  EXPECT_EQ(tb_admitted.load(), 5000);

  run(sw, sw_admitted);
  EXPECT_EQ(sw_admitted.load(), 6000) << "exactly the window's limit";
  EXPECT_EQ(failures.load(), 0);
}

TEST(rate_limit_store, eviction_keeps_the_key_count_bounded) {
  local_rate_limit_store store({.max_keys = 64, .shards = 4, .sweep_per_access = 2});
  const auto hourly = bucket("h", 10, 1h, 10);  // keys stay live for an hour
  for (int i = 0; i < 1000; ++i) {
    charge(store, {&hourly}, "ip:" + std::to_string(i), k_t0 + i);
    ASSERT_LE(store.stats().keys, 64u) << i;
  }
  const auto st = store.stats();
  EXPECT_EQ(st.keys, 64u);
  EXPECT_EQ(st.evicted, 1000u - 64u) << "every other key was evicted alive";
  EXPECT_EQ(st.dropped_full, 0u);
}

TEST(rate_limit_store, full_keys_are_dropped_before_live_ones_are_evicted) {
  local_rate_limit_store store({.max_keys = 8, .shards = 1, .sweep_per_access = 0});
  const auto fast = bucket("fast", 1, 1s, 1);  // full again 1 s after a request
  const auto slow = bucket("slow", 1, 1h, 1);  // full again after an hour
  for (int i = 0; i < 4; ++i) charge(store, {&slow}, "s" + std::to_string(i), k_t0);
  for (int i = 0; i < 4; ++i) charge(store, {&fast}, "f" + std::to_string(i), k_t0);
  ASSERT_EQ(store.stats().keys, 8u);

  // Two seconds later the fast keys are full; new keys replace them and
  // the slow ones (least recently used, but live) stay.
  for (int i = 0; i < 4; ++i) charge(store, {&fast}, "n" + std::to_string(i), k_t0 + 2 * k_s);
  auto st = store.stats();
  EXPECT_EQ(st.dropped_full, 4u);
  EXPECT_EQ(st.evicted, 0u);
  for (int i = 0; i < 4; ++i)
    EXPECT_FALSE(charge(store, {&slow}, "s" + std::to_string(i), k_t0 + 2 * k_s).allowed)
        << "slow key " << i << " kept its state";
}

TEST(rate_limit_store, the_sweep_drops_full_keys_without_capacity_pressure) {
  local_rate_limit_store store({.max_keys = 1000, .shards = 1, .sweep_per_access = 2});
  const auto fast = bucket("fast", 1, 1s, 1);
  for (int i = 0; i < 10; ++i) charge(store, {&fast}, "k" + std::to_string(i), k_t0);
  EXPECT_EQ(store.stats().keys, 10u);
  // Each later access sweeps up to two full keys from the cold end.
  for (int i = 0; i < 5; ++i) charge(store, {&fast}, "k0", k_t0 + 10 * k_s + i * 2 * k_s);
  const auto st = store.stats();
  EXPECT_EQ(st.keys, 1u) << "only the key in use is left";
  EXPECT_EQ(st.dropped_full, 9u);
}

TEST(rate_limit_store, a_busy_key_survives_a_flood_of_new_ones) {
  local_rate_limit_store store({.max_keys = 16, .shards = 1});
  const auto p = bucket("p", 1, 1h, 3);
  int admitted = 0;
  for (int i = 0; i < 200; ++i) {
    admitted += charge(store, {&p}, "abuser", k_t0 + i).allowed ? 1 : 0;
    charge(store, {&p}, "spray" + std::to_string(i), k_t0 + i);
  }
  EXPECT_EQ(admitted, 3) << "LRU never forgave the key that kept coming";
}

// ---------------------------------------------------------------- middleware

using test::routed;

// A GET /api from `peer`, with these fields and attributes.
std::unique_ptr<routed> route(const http::router& r,
                              asio::ip::tcp::endpoint peer = {asio::ip::make_address("192.0.2.7"),
                                                              40000},
                              std::vector<std::pair<std::string, std::string>> headers = {},
                              std::vector<std::pair<std::string, std::string>> attributes = {}) {
  return test::route(r,
                     {.target = "/api",
                      .headers = std::move(headers),
                      .peer = peer,
                      .attributes = std::move(attributes)},
                     2s);
}

std::string header(const routed& r, std::string_view name) {
  return std::string(r.res.headers.get(name).value_or(""));
}

// A manual clock for the middleware: microseconds it is told.
struct manual_time {
  std::shared_ptr<std::atomic<std::int64_t>> now =
      std::make_shared<std::atomic<std::int64_t>>(k_t0);
  std::function<microseconds()> function() const {
    return [n = now] { return microseconds(n->load()); };
  }
  void advance(microseconds d) { now->fetch_add(d.count()); }
};

// A router with one route behind a rate limiter.
struct app {
  manual_time clock;
  std::shared_ptr<local_rate_limit_store> store = std::make_shared<local_rate_limit_store>();
  http::router r;
  std::shared_ptr<rate_limiter> limiter;

  explicit app(rate_limit_options o, std::shared_ptr<rate_limit_store> s = nullptr) {
    o.clock = clock.function();
    limiter = std::make_shared<rate_limiter>(std::move(o), s ? std::move(s) : store);
    r.use(limiter);
    r.get("/api", [](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text("ok");
      co_return;
    });
  }
};

rate_limit_options options_with(std::vector<rate_limit_policy> ps) {
  rate_limit_options o;
  o.policies = std::move(ps);
  return o;
}

TEST(rate_limiter, keys_clients_by_address_grouping_ipv6_by_prefix) {
  app a(options_with({bucket("p", 1, 1s, 1)}));
  const auto& lim = *a.limiter;
  auto key = [&](std::string addr, std::vector<std::pair<std::string, std::string>> attrs = {}) {
    http::request_head head;
    head.target = "/";
    http::request req;
    req.bind(head, nullptr, {asio::ip::make_address(addr), 1}, false);
    for (const auto& [k, v] : attrs) req.set_attribute(k, v);
    return lim.key_of(req);
  };
  EXPECT_EQ(key("192.0.2.7"), "ip:192.0.2.7");
  EXPECT_EQ(key("::ffff:192.0.2.7"), "ip:192.0.2.7") << "v4-mapped counts as IPv4";
  EXPECT_EQ(key("2001:db8:1:2:aaaa::1"), "ip:2001:db8:1:2::/64");
  EXPECT_EQ(key("2001:db8:1:2:bbbb::9"), "ip:2001:db8:1:2::/64") << "same /64, same key";
  EXPECT_EQ(key("0.0.0.0"), "") << "no peer address: no key";
  EXPECT_EQ(key("10.0.0.1", {{"client.ip", "198.51.100.4"}}), "ip:198.51.100.4")
      << "a trusted proxy's report wins";
  EXPECT_EQ(key("10.0.0.1", {{"client.ip", "2001:db8::5"}}), "ip:2001:db8::/64");

  rate_limit_options o6 = options_with({bucket("p", 1, 1s, 1)});
  o6.ipv6_prefix = 128;
  app b(std::move(o6));
  http::request_head head;
  http::request req;
  req.bind(head, nullptr, {asio::ip::make_address("2001:db8::1"), 1}, false);
  EXPECT_EQ(b.limiter->key_of(req), "ip:2001:db8::1");
}

TEST(rate_limiter, keys_by_subject_and_by_header_hashing_long_values) {
  rate_limit_options os = options_with({bucket("p", 1, 1s, 1)});
  os.key = rate_limit_key::subject;
  app s(std::move(os));
  http::request_head head;
  http::request req;
  req.bind(head, nullptr, {}, false);
  EXPECT_EQ(s.limiter->key_of(req), "");
  req.set_attribute("auth.method", "jwt");
  req.set_attribute("auth.subject", "alice");
  EXPECT_EQ(s.limiter->key_of(req), "sub:jwt:alice");
  req.set_attribute("auth.method", "api_key");
  EXPECT_EQ(s.limiter->key_of(req), "sub:api_key:alice") << "methods never share a bucket";

  rate_limit_options oh = options_with({bucket("p", 1, 1s, 1)});
  oh.key = rate_limit_key::header;
  oh.header = "X-API-Key";
  oh.max_key_bytes = 16;
  app h(std::move(oh));
  const std::string long_value(100, 'k');
  http::request_head hh;
  const std::vector<http::header_field> short_key{{"x-api-key", "short"}};
  const std::vector<http::header_field> long_key{{"X-Api-Key", long_value}};
  hh.headers = short_key;
  http::request r1;
  r1.bind(hh, nullptr, {}, false);
  EXPECT_EQ(h.limiter->key_of(r1), "hdr:short");
  hh.headers = long_key;
  http::request r2;
  r2.bind(hh, nullptr, {}, false);
  const std::string k = h.limiter->key_of(r2);
  EXPECT_EQ(k.size(), 4u + 7u + 64u) << k;
  EXPECT_TRUE(k.starts_with("hdr:sha256:")) << k;
}

TEST(rate_limiter, adds_ratelimit_fields_to_allowed_responses) {
  app a(options_with({bucket("burst", 10, 1s, 5)}));
  auto r = route(a.r);
  EXPECT_EQ(r->res.status, 200);
  EXPECT_EQ(r->res.body, "ok");
  EXPECT_EQ(header(*r, "RateLimit-Policy"), "\"burst\";q=10;w=1");
  EXPECT_EQ(header(*r, "RateLimit"), "\"burst\";r=4;t=1");
  EXPECT_EQ(header(*r, "Retry-After"), "");

  rate_limit_options quiet = options_with({bucket("burst", 10, 1s, 5)});
  quiet.headers_on_success = false;
  app b(std::move(quiet));
  auto q = route(b.r);
  EXPECT_EQ(q->res.status, 200);
  EXPECT_FALSE(q->res.headers.contains("RateLimit"));
}

TEST(rate_limiter, answers_429_with_retry_after_rounded_up) {
  app a(options_with({bucket("slow", 1, 10s, 1)}));
  EXPECT_EQ(route(a.r)->res.status, 200);
  auto r = route(a.r);
  EXPECT_EQ(r->res.status, 429);
  EXPECT_EQ(header(*r, "Retry-After"), "10");
  EXPECT_EQ(header(*r, "RateLimit-Policy"), "\"slow\";q=1;w=10");
  EXPECT_EQ(header(*r, "RateLimit"), "\"slow\";r=0;t=10");
  const auto body = nlohmann::json::parse(r->res.body);
  EXPECT_EQ(body["status"], 429);
  EXPECT_EQ(body["policy"], "slow");
  EXPECT_EQ(body["retry_after"], 10);
  EXPECT_EQ(header(*r, "Content-Type"), "application/problem+json");

  a.clock.advance(2500ms);  // 7.5 s left
  r = route(a.r);
  EXPECT_EQ(r->res.status, 429);
  EXPECT_EQ(header(*r, "Retry-After"), "8");
  a.clock.advance(7499ms);  // 1 ms left: still at least 1
  r = route(a.r);
  EXPECT_EQ(header(*r, "Retry-After"), "1");
  a.clock.advance(1ms);
  EXPECT_EQ(route(a.r)->res.status, 200) << "Retry-After was not early";
  EXPECT_EQ(header(*route(a.r), "RateLimit"), "\"slow\";r=0;t=10")
      << "refused requests do not appear on success headers";
}

TEST(rate_limiter, several_policies_must_all_allow_and_the_most_restrictive_is_reported) {
  // k_t0 is 20 s into a minute window: the sliding window's counts weigh
  // until the next window ends, 100 s later.
  app a(options_with({bucket("second", 10, 1s, 10), window("minute", 3, 60s)}));
  auto r = route(a.r);
  EXPECT_EQ(r->res.status, 200);
  EXPECT_EQ(header(*r, "RateLimit-Policy"), "\"second\";q=10;w=1, \"minute\";q=3;w=60");
  EXPECT_EQ(header(*r, "RateLimit"), "\"minute\";r=2;t=100") << "fewest remaining";
  EXPECT_EQ(header(*route(a.r), "RateLimit"), "\"minute\";r=1;t=100");
  EXPECT_EQ(header(*route(a.r), "RateLimit"), "\"minute\";r=0;t=100");

  r = route(a.r);
  EXPECT_EQ(r->res.status, 429);
  EXPECT_EQ(header(*r, "RateLimit"), "\"minute\";r=0;t=100") << "the policy that refused";
  // Next window, once a third of its 3 has slid out: 40 s + 20 s.
  EXPECT_EQ(header(*r, "Retry-After"), "60");

  a.clock.advance(60s - 1us);
  EXPECT_EQ(route(a.r)->res.status, 429);
  a.clock.advance(1us);
  r = route(a.r);
  EXPECT_EQ(r->res.status, 200);
  // The refused requests took nothing from the per-second bucket (full
  // again by now anyway); the minute window reports first.
  EXPECT_EQ(header(*r, "RateLimit"), "\"minute\";r=0;t=100");
}

TEST(rate_limiter, missing_keys_are_shared_refused_or_let_through) {
  const asio::ip::tcp::endpoint unknown{};
  {
    app a(options_with({bucket("p", 1, 1s, 1)}));  // default: shared
    EXPECT_EQ(route(a.r, unknown)->res.status, 200);
    EXPECT_EQ(route(a.r, unknown)->res.status, 429) << "keyless requests share one bucket";
    EXPECT_EQ(route(a.r)->res.status, 200) << "a keyed client has its own";
  }
  {
    auto o = options_with({bucket("p", 1, 1s, 1)});
    o.on_missing_key = missing_key_action::refuse;
    app a(std::move(o));
    auto r = route(a.r, unknown);
    EXPECT_EQ(r->res.status, 403);
    EXPECT_EQ(header(*r, "RateLimit"), "");
  }
  {
    auto o = options_with({bucket("p", 1, 1s, 1)});
    o.on_missing_key = missing_key_action::allow;
    app a(std::move(o));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(route(a.r, unknown)->res.status, 200);
    EXPECT_EQ(a.store->stats().keys, 0u);
  }
}

TEST(rate_limiter, cost_function_weighs_requests) {
  auto o = options_with({bucket("p", 10, 1s, 10)});
  o.cost = [](const http::request& req) -> std::int64_t {
    return req.header("X-Cost").empty() ? 1 : std::stoll(std::string(req.header("X-Cost")));
  };
  app a(std::move(o));
  const asio::ip::tcp::endpoint peer{asio::ip::make_address("192.0.2.1"), 1};
  auto r = route(a.r, peer, {{"X-Cost", "7"}});
  EXPECT_EQ(header(*r, "RateLimit"), "\"p\";r=3;t=1");
  r = route(a.r, peer, {{"X-Cost", "4"}});
  EXPECT_EQ(r->res.status, 429);
  EXPECT_EQ(header(*r, "RateLimit"), "\"p\";r=3;t=1");
  r = route(a.r, peer, {{"X-Cost", "11"}});
  EXPECT_EQ(r->res.status, 429) << "more than the burst";
  EXPECT_EQ(header(*r, "Retry-After"), "") << "no wait would help";
}

// A store that always fails, like a Redis store whose server is down.
class failing_store final : public rate_limit_store {
 public:
  asio::awaitable<result<bool>> acquire(std::span<const rate_limit_charge>, std::int64_t,
                                        microseconds, std::span<rate_limit_decision>) override {
    ++calls;
    co_return unexpected(rate_limit_error::store_unavailable);
  }
  int calls = 0;
};

TEST(rate_limiter, store_failure_fails_open_or_closed_and_is_counted) {
  core::metrics_registry metrics;
  auto store = std::make_shared<failing_store>();
  {
    auto o = options_with({bucket("p", 1, 1s, 1)});
    o.metrics = &metrics;
    app a(std::move(o), store);
    for (int i = 0; i < 3; ++i) {
      auto r = route(a.r);
      EXPECT_EQ(r->res.status, 200) << "fail open";
      EXPECT_EQ(header(*r, "RateLimit"), "") << "nothing known to report";
    }
  }
  {
    auto o = options_with({bucket("p", 1, 1s, 1)});
    o.fail_open = false;
    o.metrics = &metrics;
    app a(std::move(o), store);
    auto r = route(a.r);
    EXPECT_EQ(r->res.status, 503) << "fail closed";
    EXPECT_EQ(r->res.body.find("ok"), std::string::npos);
  }
  EXPECT_EQ(store->calls, 4);
  EXPECT_THAT(metrics.expose(),
              ::testing::HasSubstr("trellis_rate_limit_store_errors_total{policy=\"p\"} 4"));
}

TEST(rate_limiter, counts_allowed_and_limited_per_policy) {
  core::metrics_registry metrics;
  auto o = options_with({bucket("second", 10, 1s, 10), window("minute", 3, 60s)});
  o.metrics = &metrics;
  app a(std::move(o));
  for (int i = 0; i < 5; ++i) route(a.r);
  const std::string text = metrics.expose();
  using ::testing::HasSubstr;
  EXPECT_THAT(
      text, HasSubstr("trellis_rate_limit_requests_total{policy=\"second\",result=\"allowed\"} 3"));
  EXPECT_THAT(
      text, HasSubstr("trellis_rate_limit_requests_total{policy=\"minute\",result=\"allowed\"} 3"));
  EXPECT_THAT(
      text, HasSubstr("trellis_rate_limit_requests_total{policy=\"minute\",result=\"limited\"} 2"));
  EXPECT_THAT(
      text, HasSubstr("trellis_rate_limit_requests_total{policy=\"second\",result=\"limited\"} 0"))
      << "the per-second policy allowed the refused requests";
}

TEST(rate_limiter, two_limiters_in_a_chain_report_side_by_side) {
  manual_time clock;
  auto store = std::make_shared<local_rate_limit_store>();
  http::router r;
  auto by_ip = options_with({bucket("ip", 10, 1s, 10)});
  by_ip.clock = clock.function();
  auto by_key = options_with({bucket("key", 100, 60s, 100)});
  by_key.key = rate_limit_key::header;
  by_key.header = "X-API-Key";
  by_key.clock = clock.function();
  r.use(std::make_shared<rate_limiter>(std::move(by_ip), store));
  r.use(std::make_shared<rate_limiter>(std::move(by_key), store));
  r.get("/api", [](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text("ok");
    co_return;
  });
  auto res = route(r, {asio::ip::make_address("192.0.2.9"), 1}, {{"X-API-Key", "k1"}});
  EXPECT_EQ(res->res.status, 200);
  EXPECT_THAT(res->res.headers.get_all("RateLimit"),
              ::testing::ElementsAre("\"key\";r=99;t=1", "\"ip\";r=9;t=1"));
}

TEST(rate_limiter, refuses_bad_configuration_naming_the_field) {
  auto store = std::make_shared<local_rate_limit_store>();
  auto make = [&](rate_limit_options o, std::shared_ptr<rate_limit_store> s) {
    return [o, s] { rate_limiter l(o, s); };
  };
  EXPECT_TRUE(throws_config_error(make({}, store), "rate_limit.policies"));
  EXPECT_TRUE(throws_config_error(make(options_with({bucket("p", 1, 1s, 1)}), nullptr),
                                  "rate_limit.store"));
  EXPECT_TRUE(
      throws_config_error(make(options_with({bucket("p", 1, 1s, 1), bucket("q", 0, 1s, 1)}), store),
                          "rate_limit.policies[1].limit"));
  EXPECT_TRUE(
      throws_config_error(make(options_with({bucket("p", 1, 1s, 1), bucket("p", 2, 1s, 1)}), store),
                          "rate_limit.policies[1].name"));
  auto h = options_with({bucket("p", 1, 1s, 1)});
  h.key = rate_limit_key::header;
  EXPECT_TRUE(throws_config_error(make(h, store), "rate_limit.header"));
  auto v6 = options_with({bucket("p", 1, 1s, 1)});
  v6.ipv6_prefix = 0;
  EXPECT_TRUE(throws_config_error(make(v6, store), "rate_limit.ipv6_prefix"));
  EXPECT_TRUE(throws_config_error([] { local_rate_limit_store s({.max_keys = 2, .shards = 4}); },
                                  "rate_limit.store.max_keys"));
}

// ---------------------------------------------------------------- end to end

TEST(rate_limiter_curl, a_real_server_limits_curl_and_says_when_to_retry) {
  if (!test::program_exists("curl")) GTEST_SKIP() << "curl not installed";
  app a(options_with({bucket("demo", 2, 1s, 2)}));
  test::test_server s(a.r.to_handler());
  const auto curl = [&] {
    auto done = test::run({"curl", "-sS", "-i", "--max-time", "10", s.url("/api")}, {}, 15s);
    EXPECT_TRUE(done.status.success()) << done.status.describe() << ": " << done.err;
    return test::parse_curl(done.out);
  };
  auto first = curl();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "ok");
  EXPECT_EQ(first.header("ratelimit-policy"), "\"demo\";q=2;w=1");
  EXPECT_EQ(first.header("ratelimit"), "\"demo\";r=1;t=1");
  EXPECT_EQ(curl().status, 200);
  auto refused = curl();
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.header("retry-after"), "1");
  EXPECT_EQ(refused.header("ratelimit"), "\"demo\";r=0;t=1");
  EXPECT_EQ(refused.parsed()["policy"], "demo");
  a.clock.advance(500ms);  // one emission interval: exactly one more
  EXPECT_EQ(curl().status, 200);
  EXPECT_EQ(curl().status, 429);
}

}  // namespace
}  // namespace trellis::gateway
