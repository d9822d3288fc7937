// memory_cache: a bounded in-memory key-value cache with a pluggable
// eviction policy, optional per-entry TTL and counters.
//
// - Capacity is counted in entries, or, with a weigher, in whatever unit
//   the weigher returns (bytes, usually): the sum of the weights never
//   exceeds `capacity` after a put returns. An entry heavier than the whole
//   cache is not stored.
// - The policy (policy.hpp) chooses victims; the cache owns keys, values,
//   weights and expiry, in a table of entries indexed by slot. Keys are
//   found through a flat open-addressing index (linear probing, at most
//   half full, backward-shift deletion) whose cells hold a slot and 32 bits
//   of the key's hash, so a probe compares keys only when those bits agree
//   and deleting never reads the entries. No allocation per entry, where a
//   node-based std::unordered_map allocates on every insert and chases a
//   pointer on every lookup. The policy and the timing wheel see only
//   slots.
// - TTL: an entry may expire at a time point; get() never returns an
//   expired entry (it checks the entry's own expiry time, so this holds
//   however coarse the wheel is). Reclaiming expired entries nobody asks for
//   is the timing wheel's job (timing_wheel.hpp): O(1) per entry, driven by
//   the cache's own calls (each put, and each get of an entry with a TTL)
//   or by purge_expired(). The clock is read only when some entry has a
//   TTL, so a cache without TTLs never reads it.
// - Time comes from options.clock (clock.hpp): tests pass a manual clock.
//
// get() returns a pointer into the cache, valid until the next call that
// is not const; the sharded and loading caches return copies instead.
//
// Thread-safety: NOT thread-safe, not even for get() (a hit updates the
// policy's order). Share one through sharded_cache, which locks per shard.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "trellis/cache/clock.hpp"
#include "trellis/cache/policy.hpp"
#include "trellis/cache/stats.hpp"
#include "trellis/cache/timing_wheel.hpp"

