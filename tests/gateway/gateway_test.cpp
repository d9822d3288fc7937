// Tests of gateway::gateway end to end on 127.0.0.1: trellis services on
// their own threads, the gateway on a server of its own built from a JSON
// configuration, a raw client in front — routing, authentication, rate
// limiting, composition, the breaker, and reload with requests in flight.
#include "trellis/gateway/gateway.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "support/http_client.hpp"
#include "support/http_server.hpp"
#include "trellis/codec/base64.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/gateway/jwt.hpp"
#include "trellis/gateway/session.hpp"
#include "trellis/http/json.hpp"
#include "trellis/http/server.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using test::raw_client;
using test::test_server;
using ::testing::HasSubstr;

constexpr const char* secret_b64 = "dHJlbGxpcy1kZW1vLWtleS1ub3QtYS1zZWNyZXQtYW55d2hlcmU";

// A service that answers {"service", "path", "user"} (user: its X-User
// field), after `delay` when the path ends in "/slow", 500 on "/fail".
http::handler service(std::string name) {
  return [name](http::request& req, http::response& res) -> asio::awaitable<void> {
    if (req.path().ends_with("/slow")) {
      asio::steady_timer t(co_await asio::this_coro::executor, 500ms);
      (void)co_await t.async_wait(use_nothrow);
    }
    if (req.path().ends_with("/fail")) {
      http::set_problem(res, 500, "Internal Server Error", "asked to fail");
      co_return;
    }
    json j;
    j["service"] = name;
    j["path"] = std::string(req.target());
    j["user"] = std::string(req.header("X-User"));
    http::set_json(res, j);
  };
}

std::string token(std::string sub, std::string scope) {
  const auto key = jwt_key::from_jwk(json{{"kty", "oct"}, {"k", secret_b64}}, "k");
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto t = sign_jwt(json{{"sub", sub}, {"scope", scope}, {"iss", "test"}, {"exp", now + 600}}, key);
  return t ? *t : std::string();
}

json config_for(std::uint16_t users, std::uint16_t orders) {
  json j = json::parse(R"({
    "listeners": [ { "address": "127.0.0.1:1" } ],
    "auth": { "jwt": { "keys": [ { "kty": "oct", "k": "" } ], "issuer": "test" },
              "api_keys": [ { "name": "acme",
                "sha256": "8676d15d94dabdd1283e6c407e2bb08a7b5c13b4e3667d4795c17172e080a3d4" } ] },
    "rate_limits": { "tight": { "policies": [ { "limit": 3, "period": "1h" } ],
                                "key": "subject" } },
    "clusters": [ { "name": "users", "endpoints": [] }, { "name": "orders", "endpoints": [] } ],
    "routes": [
      { "name": "users", "path": "/api/users/*", "cluster": "users", "strip_prefix": "/api",
        "auth": ["jwt"], "require": { "scopes": ["users:read"] },
        "request_headers": [ { "set": "X-User", "value": "${auth.subject}" } ] },
      { "name": "limited", "path": "/api/limited/*", "cluster": "users", "strip_prefix": "/api",
        "auth": ["api_key"], "rate_limit": "tight" },
      { "name": "flaky", "path": "/api/flaky/*", "cluster": "orders", "strip_prefix": "/api",
        "circuit_breaker": { "consecutive_failures": 2, "failure_rate": 0,
                             "open_duration": "1m" } },
      { "name": "open", "path": "/api/open/*", "cluster": "orders", "strip_prefix": "/api",
        "request_headers": [ { "set": "X-User", "value": "${auth.subject}" } ] },
      { "name": "profile", "path": "/api/profile/{id}", "methods": ["GET"],
        "compose": [ { "name": "user", "cluster": "users", "path": "/users/{id}", "required": true },
                     { "name": "orders", "cluster": "orders", "path": "/orders?user={id}" } ] } ] })");
  j["auth"]["jwt"]["keys"][0]["k"] = secret_b64;
  j["clusters"][0]["endpoints"].push_back("127.0.0.1:" + std::to_string(users));
  j["clusters"][1]["endpoints"].push_back("127.0.0.1:" + std::to_string(orders));
  return j;
}

