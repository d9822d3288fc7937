// Tests of gateway::cors: origin parsing, the policy's configuration
// checks, and what the middleware answers — driven through http::router
// in-process (each request bound to a hand-made request_head, as
// router_test.cpp does) and once end to end with curl against a real
// server on 127.0.0.1. The answers are checked against what a browser
// requires of them (Fetch standard, "CORS-preflight fetch" and "CORS
// check"): a 2xx preflight, Allow-Origin equal to the Origin sent (or
// "*" without credentials), Allow-Credentials "true" for credentialed
// requests, the method and every requested header listed; and, for what
// is refused, no CORS field at all.
#include "trellis/gateway/cors.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/process.hpp"
#include "support/routed.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using http::method;

// ---------------------------------------------------------------- helpers

using header_list = std::vector<std::pair<std::string, std::string>>;

// A routed request and its answer, with what the CORS tests read of it.
struct exchange : test::routed {
  std::string header(std::string_view name) const {
    return std::string(res.headers.get(name).value_or(""));
  }
  // The names of the response's CORS fields ("access-control-..."), for
  // checking that a refusal carries none.
  std::vector<std::string> cors_fields() const {
    std::vector<std::string> out;
    for (const auto f : res.headers) {
      std::string n(f.name);
      for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (n.starts_with("access-control-")) out.push_back(n);
    }
    return out;
  }
};

// Routes one request through `r`, bounded in time.
std::unique_ptr<exchange> send(const http::router& r, method m, const header_list& headers,
                               std::string_view target = "/api/items") {
  return test::route<exchange>(
      r,
      {.method = m, .target = std::string(target), .headers = headers, .host = "api.example.test"},
      2s);
}

// A router with the CORS middleware and a few routes. The handlers record
// that they ran in the exchange (through the response body).
struct app {
  http::router r;
  explicit app(const cors_options& o) {
    r.use(std::make_shared<cors>(o));
    auto ok = [](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text("items\n");
      co_return;
    };
    r.get("/api/items", ok);
    r.put("/api/items", ok);
    r.del("/api/items", ok);
    r.add(method::options, "/api/options",
          [](http::request&, http::response& res) -> asio::awaitable<void> {
            res.status = 200;
            res.set_text("options handler\n");
            co_return;
          });
    r.get("/api/vary", [](http::request& req, http::response& res) -> asio::awaitable<void> {
      // ?n: the Vary lines the handler itself sets.
      const std::string_view q = req.query();
      if (q == "ae") (void)res.headers.add("Vary", "Accept-Encoding");
      if (q == "origin") (void)res.headers.add("Vary", "origin");
      if (q == "two") {
        (void)res.headers.add("Vary", "Accept-Encoding");
        (void)res.headers.add("Vary", "Cookie");
      }
      if (q == "star") (void)res.headers.add("Vary", "*");
      res.set_text("vary\n");
      co_return;
    });
    r.get("/api/own-cors", [](http::request&, http::response& res) -> asio::awaitable<void> {
      // A handler (or upstream) that sets CORS fields of its own.
      (void)res.headers.add("Access-Control-Allow-Origin", "*");
      (void)res.headers.add("Access-Control-Allow-Credentials", "true");
      (void)res.headers.add("Access-Control-Expose-Headers", "X-Internal");
      res.set_text("own\n");
      co_return;
    });
    r.get("/api/throws", [](http::request&, http::response&) -> asio::awaitable<void> {
      throw std::runtime_error("handler bug");
      co_return;
    });
  }
  std::unique_ptr<exchange> preflight(std::string_view origin, std::string_view m,
                                      std::string_view req_headers = {},
                                      std::string_view target = "/api/items") const {
    header_list h{{"Origin", std::string(origin)},
                  {"Access-Control-Request-Method", std::string(m)}};
    if (!req_headers.empty()) h.emplace_back("Access-Control-Request-Headers", req_headers);
    return send(r, method::options, h, target);
  }
  std::unique_ptr<exchange> get(std::string_view origin,
                                std::string_view target = "/api/items") const {
    header_list h;
    if (!origin.empty()) h.emplace_back("Origin", origin);
    return send(r, method::get, h, target);
  }
};

cors_options exact_options() {
  cors_options o;
  o.allow_origins = {"https://app.example.com", "http://localhost:3000"};
  o.allow_methods = {"GET", "HEAD", "POST", "PUT"};
  o.allow_headers = {"Content-Type", "X-Request-Id"};
  return o;
}

const std::string k_preflight_vary =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

