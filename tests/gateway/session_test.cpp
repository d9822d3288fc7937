// Tests of server-side sessions: the record encoding and ids, the
// in-memory store (expiry, bound, concurrent use), and the middleware
// driven through http::router in-process with a manual wall clock, plus
// one end-to-end run with curl's cookie jar against a real server on
// loopback.
#include "trellis/gateway/session.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/manual_wall_clock.hpp"
#include "support/process.hpp"
#include "support/routed.hpp"
#include "support/session_api.hpp"
#include "trellis/core/error.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

using test::manual_wall_clock;

// Runs a coroutine to completion on a private io_context, bounded in time.
template <class T>
T run_sync(asio::awaitable<T> a) {
  asio::io_context ctx;
  std::optional<T> out;
  std::exception_ptr failure;
  asio::co_spawn(ctx, std::move(a), [&](std::exception_ptr e, T v) {
    failure = e;
    if (!e) out.emplace(std::move(v));
  });
  ctx.run_for(5s);
  if (failure) std::rethrow_exception(failure);
  if (!out) throw std::runtime_error("coroutine did not finish");
  return std::move(*out);
}

// One request through a router, with what the session tests read of its answer.
struct exchange : test::routed {
  // The first Set-Cookie value, or "".
  std::string set_cookie() const { return std::string(res.headers.get("Set-Cookie").value_or("")); }
  // The session id in Set-Cookie, or "".
  std::string cookie_id(std::string_view name = "trellis_session") const {
    const std::string c = set_cookie();
    const std::string prefix = std::string(name) + "=";
    if (c.rfind(prefix, 0) != 0) return {};
    return c.substr(prefix.size(), c.find(';') - prefix.size());
  }
};

std::unique_ptr<exchange> route(const http::router& r, http::method m, std::string target,
                                std::string cookie = {}) {
  test::route_request in{.method = m, .target = std::move(target)};
  if (!cookie.empty()) in.headers.emplace_back("Cookie", std::move(cookie));
  return test::route<exchange>(r, std::move(in));
}

std::string cookie_of(std::string_view id) {
  return "trellis_session=" + std::string(id);
}

