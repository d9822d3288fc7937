#include "trellis/net/deadline.hpp"

#include <gtest/gtest.h>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "support/loop.hpp"
#include "support/socket_pair.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/net/error.hpp"

namespace trellis::net {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using asio::ip::tcp;

using test::socket_pair;

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

// Waits (on timers of the test's own) until `done()` or about 2 s passed.
asio::awaitable<void> wait_for(std::function<bool()> done) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (int i = 0; i < 200 && !done(); ++i) {
    t.expires_after(10ms);
    co_await t.async_wait(use_nothrow);
  }
}

TEST(deadline, deadlines_of_one_length_fire_in_the_order_they_were_set) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    std::vector<int> order;
    deadline a(ex, [&] { order.push_back(1); });
    deadline b(ex, [&] { order.push_back(2); });
    deadline c(ex, [&] { order.push_back(3); });
    a.expires_after(20ms);
    b.expires_after(20ms);
    c.expires_after(20ms);
    co_await wait_for([&] { return order.size() == 3; });
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    EXPECT_TRUE(a.expired() && b.expired() && c.expired());
  });
}

TEST(deadline, an_expires_at_ahead_of_others_in_its_list_fires_first) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    std::vector<int> order;
    deadline late(ex, [&] { order.push_back(1); });
    deadline early(ex, [&] { order.push_back(2); });
    deadline shorter(ex, [&] { order.push_back(3); });
    // Same length to the millisecond, so the same list; set in the
    // opposite order of their expiry. The list is picked by the length
    // left at each call, so a machine that stalls between the calls can
    // split the pair across two lists: then all three are disarmed (which
    // drops the lists) and set again.
    for (int attempt = 0; attempt < 50; ++attempt) {
      const auto now = clock::now();
      late.expires_at(now + 40ms + 900us);
      early.expires_at(now + 40ms + 500us);
      shorter.expires_at(now + 20ms);  // a shorter length, another list
      if (deadline::usage_of(ex).lists == 2) break;
      late.expires_never();
      early.expires_never();
      shorter.expires_never();
    }
    EXPECT_EQ(deadline::usage_of(ex).lists, 2u);
    co_await wait_for([&] { return order.size() == 3; });
    EXPECT_EQ(order, (std::vector<int>{3, 2, 1}));
  });
}

TEST(deadline, a_deadline_moved_later_does_not_fire_at_its_old_time) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    bool fired = false;
    deadline moved(ex, [&] { fired = true; });
    bool other_fired = false;
    deadline other(ex, [&] { other_fired = true; });
    moved.expires_after(20ms);
    other.expires_after(20ms);  // the timer wakes up for the list's time...
    moved.expires_after(1h);    // ...where `moved` no longer is
    co_await wait_for([&] { return other_fired; });
    EXPECT_TRUE(other_fired);
    EXPECT_FALSE(fired);
    EXPECT_FALSE(moved.expired());
    EXPECT_EQ(deadline::usage_of(ex).armed, 1u) << "`moved` is still armed, for later";
  });
}

TEST(deadline, many_deadlines_share_one_timer_and_moving_them_costs_no_timer_work) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    int calls = 0;
    std::vector<std::unique_ptr<deadline>> all;
    for (int i = 0; i < 1000; ++i) all.push_back(std::make_unique<deadline>(ex, [&] { ++calls; }));
    const auto before = deadline::usage_of(ex);
    EXPECT_EQ(before.armed, 0u);
    for (auto& d : all) d->expires_after(1h);
    auto u = deadline::usage_of(ex);
    EXPECT_EQ(u.armed, 1000u);
    EXPECT_EQ(u.lists, 1u);
    EXPECT_EQ(u.timer_waits, before.timer_waits + 1) << "one wait, for the first of them";

    // Later, again and again (a keep-alive connection's idle deadline):
    // the timer is left alone.
    for (int round = 0; round < 3; ++round)
      for (auto& d : all) d->expires_after(1h);
    for (auto& d : all) d->expires_after(2h);
    u = deadline::usage_of(ex);
    EXPECT_EQ(u.armed, 1000u);
    EXPECT_EQ(u.timer_waits, before.timer_waits + 1);

    // One deadline ahead of all the others moves the timer, once.
    all[500]->expires_after(30min);
    EXPECT_EQ(deadline::usage_of(ex).timer_waits, before.timer_waits + 2);

    // Nothing armed: the timer stops waiting and the lists go.
    for (auto& d : all) d->expires_never();
    u = deadline::usage_of(ex);
    EXPECT_EQ(u.armed, 0u);
    EXPECT_EQ(u.lists, 0u);
    EXPECT_EQ(calls, 0);
  });
}

