// Tests of the dashboard page in a real browser: a trellis server on
// 127.0.0.1 serves gateway::dashboard_page() and a data document of the
// dashboard's format (dashboard_page.hpp), headless Chromium loads the page
// and runs its script, and the test reads what the script left in the DOM —
// what it drew (the data-* attributes the page sets for this), the latest
// values it shows as text, the status line — and what it printed on the
// console. The page is served with the Content-Security-Policy the gateway
// sends with it, so anything it tried to load from elsewhere would be
// refused and show on the console.
#include "trellis/gateway/dashboard_page.hpp"

#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/browser.hpp"
#include "support/http_server.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int k_samples = 60;
// Idle seconds: no request finished, so no percentiles and no hit ratio.
constexpr int k_idle[] = {20, 21, 35};
// A second with requests but no cacheable lookup.
constexpr int k_no_lookups = 50;
// From this sample on, one of the two users hosts is down.
constexpr int k_host_down = 30;
const std::int64_t k_t0 = 1764409200000;  // 2025-11-29 09:40:00 UTC, in ms

bool idle(int i) {
  for (int k : k_idle)
    if (k == i) return true;
  return false;
}

// Sixty seconds of a gateway under a wavy load; the last sample has round
// numbers, so that the values the page shows for it are easy to state.
json realistic_data() {
  json samples = json::array();
  for (int i = 0; i < k_samples; ++i) {
    const bool last = i == k_samples - 1;
    const double load = idle(i) ? 0.0 : 40.0 + 10.0 * std::sin(i / 6.0);
    json by_class = {{"1xx", 0.0},
                     {"2xx", last ? 38.0 : load * 0.9},
                     {"3xx", last ? 1.0 : load * 0.03},
                     {"4xx", last ? 2.0 : load * 0.05},
                     {"5xx", last ? 0.0 : load * 0.02 + (i >= 40 && i < 45 ? 3.0 : 0.0)}};
    double requests = 0;
    for (const auto& [k, v] : by_class.items()) requests += v.get<double>();
    const bool lookups = !idle(i) && i != k_no_lookups;
    samples.push_back({
        {"t", k_t0 + (i + 1) * 1000},
        {"requests", requests},
        {"by_class", by_class},
        {"p50_ms", idle(i) ? json(nullptr) : json(last ? 1.3 : 1.3 + 0.2 * std::sin(i / 5.0))},
        {"p99_ms", idle(i) ? json(nullptr) : json(last ? 12.8 : 12.8 + 4.0 * std::sin(i / 7.0))},
        {"cache_hits", lookups ? 3.0 : 0.0},
        {"cache_misses", lookups ? 1.0 : 0.0},
        {"cache_hit_ratio", lookups ? json(0.75) : json(nullptr)},
        {"rate_limited", last || i % 10 < 3 ? 2.0 : 0.0},
        {"in_flight", 3},
        {"healthy_hosts", {{"users", i < k_host_down ? 2 : 1}, {"orders", 1}, {"products", 1}}},
    });
  }
  return {
      {"interval_ms", 1000},
      {"generation", 3},
      {"samples", samples},
      {"clusters",
       json::array({
           {{"name", "users"},
            {"healthy", 1},
            {"total", 2},
            {"breaker", "closed"},
            {"hosts",
             json::array(
                 {{{"address", "127.0.0.1:9101"}, {"healthy", true}, {"ejected", false}},
                  {{"address", "127.0.0.1:9111"}, {"healthy", false}, {"ejected", true}}})}},
           {{"name", "orders"},
            {"healthy", 1},
            {"total", 1},
            {"hosts",
             json::array(
                 {{{"address", "127.0.0.1:9102"}, {"healthy", true}, {"ejected", false}}})}},
           {{"name", "products"},
            {"healthy", 1},
            {"total", 1},
            {"breaker", "half_open"},
            {"hosts",
             json::array(
                 {{{"address", "127.0.0.1:9103"}, {"healthy", true}, {"ejected", false}}})}},
       })},
      {"routes",
       json::array({{{"name", "users"}, {"requests", 1234}, {"errors", 12}, {"p99_ms", 9.1}},
                    {{"name", "orders"},
                     {"requests", 456},
                     {"errors", 0},
                     {"p99_ms", 3.2},
                     {"breaker", "open"}}})},
  };
}

// The page at `page_path` and its data at `page_path` without a trailing
// '/', plus "/data". The data handler answers `data` with status `status`
// (the first `failures` polls get a 500 instead), and counts the polls.
struct dashboard_server {
  http::router router;
  std::shared_ptr<std::atomic<int>> polls = std::make_shared<std::atomic<int>>(0);
  std::unique_ptr<test::test_server> server;
  std::string page_path;