// A router with the session middleware, the API of support/session_api.hpp
// (/get, /set, /login, /logout), and:
//   GET  /none    never touches the session
//   POST /big     sets a value over the size limit
struct rig {
  explicit rig(session_options o = {}) {
    clock = std::make_unique<manual_wall_clock>();
    store = std::make_shared<memory_session_store>(memory_session_store_options{
        .max_sessions = 1000, .shards = 4, .clock = clock->function()});
    o.clock = clock->function();
    sessions = std::make_shared<session_middleware>(store, o);
    r.use(sessions);
    r.get("/none", [](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text("nothing");
      co_return;
    });
    test::add_session_api(r, sessions);
    r.post("/big", [this](http::request& req, http::response& res) -> asio::awaitable<void> {
      sessions->get(req).set("blob", std::string(20'000, 'x'));
      res.set_text("stored?");
      co_return;
    });
  }

  // Creates a session with user=`user`; returns its id.
  std::string create(std::string_view user) {
    auto x = route(r, http::method::post, "/set?" + std::string(user));
    EXPECT_EQ(x->res.status, 200);
    return x->cookie_id();
  }

  std::unique_ptr<manual_wall_clock> clock;
  std::shared_ptr<memory_session_store> store;
  std::shared_ptr<session_middleware> sessions;
  http::router r;
};

// --- records and ids --------------------------------------------------------

TEST(session_record, encodes_and_decodes_back_to_the_same_record) {
  session_record r;
  r.created = wall_time(std::chrono::milliseconds(1'700'000'000'123));
  r.last_seen = wall_time(std::chrono::milliseconds(1'700'000'100'456));
  r.data = {{"user", "ada"}, {"roles", {"admin", "dev"}}, {"n", 3}};
  const std::string text = encode_session_record(r);
  auto back = decode_session_record(text);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->created, r.created);
  EXPECT_EQ(back->last_seen, r.last_seen);
  EXPECT_EQ(back->data, r.data);
}

TEST(session_record, refuses_every_proper_prefix_and_wrong_shapes) {
  session_record r;
  r.data = {{"k", "v"}};
  const std::string text = encode_session_record(r);
  for (std::size_t n = 0; n < text.size(); ++n)
    EXPECT_EQ(decode_session_record(text.substr(0, n)).error(), session_error::bad_record) << n;
  for (std::string_view bad : {
           R"([])", R"({"created":1,"seen":2})", R"({"created":1,"seen":2,"data":[]})",
           R"({"created":"1","seen":2,"data":{}})", R"({"created":1.5,"seen":2,"data":{}})",
           R"({"created":1,"seen":2,"data":{},"extra":0})",
           // Times a time_point cannot hold (found by fuzz-session_record:
           // nanoseconds overflow) or encode never writes.
           R"({"created":1764400000000000000,"seen":2,"data":{}})",
           R"({"created":1,"seen":18446744073709551615,"data":{}})",
           R"({"created":-1,"seen":2,"data":{}})",
           R"({"created":1,"seen":117644000600000,"data":{}})",  // the year 5700
           R"({"created":9223372036855,"seen":2,"data":{}})",    // one past 2262
       })
    EXPECT_EQ(decode_session_record(bad).error(), session_error::bad_record) << bad;
}

TEST(session_record, keeps_times_up_to_what_a_time_point_holds) {
  // 9223372036854 ms since 1970: the last millisecond of system_clock (2262).
  auto r = decode_session_record(R"({"created":9223372036854,"seen":0,"data":{}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::milliseconds>(r->created.time_since_epoch()).count(),
      9'223'372'036'854);
  auto again = decode_session_record(encode_session_record(*r));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->created, r->created);
}

