// What a cache counts: hits, misses, what left and why, and what loading
// cost.
//
// A cache's counters are plain numbers owned by the cache (a single-thread
// cache updates them in place; the sharded cache adds its shards' counters
// up when asked). The load counters are kept by the caches that load
// (loading_cache and the strategies built on it): how many loads ran, how
// many failed, and how long they took in total and the last time, which is
// what tells an operator whether the backing store is the slow part.
//
// Thread-safety: a value type; one writer or many readers.
#pragma once

#include <chrono>
#include <cstdint>

namespace trellis::cache {

struct stats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;         // lookups that found nothing (expired entries included)
  std::uint64_t inserts = 0;        // new keys stored
  std::uint64_t updates = 0;        // values replaced for keys already stored
  std::uint64_t evictions = 0;      // entries removed to make room (the policy chose them)
  std::uint64_t expirations = 0;    // entries removed because their TTL passed
  std::uint64_t rejections = 0;     // puts not kept: heavier than the whole cache, or an
                                    // entry the policy turned away at once (W-TinyLFU)
  std::uint64_t loads = 0;          // loader calls that returned a value
  std::uint64_t load_failures = 0;  // loader calls that returned an error or threw
  std::uint64_t refreshes = 0;      // loader calls made early, before expiry (XFetch)
  std::chrono::nanoseconds total_load_time{0};  // over all loader calls, failed ones too
  std::chrono::nanoseconds last_load_time{0};   // of the most recent loader call

  std::uint64_t lookups() const noexcept { return hits + misses; }
  // hits / lookups, or 0 before the first lookup.
  double hit_ratio() const noexcept {
    return lookups() == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups());
  }

  // Adds another cache's counters (the sharded cache sums its shards this
  // way). last_load_time becomes the other's when the other has loaded.
  stats& operator+=(const stats& o) noexcept {
    hits += o.hits;
    misses += o.misses;
    inserts += o.inserts;
    updates += o.updates;
    evictions += o.evictions;
    expirations += o.expirations;
    rejections += o.rejections;
    loads += o.loads;
    load_failures += o.load_failures;
    refreshes += o.refreshes;
    total_load_time += o.total_load_time;
    if (o.loads + o.load_failures > 0) last_load_time = o.last_load_time;
    return *this;
  }
};

}  // namespace trellis::cache
