#include "trellis/proxy/config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <utility>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "trellis/codec/ascii.hpp"
#include "trellis/core/config.hpp"
#include "trellis/core/error.hpp"
#include "trellis/net/cidr.hpp"

namespace trellis::proxy {

namespace {

using json = nlohmann::json;
using namespace core::config;

[[noreturn]] void bad(const std::string& path, const std::string& what) { fail(path, what); }

void parse_health(const json& j, const std::string& path, lb::health_check_options& h) {
  expect_object(j, path);
  only(j, path, {"type", "path", "host", "interval", "timeout", "jitter", "rise", "fall",
                 "expected_status", "start_healthy"});
  if (auto* v = find(j, "type")) {
    const std::string t = get_string(*v, member(path, "type"));
    if (t == "none")
      h.type = lb::health_check_type::none;
    else if (t == "tcp")
      h.type = lb::health_check_type::tcp;
    else if (t == "http")
      h.type = lb::health_check_type::http;
    else
      bad(member(path, "type"), "expected none, tcp or http, got '" + t + "'");
  } else {
    h.type = lb::health_check_type::http;  // a health section means checks
  }
  if (auto* v = find(j, "path")) h.path = get_string(*v, member(path, "path"));
  if (auto* v = find(j, "host")) h.host_header = get_string(*v, member(path, "host"));
  if (auto* v = find(j, "interval")) h.interval = get_duration(*v, member(path, "interval"));
  if (auto* v = find(j, "timeout")) {
    h.timeout = get_duration(*v, member(path, "timeout"));
    if (h.timeout > h.interval) bad(member(path, "timeout"), "must not exceed the interval");
  } else {
    h.timeout = std::min(h.timeout, h.interval);  // a short interval implies a short timeout
  }
  if (auto* v = find(j, "jitter")) h.jitter = get_double(*v, member(path, "jitter"), 0, 1);
  if (auto* v = find(j, "rise"))
    h.rise = static_cast<std::uint32_t>(get_uint(*v, member(path, "rise"), 1, 1000));
  if (auto* v = find(j, "fall"))
    h.fall = static_cast<std::uint32_t>(get_uint(*v, member(path, "fall"), 1, 1000));
  if (auto* v = find(j, "start_healthy")) h.start_healthy = get_bool(*v, member(path, "start_healthy"));
  if (auto* v = find(j, "expected_status")) {
    // "200-399" or "200"
    const std::string p = member(path, "expected_status");
    const std::string s = get_string(*v, p);
    const auto dash = s.find('-');
    auto number = [&](std::string_view t) {
      int n = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
      if (t.empty() || ec != std::errc{} || end != t.data() + t.size() || n < 100 || n > 599)
        bad(p, "expected a status or a range such as \"200-399\", got '" + s + "'");
      return n;
    };
    h.expected_status_min = number(std::string_view(s).substr(0, dash));
    h.expected_status_max =
        dash == std::string::npos ? h.expected_status_min : number(std::string_view(s).substr(dash + 1));
    if (h.expected_status_min > h.expected_status_max) bad(p, "the range is empty");
  }
}

// "slow_start": a duration (the window), or an object with the curve too.
void parse_slow_start(const json& j, const std::string& path, lb::slow_start_options& o) {
  if (j.is_string()) {
    o.window = get_duration(j, path);
    return;
  }
  if (!j.is_object()) bad(path, "expected a duration such as \"30s\" or an object");
  only(j, path, {"window", "min_weight_fraction", "aggression"});
  const json* window = find(j, "window");
  if (!window) bad(member(path, "window"), "required");
  o.window = get_duration(*window, member(path, "window"));
  if (auto* v = find(j, "min_weight_fraction"))
    o.min_weight_fraction = get_double(*v, member(path, "min_weight_fraction"), 0, 1);
  if (auto* v = find(j, "aggression"))
    o.aggression = get_double(*v, member(path, "aggression"), 0, 1000);
}

// "policy_options": one flat object; each policy reads what it uses.
void parse_policy_options(const json& j, const std::string& path, lb::policy_options& o) {
  expect_object(j, path);
  only(j, path, {"choice_count", "decay_time", "failure_penalty", "points_per_weight",
                 "table_size", "balance_factor"});
  if (auto* v = find(j, "choice_count")) {
    const auto n = static_cast<std::uint32_t>(get_uint(*v, member(path, "choice_count"), 2, 100));
    o.least_request.choice_count = n;
    o.peak_ewma.choice_count = n;
  }
  if (auto* v = find(j, "decay_time"))
    o.peak_ewma.decay_time = get_duration(*v, member(path, "decay_time"));
  if (auto* v = find(j, "failure_penalty"))
    o.peak_ewma.failure_penalty = get_duration(*v, member(path, "failure_penalty"));
  if (auto* v = find(j, "points_per_weight"))
    o.ring_hash.points_per_weight =
        static_cast<std::uint32_t>(get_uint(*v, member(path, "points_per_weight"), 1, 100'000));
  if (auto* v = find(j, "table_size"))
    o.maglev.table_size =
        static_cast<std::uint32_t>(get_uint(*v, member(path, "table_size"), 2, 16'777'259));
  if (auto* v = find(j, "balance_factor")) {
    const double f = get_double(*v, member(path, "balance_factor"), 0, 100);
    o.ring_hash.bounded_load.balance_factor = f;
    o.maglev.bounded_load.balance_factor = f;
  }
}

// The policy library's own checks (a prime table size, a zero duration...),
// reported under the JSON path the value came from.
void validate_policy(const lb::policy_options& o, const std::string& path) {
  try {
    lb::validate(o);
  } catch (const core::config_error& e) {
    static constexpr std::pair<std::string_view, std::string_view> where[] = {
        {"lb.slow_start.", "slow_start."},
        {"lb.least_request.", "policy_options."},
        {"lb.peak_ewma.", "policy_options."},
        {"lb.ring_hash.bounded_load.", "policy_options."},
        {"lb.ring_hash.", "policy_options."},
        {"lb.maglev.bounded_load.", "policy_options."},
        {"lb.maglev.", "policy_options."},
    };
    std::string field = e.field();
    for (const auto& [from, to] : where) {
      if (field.rfind(from, 0) == 0) {
        field = member(path, std::string(to) + field.substr(from.size()));
        break;
      }
    }
    const std::string what = e.what();
    const auto colon = what.find(": ");
    bad(field, colon == std::string::npos ? what : what.substr(colon + 2));
  }
}

void parse_outlier(const json& j, const std::string& path, lb::outlier_options& o) {
  expect_object(j, path);
  only(j, path, {"enabled", "consecutive_5xx", "consecutive_gateway_failure", "base_ejection_time",
                 "max_ejection_time", "max_ejection_percent", "interval"});
  if (auto* v = find(j, "enabled")) o.enabled = get_bool(*v, member(path, "enabled"));
  if (auto* v = find(j, "consecutive_5xx"))
    o.consecutive_5xx = static_cast<std::uint32_t>(get_uint(*v, member(path, "consecutive_5xx"), 0, 1'000'000));
  if (auto* v = find(j, "consecutive_gateway_failure"))
    o.consecutive_gateway_failure = static_cast<std::uint32_t>(
        get_uint(*v, member(path, "consecutive_gateway_failure"), 0, 1'000'000));
  if (auto* v = find(j, "base_ejection_time"))
    o.base_ejection_time = get_duration(*v, member(path, "base_ejection_time"));
  if (auto* v = find(j, "max_ejection_time"))
    o.max_ejection_time = get_duration(*v, member(path, "max_ejection_time"));
  if (auto* v = find(j, "max_ejection_percent"))
    o.max_ejection_percent = get_double(*v, member(path, "max_ejection_percent"), 0, 100);
  if (auto* v = find(j, "interval")) o.interval = get_duration(*v, member(path, "interval"));
}

cluster_config parse_cluster(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path, {"name", "policy", "policy_options", "endpoints", "health", "outlier",
                 "panic_threshold", "slow_start", "hash_on"});
  cluster_config c;
  const json* name = find(j, "name");
  if (!name) bad(member(path, "name"), "required");
  c.options.name = get_string(*name, member(path, "name"));
  if (auto* v = find(j, "policy")) c.options.policy = get_string(*v, member(path, "policy"));
  if (std::find(std::begin(lb::policy_names), std::end(lb::policy_names), c.options.policy) ==
      std::end(lb::policy_names)) {
    std::string list;
    for (auto n : lb::policy_names) list += (list.empty() ? "" : ", ") + std::string(n);
    bad(member(path, "policy"), "unknown policy '" + c.options.policy + "' (one of " + list + ")");
  }
  const json* eps = find(j, "endpoints");
  const std::string ep_path = member(path, "endpoints");
  if (!eps) bad(ep_path, "required");
  if (!eps->is_array() || eps->empty()) bad(ep_path, "expected a non-empty array");
  for (std::size_t i = 0; i < eps->size(); ++i) {
    const json& e = (*eps)[i];
    const std::string p = index(ep_path, i);
    lb::endpoint_config ec;
    if (e.is_string()) {
      ec.address = e.get<std::string>();
    } else {
      expect_object(e, p);
      only(e, p, {"address", "weight"});
      const json* a = find(e, "address");
      if (!a) bad(member(p, "address"), "required");
      ec.address = get_string(*a, member(p, "address"));
      if (auto* w = find(e, "weight"))
        ec.weight = static_cast<std::uint32_t>(get_uint(*w, member(p, "weight"), 1, 1'000'000));
    }
    if (!lb::parse_endpoint(ec.address))
      bad(e.is_string() ? p : member(p, "address"),
          "expected host:port or [v6]:port, got '" + ec.address + "'");
    c.endpoints.push_back(std::move(ec));
  }
  if (auto* v = find(j, "health")) parse_health(*v, member(path, "health"), c.options.health);
  if (auto* v = find(j, "outlier")) parse_outlier(*v, member(path, "outlier"), c.options.outlier);
  if (auto* v = find(j, "panic_threshold"))
    c.options.panic_threshold = get_double(*v, member(path, "panic_threshold"), 0, 1);
  if (auto* v = find(j, "slow_start"))
    parse_slow_start(*v, member(path, "slow_start"), c.options.policy_config.slow_start);
  if (auto* v = find(j, "policy_options"))
    parse_policy_options(*v, member(path, "policy_options"), c.options.policy_config);
  validate_policy(c.options.policy_config, path);
  if (auto* v = find(j, "hash_on")) {
    const std::string p = member(path, "hash_on");
    const std::string text = get_string(*v, p);
    try {
      c.hash = lb::parse_hash_policy(text);
    } catch (const core::config_error&) {
      bad(p, "expected client_ip, path, header:NAME or cookie:NAME, got '" + text + "'");
    }
  }
  return c;
}

void parse_cache(const json& j, const std::string& path, cache_config& c) {
  expect_object(j, path);
  only(j, path, {"size", "max_entry", "eviction", "collapse_timeout", "name", "keep_stale",
                 "heuristic_percent", "max_heuristic_lifetime", "stale_if_error", "gzip"});
  c.rules.gzip = true;  // an edge compresses unless told not to
  if (auto* v = find(j, "gzip")) c.rules.gzip = get_bool(*v, member(path, "gzip"));
  const auto seconds = [&](const char* key) {
    return std::chrono::duration_cast<std::chrono::seconds>(get_duration(j.at(key), member(path, key)));
  };
  if (auto* v = find(j, "size")) {
    c.store.max_bytes = get_size(*v, member(path, "size"));
    if (c.store.max_bytes < 64 * 1024) bad(member(path, "size"), "must be at least 64KiB");
  }
  if (auto* v = find(j, "max_entry")) {
    c.store.max_entry_bytes = get_size(*v, member(path, "max_entry"));
    if (c.store.max_entry_bytes == 0 || c.store.max_entry_bytes > c.store.max_bytes)
      bad(member(path, "max_entry"), "must be between 1 byte and the cache's size");
  }
  if (auto* v = find(j, "eviction")) {
    const std::string name = get_string(*v, member(path, "eviction"));
    const auto e = cache::parse_eviction(name);
    if (!e)
      bad(member(path, "eviction"), "unknown policy '" + name +
                                        "' (one of lru, lfu, fifo, random, sieve, s3-fifo, w-tinylfu)");
    c.store.eviction = *e;
  }
  if (auto* v = find(j, "collapse_timeout"))
    c.store.collapse_timeout = get_duration(*v, member(path, "collapse_timeout"));
  if (auto* v = find(j, "name")) {
    c.rules.name = get_string(*v, member(path, "name"));
    if (c.rules.name.empty()) bad(member(path, "name"), "empty");
  }
  if (find(j, "keep_stale")) c.rules.keep_stale = seconds("keep_stale");
  if (auto* v = find(j, "heuristic_percent"))
    c.rules.rules.heuristic_percent =
        static_cast<unsigned>(get_uint(*v, member(path, "heuristic_percent"), 0, 100));
  if (find(j, "max_heuristic_lifetime"))
    c.rules.rules.max_heuristic_lifetime = seconds("max_heuristic_lifetime");
  if (find(j, "stale_if_error")) c.rules.rules.stale_if_error_default = seconds("stale_if_error");
}

route_config parse_route(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path, {"host", "path_prefix", "cluster", "strip_prefix", "prefix_rewrite", "host_rewrite",
                 "cache"});
  route_config r;
  if (auto* v = find(j, "cache")) r.cache = get_bool(*v, member(path, "cache"));
  if (auto* v = find(j, "host")) r.host = get_string(*v, member(path, "host"));
  if (r.host == "*") r.host.clear();
  if (auto* v = find(j, "path_prefix")) {
    r.path_prefix = get_string(*v, member(path, "path_prefix"));
    if (!r.path_prefix.starts_with('/')) bad(member(path, "path_prefix"), "must start with '/'");
  }
  const json* c = find(j, "cluster");
  if (!c) bad(member(path, "cluster"), "required");
  r.cluster = get_string(*c, member(path, "cluster"));
  if (auto* v = find(j, "strip_prefix")) {
    r.strip_prefix = get_string(*v, member(path, "strip_prefix"));
    if (!r.strip_prefix.starts_with('/')) bad(member(path, "strip_prefix"), "must start with '/'");
  }
  if (auto* v = find(j, "prefix_rewrite")) {
    r.prefix_rewrite = get_string(*v, member(path, "prefix_rewrite"));
    if (!r.prefix_rewrite.starts_with('/'))
      bad(member(path, "prefix_rewrite"), "must start with '/'");
  }
  if (auto* v = find(j, "host_rewrite")) {
    // "upstream": the picked host's address; any other string: that value.
    const std::string h = get_string(*v, member(path, "host_rewrite"));
    if (h.empty()) bad(member(path, "host_rewrite"), "empty");
    if (h == "upstream") {
      r.host_mode = host_header::upstream;
    } else {
      r.host_mode = host_header::fixed;
      r.host_value = h;
    }
  }
  return r;
}

void parse_proxy(const json& j, const std::string& path, reverse_proxy_options& o) {
  expect_object(j, path);
  only(j, path, {"connect_timeout", "first_byte_timeout", "idle_timeout", "total_timeout",
                 "pool_wait_timeout", "max_connections", "retries", "retry_budget",
                 "retry_on_gateway_status", "trusted_proxies", "via", "request_id_header",
                 "x_forwarded", "forwarded", "buffer_size"});
  auto dur = [&](const char* key, std::chrono::milliseconds& out) {
    if (auto* v = find(j, key)) out = get_duration(*v, member(path, key));
  };
  dur("connect_timeout", o.connect_timeout);
  dur("first_byte_timeout", o.first_byte_timeout);
  dur("idle_timeout", o.idle_timeout);
  dur("total_timeout", o.total_timeout);
  dur("pool_wait_timeout", o.pool_wait_timeout);
  if (auto* v = find(j, "max_connections"))
    o.max_connections = get_uint(*v, member(path, "max_connections"), 1, 100'000);
  if (auto* v = find(j, "retries"))
    o.max_retries = static_cast<unsigned>(get_uint(*v, member(path, "retries"), 0, 10));
  if (auto* v = find(j, "retry_budget"))
    o.retry_budget = get_double(*v, member(path, "retry_budget"), 0, 1);
  if (auto* v = find(j, "retry_on_gateway_status"))
    o.retry_on_gateway_status = get_bool(*v, member(path, "retry_on_gateway_status"));
  if (auto* v = find(j, "trusted_proxies"))
    o.forwarding.trusted_proxies = net::cidr_set(get_strings(*v, member(path, "trusted_proxies")),
                                                 member(path, "trusted_proxies"));
  if (auto* v = find(j, "via")) o.forwarding.via = get_string(*v, member(path, "via"));
  if (auto* v = find(j, "x_forwarded")) o.forwarding.x_forwarded = get_bool(*v, member(path, "x_forwarded"));
  if (auto* v = find(j, "forwarded")) o.forwarding.forwarded = get_bool(*v, member(path, "forwarded"));
  if (auto* v = find(j, "request_id_header"))
    o.request_id_header = get_string(*v, member(path, "request_id_header"));
  if (auto* v = find(j, "buffer_size"))
    o.buffer_size = get_uint(*v, member(path, "buffer_size"), 0, 64u << 20);
}

listener_config parse_listener(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path, {"address", "mode", "routes", "cluster", "allowed_hosts", "connect_ports"});
  listener_config l;
  const json* a = find(j, "address");
  if (!a) bad(member(path, "address"), "required");
  l.address = parse_listen_address(get_string(*a, member(path, "address")), member(path, "address"));
  if (auto* v = find(j, "mode")) {
    const std::string m = get_string(*v, member(path, "mode"));
    if (m == "http")
      l.mode = listener_mode::http;
    else if (m == "tcp")
      l.mode = listener_mode::tcp;
    else if (m == "forward")
      l.mode = listener_mode::forward;
    else
      bad(member(path, "mode"), "expected http, tcp or forward, got '" + m + "'");
  }
  if (l.mode != listener_mode::forward) {
    for (const char* key : {"allowed_hosts", "connect_ports"})
      if (find(j, key)) bad(member(path, key), "only for a forward listener");
  } else {
    for (const char* key : {"routes", "cluster"})
      if (find(j, key)) bad(member(path, key), "a forward listener goes where its requests say");
    if (auto* v = find(j, "allowed_hosts"))
      l.allowed_hosts = get_strings(*v, member(path, "allowed_hosts"));
    if (auto* v = find(j, "connect_ports")) {
      const std::string p = member(path, "connect_ports");
      if (!v->is_array()) bad(p, "expected an array of ports");
      l.connect_ports.clear();
      for (std::size_t i = 0; i < v->size(); ++i)
        l.connect_ports.push_back(static_cast<std::uint16_t>(get_uint((*v)[i], index(p, i), 1, 65535)));
    }
    return l;
  }
  if (l.mode == listener_mode::tcp) {
    if (find(j, "routes")) bad(member(path, "routes"), "a tcp listener has no routes; use \"cluster\"");
    const json* c = find(j, "cluster");
    if (!c) bad(member(path, "cluster"), "required for a tcp listener");
    l.cluster = get_string(*c, member(path, "cluster"));
    return l;
  }
  if (find(j, "cluster") && find(j, "routes"))
    bad(member(path, "cluster"), "give either \"cluster\" or \"routes\", not both");
  if (auto* c = find(j, "cluster")) {
    route_config r;
    r.cluster = get_string(*c, member(path, "cluster"));
    l.routes.push_back(std::move(r));
    return l;
  }
  const json* routes = find(j, "routes");
  if (!routes) bad(member(path, "routes"), "required (or \"cluster\" for a single one)");
  if (!routes->is_array() || routes->empty()) bad(member(path, "routes"), "expected a non-empty array");
  for (std::size_t i = 0; i < routes->size(); ++i)
    l.routes.push_back(parse_route((*routes)[i], index(member(path, "routes"), i)));
  return l;
}

bool segment_prefix(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix)) return false;
  if (path.size() == prefix.size() || prefix.ends_with('/')) return true;
  const char next = path[prefix.size()];
  return next == '/' || next == '?';
}

}  // namespace

