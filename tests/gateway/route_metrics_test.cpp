// Tests of the per-route metrics middleware, driven through http::router
// in-process with an injected steady clock: counts by route and status
// class, latency percentiles, the in-flight gauge, the route-name bound,
// the Prometheus exposition, and recording from several threads.
#include "trellis/gateway/route_metrics.hpp"
#include "support/routed.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "trellis/core/error.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

using exchange = test::routed;

std::unique_ptr<exchange> route(const http::router& r, http::method m, std::string target) {
  return test::route(r, {.method = m, .target = std::move(target)});
}

// A steady clock that handlers move by hand (one per test thread).
struct manual_steady {
  std::atomic<std::int64_t> ns{1'000'000'000'000};
  std::function<std::chrono::steady_clock::time_point()> function() {
    return [this] {
      return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns.load()));
    };
  }
  void advance(std::chrono::nanoseconds d) { ns += d.count(); }
};

// A handler that takes `d` of the manual clock and answers `status`.
http::handler takes(manual_steady& clock, std::chrono::nanoseconds d, int status = 200) {
  return [&clock, d, status](http::request&, http::response& res) -> asio::awaitable<void> {
    clock.advance(d);
    res.status = status;
    res.set_text("ok");
    co_return;
  };
}

TEST(route_metrics, counts_requests_by_route_and_status_class) {
  manual_steady clock;
  core::metrics_registry registry;
  auto m = std::make_shared<route_metrics>(
      route_metrics_options{.metrics = &registry, .clock = clock.function()});
  http::router r;
  r.use(m);
  r.get("/users/{id}", m->wrap("users", takes(clock, 1ms)));
  r.post("/users", m->wrap("users", takes(clock, 1ms, 201)));
  r.get("/old", m->wrap("redirects", takes(clock, 1ms, 301)));
  r.get("/boom", m->wrap("boom", [](http::request&, http::response&) -> asio::awaitable<void> {
    throw std::runtime_error("handler bug");
    co_return;
  }));

  route(r, http::method::get, "/users/1");
  route(r, http::method::get, "/users/2");
  route(r, http::method::post, "/users");
  route(r, http::method::get, "/old");
  route(r, http::method::get, "/boom");
  route(r, http::method::get, "/nowhere");
  route(r, http::method::put, "/users");

  const route_stats users = m->stats("users");
  EXPECT_EQ(users.by_class[1], 3u) << "2xx";
  EXPECT_EQ(users.by_class[3] + users.by_class[4], 0u);
  EXPECT_EQ(m->stats("redirects").by_class[2], 1u) << "3xx";
  EXPECT_EQ(m->stats("boom").by_class[4], 1u) << "a throwing handler counts as the 500 it becomes";
  const route_stats fallback = m->stats("default");
  EXPECT_EQ(fallback.by_class[3], 2u) << "the router's 404 and 405 have no named route";
  EXPECT_EQ(m->stats("never").by_class[1], 0u);
}

TEST(route_metrics, latency_histogram_gives_p50_p90_p99) {
  manual_steady clock;
  route_metrics m({.clock = clock.function()});
  http::router r;
  r.use(std::shared_ptr<route_metrics>(&m, [](route_metrics*) {}));
  std::chrono::nanoseconds next = 1ms;
  r.get("/work", m.wrap("work", [&](http::request&, http::response& res) -> asio::awaitable<void> {
    clock.advance(next);
    res.set_text("done");
    co_return;
  }));
  // 80 requests of 1 ms, 15 of 10 ms, 5 of 100 ms.
  for (int i = 0; i < 100; ++i) {
    next = i < 80 ? 1ms : i < 95 ? 10ms : 100ms;
    route(r, http::method::get, "/work");
  }
  const route_stats s = m.stats("work");
  ASSERT_EQ(s.latency.count(), 100u);
  // The histogram reports a bucket's upper bound: never below the true
  // value, less than 1/16 above it.
  const auto within = [](std::uint64_t got, std::chrono::nanoseconds want) {
    const auto w = static_cast<std::uint64_t>(want.count());
    return got >= w && got <= w + w / 16;
  };
  EXPECT_TRUE(within(s.latency.percentile(50), 1ms)) << s.latency.percentile(50);
  EXPECT_TRUE(within(s.latency.percentile(90), 10ms)) << s.latency.percentile(90);
  EXPECT_TRUE(within(s.latency.percentile(99), 100ms)) << s.latency.percentile(99);
  const std::chrono::nanoseconds total = 80 * 1ms + 15 * 10ms + 5 * 100ms;
  EXPECT_EQ(s.latency.sum(), static_cast<std::uint64_t>(total.count()));
}

