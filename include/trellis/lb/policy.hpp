// Load-balancing policies: which upstream host receives the next request.
//
// A policy is made from one immutable host_set snapshot and answers
// pick(context) with a host of that snapshot, or nullptr when no host may
// take the request. The policies, each in its own file under src/lb/:
//   round_robin           each host in turn (round_robin.cpp)
//   weighted_round_robin  nginx's smooth weighted round robin: weights
//                         {5,1,1} give a a b a c a a, spreading the heavy
//                         host's turns out (weighted_round_robin.cpp)
//   least_connections     fewest active requests per unit of weight, ties
//                         taken in turn (least_connections.cpp)
//   least_request         power of two choices (Envoy, HAProxy random(2)):
//                         draw two hosts at random, keep the one with fewer
//                         active requests per unit of weight
//                         (least_request.cpp)
//   peak_ewma             power of two choices on cost = peak-EWMA latency
//                         x (active + 1) (Finagle, Linkerd); failed
//                         responses count as a penalty latency, so a host
//                         that fails fast does not look fast, and a
//                         Retry-After keeps a host out until it expires
//                         (peak_ewma.cpp)
//   random                weighted random (random.cpp)
//   ring_hash             ketama consistent hashing on a ring of virtual
//                         nodes (ring_hash.cpp)
//   maglev                Google's Maglev lookup table, 65537 entries by
//                         default (maglev.cpp)
// Cost of a pick: O(1) for round_robin, peak_ewma and maglev, and for
// random and least_request while all weights are equal; O(log points) for
// ring_hash; O(n) for weighted_round_robin and least_connections (both
// scan every host, as nginx does), for random and least_request with
// unequal weights or a host in slow start (a weighted draw scans the
// weights), and for ring_hash and maglev with bounded load on (they sum
// the hosts' loads). bench/lb_bench.cpp measures each.
// Weighted round robin, least request and random honour slow start: a host
// that became healthy less than `slow_start.window` ago gets a share of its
// weight that grows from `min_weight_fraction` to 1 (Envoy's curve).
// ring_hash and maglev accept a bounded load (consistent hashing with
// bounded loads, as HAProxy's hash-balance-factor and Envoy's
// hash_balance_factor): a host already above balance_factor x the mean
// load is passed over for the next one the key would map to.
//
// Threading: shared-nothing. A policy object keeps per-pick state (the
// round-robin cursor, the smooth-WRR current weights, its random engine)
// without atomics or locks, so it is NOT thread-safe: each worker makes
// its own instance from the same snapshot. What workers must agree on —
// active requests, latency, Retry-After — lives in the hosts' atomics, so
// least_request on one worker sees the requests another worker sent.
// When the cluster changes, the owner builds a new snapshot and new
// policy instances (round robin restarts; consistent hashing rebuilds its
// ring, which moves only about 1/n of the keys). A known cost of this
// choice: every worker builds its own ring or Maglev table (256 KiB for
// 65537 entries); they are immutable and could be shared, which is left
// for when a cluster has enough workers and hosts for it to matter.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "trellis/lb/host.hpp"

namespace trellis::lb {

// What a policy may know about the request being placed.
struct request_context {
  // The request's hash key for ring_hash and maglev: the hash of the
  // client address, a header, a cookie or the path, as the route is
  // configured (hash_policy::key() in hash_policy.hpp). Without one those
  // policies pick at random. Other policies ignore it.
  std::optional<std::uint64_t> hash;
  // Hosts that must not be picked: the ones a retry already tried, so a
  // retry goes "to a different host". A few entries; searched linearly.
  std::span<const host* const> exclude;
};

// A well-mixed 64-bit hash of a key (the client IP, a header's value...),
// stable across processes and platforms so that every proxy instance maps
// a key to the same host.
std::uint64_t hash_key(std::string_view key) noexcept;

// How a response turned out, as reported back to the policy that picked
// the host. The proxy calls observe() once per response.
struct response_outcome {
  duration latency{};  // request sent to response headers received
  int status = 0;      // HTTP status; 0 when no response came (connect
                       // error, reset, timeout): a failure
  // The Retry-After of a 429 or 503, converted by the caller to a time on
  // the policy's clock.
  std::optional<time_point> retry_after;

