// Random: the victim is drawn uniformly from the resident entries.
//
// Keeps no order at all: a dense array of the resident slots and each
// slot's position in it, so removal is a swap with the last element. It
// has no pathological pattern (a loop slightly larger than the cache, which
// gives LRU and FIFO zero hits, still hits often), which is why some CPU
// caches use it; on skewed workloads it does about as well as FIFO.
#include "policies.hpp"
#include "slot_list.hpp"

namespace trellis::cache::detail {
namespace {

class random_policy final : public policy {
 public:
  explicit random_policy(std::uint64_t seed) : rng_(seed) {}

  void insert(slot s, std::uint64_t, std::uint64_t) override {
    ensure(position_, s, no_slot);
    position_[s] = static_cast<slot>(resident_.size());
    resident_.push_back(s);
  }
  void access(slot) override {}
  void reweigh(slot, std::uint64_t) override {}
  void erase(slot s) override {
    const slot at = position_[s];
    const slot last = resident_.back();
    resident_[at] = last;
    position_[last] = at;
    resident_.pop_back();
    position_[s] = no_slot;
  }
  slot evict() override {
    const slot victim = resident_[rng_.below(resident_.size())];
    erase(victim);
    return victim;
  }
  std::size_t size() const noexcept override { return resident_.size(); }
  eviction kind() const noexcept override { return eviction::random; }

 private:
  rng rng_;
  std::vector<slot> resident_;
  std::vector<slot> position_;
};

}  // namespace

std::unique_ptr<policy> make_random(std::uint64_t seed) {
  return std::make_unique<random_policy>(seed);
}

}  // namespace trellis::cache::detail
