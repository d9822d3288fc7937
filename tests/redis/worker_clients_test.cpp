// redis::worker_clients: one client per worker, the right one on each
// worker, a clear error off the workers, and idle connections closed when
// the workers drain (so the drain does not wait out its timeout).
#include "trellis/redis/worker_clients.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <string>

#include "support/redis_server.hpp"

namespace trellis::redis {
namespace {

using namespace std::chrono_literals;

TEST(redis_worker_clients, each_worker_gets_its_own_client_and_drain_closes_them) {
  REQUIRE_REDIS();
  test::redis_server redis;
  core::runtime rt({.workers = 3, .drain_timeout = 10s, .handle_signals = false});
  client_options o;
  o.client_name = "worker-clients-test";
  worker_clients clients(rt, redis.endpoint(), o, "test store");
  ASSERT_EQ(clients.size(), 3u);

  std::mutex mu;
  std::set<const client*> seen;
  std::atomic<int> pongs{0}, left{3};
  rt.spawn_on_all(
      [&](core::worker&) -> asio::awaitable<void> {
        client& c = clients.here(co_await asio::this_coro::executor);
        {
          std::lock_guard lock(mu);
          seen.insert(&c);
        }
        auto r = co_await c.command("PING");
        if (r && r->text() == "PONG") ++pongs;
        if (--left == 0) rt.drain();
      },
      "ping");
  const auto start = std::chrono::steady_clock::now();
  rt.run();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(pongs.load(), 3);
  EXPECT_EQ(seen.size(), 3u) << "one client per worker";
  // The connections closed at the drain rather than being cut off at the
  // drain timeout; no timing is asserted, the connections are counted.
  const auto list = redis.cli({"CLIENT", "LIST"}).out;
  EXPECT_EQ(list.find("name=worker-clients-test"), std::string::npos) << list;
  EXPECT_LT(took, 10s) << "the drain waited for its timeout";
}

TEST(redis_worker_clients, a_call_from_another_executor_is_a_wiring_bug) {
  core::runtime rt({.workers = 1, .handle_signals = false});
  worker_clients clients(rt, {asio::ip::address_v4::loopback(), 1}, {}, "test store");
  asio::io_context elsewhere;
  try {
    clients.here(elsewhere.get_executor());
    FAIL() << "a foreign executor got a client";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("test store"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace trellis::redis
