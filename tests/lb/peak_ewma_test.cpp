// Peak EWMA with two choices: avoids slow hosts, is not fooled by hosts
// that fail fast, and honours Retry-After on the injected clock.
#include <gtest/gtest.h>

#include <chrono>

#include "lb/support.hpp"
#include "trellis/lb/policy.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;
using test::tally;

struct fixture {
  manual_clock clock;
  host_set_ptr set = make_host_set({"a", "b"});
  std::unique_ptr<policy> p;
  fixture() {
    policy_options o;
    o.seed = 5;
    o.clock = clock.function();
    p = make_policy("peak_ewma", set, o);
  }
  const host& a() const { return (*set)[0]; }
  const host& b() const { return (*set)[1]; }
};

TEST(lb_peak_ewma, avoids_a_slow_host) {
  fixture f;
  f.p->observe(f.a(), {.latency = 100ms, .status = 200});
  f.p->observe(f.b(), {.latency = 10ms, .status = 200});
  EXPECT_EQ(tally(*f.p, 200).count("a"), 0u);
}

TEST(lb_peak_ewma, weighs_latency_by_requests_in_flight) {
  fixture f;
  f.p->observe(f.a(), {.latency = 100ms, .status = 200});
  f.p->observe(f.b(), {.latency = 10ms, .status = 200});
  for (int i = 0; i < 20; ++i) f.b().begin_request();  // 10 ms x 21 > 100 ms x 1
  EXPECT_EQ(tally(*f.p, 200).count("b"), 0u);
}

TEST(lb_peak_ewma, a_host_failing_fast_is_not_preferred) {
  fixture f;
  f.p->observe(f.a(), {.latency = 1ms, .status = 503});  // fast, but a failure
  f.p->observe(f.b(), {.latency = 50ms, .status = 200});
  EXPECT_EQ(tally(*f.p, 200).count("a"), 0u);
}

TEST(lb_peak_ewma, fast_429s_and_lost_connections_count_as_failures_too) {
  for (int status : {429, 0}) {
    fixture f;
    f.p->observe(f.a(), {.latency = 1ms, .status = status});
    f.p->observe(f.b(), {.latency = 50ms, .status = 200});
    EXPECT_EQ(tally(*f.p, 200).count("a"), 0u) << status;
  }
}

TEST(lb_peak_ewma, one_slow_response_raises_the_cost_at_once) {
  fixture f;
  f.p->observe(f.a(), {.latency = 10ms, .status = 200});
  f.p->observe(f.b(), {.latency = 20ms, .status = 200});
  EXPECT_EQ(tally(*f.p, 50).count("b"), 0u);
  f.p->observe(f.a(), {.latency = 400ms, .status = 200});  // a peak
  EXPECT_EQ(tally(*f.p, 50).count("a"), 0u);
}

TEST(lb_peak_ewma, retry_after_keeps_a_host_out_until_it_expires) {
  fixture f;
  const host* tried[] = {&f.b()};
  request_context only_a;
  only_a.exclude = tried;
  f.p->observe(f.a(), {.latency = 1ms, .status = 429, .retry_after = f.clock.now() + 5s});
  EXPECT_EQ(f.p->pick(only_a), nullptr);
  EXPECT_EQ(tally(*f.p, 100).at("b"), 100);
  f.clock.advance(4s);
  EXPECT_EQ(f.p->pick(only_a), nullptr);
  f.clock.advance(1s);
  EXPECT_EQ(f.p->pick(only_a), &f.a());
}

TEST(lb_peak_ewma, a_new_idle_host_is_tried_before_known_ones) {
  fixture f;
  f.p->observe(f.a(), {.latency = 5ms, .status = 200});
  EXPECT_EQ(f.p->pick({}), &f.b());  // b has no sample and nothing in flight
}

TEST(lb_peak_ewma, a_slow_host_is_tried_again_once_its_average_decays) {
  fixture f;
  f.p->observe(f.a(), {.latency = 1000ms, .status = 200});
  f.p->observe(f.b(), {.latency = 10ms, .status = 200});
  f.clock.advance(10s);
  f.p->observe(f.b(), {.latency = 10ms, .status = 200});
  EXPECT_EQ(f.p->pick({}), &f.b());
  // a has been left alone for a minute: 1000 ms x e^-6 = 2.5 ms < 10 ms.
  f.clock.advance(50s);
  f.p->observe(f.b(), {.latency = 10ms, .status = 200});
  EXPECT_EQ(f.p->pick({}), &f.a());
}

}  // namespace
}  // namespace trellis::lb
