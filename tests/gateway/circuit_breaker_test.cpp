// Tests of gateway::circuit_breaker (the pure state machine, driven by a
// manual clock to the tick), of many threads sharing one breaker, and of
// the middleware routed in-process through an http::router.
#include "trellis/gateway/circuit_breaker.hpp"
#include "support/routed.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "trellis/cache/clock.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using kind = breaker_permit::kind;

constexpr auto ok = call_outcome::success;
constexpr auto bad = call_outcome::failure;

// Options with only the consecutive trigger, unless a test turns on more.
circuit_breaker_options consecutive(std::uint32_t n) {
  circuit_breaker_options o;
  o.consecutive_failures = n;
  o.failure_rate = 0;
  return o;
}

// One call through the breaker: allowed and recorded with `outcome`.
// Returns whether it was allowed.
bool call(circuit_breaker& b, call_outcome outcome, time_point now) {
  const auto p = b.allow(now);
  if (p) (void)b.record(p, outcome, now);
  return p.allowed();
}

TEST(circuit_breaker, opens_after_n_consecutive_failures_and_a_success_resets_the_count) {
  cache::manual_clock clock;
  circuit_breaker b(consecutive(3));
  EXPECT_EQ(b.state(clock.now()), breaker_state::closed);
  EXPECT_TRUE(call(b, bad, clock.now()));
  EXPECT_TRUE(call(b, bad, clock.now()));
  EXPECT_TRUE(call(b, ok, clock.now())) << "a success between failures";
  EXPECT_EQ(b.snapshot(clock.now()).consecutive_failures, 0u);
  EXPECT_TRUE(call(b, bad, clock.now()));
  EXPECT_TRUE(call(b, bad, clock.now()));
  EXPECT_EQ(b.state(clock.now()), breaker_state::closed) << "two in a row, threshold three";
  const auto p = b.allow(clock.now());
  ASSERT_EQ(p.type, kind::normal);
  EXPECT_EQ(b.record(p, bad, clock.now()), breaker_state::open) << "the third in a row trips";
  const auto s = b.snapshot(clock.now());
  EXPECT_EQ(s.state, breaker_state::open);
  EXPECT_EQ(s.trips, 1u);
  EXPECT_EQ(s.failures, 5u);
  EXPECT_EQ(s.successes, 1u);
  EXPECT_FALSE(b.allow(clock.now())) << "open refuses";
}

TEST(circuit_breaker, rate_trigger_waits_for_minimum_requests) {
  cache::manual_clock clock;
  circuit_breaker_options o;
  o.consecutive_failures = 0;
  o.failure_rate = 50;
  o.minimum_requests = 6;
  circuit_breaker b(o);
  // f s f s f: 60% failures, but only 5 outcomes.
  for (const auto out : {bad, ok, bad, ok, bad}) ASSERT_TRUE(call(b, out, clock.now()));
  EXPECT_EQ(b.state(clock.now()), breaker_state::closed);
  const auto s = b.snapshot(clock.now());
  EXPECT_EQ(s.window_requests, 5u);
  EXPECT_EQ(s.window_failures, 3u);
  // A success is the 6th outcome: the rate is exactly 50%, but a success
  // never trips (it can only lower the rate)...
  ASSERT_TRUE(call(b, ok, clock.now()));
  EXPECT_EQ(b.state(clock.now()), breaker_state::closed);
  // ...and the next failure makes 4 of 7, 57% >= 50%: open.
  const auto p = b.allow(clock.now());
  EXPECT_EQ(b.record(p, bad, clock.now()), breaker_state::open);
}

TEST(circuit_breaker, rate_trigger_trips_at_exactly_the_threshold) {
  cache::manual_clock clock;
  circuit_breaker_options o;
  o.consecutive_failures = 0;
  o.failure_rate = 50;
  o.minimum_requests = 4;
  circuit_breaker b(o);
  for (const auto out : {ok, bad, ok}) ASSERT_TRUE(call(b, out, clock.now()));
  EXPECT_EQ(b.state(clock.now()), breaker_state::closed);
  ASSERT_TRUE(call(b, bad, clock.now()));  // 2 of 4
  EXPECT_EQ(b.state(clock.now()), breaker_state::open);
}

