#include "trellis/net/readiness.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "support/loop.hpp"
#include "support/socket_pair.hpp"
#include "trellis/core/awaitable.hpp"

namespace trellis::net {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

// A connected pair on loopback, the server side non-blocking as a server's is.
asio::awaitable<std::pair<tcp::socket, tcp::socket>> socket_pair() {
  auto pair = co_await test::socket_pair();
  pair.second.non_blocking(true);
  co_return pair;
}

// Reads what is there without waiting; marks the readiness drained when the
// socket had less than asked for. Returns the bytes, or an error.
std::error_code read_now(tcp::socket& s, readiness& ready, std::string& into) {
  char buf[256];
  std::error_code ec;
  const std::size_t n = s.read_some(asio::buffer(buf), ec);
  if (ec == asio::error::would_block || (!ec && n < sizeof buf)) ready.drained();
  into.append(buf, n);
  return ec;
}

TEST(readiness, a_wait_ends_when_bytes_arrive) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    readiness ready(server.get_executor(), server.native_handle());
    std::string got;
    EXPECT_EQ(read_now(server, ready, got), asio::error::would_block);
    EXPECT_FALSE(ready.readable());

    asio::steady_timer later(client.get_executor());
    later.expires_after(50ms);
    later.async_wait([&c = client](std::error_code) { asio::write(c, asio::buffer("ping", 4)); });
    auto [ec] = co_await ready.async_wait(use_nothrow);
    EXPECT_FALSE(ec);
    EXPECT_TRUE(ready.readable());
    EXPECT_FALSE(read_now(server, ready, got));
    EXPECT_EQ(got, "ping");
  });
}

TEST(readiness, bytes_that_came_before_the_wait_end_it_at_once) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    readiness ready(server.get_executor(), server.native_handle());
    std::string got;
    EXPECT_EQ(read_now(server, ready, got), asio::error::would_block);
    // The edge happens while nobody waits and before any poll: the wait
    // must still see it.
    asio::write(client, asio::buffer("early", 5));
    auto [ec] = co_await ready.async_wait(use_nothrow);
    EXPECT_FALSE(ec);
    EXPECT_FALSE(read_now(server, ready, got));
    EXPECT_EQ(got, "early");
  });
}

TEST(readiness, an_edge_collected_for_another_socket_is_remembered) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client_a, server_a] = co_await socket_pair();
    auto [client_b, server_b] = co_await socket_pair();
    readiness a(server_a.get_executor(), server_a.native_handle());
    readiness b(server_b.get_executor(), server_b.native_handle());
    std::string got;
    EXPECT_EQ(read_now(server_a, a, got), asio::error::would_block);
    EXPECT_EQ(read_now(server_b, b, got), asio::error::would_block);
    // A gets bytes while only B waits: the poll that wakes B collects A's
    // edge too, and A's next wait must not wait for another one.
    asio::write(client_a, asio::buffer("a", 1));
    asio::write(client_b, asio::buffer("b", 1));
    auto [eb] = co_await b.async_wait(use_nothrow);
    EXPECT_FALSE(eb);
    EXPECT_TRUE(a.readable()) << "A's edge was seen in B's batch";
    auto [ea] = co_await a.async_wait(use_nothrow);
    EXPECT_FALSE(ea);
    EXPECT_FALSE(read_now(server_a, a, got));
    EXPECT_EQ(got, "a");
  });
}

TEST(readiness, the_end_of_the_stream_ends_a_wait) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    readiness ready(server.get_executor(), server.native_handle());
    std::string got;
    EXPECT_EQ(read_now(server, ready, got), asio::error::would_block);
    client.shutdown(tcp::socket::shutdown_send);
    auto [ec] = co_await ready.async_wait(use_nothrow);
    EXPECT_FALSE(ec);
    EXPECT_EQ(read_now(server, ready, got), asio::error::eof);
  });
}

TEST(readiness, a_close_that_came_with_the_last_bytes_is_not_lost) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    readiness ready(server.get_executor(), server.native_handle());
    std::string got;
    EXPECT_EQ(read_now(server, ready, got), asio::error::would_block);
    // Bytes and FIN in one edge: the short read takes the bytes, the end
    // of the stream is still to be read, and no further edge will come.
    asio::write(client, asio::buffer("last", 4));
    client.shutdown(tcp::socket::shutdown_send);
    auto [ec] = co_await ready.async_wait(use_nothrow);
    EXPECT_FALSE(ec);
    EXPECT_FALSE(read_now(server, ready, got));
    EXPECT_EQ(got, "last");
    EXPECT_TRUE(ready.readable()) << "the end of the stream is still to be read";
    std::tie(ec) = co_await ready.async_wait(use_nothrow);
    EXPECT_FALSE(ec);
    EXPECT_EQ(read_now(server, ready, got), asio::error::eof);
  });
}

TEST(readiness, bytes_already_there_when_registering_count_as_an_edge) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    asio::write(client, asio::buffer("first", 5));
    // The bytes came before the socket was registered: no edge will come
    // for them, so the registration itself must report them.
    readiness ready(server.get_executor(), server.native_handle());
    auto [ec] = co_await ready.async_wait(use_nothrow);
    EXPECT_FALSE(ec);
    std::string got;
    EXPECT_FALSE(read_now(server, ready, got));
    EXPECT_EQ(got, "first");
  });
}

