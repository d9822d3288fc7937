// Tests of gateway::transform_middleware, routed in-process: each request
// is a hand-made request_head (method, target, fields, framing) bound to a
// request, as the server's parser would produce it.
#include "trellis/gateway/transform.hpp"
#include "support/routed.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using sv_list = std::vector<std::string_view>;

using test::routed;
using request_spec = test::route_request;

std::unique_ptr<routed> route(const http::router& r, request_spec spec) {
  return test::route(r, std::move(spec), 2s);
}

// A body of n bytes declared by Content-Length.
request_spec with_body(http::method m, std::uint64_t n, std::string_view type = {}) {
  request_spec s;
  s.method = m;
  s.target = "/items";
  s.framing = http::framing::content_length;
  s.content_length = n;
  if (!type.empty()) s.headers.emplace_back("Content-Type", std::string(type));
  return s;
}

// A router with the middleware, whose handlers count their calls and set
// a few fields for the rules to work on.
struct rig {
  http::router router;
  int calls = 0;

  explicit rig(transform_options o) {
    router.use(std::make_shared<transform_middleware>(std::move(o)));
    const auto h = [this](http::request&, http::response& res) -> asio::awaitable<void> {
      ++calls;
      res.set_text("ok\n");
      (void)res.headers.add("X-Powered-By", "app/1.0");
      (void)res.headers.add("Set-Cookie", "a=1");
      (void)res.headers.add("X-Upstream-Id", "u1");
      (void)res.headers.add("Set-Cookie", "b=2");
      (void)res.headers.add("X-Upstream-Id", "u2");
      (void)res.headers.add("Cache-Control", "no-store");
      co_return;
    };
    router.get("/", h);
    router.post("/items", h);
    router.put("/items", h);
    router.patch("/items", h);
  }
};

TEST(transform_middleware, applies_response_header_rules_in_order) {
  transform_options o;
  o.response_headers = {
      header_rule::remove("x-powered-by"),
      header_rule::add("Set-Cookie", "c=3"),
      header_rule::set("Cache-Control", "private, max-age=60"),
      header_rule::rename("X-Upstream-Id", "X-Request-Source"),
      header_rule::rename("X-Absent", "X-Never"),
      header_rule::set("X-Content-Type-Options", "nosniff"),
  };
  rig r(o);
  auto a = route(r.router, {});
  EXPECT_EQ(r.calls, 1);
  const auto& h = a->res.headers;
  EXPECT_FALSE(h.contains("X-Powered-By")) << "removed, whatever the case of the rule";
  EXPECT_EQ(h.get_all("Set-Cookie"), (sv_list{"a=1", "b=2", "c=3"})) << "add appends a line";
  EXPECT_EQ(h.get_all("Cache-Control"), (sv_list{"private, max-age=60"})) << "set replaces";
  EXPECT_FALSE(h.contains("X-Upstream-Id"));
  EXPECT_EQ(h.get_all("X-Request-Source"), (sv_list{"u1", "u2"})) << "rename keeps values, order";
  EXPECT_FALSE(h.contains("X-Never")) << "renaming an absent field adds nothing";
  EXPECT_EQ(h.get("X-Content-Type-Options"), "nosniff");
}

TEST(transform_middleware, later_rules_see_what_earlier_ones_did) {
  transform_options o;
  o.response_headers = {header_rule::set("X-A", "1"), header_rule::rename("X-A", "X-B"),
                        header_rule::add("X-B", "2"), header_rule::remove("X-A")};
  rig r(o);
  auto a = route(r.router, {});
  EXPECT_EQ(a->res.headers.get_all("X-B"), (sv_list{"1", "2"}));
}

TEST(transform_middleware, header_rules_apply_to_responses_the_router_made_itself) {
  transform_options o;
  o.response_headers = {header_rule::set("Strict-Transport-Security", "max-age=31536000")};
  rig r(o);
  request_spec missing;
  missing.target = "/nope";
  auto a = route(r.router, missing);
  EXPECT_EQ(a->res.status, 404);
  EXPECT_EQ(a->res.headers.get("Strict-Transport-Security"), "max-age=31536000");
}