// Whether constructing cors with `o` throws core::config_error naming `field`.
::testing::AssertionResult config_error_names(const cors_options& o, const std::string& field) {
  try {
    cors c(o);
  } catch (const core::config_error& e) {
    if (e.field() == field) return ::testing::AssertionSuccess() << e.what();
    return ::testing::AssertionFailure()
           << "config_error names field '" << e.field() << "': " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw something else: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// ---------------------------------------------------------------- parse_origin

TEST(gateway_origin, serialises_as_the_fetch_standard_does) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"https://app.example.com", "https://app.example.com"},
      {"HTTPS://App.Example.COM", "https://app.example.com"},
      {"https://app.example.com:443", "https://app.example.com"},
      {"http://app.example.com:80", "http://app.example.com"},
      {"http://app.example.com:443", "http://app.example.com:443"},
      {"https://app.example.com:80", "https://app.example.com:80"},
      {"http://localhost:03000", "http://localhost:3000"},
      {"ws://chat.example.com:80", "ws://chat.example.com"},
      {"wss://chat.example.com:443", "wss://chat.example.com"},
      {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
      {"http://[0:0:0::1]:8080", "http://[::1]:8080"},
      {"https://[2001:DB8::1]", "https://[2001:db8::1]"},
      {"chrome-extension://abcdefghijklmnop", "chrome-extension://abcdefghijklmnop"},
      {"http://under_score.example", "http://under_score.example"},
  };
  for (const auto& [in, want] : cases) {
    auto o = parse_origin(in);
    ASSERT_TRUE(o) << in << ": " << o.error().message();
    EXPECT_EQ(o->serialize(), want) << in;
  }
}

TEST(gateway_origin, refuses_what_is_not_an_origin) {
  const std::pair<std::string_view, origin_error> cases[] = {
      {"null", origin_error::malformed},
      {"", origin_error::malformed},
      {"app.example.com", origin_error::malformed},
      {"https://app.example.com/", origin_error::malformed},
      {"https://app.example.com/path", origin_error::malformed},
      {"https://user@app.example.com", origin_error::malformed},
      {"https://app.example.com?x=1", origin_error::malformed},
      {"https://app.example.com#f", origin_error::malformed},
      {"https://[::1]x", origin_error::malformed},
      {"://app.example.com", origin_error::bad_scheme},
      {"1https://app.example.com", origin_error::bad_scheme},
      {"ht tp://app.example.com", origin_error::bad_scheme},
      {"https://", origin_error::bad_host},
      {"https://app..example.com", origin_error::bad_host},
      {"https://.example.com", origin_error::bad_host},
      {"https://app.example.com.", origin_error::bad_host},
      {"https://app example.com", origin_error::bad_host},
      {"https://*.example.com", origin_error::bad_host},
      {"https://ex\xc3\xa4mple.com", origin_error::bad_host},
      {"https://[::1", origin_error::bad_host},
      {"https://[fe80::1%25eth0]", origin_error::bad_host},
      {"https://[1.2.3.4]", origin_error::bad_host},
      {"https://a:b:443", origin_error::bad_port},
      {"https://app.example.com:", origin_error::bad_port},
      {"https://app.example.com:0", origin_error::bad_port},
      {"https://app.example.com:65536", origin_error::bad_port},
      {"https://app.example.com:123456", origin_error::bad_port},
      {"https://app.example.com:8x", origin_error::bad_port},
      {"https://app.example.com:-1", origin_error::bad_port},
      {"https://[::1]:", origin_error::bad_port},
  };
  for (const auto& [in, want] : cases) {
    auto o = parse_origin(in);
    ASSERT_FALSE(o) << in << " parsed as " << o->serialize();
    EXPECT_EQ(o.error(), make_error_code(want)) << in << ": " << o.error().message();
  }
}

// Every prefix of an origin (what a truncated field would hold) parses to
// an origin whose serialisation is a fixed point, or fails; never anything
// in between.
TEST(gateway_origin, every_prefix_parses_to_a_fixed_point_or_fails) {
  for (const std::string_view full :
       {"HTTPS://Api.Example.com:8443"sv, "http://[2001:db8::7]:80"sv, "wss://a.b.c:443"sv}) {
    for (std::size_t n = 0; n <= full.size(); ++n) {
      const std::string_view prefix = full.substr(0, n);
      auto o = parse_origin(prefix);
      if (!o) continue;
      auto again = parse_origin(o->serialize());
      ASSERT_TRUE(again) << prefix;
      EXPECT_EQ(*again, *o) << prefix;
      EXPECT_EQ(again->serialize(), o->serialize()) << prefix;
    }
  }
}

