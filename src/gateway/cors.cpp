#include "trellis/gateway/cors.hpp"

#include <algorithm>
#include <asio/ip/address_v6.hpp>
#include <optional>
#include <string>
#include <utility>

#include "trellis/codec/http/fields.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"

namespace trellis::gateway {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.origin"; }
  std::string message(int v) const override {
    switch (static_cast<origin_error>(v)) {
      case origin_error::malformed: return "not an origin (scheme://host[:port])";
      case origin_error::bad_scheme: return "bad scheme in origin";
      case origin_error::bad_host: return "bad host in origin";
      case origin_error::bad_port: return "bad port in origin";
    }
    return "unknown origin error";
  }
};

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lower(c);
  return out;
}

bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(element) for each non-empty element of a comma-separated list
// (RFC 9110 §5.6.1), whitespace around it removed; stops when f returns
// false and returns false then.
template <class F>
bool for_each_element(std::string_view list, F f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view element = trim(list.substr(0, comma));
    if (!element.empty() && !f(element)) return false;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return true;
}

// The default port of the schemes that have one (URL standard,
// "special scheme"); 0 for others.
std::uint16_t default_port(std::string_view scheme) noexcept {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  if (scheme == "ftp") return 21;
  return 0;
}

// A DNS-style host: dot-separated non-empty labels of letters, digits, '-'
// and '_' (what browsers put in Origin after IDNA, so non-ASCII is never
// there). Lower-cased into `out`.
bool parse_domain(std::string_view host, std::string& out) {
  if (host.empty() || host.front() == '.' || host.back() == '.') return false;
  out.clear();
  char prev = '.';
  for (const char c : host) {
    if (c == '.') {
      if (prev == '.') return false;  // an empty label
    } else if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') {
      return false;
    }
    out += lower(c);
    prev = c;
  }
  return true;
}

}  // namespace

const std::error_category& origin_category() noexcept {
  static const category instance;
  return instance;
}

std::string web_origin::serialize() const {
  std::string out = scheme + "://" + host;
  if (port != 0) out += ":" + std::to_string(port);
  return out;
}

result<web_origin> parse_origin(std::string_view text) {
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return unexpected(origin_error::malformed);
  web_origin o;

  const std::string_view scheme = text.substr(0, sep);
  if (scheme.empty() || !is_alpha(scheme.front())) return unexpected(origin_error::bad_scheme);
  for (const char c : scheme)
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
      return unexpected(origin_error::bad_scheme);
  o.scheme = to_lower(scheme);

  // An origin is scheme, host and port only: a path (even "/"), query,
  // fragment or userinfo means this is a URL, not an origin, and a
  // configuration that writes one is wrong in a way worth saying.
  std::string_view rest = text.substr(sep + 3);
  if (rest.find_first_of("/?#@\\") != std::string_view::npos)
    return unexpected(origin_error::malformed);
  if (rest.empty()) return unexpected(origin_error::bad_host);

  std::string_view port;
  if (rest.front() == '[') {
    // An IPv6 literal (RFC 3986 §3.2.2), written back compressed and
    // lower-case as the URL standard serialises it. Zone identifiers never
    // appear in an origin.
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return unexpected(origin_error::bad_host);
    const std::string literal(rest.substr(1, close - 1));
    if (literal.find('%') != std::string::npos) return unexpected(origin_error::bad_host);
    std::error_code ec;
    const auto a = asio::ip::make_address_v6(literal, ec);
    if (ec) return unexpected(origin_error::bad_host);
    o.host = "[" + a.to_string() + "]";
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return unexpected(origin_error::malformed);
      port = rest.substr(1);
      if (port.empty()) return unexpected(origin_error::bad_port);
    }
  } else {
    const auto colon = rest.find(':');
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return unexpected(origin_error::bad_port);
      rest = rest.substr(0, colon);
    }
    if (!parse_domain(rest, o.host)) return unexpected(origin_error::bad_host);
  }

  if (!port.empty()) {
    if (port.size() > 5) return unexpected(origin_error::bad_port);
    unsigned value = 0;
    for (const char c : port) {
      if (!is_digit(c)) return unexpected(origin_error::bad_port);
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return unexpected(origin_error::bad_port);
    o.port = static_cast<std::uint16_t>(value);
    if (o.port == default_port(o.scheme)) o.port = 0;
  }
  return o;
}

