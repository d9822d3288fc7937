// Tests of http::client through a forward proxy: https through a CONNECT
// tunnel (TLS verified end to end, to the origin, never the proxy), plain
// http sent in absolute form, Proxy-Authorization from the proxy URL's
// userinfo, a refused CONNECT, and NO_PROXY sending a host direct.
//
// The proxy is written here: a listening socket on a background thread and
// a thread per connection, every wait bounded, every connection to
// 127.0.0.1 whatever host it names. It records what it saw (request lines,
// Proxy-Authorization) for the assertions. The client runs through
// run_bounded, so a hang fails the test.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/certs.hpp"
#include "support/http_server.hpp"
#include "support/loop.hpp"
#include "support/loopback_listener.hpp"
#include "trellis/codec/ascii.hpp"
#include "trellis/http/client.hpp"
#include "trellis/net/tls.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
using test::run_bounded;
using test::test_server;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

dns::resolver local_resolver(asio::any_io_executor ex) {
  return dns::resolver(std::move(ex), dns::resolver_options{});
}

// What the origin server saw of one request.
struct origin_log {
  std::mutex m;
  std::vector<std::string> targets;
  std::vector<std::string> proxy_authorizations;  // "" when absent
  void add(std::string target, std::string proxy_auth) {
    std::lock_guard lock(m);
    targets.push_back(std::move(target));
    proxy_authorizations.push_back(std::move(proxy_auth));
  }
};

// Answers "<method> <target>" and logs what it saw.
handler echo(origin_log* log) {
  return [log](request& req, response& res) -> asio::awaitable<void> {
    log->add(std::string(req.target()), std::string(req.header("Proxy-Authorization")));
    res.set_text(std::string(req.method_text()) + " " + std::string(req.target()));
    co_return;
  };
}

// ---------------------------------------------------------------------------
// A forward proxy on raw sockets.
//
//   CONNECT host:port      connects to 127.0.0.1:port, answers 200, then
//                          relays bytes both ways until either side closes;
//   GET http://h:p/x ...   connects to 127.0.0.1:p, forwards the head in
//                          origin form (GET /x), without Proxy-Authorization
//                          and with Connection: close, then relays.
// With `refuse`, it answers every request 407 instead.

class forward_proxy {
 public:
  struct options {
    bool refuse = false;  // answer every request 407 Proxy Authentication Required
  };
  // One request head the proxy received.
  struct seen_request {
    std::string request_line;  // "CONNECT localhost:443 HTTP/1.1"
    std::optional<std::string> proxy_authorization;
    std::optional<std::string> host;
  };

  explicit forward_proxy(options o) : opt_(o) {
    fd_ = test::listen_on_loopback(port_);
    if (fd_ < 0) throw std::runtime_error("cannot listen on 127.0.0.1");
    thread_ = std::thread([this] { serve(); });
  }
  forward_proxy() : forward_proxy(options{}) {}
  ~forward_proxy() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  forward_proxy(const forward_proxy&) = delete;
  forward_proxy& operator=(const forward_proxy&) = delete;

  std::uint16_t port() const { return port_; }
  // The proxy's URL, with `userinfo` ("user:pass") when given.
  std::string url(std::string_view userinfo = "") const {
    return "http://" + (userinfo.empty() ? "" : std::string(userinfo) + "@") +
           "127.0.0.1:" + std::to_string(port_);
  }
  int accepted() const { return accepted_; }
  std::vector<seen_request> seen() {
    std::lock_guard lock(m_);
    return seen_;
  }
  std::vector<std::string> request_lines() {
    std::vector<std::string> out;
    for (auto& s : seen()) out.push_back(s.request_line);
    return out;
  }

