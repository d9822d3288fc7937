// Upstream hosts as the balancing policies see them, and the immutable
// snapshot of hosts that a policy picks from.
//
// A host has two kinds of state, kept apart on purpose:
//   * configuration — its address and weight — fixed when the host is
//     made and never changed afterwards;
//   * live statistics — requests in flight, the peak-EWMA latency, recent
//     failures, a Retry-After deadline, the time it last became healthy —
//     updated by the proxy and the health checker while requests run on
//     every worker. Each of these is a std::atomic, read with relaxed
//     ordering: a policy wants a recent figure, not a synchronised one.
// A host_set is a snapshot: a vector of hosts that never changes once
// built. When the membership of a cluster changes (a host is added,
// removed, or leaves for failing its health checks) the owner builds a new
// host_set and hands it to new policy instances; the hosts themselves are
// shared between snapshots through shared_ptr, so their live statistics
// carry over. This is Envoy's model (a load balancer chooses over an
// immutable host set; host stats are atomics), and it is what lets a pick
// take no lock.
//
// Thread-safety: every const member of host may be called from any thread
// at any time (configuration is immutable, statistics are atomics); the
// statistic setters are const for that reason too. A host_set is immutable
// and safe to share.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/cache/clock.hpp"

namespace trellis::lb {

// Time as the policies see it; the same injectable clock as the cache
// layer (cache::manual_clock drives the tests).
using cache::clock_function;
using cache::duration;
using cache::manual_clock;
using cache::steady_now;
using cache::time_point;

class host {
 public:
  // REQUIRES: weight >= 1 (throws core::config_error naming "lb.host.weight"
  // otherwise). The host counts as healthy since `healthy_since`; the
  // default, time_point::min(), means "always was": no slow start.
  explicit host(std::string address, std::uint32_t weight = 1,
                time_point healthy_since = time_point::min());

  host(const host&) = delete;
  host& operator=(const host&) = delete;

  // --- configuration (immutable) ---------------------------------------

  // The endpoint's name, e.g. "10.0.0.7:8080"; consistent-hashing policies
  // place the host on their ring by hashing it, so it must be stable.
  const std::string& address() const noexcept { return address_; }
  std::uint32_t weight() const noexcept { return weight_; }

  // --- live statistics (atomics, shared by every worker) ---------------

  // Requests sent to this host and not yet finished. The proxy calls
  // begin_request() when it forwards a request and end_request() when the
  // response has ended (or failed); request_guard does both.
  std::uint32_t active_requests() const noexcept { return active_.load(std::memory_order_relaxed); }
  void begin_request() const noexcept { active_.fetch_add(1, std::memory_order_relaxed); }
  // REQUIRES: a matching begin_request().
  void end_request() const noexcept { active_.fetch_sub(1, std::memory_order_relaxed); }

  // When the host last became healthy. The health checker sets it on a
  // transition to healthy; slow start ramps the host's weight up from here.
  time_point healthy_since() const noexcept {
    return time_point{duration{healthy_since_.load(std::memory_order_relaxed)}};
  }
  void mark_healthy(time_point since) const noexcept {
    healthy_since_.store(since.time_since_epoch().count(), std::memory_order_relaxed);
  }

  // Peak-EWMA latency (Finagle's "peak EWMA"): a sample above the average
  // replaces it at once (the peak), a sample below pulls it down
  // exponentially with time constant `decay_time`. A failed response is
  // recorded as a latency too, usually a large penalty, by the policy that
  // interprets responses (see peak_ewma_options). Returns zero before the
  // first sample. Reading decays the value towards zero for the time since
  // the last sample, so a host that was slow and then left alone is tried
  // again eventually.
  duration ewma_latency(time_point now, duration decay_time) const noexcept;
  bool has_latency_sample() const noexcept {
    return ewma_stamp_.load(std::memory_order_relaxed) != no_sample;
  }
  // REQUIRES: decay_time > 0.
  void record_latency(duration sample, time_point now, duration decay_time) const noexcept;

  // Consecutive failed responses (reset by a success). Informational for
  // policies; outlier ejection reads it.
  std::uint32_t recent_failures() const noexcept {
    return failures_.load(std::memory_order_relaxed);
  }
  void record_failure() const noexcept { failures_.fetch_add(1, std::memory_order_relaxed); }
  void record_success() const noexcept { failures_.store(0, std::memory_order_relaxed); }

  // The host said "Retry-After": it takes no new requests before `until`.
  time_point retry_after() const noexcept {
    return time_point{duration{retry_after_.load(std::memory_order_relaxed)}};
  }
  void set_retry_after(time_point until) const noexcept {
    retry_after_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  }

 private:
  static constexpr duration::rep no_sample = std::numeric_limits<duration::rep>::min();

  const std::string address_;
  const std::uint32_t weight_;

  mutable std::atomic<std::uint32_t> active_{0};
  mutable std::atomic<duration::rep> healthy_since_;
  mutable std::atomic<duration::rep> ewma_{0};                // nanoseconds (steady ticks)
  mutable std::atomic<duration::rep> ewma_stamp_{no_sample};  // time of the last sample
  mutable std::atomic<std::uint32_t> failures_{0};
  mutable std::atomic<duration::rep> retry_after_{0};
};

// Counts a request as active on a host for the guard's lifetime.
class request_guard {
 public:
  explicit request_guard(const host& h) noexcept : host_(&h) { h.begin_request(); }
  ~request_guard() {
    if (host_ != nullptr) host_->end_request();
  }
  request_guard(const request_guard&) = delete;
  request_guard& operator=(const request_guard&) = delete;

 private:
  const host* host_;
};

// An immutable list of hosts. Policies refer to hosts by their index in it
// and return pointers into it; both stay valid while the snapshot lives.
class host_set {
 public:
  // REQUIRES: no null pointers (throws core::config_error otherwise).
  explicit host_set(std::vector<std::shared_ptr<const host>> hosts);

  std::size_t size() const noexcept { return hosts_.size(); }
  bool empty() const noexcept { return hosts_.empty(); }
  // REQUIRES: i < size().
  const host& operator[](std::size_t i) const noexcept { return *hosts_[i]; }
  std::span<const std::shared_ptr<const host>> hosts() const noexcept { return hosts_; }
  // Sum of the configured weights.
  std::uint64_t total_weight() const noexcept { return total_weight_; }
  // The index of `h`, or size() when it is not in this snapshot.
  std::size_t index_of(const host* h) const noexcept;

 private:
  std::vector<std::shared_ptr<const host>> hosts_;
  std::uint64_t total_weight_ = 0;
};

using host_set_ptr = std::shared_ptr<const host_set>;

// Convenience for tests and configuration: a snapshot of fresh hosts.
// `weights` is empty (every weight 1) or one weight per address.
host_set_ptr make_host_set(const std::vector<std::string>& addresses,
                           const std::vector<std::uint32_t>& weights = {});

}  // namespace trellis::lb
