// Tests of the JSON helpers: media-type checks, parse errors that say where
// and what, problem+json bodies (RFC 9457), and parse_json_body/read_json
// through a real server on 127.0.0.1 (declared length, chunked body, 413,
// 415, 400 with the position).
#include "trellis/http/json.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/http_client.hpp"
#include "trellis/codec/http/error.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// --- pure parts ------------------------------------------------------------------

TEST(http_json, recognises_json_media_types) {
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_TRUE(is_json_media_type("application/json; charset=utf-8"));
  EXPECT_TRUE(is_json_media_type("Application/JSON"));
  EXPECT_TRUE(is_json_media_type("application/merge-patch+json"));
  EXPECT_TRUE(is_json_media_type("application/problem+json ; x=y"));
  EXPECT_TRUE(is_json_media_type("application/vnd.api+JSON"));
  EXPECT_FALSE(is_json_media_type(""));
  EXPECT_FALSE(is_json_media_type("text/plain"));
  EXPECT_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_json_media_type("application/jsonp"));
  EXPECT_FALSE(is_json_media_type("application/+json"));
  EXPECT_FALSE(is_json_media_type("json"));
  EXPECT_FALSE(is_json_media_type("text/json-seq"));
}

TEST(http_json, parses_a_document) {
  auto v = parse_json(" {\"a\": [1, 2.5, \"x\", null, true]}\n");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ((*v)["a"][2], "x");
  EXPECT_EQ((*v)["a"].size(), 5u);
}

TEST(http_json, a_syntax_error_says_where_and_what_was_expected) {
  json_failure why;
  auto v = parse_json("{\"a\":1,}", &why);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error(), make_error_code(json_error::syntax));
  EXPECT_EQ(why.status, 400);
  EXPECT_EQ(why.title, "Bad Request");
  EXPECT_EQ(why.offset, 7u) << "the '}' where a key should be";
  EXPECT_EQ(why.line, 1u);
  EXPECT_EQ(why.column, 8u);
  EXPECT_EQ(why.detail,
            "malformed JSON at byte 7 (line 1, column 8): syntax error while parsing object key - "
            "unexpected '}'; "
            "expected string literal");
}

TEST(http_json, error_positions_count_lines_and_columns) {
  json_failure why;
  ASSERT_FALSE(parse_json("{\n  \"a\": 1,\n  \"b\": tru\n}", &why));
  EXPECT_EQ(why.line, 3u);
  EXPECT_EQ(why.column, 11u);
  EXPECT_NE(why.detail.find("invalid literal"), std::string::npos) << why.detail;

  ASSERT_FALSE(parse_json("", &why));
  EXPECT_EQ(why.offset, 0u);
  EXPECT_NE(why.detail.find("unexpected end of input"), std::string::npos) << why.detail;

  ASSERT_FALSE(parse_json("[1, 2", &why));
  EXPECT_EQ(why.offset, 5u) << "the end of the input";
  EXPECT_NE(why.detail.find("expected ']'"), std::string::npos) << why.detail;

  ASSERT_FALSE(parse_json("{} x", &why));
  EXPECT_NE(why.detail.find("expected end of input"), std::string::npos) << why.detail;

  ASSERT_FALSE(parse_json("1e999", &why));
  EXPECT_NE(why.detail.find("number overflow"), std::string::npos) << why.detail;

  ASSERT_FALSE(parse_json("\"\xff\"", &why));
  EXPECT_NE(why.detail.find("UTF-8"), std::string::npos) << why.detail;
}

TEST(http_json, a_long_bad_token_is_cut_short_in_the_message) {
  json_failure why;
  ASSERT_FALSE(parse_json("\"" + std::string(5000, 'x') + "\x01\"", &why));
  EXPECT_LT(why.detail.size(), 400u);
}

TEST(http_json, refuses_nesting_deeper_than_the_limit) {
  const std::string ok = std::string(max_json_depth, '[') + std::string(max_json_depth, ']');
  EXPECT_TRUE(parse_json(ok));
  json_failure why;
  const std::string deep =
      std::string(max_json_depth + 1, '[') + std::string(max_json_depth + 1, ']');
  auto v = parse_json(deep, &why);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error(), make_error_code(json_error::too_deep));
  EXPECT_EQ(why.status, 400);
  EXPECT_EQ(why.offset, max_json_depth);
  // Brackets inside strings do not count.
  EXPECT_TRUE(parse_json("[\"" + std::string(1000, '[') + "\\\"[\"]"));
  // A megabyte of '[' costs a scan, not a deep value.
  EXPECT_FALSE(parse_json(std::string(1 << 20, '[')));
}

TEST(http_json, set_json_writes_compact_json_with_a_newline) {
  response res;
  set_json(res, json{{"b", 1}, {"a", "x"}}, 201);
  EXPECT_EQ(res.status, 201);
  EXPECT_EQ(res.body, "{\"a\":\"x\",\"b\":1}\n");
  EXPECT_EQ(res.headers.get("Content-Type"), "application/json");

  nlohmann::ordered_json ordered;
  ordered["b"] = 1;
  ordered["a"] = "x";
  set_json(res, ordered);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "{\"b\":1,\"a\":\"x\"}\n") << "ordered_json keeps insertion order";

  set_json(res, json("bad \xff byte"));
  EXPECT_EQ(res.body, "\"bad \xEF\xBF\xBD byte\"\n") << "invalid UTF-8 is replaced, not thrown";
}

