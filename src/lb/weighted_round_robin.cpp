// Smooth weighted round robin, as nginx's ngx_http_upstream_round_robin.c.
//
// Each host has a current weight, starting at 0. On every pick, every
// host's current weight grows by its effective weight; the host with the
// largest current weight is chosen and its current weight drops by the sum
// of all effective weights. Over one cycle of sum(weights) picks each host
// is chosen exactly weight times, and its picks are spread out rather than
// bunched: weights {5,1,1} give a a b a c a a, where a plain weighted
// round robin would give a a a a a b c.
//
// Effective weights are the configured weights scaled by slow start. They
// are kept in thousandths, so that a host at 10% of weight 1 still has a
// whole number, and a host's share can grow smoothly.
#include <cmath>
#include <vector>

#include "detail.hpp"

namespace trellis::lb::detail {
namespace {

class weighted_round_robin final : public policy {
 public:
  weighted_round_robin(host_set_ptr hosts, const policy_options& options)
      : policy(std::move(hosts)),
        clock_(clock_or_steady(options.clock)),
        slow_start_(options.slow_start),
        current_(this->hosts().size(), 0) {
    full_.reserve(this->hosts().size());
    for (std::size_t i = 0; i < this->hosts().size(); ++i)
      full_.push_back(static_cast<std::int64_t>(this->hosts()[i].weight() * scale));
  }

  const host* pick(const request_context& context) override {
    const std::size_t n = hosts().size();
    const bool ramping = slow_start_.window > duration::zero();
    const time_point now = ramping ? clock_() : time_point{};
    std::int64_t total = 0;
    std::size_t best = n;
    for (std::size_t i = 0; i < n; ++i) {
      const host& h = hosts()[i];
      if (is_excluded(context, &h)) continue;
      const std::int64_t effective = ramping ? ramped_weight(h, now) : full_[i];
      current_[i] += effective;
      total += effective;
      if (best == n || current_[i] > current_[best]) best = i;
    }
    if (best == n) return nullptr;
    current_[best] -= total;
    return &hosts()[best];
  }
  std::string_view name() const noexcept override { return "weighted_round_robin"; }

 private:
  static constexpr double scale = 1000;

  std::int64_t ramped_weight(const host& h, time_point now) const {
    const double share = slow_start_share(h, now, slow_start_);
    const auto w = static_cast<std::int64_t>(std::llround(h.weight() * scale * share));
    return w > 0 ? w : 1;
  }

  clock_function clock_;
  slow_start_options slow_start_;
  std::vector<std::int64_t> full_;     // per host: weight x scale, without slow start
  std::vector<std::int64_t> current_;  // per host, in thousandths of a weight
};

}  // namespace

std::unique_ptr<policy> make_weighted_round_robin(host_set_ptr hosts,
                                                  const policy_options& options) {
  return std::make_unique<weighted_round_robin>(std::move(hosts), options);
}

}  // namespace trellis::lb::detail
