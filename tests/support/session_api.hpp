// session_api: a small API over the session middleware, for the tests of
// the middleware and of its stores:
//
//   GET  /get     the session's "user" (or "-"), then " new" or " old"
//   POST /set?v   sets "user" to v (the query)
//   POST /login?v regenerates (a new id, as on a real login), then sets "user"
//   POST /logout  destroys
//
// The router must already use `sessions` (router::use), which must outlive
// the routes.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "trellis/gateway/session.hpp"
#include "trellis/http/router.hpp"

namespace trellis::test {

inline void add_session_api(http::router& r,
                            const std::shared_ptr<gateway::session_middleware>& sessions) {
  gateway::session_middleware* m = sessions.get();
  r.get("/get", [m](http::request& req, http::response& res) -> asio::awaitable<void> {
    gateway::session& s = m->get(req);
    const nlohmann::json* user = s.find("user");
    res.set_text((user ? user->get<std::string>() : std::string("-")) +
                 (s.is_new() ? " new" : " old"));
    co_return;
  });
  r.post("/set", [m](http::request& req, http::response& res) -> asio::awaitable<void> {
    m->get(req).set("user", std::string(req.query()));
    res.set_text("set");
    co_return;
  });
  r.post("/login", [m](http::request& req, http::response& res) -> asio::awaitable<void> {
    gateway::session& s = m->get(req);
    s.regenerate();
    s.set("user", std::string(req.query()));
    res.set_text("welcome");
    co_return;
  });
  r.post("/logout", [m](http::request& req, http::response& res) -> asio::awaitable<void> {
    m->get(req).destroy();
    res.set_text("bye");
    co_return;
  });
}

}  // namespace trellis::test
