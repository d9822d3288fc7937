// gateway::dashboard: per-interval rates and percentiles from the metrics
// a gateway's pieces register, host health from its status, a bounded
// history, and the page and data endpoints.
#include "trellis/gateway/dashboard.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <string>

#include "support/routed.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using wall = std::chrono::system_clock;

// The series route_metrics, the proxy's cache and the rate limiter
// register, under their real names and labels.
struct gateway_series {
  core::metrics_registry m;
  core::counter& ok =
      m.add_counter("trellis_route_requests_total", "r", {{"route", "users"}, {"class", "2xx"}});
  core::counter& server_error =
      m.add_counter("trellis_route_requests_total", "r", {{"route", "users"}, {"class", "5xx"}});
  core::counter& other_route =
      m.add_counter("trellis_route_requests_total", "r", {{"route", "orders"}, {"class", "2xx"}});
  core::histogram& latency =
      m.add_histogram("trellis_route_request_duration_seconds", "d", {{"route", "users"}});
  core::gauge& in_flight =
      m.add_gauge("trellis_route_requests_in_flight", "f", {{"route", "users"}});
  core::counter& hit = m.add_counter("trellis_proxy_cache_requests_total", "c",
                                     {{"cluster", "products"}, {"result", "hit"}});
  core::counter& revalidated = m.add_counter("trellis_proxy_cache_requests_total", "c",
                                             {{"cluster", "products"}, {"result", "revalidated"}});
  core::counter& miss = m.add_counter("trellis_proxy_cache_requests_total", "c",
                                      {{"cluster", "products"}, {"result", "miss"}});
  core::counter& bypass = m.add_counter("trellis_proxy_cache_requests_total", "c",
                                        {{"cluster", "products"}, {"result", "bypass"}});
  core::counter& limited = m.add_counter("trellis_rate_limit_requests_total", "l",
                                         {{"policy", "burst"}, {"result", "limited"}});
  core::counter& allowed = m.add_counter("trellis_rate_limit_requests_total", "l",
                                         {{"policy", "burst"}, {"result", "allowed"}});
};

json two_clusters(bool second_host_healthy, const char* breaker = "closed") {
  return {
      {"generation", 4},
      {"routes",
       {{{"name", "users"},
         {"cluster", "users"},
         {"responses", {{"1xx", 0}, {"2xx", 90}, {"3xx", 0}, {"4xx", 4}, {"5xx", 6}}},
         {"p99_ms", 12.5},
         {"breaker", {{"state", breaker}}}}}},
      {"clusters",
       {{{"name", "users"},
         {"hosts",
          {{{"address", "127.0.0.1:9101"}, {"healthy", true}, {"ejected", false}},
           {{"address", "127.0.0.1:9111"}, {"healthy", second_host_healthy}, {"ejected", false}}}}},
        {{"name", "orders"},
         {"hosts", {{{"address", "127.0.0.1:9102"}, {"healthy", true}, {"ejected", true}}}}}}}};
}

