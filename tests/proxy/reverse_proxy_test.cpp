// Tests of proxy::reverse_proxy with real peers on 127.0.0.1: trellis
// backends on their own threads, raw-socket backends that misbehave on
// purpose, and a blocking raw client that sees the proxy's bytes exactly.
#include "trellis/proxy/reverse_proxy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.hpp"
#include "support/http_server.hpp"
#include "support/process.hpp"
#include "support/proxy_rig.hpp"
#include "support/raw_server.hpp"
#include "support/shout_tunnel.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/http/server.hpp"

namespace trellis::proxy {
namespace {

using namespace std::chrono_literals;
using test::proxy_rig;
using test::raw_client;
using test::raw_server;
using test::test_server;
using ::testing::HasSubstr;
using ::testing::Not;

std::string address_of(std::uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

// A port nothing listens on (bound, then closed).
std::uint16_t closed_port() {
  std::uint16_t port = 0;
  const int fd = test::listen_on_loopback(port);
  ::close(fd);
  return port;
}

// A backend that answers with what it received: the request line, every
// field, and the body's size, and names itself in X-Backend.
http::handler mirror(std::string name, std::atomic<int>* hits = nullptr) {
  return [name, hits](http::request& req, http::response& res) -> asio::awaitable<void> {
    if (hits) ++*hits;
    std::string out = std::string(req.method_text()) + " " + std::string(req.target()) + "\n";
    for (const auto& f : req.headers()) out += std::string(f.name) + ": " + std::string(f.value) + "\n";
    auto body = co_await req.read_body();
    out += "body: " + std::to_string(body ? body->size() : 0) + "\n";
    res.set_text(out);
    (void)res.headers.set("X-Backend", name);
  };
}

// ---------------------------------------------------------------------------
// Forwarding and header hygiene

TEST(ReverseProxy, ForwardsTheRequestAndRelaysTheResponse) {
  test_server backend(mirror("a"));
  proxy_rig rig({address_of(backend.port())});
  auto r = rig.get("/path/x%2Fy?q=1&r");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Backend"), "a");
  // The target goes out byte for byte, and the client's Host is kept.
  EXPECT_THAT(r->body, HasSubstr("GET /path/x%2Fy?q=1&r\n"));
  EXPECT_THAT(r->body, HasSubstr("Host: front.example\n"));
  EXPECT_EQ(r->header("Via"), "1.1 trellis");
  EXPECT_EQ(r->header("X-Request-Id").size(), 32u);
  EXPECT_THAT(r->body, HasSubstr("X-Request-Id: " + r->header("X-Request-Id") + "\n"));
  EXPECT_EQ(rig.proxy().stats().requests, 1u);
}

TEST(ReverseProxy, KeepsASaneRequestIdAndReplacesAnInsaneOne) {
  test_server backend(mirror("a"));
  proxy_rig rig({address_of(backend.port())});
  auto kept = rig.get("/", "X-Request-Id: abc-123\r\n");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->header("X-Request-Id"), "abc-123");
  EXPECT_THAT(kept->body, HasSubstr("X-Request-Id: abc-123\n"));
  auto replaced = rig.get("/", "X-Request-Id: " + std::string(300, 'x') + "\r\n");
  ASSERT_TRUE(replaced);
  EXPECT_EQ(replaced->header("X-Request-Id").size(), 32u);
}

TEST(ReverseProxy, RemovesHopByHopFieldsBothWays) {
  raw_server backend([](int fd, int) {
    const std::string head = raw_server::read_head(fd);
    // Echo what arrived, with hop-by-hop fields of its own in the response.
    const std::string body = head;
    raw_server::send_all(fd, "HTTP/1.1 200 OK\r\nConnection: X-Private, keep-alive\r\n"
                             "X-Private: secret\r\nKeep-Alive: timeout=5\r\n"
                             "Content-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body);
    raw_server::read_head(fd);
  });
  proxy_rig rig({address_of(backend.port())});
  auto r = rig.get("/", "Connection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 300\r\n"
                        "TE: trailers\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\n"
                        "X-Kept: yes\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::string& upstream = r->body;
  EXPECT_THAT(upstream, HasSubstr("X-Kept: yes"));
  for (const char* name : {"X-Secret", "Keep-Alive", "TE:", "Proxy-Connection", "Upgrade"})
    EXPECT_THAT(upstream, Not(HasSubstr(name))) << name;
  EXPECT_FALSE(r->has_header("X-Private"));
  EXPECT_FALSE(r->has_header("Keep-Alive"));
}

TEST(ReverseProxy, ReplacesForwardingFieldsFromAnUntrustedClient) {
  test_server backend(mirror("a"));
  proxy_rig rig({address_of(backend.port())});
  auto r = rig.get("/", "X-Forwarded-For: 10.9.9.9\r\nForwarded: for=10.9.9.9\r\n"
                        "X-Forwarded-Proto: https\r\n");
  ASSERT_TRUE(r);
  EXPECT_THAT(r->body, HasSubstr("X-Forwarded-For: 127.0.0.1\n"));
  EXPECT_THAT(r->body, HasSubstr("X-Forwarded-Proto: http\n"));
  EXPECT_THAT(r->body, HasSubstr("X-Forwarded-Host: front.example\n"));
  EXPECT_THAT(r->body, HasSubstr("Forwarded: for=127.0.0.1;host=front.example;proto=http\n"));
  EXPECT_THAT(r->body, Not(HasSubstr("10.9.9.9")));
}

TEST(ReverseProxy, AppendsToForwardingFieldsFromATrustedProxy) {
  test_server backend(mirror("a"));
  reverse_proxy_options o;
  o.forwarding.trusted_proxies = net::cidr_set({"127.0.0.0/8"}, "trusted");
  proxy_rig rig({address_of(backend.port())}, o);
  auto r = rig.get("/", "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n");
  ASSERT_TRUE(r);
  EXPECT_THAT(r->body, HasSubstr("X-Forwarded-For: 203.0.113.9, 127.0.0.1\n"));
  EXPECT_THAT(r->body, HasSubstr("X-Forwarded-Proto: https\n"));
}

TEST(ReverseProxy, RewritesHostAndPathPrefix) {
  test_server backend(mirror("a"));
  reverse_proxy_options o;
  o.host = host_header::upstream;
  o.strip_prefix = "/api";
  o.prefix_rewrite = "/v2";
  proxy_rig rig({address_of(backend.port())}, o);
  auto r = rig.get("/api/users?id=7");
  ASSERT_TRUE(r);
  EXPECT_THAT(r->body, HasSubstr("GET /v2/users?id=7\n"));
  EXPECT_THAT(r->body, HasSubstr("Host: " + address_of(backend.port()) + "\n"));
  auto other = rig.get("/apix");  // not a whole-segment match: untouched
  ASSERT_TRUE(other);
  EXPECT_THAT(other->body, HasSubstr("GET /apix\n"));
  auto bare = rig.get("/api");
  ASSERT_TRUE(bare);
  EXPECT_THAT(bare->body, HasSubstr("GET /v2\n"));
}

TEST(ReverseProxy, AdjustRequestHasTheLastWordOnUpstreamFields) {
  test_server backend(mirror("a"));
  reverse_proxy_options o;
  o.adjust_request = [](const http::request& req, http::fields& f) {
    // What a gateway does: tell the service who the client is, drop what
    // it must not see, and override what the proxy set.
    (void)f.set("X-User", "from " + std::string(req.header("X-Api-Key")));
    (void)f.erase("X-Api-Key");
    (void)f.set("X-Request-Id", "overridden");
  };
  proxy_rig rig({address_of(backend.port())}, o);
  auto r = rig.get("/p", "X-Api-Key: k1\r\n");
  ASSERT_TRUE(r);
  EXPECT_THAT(r->body, HasSubstr("X-User: from k1\n"));
  EXPECT_THAT(r->body, Not(HasSubstr("X-Api-Key")));
  EXPECT_THAT(r->body, HasSubstr("X-Request-Id: overridden\n"));
  EXPECT_THAT(r->body, HasSubstr("X-Forwarded-For: 127.0.0.1\n"));  // the proxy's own stay
}

TEST(ReverseProxy, HeadKeepsTheBackendsContentLength) {
  test_server backend([](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text(std::string(1234, 'x'));
    co_return;
  });
  proxy_rig rig({address_of(backend.port())});
  raw_client c(rig.port(), 10s);
  ASSERT_TRUE(c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response(true);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Length"), "1234");
  // The connection is still in step: a second request works.
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto g = c.read_response();
  ASSERT_TRUE(g) << c.error();
  EXPECT_EQ(g->body.size(), 1234u);
}

// ---------------------------------------------------------------------------
// Balancing, failures and retries

TEST(ReverseProxy, SpreadsRequestsOverTheCluster) {
  test_server a(mirror("a")), b(mirror("b"));
  proxy_rig rig({address_of(a.port()), address_of(b.port())});
  int seen_a = 0, seen_b = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = rig.get("/");
    ASSERT_TRUE(r);
    (r->header("X-Backend") == "a" ? seen_a : seen_b)++;
  }
  EXPECT_EQ(seen_a, 3);  // round robin
  EXPECT_EQ(seen_b, 3);
}

TEST(ReverseProxy, HashingOnAHeaderKeepsEachUserOnOneHost) {
  test_server a(mirror("a")), b(mirror("b")), c(mirror("c"));
  reverse_proxy_options o;
  o.hash = lb::parse_hash_policy("header:X-User");
  lb::cluster_options co;
  co.policy = "ring_hash";
  proxy_rig rig({address_of(a.port()), address_of(b.port()), address_of(c.port())}, o, co);
  std::set<std::string> hosts_seen;
  for (int user = 0; user < 12; ++user) {
    const std::string header = "X-User: user-" + std::to_string(user) + "\r\n";
    auto first = rig.get("/", header);
    ASSERT_TRUE(first);
    const std::string host = first->header("X-Backend");
    hosts_seen.insert(host);
    for (int again = 0; again < 3; ++again) {
      auto r = rig.get("/", header);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->header("X-Backend"), host) << "user-" << user;
    }
  }
  EXPECT_GE(hosts_seen.size(), 2u);  // 12 users do not all hash to one host
}

TEST(ReverseProxy, RetriesAFailedConnectOnAnotherHost) {
  test_server live(mirror("live"));
  proxy_rig rig({address_of(closed_port()), address_of(live.port())});
  for (int i = 0; i < 4; ++i) {
    auto r = rig.get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-Backend"), "live");
  }
  EXPECT_GE(rig.proxy().stats().retries, 1u);
}

TEST(ReverseProxy, ConnectFailureWithNowhereElseIs502) {
  proxy_rig rig({address_of(closed_port())});
  auto r = rig.get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_THAT(r->body, HasSubstr("upstream connect error"));
  EXPECT_EQ(r->header("X-Request-Id").size(), 32u);
}

TEST(ReverseProxy, NoEligibleHostIs503) {
  lb::cluster_options co;
  co.panic_threshold = 0;  // no panic: an ejected host stays out
  proxy_rig rig({address_of(closed_port())}, {}, co);
  // Enough failures to eject the only host.
  auto hosts = rig.cluster().all_hosts();
  lb::response_outcome failed;
  for (int i = 0; i < 10; ++i) rig.cluster().report((*hosts)[0], failed);
  ASSERT_TRUE(rig.cluster().eligible()->empty());
  auto r = rig.get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(r->body, HasSubstr("no healthy upstream"));
  EXPECT_EQ(rig.proxy().stats().no_host, 1u);
}

TEST(ReverseProxy, SlowBackendIs504AtTheFirstByteDeadline) {
  test_server slow([](http::request&, http::response& res) -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, 1s);
    co_await t.async_wait(use_nothrow);
    res.set_text("late");
  });
  reverse_proxy_options o;
  o.first_byte_timeout = 200ms;
  proxy_rig rig({address_of(slow.port())}, o);
  auto r = rig.get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  EXPECT_EQ(rig.proxy().stats().timeouts, 1u);
}

TEST(ReverseProxy, IdempotentRequestIsRetriedAfterAResetButPostIsNot) {
  // Each backend reads the request and hangs up without answering.
  std::atomic<int> hits{0};
  auto hang_up = [&hits](int fd, int) {
    ++hits;
    raw_server::read_head(fd);
  };
  raw_server a(hang_up), b(hang_up);
  proxy_rig rig({address_of(a.port()), address_of(b.port())});
  auto g = rig.get("/");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->status, 502);
  EXPECT_EQ(hits.load(), 2);  // tried on both hosts