// The gateway on its own runtime and server.
class gateway_rig {
 public:
  explicit gateway_rig(const json& j)
      : rt_({.workers = 2, .drain_timeout = std::chrono::seconds(3), .handle_signals = false}) {
    gw_.emplace(rt_, parse_config(j));
    server_.emplace(gw_->handler());
    auto ep = server_->listen(rt_, {asio::ip::address_v4::loopback(), 0});
    if (!ep) throw std::runtime_error("listen: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~gateway_rig() {
    gw_->stop();
    rt_.drain();
    thread_.join();
  }
  gateway& gw() { return *gw_; }
  std::optional<test::raw_response> get(std::string_view target, std::string_view extra = "",
                                        std::string_view host = "gw.example") {
    return request("GET", target, extra, host);
  }
  std::optional<test::raw_response> request(std::string_view method, std::string_view target,
                                            std::string_view extra = "",
                                            std::string_view host = "gw.example") {
    raw_client c(port_, 10s);
    if (!c.send(std::string(method) + " " + std::string(target) +
                " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n" + std::string(extra) + "\r\n"))
      return std::nullopt;
    return c.read_response();
  }

 private:
  core::runtime rt_;
  std::optional<gateway> gw_;
  std::optional<http::server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

std::string bearer(const std::string& t) {
  return "Authorization: Bearer " + t + "\r\n";
}

TEST(Gateway, RoutesAuthenticatesAndTellsTheServiceWhoCalled) {
  test_server users(service("users")), orders(service("orders"));
  gateway_rig rig(config_for(users.port(), orders.port()));

  auto none = rig.get("/api/users/7");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_THAT(none->header("WWW-Authenticate"), HasSubstr("Bearer"));

  auto wrong_scope = rig.get("/api/users/7", bearer(token("alice", "orders:read")));
  ASSERT_TRUE(wrong_scope);
  EXPECT_EQ(wrong_scope->status, 403);
  EXPECT_THAT(wrong_scope->header("WWW-Authenticate"), HasSubstr("insufficient_scope"));

  auto ok = rig.get("/api/users/7", bearer(token("alice", "users:read")) + "X-User: mallory\r\n");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  const auto j = json::parse(ok->body);
  EXPECT_EQ(j["service"], "users");
  EXPECT_EQ(j["path"], "/users/7");  // the prefix stripped
  EXPECT_EQ(j["user"], "alice");     // set from the token, the client's own replaced

  // Anonymous on a route that sets X-User from the subject: the client's
  // X-User does not get through either.
  auto anon = rig.get("/api/open/x", "X-User: mallory\r\n");
  ASSERT_TRUE(anon);
  ASSERT_EQ(anon->status, 200);
  EXPECT_EQ(json::parse(anon->body)["user"], "");

  auto unmatched = rig.get("/nowhere");
  ASSERT_TRUE(unmatched);
  EXPECT_EQ(unmatched->status, 404);
}

TEST(Gateway, RateLimitsPerApiKeyWithItsHeaders) {
  test_server users(service("users")), orders(service("orders"));
  gateway_rig rig(config_for(users.port(), orders.port()));
  const std::string key = "X-API-Key: acme-demo-key\r\n";
  for (int i = 0; i < 3; ++i) {
    auto r = rig.get("/api/limited/x", key);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << i;
    EXPECT_TRUE(r->has_header("RateLimit")) << i;
  }
  auto limited = rig.get("/api/limited/x", key);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  EXPECT_FALSE(limited->header("Retry-After").empty());
  EXPECT_THAT(limited->header("RateLimit-Policy"), HasSubstr("q=3"));
  auto bad_key = rig.get("/api/limited/x", "X-API-Key: guessed\r\n");
  ASSERT_TRUE(bad_key);
  EXPECT_EQ(bad_key->status, 401);
  // The admin status counts the decisions.
  const json tight = rig.gw().status()["rate_limits"]["tight"];
  EXPECT_EQ(tight["store"], "local");
  ASSERT_EQ(tight["policies"].size(), 1u) << tight.dump();
  EXPECT_EQ(tight["policies"][0]["limit"], 3);
  EXPECT_EQ(tight["policies"][0]["allowed"], 3);
  EXPECT_EQ(tight["policies"][0]["limited"], 1);
}

TEST(Gateway, ComposesAProfileFromTwoServices) {
  test_server users(service("users")), orders(service("orders"));
  gateway_rig rig(config_for(users.port(), orders.port()));
  auto r = rig.get("/api/profile/7");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["user"]["path"], "/users/7");
  EXPECT_EQ(j["orders"]["path"], "/orders?user=7");
}

TEST(Gateway, TheBreakerOpensAfterFailuresAndAnswers503WithoutCallingTheService) {
  std::atomic<int> calls{0};
  test_server users(service("users"));
  test_server orders([&](http::request& req, http::response& res) -> asio::awaitable<void> {
    ++calls;
    co_await service("orders")(req, res);
  });
  gateway_rig rig(config_for(users.port(), orders.port()));
  for (int i = 0; i < 2; ++i) {
    auto r = rig.get("/api/flaky/fail");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
  }
  auto open = rig.get("/api/flaky/fine");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->status, 503);
  EXPECT_FALSE(open->header("Retry-After").empty());
  EXPECT_EQ(calls.load(), 2) << "the open breaker kept the request from the service";
  const auto status = rig.gw().status();
  bool found = false;
  for (const auto& r : status["routes"])
    if (r["name"] == "flaky") {
      found = true;
      EXPECT_EQ(r["breaker"]["state"], "open");
    }
  EXPECT_TRUE(found);
}

