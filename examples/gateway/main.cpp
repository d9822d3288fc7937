// trellis-gateway: the API gateway — the front door of the demo services.
//
//   trellis-gateway                          # the demo: the embedded config
//   trellis-gateway --config gateway.json    # your own
//   trellis-gateway --issue-token alice --scope "users:read orders:read"
//   kill -HUP <pid>                          # reload the --config file
//
// The embedded configuration routes 127.0.0.1:8080 to the services that
// scripts/demo starts with trellis-services (users on :9101 and :9111,
// orders on :9102, products on :9103), with JWT or API-key authentication,
// a per-client rate limit, CORS for a local web page, a circuit breaker,
// a cache for the products, and a composed profile. The admin listener
// (127.0.0.1:9901) serves /metrics (Prometheus), /status (JSON) and the
// live /dashboard (its data at /dashboard/data). --issue-token signs a
// demo token with the configuration's HS256 key, so
// `curl -H "Authorization: Bearer $(...)"` works against the demo.
//
// Reload: on SIGHUP the --config file is read again; a configuration that
// parses and builds replaces the running one (requests in flight finish on
// the old one); one that does not is logged with the field at fault and
// the old one keeps serving. Listeners, workers and the admin address are
// fixed at start: a changed one is refused, since their sockets are open.
#include <asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "trellis/core/config.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/metrics.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/gateway/config.hpp"
#include "trellis/gateway/dashboard.hpp"
#include "trellis/gateway/gateway.hpp"
#include "trellis/gateway/jwt.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"
#include "trellis/net/tls.hpp"

namespace {

using namespace trellis;
using json = nlohmann::json;

constexpr const char* usage = R"(trellis-gateway — an API gateway

usage:
  trellis-gateway [--config FILE] [--check] [--print-config] [--log-level L]
  trellis-gateway [--config FILE] --issue-token SUBJECT [--scope "A B"] [--role R]
                  [--ttl DURATION]

With no --config it runs the demo configuration: the gateway on
127.0.0.1:8080 in front of the trellis-services demo services (users on
127.0.0.1:9101 and :9111, orders on :9102, products on :9103), admin on
127.0.0.1:9901. scripts/demo starts all of it.

options --config FILE      a JSON configuration (see docs/api-gateways.md);
                           re-read on SIGHUP
        --check            parse and build the configuration, print a summary, exit
        --print-config     print the configuration in use (the demo's by default)
        --issue-token SUB  print a JWT for subject SUB, signed with the
                           configuration's first HS256 key (--scope, --role,
                           --ttl: default 1h)
        --log-level L      trace, debug, info (default), warn, error
)";

// The demo configuration. Its HS256 key and its API key ("acme-demo-key",
// stored as its SHA-256) are the demo's and public: a real deployment
// takes keys from a JWKS file or its own secrets.
constexpr const char* demo_config = R"({
  "listeners": [ { "address": "127.0.0.1:8080" } ],
  "admin": "127.0.0.1:9901",
  "access_log": { "path": "-" },
  "auth": {
    "realm": "trellis-demo",
    "jwt": { "keys": [ { "kty": "oct", "kid": "demo",
                         "k": "dHJlbGxpcy1kZW1vLWtleS1ub3QtYS1zZWNyZXQtYW55d2hlcmU" } ],
             "issuer": "trellis-demo", "audiences": ["demo-api"] },
    "api_keys": [ { "name": "partner-acme",
                    "sha256": "8676d15d94dabdd1283e6c407e2bb08a7b5c13b4e3667d4795c17172e080a3d4",
                    "scopes": ["products:read"] } ] },
  "rate_limits": {
    "per_client": { "policies": [ { "name": "burst", "limit": 5, "period": "1s", "burst": 10 } ],
                    "key": "subject", "on_missing_key": "shared" } },
  "cache": { "size": "64MiB" },
  "clusters": [
    { "name": "users", "policy": "round_robin",
      "endpoints": ["127.0.0.1:9101", "127.0.0.1:9111"],
      "health": { "type": "http", "path": "/health", "interval": "1s" },
      "outlier": { "consecutive_5xx": 3, "base_ejection_time": "10s" } },
    { "name": "orders", "endpoints": ["127.0.0.1:9102"],
      "health": { "type": "http", "path": "/health", "interval": "1s" } },
    { "name": "products", "endpoints": ["127.0.0.1:9103"],
      "health": { "type": "http", "path": "/health", "interval": "1s" } } ],
  "routes": [
    { "name": "users", "path": "/api/users/*", "cluster": "users", "strip_prefix": "/api",
      "auth": ["jwt"], "require": { "scopes": ["users:read"] }, "rate_limit": "per_client",
      "request_headers": [ { "set": "X-User", "value": "${auth.subject}" } ],
      "cors": { "allow_origins": ["http://127.0.0.1:8000", "http://localhost:8000"],
                "allow_headers": ["Authorization"], "allow_methods": ["GET", "POST"] },
      "circuit_breaker": { "consecutive_failures": 5, "open_duration": "5s" } },
    { "name": "orders", "path": "/api/orders/*", "cluster": "orders", "strip_prefix": "/api",
      "auth": ["jwt"], "require": { "scopes": ["orders:read"] }, "rate_limit": "per_client",
      "request_headers": [ { "set": "X-User", "value": "${auth.subject}" } ],
      "circuit_breaker": { "consecutive_failures": 5, "open_duration": "5s" } },
    { "name": "products", "path": "/api/products/*", "cluster": "products",
      "strip_prefix": "/api", "compress": true },
    { "name": "profile", "path": "/api/profile/{id}", "methods": ["GET"],
      "auth": ["jwt", "api_key"], "rate_limit": "per_client",
      "compose": [ { "name": "user", "cluster": "users", "path": "/users/{id}",
                     "required": true, "timeout": "1s" },
                   { "name": "orders", "cluster": "orders", "path": "/orders?user_id={id}",
                     "timeout": "1s" } ] } ] })";