// ---------------------------------------------------------------- configuration

TEST(gateway_cors_config, refuses_an_empty_origin_list) {
  EXPECT_TRUE(config_error_names(cors_options{}, "cors.allow_origins"));
}

TEST(gateway_cors_config, refuses_credentials_with_the_wildcard_origin) {
  cors_options o;
  o.allow_origins = {"https://app.example.com", "*"};
  o.allow_credentials = true;
  EXPECT_TRUE(config_error_names(o, "cors.allow_credentials"));
  o.allow_credentials = false;
  EXPECT_NO_THROW(cors{o});
}

TEST(gateway_cors_config, names_the_malformed_origin_or_pattern) {
  for (const std::string bad :
       {"https://app.example.com/", "app.example.com", "https://*example.com",
        "https://a.*.example.com", "*.example.com", "https://*.*.example.com",
        "https://**.example.com", "https://*.[::1]", "https://*", "https://*.",
        "https://*.example.com:0", "*://app.example.com", "NULL"}) {
    cors_options o;
    o.allow_origins = {"https://ok.example.com", bad};
    EXPECT_TRUE(config_error_names(o, "cors.allow_origins[1]")) << bad;
  }
}

TEST(gateway_cors_config, names_a_method_or_header_that_is_not_a_token) {
  cors_options o;
  o.allow_origins = {"https://app.example.com"};
  o.allow_methods = {"GET", "GET POST"};
  EXPECT_TRUE(config_error_names(o, "cors.allow_methods[1]"));
  o.allow_methods = {"GET"};
  o.allow_headers = {"X Bad"};
  EXPECT_TRUE(config_error_names(o, "cors.allow_headers[0]"));
  o.allow_headers = {};
  o.expose_headers = {"ETag", "X-Bad:"};
  EXPECT_TRUE(config_error_names(o, "cors.expose_headers[1]"));
}

TEST(gateway_cors_config, refuses_exposing_every_header_with_credentials) {
  cors_options o;
  o.allow_origins = {"https://app.example.com"};
  o.expose_headers = {"ETag", "*"};
  EXPECT_NO_THROW(cors{o});
  o.allow_credentials = true;
  EXPECT_TRUE(config_error_names(o, "cors.expose_headers[1]"));
}

TEST(gateway_cors_config, refuses_a_negative_max_age) {
  cors_options o;
  o.allow_origins = {"https://app.example.com"};
  o.max_age = std::chrono::seconds(-1);
  EXPECT_TRUE(config_error_names(o, "cors.max_age"));
}

// ---------------------------------------------------------------- origin policy

TEST(gateway_cors_policy, exact_origins_compare_as_serialised) {
  cors c(exact_options());
  EXPECT_TRUE(c.origin_allowed("https://app.example.com"));
  EXPECT_TRUE(c.origin_allowed("https://APP.Example.com")) << "host case";
  EXPECT_TRUE(c.origin_allowed("HTTPS://app.example.com")) << "scheme case";
  EXPECT_TRUE(c.origin_allowed("https://app.example.com:443")) << "default port";
  EXPECT_TRUE(c.origin_allowed("http://localhost:3000"));
  EXPECT_FALSE(c.origin_allowed("http://localhost")) << "port is part of the origin";
  EXPECT_FALSE(c.origin_allowed("http://localhost:3001"));
  EXPECT_FALSE(c.origin_allowed("http://app.example.com")) << "scheme is part of the origin";
  EXPECT_FALSE(c.origin_allowed("https://app.example.com:8443"));
  EXPECT_FALSE(c.origin_allowed("https://evil.app.example.com")) << "no implied subdomains";
  EXPECT_FALSE(c.origin_allowed("https://app.example.com.evil.net")) << "no prefix match";
  EXPECT_FALSE(c.origin_allowed("https://app.example.co")) << "no suffix match";
  EXPECT_FALSE(c.origin_allowed("https://xapp.example.com"));
  EXPECT_FALSE(c.origin_allowed("https://app.example.com/")) << "not an origin";
  EXPECT_FALSE(c.origin_allowed("null"));
  EXPECT_FALSE(c.origin_allowed(""));
}

TEST(gateway_cors_policy, a_default_port_in_the_configuration_is_the_same_origin) {
  cors_options o;
  o.allow_origins = {"https://App.Example.com:443"};
  cors c(o);
  EXPECT_TRUE(c.origin_allowed("https://app.example.com"));
  EXPECT_FALSE(c.origin_allowed("https://app.example.com:4443"));
}

