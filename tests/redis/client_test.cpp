#include "trellis/redis/client.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "support/blackhole.hpp"
#include "support/loop.hpp"
#include "support/redis_server.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/net/error.hpp"

namespace trellis::resp {
// GoogleTest prints values in failure messages through this.
inline void PrintTo(const value& v, std::ostream* os) {
  *os << describe(v);
}
}  // namespace trellis::resp

namespace trellis::redis {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using asio::ip::tcp;
using resp::value;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

// The completion handler of the coroutines a test spawns: an exception
// is a failure of the test, never lost.
auto must_not_throw() {
  return [](std::exception_ptr e) {
    if (e) ADD_FAILURE() << "a spawned coroutine threw";
  };
}

// A reply that must be a string: its text, or a description of what came.
std::string text_of(const result<value>& r) {
  if (!r) return "<transport error: " + r.error().message() + ">";
  if (!r->is_string()) return "<" + resp::describe(*r) + ">";
  return std::string(r->text());
}

std::int64_t integer_of(const result<value>& r) {
  if (!r || r->kind() != resp::type::integer) return -1;
  return r->integer_value();
}

TEST(redis_client, sets_gets_and_increments) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await connect(ex, redis.endpoint());
    CO_ASSERT_OK(c);
    EXPECT_TRUE(c->connected());

    auto set = co_await c->command("SET", "greeting", "hello");
    CO_ASSERT_OK(set);
    EXPECT_EQ(*set, value::simple_string("OK"));
    auto get = co_await c->command("GET", "greeting");
    EXPECT_EQ(text_of(get), "hello");
    auto missing = co_await c->command("GET", "no-such-key");
    CO_ASSERT_OK(missing);
    EXPECT_TRUE(missing->is_null());

    auto r1 = co_await c->command("INCR", "counter");
    EXPECT_EQ(integer_of(r1), 1);
    auto r2 = co_await c->command("INCR", "counter");
    EXPECT_EQ(integer_of(r2), 2);
    auto r3 = co_await c->command("INCRBY", "counter", "40");
    EXPECT_EQ(integer_of(r3), 42);
    EXPECT_EQ(c->stats().connects, 1u);
  });
}

TEST(redis_client, values_are_binary_safe_up_to_a_mebibyte) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await connect(ex, redis.endpoint());
    CO_ASSERT_OK(c);
    std::string every_byte;
    for (int i = 0; i < 256; ++i) every_byte += static_cast<char>(i);
    std::string mebibyte(1 << 20, '\0');
    for (std::size_t i = 0; i < mebibyte.size(); ++i)
      mebibyte[i] = static_cast<char>((i * 131) ^ (i >> 9));
    const std::vector<std::string> values = {
        "", "line\r\nbreak\r\n", "nul\0inside\0"s, "$5\r\n*1\r\n:1\r\n", every_byte, mebibyte};
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::string key = "bin:\r\n\0:"s + std::to_string(i);  // keys are binary-safe too
      auto set = co_await c->command("SET", key, values[i]);
      CO_ASSERT_OK(set);
      EXPECT_FALSE(set->is_error()) << resp::describe(*set);
      auto get = co_await c->command("GET", key);
      CO_ASSERT_OK(get);
      EXPECT_EQ(get->kind(), resp::type::bulk_string);
      EXPECT_TRUE(get->text() == values[i])
          << "value " << i << " came back different (" << get->text().size() << " bytes)";
      auto len = co_await c->command("STRLEN", key);
      EXPECT_EQ(integer_of(len), static_cast<std::int64_t>(values[i].size()));
    }
  });
}

TEST(redis_client, an_error_reply_is_a_value_and_the_connection_goes_on) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await connect(ex, redis.endpoint());
    CO_ASSERT_OK(c);
    auto r4 = co_await c->command("SET", "word", "not a number");
    CO_ASSERT_OK(r4);
    auto incr = co_await c->command("INCR", "word");
    CO_ASSERT_OK(incr);             // the transport worked...
    EXPECT_TRUE(incr->is_error());  // ...and Redis said no
    EXPECT_TRUE(incr->text().starts_with("ERR")) << resp::describe(*incr);
    auto unknown = co_await c->command("NOSUCHCOMMAND", "x");
    CO_ASSERT_OK(unknown);
    EXPECT_TRUE(unknown->is_error());
    auto wrongtype = co_await c->command("LPUSH", "word", "x");
    CO_ASSERT_OK(wrongtype);
    EXPECT_TRUE(wrongtype->text().starts_with("WRONGTYPE")) << resp::describe(*wrongtype);
    auto r5 = co_await c->command("GET", "word");
    EXPECT_EQ(text_of(r5), "not a number");
    EXPECT_EQ(c->stats().connects, 1u);
    EXPECT_EQ(c->stats().disconnects, 0u);
  });
}