namespace trellis::cache {

namespace detail {
// The splitmix64 finaliser: spreads a key's std::hash (the identity for
// integers in libstdc++) over all 64 bits, for the policies' sketches and
// ghost queues and the sharded cache's choice of shard.
constexpr std::uint64_t mix(std::uint64_t h) noexcept {
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}
}  // namespace detail

template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class memory_cache {
 public:
  using key_type = K;
  using mapped_type = V;
  // The weight of an entry: any unit, as long as capacity uses the same.
  using weigher_type = std::function<std::uint64_t(const K&, const V&)>;

  struct options {
    // Entries held at most, or, with a weigher, the most total weight.
    std::uint64_t capacity = 10'000;
    // Which entry leaves when full. W-TinyLFU and S3-FIFO had the best hit
    // ratios of the seven on every Zipf-based workload of docs/caching.md,
    // within a point of each other; W-TinyLFU won more of them. S3-FIFO's
    // hits write less (a 2-bit counter, no list move). LRU suits workloads
    // where only recency predicts reuse.
    eviction policy = eviction::w_tinylfu;
    // Empty: every entry weighs 1 and capacity counts entries. Otherwise
    // called once per put; a weight of 0 counts as 1.
    weigher_type weigher;
    // Lifetime of entries stored by put() without a TTL; zero: forever.
    duration default_ttl = duration::zero();
    // Tick of the timing wheel: how late, at most, an expired entry that
    // nobody asks for is reclaimed by the cache's next call (there is no
    // background thread). Finer ticks reclaim memory sooner at the cost of
    // more wheel buckets visited per second of time. Lookups are
    // exact whatever the tick.
    duration resolution = std::chrono::milliseconds(100);
    // Where time comes from; empty: the steady clock.
    clock_function clock;
    // Seeds the random policy and W-TinyLFU's rare random admission.
    std::uint64_t seed = 1;
  };

  memory_cache() : memory_cache(options{}) {}
  explicit memory_cache(options o)
      : options_(std::move(o)),
        policy_(make_policy(options_.policy, options_.capacity, options_.seed)) {
    if (options_.capacity == 0) options_.capacity = 1;
    if (!options_.clock) options_.clock = steady_now;
    if (options_.resolution <= duration::zero()) options_.resolution = duration(1);
    epoch_ = options_.clock();
  }

  memory_cache(const memory_cache&) = delete;
  memory_cache& operator=(const memory_cache&) = delete;

  // The value stored for key, counting a hit (and telling the policy), or
  // nullptr, counting a miss. An expired entry is removed and is a miss.
  // The pointer is valid until the next non-const call.
  V* get(const K& key) {
    const slot s = find(key, hash_of(key));
    if (s == no_slot) {
      ++stats_.misses;
      return nullptr;
    }
    if (entries_[s].expires != never) {
      const time_point now = options_.clock();
      if (now >= entries_[s].expires) {
        policy_->erase(s);
        drop(s);
        ++stats_.expirations;
        ++stats_.misses;
        tick(now);
        return nullptr;
      }
      tick(now);  // never expires s: it has not expired
    }
    policy_->access(s);
    ++stats_.hits;
    return &*entries_[s].value;
  }

  // Like get(), but counts nothing, leaves the policy's order alone and
  // removes nothing: for looking without disturbing.
  const V* peek(const K& key) const {
    const slot s = find(key, hash_of(key));
    if (s == no_slot) return nullptr;
    const entry& e = entries_[s];
    if (e.expires != never && options_.clock() >= e.expires) return nullptr;
    return &*e.value;
  }

  bool contains(const K& key) const { return peek(key) != nullptr; }

  // Stores value for key with the default TTL, replacing any value there
  // (a replacement counts as a use of the entry). Evicts until the cache
  // fits. Returns whether the entry is in the cache afterwards: false when
  // it weighs more than the capacity (any old value is then erased) or the
  // policy evicted it at once.
  bool put(const K& key, V value) {
    if (options_.default_ttl > duration::zero())
      return put(key, std::move(value), options_.default_ttl);
    return store(key, std::move(value), never);
  }

  // Stores value for key, expiring `ttl` from now. A ttl <= 0 stores
  // nothing and erases the key.
  bool put(const K& key, V value, duration ttl) {
    if (ttl <= duration::zero()) {
      erase(key);
      return false;
    }
    return store(key, std::move(value), options_.clock() + ttl);
  }

  // Stores value for key, expiring at `expires` (an absolute time, as an
  // HTTP Expires header gives). A time not after now stores nothing and
  // erases the key.
  bool put_until(const K& key, V value, time_point expires) {
    if (expires <= options_.clock()) {
      erase(key);
      return false;
    }
    return store(key, std::move(value), expires);
  }

  // Removes key; returns whether it was there (expired or not).
  bool erase(const K& key) {
    const slot s = find(key, hash_of(key));
    if (s == no_slot) return false;
    policy_->erase(s);
    drop(s);
    return true;
  }

  // Removes every entry (counters stay).
  void clear() {
    std::fill(index_.begin(), index_.end(), 0);
    size_ = 0;
    entries_.clear();
    free_.clear();
    wheel_.clear();
    weight_ = 0;
    policy_ = make_policy(options_.policy, options_.capacity, options_.seed);
  }

  // Reclaims every entry whose TTL has passed; returns how many.
  std::size_t purge_expired() {
    if (wheel_.empty()) return 0;
    return tick(options_.clock());
  }

  // Entries held (some may have expired and not been reclaimed yet).
  std::size_t size() const noexcept { return size_; }
  // Total weight held (the number of entries without a weigher).
  std::uint64_t weight() const noexcept { return weight_; }
  std::uint64_t capacity() const noexcept { return options_.capacity; }
  const stats& counters() const noexcept { return stats_; }
  const options& config() const noexcept { return options_; }

 private:
  static constexpr time_point never = time_point::max();
  static constexpr slot no_slot = 0xffffffffu;

  struct entry {
    std::optional<K> key;  // empty while the slot is free
    std::optional<V> value;
    std::uint64_t hash = 0;  // detail::mix of the key's hash
    std::uint64_t weight = 0;
    time_point expires = never;
  };

  std::uint64_t hash_of(const K& key) const { return detail::mix(hasher_(key)); }

  // An index cell: (slot + 1) in the high half, the low 32 bits of the
  // key's hash in the low half; 0 is an empty cell.
  static std::uint64_t cell_of(slot s, std::uint64_t h) noexcept {
    return (static_cast<std::uint64_t>(s) + 1) << 32 | (h & 0xffffffffu);
  }
  static slot slot_of(std::uint64_t cell) noexcept { return static_cast<slot>((cell >> 32) - 1); }

  // The slot holding key, or no_slot.
  slot find(const K& key, std::uint64_t h) const {
    if (size_ == 0) return no_slot;
    const std::uint64_t tag = h & 0xffffffffu;
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const std::uint64_t cell = index_[i];
      if (cell == 0) return no_slot;
      if ((cell & 0xffffffffu) != tag) continue;
      const entry& e = entries_[slot_of(cell)];
      if (e.hash == h && equal_(*e.key, key)) return slot_of(cell);
    }
  }

  // Files slot s (hash h) in the index. REQUIRES: room for one more (see
  // grow_index).
  void index_add(slot s, std::uint64_t h) {
    std::size_t i = h & mask_;
    while (index_[i] != 0) i = (i + 1) & mask_;
    index_[i] = cell_of(s, h);
    ++size_;
  }

