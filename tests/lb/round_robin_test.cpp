// Round robin and nginx's smooth weighted round robin: exact sequences.
#include <gtest/gtest.h>

#include <chrono>

#include "lb/support.hpp"
#include "trellis/lb/policy.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;
using test::sequence;
using test::tally;

TEST(lb_round_robin, takes_each_host_in_turn_ignoring_weights) {
  const auto p = make_policy("round_robin", make_host_set({"a", "b", "c"}, {5, 1, 1}));
  EXPECT_EQ(sequence(*p, 7), "a b c a b c a");
}

TEST(lb_round_robin, steps_over_an_excluded_host_without_losing_its_place) {
  const host_set_ptr set = make_host_set({"a", "b", "c"});
  const auto p = make_policy("round_robin", set);
  const host* tried[] = {&(*set)[1]};
  request_context retry;
  retry.exclude = tried;
  EXPECT_EQ(sequence(*p, 1), "a");
  EXPECT_EQ(sequence(*p, 1, retry), "c");  // b was tried: the next host instead
  EXPECT_EQ(sequence(*p, 3), "a b c");
}

TEST(lb_weighted_round_robin, weights_5_1_1_give_nginx_smooth_sequence) {
  const auto p = make_policy("weighted_round_robin", make_host_set({"a", "b", "c"}, {5, 1, 1}));
  EXPECT_EQ(sequence(*p, 14), "a a b a c a a a a b a c a a");
}

TEST(lb_weighted_round_robin, equal_weights_are_plain_round_robin) {
  const auto p = make_policy("weighted_round_robin", make_host_set({"a", "b", "c"}));
  EXPECT_EQ(sequence(*p, 6), "a b c a b c");
}

TEST(lb_weighted_round_robin, each_cycle_gives_each_host_exactly_its_weight) {
  const auto p =
      make_policy("weighted_round_robin", make_host_set({"a", "b", "c", "d"}, {7, 3, 2, 1}));
  for (int cycle = 0; cycle < 5; ++cycle) {
    const auto counts = tally(*p, 13);
    EXPECT_EQ(counts.at("a"), 7);
    EXPECT_EQ(counts.at("b"), 3);
    EXPECT_EQ(counts.at("c"), 2);
    EXPECT_EQ(counts.at("d"), 1);
  }
}

TEST(lb_weighted_round_robin, never_sends_the_heavy_host_a_long_burst) {
  // Smoothness: with weights {5,1,1} the heavy host never gets its five
  // turns in a row, as a plain weighted round robin would give them (and
  // ten across the end of one cycle and the start of the next): the most
  // is four, the last two of one cycle and the first two of the next.
  const auto p = make_policy("weighted_round_robin", make_host_set({"a", "b", "c"}, {5, 1, 1}));
  int run = 0;
  for (int i = 0; i < 700; ++i) {
    run = p->pick({})->address() == "a" ? run + 1 : 0;
    ASSERT_LE(run, 4);
  }
}

TEST(lb_weighted_round_robin, retry_exclusion_spreads_over_the_remaining_weights) {
  const host_set_ptr set = make_host_set({"a", "b", "c"}, {5, 1, 1});
  const auto p = make_policy("weighted_round_robin", set);
  const host* tried[] = {&(*set)[0]};
  request_context retry;
  retry.exclude = tried;
  const auto counts = tally(*p, 10, retry);
  EXPECT_EQ(counts.at("b"), 5);
  EXPECT_EQ(counts.at("c"), 5);
}

TEST(lb_weighted_round_robin, slow_start_ramps_a_new_host_linearly) {
  manual_clock clock;
  const host_set_ptr set = make_host_set({"a", "b", "c"});
  (*set)[2].mark_healthy(clock.now());  // c just became healthy
  policy_options o;
  o.clock = clock.function();
  o.slow_start.window = 10s;
  o.slow_start.min_weight_fraction = 0.1;
  const auto p = make_policy("weighted_round_robin", set, o);

  // Effective weights 1, 1, 0.1: c gets 1 pick in 21.
  auto counts = tally(*p, 2100);
  EXPECT_NEAR(counts.at("c"), 100, 2);

  clock.advance(5s);  // halfway: 1, 1, 0.5
  counts = tally(*p, 2500);
  EXPECT_NEAR(counts.at("c"), 500, 2);

  clock.advance(5s);  // the window is over: full weight
  counts = tally(*p, 3000);
  EXPECT_NEAR(counts.at("c"), 1000, 2);
}

TEST(lb_weighted_round_robin, hosts_healthy_from_the_start_do_not_ramp) {
  // No mark_healthy: the hosts were always healthy, whatever the clock
  // reads (here the steady clock, whose epoch may be minutes ago).
  policy_options o;
  o.slow_start.window = std::chrono::hours(24 * 365);
  const auto p = make_policy("weighted_round_robin", make_host_set({"a", "b", "c"}, {5, 1, 1}), o);
  EXPECT_EQ(sequence(*p, 7), "a a b a c a a");
}

}  // namespace
}  // namespace trellis::lb