TEST(deadline, on_expire_may_set_its_deadline_again) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    int calls = 0;
    std::optional<deadline> dl;
    dl.emplace(ex, [&] {
      if (++calls < 3) dl->expires_after(5ms);
    });
    dl->expires_after(5ms);
    co_await wait_for([&] { return calls == 3; });
    EXPECT_EQ(calls, 3);
    EXPECT_TRUE(dl->expired());
    EXPECT_EQ(deadline::usage_of(ex).armed, 0u);
  });
}

TEST(deadline, a_time_already_past_fires_on_the_executor_not_in_the_call) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    bool fired = false;
    deadline dl(ex, [&] { fired = true; });
    dl.expires_at(clock::now() - 1s);
    EXPECT_FALSE(fired);
    co_await wait_for([&] { return fired; });
    EXPECT_TRUE(fired);
    EXPECT_TRUE(dl.expired());
  });
}

TEST(deadline, a_context_whose_deadlines_are_disarmed_or_gone_runs_out_of_work) {
  asio::io_context ctx;
  int calls = 0;
  {
    deadline kept(ctx.get_executor(), [&] { ++calls; });
    kept.expires_after(1h);
    kept.expires_never();
    ctx.run_for(10s);  // returns at once when nothing is pending
    EXPECT_TRUE(ctx.stopped()) << "a disarmed deadline leaves no timer waiting";
    ctx.restart();
    kept.expires_after(1h);
  }  // destroyed while armed
  ctx.run_for(10s);
  EXPECT_TRUE(ctx.stopped()) << "a destroyed deadline leaves no timer waiting";
  EXPECT_EQ(calls, 0);
}

TEST(deadline, a_context_destroyed_with_armed_deadlines_in_suspended_coroutines) {
  auto ctx = std::make_unique<asio::io_context>();
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(
        *ctx,
        [&calls]() -> asio::awaitable<void> {
          auto ex = co_await asio::this_coro::executor;
          deadline dl(ex, [&calls] { ++calls; });
          dl.expires_after(1h);
          asio::steady_timer forever(ex, clock::time_point::max());
          co_await forever.async_wait(use_nothrow);
        },
        [](std::exception_ptr) {});
  }
  ctx->poll();
  EXPECT_EQ(deadline::usage_of(ctx->get_executor()).armed, 3u);
  ctx.reset();  // the frames, and their deadlines, go with the context
  EXPECT_EQ(calls, 0);
}

// An object that owns a socket with a deadline may be destroyed after its
// io_context (a server declared before the runtime that runs it). The
// deadline, armed or not, must not reach back into the freed context.
TEST(deadline, outlives_its_context_armed_or_not) {
  auto ctx = std::make_unique<asio::io_context>();
  auto armed = std::make_unique<deadline>(ctx->get_executor(), [] {});
  auto idle = std::make_unique<deadline>(ctx->get_executor(), [] {});
  armed->expires_after(1h);
  ctx.reset();
  EXPECT_FALSE(armed->expired());
  armed.reset();  // ASan reports a use after free if these touch the context
  idle.reset();
}

TEST(deadline, contexts_keep_separate_lists) {
  asio::io_context one, two;
  deadline a(one.get_executor(), [] {});
  deadline b(two.get_executor(), [] {});
  a.expires_after(1h);
  EXPECT_EQ(deadline::usage_of(one.get_executor()).armed, 1u);
  EXPECT_EQ(deadline::usage_of(two.get_executor()).armed, 0u);
  b.expires_after(1h);
  EXPECT_EQ(deadline::usage_of(two.get_executor()).armed, 1u);
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