TEST(circuit_breaker, rate_window_forgets_outcomes_older_than_the_window) {
  cache::manual_clock clock;
  circuit_breaker_options o;
  o.consecutive_failures = 0;
  o.failure_rate = 50;
  o.minimum_requests = 4;
  o.window = 10s;
  o.window_buckets = 10;
  circuit_breaker b(o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(b, bad, clock.now()));
  EXPECT_EQ(b.snapshot(clock.now()).window_requests, 3u);
  clock.advance(9s);
  EXPECT_EQ(b.snapshot(clock.now()).window_requests, 3u) << "still inside the 10 s window";
  clock.advance(1s);
  EXPECT_EQ(b.snapshot(clock.now()).window_requests, 0u) << "their bucket slid out";
  // So the 4th failure is 1 of 1, below minimum_requests: still closed.
  ASSERT_TRUE(call(b, bad, clock.now()));
  EXPECT_EQ(b.state(clock.now()), breaker_state::closed);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(b, bad, clock.now()));
  EXPECT_EQ(b.state(clock.now()), breaker_state::open) << "4 of 4 within the window";
}

TEST(circuit_breaker, stays_open_for_open_duration_then_lets_a_probe_through) {
  cache::manual_clock clock;
  auto o = consecutive(1);
  o.open_duration = 5s;
  circuit_breaker b(o);
  ASSERT_TRUE(call(b, bad, clock.now()));
  auto refused = b.allow(clock.now());
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.retry_after, 5s);
  clock.advance(4s);
  refused = b.allow(clock.now());
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.retry_after, 1s);
  EXPECT_EQ(b.snapshot(clock.now()).until_half_open, 1s);
  clock.advance(1s);
  EXPECT_EQ(b.state(clock.now()), breaker_state::half_open);
  EXPECT_EQ(b.allow(clock.now()).type, kind::probe);
  EXPECT_EQ(b.snapshot(clock.now()).refused, 2u);
}

TEST(circuit_breaker, half_open_admits_at_most_max_probes_at_a_time) {
  cache::manual_clock clock;
  auto o = consecutive(1);
  o.max_probes = 2;
  o.success_threshold = 3;
  circuit_breaker b(o);
  ASSERT_TRUE(call(b, bad, clock.now()));
  clock.advance(o.open_duration);
  const auto p1 = b.allow(clock.now());
  const auto p2 = b.allow(clock.now());
  const auto p3 = b.allow(clock.now());
  EXPECT_EQ(p1.type, kind::probe);
  EXPECT_EQ(p2.type, kind::probe);
  ASSERT_EQ(p3.type, kind::refused) << "both probe slots are taken";
  EXPECT_EQ(p3.retry_after, 0s) << "when a slot frees is unknown";
  EXPECT_EQ(b.snapshot(clock.now()).probes_in_flight, 2u);
  EXPECT_EQ(b.record(p1, ok, clock.now()), std::nullopt) << "1 of 3 successes";
  const auto p4 = b.allow(clock.now());
  EXPECT_EQ(p4.type, kind::probe) << "the finished probe freed its slot";
  EXPECT_FALSE(b.allow(clock.now()));
  EXPECT_EQ(b.record(p2, ok, clock.now()), std::nullopt);
  EXPECT_EQ(b.record(p4, ok, clock.now()), breaker_state::closed) << "the third success";
  EXPECT_EQ(b.allow(clock.now()).type, kind::normal);
}

TEST(circuit_breaker, closes_after_success_threshold_sequential_probes) {
  cache::manual_clock clock;
  auto o = consecutive(2);
  o.max_probes = 1;
  o.success_threshold = 3;
  circuit_breaker b(o);
  ASSERT_TRUE(call(b, bad, clock.now()));
  ASSERT_TRUE(call(b, bad, clock.now()));
  clock.advance(o.open_duration);
  std::vector<breaker_state> seen;
  for (int i = 0; i < 3; ++i) {
    const auto p = b.allow(clock.now());
    ASSERT_EQ(p.type, kind::probe) << i;
    EXPECT_FALSE(b.allow(clock.now())) << "one probe at a time";
    (void)b.record(p, ok, clock.now());
    seen.push_back(b.state(clock.now()));
  }
  EXPECT_EQ(seen, (std::vector<breaker_state>{breaker_state::half_open, breaker_state::half_open,
                                              breaker_state::closed}));
  // Closed again, with a clean slate: one failure does not trip a
  // threshold of two.
  ASSERT_TRUE(call(b, bad, clock.now()));
  EXPECT_EQ(b.state(clock.now()), breaker_state::closed);
}

