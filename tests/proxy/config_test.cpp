#include "trellis/proxy/config.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "trellis/core/error.hpp"

namespace trellis::proxy {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

json minimal() {
  return json::parse(R"({
    "listeners": [ { "address": "127.0.0.1:8080", "cluster": "web" } ],
    "clusters": [ { "name": "web", "endpoints": [ "127.0.0.1:9001" ] } ]
  })");
}

// The field a configuration error names, or "" when it parses.
std::string error_field(const json& j) {
  try {
    (void)parse_config(j);
  } catch (const core::config_error& e) {
    return e.field();
  }
  return "";
}

TEST(ProxyConfig, MinimalConfiguration) {
  const config c = parse_config(minimal());
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address.port(), 8080);
  ASSERT_EQ(c.listeners[0].routes.size(), 1u);
  EXPECT_EQ(c.listeners[0].routes[0].cluster, "web");
  EXPECT_EQ(c.listeners[0].routes[0].path_prefix, "/");
  ASSERT_EQ(c.clusters.size(), 1u);
  EXPECT_EQ(c.clusters[0].options.policy, "round_robin");
  EXPECT_EQ(c.clusters[0].endpoints[0].address, "127.0.0.1:9001");
  EXPECT_FALSE(c.admin);
  EXPECT_NE(c.find_cluster("web"), nullptr);
  EXPECT_EQ(c.find_cluster("api"), nullptr);
}

TEST(ProxyConfig, FullConfiguration) {
  const config c = parse_config(json::parse(R"({
    "workers": 2,
    "admin": "127.0.0.1:9901",
    "proxy": { "connect_timeout": "2s", "first_byte_timeout": "250ms", "retries": 2,
               "retry_budget": 0.5, "trusted_proxies": ["10.0.0.0/8", "::1"], "via": "edge" },
    "listeners": [
      { "address": "[::1]:8080",
        "routes": [ { "host": "api.example", "path_prefix": "/v1", "cluster": "api",
                      "strip_prefix": "/v1", "prefix_rewrite": "/", "host_rewrite": "upstream" },
                    { "cluster": "web" } ] },
      { "address": "127.0.0.1:8443", "mode": "tcp", "cluster": "web" } ],
    "clusters": [
      { "name": "api", "policy": "least_request",
        "endpoints": [ "127.0.0.1:9001", { "address": "127.0.0.1:9002", "weight": 3 } ],
        "health": { "type": "http", "path": "/health", "interval": "1s", "timeout": "200ms",
                    "rise": 1, "fall": 2, "expected_status": "200-299" },
        "outlier": { "consecutive_5xx": 3, "base_ejection_time": "10s", "max_ejection_percent": 50 },
        "panic_threshold": 0.25, "slow_start": "30s", "hash_on": "header:X-User" },
      { "name": "web", "endpoints": [ "localhost:9003" ] } ]
  })"));
  EXPECT_EQ(c.workers, 2u);
  ASSERT_TRUE(c.admin);
  EXPECT_EQ(c.admin->port(), 9901);
  EXPECT_EQ(c.proxy.connect_timeout, 2s);
  EXPECT_EQ(c.proxy.first_byte_timeout, 250ms);
  EXPECT_EQ(c.proxy.max_retries, 2u);
  EXPECT_EQ(c.proxy.forwarding.via, "edge");
  EXPECT_TRUE(c.proxy.forwarding.trusted_proxies.contains(asio::ip::make_address("10.2.3.4")));
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_TRUE(c.listeners[0].address.address().is_v6());
  const auto& r = c.listeners[0].routes[0];
  EXPECT_EQ(r.host, "api.example");
  EXPECT_EQ(r.host_mode, host_header::upstream);
  EXPECT_EQ(r.strip_prefix, "/v1");
  EXPECT_EQ(c.listeners[1].mode, listener_mode::tcp);
  const auto& api = c.clusters[0].options;
  EXPECT_EQ(api.policy, "least_request");
  EXPECT_EQ(c.clusters[0].endpoints[1].weight, 3u);
  EXPECT_EQ(api.health.type, lb::health_check_type::http);
  EXPECT_EQ(api.health.timeout, 200ms);
  EXPECT_EQ(api.health.expected_status_max, 299);
  EXPECT_EQ(api.outlier.consecutive_5xx, 3u);
  EXPECT_DOUBLE_EQ(api.panic_threshold, 0.25);
  EXPECT_EQ(api.policy_config.slow_start.window, std::chrono::seconds(30));
  ASSERT_TRUE(c.clusters[0].hash);
  EXPECT_EQ(c.clusters[0].hash->source, lb::hash_source::header);
  EXPECT_EQ(c.clusters[0].hash->name, "X-User");
  EXPECT_FALSE(c.clusters[1].hash);
}