TEST(dashboard, a_sample_is_the_rates_and_percentiles_of_its_interval) {
  gateway_series g;
  bool healthy = true;
  dashboard d(g.m, [&] { return two_clusters(healthy); });
  const wall::time_point t0 = wall::time_point(std::chrono::seconds(1'764'400'000));

  // Before the baseline: traffic the first interval must not count.
  g.ok.add(1000);
  g.latency.record(900'000'000);
  d.sample(t0);
  EXPECT_EQ(d.size(), 0u) << "the first call is the baseline only";

  for (int i = 0; i < 99; ++i) g.latency.record(2'000'000);  // 2 ms
  g.latency.record(50'000'000);                              // one of 50 ms
  g.ok.add(90);
  g.server_error.add(6);
  g.other_route.add(4);
  g.hit.add(6);
  g.revalidated.add(2);
  g.miss.add(2);
  g.bypass.add(100);
  g.limited.add(8);
  g.allowed.add(50);
  g.in_flight.add(3);
  healthy = false;
  d.sample(t0 + 2s);

  const json data = d.data();
  EXPECT_EQ(data["interval_ms"], 1000);
  EXPECT_EQ(data["generation"], 4);
  ASSERT_EQ(data["samples"].size(), 1u);
  const json& s = data["samples"][0];
  EXPECT_EQ(s["t"], 1'764'400'002'000);
  EXPECT_DOUBLE_EQ(s["requests"].get<double>(), 50.0) << "100 requests over 2 s";
  EXPECT_DOUBLE_EQ(s["by_class"]["2xx"].get<double>(), 47.0);
  EXPECT_DOUBLE_EQ(s["by_class"]["5xx"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(s["by_class"]["4xx"].get<double>(), 0.0);
  // Percentiles of the interval alone: the 900 ms request before the
  // baseline is not in them. Bucket bounds over-report by < 1/16.
  EXPECT_GE(s["p50_ms"].get<double>(), 2.0);
  EXPECT_LT(s["p50_ms"].get<double>(), 2.0 * 17 / 16);
  EXPECT_GE(s["p99_ms"].get<double>(), 2.0);
  EXPECT_LT(s["p99_ms"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(s["cache_hits"].get<double>(), 4.0) << "hit and revalidated, per second";
  EXPECT_DOUBLE_EQ(s["cache_misses"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(s["cache_hit_ratio"].get<double>(), 0.8) << "bypass is not a lookup";
  EXPECT_DOUBLE_EQ(s["rate_limited"].get<double>(), 4.0);
  EXPECT_EQ(s["in_flight"], 3);
  EXPECT_EQ(s["healthy_hosts"]["users"], 1);
  EXPECT_EQ(s["healthy_hosts"]["orders"], 0) << "an ejected host is not serving";

  ASSERT_EQ(data["clusters"].size(), 2u);
  EXPECT_EQ(data["clusters"][0]["name"], "users");
  EXPECT_EQ(data["clusters"][0]["healthy"], 1);
  EXPECT_EQ(data["clusters"][0]["total"], 2);
  EXPECT_EQ(data["clusters"][0]["breaker"], "closed");
  EXPECT_EQ(data["clusters"][0]["hosts"][1]["healthy"], false);
  EXPECT_FALSE(data["clusters"][1].contains("breaker")) << "no route to orders has a breaker";
  ASSERT_EQ(data["routes"].size(), 1u);
  EXPECT_EQ(data["routes"][0]["requests"], 100);
  EXPECT_EQ(data["routes"][0]["errors"], 6);
  EXPECT_EQ(data["routes"][0]["breaker"], "closed");
}

TEST(dashboard, an_interval_without_requests_has_no_percentiles_and_no_hit_ratio) {
  gateway_series g;
  dashboard d(g.m, [] { return two_clusters(true); });
  const wall::time_point t0 = wall::now();
  g.latency.record(5'000'000);
  d.sample(t0);
  d.sample(t0 + 1s);
  const json s = d.data()["samples"][0];
  EXPECT_TRUE(s["p50_ms"].is_null());
  EXPECT_TRUE(s["p99_ms"].is_null());
  EXPECT_TRUE(s["cache_hit_ratio"].is_null());
  EXPECT_DOUBLE_EQ(s["requests"].get<double>(), 0.0);
}

TEST(dashboard, keeps_the_last_samples_only_and_skips_a_clock_that_went_back) {
  gateway_series g;
  dashboard_options o;
  o.history = 3;
  dashboard d(
      g.m, [] { return json::object(); }, o);
  const wall::time_point t0 = wall::now();
  for (int i = 0; i <= 5; ++i) {
    g.ok.add(static_cast<std::uint64_t>(i));
    d.sample(t0 + std::chrono::seconds(i));
  }
  const json samples = d.data()["samples"];
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_DOUBLE_EQ(samples[0]["requests"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(samples[2]["requests"].get<double>(), 5.0);
  d.sample(t0);  // the wall clock stepped back: a new baseline, no sample
  EXPECT_EQ(d.size(), 3u);
  EXPECT_TRUE(d.data()["clusters"].empty());
}

TEST(dashboard, bad_options_are_configuration_errors) {
  core::metrics_registry m;
  dashboard_options zero_interval;
  zero_interval.interval = 0ms;
  try {
    dashboard d(
        m, [] { return json::object(); }, zero_interval);
    FAIL() << "a zero interval was accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "dashboard.interval");
  }
  dashboard_options no_history;
  no_history.history = 0;
  try {
    dashboard d(
        m, [] { return json::object(); }, no_history);
    FAIL() << "an empty history was accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "dashboard.history");
  }
}

TEST(dashboard, serves_the_page_with_a_policy_that_forbids_outside_resources_and_the_data) {
  gateway_series g;
  dashboard d(g.m, [] { return two_clusters(true); });
  const wall::time_point t0 = wall::now();
  d.sample(t0);
  g.ok.add(5);
  d.sample(t0 + 1s);
  http::router r;
  d.mount(r, "/dashboard");

  test::route_request page;
  page.target = "/dashboard";
  const auto p = test::route(r, page);
  EXPECT_EQ(p->res.status, 200);
  EXPECT_EQ(p->res.headers.get("Content-Type").value_or(""), "text/html; charset=utf-8");
  const std::string csp(p->res.headers.get("Content-Security-Policy").value_or(""));
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  std::string start = p->res.body.substr(0, 15);
  for (char& c : start) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(start, "<!doctype html>");

  test::route_request data;
  data.target = "/dashboard/data";
  const auto j = test::route(r, data);
  EXPECT_EQ(j->res.status, 200);
  EXPECT_EQ(j->res.headers.get("Cache-Control").value_or(""), "no-store");
  const json body = json::parse(j->res.body);
  ASSERT_EQ(body["samples"].size(), 1u);
  EXPECT_DOUBLE_EQ(body["samples"][0]["requests"].get<double>(), 5.0);
}

}  // namespace
}  // namespace trellis::gateway
