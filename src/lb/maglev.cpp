// Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
// Network Load Balancer", NSDI 2016; Envoy's MAGLEV). Every host has a
// preference list: a permutation of the table's slots given by an offset
// and a skip derived from two hashes of its address. Hosts take turns
// claiming their next preferred free slot until the table (a prime size,
// 65537 by default) is full; a key goes to table[hash % size]. A lookup is
// one array read, the table spreads keys evenly (each host's share is
// within about 1% of its weight's share when the table is 100x the hosts),
// and adding a host moves little more than the 1/n keys it must take.
//
// Weights: in each round a host claims a slot only while the slots it holds
// stay below round x weight / max weight, so the heaviest host claims one
// per round and the others in proportion.
//
// With bounded load on, a key whose host is over the bound walks the table
// forwards from its slot; neighbouring slots belong to effectively random
// hosts, but always the same ones for the same key.
#include <algorithm>
#include <limits>
#include <vector>

#include "detail.hpp"
#include "trellis/core/error.hpp"

namespace trellis::lb::detail {
namespace {

class maglev final : public policy {
 public:
  maglev(host_set_ptr hosts, const policy_options& options)
      : policy(std::move(hosts)),
        balance_factor_(options.maglev.bounded_load.balance_factor),
        random_(rng::seeded(options.seed)) {
    const host_set& set = this->hosts();
    const std::uint64_t size = options.maglev.table_size;
    if (set.empty()) return;
    if (set.size() > size)
      throw core::config_error("lb.maglev.table_size", "must be at least the number of hosts");

    struct preference {
      std::uint64_t offset, skip, next = 0, claimed = 0;
      double share;  // weight / max weight
    };
    std::uint32_t max_weight = 0;
    for (std::size_t i = 0; i < set.size(); ++i) max_weight = std::max(max_weight, set[i].weight());
    std::vector<preference> prefs;
    prefs.reserve(set.size());
    for (std::size_t i = 0; i < set.size(); ++i) {
      const std::string& address = set[i].address();
      prefs.push_back({hash_key(address) % size, hash_key(address + "#skip") % (size - 1) + 1, 0, 0,
                       static_cast<double>(set[i].weight()) / max_weight});
    }

    constexpr std::uint32_t empty = std::numeric_limits<std::uint32_t>::max();
    table_.assign(size, empty);
    std::uint64_t filled = 0;
    for (std::uint64_t round = 1; filled < size; ++round) {
      for (std::size_t i = 0; i < prefs.size() && filled < size; ++i) {
        preference& p = prefs[i];
        if (static_cast<double>(p.claimed) >= static_cast<double>(round) * p.share) continue;
        std::uint64_t slot;
        do {  // the host's next preferred slot that is still free
          slot = (p.offset + p.next * p.skip) % size;
          ++p.next;
        } while (table_[slot] != empty);
        table_[slot] = static_cast<std::uint32_t>(i);
        ++p.claimed;
        ++filled;
      }
    }
  }

  const host* pick(const request_context& context) override {
    if (table_.empty()) return nullptr;
    const std::uint64_t key = context.hash ? *context.hash : random_.next();
    const std::size_t size = table_.size();
    const std::size_t at = static_cast<std::size_t>(key % size);
    bounded_walk walk(hosts(), context, balance_factor_);
    if (walk.hopeless()) return nullptr;
    for (std::size_t step = 0; step < size; ++step) {
      const std::size_t index = table_[(at + step) % size];
      if (walk.accept(index)) return &hosts()[index];
    }
    return walk.fallback();
  }
  std::string_view name() const noexcept override { return "maglev"; }

 private:
  std::vector<std::uint32_t> table_;  // slot -> host index
  double balance_factor_;
  rng random_;
};

}  // namespace

std::unique_ptr<policy> make_maglev(host_set_ptr hosts, const policy_options& options) {
  return std::make_unique<maglev>(std::move(hosts), options);
}

}  // namespace trellis::lb::detail
