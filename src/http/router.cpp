#include "trellis/http/router.hpp"

#include <array>
#include <span>

#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"

namespace trellis::http {

asio::awaitable<filter_status> middleware::before(request&, response&) {
  co_return filter_status::proceed;
}
asio::awaitable<void> middleware::after(request&, response&) {
  co_return;
}

namespace {

// Methods a route can name, in the order Allow lists them.
constexpr std::array<method, 9> routable = {method::get,     method::head,    method::post,
                                            method::put,     method::delete_, method::connect,
                                            method::options, method::trace,   method::patch};

std::size_t slot(method m) {
  for (std::size_t i = 0; i < routable.size(); ++i)
    if (routable[i] == m) return i;
  return routable.size();
}

// Splits "/a/b/" into {"a", "b", ""}: a trailing slash is a segment of
// its own, so "/users" and "/users/" are different routes.
std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/') return out;
  path.remove_prefix(1);
  for (;;) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// The same split for matching, into a fixed array so that routing a
// request allocates nothing. Paths deeper than the array keep their tail
// unsplit (`truncated`): only a trailing * can match there.
struct path_segments {
  static constexpr std::size_t capacity = 32;
  std::array<std::string_view, capacity> items;
  std::size_t size = 0;
  bool truncated = false;

  explicit path_segments(std::string_view path) {
    path.remove_prefix(1);  // REQUIRES: path starts with '/'
    for (;;) {
      if (size == capacity) {
        truncated = true;
        return;
      }
      const auto slash = path.find('/');
      items[size++] = path.substr(0, slash);
      if (slash == std::string_view::npos) return;
      path.remove_prefix(slash + 1);
    }
  }
};

}  // namespace

// A trie over path segments. Each node may have literal children, one
// {param} child, a trailing-* handler set, and handlers per method.
struct router::node {
  std::map<std::string, std::unique_ptr<node>, std::less<>> literal;
  std::unique_ptr<node> param;
  std::string param_name;
  std::unique_ptr<node> wildcard;  // "*": matches the rest of the path
  std::array<handler, routable.size()> handlers;

  bool any() const {
    for (const auto& h : handlers)
      if (h) return true;
    return false;
  }
};

router::router() : root_(std::make_unique<node>()) {}
router::~router() = default;

router& router::add(method m, std::string_view pattern, handler h) {
  if (pattern.empty() || pattern.front() != '/')
    throw core::config_error("route",
                             "pattern must start with '/': '" + std::string(pattern) + "'");
  if (slot(m) == routable.size()) throw core::config_error("route", "method cannot be routed");
  node* n = root_.get();
  const auto segments = split(pattern);
  if (segments.size() - (!segments.empty() && segments.back() == "*") > path_segments::capacity)
    throw core::config_error("route", "more than " + std::to_string(path_segments::capacity) +
                                          " segments: '" + std::string(pattern) + "'");
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string_view seg = segments[i];
    if (seg == "*") {
      if (i + 1 != segments.size())
        throw core::config_error("route",
                                 "'*' must be the last segment: '" + std::string(pattern) + "'");
      if (!n->wildcard) n->wildcard = std::make_unique<node>();
      n = n->wildcard.get();
      break;
    }
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      const std::string_view name = seg.substr(1, seg.size() - 2);
      if (name.empty() || name.find_first_of("{}/*") != std::string_view::npos)
        throw core::config_error("route", "bad parameter name in '" + std::string(pattern) + "'");
      if (!n->param) {
        n->param = std::make_unique<node>();
        n->param_name = std::string(name);
      } else if (n->param_name != name) {
        throw core::config_error("route", "'" + std::string(pattern) + "' names parameter {" +
                                              std::string(name) + "} where another route has {" +
                                              n->param_name + "}");
      }
      n = n->param.get();
      continue;
    }
    if (seg.find_first_of("{}*") != std::string_view::npos)
      throw core::config_error("route", "a segment is either literal, {name} or a final '*': '" +
                                            std::string(pattern) + "'");
    auto it = n->literal.find(seg);
    if (it == n->literal.end())
      it = n->literal.emplace(std::string(seg), std::make_unique<node>()).first;
    n = it->second.get();
  }
  handler& slot_ref = n->handlers[slot(m)];
  if (slot_ref)
    throw core::config_error(
        "route", std::string(to_string(m)) + " " + std::string(pattern) + " is already routed");
  slot_ref = std::move(h);
  any_methods_ |= static_cast<std::uint16_t>(1u << slot(m));
  return *this;
}