TEST(ProxyConfig, ErrorsNameTheJsonPath) {
  auto with = [](const char* pointer, json value) {
    json j = minimal();
    j[json::json_pointer(pointer)] = std::move(value);
    return j;
  };
  EXPECT_EQ(error_field(with("/clusters/0/endpoints/0", "nonsense")), "clusters[0].endpoints[0]");
  EXPECT_EQ(error_field(with("/clusters/0/endpoints/0", json{{"address", "127.0.0.1:1"}, {"weight", 0}})),
            "clusters[0].endpoints[0].weight");
  EXPECT_EQ(error_field(with("/clusters/0/policy", "fastest")), "clusters[0].policy");
  EXPECT_EQ(error_field(with("/clusters/0/hash_on", "header:")), "clusters[0].hash_on");
  EXPECT_EQ(error_field(with("/clusters/0/helth", json::object())), "clusters[0].helth");
  EXPECT_EQ(error_field(with("/clusters/0/health", json{{"interval", "5"}})),
            "clusters[0].health.interval");
  EXPECT_EQ(error_field(with("/clusters/0/health", json{{"rise", 0}})), "clusters[0].health.rise");
  EXPECT_EQ(error_field(with("/clusters/0/health", json{{"interval", "1s"}, {"timeout", "2s"}})),
            "clusters[0].health.timeout");
  // A short interval without a timeout brings the timeout down with it.
  const config fast = parse_config(with("/clusters/0/health", json{{"interval", "200ms"}}));
  EXPECT_EQ(fast.clusters[0].options.health.timeout, 200ms);
  EXPECT_EQ(error_field(with("/listeners/0/address", "localhost:80")), "listeners[0].address");
  EXPECT_EQ(error_field(with("/listeners/0/cluster", "nowhere")), "listeners[0].cluster");
  EXPECT_EQ(error_field(with("/proxy", json{{"trusted_proxies", {"10.0.0.0/8", "x"}}})),
            "proxy.trusted_proxies[1]");
  EXPECT_EQ(error_field(with("/proxy", json{{"retries", -1}})), "proxy.retries");
  EXPECT_EQ(error_field(with("/workers", "two")), "workers");
  EXPECT_EQ(error_field(with("/admin", "127.0.0.1:8080")), "listeners[0].address");

  json two = minimal();
  two["clusters"].push_back(two["clusters"][0]);
  EXPECT_EQ(error_field(two), "clusters[1].name");

  json routes = minimal();
  routes["listeners"][0].erase("cluster");
  routes["listeners"][0]["routes"] = json::array({{{"path_prefix", "/a"}, {"cluster", "web"}},
                                                   {{"path_prefix", "b"}, {"cluster", "web"}}});
  EXPECT_EQ(error_field(routes), "listeners[0].routes[1].path_prefix");
  routes["listeners"][0]["routes"][1] = {{"cluster", "none"}};
  EXPECT_EQ(error_field(routes), "listeners[0].routes[1].cluster");

  EXPECT_EQ(error_field(json::array()), "config");
  EXPECT_EQ(error_field(json::object()), "listeners");
  json no_clusters = minimal();
  no_clusters.erase("clusters");
  EXPECT_EQ(error_field(no_clusters), "clusters");
  json forward_only = json::parse(R"({"listeners": [
      {"address": "127.0.0.1:3128", "mode": "forward", "connect_ports": [443, 8443]}]})");
  EXPECT_EQ(error_field(forward_only), "");
  EXPECT_EQ(parse_config(forward_only).listeners[0].connect_ports.size(), 2u);
  forward_only["listeners"][0]["cluster"] = "x";
  EXPECT_EQ(error_field(forward_only), "listeners[0].cluster");
  json tcp = minimal();
  tcp["listeners"][0]["mode"] = "tcp";
  tcp["listeners"][0]["allowed_hosts"] = json::array({"x"});
  EXPECT_EQ(error_field(tcp), "listeners[0].allowed_hosts");
}

