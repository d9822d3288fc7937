// Tests of proxy::forward_proxy with real clients on 127.0.0.1: curl -x
// (absolute form, and CONNECT with -p), raw CONNECTs, and the allow-lists.
#include "trellis/proxy/forward_proxy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>

#include "support/http_client.hpp"
#include "support/http_server.hpp"
#include "support/loopback_listener.hpp"
#include "support/process.hpp"
#include "trellis/core/error.hpp"
#include "trellis/http/server.hpp"

namespace trellis::proxy {
namespace {

using namespace std::chrono_literals;
using test::raw_client;
using test::test_server;
using ::testing::HasSubstr;
using ::testing::Not;

// A backend that answers with its request line and fields.
http::handler mirror() {
  return [](http::request& req, http::response& res) -> asio::awaitable<void> {
    std::string out = std::string(req.method_text()) + " " + std::string(req.target()) + "\n";
    for (const auto& f : req.headers()) out += std::string(f.name) + ": " + std::string(f.value) + "\n";
    auto body = co_await req.read_body();
    if (body) out += "body: " + *body + "\n";
    res.set_text(out);
  };
}

class forward_rig {
 public:
  explicit forward_rig(forward_proxy_options o = {})
      : rt_({.workers = 1, .drain_timeout = 3s, .handle_signals = false}) {
    if (!o.resolver) o.resolver = dns::resolver_options{};  // tests use addresses only
    proxy_.emplace(rt_, std::move(o));
    server_.emplace(proxy_->handler());
    auto ep = server_->listen(rt_, {asio::ip::address_v4::loopback(), 0});
    if (!ep) throw std::runtime_error("listen: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~forward_rig() {
    rt_.drain();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  forward_proxy& proxy() { return *proxy_; }

 private:
  core::runtime rt_;
  std::optional<forward_proxy> proxy_;
  std::optional<http::server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

std::string backend_url(const test_server& s, std::string_view path) {
  return "http://127.0.0.1:" + std::to_string(s.port()) + std::string(path);
}

TEST(ForwardProxy, CurlFetchesThroughItInAbsoluteForm) {
  if (!test::program_exists("curl")) GTEST_SKIP() << "curl is not installed";
  test_server backend(mirror());
  forward_rig rig;
  auto r = test::run({"curl", "-sS", "-x", rig.url(), "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==",
                      "-H", "Connection: X-Drop", "-H", "X-Drop: 1",
                      backend_url(backend, "/page?q=1")});
  ASSERT_TRUE(r.status.success()) << r.err;
  // The origin gets the origin form, its own authority as Host, a Via,
  // and neither the proxy's credentials nor hop-by-hop fields.
  EXPECT_THAT(r.out, HasSubstr("GET /page?q=1\n"));
  EXPECT_THAT(r.out, HasSubstr("Host: 127.0.0.1:" + std::to_string(backend.port()) + "\n"));
  EXPECT_THAT(r.out, HasSubstr("Via: 1.1 trellis\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("Proxy-Authorization")));
  EXPECT_THAT(r.out, Not(HasSubstr("X-Drop")));
  EXPECT_THAT(r.out, Not(HasSubstr("Proxy-Connection")));
  EXPECT_THAT(r.out, Not(HasSubstr("X-Forwarded-For")));  // a forward proxy keeps its clients private
  EXPECT_EQ(rig.proxy().stats().forwarded, 1u);
}

TEST(ForwardProxy, CurlPostsABodyThroughIt) {
  if (!test::program_exists("curl")) GTEST_SKIP() << "curl is not installed";
  test_server backend(mirror());
  forward_rig rig;
  auto r = test::run({"curl", "-sS", "-x", rig.url(), "--data-binary", "hello=world",
                      backend_url(backend, "/form")});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_THAT(r.out, HasSubstr("POST /form\n"));
  EXPECT_THAT(r.out, HasSubstr("body: hello=world\n"));
}

TEST(ForwardProxy, CurlTunnelsThroughConnect) {
  if (!test::program_exists("curl")) GTEST_SKIP() << "curl is not installed";
  test_server backend(mirror());
  forward_proxy_options o;
  o.connect_ports = {backend.port()};
  forward_rig rig(o);
  // -p: CONNECT first, then the request inside the tunnel, unseen by the proxy.
  auto r = test::run({"curl", "-sS", "-p", "-x", rig.url(), backend_url(backend, "/secret")});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_THAT(r.out, HasSubstr("GET /secret\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("Via:")));  // the proxy never read it
  EXPECT_EQ(rig.proxy().stats().tunnels, 1u);
}

TEST(ForwardProxy, ConnectToAPortNotAllowedIs403) {
  test_server backend(mirror());
  forward_rig rig;  // only 443
  raw_client c(rig.port(), 5s);
  const std::string target = "127.0.0.1:" + std::to_string(backend.port());
  ASSERT_TRUE(c.send("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 403);
  EXPECT_THAT(r->body, HasSubstr("port"));
  EXPECT_EQ(rig.proxy().stats().refused, 1u);
}

TEST(ForwardProxy, DestinationsOutsideTheAllowListAre403) {
  test_server backend(mirror());
  forward_proxy_options o;
  o.allowed_hosts = {"10.0.0.0/8", "*.example.com"};
  o.connect_ports = {backend.port()};
  forward_rig rig(o);
  EXPECT_TRUE(rig.proxy().host_allowed("api.example.com"));
  EXPECT_TRUE(rig.proxy().host_allowed("A.B.Example.COM."));
  EXPECT_FALSE(rig.proxy().host_allowed("example.com"));
  EXPECT_FALSE(rig.proxy().host_allowed("evil-example.com"));
  EXPECT_TRUE(rig.proxy().host_allowed("10.1.2.3"));
  EXPECT_FALSE(rig.proxy().host_allowed("127.0.0.1"));

  raw_client c(rig.port(), 5s);
  ASSERT_TRUE(c.send("GET " + backend_url(backend, "/") + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 403);
}

TEST(ForwardProxy, AnOriginFormRequestIsNotForAProxy) {
  forward_rig rig;
  raw_client c(rig.port(), 5s);
  ASSERT_TRUE(c.send("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(rig.proxy().stats().not_proxy, 1u);
}

TEST(ForwardProxy, AnUnreachableDestinationIs502) {
  std::uint16_t port = 0;
  ::close(test::listen_on_loopback(port));  // nothing listens there now
  forward_proxy_options o;
  o.connect_ports = {port};
  forward_rig rig(o);
  raw_client c(rig.port(), 5s);
  const std::string target = "127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(c.send("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(rig.proxy().stats().failed, 1u);
}

TEST(ForwardProxy, RejectsBadOptionsNamingTheField) {
  core::runtime rt({.workers = 1, .handle_signals = false});
  forward_proxy_options o;
  o.resolver = dns::resolver_options{};
  o.allowed_hosts = {"ok.example", "http://bad/"};
  try {
    forward_proxy p(rt, o);
    FAIL() << "expected a config_error";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "forward_proxy.allowed_hosts[1]");
  }
}

}  // namespace
}  // namespace trellis::proxy
