// router: method + path patterns to handlers, with middleware around them.
//
//   http::router r;
//   r.get("/users/{id}", get_user);          // req.param("id")
//   r.post("/users", create_user);
//   r.get("/static/*", serve_static);        // req.param("*") = the rest of the path
//   auto api = r.group("/api/v1");           // routes under a prefix
//   api.get("/items", list_items);           // GET /api/v1/items
//   r.use(std::make_shared<access_log>());   // middleware, in order
//   http::server srv(r.to_handler());
//
// Matching works on path segments, most specific first: a literal segment
// beats a {param}, which beats a trailing *; among equals, the first added
// wins. The path is matched as sent (percent-encoded; params are raw, so
// decode them where a decoded value matters). What the router answers by
// itself (RFC 9110 §9.3.2, §9.3.7, §15.5.5-6):
//   404  no route matches the path;
//   405  a route matches the path but not the method, with Allow listing
//        the methods that would;
//   HEAD runs the GET handler when no HEAD one is set (the server sends the
//        head only);
//   OPTIONS answers 204 with Allow when no OPTIONS handler is set;
//        "OPTIONS *" lists every method some route answers.
//
// Middleware (the Envoy filter-chain idea, reduced): each has before(),
// run in the order added, which lets the request continue or answers it
// (filter_status::respond: later middleware and the handler are skipped),
// and after(), run in reverse order for every middleware whose before()
// ran, which may rewrite the response. A handler that throws becomes a
// 500 (logged) before the after() calls, so they see what the client
// gets. Middleware objects are shared by every request on every worker:
// keep per-request state in the request or response, and make shared
// state thread-safe.
//
// Thread-safety: configure (add routes, use middleware) before serving;
// matching is then read-only and safe from every worker.
#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/http/method.hpp"
#include "trellis/http/message.hpp"

namespace trellis::http {

enum class filter_status {
  proceed,  // go on to the next middleware, then the handler
  respond,  // answer now with the response as filled in
};

class middleware {
 public:
  virtual ~middleware() = default;
  virtual asio::awaitable<filter_status> before(request& req, response& res);
  virtual asio::awaitable<void> after(request& req, response& res);
};

class router {
 public:
  router();
  ~router();
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  // Adds a route. A pattern starts with '/', has literal segments, {name}
  // segments (one segment each) and optionally ends in '*' (the rest of
  // the path, possibly empty). Throws core::config_error (field "route")
  // for a malformed pattern or a route added twice.
  router& add(method m, std::string_view pattern, handler h);
  router& get(std::string_view p, handler h) { return add(method::get, p, std::move(h)); }
  router& post(std::string_view p, handler h) { return add(method::post, p, std::move(h)); }
  router& put(std::string_view p, handler h) { return add(method::put, p, std::move(h)); }
  router& patch(std::string_view p, handler h) { return add(method::patch, p, std::move(h)); }
  router& del(std::string_view p, handler h) { return add(method::delete_, p, std::move(h)); }

  // Routes under a common prefix ("/api/v1").
  class group_ref {
   public:
    group_ref& add(method m, std::string_view pattern, handler h);
    group_ref& get(std::string_view p, handler h) { return add(method::get, p, std::move(h)); }
    group_ref& post(std::string_view p, handler h) { return add(method::post, p, std::move(h)); }
    group_ref& put(std::string_view p, handler h) { return add(method::put, p, std::move(h)); }
    group_ref& patch(std::string_view p, handler h) { return add(method::patch, p, std::move(h)); }
    group_ref& del(std::string_view p, handler h) { return add(method::delete_, p, std::move(h)); }
    group_ref group(std::string_view prefix) const;

   private:
    friend class router;
    group_ref(router& r, std::string prefix) : router_(&r), prefix_(std::move(prefix)) {}
    router* router_;
    std::string prefix_;
  };
  group_ref group(std::string_view prefix);

  // Appends middleware to the chain.
  router& use(std::shared_ptr<middleware> m);

  // Routes one request: middleware, then the matching handler (or the
  // router's own 404/405/OPTIONS answer).
  asio::awaitable<void> operator()(request& req, response& res) const;

  // A server handler bound to this router. REQUIRES: the router outlives it.
  handler to_handler() const;

 private:
  struct node;
  asio::awaitable<void> dispatch(request& req, response& res) const;
  asio::awaitable<void> run_chain(request& req, response& res) const;

  std::unique_ptr<node> root_;
  std::vector<std::shared_ptr<middleware>> chain_;
  std::uint16_t any_methods_ = 0;  // methods some route answers, one bit per method
};

// A handler that runs `chain` around `inner` exactly as router::use() runs
// the router's chain around every route: for middleware that belongs to
// one route only (an API gateway's per-route authentication and limits:
// r.get("/admin/*", with_middleware({auth, admins_only}, handler))).
// With an empty chain, `inner` itself.
handler with_middleware(std::vector<std::shared_ptr<middleware>> chain, handler inner);

}  // namespace trellis::http
