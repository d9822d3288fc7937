// Random: weighted distribution within tolerance, repeatable with a seed,
// slow start respected.
#include <gtest/gtest.h>

#include <chrono>

#include "lb/support.hpp"
#include "trellis/lb/policy.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;
using test::sequence;
using test::tally;

policy_options seeded(std::uint64_t seed = 42) {
  policy_options o;
  o.seed = seed;
  return o;
}

TEST(lb_random, spreads_evenly_over_equal_hosts) {
  const auto p = make_policy("random", make_host_set({"a", "b", "c", "d"}), seeded());
  const auto counts = tally(*p, 40000);
  for (const char* h : {"a", "b", "c", "d"}) EXPECT_NEAR(counts.at(h), 10000, 500) << h;
}

TEST(lb_random, follows_the_weights) {
  const auto p = make_policy("random", make_host_set({"a", "b", "c"}, {1, 2, 3}), seeded());
  const auto counts = tally(*p, 60000);
  EXPECT_NEAR(counts.at("a"), 10000, 500);
  EXPECT_NEAR(counts.at("b"), 20000, 800);
  EXPECT_NEAR(counts.at("c"), 30000, 1000);
}

TEST(lb_random, the_same_seed_gives_the_same_picks) {
  const host_set_ptr set = make_host_set({"a", "b", "c", "d", "e"});
  const auto first = make_policy("random", set, seeded(9));
  const auto second = make_policy("random", set, seeded(9));
  const auto other = make_policy("random", set, seeded(10));
  const std::string picks = sequence(*first, 50);
  EXPECT_EQ(picks, sequence(*second, 50));
  EXPECT_NE(picks, sequence(*other, 50));
}

TEST(lb_random, slow_start_gives_a_new_host_its_minimum_share) {
  manual_clock clock;
  const host_set_ptr set = make_host_set({"a", "b", "c"});
  (*set)[2].mark_healthy(clock.now());
  policy_options o = seeded();
  o.clock = clock.function();
  o.slow_start.window = 60s;
  o.slow_start.min_weight_fraction = 0.1;
  const auto p = make_policy("random", set, o);
  auto counts = tally(*p, 21000);
  EXPECT_NEAR(counts.at("c"), 1000, 150);  // 0.1 / 2.1 of the picks

  clock.advance(60s);
  counts = tally(*p, 30000);
  EXPECT_NEAR(counts.at("c"), 10000, 500);
}

TEST(lb_random, aggression_above_one_ramps_faster_at_first) {
  manual_clock clock;
  const host_set_ptr set = make_host_set({"a", "b"});
  (*set)[1].mark_healthy(clock.now());
  policy_options o = seeded();
  o.clock = clock.function();
  o.slow_start.window = 100s;
  o.slow_start.aggression = 2;  // share = sqrt(progress)
  const auto p = make_policy("random", set, o);
  clock.advance(25s);  // sqrt(0.25) = 0.5: b weighs half of a
  const auto counts = tally(*p, 30000);
  EXPECT_NEAR(counts.at("b"), 10000, 500);
}

}  // namespace
}  // namespace trellis::lb
