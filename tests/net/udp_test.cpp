#include "trellis/net/udp.hpp"

#include <gtest/gtest.h>

#include <asio/this_coro.hpp>
#include <string>

#include "support/loop.hpp"
#include "trellis/net/error.hpp"

namespace trellis::net {
namespace {

using namespace std::chrono_literals;
using asio::ip::udp;
const udp::endpoint any_loopback{asio::ip::address_v4::loopback(), 0};

std::span<const char> bytes(std::string_view s) {
  return {s.data(), s.size()};
}

TEST(udp_socket, round_trips_a_datagram_between_bound_sockets) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto a = udp_socket::bind(ex, any_loopback);
    auto b = udp_socket::bind(ex, any_loopback);
    CO_ASSERT_OK(a);
    CO_ASSERT_OK(b);
    EXPECT_FALSE(co_await a->send_to(bytes("hello"), b->local_endpoint(), 1s));
    char buf[64];
    auto d = co_await b->receive_from(buf, 1s);
    CO_ASSERT_OK(d);
    EXPECT_EQ(std::string(buf, d->size), "hello");
    EXPECT_EQ(d->sender, a->local_endpoint());
  });
}

TEST(udp_socket, connected_socket_talks_to_its_peer) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto server = udp_socket::bind(ex, any_loopback);
    CO_ASSERT_OK(server);
    auto client = udp_socket::connect(ex, server->local_endpoint());
    CO_ASSERT_OK(client);
    EXPECT_NE(client->local_endpoint().port(), 0) << "bound to an ephemeral port";
    EXPECT_FALSE(co_await client->send(bytes("query"), 1s));
    char buf[64];
    auto d = co_await server->receive_from(buf, 1s);
    CO_ASSERT_OK(d);
    EXPECT_FALSE(co_await server->send_to(bytes("answer"), d->sender, 1s));
    auto n = co_await client->receive(buf, 1s);
    CO_ASSERT_OK(n);
    EXPECT_EQ(std::string(buf, *n), "answer");
  });
}

TEST(udp_socket, receive_times_out_at_the_deadline) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto s = udp_socket::bind(ex, any_loopback);
    CO_ASSERT_OK(s);
    char buf[16];
    const auto start = std::chrono::steady_clock::now();
    auto d = co_await s->receive_from(buf, 200ms);
    const auto took = std::chrono::steady_clock::now() - start;
    CO_ASSERT_FALSE(d);
    EXPECT_EQ(d.error(), error::timed_out);
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 2s);
    // The socket is still usable after a time-out.
    auto other = udp_socket::bind(ex, any_loopback);
    CO_ASSERT_OK(other);
    EXPECT_FALSE(co_await other->send_to(bytes("late"), s->local_endpoint(), 1s));
    auto again = co_await s->receive_from(buf, 1s);
    CO_ASSERT_OK(again);
    EXPECT_EQ(std::string(buf, again->size), "late");
  });
}

TEST(udp_socket, a_datagram_larger_than_the_buffer_is_reported_not_cut) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto a = udp_socket::bind(ex, any_loopback);
    auto b = udp_socket::bind(ex, any_loopback);
    CO_ASSERT_OK(a);
    CO_ASSERT_OK(b);
    const std::string big(600, 'x');
    EXPECT_FALSE(co_await a->send_to(bytes(big), b->local_endpoint(), 1s));
    char small[512];
    auto d = co_await b->receive_from(small, 1s);
    CO_ASSERT_FALSE(d);
    EXPECT_EQ(d.error(), error::message_too_long);
  });
}

TEST(udp_socket, connected_socket_learns_of_a_closed_port) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    udp::endpoint dead;
    {
      auto tmp = udp_socket::bind(ex, any_loopback);
      CO_ASSERT_OK(tmp);
      dead = tmp->local_endpoint();
    }
    auto client = udp_socket::connect(ex, dead);
    CO_ASSERT_OK(client);
    EXPECT_FALSE(co_await client->send(bytes("anyone?"), 1s));
    char buf[16];
    // ICMP port unreachable comes back at once on loopback: no need to wait
    // for the full time-out to learn that nobody is there.
    const auto start = std::chrono::steady_clock::now();
    auto n = co_await client->receive(buf, 5s);
    CO_ASSERT_FALSE(n);
    EXPECT_EQ(n.error(), asio::error::connection_refused) << n.error().message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  });
}

}  // namespace
}  // namespace trellis::net