TEST(ProxyConfig, PolicyOptionsReachEveryPolicyThatUsesThem) {
  json j = minimal();
  j["clusters"][0]["policy"] = "maglev";
  j["clusters"][0]["policy_options"] = {{"choice_count", 3},      {"decay_time", "5s"},
                                        {"failure_penalty", "2s"}, {"points_per_weight", 40},
                                        {"table_size", 251},       {"balance_factor", 1.25}};
  j["clusters"][0]["slow_start"] = {{"window", "20s"}, {"min_weight_fraction", 0.2}, {"aggression", 2}};
  const lb::policy_options o = parse_config(j).clusters[0].options.policy_config;
  EXPECT_EQ(o.least_request.choice_count, 3u);
  EXPECT_EQ(o.peak_ewma.choice_count, 3u);
  EXPECT_EQ(o.peak_ewma.decay_time, std::chrono::seconds(5));
  EXPECT_EQ(o.peak_ewma.failure_penalty, std::chrono::seconds(2));
  EXPECT_EQ(o.ring_hash.points_per_weight, 40u);
  EXPECT_EQ(o.maglev.table_size, 251u);
  EXPECT_DOUBLE_EQ(o.ring_hash.bounded_load.balance_factor, 1.25);
  EXPECT_DOUBLE_EQ(o.maglev.bounded_load.balance_factor, 1.25);
  EXPECT_EQ(o.slow_start.window, std::chrono::seconds(20));
  EXPECT_DOUBLE_EQ(o.slow_start.min_weight_fraction, 0.2);
  EXPECT_DOUBLE_EQ(o.slow_start.aggression, 2.0);

  // Left out, each keeps the library's default.
  const lb::policy_options d = parse_config(minimal()).clusters[0].options.policy_config;
  EXPECT_EQ(d.maglev.table_size, lb::maglev_options{}.table_size);
  EXPECT_EQ(d.ring_hash.bounded_load.balance_factor, 0.0);
}

TEST(ProxyConfig, BadPolicyOptionsNameTheirJsonPath) {
  auto with = [](json options) {
    json j = minimal();
    j["clusters"][0]["policy_options"] = std::move(options);
    return j;
  };
  // Checked by the policy library, reported where the value was written.
  EXPECT_EQ(error_field(with({{"table_size", 65536}})), "clusters[0].policy_options.table_size");
  EXPECT_EQ(error_field(with({{"balance_factor", 0.5}})),
            "clusters[0].policy_options.balance_factor");
  EXPECT_EQ(error_field(with({{"decay_time", "0ms"}})), "clusters[0].policy_options.decay_time");
  // Checked by the parser.
  EXPECT_EQ(error_field(with({{"choice_count", 1}})), "clusters[0].policy_options.choice_count");
  EXPECT_EQ(error_field(with({{"points_per_weight", "many"}})),
            "clusters[0].policy_options.points_per_weight");
  EXPECT_EQ(error_field(with({{"ring_size", 10}})), "clusters[0].policy_options.ring_size");
  EXPECT_EQ(error_field(with(json::array())), "clusters[0].policy_options");

  json slow = minimal();
  slow["clusters"][0]["slow_start"] = {{"window", "10s"}, {"min_weight_fraction", 0}};
  EXPECT_EQ(error_field(slow), "clusters[0].slow_start.min_weight_fraction");
  slow["clusters"][0]["slow_start"] = {{"min_weight_fraction", 0.5}};
  EXPECT_EQ(error_field(slow), "clusters[0].slow_start.window");
  slow["clusters"][0]["slow_start"] = 30;
  EXPECT_EQ(error_field(slow), "clusters[0].slow_start");
}

TEST(ProxyConfig, RequestBodiesAreUnlimitedUnlessASizeIsGiven) {
  EXPECT_EQ(parse_config(minimal()).max_request_body, 0u);  // 0: no limit
  json j = minimal();
  j["max_request_body"] = 1 << 20;
  EXPECT_EQ(parse_config(j).max_request_body, 1u << 20);
  j["max_request_body"] = "1m";
  EXPECT_EQ(error_field(j), "max_request_body");
  j["max_request_body"] = -1;
  EXPECT_EQ(error_field(j), "max_request_body");
}

