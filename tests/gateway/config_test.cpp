#include "trellis/gateway/config.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "trellis/core/error.hpp"
#include "trellis/gateway/auth.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// A configuration with every section, as the header's example has it.
json full() {
  return json::parse(R"({
    "workers": 2,
    "listeners": [ { "address": "127.0.0.1:8080" } ],
    "admin": "127.0.0.1:9901",
    "redis": { "address": "127.0.0.1:6379", "command_timeout": "100ms" },
    "access_log": { "path": "-" },
    "auth": {
      "realm": "demo",
      "jwt": { "keys": [ { "kty": "oct", "kid": "demo",
                           "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3OA" } ],
               "issuer": "trellis-demo", "audiences": ["api"], "leeway": "30s",
               "claims": ["tenant"] },
      "api_keys": [ { "name": "partner",
                      "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                      "scopes": ["orders:read"] } ] },
    "rate_limits": {
      "per_client": { "policies": [ { "limit": 10, "period": "1s", "burst": 20 } ],
                      "key": "client_ip", "store": "redis" },
      "per_user": { "policies": [ { "name": "hourly", "algorithm": "sliding_window",
                                    "limit": 1000, "period": "1h" } ],
                    "key": "subject", "on_missing_key": "refuse" } },
    "clusters": [ { "name": "users", "endpoints": ["127.0.0.1:9101"] },
                  { "name": "orders", "endpoints": ["127.0.0.1:9102"] } ],
    "routes": [
      { "name": "users", "path": "/api/users/*", "cluster": "users", "strip_prefix": "/api",
        "auth": ["jwt", "api_key"], "require": { "scopes": ["users:read"] },
        "rate_limit": "per_client",
        "cors": { "allow_origins": ["http://localhost:3000"], "allow_headers": ["Authorization"] },
        "ip": { "deny": ["192.0.2.0/24"] },
        "circuit_breaker": { "consecutive_failures": 3, "open_duration": "2s" },
        "max_concurrent": 50, "compress": true,
        "request_headers": [ { "set": "X-User", "value": "${auth.subject}" },
                             { "remove": "Cookie" } ],
        "response_headers": [ { "rename": "Server", "to": "X-Upstream-Server" } ],
        "max_body": "64KiB", "content_types": ["application/json"] },
      { "name": "profile", "path": "/api/profile/{id}", "methods": ["GET"],
        "auth": ["jwt"], "rate_limit": "per_user",
        "compose": [ { "name": "user", "cluster": "users", "path": "/users/{id}",
                       "required": true, "timeout": "1s" },
                     { "name": "orders", "cluster": "orders", "path": "/orders?user_id={id}" } ] }
    ] })");
}

// The field a config_error names, or "(no error)".
std::string field_of(const json& j) {
  try {
    (void)parse_config(j);
  } catch (const core::config_error& e) {
    return e.field();
  }
  return "(no error)";
}

TEST(GatewayConfig, ReadsEverySection) {
  const config c = parse_config(full());
  EXPECT_EQ(c.workers, 2u);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address.port(), 8080);
  ASSERT_TRUE(c.admin);
  ASSERT_TRUE(c.redis);
  EXPECT_EQ(c.redis->command_timeout, 100ms);
  ASSERT_TRUE(c.access_log);
  EXPECT_EQ(c.auth.realm, "demo");
  ASSERT_NE(c.auth.jwt, nullptr);
  EXPECT_EQ(c.auth.jwt->options().issuer, "trellis-demo");
  EXPECT_EQ(c.auth.jwt->options().leeway, 30s);
  EXPECT_EQ(c.auth.jwt_options.claim_attributes, std::vector<std::string>{"tenant"});
  ASSERT_TRUE(c.auth.api_keys);
  EXPECT_EQ((*c.auth.api_keys)[0].name, "partner");
  EXPECT_FALSE(c.auth.basic);

  ASSERT_EQ(c.rate_limits.size(), 2u);
  const auto& pc = c.rate_limits.at("per_client");
  EXPECT_EQ(pc.store, store_kind::redis);
  EXPECT_EQ(pc.options.policies[0].limit, 10);
  EXPECT_EQ(pc.options.policies[0].burst, 20);
  const auto& pu = c.rate_limits.at("per_user");
  EXPECT_EQ(pu.store, store_kind::local);
  EXPECT_EQ(pu.options.key, rate_limit_key::subject);
  EXPECT_EQ(pu.options.on_missing_key, missing_key_action::refuse);
  EXPECT_EQ(pu.options.policies[0].algorithm, rate_limit_algorithm::sliding_window);
  EXPECT_EQ(pu.options.policies[0].period, std::chrono::hours(1));

  ASSERT_EQ(c.routes.size(), 2u);
  const auto& r = c.routes[0];
  EXPECT_EQ(r.name, "users");
  EXPECT_EQ(r.cluster, "users");
  EXPECT_TRUE(r.methods.empty());
  EXPECT_EQ(r.auth, (std::vector<std::string>{"jwt", "api_key"}));
  ASSERT_TRUE(r.require);
  EXPECT_EQ(r.require->scopes, std::vector<std::string>{"users:read"});
  ASSERT_TRUE(r.cors);
  ASSERT_TRUE(r.ip);
  ASSERT_TRUE(r.circuit_breaker);
  EXPECT_EQ(r.circuit_breaker->consecutive_failures, 3u);
  EXPECT_EQ(r.max_concurrent, 50u);
  EXPECT_TRUE(r.compression);
  ASSERT_EQ(r.request_headers.size(), 2u);
  EXPECT_EQ(r.request_headers[0].action, header_action::set);
  EXPECT_EQ(r.request_headers[0].value, "${auth.subject}");
  EXPECT_EQ(r.request_headers[1].action, header_action::remove);
  ASSERT_EQ(r.transform.response_headers.size(), 1u);
  EXPECT_EQ(r.transform.response_headers[0].action, header_action::rename);
  EXPECT_EQ(r.transform.max_request_body, 64u * 1024);
  const auto& p = c.routes[1];
  EXPECT_EQ(p.methods, std::vector<http::method>{http::method::get});
  ASSERT_EQ(p.compose.size(), 2u);
  EXPECT_TRUE(p.compose[0].required);
  EXPECT_EQ(p.compose[0].timeout, 1s);
  EXPECT_EQ(p.compose[1].timeout, 2s);  // the default
}

TEST(GatewayConfig, ErrorsNameTheJsonPathOfTheBadValue) {
  auto with = [](const char* pointer, json value) {
    json j = full();
    j[json::json_pointer(pointer)] = std::move(value);
    return field_of(j);
  };
  auto without = [](const char* pointer) {
    json j = full();
    const json::json_pointer p(pointer);
    j[p.parent_pointer()].erase(p.back());
    return field_of(j);
  };
  EXPECT_EQ(field_of(full()), "(no error)");
  EXPECT_EQ(with("/listeners", json::array()), "listeners");
  EXPECT_EQ(with("/listeners/0/address", "nowhere"), "listeners[0].address");
  EXPECT_EQ(with("/routes/0/cluster", "nope"), "routes[0].cluster");
  EXPECT_EQ(with("/routes/0/rate_limit", "per_clinet"), "routes[0].rate_limit");
  EXPECT_EQ(with("/routes/0/auth/1", "oauth"), "routes[0].auth[1]");
  EXPECT_EQ(with("/routes/0/auth/1", "basic"), "routes[0].auth[1]");  // none configured
  EXPECT_EQ(with("/routes/0/methods", json::array({"GET", "BREW"})), "routes[0].methods[1]");
  EXPECT_EQ(with("/routes/0/helth", true), "routes[0].helth");
  EXPECT_EQ(with("/routes/0/cors/allow_origins", json::array({"not an origin"})),
            "routes[0].cors.allow_origins[0]");
  EXPECT_EQ(with("/routes/0/cors/allow_origins", json::array({"*"})), "(no error)");
  EXPECT_EQ(with("/routes/0/ip/deny", json::array({"10.1.0.0/8"})), "routes[0].ip.deny[0]");
  EXPECT_EQ(with("/routes/0/circuit_breaker/failure_rate", 150),
            "routes[0].circuit_breaker.failure_rate");
  EXPECT_EQ(with("/routes/0/request_headers/0", json::parse(R"({"set": "X"})")),
            "routes[0].request_headers[0].value");
  EXPECT_EQ(
      with("/routes/0/request_headers/0", json::parse(R"({"set": "X", "add": "Y", "value": "v"})")),
      "routes[0].request_headers[0]");
  EXPECT_EQ(with("/routes/0/request_headers/1", json::parse(R"({"remove": "Content-Length"})")),
            "routes[0].request_headers[1].name");
  EXPECT_EQ(with("/routes/0/compose", json::array()), "routes[0].compose");  // with a cluster too
  EXPECT_EQ(without("/routes/0/cluster"), "routes[0].cluster");              // neither
  EXPECT_EQ(with("/routes/1/compose/1/cluster", "nope"), "routes[1].compose[1].cluster");
  EXPECT_EQ(with("/routes/1/name", "users"), "routes[1].name");
  EXPECT_EQ(without("/redis"), "rate_limits.per_client.store");
  EXPECT_EQ(with("/rate_limits/per_client/policies/0/limit", 0),
            "rate_limits.per_client.policies[0].limit");
  EXPECT_EQ(with("/rate_limits/per_client/key", "cookie"), "rate_limits.per_client.key");
  EXPECT_EQ(with("/auth/jwt/keys/0/kty", "RSA"), "auth.jwt.keys[0].n");
  EXPECT_EQ(with("/auth/api_keys/0/sha256", "abc"),
            "(no error)");  // checked where the keys are used
  EXPECT_EQ(with("/clusters/1/name", "users"), "clusters[1].name");
  EXPECT_EQ(with("/proxy", json::parse(R"({"retries": -1})")), "proxy.retries");
  EXPECT_EQ(with("/listeners/0/tls", json::parse(R"({"cert": "/nonexistent.crt", "key": "/x"})")),
            "listeners[0].tls.cert");
  EXPECT_EQ(with("/routes/0/host", "api.example.com"), "(no error)");
  EXPECT_EQ(with("/routes/0/host", json::array({"a.example", "*.b.example"})), "(no error)");
  EXPECT_EQ(with("/routes/0/host", "API.example.com"), "routes[0].host");
  EXPECT_EQ(with("/routes/0/host", "api.example.com:8080"), "routes[0].host");
  EXPECT_EQ(with("/routes/0/host", json::array({"a.example", "b..example"})), "routes[0].host[1]");
  EXPECT_EQ(with("/routes/0/host", json::array({"a.example", "a.example"})), "routes[0].host[1]");
  EXPECT_EQ(with("/routes/0/host", json::array({"*.*.example"})), "routes[0].host[0]");
  EXPECT_EQ(with("/routes/0/host", json::array()), "routes[0].host");
  EXPECT_EQ(with("/routes/0/session", true), "routes[0].session");      // no "sessions"
  EXPECT_EQ(with("/routes/0/auth/1", "session"), "routes[0].auth[1]");  // no "session": true
  json sessions = full();
  sessions["sessions"] = json::parse(R"({"store": "redis", "idle_timeout": "20m",
                                         "logout_path": "/logout", "same_site": "strict"})");
  sessions["routes"][0]["session"] = true;
  sessions["routes"][0]["auth"] = json::array({"session", "jwt"});
  EXPECT_EQ(field_of(sessions), "(no error)");
  auto sessions_with = [&](const char* key, json value) {
    json j = sessions;
    j["sessions"][key] = std::move(value);
    return field_of(j);
  };
  EXPECT_EQ(sessions_with("store", "disk"), "sessions.store");
  EXPECT_EQ(sessions_with("same_site", "sometimes"), "sessions.same_site");
  EXPECT_EQ(sessions_with("cookie", "bad cookie"), "sessions.cookie");
  EXPECT_EQ(sessions_with("idle_timeout", "0s"), "sessions.idle_timeout");
  EXPECT_EQ(sessions_with("logout_path", "logout"), "sessions.logout_path");
  EXPECT_EQ(sessions_with("lifetime", "1h"), "sessions.lifetime");
  json insecure_none = sessions;
  insecure_none["sessions"]["same_site"] = "none";
  insecure_none["sessions"]["secure"] = false;
  EXPECT_EQ(field_of(insecure_none), "sessions.same_site");
  json no_redis = sessions;
  no_redis.erase("redis");
  no_redis["rate_limits"]["per_client"]["store"] = "local";
  EXPECT_EQ(field_of(no_redis), "sessions.store");
  json two = full();
  two["listeners"].push_back(two["listeners"][0]);
  EXPECT_EQ(field_of(two), "listeners[1].address");
  json req_without_auth = full();
  req_without_auth["routes"][0].erase("auth");
  EXPECT_EQ(field_of(req_without_auth), "routes[0].require");
}

TEST(GatewayConfig, ExpandsRequestAttributesInHeaderValues) {
  http::request_head head;
  head.method = http::method::get;
  head.method_text = "GET";
  head.target = "/";
  http::request req;
  req.bind(head, nullptr, {}, false);
  req.set_attribute("auth.subject", "alice");
  EXPECT_EQ(expand_attributes("${auth.subject}", req), "alice");
  EXPECT_EQ(expand_attributes("user=${auth.subject};m=${auth.method}", req), "user=alice;m=");
  EXPECT_EQ(expand_attributes("$$5 and $x and ${unclosed", req), "$5 and $x and ${unclosed");
  EXPECT_EQ(expand_attributes("plain", req), "plain");
}

}  // namespace
}  // namespace trellis::gateway
