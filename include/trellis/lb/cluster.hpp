// An upstream cluster: a named set of endpoints, the policy that spreads
// requests over them, and which of them may take requests right now.
//
// This is Envoy's cluster-manager model cut to one cluster:
//   * endpoints are configured as "ip:port", "[v6]:port" or "name:port";
//     an IP literal is one host, a name becomes one host per address it
//     resolves to, re-resolved after its TTL (floored by dns_refresh_min).
//     Addresses that appear become hosts, ones that disappear leave, and
//     the hosts that stay are the same objects (same shared_ptr), so their
//     live statistics carry over. A failed re-resolution keeps the last
//     good set;
//   * each host has a health state (active checks, health.hpp) and an
//     outlier state (passive detection, outlier.hpp). A host is eligible
//     when it is healthy and not ejected;
//   * panic (Envoy's healthy_panic_threshold): when fewer than
//     panic_threshold x all hosts are eligible, eligible() returns ALL
//     hosts — better to spread the load over everything, some requests
//     failing, than to crush the few hosts left and fail them all;
//   * the eligible set is published as an immutable host_set and a version
//     number. A worker's balancer compares the version (one atomic load)
//     before each pick and rebuilds its policy when it changed.
// A host that becomes eligible again (passes its checks, ends an
// ejection, or is added by DNS after start) is stamped with
// host::mark_healthy(now), so a policy with slow start ramps it in.
//
// Time: every decision reads options.clock (default steady), so tests
// drive ejections and their ends with lb::manual_clock. Time-based changes
// (an ejection ending, the ejection multiplier decaying) are applied by
// refresh(), which report(), eligible() and status() call, and which the
// timer of start() calls when no traffic does; a balancer whose policy
// finds no host calls it too before giving up.
//
// Thread-safety: a cluster is shared by every worker. eligible(),
// version(), report(), status(), refresh() and the rest may be called from
// any thread: the per-host health and ejection records live under the
// cluster's mutex, the published snapshot is immutable, and the hosts'
// statistics are atomics. report() of a success takes no lock while no
// host has a failure counted and no ejection is due (two atomic loads and
// a clock read); a failure takes the mutex — a known cost while a host is
// failing, which Envoy avoids by batching outlier events to its main
// thread. The background work of start() runs on the one executor it is
// given. A balancer is per worker and NOT thread-safe.
#pragma once

#include <asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/result.hpp"
#include "trellis/lb/health.hpp"
#include "trellis/lb/host.hpp"
#include "trellis/lb/outlier.hpp"
#include "trellis/lb/policy.hpp"

namespace trellis::dns {
class resolver;
}

namespace trellis::lb {

struct endpoint_config {
  // "127.0.0.1:8080", "[::1]:80", or "name:port" for a name resolved with
  // DNS (one host per address).
  std::string address;
  // Weight of each host of this endpoint. >= 1; default 1.
  std::uint32_t weight = 1;
};

struct cluster_options {
  // The cluster's name, for logs, metrics and the admin page. Required.
  std::string name;
  // The balancing policy, a make_policy name. Default round_robin.
  std::string policy = "round_robin";
  // Its options (slow start, choice count, ring size...). The clock is
  // taken from `clock` below when this one is empty.
  policy_options policy_config;
  // Active health checks. Default off (type none).
  health_check_options health;
  // Passive outlier detection. Default on, with Envoy's numbers.
  outlier_options outlier;
  // Fraction of all hosts below which the cluster panics and offers every
  // host (Envoy's healthy_panic_threshold, 50% by default). [0, 1]; 0
  // turns panic off: the cluster then serves from whatever is left, even
  // nothing.
  double panic_threshold = 0.5;
  // Floor of the re-resolution interval of name endpoints: the TTL of the
  // answer, but never less than this (a TTL of 0 would mean resolving in a
  // loop). Also the retry interval after a failed resolution. > 0;
  // default 1 s.
  std::chrono::milliseconds dns_refresh_min{1'000};
  // Time for ejections, slow-start stamps and the policy. Default steady.
  clock_function clock;
};

// An endpoint's address, split; is_ip for an IP literal.
struct endpoint_address {
  std::string host;  // without brackets
  std::uint16_t port = 0;
  bool is_ip = false;
};

// Splits "host:port" / "[v6]:port". Errors: core::errc::invalid_argument
// for a missing or bad port (0 included), an empty host, or an unbracketed
// IPv6 address.
result<endpoint_address> parse_endpoint(std::string_view address);

namespace detail {
struct cluster_state;
}

class cluster {
 public:
  // Throws core::config_error naming the field ("cluster.name",
  // "cluster.endpoints[1].address", "cluster.health.rise",
  // "cluster.panic_threshold", "cluster.policy"...). Hosts of IP endpoints exist
  // from here on; hosts of name endpoints appear once start() resolved them.
  cluster(cluster_options options, std::vector<endpoint_config> endpoints);
  ~cluster();
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  const std::string& name() const noexcept;
  const cluster_options& options() const noexcept;
  const std::vector<endpoint_config>& endpoints() const noexcept;

