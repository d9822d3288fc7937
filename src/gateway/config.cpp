#include "trellis/gateway/config.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "trellis/core/config.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {

namespace {

using json = nlohmann::json;
using namespace core::config;

std::string read_file(const std::string& path, const std::string& field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(field, "cannot read '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `check` (a constructor that validates options and names fields
// relative to its own section), with `path` put before the field it names.
template <class Check>
void checked_under(const std::string& path, Check check) {
  try {
    check();
  } catch (const core::config_error& e) {
    const std::string& f = e.field();
    // "cors.allow_origins[1]" -> "routes[0].cors.allow_origins[1]"
    const auto dot = f.find_first_of(".[");
    std::string_view what = e.what();
    if (what.starts_with(f + ": ")) what.remove_prefix(f.size() + 2);
    fail(dot == std::string::npos ? path : path + f.substr(dot), std::string(what));
  }
}

std::chrono::seconds get_seconds(const json& j, const std::string& path) {
  return std::chrono::duration_cast<std::chrono::seconds>(get_duration(j, path));
}

listener_config parse_listener(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path, {"address", "tls"});
  listener_config l;
  const json* a = find(j, "address");
  if (a == nullptr) fail(member(path, "address"), "is required");
  l.address =
      proxy::parse_listen_address(get_string(*a, member(path, "address")), member(path, "address"));
  if (const json* t = find(j, "tls")) {
    const auto tp = member(path, "tls");
    expect_object(*t, tp);
    only(*t, tp, {"cert", "key"});
    tls_files f;
    for (const char* k : {"cert", "key"}) {
      const json* v = find(*t, k);
      if (v == nullptr) fail(member(tp, k), "is required");
      const auto file = get_string(*v, member(tp, k));
      (void)read_file(file, member(tp, k));  // there and readable, now rather than at start
      (std::string_view(k) == "cert" ? f.cert : f.key) = file;
    }
    l.tls = std::move(f);
  }
  return l;
}

redis_config parse_redis(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path, {"address", "connect_timeout", "command_timeout"});
  redis_config r;
  const json* a = find(j, "address");
  if (a == nullptr) fail(member(path, "address"), "is required");
  r.address =
      proxy::parse_listen_address(get_string(*a, member(path, "address")), member(path, "address"));
  if (const json* v = find(j, "connect_timeout"))
    r.connect_timeout = get_duration(*v, member(path, "connect_timeout"));
  if (const json* v = find(j, "command_timeout"))
    r.command_timeout = get_duration(*v, member(path, "command_timeout"));
  return r;
}

log_writer_options parse_access_log(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path, {"path", "max_buffered"});
  log_writer_options o;
  if (const json* v = find(j, "path")) o.path = get_string(*v, member(path, "path"));
  if (const json* v = find(j, "max_buffered"))
    o.max_buffered_bytes = get_size(*v, member(path, "max_buffered"));
  return o;
}

void parse_jwt(const json& j, const std::string& path, auth_config& a) {
  expect_object(j, path);
  only(j, path,
       {"keys", "jwks_file", "issuer", "audiences", "leeway", "require_exp", "roles_claim",
        "claims"});
  jwt_key_set keys;
  const json* k = find(j, "keys");
  const json* f = find(j, "jwks_file");
  if ((k == nullptr) == (f == nullptr))
    fail(member(path, "keys"), "give either \"keys\" (JWKs) or \"jwks_file\"");
  if (k != nullptr) {
    if (!k->is_array() || k->empty())
      fail(member(path, "keys"), "expected a non-empty array of JWKs");
    for (std::size_t i = 0; i < k->size(); ++i)
      keys.add(jwt_key::from_jwk((*k)[i], index(member(path, "keys"), i)));
  } else {
    keys = jwt_key_set::from_jwks_file(get_string(*f, member(path, "jwks_file")),
                                       member(path, "jwks_file"));
  }
  jwt_verify_options o;
  if (const json* v = find(j, "issuer")) o.issuer = get_string(*v, member(path, "issuer"));
  if (const json* v = find(j, "audiences"))
    o.audiences = get_strings(*v, member(path, "audiences"));
  if (const json* v = find(j, "leeway")) o.leeway = get_seconds(*v, member(path, "leeway"));
  if (const json* v = find(j, "require_exp"))
    o.require_exp = get_bool(*v, member(path, "require_exp"));
  if (const json* v = find(j, "roles_claim"))
    a.jwt_options.roles_claim = get_string(*v, member(path, "roles_claim"));
  if (const json* v = find(j, "claims"))
    a.jwt_options.claim_attributes = get_strings(*v, member(path, "claims"));
  a.jwt = std::make_shared<const jwt_verifier>(std::move(keys), std::move(o));
}