  bool failed() const noexcept { return status == 0 || status >= 500 || status == 429; }
};

// Slow start: a host that became healthy recently takes a growing share
// of its weight (Envoy's slow_start_config). share(t) =
// max(min_weight_fraction, (t / window) ^ (1 / aggression)).
struct slow_start_options {
  // Length of the ramp. Default 0: slow start off. Trade-off: a longer
  // window protects a cold host (empty caches, JIT) longer but leaves
  // capacity idle after every restart.
  duration window{};
  // Share of its weight a host gets at the start of the ramp. In (0, 1];
  // default 0.1. Too small and a new host hardly gets traffic to warm up.
  double min_weight_fraction = 0.1;
  // Curve shape: 1 is linear; above 1 the share rises fast at first.
  // > 0; default 1.
  double aggression = 1.0;
};

struct least_request_options {
  // Hosts drawn per pick; the least loaded of them wins. >= 2; default 2.
  // More choices balance harder but herd onto the same host when the
  // load figures are stale.
  std::uint32_t choice_count = 2;
};

struct peak_ewma_options {
  // Time constant of the latency average. > 0; default 10 s (Finagle's).
  // Shorter reacts faster to a slowdown and forgets it faster.
  duration decay_time = std::chrono::seconds(10);
  // Latency recorded for a failed response (5xx, 429, no response), or its
  // real latency if that is larger. > 0; default 1 s. It must exceed the
  // latency of any healthy host, or a fast-failing host attracts traffic.
  duration failure_penalty = std::chrono::seconds(1);
  // Hosts drawn per pick, as least_request. >= 2; default 2.
  std::uint32_t choice_count = 2;
};

// Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam):
// a host whose active requests would exceed
// ceil(balance_factor x (total active + 1) / hosts) is skipped for the next
// host the key maps to.
struct bounded_load_options {
  // 0 (the default) turns bounded load off; otherwise >= 1. 1.25 is
  // HAProxy's usual 125: tighter bounds even the load out at the price of
  // moving more keys off their first host.
  double balance_factor = 0;
};

struct ring_hash_options {
  // Virtual nodes on the ring per unit of a host's weight. A fixed number
  // per host (ketama's choice, not one scaled to the cluster's size) means
  // adding or removing a host leaves every other host's points where they
  // were, so only the keys next to the changed points move. More points
  // spread keys more evenly (the spread of a host's share is about
  // 1/sqrt(points)) and cost memory and build time. >= 1; default 160,
  // ketama's (nginx's `hash ... consistent`).
  std::uint32_t points_per_weight = 160;
  // Upper bound on the ring's points (sum of weights x points_per_weight);
  // a larger cluster is a configuration error. Default 8M (Envoy's).
  std::uint32_t max_ring_size = 8 * 1024 * 1024;
  bounded_load_options bounded_load;
};

struct maglev_options {
  // Entries of the lookup table: a prime, much larger than the number of
  // hosts (at least 100x keeps the imbalance under 1%). Default 65537,
  // Envoy's and the paper's.
  std::uint32_t table_size = 65537;
  bounded_load_options bounded_load;
};

// Everything a policy may be configured with. Each policy reads the part
// it needs; the factory validates all of it.
struct policy_options {
  // The clock for slow start, EWMA decay and Retry-After. Default: the
  // steady clock.
  clock_function clock;
  // Seed of the policy's random engine. 0 (the default) seeds it from
  // std::random_device; tests pass a fixed seed for repeatable picks.
  // Give each worker a different seed, or they draw the same hosts.
  std::uint64_t seed = 0;
  slow_start_options slow_start;
  least_request_options least_request;
  peak_ewma_options peak_ewma;
  ring_hash_options ring_hash;
  maglev_options maglev;
};

class policy {
 public:
  virtual ~policy() = default;

  // The host for the next request, or nullptr when every host is excluded
  // (or, for peak_ewma, waiting out a Retry-After) or the set is empty.
  // The pointer stays valid while hosts() does.
  virtual const host* pick(const request_context& context) = 0;

  // A response from `h` (a host of this policy's snapshot). Every policy
  // keeps the host's failure count; peak_ewma also records the latency and
  // any Retry-After.
  virtual void observe(const host& h, const response_outcome& outcome);

  // "round_robin", "weighted_round_robin", ... as make_policy takes.
  virtual std::string_view name() const noexcept = 0;

  const host_set& hosts() const noexcept { return *hosts_; }
  const host_set_ptr& snapshot() const noexcept { return hosts_; }

 protected:
  explicit policy(host_set_ptr hosts) : hosts_(std::move(hosts)) {}

 private:
  host_set_ptr hosts_;
};

// The names make_policy accepts, in the order of the list above.
inline constexpr std::string_view policy_names[] = {"round_robin",       "weighted_round_robin",
                                                    "least_connections", "least_request",
                                                    "peak_ewma",         "random",
                                                    "ring_hash",         "maglev"};

// A policy of the kind `name` over `hosts`.
// REQUIRES: hosts is not null. Throws core::config_error naming the field
// ("lb.policy", "lb.slow_start.window", "lb.maglev.table_size", ...) for an
// unknown name or an option out of range.
std::unique_ptr<policy> make_policy(std::string_view name, host_set_ptr hosts,
                                    const policy_options& options = {});

// Checks `options` as make_policy does, without making a policy.
void validate(const policy_options& options);

}  // namespace trellis::lb
