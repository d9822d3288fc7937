// S3-FIFO ("FIFO queues are all you need for cache eviction", SOSP 2023):
// three FIFO queues.
//
//   small S (10% of capacity)   new keys; most web keys are requested once
//                               and leave from here without touching M
//   main M (the other 90%)      keys that were hit while in S, or that
//                               come back while remembered by G
//   ghost G (as much as M)      hashes of keys recently evicted from S,
//                               without their values
//
// Every resident entry has a 2-bit frequency (0-3), raised by hits.
//
// - Insert: a key whose hash is in G goes straight to M (it was evicted
//   too early last time); any other key goes to S. Either way with
//   frequency 0.
// - Evict, when S holds at least its 10% (or M is empty): take S's oldest.
//   If it was hit while in S, it moves to M with its frequency cleared and
//   the search goes on; if not, it is the victim and its hash goes to G.
// - Otherwise evict from M: its oldest entry, if its frequency is above 0,
//   goes back to M's head with the frequency lowered by one (a 2-bit
//   CLOCK); the first entry found at 0 is the victim.
//
// One-hit wonders cost one trip through the small S, so they cannot flush
// the working set out of M (scan resistance), and G gives a key that was
// demoted too quickly a way straight back. All moves are FIFO pushes and
// pops; an entry is re-queued at most three times per pass of M, so
// eviction is O(1) amortised. G is a FIFO of (hash, sequence) with a hash
// map from hash to its latest sequence; entries left behind by a key that
// came back are skipped when they reach the front, and the FIFO is
// compacted when they outnumber the live ones. The hash map is open
// addressing with linear probing (a ghost lookup happens on every insert,
// so it is worth a flat table over node-based std::unordered_map).
#include <deque>

#include "policies.hpp"
#include "slot_list.hpp"

namespace trellis::cache::detail {
namespace {

class s3fifo final : public policy {
 public:
  explicit s3fifo(std::uint64_t capacity)
      : small_target_(std::max<std::uint64_t>(1, capacity / 10)),
        ghost_capacity_(std::max<std::uint64_t>(1, capacity - small_target_)) {}

  void insert(slot s, std::uint64_t hash, std::uint64_t weight) override {
    ensure(links_, s);
    ensure(hash_, s);
    ensure(weight_, s);
    ensure(freq_, s, std::uint8_t{0});
    ensure(in_main_, s, std::uint8_t{0});
    hash_[s] = hash;
    weight_[s] = weight;
    freq_[s] = 0;
    in_main_[s] = ghost_take(hash);
    queue(s).push_head(links_, s, weight);
    ++size_;
  }

  void access(slot s) override {
    if (freq_[s] < 3) ++freq_[s];
  }

  void reweigh(slot s, std::uint64_t weight) override {
    slot_list& q = queue(s);
    q.weight = q.weight - weight_[s] + weight;
    weight_[s] = weight;
  }

  void erase(slot s) override {
    queue(s).remove(links_, s, weight_[s]);
    --size_;
  }

  slot evict() override {
    for (;;) {
      if (!small_.empty() && (small_.weight >= small_target_ || main_.empty())) {
        const slot t = small_.tail;
        small_.remove(links_, t, weight_[t]);
        if (freq_[t] > 0) {
          freq_[t] = 0;
          in_main_[t] = 1;
          main_.push_head(links_, t, weight_[t]);
          continue;
        }
        ghost_add(hash_[t], weight_[t]);
        --size_;
        return t;
      }
      const slot t = main_.tail;
      main_.remove(links_, t, weight_[t]);
      if (freq_[t] > 0) {
        --freq_[t];
        main_.push_head(links_, t, weight_[t]);
        continue;
      }
      --size_;
      return t;
    }
  }

  std::size_t size() const noexcept override { return size_; }
  eviction kind() const noexcept override { return eviction::s3fifo; }

 private:
  slot_list& queue(slot s) { return in_main_[s] ? main_ : small_; }

  // Remembers an evicted key's hash; forgets the oldest past the ghost's
  // capacity (counted in the same weight units as the cache).
  void ghost_add(std::uint64_t hash, std::uint64_t weight) {
    ghost_entry& g = ghost_.find_or_add(hash);
    ghost_weight_ = ghost_weight_ - g.weight + weight;
    g.seq = ++ghost_seq_;
    g.weight = weight;
    ghost_fifo_.push_back({hash, ghost_seq_});
    while (ghost_weight_ > ghost_capacity_) {
      const ghost_ref oldest = ghost_fifo_.front();
      ghost_fifo_.pop_front();
      ghost_entry* e = ghost_.find(oldest.hash);
      if (e && e->seq == oldest.seq) {
        ghost_weight_ -= e->weight;
        ghost_.erase(oldest.hash);
      }
    }
    if (ghost_fifo_.size() > 2 * ghost_.size() + 64) compact_ghost();
  }