TEST(readiness, a_wait_never_completes_inside_the_call_that_starts_it) {
  asio::io_context ctx(1);
  tcp::acceptor acceptor(ctx, {asio::ip::address_v4::loopback(), 0});
  tcp::socket client(ctx);
  client.connect(acceptor.local_endpoint());
  tcp::socket server = acceptor.accept();
  server.non_blocking(true);
  readiness ready(ctx.get_executor(), server.native_handle());
  asio::write(client, asio::buffer("x", 1));
  std::optional<std::error_code> first;
  ready.async_wait([&](std::error_code ec) { first = ec; });
  ctx.run_for(5s);  // returns once the wait is done: nothing else to do
  ASSERT_TRUE(first);
  EXPECT_FALSE(*first);
  // Nothing was read, so the socket is still readable, and a new wait
  // completes without waiting — but not before async_wait returns.
  EXPECT_TRUE(ready.readable());
  ctx.restart();
  std::optional<std::error_code> result;
  ready.async_wait([&](std::error_code ec) { result = ec; });
  EXPECT_FALSE(result) << "ran inside async_wait";
  ctx.run_for(5s);
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
  ready.reset();
}

TEST(readiness, cancel_and_reset_end_the_wait_as_aborted) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    readiness ready(server.get_executor(), server.native_handle());
    std::string got;
    EXPECT_EQ(read_now(server, ready, got), asio::error::would_block);

    asio::steady_timer later(server.get_executor());
    later.expires_after(20ms);
    later.async_wait([&](std::error_code) { ready.cancel(); });
    auto [ec] = co_await ready.async_wait(use_nothrow);
    EXPECT_EQ(ec, asio::error::operation_aborted);

    later.expires_after(20ms);
    later.async_wait([&](std::error_code) { ready.reset(); });
    std::tie(ec) = co_await ready.async_wait(use_nothrow);
    EXPECT_EQ(ec, asio::error::operation_aborted);
    // Once reset, every wait is aborted: the socket left the epoll set.
    std::tie(ec) = co_await ready.async_wait(use_nothrow);
    EXPECT_EQ(ec, asio::error::operation_aborted);
  });
}

TEST(readiness, many_sockets_share_one_poll) {
  test::run_bounded([]() -> asio::awaitable<void> {
    constexpr int count = 40;
    auto ex = co_await asio::this_coro::executor;
    std::vector<std::pair<tcp::socket, tcp::socket>> pairs;
    std::vector<std::unique_ptr<readiness>> ready;
    for (int i = 0; i < count; ++i) {
      pairs.push_back(co_await socket_pair());
      ready.push_back(std::make_unique<readiness>(ex, pairs.back().second.native_handle()));
      std::string none;
      EXPECT_EQ(read_now(pairs.back().second, *ready.back(), none), asio::error::would_block);
    }
    const auto polls_before = readiness::polls_of(ex);
    int woken = 0;
    for (auto& r : ready) {
      r->async_wait([&](std::error_code ec) {
        EXPECT_FALSE(ec);
        ++woken;
      });
    }
    for (auto& [client, server] : pairs) asio::write(client, asio::buffer("x", 1));
    asio::steady_timer tick(ex);
    for (int i = 0; i < 200 && woken < count; ++i) {
      tick.expires_after(10ms);
      co_await tick.async_wait(use_nothrow);
    }
    EXPECT_EQ(woken, count);
    // One Asio wait serves a whole batch of sockets; a wait per socket
    // would be `count` of them.
    EXPECT_LT(readiness::polls_of(ex) - polls_before, static_cast<std::uint64_t>(count / 2));
  });
}

TEST(readiness, a_pending_wait_is_destroyed_with_its_context) {
  // What a parked connection looks like: the pending wait's handler owns
  // the object holding the socket and its readiness. When the context goes,
  // the handler is destroyed without running, and with it the connection,
  // whose readiness (unregistered by the context's end) touches nothing
  // freed (AddressSanitizer checks that).
  struct connection {
    tcp::socket socket;
    readiness ready;
    bool* destroyed;
    connection(tcp::socket s, bool* d)
        : socket(std::move(s)), ready(socket.get_executor(), socket.native_handle()), destroyed(d) {}
    ~connection() { *destroyed = true; }
  };
  bool destroyed = false;
  bool ran = false;
  {
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx, {asio::ip::address_v4::loopback(), 0});
    tcp::socket client(ctx);
    client.connect(acceptor.local_endpoint());
    tcp::socket accepted = acceptor.accept();
    accepted.non_blocking(true);
    auto c = std::make_unique<connection>(std::move(accepted), &destroyed);
    std::string got;
    EXPECT_EQ(read_now(c->socket, c->ready, got), asio::error::would_block);
    readiness& ready = c->ready;
    ready.async_wait([&ran, c = std::move(c)](std::error_code) { ran = true; });
    ctx.run_for(20ms);
    EXPECT_FALSE(ran);
    EXPECT_FALSE(destroyed) << "the handler holds its connection while it waits";
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(destroyed);
}

}  // namespace
}  // namespace trellis::net