// 2000 commands from 1000 coroutines at once, on one connection: each
// coroutine gets its own replies, and the commands went out in batches.
TEST(redis_client, concurrent_commands_are_pipelined_and_each_gets_its_own_reply) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto connected = co_await connect(ex, redis.endpoint());
    CO_ASSERT_OK(connected);
    client& c = *connected;
    const auto before = c.stats();

    constexpr int k_coroutines = 1000;
    int finished = 0;
    int wrong = 0;
    asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
    auto worker = [&c, &finished, &wrong, &all_done](int i) -> asio::awaitable<void> {
      const std::string payload = "payload-" + std::to_string(i) + "\r\n\0end"s;
      const std::string key = "counter:" + std::to_string(i);
      auto echo = co_await c.command("ECHO", payload);
      if (text_of(echo) != payload) ++wrong;
      auto incr = co_await c.command("INCRBY", key, std::to_string(i));
      if (integer_of(incr) != i) ++wrong;
      if (++finished == k_coroutines) all_done.cancel();
    };
    for (int i = 0; i < k_coroutines; ++i) {
      asio::co_spawn(ex, worker(i), must_not_throw());
    }
    if (finished < k_coroutines) co_await all_done.async_wait(use_nothrow);
    EXPECT_EQ(finished, k_coroutines);
    EXPECT_EQ(wrong, 0);
    const auto after = c.stats();
    EXPECT_EQ(after.commands - before.commands, 2u * k_coroutines);
    // Pipelining: fewer writes than commands (all 1000 first commands
    // are queued before the writer runs once).
    EXPECT_LT(after.writes - before.writes, after.commands - before.commands);
    EXPECT_EQ(after.connects, 1u);
    // Every key holds what its own coroutine added.
    auto check = co_await c.command("GET", "counter:377");
    EXPECT_EQ(text_of(check), "377");
  });
}

TEST(redis_client, a_pipeline_returns_every_reply_in_order) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await connect(ex, redis.endpoint());
    CO_ASSERT_OK(c);
    pipeline p;
    p.add("SET", "p", "10")
        .add("INCR", "p")
        .add("GET", "p")
        .add("HINCRBY", "p", "f", "1")  // WRONGTYPE: an error in the middle
        .add("MULTI")
        .add("INCR", "p")
        .add("INCR", "p")
        .add("EXEC");
    EXPECT_EQ(p.size(), 8u);
    auto replies = co_await c->execute(p);
    CO_ASSERT_OK(replies);
    CO_ASSERT_TRUE(replies->size() == 8u);
    const auto& r = *replies;
    EXPECT_EQ(r[0], value::simple_string("OK"));
    EXPECT_EQ(r[1], value::integer(11));
    EXPECT_EQ(r[2], value::bulk_string("11"));
    EXPECT_TRUE(r[3].is_error());
    EXPECT_EQ(r[4], value::simple_string("OK"));
    EXPECT_EQ(r[5], value::simple_string("QUEUED"));
    EXPECT_EQ(r[7], value::array({value::integer(12), value::integer(13)}));
  });
}

TEST(redis_client, eval_falls_back_to_eval_on_noscript_then_uses_evalsha) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await connect(ex, redis.endpoint());
    CO_ASSERT_OK(c);
    const script add("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    auto r6 = co_await c->command("SCRIPT", "FLUSH");
    CO_ASSERT_OK(r6);

    const std::vector<std::string_view> key = {"total"};
    const std::vector<std::string_view> five = {"5"}, seven = {"7"};
    auto first = co_await c->eval(add, key, five);
    EXPECT_EQ(integer_of(first), 5);
    EXPECT_EQ(c->stats().script_fallbacks, 1u);  // EVALSHA -> NOSCRIPT -> EVAL

    auto second = co_await c->eval(add, key, seven);
    EXPECT_EQ(integer_of(second), 12);
    EXPECT_EQ(c->stats().script_fallbacks, 1u);  // EVALSHA found it this time

    // The digest is the one Redis computes.
    auto loaded = co_await c->command("SCRIPT", "LOAD", add.source());
    EXPECT_EQ(text_of(loaded), add.sha1());
    const std::vector<std::string> keys = {"total"};
    const std::vector<std::string> args = {"not a number"};
    auto failed = co_await c->eval(add, keys, args);
    CO_ASSERT_OK(failed);
    EXPECT_TRUE(failed->is_error()) << resp::describe(*failed);  // the script's error, as a value
  });
}

