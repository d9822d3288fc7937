// The CORS rule checked by the browser itself. gateway::cors's own tests
// compare its answers with what the Fetch standard requires; here headless
// Chromium decides. Two trellis servers on 127.0.0.1: an API with the cors
// middleware allowing exactly one web origin, http://127.0.0.1:<page
// port>, and a page server on that port whose script fetch()es the API —
// a simple GET, and a PUT with Authorization and a JSON body, which the
// browser sends only after a preflight — and writes each outcome into the
// page ("ok 200 <body>" or "blocked TypeError"). The same page loaded as
// http://localhost:<page port>/ is another origin (the host differs), which
// the API does not allow.
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "support/browser.hpp"
#include "support/http_server.hpp"
#include "trellis/gateway/cors.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;

// The page: the API's address comes in its query (?api=http://...), so
// one static page serves every test.
constexpr std::string_view k_page = R"html(<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>cors</title></head>
<body>
<p id="simple">pending</p>
<p id="preflighted">pending</p>
<script>
'use strict';
const api = new URLSearchParams(location.search).get('api');
async function attempt(id, url, init) {
  const out = document.getElementById(id);
  try {
    const res = await fetch(url, init);
    out.textContent = 'ok ' + res.status + ' ' + (await res.text());
  } catch (e) {
    // A response the browser does not let the script read: a TypeError,
    // whether the request never left or its answer was withheld.
    out.textContent = 'blocked ' + e.name;
  }
}
Promise.all([
  attempt('simple', api + '/api/data', {}),
  attempt('preflighted', api + '/api/item', {
    method: 'PUT',
    headers: { 'Authorization': 'Bearer test-token', 'Content-Type': 'application/json' },
    body: '{"n":7}',
  }),
]).then(() => { document.body.dataset.done = 'true'; });
</script>
</body></html>
)html";

// One request as the API server saw it, and what it answered.
struct seen {
  std::string method, path, origin, request_method;
  int status = 0;
  std::string allow_origin;  // Access-Control-Allow-Origin of the answer
};

// First in the API's chain: records every request, and in after() (which
// runs last, once cors has had its say) the answer the client got.
class recorder final : public http::middleware {
 public:
  asio::awaitable<http::filter_status> before(http::request& req, http::response&) override {
    std::lock_guard lock(mu_);
    log_.push_back({std::string(req.method_text()), std::string(req.path()),
                    std::string(req.header("Origin")),
                    std::string(req.header("Access-Control-Request-Method"))});
    co_return http::filter_status::proceed;
  }
  asio::awaitable<void> after(http::request& req, http::response& res) override {
    std::lock_guard lock(mu_);
    for (auto it = log_.rbegin(); it != log_.rend(); ++it)
      if (it->status == 0 && it->method == req.method_text() && it->path == req.path()) {
        it->status = res.status;
        it->allow_origin = std::string(res.headers.get("Access-Control-Allow-Origin").value_or(""));
        break;
      }
    co_return;
  }
  std::vector<seen> log() const {
    std::lock_guard lock(mu_);
    return log_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<seen> log_;
};

// The page server, then the API allowing the page server's origin.
struct rig {
  http::router page_routes;
  std::unique_ptr<test::test_server> pages;
  std::shared_ptr<recorder> requests = std::make_shared<recorder>();
  http::router api_routes;
  std::unique_ptr<test::test_server> api;
  std::string allowed_origin;

  rig() {
    page_routes.get("/", [](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(std::string(k_page), "text/html; charset=utf-8");
      co_return;
    });
    pages = std::make_unique<test::test_server>(page_routes.to_handler());
    allowed_origin = "http://127.0.0.1:" + std::to_string(pages->port());

    cors_options o;
    o.allow_origins = {allowed_origin};
    o.allow_methods = {"GET", "HEAD", "POST", "PUT"};
    o.allow_headers = {"Authorization", "Content-Type"};
    api_routes.use(requests);
    api_routes.use(std::make_shared<cors>(o));
    api_routes.get("/api/data", [](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(R"({"answer":42})", "application/json");
      co_return;
    });
    api_routes.put("/api/item",
                   [](http::request& req, http::response& res) -> asio::awaitable<void> {
                     auto body = co_await req.read_body(4096);
                     if (!body || req.header("Authorization") != "Bearer test-token") {
                       res.status = 400;
                       co_return;
                     }
                     res.set_text(R"({"stored":)" + *body + "}", "application/json");
                   });
    api = std::make_unique<test::test_server>(api_routes.to_handler());
  }

