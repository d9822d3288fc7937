// sharded_cache: a memory_cache that many threads share, split into
// independently locked shards.
//
// One lock over one cache makes every core queue behind it: even a hit
// writes (the policy's order), so a reader-writer lock would not help. A
// key's shard is chosen by the top bits of its mixed hash, and each shard is
// a memory_cache with its own mutex, on its own cache line, holding
// capacity / shards. Threads touching different keys then contend only
// when their keys share a shard; with 16 shards and a few cores, rarely.
//
// What sharding costs: each shard evicts on its own, so a hot shard can
// evict while a cold one has room (the hit ratio is that of `shards`
// smaller caches, measurably lower only when the capacity per shard is
// small), and counters are summed on demand. Values are returned by copy,
// made under the shard's lock: store a std::shared_ptr<const T> for large
// values.
//
// This is the state that trellis shares across workers (ARCHITECTURE,
// principle 4); everything else in a worker is lock-free by ownership.
//
// Thread-safety: every member function may be called from any thread.
#pragma once

#include <bit>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "trellis/cache/memory_cache.hpp"

namespace trellis::cache {

template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class sharded_cache {
 public:
  using shard_cache = memory_cache<K, V, Hash, KeyEqual>;
  using key_type = K;
  using mapped_type = V;

  struct options {
    // The whole cache: capacity is the total, split evenly (rounded up)
    // between the shards; the other fields apply to every shard.
    typename shard_cache::options cache;
    // Number of shards, rounded up to a power of two and lowered to the
    // capacity when that is smaller (every shard holds at least one entry).
    // More shards, less contention; 16 keeps it rare on a few cores.
    std::size_t shards = 16;
  };

  sharded_cache() : sharded_cache(options{}) {}
  explicit sharded_cache(options o) {
    std::size_t n = std::bit_ceil(std::max<std::size_t>(o.shards, 1));
    const std::uint64_t capacity = std::max<std::uint64_t>(o.cache.capacity, 1);
    while (n > 1 && n > capacity) n /= 2;
    bits_ = static_cast<unsigned>(std::countr_zero(n));
    typename shard_cache::options each = o.cache;
    each.capacity = (capacity + n - 1) / n;
    shards_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      each.seed = o.cache.seed + i;
      shards_.push_back(std::make_unique<shard>(each));
    }
  }

  // A copy of key's value, counting a hit, or nullopt, counting a miss.
  std::optional<V> get(const K& key) {
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    if (V* v = s.cache.get(key)) return *v;
    return std::nullopt;
  }

  // A copy of key's value without counting or touching the policy.
  std::optional<V> peek(const K& key) const {
    const shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    if (const V* v = s.cache.peek(key)) return *v;
    return std::nullopt;
  }

  // As memory_cache::put: stores with the default TTL; returns whether the
  // entry is in the cache afterwards.
  bool put(const K& key, V value) {
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    return s.cache.put(key, std::move(value));
  }
  bool put(const K& key, V value, duration ttl) {
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    return s.cache.put(key, std::move(value), ttl);
  }
  bool put_until(const K& key, V value, time_point expires) {
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    return s.cache.put_until(key, std::move(value), expires);
  }

  bool erase(const K& key) {
    shard& s = shard_for(key);
    std::lock_guard lock(s.mutex);
    return s.cache.erase(key);
  }

  void clear() {
    for (auto& s : shards_) {
      std::lock_guard lock(s->mutex);
      s->cache.clear();
    }
  }

  std::size_t purge_expired() {
    std::size_t n = 0;
    for (auto& s : shards_) {
      std::lock_guard lock(s->mutex);
      n += s->cache.purge_expired();
    }
    return n;
  }

  // Totals over the shards, each read under its lock (so a consistent
  // snapshot per shard, not across shards).
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s->mutex);
      n += s->cache.size();
    }
    return n;
  }
  std::uint64_t weight() const {
    std::uint64_t w = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s->mutex);
      w += s->cache.weight();
    }
    return w;
  }
  stats counters() const {
    stats total;
    for (const auto& s : shards_) {
      std::lock_guard lock(s->mutex);
      total += s->cache.counters();
    }
    return total;
  }

  std::size_t shard_count() const noexcept { return shards_.size(); }
  // The capacity of each shard.
  std::uint64_t shard_capacity() const noexcept { return shards_.front()->cache.capacity(); }

 private:
  // Aligned so that two shards' locks never share a cache line.
  struct alignas(64) shard {
    explicit shard(const typename shard_cache::options& o) : cache(o) {}
    mutable std::mutex mutex;
    shard_cache cache;
  };

  std::size_t index_of(const K& key) const {
    if (bits_ == 0) return 0;
    return static_cast<std::size_t>(detail::mix(Hash{}(key)) >> (64 - bits_));
  }
  shard& shard_for(const K& key) { return *shards_[index_of(key)]; }
  const shard& shard_for(const K& key) const { return *shards_[index_of(key)]; }

  unsigned bits_ = 0;
  std::vector<std::unique_ptr<shard>> shards_;
};

}  // namespace trellis::cache