router::group_ref router::group(std::string_view prefix) {
  return group_ref(*this, std::string(prefix));
}

router::group_ref& router::group_ref::add(method m, std::string_view pattern, handler h) {
  router_->add(m, prefix_ + std::string(pattern), std::move(h));
  return *this;
}

router::group_ref router::group_ref::group(std::string_view prefix) const {
  return group_ref(*router_, prefix_ + std::string(prefix));
}

router& router::use(std::shared_ptr<middleware> m) {
  chain_.push_back(std::move(m));
  return *this;
}

namespace {

// Finds the node for `segments` (most specific first, backtracking),
// recording {param} captures into `req`. `rest` is the unsplit path from
// the current segment on, which is what a trailing * captures.
template <class Node, class Accept>
const Node* match(const Node* n, std::span<const std::string_view> segments, bool truncated,
                  std::string_view rest, request& req, const Accept& accept) {
  if (segments.empty()) {
    if (!truncated) return accept(*n) ? n : nullptr;
    // Deeper than we split: only a wildcard here can take the rest.
    if (n->wildcard && accept(*n->wildcard)) {
      req.set_param("*", rest);
      return n->wildcard.get();
    }
    return nullptr;
  }
  // "*" matches the rest, even empty: "/files/*" matches "/files/" (its
  // last segment is "") but not "/files".
  const std::string_view seg = segments.front();
  const std::string_view after = rest.substr(std::min(rest.size(), seg.size() + 1));
  if (auto it = n->literal.find(seg); it != n->literal.end()) {
    if (const Node* m = match(it->second.get(), segments.subspan(1), truncated, after, req, accept))
      return m;
  }
  if (n->param && !seg.empty()) {
    const std::size_t mark = req.params_size();
    req.set_param(n->param_name, seg);
    if (const Node* m = match(n->param.get(), segments.subspan(1), truncated, after, req, accept))
      return m;
    req.truncate_params(mark);
  }
  if (n->wildcard && accept(*n->wildcard)) {
    req.set_param("*", rest);
    return n->wildcard.get();
  }
  return nullptr;
}

asio::awaitable<void> answered() {
  co_return;
}

// The methods with a handler, one bit per slot.
std::uint16_t method_mask(const std::array<handler, routable.size()>& handlers) {
  std::uint16_t mask = 0;
  for (std::size_t i = 0; i < routable.size(); ++i)
    if (handlers[i]) mask |= static_cast<std::uint16_t>(1u << i);
  return mask;
}

// The Allow value for a resource whose handlers are `mask`: those methods,
// HEAD wherever GET is, and OPTIONS, which the router always answers.
std::string allow_list(std::uint16_t mask) {
  std::string allow;
  const bool has_get = (mask >> slot(method::get)) & 1u;
  for (std::size_t i = 0; i < routable.size(); ++i) {
    const bool routed = ((mask >> i) & 1u) || (routable[i] == method::head && has_get) ||
                        routable[i] == method::options;
    if (!routed) continue;
    if (!allow.empty()) allow += ", ";
    allow += to_string(routable[i]);
  }
  return allow;
}

}  // namespace