  // Bumped whenever the eligible set changes: its membership (a host fails
  // or passes its checks, is ejected or returns, DNS adds or removes one)
  // or the panic state. A change that leaves the set as it was — a host
  // ejected while the cluster is in panic and offers every host anyway —
  // does not bump it. One atomic load.
  std::uint64_t version() const noexcept;

  // The hosts a request may go to now: healthy and not ejected, or every
  // host in panic. Never null; may be empty.
  host_set_ptr eligible() const;

  // eligible() with the version and panic state it belongs to, read
  // together.
  struct snapshot {
    host_set_ptr hosts;
    std::uint64_t version = 0;
    bool panic = false;
  };
  snapshot eligible_snapshot() const;

  // Every host, eligible or not.
  host_set_ptr all_hosts() const;

  bool in_panic() const noexcept;

  // Passive outlier detection input: one call per finished upstream
  // attempt (status 0: no response — connect failure, reset, timeout). A
  // host that is no longer in the cluster is ignored.
  void report(const host& h, const response_outcome& outcome);

  // Active health check input: what start()'s probes call after each
  // check. Public so that an external checker (or a test) can feed it. A
  // host that is no longer in the cluster is ignored.
  void report_check(const host& h, const check_result& result);

  // Applies time-based changes now: ejections whose time is up end, and
  // ejection multipliers decay. Returns true when the eligible set changed.
  bool refresh();

  // For the admin endpoint: one entry per host.
  struct host_status {
    std::string address;   // "10.0.0.7:8080"
    std::string endpoint;  // the configured endpoint it came from
    std::uint32_t weight = 1;
    bool healthy = true;  // by active checks (always true without them)
    bool ejected = false;
    bool eligible = true;                  // healthy and not ejected (panic aside)
    std::uint32_t ejections = 0;           // times ejected, ever
    std::uint32_t ejection_multiplier = 0;  // the next ejection lasts (this + 1) x base
    std::uint32_t active_requests = 0;
    std::uint32_t consecutive_failures = 0;          // 5xx or no response, in a row
    std::uint32_t consecutive_gateway_failures = 0;  // 502/503/504 or no response
    std::optional<time_point> ejected_until;         // while ejected
    std::string last_check;  // check_result::describe() of the last check; empty before one
  };
  std::vector<host_status> status() const;

  // Starts the background work on `ex`: one probe loop per host when
  // health checks are configured, one re-resolution loop per name
  // endpoint, and a timer that calls refresh(). `resolver` may be null when
  // every endpoint is an IP literal (otherwise throws core::config_error
  // "cluster.resolver"). Calling it again while started does nothing.
  // REQUIRES: ex is run by one thread (a trellis worker); the resolver is
  // used only on ex and outlives stop() — when destroying it right after
  // stop(), call stop() on ex's thread.
  void start(asio::any_io_executor ex, dns::resolver* resolver = nullptr);
  // Cancels the background work and returns without waiting for it (the
  // coroutines end on ex soon after; they keep what they use alive). The
  // destructor stops too. May be called from any thread.
  void stop();

 private:
  std::shared_ptr<detail::cluster_state> state_;
};

// One per worker: NOT thread-safe. Holds a policy built over the cluster's
// eligible set; before each pick it compares cluster.version() (one atomic
// load) and rebuilds the policy when it changed.
class balancer {
 public:
  // `seed` seeds the policy's random engine (give each worker its own);
  // 0 takes options().policy_config.seed, itself 0 for a random seed.
  // REQUIRES: c is not null.
  explicit balancer(std::shared_ptr<cluster> c, std::uint64_t seed = 0);

  // The host for the next request, or nullptr when none is available.
  // The pointer stays valid while the cluster holds the host, and at least
  // until the next pick().
  const host* pick(const request_context& ctx = {});
  // A finished attempt on `h` (picked by this balancer): the policy's
  // observe() and the cluster's report().
  void observe(const host& h, const response_outcome& o);

  cluster& owner() const noexcept { return *cluster_; }
  // The version of the set the current policy was built over (0 before the
  // first pick), and how many times it has been built.
  std::uint64_t version() const noexcept { return version_; }
  std::uint64_t rebuilds() const noexcept { return rebuilds_; }
  // The current policy; null before the first pick.
  const lb::policy* current_policy() const noexcept { return policy_.get(); }

 private:
  void rebuild();

  std::shared_ptr<cluster> cluster_;
  policy_options options_;
  std::unique_ptr<lb::policy> policy_;
  std::uint64_t version_ = 0;
  std::uint64_t rebuilds_ = 0;
};

}  // namespace trellis::lb