void parse_auth(const json& j, const std::string& path, auth_config& a) {
  expect_object(j, path);
  only(j, path, {"realm", "jwt", "api_keys", "api_key", "basic"});
  if (const json* v = find(j, "realm")) a.realm = get_string(*v, member(path, "realm"));
  if (const json* v = find(j, "jwt")) parse_jwt(*v, member(path, "jwt"), a);
  if (const json* v = find(j, "api_keys")) {
    const auto p = member(path, "api_keys");
    if (!v->is_array()) fail(p, "expected an array");
    auto& keys = a.api_keys.emplace();
    for (std::size_t i = 0; i < v->size(); ++i) {
      const auto ep = index(p, i);
      const json& e = (*v)[i];
      expect_object(e, ep);
      only(e, ep, {"name", "sha256", "scopes", "roles"});
      api_key_entry k;
      if (const json* x = find(e, "name")) k.name = get_string(*x, member(ep, "name"));
      if (const json* x = find(e, "sha256")) k.sha256 = get_string(*x, member(ep, "sha256"));
      if (const json* x = find(e, "scopes")) k.scopes = get_strings(*x, member(ep, "scopes"));
      if (const json* x = find(e, "roles")) k.roles = get_strings(*x, member(ep, "roles"));
      keys.push_back(std::move(k));
    }
  }
  if (const json* v = find(j, "api_key")) {
    const auto p = member(path, "api_key");
    expect_object(*v, p);
    only(*v, p, {"header", "allow_query", "query_param"});
    if (const json* x = find(*v, "header")) a.api_key.header = get_string(*x, member(p, "header"));
    if (const json* x = find(*v, "allow_query"))
      a.api_key.allow_query = get_bool(*x, member(p, "allow_query"));
    if (const json* x = find(*v, "query_param"))
      a.api_key.query_param = get_string(*x, member(p, "query_param"));
  }
  if (const json* v = find(j, "basic")) {
    const auto p = member(path, "basic");
    if (!v->is_array()) fail(p, "expected an array");
    auto& users = a.basic.emplace();
    for (std::size_t i = 0; i < v->size(); ++i) {
      const auto ep = index(p, i);
      const json& e = (*v)[i];
      expect_object(e, ep);
      only(e, ep, {"name", "password_hash", "scopes", "roles"});
      basic_user u;
      if (const json* x = find(e, "name")) u.name = get_string(*x, member(ep, "name"));
      if (const json* x = find(e, "password_hash"))
        u.password_hash = get_string(*x, member(ep, "password_hash"));
      if (const json* x = find(e, "scopes")) u.scopes = get_strings(*x, member(ep, "scopes"));
      if (const json* x = find(e, "roles")) u.roles = get_strings(*x, member(ep, "roles"));
      users.push_back(std::move(u));
    }
  }
}

