#include "trellis/core/runtime.hpp"

#include <gtest/gtest.h>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"

namespace trellis::core {
namespace {

using namespace std::chrono_literals;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

TEST(runtime, defaults_to_one_worker_per_core) {
  runtime rt;
  EXPECT_EQ(rt.size(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(runtime, runs_a_coroutine_on_every_worker_each_on_its_own_thread) {
  runtime rt({.workers = 3, .handle_signals = false});
  std::mutex m;
  std::set<std::thread::id> threads;
  std::set<std::size_t> indices;
  std::atomic<int> done{0};
  rt.spawn_on_all(
      [&](worker& w) -> asio::awaitable<void> {
        {
          std::lock_guard lock(m);
          threads.insert(std::this_thread::get_id());
          indices.insert(w.index());
        }
        if (++done == 3) rt.drain();
        co_return;
      },
      "probe");
  rt.run();
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(indices, (std::set<std::size_t>{0, 1, 2}));
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u) << "workers run on their own threads";
}

TEST(runtime, drain_runs_hooks_and_waits_for_in_flight_tasks) {
  runtime rt({.workers = 2, .drain_timeout = 10s, .handle_signals = false});
  std::atomic<int> hooks_run{0};
  std::atomic<int> finished{0};
  rt.spawn_on_all(
      [&](worker& w) -> asio::awaitable<void> {
        drain_hook hook = w.on_drain([&] { ++hooks_run; });
        if (w.index() == 0) rt.drain();
        // Still in flight when the drain starts: it must be allowed to finish.
        co_await sleep_for(150ms);
        EXPECT_TRUE(w.draining());
        ++finished;
      },
      "in-flight");
  const auto start = std::chrono::steady_clock::now();
  rt.run();
  EXPECT_EQ(hooks_run.load(), 2);
  EXPECT_EQ(finished.load(), 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s)
      << "run() returns once tasks finish, not at the deadline";
}

// Sets a flag when destroyed: shows that a coroutine frame was cleaned up.
struct destroyed_flag {
  std::atomic<bool>* flag;
  ~destroyed_flag() { *flag = true; }
};

TEST(runtime, drain_deadline_cuts_off_stuck_tasks_without_leaking_them) {
  std::atomic<bool> frame_destroyed{false};
  std::atomic<bool> completed{false};
  {
    runtime rt({.workers = 1, .drain_timeout = 200ms, .handle_signals = false});
    rt.spawn_on_all(
        [&](worker&) -> asio::awaitable<void> {
          destroyed_flag guard{&frame_destroyed};
          rt.drain();
          co_await sleep_for(1h);  // never finishes on its own
          completed = true;
        },
        "stuck");
    const auto start = std::chrono::steady_clock::now();
    rt.run();
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 5s);
    EXPECT_EQ(rt[0].tasks(), 1u);
  }
  EXPECT_FALSE(completed.load());
  EXPECT_TRUE(frame_destroyed.load()) << "the suspended coroutine is destroyed with the runtime";
}

TEST(runtime, stop_ends_run_at_once) {
  runtime rt({.workers = 2, .drain_timeout = 1h, .handle_signals = false});
  rt.spawn_on_all(
      [&](worker& w) -> asio::awaitable<void> {
        if (w.index() == 1) rt.stop();
        co_await sleep_for(1h);
      },
      "sleeper");
  const auto start = std::chrono::steady_clock::now();
  rt.run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(rt.stopping());
}

TEST(runtime, a_failing_task_is_logged_and_the_worker_keeps_running) {
  std::vector<std::string> lines;
  std::mutex m;
  log::set_sink([&](std::string_view l) {
    std::lock_guard lock(m);
    lines.emplace_back(l);
  });
  runtime rt({.workers = 1, .handle_signals = false});
  std::atomic<bool> later_ran{false};
  rt[0].spawn(
      []() -> asio::awaitable<void> {
        throw std::runtime_error("boom");
        co_return;
      }(),
      "thrower");
  // A coroutine's references go in as parameters (copied into its frame),
  // never as lambda captures: the lambda object is gone once spawn() returns.
  rt[0].spawn(
      [](std::atomic<bool>& ran, runtime& r) -> asio::awaitable<void> {
        co_await sleep_for(20ms);
        ran = true;
        r.drain();
      }(later_ran, rt),
      "survivor");
  rt.run();
  log::set_sink({});
  EXPECT_TRUE(later_ran.load());
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("task failed task=thrower"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("error=boom"), std::string::npos) << lines[0];
}

TEST(runtime, a_hook_registered_while_draining_runs_at_once) {
  runtime rt({.workers = 1, .handle_signals = false});
  std::atomic<bool> ran{false};
  rt.spawn_on_all(
      [&](worker& w) -> asio::awaitable<void> {
        rt.drain();
        co_await sleep_for(50ms);  // the drain has reached this worker by now
        drain_hook late = w.on_drain([&] { ran = true; });
        co_await sleep_for(50ms);
      },
      "late hook");
  rt.run();
  EXPECT_TRUE(ran.load());
}

TEST(runtime, first_sigterm_drains_and_a_second_stops) {
  runtime rt({.workers = 1, .drain_timeout = 1h, .handle_signals = true});
  std::atomic<bool> saw_drain{false};
  rt.spawn_on_all(
      [&](worker& w) -> asio::awaitable<void> {
        drain_hook hook = w.on_drain([&] { saw_drain = true; });
        ::kill(::getpid(), SIGTERM);
        while (!saw_drain) co_await sleep_for(5ms);
        ::kill(::getpid(), SIGTERM);  // impatient operator: stop now
        co_await sleep_for(1h);
      },
      "signalled");
  const auto start = std::chrono::steady_clock::now();
  rt.run();
  EXPECT_TRUE(saw_drain.load());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace trellis::core

namespace trellis::core {
namespace {

// A component destroyed after the runtime (an http::server declared before
// it, say) still holds its drain hook; letting go of it must be safe.
TEST(runtime, a_drain_hook_may_outlive_its_runtime) {
  drain_hook hook;
  {
    runtime rt({.workers = 1, .handle_signals = false});
    hook = rt[0].on_drain([] {});
  }
  hook.reset();  // would touch a destroyed worker (and hang or crash) before
  SUCCEED();
}

}  // namespace
}  // namespace trellis::core
