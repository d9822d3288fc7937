#include "trellis/gateway/gateway.hpp"

#include <atomic>
#include <cctype>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>

#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/gateway/composition.hpp"
#include "trellis/gateway/concurrency_limit.hpp"
#include "trellis/gateway/redis_rate_limit_store.hpp"
#include "trellis/gateway/redis_session_store.hpp"
#include "trellis/gateway/route_metrics.hpp"
#include "trellis/gateway/session_auth.hpp"
#include "trellis/http/router.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/proxy/http_cache.hpp"
#include "trellis/proxy/reverse_proxy.hpp"

namespace trellis::gateway {

namespace {

using json = nlohmann::json;

// What a route answers when it lists no methods: every method, so the
// upstream decides (the router would otherwise answer 405 itself).
constexpr http::method every_method[] = {
    http::method::get,   http::method::head,    http::method::post,   http::method::put,
    http::method::patch, http::method::delete_, http::method::options};

// The request-header rules of a route, with "${attribute}" expanded per
// request. A set/add whose value expands to nothing removes the field
// instead: "X-User: ${auth.subject}" on an anonymous request must not let
// the client's own X-User through.
void apply_request_rules(const std::vector<header_rule>& rules, const http::request& req,
                         http::fields& f) {
  for (const auto& r : rules) {
    if (r.action == header_action::remove || r.action == header_action::rename) {
      apply_header_rules({r}, f);
      continue;
    }
    std::string value = expand_attributes(r.value, req);
    if (value.empty()) {
      (void)f.erase(r.name);
      continue;
    }
    header_rule expanded = r;
    expanded.value = std::move(value);
    apply_header_rules({expanded}, f);
  }
}

}  // namespace

struct gateway::built {
  config cfg;
  std::map<std::string, std::shared_ptr<lb::cluster>> clusters;
  std::shared_ptr<proxy::http_cache> cache;
  std::shared_ptr<log_writer> log;
  std::shared_ptr<route_metrics> per_route;
  std::shared_ptr<rate_limit_store> redis_store;
  std::shared_ptr<session_middleware> sessions;  // null: no "sessions"
  std::shared_ptr<const authenticator> session_auth;
  std::map<std::string, std::shared_ptr<rate_limiter>> limiters;
  std::shared_ptr<const authenticator> jwt, api_key, basic;
  std::vector<std::unique_ptr<proxy::reverse_proxy>> proxies;
  std::vector<std::unique_ptr<composition>> compositions;
  struct route_state {
    std::string name;
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<concurrency_limiter> limiter;
  };
  std::vector<route_state> routes;
  http::router router;  // routes naming no host
  // Virtual hosts: a router per name a route lists ("api.example.com",
  // "*.example.com"), each with the same outer middleware as `router`.
  std::map<std::string, std::unique_ptr<http::router>, std::less<>> by_host;

  // The router for a request's Host value: its exact name, else the most
  // specific "*." name that covers it, else the routes naming no host.
  // Per request, so without allocating: the lower-cased name is built in
  // a buffer after one spare byte, and each "*.suffix" candidate is that
  // buffer from a dot on, with the byte before the dot turned into '*'.
  const http::router& pick(std::string_view host) const {
    if (by_host.empty()) return router;
    if (host.starts_with('[')) {  // an IPv6 literal: "[::1]:8080"
      const auto close = host.find(']');
      host = host.substr(0, close == std::string_view::npos ? host.size() : close + 1);
    } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
      host = host.substr(0, colon);
    }
    char buf[1 + 256];
    if (host.empty() || host.size() > 255) return router;  // no route names such a host
    for (std::size_t i = 0; i < host.size(); ++i)
      buf[1 + i] = static_cast<char>(std::tolower(static_cast<unsigned char>(host[i])));
    const std::size_t end = 1 + host.size();
    if (auto it = by_host.find(std::string_view(buf + 1, host.size())); it != by_host.end())
      return *it->second;
    for (std::size_t dot = 1; dot < end; ++dot) {
      if (buf[dot] != '.') continue;
      buf[dot - 1] = '*';  // left of every later dot: later candidates are unaffected
      const std::string_view wildcard(buf + dot - 1, end - dot + 1);
      if (auto it = by_host.find(wildcard); it != by_host.end()) return *it->second;
    }
    return router;
  }