  dashboard_server(std::string path, std::string data, int status = 200, int failures = 0)
      : page_path(std::move(path)) {
    router.get(page_path, [](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(std::string(dashboard_page()), "text/html; charset=utf-8");
      (void)res.headers.set("Content-Security-Policy",
                            std::string(dashboard_content_security_policy()));
      (void)res.headers.set("Cache-Control", "no-store");
      co_return;
    });
    std::string base = page_path;
    while (!base.empty() && base.back() == '/') base.pop_back();
    router.get(base + "/data",
               [data = std::move(data), status, failures, polls = polls](
                   http::request&, http::response& res) -> asio::awaitable<void> {
                 const int n = ++*polls;
                 if (status != 200 || n <= failures) {
                   res.status = 500;
                   res.set_text("sampler broke\n");
                 } else {
                   res.set_text(data, "application/json");
                 }
                 (void)res.headers.set("Cache-Control", "no-store");
                 co_return;
               });
    server = std::make_unique<test::test_server>(router.to_handler());
  }

  std::string url() const { return server->url(page_path); }
};

std::string attr(const test::browser_result& page, const std::string& id, const std::string& a) {
  return test::dom_attribute(page.dom, id, a).value_or("(no " + a + " on #" + id + ")");
}
std::string body(const test::browser_result& page, const std::string& a) {
  return test::body_attribute(page.dom, a).value_or("(no " + a + " on body)");
}
std::string text(const test::browser_result& page, const std::string& id) {
  return test::dom_text(page.dom, id).value_or("(no #" + id + ")");
}

// HH:MM:SS of unix time `ms` in the local time zone, as the page shows it
// (the browser reads the same TZ and /etc/localtime as this process).
std::string local_clock(std::int64_t ms) {
  const time_t s = static_cast<time_t>(ms / 1000);
  tm parts{};
  localtime_r(&s, &parts);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec);
  return buf;
}

const char* const k_charts[] = {"requests", "latency", "status", "health", "cache", "ratelimit"};

TEST(dashboard_page, is_one_complete_document_that_loads_nothing_from_elsewhere) {
  const std::string_view page = dashboard_page();
  EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
  // The whole raw string made it: nothing cut it short.
  EXPECT_TRUE(page.ends_with("</html>\n"));
  // No absolute URL anywhere (a CDN, a font, an image), no <script src>
  // and no stylesheet link: the page works on a host without Internet.
  EXPECT_EQ(page.find("http://"), std::string_view::npos);
  EXPECT_EQ(page.find("https://"), std::string_view::npos);
  EXPECT_EQ(page.find("<script src"), std::string_view::npos);
  EXPECT_EQ(page.find("stylesheet"), std::string_view::npos);
  EXPECT_EQ(page.find("@import"), std::string_view::npos);
  // Every chart has its element, its canvas and a place for its latest value.
  for (const char* c : k_charts) {
    EXPECT_NE(page.find("id=\"chart-" + std::string(c) + "\""), std::string_view::npos) << c;
    EXPECT_NE(page.find("id=\"latest-" + std::string(c) + "\""), std::string_view::npos) << c;
  }
  EXPECT_NE(page.find("<canvas"), std::string_view::npos);
}