TEST(circuit_breaker, a_failed_probe_reopens_for_longer_up_to_the_cap_and_closing_resets_it) {
  cache::manual_clock clock;
  auto o = consecutive(1);
  o.open_duration = 1s;
  o.backoff = 2;
  o.max_open_duration = 5s;
  o.success_threshold = 1;
  circuit_breaker b(o);
  ASSERT_TRUE(call(b, bad, clock.now()));
  std::vector<duration> periods;
  for (int i = 0; i < 5; ++i) {
    const auto s = b.snapshot(clock.now());
    ASSERT_EQ(s.state, breaker_state::open);
    periods.push_back(s.current_open_duration);
    clock.advance(s.until_half_open);
    const auto probe = b.allow(clock.now());
    ASSERT_EQ(probe.type, kind::probe);
    EXPECT_EQ(b.record(probe, bad, clock.now()), breaker_state::open) << "one failure reopens";
  }
  EXPECT_EQ(periods, (std::vector<duration>{1s, 2s, 4s, 5s, 5s}));
  EXPECT_EQ(b.snapshot(clock.now()).trips, 6u);
  // Recover, then fail again: the first open period again.
  clock.advance(5s);
  ASSERT_TRUE(call(b, ok, clock.now()));
  ASSERT_EQ(b.state(clock.now()), breaker_state::closed);
  ASSERT_TRUE(call(b, bad, clock.now()));
  EXPECT_EQ(b.snapshot(clock.now()).current_open_duration, 1s);
}

TEST(circuit_breaker, backoff_of_one_keeps_the_open_duration) {
  cache::manual_clock clock;
  auto o = consecutive(1);
  o.open_duration = 3s;
  o.backoff = 1;
  circuit_breaker b(o);
  ASSERT_TRUE(call(b, bad, clock.now()));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(b.snapshot(clock.now()).current_open_duration, 3s);
    clock.advance(3s);
    ASSERT_TRUE(call(b, bad, clock.now()));
  }
}

TEST(circuit_breaker, ignores_outcomes_of_permits_from_an_earlier_state) {
  cache::manual_clock clock;
  auto o = consecutive(2);
  o.success_threshold = 1;
  circuit_breaker b(o);
  const auto early = b.allow(clock.now());  // in flight while the breaker trips
  ASSERT_TRUE(call(b, bad, clock.now()));
  ASSERT_TRUE(call(b, bad, clock.now()));
  ASSERT_EQ(b.state(clock.now()), breaker_state::open);
  clock.advance(o.open_duration);
  ASSERT_EQ(b.state(clock.now()), breaker_state::half_open);
  // The early call succeeds, but says nothing about the upstream now: it
  // must not close the breaker in place of a probe.
  EXPECT_EQ(b.record(early, ok, clock.now()), std::nullopt);
  EXPECT_EQ(b.state(clock.now()), breaker_state::half_open);
  EXPECT_EQ(b.snapshot(clock.now()).stale, 1u);
  // A refused permit records nothing at all.
  const auto probe = b.allow(clock.now());
  const auto refused = b.allow(clock.now());
  ASSERT_FALSE(refused);
  EXPECT_EQ(b.record(refused, bad, clock.now()), std::nullopt);
  EXPECT_EQ(b.record(probe, ok, clock.now()), breaker_state::closed);
}

TEST(circuit_breaker, reopens_when_a_probe_verdict_never_arrives) {
  cache::manual_clock clock;
  auto o = consecutive(1);
  o.open_duration = 1s;
  o.backoff = 1;
  o.max_half_open_time = 30s;
  circuit_breaker b(o);
  ASSERT_TRUE(call(b, bad, clock.now()));
  clock.advance(1s);
  const auto lost = b.allow(clock.now());  // never recorded
  ASSERT_EQ(lost.type, kind::probe);
  clock.advance(29s);
  EXPECT_FALSE(b.allow(clock.now())) << "the lost probe still holds the only slot";
  clock.advance(1s);
  EXPECT_EQ(b.state(clock.now()), breaker_state::open) << "30 s without a verdict";
  clock.advance(1s);
  EXPECT_EQ(b.allow(clock.now()).type, kind::probe) << "a fresh half-open period";
}