rate_limit_config parse_rate_limit(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path,
       {"policies", "key", "on_missing_key", "fail_open", "headers_on_success", "ipv6_prefix",
        "store"});
  rate_limit_config c;
  auto& o = c.options;
  const json* ps = find(j, "policies");
  const auto pp = member(path, "policies");
  if (ps == nullptr || !ps->is_array() || ps->empty())
    fail(pp, "expected a non-empty array of policies");
  for (std::size_t i = 0; i < ps->size(); ++i) {
    const auto ep = index(pp, i);
    const json& e = (*ps)[i];
    expect_object(e, ep);
    only(e, ep, {"name", "algorithm", "limit", "period", "burst"});
    rate_limit_policy p;
    if (const json* x = find(e, "name")) p.name = get_string(*x, member(ep, "name"));
    if (const json* x = find(e, "algorithm")) {
      const auto a = get_string(*x, member(ep, "algorithm"));
      if (a == "token_bucket")
        p.algorithm = rate_limit_algorithm::token_bucket;
      else if (a == "sliding_window")
        p.algorithm = rate_limit_algorithm::sliding_window;
      else
        fail(member(ep, "algorithm"), "expected token_bucket or sliding_window, got '" + a + "'");
    }
    if (const json* x = find(e, "limit"))
      p.limit = static_cast<std::int64_t>(get_uint(*x, member(ep, "limit"), 1, 1'000'000'000));
    if (const json* x = find(e, "period"))
      p.period = std::chrono::duration_cast<std::chrono::microseconds>(
          get_duration(*x, member(ep, "period")));
    if (const json* x = find(e, "burst"))
      p.burst = static_cast<std::int64_t>(get_uint(*x, member(ep, "burst"), 0, 1'000'000'000));
    validate(p, ep);
    o.policies.push_back(std::move(p));
  }
  if (const json* x = find(j, "key")) {
    const auto k = get_string(*x, member(path, "key"));
    if (k == "client_ip")
      o.key = rate_limit_key::client_ip;
    else if (k == "subject")
      o.key = rate_limit_key::subject;
    else if (k.starts_with("header:") && k.size() > 7) {
      o.key = rate_limit_key::header;
      o.header = k.substr(7);
    } else {
      fail(member(path, "key"), "expected client_ip, subject or header:NAME, got '" + k + "'");
    }
  }
  if (const json* x = find(j, "on_missing_key")) {
    const auto k = get_string(*x, member(path, "on_missing_key"));
    if (k == "shared")
      o.on_missing_key = missing_key_action::shared;
    else if (k == "refuse")
      o.on_missing_key = missing_key_action::refuse;
    else if (k == "allow")
      o.on_missing_key = missing_key_action::allow;
    else
      fail(member(path, "on_missing_key"), "expected shared, refuse or allow, got '" + k + "'");
  }
  if (const json* x = find(j, "fail_open")) o.fail_open = get_bool(*x, member(path, "fail_open"));
  if (const json* x = find(j, "headers_on_success"))
    o.headers_on_success = get_bool(*x, member(path, "headers_on_success"));
  if (const json* x = find(j, "ipv6_prefix"))
    o.ipv6_prefix = static_cast<unsigned>(get_uint(*x, member(path, "ipv6_prefix"), 1, 128));
  if (const json* x = find(j, "store")) {
    const auto s = get_string(*x, member(path, "store"));
    if (s == "local")
      c.store = store_kind::local;
    else if (s == "redis")
      c.store = store_kind::redis;
    else
      fail(member(path, "store"), "expected local or redis, got '" + s + "'");
  }
  return c;
}

cors_options parse_cors(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path,
       {"allow_origins", "allow_methods", "allow_headers", "expose_headers", "allow_credentials",
        "max_age"});
  cors_options o;
  if (const json* x = find(j, "allow_origins"))
    o.allow_origins = get_strings(*x, member(path, "allow_origins"));
  if (const json* x = find(j, "allow_methods"))
    o.allow_methods = get_strings(*x, member(path, "allow_methods"));
  if (const json* x = find(j, "allow_headers"))
    o.allow_headers = get_strings(*x, member(path, "allow_headers"));
  if (const json* x = find(j, "expose_headers"))
    o.expose_headers = get_strings(*x, member(path, "expose_headers"));
  if (const json* x = find(j, "allow_credentials"))
    o.allow_credentials = get_bool(*x, member(path, "allow_credentials"));
  if (const json* x = find(j, "max_age")) o.max_age = get_seconds(*x, member(path, "max_age"));
  return o;
}

circuit_breaker_options parse_breaker(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path,
       {"consecutive_failures", "failure_rate", "minimum_requests", "window", "open_duration",
        "backoff", "max_open_duration", "max_probes", "success_threshold"});
  circuit_breaker_options o;
  if (const json* x = find(j, "consecutive_failures"))
    o.consecutive_failures = static_cast<std::uint32_t>(
        get_uint(*x, member(path, "consecutive_failures"), 0, 1'000'000));
  if (const json* x = find(j, "failure_rate"))
    o.failure_rate = get_double(*x, member(path, "failure_rate"), 0, 100);
  if (const json* x = find(j, "minimum_requests"))
    o.minimum_requests =
        static_cast<std::uint32_t>(get_uint(*x, member(path, "minimum_requests"), 1, 1'000'000));
  if (const json* x = find(j, "window")) o.window = get_duration(*x, member(path, "window"));
  if (const json* x = find(j, "open_duration"))
    o.open_duration = get_duration(*x, member(path, "open_duration"));
  if (const json* x = find(j, "backoff"))
    o.backoff = get_double(*x, member(path, "backoff"), 1, 100);
  if (const json* x = find(j, "max_open_duration"))
    o.max_open_duration = get_duration(*x, member(path, "max_open_duration"));
  if (const json* x = find(j, "max_probes"))
    o.max_probes = static_cast<std::uint32_t>(get_uint(*x, member(path, "max_probes"), 1, 1000));
  if (const json* x = find(j, "success_threshold"))
    o.success_threshold =
        static_cast<std::uint32_t>(get_uint(*x, member(path, "success_threshold"), 1, 1000));
  validate(o, path);
  return o;
}

std::vector<header_rule> parse_header_rules(const json& j, const std::string& path) {
  if (!j.is_array()) fail(path, "expected an array of header rules");
  std::vector<header_rule> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto ep = index(path, i);
    const json& e = j[i];
    expect_object(e, ep);
    only(e, ep, {"add", "set", "remove", "rename", "value", "to"});
    const int actions = static_cast<int>(e.contains("add")) + static_cast<int>(e.contains("set")) +
                        static_cast<int>(e.contains("remove")) +
                        static_cast<int>(e.contains("rename"));
    if (actions != 1) fail(ep, "expected exactly one of add, set, remove, rename");
    if (const json* x = find(e, "add")) {
      if (!e.contains("value")) fail(member(ep, "value"), "is required with add");
      out.push_back(header_rule::add(get_string(*x, member(ep, "add")),
                                     get_string(e["value"], member(ep, "value"))));
    } else if (const json* y = find(e, "set")) {
      if (!e.contains("value")) fail(member(ep, "value"), "is required with set");
      out.push_back(header_rule::set(get_string(*y, member(ep, "set")),
                                     get_string(e["value"], member(ep, "value"))));
    } else if (const json* r = find(e, "remove")) {
      if (e.contains("value") || e.contains("to")) fail(ep, "remove takes no value");
      out.push_back(header_rule::remove(get_string(*r, member(ep, "remove"))));
    } else {
      if (!e.contains("to")) fail(member(ep, "to"), "is required with rename");
      out.push_back(header_rule::rename(get_string(e["rename"], member(ep, "rename")),
                                        get_string(e["to"], member(ep, "to"))));
    }
  }
  return out;
}