// The compiled options: origins split by kind, lists joined once into the
// field values they become.
struct cors::policy {
  struct pattern {
    std::string scheme;
    std::string suffix;  // ".example.com" of "https://*.example.com"
    std::uint16_t port = 0;
  };

  bool any_origin = false;  // "*"
  bool allow_null = false;  // "null"
  std::vector<web_origin> exact;
  std::vector<pattern> patterns;

  bool any_method = false;
  std::vector<std::string> methods;
  std::string methods_value;  // "GET, HEAD, POST"

  bool any_header = false;
  std::vector<std::string> headers;  // lower-case

  std::string expose_value;  // "ETag, Location"; empty: no field
  bool credentials = false;
  std::string max_age;

  // The Access-Control-Allow-Origin value for the Origin field `origin`,
  // or nullopt when the origin is not allowed. A browser compares the
  // value byte for byte with the Origin it sent, which is already in the
  // serialised form, so an allowed origin is echoed as received.
  std::optional<std::string> allow_origin(std::string_view origin) const {
    if (origin == "null") {
      if (!allow_null) return std::nullopt;
      return std::string(any_origin ? "*" : "null");
    }
    auto o = parse_origin(origin);
    if (!o) return std::nullopt;
    if (any_origin) return std::string("*");
    if (std::find(exact.begin(), exact.end(), *o) != exact.end()) return std::string(origin);
    for (const auto& p : patterns)
      if (o->scheme == p.scheme && o->port == p.port && o->host.size() > p.suffix.size() &&
          o->host.ends_with(p.suffix))
        return std::string(origin);
    return std::nullopt;
  }

  bool method_allowed(std::string_view m) const {
    return any_method || std::find(methods.begin(), methods.end(), m) != methods.end();
  }

  bool header_allowed(std::string_view name) const {
    if (any_header) return true;
    const std::string l = to_lower(name);
    return std::find(headers.begin(), headers.end(), l) != headers.end();
  }

  void add_origin(const std::string& entry, std::size_t i);
  // Fills in the answer to a preflight.
  void answer_preflight(http::request& req, http::response& res) const;
  // Sets the CORS fields of the answer to any other request.
  void finish_response(http::request& req, http::response& res) const;
};

namespace {

std::string indexed(std::string_view field, std::size_t i) {
  return std::string(field) + "[" + std::to_string(i) + "]";
}

}  // namespace

// Compiles one allow_origins entry.
void cors::policy::add_origin(const std::string& entry, std::size_t i) {
  if (entry == "*") {
    any_origin = true;
    return;
  }
  if (entry == "null") {
    allow_null = true;
    return;
  }
  const auto star = entry.find('*');
  if (star == std::string::npos) {
    auto o = parse_origin(entry);
    if (!o)
      throw core::config_error(indexed("cors.allow_origins", i),
                               "\"" + entry + "\": " + o.error().message());
    exact.push_back(std::move(*o));
    return;
  }
  // A pattern: the wildcard must be the whole first label of the host
  // (so never an IP literal). Parsing it with the '*' replaced by a label
  // checks the rest.
  const auto sep = entry.find("://");
  if (sep == std::string::npos || star != sep + 3 || entry.compare(star, 2, "*.") != 0 ||
      entry.find('*', star + 1) != std::string::npos)
    throw core::config_error(indexed("cors.allow_origins", i),
                             "\"" + entry +
                                 "\": a wildcard must be the first label of the host, as in "
                                 "\"https://*.example.com\"");
  std::string probe = entry;
  probe[star] = 'x';
  auto o = parse_origin(probe);
  if (!o)
    throw core::config_error(indexed("cors.allow_origins", i),
                             "\"" + entry + "\": " + o.error().message());
  pattern pat;
  pat.scheme = o->scheme;
  pat.suffix = o->host.substr(1);  // "x.example.com" -> ".example.com"
  pat.port = o->port;
  patterns.push_back(std::move(pat));
}