  ~built() {
    for (auto& [name, c] : clusters) c->stop();
  }
};

namespace {

using built_ptr = std::shared_ptr<const gateway::built>;

// `memory_sessions` outlives every set: sessions kept in memory must
// survive a reload (it is created by the first set that needs it).
std::shared_ptr<gateway::built> build(core::runtime& rt, config c, core::metrics_registry& metrics,
                                      const gateway_options& options,
                                      std::shared_ptr<session_store>& memory_sessions) {
  auto b = std::make_shared<gateway::built>();
  for (const auto& cl : c.clusters)
    b->clusters[cl.options.name] = std::make_shared<lb::cluster>(cl.options, cl.endpoints);
  if (c.cache) b->cache = std::make_shared<proxy::http_cache>(c.cache->store);

  // Outermost: every request is logged and counted, matched or not, on
  // every virtual host.
  std::shared_ptr<access_log> logger;
  if (c.access_log) {
    b->log = std::make_shared<log_writer>(*c.access_log);
    logger = std::make_shared<access_log>(b->log);
  }
  route_metrics_options rm;
  rm.metrics = &metrics;
  rm.route = "unmatched";
  b->per_route = std::make_shared<route_metrics>(rm);
  auto outer = [&](http::router& r) {
    if (logger) r.use(logger);
    r.use(b->per_route);
  };
  outer(b->router);
  auto router_for = [&](const std::string& host) -> http::router& {
    auto& slot = b->by_host[host];
    if (!slot) {
      slot = std::make_unique<http::router>();
      outer(*slot);
    }
    return *slot;
  };

  // The credentials, once for every route that accepts them.
  if (c.auth.jwt) {
    jwt_bearer_options jo = c.auth.jwt_options;
    if (options.jwt_clock) jo.clock = options.jwt_clock;
    b->jwt = std::make_shared<jwt_bearer>(c.auth.jwt, std::move(jo));
  }
  if (c.auth.api_keys)
    b->api_key = std::make_shared<api_key_auth>(*c.auth.api_keys, c.auth.api_key);
  if (c.auth.basic) b->basic = std::make_shared<basic_auth>(*c.auth.basic);

  if (c.sessions) {
    std::shared_ptr<session_store> store;
    if (c.sessions->store == store_kind::redis) {
      redis_session_store_options so;
      so.client.connect_timeout = c.redis->connect_timeout;
      so.client.command_timeout = c.redis->command_timeout;
      so.client.client_name = "trellis-gateway";
      store = std::make_shared<redis_session_store>(rt, c.redis->address, so);
    } else {
      if (!memory_sessions) {
        memory_session_store_options mo;
        mo.max_sessions = c.sessions->max_sessions;
        memory_sessions = std::make_shared<memory_session_store>(mo);
      }
      store = memory_sessions;
    }
    b->sessions = std::make_shared<session_middleware>(std::move(store), c.sessions->options);
    b->session_auth = std::make_shared<session_authenticator>(b->sessions);
  }

  // Named rate limits: one limiter each, shared by the routes that name
  // it, so they draw on one budget per client.
  for (auto& [name, rl] : c.rate_limits) {
    std::shared_ptr<rate_limit_store> store;
    if (rl.store == store_kind::redis) {
      if (!b->redis_store) {
        redis_rate_limit_store_options ro;
        ro.client.connect_timeout = c.redis->connect_timeout;
        ro.client.command_timeout = c.redis->command_timeout;
        ro.client.client_name = "trellis-gateway";
        b->redis_store = std::make_shared<redis_rate_limit_store>(rt, c.redis->address, ro);
      }
      store = b->redis_store;
    } else {
      store = std::make_shared<local_rate_limit_store>();
    }
    rate_limit_options o = rl.options;
    o.metrics = &metrics;
    b->limiters[name] = std::make_shared<rate_limiter>(std::move(o), std::move(store));
  }

  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    const route_config& r = c.routes[i];
    const std::string field = "routes[" + std::to_string(i) + "]";
    gateway::built::route_state state;
    state.name = r.name;
    std::vector<std::shared_ptr<http::middleware>> chain;
    if (r.ip) chain.push_back(std::make_shared<ip_filter>(*r.ip));
    if (r.cors) chain.push_back(std::make_shared<cors>(*r.cors));
    if (r.session) chain.push_back(b->sessions);
    if (!r.auth.empty()) {
      std::vector<std::shared_ptr<const authenticator>> who;
      for (const auto& s : r.auth) {
        if (s == "jwt") who.push_back(b->jwt);
        if (s == "api_key") who.push_back(b->api_key);
        if (s == "basic") who.push_back(b->basic);
        if (s == "session") who.push_back(b->session_auth);
      }
      authenticate_options ao;
      ao.realm = c.auth.realm;
      ao.optional = r.auth_optional;
      auto auth = std::make_shared<authenticate>(std::move(who), ao);
      chain.push_back(auth);
      if (r.require) {
        requirement q = *r.require;
        q.challenges = auth->challenges();
        q.realm = c.auth.realm;
        chain.push_back(std::make_shared<require>(std::move(q)));
      }
      // A caller let in by another scheme is remembered in the session
      // (with a new session id): the next requests need only the cookie.
      if (r.session) chain.push_back(std::make_shared<session_login>(b->sessions));
    }
    if (!r.rate_limit.empty()) chain.push_back(b->limiters.at(r.rate_limit));
    const bool transforms = !r.transform.response_headers.empty() ||
                            r.transform.max_request_body.has_value() ||
                            !r.transform.allowed_content_types.empty();
    if (transforms) chain.push_back(std::make_shared<transform_middleware>(r.transform));
    if (r.compression) chain.push_back(std::make_shared<compression_middleware>(*r.compression));
    if (r.max_concurrent > 0) {
      concurrency_limit_options lo;
      lo.max_in_flight = static_cast<std::uint32_t>(r.max_concurrent);
      state.limiter = std::make_shared<concurrency_limiter>(lo);
      concurrency_limit_middleware_options mo;
      mo.name = r.name;
      chain.push_back(std::make_shared<concurrency_limit_middleware>(state.limiter, mo));
    }
    if (r.circuit_breaker) {
      state.breaker = std::make_shared<circuit_breaker>(*r.circuit_breaker);
      circuit_breaker_middleware_options mo;
      mo.name = r.name;
      chain.push_back(std::make_shared<circuit_breaker_middleware>(state.breaker, mo));
    }

    http::handler upstream;
    if (!r.cluster.empty()) {
      proxy::reverse_proxy_options o = c.proxy;
      o.metrics = &metrics;
      o.strip_prefix = r.strip_prefix;
      o.prefix_rewrite = r.prefix_rewrite;
      o.hash = c.find_cluster(r.cluster)->hash;
      if (b->cache && r.cache) {
        o.cache = c.cache->rules;
        o.cache.store = b->cache;
      }
      if (!r.request_headers.empty()) {
        o.adjust_request = [rules = r.request_headers](const http::request& req, http::fields& f) {
          apply_request_rules(rules, req, f);
        };
      }
      b->proxies.push_back(
          std::make_unique<proxy::reverse_proxy>(rt, b->clusters.at(r.cluster), std::move(o)));
      upstream = b->proxies.back()->handler();
    } else {
      std::vector<composition_call> calls;
      for (const auto& k : r.compose) {
        composition_call call;
        call.name = k.name;
        call.cluster = b->clusters.at(k.cluster);
        call.path = k.path;
        call.timeout = k.timeout;
        call.required = k.required;
        calls.push_back(std::move(call));
      }
      composition_options co;
      co.proxy = c.proxy;
      co.proxy.metrics = &metrics;
      if (!r.request_headers.empty()) {
        co.proxy.adjust_request = [rules = r.request_headers](const http::request& req,
                                                              http::fields& f) {
          apply_request_rules(rules, req, f);
        };
      }
      try {
        b->compositions.push_back(std::make_unique<composition>(rt, std::move(calls), co));
      } catch (const core::config_error& e) {
        throw core::config_error(field + ".compose", e.what());
      }
      upstream = b->compositions.back()->handler();
    }

    http::handler h = b->per_route->wrap(r.name, http::with_middleware(std::move(chain), upstream));
    std::vector<http::router*> targets;
    if (r.hosts.empty()) targets.push_back(&b->router);
    for (const auto& host : r.hosts) targets.push_back(&router_for(host));
    try {
      for (http::router* t : targets) {
        if (r.methods.empty()) {
          for (auto m : every_method) t->add(m, r.path, h);
        } else {
          for (auto m : r.methods) t->add(m, r.path, h);
        }
      }
    } catch (const core::config_error& e) {
      throw core::config_error(field + ".path", e.what());
    }
    b->routes.push_back(std::move(state));
  }
  if (c.sessions && !c.sessions->logout_path.empty()) {
    // Logout on every host: it forgets the session wherever it was made.
    const http::handler logout = http::with_middleware(
        std::vector<std::shared_ptr<http::middleware>>{b->sessions}, session_logout(b->sessions));
    std::vector<http::router*> all{&b->router};
    for (auto& [host, r] : b->by_host) all.push_back(r.get());
    try {
      for (http::router* t : all) t->add(http::method::post, c.sessions->logout_path, logout);
    } catch (const core::config_error& e) {
      throw core::config_error("sessions.logout_path", e.what());
    }
  }
  b->cfg = std::move(c);
  return b;
}