TEST(Gateway, ReloadSwapsTheRoutesWhileRequestsInFlightFinishOnTheOld) {
  test_server users(service("users")), orders(service("orders")), other(service("other"));
  gateway_rig rig(config_for(users.port(), orders.port()));
  EXPECT_EQ(rig.gw().generation(), 1u);

  // A slow request on the old set, started before the reload.
  auto slow = std::async(std::launch::async, [&] { return rig.get("/api/open/slow"); });
  std::this_thread::sleep_for(100ms);  // let it reach the service (it is held 500 ms)

  json next = config_for(users.port(), other.port());  // "orders" now points elsewhere
  rig.gw().reload(parse_config(next));
  EXPECT_EQ(rig.gw().generation(), 2u);

  auto after = rig.get("/api/open/x");
  ASSERT_TRUE(after);
  EXPECT_EQ(json::parse(after->body)["service"], "other");
  auto s = slow.get();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 200);
  EXPECT_EQ(json::parse(s->body)["service"], "orders") << "finished where it started";

  // A configuration that does not build changes nothing.
  json broken = next;
  broken["routes"][0]["path"] = "/api/users/{id";
  EXPECT_THROW(rig.gw().reload(parse_config(broken)), core::config_error);
  EXPECT_EQ(rig.gw().generation(), 2u);
  auto still = rig.get("/api/open/x");
  ASSERT_TRUE(still);
  EXPECT_EQ(json::parse(still->body)["service"], "other");
}

TEST(Gateway, TheHostPicksTheRoutesBeforeThePathDoes) {
  test_server users(service("users")), orders(service("orders"));
  json j = config_for(users.port(), orders.port());
  // One path, three sites: an exact host, a wildcard, and the routes that
  // name no host.
  j["routes"] = json::parse(R"([
    { "name": "api", "host": "api.example.com", "path": "/*", "cluster": "users" },
    { "name": "tenants", "host": ["*.tenants.example.com", "tenants.example.com"],
      "path": "/*", "cluster": "orders" },
    { "name": "deep", "host": "*.eu.tenants.example.com", "path": "/only-here", "cluster": "users" },
    { "name": "rest", "path": "/public/*", "cluster": "orders" } ])");
  gateway_rig rig(j);
  auto served_by = [&](std::string_view host, std::string_view path) {
    auto r = rig.get(path, "", host);
    if (!r) return std::string("(no answer)");
    if (r->status != 200) return std::to_string(r->status);
    return json::parse(r->body).value("service", std::string("?"));
  };
  EXPECT_EQ(served_by("api.example.com", "/x"), "users");
  EXPECT_EQ(served_by("API.Example.COM:8080", "/x"), "users") << "case and port do not matter";
  EXPECT_EQ(served_by("acme.tenants.example.com", "/x"), "orders");
  EXPECT_EQ(served_by("tenants.example.com", "/x"), "orders") << "listed by name too";
  // The most specific wildcard wins, and owns the host: no fallback to
  // the less specific one for paths it lacks.
  EXPECT_EQ(served_by("x.eu.tenants.example.com", "/only-here"), "users");
  EXPECT_EQ(served_by("x.eu.tenants.example.com", "/x"), "404");
  // Hosts no route names get the host-less routes only.
  EXPECT_EQ(served_by("gw.example", "/public/a"), "orders");
  EXPECT_EQ(served_by("gw.example", "/x"), "404");
  EXPECT_EQ(served_by("api.example.com", "/public/a"), "users")
      << "api.example.com has its own routes; the host-less ones are not its";
  EXPECT_EQ(rig.gw().status()["routes"][1]["host"],
            json::array({"*.tenants.example.com", "tenants.example.com"}));
}