cluster_config parse_cluster_config(const json& j, const std::string& path) {
  return parse_cluster(j, path);
}

void parse_proxy_options(const json& j, const std::string& path, reverse_proxy_options& options) {
  parse_proxy(j, path, options);
}

cache_config parse_cache_config(const json& j, const std::string& path) {
  cache_config c;
  parse_cache(j, path, c);
  return c;
}

const cluster_config* config::find_cluster(std::string_view name) const {
  for (const auto& c : clusters)
    if (c.options.name == name) return &c;
  return nullptr;
}

asio::ip::tcp::endpoint parse_listen_address(std::string_view text, std::string_view field) {
  auto ep = lb::parse_endpoint(text);
  if (!ep || !ep->is_ip)
    throw core::config_error(std::string(field), "expected IP:PORT or [IPv6]:PORT, got '" +
                                                     std::string(text) + "'");
  return {asio::ip::make_address(ep->host), ep->port};
}

const route_config* match_route(const std::vector<route_config>& routes, std::string_view host,
                                std::string_view path) {
  // The Host field may carry a port; routes name hosts without one.
  std::string_view bare = host;
  if (!bare.starts_with('[')) {
    if (auto colon = bare.rfind(':'); colon != std::string_view::npos) bare = bare.substr(0, colon);
  } else if (auto close = bare.find(']'); close != std::string_view::npos) {
    bare = bare.substr(0, close + 1);
  }
  const route_config* best = nullptr;
  int best_rank = -1;
  for (const auto& r : routes) {
    const bool host_ok = r.host.empty() || codec::iequals(r.host, bare);
    if (!host_ok || !segment_prefix(path, r.path_prefix)) continue;
    // A route naming the host beats a catch-all one; then the longer prefix.
    const int rank = (r.host.empty() ? 0 : 1 << 20) + static_cast<int>(r.path_prefix.size());
    if (rank > best_rank) {
      best = &r;
      best_rank = rank;
    }
  }
  return best;
}