// Not a coroutine: it returns the matched handler's own awaitable, so a
// routed request costs one coroutine frame (the handler's), not two.
asio::awaitable<void> router::dispatch(request& req, response& res) const {
  const std::string_view path = req.path();
  const node* n = nullptr;
  if (!path.empty() && path.front() == '/') {
    const path_segments segs(path);
    const std::size_t ms = slot(req.method());
    const auto has_method = [&](const node& x) {
      if (ms >= routable.size()) return false;
      return static_cast<bool>(x.handlers[ms]) ||
             (req.method() == method::head && static_cast<bool>(x.handlers[slot(method::get)]));
    };
    const auto any_method = [](const node& x) { return x.any(); };
    const std::size_t mark = req.params_size();
    n = match(root_.get(), std::span<const std::string_view>(segs.items.data(), segs.size),
              segs.truncated, path.substr(1), req, has_method);
    if (!n) {
      req.truncate_params(mark);
      n = match(root_.get(), std::span<const std::string_view>(segs.items.data(), segs.size),
                segs.truncated, path.substr(1), req, any_method);
    }
  }
  if (!n && path == "*" && req.method() == method::options) {
    // "OPTIONS *" asks about the server, not a resource (RFC 9110 §9.3.7):
    // every method some route answers.
    res.status = 204;
    (void)res.headers.set("Allow", allow_list(any_methods_));
    return answered();
  }
  if (!n) {
    res.status = 404;
    res.set_text("not found\n");
    return answered();
  }
  const method m = req.method();
  std::size_t s = slot(m);
  if (s < routable.size() && !n->handlers[s] && m == method::head) s = slot(method::get);
  if (s < routable.size() && n->handlers[s]) return n->handlers[s](req, res);
  const std::string allow = allow_list(method_mask(n->handlers));
  if (m == method::options) {
    res.status = 204;
    (void)res.headers.set("Allow", allow);
    return answered();
  }
  res.status = 405;
  (void)res.headers.set("Allow", allow);
  res.set_text("method not allowed\n");
  return answered();
}

asio::awaitable<void> router::operator()(request& req, response& res) const {
  if (chain_.empty()) return dispatch(req, res);
  return run_chain(req, res);
}

namespace {

// Runs `chain` around `inner` (a route's handler, or the router's
// dispatch): before() in order until one answers, inner unless one did,
// after() in reverse for each whose before() ran.
template <class Inner>
asio::awaitable<void> run_around(std::span<const std::shared_ptr<middleware>> chain,
                                 request& req, response& res, Inner inner) {
  std::size_t ran = 0;
  bool responded = false;
  for (; ran < chain.size(); ++ran) {
    if (co_await chain[ran]->before(req, res) == filter_status::respond) {
      ++ran;
      responded = true;
      break;
    }
  }
  if (!responded) {
    // A handler that throws still gets its middleware's after(): the
    // access log, metrics and CORS headers must see the 500 it becomes.
    // The server does the same for a router without middleware.
    bool failed = false;
    try {
      co_await inner(req, res);
    } catch (const std::exception& e) {
      core::log::error("handler failed",
                       {{"target", req.target()}, {"error", e.what()}});
      failed = true;
    }
    if (failed) {
      res.clear();
      res.status = 500;
      res.set_text("internal server error\n");
    }
  }
  while (ran > 0) co_await chain[--ran]->after(req, res);
}

}  // namespace

asio::awaitable<void> router::run_chain(request& req, response& res) const {
  const auto inner = [this](request& rq, response& rs) { return dispatch(rq, rs); };
  co_await run_around(chain_, req, res, inner);
}

namespace {

struct bound_chain {
  std::vector<std::shared_ptr<middleware>> chain;
  handler inner;
};

// Holds its own reference to the chain, so a request in flight keeps it
// alive even if the handler that started it is replaced meanwhile (a
// configuration reload).
asio::awaitable<void> run_bound(std::shared_ptr<const bound_chain> b, request& req,
                                response& res) {
  co_await run_around(b->chain, req, res, b->inner);
}

}  // namespace

handler with_middleware(std::vector<std::shared_ptr<middleware>> chain, handler inner) {
  if (chain.empty()) return inner;
  auto b = std::make_shared<const bound_chain>(bound_chain{std::move(chain), std::move(inner)});
  return [b](request& req, response& res) { return run_bound(b, req, res); };
}

handler router::to_handler() const {
  return [this](request& req, response& res) { return (*this)(req, res); };
}

}  // namespace trellis::http