std::vector<http::method> parse_methods(const json& j, const std::string& path) {
  std::vector<http::method> out;
  const auto names = get_strings(j, path);
  if (names.empty()) fail(path, "expected at least one method");
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto m = http::parse_method(names[i]);
    if (m == http::method::other || m == http::method::connect)
      fail(index(path, i),
           "expected GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, got '" + names[i] + "'");
    out.push_back(m);
  }
  return out;
}

compose_call_config parse_compose_call(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path, {"name", "cluster", "path", "timeout", "required"});
  compose_call_config c;
  for (const char* k : {"name", "cluster", "path"})
    if (!j.contains(k)) fail(member(path, k), "is required");
  c.name = get_string(j["name"], member(path, "name"));
  c.cluster = get_string(j["cluster"], member(path, "cluster"));
  c.path = get_string(j["path"], member(path, "path"));
  if (const json* x = find(j, "timeout")) c.timeout = get_duration(*x, member(path, "timeout"));
  if (const json* x = find(j, "required")) c.required = get_bool(*x, member(path, "required"));
  return c;
}

// "host": one name or a list. Names are compared with the Host field
// lower-cased and without its port, so they must be written that way;
// "*." in front matches any subdomain (not the name itself, as in TLS
// certificates).
std::vector<std::string> parse_hosts(const json& j, const std::string& path) {
  std::vector<std::string> hosts;
  if (j.is_string()) {
    hosts.push_back(j.get<std::string>());
  } else if (j.is_array() && !j.empty()) {
    hosts = get_strings(j, path);
  } else {
    fail(path, "expected a host name or a non-empty array of them");
  }
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const std::string at = j.is_string() ? path : index(path, i);
    std::string_view h = hosts[i];
    if (h.starts_with("*.")) h.remove_prefix(2);
    bool ok = !h.empty() && h.size() <= 253 && !h.starts_with('.') && !h.ends_with('.') &&
              h.find("..") == std::string_view::npos;
    for (char c : h)
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
    if (!ok)
      fail(at,
           "'" + hosts[i] + "' is not a lower-case host name without a port (\"*.\" may lead it)");
    for (std::size_t k = 0; k < i; ++k)
      if (hosts[k] == hosts[i]) fail(at, "'" + hosts[i] + "' is listed twice");
  }
  return hosts;
}

