// The policy factory and what holds for every policy: names, option
// checks, empty sets and retries that exclude hosts.
#include "trellis/lb/policy.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "trellis/core/error.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;

policy_options seeded() {
  policy_options o;
  o.seed = 7;
  return o;
}

TEST(lb_policy, factory_makes_every_named_policy) {
  const host_set_ptr set = make_host_set({"a", "b", "c"});
  for (std::string_view name : policy_names) {
    const auto p = make_policy(name, set, seeded());
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->name(), name);
    EXPECT_EQ(&p->hosts(), set.get());
  }
}

TEST(lb_policy, unknown_name_throws_naming_the_field) {
  try {
    make_policy("fastest", make_host_set({"a"}));
    FAIL() << "an unknown policy was accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "lb.policy");
    EXPECT_NE(std::string(e.what()).find("fastest"), std::string::npos);
  }
}

struct bad_option {
  const char* field;
  void (*spoil)(policy_options&);
};

TEST(lb_policy, each_bad_option_throws_naming_its_field) {
  const bad_option cases[] = {
      {"lb.slow_start.window", [](policy_options& o) { o.slow_start.window = -1s; }},
      {"lb.slow_start.min_weight_fraction",
       [](policy_options& o) { o.slow_start.min_weight_fraction = 0; }},
      {"lb.slow_start.min_weight_fraction",
       [](policy_options& o) { o.slow_start.min_weight_fraction = 1.5; }},
      {"lb.slow_start.aggression", [](policy_options& o) { o.slow_start.aggression = 0; }},
      {"lb.least_request.choice_count",
       [](policy_options& o) { o.least_request.choice_count = 1; }},
      {"lb.peak_ewma.decay_time", [](policy_options& o) { o.peak_ewma.decay_time = 0s; }},
      {"lb.peak_ewma.failure_penalty", [](policy_options& o) { o.peak_ewma.failure_penalty = 0s; }},
      {"lb.peak_ewma.choice_count", [](policy_options& o) { o.peak_ewma.choice_count = 0; }},
      {"lb.ring_hash.points_per_weight",
       [](policy_options& o) { o.ring_hash.points_per_weight = 0; }},
      {"lb.ring_hash.bounded_load.balance_factor",
       [](policy_options& o) { o.ring_hash.bounded_load.balance_factor = 0.9; }},
      {"lb.maglev.bounded_load.balance_factor",
       [](policy_options& o) {
         o.maglev.bounded_load.balance_factor = std::numeric_limits<double>::quiet_NaN();
       }},
      {"lb.maglev.table_size", [](policy_options& o) { o.maglev.table_size = 65536; }},
  };
  for (const bad_option& c : cases) {
    policy_options o;
    c.spoil(o);
    try {
      make_policy("round_robin", make_host_set({"a"}), o);
      ADD_FAILURE() << c.field << ": a bad value was accepted";
    } catch (const core::config_error& e) {
      EXPECT_EQ(e.field(), c.field);
    }
  }
}

TEST(lb_policy, maglev_table_must_hold_every_host) {
  policy_options o;
  o.maglev.table_size = 3;
  EXPECT_THROW(make_policy("maglev", make_host_set({"a", "b", "c", "d"}), o), core::config_error);
}

TEST(lb_policy, ring_must_hold_every_point) {
  policy_options o;
  o.ring_hash.max_ring_size = 1000;
  o.ring_hash.points_per_weight = 100;
  EXPECT_NO_THROW(make_policy("ring_hash", make_host_set({"a", "b"}, {5, 5}), o));
  EXPECT_THROW(make_policy("ring_hash", make_host_set({"a", "b"}, {5, 6}), o), core::config_error);
}

TEST(lb_policy, every_policy_picks_nothing_from_an_empty_set) {
  const host_set_ptr empty = make_host_set({});
  for (std::string_view name : policy_names) {
    request_context context;
    context.hash = 42;
    EXPECT_EQ(make_policy(name, empty, seeded())->pick(context), nullptr) << name;
  }
}

TEST(lb_policy, every_policy_honours_the_retry_exclusion_set) {
  const host_set_ptr set = make_host_set({"a", "b", "c", "d"});
  const host* tried[] = {&(*set)[0], &(*set)[1], &(*set)[3]};
  request_context context;
  context.exclude = tried;
  for (std::string_view name : policy_names) {
    const auto p = make_policy(name, set, seeded());
    for (std::uint64_t key = 0; key < 50; ++key) {
      context.hash = hash_key(std::to_string(key));
      EXPECT_EQ(p->pick(context), &(*set)[2]) << name << " key " << key;
    }
  }
}

TEST(lb_policy, every_policy_picks_nothing_when_every_host_is_excluded) {
  const host_set_ptr set = make_host_set({"a", "b"});
  const host* tried[] = {&(*set)[0], &(*set)[1]};
  request_context context;
  context.exclude = tried;
  context.hash = 1;
  for (std::string_view name : policy_names)
    EXPECT_EQ(make_policy(name, set, seeded())->pick(context), nullptr) << name;
}

TEST(lb_policy, observe_counts_failures_as_5xx_429_and_no_response) {
  const host_set_ptr set = make_host_set({"a"});
  const auto p = make_policy("round_robin", set);
  const host& a = (*set)[0];
  p->observe(a, {.latency = 1ms, .status = 503});
  p->observe(a, {.latency = 1ms, .status = 429});
  p->observe(a, {.latency = 1ms, .status = 0});
  EXPECT_EQ(a.recent_failures(), 3u);
  p->observe(a, {.latency = 1ms, .status = 404});  // the host worked; the resource is missing
  EXPECT_EQ(a.recent_failures(), 0u);
}

TEST(lb_hash_key, is_stable_and_spreads_neighbouring_keys) {
  EXPECT_EQ(hash_key("10.0.0.1"), hash_key("10.0.0.1"));
  // Pinned values: every proxy instance, on any platform and in any
  // version, must map a key to the same place, or affinity breaks on upgrade.
  EXPECT_EQ(hash_key("10.0.0.1"), 0xc879e56ddc6c5c88ULL);
  EXPECT_EQ(hash_key(""), 0xefd01f60ba992926ULL);
  const std::uint64_t a = hash_key("10.0.0.1");
  const std::uint64_t b = hash_key("10.0.0.2");
  EXPECT_GE(__builtin_popcountll(a ^ b), 16) << "one byte apart should differ in many bits";
}

}  // namespace
}  // namespace trellis::lb