TEST(gateway_cors_policy, a_pattern_matches_subdomains_only) {
  cors_options o;
  o.allow_origins = {"https://*.example.com", "http://*.dev.test:8080"};
  cors c(o);
  EXPECT_TRUE(c.origin_allowed("https://a.example.com"));
  EXPECT_TRUE(c.origin_allowed("https://a.b.example.com")) << "one or more labels";
  EXPECT_TRUE(c.origin_allowed("https://A.EXAMPLE.COM"));
  EXPECT_TRUE(c.origin_allowed("https://a.example.com:443")) << "default port";
  EXPECT_FALSE(c.origin_allowed("https://example.com")) << "not the domain itself";
  EXPECT_FALSE(c.origin_allowed("https://.example.com"));
  EXPECT_FALSE(c.origin_allowed("https://aexample.com")) << "a label boundary";
  EXPECT_FALSE(c.origin_allowed("https://a.example.com.evil.net"));
  EXPECT_FALSE(c.origin_allowed("http://a.example.com")) << "scheme exact";
  EXPECT_FALSE(c.origin_allowed("https://a.example.com:8443")) << "port exact";
  EXPECT_TRUE(c.origin_allowed("http://x.dev.test:8080"));
  EXPECT_FALSE(c.origin_allowed("http://x.dev.test"));
  EXPECT_FALSE(c.origin_allowed("http://x.dev.test:8081"));
  EXPECT_FALSE(c.origin_allowed("null"));
}

TEST(gateway_cors_policy, null_only_when_listed) {
  cors_options o;
  o.allow_origins = {"*"};
  cors wildcard(o);
  EXPECT_TRUE(wildcard.origin_allowed("https://anything.example"));
  EXPECT_TRUE(wildcard.origin_allowed("http://127.0.0.1:9"));
  EXPECT_FALSE(wildcard.origin_allowed("null")) << "\"*\" does not include null";
  EXPECT_FALSE(wildcard.origin_allowed("not an origin"));
  o.allow_origins = {"*", "null"};
  EXPECT_TRUE(cors(o).origin_allowed("null"));
  o.allow_origins = {"null"};
  cors only_null(o);
  EXPECT_TRUE(only_null.origin_allowed("null"));
  EXPECT_FALSE(only_null.origin_allowed("Null")) << "null is compared as sent";
  EXPECT_FALSE(only_null.origin_allowed("https://app.example.com"));
}

// ---------------------------------------------------------------- preflight

TEST(gateway_cors_preflight, an_allowed_one_is_answered_without_the_handler) {
  app a(exact_options());
  auto x = a.preflight("https://app.example.com", "PUT", "content-type,x-request-id");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_EQ(x->res.body, "") << "the handler did not run";
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_EQ(x->header("Access-Control-Allow-Methods"), "GET, HEAD, POST, PUT");
  EXPECT_EQ(x->header("Access-Control-Allow-Headers"), "content-type, x-request-id");
  EXPECT_EQ(x->header("Access-Control-Max-Age"), "600");
  EXPECT_FALSE(x->res.headers.contains("Access-Control-Allow-Credentials"));
  EXPECT_FALSE(x->res.headers.contains("Access-Control-Expose-Headers"))
      << "Expose-Headers means nothing on a preflight";
  EXPECT_EQ(x->header("Vary"), k_preflight_vary);
  EXPECT_EQ(x->res.headers.count("Vary"), 1u);
  EXPECT_FALSE(x->res.headers.contains("Allow")) << "not the router's own OPTIONS answer";
}

TEST(gateway_cors_preflight, without_requested_headers_has_no_allow_headers) {
  app a(exact_options());
  auto x = a.preflight("https://app.example.com", "GET");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_FALSE(x->res.headers.contains("Access-Control-Allow-Headers"));
}

TEST(gateway_cors_preflight, answers_even_where_no_route_is) {
  // Preflights never reach routing: a 404 or 405 to one would fail it in
  // the browser with a message about CORS, hiding the real problem.
  app a(exact_options());
  auto x = a.preflight("https://app.example.com", "PUT", {}, "/nowhere");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "https://app.example.com");
}

TEST(gateway_cors_preflight, with_credentials_answers_the_exact_origin_and_allows_them) {
  auto o = exact_options();
  o.allow_credentials = true;
  o.max_age = std::chrono::seconds(0);
  app a(o);
  auto x = a.preflight("http://localhost:3000", "POST", "Content-Type");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "http://localhost:3000");
  EXPECT_EQ(x->header("Access-Control-Allow-Credentials"), "true");
  EXPECT_EQ(x->header("Access-Control-Max-Age"), "0");
}

