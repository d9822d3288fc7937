// trellis-echo: the first "try it" of the study guide — TCP versus UDP.
//
//   trellis-echo server --port 7000 [--tls-cert cert.pem --tls-key key.pem]
//   trellis-echo client tcp|udp|tls 127.0.0.1:7000 [--ca ca.pem]
//
// The server listens on one port for both TCP (or TLS) and UDP, on every
// worker (SO_REUSEPORT). Over TCP it sends back every chunk it reads, as it
// reads it: a byte stream has no message boundaries, so "one line" is only
// what the client happened to write at once. Over UDP it returns each
// datagram whole, to whoever sent it. The client sends each line of stdin
// and prints the reply with its round-trip time.
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/listener.hpp"
#include "trellis/net/tls.hpp"
#include "trellis/net/udp.hpp"

namespace {

using namespace std::chrono_literals;
using namespace trellis;
using asio::ip::tcp;
using asio::ip::udp;

constexpr const char* usage = R"(trellis-echo — echo over TCP, UDP and TLS

usage:
  trellis-echo server [--address A] [--port P] [--workers N] [--idle-timeout MS]
                      [--tls-cert FILE --tls-key FILE] [--log-level L]
  trellis-echo client tcp|udp|tls HOST:PORT [--timeout MS] [--ca FILE] [--name NAME]

server  echoes TCP (each chunk back as received) and UDP datagrams on the
        same port, on every worker. With --tls-cert/--tls-key the TCP side
        speaks TLS 1.2/1.3 instead of plain TCP.
        --address A        address to bind (default 127.0.0.1; :: for IPv6)
        --port P           port (default 7000; 0 picks a free one)
        --workers N        worker threads (default: one per core)
        --idle-timeout MS  close a TCP connection idle this long (default 60000)
client  sends each line of stdin and prints the reply with its round-trip time.
        HOST is an IPv4 or IPv6 address (IPv6 in brackets) or localhost.
        --timeout MS       connect and reply deadline (default 2000)
        --ca FILE          CA file for tls (default: the system store)
        --name NAME        name the server certificate must match (default HOST)
)";

[[noreturn]] void fail(const std::string& message) {
  examples::fail("trellis-echo", message);
}

using examples::args;
using examples::to_string;

// --- server -----------------------------------------------------------------

// Reads whatever has arrived and writes it back, until the peer closes or
// stays idle past the deadline. Works for tcp::socket and tls::stream.
template <class Stream>
asio::awaitable<void> echo_stream(Stream& s, net::deadline& idle,
                                  std::chrono::milliseconds idle_timeout) {
  char buf[16 * 1024];
  for (;;) {
    idle.expires_after(idle_timeout);
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
    if (ec) co_return;
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(buf, n), use_nothrow);
    if (wec) co_return;
  }
}

asio::awaitable<void> serve_tcp(tcp::socket s, std::chrono::milliseconds idle_timeout) {
  net::deadline idle(s.get_executor(), [&s] {
    std::error_code ignored;
    s.close(ignored);
  });
  co_await echo_stream(s, idle, idle_timeout);
}

asio::awaitable<void> serve_tls(tcp::socket socket, asio::ssl::context& ctx,
                                std::chrono::milliseconds idle_timeout) {
  net::tls::stream s(std::move(socket), ctx);
  net::deadline idle(s.get_executor(), [&s] {
    std::error_code ignored;
    s.next_layer().close(ignored);
  });
  idle.expires_after(10s);  // handshake deadline
  if (auto ec = co_await net::tls::server_handshake(s)) {
    core::log::debug("tls handshake failed", {{"error", idle.map(ec).message()}});
    co_return;
  }
  co_await echo_stream(s, idle, idle_timeout);
  idle.expires_after(2s);
  (void)co_await net::tls::shutdown(s);
}

asio::awaitable<void> serve_udp(net::udp_socket sock, core::worker& w) {
  auto hook = w.on_drain([&sock] { sock.close(); });
  std::vector<char> buf(65536);
  while (!w.draining()) {
    auto d = co_await sock.receive_from(buf, 1h);
    if (!d) {
      if (w.draining() || d.error() == asio::error::bad_descriptor) co_return;
      continue;  // e.g. ICMP errors from an earlier reply; keep serving
    }
    (void)co_await sock.send_to(std::span<const char>(buf.data(), d->size), d->sender, 1s);
  }
}