TEST(session_id, is_43_base64url_characters_from_the_csprng_and_never_repeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = make_session_id();
    ASSERT_TRUE(id) << id.error().message();
    EXPECT_EQ(id->size(), 43u);
    EXPECT_TRUE(is_session_id(*id)) << *id;
    EXPECT_EQ(
        id->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos);
    seen.insert(*id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(session_id, shape_check_refuses_anything_make_session_id_cannot_produce) {
  const std::string good = make_session_id().value();
  EXPECT_FALSE(is_session_id(""));
  EXPECT_FALSE(is_session_id(good.substr(0, 42)));
  EXPECT_FALSE(is_session_id(good + "A"));
  std::string plus = good;
  plus[5] = '+';  // standard alphabet, not base64url
  EXPECT_FALSE(is_session_id(plus));
  std::string semicolon = good;
  semicolon[0] = ';';
  EXPECT_FALSE(is_session_id(semicolon));
  // 32 bytes leave 4 unused bits in the last character: 'B' sets one.
  std::string non_canonical = std::string(42, 'A') + "B";
  EXPECT_FALSE(is_session_id(non_canonical));
  EXPECT_TRUE(is_session_id(std::string(42, 'A') + "A"));
}

// --- memory store -------------------------------------------------------------

TEST(memory_session_store, saves_loads_replaces_and_erases) {
  manual_wall_clock clock;
  memory_session_store store({.clock = clock.function()});
  session_record r;
  r.data = {{"a", 1}};
  EXPECT_EQ(run_sync(store.load("x")).error(), session_error::not_found);
  ASSERT_TRUE(run_sync(store.save("x", r, clock.now() + 1h)));
  auto got = run_sync(store.load("x"));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, r.data);
  r.data = {{"a", 2}};
  ASSERT_TRUE(run_sync(store.save("x", r, clock.now() + 1h)));
  EXPECT_EQ(run_sync(store.load("x"))->data["a"], 2);
  EXPECT_EQ(store.stats().size, 1u);
  ASSERT_TRUE(run_sync(store.erase("x")));
  EXPECT_EQ(run_sync(store.load("x")).error(), session_error::not_found);
  EXPECT_TRUE(run_sync(store.erase("x"))) << "erasing what is not there is not an error";
}

TEST(memory_session_store, a_record_past_its_expiry_is_gone) {
  manual_wall_clock clock;
  memory_session_store store({.clock = clock.function()});
  store.save_now("x", session_record{}, clock.now() + 10s);
  clock.advance(9999ms);
  EXPECT_TRUE(store.load_now("x"));
  clock.advance(1ms);
  EXPECT_EQ(store.load_now("x").error(), session_error::not_found) << "expiry is exclusive";
  EXPECT_EQ(store.stats().size, 0u) << "loading an expired record drops it";
  EXPECT_EQ(store.stats().expired, 1u);
}

TEST(memory_session_store, when_full_drops_expired_sessions_first_then_the_soonest_to_expire) {
  manual_wall_clock clock;
  memory_session_store store({.max_sessions = 3, .shards = 1, .clock = clock.function()});
  store.save_now("short", session_record{}, clock.now() + 1min);
  store.save_now("long", session_record{}, clock.now() + 60min);
  store.save_now("mid", session_record{}, clock.now() + 30min);
  clock.advance(2min);  // "short" has expired but is still held
  store.save_now("new1", session_record{}, clock.now() + 60min);
  EXPECT_EQ(store.stats().size, 3u);
  EXPECT_EQ(store.stats().expired, 1u);
  EXPECT_EQ(store.stats().evicted_live, 0u) << "an expired session made room";
  EXPECT_TRUE(store.load_now("mid"));

  store.save_now("new2", session_record{}, clock.now() + 60min);
  EXPECT_EQ(store.stats().size, 3u);
  EXPECT_EQ(store.stats().evicted_live, 1u);
  EXPECT_EQ(store.load_now("mid").error(), session_error::not_found)
      << "the live session closest to expiry is evicted";
  EXPECT_TRUE(store.load_now("long"));
  EXPECT_TRUE(store.load_now("new1"));
  EXPECT_TRUE(store.load_now("new2"));
}

TEST(memory_session_store, total_never_exceeds_max_sessions_across_shards) {
  manual_wall_clock clock;
  memory_session_store store({.max_sessions = 50, .shards = 8, .clock = clock.function()});
  for (int i = 0; i < 500; ++i)
    store.save_now("id" + std::to_string(i), session_record{}, clock.now() + 1h);
  EXPECT_LE(store.stats().size, 50u);
  EXPECT_GE(store.stats().size, 40u) << "8 shards of 6: uneven hashing leaves some room unused";
}

TEST(memory_session_store, is_safe_to_use_from_several_threads_at_once) {
  manual_wall_clock clock;
  memory_session_store store({.max_sessions = 10'000, .shards = 8, .clock = clock.function()});
  constexpr int k_threads = 4;
  constexpr int k_per_thread = 500;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        session_record r;
        r.data = {{"t", t}, {"i", i}};
        store.save_now(id, r, clock.now() + 1h);
        auto back = store.load_now(id);
        if (!back || back->data != r.data) ++mismatches;
        if (i % 2 == 1) store.erase_now(id);
        if (i % 100 == 0) (void)store.drop_expired();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(store.stats().size, static_cast<std::size_t>(k_threads * k_per_thread / 2));
  for (int t = 0; t < k_threads; ++t)
    for (int i = 0; i < k_per_thread; i += 2) {
      auto back = store.load_now("t" + std::to_string(t) + "-" + std::to_string(i));
      ASSERT_TRUE(back) << t << "/" << i;
      EXPECT_EQ(back->data["i"], i);
    }
}

TEST(memory_session_store, refuses_a_zero_bound_naming_the_field) {
  try {
    memory_session_store s({.max_sessions = 0});
    ADD_FAILURE() << "did not throw";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "session_store.max_sessions");
  }
}

// --- middleware ---------------------------------------------------------------

TEST(session_middleware, a_request_that_never_touches_its_session_costs_no_write_and_no_cookie) {
  rig t;
  auto x = route(t.r, http::method::get, "/none");
  EXPECT_EQ(x->res.body, "nothing");
  EXPECT_FALSE(x->res.headers.contains("Set-Cookie"));
  auto y = route(t.r, http::method::get, "/get");
  EXPECT_EQ(y->res.body, "- new");
  EXPECT_FALSE(y->res.headers.contains("Set-Cookie")) << "reading a new session does not create it";
  EXPECT_EQ(t.store->stats().size, 0u);
}

TEST(session_middleware, a_new_session_is_saved_and_its_cookie_is_httponly_secure_lax) {
  rig t;
  auto x = route(t.r, http::method::post, "/set?ada");
  const std::string id = x->cookie_id();
  ASSERT_TRUE(is_session_id(id)) << x->set_cookie();
  EXPECT_EQ(x->set_cookie(), "trellis_session=" + id + "; Path=/; Secure; HttpOnly; SameSite=Lax");
  auto stored = t.store->load_now(id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->data["user"], "ada");
  EXPECT_EQ(stored->created, t.clock->now());
}

TEST(session_middleware,
     loads_the_session_named_by_the_cookie_and_saves_changes_without_new_cookie) {
  rig t;
  const std::string id = t.create("ada");
  auto a = route(t.r, http::method::get, "/get", cookie_of(id));
  EXPECT_EQ(a->res.body, "ada old");
  EXPECT_FALSE(a->res.headers.contains("Set-Cookie"));

  auto b = route(t.r, http::method::post, "/set?grace", "other=1; " + cookie_of(id) + "; x=2");
  EXPECT_FALSE(b->res.headers.contains("Set-Cookie")) << "same id: the browser's cookie stands";
  EXPECT_EQ(route(t.r, http::method::get, "/get", cookie_of(id))->res.body, "grace old");
  EXPECT_EQ(t.store->stats().size, 1u);
}

TEST(session_middleware, never_adopts_an_id_it_did_not_issue) {
  rig t;
  const std::string planted = make_session_id().value();  // well-formed, unknown to the store
  auto a = route(t.r, http::method::get, "/get", cookie_of(planted));
  EXPECT_EQ(a->res.body, "- new");
  auto b = route(t.r, http::method::post, "/set?ada", cookie_of(planted));
  const std::string issued = b->cookie_id();
  ASSERT_TRUE(is_session_id(issued));
  EXPECT_NE(issued, planted) << "session fixation: a client-chosen id must never be used";
  EXPECT_EQ(t.store->load_now(planted).error(), session_error::not_found);
  // Malformed ids are ignored without a lookup.
  EXPECT_EQ(route(t.r, http::method::get, "/get", "trellis_session=short")->res.body, "- new");
  EXPECT_EQ(route(t.r, http::method::get, "/get", "trellis_session=\x01")->res.body, "- new");
}

TEST(session_middleware, an_idle_session_expires_after_idle_timeout) {
  rig t({.idle_timeout = 30min});
  const std::string id = t.create("ada");
  t.clock->advance(30min - 1s);
  EXPECT_EQ(route(t.r, http::method::get, "/get", cookie_of(id))->res.body, "ada old");
  // That request was 29:59 after the last write: it wrote (touch) and so
  // slid the expiry by another 30 minutes.
  t.clock->advance(30min);
  EXPECT_EQ(route(t.r, http::method::get, "/get", cookie_of(id))->res.body, "- new")
      << "30 minutes idle";
}

// A store that keeps records past their expiry (another process's clock
// runs slow, say): the middleware's own check must still expire them.
class lax_store final : public session_store {
 public:
  asio::awaitable<result<session_record>> load(std::string_view id) override {
    co_return inner.load_now(id);
  }
  asio::awaitable<result<void>> save(std::string_view id, const session_record& r,
                                     wall_time) override {
    inner.save_now(id, r, wall_time::max());
    co_return result<void>{};
  }
  asio::awaitable<result<void>> erase(std::string_view id) override {
    inner.erase_now(id);
    co_return result<void>{};
  }
  memory_session_store inner;
};

TEST(session_middleware, checks_idle_and_absolute_expiry_itself_when_loading) {
  manual_wall_clock clock;
  auto store = std::make_shared<lax_store>();
  auto sessions = std::make_shared<session_middleware>(
      store,
      session_options{.idle_timeout = 30min, .absolute_timeout = 2h, .clock = clock.function()});
  http::router r;
  r.use(sessions);
  r.post("/set", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    sessions->get(req).set("user", "ada");
    res.set_text("ok");
    co_return;
  });
  r.get("/get", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    res.set_text(sessions->get(req).is_new() ? "new" : "old");
    co_return;
  });
  const std::string idle = route(r, http::method::post, "/set")->cookie_id();
  clock.advance(30min);
  EXPECT_EQ(route(r, http::method::get, "/get", cookie_of(idle))->res.body, "new");
  EXPECT_EQ(store->inner.load_now(idle).error(), session_error::not_found)
      << "an expired session found on load is deleted";

  const std::string busy = route(r, http::method::post, "/set")->cookie_id();
  for (int i = 0; i < 11; ++i) {  // every 10 minutes: never idle, 110 minutes old
    clock.advance(10min);
    EXPECT_EQ(route(r, http::method::get, "/get", cookie_of(busy))->res.body, "old") << i;
  }
  clock.advance(10min);
  EXPECT_EQ(route(r, http::method::get, "/get", cookie_of(busy))->res.body, "new") << "2 hours old";
}

