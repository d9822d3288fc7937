// Connections that stop speaking HTTP: response::upgrade on the server
// (a 101 to an Upgrade request, a 2xx to CONNECT) and client_stream's
// upgraded() on the client, tested against each other and raw sockets.
#include <gtest/gtest.h>

#include <string>

#include "support/http_client.hpp"
#include "support/http_server.hpp"
#include "support/loop.hpp"
#include "support/shout_tunnel.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/http/client.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
using test::raw_client;
using test::run_bounded;
using test::test_server;

using test::shout_back;

handler upgrading() {
  return [](request& req, response& res) -> asio::awaitable<void> {
    if (req.method() == method::connect) {
      res.status = 200;
    } else if (req.header("Upgrade") == "shout") {
      res.status = 101;
      (void)res.headers.set("Upgrade", "shout");
    } else {
      res.set_text("plain");
    }
    res.upgrade = shout_back;
    co_return;
  };
}

// Reads from a raw client until `n` bytes of body follow the head, or the peer closes.
std::string read_all(raw_client& c) {
  c.wait_closed(5s);
  return c.buffered();
}

TEST(Tunnel, A101HandsTheConnectionOverWithTheBytesThatCameWithTheHead) {
  test_server s(upgrading());
  raw_client c(s.port(), 5s);
  // The first tunnel bytes travel in the same packet as the request head.
  ASSERT_TRUE(c.send("GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhello "));
  ASSERT_TRUE(c.send("world"));
  ::shutdown(c.fd(), SHUT_WR);
  const std::string got = read_all(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Connection: upgrade\r\n"), std::string::npos);
  EXPECT_NE(got.find("Upgrade: shout\r\n"), std::string::npos);
  EXPECT_EQ(got.find("Content-Length"), std::string::npos);
  const std::string body = got.substr(got.find("\r\n\r\n") + 4);
  EXPECT_EQ(body, "HELLO WORLDbye");
}

TEST(Tunnel, ConnectGets200AndATunnel) {
  test_server s(upgrading());
  raw_client c(s.port(), 5s);
  ASSERT_TRUE(c.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nabc"));
  ::shutdown(c.fd(), SHUT_WR);
  const std::string got = read_all(c);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_EQ(got.find("Connection:"), std::string::npos);  // a tunnel, not an upgrade
  EXPECT_EQ(got.substr(got.find("\r\n\r\n") + 4), "ABCbye");
}

TEST(Tunnel, AnUpgradeFunctionWithoutAnUpgradeRequestIsIgnored) {
  test_server s(upgrading());
  raw_client c(s.port(), 5s);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "plain");
  // Still an HTTP connection.
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(c.read_response());
}

TEST(Tunnel, ClientStreamGivesTheUpgradedConnection) {
  test_server s(upgrading());
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    dns::resolver resolver(ex, dns::resolver_options{});
    client c(ex, resolver);
    client_request req;
    req.url = s.url("/chat");
    CO_ASSERT_OK(req.headers.add("Connection", "upgrade"));
    CO_ASSERT_OK(req.headers.add("Upgrade", "shout"));
    auto opened = co_await c.open(std::move(req));
    CO_ASSERT_OK(opened);
    EXPECT_EQ(opened->response().status, 101);
    tunnel* t = opened->upgraded();
    CO_ASSERT_TRUE(t != nullptr);
    CO_ASSERT_FALSE(co_await t->write("ping"));
    t->shutdown_send();
    std::string got;
    char buf[64];
    for (;;) {
      auto n = co_await t->read_some(buf);
      CO_ASSERT_OK(n);
      if (*n == 0) break;
      got.append(buf, *n);
    }
    EXPECT_EQ(got, "PINGbye");
    EXPECT_EQ(c.stats().idle, 0u);  // a tunnel never goes back to the pool
  });
}

TEST(Tunnel, AnOrdinaryResponseHasNoTunnel) {
  test_server s(upgrading());
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    dns::resolver resolver(ex, dns::resolver_options{});
    client c(ex, resolver);
    client_request req;
    req.url = s.url("/");
    auto opened = co_await c.open(std::move(req));
    CO_ASSERT_OK(opened);
    EXPECT_EQ(opened->upgraded(), nullptr);
    auto body = co_await opened->read_some();
    CO_ASSERT_OK(body);
    EXPECT_EQ(*body, "plain");
  });
}

}  // namespace
}  // namespace trellis::http