int run_server(const args& a) {
  a.allow({"address", "port", "workers", "idle-timeout", "tls-cert", "tls-key", "log-level"});
  a.apply_log_level();
  const auto address = a.address();
  const auto port = static_cast<unsigned short>(a.number("port", 7000, 0, 65535));
  const auto workers = static_cast<std::size_t>(a.number("workers", 0, 0, 1024));
  const std::chrono::milliseconds idle_timeout{a.number("idle-timeout", 60000, 1, 86'400'000)};

  std::optional<asio::ssl::context> tls;
  const auto cert = a.get("tls-cert"), key = a.get("tls-key");
  if (cert.has_value() != key.has_value()) fail("--tls-cert and --tls-key go together");
  if (cert) {
    try {
      tls.emplace(net::tls::make_server_context({.cert_file = *cert, .key_file = *key}));
    } catch (const core::config_error& e) {
      fail(e.what());
    }
  }

  core::runtime rt({.workers = workers});
  auto bound =
      net::listen_on_all(rt, {address, port}, {}, [&](core::worker&) -> net::tcp_listener::handler {
        if (tls)
          return [&tls, idle_timeout](tcp::socket s) {
            return serve_tls(std::move(s), *tls, idle_timeout);
          };
        return [idle_timeout](tcp::socket s) { return serve_tcp(std::move(s), idle_timeout); };
      });
  if (!bound)
    fail("cannot listen on " + to_string({address, port}) + ": " + bound.error().message());
  // UDP on the same port number, one socket per worker.
  for (std::size_t i = 0; i < rt.size(); ++i) {
    auto u =
        net::udp_socket::bind(rt[i].executor(), {address, bound->port()}, {.reuse_port = true});
    if (!u) fail("cannot bind udp " + to_string(*bound) + ": " + u.error().message());
    rt[i].spawn(serve_udp(std::move(*u), rt[i]), "udp echo");
  }
  core::log::info("listening", {{"address", to_string(*bound)},
                                {"tcp", tls ? "tls" : "plain"},
                                {"udp", true},
                                {"workers", rt.size()}});
  rt.run();
  core::log::info("stopped");
  return 0;
}

// --- client -----------------------------------------------------------------

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

void print_reply(std::string_view reply, double ms) {
  // Strip the newline we sent so the output is one line per reply.
  if (!reply.empty() && reply.back() == '\n') reply.remove_suffix(1);
  std::printf("%.*s  (%.3f ms)\n", static_cast<int>(reply.size()), reply.data(), ms);
  std::fflush(stdout);
}

// Parses "127.0.0.1:7000", "[::1]:7000" or "localhost:7000" into the
// addresses to try (localhost: both loopbacks, IPv6 first, as /etc/hosts does).
std::vector<asio::ip::address> parse_target(const std::string& target, unsigned short& port,
                                            std::string& host) {
  const auto colon = target.rfind(':');
  if (colon == std::string::npos) fail("expected HOST:PORT, got '" + target + "'");
  host = target.substr(0, colon);
  const std::string p = target.substr(colon + 1);
  char* end = nullptr;
  const long n = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || n < 1 || n > 65535) fail("bad port in '" + target + "'");
  port = static_cast<unsigned short>(n);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost")
    return {asio::ip::address_v6::loopback(), asio::ip::address_v4::loopback()};
  std::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) fail("'" + host + "' is not an IP address (names other than localhost need a resolver)");
  return {addr};
}

template <class Stream>
asio::awaitable<void> echo_lines(Stream& s, net::deadline& dl, std::chrono::milliseconds timeout) {
  std::string line, reply;
  char buf[16 * 1024];
  while (std::getline(std::cin, line)) {
    line += '\n';
    const auto start = std::chrono::steady_clock::now();
    dl.expires_after(timeout);
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(line), use_nothrow);
    if (wec) fail("send failed: " + dl.map(wec).message());
    // TCP is a stream: the reply may arrive in several pieces; read until
    // every byte we sent has come back.
    reply.clear();
    while (reply.size() < line.size()) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
      if (ec) fail("receive failed: " + net::tls::classify_read_error(dl.map(ec)).message());
      reply.append(buf, n);
    }
    dl.expires_never();
    print_reply(reply, ms_since(start));
  }
}