sessions_config parse_sessions(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path,
       {"store", "cookie", "secure", "same_site", "idle_timeout", "absolute_timeout",
        "max_sessions", "logout_path"});
  sessions_config c;
  if (const json* x = find(j, "store")) {
    const auto s = get_string(*x, member(path, "store"));
    if (s == "memory")
      c.store = store_kind::local;
    else if (s == "redis")
      c.store = store_kind::redis;
    else
      fail(member(path, "store"), "expected memory or redis, got '" + s + "'");
  }
  if (const json* x = find(j, "cookie"))
    c.options.cookie_name = get_string(*x, member(path, "cookie"));
  if (const json* x = find(j, "secure")) c.options.secure = get_bool(*x, member(path, "secure"));
  if (const json* x = find(j, "same_site")) {
    const auto s = get_string(*x, member(path, "same_site"));
    if (s == "strict")
      c.options.same_site = http::same_site_policy::strict;
    else if (s == "lax")
      c.options.same_site = http::same_site_policy::lax;
    else if (s == "none")
      c.options.same_site = http::same_site_policy::none;
    else
      fail(member(path, "same_site"), "expected strict, lax or none, got '" + s + "'");
  }
  if (const json* x = find(j, "idle_timeout"))
    c.options.idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(
        get_duration(*x, member(path, "idle_timeout")));
  if (const json* x = find(j, "absolute_timeout"))
    c.options.absolute_timeout = std::chrono::duration_cast<std::chrono::seconds>(
        get_duration(*x, member(path, "absolute_timeout")));
  if (const json* x = find(j, "max_sessions"))
    c.max_sessions = get_uint(*x, member(path, "max_sessions"), 1, 100'000'000);
  if (const json* x = find(j, "logout_path")) {
    c.logout_path = get_string(*x, member(path, "logout_path"));
    if (!c.logout_path.starts_with('/')) fail(member(path, "logout_path"), "must start with '/'");
  }
  // The middleware's own checks (a cookie name that is not a token, a
  // SameSite=None cookie that is not Secure, timeouts out of order),
  // reported under this section's names.
  try {
    session_middleware probe(std::make_shared<memory_session_store>(), c.options);
  } catch (const core::config_error& e) {
    std::string field(e.field());
    if (field.starts_with("session.")) field = field.substr(8);
    if (field == "cookie_name") field = "cookie";
    fail(member(path, field), e.what());
  }
  return c;
}