  // The page, as loaded from `host` (same server, so the same port).
  std::string page_url(std::string_view host) const {
    return "http://" + std::string(host) + ":" + std::to_string(pages->port()) +
           "/?api=http://127.0.0.1:" + std::to_string(api->port());
  }

  std::vector<seen> find(std::string_view method, std::string_view path) const {
    std::vector<seen> out;
    for (const auto& s : requests->log())
      if (s.method == method && s.path == path) out.push_back(s);
    return out;
  }
};

std::string text(const test::browser_result& page, const std::string& id) {
  return test::dom_text(page.dom, id).value_or("(no #" + id + ")");
}

TEST(gateway_cors_browser, the_allowed_origin_reads_simple_and_preflighted_responses) {
  REQUIRE_BROWSER();
  rig r;
  const auto page = test::load_page(r.page_url("127.0.0.1"), {.virtual_time = 3000ms});
  ASSERT_TRUE(page.finished()) << page.describe();
  EXPECT_TRUE(page.uncaught().empty()) << page.describe();
  ASSERT_EQ(test::body_attribute(page.dom, "data-done"), "true") << page.dom;

  EXPECT_EQ(text(page, "simple"), R"(ok 200 {"answer":42})");
  EXPECT_EQ(text(page, "preflighted"), R"(ok 200 {"stored":{"n":7}})");

  // The browser asked first, and the API allowed it; then sent the PUT.
  const auto preflights = r.find("OPTIONS", "/api/item");
  ASSERT_EQ(preflights.size(), 1u);
  EXPECT_EQ(preflights[0].origin, r.allowed_origin);
  EXPECT_EQ(preflights[0].request_method, "PUT");
  EXPECT_EQ(preflights[0].status, 204);
  EXPECT_EQ(preflights[0].allow_origin, r.allowed_origin);
  const auto puts = r.find("PUT", "/api/item");
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(puts[0].allow_origin, r.allowed_origin);
  // The simple GET needs no preflight.
  EXPECT_TRUE(r.find("OPTIONS", "/api/data").empty());
  const auto gets = r.find("GET", "/api/data");
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].allow_origin, r.allowed_origin);
}

TEST(gateway_cors_browser, another_origin_is_blocked_by_the_browser) {
  REQUIRE_BROWSER();
  rig r;
  // Same server, same page, but the page's origin is http://localhost:<port>.
  const auto page = test::load_page(r.page_url("localhost"), {.virtual_time = 3000ms});
  ASSERT_TRUE(page.finished()) << page.describe();
  EXPECT_TRUE(page.uncaught().empty()) << page.describe();
  ASSERT_EQ(test::body_attribute(page.dom, "data-done"), "true") << page.dom;

  EXPECT_EQ(text(page, "simple"), "blocked TypeError");
  EXPECT_EQ(text(page, "preflighted"), "blocked TypeError");

  const std::string origin = "http://localhost:" + std::to_string(r.pages->port());
  // The simple GET did reach the API, which answered it — without
  // Access-Control-Allow-Origin. CORS does not stop a request a form could
  // have sent; it stops the script from reading the answer, and that is
  // the browser's doing.
  const auto gets = r.find("GET", "/api/data");
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].origin, origin);
  EXPECT_EQ(gets[0].status, 200);
  EXPECT_EQ(gets[0].allow_origin, "");
  // The preflight was refused without any allow field, so the browser
  // never sent the PUT at all.
  const auto preflights = r.find("OPTIONS", "/api/item");
  ASSERT_EQ(preflights.size(), 1u);
  EXPECT_EQ(preflights[0].origin, origin);
  EXPECT_EQ(preflights[0].request_method, "PUT");
  EXPECT_EQ(preflights[0].status, 403);
  EXPECT_EQ(preflights[0].allow_origin, "");
  EXPECT_TRUE(r.find("PUT", "/api/item").empty());
}

}  // namespace
}  // namespace trellis::gateway
