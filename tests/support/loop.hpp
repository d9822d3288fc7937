// Test helper: run one coroutine on a fresh io_context, bounded in time.
//
// Every network test runs its coroutine through run_bounded(), so a bug that
// would hang (a missed deadline, a lost wakeup) fails the test after
// `limit` instead of stalling CI.
#pragma once

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <utility>

// GoogleTest's ASSERT_* and GTEST_SKIP `return`, which a coroutine cannot;
// these are their coroutine forms.
#define CO_ASSERT_TRUE(cond)                               \
  do {                                                     \
    if (!(cond)) {                                         \
      ADD_FAILURE() << "CO_ASSERT_TRUE(" #cond ") failed"; \
      co_return;                                           \
    }                                                      \
  } while (0)
#define CO_ASSERT_FALSE(cond) CO_ASSERT_TRUE(!(cond))
// For a result<T> or error_code-returning call: fails with the error's message.
#define CO_ASSERT_OK(r)                                         \
  do {                                                          \
    if (!(r)) {                                                 \
      ADD_FAILURE() << #r " failed: " << (r).error().message(); \
      co_return;                                                \
    }                                                           \
  } while (0)
// Skips the current test (reported when run_bounded returns).
#define CO_SKIP(reason)                      \
  do {                                       \
    ::trellis::test::skip_reason() = reason; \
    co_return;                               \
  } while (0)

namespace trellis::test {

inline std::string& skip_reason() {
  static std::string reason;
  return reason;
}

// Runs `make()`'s coroutine on its own io_context until it completes or
// `limit` passes (a test failure), rethrows the coroutine's exception, and
// reports a CO_SKIP as a skipped test.
inline void run_bounded(std::function<asio::awaitable<void>()> make,
                        std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  asio::io_context ctx(1);
  bool finished = false;
  std::exception_ptr failure;
  asio::co_spawn(ctx, make(), [&](std::exception_ptr e) {
    finished = true;
    failure = e;
  });
  ctx.run_for(limit);
  if (failure) std::rethrow_exception(failure);
  if (!finished) ADD_FAILURE() << "test coroutine did not finish within " << limit.count() << " ms";
  if (!skip_reason().empty()) {
    const std::string reason = std::exchange(skip_reason(), {});
    GTEST_SKIP() << reason;
  }
}

}  // namespace trellis::test
