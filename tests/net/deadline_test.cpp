#include "trellis/net/deadline.hpp"

#include <gtest/gtest.h>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>

#include "support/loop.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/net/error.hpp"

namespace trellis::net {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using asio::ip::tcp;

// A connected pair of TCP sockets on loopback.
asio::awaitable<std::pair<tcp::socket, tcp::socket>> socket_pair() {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
  tcp::socket client(ex);
  co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  tcp::socket server = co_await acceptor.async_accept(asio::use_awaitable);
  co_return std::pair{std::move(client), std::move(server)};
}

TEST(deadline, a_read_from_a_silent_peer_times_out_at_the_deadline) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    deadline dl(client.get_executor(), [&c = client] { c.cancel(); });
    const auto start = clock::now();
    dl.expires_after(200ms);
    char buf[16];
    auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), use_nothrow);
    const auto took = clock::now() - start;
    EXPECT_EQ(dl.map(ec), error::timed_out);
    EXPECT_EQ(dl.map(ec), std::errc::timed_out) << "also the portable condition";
    EXPECT_TRUE(dl.expired());
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 2s);
  });
}

TEST(deadline, sliding_the_deadline_later_keeps_the_connection_alive) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    bool fired = false;
    deadline dl(client.get_executor(), [&] {
      fired = true;
      client.cancel();
    });
    asio::steady_timer pause(client.get_executor());
    // Activity every 100 ms with a 250 ms idle deadline: never expires.
    for (int i = 0; i < 5; ++i) {
      dl.expires_after(250ms);
      pause.expires_after(100ms);
      co_await pause.async_wait(use_nothrow);
    }
    EXPECT_FALSE(fired);
    EXPECT_FALSE(dl.expired());
    // Then silence: it expires.
    dl.expires_after(100ms);
    char buf[4];
    auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), use_nothrow);
    EXPECT_TRUE(fired);
    EXPECT_EQ(dl.map(ec), error::timed_out);
  });
}

TEST(deadline, moving_the_deadline_earlier_takes_effect) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    deadline dl(client.get_executor(), [&c = client] { c.cancel(); });
    dl.expires_after(1h);
    dl.expires_after(100ms);
    const auto start = clock::now();
    char buf[4];
    auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), use_nothrow);
    EXPECT_EQ(dl.map(ec), error::timed_out);
    EXPECT_LT(clock::now() - start, 2s);
  });
}

TEST(deadline, data_before_the_deadline_is_not_a_timeout) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto [client, server] = co_await socket_pair();
    deadline dl(client.get_executor(), [&c = client] { c.cancel(); });
    dl.expires_after(2s);
    co_await asio::async_write(server, asio::buffer("ping", 4), asio::use_awaitable);
    char buf[4];
    auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), use_nothrow);
    EXPECT_FALSE(dl.map(ec));
    EXPECT_EQ(n, 4u);
    EXPECT_FALSE(dl.expired());
  });
}

TEST(deadline, expires_never_disarms_and_destruction_silences_it) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    int calls = 0;
    {
      deadline dl(ex, [&] { ++calls; });
      dl.expires_after(20ms);
      dl.expires_never();
      asio::steady_timer t(ex, 80ms);
      co_await t.async_wait(use_nothrow);
      EXPECT_EQ(calls, 0);
      dl.expires_after(10ms);
    }  // destroyed while armed
    asio::steady_timer t(ex, 80ms);
    co_await t.async_wait(use_nothrow);
    EXPECT_EQ(calls, 0);
  });
}

TEST(deadline, map_leaves_other_errors_alone) {
  asio::io_context ctx;
  deadline dl(ctx.get_executor(), [] {});
  EXPECT_EQ(dl.map(asio::error::operation_aborted), asio::error::operation_aborted)
      << "aborted by someone else, not by the deadline";
  EXPECT_EQ(dl.map(asio::error::eof), asio::error::eof);
}

}  // namespace
}  // namespace trellis::net
