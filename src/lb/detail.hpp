// Pieces the balancing policies share: the random engine, exclusion,
// slow-start weights, and the constructors of each policy (one file each).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "trellis/lb/policy.hpp"

namespace trellis::lb::detail {

// splitmix64: a small, fast generator whose output is the same on every
// platform (std::uniform_int_distribution's is not), so a fixed seed gives
// the same picks everywhere.
class rng {
 public:
  explicit rng(std::uint64_t seed) noexcept : state_(seed) {}
  // A seed from std::random_device when `seed` is 0.
  static rng seeded(std::uint64_t seed);

  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by multiply-and-shift (Lemire); the bias is below
  // n / 2^64, far beneath anything a balancer could notice.
  // REQUIRES: n > 0.
  std::uint64_t below(std::uint64_t n) noexcept {
    __extension__ typedef unsigned __int128 u128;
    return static_cast<std::uint64_t>((static_cast<u128>(next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

inline bool is_excluded(const request_context& context, const host* h) noexcept {
  for (const host* e : context.exclude)
    if (e == h) return true;
  return false;
}

// The share of its weight a host gets under slow start, in (0, 1].
double slow_start_share(const host& h, time_point now, const slow_start_options& options) noexcept;

inline clock_function clock_or_steady(const clock_function& clock) {
  return clock ? clock : clock_function(&steady_now);
}

// Index of a host drawn with probability proportional to weight_of(i)
// (0 for a host that may not be picked); hosts.size() when all weigh 0.
// Two passes over the hosts: O(n).
template <typename WeightOf>
std::size_t weighted_draw(rng& random, std::size_t n, WeightOf weight_of) {
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += weight_of(i);
  if (total <= 0) return n;
  double point = random.unit() * total;
  std::size_t last = n;
  for (std::size_t i = 0; i < n; ++i) {
    const double w = weight_of(i);
    if (w <= 0) continue;
    last = i;
    if (point < w) return i;
    point -= w;
  }
  return last;  // rounding left `point` a hair above the last weight
}

// Index of a random host that eligible(i) allows, other than `avoid`
// when another is eligible; n when none is eligible (pass avoid = n to
// avoid nothing). When `uniform` (all weights equal, no slow start) a few
// uniform draws find one in O(1) unless most hosts are excluded;
// otherwise, or after those draws miss, weighted_draw over weight_of
// (which must be 0 for a host that is not eligible).
template <typename Eligible, typename WeightOf>
std::size_t draw_host(rng& random, std::size_t n, std::size_t avoid, bool uniform,
                      Eligible eligible, WeightOf weight_of) {
  if (n == 0) return n;
  const bool avoiding = avoid < n;
  if (uniform && n > (avoiding ? 1u : 0u)) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      // Uniform over the hosts other than `avoid`: draw from n - 1 and
      // step over it.
      auto i = static_cast<std::size_t>(random.below(avoiding ? n - 1 : n));
      if (avoiding && i >= avoid) ++i;
      if (eligible(i)) return i;
    }
  }
  const std::size_t i =
      weighted_draw(random, n, [&](std::size_t k) { return k == avoid ? 0.0 : weight_of(k); });
  if (i == n && avoiding && eligible(avoid)) return avoid;
  return i;
}

// Power of choices: draws `choices` hosts with draw(avoid), each time
// avoiding the best so far so that two choices are two different hosts
// whenever two are eligible, and returns the one of lowest cost(i); ties
// go to the earlier draw. n when draw() finds none.
template <typename Draw, typename Cost>
std::size_t best_of(std::uint32_t choices, std::size_t n, Draw draw, Cost cost) {
  std::size_t best = draw(n);
  if (best >= n) return n;
  double best_cost = cost(best);
  for (std::uint32_t c = 1; c < choices; ++c) {
    const std::size_t i = draw(best);
    if (i == best) break;  // the only eligible host
    const double i_cost = cost(i);
    if (i_cost < best_cost) {
      best = i;
      best_cost = i_cost;
    }
  }
  return best;
}

// True when every host of the set has the same weight.
bool equal_weights(const host_set& hosts) noexcept;

std::unique_ptr<policy> make_round_robin(host_set_ptr hosts);
std::unique_ptr<policy> make_weighted_round_robin(host_set_ptr hosts,
                                                  const policy_options& options);
std::unique_ptr<policy> make_least_connections(host_set_ptr hosts);
std::unique_ptr<policy> make_least_request(host_set_ptr hosts, const policy_options& options);
std::unique_ptr<policy> make_peak_ewma(host_set_ptr hosts, const policy_options& options);
std::unique_ptr<policy> make_random(host_set_ptr hosts, const policy_options& options);
std::unique_ptr<policy> make_ring_hash(host_set_ptr hosts, const policy_options& options);
std::unique_ptr<policy> make_maglev(host_set_ptr hosts, const policy_options& options);

// For ring_hash and maglev: walks the hosts a key maps to, in order of
// preference, and returns the first that is allowed and, with bounded load
// on, under the load bound. `candidate(k)` gives the k-th preference (an
// index into hosts), for k in [0, limit).
class bounded_walk {
 public:
  bounded_walk(const host_set& hosts, const request_context& context, double balance_factor);
  // True if the host may take the request; remembers the least loaded
  // allowed host seen, the fallback when all are over the bound (which only
  // happens when loads change under the walk).
  bool accept(std::size_t index);
  // True when the context excludes every host: no walk can succeed.
  bool hopeless() const noexcept { return allowed_ == 0; }
  const host* fallback() const noexcept { return fallback_; }

 private:
  const host_set& hosts_;
  const request_context& context_;
  std::size_t allowed_ = 0;     // hosts not excluded
  std::uint64_t capacity_ = 0;  // 0: unbounded
  const host* fallback_ = nullptr;
};

}  // namespace trellis::lb::detail
