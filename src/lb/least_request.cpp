// Least request with the power of two choices (Envoy's LEAST_REQUEST,
// HAProxy's random(2), "The Power of Two Choices in Randomized Load
// Balancing"): draw two hosts at random — in proportion to their effective
// weights — and send the request to the one with fewer active requests per
// unit of effective weight. Looking at two hosts instead of all of them
// costs O(1), and avoids the herd that an exact "least loaded" causes when
// many balancers act on the same stale counts: the most loaded host is
// never chosen, and the maximum load falls exponentially compared with
// random.
#include "detail.hpp"

namespace trellis::lb::detail {
namespace {

class least_request final : public policy {
 public:
  least_request(host_set_ptr hosts, const policy_options& options)
      : policy(std::move(hosts)),
        clock_(clock_or_steady(options.clock)),
        slow_start_(options.slow_start),
        choices_(options.least_request.choice_count),
        random_(rng::seeded(options.seed)),
        equal_weights_(equal_weights(this->hosts())) {}

  const host* pick(const request_context& context) override {
    const host_set& set = hosts();
    const std::size_t n = set.size();
    const bool ramping = slow_start_.window > duration::zero();
    const time_point now = ramping ? clock_() : time_point{};
    auto effective = [&](std::size_t k) {
      return set[k].weight() * (ramping ? slow_start_share(set[k], now, slow_start_) : 1.0);
    };
    auto draw = [&](std::size_t avoid) {
      return draw_host(
          random_, n, avoid, equal_weights_ && !ramping,
          [&](std::size_t k) { return !is_excluded(context, &set[k]); },
          [&](std::size_t k) { return is_excluded(context, &set[k]) ? 0.0 : effective(k); });
    };
    auto cost = [&](std::size_t k) { return (set[k].active_requests() + 1.0) / effective(k); };
    const std::size_t i = best_of(choices_, n, draw, cost);
    return i < n ? &set[i] : nullptr;
  }
  std::string_view name() const noexcept override { return "least_request"; }

 private:
  clock_function clock_;
  slow_start_options slow_start_;
  std::uint32_t choices_;
  rng random_;
  bool equal_weights_;
};

}  // namespace

std::unique_ptr<policy> make_least_request(host_set_ptr hosts, const policy_options& options) {
  return std::make_unique<least_request>(std::move(hosts), options);
}

}  // namespace trellis::lb::detail
