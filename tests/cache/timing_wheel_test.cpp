#include "trellis/cache/timing_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

namespace trellis::cache {
namespace {

std::vector<slot> advance(timing_wheel& w, std::uint64_t now) {
  std::vector<slot> fired;
  w.advance(now, fired);
  std::sort(fired.begin(), fired.end());
  return fired;
}

TEST(cache_timing_wheel, fires_at_the_deadline_and_not_before) {
  timing_wheel w;
  w.schedule(1, 5);
  w.schedule(2, 63);
  EXPECT_EQ(w.size(), 2u);
  EXPECT_TRUE(advance(w, 4).empty());
  EXPECT_EQ(advance(w, 5), (std::vector<slot>{1}));
  EXPECT_TRUE(advance(w, 62).empty());
  EXPECT_EQ(advance(w, 63), (std::vector<slot>{2}));
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(w.scheduled(1));
}

TEST(cache_timing_wheel, timers_move_down_the_levels_and_fire_on_time) {
  timing_wheel w;
  // One deadline per level: 64^level + 5 ticks away.
  const std::vector<std::uint64_t> deadlines = {5,           64 + 5,         4096 + 5,
                                                262'144 + 5, 16'777'216 + 5, 1'073'741'824 + 5};
  for (slot s = 0; s < deadlines.size(); ++s) w.schedule(s, deadlines[s]);
  for (slot s = 0; s < deadlines.size(); ++s) {
    EXPECT_TRUE(advance(w, deadlines[s] - 1).empty()) << "level " << s;
    EXPECT_EQ(advance(w, deadlines[s]), (std::vector<slot>{s})) << "level " << s;
  }
  EXPECT_TRUE(w.empty());
}

TEST(cache_timing_wheel, one_long_jump_fires_everything_due_and_keeps_the_rest) {
  timing_wheel w(1000);
  w.schedule(1, 1001);
  w.schedule(2, 5'000'000);
  w.schedule(3, 90'000'000'000);  // beyond the top level's reach (64^6 ticks)
  w.schedule(4, 1'000'000'000'000);
  EXPECT_EQ(advance(w, 100'000'000'000), (std::vector<slot>{1, 2, 3}));
  EXPECT_EQ(w.size(), 1u);
  EXPECT_TRUE(advance(w, 999'999'999'999).empty());
  EXPECT_EQ(advance(w, 1'000'000'000'000), (std::vector<slot>{4}));
}

TEST(cache_timing_wheel, a_deadline_already_past_fires_at_the_next_advance) {
  timing_wheel w(100);
  w.schedule(7, 50);
  EXPECT_EQ(advance(w, 100), (std::vector<slot>{7})) << "even without time moving";
}

TEST(cache_timing_wheel, cancel_and_reschedule) {
  timing_wheel w;
  w.schedule(1, 10);
  w.schedule(2, 10);
  w.cancel(1);
  w.cancel(1);          // twice: harmless
  w.cancel(99);         // never scheduled: harmless
  w.schedule(2, 5000);  // moved later, from level 0 to level 2
  EXPECT_EQ(w.size(), 1u);
  EXPECT_TRUE(advance(w, 4999).empty());
  EXPECT_EQ(advance(w, 5000), (std::vector<slot>{2}));
}

// Against a plain ordered map: many timers, deadlines spread over all
// levels, time advancing in steps from one tick to millions. Each advance
// must fire exactly the timers whose deadline has come. The work beyond
// firing (timers re-filed into a lower level) stays within one move per
// level per timer: O(1) per timer however time moves.
TEST(cache_timing_wheel, matches_a_sorted_reference_and_does_bounded_work) {
  std::uint64_t seed = 7;
  const auto next = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return seed >> 17;
  };
  timing_wheel w;
  std::multimap<std::uint64_t, slot> reference;
  constexpr slot timers = 5000;
  for (slot s = 0; s < timers; ++s) {
    const unsigned level = static_cast<unsigned>(next() % 5);
    const std::uint64_t span = std::uint64_t{64} << (6 * level);
    const std::uint64_t deadline = 1 + next() % span;
    w.schedule(s, deadline);
    reference.emplace(deadline, s);
  }
  std::uint64_t now = 0;
  for (int step = 0; step < 2000 && !reference.empty(); ++step) {
    const unsigned scale = static_cast<unsigned>(next() % 5);
    now += 1 + next() % (std::uint64_t{1} << (6 * scale));
    std::vector<slot> expected;
    while (!reference.empty() && reference.begin()->first <= now) {
      expected.push_back(reference.begin()->second);
      reference.erase(reference.begin());
    }
    std::sort(expected.begin(), expected.end());
    ASSERT_EQ(advance(w, now), expected) << "at tick " << now;
  }
  EXPECT_TRUE(reference.empty()) << "the steps did not reach every deadline";
  EXPECT_LE(w.refiled(), std::uint64_t{timers} * timing_wheel::levels);
}

TEST(cache_timing_wheel, clear_forgets_every_timer) {
  timing_wheel w;
  w.schedule(1, 3);
  w.schedule(2, 300);
  w.clear();
  EXPECT_TRUE(w.empty());
  EXPECT_TRUE(advance(w, 1000).empty());
  w.schedule(1, 1001);
  EXPECT_EQ(advance(w, 1001), (std::vector<slot>{1}));
}

}  // namespace
}  // namespace trellis::cache