TEST(redis_client, the_script_digest_is_sha1_of_the_source) {
  EXPECT_EQ(script("").sha1(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(script("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST(redis_client, a_killed_server_fails_pending_and_new_commands_and_a_restart_reconnects) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    client_options o;
    o.command_timeout = 0ms;          // BLPOP below blocks for seconds
    o.reconnect_backoff_min = 200ms;  // long enough that the 2nd command below is within it
    o.reconnect_backoff_max = 400ms;
    auto connected = co_await connect(ex, redis.endpoint(), o);
    CO_ASSERT_OK(connected);
    client& c = *connected;
    auto r7 = co_await c.command("SET", "before", "1");
    CO_ASSERT_OK(r7);

    std::optional<result<value>> blocked;
    auto block = [&]() -> asio::awaitable<void> {
      blocked = co_await c.command("BLPOP", "empty", "10");
    };
    asio::co_spawn(ex, block(), must_not_throw());
    co_await sleep_for(100ms);  // lets the writer send BLPOP (either way it must fail below)
    CO_ASSERT_FALSE(blocked.has_value());

    redis.kill();
    for (int i = 0; i < 200 && !blocked; ++i) co_await sleep_for(10ms);
    CO_ASSERT_TRUE(blocked.has_value());
    CO_ASSERT_FALSE(*blocked);  // not resent, not answered: failed
    EXPECT_EQ(blocked->error(), error::closed) << blocked->error().message();
    EXPECT_FALSE(c.connected());

    auto refused = co_await c.command("GET", "before");
    CO_ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), error::connect_failed) << refused.error().message();
    EXPECT_EQ(c.last_connect_error(), asio::error::connection_refused);
    auto backing_off = co_await c.command("GET", "before");
    CO_ASSERT_FALSE(backing_off);
    EXPECT_EQ(backing_off.error(), error::not_connected) << backing_off.error().message();

    CO_ASSERT_TRUE(redis.start());  // same port, empty (no persistence)
    std::optional<result<value>> after;
    for (int i = 0; i < 100; ++i) {
      after = co_await c.command("INCR", "after");
      if (*after) break;
      co_await sleep_for(50ms);  // until the backoff has passed
    }
    CO_ASSERT_TRUE(after.has_value() && *after);
    EXPECT_EQ(integer_of(*after), 1);
    EXPECT_EQ(c.stats().connects, 2u);
    EXPECT_EQ(c.stats().disconnects, 1u);
  });
}

// The backoff, stepped with an injected clock against a port where nothing
// listens.
TEST(redis_client, failed_connects_back_off_exponentially_on_the_injected_clock) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp::endpoint nobody;
    {
      tcp::acceptor a(ex, {asio::ip::address_v4::loopback(), 0});
      nobody = a.local_endpoint();  // closed when `a` goes
    }
    auto now = std::make_shared<std::chrono::steady_clock::time_point>();
    client_options o;
    o.reconnect_backoff_min = 100ms;
    o.reconnect_backoff_max = 300ms;
    o.clock = [now] { return *now; };
    client c(ex, nobody, o);

    const std::error_code r8 = co_await c.ensure_connected();
    EXPECT_EQ(r8, error::connect_failed);
    EXPECT_EQ(c.stats().connect_failures, 1u);
    const std::error_code r9 = co_await c.ensure_connected();
    EXPECT_EQ(r9, error::not_connected);
    *now += 99ms;
    const std::error_code r10 = co_await c.ensure_connected();
    EXPECT_EQ(r10, error::not_connected);
    *now += 1ms;  // 100 ms after the failure: another attempt
    const std::error_code r11 = co_await c.ensure_connected();
    EXPECT_EQ(r11, error::connect_failed);
    EXPECT_EQ(c.stats().connect_failures, 2u);
    *now += 199ms;  // doubled to 200 ms
    const std::error_code r12 = co_await c.ensure_connected();
    EXPECT_EQ(r12, error::not_connected);
    *now += 1ms;
    const std::error_code r13 = co_await c.ensure_connected();
    EXPECT_EQ(r13, error::connect_failed);
    *now += 299ms;  // capped at 300 ms
    const std::error_code r14 = co_await c.ensure_connected();
    EXPECT_EQ(r14, error::not_connected);
    *now += 1ms;
    const std::error_code r15 = co_await c.ensure_connected();
    EXPECT_EQ(r15, error::connect_failed);
    EXPECT_EQ(c.stats().connect_failures, 4u);
    auto cmd = co_await c.command("PING");
    CO_ASSERT_FALSE(cmd);
    EXPECT_EQ(cmd.error(), error::not_connected);
  });
}

