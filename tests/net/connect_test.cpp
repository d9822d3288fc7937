#include "trellis/net/connect.hpp"

#include <gtest/gtest.h>

#include <asio/ip/tcp.hpp>
#include <asio/this_coro.hpp>

#include "support/blackhole.hpp"
#include "support/loop.hpp"
#include "trellis/net/error.hpp"

namespace trellis::net {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using asio::ip::tcp;

// A loopback port with nothing listening: connects to it are refused.
tcp::endpoint closed_port() {
  asio::io_context ctx;
  tcp::acceptor a(ctx, {asio::ip::address_v4::loopback(), 0});
  return a.local_endpoint();  // closed when `a` goes
}

TEST(connect, reaches_a_listening_peer) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
    auto s = co_await connect(acceptor.local_endpoint());
    CO_ASSERT_OK(s);
    EXPECT_EQ(s->remote_endpoint(), acceptor.local_endpoint());
    EXPECT_TRUE(s->is_open());
  });
}

TEST(connect, reports_a_refused_connection_as_refused) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto s = co_await connect(closed_port());
    CO_ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), asio::error::connection_refused) << s.error().message();
  });
}

TEST(connect, a_peer_that_never_answers_times_out_at_the_deadline) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto hole = co_await test::blackhole::make();
    if (!hole->filled()) CO_SKIP("could not fill a loopback accept queue on this kernel");
    const auto start = clock::now();
    auto s = co_await connect(hole->endpoint(), {.timeout = 300ms});
    const auto took = clock::now() - start;
    CO_ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), error::timed_out);
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 3s);
  });
}

TEST(happy_eyeballs, second_address_wins_after_the_stagger_when_the_first_is_black_holed) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto hole = co_await test::blackhole::make();
    if (!hole->filled()) CO_SKIP("could not fill a loopback accept queue on this kernel");
    tcp::acceptor good(ex, {asio::ip::address_v4::loopback(), 0});
    const std::vector<tcp::endpoint> addresses{hole->endpoint(), good.local_endpoint()};
    const auto start = clock::now();
    auto s = co_await connect(addresses, {.timeout = 5s, .attempt_delay = 150ms});
    const auto took = clock::now() - start;
    CO_ASSERT_OK(s);
    EXPECT_EQ(s->remote_endpoint(), good.local_endpoint());
    EXPECT_GE(took, 150ms) << "the first attempt gets its head start";
    EXPECT_LT(took, 1s) << "the second attempt must not wait for the first to time out";
  });
}

TEST(happy_eyeballs, a_refused_address_starts_the_next_attempt_at_once) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor good(ex, {asio::ip::address_v4::loopback(), 0});
    const std::vector<tcp::endpoint> addresses{closed_port(), good.local_endpoint()};
    const auto start = clock::now();
    auto s = co_await connect(addresses, {.timeout = 5s, .attempt_delay = 2s});
    CO_ASSERT_OK(s);
    EXPECT_EQ(s->remote_endpoint(), good.local_endpoint());
    EXPECT_LT(clock::now() - start, 1s) << "no waiting out the 2 s stagger after a refusal";
  });
}

TEST(happy_eyeballs, all_addresses_failing_reports_the_last_error) {
  test::run_bounded([]() -> asio::awaitable<void> {
    const std::vector<tcp::endpoint> addresses{closed_port(), closed_port()};
    auto s = co_await connect(addresses, {.timeout = 5s, .attempt_delay = 100ms});
    CO_ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), asio::error::connection_refused);
  });
}

TEST(happy_eyeballs, all_black_holed_times_out_at_the_overall_deadline) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto hole = co_await test::blackhole::make();
    if (!hole->filled()) CO_SKIP("could not fill a loopback accept queue on this kernel");
    const std::vector<tcp::endpoint> addresses{hole->endpoint(), hole->endpoint(),
                                               hole->endpoint()};
    const auto start = clock::now();
    auto s = co_await connect(addresses, {.timeout = 400ms, .attempt_delay = 100ms});
    CO_ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), error::timed_out);
    EXPECT_LT(clock::now() - start, 3s);
  });
}

TEST(happy_eyeballs, an_empty_list_is_an_error) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto s = co_await connect(std::span<const tcp::endpoint>{});
    CO_ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), error::no_addresses);
  });
}

TEST(happy_eyeballs, interleaves_families_starting_with_the_first) {
  const auto v6 = [](const char* a) { return tcp::endpoint(asio::ip::make_address(a), 80); };
  const std::vector<tcp::endpoint> in{v6("::1"), v6("::2"), v6("::3"), v6("127.0.0.1"),
                                      v6("127.0.0.2")};
  const std::vector<tcp::endpoint> want{v6("::1"), v6("127.0.0.1"), v6("::2"), v6("127.0.0.2"),
                                        v6("::3")};
  EXPECT_EQ(interleave_families(in), want);
  const std::vector<tcp::endpoint> v4_first{v6("127.0.0.1"), v6("::1"), v6("::2")};
  const std::vector<tcp::endpoint> want2{v6("127.0.0.1"), v6("::1"), v6("::2")};
  EXPECT_EQ(interleave_families(v4_first), want2);
}

}  // namespace
}  // namespace trellis::net