route_config parse_route(const json& j, const std::string& path) {
  expect_object(j, path);
  only(j, path,
       {"name",
        "host",
        "path",
        "methods",
        "cluster",
        "compose",
        "strip_prefix",
        "prefix_rewrite",
        "auth",
        "auth_optional",
        "session",
        "require",
        "rate_limit",
        "cors",
        "ip",
        "circuit_breaker",
        "max_concurrent",
        "compress",
        "request_headers",
        "response_headers",
        "max_body",
        "content_types",
        "cache"});
  route_config r;
  const json* p = find(j, "path");
  if (p == nullptr) fail(member(path, "path"), "is required");
  r.path = get_string(*p, member(path, "path"));
  if (!r.path.starts_with('/')) fail(member(path, "path"), "must start with '/'");
  r.name = r.path;
  if (const json* x = find(j, "name")) r.name = get_string(*x, member(path, "name"));
  if (const json* x = find(j, "methods")) r.methods = parse_methods(*x, member(path, "methods"));
  if (const json* x = find(j, "host")) r.hosts = parse_hosts(*x, member(path, "host"));
  if (const json* x = find(j, "cluster")) r.cluster = get_string(*x, member(path, "cluster"));
  if (const json* x = find(j, "compose")) {
    const auto cp = member(path, "compose");
    if (!x->is_array() || x->empty()) fail(cp, "expected a non-empty array of calls");
    for (std::size_t i = 0; i < x->size(); ++i)
      r.compose.push_back(parse_compose_call((*x)[i], index(cp, i)));
  }
  if (r.cluster.empty() == r.compose.empty())
    fail(member(path, "cluster"), "a route needs either \"cluster\" or \"compose\"");
  if (const json* x = find(j, "strip_prefix"))
    r.strip_prefix = get_string(*x, member(path, "strip_prefix"));
  if (const json* x = find(j, "prefix_rewrite"))
    r.prefix_rewrite = get_string(*x, member(path, "prefix_rewrite"));
  if (const json* x = find(j, "auth")) {
    r.auth = get_strings(*x, member(path, "auth"));
    for (std::size_t i = 0; i < r.auth.size(); ++i)
      if (r.auth[i] != "jwt" && r.auth[i] != "api_key" && r.auth[i] != "basic" &&
          r.auth[i] != "session")
        fail(index(member(path, "auth"), i),
             "expected jwt, api_key, basic or session, got '" + r.auth[i] + "'");
  }
  if (const json* x = find(j, "session")) r.session = get_bool(*x, member(path, "session"));
  if (const json* x = find(j, "auth_optional"))
    r.auth_optional = get_bool(*x, member(path, "auth_optional"));
  if (const json* x = find(j, "require")) {
    const auto rp = member(path, "require");
    expect_object(*x, rp);
    only(*x, rp, {"scopes", "roles", "claims"});
    requirement q;
    if (const json* y = find(*x, "scopes")) q.scopes = get_strings(*y, member(rp, "scopes"));
    if (const json* y = find(*x, "roles")) q.roles = get_strings(*y, member(rp, "roles"));
    if (const json* y = find(*x, "claims")) {
      expect_object(*y, member(rp, "claims"));
      for (const auto& [k, v] : y->items())
        q.claims.emplace_back(k, get_string(v, member(member(rp, "claims"), k)));
    }
    r.require = std::move(q);
  }
  if (r.require && r.auth.empty())
    fail(member(path, "require"), "needs \"auth\": who is required of is never known without it");
  if (const json* x = find(j, "rate_limit"))
    r.rate_limit = get_string(*x, member(path, "rate_limit"));
  if (const json* x = find(j, "cors")) {
    r.cors = parse_cors(*x, member(path, "cors"));
    checked_under(member(path, "cors"), [&] { cors check(*r.cors); });
  }
  if (const json* x = find(j, "ip")) {
    const auto ip = member(path, "ip");
    expect_object(*x, ip);
    only(*x, ip, {"allow", "deny"});
    ip_filter_options o;
    if (const json* y = find(*x, "allow")) o.allow = get_strings(*y, member(ip, "allow"));
    if (const json* y = find(*x, "deny")) o.deny = get_strings(*y, member(ip, "deny"));
    checked_under(ip, [&] { ip_filter check(o); });
    r.ip = std::move(o);
  }
  if (const json* x = find(j, "circuit_breaker"))
    r.circuit_breaker = parse_breaker(*x, member(path, "circuit_breaker"));
  if (const json* x = find(j, "max_concurrent"))
    r.max_concurrent = get_uint(*x, member(path, "max_concurrent"), 1, 1'000'000);
  if (const json* x = find(j, "compress")) {
    const auto cp = member(path, "compress");
    if (x->is_boolean()) {
      if (x->get<bool>()) r.compression.emplace();
    } else {
      expect_object(*x, cp);
      only(*x, cp, {"min_size", "content_types", "level"});
      compression_options o;
      if (const json* y = find(*x, "min_size")) o.min_size = get_size(*y, member(cp, "min_size"));
      if (const json* y = find(*x, "content_types"))
        o.content_types = get_strings(*y, member(cp, "content_types"));
      if (const json* y = find(*x, "level"))
        o.encoder.level = static_cast<int>(get_uint(*y, member(cp, "level"), 1, 9));
      validate(o, cp);
      r.compression = std::move(o);
    }
  }
  if (const json* x = find(j, "request_headers"))
    r.request_headers = parse_header_rules(*x, member(path, "request_headers"));
  if (const json* x = find(j, "response_headers"))
    r.transform.response_headers = parse_header_rules(*x, member(path, "response_headers"));
  if (const json* x = find(j, "max_body"))
    r.transform.max_request_body = get_size(*x, member(path, "max_body"));
  if (const json* x = find(j, "content_types"))
    r.transform.allowed_content_types = get_strings(*x, member(path, "content_types"));
  // The request's rules are checked like the response's (a field name that
  // is a token, no framing fields), then named as what they are.
  transform_options request_rules;
  request_rules.response_headers = r.request_headers;
  try {
    validate(request_rules, "t");
  } catch (const core::config_error& e) {
    constexpr std::string_view as_response = "t.response_headers";
    std::string_view what = e.what();
    if (what.starts_with(e.field() + ": ")) what.remove_prefix(e.field().size() + 2);
    const std::string& f = e.field();
    fail(member(path, "request_headers") +
             (f.starts_with(as_response) ? f.substr(as_response.size()) : std::string()),
         std::string(what));
  }
  validate(r.transform, path);
  if (const json* x = find(j, "cache")) r.cache = get_bool(*x, member(path, "cache"));
  return r;
}

}  // namespace