TEST(session_middleware, idle_expiry_slides_but_the_store_is_written_only_after_touch_fraction) {
  rig t({.idle_timeout = 30min, .touch_fraction = 0.25});
  const std::string id = t.create("ada");
  const wall_time created = t.clock->now();
  t.clock->advance(7min);
  route(t.r, http::method::get, "/get", cookie_of(id));
  EXPECT_EQ(t.store->load_now(id)->last_seen, created) << "7 of 30 minutes: no write";
  t.clock->advance(1min);
  route(t.r, http::method::get, "/get", cookie_of(id));
  EXPECT_EQ(t.store->load_now(id)->last_seen, t.clock->now()) << "8 of 30 minutes: touched";
  const wall_time touched = t.clock->now();
  // 35 minutes after creation, 27 after the touch: still alive thanks to it.
  t.clock->advance(27min);
  EXPECT_EQ(route(t.r, http::method::get, "/get", cookie_of(id))->res.body, "ada old");
  EXPECT_EQ(t.store->load_now(id)->last_seen, t.clock->now());
  EXPECT_GT(t.clock->now(), touched);
}

TEST(session_middleware, an_active_session_still_expires_at_absolute_timeout) {
  rig t({.idle_timeout = 30min, .absolute_timeout = 2h});
  const std::string id = t.create("ada");
  int alive = 0;
  for (int i = 0; i < 20; ++i) {  // every 10 minutes for 200 minutes
    t.clock->advance(10min);
    if (route(t.r, http::method::get, "/get", cookie_of(id))->res.body == "ada old") ++alive;
  }
  EXPECT_EQ(alive, 11) << "alive at 10..110 minutes, expired from 120 on";
  EXPECT_EQ(t.store->load_now(id).error(), session_error::not_found);
}

