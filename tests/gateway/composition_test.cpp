// Tests of gateway::composition with real peers on 127.0.0.1: trellis
// services on their own threads (users, orders, a slow one, a broken one),
// the composition on a gateway server of its own, a raw client in front.
#include "trellis/gateway/composition.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.hpp"
#include "support/http_server.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/http/json.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using test::raw_client;
using test::test_server;
using ::testing::HasSubstr;

std::shared_ptr<lb::cluster> cluster_of(std::uint16_t port, std::string name) {
  lb::cluster_options o;
  o.name = std::move(name);
  lb::endpoint_config e;
  e.address = "127.0.0.1:" + std::to_string(port);
  return std::make_shared<lb::cluster>(o, std::vector<lb::endpoint_config>{e});
}

// A service that answers {"path": TARGET, "who": NAME} and records what it
// was sent in `seen` (the last request's fields, one per line).
struct service {
  explicit service(std::string name)
      : server([this, name](http::request& req, http::response& res) -> asio::awaitable<void> {
          std::string fields;
          for (const auto& f : req.headers())
            fields += std::string(f.name) + ": " + std::string(f.value) + "\n";
          {
            std::lock_guard lock(mu);
            seen = fields;
          }
          ++hits;
          if (req.path() == "/missing") {
            http::set_problem(res, 404, "Not Found", "no such thing");
            co_return;
          }
          json j;
          j["path"] = std::string(req.target());
          j["who"] = name;
          http::set_json(res, j);
        }) {}
  std::string last_fields() {
    std::lock_guard lock(mu);
    return seen;
  }
  std::mutex mu;
  std::string seen;
  std::atomic<int> hits{0};
  test_server server;
};

// Answers after `delay`.
http::handler slow(std::chrono::milliseconds delay) {
  return [delay](http::request&, http::response& res) -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, delay);
    (void)co_await t.async_wait(use_nothrow);
    res.set_text("{}", "application/json");
  };
}