config parse_config(const json& j) {
  expect_object(j, "");
  only(j, "", {"workers", "admin", "max_request_body", "proxy", "cache", "listeners", "clusters"});
  config c;
  if (auto* v = find(j, "workers")) c.workers = get_uint(*v, "workers", 0, 256);
  if (auto* v = find(j, "admin")) c.admin = parse_listen_address(get_string(*v, "admin"), "admin");
  if (auto* v = find(j, "max_request_body"))
    c.max_request_body = get_uint(*v, "max_request_body", 0, std::uint64_t{1} << 50);
  if (auto* v = find(j, "proxy")) parse_proxy(*v, "proxy", c.proxy);
  if (auto* v = find(j, "cache")) parse_cache(*v, "cache", c.cache.emplace());

  // Clusters: required unless every listener is a forward proxy (checked
  // below, where the listeners name them).
  static const json no_clusters = json::array();
  const json* clusters = find(j, "clusters");
  if (clusters && (!clusters->is_array() || clusters->empty()))
    bad("clusters", "expected a non-empty array");
  if (!clusters) clusters = &no_clusters;
  std::set<std::string> names;
  for (std::size_t i = 0; i < clusters->size(); ++i) {
    c.clusters.push_back(parse_cluster((*clusters)[i], index("clusters", i)));
    if (!names.insert(c.clusters.back().options.name).second)
      bad(index("clusters", i) + ".name", "a second cluster named '" +
                                              c.clusters.back().options.name + "'");
  }

  const json* listeners = find(j, "listeners");
  if (!listeners) bad("listeners", "required");
  if (!listeners->is_array() || listeners->empty()) bad("listeners", "expected a non-empty array");
  std::set<asio::ip::tcp::endpoint> addresses;
  if (c.admin) addresses.insert(*c.admin);
  for (std::size_t i = 0; i < listeners->size(); ++i) {
    const std::string p = index("listeners", i);
    listener_config l = parse_listener((*listeners)[i], p);
    if (!addresses.insert(l.address).second)
      bad(p + ".address", "address already used by another listener or the admin endpoint");
    if (l.mode != listener_mode::forward && names.empty()) bad("clusters", "required");
    if (l.mode == listener_mode::tcp && !names.contains(l.cluster))
      bad(p + ".cluster", "no cluster named '" + l.cluster + "'");
    for (std::size_t r = 0; r < l.routes.size(); ++r)
      if (!names.contains(l.routes[r].cluster))
        bad(find((*listeners)[i], "routes") ? index(p + ".routes", r) + ".cluster" : p + ".cluster",
            "no cluster named '" + l.routes[r].cluster + "'");
    c.listeners.push_back(std::move(l));
  }
  return c;
}

config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw core::config_error("config", "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw core::config_error("config", path + ": " + e.what());
  }
  return parse_config(j);
}

}  // namespace trellis::proxy