 private:
  void serve() {
    std::vector<std::thread> conns;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++accepted_;
      conns.emplace_back([this, c] {
        handle(c);
        ::close(c);
      });
    }
    for (auto& t : conns) t.join();
  }

  // Reads a request head (bounded: 2 s, 64 KiB). `rest` gets the bytes
  // read past it.
  static std::optional<std::string> read_head(int fd, std::string& rest) {
    std::string got;
    char buf[4096];
    for (;;) {
      if (auto end = got.find("\r\n\r\n"); end != std::string::npos) {
        rest = got.substr(end + 4);
        got.resize(end + 4);
        return got;
      }
      if (got.size() > 65536) return std::nullopt;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return std::nullopt;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  static bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  static int connect_local(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  // The port after the last ':' of an authority ("host:port", "[::1]:port").
  static std::optional<std::uint16_t> port_of(std::string_view authority) {
    const auto colon = authority.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == authority.size()) return std::nullopt;
    unsigned v = 0;
    for (char ch : authority.substr(colon + 1)) {
      if (ch < '0' || ch > '9' || v > 65535) return std::nullopt;
      v = v * 10 + static_cast<unsigned>(ch - '0');
    }
    if (v == 0 || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
  }

  // Copies bytes both ways until either side closes, the proxy stops, or
  // 10 s pass without traffic.
  void relay(int a, int b) {
    char buf[16384];
    auto idle_since = std::chrono::steady_clock::now();
    while (!stop_ && std::chrono::steady_clock::now() - idle_since < 10s) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(p, 2, 100) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        if (!send_all(p[1 - i].fd, std::string_view(buf, static_cast<std::size_t>(n)))) return;
        idle_since = std::chrono::steady_clock::now();
      }
    }
  }

  void handle(int client) {
    std::string rest;
    auto head = read_head(client, rest);
    if (!head) return;
    // Split into the request line and fields.
    std::vector<std::string> lines;
    for (std::size_t pos = 0; pos < head->size();) {
      const auto eol = head->find("\r\n", pos);
      if (eol == pos) break;
      lines.push_back(head->substr(pos, eol - pos));
      pos = eol + 2;
    }
    if (lines.empty()) return;
    seen_request s;
    s.request_line = lines[0];
    std::string forwarded_fields;
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const auto colon = lines[i].find(':');
      if (colon == std::string::npos) return;
      const std::string name = lines[i].substr(0, colon);
      std::string value = lines[i].substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (codec::iequals(name, "Proxy-Authorization")) {
        s.proxy_authorization = value;
        continue;
      }
      if (codec::iequals(name, "Host")) s.host = value;
      if (codec::iequals(name, "Connection") || codec::iequals(name, "Proxy-Connection")) continue;
      forwarded_fields += lines[i] + "\r\n";
    }
    {
      std::lock_guard lock(m_);
      seen_.push_back(s);
    }

    const auto sp1 = s.request_line.find(' ');
    const auto sp2 = s.request_line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1) return;
    const std::string method = s.request_line.substr(0, sp1);
    const std::string target = s.request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string version = s.request_line.substr(sp2 + 1);

    if (opt_.refuse) {
      send_all(client,
               "HTTP/1.1 407 Proxy Authentication Required\r\n"
               "Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n"
               "Connection: close\r\n\r\n");
      return;
    }
    if (method == "CONNECT") {
      const auto port = port_of(target);
      const int up = port ? connect_local(*port) : -1;
      if (up < 0) {
        send_all(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      if (send_all(client, "HTTP/1.1 200 Connection Established\r\n\r\n") &&
          (rest.empty() || send_all(up, rest)))
        relay(client, up);
      ::close(up);
      return;
    }

    // Absolute form: http://authority/path?query.
    constexpr std::string_view scheme = "http://";
    if (target.compare(0, scheme.size(), scheme) != 0) {
      send_all(client, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const auto slash = target.find('/', scheme.size());
    const std::string authority = target.substr(scheme.size(), slash - scheme.size());
    const std::string origin_form = slash == std::string::npos ? "/" : target.substr(slash);
    const auto port = port_of(authority);
    const int up = port ? connect_local(*port) : -1;
    if (up < 0) {
      send_all(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const std::string out = method + " " + origin_form + " " + version + "\r\n" + forwarded_fields +
                            "Connection: close\r\n\r\n" + rest;
    if (send_all(up, out)) relay(client, up);
    ::close(up);
  }

  options opt_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::mutex m_;
  std::vector<seen_request> seen_;
  std::thread thread_;
};

url must_parse(std::string_view text) {
  auto u = parse_url(text);
  if (!u) throw std::runtime_error("bad test URL " + std::string(text));
  return *u;
}

// ---------------------------------------------------------------------------

TEST(http_client_proxy, tunnels_https_through_connect_and_verifies_the_origin) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto tls = net::tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file});
  origin_log log;
  test_server origin(echo(&log), {}, &tls);
  forward_proxy proxy;
  const std::string authority = "localhost:" + std::to_string(origin.port());
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client_options o;
    o.request_timeout = 10s;
    o.tls.ca_file = pki.ca_file;
    o.proxy.https_proxy = must_parse(proxy.url());
    client c(ex, r, o);

    // By name: the proxy resolves it, the client checks the certificate
    // names it.
    auto res = co_await c.get("https://" + authority + "/secure?x=1");
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "GET /secure?x=1");
    EXPECT_GT(res->timing.tls.count(), 0);
    EXPECT_EQ(res->remote.port(), proxy.port()) << "the peer of the hop is the proxy";

    // The tunnel is pooled: a second request to the origin reuses it.
    auto again = co_await c.get("https://" + authority + "/again");
    CO_ASSERT_OK(again);
    EXPECT_EQ(again->body, "GET /again");
    EXPECT_TRUE(again->timing.reused);

    // TLS runs end to end, from the client to the origin: a client that
    // does not trust the origin's CA refuses it through the tunnel too.
    client_options untrusting = o;
    untrusting.tls.ca_file = pki.other_ca_file;
    client u(ex, r, untrusting);
    auto refused = co_await u.get("https://" + authority + "/");
    CO_ASSERT_FALSE(refused);
    EXPECT_TRUE(net::tls::is_verification_failure(refused.error())) << refused.error().message();
  });
  EXPECT_THAT(proxy.request_lines(), ElementsAre("CONNECT " + authority + " HTTP/1.1",
                                                 "CONNECT " + authority + " HTTP/1.1"));
  ASSERT_FALSE(proxy.seen().empty());
  EXPECT_EQ(proxy.seen()[0].host.value_or(""), authority);
  EXPECT_FALSE(proxy.seen()[0].proxy_authorization) << "no credentials in the proxy URL";
  std::lock_guard lock(log.m);
  EXPECT_THAT(log.targets, ElementsAre("/secure?x=1", "/again"));
}