TEST(session_middleware, regenerate_moves_the_data_to_a_new_id_and_kills_the_old_one) {
  rig t;
  const std::string before_login = t.create("anonymous");
  auto x = route(t.r, http::method::post, "/login?ada", cookie_of(before_login));
  const std::string after_login = x->cookie_id();
  ASSERT_TRUE(is_session_id(after_login)) << x->set_cookie();
  EXPECT_NE(after_login, before_login);
  EXPECT_EQ(t.store->load_now(before_login).error(), session_error::not_found)
      << "the pre-login id no longer opens anything";
  EXPECT_EQ(route(t.r, http::method::get, "/get", cookie_of(before_login))->res.body, "- new");
  EXPECT_EQ(route(t.r, http::method::get, "/get", cookie_of(after_login))->res.body, "ada old");
  EXPECT_EQ(t.store->stats().size, 1u);
}

TEST(session_middleware, regenerate_keeps_data_and_the_original_creation_time) {
  rig t;
  const std::string id = t.create("ada");
  const wall_time created = t.clock->now();
  t.clock->advance(5min);
  auto x = route(t.r, http::method::post, "/login?ada", cookie_of(id));
  auto stored = t.store->load_now(x->cookie_id());
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->data["user"], "ada");
  EXPECT_EQ(stored->created, created) << "rotation does not extend the absolute lifetime";
}