// A peer that accepts connections and reads, but never answers: the
// command timeout fails every command pending on the connection, and the
// next command connects again.
TEST(redis_client, commands_time_out_against_a_peer_that_never_answers) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
    std::vector<tcp::socket> accepted;
    auto sink = [&]() -> asio::awaitable<void> {
      for (int i = 0; i < 2; ++i) {
        auto [ec, s] = co_await acceptor.async_accept(use_nothrow);
        if (ec) co_return;
        accepted.push_back(std::move(s));
      }
    };
    asio::co_spawn(ex, sink(), must_not_throw());

    client_options o;
    o.command_timeout = 200ms;
    client c(ex, acceptor.local_endpoint(), o);
    std::optional<result<value>> other;
    auto second = [&]() -> asio::awaitable<void> { other = co_await c.command("GET", "b"); };
    auto first = co_await c.command("GET", "a");  // connects, then waits
    CO_ASSERT_FALSE(first);
    EXPECT_EQ(first.error(), error::timed_out) << first.error().message();
    EXPECT_EQ(c.stats().disconnects, 1u);
    EXPECT_FALSE(c.connected());

    // Two commands pending at once on the second connection: both fail.
    asio::co_spawn(ex, second(), must_not_throw());
    auto third = co_await c.command("GET", "c");
    CO_ASSERT_FALSE(third);
    EXPECT_EQ(third.error(), error::timed_out);
    for (int i = 0; i < 100 && !other; ++i) co_await sleep_for(10ms);
    CO_ASSERT_TRUE(other.has_value());
    CO_ASSERT_FALSE(*other);
    EXPECT_EQ(other->error(), error::timed_out);
    EXPECT_EQ(c.stats().connects, 2u);
    EXPECT_EQ(accepted.size(), 2u);
    acceptor.close();
  });
}

TEST(redis_client, a_connect_to_a_black_hole_fails_at_the_connect_timeout) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto hole = co_await test::blackhole::make();
    if (!hole->filled()) CO_SKIP("could not fill a loopback accept queue on this kernel");
    client_options options;
    options.connect_timeout = 200ms;

    auto c = co_await connect(ex, hole->endpoint(), options);
    CO_ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), error::connect_failed);
  });
}

// Bytes that are not RESP close the connection with protocol_error.
TEST(redis_client, garbage_from_the_server_is_a_protocol_error) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
    auto liar = [&]() -> asio::awaitable<void> {
      auto [ec, s] = co_await acceptor.async_accept(use_nothrow);
      if (ec) co_return;
      char buf[64];
      auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
      (void)rec;
      (void)n;
      auto [wec, wn] =
          co_await asio::async_write(s, asio::buffer("HTTP/1.1 200 OK\r\n", 17), use_nothrow);
      (void)wec;
      (void)wn;
      asio::steady_timer t(ex, 2s);  // keep the socket open: the client must close it
      co_await t.async_wait(use_nothrow);
    };
    asio::co_spawn(ex, liar(), must_not_throw());
    client c(ex, acceptor.local_endpoint());
    auto r = co_await c.command("PING");
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), error::protocol_error) << r.error().message();
    EXPECT_FALSE(c.connected());
  });
}

