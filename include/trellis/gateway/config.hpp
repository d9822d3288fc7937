// config: the API gateway's configuration as JSON — listeners, clusters,
// credentials, limits and routes, each route with its own middleware —
// read into the options of the gateway's pieces.
//
//   {
//     "workers": 2,
//     "listeners": [ { "address": "127.0.0.1:8080" },
//                    { "address": "127.0.0.1:8443",
//                      "tls": { "cert": "gw.crt", "key": "gw.key" } } ],
//     "admin": "127.0.0.1:9901",
//     "redis": { "address": "127.0.0.1:6379" },
//     "access_log": { "path": "-" },
//     "auth": {
//       "realm": "demo",
//       "jwt": { "keys": [ { "kty": "oct", "k": "...", "kid": "demo" } ],
//                "issuer": "trellis-demo", "audiences": ["api"], "leeway": "30s" },
//       "api_keys": [ { "name": "partner", "sha256": "9f86d0...", "scopes": ["orders:read"] } ],
//       "basic": [ { "name": "ops", "password_hash": "pbkdf2-sha256$..." } ] },
//     "sessions": { "store": "redis", "idle_timeout": "30m", "absolute_timeout": "12h",
//                   "logout_path": "/logout" },
//     "rate_limits": {
//       "per_client": { "policies": [ { "limit": 10, "period": "1s", "burst": 20 } ],
//                       "key": "client_ip", "store": "redis", "fail_open": true } },
//     "clusters": [ { "name": "users", "endpoints": ["127.0.0.1:9101"],
//                     "health": { "type": "http", "path": "/health" } } ],
//     "routes": [
//       { "name": "users", "path": "/api/users/*", "cluster": "users",
//         "strip_prefix": "/api",
//         "auth": ["jwt", "api_key"], "require": { "scopes": ["users:read"] },
//         "rate_limit": "per_client",
//         "cors": { "allow_origins": ["http://localhost:3000"] },
//         "circuit_breaker": { "consecutive_failures": 5, "open_duration": "5s" },
//         "request_headers": [ { "set": "X-User", "value": "${auth.subject}" } ],
//         "response_headers": [ { "remove": "Server" } ] },
//       { "name": "account", "path": "/account/*", "cluster": "users",
//         "session": true, "auth": ["session", "basic"] },
//       { "name": "admin-site", "host": ["admin.example.com", "*.admin.example.com"],
//         "path": "/*", "cluster": "users", "ip": { "allow": ["10.0.0.0/8"] } },
//       { "name": "profile", "path": "/api/profile/{id}", "methods": ["GET"],
//         "compose": [ { "name": "user", "cluster": "users", "path": "/users/{id}",
//                        "required": true, "timeout": "1s" },
//                      { "name": "orders", "cluster": "orders",
//                        "path": "/orders?user_id={id}" } ] } ] }
//
// Routes use the router's patterns ("/api/users/{id}", "/static/*"),
// within the virtual host their "host" names (gateway.hpp), and
// answer the methods listed (default: every method, so the upstream
// decides which it supports). Each route's middleware runs in a fixed
// order, the one a request should meet them in: access log and metrics
// (outermost, so they see every answer), IP filter, CORS (a preflight is
// answered before authentication, since browsers send no credentials with
// it), authentication and authorization, rate limit (after auth, so it can
// key on the subject), request checks, concurrency limit, circuit breaker
// (innermost, next to the upstream call it guards), then compression and
// response header changes on the way out.
//
// Strict, like the proxy's configuration (core/config.hpp): unknown keys
// are errors and every error names the JSON path of the bad value
// ("routes[2].rate_limit: no rate limit named 'per_clinet'"). Files named
// in the configuration (keys, certificates) are read while parsing, so a
// configuration that parses is one that can start.
//
// Thread-safety: plain values.
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trellis/codec/http/method.hpp"
#include "trellis/gateway/access_log.hpp"
#include "trellis/gateway/auth.hpp"
#include "trellis/gateway/circuit_breaker.hpp"
#include "trellis/gateway/compression.hpp"
#include "trellis/gateway/cors.hpp"
#include "trellis/gateway/ip_filter.hpp"
#include "trellis/gateway/jwt.hpp"
#include "trellis/gateway/rate_limit.hpp"
#include "trellis/gateway/session.hpp"
#include "trellis/gateway/transform.hpp"
#include "trellis/proxy/config.hpp"