TEST(route_metrics, in_flight_counts_a_request_under_its_route_while_the_handler_runs) {
  manual_steady clock;
  auto m = std::make_shared<route_metrics>(route_metrics_options{.clock = clock.function()});
  http::router r;
  r.use(m);
  std::int64_t during_named = -1, during_default = -1;
  r.get("/slow", m->wrap("slow", [&](http::request&, http::response& res) -> asio::awaitable<void> {
    during_named = m->stats("slow").in_flight;
    during_default = m->stats("default").in_flight;
    res.set_text("x");
    co_return;
  }));
  route(r, http::method::get, "/slow");
  EXPECT_EQ(during_named, 1) << "wrap() moved the count to the route's own name";
  EXPECT_EQ(during_default, 0);
  EXPECT_EQ(m->stats("slow").in_flight, 0);
  EXPECT_EQ(m->stats("default").in_flight, 0);
}

TEST(route_metrics, route_names_beyond_max_routes_are_counted_as_other) {
  manual_steady clock;
  auto m = std::make_shared<route_metrics>(
      route_metrics_options{.max_routes = 2, .clock = clock.function()});
  http::router r;
  r.use(m);
  r.get("/a", m->wrap("a", takes(clock, 1ms)));
  r.get("/b", m->wrap("b", takes(clock, 1ms)));
  r.get("/c", m->wrap("c", takes(clock, 1ms)));
  r.get("/d", m->wrap("d", takes(clock, 1ms)));
  for (const char* p : {"/a", "/b", "/c", "/d", "/c"}) route(r, http::method::get, p);
  // "default" took a slot first (before() runs before wrap() names the
  // route), then "a"; everything after is "other".
  EXPECT_EQ(m->stats("a").by_class[1], 1u);
  EXPECT_EQ(m->stats("other").by_class[1], 4u);
  EXPECT_EQ(m->stats("c").by_class[1], 0u);
  EXPECT_EQ(m->stats("other").in_flight, 0);
  EXPECT_EQ(m->metrics().expose().find("route=\"c\""), std::string::npos);
}

TEST(route_metrics, exposes_the_series_in_prometheus_text_format) {
  manual_steady clock;
  core::metrics_registry registry;
  auto m = std::make_shared<route_metrics>(
      route_metrics_options{.metrics = &registry, .clock = clock.function()});
  http::router r;
  r.use(m);
  r.get("/users", m->wrap("users", takes(clock, 3ms)));
  route(r, http::method::get, "/users");
  route(r, http::method::get, "/users");
  route(r, http::method::get, "/missing");
  const std::string text = registry.expose();
  EXPECT_THAT(text, HasSubstr("# TYPE trellis_route_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("trellis_route_requests_total{class=\"2xx\",route=\"users\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("trellis_route_requests_total{class=\"4xx\",route=\"default\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("trellis_route_requests_total{class=\"5xx\",route=\"users\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE trellis_route_requests_in_flight gauge\n"));
  EXPECT_THAT(text, HasSubstr("trellis_route_requests_in_flight{route=\"users\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE trellis_route_request_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("trellis_route_request_duration_seconds_count{route=\"users\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("trellis_route_request_duration_seconds_sum{route=\"users\"} 0.006\n"));
  EXPECT_THAT(text, HasSubstr("trellis_route_request_duration_seconds_bucket{route=\"users\","
                              "le=\"+Inf\"} 2\n"));
}

TEST(route_metrics, threads_record_into_their_own_shards_and_the_totals_add_up) {
  manual_steady clock;  // shared: only its total movement matters here
  core::metrics_registry registry;
  auto m = std::make_shared<route_metrics>(
      route_metrics_options{.metrics = &registry, .clock = clock.function()});
  http::router r;
  r.use(m);
  r.get("/x", m->wrap("x", takes(clock, 0ms)));
  constexpr int k_threads = 4;
  constexpr int k_requests = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < k_requests; ++i) route(r, http::method::get, "/x");
    });
  for (auto& th : threads) th.join();
  const route_stats s = m->stats("x");
  EXPECT_EQ(s.by_class[1], static_cast<std::uint64_t>(k_threads * k_requests));
  EXPECT_EQ(s.latency.count(), static_cast<std::uint64_t>(k_threads * k_requests));
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_THAT(registry.expose(),
              HasSubstr("trellis_route_requests_total{class=\"2xx\",route=\"x\"} 800\n"));
}

TEST(route_metrics, bad_configuration_throws_naming_the_field) {
  const auto field_of = [](route_metrics_options o) -> std::string {
    try {
      route_metrics m(std::move(o));
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "(no error)";
  };
  EXPECT_EQ(field_of({.route = ""}), "route_metrics.route");
  EXPECT_EQ(field_of({.max_routes = 0}), "route_metrics.max_routes");
  EXPECT_EQ(field_of({}), "(no error)");
}

}  // namespace
}  // namespace trellis::gateway