TEST(http_json, set_problem_writes_rfc9457_members_in_order) {
  response res;
  set_problem(res, 404, "Not Found", "no book 7");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json");
  EXPECT_EQ(res.body,
            "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"no book "
            "7\"}\n");

  set_problem(res, 500, "Internal Server Error", "");
  EXPECT_EQ(res.body,
            "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500}\n");

  set_problem(res, 422, "Unprocessable Content", "1 field is invalid",
              json{{"errors", json::array({{{"field", "year"}}})}, {"status", 200}, {"type", "x"}});
  const json body = json::parse(res.body);
  EXPECT_EQ(body["status"], 422) << "extensions cannot replace the standard members";
  EXPECT_EQ(body["type"], "about:blank");
  EXPECT_EQ(body["errors"][0]["field"], "year");
}

TEST(http_json, set_problem_for_a_failure_carries_the_position) {
  json_failure why;
  ASSERT_FALSE(parse_json("[1,,2]", &why));
  response res;
  set_problem(res, why);
  const json body = json::parse(res.body);
  EXPECT_EQ(body["status"], 400);
  EXPECT_EQ(body["offset"], 3);
  EXPECT_EQ(body["line"], 1);
  EXPECT_EQ(body["column"], 4);
  EXPECT_EQ(body["detail"], why.detail);
}

// --- through a server ------------------------------------------------------------------

// Serves POST /echo: read_json, then the value back; POST /small: the
// same with a 16-byte limit.
class json_server {
 public:
  json_server() : rt_({.workers = 1, .drain_timeout = 3s, .handle_signals = false}) {
    router_.post("/echo", [](request& req, response& res) -> asio::awaitable<void> {
      auto v = co_await read_json(req, res);
      if (v) set_json(res, json{{"got", *v}});
    });
    router_.post("/small", [](request& req, response& res) -> asio::awaitable<void> {
      auto v = co_await read_json(req, res, 16);
      if (v) set_json(res, *v);
    });
    srv_ = std::make_unique<server>(router_.to_handler());
    auto ep = srv_->listen(rt_, {asio::ip::address_v4::loopback(), 0});
    if (!ep) throw std::runtime_error("listen failed: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~json_server() {
    rt_.drain();
    if (thread_.joinable()) thread_.join();
  }
  json_server(const json_server&) = delete;
  json_server& operator=(const json_server&) = delete;

  // POSTs `body` with Content-Length (or chunked) and `type`.
  test::raw_response post(std::string_view path, std::string_view type, std::string_view body,
                          bool chunked = false) {
    test::raw_client c(port_);
    std::string req = "POST " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n";
    if (!type.empty()) req += "Content-Type: " + std::string(type) + "\r\n";
    if (chunked) {
      req += "Transfer-Encoding: chunked\r\n\r\n";
      for (std::size_t i = 0; i < body.size(); i += 3) {
        const auto piece = body.substr(i, 3);
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        req += size;
        req += piece;
        req += "\r\n";
      }
      req += "0\r\n\r\n";
    } else {
      req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
    }
    EXPECT_TRUE(c.send(req)) << c.error();
    auto r = c.read_response();
    EXPECT_TRUE(r) << c.error();
    return r.value_or(test::raw_response{});
  }

 private:
  core::runtime rt_;
  router router_;
  std::unique_ptr<server> srv_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST(http_json, read_json_accepts_json_and_plus_json_bodies) {
  json_server s;
  auto r = s.post("/echo", "application/json", "{\"x\": [1,2]}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"got\":{\"x\":[1,2]}}\n");
  r = s.post("/echo", "application/merge-patch+json; charset=utf-8", "{\"x\": null}",
             /*chunked=*/true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"got\":{\"x\":null}}\n");
}

TEST(http_json, malformed_json_gets_a_400_problem_that_explains) {
  json_server s;
  const auto r = s.post("/echo", "application/json", "{\"title\": \"Dune\", \"year\": 19 65}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
  const json body = json::parse(r.body);
  EXPECT_EQ(body["type"], "about:blank");
  EXPECT_EQ(body["title"], "Bad Request");
  EXPECT_EQ(body["status"], 400);
  // The parser stops at the last byte of the token it cannot accept: the
  // '5' of "65".
  EXPECT_EQ(body["offset"], 30);
  EXPECT_EQ(body["detail"],
            "malformed JSON at byte 30 (line 1, column 31): syntax error while parsing object - "
            "unexpected number "
            "literal; expected '}'");
}

TEST(http_json, a_body_not_declared_json_gets_415) {
  json_server s;
  for (const char* type : {"", "text/plain", "application/x-www-form-urlencoded"}) {
    const auto r = s.post("/echo", type, "{}");
    EXPECT_EQ(r.status, 415) << type;
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json") << type;
    EXPECT_EQ(json::parse(r.body)["title"], "Unsupported Media Type") << type;
  }
}

TEST(http_json, a_body_over_the_limit_gets_413_declared_or_chunked) {
  json_server s;
  auto r = s.post("/small", "application/json", "[1,2,3,4,5,6,7,8,9]");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json::parse(r.body)["detail"], "the body is larger than 16 bytes");
  r = s.post("/small", "application/json", "[1,2,3,4,5,6,7,8,9]", /*chunked=*/true);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.header("Connection"), "close") << "the rest of the body was not read";
  r = s.post("/small", "application/json", "[1,2,3]");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[1,2,3]\n");
}

TEST(http_json, error_codes_name_their_category_and_cause) {
  EXPECT_EQ(make_error_code(json_error::unsupported_media_type).message(),
            "the request body is not declared as JSON");
  EXPECT_STREQ(json_category().name(), "trellis.http.json");
  EXPECT_EQ(make_error_code(json_error::syntax).message(), "malformed JSON");
}

}  // namespace
}  // namespace trellis::http