  // Removes slot s (hash h) from the index, shifting the rest of its probe
  // run back so that no lookup meets a hole before its key.
  void index_remove(slot s, std::uint64_t h) {
    const std::uint64_t target = cell_of(s, h);
    std::size_t i = h & mask_;
    while (index_[i] != target) i = (i + 1) & mask_;
    for (std::size_t j = (i + 1) & mask_; index_[j] != 0; j = (j + 1) & mask_) {
      const std::size_t home = index_[j] & mask_;  // the hash bits are the cell's low half
      // Move j into the hole unless its home lies cyclically in (i, j].
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        index_[i] = index_[j];
        i = j;
      }
    }
    index_[i] = 0;
    --size_;
  }

  // Doubles the index and re-files every entry held. A cell's 32 hash bits
  // locate its home while the index has at most 2^32 cells, that is for
  // caches of up to 2^31 entries (over a hundred gigabytes of entries).
  void grow_index() {
    index_.assign(std::max<std::size_t>(16, index_.size() * 2), 0);
    mask_ = index_.size() - 1;
    for (slot s = 0; s < entries_.size(); ++s) {
      if (!entries_[s].key) continue;
      std::size_t i = entries_[s].hash & mask_;
      while (index_[i] != 0) i = (i + 1) & mask_;
      index_[i] = cell_of(s, entries_[s].hash);
    }
  }

  bool store(const K& key, V&& value, time_point expires) {
    std::uint64_t w = options_.weigher ? options_.weigher(key, value) : 1;
    if (w == 0) w = 1;
    if (expires != never || !wheel_.empty()) tick(options_.clock());
    if (w > options_.capacity) {
      erase(key);
      ++stats_.rejections;
      return false;
    }
    const std::uint64_t h = hash_of(key);
    slot s = find(key, h);
    if (s == no_slot) {
      if ((size_ + 1) * 2 > index_.size()) grow_index();  // at most half full
      s = allocate();
      entry& e = entries_[s];
      e.key.emplace(key);
      e.value.emplace(std::move(value));
      e.hash = h;
      e.weight = w;
      index_add(s, h);
      weight_ += w;
      policy_->insert(s, h, w);
      ++stats_.inserts;
    } else {
      entry& e = entries_[s];
      *e.value = std::move(value);
      weight_ = weight_ - e.weight + w;
      if (e.weight != w) policy_->reweigh(s, w);
      e.weight = w;
      policy_->access(s);
      ++stats_.updates;
    }
    entries_[s].expires = expires;
    if (expires != never)
      wheel_.schedule(s, tick_of(expires));
    else
      wheel_.cancel(s);

    bool kept = true;
    while (weight_ > options_.capacity) {
      const slot victim = policy_->evict();
      if (victim == s) {
        kept = false;
        ++stats_.rejections;
      } else {
        ++stats_.evictions;
      }
      drop(victim);
    }
    return kept;
  }

  slot allocate() {
    if (!free_.empty()) {
      const slot s = free_.back();
      free_.pop_back();
      return s;
    }
    entries_.emplace_back();
    return static_cast<slot>(entries_.size() - 1);
  }

  // Forgets slot s everywhere but in the policy (the caller has told it).
  void drop(slot s) {
    entry& e = entries_[s];
    if (e.expires != never) wheel_.cancel(s);
    weight_ -= e.weight;
    index_remove(s, e.hash);
    e.key.reset();
    e.value.reset();
    e.weight = 0;
    e.expires = never;
    free_.push_back(s);
  }

  // The first wheel tick at or after t, so an entry is never reclaimed
  // before its time.
  std::uint64_t tick_of(time_point t) const {
    if (t <= epoch_) return 0;
    const auto r = options_.resolution.count();
    return static_cast<std::uint64_t>(((t - epoch_).count() + r - 1) / r);
  }

  // Moves the wheel to `now` and reclaims what it reports expired.
  std::size_t tick(time_point now) {
    const std::uint64_t t =
        now <= epoch_
            ? 0
            : static_cast<std::uint64_t>((now - epoch_).count() / options_.resolution.count());
    if (t <= wheel_.now() && wheel_.empty()) return 0;
    expired_.clear();
    wheel_.advance(t, expired_);
    for (const slot s : expired_) {
      policy_->erase(s);
      drop(s);
      ++stats_.expirations;
    }
    return expired_.size();
  }

  options options_;
  std::unique_ptr<policy> policy_;
  [[no_unique_address]] Hash hasher_;
  [[no_unique_address]] KeyEqual equal_;
  std::vector<entry> entries_;
  std::vector<std::uint64_t> index_;  // see cell_of; 0: empty
  std::size_t mask_ = 0;              // index_.size() - 1
  std::size_t size_ = 0;              // entries held
  std::vector<slot> free_;
  timing_wheel wheel_;
  time_point epoch_;
  std::uint64_t weight_ = 0;
  stats stats_;
  std::vector<slot> expired_;
};

}  // namespace trellis::cache