TEST(http_client_proxy, sends_plain_http_to_the_proxy_in_absolute_form) {
  origin_log log;
  test_server origin(echo(&log));
  forward_proxy proxy;
  const std::string authority = "127.0.0.1:" + std::to_string(origin.port());
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client_options o;
    o.request_timeout = 10s;
    o.proxy.http_proxy = must_parse(proxy.url());
    client c(ex, r, o);
    auto res = co_await c.get("http://" + authority + "/plain?q=1");
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "GET /plain?q=1");
    EXPECT_EQ(res->remote.port(), proxy.port()) << "the peer of the hop is the proxy";
    EXPECT_EQ(res->url, "http://" + authority + "/plain?q=1");
  });
  auto seen = proxy.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].request_line, "GET http://" + authority + "/plain?q=1 HTTP/1.1");
  EXPECT_EQ(seen[0].host.value_or(""), authority);
  EXPECT_FALSE(seen[0].proxy_authorization);
}

TEST(http_client_proxy, sends_basic_proxy_authorization_from_the_proxy_url) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto tls = net::tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file});
  origin_log secure_log, plain_log;
  test_server secure(echo(&secure_log), {}, &tls);
  test_server plain(echo(&plain_log));
  forward_proxy proxy;
  // "pa%40ss" decodes to "pa@ss": base64("user:pa@ss").
  const std::string expected = "Basic dXNlcjpwYUBzcw==";
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client_options o;
    o.request_timeout = 10s;
    o.tls.ca_file = pki.ca_file;
    o.proxy.http_proxy = must_parse(proxy.url("user:pa%40ss"));
    o.proxy.https_proxy = o.proxy.http_proxy;
    client c(ex, r, o);
    auto s = co_await c.get(secure.url("/s", "https"));
    CO_ASSERT_OK(s);
    EXPECT_EQ(s->body, "GET /s");
    auto p = co_await c.get(plain.url("/p"));
    CO_ASSERT_OK(p);
    EXPECT_EQ(p->body, "GET /p");
  });
  auto seen = proxy.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_THAT(seen[0].request_line, HasSubstr("CONNECT 127.0.0.1:"));
  EXPECT_EQ(seen[0].proxy_authorization.value_or("<none>"), expected) << "on the CONNECT";
  EXPECT_THAT(seen[1].request_line, HasSubstr("GET http://127.0.0.1:"));
  EXPECT_EQ(seen[1].proxy_authorization.value_or("<none>"), expected) << "on the absolute-form GET";
  // The credentials are the proxy's: never sent inside the tunnel to the
  // origin.
  std::lock_guard lock(secure_log.m);
  EXPECT_THAT(secure_log.proxy_authorizations, ElementsAre(""));
}

