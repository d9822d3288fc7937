// Tests of gateway::redis_session_store against a real redis-server on
// 127.0.0.1: records round-trip in the session record encoding, keys carry
// the session's expiry as their TTL, a value that is not a record and a
// Redis that is gone give the errors the middleware expects, two
// "gateways" (separate runtimes, separate connections) share sessions, the
// session middleware works end to end on the store (in-process through
// test::route, and over HTTP with curl's cookie jar across two servers),
// and a draining runtime is not held open by idle Redis connections.
#include "trellis/gateway/redis_session_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/manual_wall_clock.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/routed.hpp"
#include "support/session_api.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

using test::manual_wall_clock;

// What redis-cli printed, without the line end.
std::string cli_out(const test::redis_server& redis, std::vector<std::string> args) {
  auto r = redis.cli(std::move(args));
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) r.out.pop_back();
  return r.out;
}

// How many connections Redis has from clients named `name`.
int connections_named(const test::redis_server& redis, const std::string& name) {
  const std::string list = cli_out(redis, {"CLIENT", "LIST"});
  int n = 0;
  for (std::size_t at = list.find(" name=" + name + " "); at != std::string::npos;
       at = list.find(" name=" + name + " ", at + 1))
    ++n;
  return n;
}

// One gateway process's worth of workers: a runtime run on a background
// thread until stop(), with a Redis session store on it. The store only
// answers on its runtime's workers, so tests hand their coroutines to
// run(), which runs them on a worker and waits.
struct gateway_process {
  gateway_process(asio::ip::tcp::endpoint redis, redis_session_store_options o,
                  std::size_t workers = 1)
      : rt({.workers = workers, .handle_signals = false}),
        store(std::make_shared<redis_session_store>(rt, redis, std::move(o))) {
    thread = std::thread([this] { rt.run(); });
  }
  ~gateway_process() { stop(); }

  // Drains the runtime and waits until run() has returned.
  void stop() {
    rt.drain();
    if (thread.joinable()) thread.join();
  }

  // Runs `a` on worker `i` and returns its result; fails after 10 s.
  template <class T>
  T run(asio::awaitable<T> a, std::size_t i = 0) {
    auto done = std::make_shared<std::promise<T>>();
    auto f = done->get_future();
    asio::post(rt[i].context(), [this, i, done, a = std::move(a)]() mutable {
      asio::co_spawn(rt[i].context(), std::move(a), [done](std::exception_ptr e, T v) {
        if (e)
          done->set_exception(e);
        else
          done->set_value(std::move(v));
      });
    });
    if (f.wait_for(10s) != std::future_status::ready)
      throw std::runtime_error("the store call did not finish within 10 s");
    return f.get();
  }

  core::runtime rt;
  std::shared_ptr<redis_session_store> store;
  std::thread thread;
};

session_record record_of(std::string user, wall_time created, wall_time seen) {
  session_record r;
  r.data = {{"user", std::move(user)}, {"roles", {"admin", "dev"}}};
  r.created = created;
  r.last_seen = seen;
  return r;
}

// --- the store ------------------------------------------------------------------

TEST(redis_session_store, saves_a_record_in_the_session_encoding_and_loads_it_back) {
  REQUIRE_REDIS();
  test::redis_server redis;
  manual_wall_clock clock;
  gateway_process g(redis.endpoint(), {.clock = clock.function()});
  const session_record r = record_of("ada", clock.now() - 5min, clock.now());
  auto saved = g.run(g.store->save("id-1", r, clock.now() + 30min));
  ASSERT_TRUE(saved) << saved.error().message();
  auto back = g.run(g.store->load("id-1"));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->data, r.data);
  EXPECT_EQ(back->created, r.created);
  EXPECT_EQ(back->last_seen, r.last_seen);
  // The value under the documented key is exactly what session.hpp's
  // encoder writes: one format for every store.
  EXPECT_EQ(g.store->key_for("id-1"), "trellis:session:id-1");
  EXPECT_EQ(cli_out(redis, {"GET", "trellis:session:id-1"}), encode_session_record(r));

  // A second save replaces the record.
  const session_record r2 = record_of("grace", r.created, clock.now());
  ASSERT_TRUE(g.run(g.store->save("id-1", r2, clock.now() + 30min)));
  EXPECT_EQ(g.run(g.store->load("id-1"))->data["user"], "grace");
  EXPECT_EQ(cli_out(redis, {"DBSIZE"}), "1");
}

