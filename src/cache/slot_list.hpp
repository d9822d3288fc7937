// Intrusive doubly linked lists of slots, shared by the policies.
//
// All lists of one policy share one link table indexed by slot, because an
// entry is in at most one of them at a time (S3-FIFO's small or main queue,
// W-TinyLFU's window, probation or protected segment). A list is then just
// its two ends, its length and its total weight: moving an entry between
// lists is four index writes and no allocation.
//
// Orientation: `head` is the newest end, `tail` the oldest; `newer` points
// towards the head, `older` towards the tail.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "trellis/cache/policy.hpp"

namespace trellis::cache::detail {

inline constexpr slot no_slot = std::numeric_limits<slot>::max();

struct link {
  slot newer = no_slot;
  slot older = no_slot;
};

// Grows a per-slot table so that index s exists; doubling keeps the
// amortised cost O(1) when slots are handed out densely from 0.
template <class T>
void ensure(std::vector<T>& table, slot s, const T& fill = T{}) {
  if (s < table.size()) return;
  table.resize(std::max<std::size_t>(static_cast<std::size_t>(s) + 1, table.size() * 2), fill);
}

struct slot_list {
  slot head = no_slot;
  slot tail = no_slot;
  std::size_t size = 0;
  std::uint64_t weight = 0;

  bool empty() const noexcept { return size == 0; }

  void push_head(std::vector<link>& links, slot s, std::uint64_t w) {
    links[s] = {no_slot, head};
    if (head != no_slot) links[head].newer = s;
    head = s;
    if (tail == no_slot) tail = s;
    ++size;
    weight += w;
  }

  void remove(std::vector<link>& links, slot s, std::uint64_t w) {
    const link l = links[s];
    if (l.newer != no_slot)
      links[l.newer].older = l.older;
    else
      head = l.older;
    if (l.older != no_slot)
      links[l.older].newer = l.newer;
    else
      tail = l.newer;
    links[s] = {};
    assert(size > 0 && weight >= w);
    --size;
    weight -= w;
  }

  void move_to_head(std::vector<link>& links, slot s, std::uint64_t w) {
    if (head == s) return;
    remove(links, s, w);
    push_head(links, s, w);
  }
};

// splitmix64: a small, fast, well-distributed generator; seeded runs repeat.
class rng {
 public:
  explicit rng(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), up to a modulo bias of n / 2^64: nothing a cache of
  // fewer than billions of entries could notice. REQUIRES: n > 0.
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }

 private:
  std::uint64_t state_;
};

}  // namespace trellis::cache::detail