TEST(gateway_cors_preflight, the_wildcard_answers_a_star) {
  cors_options o;
  o.allow_origins = {"*"};
  o.allow_methods = {"GET", "DELETE"};
  app a(o);
  auto x = a.preflight("https://anyone.example", "DELETE");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(x->header("Access-Control-Allow-Methods"), "GET, DELETE");
}

TEST(gateway_cors_preflight, echoes_the_origin_as_the_browser_sent_it) {
  // The browser compares Allow-Origin with its Origin byte for byte; an
  // allowed origin written with its default port is echoed with it.
  auto o = exact_options();
  o.allow_origins.push_back("https://*.example.org");
  app a(o);
  auto x = a.preflight("https://app.example.com:443", "GET");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "https://app.example.com:443");
  auto y = a.preflight("https://tenant1.eu.example.org", "GET");
  EXPECT_EQ(y->res.status, 204);
  EXPECT_EQ(y->header("Access-Control-Allow-Origin"), "https://tenant1.eu.example.org");
}

TEST(gateway_cors_preflight, refuses_an_origin_not_allowed_without_any_cors_field) {
  app a(exact_options());
  for (const std::string_view origin :
       {"https://evil.example.net"sv, "https://app.example.com.evil.net"sv,
        "http://app.example.com"sv, "null"sv, "garbage"sv, "https://app.example.com/"sv}) {
    auto x = a.preflight(origin, "GET");
    EXPECT_EQ(x->res.status, 403) << origin;
    EXPECT_EQ(x->cors_fields(), std::vector<std::string>{}) << origin;
    EXPECT_EQ(x->header("Vary"), k_preflight_vary) << origin;
    EXPECT_NE(x->res.body.find("origin not allowed"), std::string::npos) << x->res.body;
  }
}

TEST(gateway_cors_preflight, refuses_a_method_not_allowed) {
  app a(exact_options());
  auto x = a.preflight("https://app.example.com", "DELETE");
  EXPECT_EQ(x->res.status, 403);
  EXPECT_EQ(x->cors_fields(), std::vector<std::string>{});
  EXPECT_NE(x->res.body.find("method not allowed"), std::string::npos) << x->res.body;
  EXPECT_EQ(a.preflight("https://app.example.com", "GE T")->res.status, 403) << "not a token";
  EXPECT_EQ(a.preflight("https://app.example.com", "")->res.status, 403);
}

TEST(gateway_cors_preflight, compares_methods_case_sensitively_as_browsers_do) {
  auto o = exact_options();
  o.allow_methods = {"GET", "PATCH"};
  app a(o);
  EXPECT_EQ(a.preflight("https://app.example.com", "PATCH")->res.status, 204);
  auto x = a.preflight("https://app.example.com", "patch");
  EXPECT_EQ(x->res.status, 403) << "a browser would reject PATCH as the answer to patch";
  EXPECT_EQ(x->cors_fields(), std::vector<std::string>{});
}

TEST(gateway_cors_preflight, refuses_when_any_requested_header_is_not_allowed) {
  app a(exact_options());
  auto x = a.preflight("https://app.example.com", "PUT", "content-type, x-secret");
  EXPECT_EQ(x->res.status, 403);
  EXPECT_EQ(x->cors_fields(), std::vector<std::string>{});
  EXPECT_NE(x->res.body.find("header not allowed"), std::string::npos) << x->res.body;
  EXPECT_EQ(a.preflight("https://app.example.com", "PUT", "authorization")->res.status, 403);
  EXPECT_EQ(a.preflight("https://app.example.com", "PUT", "x y")->res.status, 403) << "not a token";
}

TEST(gateway_cors_preflight, compares_requested_headers_case_insensitively) {
  app a(exact_options());
  auto x = a.preflight("https://app.example.com", "PUT", " Content-TYPE ,, X-REQUEST-ID, ");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_EQ(x->header("Access-Control-Allow-Headers"), "Content-TYPE, X-REQUEST-ID")
      << "the requested names, and only those";
}

TEST(gateway_cors_preflight, star_methods_and_headers_echo_the_request) {
  auto o = exact_options();
  o.allow_methods = {"*"};
  o.allow_headers = {"*"};
  o.allow_credentials = true;
  app a(o);
  auto x = a.preflight("https://app.example.com", "PROPFIND", "authorization, x-anything");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_EQ(x->header("Access-Control-Allow-Methods"), "PROPFIND");
  EXPECT_EQ(x->header("Access-Control-Allow-Headers"), "authorization, x-anything")
      << "echoed, since a literal * would not cover Authorization nor credentials";
  EXPECT_EQ(x->header("Access-Control-Allow-Credentials"), "true");
}