namespace {

// The tokens of a list option, checked; "*" sets `any` instead.
std::vector<std::string> tokens(const std::vector<std::string>& list, std::string_view field,
                                bool& any) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i] == "*") {
      any = true;
      continue;
    }
    if (!http::is_field_name(list[i]))
      throw core::config_error(indexed(field, i), "\"" + list[i] + "\" is not a token");
    out.push_back(list[i]);
  }
  return out;
}

std::string join(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& s : list) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// The single Origin field of `req`, or nullopt when there is none. A
// request with two Origin fields has no meaningful origin; it is answered
// as one from an origin that is not allowed ("" matches nothing).
std::optional<std::string_view> origin_of(const http::request& req) noexcept {
  std::optional<std::string_view> found;
  for (const auto& h : req.headers()) {
    if (!equals_ignore_case(h.name, "Origin")) continue;
    if (found) return std::string_view();
    found = h.value;
  }
  return found;
}

// Answers a preflight the policy refuses: 403, no CORS field.
void refuse(http::request& req, http::response& res, std::string_view why) {
  core::log::debug("cors preflight refused",
                   {{"origin", req.header("Origin")},
                    {"method", req.header("Access-Control-Request-Method")},
                    {"headers", req.header("Access-Control-Request-Headers")},
                    {"reason", why}});
  res.status = 403;
  res.set_text("CORS preflight refused: " + std::string(why) + " not allowed\n");
}

}  // namespace

cors::cors(const cors_options& options) {
  auto p = std::make_unique<policy>();
  if (options.allow_origins.empty())
    throw core::config_error("cors.allow_origins", "must list at least one origin (or \"*\")");
  for (std::size_t i = 0; i < options.allow_origins.size(); ++i)
    p->add_origin(options.allow_origins[i], i);
  if (p->any_origin && options.allow_credentials)
    throw core::config_error("cors.allow_credentials",
                             "cannot be true with the origin \"*\": browsers refuse a wildcard "
                             "for credentialed requests; list the origins instead");

  p->methods = tokens(options.allow_methods, "cors.allow_methods", p->any_method);
  p->methods_value = join(p->methods);

  for (auto& h : tokens(options.allow_headers, "cors.allow_headers", p->any_header))
    p->headers.push_back(to_lower(h));

  bool expose_any = false;
  auto expose = tokens(options.expose_headers, "cors.expose_headers", expose_any);
  if (expose_any) {
    if (options.allow_credentials) {
      const auto at = std::find(options.expose_headers.begin(), options.expose_headers.end(), "*");
      throw core::config_error(
          indexed("cors.expose_headers",
                  static_cast<std::size_t>(at - options.expose_headers.begin())),
          "\"*\" exposes every header only without credentials; list the headers instead");
    }
    expose.insert(expose.begin(), "*");
  }
  p->expose_value = join(expose);

  p->credentials = options.allow_credentials;
  if (options.max_age.count() < 0) throw core::config_error("cors.max_age", "must not be negative");
  p->max_age = std::to_string(options.max_age.count());
  policy_ = std::move(p);
}

cors::~cors() = default;

bool cors::origin_allowed(std::string_view origin) const {
  return policy_->allow_origin(origin).has_value();
}

bool cors::is_preflight(const http::request& req) noexcept {
  if (req.method() != http::method::options) return false;
  bool origin = false;
  bool request_method = false;
  for (const auto& h : req.headers()) {
    origin = origin || equals_ignore_case(h.name, "Origin");
    request_method = request_method || equals_ignore_case(h.name, "Access-Control-Request-Method");
  }
  return origin && request_method;
}

