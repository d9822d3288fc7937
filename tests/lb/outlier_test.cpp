#include "trellis/lb/outlier.hpp"

#include <gtest/gtest.h>

#include "trellis/core/error.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;

// Feeds `n` results with `status`; returns the last verdict.
std::optional<ejection_reason> feed(outlier_tracker& t, int status, int n,
                                    const outlier_options& o = {}) {
  std::optional<ejection_reason> last;
  for (int i = 0; i < n; ++i) last = t.record(status, o);
  return last;
}

TEST(lb_outlier_tracker, five_consecutive_5xx_ask_for_ejection) {
  outlier_tracker t;
  EXPECT_FALSE(feed(t, 500, 4));
  EXPECT_EQ(t.consecutive_5xx(), 4u);
  EXPECT_EQ(t.record(500, {}), ejection_reason::consecutive_5xx);
}

TEST(lb_outlier_tracker, a_success_resets_the_counts) {
  outlier_tracker t;
  feed(t, 503, 4);
  EXPECT_FALSE(t.record(200, {}));
  EXPECT_EQ(t.consecutive_5xx(), 0u);
  EXPECT_EQ(t.consecutive_gateway_failures(), 0u);
  EXPECT_FALSE(feed(t, 503, 4));
}

TEST(lb_outlier_tracker, status_429_and_4xx_are_not_failures) {
  outlier_tracker t;
  feed(t, 500, 4);
  EXPECT_FALSE(t.record(429, {}));
  EXPECT_FALSE(t.record(404, {}));
  EXPECT_EQ(t.consecutive_5xx(), 0u);
}

TEST(lb_outlier_tracker, gateway_failures_count_502_503_504_and_no_response) {
  outlier_options o;
  o.consecutive_5xx = 0;  // only the gateway detector
  outlier_tracker t;
  EXPECT_FALSE(t.record(502, o));
  EXPECT_FALSE(t.record(503, o));
  EXPECT_FALSE(t.record(504, o));
  EXPECT_FALSE(t.record(0, o));
  EXPECT_EQ(t.consecutive_gateway_failures(), 4u);
  EXPECT_EQ(t.record(0, o), ejection_reason::consecutive_gateway_failure);
}

TEST(lb_outlier_tracker, a_500_resets_the_gateway_count_but_not_the_5xx_count) {
  outlier_options o;
  o.consecutive_5xx = 0;
  outlier_tracker t;
  feed(t, 503, 4, o);
  EXPECT_FALSE(t.record(500, o));
  EXPECT_EQ(t.consecutive_gateway_failures(), 0u);
  EXPECT_EQ(t.consecutive_5xx(), 5u);
}

TEST(lb_outlier_tracker, no_response_counts_as_5xx) {
  outlier_options o;
  o.consecutive_gateway_failure = 0;
  outlier_tracker t;
  EXPECT_FALSE(feed(t, 0, 4, o));
  EXPECT_EQ(t.record(0, o), ejection_reason::consecutive_5xx);
}

TEST(lb_outlier_tracker, disabled_detection_never_asks) {
  outlier_options o;
  o.enabled = false;
  outlier_tracker t;
  EXPECT_FALSE(feed(t, 0, 50, o));
}

TEST(lb_outlier_tracker, a_host_held_in_by_the_cap_asks_again_on_its_next_failure) {
  outlier_tracker t;
  EXPECT_EQ(feed(t, 500, 5), ejection_reason::consecutive_5xx);
  EXPECT_EQ(t.record(500, {}), ejection_reason::consecutive_5xx);  // not ejected: asks again
}

TEST(lb_outlier_tracker, ejection_grows_one_base_per_ejection) {
  outlier_options o;  // base 30 s, max 300 s
  manual_clock clock;
  outlier_tracker t;
  for (int n = 1; n <= 3; ++n) {
    feed(t, 500, 5, o);
    const time_point start = clock.now();
    EXPECT_EQ(t.eject(start, o), start + n * 30s) << "ejection " << n;
    EXPECT_TRUE(t.ejected());
    EXPECT_EQ(t.multiplier(), static_cast<std::uint32_t>(n));
    EXPECT_FALSE(t.tick(start + n * 30s - 1ns, o));
    EXPECT_TRUE(t.ejected());
    clock.advance(n * 30s);
    EXPECT_TRUE(t.tick(clock.now(), o)) << "returns when its time is up";
    EXPECT_FALSE(t.ejected());
    clock.advance(1s);  // less than the decay interval: the multiplier stays
    EXPECT_FALSE(t.tick(clock.now(), o));
  }
  EXPECT_EQ(t.ejections(), 3u);
}