namespace trellis::gateway {

struct tls_files {
  std::string cert;  // PEM certificate chain
  std::string key;   // PEM private key
};

struct listener_config {
  asio::ip::tcp::endpoint address;
  std::optional<tls_files> tls;  // HTTPS when set
};

struct redis_config {
  asio::ip::tcp::endpoint address;
  std::chrono::milliseconds connect_timeout{500};
  // Each command's deadline: a rate-limit check waits at most this long
  // before the limiter fails open or closed.
  std::chrono::milliseconds command_timeout{200};
};

// The credentials the gateway knows, by scheme. Routes name the schemes
// they accept ("auth": ["jwt", "api_key"]).
struct auth_config {
  std::string realm = "trellis";
  std::shared_ptr<const jwt_verifier> jwt;  // null: no "jwt" section
  jwt_bearer_options jwt_options;
  std::optional<std::vector<api_key_entry>> api_keys;
  gateway::api_key_options api_key;
  std::optional<std::vector<basic_user>> basic;
};

enum class store_kind { local, redis };

struct rate_limit_config {
  rate_limit_options options;
  store_kind store = store_kind::local;
};

// A header rule of a route's "request_headers": as transform's
// header_rule, but the value may name request attributes as
// "${auth.subject}" (an attribute that is not set gives an empty value,
// and the field is then not sent).
using request_header_rule = header_rule;

// "sessions": logins kept server-side for the routes with "session": true
// (session_auth.hpp). The store is in memory (one process) or in Redis
// (shared by every gateway; needs "redis"); logout_path, when set, is a
// POST on every host that ends the session.
struct sessions_config {
  session_options options;
  store_kind store = store_kind::local;
  std::size_t max_sessions = 100'000;  // memory store only
  std::string logout_path;
};

struct compose_call_config {
  std::string name;
  std::string cluster;
  std::string path;
  std::chrono::milliseconds timeout{2'000};
  bool required = false;
};

struct route_config {
  std::string name;                   // labels metrics and log lines; default: the path
  std::string path;                   // a router pattern
  std::vector<http::method> methods;  // empty: every method
  // Host names the route answers ("api.example.com", "*.example.com":
  // any subdomain), lower-case, without a port. Empty: any host that no
  // route names (see gateway.hpp, "Virtual hosts").
  std::vector<std::string> hosts;
  // Where requests go: one cluster, or a composition of calls.
  std::string cluster;
  std::vector<compose_call_config> compose;
  std::string strip_prefix;
  std::string prefix_rewrite;
  // Middleware.
  std::vector<std::string> auth;  // "jwt", "api_key", "basic", "session"; empty: none
  bool session = false;           // load (and save) the session: needs "sessions"
  bool auth_optional = false;
  std::optional<requirement> require;
  std::string rate_limit;  // a name from rate_limits; empty: none
  std::optional<cors_options> cors;
  std::optional<ip_filter_options> ip;
  std::optional<circuit_breaker_options> circuit_breaker;
  std::size_t max_concurrent = 0;  // 0: no limit
  std::optional<compression_options> compression;
  transform_options transform;  // response headers, body size, content types
  std::vector<request_header_rule> request_headers;
  bool cache = true;  // served by the top-level cache, when there is one
};

struct config {
  std::size_t workers = 0;  // 0: one per core
  std::vector<listener_config> listeners;
  std::optional<asio::ip::tcp::endpoint> admin;
  std::optional<redis_config> redis;
  std::optional<log_writer_options> access_log;
  std::uint64_t max_request_body = 0;  // 0: no limit (bodies are streamed)
  proxy::reverse_proxy_options proxy;
  std::optional<proxy::cache_config> cache;
  auth_config auth;
  std::map<std::string, rate_limit_config> rate_limits;
  std::optional<sessions_config> sessions;
  std::vector<proxy::cluster_config> clusters;
  std::vector<route_config> routes;

  const proxy::cluster_config* find_cluster(std::string_view name) const;
};

// Reads and checks a configuration. Throws core::config_error naming the
// JSON path of the first bad value — also for a route naming a cluster,
// rate limit or auth scheme that does not exist, a Redis-backed limit
// without "redis", and two listeners on one address.
config parse_config(const nlohmann::json& j);
// Reads `path` and parses it (a JSON syntax error names the file, line
// and column).
config load_config(const std::string& path);

// A header value with "${name}" replaced by request attribute `name`
// ("Bearer ${auth.subject}"); "$$" is a literal '$'.
std::string expand_attributes(std::string_view value, const http::request& req);

}  // namespace trellis::gateway