TEST(gateway_cors_preflight, null_only_when_listed) {
  app refused(exact_options());
  EXPECT_EQ(refused.preflight("null", "GET")->res.status, 403);
  auto o = exact_options();
  o.allow_origins.push_back("null");
  app listed(o);
  auto x = listed.preflight("null", "GET");
  EXPECT_EQ(x->res.status, 204);
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "null");
}

TEST(gateway_cors_preflight, a_plain_options_goes_to_the_handler) {
  app a(exact_options());
  // No Origin, no Access-Control-Request-Method: the router's own answer.
  auto plain = send(a.r, method::options, {});
  EXPECT_EQ(plain->res.status, 204);
  EXPECT_TRUE(plain->res.headers.contains("Allow")) << "the router answered";
  EXPECT_EQ(plain->cors_fields(), std::vector<std::string>{});
  // With Origin but no request method: an actual OPTIONS request.
  auto with_origin =
      send(a.r, method::options, {{"Origin", "https://app.example.com"}}, "/api/options");
  EXPECT_EQ(with_origin->res.status, 200);
  EXPECT_EQ(with_origin->res.body, "options handler\n");
  EXPECT_EQ(with_origin->header("Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_EQ(with_origin->header("Vary"), "Origin");
  // A request method without Origin is not a preflight either.
  auto no_origin =
      send(a.r, method::options, {{"Access-Control-Request-Method", "PUT"}}, "/api/options");
  EXPECT_EQ(no_origin->res.body, "options handler\n");
  EXPECT_EQ(no_origin->cors_fields(), std::vector<std::string>{});
  // Only OPTIONS is a preflight.
  auto get =
      send(a.r, method::get,
           {{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "PUT"}});
  EXPECT_EQ(get->res.body, "items\n");
}

// ---------------------------------------------------------------- actual requests

TEST(gateway_cors_actual, an_allowed_origin_gets_allow_origin_and_exposed_headers) {
  auto o = exact_options();
  o.expose_headers = {"ETag", "X-RateLimit-Remaining"};
  app a(o);
  auto x = a.get("https://app.example.com");
  EXPECT_EQ(x->res.status, 200);
  EXPECT_EQ(x->res.body, "items\n");
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_EQ(x->header("Access-Control-Expose-Headers"), "ETag, X-RateLimit-Remaining");
  EXPECT_FALSE(x->res.headers.contains("Access-Control-Allow-Credentials"));
  EXPECT_FALSE(x->res.headers.contains("Access-Control-Allow-Methods"))
      << "preflight fields belong to preflights";
  EXPECT_EQ(x->header("Vary"), "Origin");
}

TEST(gateway_cors_actual, with_credentials_allows_them) {
  auto o = exact_options();
  o.allow_credentials = true;
  app a(o);
  auto x = a.get("http://localhost:3000");
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "http://localhost:3000");
  EXPECT_EQ(x->header("Access-Control-Allow-Credentials"), "true");
}

TEST(gateway_cors_actual, a_disallowed_origin_gets_the_response_without_cors_fields) {
  // The server answers; the browser is what keeps the page from reading it.
  app a(exact_options());
  auto x = a.get("https://evil.example.net");
  EXPECT_EQ(x->res.status, 200);
  EXPECT_EQ(x->res.body, "items\n");
  EXPECT_EQ(x->cors_fields(), std::vector<std::string>{});
  EXPECT_EQ(x->header("Vary"), "Origin") << "so a cache does not hand it to an allowed origin";
}

TEST(gateway_cors_actual, without_origin_only_vary_is_added) {
  app a(exact_options());
  auto x = a.get("");
  EXPECT_EQ(x->res.body, "items\n");
  EXPECT_EQ(x->cors_fields(), std::vector<std::string>{});
  EXPECT_EQ(x->header("Vary"), "Origin")
      << "a cached copy without Allow-Origin must not be served to a page";
  auto own = a.get("", "/api/own-cors");
  EXPECT_EQ(own->header("Access-Control-Allow-Origin"), "*") << "untouched without Origin";
}

TEST(gateway_cors_actual, the_policy_replaces_or_removes_the_handlers_cors_fields) {
  app a(exact_options());
  auto allowed = a.get("https://app.example.com", "/api/own-cors");
  EXPECT_EQ(allowed->res.headers.get_all("Access-Control-Allow-Origin"),
            std::vector<std::string_view>{"https://app.example.com"})
      << "one value: two would fail the request in the browser";
  EXPECT_FALSE(allowed->res.headers.contains("Access-Control-Allow-Credentials"));
  EXPECT_FALSE(allowed->res.headers.contains("Access-Control-Expose-Headers"));
  auto refused = a.get("https://evil.example.net", "/api/own-cors");
  EXPECT_EQ(refused->cors_fields(), std::vector<std::string>{})
      << "never an Allow-Origin for an origin the policy refuses";
}

TEST(gateway_cors_actual, errors_carry_cors_fields_too) {
  app a(exact_options());
  auto thrown = a.get("https://app.example.com", "/api/throws");
  EXPECT_EQ(thrown->res.status, 500);
  EXPECT_EQ(thrown->header("Access-Control-Allow-Origin"), "https://app.example.com");
  auto missing = a.get("https://app.example.com", "/nowhere");
  EXPECT_EQ(missing->res.status, 404);
  EXPECT_EQ(missing->header("Access-Control-Allow-Origin"), "https://app.example.com");
}

TEST(gateway_cors_actual, two_origin_fields_are_no_allowed_origin) {
  app a(exact_options());
  auto x = send(a.r, method::get,
                {{"Origin", "https://app.example.com"}, {"Origin", "https://app.example.com"}});
  EXPECT_EQ(x->cors_fields(), std::vector<std::string>{});
  EXPECT_EQ(x->header("Vary"), "Origin");
}

TEST(gateway_cors_actual, the_wildcard_answers_a_star_but_still_varies) {
  cors_options o;
  o.allow_origins = {"*"};
  app a(o);
  auto x = a.get("https://anyone.example");
  EXPECT_EQ(x->header("Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(x->header("Vary"), "Origin") << "null is answered differently";
  EXPECT_EQ(a.get("null")->cors_fields(), std::vector<std::string>{});
}

// ---------------------------------------------------------------- Vary

TEST(gateway_cors_vary, is_appended_to_the_handlers_vary) {
  app a(exact_options());
  EXPECT_EQ(a.get("https://app.example.com", "/api/vary?ae")->header("Vary"),
            "Accept-Encoding, Origin");
  auto same = a.get("https://app.example.com", "/api/vary?origin");
  EXPECT_EQ(same->header("Vary"), "origin") << "already listed, case-insensitively";
  auto two = a.get("", "/api/vary?two");
  EXPECT_EQ(two->res.headers.get_all("Vary"),
            std::vector<std::string_view>{"Accept-Encoding, Cookie, Origin"});
  EXPECT_EQ(a.get("https://app.example.com", "/api/vary?star")->header("Vary"), "*");
}

TEST(gateway_cors_vary, add_vary_merges_lists) {
  http::fields f;
  cors::add_vary(f, "Origin");
  EXPECT_EQ(f.get("Vary"), "Origin");
  cors::add_vary(f, "origin, Accept-Encoding");
  EXPECT_EQ(f.get("Vary"), "Origin, Accept-Encoding");
  http::fields g;
  (void)g.add("Vary", "");
  (void)g.add("Vary", " Cookie ");
  cors::add_vary(g, "Origin,,Cookie");
  EXPECT_EQ(g.get_all("Vary"), std::vector<std::string_view>{"Cookie, Origin"});
  http::fields h;
  (void)h.add("Vary", "Cookie, *");
  cors::add_vary(h, "Origin");
  EXPECT_EQ(h.get("Vary"), "Cookie, *");
}

// ---------------------------------------------------------------- the matrix

// Every combination of origin kind, credentials, allowed or not, preflight
// or actual, method and header allowed or not: the answer is what a
// browser needs to let exactly the allowed ones through.
TEST(gateway_cors_matrix, answers_every_combination_as_a_browser_needs) {
  enum class kind { exact, pattern, wildcard };
  int checked = 0;
  for (const kind k : {kind::exact, kind::pattern, kind::wildcard}) {
    for (const bool credentials : {false, true}) {
      if (k == kind::wildcard && credentials) continue;  // a configuration error, tested above
      cors_options o;
      o.allow_origins = k == kind::exact     ? std::vector<std::string>{"https://app.example.com"}
                        : k == kind::pattern ? std::vector<std::string>{"https://*.example.com"}
                                             : std::vector<std::string>{"*"};
      o.allow_methods = {"GET", "PUT"};
      o.allow_headers = {"X-Token"};
      o.allow_credentials = credentials;
      app a(o);
      for (const bool origin_ok : {true, false}) {
        // A disallowed origin for "*" is one it cannot match: null.
        const std::string origin =
            origin_ok ? (k == kind::pattern ? "https://APP.example.com" : "https://app.example.com")
            : k == kind::wildcard ? "null"
                                  : "https://app.example.net";
        const std::string want_origin = k == kind::wildcard ? "*" : origin;
        SCOPED_TRACE(origin + (credentials ? " with credentials" : "") + " kind " +
                     std::to_string(static_cast<int>(k)));
        // Actual request.
        auto actual = a.get(origin);
        EXPECT_EQ(actual->res.status, 200);
        EXPECT_EQ(actual->header("Vary"), "Origin");
        if (origin_ok) {
          EXPECT_EQ(actual->header("Access-Control-Allow-Origin"), want_origin);
          EXPECT_EQ(actual->res.headers.contains("Access-Control-Allow-Credentials"), credentials);
          if (credentials) {
            EXPECT_EQ(actual->header("Access-Control-Allow-Credentials"), "true");
          }
        } else {
          EXPECT_EQ(actual->cors_fields(), std::vector<std::string>{});
        }
        ++checked;
        // Preflights.
        for (const bool method_ok : {true, false}) {
          for (const bool header_ok : {true, false}) {
            for (const bool header_case : {false, true}) {
              const std::string m = method_ok ? "PUT" : "DELETE";
              const std::string h = header_ok ? (header_case ? "X-TOKEN" : "x-token") : "x-other";
              auto p = a.preflight(origin, m, h);
              EXPECT_EQ(p->header("Vary"), k_preflight_vary);
              if (origin_ok && method_ok && header_ok) {
                EXPECT_EQ(p->res.status, 204) << m << " " << h;
                EXPECT_EQ(p->header("Access-Control-Allow-Origin"), want_origin);
                EXPECT_EQ(p->header("Access-Control-Allow-Methods"), "GET, PUT");
                EXPECT_EQ(p->header("Access-Control-Allow-Headers"), h);
                EXPECT_EQ(p->res.headers.contains("Access-Control-Allow-Credentials"), credentials);
              } else {
                EXPECT_EQ(p->res.status, 403) << m << " " << h;
                EXPECT_EQ(p->cors_fields(), std::vector<std::string>{}) << m << " " << h;
              }
              ++checked;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 5 * 2 * (1 + 8));
}

// ---------------------------------------------------------------- end to end

TEST(gateway_cors_curl, a_real_server_answers_preflights_and_requests) {
  if (!test::program_exists("curl")) GTEST_SKIP() << "curl not installed";
  auto o = exact_options();
  o.allow_credentials = true;
  o.expose_headers = {"ETag"};
  app a(o);
  test::test_server s(a.r.to_handler());
  const auto curl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"curl", "-sS", "-i", "--max-time", "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto done = test::run(argv, {}, 15s);
    EXPECT_TRUE(done.status.success()) << done.status.describe() << ": " << done.err;
    return test::parse_curl(done.out);
  };

  auto pre = curl({"-X", "OPTIONS", "-H", "Origin: https://app.example.com", "-H",
                   "Access-Control-Request-Method: PUT", "-H",
                   "Access-Control-Request-Headers: content-type", s.url("/api/items")});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(pre.header("access-control-allow-credentials"), "true");
  EXPECT_EQ(pre.header("access-control-allow-methods"), "GET, HEAD, POST, PUT");
  EXPECT_EQ(pre.header("access-control-allow-headers"), "content-type");
  EXPECT_EQ(pre.header("access-control-max-age"), "600");
  EXPECT_EQ(pre.header("vary"), k_preflight_vary);
  EXPECT_EQ(pre.body, "");

  auto refused = curl({"-X", "OPTIONS", "-H", "Origin: https://evil.example.net", "-H",
                       "Access-Control-Request-Method: PUT", s.url("/api/items")});
  EXPECT_EQ(refused.status, 403);
  for (const auto& [name, value] : refused.headers)
    EXPECT_FALSE(name.starts_with("access-control-")) << name << ": " << value;

  auto actual = curl({"-X", "PUT", "-H", "Origin: https://app.example.com", "-H",
                      "Content-Type: application/json", "--data", "{}", s.url("/api/items")});
  EXPECT_EQ(actual.status, 200);
  EXPECT_EQ(actual.body, "items\n");
  EXPECT_EQ(actual.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(actual.header("access-control-allow-credentials"), "true");
  EXPECT_EQ(actual.header("access-control-expose-headers"), "ETag");
  EXPECT_EQ(actual.header("vary"), "Origin");

  auto plain = curl({s.url("/api/items")});
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.header("access-control-allow-origin"), "");
  EXPECT_EQ(plain.header("vary"), "Origin");
}

}  // namespace
}  // namespace trellis::gateway
