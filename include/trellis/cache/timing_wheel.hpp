// A hierarchical timing wheel: O(1) timers for cache entries' TTLs.
//
// Time is counted in ticks (a cache turns its clock into ticks of its
// `resolution`). Level 0 is a ring of 64 buckets, one tick each; level 1 a
// ring of 64 buckets of 64 ticks; level i buckets of 64^i ticks; six levels
// cover 64^6 ticks (795 days of 1 ms ticks). A timer sits in the lowest
// level whose current ring still contains its deadline:
//
//   level 2  [  ...  | 4096 ticks each |  ... ]   deadlines this far away
//   level 1  [  ...  |   64 ticks each |  ... ]   deadlines within 4096 ticks
//   level 0  [  ...  |   1 tick each   |  ... ]   deadlines within 64 ticks
//
// Scheduling and cancelling are O(1): a push onto, or an unlink from, a
// bucket's list. Advancing visits only the buckets that time moved past,
// at most 64 per level however far it moves, and re-files their timers one
// level down (or fires them when due). A timer moves down at most once per
// level in its life, so each one costs O(1) in all, however the calls to
// advance are spread: the hierarchical timing wheel of "Hashed and
// Hierarchical Timing Wheels" (SOSP 1987), as in the Linux kernel and Kafka. Deadlines beyond the
// top level's reach wait in its buckets and are re-filed each time the top ring comes round to
// them.
//
// Timers are identified by slot (the cache's entry index), so the wheel
// allocates nothing per timer once its tables have grown to the largest
// slot.
//
// Thread-safety: NOT thread-safe; a wheel belongs to one cache (shard).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "trellis/cache/policy.hpp"

namespace trellis::cache {

class timing_wheel {
 public:
  static constexpr unsigned bits_per_level = 6;
  static constexpr unsigned buckets_per_level = 1u << bits_per_level;
  static constexpr unsigned levels = 6;

  // A wheel whose current tick is `now`.
  explicit timing_wheel(std::uint64_t now = 0) noexcept : now_(now) { buckets_.fill(none); }

  std::uint64_t now() const noexcept { return now_; }
  std::size_t size() const noexcept { return size_; }
  // Timers re-filed into a lower level so far: the work advance() did
  // beyond firing, which the O(1) claim bounds by levels per timer.
  std::uint64_t refiled() const noexcept { return refiled_; }
  bool empty() const noexcept { return size_ == 0; }
  bool scheduled(slot s) const noexcept;

  // Schedules s to fire at tick `deadline`, replacing any earlier schedule
  // of s. A deadline not after now() fires at the next advance().
  void schedule(slot s, std::uint64_t deadline);

  // Forgets s's timer; nothing happens if s has none.
  void cancel(slot s) noexcept;

  // Moves the current tick to `now` and appends to `expired` every slot
  // whose deadline is at or before it (forgetting their timers). Returns
  // how many were appended. A `now` before now() moves nothing but still
  // fires deadlines scheduled at or before now().
  std::size_t advance(std::uint64_t now, std::vector<slot>& expired);

  // Forgets every timer; the current tick stays.
  void clear() noexcept;

 private:
  static constexpr slot none = 0xffffffffu;
  static constexpr std::uint16_t unscheduled = 0xffff;
  // Bucket index levels * buckets_per_level is the "due" list: timers
  // scheduled at or before the current tick.
  static constexpr std::uint16_t due = levels * buckets_per_level;

  struct timer {
    slot prev = none;
    slot next = none;
    std::uint64_t deadline = 0;
    std::uint16_t bucket = unscheduled;
  };

  std::uint16_t bucket_for(std::uint64_t deadline) const noexcept;
  void link(slot s, std::uint16_t bucket) noexcept;
  void unlink(slot s) noexcept;
  void drain(std::uint16_t bucket, std::vector<slot>& expired, std::size_t& fired);

  std::uint64_t now_;
  std::size_t size_ = 0;
  std::uint64_t refiled_ = 0;
  std::array<slot, levels * buckets_per_level + 1> buckets_;
  std::vector<timer> timers_;
};

}  // namespace trellis::cache
