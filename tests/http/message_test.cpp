#include "trellis/http/message.hpp"

#include <gtest/gtest.h>

#include <string>

namespace trellis::http {
namespace {

// Parses `text` as a request head and binds a request to it.
struct bound_request {
  explicit bound_request(std::string text) : bytes(std::move(text)) {
    EXPECT_EQ(parser.parse_head(bytes), parse_status::done) << parser.error().message();
    req.bind(parser.head(), nullptr, {}, false);
  }
  std::string bytes;
  request_parser parser;
  request req;
};

TEST(http_request, splits_an_origin_form_target_into_path_and_query) {
  bound_request b("GET /books/7?fields=title&x=%20 HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(b.req.path(), "/books/7");
  EXPECT_EQ(b.req.query(), "fields=title&x=%20");
  EXPECT_EQ(b.req.method(), method::get);
  EXPECT_EQ(b.req.host(), "h");
  EXPECT_FALSE(b.req.has_body());
}

TEST(http_request, takes_the_path_of_an_absolute_form_target) {
  bound_request a(
      "GET http://example.test:8080/a/b?c=d HTTP/1.1\r\nHost: example.test:8080\r\n\r\n");
  EXPECT_EQ(a.req.path(), "/a/b");
  EXPECT_EQ(a.req.query(), "c=d");
  bound_request bare("GET http://example.test HTTP/1.1\r\nHost: example.test\r\n\r\n");
  EXPECT_EQ(bare.req.path(), "/");
  bound_request query_only("GET http://example.test?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n");
  EXPECT_EQ(query_only.req.path(), "/");
  EXPECT_EQ(query_only.req.query(), "q=1");
}

TEST(http_request, keeps_router_params_until_rebound) {
  bound_request b("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  b.req.set_param("id", "42");
  b.req.set_param("*", "");
  EXPECT_EQ(b.req.param("id"), "42");
  EXPECT_EQ(b.req.param("other"), "");
  EXPECT_TRUE(b.req.has_param("*")) << "an empty capture is still a capture";
  EXPECT_FALSE(b.req.has_param("other"));
  b.req.bind(b.parser.head(), nullptr, {}, false);
  EXPECT_EQ(b.req.param("id"), "");
}

TEST(http_request, keeps_attributes_set_by_middleware_until_rebound) {
  bound_request b("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_FALSE(b.req.has_attribute("auth.subject"));
  EXPECT_EQ(b.req.attribute("auth.subject"), "");
  b.req.set_attribute("auth.subject", "alice");
  b.req.set_attribute("auth.method", "");
  EXPECT_EQ(b.req.attribute("auth.subject"), "alice");
  EXPECT_TRUE(b.req.has_attribute("auth.method"));  // set, though empty
  b.req.set_attribute("auth.subject", "bob");        // replaces
  EXPECT_EQ(b.req.attribute("auth.subject"), "bob");
  {
    std::string transient = "owned";
    b.req.set_attribute("copy", transient);
  }
  EXPECT_EQ(b.req.attribute("copy"), "owned");  // the request keeps its own copy
  ASSERT_EQ(b.req.attributes().size(), 3u);  // in the order first set
  EXPECT_EQ(b.req.attributes()[0].first, "auth.subject");
  EXPECT_EQ(b.req.attributes()[2].second, "owned");
  b.req.bind(b.parser.head(), nullptr, {}, false);
  EXPECT_FALSE(b.req.has_attribute("auth.subject"));
  EXPECT_FALSE(b.req.has_attribute("copy"));
}

TEST(http_request, reports_a_body_by_its_framing) {
  bound_request cl("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_TRUE(cl.req.has_body());
  bound_request empty("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_FALSE(empty.req.has_body());
  bound_request chunked("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_TRUE(chunked.req.has_body());
}

TEST(http_response, clear_resets_everything_a_handler_may_set) {
  response r;
  r.status = 404;
  r.set_text("gone\n");
  r.close = true;
  r.stream = [](body_writer&) -> asio::awaitable<void> { co_return; };
  r.clear();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.headers.empty());
  EXPECT_TRUE(r.body.empty());
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.close);
}

TEST(http_response, set_text_sets_body_and_content_type) {
  response r;
  r.set_text("{}", "application/json");
  EXPECT_EQ(r.body, "{}");
  EXPECT_EQ(r.headers.get("content-type"), "application/json");
  r.set_text("plain");
  EXPECT_EQ(r.headers.get("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.headers.count("Content-Type"), 1u);
}

}  // namespace
}  // namespace trellis::http
