// Peak EWMA (Finagle's and Linkerd's latency-aware balancer): the power of
// two choices on cost = EWMA latency x (active requests + 1).
//
// The latency average is "peak" sensitive: a sample above it replaces it
// at once, a sample below lowers it gradually (host::record_latency), so a
// host that starts to struggle is avoided immediately and trusted again
// slowly. Multiplying by active + 1 folds in the work already queued there.
//
// It is failure-aware, which a plain latency balancer is not: a host that
// answers 500 or 429 in a millisecond would otherwise look like the
// fastest host and draw all traffic into a black hole. A failed response
// is recorded as failure_penalty (or its real latency if larger), and a
// Retry-After takes the host out of the draw until it expires. A host with
// no sample yet costs nothing while idle — so a new host is tried at once —
// and the penalty while it has requests outstanding.
//
// Weights and slow start are not used: latency is the signal.
#include <algorithm>

#include "detail.hpp"

namespace trellis::lb::detail {
namespace {

class peak_ewma final : public policy {
 public:
  peak_ewma(host_set_ptr hosts, const policy_options& options)
      : policy(std::move(hosts)),
        clock_(clock_or_steady(options.clock)),
        options_(options.peak_ewma),
        random_(rng::seeded(options.seed)) {}

  const host* pick(const request_context& context) override {
    const host_set& set = hosts();
    const std::size_t n = set.size();
    const time_point now = clock_();
    auto eligible = [&](std::size_t k) {
      return !is_excluded(context, &set[k]) && set[k].retry_after() <= now;
    };
    auto draw = [&](std::size_t avoid) {
      return draw_host(random_, n, avoid, true, eligible,
                       [&](std::size_t k) { return eligible(k) ? 1.0 : 0.0; });
    };
    auto cost = [&](std::size_t k) {
      const host& h = set[k];
      const double active = h.active_requests();
      if (!h.has_latency_sample())
        return active == 0 ? 0.0 : static_cast<double>(options_.failure_penalty.count()) * active;
      return static_cast<double>(h.ewma_latency(now, options_.decay_time).count()) * (active + 1);
    };
    const std::size_t i = best_of(options_.choice_count, n, draw, cost);
    return i < n ? &set[i] : nullptr;
  }

  void observe(const host& h, const response_outcome& outcome) override {
    policy::observe(h, outcome);
    const time_point now = clock_();
    const duration latency =
        outcome.failed() ? std::max(outcome.latency, options_.failure_penalty) : outcome.latency;
    h.record_latency(latency, now, options_.decay_time);
    if (outcome.retry_after && *outcome.retry_after > now) h.set_retry_after(*outcome.retry_after);
  }

  std::string_view name() const noexcept override { return "peak_ewma"; }

 private:
  clock_function clock_;
  peak_ewma_options options_;
  rng random_;
};

}  // namespace

std::unique_ptr<policy> make_peak_ewma(host_set_ptr hosts, const policy_options& options) {
  return std::make_unique<peak_ewma>(std::move(hosts), options);
}

}  // namespace trellis::lb::detail
