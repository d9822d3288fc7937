// Time as the cache layer sees it: a clock is any function that returns a
// steady_clock time point, passed in through a cache's options.
//
// Caches never call std::chrono::steady_clock::now() behind the caller's
// back; they call the clock they were given (the steady clock when none
// was). So a test moves time by hand with manual_clock and checks expiry to
// the tick, the simulator replays a day in a second, and nothing sleeps.
//
// Thread-safety: manual_clock may be read and moved from any thread (its
// time is one relaxed atomic); a clock_function is as thread-safe as the
// callable it wraps.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>

namespace trellis::cache {

using time_point = std::chrono::steady_clock::time_point;
using duration = std::chrono::steady_clock::duration;
using clock_function = std::function<time_point()>;

// The default clock: the process's steady clock.
inline time_point steady_now() noexcept {
  return std::chrono::steady_clock::now();
}

// A clock that moves only when told to. Starts far from the epoch, so that
// "now minus an hour" is still a valid time point in tests.
class manual_clock {
 public:
  explicit manual_clock(time_point start = time_point{} + std::chrono::hours(1000)) noexcept
      : now_(start.time_since_epoch().count()) {}

  time_point now() const noexcept {
    return time_point{duration{now_.load(std::memory_order_relaxed)}};
  }
  // REQUIRES: d >= 0 (a steady clock never goes back).
  void advance(duration d) noexcept { now_.fetch_add(d.count(), std::memory_order_relaxed); }

  // A clock_function that reads this clock. The manual_clock must outlive
  // every copy of it.
  clock_function function() const {
    return [this] { return now(); };
  }

 private:
  std::atomic<duration::rep> now_;
};

}  // namespace trellis::cache