TEST(session_middleware, destroy_deletes_the_session_and_expires_the_cookie) {
  rig t;
  const std::string id = t.create("ada");
  auto x = route(t.r, http::method::post, "/logout", cookie_of(id));
  EXPECT_EQ(x->set_cookie(), "trellis_session=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax");
  EXPECT_EQ(t.store->load_now(id).error(), session_error::not_found);
  EXPECT_EQ(route(t.r, http::method::get, "/get", cookie_of(id))->res.body, "- new");
}

TEST(session_middleware, cookie_attributes_follow_the_options) {
  rig t({.cookie_name = "sid",
         .secure = false,
         .same_site = http::same_site_policy::strict,
         .domain = "example.test",
         .absolute_timeout = 1h,
         .persistent_cookie = true});
  auto x = route(t.r, http::method::post, "/set?ada");
  const std::string id = x->cookie_id("sid");
  ASSERT_TRUE(is_session_id(id)) << x->set_cookie();
  EXPECT_EQ(x->set_cookie(),
            "sid=" + id + "; Max-Age=3600; Domain=example.test; Path=/; HttpOnly; SameSite=Strict");
  EXPECT_EQ(route(t.r, http::method::get, "/get", "sid=" + id)->res.body, "ada old");
}

TEST(session_middleware, bad_configuration_throws_naming_the_field) {
  auto store = std::make_shared<memory_session_store>();
  const auto field_of = [&](session_options o, std::shared_ptr<session_store> s) -> std::string {
    try {
      session_middleware m(std::move(s), std::move(o));
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "(no error)";
  };
  EXPECT_EQ(field_of({}, nullptr), "session.store");
  EXPECT_EQ(field_of({.secure = false, .same_site = http::same_site_policy::none}, store),
            "session.same_site");
  EXPECT_EQ(field_of({.cookie_name = "bad name"}, store), "session.cookie_name");
  EXPECT_EQ(field_of({.cookie_name = "__Host-sid", .secure = false}, store), "session.cookie_name");
  EXPECT_EQ(field_of({.domain = "exa mple"}, store), "session.domain");
  EXPECT_EQ(field_of({.path = "nope"}, store), "session.path");
  EXPECT_EQ(field_of({.idle_timeout = 0s}, store), "session.idle_timeout");
  EXPECT_EQ(field_of({.touch_fraction = 0}, store), "session.touch_fraction");
  EXPECT_EQ(field_of({.same_site = http::same_site_policy::none}, store), "(no error)")
      << "SameSite=None is fine with Secure";
}

TEST(session_middleware, data_over_the_size_limit_is_not_saved_and_the_answer_is_a_500) {
  rig t({.max_data_bytes = 1000});
  auto x = route(t.r, http::method::post, "/big");
  EXPECT_EQ(x->res.status, 500);
  EXPECT_FALSE(x->res.headers.contains("Set-Cookie"));
  EXPECT_EQ(t.store->stats().size, 0u);
}

TEST(session_middleware, data_that_is_not_a_json_object_is_not_saved_and_the_answer_is_a_500) {
  rig t;
  t.r.post("/array", [&t](http::request& req, http::response& res) -> asio::awaitable<void> {
    t.sessions->get(req).mutable_data() = nlohmann::json::array({1, 2});
    res.set_text("stored?");
    co_return;
  });
  auto x = route(t.r, http::method::post, "/array");
  EXPECT_EQ(x->res.status, 500);
  EXPECT_FALSE(x->res.headers.contains("Set-Cookie"));
  EXPECT_EQ(t.store->stats().size, 0u);
}

// A store that fails every call, as an unreachable Redis would.
class broken_store final : public session_store {
 public:
  asio::awaitable<result<session_record>> load(std::string_view) override {
    co_return unexpected(std::make_error_code(std::errc::connection_refused));
  }
  asio::awaitable<result<void>> save(std::string_view, const session_record&, wall_time) override {
    co_return unexpected(std::make_error_code(std::errc::connection_refused));
  }
  asio::awaitable<result<void>> erase(std::string_view) override {
    co_return unexpected(std::make_error_code(std::errc::connection_refused));
  }
};

TEST(session_middleware, a_failing_store_gives_503_rather_than_a_silent_logout_or_lost_login) {
  http::router r;
  auto sessions = std::make_shared<session_middleware>(std::make_shared<broken_store>());
  r.use(sessions);
  bool handler_ran = false;
  r.post("/set", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    handler_ran = true;
    sessions->get(req).set("user", "ada");
    res.set_text("logged in");
    co_return;
  });
  r.get("/none", [](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text("fine");
    co_return;
  });
  auto a = route(r, http::method::post, "/set", cookie_of(make_session_id().value()));
  EXPECT_EQ(a->res.status, 503) << "load failed";
  EXPECT_FALSE(handler_ran);

  auto b = route(r, http::method::post, "/set");
  EXPECT_TRUE(handler_ran);
  EXPECT_EQ(b->res.status, 503) << "save failed: the client must not believe it logged in";
  EXPECT_FALSE(b->res.headers.contains("Set-Cookie"));
  EXPECT_THAT(b->res.body, Not(HasSubstr("logged in")));

  EXPECT_EQ(route(r, http::method::get, "/none")->res.status, 200)
      << "no cookie: the store is not asked";
}