// A refused CONNECT is an error (there is no response from the origin to
// return); a refused absolute-form request is the proxy's response, which
// the caller gets as it is, as curl does.
TEST(http_client_proxy, a_connect_answered_407_is_proxy_refused) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto tls = net::tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file});
  origin_log log;
  test_server origin(echo(&log), {}, &tls);
  test_server plain(echo(&log));
  forward_proxy proxy({.refuse = true});
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client_options o;
    o.request_timeout = 10s;
    o.tls.ca_file = pki.ca_file;
    o.proxy.https_proxy = must_parse(proxy.url());
    o.proxy.http_proxy = o.proxy.https_proxy;
    client c(ex, r, o);
    auto res = co_await c.get(origin.url("/", "https"));
    CO_ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), client_error::proxy_refused) << res.error().message();
    EXPECT_EQ(c.stats().idle, 0u) << "a refused tunnel is not pooled";

    auto answered = co_await c.get(plain.url("/"));
    CO_ASSERT_OK(answered);
    EXPECT_EQ(answered->status, 407);
    EXPECT_EQ(answered->headers.get("Proxy-Authenticate").value_or(""), "Basic realm=\"test\"");
  });
  EXPECT_THAT(proxy.request_lines(),
              ElementsAre("CONNECT 127.0.0.1:" + std::to_string(origin.port()) + " HTTP/1.1",
                          "GET http://127.0.0.1:" + std::to_string(plain.port()) + "/ HTTP/1.1"));
  std::lock_guard lock(log.m);
  EXPECT_TRUE(log.targets.empty()) << "nothing reached the origin";
}

TEST(http_client_proxy, no_proxy_sends_matching_hosts_direct) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto tls = net::tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file});
  origin_log secure_log, plain_log;
  test_server secure(echo(&secure_log), {}, &tls);
  test_server plain(echo(&plain_log));
  forward_proxy proxy;
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client_options o;
    o.request_timeout = 10s;
    o.tls.ca_file = pki.ca_file;
    o.proxy.http_proxy = must_parse(proxy.url());
    o.proxy.https_proxy = o.proxy.http_proxy;
    o.proxy.no_proxy = {"127.0.0.1"};
    client c(ex, r, o);
    auto p = co_await c.get(plain.url("/direct"));
    CO_ASSERT_OK(p);
    EXPECT_EQ(p->body, "GET /direct");
    EXPECT_EQ(p->remote.port(), plain.port()) << "the peer is the origin itself";
    auto s = co_await c.get(secure.url("/direct", "https"));
    CO_ASSERT_OK(s);
    EXPECT_EQ(s->body, "GET /direct");
    EXPECT_EQ(s->remote.port(), secure.port());
    EXPECT_EQ(proxy.accepted(), 0) << "the proxy saw nothing";

    // A host NO_PROXY does not name still goes through the proxy: the
    // entry "127.0.0.1" is an address and never matches the name localhost.
    auto by_name = co_await c.get("http://localhost:" + std::to_string(plain.port()) + "/proxied");
    CO_ASSERT_OK(by_name);
    EXPECT_EQ(by_name->body, "GET /proxied");
    EXPECT_EQ(by_name->remote.port(), proxy.port());
  });
  EXPECT_THAT(
      proxy.request_lines(),
      ElementsAre("GET http://localhost:" + std::to_string(plain.port()) + "/proxied HTTP/1.1"));
}

}  // namespace
}  // namespace trellis::http
