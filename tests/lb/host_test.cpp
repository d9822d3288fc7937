// Hosts and snapshots: configuration is checked, live statistics move as
// the proxy reports requests and responses.
#include "trellis/lb/host.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "trellis/core/error.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;

TEST(lb_host, rejects_a_zero_weight_naming_the_field) {
  try {
    host h("10.0.0.1:80", 0);
    FAIL() << "a zero weight was accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "lb.host.weight");
  }
}

TEST(lb_host, request_guard_counts_a_request_while_it_lives) {
  host h("a", 1);
  EXPECT_EQ(h.active_requests(), 0u);
  {
    request_guard one(h);
    request_guard two(h);
    EXPECT_EQ(h.active_requests(), 2u);
  }
  EXPECT_EQ(h.active_requests(), 0u);
}

TEST(lb_host, first_latency_sample_and_peaks_are_taken_as_they_are) {
  manual_clock clock;
  host h("a");
  EXPECT_FALSE(h.has_latency_sample());
  EXPECT_EQ(h.ewma_latency(clock.now(), 10s), 0ns);

  h.record_latency(20ms, clock.now(), 10s);
  EXPECT_TRUE(h.has_latency_sample());
  EXPECT_EQ(h.ewma_latency(clock.now(), 10s), 20ms);

  h.record_latency(300ms, clock.now(), 10s);  // a peak replaces the average at once
  EXPECT_EQ(h.ewma_latency(clock.now(), 10s), 300ms);
}

TEST(lb_host, a_lower_sample_pulls_the_average_down_with_time_constant_decay) {
  manual_clock clock;
  host h("a");
  h.record_latency(100ms, clock.now(), 10s);
  clock.advance(10s);  // one time constant: the old average keeps e^-1 of its weight
  h.record_latency(10ms, clock.now(), 10s);
  const double w = std::exp(-1.0);
  const double expected_ns = 100e6 * w + 10e6 * (1 - w);
  EXPECT_NEAR(static_cast<double>(h.ewma_latency(clock.now(), 10s).count()), expected_ns, 2);
}

TEST(lb_host, an_idle_average_decays_towards_zero_when_read) {
  manual_clock clock;
  host h("a");
  h.record_latency(100ms, clock.now(), 10s);
  clock.advance(20s);
  EXPECT_NEAR(static_cast<double>(h.ewma_latency(clock.now(), 10s).count()), 100e6 * std::exp(-2.0),
              2);
}

TEST(lb_host, failures_count_until_a_success) {
  host h("a");
  h.record_failure();
  h.record_failure();
  EXPECT_EQ(h.recent_failures(), 2u);
  h.record_success();
  EXPECT_EQ(h.recent_failures(), 0u);
}

TEST(lb_host_set, sums_weights_and_finds_its_hosts) {
  const host_set_ptr set = make_host_set({"a", "b", "c"}, {5, 1, 1});
  EXPECT_EQ(set->size(), 3u);
  EXPECT_EQ(set->total_weight(), 7u);
  EXPECT_EQ(set->index_of(&(*set)[2]), 2u);
  host stranger("x");
  EXPECT_EQ(set->index_of(&stranger), 3u);
}

TEST(lb_host_set, hosts_shared_between_snapshots_share_their_statistics) {
  const host_set_ptr first = make_host_set({"a", "b"});
  std::vector<std::shared_ptr<const host>> hosts(first->hosts().begin(), first->hosts().end());
  hosts.push_back(std::make_shared<host>("c"));
  const auto second = std::make_shared<const host_set>(hosts);
  (*first)[0].begin_request();
  EXPECT_EQ((*second)[0].active_requests(), 1u);
  (*first)[0].end_request();
}

TEST(lb_host_set, needs_one_weight_per_address) {
  EXPECT_THROW(make_host_set({"a", "b"}, {1}), core::config_error);
}

}  // namespace
}  // namespace trellis::lb
