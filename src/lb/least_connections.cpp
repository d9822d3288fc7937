// Least connections (nginx least_conn, HAProxy leastconn): the host with
// the fewest active requests per unit of weight, found by scanning every
// host — O(n), exact. Ties are broken in turn: the scan starts after the
// host picked last, so equally loaded hosts share the work rather than the
// first one taking it all. least_request gets nearly the same balance in
// O(1) by looking at two hosts only.
#include "detail.hpp"

namespace trellis::lb::detail {
namespace {

class least_connections final : public policy {
 public:
  explicit least_connections(host_set_ptr hosts) : policy(std::move(hosts)) {}

  const host* pick(const request_context& context) override {
    const host_set& set = hosts();
    const std::size_t n = set.size();
    const host* best = nullptr;
    std::size_t best_index = 0;
    for (std::size_t step = 0; step < n; ++step) {
      std::size_t i = start_ + step;  // (start_ + step) % n, without a division
      if (i >= n) i -= n;
      const host& h = set[i];
      if (is_excluded(context, &h)) continue;
      // active/weight < best_active/best_weight, without division.
      if (best == nullptr || std::uint64_t{h.active_requests()} * best->weight() <
                                 std::uint64_t{best->active_requests()} * h.weight()) {
        best = &h;
        best_index = i;
      }
    }
    if (best != nullptr) start_ = best_index + 1 == n ? 0 : best_index + 1;
    return best;
  }
  std::string_view name() const noexcept override { return "least_connections"; }

 private:
  std::size_t start_ = 0;
};

}  // namespace

std::unique_ptr<policy> make_least_connections(host_set_ptr hosts) {
  return std::make_unique<least_connections>(std::move(hosts));
}

}  // namespace trellis::lb::detail