  // True (and forgets it) when `hash` is remembered.
  bool ghost_take(std::uint64_t hash) {
    ghost_entry* e = ghost_.find(hash);
    if (!e) return false;
    ghost_weight_ -= e->weight;
    ghost_.erase(hash);
    return true;
  }

  void compact_ghost() {
    std::deque<ghost_ref> live;
    for (const ghost_ref& r : ghost_fifo_) {
      const ghost_entry* e = ghost_.find(r.hash);
      if (e && e->seq == r.seq) live.push_back(r);
    }
    ghost_fifo_.swap(live);
  }

  struct ghost_entry {
    std::uint64_t seq = 0;
    std::uint64_t weight = 0;
  };
  struct ghost_ref {
    std::uint64_t hash;
    std::uint64_t seq;
  };

  // Hash -> ghost_entry, open addressing with linear probing and
  // backward-shift deletion (no tombstones), at most half full.
  class ghost_map {
   public:
    std::size_t size() const noexcept { return size_; }

    ghost_entry* find(std::uint64_t hash) {
      if (cells_.empty()) return nullptr;
      hash = nonzero(hash);
      for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
        if (cells_[i].hash == hash) return &cells_[i].entry;
        if (cells_[i].hash == 0) return nullptr;
      }
    }

    ghost_entry& find_or_add(std::uint64_t hash) {
      if ((size_ + 1) * 2 > cells_.size()) grow();
      hash = nonzero(hash);
      std::size_t i = hash & mask_;
      while (cells_[i].hash != 0 && cells_[i].hash != hash) i = (i + 1) & mask_;
      if (cells_[i].hash == 0) {
        cells_[i] = {hash, {}};
        ++size_;
      }
      return cells_[i].entry;
    }

    void erase(std::uint64_t hash) {
      hash = nonzero(hash);
      std::size_t i = hash & mask_;
      while (cells_[i].hash != hash) {
        if (cells_[i].hash == 0) return;
        i = (i + 1) & mask_;
      }
      // Shift later cells of the probe run back into the hole, unless a
      // cell's home position lies (cyclically) after the hole.
      for (std::size_t j = (i + 1) & mask_; cells_[j].hash != 0; j = (j + 1) & mask_) {
        const std::size_t home = cells_[j].hash & mask_;
        if (((j - home) & mask_) >= ((j - i) & mask_)) {
          cells_[i] = cells_[j];
          i = j;
        }
      }
      cells_[i] = {};
      --size_;
    }

   private:
    struct cell {
      std::uint64_t hash = 0;  // 0: empty
      ghost_entry entry;
    };
    static std::uint64_t nonzero(std::uint64_t hash) noexcept { return hash ? hash : 1; }

    void grow() {
      std::vector<cell> old = std::move(cells_);
      cells_.assign(std::max<std::size_t>(64, old.size() * 2), cell{});
      mask_ = cells_.size() - 1;
      size_ = 0;
      for (const cell& c : old) {
        if (c.hash == 0) continue;
        std::size_t i = c.hash & mask_;
        while (cells_[i].hash != 0) i = (i + 1) & mask_;
        cells_[i] = c;
        ++size_;
      }
    }

    std::vector<cell> cells_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
  };

  const std::uint64_t small_target_;
  const std::uint64_t ghost_capacity_;
  std::vector<link> links_;
  std::vector<std::uint64_t> hash_;
  std::vector<std::uint64_t> weight_;
  std::vector<std::uint8_t> freq_;
  std::vector<std::uint8_t> in_main_;
  slot_list small_;
  slot_list main_;
  std::size_t size_ = 0;
  ghost_map ghost_;
  std::deque<ghost_ref> ghost_fifo_;
  std::uint64_t ghost_weight_ = 0;
  std::uint64_t ghost_seq_ = 0;
};

}  // namespace

std::unique_ptr<policy> make_s3fifo(std::uint64_t capacity) {
  return std::make_unique<s3fifo>(capacity);
}

}  // namespace trellis::cache::detail
