// Random: each host with probability proportional to its effective weight
// (configured weight x slow-start share). No state but the random engine,
// which is why random is the baseline the other policies are measured
// against: it balances well on average and knows nothing of load.
#include "detail.hpp"

namespace trellis::lb::detail {
namespace {

class random_policy final : public policy {
 public:
  random_policy(host_set_ptr hosts, const policy_options& options)
      : policy(std::move(hosts)),
        clock_(clock_or_steady(options.clock)),
        slow_start_(options.slow_start),
        random_(rng::seeded(options.seed)),
        equal_weights_(equal_weights(this->hosts())) {}

  const host* pick(const request_context& context) override {
    const host_set& set = hosts();
    const bool ramping = slow_start_.window > duration::zero();
    const time_point now = ramping ? clock_() : time_point{};
    const std::size_t i = draw_host(
        random_, set.size(), set.size(), equal_weights_ && !ramping,
        [&](std::size_t k) { return !is_excluded(context, &set[k]); },
        [&](std::size_t k) {
          if (is_excluded(context, &set[k])) return 0.0;
          return set[k].weight() * (ramping ? slow_start_share(set[k], now, slow_start_) : 1.0);
        });
    return i < set.size() ? &set[i] : nullptr;
  }
  std::string_view name() const noexcept override { return "random"; }

 private:
  clock_function clock_;
  slow_start_options slow_start_;
  rng random_;
  bool equal_weights_;
};

}  // namespace

std::unique_ptr<policy> make_random(host_set_ptr hosts, const policy_options& options) {
  return std::make_unique<random_policy>(std::move(hosts), options);
}

}  // namespace trellis::lb::detail