// Loads and saves work; deleting fails.
class undeletable_store final : public session_store {
 public:
  asio::awaitable<result<session_record>> load(std::string_view id) override {
    co_return inner.load_now(id);
  }
  asio::awaitable<result<void>> save(std::string_view id, const session_record& r,
                                     wall_time expires) override {
    inner.save_now(id, r, expires);
    co_return result<void>{};
  }
  asio::awaitable<result<void>> erase(std::string_view) override {
    co_return unexpected(std::make_error_code(std::errc::connection_reset));
  }
  memory_session_store inner;
};

TEST(session_middleware, logout_or_rotation_that_cannot_delete_the_old_id_fails_visibly) {
  auto store = std::make_shared<undeletable_store>();
  auto sessions = std::make_shared<session_middleware>(store);
  http::router r;
  r.use(sessions);
  r.post("/set", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    sessions->get(req).set("user", "ada");
    res.set_text("ok");
    co_return;
  });
  r.post("/logout", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    sessions->get(req).destroy();
    res.set_text("bye");
    co_return;
  });
  r.post("/login", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    sessions->get(req).regenerate();
    res.set_text("welcome");
    co_return;
  });
  const std::string id = route(r, http::method::post, "/set")->cookie_id();
  ASSERT_TRUE(is_session_id(id));
  auto out = route(r, http::method::post, "/logout", cookie_of(id));
  EXPECT_EQ(out->res.status, 503) << "the session still works server-side: no fake logout";
  EXPECT_FALSE(out->res.headers.contains("Set-Cookie"));
  auto in = route(r, http::method::post, "/login", cookie_of(id));
  EXPECT_EQ(in->res.status, 503) << "the pre-login id still works: no fake rotation";
  EXPECT_FALSE(in->res.headers.contains("Set-Cookie"));
  EXPECT_TRUE(store->inner.load_now(id));
}

