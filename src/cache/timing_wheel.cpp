#include "trellis/cache/timing_wheel.hpp"

#include <algorithm>

namespace trellis::cache {

bool timing_wheel::scheduled(slot s) const noexcept {
  return s < timers_.size() && timers_[s].bucket != unscheduled;
}

std::uint16_t timing_wheel::bucket_for(std::uint64_t deadline) const noexcept {
  if (deadline <= now_) return due;
  for (unsigned level = 0; level < levels; ++level) {
    const unsigned above = bits_per_level * (level + 1);
    // The lowest level whose current ring (the ticks that agree with now_
    // on every bit above this level) contains the deadline.
    if ((deadline >> above) == (now_ >> above) || level + 1 == levels) {
      const auto index = (deadline >> (bits_per_level * level)) & (buckets_per_level - 1);
      return static_cast<std::uint16_t>(level * buckets_per_level + index);
    }
  }
  return due;  // not reached: the top level takes everything
}

void timing_wheel::link(slot s, std::uint16_t bucket) noexcept {
  timer& t = timers_[s];
  t.bucket = bucket;
  t.prev = none;
  t.next = buckets_[bucket];
  if (t.next != none) timers_[t.next].prev = s;
  buckets_[bucket] = s;
}

void timing_wheel::unlink(slot s) noexcept {
  timer& t = timers_[s];
  if (t.prev != none)
    timers_[t.prev].next = t.next;
  else
    buckets_[t.bucket] = t.next;
  if (t.next != none) timers_[t.next].prev = t.prev;
  t.prev = t.next = none;
  t.bucket = unscheduled;
}

void timing_wheel::schedule(slot s, std::uint64_t deadline) {
  if (s >= timers_.size())
    timers_.resize(std::max<std::size_t>(static_cast<std::size_t>(s) + 1, timers_.size() * 2));
  if (timers_[s].bucket != unscheduled)
    unlink(s);
  else
    ++size_;
  timers_[s].deadline = deadline;
  link(s, bucket_for(deadline));
}

void timing_wheel::cancel(slot s) noexcept {
  if (!scheduled(s)) return;
  unlink(s);
  --size_;
}

// Takes a bucket's whole list, then fires each timer that is due and
// re-files the others relative to the (already moved) current tick.
void timing_wheel::drain(std::uint16_t bucket, std::vector<slot>& expired, std::size_t& fired) {
  slot s = buckets_[bucket];
  buckets_[bucket] = none;
  while (s != none) {
    timer& t = timers_[s];
    const slot next = t.next;
    t.prev = t.next = none;
    if (t.deadline <= now_) {
      t.bucket = unscheduled;
      --size_;
      expired.push_back(s);
      ++fired;
    } else {
      link(s, bucket_for(t.deadline));
      ++refiled_;
    }
    s = next;
  }
}

std::size_t timing_wheel::advance(std::uint64_t now, std::vector<slot>& expired) {
  std::size_t fired = 0;
  const std::uint64_t before = now_;
  if (now > now_) now_ = now;
  drain(due, expired, fired);
  for (unsigned level = 0; level < levels; ++level) {
    const unsigned shift = bits_per_level * level;
    const std::uint64_t from = before >> shift;
    const std::uint64_t to = now_ >> shift;
    // Higher levels only change when this one wraps, so the first level
    // whose position did not move ends the walk.
    if (from == to) break;
    const std::uint64_t steps = std::min<std::uint64_t>(to - from, buckets_per_level);
    for (std::uint64_t k = 1; k <= steps; ++k) {
      const auto index = (from + k) & (buckets_per_level - 1);
      drain(static_cast<std::uint16_t>(level * buckets_per_level + index), expired, fired);
    }
  }
  return fired;
}

void timing_wheel::clear() noexcept {
  buckets_.fill(none);
  for (timer& t : timers_) t = timer{};
  size_ = 0;
}

}  // namespace trellis::cache