// A composition behind a router route on a server of its own.
class gateway_rig {
 public:
  gateway_rig(std::string route, std::vector<composition_call> calls, composition_options o = {})
      : rt_({.workers = 1, .drain_timeout = std::chrono::seconds(3), .handle_signals = false}) {
    comp_.emplace(rt_, std::move(calls), std::move(o));
    router_.get(route, comp_->handler());
    server_.emplace(router_.to_handler());
    auto ep = server_->listen(rt_, {asio::ip::address_v4::loopback(), 0});
    if (!ep) throw std::runtime_error("listen: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~gateway_rig() {
    rt_.drain();
    thread_.join();
  }
  std::optional<test::raw_response> get(std::string_view target, std::string_view extra = "") {
    raw_client c(port_, 10s);
    if (!c.send("GET " + std::string(target) + " HTTP/1.1\r\nHost: gw.example\r\n" +
                std::string(extra) + "\r\n"))
      return std::nullopt;
    return c.read_response();
  }

 private:
  core::runtime rt_;
  std::optional<composition> comp_;
  http::router router_;
  std::optional<http::server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

composition_call call(std::string name, std::uint16_t port, std::string path, bool required = false,
                      std::chrono::milliseconds timeout = 2s) {
  composition_call c;
  c.name = name;
  c.cluster = cluster_of(port, "svc-" + name);
  c.path = std::move(path);
  c.required = required;
  c.timeout = timeout;
  return c;
}

TEST(Composition, MergesEveryCallsAnswerUnderItsName) {
  service users("users"), orders("orders");
  gateway_rig gw("/profile/{id}", {call("user", users.server.port(), "/users/{id}", true),
                                   call("orders", orders.server.port(), "/orders?user_id={id}")});
  auto r = gw.get("/profile/7", "Authorization: Bearer t0k\r\nCookie: secret=1\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  const auto doc = json::parse(r->body);
  EXPECT_EQ(doc["user"]["path"], "/users/7");
  EXPECT_EQ(doc["user"]["who"], "users");
  EXPECT_EQ(doc["orders"]["path"], "/orders?user_id=7");
  EXPECT_FALSE(doc.contains("partial"));
  // The caller's identity goes along; what is not listed (its cookies) does not.
  const auto seen = users.last_fields();
  EXPECT_THAT(seen, HasSubstr("Authorization: Bearer t0k\n"));
  EXPECT_THAT(seen, HasSubstr("Accept: application/json\n"));
  EXPECT_THAT(seen, HasSubstr("X-Forwarded-For: 127.0.0.1\n"));
  EXPECT_THAT(seen, ::testing::Not(HasSubstr("Cookie")));
}

TEST(Composition, CallsRunAtOnceNotOneAfterAnother) {
  // Overlap shows at the service: all three requests are in flight there
  // at once (each is held 300 ms), which one-after-another calls never do.
  std::atomic<int> in_flight{0}, most{0};
  test_server slow_one([&](http::request&, http::response& res) -> asio::awaitable<void> {
    const int now = ++in_flight;
    for (int prev = most.load(); now > prev && !most.compare_exchange_weak(prev, now);) {
    }
    asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
    (void)co_await t.async_wait(use_nothrow);
    --in_flight;
    res.set_text("{}", "application/json");
  });
  gateway_rig gw("/x", {call("a", slow_one.port(), "/a"), call("b", slow_one.port(), "/b"),
                        call("c", slow_one.port(), "/c")});
  auto r = gw.get("/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(most.load(), 3);
}

TEST(Composition, AFailedOptionalCallMarksTheAnswerPartial) {
  service users("users");
  test_server too_slow(slow(3s));
  test_server not_json([](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text("<html>oops</html>", "text/html");
    co_return;
  });
  gateway_rig gw("/profile/{id}",
                 {call("user", users.server.port(), "/users/{id}", true),
                  call("orders", too_slow.port(), "/orders?user_id={id}", false, 200ms),
                  call("products", not_json.port(), "/products")});
  auto r = gw.get("/profile/7");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  const auto doc = json::parse(r->body);
  EXPECT_EQ(doc["user"]["path"], "/users/7");
  EXPECT_TRUE(doc["orders"].is_null());
  EXPECT_TRUE(doc["products"].is_null());
  EXPECT_EQ(doc["partial"], true);
  EXPECT_EQ(doc["errors"]["orders"]["status"], 504);
  EXPECT_EQ(doc["errors"]["orders"]["error"], "timed out");
  EXPECT_EQ(doc["errors"]["products"]["error"], "answer is not JSON");
  EXPECT_FALSE(doc["errors"].contains("user"));
}

TEST(Composition, AFailedRequiredCallFailsTheAnswer) {
  service users("users");
  test_server too_slow(slow(3s));
  {
    gateway_rig gw("/p/{id}", {call("user", too_slow.port(), "/users/{id}", true, 200ms),
                               call("other", users.server.port(), "/x")});
    auto r = gw.get("/p/7");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 504) << r->body;
    EXPECT_THAT(r->body, HasSubstr("the user call timed out"));
  }
  {
    // The service says the user does not exist: that is the answer.
    gateway_rig gw("/p/{id}", {call("user", users.server.port(), "/missing", true)});
    auto r = gw.get("/p/7");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << r->body;
  }
  {
    // Nobody listening: 502.
    const auto port = too_slow.port();
    too_slow.stop();
    gateway_rig gw("/p/{id}", {call("user", port, "/users/{id}", true)});
    auto r = gw.get("/p/7");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502) << r->body;
  }
}

TEST(Composition, RefusesParametersThatWouldChangeTheCallsPath) {
  service users("users");
  gateway_rig gw("/p/{id}", {call("user", users.server.port(), "/users/{id}")});
  for (const char* bad : {"/p/..", "/p/.", "/p/7%3F"}) {
    auto r = gw.get(bad);
    ASSERT_TRUE(r);
    // %3F stays encoded, so it is one segment and allowed; the dot
    // segments are not.
    if (std::string_view(bad) == "/p/7%3F") {
      EXPECT_EQ(r->status, 200) << bad;
      EXPECT_EQ(json::parse(r->body)["user"]["path"], "/users/7%3F");
    } else {
      EXPECT_EQ(r->status, 400) << bad;
    }
  }
  EXPECT_EQ(users.hits.load(), 1);  // only the encoded one went out
}

TEST(Composition, ExpandsTemplatesFromRouteParameters) {
  http::request_head head;
  head.method = http::method::get;
  head.method_text = "GET";
  head.target = "/x";
  http::request req;
  req.bind(head, nullptr, {}, false);
  req.set_param("id", "42");
  req.set_param("tail", "a/b");
  EXPECT_EQ(composition::expand("/users/{id}/orders?limit=5", req), "/users/42/orders?limit=5");
  EXPECT_EQ(composition::expand("/static", req), "/static");
  EXPECT_EQ(composition::expand("/users/{nope}", req), std::nullopt);
  EXPECT_EQ(composition::expand("/files/{tail}", req), std::nullopt);  // holds a '/'
}

TEST(Composition, RejectsBadCallsNamingTheField) {
  core::runtime rt({.workers = 1, .handle_signals = false});
  auto field_of = [&](std::vector<composition_call> calls) -> std::string {
    try {
      composition c(rt, std::move(calls));
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "(no error)";
  };
  EXPECT_EQ(field_of({}), "calls");
  EXPECT_EQ(field_of({call("", 1, "/a")}), "calls[0].name");
  EXPECT_EQ(field_of({call("a", 1, "/a"), call("a", 1, "/b")}), "calls[1].name");
  EXPECT_EQ(field_of({call("errors", 1, "/a")}), "calls[0].name");
  EXPECT_EQ(field_of({call("a", 1, "relative")}), "calls[0].path");
  EXPECT_EQ(field_of({call("a", 1, "/a/{id}/{id}")}), "calls[0].path");
  EXPECT_EQ(field_of({call("a", 1, "/a/{id")}), "calls[0].path");
  EXPECT_EQ(field_of({call("a", 1, "/a", false, 0ms)}), "calls[0].timeout");
  auto no_cluster = call("a", 1, "/a");
  no_cluster.cluster.reset();
  EXPECT_EQ(field_of({no_cluster}), "calls[0].cluster");
  EXPECT_EQ(field_of({call("a", 1, "/a/{id}")}), "(no error)");
}

}  // namespace
}  // namespace trellis::gateway
