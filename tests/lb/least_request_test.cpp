// Load-aware policies: least connections (exact) and least request with
// the power of two choices.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "lb/support.hpp"
#include "trellis/lb/policy.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;
using test::sequence;
using test::tally;

void load(const host& h, int requests) {
  for (int i = 0; i < requests; ++i) h.begin_request();
}

// Sends `count` requests that never finish and returns the largest and
// smallest number any host ended up with.
std::pair<std::uint32_t, std::uint32_t> pile_up(policy& p, int count) {
  for (int i = 0; i < count; ++i) p.pick({})->begin_request();
  std::uint32_t most = 0, least = UINT32_MAX;
  for (const auto& h : p.hosts().hosts()) {
    most = std::max(most, h->active_requests());
    least = std::min(least, h->active_requests());
  }
  return {most, least};
}

TEST(lb_least_connections, picks_the_host_with_fewest_active_requests) {
  const host_set_ptr set = make_host_set({"a", "b", "c"});
  load((*set)[0], 3);
  load((*set)[1], 1);
  load((*set)[2], 2);
  const auto p = make_policy("least_connections", set);
  EXPECT_EQ(p->pick({}), &(*set)[1]);
}

TEST(lb_least_connections, compares_load_per_unit_of_weight) {
  const host_set_ptr set = make_host_set({"a", "b"}, {1, 4});
  load((*set)[0], 1);  // 1 per unit of weight
  load((*set)[1], 3);  // 0.75 per unit
  EXPECT_EQ(make_policy("least_connections", set)->pick({}), &(*set)[1]);
}

TEST(lb_least_connections, equally_loaded_hosts_take_turns) {
  const auto p = make_policy("least_connections", make_host_set({"a", "b", "c"}));
  EXPECT_EQ(sequence(*p, 6), "a b c a b c");
}

TEST(lb_least_connections, keeps_requests_level_as_they_pile_up) {
  const auto p = make_policy("least_connections", make_host_set({"a", "b", "c", "d"}));
  const auto [most, least] = pile_up(*p, 1000);
  EXPECT_EQ(most, 250u);
  EXPECT_EQ(least, 250u);
}

policy_options seeded() {
  policy_options o;
  o.seed = 1234;
  return o;
}

TEST(lb_least_request, two_choices_never_pick_the_one_loaded_host) {
  // Both draws are different hosts, so the loaded host always loses.
  const host_set_ptr set = make_host_set({"a", "b"});
  load((*set)[0], 10);
  const auto p = make_policy("least_request", set, seeded());
  EXPECT_EQ(tally(*p, 1000).count("a"), 0u);
}

TEST(lb_least_request, avoids_a_loaded_host_among_many) {
  const host_set_ptr set =
      make_host_set({"h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"});
  load((*set)[3], 100);
  const auto p = make_policy("least_request", set, seeded());
  const auto counts = tally(*p, 10000);
  EXPECT_EQ(counts.count("h3"), 0u);
  for (const auto& [address, n] : counts) EXPECT_NEAR(n, 10000 / 9, 150) << address;
}

TEST(lb_least_request, balances_far_better_than_random_as_requests_pile_up) {
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("h" + std::to_string(i));
  const auto p2c = make_policy("least_request", make_host_set(names), seeded());
  const auto rnd = make_policy("random", make_host_set(names), seeded());
  const auto [p2c_most, p2c_least] = pile_up(*p2c, 2000);  // mean 100
  const auto [rnd_most, rnd_least] = pile_up(*rnd, 2000);
  EXPECT_LE(p2c_most - p2c_least, 4u);   // the power of two choices: a gap of a few
  EXPECT_GT(rnd_most - rnd_least, 10u);  // random: a gap of tens
}

TEST(lb_least_request, a_heavier_host_takes_proportionally_more) {
  const host_set_ptr set = make_host_set({"a", "b"}, {3, 1});
  const auto p = make_policy("least_request", set, seeded());
  pile_up(*p, 400);
  EXPECT_NEAR((*set)[0].active_requests(), 300, 6);
  EXPECT_NEAR((*set)[1].active_requests(), 100, 6);
}

TEST(lb_least_request, slow_start_holds_a_new_host_back) {
  manual_clock clock;
  const host_set_ptr set = make_host_set({"a", "b"});
  (*set)[1].mark_healthy(clock.now());
  policy_options o = seeded();
  o.clock = clock.function();
  o.slow_start.window = 30s;
  o.slow_start.min_weight_fraction = 0.25;
  const auto p = make_policy("least_request", set, o);
  pile_up(*p, 500);
  // b counts as a quarter of a host: it fills to a quarter of a's load.
  EXPECT_NEAR((*set)[1].active_requests(), 100, 6);
}

TEST(lb_least_request, workers_see_each_others_load_through_the_hosts) {
  // Two workers, two policy instances, one snapshot: the load one worker
  // puts on a host steers the other worker's picks away from it.
  const host_set_ptr set = make_host_set({"a", "b"});
  const auto worker1 = make_policy("least_request", set, seeded());
  policy_options other = seeded();
  other.seed = 99;
  const auto worker2 = make_policy("least_request", set, other);
  load((*set)[0], 5);  // worker 1's requests in flight on a
  EXPECT_EQ(tally(*worker2, 100).at("b"), 100);
  EXPECT_NE(worker1.get(), worker2.get());
}

TEST(lb_least_request, concurrent_workers_leave_every_count_balanced) {
  // Shared-nothing policies, shared atomic statistics: four threads pick,
  // start and finish requests and report latencies at once. Every count
  // returns to zero (run under TSan, this also checks there is no race).
  const host_set_ptr set = make_host_set({"a", "b", "c"});
  std::vector<std::thread> workers;
  for (std::uint64_t w = 1; w <= 4; ++w) {
    workers.emplace_back([set, w] {
      policy_options o;
      o.seed = w;
      const auto lr = make_policy("least_request", set, o);
      const auto ewma = make_policy("peak_ewma", set, o);
      for (int i = 0; i < 2000; ++i) {
        policy& p = i % 2 == 0 ? *lr : *ewma;
        const host* h = p.pick({});
        request_guard in_flight(*h);
        p.observe(*h, {.latency = std::chrono::microseconds(100 + i % 7), .status = 200});
      }
    });
  }
  for (auto& t : workers) t.join();
  for (const auto& h : set->hosts()) {
    EXPECT_EQ(h->active_requests(), 0u) << h->address();
    EXPECT_TRUE(h->has_latency_sample()) << h->address();
  }
}

}  // namespace
}  // namespace trellis::lb