const proxy::cluster_config* config::find_cluster(std::string_view name) const {
  for (const auto& c : clusters)
    if (c.options.name == name) return &c;
  return nullptr;
}

config parse_config(const json& j) {
  expect_object(j, "");
  only(j, "",
       {"workers", "listeners", "admin", "redis", "access_log", "max_request_body", "proxy",
        "cache", "auth", "sessions", "rate_limits", "clusters", "routes"});
  config c;
  if (const json* x = find(j, "workers")) c.workers = get_uint(*x, "workers", 0, 1024);
  const json* ls = find(j, "listeners");
  if (ls == nullptr || !ls->is_array() || ls->empty())
    fail("listeners", "expected a non-empty array of listeners");
  for (std::size_t i = 0; i < ls->size(); ++i) {
    auto l = parse_listener((*ls)[i], index("listeners", i));
    for (const auto& other : c.listeners)
      if (other.address == l.address)
        fail(member(index("listeners", i), "address"), "two listeners on one address");
    c.listeners.push_back(std::move(l));
  }
  if (const json* x = find(j, "admin"))
    c.admin = proxy::parse_listen_address(get_string(*x, "admin"), "admin");
  if (const json* x = find(j, "redis")) c.redis = parse_redis(*x, "redis");
  if (const json* x = find(j, "access_log")) c.access_log = parse_access_log(*x, "access_log");
  if (const json* x = find(j, "max_request_body"))
    c.max_request_body = get_size(*x, "max_request_body");
  if (const json* x = find(j, "proxy")) proxy::parse_proxy_options(*x, "proxy", c.proxy);
  if (const json* x = find(j, "cache")) c.cache = proxy::parse_cache_config(*x, "cache");
  if (const json* x = find(j, "auth")) parse_auth(*x, "auth", c.auth);
  if (const json* x = find(j, "sessions")) {
    c.sessions = parse_sessions(*x, "sessions");
    if (c.sessions->store == store_kind::redis && !j.contains("redis"))
      fail("sessions.store", "\"redis\" needs a top-level \"redis\" section");
  }
  if (const json* x = find(j, "rate_limits")) {
    expect_object(*x, "rate_limits");
    for (const auto& [name, v] : x->items()) {
      auto rl = parse_rate_limit(v, member("rate_limits", name));
      if (rl.store == store_kind::redis && !j.contains("redis"))
        fail(member(member("rate_limits", name), "store"),
             "\"redis\" needs a top-level \"redis\" section");
      c.rate_limits.emplace(name, std::move(rl));
    }
  }
  const json* cs = find(j, "clusters");
  if (cs == nullptr || !cs->is_array()) fail("clusters", "expected an array of clusters");
  for (std::size_t i = 0; i < cs->size(); ++i) {
    auto cl = proxy::parse_cluster_config((*cs)[i], index("clusters", i));
    if (c.find_cluster(cl.options.name) != nullptr)
      fail(member(index("clusters", i), "name"), "two clusters named '" + cl.options.name + "'");
    c.clusters.push_back(std::move(cl));
  }
  const json* rs = find(j, "routes");
  if (rs == nullptr || !rs->is_array() || rs->empty())
    fail("routes", "expected a non-empty array of routes");
  std::set<std::string> names;
  for (std::size_t i = 0; i < rs->size(); ++i) {
    const auto rp = index("routes", i);
    auto r = parse_route((*rs)[i], rp);
    if (!names.insert(r.name).second) fail(member(rp, "name"), "two routes named '" + r.name + "'");
    if (!r.cluster.empty() && c.find_cluster(r.cluster) == nullptr)
      fail(member(rp, "cluster"), "no cluster named '" + r.cluster + "'");
    for (std::size_t k = 0; k < r.compose.size(); ++k)
      if (c.find_cluster(r.compose[k].cluster) == nullptr)
        fail(member(index(member(rp, "compose"), k), "cluster"),
             "no cluster named '" + r.compose[k].cluster + "'");
    if (!r.rate_limit.empty() && !c.rate_limits.contains(r.rate_limit))
      fail(member(rp, "rate_limit"), "no rate limit named '" + r.rate_limit + "'");
    for (std::size_t k = 0; k < r.auth.size(); ++k) {
      const auto& s = r.auth[k];
      if (s == "session") {
        if (!r.session)
          fail(index(member(rp, "auth"), k), "\"session\" needs \"session\": true on the route");
        continue;
      }
      const bool known = (s == "jwt" && c.auth.jwt) || (s == "api_key" && c.auth.api_keys) ||
                         (s == "basic" && c.auth.basic);
      if (!known) fail(index(member(rp, "auth"), k), "the \"auth\" section configures no " + s);
    }
    if (r.session && !c.sessions)
      fail(member(rp, "session"), "needs a top-level \"sessions\" section");
    c.routes.push_back(std::move(r));
  }
  return c;
}

config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw core::config_error("config", "cannot read '" + path + "'");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    throw core::config_error("config", path + ": " + e.what());
  }
  return parse_config(j);
}

std::string expand_attributes(std::string_view value, const http::request& req) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '$' || i + 1 >= value.size()) {
      out += value[i];
      continue;
    }
    if (value[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (value[i + 1] != '{') {
      out += value[i];
      continue;
    }
    const auto close = value.find('}', i + 2);
    if (close == std::string_view::npos) {
      out.append(value.substr(i));
      break;
    }
    out.append(req.attribute(value.substr(i + 2, close - i - 2)));
    i = close;
  }
  return out;
}

}  // namespace trellis::gateway