TEST(redis_session_store, a_missing_key_is_not_found) {
  REQUIRE_REDIS();
  test::redis_server redis;
  gateway_process g(redis.endpoint(), {});
  auto got = g.run(g.store->load("never-saved"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), session_error::not_found);
}

TEST(redis_session_store, the_key_lives_until_the_expiry_on_the_stores_clock) {
  REQUIRE_REDIS();
  test::redis_server redis;
  // A clock years away from Redis's own: PX carries the time left, so
  // Redis's TTL does not depend on the two clocks agreeing.
  manual_wall_clock clock;
  gateway_process g(redis.endpoint(), {.clock = clock.function()});
  ASSERT_TRUE(
      g.run(g.store->save("ttl", record_of("ada", clock.now(), clock.now()), clock.now() + 10min)));
  const long long pttl = std::stoll(cli_out(redis, {"PTTL", "trellis:session:ttl"}));
  EXPECT_LE(pttl, 600'000);
  EXPECT_GT(pttl, 590'000) << "10 minutes less the time since the SET";

  // Less than a millisecond left is rounded up to 1 ms (Redis refuses
  // PX 0), not turned into an error.
  auto brief = g.run(
      g.store->save("brief", record_of("ada", clock.now(), clock.now()), clock.now() + 300us));
  EXPECT_TRUE(brief) << brief.error().message();
}

TEST(redis_session_store, an_expiry_that_is_not_in_the_future_erases_instead_of_storing) {
  REQUIRE_REDIS();
  test::redis_server redis;
  manual_wall_clock clock;
  gateway_process g(redis.endpoint(), {.clock = clock.function()});
  const session_record r = record_of("ada", clock.now(), clock.now());
  ASSERT_TRUE(g.run(g.store->save("old", r, clock.now() + 1h)));
  ASSERT_EQ(cli_out(redis, {"EXISTS", "trellis:session:old"}), "1");
  auto past = g.run(g.store->save("old", r, clock.now() - 1s));
  ASSERT_TRUE(past) << past.error().message();
  EXPECT_EQ(cli_out(redis, {"EXISTS", "trellis:session:old"}), "0")
      << "the record saved earlier does not outlive a save that expires it";
  EXPECT_EQ(g.run(g.store->load("old")).error(), session_error::not_found);

  ASSERT_TRUE(g.run(g.store->save("now", r, clock.now())));
  EXPECT_EQ(cli_out(redis, {"EXISTS", "trellis:session:now"}), "0") << "expiry is exclusive";
}

TEST(redis_session_store, erase_removes_the_key_and_erasing_nothing_is_not_an_error) {
  REQUIRE_REDIS();
  test::redis_server redis;
  manual_wall_clock clock;
  gateway_process g(redis.endpoint(), {.clock = clock.function()});
  ASSERT_TRUE(
      g.run(g.store->save("x", record_of("ada", clock.now(), clock.now()), clock.now() + 1h)));
  ASSERT_TRUE(
      g.run(g.store->save("y", record_of("bob", clock.now(), clock.now()), clock.now() + 1h)));
  auto gone = g.run(g.store->erase("x"));
  ASSERT_TRUE(gone) << gone.error().message();
  EXPECT_EQ(cli_out(redis, {"EXISTS", "trellis:session:x"}), "0");
  EXPECT_EQ(g.run(g.store->load("x")).error(), session_error::not_found);
  EXPECT_TRUE(g.run(g.store->load("y"))) << "only that session";
  auto again = g.run(g.store->erase("x"));
  EXPECT_TRUE(again) << again.error().message();
}

TEST(redis_session_store, a_value_that_is_not_a_record_is_a_bad_record) {
  REQUIRE_REDIS();
  test::redis_server redis;
  gateway_process g(redis.endpoint(), {});
  // What an operator with redis-cli, another application sharing the
  // prefix, or an incompatible writer could leave under a session key.
  ASSERT_EQ(cli_out(redis, {"SET", "trellis:session:junk", "not json"}), "OK");
  ASSERT_EQ(cli_out(redis, {"SET", "trellis:session:shape", R"({"created":1,"seen":2})"}), "OK");
  ASSERT_EQ(cli_out(redis, {"HSET", "trellis:session:hash", "created", "1"}), "1");
  for (std::string_view id : {"junk", "shape", "hash"}) {
    auto got = g.run(g.store->load(id));
    ASSERT_FALSE(got) << id;
    EXPECT_EQ(got.error(), session_error::bad_record) << id << ": " << got.error().message();
  }
  // A save puts a record there again, whatever the key held.
  manual_wall_clock clock;
  ASSERT_TRUE(g.run(g.store->save("hash", record_of("ada", clock.now(), clock.now()),
                                  std::chrono::system_clock::now() + 1h)));
  EXPECT_TRUE(g.run(g.store->load("hash")));
}

TEST(redis_session_store, refuses_to_write_a_record_that_would_not_decode_again) {
  REQUIRE_REDIS();
  test::redis_server redis;
  gateway_process g(redis.endpoint(), {});
  session_record r;
  r.data = nlohmann::json::array({1, 2});
  auto saved = g.run(g.store->save("arr", r, std::chrono::system_clock::now() + 1h));
  ASSERT_FALSE(saved);
  EXPECT_EQ(saved.error(), session_error::bad_record);
  EXPECT_EQ(cli_out(redis, {"EXISTS", "trellis:session:arr"}), "0");
}

TEST(redis_session_store, ids_are_binary_safe_key_suffixes) {
  REQUIRE_REDIS();
  test::redis_server redis;
  manual_wall_clock clock;
  gateway_process g(redis.endpoint(), {.key_prefix = "app1:s:", .clock = clock.function()});
  // Bytes that would break a protocol built on text or glob patterns.
  const std::string odd("a b\r\n*?[\0\xff", 10);
  const std::string near("a b\r\n*?[", 8);
  ASSERT_TRUE(
      g.run(g.store->save(odd, record_of("odd", clock.now(), clock.now()), clock.now() + 1h)));
  ASSERT_TRUE(
      g.run(g.store->save(near, record_of("near", clock.now(), clock.now()), clock.now() + 1h)));
  EXPECT_EQ(g.run(g.store->load(odd))->data["user"], "odd");
  EXPECT_EQ(g.run(g.store->load(near))->data["user"], "near");
  EXPECT_EQ(cli_out(redis, {"DBSIZE"}), "2");
  EXPECT_EQ(g.store->key_for(odd), "app1:s:" + odd);
  EXPECT_EQ(cli_out(redis, {"EXISTS", "app1:s:a b\r\n*?["}), "1") << "the prefix is the one given";
}

TEST(redis_session_store, a_redis_that_is_gone_is_unavailable_and_recovers_when_it_returns) {
  REQUIRE_REDIS();
  test::redis_server redis;
  manual_wall_clock clock;
  redis_session_store_options o{.clock = clock.function()};
  o.client.connect_timeout = 500ms;
  o.client.reconnect_backoff_max = 200ms;
  gateway_process g(redis.endpoint(), o);
  const session_record r = record_of("ada", clock.now(), clock.now());
  ASSERT_TRUE(g.run(g.store->save("s", r, clock.now() + 1h)));
  redis.kill();

  const std::error_code down = make_error_code(redis_session_error::unavailable);
  auto load = g.run(g.store->load("s"));
  ASSERT_FALSE(load);
  EXPECT_EQ(load.error(), down) << load.error().message();
  EXPECT_NE(load.error(), session_error::not_found) << "an outage is not a logout";
  EXPECT_EQ(g.run(g.store->save("s", r, clock.now() + 1h)).error(), down);
  EXPECT_EQ(g.run(g.store->erase("s")).error(), down);

  // Back (empty: the test server keeps nothing on disk). Within the
  // client's reconnect backoff calls still fail at once; bounded retries.
  ASSERT_TRUE(redis.start()) << redis.log();
  result<void> again = unexpected(down);
  for (int i = 0; i < 100 && !again; ++i) {
    again = g.run(g.store->save("s", r, clock.now() + 1h));
    if (!again) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(g.run(g.store->load("s"))->data, r.data);
}

TEST(redis_session_store, two_gateways_share_sessions) {
  REQUIRE_REDIS();
  test::redis_server redis;
  manual_wall_clock clock;
  // Two processes' worth of stores: separate runtimes of two workers each,
  // four connections to one Redis.
  gateway_process a(redis.endpoint(), {.clock = clock.function()}, 2);
  gateway_process b(redis.endpoint(), {.clock = clock.function()}, 2);
  const session_record r = record_of("ada", clock.now(), clock.now());
  ASSERT_TRUE(a.run(a.store->save("shared", r, clock.now() + 1h), 0));
  for (std::size_t w = 0; w < 2; ++w) {
    auto got = b.run(b.store->load("shared"), w);
    ASSERT_TRUE(got) << "b, worker " << w << ": " << got.error().message();
    EXPECT_EQ(got->data, r.data);
    EXPECT_EQ(got->created, r.created);
  }
  ASSERT_TRUE(b.run(b.store->erase("shared"), 1));
  EXPECT_EQ(a.run(a.store->load("shared"), 1).error(), session_error::not_found)
      << "an erase on one gateway is seen by the other";
}

TEST(redis_session_store, a_call_off_the_runtimes_workers_is_a_wiring_bug) {
  REQUIRE_REDIS();
  test::redis_server redis;
  gateway_process g(redis.endpoint(), {});
  asio::io_context stray;
  bool threw = false;
  asio::co_spawn(stray, g.store->load("x"), [&](std::exception_ptr e, result<session_record>) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::logic_error&) {
      threw = true;
    }
  });
  stray.run_for(5s);
  EXPECT_TRUE(threw);
}

// --- the session middleware on the store --------------------------------------

// One request through a router, with what the session tests read of its answer.
struct exchange : test::routed {
  std::string set_cookie() const { return std::string(res.headers.get("Set-Cookie").value_or("")); }
  // The session id in Set-Cookie, or "".
  std::string cookie_id() const {
    const std::string c = set_cookie();
    const std::string prefix = "trellis_session=";
    if (c.rfind(prefix, 0) != 0) return {};
    return c.substr(prefix.size(), c.find(';') - prefix.size());
  }
};

// The session API of support/session_api.hpp on a router whose middleware
// uses `g`'s store.
// test::route() runs a router on a private io_context, but the store
// answers only on its runtime's workers: the router given to route() hops
// each request to the session router on worker 0 and waits for it there.
struct session_rig {
  session_rig(gateway_process& gp, session_options o) : g(gp) {
    sessions = std::make_shared<session_middleware>(g.store, std::move(o));
    inner.use(sessions);
    test::add_session_api(inner, sessions);
    const auto hop = [this](http::request& req, http::response& res) -> asio::awaitable<void> {
      co_await asio::co_spawn(g.rt[0].executor(), inner(req, res), asio::use_awaitable);
    };
    outer.get("/*", hop);
    outer.post("/*", hop);
  }

  std::unique_ptr<exchange> route(http::method m, std::string target, std::string id = {}) {
    test::route_request in{.method = m, .target = std::move(target)};
    if (!id.empty()) in.headers.emplace_back("Cookie", "trellis_session=" + id);
    return test::route<exchange>(outer, std::move(in));
  }

  gateway_process& g;
  std::shared_ptr<session_middleware> sessions;
  http::router inner;
  http::router outer;
};

TEST(redis_session_store, carries_the_session_middleware_from_login_to_logout) {
  REQUIRE_REDIS();
  test::redis_server redis;
  manual_wall_clock clock;
  redis_session_store_options so{.clock = clock.function()};
  so.client.connect_timeout = 500ms;
  gateway_process g(redis.endpoint(), so);
  session_rig t(g, {.idle_timeout = 30min,
                    .absolute_timeout = 2h,
                    .touch_fraction = 0.25,
                    .clock = clock.function()});
  const auto key = [](const std::string& id) { return "trellis:session:" + id; };

  // A new session: saved in Redis with the idle timeout as its TTL.
  auto created = t.route(http::method::post, "/set?anonymous");
  ASSERT_EQ(created->res.status, 200) << created->res.body;
  const std::string before_login = created->cookie_id();
  ASSERT_TRUE(is_session_id(before_login)) << created->set_cookie();
  auto stored = decode_session_record(cli_out(redis, {"GET", key(before_login)}));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->data["user"], "anonymous");
  EXPECT_EQ(stored->created, clock.now());
  EXPECT_GT(std::stoll(cli_out(redis, {"PTTL", key(before_login)})), 29 * 60'000);
  EXPECT_EQ(t.route(http::method::get, "/get", before_login)->res.body, "anonymous old");

  // Login rotates the id: the old key is gone from Redis, the new one
  // holds the data and the original creation time.
  clock.advance(5min);
  auto login = t.route(http::method::post, "/login?ada", before_login);
  ASSERT_EQ(login->res.status, 200) << login->res.body;
  const std::string after_login = login->cookie_id();
  ASSERT_TRUE(is_session_id(after_login)) << login->set_cookie();
  EXPECT_NE(after_login, before_login);
  EXPECT_EQ(cli_out(redis, {"EXISTS", key(before_login)}), "0");
  EXPECT_EQ(cli_out(redis, {"DBSIZE"}), "1");
  auto rotated = decode_session_record(cli_out(redis, {"GET", key(after_login)}));
  ASSERT_TRUE(rotated);
  EXPECT_EQ(rotated->data["user"], "ada");
  EXPECT_EQ(rotated->created, clock.now() - 5min);
  EXPECT_EQ(t.route(http::method::get, "/get", before_login)->res.body, "- new");
  EXPECT_EQ(t.route(http::method::get, "/get", after_login)->res.body, "ada old");

  // Sliding expiry: a read 8 minutes on (past touch_fraction) writes the
  // session back, and Redis's TTL starts again from the full idle timeout.
  clock.advance(8min);  // 13 minutes after creation
  EXPECT_EQ(t.route(http::method::get, "/get", after_login)->res.body, "ada old");
  EXPECT_GT(std::stoll(cli_out(redis, {"PTTL", key(after_login)})), 29 * 60'000);
  EXPECT_EQ(decode_session_record(cli_out(redis, {"GET", key(after_login)}))->last_seen,
            clock.now());
  // Kept busy, it nears the absolute timeout (2 h from creation), which
  // then caps the TTL: at 101 minutes, 19 are left, not 30.
  for (int i = 0; i < 4; ++i) {  // at 33, 53, 73 and 93 minutes
    clock.advance(20min);
    EXPECT_EQ(t.route(http::method::get, "/get", after_login)->res.body, "ada old") << i;
  }
  clock.advance(8min);
  EXPECT_EQ(t.route(http::method::get, "/get", after_login)->res.body, "ada old");
  const long long capped = std::stoll(cli_out(redis, {"PTTL", key(after_login)}));
  EXPECT_LE(capped, 19 * 60'000);
  EXPECT_GT(capped, 18 * 60'000);

  // A record this gateway cannot decode is no session: a new one starts
  // (no 503 lock-out), and the unreadable record is left alone.
  const std::string junk = std::string(42, 'x') + "A";  // a well-formed id
  ASSERT_TRUE(is_session_id(junk));
  ASSERT_EQ(cli_out(redis, {"SET", key(junk), "{not a record"}), "OK");
  auto unreadable = t.route(http::method::get, "/get", junk);
  EXPECT_EQ(unreadable->res.status, 200) << unreadable->res.body;
  EXPECT_EQ(unreadable->res.body, "- new");
  EXPECT_EQ(cli_out(redis, {"EXISTS", key(junk)}), "1");
  ASSERT_EQ(cli_out(redis, {"DEL", key(junk)}), "1");

  // Logout deletes the key.
  auto logout = t.route(http::method::post, "/logout", after_login);
  EXPECT_EQ(logout->res.status, 200);
  EXPECT_THAT(logout->set_cookie(), HasSubstr("Max-Age=0"));
  EXPECT_EQ(cli_out(redis, {"DBSIZE"}), "0");
  EXPECT_EQ(t.route(http::method::get, "/get", after_login)->res.body, "- new");

  // Redis gone: a request that carries a session is answered 503, not
  // treated as logged out; one that does not touch the store still works.
  const std::string live = t.route(http::method::post, "/set?grace")->cookie_id();
  ASSERT_TRUE(is_session_id(live));
  redis.kill();
  auto down = t.route(http::method::get, "/get", live);
  EXPECT_EQ(down->res.status, 503) << down->res.body;
  auto fresh = t.route(http::method::get, "/get");
  EXPECT_EQ(fresh->res.status, 200);
  EXPECT_EQ(fresh->res.body, "- new");
  auto lost_login = t.route(http::method::post, "/login?eve");
  EXPECT_EQ(lost_login->res.status, 503) << "a login Redis did not store must not look done";
  EXPECT_FALSE(lost_login->res.headers.contains("Set-Cookie"));
}

// --- over HTTP, across two gateways ----------------------------------------------

// A gateway: an HTTP server with the session middleware on its own
// two-worker runtime and Redis store, on a background thread. /login?v,
// /me and /logout as in a real site.
struct web_gateway {
  web_gateway(asio::ip::tcp::endpoint redis, const std::string& name)
      : rt({.workers = 2, .handle_signals = false}) {
    redis_session_store_options o;
    o.client.client_name = name;
    store = std::make_shared<redis_session_store>(rt, redis, std::move(o));
    // Plain HTTP on loopback: Secure off, as session_options allows.
    sessions = std::make_shared<session_middleware>(store, session_options{.secure = false});
    r.use(sessions);
    r.post("/login", [this](http::request& req, http::response& res) -> asio::awaitable<void> {
      session& s = sessions->get(req);
      s.regenerate();
      s.set("user", std::string(req.query()));
      res.set_text("welcome\n");
      co_return;
    });
    r.get("/me", [this](http::request& req, http::response& res) -> asio::awaitable<void> {
      const nlohmann::json* u = sessions->get(req).find("user");
      res.set_text(u ? u->get<std::string>() : std::string("anonymous"));
      co_return;
    });
    r.post("/logout", [this](http::request& req, http::response& res) -> asio::awaitable<void> {
      sessions->get(req).destroy();
      res.set_text("bye\n");
      co_return;
    });
    srv = std::make_unique<http::server>(r.to_handler());
    auto ep = srv->listen(rt, {asio::ip::address_v4::loopback(), 0});
    if (!ep) throw std::runtime_error("listen failed: " + ep.error().message());
    port = ep->port();
    thread = std::thread([this] { rt.run(); });
  }
  ~web_gateway() { stop(); }

  // Drains; returns how long run() took to return after drain().
  std::chrono::milliseconds stop() {
    const auto t0 = std::chrono::steady_clock::now();
    rt.drain();
    if (thread.joinable()) thread.join();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port) + std::string(path);
  }

  // Declared first: the store's clients and the server's listeners belong
  // to its workers, so it goes last.
  core::runtime rt;
  std::shared_ptr<redis_session_store> store;
  std::shared_ptr<session_middleware> sessions;
  http::router r;
  std::unique_ptr<http::server> srv;
  std::uint16_t port = 0;
  std::thread thread;
};

TEST(redis_session_store, a_login_on_one_gateway_is_honoured_by_another_over_http) {
  REQUIRE_REDIS();
  if (!test::program_exists("curl")) GTEST_SKIP() << "needs the `curl` program (Debian: curl)";
  test::redis_server redis;
  web_gateway a(redis.endpoint(), "gw-a");
  web_gateway b(redis.endpoint(), "gw-b");

  // One browser (one cookie jar) whose requests a balancer spreads over
  // both gateways.
  const std::string jar =
      ::testing::TempDir() + "redis_session_jar_" + std::to_string(::getpid()) + ".txt";
  std::remove(jar.c_str());
  const auto curl = [&](std::string_view method, const std::string& url) {
    auto done = test::run({"curl", "-sS", "-i", "--max-time", "10", "-X", std::string(method), "-c",
                           jar, "-b", jar,
                           // Both gateways are 127.0.0.1 (cookies ignore ports): one site.
                           url});
    EXPECT_TRUE(done.status.success()) << done.err;
    return test::parse_curl(done.out);
  };

  EXPECT_EQ(curl("GET", b.url("/me")).body, "anonymous");
  auto login = curl("POST", a.url("/login?ada"));
  EXPECT_EQ(login.status, 200);
  EXPECT_THAT(login.header("set-cookie"), HasSubstr("trellis_session="));
  EXPECT_EQ(curl("GET", b.url("/me")).body, "ada") << "b knows the session a created";
  EXPECT_EQ(curl("GET", a.url("/me")).body, "ada");
  EXPECT_EQ(cli_out(redis, {"DBSIZE"}), "1");

  // Rotation on b: a login from a logged-in browser moves its session to a
  // new id; the old one is gone from Redis, so a sees only the new one.
  auto relogin = curl("POST", b.url("/login?grace"));
  EXPECT_EQ(relogin.status, 200);
  EXPECT_EQ(cli_out(redis, {"DBSIZE"}), "1") << "the pre-rotation id was deleted";
  EXPECT_EQ(curl("GET", a.url("/me")).body, "grace");

  EXPECT_EQ(curl("POST", a.url("/logout")).status, 200);
  EXPECT_EQ(curl("GET", b.url("/me")).body, "anonymous") << "a logout on a ends it on b";
  EXPECT_EQ(cli_out(redis, {"DBSIZE"}), "0");
  std::remove(jar.c_str());

  // Both gateways drain although their Redis connections are open and
  // idle (the store's drain hook closes them): run() returns without
  // waiting for the 10 s drain deadline.
  const auto took_a = a.stop();
  const auto took_b = b.stop();
  std::cout << "[ drain    ] gateway a: " << took_a.count() << " ms, gateway b: " << took_b.count()
            << " ms\n";
  // Cut off at the deadline instead, their sockets would still be open
  // (see the next test).
  int still = -1;
  for (int i = 0; i < 100 && still != 0; ++i) {
    still = connections_named(redis, "gw-a") + connections_named(redis, "gw-b");
    if (still != 0) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(still, 0) << "the gateways' Redis connections outlived the drain";
}

TEST(redis_session_store, a_draining_runtime_closes_its_idle_redis_connections) {
  REQUIRE_REDIS();
  test::redis_server redis;
  manual_wall_clock clock;
  redis_session_store_options o{.clock = clock.function()};
  o.client.client_name = "draining";
  // The default drain deadline: were the connections to hold the workers,
  // run() would return only when it cut them off, 10 s on.
  core::runtime rt({.workers = 2, .handle_signals = false});
  redis_session_store store(rt, redis.endpoint(), o);
  std::atomic<std::size_t> left{rt.size()};
  std::atomic<int> failures{0};
  int connected_before_drain = -1;
  rt.spawn_on_all(
      [&](core::worker& w) -> asio::awaitable<void> {
        const std::string id = "w" + std::to_string(w.index());
        const session_record r = record_of(id, clock.now(), clock.now());
        const wall_time expires = clock.now() + 1h;
        if (!co_await store.save(id, r, expires)) ++failures;
        if (!co_await store.load(id)) ++failures;
        if (--left == 0) {
          // Every worker has its connection open, and idle, now.
          connected_before_drain = connections_named(redis, "draining");
          rt.drain();
        }
      },
      "store calls");
  const auto t0 = std::chrono::steady_clock::now();
  rt.run();
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::cout << "[ drain    ] run() returned " << took.count() << " ms after start\n";
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(connected_before_drain, 2);
  // Cut off at the deadline, the workers would have stopped with their
  // sockets still open (the io_contexts live until rt is destroyed), and
  // Redis would keep listing them. Closed by the drain hook, Redis drops
  // them as soon as it reads the FIN: poll for that, boundedly.
  int still = -1;
  for (int i = 0; i < 100 && still != 0; ++i) {
    still = connections_named(redis, "draining");
    if (still != 0) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(still, 0) << "the store's connections outlived the drain";
}

}  // namespace
}  // namespace trellis::gateway
