// Ring hash (ketama consistent hashing, as nginx's `hash ... consistent`
// and Envoy's RING_HASH). Every host is hashed onto a 64-bit ring at many
// points ("virtual nodes", in proportion to its weight); a request key
// goes to the first point at or after its hash, wrapping around. Adding a
// host inserts its points and takes over only the keys just before them —
// about 1/n of all keys — where `hash % n` would move almost every key.
//
// With bounded load on, the walk continues clockwise past hosts that are
// over the bound, so a hot key spills to the same next hosts every time.
//
// The ring is built once per instance: O(points log points).
#include <algorithm>
#include <string>
#include <vector>

#include "detail.hpp"
#include "trellis/core/error.hpp"

namespace trellis::lb::detail {
namespace {

class ring_hash final : public policy {
 public:
  ring_hash(host_set_ptr hosts, const policy_options& options)
      : policy(std::move(hosts)),
        balance_factor_(options.ring_hash.bounded_load.balance_factor),
        random_(rng::seeded(options.seed)) {
    const host_set& set = this->hosts();
    const std::uint64_t per_weight = options.ring_hash.points_per_weight;
    if (set.total_weight() * per_weight > options.ring_hash.max_ring_size)
      throw core::config_error("lb.ring_hash.max_ring_size",
                               "smaller than total weight x points_per_weight");
    ring_.reserve(set.total_weight() * per_weight);
    for (std::size_t i = 0; i < set.size(); ++i) {
      // Point p of a host sits at hash("address_p"): the same place in
      // every snapshot and every process.
      const std::uint64_t points = set[i].weight() * per_weight;
      for (std::uint64_t p = 0; p < points; ++p)
        ring_.push_back(
            {hash_key(set[i].address() + "_" + std::to_string(p)), static_cast<std::uint32_t>(i)});
    }
    std::sort(ring_.begin(), ring_.end());
  }

  const host* pick(const request_context& context) override {
    if (ring_.empty()) return nullptr;
    const std::uint64_t key = context.hash ? *context.hash : random_.next();
    std::size_t at = static_cast<std::size_t>(
        std::lower_bound(ring_.begin(), ring_.end(), point{key, 0}) - ring_.begin());
    if (at == ring_.size()) at = 0;
    bounded_walk walk(hosts(), context, balance_factor_);
    if (walk.hopeless()) return nullptr;
    for (std::size_t step = 0; step < ring_.size(); ++step) {
      const std::size_t index = ring_[(at + step) % ring_.size()].host;
      if (walk.accept(index)) return &hosts()[index];
    }
    return walk.fallback();
  }
  std::string_view name() const noexcept override { return "ring_hash"; }

 private:
  struct point {
    std::uint64_t hash;
    std::uint32_t host;
    bool operator<(const point& o) const noexcept {
      return hash != o.hash ? hash < o.hash : host < o.host;
    }
  };

  std::vector<point> ring_;
  double balance_factor_;
  rng random_;
};

}  // namespace

std::unique_ptr<policy> make_ring_hash(host_set_ptr hosts, const policy_options& options) {
  return std::make_unique<ring_hash>(std::move(hosts), options);
}

}  // namespace trellis::lb::detail