json read_source(const examples::args& a) {
  if (auto file = a.get("config")) {
    std::ifstream in(*file);
    if (!in) a.fail("cannot read " + *file);
    try {
      return json::parse(in);
    } catch (const json::parse_error& e) {
      a.fail(*file + ": " + e.what());
    }
  }
  return json::parse(demo_config);
}

// A token for the demo: {"sub", "iss", "aud", "iat", "exp", "scope", "roles"}.
int issue_token(const examples::args& a, const json& source) {
  const json* keys = nullptr;
  if (source.contains("auth") && source["auth"].contains("jwt") &&
      source["auth"]["jwt"].contains("keys"))
    keys = &source["auth"]["jwt"]["keys"];
  std::optional<gateway::jwt_key> key;
  if (keys != nullptr)
    for (const auto& k : *keys)
      if (k.value("kty", "") == "oct") {
        key = gateway::jwt_key::from_jwk(k, "auth.jwt.keys");
        break;
      }
  if (!key) a.fail("--issue-token needs an HS256 (\"kty\": \"oct\") key in auth.jwt.keys");
  const auto ttl = a.has("ttl") ? core::config::parse_duration(*a.get("ttl"), "--ttl")
                                : std::chrono::milliseconds(std::chrono::hours(1));
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  json claims = {{"sub", *a.get("issue-token")},
                 {"iat", now},
                 {"exp", now + std::chrono::duration_cast<std::chrono::seconds>(ttl).count()}};
  const json& jwt = source["auth"]["jwt"];
  if (jwt.contains("issuer")) claims["iss"] = jwt["issuer"];
  if (jwt.contains("audiences") && !jwt["audiences"].empty()) claims["aud"] = jwt["audiences"][0];
  if (auto scope = a.get("scope")) claims["scope"] = *scope;
  if (a.has("role")) claims["roles"] = a.all("role");
  auto token = gateway::sign_jwt(claims, *key);
  if (!token) a.fail("cannot sign: " + token.error().message());
  std::cout << *token << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::args a("trellis-gateway", argc, argv, usage, {"check", "print-config"});
  a.allow({"config", "check", "print-config", "issue-token", "scope", "role", "ttl", "log-level"});
  if (!a.positional().empty())
    a.fail("unexpected argument '" + a.positional()[0] + "' (see --help)");
  a.apply_log_level();
  for (const char* flag : {"scope", "role", "ttl"})
    if (a.has(flag) && !a.has("issue-token"))
      a.fail(std::string("--") + flag + " belongs to --issue-token");

  json source = read_source(a);
  if (a.has("print-config")) {
    std::cout << source.dump(2) << "\n";
    return 0;
  }
  gateway::config cfg;
  try {
    if (a.has("issue-token")) return issue_token(a, source);
    cfg = gateway::parse_config(source);
  } catch (const core::config_error& e) {
    a.fail(e.what());
  }

  core::runtime rt({.workers = cfg.workers});
  core::metrics_registry metrics;
  std::optional<gateway::gateway> gw;
  try {
    gateway::gateway_options go;
    go.metrics = &metrics;
    gw.emplace(rt, cfg, go);
  } catch (const core::config_error& e) {
    a.fail(e.what());
  }
  if (a.has("check")) {
    std::cout << "ok: " << cfg.listeners.size() << " listener(s), " << cfg.clusters.size()
              << " cluster(s), " << cfg.routes.size() << " route(s)\n";
    return 0;
  }

  http::server_options so;
  so.metrics = &metrics;
  so.server_name.clear();  // the services' Server field passes through
  so.limits.max_body =
      cfg.max_request_body == 0 ? std::numeric_limits<std::uint64_t>::max() : cfg.max_request_body;
  std::vector<std::unique_ptr<asio::ssl::context>> tls;
  std::vector<std::unique_ptr<http::server>> servers;
  for (const auto& l : cfg.listeners) {
    asio::ssl::context* ctx = nullptr;
    if (l.tls) {
      net::tls::server_options to;
      to.cert_file = l.tls->cert;
      to.key_file = l.tls->key;
      to.alpn = {"http/1.1"};
      try {
        tls.push_back(std::make_unique<asio::ssl::context>(net::tls::make_server_context(to)));
      } catch (const core::config_error& e) {
        a.fail(e.what());
      }
      ctx = tls.back().get();
    }
    auto srv = std::make_unique<http::server>(gw->handler(), so);
    auto bound = srv->listen(rt, l.address, ctx);
    if (!bound)
      a.fail("cannot listen on " + examples::to_string(l.address) + ": " + bound.error().message());
    core::log::info("listening", {{"address", examples::to_string(*bound)},
                                  {"tls", ctx != nullptr},
                                  {"routes", cfg.routes.size()},
                                  {"workers", rt.size()}});
    servers.push_back(std::move(srv));
  }

  http::router admin_routes;
  std::optional<http::server> admin;
  std::optional<gateway::dashboard> dashboard;
  if (cfg.admin) {
    // The live page samples the same metrics /metrics exposes, every
    // second, on the first worker.
    dashboard.emplace(metrics, [&] { return gw->status(); });
    dashboard->start(rt[0]);
    dashboard->mount(admin_routes, "/dashboard");
    admin_routes.get("/status", [&](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(gw->status().dump(2) + "\n", "application/json");
      co_return;
    });
    admin_routes.get("/metrics", [&](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(metrics.expose(), "text/plain; version=0.0.4");
      co_return;
    });
    admin.emplace(admin_routes.to_handler());
    auto bound = admin->listen(rt, *cfg.admin);
    if (!bound)
      a.fail("cannot listen on " + examples::to_string(*cfg.admin) +
             " (admin): " + bound.error().message());
    core::log::info("admin listening", {{"address", examples::to_string(*bound)}});
  }

  // SIGHUP: reload the --config file (the demo's embedded one has nothing
  // to re-read). The signal set lives on the first worker and is cancelled
  // when the runtime drains.
  asio::signal_set hup(rt[0].context(), SIGHUP);
  const auto config_file = a.get("config");
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](std::error_code ec, int) {
      if (ec) return;
      if (!config_file) {
        core::log::info("SIGHUP: no --config file to reload");
      } else {
        try {
          auto next = gateway::load_config(*config_file);
          const auto& now = gw->current_config();
          if (next.workers != now.workers || next.admin != now.admin ||
              next.listeners.size() != now.listeners.size())
            throw core::config_error("listeners",
                                     "listeners, workers and admin are fixed until restart");
          for (std::size_t i = 0; i < next.listeners.size(); ++i)
            if (next.listeners[i].address != now.listeners[i].address ||
                next.listeners[i].tls.has_value() != now.listeners[i].tls.has_value())
              throw core::config_error("listeners[" + std::to_string(i) + "]",
                                       "listeners are fixed until restart");
          gw->reload(std::move(next));
        } catch (const core::config_error& e) {
          core::log::error("reload refused; the running configuration stays",
                           {{"field", e.field()}, {"error", e.what()}});
        }
      }
      wait_hup();
    });
  };
  wait_hup();
  // Draining: no more reloads, and the clusters' health checks stop (their
  // timers would otherwise hold the drain up).
  const core::drain_hook stop_background = rt[0].on_drain([&] {
    hup.cancel();
    gw->stop();
  });

  rt.run();
  core::log::info("stopped");
  return 0;
}
