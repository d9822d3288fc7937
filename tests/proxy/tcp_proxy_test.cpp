// Tests of proxy/tcp_proxy against real peers on 127.0.0.1: upstreams
// are small trellis TCP servers (echo, read-all-then-reply, reset) on
// their own runtime, or trellis-echo in its TLS mode; clients are
// blocking sockets (or a trellis TLS client) in the test thread. They
// check the relay both ways, round robin and least connections over
// connections, half-close, reset propagation, connect failover, closing
// the client when every host is dead, a TLS session relayed unread, a
// 4 MiB transfer each way byte for byte, and the idle timeout. Every wait
// is bounded; nothing asserts on timing.
#include "trellis/proxy/tcp_proxy.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/ip/address_v4.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/bytes.hpp"
#include "support/certs.hpp"
#include "support/loop.hpp"
#include "support/loopback_listener.hpp"
#include "support/process.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/listener.hpp"
#include "trellis/net/tls.hpp"

namespace trellis::proxy {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

const std::string echo_bin = std::string(TRELLIS_BIN_DIR) + "/trellis-echo";

core::runtime_options one_worker() {
  core::runtime_options o;
  o.workers = 1;
  o.drain_timeout = 3s;
  o.handle_signals = false;
  return o;
}

// --- upstreams ----------------------------------------------------------------

// Sends back every byte until EOF, then ends its side too.
asio::awaitable<void> echo(tcp::socket s) {
  char buf[16 * 1024];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
    if (n > 0) {
      auto [wec, w] = co_await asio::async_write(s, asio::buffer(buf, n), use_nothrow);
      (void)w;
      if (wec) co_return;
    }
    if (ec) break;
  }
  std::error_code ignored;
  s.shutdown(tcp::socket::shutdown_send, ignored);
}

// What read_all_then_reply answers to `n` bytes: "got N bytes\n" and
// 256 KiB more, so the reply takes many buffers.
std::string reply_to(std::size_t n) {
  return "got " + std::to_string(n) + " bytes\n" + test::make_bytes(256 * 1024);
}

// Reads until the client's FIN, then replies and closes: works only if a
// half-closed connection still carries the reply.
asio::awaitable<void> read_all_then_reply(tcp::socket s) {
  char buf[4096];
  std::size_t total = 0;
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
    total += n;
    if (ec == asio::error::eof) break;
    if (ec) co_return;
  }
  const std::string reply = reply_to(total);
  auto [wec, w] = co_await asio::async_write(s, asio::buffer(reply), use_nothrow);
  (void)wec;
  (void)w;
}

// Reads one piece, then resets the connection (SO_LINGER 0).
asio::awaitable<void> reset_after_first_read(tcp::socket s) {
  char buf[4096];
  auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
  (void)ec;
  (void)n;
  std::error_code ignored;
  s.set_option(asio::socket_base::linger(true, 0), ignored);
  s.close(ignored);
}

// A TCP server on its own one-worker runtime and thread, counting the
// connections it accepted.
class upstream {
 public:
  using behaviour = asio::awaitable<void> (*)(tcp::socket);