TEST(circuit_breaker, bad_options_throw_config_error_naming_the_field) {
  const auto field_of = [](circuit_breaker_options o) -> std::string {
    try {
      circuit_breaker b(o);
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "";
  };
  auto o = circuit_breaker_options{};
  o.failure_rate = 120;
  EXPECT_EQ(field_of(o), "circuit_breaker.failure_rate");
  o = {};
  o.consecutive_failures = 0;
  o.failure_rate = 0;
  EXPECT_EQ(field_of(o), "circuit_breaker.consecutive_failures");
  o = {};
  o.max_probes = 0;
  EXPECT_EQ(field_of(o), "circuit_breaker.max_probes");
  o = {};
  o.success_threshold = 0;
  EXPECT_EQ(field_of(o), "circuit_breaker.success_threshold");
  o = {};
  o.max_open_duration = 1s;
  EXPECT_EQ(field_of(o), "circuit_breaker.max_open_duration");
  o = {};
  o.backoff = 0.5;
  EXPECT_EQ(field_of(o), "circuit_breaker.backoff");
  o = {};
  o.window = 0s;
  EXPECT_EQ(field_of(o), "circuit_breaker.window");
  o = {};
  o.window_buckets = 0;
  EXPECT_EQ(field_of(o), "circuit_breaker.window_buckets");
  o = {};
  o.open_duration = 0s;
  EXPECT_EQ(field_of(o), "circuit_breaker.open_duration");
  EXPECT_EQ(field_of({}), "") << "the defaults are valid";
}

// Every worker thread shares one breaker. All calls fail and the clock
// stands still, so the breaker must open exactly once and then refuse
// everything; every outcome must be accounted for.
TEST(circuit_breaker, many_threads_trip_it_once_and_every_call_is_accounted_for) {
  cache::manual_clock clock;
  circuit_breaker b(consecutive(5));
  constexpr int threads = 4, calls = 5000;
  std::atomic<std::uint64_t> allowed{0}, refused{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < calls; ++i) {
        const auto p = b.allow(clock.now());
        if (!p) {
          refused.fetch_add(1);
          continue;
        }
        allowed.fetch_add(1);
        (void)b.record(p, bad, clock.now());
      }
    });
  }
  for (auto& t : pool) t.join();
  const auto s = b.snapshot(clock.now());
  EXPECT_EQ(s.state, breaker_state::open);
  EXPECT_EQ(s.trips, 1u);
  EXPECT_EQ(s.allowed, allowed.load());
  EXPECT_EQ(s.refused, refused.load());
  EXPECT_EQ(s.allowed + s.refused, std::uint64_t{threads} * calls);
  EXPECT_EQ(s.failures + s.stale, s.allowed) << "each permit recorded once";
  EXPECT_GE(s.failures, 5u);
}

// Threads hammer a breaker whose upstream fails in runs (three failures,
// three successes) while every thread moves time on, so that it opens,
// probes and closes many times, even if the threads happen to run one
// after the other. The probes a
// test can see in flight (counted after allow() and uncounted before
// record(), so never fewer than the breaker's own) never exceed
// max_probes.
TEST(circuit_breaker, many_threads_never_exceed_max_probes) {
  cache::manual_clock clock;
  auto o = consecutive(2);
  o.max_probes = 2;
  o.success_threshold = 2;
  o.open_duration = 10ms;
  o.backoff = 1;
  circuit_breaker b(o);
  constexpr int threads = 4, calls = 5000;
  std::atomic<int> probes{0}, most{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) {
        if (i % 4 == 0) clock.advance(1ms);
        const auto p = b.allow(clock.now());
        if (!p) continue;
        if (p.type == kind::probe) {
          const int now_in = probes.fetch_add(1) + 1;
          int m = most.load();
          while (now_in > m && !most.compare_exchange_weak(m, now_in)) {
          }
          probes.fetch_sub(1);
        }
        (void)b.record(p, (i + t) % 6 < 3 ? bad : ok, clock.now());
      }
    });
  }
  for (auto& t : pool) t.join();
  const auto s = b.snapshot(clock.now());
  EXPECT_LE(most.load(), 2);
  EXPECT_GT(s.trips, 1u) << "the scenario should have exercised reopening";
  EXPECT_EQ(s.successes + s.failures + s.stale, s.allowed);
  EXPECT_LE(s.probes_in_flight, 2u);
}

// ---------------------------------------------------------------------------
// The middleware, routed in-process.

using test::routed;

std::unique_ptr<routed> route(const http::router& r, std::string_view target) {
  return test::route(r, {.target = std::string(target)}, 2s);
}

// A router whose handler answers `status` (or throws when it is 0) and
// counts its calls: the upstream, as far as the breaker can tell.
struct upstream_rig {
  cache::manual_clock clock;
  std::shared_ptr<circuit_breaker> breaker;
  http::router router;
  int status = 200;
  int calls = 0;

