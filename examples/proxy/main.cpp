// trellis-proxy: a configuration-driven reverse proxy and load balancer in
// the spirit of a small HAProxy.
//
//   trellis-proxy --listen 127.0.0.1:8080 --policy least_request
//                 --upstream 127.0.0.1:9001 --upstream 127.0.0.1:9002
//   trellis-proxy --config proxy.json
//   trellis-proxy                          # the demo: the embedded default config
//
// Listeners route requests by host and path prefix to clusters; each
// cluster balances over its hosts with a policy, checks them (active
// health checks) and ejects the ones that fail (passive outlier
// detection). The admin listener shows every host's state at /status
// (JSON) and the metrics at /metrics (Prometheus).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/metrics.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/proxy/config.hpp"
#include "trellis/proxy/forward_proxy.hpp"
#include "trellis/proxy/reverse_proxy.hpp"
#include "trellis/proxy/tcp_proxy.hpp"

namespace {

using namespace trellis;
using json = nlohmann::json;

constexpr const char* usage = R"(trellis-proxy — a reverse proxy and load balancer

usage:
  trellis-proxy [--config FILE] [--check] [--print-config] [--log-level L]
  trellis-proxy --listen ADDR:PORT --upstream ADDR:PORT [--upstream ...]
                [--mode http|tcp] [--policy NAME] [--hash-on KEY]
                [--health-path P] [--health-interval D] [--retries N]
                [--cache SIZE] [--workers N] [--admin ADDR:PORT] [--print-config]
                [--log-level L]
  trellis-proxy --listen ADDR:PORT --forward [--allow HOST] [--connect-port N]

With no options it runs the demo configuration: a proxy on
127.0.0.1:8080 in front of 127.0.0.1:9001, :9002 and :9003 (start them
with trellis-backend), weighted round robin with a 10 s slow start,
health-checked at /health every second, admin on 127.0.0.1:9901.

options --config FILE      a JSON configuration (see docs/reverse-proxies.md)
        --check            check the configuration, print "ok" and exit
        --print-config     print the configuration as JSON and exit
        --listen ADDR:PORT quick mode: one listener ...
        --upstream ADDR:PORT ... in front of these hosts (repeat it)
        --mode M           http (default): a reverse proxy; tcp: an L4 proxy
                           that relays bytes (TLS it cannot read included)
        --forward          a forward proxy instead (curl -x): absolute-form
                           requests and CONNECT tunnels
        --allow HOST       forward: a destination allowed (name, *.domain or
                           address block; repeat it; default: any)
        --connect-port N   forward: a port CONNECT may reach (repeat it;
                           default 443)
        --policy NAME      round_robin (default), weighted_round_robin,
                           least_connections, least_request, peak_ewma,
                           random, ring_hash, maglev
        --hash-on KEY      what ring_hash and maglev hash: client_ip, path,
                           header:NAME or cookie:NAME
        --health-path P    check every host with GET P (default: no checks)
        --health-interval D  time between checks (default 1s)
        --retries N        extra attempts on another host (default 1)
        --cache SIZE       an HTTP cache of SIZE ("256MiB") in front of the
                           hosts: RFC 9111 caching, a CDN edge (see
                           docs/caching.md); purge through the admin listener
        --workers N        worker threads (default: one per core)
        --admin ADDR:PORT  the admin listener (/status, /metrics)
        --log-level L      trace, debug, info (default), warn, error, off
)";

// The demo: three trellis-backend instances behind one listener.
constexpr const char* demo_config = R"({
  "admin": "127.0.0.1:9901",
  "listeners": [ { "address": "127.0.0.1:8080", "cluster": "demo" } ],
  "clusters": [ {
    "name": "demo",
    "policy": "weighted_round_robin",
    "endpoints": [ "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003" ],
    "health": { "type": "http", "path": "/health", "interval": "1s", "timeout": "500ms",
                "rise": 2, "fall": 2 },
    "outlier": { "consecutive_gateway_failure": 3, "base_ejection_time": "10s",
                 "max_ejection_percent": 50 },
    "slow_start": "10s"
  } ]
})";

