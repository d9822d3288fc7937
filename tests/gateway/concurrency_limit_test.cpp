// Tests of gateway::concurrency_limiter and its middleware. Handlers block
// on a gate (a timer that never expires, cancelled to open it) so that the
// number of requests in flight is exact at every step; nothing depends on
// timing.
#include "trellis/gateway/concurrency_limit.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;

TEST(concurrency_limiter, admits_up_to_the_limit_and_a_release_frees_a_slot) {
  concurrency_limiter l({.max_in_flight = 2});
  EXPECT_TRUE(l.try_acquire());
  EXPECT_TRUE(l.try_acquire());
  EXPECT_FALSE(l.try_acquire());
  EXPECT_EQ(l.in_flight(), 2u);
  l.release();
  EXPECT_EQ(l.in_flight(), 1u);
  EXPECT_TRUE(l.try_acquire());
  EXPECT_FALSE(l.try_acquire());
  EXPECT_EQ(l.admitted(), 3u);
  EXPECT_EQ(l.refused(), 2u);
}

TEST(concurrency_limiter, zero_limit_is_a_config_error) {
  try {
    concurrency_limiter l({.max_in_flight = 0});
    ADD_FAILURE() << "did not throw";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "concurrency_limit.max_in_flight");
  }
}

// Threads share one limiter. Each holds a slot between try_acquire() and
// release(); the holders a test can count (counted after acquiring,
// uncounted before releasing) never exceed the limit, and the slots all
// come back.
TEST(concurrency_limiter, threads_never_hold_more_slots_than_the_limit) {
  concurrency_limiter l({.max_in_flight = 3});
  constexpr int threads = 6, rounds = 20000;
  std::atomic<int> holders{0}, most{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        if (!l.try_acquire()) continue;
        const int now_in = holders.fetch_add(1) + 1;
        int m = most.load();
        while (now_in > m && !most.compare_exchange_weak(m, now_in)) {
        }
        holders.fetch_sub(1);
        l.release();
      }
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 1);
  EXPECT_EQ(l.in_flight(), 0u);
  EXPECT_EQ(l.admitted() + l.refused(), std::uint64_t{threads} * rounds);
}

// ---------------------------------------------------------------------------
// The middleware, routed in-process on one io_context.

struct routed {
  http::request_head head;
  http::request req;
  http::response res;
  bool done = false;
};

// A router limited to `limit` requests in flight, whose /slow handler waits
// at the gate until the test opens it.
struct rig {
  asio::io_context ctx;
  asio::steady_timer gate{ctx, asio::steady_timer::time_point::max()};
  std::shared_ptr<concurrency_limiter> limiter;
  http::router router;
  int entered = 0;
  std::vector<std::unique_ptr<routed>> requests;

  explicit rig(std::uint32_t limit)
      : rig(std::make_shared<concurrency_limiter>(concurrency_limit_options{limit})) {}
  explicit rig(std::shared_ptr<concurrency_limiter> shared) : limiter(std::move(shared)) {
    router.use(std::make_shared<concurrency_limit_middleware>(
        limiter, concurrency_limit_middleware_options{"catalog"}));
    router.get("/slow", [this](http::request&, http::response& res) -> asio::awaitable<void> {
      ++entered;
      auto [ec] = co_await gate.async_wait(use_nothrow);
      (void)ec;  // operation_aborted: the gate was opened
      res.set_text("done\n");
    });
    router.get("/throws", [](http::request&, http::response&) -> asio::awaitable<void> {
      throw std::runtime_error("handler failed");
      co_return;
    });
  }

