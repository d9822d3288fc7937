// W-TinyLFU ("TinyLFU: A Highly Efficient Cache Admission Policy", ACM
// Transactions on Storage 2017; the policy of Java's Caffeine): an LRU
// window in front of a segmented LRU, with admission to the latter decided
// by how often each key was requested lately.
//
//   window (1%)  --overflow-->  candidate  vs  victim  <-- probation (20% of main)
//   LRU                                        (the oldest)   ^ demoted |  | hit
//                                                        protected (80% of main)
//
// - Every insert and hit counts the key in a frequency sketch: a
//   count-min sketch of 4-bit counters, four per key, whose estimate is the
//   smallest of the four. It remembers keys that are not in the cache,
//   which is what lets a popular key that was evicted win its way back. When
//   the sketch has counted ten times its size, every counter is halved, so
//   popularity ages: what was hot an hour ago counts for less than what is
//   hot now (LFU's staleness, fixed).
// - New entries go to the window. While the main region has room, entries
//   overflowing the window move to probation freely.
// - When the cache is full, the window's oldest entry (the candidate) meets
//   probation's oldest (the victim): the candidate is admitted only if the
//   sketch says it is requested more often; the loser leaves. So a burst of
//   one-time keys passes through the 1% window and is turned away at the
//   door, and the main region keeps the keys that are popular over time.
// - A hit in probation promotes the entry to protected; protected's oldest
//   is demoted back to probation when protected outgrows its 80%.
// - A candidate as frequent as 6 or more that loses anyway is admitted one
//   time in 128 (seeded, so runs repeat): without that, an attacker who can
//   choose keys could pin a victim in place by inflating its sketch count
//   through hash collisions.
//
// Caffeine also tunes the window's size by hill climbing; this one keeps it
// at 1%, the size the paper found best for most web workloads. The sketch
// is sized by entries: when a cache counted in bytes holds more entries than
// the sketch was sized for, the sketch doubles (and starts counting afresh).
#include <bit>

#include "policies.hpp"
#include "slot_list.hpp"

namespace trellis::cache::detail {
namespace {

class frequency_sketch {
 public:
  explicit frequency_sketch(std::uint64_t entries) { resize(entries); }

  std::uint64_t entries() const noexcept { return entries_; }

  // Sizes the sketch for `entries` keys (rounded up to a power of two) and
  // forgets every count.
  void resize(std::uint64_t entries) {
    entries_ = std::bit_ceil(std::max<std::uint64_t>(entries, 16));
    counters_mask_ = entries_ * 16 - 1;  // sixteen counters (one word) per expected key
    table_.assign(entries_, 0);
    additions_ = 0;
    sample_ = entries_ * 10;
  }

  // Conservative update: only the counters at the current minimum go up.
  // The others already over-count (collisions put other keys' requests in
  // them), and raising them too would only add to that error.
  void increment(std::uint64_t hash) {
    const std::uint64_t least = estimate(hash);
    if (least == 15) return;
    for (int i = 0; i < 4; ++i) {
      const std::uint64_t c = index(hash, i);
      std::uint64_t& word = table_[c >> 4];
      const unsigned shift = static_cast<unsigned>(c & 15) * 4;
      if (((word >> shift) & 15) == least) word += std::uint64_t{1} << shift;
    }
    if (++additions_ >= sample_) age();
  }

  std::uint64_t estimate(std::uint64_t hash) const {
    std::uint64_t least = 15;
    for (int i = 0; i < 4; ++i) {
      const std::uint64_t c = index(hash, i);
      least = std::min(least, (table_[c >> 4] >> (static_cast<unsigned>(c & 15) * 4)) & 15);
    }
    return least;
  }

 private:
  // Four counter positions from one 64-bit hash by double hashing: the two
  // halves of the hash, the second forced odd so the four positions differ.
  std::uint64_t index(std::uint64_t hash, int i) const {
    const std::uint64_t h1 = hash & 0xffffffffu;
    const std::uint64_t h2 = (hash >> 32) | 1;
    return (h1 + static_cast<std::uint64_t>(i) * h2) & counters_mask_;
  }

  // Halves every counter: shift each word right by one and clear the bit
  // that crossed into each counter from its neighbour.
  void age() {
    for (std::uint64_t& word : table_) word = (word >> 1) & 0x7777777777777777ull;
    additions_ /= 2;
  }