  hits = 0;
  raw_client c(rig.port(), 10s);
  ASSERT_TRUE(c.send("POST /order HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  auto p = c.read_response();
  ASSERT_TRUE(p) << c.error();
  EXPECT_EQ(p->status, 502);
  EXPECT_EQ(hits.load(), 1);  // a POST may have been acted on: never repeated
}

TEST(ReverseProxy, RetryBudgetCapsRetries) {
  std::atomic<int> hits{0};
  auto hang_up = [&hits](int fd, int) {
    ++hits;
    raw_server::read_head(fd);
  };
  raw_server a(hang_up), b(hang_up);
  reverse_proxy_options o;
  o.retry_budget = 0;
  o.min_retry_concurrency = 0;  // no retries at all
  proxy_rig rig({address_of(a.port()), address_of(b.port())}, o);
  auto g = rig.get("/");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->status, 502);
  EXPECT_EQ(hits.load(), 1);
  EXPECT_EQ(rig.proxy().stats().retry_budget_exhausted, 1u);
}

// ---------------------------------------------------------------------------
// Streaming

TEST(ReverseProxy, StreamsALargeUploadAndDownload) {
  // The backend echoes the body as it reads it.
  test_server backend([](http::request& req, http::response& res) -> asio::awaitable<void> {
    auto body = co_await req.read_body();
    if (!body) {
      res.status = 400;
      co_return;
    }
    res.body = std::move(*body);
  });
  proxy_rig rig({address_of(backend.port())});
  std::string payload(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);

  raw_client c(rig.port(), 20s);
  // Chunked upload in 64 KiB chunks.
  std::string head = "PUT /blob HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_TRUE(c.send(head));
  for (std::size_t off = 0; off < payload.size(); off += 65536) {
    const std::string_view piece = std::string_view(payload).substr(off, 65536);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    ASSERT_TRUE(c.send(size));
    ASSERT_TRUE(c.send(piece));
    ASSERT_TRUE(c.send("\r\n"));
  }
  ASSERT_TRUE(c.send("0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Length"), std::to_string(payload.size()));
  EXPECT_TRUE(r->body == payload);
}

TEST(ReverseProxy, ChunkedDownloadStaysChunked) {
  test_server backend([](http::request&, http::response& res) -> asio::awaitable<void> {
    res.stream = [](http::body_writer& w) -> asio::awaitable<void> {
      const std::string piece(100'000, 'z');
      for (int i = 0; i < 20; ++i)
        if (co_await w.write(piece)) co_return;
    };
    co_return;
  });
  proxy_rig rig({address_of(backend.port())});
  auto r = rig.get("/");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body.size(), 2'000'000u);
}

TEST(ReverseProxy, BrokenUpstreamFramingCutsTheResponseShort) {
  // Announces 1 MB, sends 200 KB, and closes.
  raw_server backend([](int fd, int) {
    raw_server::read_head(fd);
    raw_server::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
    raw_server::send_all(fd, std::string(200'000, 'b'));
  });
  // One gateway failure ejects, so the broken body's report shows.
  lb::cluster_options co;
  co.outlier.consecutive_gateway_failure = 1;
  co.outlier.max_ejection_percent = 100;
  proxy_rig rig({address_of(backend.port())}, {}, co);
  raw_client c(rig.port(), 10s);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  // The proxy had already sent the head (the body is larger than its
  // buffer): the client must see a truncated message, never a complete one.
  EXPECT_FALSE(r);
  EXPECT_TRUE(c.wait_closed(5s));
  EXPECT_EQ(rig.proxy().stats().bad_responses, 1u);
  // The head was a 200, but the host broke the body: that counts against it.
  const auto hosts = rig.cluster().status();
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_TRUE(hosts[0].ejected);
}

TEST(ReverseProxy, BrokenSmallResponseBecomes502) {
  raw_server backend([](int fd, int) {
    raw_server::read_head(fd);
    raw_server::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  });
  lb::cluster_options co;
  co.outlier.consecutive_gateway_failure = 1;
  co.outlier.max_ejection_percent = 100;
  proxy_rig rig({address_of(backend.port())}, {}, co);
  auto r = rig.get("/");
  ASSERT_TRUE(r);
  // Nothing had gone to the client yet: it gets a clean 502 instead.
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(rig.proxy().stats().bad_responses, 1u);
  const auto hosts = rig.cluster().status();
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_TRUE(hosts[0].ejected);
}

TEST(ReverseProxy, ReusesUpstreamConnections) {
  std::atomic<int> hits{0};
  std::mutex m;
  std::set<std::uint16_t> ports;
  test_server backend([&](http::request& req, http::response& res) -> asio::awaitable<void> {
    ++hits;
    {
      std::lock_guard lock(m);
      ports.insert(req.remote_endpoint().port());
    }
    res.set_text("ok");
    co_return;
  });
  proxy_rig rig({address_of(backend.port())});
  for (int i = 0; i < 10; ++i) {
    auto r = rig.get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "ok");
  }
  EXPECT_EQ(hits.load(), 10);
  std::lock_guard lock(m);
  EXPECT_EQ(ports.size(), 1u);  // one upstream connection, kept alive
}

// ---------------------------------------------------------------------------
// Upgrades

TEST(ReverseProxy, TunnelsAnUpgradeBothWaysWithHalfClose) {
  // The backend switches to a protocol that echoes in upper case until the
  // client finishes, then says "bye".
  test_server backend([](http::request& req, http::response& res) -> asio::awaitable<void> {
    if (req.header("Upgrade") != "shout") {
      res.status = 400;
      co_return;
    }
    res.status = 101;
    (void)res.headers.set("Upgrade", "shout");
    res.upgrade = test::shout_back;
    co_return;
  });
  proxy_rig rig({address_of(backend.port())});
  raw_client c(rig.port(), 5s);
  ASSERT_TRUE(c.send("GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhello"));
  ASSERT_TRUE(c.send(" proxy"));
  ::shutdown(c.fd(), SHUT_WR);  // the half-close must travel to the backend
  EXPECT_TRUE(c.wait_closed(5s));
  const std::string got = c.buffered();
  EXPECT_EQ(got.rfind("HTTP/1.1 101 ", 0), 0u) << got;
  EXPECT_NE(got.find("Upgrade: shout\r\n"), std::string::npos);
  EXPECT_EQ(got.substr(got.find("\r\n\r\n") + 4), "HELLO PROXYbye");
}

TEST(ReverseProxy, CarriesAWebSocketSessionFromPythonWebsockets) {
  const std::string python = "/usr/bin/python3";
  if (test::run({python, "-c", "import websockets"}).status.code != 0)
    GTEST_SKIP() << "python3-websockets is not installed (apt-get install python3-websockets)";
  const std::uint16_t port = closed_port();
  test::process server({python, "-c", R"(
import asyncio, sys, websockets
async def echo(ws, path=None):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=None):
        print("ready", flush=True)
        await asyncio.sleep(30)
asyncio.run(main())
)",
                        std::to_string(port)});
  ASSERT_TRUE(server.wait_for_output("ready", 10s)) << server.err();
  proxy_rig rig({address_of(port)});
  auto r = test::run({python, "-c", R"(
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], max_size=None) as ws:
        for m in ["hello", "x" * 200000, bytes(range(256))]:
            await ws.send(m)
            got = await ws.recv()
            assert got == m, (len(got), len(m))
    print("echoed 3 messages")
asyncio.run(asyncio.wait_for(main(), 10))
)",
                      "ws://127.0.0.1:" + std::to_string(rig.port()) + "/ws"});
  EXPECT_TRUE(r.status.success()) << r.status.describe() << "\n" << r.err;
  EXPECT_EQ(r.out, "echoed 3 messages\n");
}

TEST(ReverseProxy, RejectsBadOptionsNamingTheField) {
  core::runtime rt({.workers = 1, .handle_signals = false});
  lb::cluster_options co;
  co.name = "c";
  lb::endpoint_config e;
  e.address = "127.0.0.1:1";
  auto cluster = std::make_shared<lb::cluster>(co, std::vector<lb::endpoint_config>{e});
  auto field_of = [&](reverse_proxy_options o) -> std::string {
    try {
      reverse_proxy p(rt, cluster, std::move(o));
    } catch (const core::config_error& err) {
      return err.field();
    }
    return "";
  };
  reverse_proxy_options budget;
  budget.retry_budget = 2;
  EXPECT_EQ(field_of(budget), "proxy.retry_budget");
  reverse_proxy_options host;
  host.host = host_header::fixed;
  EXPECT_EQ(field_of(host), "proxy.host_value");
  reverse_proxy_options prefix;
  prefix.strip_prefix = "api";
  EXPECT_EQ(field_of(prefix), "proxy.strip_prefix");
}

}  // namespace
}  // namespace trellis::proxy