TEST(dashboard_page, draws_every_chart_from_sixty_samples_in_chromium) {
  REQUIRE_BROWSER();
  dashboard_server s("/dashboard", realistic_data().dump());
  const std::string dir = test::make_temp_dir("trellis-dashboard-");
  const std::string shot = dir + "/dashboard.png";

  const auto page = test::load_page(s.url(), {.screenshot = shot});
  ASSERT_TRUE(page.finished()) << page.describe();
  // A quiet page: no error, warning, log line or refused load at all.
  EXPECT_TRUE(page.console.empty()) << page.describe();

  ASSERT_EQ(body(page, "data-rendered"), "true") << page.describe() << page.dom;
  EXPECT_EQ(body(page, "data-samples"), "60");
  EXPECT_EQ(body(page, "data-status"), "ok");
  // It kept polling, one poll after the other (5 s of virtual time).
  EXPECT_GE(s.polls->load(), 2);

  // Points drawn, null values left out: 3 idle seconds have no
  // percentiles and no hit ratio, one more second has no hit ratio.
  EXPECT_EQ(attr(page, "chart-requests", "data-points"), "60");
  EXPECT_EQ(attr(page, "chart-latency", "data-points"), "114");  // p50 and p99, 57 each
  EXPECT_EQ(attr(page, "chart-status", "data-points"), "300");   // 1xx..5xx, stacked
  EXPECT_EQ(attr(page, "chart-health", "data-points"), "180");   // three clusters
  EXPECT_EQ(attr(page, "chart-cache", "data-points"), "56");
  EXPECT_EQ(attr(page, "chart-ratelimit", "data-points"), "60");

  // The latest values, as text.
  EXPECT_EQ(text(page, "latest-requests"), "41 req/s");
  EXPECT_EQ(text(page, "latest-latency"), "p50 1.3 \u00b7 p99 12.8 ms");
  EXPECT_EQ(text(page, "latest-status"), "2xx 38 \u00b7 3xx 1 \u00b7 4xx 2 \u00b7 5xx 0");
  EXPECT_EQ(text(page, "latest-health"), "users 1/2 \u00b7 orders 1/1 \u00b7 products 1/1");
  EXPECT_EQ(text(page, "latest-cache"), "75 %");
  EXPECT_EQ(text(page, "latest-ratelimit"), "2 /s");
  EXPECT_EQ(text(page, "generation"), "3");
  EXPECT_EQ(text(page, "current-rps"), "41");
  EXPECT_EQ(text(page, "in-flight"), "3");
  EXPECT_EQ(text(page, "last-sample"), local_clock(k_t0 + k_samples * 1000));

  // The tables: a row per host, a row per route, states spelled out.
  EXPECT_EQ(attr(page, "hosts", "data-rows"), "4");
  EXPECT_EQ(attr(page, "routes", "data-rows"), "2");
  EXPECT_NE(page.dom.find(">unhealthy, ejected<"), std::string::npos);
  EXPECT_NE(page.dom.find(">half-open<"), std::string::npos);
  EXPECT_NE(page.dom.find(">1,234<"), std::string::npos);

  // The screenshot: a PNG of the whole 1280x900 window, with more in it
  // than a blank page compresses to.
  std::ifstream in(shot, std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(png.size(), 24u) << shot;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  const auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(png[at + i]);
    return v;
  };
  EXPECT_EQ(be32(16), 1280u);
  EXPECT_EQ(be32(20), 900u);
  EXPECT_GT(png.size(), 30000u) << "a blank window is about 5 KB";
  std::cout << "dashboard screenshot: " << shot << "\n";
  RecordProperty("screenshot", shot);
}

TEST(dashboard_page, says_no_data_when_the_data_endpoint_fails_and_keeps_polling) {
  REQUIRE_BROWSER();
  dashboard_server s("/dashboard", realistic_data().dump(), 500);

  const auto page = test::load_page(s.url());
  ASSERT_TRUE(page.finished()) << page.describe();
  EXPECT_TRUE(page.uncaught().empty()) << page.describe();
  EXPECT_EQ(body(page, "data-status"), "err") << page.dom;
  EXPECT_NE(text(page, "status").find("no data from the gateway"), std::string::npos)
      << text(page, "status");
  EXPECT_NE(text(page, "status").find("HTTP 500"), std::string::npos) << text(page, "status");
  // Nothing was drawn from a failed answer.
  EXPECT_EQ(body(page, "data-rendered"), "false");
  EXPECT_GE(s.polls->load(), 2) << "the page stopped polling after a failure";
}

TEST(dashboard_page, recovers_when_the_data_endpoint_comes_back) {
  REQUIRE_BROWSER();
  dashboard_server s("/dashboard", realistic_data().dump(), 200, /*failures=*/2);

  const auto page = test::load_page(s.url());
  ASSERT_TRUE(page.finished()) << page.describe();
  EXPECT_TRUE(page.console.empty()) << page.describe();
  EXPECT_GE(s.polls->load(), 3);
  EXPECT_EQ(body(page, "data-rendered"), "true");
  EXPECT_EQ(body(page, "data-samples"), "60");
  EXPECT_EQ(body(page, "data-status"), "ok");
  EXPECT_EQ(text(page, "status").find("no data"), std::string::npos) << text(page, "status");
}

TEST(dashboard_page, renders_an_empty_history_without_errors) {
  REQUIRE_BROWSER();
  // A gateway that has just started: no sample yet, but its clusters and
  // routes. Served under a path with a trailing '/', which the page drops
  // to find its data.
  json data = realistic_data();
  data["samples"] = json::array();
  dashboard_server s("/ops/dashboard/", data.dump());

  const auto page = test::load_page(s.url());
  ASSERT_TRUE(page.finished()) << page.describe();
  EXPECT_TRUE(page.console.empty()) << page.describe();
  ASSERT_EQ(body(page, "data-rendered"), "true") << page.dom;
  EXPECT_EQ(body(page, "data-samples"), "0");
  for (const char* c : k_charts)
    EXPECT_EQ(attr(page, std::string("chart-") + c, "data-points"), "0") << c;
  EXPECT_EQ(text(page, "latest-requests"), "\u2013");
  EXPECT_EQ(text(page, "latest-latency"), "\u2013");
  EXPECT_EQ(text(page, "current-rps"), "\u2013");
  EXPECT_EQ(attr(page, "hosts", "data-rows"), "4");
}

}  // namespace
}  // namespace trellis::gateway
