// Hosts and snapshots; see include/trellis/lb/host.hpp.
#include "trellis/lb/host.hpp"

#include <algorithm>
#include <cmath>

#include "trellis/core/error.hpp"

namespace trellis::lb {

host::host(std::string address, std::uint32_t weight, time_point healthy_since)
    : address_(std::move(address)),
      weight_(weight),
      healthy_since_(healthy_since.time_since_epoch().count()) {
  if (weight_ == 0) throw core::config_error("lb.host.weight", "must be at least 1");
}

namespace {
// exp(-elapsed / decay_time): how much of an old average survives.
double survival(duration::rep elapsed, duration decay_time) noexcept {
  if (elapsed <= 0) return 1.0;
  return std::exp(-static_cast<double>(elapsed) / static_cast<double>(decay_time.count()));
}
}  // namespace

duration host::ewma_latency(time_point now, duration decay_time) const noexcept {
  const duration::rep stamp = ewma_stamp_.load(std::memory_order_relaxed);
  if (stamp == no_sample) return duration::zero();
  const double value = static_cast<double>(ewma_.load(std::memory_order_relaxed));
  return duration{static_cast<duration::rep>(
      value * survival(now.time_since_epoch().count() - stamp, decay_time))};
}

void host::record_latency(duration sample, time_point now, duration decay_time) const noexcept {
  const duration::rep now_ticks = now.time_since_epoch().count();
  const duration::rep previous = ewma_stamp_.exchange(now_ticks, std::memory_order_relaxed);
  const duration::rep rtt = std::max<duration::rep>(sample.count(), 0);
  // Concurrent recorders each fold their sample in with a compare-exchange;
  // the decay weight is computed from the stamp each one displaced, which
  // is exact when they do not overlap and close enough when they do.
  duration::rep old = ewma_.load(std::memory_order_relaxed);
  for (;;) {
    duration::rep next = rtt;
    if (previous != no_sample && rtt < old) {
      const double w = survival(now_ticks - previous, decay_time);
      next = static_cast<duration::rep>(static_cast<double>(old) * w +
                                        static_cast<double>(rtt) * (1.0 - w));
    }
    // else: the first sample, or a peak: taken as it is.
    if (ewma_.compare_exchange_weak(old, next, std::memory_order_relaxed)) return;
  }
}

host_set::host_set(std::vector<std::shared_ptr<const host>> hosts) : hosts_(std::move(hosts)) {
  for (const auto& h : hosts_) {
    if (!h) throw core::config_error("lb.hosts", "a host is null");
    total_weight_ += h->weight();
  }
}

std::size_t host_set::index_of(const host* h) const noexcept {
  for (std::size_t i = 0; i < hosts_.size(); ++i)
    if (hosts_[i].get() == h) return i;
  return hosts_.size();
}

host_set_ptr make_host_set(const std::vector<std::string>& addresses,
                           const std::vector<std::uint32_t>& weights) {
  if (!weights.empty() && weights.size() != addresses.size())
    throw core::config_error("lb.hosts", "one weight per address, or none");
  std::vector<std::shared_ptr<const host>> hosts;
  hosts.reserve(addresses.size());
  for (std::size_t i = 0; i < addresses.size(); ++i)
    hosts.push_back(std::make_shared<host>(addresses[i], weights.empty() ? 1 : weights[i]));
  return std::make_shared<const host_set>(std::move(hosts));
}

}  // namespace trellis::lb
