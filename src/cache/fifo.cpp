// FIFO: one list in insertion order; hits change nothing and the victim is
// the oldest insert.
//
// The cheapest policy there is (a hit writes no memory, so readers on many
// cores never contend for a list), and the baseline the modern FIFO-based
// policies (SIEVE, S3-FIFO) improve on. Alone it evicts popular keys as
// readily as cold ones.
#include "policies.hpp"
#include "slot_list.hpp"

namespace trellis::cache::detail {
namespace {

class fifo final : public policy {
 public:
  void insert(slot s, std::uint64_t, std::uint64_t) override {
    ensure(links_, s);
    list_.push_head(links_, s, 1);
  }
  void access(slot) override {}
  void reweigh(slot, std::uint64_t) override {}
  void erase(slot s) override { list_.remove(links_, s, 1); }
  slot evict() override {
    const slot victim = list_.tail;
    list_.remove(links_, victim, 1);
    return victim;
  }
  std::size_t size() const noexcept override { return list_.size; }
  eviction kind() const noexcept override { return eviction::fifo; }

 private:
  std::vector<link> links_;
  slot_list list_;
};

}  // namespace

std::unique_ptr<policy> make_fifo() {
  return std::make_unique<fifo>();
}

}  // namespace trellis::cache::detail
