// config: a proxy's configuration as JSON — listeners, routes, clusters —
// read into the options of lb::cluster and proxy::reverse_proxy.
//
//   {
//     "workers": 2,
//     "admin": "127.0.0.1:9901",
//     "proxy": { "connect_timeout": "2s", "retries": 1,
//                "trusted_proxies": ["10.0.0.0/8"] },
//     "listeners": [
//       { "address": "127.0.0.1:8080",
//         "routes": [ { "path_prefix": "/api", "strip_prefix": "/api",
//                       "cluster": "api" },
//                     { "cluster": "web" } ] },
//       { "address": "127.0.0.1:8443", "mode": "tcp", "cluster": "web" },
//       { "address": "127.0.0.1:3128", "mode": "forward",
//         "allowed_hosts": ["*.example.com"], "connect_ports": [443] } ],
//     "clusters": [
//       { "name": "api", "policy": "least_request",
//         "endpoints": [ "127.0.0.1:9001", { "address": "127.0.0.1:9002", "weight": 3 } ],
//         "health": { "type": "http", "path": "/health", "interval": "1s" },
//         "outlier": { "consecutive_5xx": 3, "base_ejection_time": "10s" },
//         "slow_start": "30s", "hash_on": "header:X-User" } ] }
//
// Strict, as a configuration must be: a key the schema does not know is an
// error (a typo such as "helth" would otherwise silently turn checks off),
// and every error names the JSON path of the bad value —
// "clusters[0].endpoints[1].weight: must be >= 1" — through
// core::config_error. Durations are strings with a unit: "250ms", "5s",
// "2m", "1h". Routes are matched by host (exact, case-insensitive; absent
// or "*": any) and then by the longest path prefix, which matches whole
// segments ("/api" matches "/api" and "/api/x", not "/apix").
//
// Thread-safety: plain values.
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/lb/cluster.hpp"
#include "trellis/lb/hash_policy.hpp"
#include "trellis/proxy/reverse_proxy.hpp"

namespace trellis::proxy {

struct route_config {
  std::string host;               // "" or "*": any host
  std::string path_prefix = "/";  // whole segments
  std::string cluster;            // the name of a cluster
  // Per-route rewriting (reverse_proxy_options of the same names).
  std::string strip_prefix;
  std::string prefix_rewrite;
  host_header host_mode = host_header::keep;
  std::string host_value;
  // Whether the top-level cache serves this route ("cache": false turns it
  // off for the route; without a top-level cache it changes nothing).
  bool cache = true;
};

// http: a reverse proxy routing to clusters; tcp: an L4 proxy to one
// cluster; forward: a forward proxy (absolute-form requests and CONNECT).
enum class listener_mode { http, tcp, forward };

struct listener_config {
  asio::ip::tcp::endpoint address;
  listener_mode mode = listener_mode::http;
  std::vector<route_config> routes;  // http
  std::string cluster;               // tcp: every connection goes here
  // forward: the destinations allowed ("allowed_hosts", "connect_ports"),
  // as forward_proxy_options.
  std::vector<std::string> allowed_hosts;
  std::vector<std::uint16_t> connect_ports{443};
};

struct cluster_config {
  lb::cluster_options options;
  std::vector<lb::endpoint_config> endpoints;
  // "hash_on": what ring_hash and maglev hash ("client_ip", "path",
  // "header:NAME", "cookie:NAME"), for every route to this cluster.
  std::optional<lb::hash_policy> hash;
};

// The top-level "cache" section: one http_cache shared by every route
// (see docs/caching.md).
struct cache_config {
  http_cache_options store;   // "size", "max_entry", "eviction", "collapse_timeout"
  proxy_cache_options rules;  // "name", "keep_stale", "heuristic_percent",
                              // "max_heuristic_lifetime", "stale_if_error",
                              // "gzip" (default true here: an edge compresses)
};

struct config {
  std::size_t workers = 0;  // 0: one per core
  std::optional<asio::ip::tcp::endpoint> admin;
  // Largest request body the HTTP listeners take, in bytes ("max_request_body");
  // 0, the default, sets no limit: the proxy streams bodies on without
  // holding them, so their size costs it no memory.
  std::uint64_t max_request_body = 0;
  reverse_proxy_options proxy;  // shared by every route, then adjusted per route
  std::optional<cache_config> cache;
  std::vector<listener_config> listeners;
  std::vector<cluster_config> clusters;

  // The cluster of that name, or null.
  const cluster_config* find_cluster(std::string_view name) const;
};

// Reads and checks a configuration. Throws core::config_error naming the
// JSON path of the first bad value (also for a route or listener naming a
// cluster that does not exist, and for two listeners on one address).
config parse_config(const nlohmann::json& j);
// Reads `path` and parses it (a JSON syntax error names the file, line
// and column).
config load_config(const std::string& path);

// "127.0.0.1:8080", "[::1]:8080". Throws core::config_error naming
// `field`. (Durations and sizes: core/config.hpp.)
asio::ip::tcp::endpoint parse_listen_address(std::string_view text, std::string_view field);

// The sections of parse_config on their own, for configurations that
// embed them (the gateway's): a cluster, the "proxy" options, the "cache"
// section. `path` is the JSON path of `j`, for error messages.
cluster_config parse_cluster_config(const nlohmann::json& j, const std::string& path);
void parse_proxy_options(const nlohmann::json& j, const std::string& path,
                         reverse_proxy_options& options);
cache_config parse_cache_config(const nlohmann::json& j, const std::string& path);

// Picks the route for a request: host match first, then the longest
// prefix. Null when none matches.
const route_config* match_route(const std::vector<route_config>& routes, std::string_view host,
                                std::string_view path);

}  // namespace trellis::proxy
