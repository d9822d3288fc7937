// The policy factory, option checks, and what every policy shares; see
// include/trellis/lb/policy.hpp. The policies live one per file beside it.
#include "trellis/lb/policy.hpp"

#include <cmath>
#include <random>
#include <string>

#include "detail.hpp"
#include "trellis/core/error.hpp"

namespace trellis::lb {

std::uint64_t hash_key(std::string_view key) noexcept {
  // FNV-1a over the bytes, then MurmurHash3's 64-bit finaliser so that keys
  // differing in one byte land far apart (FNV alone mixes the last bytes
  // poorly, which would bunch neighbouring IPs on a ring).
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

void policy::observe(const host& h, const response_outcome& outcome) {
  if (outcome.failed())
    h.record_failure();
  else
    h.record_success();
}

namespace {

void require(bool ok, const char* field, const char* what) {
  if (!ok) throw core::config_error(field, what);
}

bool is_prime(std::uint32_t n) noexcept {
  if (n < 2) return false;
  for (std::uint32_t d = 2; d <= n / d; ++d)
    if (n % d == 0) return false;
  return true;
}

void validate_bounded(const bounded_load_options& b, const char* field) {
  require(std::isfinite(b.balance_factor) && (b.balance_factor == 0 || b.balance_factor >= 1),
          field, "must be 0 (off) or at least 1");
}

}  // namespace

void validate(const policy_options& o) {
  require(o.slow_start.window >= duration::zero(), "lb.slow_start.window", "must not be negative");
  require(o.slow_start.min_weight_fraction > 0 && o.slow_start.min_weight_fraction <= 1,
          "lb.slow_start.min_weight_fraction", "must be in (0, 1]");
  require(std::isfinite(o.slow_start.aggression) && o.slow_start.aggression > 0,
          "lb.slow_start.aggression", "must be greater than 0");
  require(o.least_request.choice_count >= 2, "lb.least_request.choice_count", "must be at least 2");
  require(o.peak_ewma.decay_time > duration::zero(), "lb.peak_ewma.decay_time",
          "must be greater than 0");
  require(o.peak_ewma.failure_penalty > duration::zero(), "lb.peak_ewma.failure_penalty",
          "must be greater than 0");
  require(o.peak_ewma.choice_count >= 2, "lb.peak_ewma.choice_count", "must be at least 2");
  require(o.ring_hash.max_ring_size >= 1, "lb.ring_hash.max_ring_size", "must be at least 1");
  require(o.ring_hash.points_per_weight >= 1, "lb.ring_hash.points_per_weight",
          "must be at least 1");
  validate_bounded(o.ring_hash.bounded_load, "lb.ring_hash.bounded_load.balance_factor");
  require(is_prime(o.maglev.table_size), "lb.maglev.table_size", "must be a prime (e.g. 65537)");
  validate_bounded(o.maglev.bounded_load, "lb.maglev.bounded_load.balance_factor");
}

std::unique_ptr<policy> make_policy(std::string_view name, host_set_ptr hosts,
                                    const policy_options& options) {
  if (!hosts) throw core::config_error("lb.hosts", "no host set");
  validate(options);
  if (name == "round_robin") return detail::make_round_robin(std::move(hosts));
  if (name == "weighted_round_robin")
    return detail::make_weighted_round_robin(std::move(hosts), options);
  if (name == "least_connections") return detail::make_least_connections(std::move(hosts));
  if (name == "least_request") return detail::make_least_request(std::move(hosts), options);
  if (name == "peak_ewma") return detail::make_peak_ewma(std::move(hosts), options);
  if (name == "random") return detail::make_random(std::move(hosts), options);
  if (name == "ring_hash") return detail::make_ring_hash(std::move(hosts), options);
  if (name == "maglev") return detail::make_maglev(std::move(hosts), options);
  throw core::config_error("lb.policy", "unknown policy \"" + std::string(name) +
                                            "\" (round_robin, weighted_round_robin, "
                                            "least_connections, least_request, peak_ewma, "
                                            "random, ring_hash, maglev)");
}

namespace detail {

rng rng::seeded(std::uint64_t seed) {
  if (seed != 0) return rng(seed);
  std::random_device device;
  return rng((static_cast<std::uint64_t>(device()) << 32) ^ device());
}

double slow_start_share(const host& h, time_point now, const slow_start_options& o) noexcept {
  if (o.window <= duration::zero()) return 1.0;
  const time_point since = h.healthy_since();
  // Compared as time points: now - time_point::min() would overflow.
  if (since == time_point::min() || since <= now - o.window) return 1.0;
  const duration healthy_for = now - since;
  const double progress =
      healthy_for <= duration::zero()
          ? 0.0
          : static_cast<double>(healthy_for.count()) / static_cast<double>(o.window.count());
  return std::max(o.min_weight_fraction, std::pow(progress, 1.0 / o.aggression));
}

bool equal_weights(const host_set& hosts) noexcept {
  for (std::size_t i = 1; i < hosts.size(); ++i)
    if (hosts[i].weight() != hosts[0].weight()) return false;
  return true;
}

bounded_walk::bounded_walk(const host_set& hosts, const request_context& context,
                           double balance_factor)
    : hosts_(hosts), context_(context) {
  if (balance_factor <= 0) {
    allowed_ = hosts.size();
    for (std::size_t i = 0; i < hosts.size() && !context.exclude.empty(); ++i)
      if (is_excluded(context, &hosts[i])) --allowed_;
    return;
  }
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    if (is_excluded(context, &hosts[i])) continue;
    total += hosts[i].active_requests();
    ++allowed_;
  }
  if (allowed_ == 0) return;
  // The bound counts the request being placed: after it, no host carries
  // more than balance_factor x the mean. Some host is always under it,
  // since the least loaded carries at most the mean.
  capacity_ = static_cast<std::uint64_t>(
      std::ceil(balance_factor * static_cast<double>(total + 1) / static_cast<double>(allowed_)));
}

bool bounded_walk::accept(std::size_t index) {
  const host* h = &hosts_[index];
  if (is_excluded(context_, h)) return false;
  if (capacity_ == 0) return true;
  if (fallback_ == nullptr || h->active_requests() < fallback_->active_requests()) fallback_ = h;
  return h->active_requests() < capacity_;
}

}  // namespace detail
}  // namespace trellis::lb