  std::uint64_t entries_ = 0;
  std::uint64_t counters_mask_ = 0;
  std::vector<std::uint64_t> table_;
  std::uint64_t additions_ = 0;
  std::uint64_t sample_ = 0;
};

class w_tinylfu final : public policy {
 public:
  w_tinylfu(std::uint64_t capacity, std::uint64_t seed)
      : window_target_(std::max<std::uint64_t>(1, capacity / 100)),
        main_target_(capacity > window_target_ ? capacity - window_target_ : 0),
        protected_target_(main_target_ * 8 / 10),
        sketch_(std::min<std::uint64_t>(capacity, std::uint64_t{1} << 16)),
        rng_(seed) {}

  void insert(slot s, std::uint64_t hash, std::uint64_t weight) override {
    ensure(links_, s);
    ensure(hash_, s);
    ensure(weight_, s);
    ensure(region_, s, window);
    hash_[s] = hash;
    weight_[s] = weight;
    region_[s] = window;
    if (++size_ > sketch_.entries() && sketch_.entries() < max_sketch_entries)
      sketch_.resize(sketch_.entries() * 2);
    sketch_.increment(hash);
    window_.push_head(links_, s, weight);
    // While the main region has room, the window's overflow moves there
    // without a contest.
    while (window_.weight > window_target_ && window_.size > 1) {
      const slot t = window_.tail;
      if (main_weight() + weight_[t] > main_target_) break;
      move(t, probation);
    }
  }

  void access(slot s) override {
    sketch_.increment(hash_[s]);
    switch (region_[s]) {
      case window: window_.move_to_head(links_, s, weight_[s]); break;
      case protected_region: protected_.move_to_head(links_, s, weight_[s]); break;
      case probation:
        move(s, protected_region);
        while (protected_.weight > protected_target_ && protected_.tail != s)
          move(protected_.tail, probation);
        break;
    }
  }

  void reweigh(slot s, std::uint64_t weight) override {
    slot_list& l = list(region_[s]);
    l.weight = l.weight - weight_[s] + weight;
    weight_[s] = weight;
  }

  void erase(slot s) override {
    list(region_[s]).remove(links_, s, weight_[s]);
    --size_;
  }

  slot evict() override {
    const bool main_empty = probation_.empty() && protected_.empty();
    slot out;
    if (!window_.empty() && (window_.weight > window_target_ || main_empty)) {
      const slot candidate = window_.tail;
      if (main_empty) {
        out = candidate;
      } else {
        const slot victim = !probation_.empty() ? probation_.tail : protected_.tail;
        if (admit(hash_[candidate], hash_[victim])) {
          move(candidate, probation);
          out = victim;
        } else {
          out = candidate;
        }
      }
    } else {
      out = !probation_.empty() ? probation_.tail : protected_.tail;
    }
    erase(out);
    return out;
  }

  std::size_t size() const noexcept override { return size_; }
  eviction kind() const noexcept override { return eviction::w_tinylfu; }

 private:
  enum region_id : std::uint8_t { window, probation, protected_region };
  static constexpr std::uint64_t max_sketch_entries = std::uint64_t{1} << 26;

  slot_list& list(region_id r) {
    return r == window ? window_ : r == probation ? probation_ : protected_;
  }
  std::uint64_t main_weight() const noexcept { return probation_.weight + protected_.weight; }

  // Moves s to the head of region r.
  void move(slot s, region_id r) {
    list(region_[s]).remove(links_, s, weight_[s]);
    region_[s] = r;
    list(r).push_head(links_, s, weight_[s]);
  }

  bool admit(std::uint64_t candidate, std::uint64_t victim) {
    const std::uint64_t c = sketch_.estimate(candidate);
    if (c > sketch_.estimate(victim)) return true;
    return c >= 6 && (rng_.next() & 127) == 0;
  }

  const std::uint64_t window_target_;
  const std::uint64_t main_target_;
  const std::uint64_t protected_target_;
  frequency_sketch sketch_;
  rng rng_;
  std::vector<link> links_;
  std::vector<std::uint64_t> hash_;
  std::vector<std::uint64_t> weight_;
  std::vector<region_id> region_;
  slot_list window_;
  slot_list probation_;
  slot_list protected_;
  std::size_t size_ = 0;
};

}  // namespace

std::unique_ptr<policy> make_w_tinylfu(std::uint64_t capacity, std::uint64_t seed) {
  return std::make_unique<w_tinylfu>(capacity, seed);
}

}  // namespace trellis::cache::detail