void cors::add_vary(http::fields& headers, std::string_view tokens_to_add) {
  std::string value;
  std::size_t lines = 0;
  for (const auto line : headers.get_all("Vary")) {
    if (http::has_token(line, "*")) return;
    ++lines;
    const std::string_view v = trim(line);
    if (v.empty()) continue;
    if (!value.empty()) value += ", ";
    value += v;
  }
  bool added = false;
  for_each_element(tokens_to_add, [&](std::string_view token) {
    if (!http::has_token(value, token)) {
      if (!value.empty()) value += ", ";
      value += token;
      added = true;
    }
    return true;
  });
  if (added || lines > 1) (void)headers.set("Vary", value);
}

void cors::policy::answer_preflight(http::request& req, http::response& res) const {
  // The answer depends on all three request fields, whatever it is.
  add_vary(res.headers, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  const policy& p = *this;

  const auto origin = origin_of(req).value_or(std::string_view());
  const auto allow_origin = p.allow_origin(origin);
  if (!allow_origin) {
    refuse(req, res, "origin");
    return;
  }

  // Methods are case-sensitive (RFC 9110 §9.1), and the browser checks
  // the answer case-sensitively (Fetch, "CORS-preflight fetch").
  const std::string_view requested_method = req.header("Access-Control-Request-Method");
  if (!http::is_field_name(requested_method) || !p.method_allowed(requested_method)) {
    refuse(req, res, "method");
    return;
  }

  // Every requested header must be allowed; the answer lists exactly the
  // requested ones (in the browser's spelling: it compares
  // case-insensitively, but listing them as asked reads unambiguously).
  // One header not allowed fails the whole preflight, as it would in the
  // browser, so the refusal is said here, plainly.
  std::string allow_headers;
  bool headers_ok = true;
  for (const auto& h : req.headers()) {
    if (!equals_ignore_case(h.name, "Access-Control-Request-Headers")) continue;
    headers_ok = headers_ok && for_each_element(h.value, [&](std::string_view name) {
                   if (!http::is_field_name(name) || !p.header_allowed(name)) return false;
                   if (!allow_headers.empty()) allow_headers += ", ";
                   allow_headers += name;
                   return true;
                 });
  }
  if (!headers_ok) {
    refuse(req, res, "header");
    return;
  }

  res.status = 204;
  (void)res.headers.set("Access-Control-Allow-Origin", *allow_origin);
  if (p.credentials) (void)res.headers.set("Access-Control-Allow-Credentials", "true");
  (void)res.headers.set("Access-Control-Allow-Methods",
                        p.any_method ? requested_method : std::string_view(p.methods_value));
  if (!allow_headers.empty()) (void)res.headers.set("Access-Control-Allow-Headers", allow_headers);
  (void)res.headers.set("Access-Control-Max-Age", p.max_age);
}

void cors::policy::finish_response(http::request& req, http::response& res) const {
  // Whether the response carries Allow-Origin depends on Origin, also for
  // a request without one: a cached copy of that answer (no CORS field)
  // served to a page would fail in its browser.
  add_vary(res.headers, "Origin");
  const auto origin = origin_of(req);
  if (!origin) return;
  res.headers.erase("Access-Control-Allow-Origin");
  res.headers.erase("Access-Control-Allow-Credentials");
  res.headers.erase("Access-Control-Expose-Headers");
  const policy& p = *this;
  const auto allow_origin = p.allow_origin(*origin);
  if (!allow_origin) return;
  (void)res.headers.set("Access-Control-Allow-Origin", *allow_origin);
  if (p.credentials) (void)res.headers.set("Access-Control-Allow-Credentials", "true");
  if (!p.expose_value.empty())
    (void)res.headers.set("Access-Control-Expose-Headers", p.expose_value);
}

asio::awaitable<http::filter_status> cors::before(http::request& req, http::response& res) {
  if (!is_preflight(req)) co_return http::filter_status::proceed;
  policy_->answer_preflight(req, res);
  co_return http::filter_status::respond;
}

asio::awaitable<void> cors::after(http::request& req, http::response& res) {
  // A preflight was answered in before(), completely.
  if (is_preflight(req)) co_return;
  policy_->finish_response(req, res);
}

}  // namespace trellis::gateway
