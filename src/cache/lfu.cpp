// LFU in O(1): the victim is the entry with the fewest hits, and among
// entries with equally few, the one used least recently.
//
// A heap ordered by count would cost O(log n) per hit. Instead (after "An
// O(1) algorithm for implementing the LFU cache eviction scheme", 2010)
// entries with the same count share a bucket, the buckets form a list in
// increasing count, and each bucket keeps its entries in recency order:
//
//   lowest                                         highest
//   [count 1: e9 e4] -> [count 2: e7] -> [count 5: e1 e3 e2]
//             newest ... oldest
//
// A hit moves the entry from its bucket to the head of the next one
// (count + 1), creating that bucket if the counts are not adjacent and
// dropping the old one when it empties: a constant number of link writes.
// The victim is the oldest entry of the lowest bucket.
//
// Counts never decay. A key that was hot yesterday keeps its count and its
// place, which is the classic weakness of LFU: old popularity crowds out
// new. W-TinyLFU (w_tinylfu.cpp) keeps frequency but halves it
// periodically for exactly this reason.
#include "policies.hpp"
#include "slot_list.hpp"

namespace trellis::cache::detail {
namespace {

class lfu final : public policy {
 public:
  void insert(slot s, std::uint64_t, std::uint64_t) override {
    ensure(links_, s);
    ensure(bucket_of_, s, no_bucket);
    std::uint32_t b = lowest_;
    if (b == no_bucket || buckets_[b].count != 1) b = new_bucket(1, no_bucket, lowest_);
    buckets_[b].entries.push_head(links_, s, 1);
    bucket_of_[s] = b;
    ++size_;
  }

  void access(slot s) override {
    const std::uint32_t b = bucket_of_[s];
    const std::uint64_t count = buckets_[b].count;
    std::uint32_t next = buckets_[b].higher;
    if (next == no_bucket || buckets_[next].count != count + 1)
      next = new_bucket(count + 1, b, next);
    buckets_[b].entries.remove(links_, s, 1);
    buckets_[next].entries.push_head(links_, s, 1);
    bucket_of_[s] = next;
    drop_if_empty(b);
  }

  void reweigh(slot, std::uint64_t) override {}

  void erase(slot s) override {
    const std::uint32_t b = bucket_of_[s];
    buckets_[b].entries.remove(links_, s, 1);
    bucket_of_[s] = no_bucket;
    drop_if_empty(b);
    --size_;
  }

  slot evict() override {
    const slot victim = buckets_[lowest_].entries.tail;
    erase(victim);
    return victim;
  }

  std::size_t size() const noexcept override { return size_; }
  eviction kind() const noexcept override { return eviction::lfu; }

 private:
  static constexpr std::uint32_t no_bucket = no_slot;

  struct bucket {
    std::uint64_t count = 0;
    slot_list entries;
    std::uint32_t lower = no_bucket;
    std::uint32_t higher = no_bucket;
  };

  // A bucket for `count`, linked between `lower` and `higher` (either may
  // be no_bucket). Reuses freed buckets, so their number never exceeds the
  // number of distinct counts held at once.
  std::uint32_t new_bucket(std::uint64_t count, std::uint32_t lower, std::uint32_t higher) {
    std::uint32_t b;
    if (!free_.empty()) {
      b = free_.back();
      free_.pop_back();
    } else {
      b = static_cast<std::uint32_t>(buckets_.size());
      buckets_.emplace_back();
    }
    buckets_[b] = bucket{count, {}, lower, higher};
    if (lower != no_bucket)
      buckets_[lower].higher = b;
    else
      lowest_ = b;
    if (higher != no_bucket) buckets_[higher].lower = b;
    return b;
  }

  void drop_if_empty(std::uint32_t b) {
    if (!buckets_[b].entries.empty()) return;
    const std::uint32_t lower = buckets_[b].lower;
    const std::uint32_t higher = buckets_[b].higher;
    if (lower != no_bucket)
      buckets_[lower].higher = higher;
    else
      lowest_ = higher;
    if (higher != no_bucket) buckets_[higher].lower = lower;
    free_.push_back(b);
  }

  std::vector<link> links_;
  std::vector<std::uint32_t> bucket_of_;
  std::vector<bucket> buckets_;
  std::vector<std::uint32_t> free_;
  std::uint32_t lowest_ = no_bucket;
  std::size_t size_ = 0;
};

}  // namespace

std::unique_ptr<policy> make_lfu() {
  return std::make_unique<lfu>();
}

}  // namespace trellis::cache::detail