  // Starts a request and runs everything that is ready (never blocks).
  routed& start(std::string_view target) {
    auto r = std::make_unique<routed>();
    r->head.method = http::method::get;
    r->head.method_text = "GET";
    r->head.target = target;
    r->head.host = "example.test";
    r->req.bind(r->head, nullptr, {}, false);
    routed* raw = r.get();
    requests.push_back(std::move(r));
    asio::co_spawn(ctx, router(raw->req, raw->res), [raw](std::exception_ptr e) {
      raw->done = true;
      if (e) ADD_FAILURE() << "routing threw";
    });
    ctx.restart();  // poll() stops the context once it runs out of work
    ctx.poll();
    return *raw;
  }
  void open_gate() {
    gate.cancel();
    ctx.restart();
    for (int i = 0; i < 1000 && ctx.poll() > 0; ++i) {
    }
  }
};

TEST(concurrency_limit_middleware, refuses_beyond_the_limit_with_503_and_admits_after_release) {
  rig r(2);
  routed& a = r.start("/slow");
  routed& b = r.start("/slow");
  EXPECT_FALSE(a.done);
  EXPECT_FALSE(b.done);
  EXPECT_EQ(r.limiter->in_flight(), 2u);
  EXPECT_EQ(r.entered, 2);

  routed& c = r.start("/slow");
  ASSERT_TRUE(c.done) << "a refusal answers at once";
  EXPECT_EQ(c.res.status, 503);
  EXPECT_EQ(c.res.headers.get("Content-Type"), "application/problem+json");
  EXPECT_NE(c.res.body.find("\"upstream\":\"catalog\""), std::string::npos) << c.res.body;
  EXPECT_NE(c.res.body.find("\"limit\":2"), std::string::npos) << c.res.body;
  EXPECT_EQ(r.entered, 2) << "the refused request never reached the handler";
  EXPECT_EQ(r.limiter->in_flight(), 2u) << "a refusal holds no slot";

  r.open_gate();
  EXPECT_TRUE(a.done);
  EXPECT_TRUE(b.done);
  EXPECT_EQ(a.res.status, 200);
  EXPECT_EQ(b.res.status, 200);
  EXPECT_EQ(r.limiter->in_flight(), 0u);

  // The slots are back: two more fit again.
  r.gate.expires_at(asio::steady_timer::time_point::max());
  routed& d = r.start("/slow");
  routed& e = r.start("/slow");
  EXPECT_EQ(r.limiter->in_flight(), 2u);
  r.open_gate();
  EXPECT_EQ(d.res.status, 200);
  EXPECT_EQ(e.res.status, 200);
  EXPECT_EQ(r.limiter->admitted(), 4u);
  EXPECT_EQ(r.limiter->refused(), 1u);
}

TEST(concurrency_limit_middleware, a_throwing_handler_gives_its_slot_back) {
  rig r(1);
  for (int i = 0; i < 3; ++i) {
    routed& x = r.start("/throws");
    ASSERT_TRUE(x.done);
    EXPECT_EQ(x.res.status, 500) << "admitted, then the handler failed";
    EXPECT_EQ(r.limiter->in_flight(), 0u);
  }
}

TEST(concurrency_limit_middleware, one_limiter_is_shared_by_routers_on_different_workers) {
  // Two workers (io_contexts), each with its own router and middleware,
  // guarding the same upstream: the limit is for both together.
  auto shared = std::make_shared<concurrency_limiter>(concurrency_limit_options{1});
  rig w1(shared), w2(shared);
  routed& a = w1.start("/slow");
  EXPECT_FALSE(a.done);
  routed& b = w2.start("/slow");
  ASSERT_TRUE(b.done);
  EXPECT_EQ(b.res.status, 503) << "worker 1 holds the only shared slot";
  EXPECT_EQ(w2.entered, 0);
  w1.open_gate();
  EXPECT_EQ(a.res.status, 200);
  EXPECT_EQ(shared->in_flight(), 0u);
  routed& c = w2.start("/slow");
  EXPECT_FALSE(c.done) << "worker 2 gets the slot now";
  EXPECT_EQ(shared->in_flight(), 1u);
  w2.open_gate();
  EXPECT_EQ(c.res.status, 200);
}

}  // namespace
}  // namespace trellis::gateway