TEST(transform_middleware, refuses_a_declared_body_over_the_limit_with_413_and_closes) {
  transform_options o;
  o.max_request_body = 1000;
  rig r(o);
  auto over = route(r.router, with_body(http::method::post, 1001, "application/json"));
  EXPECT_EQ(over->res.status, 413);
  EXPECT_TRUE(over->res.close) << "the unread body may be on its way";
  EXPECT_EQ(over->res.headers.get("Content-Type"), "application/problem+json");
  EXPECT_NE(over->res.body.find("\"max_body\":1000"), std::string::npos) << over->res.body;
  EXPECT_EQ(r.calls, 0);

  auto at = route(r.router, with_body(http::method::post, 1000, "application/json"));
  EXPECT_EQ(at->res.status, 200) << "exactly the limit is fine";
  EXPECT_FALSE(at->res.close);

  // A chunked body declares no length: the server's max_body limits it as
  // it is read, not this middleware.
  request_spec chunked = with_body(http::method::post, 0, "application/json");
  chunked.framing = http::framing::chunked;
  EXPECT_EQ(route(r.router, chunked)->res.status, 200);
  EXPECT_EQ(r.calls, 2);
}

TEST(transform_middleware, allows_only_the_listed_content_types_for_a_body) {
  transform_options o;
  o.allowed_content_types = {"application/json", "text/*"};
  rig r(o);
  EXPECT_EQ(route(r.router, with_body(http::method::post, 10, "application/json"))->res.status,
            200);
  EXPECT_EQ(route(r.router, with_body(http::method::put, 10, "Application/JSON ; charset=UTF-8"))
                ->res.status,
            200)
      << "case and parameters do not matter";
  EXPECT_EQ(route(r.router, with_body(http::method::post, 10, "text/csv"))->res.status, 200);
  EXPECT_EQ(r.calls, 3);

  auto xml = route(r.router, with_body(http::method::post, 10, "application/xml"));
  EXPECT_EQ(xml->res.status, 415);
  EXPECT_EQ(xml->res.headers.get("Accept-Post"), "application/json, text/*");
  EXPECT_FALSE(xml->res.close) << "the server can read and drop a small body";
  auto patch = route(r.router, with_body(http::method::patch, 10, "application/xml"));
  EXPECT_EQ(patch->res.status, 415);
  EXPECT_EQ(patch->res.headers.get("Accept-Patch"), "application/json, text/*");
  auto untyped = route(r.router, with_body(http::method::put, 10));
  EXPECT_EQ(untyped->res.status, 415) << "a body must say what it is";
  auto prefix = route(r.router, with_body(http::method::post, 10, "application/jsonx"));
  EXPECT_EQ(prefix->res.status, 415) << "a longer type is another type";
  EXPECT_EQ(r.calls, 3);

  // No body, no type needed.
  EXPECT_EQ(route(r.router, with_body(http::method::post, 0))->res.status, 200);
  EXPECT_EQ(route(r.router, {})->res.status, 200);
}

TEST(transform_middleware, its_own_refusals_get_the_header_rules_too) {
  transform_options o;
  o.allowed_content_types = {"application/json"};
  o.response_headers = {header_rule::set("X-Frame-Options", "DENY")};
  rig r(o);
  auto a = route(r.router, with_body(http::method::post, 5, "text/plain"));
  EXPECT_EQ(a->res.status, 415);
  EXPECT_EQ(a->res.headers.get("X-Frame-Options"), "DENY");
}

TEST(transform_middleware, bad_configuration_throws_config_error_naming_the_field) {
  const auto field_of = [](transform_options o) -> std::string {
    try {
      transform_middleware m(std::move(o));
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "";
  };
  transform_options o;
  o.response_headers = {header_rule::set("X-Good", "1"), header_rule::set("X Bad", "1")};
  EXPECT_EQ(field_of(o), "transform.response_headers[1].name");
  o.response_headers = {header_rule::add("X-Split", "a\r\nInjected: yes")};
  EXPECT_EQ(field_of(o), "transform.response_headers[0].value");
  o.response_headers = {header_rule::rename("X-A", "X:B")};
  EXPECT_EQ(field_of(o), "transform.response_headers[0].value");
  o.response_headers = {header_rule::remove("")};
  EXPECT_EQ(field_of(o), "transform.response_headers[0].name");
  o.response_headers = {header_rule::set("content-length", "5")};
  EXPECT_EQ(field_of(o), "transform.response_headers[0].name") << "framing is the server's";
  o.response_headers = {header_rule::rename("X-A", "Transfer-Encoding")};
  EXPECT_EQ(field_of(o), "transform.response_headers[0].value");
  o.response_headers = {};
  o.allowed_content_types = {"application/json", "json"};
  EXPECT_EQ(field_of(o), "transform.allowed_content_types[1]");
  o.allowed_content_types = {"text/html; charset=utf-8"};
  EXPECT_EQ(field_of(o), "transform.allowed_content_types[0]");
  EXPECT_EQ(field_of({}), "");
}

}  // namespace
}  // namespace trellis::gateway