  explicit upstream(behaviour b) : rt_(one_worker()), behaviour_(b) {
    auto ep = net::listen_on_all(rt_, {asio::ip::address_v4::loopback(), 0}, {},
                                 [this](core::worker&) -> net::tcp_listener::handler {
                                   return [this](tcp::socket s) {
                                     accepted_.fetch_add(1);
                                     return behaviour_(std::move(s));
                                   };
                                 });
    if (!ep) throw std::runtime_error("upstream listen: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~upstream() {
    rt_.drain();
    thread_.join();
  }
  upstream(const upstream&) = delete;
  upstream& operator=(const upstream&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::size_t accepted() const { return accepted_.load(); }

 private:
  core::runtime rt_;
  behaviour behaviour_;
  std::atomic<std::size_t> accepted_{0};
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// "127.0.0.1:P" where nothing listens: connects are refused.
std::string dead_address() {
  std::uint16_t port = 0;
  const int fd = test::listen_on_loopback(port);
  if (fd < 0) throw std::runtime_error("no loopback port");
  ::close(fd);
  return "127.0.0.1:" + std::to_string(port);
}

// --- the proxy under test -------------------------------------------------------

// A tcp_proxy over `hosts` on its own one-worker runtime and thread.
// Members in this order: the proxy outlives the runtime (connections cut
// off at stop are destroyed with it).
class proxy_fixture {
 public:
  explicit proxy_fixture(const std::vector<std::string>& hosts, tcp_proxy_options o = {},
                         const std::string& policy = "round_robin") {
    lb::cluster_options co;
    co.name = "test";
    co.policy = policy;
    std::vector<lb::endpoint_config> endpoints;
    for (const auto& h : hosts) {
      lb::endpoint_config e;
      e.address = h;
      endpoints.push_back(e);
    }
    cluster_ = std::make_shared<lb::cluster>(co, endpoints);
    proxy_.emplace(cluster_, std::move(o));
    rt_.emplace(one_worker());
    auto ep = proxy_->listen(*rt_, {asio::ip::address_v4::loopback(), 0});
    if (!ep) throw std::runtime_error("proxy listen: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_->run(); });
  }
  ~proxy_fixture() {
    rt_->drain();
    thread_.join();
    rt_.reset();
  }
  proxy_fixture(const proxy_fixture&) = delete;
  proxy_fixture& operator=(const proxy_fixture&) = delete;

  std::uint16_t port() const { return port_; }
  tcp_proxy_stats stats() const { return proxy_->stats(); }
  tcp_proxy& proxy() { return *proxy_; }

  // Waits (bounded) until the proxy has `n` connections open.
  bool wait_active(std::uint64_t n) const {
    for (int i = 0; i < 500; ++i) {
      if (proxy_->stats().active == n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

 private:
  std::shared_ptr<lb::cluster> cluster_;
  std::optional<tcp_proxy> proxy_;
  std::optional<core::runtime> rt_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// --- a blocking client ------------------------------------------------------------

// A blocking TCP client of 127.0.0.1:port; every read waits at most 10 s.
class client {
 public:
  explicit client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  ~client() { close(); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Sends FIN: no more bytes from this side.
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads up to `n` bytes more (fewer at EOF, reset or after 10 s of silence).
  std::string read(std::size_t n) {
    std::string out;
    while (out.size() < n && read_some(out, n - out.size()) > 0) {
    }
    return out;
  }
  // Reads until EOF or reset; `closed` says whether the connection ended
  // (rather than staying silent for 10 s).
  std::string read_to_end(bool* closed = nullptr) {
    std::string out;
    int r;
    while ((r = read_some(out, 64 * 1024)) > 0) {
    }
    if (closed) *closed = r == 0;
    return out;
  }

 private:
  // 1 got bytes, 0 EOF or reset, -1 silent for 10 s.
  int read_some(std::string& out, std::size_t most) {
    pollfd p{fd_, POLLIN, 0};
    for (;;) {
      const int ready = ::poll(&p, 1, 10'000);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return -1;
      char buf[64 * 1024];
      const ssize_t n = ::recv(fd_, buf, std::min(most, sizeof buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;
      out.append(buf, static_cast<std::size_t>(n));
      return 1;
    }
  }

  int fd_ = -1;
};

// One connection through the proxy: sends `text`, expects it echoed.
void expect_echo(std::uint16_t port, const std::string& text) {
  client c(port);
  ASSERT_TRUE(c.send(text));
  EXPECT_EQ(c.read(text.size()), text);
}

// --- tests --------------------------------------------------------------------

TEST(tcp_proxy, relays_bytes_both_ways_and_counts_them) {
  upstream echo_server(echo);
  proxy_fixture p({echo_server.address()});
  {
    client c(p.port());
    ASSERT_TRUE(c.send("hello through the proxy"));
    EXPECT_EQ(c.read(23), "hello through the proxy");
    ASSERT_TRUE(c.send("and again"));
    EXPECT_EQ(c.read(9), "and again");
    c.shutdown_write();
    bool closed = false;
    EXPECT_EQ(c.read_to_end(&closed), "");
    EXPECT_TRUE(closed) << "the upstream's FIN reaches the client";
  }
  ASSERT_TRUE(p.wait_active(0));
  const auto s = p.stats();
  EXPECT_EQ(s.total, 1u);
  EXPECT_EQ(s.bytes_up, 32u);
  EXPECT_EQ(s.bytes_down, 32u);
  EXPECT_EQ(s.connect_failures, 0u);
  EXPECT_EQ(echo_server.accepted(), 1u);
  std::string text;
  p.proxy().metrics().write_prometheus(text);
  EXPECT_NE(text.find("trellis_tcp_proxy_bytes_total{cluster=\"test\",direction=\"upstream\"} 32"),
            std::string::npos)
      << text;
}

TEST(tcp_proxy, round_robin_spreads_connections_over_two_upstreams) {
  upstream a(echo), b(echo);
  proxy_fixture p({a.address(), b.address()});
  for (int i = 0; i < 6; ++i) expect_echo(p.port(), "ping " + std::to_string(i));
  EXPECT_EQ(a.accepted(), 3u);
  EXPECT_EQ(b.accepted(), 3u);
}

TEST(tcp_proxy, least_connections_counts_open_connections_as_requests) {
  upstream a(echo), b(echo);
  proxy_fixture p({a.address(), b.address()}, {}, "least_connections");
  client held(p.port());  // stays open: its host has one active request
  ASSERT_TRUE(held.send("x"));
  ASSERT_EQ(held.read(1), "x");
  upstream& first = a.accepted() == 1 ? a : b;
  upstream& other = &first == &a ? b : a;
  for (int i = 0; i < 2; ++i) {
    expect_echo(p.port(), "y");
    ASSERT_TRUE(p.wait_active(1)) << "the short connection ends";
  }
  EXPECT_EQ(first.accepted(), 1u) << "the host with an open connection is passed over";
  EXPECT_EQ(other.accepted(), 2u);
}

TEST(tcp_proxy, half_close_still_delivers_the_whole_reply) {
  upstream u(read_all_then_reply);
  proxy_fixture p({u.address()});
  client c(p.port());
  ASSERT_TRUE(c.send("hello proxy"));
  c.shutdown_write();  // as `printf 'hello proxy' | nc` does
  bool closed = false;
  const std::string reply = c.read_to_end(&closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(reply.size(), reply_to(11).size());
  EXPECT_TRUE(reply == reply_to(11)) << "the reply differs: " << reply.substr(0, 20);
}

TEST(tcp_proxy, an_upstream_reset_closes_the_client) {
  upstream u(reset_after_first_read);
  proxy_fixture p({u.address()});
  client c(p.port());
  ASSERT_TRUE(c.send("x"));
  bool closed = false;
  EXPECT_EQ(c.read_to_end(&closed), "");
  EXPECT_TRUE(closed);
  EXPECT_TRUE(p.wait_active(0));
}

TEST(tcp_proxy, fails_over_to_another_host_when_a_connect_is_refused) {
  upstream live(echo);
  proxy_fixture p({dead_address(), live.address()});
  for (int i = 0; i < 3; ++i) expect_echo(p.port(), "still served " + std::to_string(i));
  EXPECT_EQ(live.accepted(), 3u);
  const auto s = p.stats();
  EXPECT_GE(s.connect_failures, 1u) << "round robin picked the dead host first at least once";
  EXPECT_EQ(s.no_upstream, 0u);
}

TEST(tcp_proxy, closes_the_client_when_every_host_is_dead) {
  proxy_fixture p({dead_address(), dead_address()});
  client c(p.port());
  (void)c.send("anyone?");
  bool closed = false;
  EXPECT_EQ(c.read_to_end(&closed), "");
  EXPECT_TRUE(closed);
  ASSERT_TRUE(p.wait_active(0));
  const auto s = p.stats();
  EXPECT_EQ(s.connect_failures, 2u) << "each host tried once: a retry excludes the tried ones";
  EXPECT_EQ(s.no_upstream, 1u);
}

TEST(tcp_proxy, moves_4_mib_each_way_intact) {
  upstream echo_server(echo);
  proxy_fixture p({echo_server.address()});
  const std::string data = test::make_bytes(4 * 1024 * 1024);
  client c(p.port());
  // Send from another thread while this one reads, or both sides' buffers
  // fill and everything stops (the backpressure working as it should).
  bool sent = false;
  std::thread sender([&] {
    sent = c.send(data);
    c.shutdown_write();
  });
  bool closed = false;
  const std::string back = c.read_to_end(&closed);
  sender.join();
  EXPECT_TRUE(sent);
  EXPECT_TRUE(closed);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "the bytes differ";
  ASSERT_TRUE(p.wait_active(0));
  EXPECT_EQ(p.stats().bytes_up, data.size());
  EXPECT_EQ(p.stats().bytes_down, data.size());
}

TEST(tcp_proxy, closes_both_sides_after_the_idle_timeout) {
  upstream echo_server(echo);
  tcp_proxy_options o;
  o.idle_timeout = 200ms;
  proxy_fixture p({echo_server.address()}, o);
  client c(p.port());
  ASSERT_TRUE(c.send("x"));
  EXPECT_EQ(c.read(1), "x");
  bool closed = false;  // then silence, until the proxy gives up
  EXPECT_EQ(c.read_to_end(&closed), "");
  EXPECT_TRUE(closed);
}

TEST(tcp_proxy, relays_a_tls_session_it_cannot_read) {
  REQUIRE_OPENSSL();
  if (::access(echo_bin.c_str(), X_OK) != 0) GTEST_SKIP() << "trellis-echo is not built";
  const auto& pki = test::test_pki();
  test::process server({echo_bin, "server", "--port", "0", "--workers", "1", "--tls-cert",
                        pki.server.cert_file, "--tls-key", pki.server.key_file});
  ASSERT_TRUE(server.wait_for_output("listening", 10s, /*from_stderr=*/true)) << server.err();
  const auto port = test::logged_port(server.err());
  ASSERT_TRUE(port) << server.err();
  proxy_fixture p({"127.0.0.1:" + std::to_string(*port)});

  auto ctx = net::tls::make_client_context({.ca_file = pki.ca_file});
  test::run_bounded([&]() -> asio::awaitable<void> {
    const tcp::endpoint to(asio::ip::address_v4::loopback(), p.port());
    auto sock = co_await net::connect(to);
    CO_ASSERT_OK(sock);
    net::tls::stream s(std::move(*sock), ctx);
    const auto handshake = co_await net::tls::client_handshake(s, "localhost");
    CO_ASSERT_FALSE(handshake);
    const auto info = net::tls::describe(s);
    EXPECT_EQ(info.peer_subject, "CN=localhost") << "the upstream's certificate, verified";
    const std::string text = "secret through an L4 proxy";
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(text), use_nothrow);
    (void)w;
    CO_ASSERT_FALSE(wec);
    std::string got(text.size(), '\0');
    std::size_t have = 0;
    while (have < got.size()) {
      auto [rec, n] = co_await s.async_read_some(asio::buffer(got.data() + have, got.size() - have),
                                                 use_nothrow);
      CO_ASSERT_FALSE(rec);
      have += n;
    }
    EXPECT_EQ(got, text);
    (void)co_await net::tls::shutdown(s);
  });
  EXPECT_GT(p.stats().bytes_up, 0u);
}

TEST(tcp_proxy, rejects_bad_options_naming_the_field) {
  lb::cluster_options co;
  co.name = "x";
  lb::endpoint_config one;
  one.address = "127.0.0.1:1";
  auto c = std::make_shared<lb::cluster>(co, std::vector<lb::endpoint_config>{one});
  const auto field_of = [&](tcp_proxy_options o) -> std::string {
    try {
      tcp_proxy p(c, std::move(o));
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "";
  };
  tcp_proxy_options o;
  o.connect_attempts = 0;
  EXPECT_EQ(field_of(o), "tcp_proxy.connect_attempts");
  o = {};
  o.buffer_size = 0;
  EXPECT_EQ(field_of(o), "tcp_proxy.buffer_size");
  o = {};
  o.connect_timeout = 0ms;
  EXPECT_EQ(field_of(o), "tcp_proxy.connect_timeout");
  o = {};
  o.idle_timeout = -1ms;
  EXPECT_EQ(field_of(o), "tcp_proxy.idle_timeout");
  EXPECT_THROW(tcp_proxy(nullptr), core::config_error);
}

}  // namespace
}  // namespace trellis::proxy