// redis-cli, a real peer, reads what the client wrote, and the client
// reads what redis-cli wrote.
TEST(redis_client, redis_cli_agrees_with_the_client) {
  REQUIRE_REDIS();
  if (!test::program_exists("redis-cli"))
    GTEST_SKIP() << "needs the `redis-cli` program (Debian package redis-tools)";
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto c = co_await connect(ex, redis.endpoint());
    CO_ASSERT_OK(c);
    const std::string written = "from trellis\r\nwith\0nul"s;
    auto r16 = co_await c->command("SET", "shared", written);
    CO_ASSERT_OK(r16);
    const auto got = redis.cli({"GET", "shared"});  // --raw: the bytes, then a newline
    EXPECT_TRUE(got.status.success()) << got.err;
    EXPECT_EQ(got.out, written + "\n");

    const auto set = redis.cli({"HSET", "from-cli", "field", "value 42"});
    EXPECT_TRUE(set.status.success()) << set.err;
    auto hget = co_await c->command("HGET", "from-cli", "field");
    EXPECT_EQ(text_of(hget), "value 42");
  });
}

TEST(redis_client, authenticates_and_selects_a_database) {
  REQUIRE_REDIS();
  if (!test::program_exists("redis-cli"))
    GTEST_SKIP() << "needs the `redis-cli` program (Debian package redis-tools)";
  test::redis_server redis({.extra_args = {"--requirepass", "s3cret"}});
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    client_options o;
    o.password = "s3cret";
    o.database = 3;
    o.client_name = "gateway-1";
    auto c = co_await connect(ex, redis.endpoint(), o);
    CO_ASSERT_OK(c);
    auto r17 = co_await c->command("SET", "in-db-3", "yes");
    CO_ASSERT_OK(r17);
    auto r18 = co_await c->command("CLIENT", "GETNAME");
    EXPECT_EQ(text_of(r18), "gateway-1");
    const auto got = redis.cli({"-a", "s3cret", "--no-auth-warning", "-n", "3", "GET", "in-db-3"});
    EXPECT_EQ(got.out, "yes\n") << got.err;
    const auto db0 = redis.cli({"-a", "s3cret", "--no-auth-warning", "GET", "in-db-3"});
    EXPECT_EQ(db0.out, "\n") << db0.err;  // not in database 0

    client_options wrong;
    wrong.password = "guess";
    auto refused = co_await connect(ex, redis.endpoint(), wrong);
    CO_ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), error::handshake_failed);

    // Without AUTH the server answers NOAUTH: an error reply, a value.
    auto anonymous = co_await connect(ex, redis.endpoint());
    CO_ASSERT_OK(anonymous);
    auto noauth = co_await anonymous->command("GET", "in-db-3");
    CO_ASSERT_OK(noauth);
    EXPECT_TRUE(noauth->is_error() && noauth->text().starts_with("NOAUTH"))
        << resp::describe(*noauth);
  });
}

TEST(redis_client, resp3_brings_maps_doubles_and_nulls) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    client_options options;
    options.protocol = 3;

    auto c = co_await connect(ex, redis.endpoint(), options);
    CO_ASSERT_OK(c);
    auto r19 = co_await c->command("HSET", "h", "f", "v");
    CO_ASSERT_OK(r19);
    auto all = co_await c->command("HGETALL", "h");
    CO_ASSERT_OK(all);
    EXPECT_EQ(*all, value::aggregate(resp::type::map,
                                     {value::bulk_string("f"), value::bulk_string("v")}));
    auto r20 = co_await c->command("ZADD", "z", "1.5", "m");
    CO_ASSERT_OK(r20);
    auto score = co_await c->command("ZSCORE", "z", "m");
    CO_ASSERT_OK(score);
    EXPECT_EQ(*score, value::double_number(1.5));
    auto missing = co_await c->command("GET", "nothing");
    CO_ASSERT_OK(missing);
    EXPECT_TRUE(missing->is_null());
  });
}

TEST(redis_client, close_fails_pending_and_later_commands) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    client_options options;
    options.command_timeout = 0ms;

    auto connected = co_await connect(ex, redis.endpoint(), options);
    CO_ASSERT_OK(connected);
    client& c = *connected;
    std::optional<result<value>> blocked;
    auto block = [&]() -> asio::awaitable<void> {
      blocked = co_await c.command("BLPOP", "empty", "10");
    };
    asio::co_spawn(ex, block(), must_not_throw());
    co_await sleep_for(50ms);
    c.close();
    for (int i = 0; i < 100 && !blocked; ++i) co_await sleep_for(10ms);
    CO_ASSERT_TRUE(blocked.has_value());
    CO_ASSERT_FALSE(*blocked);
    EXPECT_EQ(blocked->error(), error::closed);
    auto later = co_await c.command("PING");
    CO_ASSERT_FALSE(later);
    EXPECT_EQ(later.error(), error::closed);
  });
}

