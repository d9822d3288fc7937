// SIEVE ("SIEVE is Simpler than LRU", NSDI 2024): one FIFO list, one
// "visited" bit per entry, and a hand.
//
// - A new entry goes to the head of the list, not visited.
// - A hit sets the entry's visited bit, and nothing else: no list moves,
//   so a hit on a popular entry writes at most one byte, once.
// - To evict, the hand (starting at the tail, the oldest entry) walks
//   towards the head. A visited entry has its bit cleared and stays where
//   it is; the first entry found not visited is the victim. The hand then
//   rests on the next newer entry, and the next eviction continues from
//   there; past the head it wraps around to the tail.
//
//   head (newest)  H  G  F  E  D  C  B  A  tail (oldest)
//                           ^hand
//
// Unlike CLOCK, a survivor is not moved to the head: entries that proved
// themselves stay behind the hand while new entries pile up in front of it,
// so new, unproven entries are the ones the hand meets first on its next
// pass. That "quick demotion" of one-hit wonders is where SIEVE's hit ratio
// comes from. Its weakness: it keeps no memory of evicted keys, so a key
// that comes back soon after eviction starts from nothing (S3-FIFO's ghost
// queue is the fix).
#include "policies.hpp"
#include "slot_list.hpp"

namespace trellis::cache::detail {
namespace {

class sieve final : public policy {
 public:
  void insert(slot s, std::uint64_t, std::uint64_t) override {
    ensure(links_, s);
    ensure(visited_, s, std::uint8_t{0});
    visited_[s] = 0;
    list_.push_head(links_, s, 1);
  }

  void access(slot s) override { visited_[s] = 1; }
  void reweigh(slot, std::uint64_t) override {}

  void erase(slot s) override {
    if (hand_ == s) hand_ = links_[s].newer;
    list_.remove(links_, s, 1);
  }

  slot evict() override {
    slot s = hand_ != no_slot ? hand_ : list_.tail;
    while (visited_[s]) {
      visited_[s] = 0;
      s = links_[s].newer != no_slot ? links_[s].newer : list_.tail;
    }
    hand_ = links_[s].newer;
    list_.remove(links_, s, 1);
    return s;
  }

  std::size_t size() const noexcept override { return list_.size; }
  eviction kind() const noexcept override { return eviction::sieve; }

 private:
  std::vector<link> links_;
  std::vector<std::uint8_t> visited_;
  slot_list list_;
  slot hand_ = no_slot;  // no_slot: start from the tail
};

}  // namespace

std::unique_ptr<policy> make_sieve() {
  return std::make_unique<sieve>();
}

}  // namespace trellis::cache::detail