asio::awaitable<void> run_tcp_client(std::vector<tcp::endpoint> addrs, std::string host,
                                     std::string mode, std::chrono::milliseconds timeout,
                                     std::optional<std::string> ca) {
  const auto start = std::chrono::steady_clock::now();
  auto sock = co_await net::connect(addrs, {.timeout = timeout});
  if (!sock) fail("connect failed: " + sock.error().message());
  std::printf("connected to %s over tcp in %.3f ms\n", to_string(sock->remote_endpoint()).c_str(),
              ms_since(start));
  if (mode == "tcp") {
    net::deadline dl(sock->get_executor(), [&s = *sock] { s.cancel(); });
    co_await echo_lines(*sock, dl, timeout);
    co_return;
  }
  asio::ssl::context ctx = [&] {
    try {
      return net::tls::make_client_context({.ca_file = ca.value_or("")});
    } catch (const core::config_error& e) {
      fail(e.what());
    }
  }();
  net::tls::stream s(std::move(*sock), ctx);
  net::deadline dl(s.get_executor(), [&s] { s.next_layer().cancel(); });
  dl.expires_after(timeout);
  const auto hs = std::chrono::steady_clock::now();
  if (auto ec = co_await net::tls::client_handshake(s, host))
    fail("tls handshake failed: " + dl.map(ec).message());
  const auto info = net::tls::describe(s);
  std::printf("tls %s %s, server certificate %s, in %.3f ms\n", info.protocol.c_str(),
              info.cipher.c_str(), info.peer_subject.c_str(), ms_since(hs));
  std::fflush(stdout);
  co_await echo_lines(s, dl, timeout);
  dl.expires_after(timeout);
  (void)co_await net::tls::shutdown(s);
}

asio::awaitable<void> run_udp_client(udp::endpoint peer, std::chrono::milliseconds timeout) {
  auto sock = net::udp_socket::connect(co_await asio::this_coro::executor, peer);
  if (!sock) fail("udp socket: " + sock.error().message());
  std::string line;
  std::vector<char> buf(65536);
  while (std::getline(std::cin, line)) {
    line += '\n';
    const auto start = std::chrono::steady_clock::now();
    if (auto ec = co_await sock->send({line.data(), line.size()}, timeout))
      fail("send failed: " + ec.message());
    // UDP gives no guarantee of delivery: a lost datagram (or reply) is
    // only noticed by the deadline.
    auto n = co_await sock->receive(buf, timeout);
    if (!n) {
      std::printf("no reply: %s\n", n.error().message().c_str());
      std::fflush(stdout);
      continue;
    }
    print_reply({buf.data(), *n}, ms_since(start));
  }
}

int run_client(const args& a) {
  a.allow({"timeout", "ca", "name"});
  if (a.positional().size() != 3)
    fail("usage: trellis-echo client tcp|udp|tls HOST:PORT (see --help)");
  const std::string mode = a.positional()[1];
  if (mode != "tcp" && mode != "udp" && mode != "tls")
    fail("mode must be tcp, udp or tls, got '" + mode + "'");
  unsigned short port = 0;
  std::string host;
  const auto addrs = parse_target(a.positional()[2], port, host);
  const std::chrono::milliseconds timeout{a.number("timeout", 2000, 1, 3'600'000)};

  asio::io_context ctx(1);
  std::exception_ptr failure;
  auto done = [&](std::exception_ptr e) { failure = e; };
  if (mode == "udp") {
    asio::co_spawn(ctx, run_udp_client({addrs.front(), port}, timeout), done);
  } else {
    std::vector<tcp::endpoint> eps;
    for (const auto& ad : addrs) eps.emplace_back(ad, port);
    asio::co_spawn(
        ctx,
        run_tcp_client(std::move(eps), a.get("name").value_or(host), mode, timeout, a.get("ca")),
        done);
  }
  ctx.run();
  if (failure) std::rethrow_exception(failure);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const args a("trellis-echo", argc, argv, usage);
  if (a.positional().empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  try {
    if (a.positional()[0] == "server") return run_server(a);
    if (a.positional()[0] == "client") return run_client(a);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  fail("unknown command '" + a.positional()[0] + "' (see --help)");
}