TEST(ProxyConfig, CacheSection) {
  EXPECT_FALSE(parse_config(minimal()).cache) << "no cache unless configured";
  json j = minimal();
  j["cache"] = json::parse(R"({"size": "256MiB", "max_entry": "16MiB", "eviction": "s3-fifo",
    "collapse_timeout": "2s", "name": "edge", "keep_stale": "10m", "heuristic_percent": 5,
    "max_heuristic_lifetime": "2h", "stale_if_error": "1m"})");
  j["listeners"][0] = json::parse(R"({"address": "127.0.0.1:8080", "routes": [
    {"path_prefix": "/api", "cluster": "web", "cache": false}, {"cluster": "web"}]})");
  const config c = parse_config(j);
  ASSERT_TRUE(c.cache);
  EXPECT_EQ(c.cache->store.max_bytes, 256ull << 20);
  EXPECT_EQ(c.cache->store.max_entry_bytes, 16ull << 20);
  EXPECT_EQ(c.cache->store.eviction, cache::eviction::s3fifo);
  EXPECT_EQ(c.cache->store.collapse_timeout, 2s);
  EXPECT_EQ(c.cache->rules.name, "edge");
  EXPECT_EQ(c.cache->rules.keep_stale, 600s);
  EXPECT_EQ(c.cache->rules.rules.heuristic_percent, 5u);
  EXPECT_EQ(c.cache->rules.rules.max_heuristic_lifetime, 7200s);
  EXPECT_EQ(c.cache->rules.rules.stale_if_error_default, 60s);
  EXPECT_TRUE(c.cache->rules.gzip) << "an edge compresses by default";
  EXPECT_FALSE(c.listeners[0].routes[0].cache);
  EXPECT_TRUE(c.listeners[0].routes[1].cache);

  const auto field_of = [&](const char* cache_json) {
    json bad = minimal();
    bad["cache"] = json::parse(cache_json);
    return error_field(bad);
  };
  EXPECT_EQ(field_of(R"({"size": "lots"})"), "cache.size");
  EXPECT_EQ(field_of(R"({"size": "1KiB"})"), "cache.size") << "too small to hold anything";
  EXPECT_EQ(field_of(R"({"size": "1MiB", "max_entry": "2MiB"})"), "cache.max_entry");
  EXPECT_EQ(field_of(R"({"eviction": "mru"})"), "cache.eviction");
  EXPECT_EQ(field_of(R"({"keep_stale": 5})"), "cache.keep_stale");
  EXPECT_EQ(field_of(R"({"heuristic_percent": 101})"), "cache.heuristic_percent");
  EXPECT_EQ(field_of(R"({"sise": "1MiB"})"), "cache.sise");
  EXPECT_EQ(field_of(R"({"gzip": "yes"})"), "cache.gzip");
  EXPECT_EQ(field_of(R"([])"), "cache");
}

TEST(ProxyConfig, RouteMatchingPrefersHostThenLongestPrefix) {
  std::vector<route_config> routes(4);
  routes[0].cluster = "any";
  routes[1].path_prefix = "/api";
  routes[1].cluster = "api";
  routes[2].path_prefix = "/api/admin";
  routes[2].cluster = "admin";
  routes[3].host = "shop.example";
  routes[3].cluster = "shop";
  auto pick = [&](std::string_view host, std::string_view path) -> std::string {
    const route_config* r = match_route(routes, host, path);
    return r ? r->cluster : "";
  };
  EXPECT_EQ(pick("x", "/"), "any");
  EXPECT_EQ(pick("x", "/api"), "api");
  EXPECT_EQ(pick("x", "/api/users"), "api");
  EXPECT_EQ(pick("x", "/apix"), "any");
  EXPECT_EQ(pick("x", "/api/admin/x"), "admin");
  EXPECT_EQ(pick("SHOP.example:8080", "/api"), "shop");
  std::vector<route_config> none(1);
  none[0].path_prefix = "/only";
  EXPECT_EQ(match_route(none, "x", "/other"), nullptr);
}

}  // namespace
}  // namespace trellis::proxy