TEST(session_middleware, get_outside_the_middleware_is_a_wiring_bug) {
  rig t;
  http::request stray;
  EXPECT_EQ(t.sessions->find(stray), nullptr);
  EXPECT_THROW(t.sessions->get(stray), std::logic_error);
}

TEST(session_middleware, serves_concurrent_requests_from_several_threads) {
  rig t;
  constexpr int k_threads = 4;
  constexpr int k_per_thread = 100;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < k_threads; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < k_per_thread; ++i) {
        const std::string user = "u" + std::to_string(th) + "x" + std::to_string(i);
        auto a = route(t.r, http::method::post, "/set?" + user);
        const std::string id = a->cookie_id();
        if (!is_session_id(id)) {
          ++wrong;
          continue;
        }
        if (route(t.r, http::method::get, "/get", cookie_of(id))->res.body != user + " old")
          ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(t.store->stats().size, static_cast<std::size_t>(k_threads * k_per_thread));
}

// --- end to end ---------------------------------------------------------------

TEST(session_middleware, keeps_a_login_across_requests_with_curls_cookie_jar) {
  if (!test::program_exists("curl")) GTEST_SKIP() << "needs the `curl` program (Debian: curl)";
  auto store = std::make_shared<memory_session_store>();
  // Plain HTTP on loopback: Secure off, as the option's comment allows.
  auto sessions = std::make_shared<session_middleware>(store, session_options{.secure = false});
  http::router r;
  r.use(sessions);
  r.post("/login", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    session& s = sessions->get(req);
    s.regenerate();
    s.set("user", std::string(req.query()));
    res.set_text("welcome\n");
    co_return;
  });
  r.get("/me", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    const nlohmann::json* u = sessions->get(req).find("user");
    res.set_text(u ? u->get<std::string>() : std::string("anonymous"));
    co_return;
  });
  r.post("/logout", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
    sessions->get(req).destroy();
    res.set_text("bye\n");
    co_return;
  });
  test::test_server srv(r.to_handler());

  const std::string jar =
      ::testing::TempDir() + "session_test_jar_" + std::to_string(::getpid()) + ".txt";
  std::remove(jar.c_str());
  const auto curl = [&](std::string_view method, std::string_view path) {
    auto done = test::run({"curl", "-sS", "-i", "--max-time", "10", "-X", std::string(method), "-c",
                           jar, "-b", jar, srv.url(path)});
    EXPECT_TRUE(done.status.success()) << done.err;
    return test::parse_curl(done.out);
  };

  EXPECT_EQ(curl("GET", "/me").body, "anonymous");
  auto login = curl("POST", "/login?ada");
  EXPECT_EQ(login.status, 200);
  EXPECT_THAT(login.header("set-cookie"), HasSubstr("; HttpOnly; SameSite=Lax"));
  std::ifstream jar_file(jar);
  std::stringstream jar_text;
  jar_text << jar_file.rdbuf();
  EXPECT_THAT(jar_text.str(), HasSubstr("#HttpOnly_127.0.0.1"))
      << "curl stored an HttpOnly cookie:\n"
      << jar_text.str();
  EXPECT_EQ(curl("GET", "/me").body, "ada");
  EXPECT_EQ(curl("GET", "/me").body, "ada");
  EXPECT_EQ(store->stats().size, 1u);
  EXPECT_EQ(curl("POST", "/logout").status, 200);
  EXPECT_EQ(curl("GET", "/me").body, "anonymous");
  EXPECT_EQ(store->stats().size, 0u);
  std::remove(jar.c_str());
}

}  // namespace
}  // namespace trellis::gateway
