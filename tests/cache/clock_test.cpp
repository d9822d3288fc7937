#include "trellis/cache/clock.hpp"

#include <gtest/gtest.h>

namespace trellis::cache {
namespace {

using namespace std::chrono_literals;

TEST(cache_clock, manual_clock_moves_only_when_told) {
  manual_clock clock;
  const time_point start = clock.now();
  EXPECT_EQ(clock.now(), start);
  clock.advance(1500ms);
  EXPECT_EQ(clock.now() - start, 1500ms);
  const clock_function f = clock.function();
  EXPECT_EQ(f(), clock.now());
  clock.advance(1s);
  EXPECT_EQ(f(), start + 2500ms) << "the function reads the clock, not a copy";
  EXPECT_GT(manual_clock(time_point{} + 5s).now(), time_point{});
}

}  // namespace
}  // namespace trellis::cache
