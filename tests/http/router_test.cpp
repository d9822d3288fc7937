// Tests of http::router, driven directly: each request is bound to a
// hand-made request_head (what the server's parser would produce for the
// request line) and routed on a private io_context, bounded in time. What
// the server adds on top (a HEAD response carries no body) is tested in
// server_test.cpp.
#include "trellis/http/router.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/error.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;

// A routed request and its answer. The head's views point at the target
// string given to route(), which must outlive this (literals do).
struct routed {
  request_head head;
  request req;
  response res;
};

std::unique_ptr<routed> route(const router& r, method m, std::string_view target) {
  auto out = std::make_unique<routed>();
  out->head.method = m;
  out->head.method_text = to_string(m);
  out->head.target = target;
  out->head.host = "example.test";
  out->req.bind(out->head, nullptr, {}, false);
  asio::io_context ctx;
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(ctx, r(out->req, out->res), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  ctx.run_for(2s);
  if (failure) std::rethrow_exception(failure);
  EXPECT_TRUE(done) << "routing did not finish";
  return out;
}

// A handler that answers `name` (so a test sees which route ran).
handler answer(std::string name) {
  return [name](request&, response& res) -> asio::awaitable<void> {
    res.set_text(name);
    co_return;
  };
}

// Whether add() throws core::config_error naming the field "route".
::testing::AssertionResult throws_route_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::config_error& e) {
    if (e.field() == "route") return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "config_error names field '" << e.field() << "': " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw something else: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

TEST(http_router, captures_a_param_segment) {
  router r;
  r.get("/users/{id}", answer("user"));
  r.get("/users/{id}/posts/{post}", answer("post"));
  auto a = route(r, method::get, "/users/42");
  EXPECT_EQ(a->res.status, 200);
  EXPECT_EQ(a->res.body, "user");
  EXPECT_EQ(a->req.param("id"), "42"sv);
  EXPECT_EQ(a->req.param("nope"), ""sv);

  auto b = route(r, method::get, "/users/a%20b/posts/7?x=1");
  EXPECT_EQ(b->res.body, "post");
  EXPECT_EQ(b->req.param("id"), "a%20b"sv) << "params are raw, percent-encoding intact";
  EXPECT_EQ(b->req.param("post"), "7"sv) << "the query is not part of the path";

  EXPECT_EQ(route(r, method::get, "/users/")->res.status, 404)
      << "a param never matches an empty segment";
  EXPECT_EQ(route(r, method::get, "/users/42/extra")->res.status, 404);
}

TEST(http_router, captures_the_rest_of_the_path_with_a_trailing_star) {
  router r;
  r.get("/static/*", answer("static"));
  auto a = route(r, method::get, "/static/css/site.css");
  EXPECT_EQ(a->res.body, "static");
  EXPECT_EQ(a->req.param("*"), "css/site.css"sv);
  auto b = route(r, method::get, "/static/");
  EXPECT_EQ(b->res.body, "static");
  EXPECT_EQ(b->req.param("*"), ""sv);
  EXPECT_EQ(route(r, method::get, "/static")->res.status, 404) << "'/static/*' needs the slash";
}

TEST(http_router, prefers_literal_over_param_over_wildcard_whatever_the_order_added) {
  router r;
  r.get("/files/*", answer("wildcard"));
  r.get("/files/{name}", answer("param"));
  r.get("/files/{name}/meta", answer("param-meta"));
  r.get("/files/special", answer("literal"));
  EXPECT_EQ(route(r, method::get, "/files/special")->res.body, "literal");
  auto p = route(r, method::get, "/files/report");
  EXPECT_EQ(p->res.body, "param");
  EXPECT_EQ(p->req.param("name"), "report"sv);
  EXPECT_EQ(route(r, method::get, "/files/report/meta")->res.body, "param-meta");
  // The param branch dead-ends on "other": the router backtracks to the
  // wildcard, and the abandoned capture is gone.
  auto w = route(r, method::get, "/files/report/other");
  EXPECT_EQ(w->res.body, "wildcard");
  EXPECT_EQ(w->req.param("*"), "report/other"sv);
  EXPECT_EQ(w->req.param("name"), ""sv);
}

// 405 means "a route matches the path but not the method": when a less
// specific route has the method, that route serves the request.
TEST(http_router, falls_back_to_a_less_specific_route_that_has_the_method) {
  router r;
  r.get("/files/{name}", answer("get-param"));
  r.post("/files/special", answer("post-literal"));
  r.get("/assets/*", answer("get-wildcard"));
  r.put("/assets/{name}", answer("put-param"));
  auto a = route(r, method::get, "/files/special");
  EXPECT_EQ(a->res.status, 200) << "Allow: " << a->res.headers.get("Allow").value_or("");
  EXPECT_EQ(a->res.body, "get-param");
  EXPECT_EQ(a->req.param("name"), "special"sv);
  EXPECT_EQ(route(r, method::post, "/files/special")->res.body, "post-literal");
  auto b = route(r, method::get, "/assets/logo.png");
  EXPECT_EQ(b->res.status, 200);
  EXPECT_EQ(b->res.body, "get-wildcard");
  EXPECT_EQ(b->req.param("*"), "logo.png"sv);
}

TEST(http_router, answers_404_when_no_route_matches_the_path) {
  router r;
  r.get("/a", answer("a"));
  auto x = route(r, method::get, "/b");
  EXPECT_EQ(x->res.status, 404);
  EXPECT_EQ(route(r, method::get, "/a/")->res.status, 404) << "a trailing slash is another route";
  EXPECT_EQ(route(r, method::post, "/nowhere")->res.status, 404)
      << "404 wins over 405 when no path matches";
}

TEST(http_router, answers_405_with_the_exact_allow_list) {
  router r;
  r.get("/items", answer("list"));
  r.post("/items", answer("create"));
  r.del("/items/{id}", answer("delete"));
  auto a = route(r, method::put, "/items");
  EXPECT_EQ(a->res.status, 405);
  EXPECT_EQ(a->res.headers.get("Allow").value_or("<none>"), "GET, HEAD, POST, OPTIONS");
  auto b = route(r, method::get, "/items/3");
  EXPECT_EQ(b->res.status, 405);
  EXPECT_EQ(b->res.headers.get("Allow").value_or("<none>"), "DELETE, OPTIONS")
      << "no GET, so no HEAD";
}

TEST(http_router, runs_the_get_handler_for_head_when_no_head_handler_is_set) {
  router r;
  r.get("/page", answer("get-page"));
  r.get("/both", answer("get-both"));
  r.add(method::head, "/both", answer("head-both"));
  auto a = route(r, method::head, "/page");
  EXPECT_EQ(a->res.status, 200);
  EXPECT_EQ(a->res.body, "get-page");
  EXPECT_EQ(route(r, method::head, "/both")->res.body, "head-both");
}

TEST(http_router, answers_options_with_204_and_allow_unless_an_options_handler_is_set) {
  router r;
  r.get("/a", answer("a"));
  r.patch("/a", answer("patch-a"));
  r.get("/b", answer("b"));
  r.add(method::options, "/b", answer("options-b"));
  auto a = route(r, method::options, "/a");
  EXPECT_EQ(a->res.status, 204);
  EXPECT_EQ(a->res.headers.get("Allow").value_or("<none>"), "GET, HEAD, OPTIONS, PATCH");
  EXPECT_EQ(a->res.body, "");
  EXPECT_EQ(route(r, method::options, "/b")->res.body, "options-b");
}

TEST(http_router, routes_groups_under_their_prefix) {
  router r;
  auto api = r.group("/api");
  auto v1 = api.group("/v1");
  v1.get("/items/{id}", answer("v1-item"));
  api.post("/login", answer("login"));
  auto a = route(r, method::get, "/api/v1/items/9");
  EXPECT_EQ(a->res.body, "v1-item");
  EXPECT_EQ(a->req.param("id"), "9"sv);
  EXPECT_EQ(route(r, method::post, "/api/login")->res.body, "login");
  EXPECT_EQ(route(r, method::get, "/items/9")->res.status, 404);
  EXPECT_EQ(route(r, method::get, "/v1/items/9")->res.status, 404);
}

// Records before/after calls into a shared log; answers `status` in
// before() when it is non-zero.
class recorder : public middleware {
 public:
  recorder(std::string name, std::vector<std::string>& log, int respond_with = 0)
      : name_(std::move(name)), log_(log), respond_with_(respond_with) {}
  asio::awaitable<filter_status> before(request&, response& res) override {
    log_.push_back(name_ + ".before");
    if (respond_with_ != 0) {
      res.status = respond_with_;
      res.set_text("from " + name_);
      co_return filter_status::respond;
    }
    co_return filter_status::proceed;
  }
  asio::awaitable<void> after(request&, response& res) override {
    log_.push_back(name_ + ".after");
    (void)res.headers.add("X-After", name_);
    co_return;
  }

 private:
  std::string name_;
  std::vector<std::string>& log_;
  int respond_with_;
};

TEST(http_router, runs_middleware_before_in_order_and_after_in_reverse_around_the_handler) {
  std::vector<std::string> log;
  router r;
  r.use(std::make_shared<recorder>("a", log));
  r.use(std::make_shared<recorder>("b", log));
  r.get("/x", [&log](request&, response& res) -> asio::awaitable<void> {
    log.push_back("handler");
    res.set_text("x");
    co_return;
  });
  auto x = route(r, method::get, "/x");
  EXPECT_EQ(log,
            (std::vector<std::string>{"a.before", "b.before", "handler", "b.after", "a.after"}));
  EXPECT_EQ(x->res.body, "x");
  EXPECT_EQ(x->res.headers.get_all("X-After"), (std::vector<std::string_view>{"b", "a"}));

  // Middleware also wraps the router's own answers.
  log.clear();
  EXPECT_EQ(route(r, method::get, "/missing")->res.status, 404);
  EXPECT_EQ(log, (std::vector<std::string>{"a.before", "b.before", "b.after", "a.after"}));
}

TEST(http_router, a_middleware_that_responds_skips_later_middleware_and_the_handler) {
  std::vector<std::string> log;
  router r;
  r.use(std::make_shared<recorder>("a", log));
  r.use(std::make_shared<recorder>("auth", log, 401));
  r.use(std::make_shared<recorder>("c", log));
  bool handler_ran = false;
  r.get("/x", [&handler_ran](request&, response& res) -> asio::awaitable<void> {
    handler_ran = true;
    res.set_text("x");
    co_return;
  });
  auto x = route(r, method::get, "/x");
  EXPECT_FALSE(handler_ran);
  EXPECT_EQ(x->res.status, 401);
  EXPECT_EQ(x->res.body, "from auth");
  EXPECT_EQ(log, (std::vector<std::string>{"a.before", "auth.before", "auth.after", "a.after"}))
      << "after() runs for every middleware whose before() ran, and only those";
}

TEST(http_router, a_throwing_handler_becomes_a_500_that_every_after_sees) {
  std::vector<std::string> log;
  router r;
  r.use(std::make_shared<recorder>("a", log));
  r.use(std::make_shared<recorder>("b", log));
  r.get("/x", [](request&, response& res) -> asio::awaitable<void> {
    res.set_text("half-built answer");
    (void)res.headers.set("X-Partial", "1");
    throw std::runtime_error("handler bug");
    co_return;
  });
  auto x = route(r, method::get, "/x");
  EXPECT_EQ(x->res.status, 500);
  EXPECT_EQ(x->res.body, "internal server error\n");
  EXPECT_FALSE(x->res.headers.contains("X-Partial")) << "nothing of the failed answer leaks";
  EXPECT_EQ(log, (std::vector<std::string>{"a.before", "b.before", "b.after", "a.after"}));
  EXPECT_EQ(x->res.headers.get_all("X-After"), (std::vector<std::string_view>{"b", "a"}));
}

TEST(http_router, with_middleware_runs_a_routes_own_chain_inside_the_routers) {
  std::vector<std::string> log;
  router r;
  r.use(std::make_shared<recorder>("global", log));
  auto inner = [&log](request&, response& res) -> asio::awaitable<void> {
    log.push_back("handler");
    res.set_text("admin");
    co_return;
  };
  r.get("/admin", with_middleware({std::make_shared<recorder>("auth", log),
                                   std::make_shared<recorder>("limit", log)},
                                  inner));
  r.get("/open", with_middleware({}, inner));
  r.get("/denied", with_middleware({std::make_shared<recorder>("deny", log, 403)}, inner));

  auto a = route(r, method::get, "/admin");
  EXPECT_EQ(a->res.body, "admin");
  EXPECT_EQ(log, (std::vector<std::string>{"global.before", "auth.before", "limit.before",
                                           "handler", "limit.after", "auth.after",
                                           "global.after"}));
  log.clear();
  route(r, method::get, "/open");
  EXPECT_EQ(log, (std::vector<std::string>{"global.before", "handler", "global.after"}));
  log.clear();
  auto d = route(r, method::get, "/denied");
  EXPECT_EQ(d->res.status, 403);
  EXPECT_EQ(log, (std::vector<std::string>{"global.before", "deny.before", "deny.after",
                                           "global.after"}));

  // A throwing handler is a 500 that the route's own after() sees too.
  router t;
  auto throws = [](request&, response&) -> asio::awaitable<void> {
    throw std::runtime_error("bug");
    co_return;
  };
  log.clear();
  t.get("/t", with_middleware({std::make_shared<recorder>("m", log)}, throws));
  auto x = route(t, method::get, "/t");
  EXPECT_EQ(x->res.status, 500);
  EXPECT_EQ(x->res.headers.get_all("X-After"), (std::vector<std::string_view>{"m"}));
}

TEST(http_router, options_asterisk_lists_every_method_some_route_answers) {
  router r;
  r.get("/a", answer("a"));
  r.del("/b/{id}", answer("b"));
  r.patch("/c/*", answer("c"));
  auto star = route(r, method::options, "*");
  EXPECT_EQ(star->res.status, 204);
  EXPECT_EQ(star->res.headers.get("Allow").value_or("<none>"),
            "GET, HEAD, DELETE, OPTIONS, PATCH");
  EXPECT_EQ(route(r, method::get, "*")->res.status, 404) << "only OPTIONS may ask about '*'";
  EXPECT_EQ(route(router{}, method::options, "*")->res.headers.get("Allow").value_or("<none>"),
            "OPTIONS");
}

TEST(http_router, rejects_malformed_patterns_with_a_route_config_error) {
  const char* bad[] = {"",    "users", "/a/*/b", "/{}",  "/a{b}",
                       "/{a", "/x*",   "/{a/b}", "/{*}", "/a/**"};
  for (const char* p : bad) {
    router r;
    EXPECT_TRUE(throws_route_error([&] { r.get(p, answer("x")); })) << "pattern '" << p << "'";
  }
  router r;
  EXPECT_TRUE(throws_route_error([&] { r.add(method::other, "/x", answer("x")); }))
      << "unroutable method";
  r.get("/u/{id}", answer("x"));
  EXPECT_TRUE(throws_route_error([&] { r.get("/u/{name}/more", answer("x")); }))
      << "two names for one param position";
}

// A route the router accepts must be reachable: a pattern deeper than the
// router can match is refused up front, never silently dead.
TEST(http_router, matches_every_route_it_accepts_however_deep) {
  for (int depth : {8, 31, 32, 33, 40, 64}) {
    std::string pattern;
    for (int i = 0; i < depth; ++i) pattern += "/s" + std::to_string(i);
    router r;
    try {
      r.get(pattern, answer("deep"));
    } catch (const core::config_error& e) {
      EXPECT_EQ(e.field(), "route") << e.what();
      EXPECT_GT(depth, 32) << "a reasonable depth refused: " << e.what();
      continue;
    }
    auto x = route(r, method::get, pattern);
    EXPECT_EQ(x->res.status, 200) << depth << " segments: added without error, but never matches";
    EXPECT_EQ(x->res.body, "deep") << depth << " segments";
  }
  // A trailing * takes whatever lies beyond, however deep.
  router r;
  r.get("/files/*", answer("files"));
  std::string path = "/files";
  for (int i = 0; i < 50; ++i) path += "/d" + std::to_string(i);
  auto x = route(r, method::get, path);
  EXPECT_EQ(x->res.body, "files");
  EXPECT_EQ(x->req.param("*"), std::string_view(path).substr(7));
}

TEST(http_router, rejects_a_route_added_twice_with_a_route_config_error) {
  router r;
  r.get("/a/{id}", answer("first"));
  EXPECT_TRUE(throws_route_error([&] { r.get("/a/{id}", answer("second")); }));
  r.get("/g/x", answer("direct"));
  EXPECT_TRUE(throws_route_error([&] { r.group("/g").get("/x", answer("grouped")); }))
      << "a group route that lands on an existing one";
  EXPECT_NO_THROW(r.post("/a/{id}", answer("post"))) << "another method is another route";
  EXPECT_EQ(route(r, method::get, "/a/1")->res.body, "first");
}

}  // namespace
}  // namespace trellis::http