TEST(lb_outlier_tracker, ejection_is_capped_by_max_ejection_time) {
  outlier_options o;
  o.base_ejection_time = 100s;
  o.max_ejection_time = 250s;
  outlier_tracker t;
  time_point now{};
  std::vector<duration> lengths;
  for (int n = 0; n < 5; ++n) {
    const time_point until = t.eject(now, o);
    lengths.push_back(until - now);
    now = until;
    ASSERT_TRUE(t.tick(now, o));
  }
  EXPECT_EQ(lengths, (std::vector<duration>{100s, 200s, 250s, 250s, 250s}));
  EXPECT_EQ(t.multiplier(), 3u) << "stops growing one step past the cap";
}

TEST(lb_outlier_tracker, multiplier_decays_one_per_interval_in_rotation) {
  outlier_options o;  // interval 10 s
  outlier_tracker t;
  time_point now{};
  for (int n = 0; n < 3; ++n) {
    now = t.eject(now, o);
    ASSERT_TRUE(t.tick(now, o));
  }
  ASSERT_EQ(t.multiplier(), 3u);
  EXPECT_EQ(t.next_change(o), now + 10s);
  t.tick(now + 9s, o);
  EXPECT_EQ(t.multiplier(), 3u);
  t.tick(now + 10s, o);
  EXPECT_EQ(t.multiplier(), 2u);
  t.tick(now + 25s, o);  // one more whole interval (20 s), not 2.5
  EXPECT_EQ(t.multiplier(), 1u);
  // The next ejection lasts 2 x base, not 4 x.
  const time_point later = now + 25s;
  EXPECT_EQ(t.eject(later, o), later + 60s);
  ASSERT_TRUE(t.tick(later + 60s, o));
  t.tick(later + 60s + 1h, o);
  EXPECT_EQ(t.multiplier(), 0u);
  EXPECT_EQ(t.next_change(o), time_point::max());
  EXPECT_EQ(t.ejections(), 4u) << "the total never decays";
}

TEST(lb_outlier_tracker, no_decay_while_ejected) {
  outlier_options o;
  o.base_ejection_time = 30s;
  outlier_tracker t;
  time_point now{};
  now = t.eject(now, o);
  ASSERT_TRUE(t.tick(now, o));
  now = t.eject(now, o);  // 60 s, longer than the 10 s interval
  EXPECT_EQ(t.multiplier(), 2u);
  EXPECT_FALSE(t.tick(now - 1s, o));
  EXPECT_EQ(t.multiplier(), 2u);
}

TEST(lb_outlier_tracker, ejection_resets_the_counts_and_records_the_reason) {
  outlier_options o;
  o.consecutive_5xx = 0;
  outlier_tracker t;
  ASSERT_EQ(feed(t, 502, 5, o), ejection_reason::consecutive_gateway_failure);
  t.eject(time_point{}, o);
  EXPECT_EQ(t.consecutive_gateway_failures(), 0u);
  EXPECT_EQ(t.last_reason(), ejection_reason::consecutive_gateway_failure);
  EXPECT_FALSE(feed(t, 502, 10, o)) << "an ejected host never asks again";
}

TEST(lb_outlier_limits, max_ejected_hosts_follows_the_percentage) {
  outlier_options o;  // 10 %, always one
  EXPECT_EQ(max_ejected_hosts(0, o), 0u);
  EXPECT_EQ(max_ejected_hosts(1, o), 1u);
  EXPECT_EQ(max_ejected_hosts(4, o), 1u);
  EXPECT_EQ(max_ejected_hosts(10, o), 1u);
  EXPECT_EQ(max_ejected_hosts(25, o), 2u);
  EXPECT_EQ(max_ejected_hosts(100, o), 10u);
  o.always_eject_one = false;
  EXPECT_EQ(max_ejected_hosts(4, o), 0u);
  o.max_ejection_percent = 100;
  EXPECT_EQ(max_ejected_hosts(7, o), 7u);
  o.max_ejection_percent = 0;
  o.always_eject_one = true;
  EXPECT_EQ(max_ejected_hosts(7, o), 0u) << "0 % turns ejection off";
  o.max_ejection_percent = 30;
  EXPECT_EQ(max_ejected_hosts(10, o), 3u);
  o.enabled = false;
  EXPECT_EQ(max_ejected_hosts(10, o), 0u);
}

TEST(lb_outlier_options, bad_values_name_their_field) {
  auto field_of = [](outlier_options o) -> std::string {
    try {
      validate(o);
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "";
  };
  outlier_options o;
  EXPECT_EQ(field_of(o), "");
  o.base_ejection_time = 0s;
  EXPECT_EQ(field_of(o), "cluster.outlier.base_ejection_time");
  o = {};
  o.max_ejection_time = 1s;
  EXPECT_EQ(field_of(o), "cluster.outlier.max_ejection_time");
  o = {};
  o.max_ejection_percent = 101;
  EXPECT_EQ(field_of(o), "cluster.outlier.max_ejection_percent");
  o = {};
  o.interval = 0s;
  EXPECT_EQ(field_of(o), "cluster.outlier.interval");
}

}  // namespace
}  // namespace trellis::lb