// Quick mode, written as the configuration it stands for.
json quick_config(const examples::args& a) {
  if (a.has("forward")) {
    json listener = {{"address", *a.get("listen")}, {"mode", "forward"}};
    if (a.has("allow")) listener["allowed_hosts"] = a.all("allow");
    if (a.has("connect-port")) {
      json ports = json::array();
      for (const auto& p : a.all("connect-port")) {
        char* end = nullptr;
        const long n = std::strtol(p.c_str(), &end, 10);
        if (p.empty() || *end != '\0' || n < 1 || n > 65535)
          a.fail("--connect-port: expected a port, got '" + p + "'");
        ports.push_back(n);
      }
      listener["connect_ports"] = ports;
    }
    json j = {{"listeners", json::array({listener})}};
    if (auto admin = a.get("admin")) j["admin"] = *admin;
    if (a.has("workers")) j["workers"] = a.number("workers", 0, 0, 256);
    return j;
  }
  json cluster = {{"name", "default"}, {"policy", a.get("policy").value_or("round_robin")}};
  json endpoints = json::array();
  for (const auto& u : a.all("upstream")) endpoints.push_back(u);
  cluster["endpoints"] = endpoints;
  if (auto hash = a.get("hash-on")) cluster["hash_on"] = *hash;
  if (auto path = a.get("health-path"))
    cluster["health"] = {{"type", "http"},
                         {"path", *path},
                         {"interval", a.get("health-interval").value_or("1s")}};
  json listener = {{"address", *a.get("listen")}, {"cluster", "default"}};
  if (auto mode = a.get("mode")) listener["mode"] = *mode;
  json j = {{"listeners", json::array({listener})},
            {"clusters", json::array({cluster})}};
  if (auto admin = a.get("admin")) j["admin"] = *admin;
  if (a.has("workers")) j["workers"] = a.number("workers", 0, 0, 256);
  if (a.has("retries")) j["proxy"] = {{"retries", a.number("retries", 1, 0, 10)}};
  if (auto size = a.get("cache")) j["cache"] = {{"size", *size}};
  return j;
}

json host_json(const lb::cluster::host_status& h) {
  json j = {{"address", h.address},
            {"weight", h.weight},
            {"healthy", h.healthy},
            {"ejected", h.ejected},
            {"eligible", h.eligible},
            {"ejections", h.ejections},
            {"active_requests", h.active_requests},
            {"consecutive_failures", h.consecutive_failures}};
  if (!h.last_check.empty()) j["last_check"] = h.last_check;
  return j;
}

// Dispatches each request to the proxy of the route it matches.
struct listener_routes {
  std::vector<proxy::route_config> routes;
  std::vector<std::unique_ptr<proxy::reverse_proxy>> proxies;  // one per route

  asio::awaitable<void> handle(http::request& req, http::response& res) {
    const proxy::route_config* r = proxy::match_route(routes, req.host(), req.path());
    if (r == nullptr) {
      res.status = 404;
      res.set_text("no route\n");
      co_return;
    }
    co_await proxies[static_cast<std::size_t>(r - routes.data())]->handle(req, res);
  }
};