void start_clusters(core::runtime& rt, const gateway::built& b) {
  // Health checks and DNS refreshes run on the first worker.
  for (const auto& [name, c] : b.clusters) c->start(rt[0].executor());
}

asio::awaitable<void> serve(built_ptr b, http::request& req, http::response& res) {
  co_await b->pick(req.host())(req, res);
}

}  // namespace

gateway::gateway(core::runtime& rt, config c, gateway_options options)
    : rt_(rt), options_(std::move(options)) {
  if (options_.metrics == nullptr) {
    own_metrics_ = std::make_unique<core::metrics_registry>();
    metrics_ = own_metrics_.get();
  } else {
    metrics_ = options_.metrics;
  }
  auto b = build(rt_, std::move(c), *metrics_, options_, memory_sessions_);
  start_clusters(rt_, *b);
  current_.store(built_ptr(std::move(b)));
  generation_ = 1;
}

gateway::~gateway() {
  if (auto b = current()) {
    for (const auto& [name, c] : b->clusters) c->stop();
  }
}

std::shared_ptr<const gateway::built> gateway::current() const {
  return current_.load();
}

http::handler gateway::handler() {
  return [this](http::request& req, http::response& res) { return serve(current(), req, res); };
}

void gateway::reload(config c) {
  auto b =
      build(rt_, std::move(c), *metrics_, options_, memory_sessions_);  // throws: nothing changed
  start_clusters(rt_, *b);
  std::lock_guard lock(mu_);
  auto old = current_.exchange(built_ptr(std::move(b)));
  for (const auto& [name, cl] : old->clusters) cl->stop();
  retired_.push_back(std::move(old));
  ++generation_;
  core::log::info("configuration reloaded", {{"generation", generation_}});
}

