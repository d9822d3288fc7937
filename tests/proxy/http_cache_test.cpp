#include "trellis/proxy/http_cache.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/loop.hpp"

namespace trellis::proxy {
namespace {

using namespace std::chrono_literals;

cached_response response(std::string body, cache::time_point keep_until, std::string variant = "",
                         std::vector<std::string> tags = {}) {
  cached_response r;
  r.status = 200;
  (void)r.headers.add("Content-Type", "text/plain");
  r.body = std::move(body);
  r.variant = std::move(variant);
  r.tags = std::move(tags);
  r.keep_until = keep_until;
  return r;
}

TEST(http_cache, stores_and_finds_a_response) {
  cache::manual_clock clock;
  http_cache c({.clock = clock.function()});
  EXPECT_EQ(c.find("http://a/x"), nullptr);
  ASSERT_TRUE(c.store("http://a/x", response("hello", clock.now() + 60s)));
  const cached_ptr r = c.find("http://a/x");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->body, "hello");
  EXPECT_EQ(r->headers.get("Content-Type"), "text/plain");
  EXPECT_EQ(c.find("http://a/y"), nullptr);
  const auto s = c.stats();
  EXPECT_EQ(s.urls, 1u);
  EXPECT_EQ(s.stored, 1u);
  EXPECT_EQ(s.bytes, r->weight() + std::string("http://a/x").size());
}

TEST(http_cache, drops_a_url_when_its_last_variant_is_no_longer_worth_keeping) {
  cache::manual_clock clock;
  http_cache c({.clock = clock.function()});
  EXPECT_FALSE(c.store("k", response("late", clock.now()))) << "already past keep_until";
  ASSERT_TRUE(c.store("k", response("a", clock.now() + 30s, "gzip")));
  ASSERT_TRUE(c.store("k", response("b", clock.now() + 10s, "br")));
  EXPECT_EQ(c.find("k")->body, "b");
  clock.advance(20s);
  ASSERT_NE(c.find("k"), nullptr) << "the URL stays while one variant is worth keeping";
  EXPECT_EQ(c.find("k")->body, "a") << "the other one is past keeping";
  clock.advance(10s);
  EXPECT_EQ(c.find("k"), nullptr);
  EXPECT_EQ(c.stats().expirations, 1u);
}

TEST(http_cache, keeps_variants_apart_and_replaces_one_with_the_same_key) {
  cache::manual_clock clock;
  http_cache c({.max_variants = 3, .clock = clock.function()});
  const auto until = clock.now() + 60s;
  ASSERT_TRUE(c.store("k", response("gzip body", until, "accept-encoding=gzip")));
  ASSERT_TRUE(c.store("k", response("plain body", until, "accept-encoding=")));
  const auto pick = [&](std::string_view variant) {
    return c.find("k", [&](const cached_response& r) { return r.variant == variant; });
  };
  ASSERT_NE(pick("accept-encoding=gzip"), nullptr);
  EXPECT_EQ(pick("accept-encoding=gzip")->body, "gzip body");
  EXPECT_EQ(pick("accept-encoding=")->body, "plain body");
  EXPECT_EQ(pick("accept-encoding=br"), nullptr) << "no such variant";

  ASSERT_TRUE(c.store("k", response("gzip body 2", until, "accept-encoding=gzip")));
  EXPECT_EQ(pick("accept-encoding=gzip")->body, "gzip body 2");
  EXPECT_EQ(c.find("k")->body, "gzip body 2") << "the newest variant comes first";

  ASSERT_TRUE(c.store("k", response("br", until, "accept-encoding=br")));
  ASSERT_TRUE(c.store("k", response("zstd", until, "accept-encoding=zstd")));
  EXPECT_EQ(pick("accept-encoding="), nullptr) << "the oldest of four went: max_variants is 3";
  EXPECT_NE(pick("accept-encoding=gzip"), nullptr);
  EXPECT_NE(pick("accept-encoding=br"), nullptr);
  EXPECT_NE(pick("accept-encoding=zstd"), nullptr);
}

TEST(http_cache, stays_within_its_bytes_and_refuses_what_is_too_large) {
  cache::manual_clock clock;
  // (LRU: W-TinyLFU may refuse to admit a newcomer rather than evict.)
  http_cache c({.max_bytes = 64 * 1024,
                .max_entry_bytes = 8 * 1024,
                .eviction = cache::eviction::lru,
                .clock = clock.function()});
  EXPECT_LE(c.options().max_bytes / c.options().shards, 64u * 1024);
  EXPECT_GE(c.options().max_bytes / c.options().shards, 8u * 1024)
      << "shards lowered so that the largest response fits one";
  EXPECT_FALSE(c.store("big", response(std::string(9000, 'x'), clock.now() + 60s)));
  EXPECT_EQ(c.stats().too_large, 1u);
  for (int i = 0; i < 200; ++i)
    (void)c.store("k" + std::to_string(i), response(std::string(2000, 'x'), clock.now() + 60s));
  const auto s = c.stats();
  EXPECT_LE(s.bytes, 64u * 1024);
  EXPECT_GT(s.evictions, 0u);
  EXPECT_GT(s.urls, 0u);
  EXPECT_LT(s.urls, 200u);
}

TEST(http_cache, purges_a_url_with_every_variant) {
  cache::manual_clock clock;
  http_cache c({.clock = clock.function()});
  ASSERT_TRUE(c.store("k", response("a", clock.now() + 60s, "v1")));
  ASSERT_TRUE(c.store("k", response("b", clock.now() + 60s, "v2")));
  ASSERT_TRUE(c.store("other", response("c", clock.now() + 60s)));
  EXPECT_TRUE(c.purge("k"));
  EXPECT_FALSE(c.purge("k"));
  EXPECT_EQ(c.find("k"), nullptr);
  EXPECT_NE(c.find("other"), nullptr);
  EXPECT_EQ(c.stats().purges, 1u);
}

TEST(http_cache, purges_by_tag_what_was_stored_before_the_purge_only) {
  cache::manual_clock clock;
  http_cache c({.clock = clock.function()});
  const auto until = clock.now() + 60s;
  ASSERT_TRUE(c.store("p1", response("1", until, "", {"product-1", "catalog"})));
  ASSERT_TRUE(c.store("p2", response("2", until, "", {"product-2", "catalog"})));
  ASSERT_TRUE(c.store("home", response("h", until)));
  c.purge_tag("product-1");
  EXPECT_EQ(c.find("p1"), nullptr);
  EXPECT_NE(c.find("p2"), nullptr);
  EXPECT_NE(c.find("home"), nullptr);
  ASSERT_TRUE(c.store("p1", response("1 again", until, "", {"product-1"})));
  EXPECT_EQ(c.find("p1")->body, "1 again") << "stored after the purge: valid";
  c.purge_tag("catalog");
  EXPECT_EQ(c.find("p2"), nullptr);
  EXPECT_NE(c.find("p1"), nullptr) << "its new copy does not carry the tag";
  EXPECT_NE(c.find("home"), nullptr);
  EXPECT_EQ(c.stats().tag_purges, 2u);
}

TEST(http_cache, invalidates_everything_older_when_the_purged_tags_overflow) {
  cache::manual_clock clock;
  http_cache c({.max_purged_tags = 2, .clock = clock.function()});
  const auto until = clock.now() + 60s;
  ASSERT_TRUE(c.store("untagged", response("u", until)));
  ASSERT_TRUE(c.store("t", response("t", until, "", {"x"})));
  c.purge_tag("a");
  c.purge_tag("b");
  EXPECT_NE(c.find("untagged"), nullptr);
  EXPECT_NE(c.find("t"), nullptr);
  c.purge_tag("c");  // a third tag: over the bound
  EXPECT_EQ(c.find("untagged"), nullptr) << "an over-wide purge, never a missed one";
  EXPECT_EQ(c.find("t"), nullptr);
  ASSERT_TRUE(c.store("new", response("n", until, "", {"c"})));
  EXPECT_NE(c.find("new"), nullptr);
}

TEST(http_cache, variants_purged_by_tag_are_skipped_and_not_kept_on_the_next_store) {
  cache::manual_clock clock;
  http_cache c({.clock = clock.function()});
  const auto until = clock.now() + 60s;
  ASSERT_TRUE(c.store("k", response("gzip", until, "gzip", {"t"})));
  ASSERT_TRUE(c.store("k", response("plain", until, "plain")));
  c.purge_tag("t");
  EXPECT_EQ(c.find("k", [](const cached_response& r) { return r.variant == "gzip"; }), nullptr);
  EXPECT_EQ(c.find("k")->body, "plain");
  const auto before = c.stats().bytes;
  ASSERT_TRUE(c.store("k", response("br", until, "br")));
  EXPECT_LT(c.stats().bytes, before + response("br", until, "br").weight())
      << "the purged variant's bytes were released";
}

// --- collapsing ----------------------------------------------------------------

TEST(http_cache, the_first_miss_leads_and_the_others_wait_for_its_fill) {
  http_cache c;
  test::run_bounded([&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    http_cache::fill lead;
    CO_ASSERT_TRUE(co_await c.begin_fill("k", lead) == http_cache::fill_outcome::lead);
    CO_ASSERT_TRUE(static_cast<bool>(lead));

    int woken = 0;
    for (int i = 0; i < 10; ++i)
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            http_cache::fill f;
            const auto outcome = co_await c.begin_fill("k", f);
            EXPECT_EQ(outcome, http_cache::fill_outcome::filled);
            EXPECT_FALSE(static_cast<bool>(f));
            ++woken;
          },
          asio::detached);
    asio::steady_timer t(ex, 20ms);
    co_await t.async_wait(asio::use_awaitable);
    EXPECT_EQ(woken, 0) << "nobody is woken before the fill ends";
    EXPECT_EQ(c.stats().collapsed, 10u);
    lead.end();
    EXPECT_FALSE(static_cast<bool>(lead));
    for (int i = 0; i < 100 && woken < 10; ++i) {
      t.expires_after(1ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    EXPECT_EQ(woken, 10);

    http_cache::fill next;
    EXPECT_EQ(co_await c.begin_fill("k", next), http_cache::fill_outcome::lead)
        << "after a fill ends, the next miss leads again";
  });
}

TEST(http_cache, a_waiter_gives_up_after_the_collapse_timeout) {
  http_cache c({.collapse_timeout = 30ms});
  test::run_bounded([&]() -> asio::awaitable<void> {
    http_cache::fill lead;
    CO_ASSERT_TRUE(co_await c.begin_fill("k", lead) == http_cache::fill_outcome::lead);
    http_cache::fill f;
    EXPECT_EQ(co_await c.begin_fill("k", f), http_cache::fill_outcome::timed_out);
    EXPECT_EQ(c.stats().collapse_timeouts, 1u);
    http_cache::fill other;
    EXPECT_EQ(co_await c.begin_fill("other", other), http_cache::fill_outcome::lead)
        << "fills of different keys are independent";
  });
}

TEST(http_cache, waiters_on_other_threads_are_woken_on_their_own_executors) {
  http_cache c;
  constexpr int threads = 4, per_thread = 25;
  std::vector<asio::io_context> contexts(threads);
  std::atomic<int> filled{0}, led{0};
  std::atomic<int> registered{0};
  http_cache::fill lead;
  {
    asio::io_context main;
    asio::co_spawn(
        main, [&]() -> asio::awaitable<void> { (void)co_await c.begin_fill("k", lead); },
        asio::detached);
    main.run();
  }
  ASSERT_TRUE(static_cast<bool>(lead));
  for (auto& ctx : contexts)
    for (int i = 0; i < per_thread; ++i)
      asio::co_spawn(
          ctx,
          [&, &io = ctx]() -> asio::awaitable<void> {
            http_cache::fill f;
            ++registered;
            const auto outcome = co_await c.begin_fill("k", f);
            if (outcome == http_cache::fill_outcome::filled) ++filled;
            if (outcome == http_cache::fill_outcome::lead) ++led;
            EXPECT_TRUE(io.get_executor().running_in_this_thread());
          },
          asio::detached);
  std::vector<std::thread> workers;
  for (auto& ctx : contexts) workers.emplace_back([&ctx] { ctx.run_for(10s); });
  for (int i = 0; i < 2000 && c.stats().collapsed < threads * per_thread; ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(c.stats().collapsed, static_cast<std::uint64_t>(threads * per_thread));
  lead.end();
  for (auto& w : workers) w.join();
  EXPECT_EQ(filled.load(), threads * per_thread);
  EXPECT_EQ(led.load(), 0);
}

TEST(http_cache, is_safe_to_share_between_threads) {
  cache::manual_clock clock;
  http_cache c({.max_bytes = 256 * 1024, .clock = clock.function()});
  constexpr int threads = 4, rounds = 2000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        const std::string key = "k" + std::to_string(i % 50);
        switch ((i + t) % 5) {
          case 0:
            (void)c.store(key, response(std::string(100 + i % 700, 'x'), clock.now() + 60s,
                                        "v" + std::to_string(t), {"tag" + std::to_string(i % 7)}));
            break;
          case 1: c.purge_tag("tag" + std::to_string(i % 7)); break;
          case 2: (void)c.purge(key); break;
          default:
            if (const auto r = c.find(key)) {
              EXPECT_GE(r->body.size(), 100u);
            }
        }
      }
    });
  for (auto& w : workers) w.join();
  EXPECT_LE(c.stats().bytes, 256u * 1024);
}

}  // namespace
}  // namespace trellis::proxy