// The value of `name` in a query string, decoded; "" when absent or
// malformed.
std::string query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
    auto v = http::percent_decode(pair.substr(eq + 1), http::decode_mode::query);
    return v ? *v : std::string();
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  const examples::args a("trellis-proxy", argc, argv, usage, {"check", "print-config", "forward"});
  a.allow({"config", "check", "print-config", "listen", "upstream", "mode", "forward", "allow",
           "connect-port", "policy", "hash-on", "health-path", "health-interval", "retries",
           "cache", "workers", "admin", "log-level"});
  if (!a.positional().empty())
    a.fail("unexpected argument '" + a.positional()[0] + "' (see --help)");
  a.apply_log_level();
  const bool quick = a.has("listen") || a.has("upstream") || a.has("forward");
  if (quick && a.has("config")) a.fail("--config and quick-mode flags (--listen, --upstream) do not go together");
  if (a.has("forward")) {
    if (!a.has("listen")) a.fail("--forward needs --listen");
    for (const char* flag : {"upstream", "mode", "policy", "hash-on", "health-path", "health-interval", "retries", "cache"})
      if (a.has(flag)) a.fail(std::string("--") + flag + " does not go with --forward");
  } else if (quick && !(a.has("listen") && a.has("upstream"))) {
    a.fail("quick mode needs --listen and at least one --upstream");
  }
  if (!a.has("forward") && (a.has("allow") || a.has("connect-port")))
    a.fail("--allow and --connect-port belong to --forward");
  if (!quick) {
    for (const char* flag : {"policy", "hash-on", "health-path", "health-interval", "retries", "cache", "workers", "admin"})
      if (a.has(flag)) a.fail(std::string("--") + flag + " belongs to quick mode (with --listen)");
  }

  proxy::config cfg;
  json source;
  try {
    if (quick) {
      source = quick_config(a);
      cfg = proxy::parse_config(source);
    } else if (auto file = a.get("config")) {
      cfg = proxy::load_config(*file);
    } else {
      source = json::parse(demo_config);
      cfg = proxy::parse_config(source);
    }
  } catch (const core::config_error& e) {
    a.fail(quick ? std::string(e.what()).insert(0, "quick mode: ") : e.what());
  }
  if (a.has("print-config")) {
    if (source.is_null()) {
      std::ifstream in(*a.get("config"));
      source = json::parse(in);
    }
    std::cout << source.dump(2) << "\n";
    return 0;
  }
  if (a.has("check")) {
    std::cout << "ok: " << cfg.listeners.size() << " listener(s), " << cfg.clusters.size()
              << " cluster(s)\n";
    return 0;
  }

  core::runtime rt({.workers = cfg.workers});
  core::metrics_registry metrics;

  std::map<std::string, std::shared_ptr<lb::cluster>> clusters;
  try {
    for (const auto& c : cfg.clusters)
      clusters[c.options.name] = std::make_shared<lb::cluster>(c.options, c.endpoints);
  } catch (const core::config_error& e) {
    a.fail(e.what());
  }
  // Health checks and DNS refreshes run on the first worker, and stop when
  // it starts draining (their timers would otherwise hold the drain up).
  for (auto& [name, c] : clusters) c->start(rt[0].executor());
  const core::drain_hook stop_checks = rt[0].on_drain([&clusters] {
    for (auto& [name, c] : clusters) c->stop();
  });

  // One cache for every route that uses it: a URL cached through one
  // route is a hit through another that reaches it, and one purge drops it.
  std::shared_ptr<proxy::http_cache> cache;
  if (cfg.cache) cache = std::make_shared<proxy::http_cache>(cfg.cache->store);

  std::vector<std::unique_ptr<listener_routes>> tables;
  std::vector<std::unique_ptr<http::server>> servers;
  std::vector<std::unique_ptr<proxy::tcp_proxy>> tcp_proxies;
  std::vector<std::unique_ptr<proxy::forward_proxy>> forward_proxies;
  http::server_options so;
  so.metrics = &metrics;
  so.server_name.clear();  // the backend's Server field passes through
  // Request bodies are streamed on, never held: no limit unless asked for.
  so.limits.max_body =
      cfg.max_request_body == 0 ? std::numeric_limits<std::uint64_t>::max() : cfg.max_request_body;
  for (const auto& l : cfg.listeners) {
    if (l.mode == proxy::listener_mode::tcp) {
      proxy::tcp_proxy_options to;
      to.metrics = &metrics;
      to.connect_timeout = cfg.proxy.connect_timeout;
      std::unique_ptr<proxy::tcp_proxy> tp;
      try {
        tp = std::make_unique<proxy::tcp_proxy>(clusters.at(l.cluster), to);
      } catch (const core::config_error& e) {
        a.fail(e.what());
      }
      auto bound = tp->listen(rt, l.address);
      if (!bound)
        a.fail("cannot listen on " + examples::to_string(l.address) + ": " + bound.error().message());
      core::log::info("listening", {{"address", examples::to_string(*bound)},
                                    {"mode", "tcp"},
                                    {"cluster", l.cluster},
                                    {"workers", rt.size()}});
      tcp_proxies.push_back(std::move(tp));
      continue;
    }
    if (l.mode == proxy::listener_mode::forward) {
      proxy::forward_proxy_options fo;
      fo.metrics = &metrics;
      fo.allowed_hosts = l.allowed_hosts;
      fo.connect_ports = l.connect_ports;
      fo.connect_timeout = cfg.proxy.connect_timeout;
      fo.forwarding.via = cfg.proxy.forwarding.via;
      std::unique_ptr<proxy::forward_proxy> fp;
      try {
        fp = std::make_unique<proxy::forward_proxy>(rt, fo);
      } catch (const core::config_error& e) {
        a.fail(e.what());
      }
      auto srv = std::make_unique<http::server>(fp->handler(), so);
      auto bound = srv->listen(rt, l.address);
      if (!bound)
        a.fail("cannot listen on " + examples::to_string(l.address) + ": " + bound.error().message());
      core::log::info("listening", {{"address", examples::to_string(*bound)},
                                    {"mode", "forward"},
                                    {"workers", rt.size()}});
      forward_proxies.push_back(std::move(fp));
      servers.push_back(std::move(srv));
      continue;
    }
    auto table = std::make_unique<listener_routes>();
    table->routes = l.routes;
    for (const auto& r : l.routes) {
      proxy::reverse_proxy_options o = cfg.proxy;
      o.metrics = &metrics;
      o.strip_prefix = r.strip_prefix;
      o.prefix_rewrite = r.prefix_rewrite;
      o.host = r.host_mode;
      o.host_value = r.host_value;
      o.hash = cfg.find_cluster(r.cluster)->hash;
      if (cache && r.cache) {
        o.cache = cfg.cache->rules;
        o.cache.store = cache;
      }
      try {
        table->proxies.push_back(
            std::make_unique<proxy::reverse_proxy>(rt, clusters.at(r.cluster), std::move(o)));
      } catch (const core::config_error& e) {
        a.fail(e.what());
      }
    }
    auto* t = table.get();
    auto srv = std::make_unique<http::server>(
        [t](http::request& req, http::response& res) { return t->handle(req, res); }, so);
    auto bound = srv->listen(rt, l.address);
    if (!bound)
      a.fail("cannot listen on " + examples::to_string(l.address) + ": " + bound.error().message());
    core::log::info("listening", {{"address", examples::to_string(*bound)},
                                  {"routes", l.routes.size()},
                                  {"workers", rt.size()}});
    tables.push_back(std::move(table));
    servers.push_back(std::move(srv));
  }

  http::router admin_routes;
  std::optional<http::server> admin;
  if (cfg.admin) {
    admin_routes.get("/status", [&](http::request&, http::response& res) -> asio::awaitable<void> {
      json out = {{"clusters", json::array()}};
      for (const auto& [name, c] : clusters) {
        json hosts = json::array();
        for (const auto& h : c->status()) hosts.push_back(host_json(h));
        out["clusters"].push_back({{"name", name},
                                   {"policy", c->options().policy},
                                   {"panic", c->in_panic()},
                                   {"eligible", c->eligible()->size()},
                                   {"hosts", hosts}});
      }
      res.set_text(out.dump(2) + "\n", "application/json");
      co_return;
    });
    admin_routes.get("/metrics", [&](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(metrics.expose(), "text/plain; version=0.0.4");
      co_return;
    });
    // The cache: its counters, and purging by URL or by tag (a
    // Surrogate-Key the origin sent), e.g.
    //   curl -X POST 'http://127.0.0.1:9901/cache/purge?url=http://127.0.0.1:8080/a'
    //   curl -X POST 'http://127.0.0.1:9901/cache/purge?tag=product-1'
    admin_routes.get("/cache", [&](http::request&, http::response& res) -> asio::awaitable<void> {
      if (!cache) {
        res.status = 404;
        res.set_text("no cache configured\n");
        co_return;
      }
      const auto s = cache->stats();
      json out = {{"urls", s.urls},           {"bytes", s.bytes},
                  {"max_bytes", cache->options().max_bytes},
                  {"stored", s.stored},       {"too_large", s.too_large},
                  {"evictions", s.evictions}, {"expirations", s.expirations},
                  {"purges", s.purges},       {"tag_purges", s.tag_purges},
                  {"collapsed", s.collapsed}, {"collapse_timeouts", s.collapse_timeouts}};
      res.set_text(out.dump(2) + "\n", "application/json");
    });
    admin_routes.post("/cache/purge", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
      if (!cache) {
        res.status = 404;
        res.set_text("no cache configured\n");
        co_return;
      }
      const auto url = query_value(req.query(), "url");
      const auto tag = query_value(req.query(), "tag");
      if (url.empty() == tag.empty()) {
        res.status = 400;
        res.set_text("expected ?url=URL or ?tag=TAG\n");
        co_return;
      }
      if (!tag.empty()) {
        cache->purge_tag(tag);
        res.set_text("purged tag " + tag + "\n");
        co_return;
      }
      auto parsed = http::parse_url(url);
      if (!parsed || parsed->host.empty()) {
        res.status = 400;
        res.set_text("not an absolute URL: " + url + "\n");
        co_return;
      }
      const bool dropped = cache->purge(proxy::cache_key(*parsed));
      res.status = dropped ? 200 : 404;
      res.set_text(std::string(dropped ? "purged " : "not in cache: ") + url + "\n");
    });
    admin.emplace(admin_routes.to_handler());
    auto bound = admin->listen(rt, *cfg.admin);
    if (!bound)
      a.fail("cannot listen on " + examples::to_string(*cfg.admin) + " (admin): " +
             bound.error().message());
    core::log::info("admin listening", {{"address", examples::to_string(*bound)}});
  }

  rt.run();
  for (auto& [name, c] : clusters) c->stop();
  core::log::info("stopped");
  return 0;
}