void gateway::stop() {
  for (const auto& [name, c] : current()->clusters) c->stop();
}

std::uint64_t gateway::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

const config& gateway::current_config() const {
  return current()->cfg;
}

nlohmann::json gateway::status() const {
  const auto b = current();
  json out = json::object();
  out["generation"] = generation();
  json routes = json::array();
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < b->cfg.routes.size(); ++i) {
    const auto& rc = b->cfg.routes[i];
    const auto& rs = b->routes[i];
    json r = {{"name", rc.name}, {"path", rc.path}};
    if (!rc.hosts.empty()) r["host"] = rc.hosts;
    if (!rc.cluster.empty()) r["cluster"] = rc.cluster;
    if (!rc.compose.empty()) {
      json calls = json::array();
      for (const auto& k : rc.compose) calls.push_back(k.cluster);
      r["compose"] = std::move(calls);
    }
    if (!rc.auth.empty()) r["auth"] = rc.auth;
    if (!rc.rate_limit.empty()) r["rate_limit"] = rc.rate_limit;
    if (rs.breaker) {
      const auto s = rs.breaker->snapshot(now);
      r["breaker"] = {{"state", std::string(to_string(s.state))},
                      {"trips", s.trips},
                      {"refused", s.refused},
                      {"failures", s.failures},
                      {"successes", s.successes}};
    }
    if (rs.limiter) r["in_flight"] = rs.limiter->in_flight();
    const auto st = b->per_route->stats(rc.name);
    r["responses"] = {{"1xx", st.by_class[0]},
                      {"2xx", st.by_class[1]},
                      {"3xx", st.by_class[2]},
                      {"4xx", st.by_class[3]},
                      {"5xx", st.by_class[4]}};
    r["p50_ms"] = static_cast<double>(st.latency.percentile(50)) / 1e6;
    r["p99_ms"] = static_cast<double>(st.latency.percentile(99)) / 1e6;
    routes.push_back(std::move(r));
  }
  out["routes"] = std::move(routes);
  json clusters = json::array();
  for (const auto& [name, c] : b->clusters) {
    json hosts = json::array();
    for (const auto& h : c->status())
      hosts.push_back({{"address", h.address},
                       {"healthy", h.healthy},
                       {"ejected", h.ejected},
                       {"eligible", h.eligible},
                       {"active_requests", h.active_requests}});
    clusters.push_back({{"name", name},
                        {"panic", c->in_panic()},
                        {"eligible", c->eligible()->size()},
                        {"hosts", std::move(hosts)}});
  }
  out["clusters"] = std::move(clusters);

  // Each named rate limit with its policies and their decisions so far
  // (the counters /metrics exposes, summed over reloads).
  json limits = json::object();
  for (const auto& [name, rl] : b->cfg.rate_limits) {
    const std::string series = rl.options.metrics_prefix + "_requests_total";
    const auto counts = metrics_->counter_values(series);
    json policies = json::array();
    for (const auto& p : rl.options.policies) {
      std::uint64_t allowed = 0, limited = 0;
      for (const auto& [labels, v] : counts) {
        if (core::label_value(labels, "policy") != p.name) continue;
        const auto result = core::label_value(labels, "result");
        if (result == "allowed") allowed += v;
        if (result == "limited") limited += v;
      }
      policies.push_back(
          {{"name", p.name},
           {"algorithm",
            p.algorithm == rate_limit_algorithm::token_bucket ? "token_bucket" : "sliding_window"},
           {"limit", p.limit},
           {"period_ms", std::chrono::duration_cast<std::chrono::milliseconds>(p.period).count()},
           {"burst", p.burst},
           {"allowed", allowed},
           {"limited", limited}});
    }
    limits[name] = {{"store", rl.store == store_kind::redis ? "redis" : "local"},
                    {"policies", std::move(policies)}};
  }
  out["rate_limits"] = std::move(limits);
  if (b->cache) {
    const auto s = b->cache->stats();
    out["cache"] = {{"urls", s.urls},
                    {"bytes", s.bytes},
                    {"stored", s.stored},
                    {"evictions", s.evictions},
                    {"purges", s.purges}};
  }
  return out;
}

}  // namespace trellis::gateway