TEST(Gateway, APasswordLoginBecomesASessionThatSurvivesAReloadAndEndsAtLogout) {
  test_server users(service("users")), orders(service("orders"));
  json j = config_for(users.port(), orders.port());
  j["auth"]["basic"] =
      json::array({{{"name", "ada"}, {"password_hash", hash_password("pw-a", 1000)}},
                   {{"name", "bob"}, {"password_hash", hash_password("pw-b", 1000)}}});
  j["sessions"] = {{"store", "memory"}, {"logout_path", "/logout"}};
  j["routes"] = json::parse(R"([
    { "name": "account", "path": "/api/account/*", "cluster": "users", "strip_prefix": "/api",
      "session": true, "auth": ["basic", "session"],
      "request_headers": [ { "set": "X-User", "value": "${auth.subject}" } ] } ])");
  gateway_rig rig(j);
  const std::string ada = "Authorization: Basic " + codec::base64_encode("ada:pw-a") + "\r\n";
  const std::string bob = "Authorization: Basic " + codec::base64_encode("bob:pw-b") + "\r\n";
  auto cookie_of = [](const test::raw_response& r) {
    const std::string c(r.header("Set-Cookie"));
    const auto eq = c.find('='), semi = c.find(';');
    return eq == std::string::npos ? std::string() : c.substr(eq + 1, semi - eq - 1);
  };
  auto user_of = [](const test::raw_response& r) {
    return json::parse(r.body, nullptr, false).value("user", std::string("?"));
  };

  auto none = rig.get("/api/account/me");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_THAT(none->header("WWW-Authenticate"), HasSubstr("Basic"))
      << "the session scheme adds no challenge of its own";

  // The password once: the answer carries a session cookie.
  auto login = rig.get("/api/account/me", ada);
  ASSERT_TRUE(login);
  ASSERT_EQ(login->status, 200) << login->body;
  EXPECT_EQ(user_of(*login), "ada");
  const std::string first = cookie_of(*login);
  ASSERT_TRUE(is_session_id(first)) << login->header("Set-Cookie");
  EXPECT_THAT(login->header("Set-Cookie"), HasSubstr("HttpOnly"));

  // Then the cookie alone; a request that changes nothing writes nothing.
  auto again = rig.get("/api/account/me", "Cookie: trellis_session=" + first + "\r\n");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(user_of(*again), "ada");
  EXPECT_TRUE(again->header("Set-Cookie").empty());

  // Another login on that session: a new id (the old one is gone).
  auto switched = rig.get("/api/account/me", bob + "Cookie: trellis_session=" + first + "\r\n");
  ASSERT_TRUE(switched);
  EXPECT_EQ(user_of(*switched), "bob");
  const std::string second = cookie_of(*switched);
  ASSERT_TRUE(is_session_id(second));
  EXPECT_NE(second, first);
  auto old = rig.get("/api/account/me", "Cookie: trellis_session=" + first + "\r\n");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, 401) << "the id from before the login must not open the new session";

  // A reload keeps sessions held in memory.
  rig.gw().reload(parse_config(j));
  auto kept = rig.get("/api/account/me", "Cookie: trellis_session=" + second + "\r\n");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->status, 200);
  EXPECT_EQ(user_of(*kept), "bob");

  // Logout forgets it.
  auto out = rig.request("POST", "/logout", "Cookie: trellis_session=" + second + "\r\n");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 204);
  EXPECT_THAT(out->header("Set-Cookie"), HasSubstr("Max-Age=0"));
  auto gone = rig.get("/api/account/me", "Cookie: trellis_session=" + second + "\r\n");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 401);
}

}  // namespace
}  // namespace trellis::gateway