TEST(redis_client, close_idle_lets_the_pending_reply_come_then_closes_and_reopens_on_demand) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    client_options options;
    options.command_timeout = 0ms;
    auto connected = co_await connect(ex, redis.endpoint(), options);
    CO_ASSERT_OK(connected);
    client& c = *connected;
    std::optional<result<value>> popped;
    auto pop = [&]() -> asio::awaitable<void> {
      popped = co_await c.command("BLPOP", "jobs", "10");
    };
    asio::co_spawn(ex, pop(), must_not_throw());
    co_await sleep_for(50ms);
    c.close_idle();
    EXPECT_TRUE(c.connected()) << "a command still waits on the connection";
    EXPECT_EQ(redis.cli({"RPUSH", "jobs", "one"}).out, "1\n");
    for (int i = 0; i < 200 && !popped; ++i) co_await sleep_for(10ms);
    CO_ASSERT_TRUE(popped.has_value());
    CO_ASSERT_OK(*popped);
    EXPECT_EQ(**popped, value::array({value::bulk_string("jobs"), value::bulk_string("one")}));
    EXPECT_FALSE(c.connected()) << "closed once nothing waited on it";

    auto again = co_await c.command("PING");
    EXPECT_EQ(text_of(again), "PONG");
    EXPECT_FALSE(c.connected()) << "the new connection closed after its reply";
    EXPECT_EQ(c.stats().connects, 2u);
    EXPECT_EQ(c.stats().disconnects, 0u) << "closing an idle connection is not a loss";
  });
}

TEST(redis_client, max_pending_bounds_the_queue) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    client_options options;
    options.command_timeout = 0ms;
    options.max_pending = 1;

    auto connected = co_await connect(ex, redis.endpoint(), options);
    CO_ASSERT_OK(connected);
    client& c = *connected;
    std::optional<result<value>> blocked;
    auto block = [&]() -> asio::awaitable<void> {
      blocked = co_await c.command("BLPOP", "q", "10");
    };
    asio::co_spawn(ex, block(), must_not_throw());
    co_await sleep_for(20ms);
    auto over = co_await c.command("PING");
    CO_ASSERT_FALSE(over);
    EXPECT_EQ(over.error(), error::too_many_pending);
    const auto pushed = redis.cli({"RPUSH", "q", "item"});  // unblocks BLPOP
    EXPECT_TRUE(pushed.status.success()) << pushed.err;
    for (int i = 0; i < 200 && !blocked; ++i) co_await sleep_for(10ms);
    CO_ASSERT_TRUE(blocked.has_value());
    CO_ASSERT_OK(*blocked);
    EXPECT_EQ(**blocked, value::array({value::bulk_string("q"), value::bulk_string("item")}));
  });
}

TEST(redis_client, invalid_options_are_configuration_errors_naming_the_field) {
  asio::io_context ctx;
  const tcp::endpoint ep(asio::ip::address_v4::loopback(), 6379);
  auto field_of = [&](client_options o) -> std::string {
    try {
      client c(ctx.get_executor(), ep, std::move(o));
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "(accepted)";
  };
  EXPECT_EQ(field_of({.protocol = 4}), "redis.protocol");
  EXPECT_EQ(field_of({.database = -1}), "redis.database");
  EXPECT_EQ(field_of({.connect_timeout = 0ms}), "redis.connect_timeout");
  EXPECT_EQ(field_of({.username = "u"}), "redis.username");
  EXPECT_EQ(field_of({.max_pending = 0}), "redis.max_pending");
  EXPECT_EQ(field_of({.reconnect_backoff_min = 50ms, .reconnect_backoff_max = 10ms}),
            "redis.reconnect_backoff_max");
  EXPECT_EQ(field_of({.reply_limits = {.max_depth = 0}}), "resp.max_depth");
  EXPECT_EQ(field_of({}), "(accepted)");
}

TEST(redis_client, error_codes_have_a_category_and_messages) {
  const std::error_code ec = error::timed_out;
  EXPECT_STREQ(ec.category().name(), "trellis.redis");
  EXPECT_EQ(ec.message(), "redis command timed out");
  EXPECT_NE(std::error_code(error::closed), std::error_code(net::error::timed_out));
}

}  // namespace
}  // namespace trellis::redis
