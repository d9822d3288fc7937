// LRU: one list in recency order. A hit moves the entry to the head; the
// victim is the tail, the entry unused for the longest time.
//
// Simple and good when recent use predicts the next use. Its weakness is
// scans: a burst of keys read once (a batch job, a crawler) pushes the whole
// working set out, because a key seen once a second ago counts as more
// valuable than one seen a thousand times a minute ago.
#include "policies.hpp"
#include "slot_list.hpp"

namespace trellis::cache::detail {
namespace {

class lru final : public policy {
 public:
  void insert(slot s, std::uint64_t, std::uint64_t) override {
    ensure(links_, s);
    list_.push_head(links_, s, 1);
  }
  void access(slot s) override { list_.move_to_head(links_, s, 1); }
  void reweigh(slot, std::uint64_t) override {}
  void erase(slot s) override { list_.remove(links_, s, 1); }
  slot evict() override {
    const slot victim = list_.tail;
    list_.remove(links_, victim, 1);
    return victim;
  }
  std::size_t size() const noexcept override { return list_.size; }
  eviction kind() const noexcept override { return eviction::lru; }

 private:
  std::vector<link> links_;
  slot_list list_;
};

}  // namespace

std::unique_ptr<policy> make_lru() {
  return std::make_unique<lru>();
}

}  // namespace trellis::cache::detail
