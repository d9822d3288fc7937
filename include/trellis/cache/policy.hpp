// Eviction policies: which entry leaves when a cache is full.
//
// A policy sees a cache's entries only as slots (small integers the cache
// hands out) with a weight and a hash of the key, and keeps its own order
// over them in arrays indexed by slot. It is told about inserts, hits,
// weight changes and removals, and asked for a victim when the cache is
// over capacity; the cache does the rest (the key map, values, TTLs). That
// split is what lets every policy sit behind one interface, be tested on
// bare slots, and be replayed by the simulator without values at all.
//
// The policies, each in its own file under src/cache/:
//   lru        least recently used goes first (lru.cpp)
//   lfu        least frequently used goes first, the least recent of those
//              on a tie; O(1) with a list of frequency buckets (lfu.cpp)
//   fifo       oldest insert goes first, hits change nothing (fifo.cpp)
//   random     a uniformly random entry goes (random.cpp)
//   sieve      FIFO with one "visited" bit and a hand that sweeps from the
//              oldest entry towards the newest (sieve.cpp)
//   s3fifo     a small probationary FIFO, a main FIFO with 2-bit
//              frequencies, and a ghost queue of recently evicted keys
//              (s3fifo.cpp)
//   w_tinylfu  a small LRU window in front of a segmented LRU, admission
//              decided by a 4-bit count-min frequency sketch (w_tinylfu.cpp)
// Every operation is O(1), amortised for sieve, s3fifo and w_tinylfu
// (their sweeps touch each entry a bounded number of times per eviction
// of it); docs/caching.md explains each one and the measured hit ratios.
//
// Thread-safety: NOT thread-safe; a policy belongs to one cache (shard).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace trellis::cache {

// The index of an entry in its cache's entry table.
using slot = std::uint32_t;

enum class eviction : std::uint8_t { lru, lfu, fifo, random, sieve, s3fifo, w_tinylfu };

inline constexpr std::array<eviction, 7> all_evictions = {
    eviction::lru,   eviction::lfu,    eviction::fifo,     eviction::random,
    eviction::sieve, eviction::s3fifo, eviction::w_tinylfu};

// "lru", "lfu", "fifo", "random", "sieve", "s3-fifo", "w-tinylfu".
std::string_view to_string(eviction e) noexcept;
// The inverse of to_string; also accepts "s3fifo" and "w_tinylfu".
std::optional<eviction> parse_eviction(std::string_view text) noexcept;

class policy {
 public:
  virtual ~policy() = default;

  // A new entry at `s`, of `weight` units; `hash` is a well-mixed hash of
  // its key, by which s3fifo's ghost queue and w_tinylfu's sketch recognise
  // a key that was here before. REQUIRES: s is not tracked; weight >= 1.
  virtual void insert(slot s, std::uint64_t hash, std::uint64_t weight) = 0;
  // A hit on s. REQUIRES: s is tracked.
  virtual void access(slot s) = 0;
  // s now weighs `weight` (its value was replaced). REQUIRES: s is tracked.
  virtual void reweigh(slot s, std::uint64_t weight) = 0;
  // s leaves for a reason of the cache's own (erased, expired): forget it
  // without counting it as an eviction. REQUIRES: s is tracked.
  virtual void erase(slot s) = 0;
  // Chooses the entry to evict, forgets it and returns it. The cache calls
  // it while it is over capacity; a policy with admission (w_tinylfu) may
  // return the entry just inserted, which is how it turns one away.
  // REQUIRES: size() > 0.
  virtual slot evict() = 0;
  // Entries tracked.
  virtual std::size_t size() const noexcept = 0;
  virtual eviction kind() const noexcept = 0;
};

// A policy for a cache holding up to `capacity` weight units (entries when
// every weight is 1). s3fifo and w_tinylfu size their queues from it; the
// others ignore it. `seed` drives random's choice and w_tinylfu's rare
// random admission, so a run is repeatable. REQUIRES: capacity >= 1.
std::unique_ptr<policy> make_policy(eviction kind, std::uint64_t capacity, std::uint64_t seed = 1);

}  // namespace trellis::cache