  explicit upstream_rig(circuit_breaker_options o, circuit_breaker_middleware_options mo = {})
      : breaker(std::make_shared<circuit_breaker>(o)) {
    mo.clock = clock.function();
    router.use(std::make_shared<circuit_breaker_middleware>(breaker, std::move(mo)));
    router.get("/x", [this](http::request&, http::response& res) -> asio::awaitable<void> {
      ++calls;
      if (status == 0) throw std::runtime_error("handler failed");
      res.status = status;
      res.set_text("answer\n");
      co_return;
    });
  }
};

TEST(circuit_breaker_middleware, answers_503_with_retry_after_without_calling_the_upstream) {
  auto o = consecutive(2);
  o.open_duration = 2500ms;
  o.success_threshold = 1;
  upstream_rig rig(o);
  rig.status = 502;
  EXPECT_EQ(route(rig.router, "/x")->res.status, 502);
  EXPECT_EQ(route(rig.router, "/x")->res.status, 502);
  EXPECT_EQ(rig.calls, 2);
  ASSERT_EQ(rig.breaker->state(rig.clock.now()), breaker_state::open);

  auto refused = route(rig.router, "/x");
  EXPECT_EQ(refused->res.status, 503);
  EXPECT_EQ(rig.calls, 2) << "the upstream is not called while open";
  EXPECT_EQ(refused->res.headers.get("Retry-After"), "3") << "2.5 s rounded up";
  EXPECT_EQ(refused->res.headers.get("Content-Type"), "application/problem+json");
  EXPECT_NE(refused->res.body.find("\"retry_after\":3"), std::string::npos) << refused->res.body;
  EXPECT_NE(refused->res.body.find("\"upstream\":\"upstream\""), std::string::npos)
      << refused->res.body;

  rig.clock.advance(2500ms);
  rig.status = 200;
  auto probe = route(rig.router, "/x");
  EXPECT_EQ(probe->res.status, 200);
  EXPECT_EQ(rig.calls, 3);
  EXPECT_EQ(rig.breaker->state(rig.clock.now()), breaker_state::closed);
}

TEST(circuit_breaker_middleware, counts_4xx_as_success_and_a_throwing_handler_as_failure) {
  upstream_rig rig(consecutive(2));
  rig.status = 500;
  (void)route(rig.router, "/x");
  rig.status = 404;  // the client's fault: resets the run of failures
  (void)route(rig.router, "/x");
  rig.status = 500;
  (void)route(rig.router, "/x");
  EXPECT_EQ(rig.breaker->state(rig.clock.now()), breaker_state::closed);
  rig.status = 0;  // throws: the router makes it a 500 before after() runs
  auto thrown = route(rig.router, "/x");
  EXPECT_EQ(thrown->res.status, 500);
  EXPECT_EQ(rig.breaker->state(rig.clock.now()), breaker_state::open);
  const auto s = rig.breaker->snapshot(rig.clock.now());
  EXPECT_EQ(s.failures, 3u);
  EXPECT_EQ(s.successes, 1u);
}

TEST(circuit_breaker_middleware, counts_only_the_configured_failure_statuses) {
  circuit_breaker_middleware_options mo;
  mo.failure_statuses = {502, 503, 504};
  mo.name = "payments";
  upstream_rig rig(consecutive(1), mo);
  rig.status = 500;  // the application's own error, not an unreachable upstream
  (void)route(rig.router, "/x");
  EXPECT_EQ(rig.breaker->state(rig.clock.now()), breaker_state::closed);
  rig.status = 504;
  (void)route(rig.router, "/x");
  EXPECT_EQ(rig.breaker->state(rig.clock.now()), breaker_state::open);
  auto refused = route(rig.router, "/x");
  EXPECT_EQ(refused->res.status, 503);
  EXPECT_NE(refused->res.body.find("\"upstream\":\"payments\""), std::string::npos);
  EXPECT_FALSE(refused->req.attribute("circuit_breaker:payments").size())
      << "a refused request carries no permit";
}

TEST(circuit_breaker_middleware, refuses_a_failure_status_outside_the_status_range) {
  circuit_breaker_middleware_options mo;
  mo.failure_statuses = {502, 700};
  try {
    circuit_breaker_middleware m(std::make_shared<circuit_breaker>(), mo);
    ADD_FAILURE() << "did not throw";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "circuit_breaker.failure_statuses");
  }
}

}  // namespace
}  // namespace trellis::gateway
