// Concurrency limit: at most N requests in flight to one upstream (one
// cluster, one route group), the rest answered 503 at once.
//
// This is what Envoy calls circuit breaking (its cluster thresholds
// max_requests and max_pending_requests) and what Netflix's
// concurrency-limits library and HAProxy's `maxconn` on a backend do: when
// an upstream slows down, requests pile up in flight, each holding a
// connection, memory and a client's patience. A cap turns that pile-up into
// fast, cheap refusals the client can retry elsewhere, and keeps the
// upstream at the load it can serve (Little's law: in-flight = rate x
// latency, so capping in-flight caps rate exactly when latency grows).
// Unlike the circuit breaker (gateway/circuit_breaker.hpp) it needs no
// failures to act, only slowness.
//
// No wait queue, by choice: the simplest correct behaviour first. A
// request beyond the limit is refused immediately rather than parked,
// because a parked request still holds its connection and buffers (what
// the limit exists to bound), a queue needs its own limit and deadline to
// be safe, and a client (or the load balancer in front) that gets a fast
// 503 can retry on another instance, which a queued one cannot. Envoy's
// max_pending_requests queue exists because its requests wait for a
// connection from a pool; trellis's client pool already has that wait,
// bounded by pool_wait_timeout (http/client.hpp), so a second queue here
// would only add latency. A short bounded queue may be added later as an option.
//
// Thread-safety: one limiter is shared by every worker thread (the limit
// is per process, like the upstream's capacity), and is lock-free: the
// in-flight count is one atomic, raised with a compare-and-swap loop that
// never exceeds the limit (a fetch_add followed by a fetch_sub on refusal
// would briefly overshoot and refuse requests that fit). The counters are
// relaxed atomics; they are statistics, not synchronisation.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "trellis/http/router.hpp"

namespace trellis::gateway {

struct concurrency_limit_options {
  // Requests in flight at most. >= 1; default 1024 (Envoy's max_requests).
  // Size it to the upstream: its workers (or connections) times a small
  // factor. Too low refuses load it could serve; too high protects nothing.
  std::uint32_t max_in_flight = 1024;
};

// Throws core::config_error ("<prefix>.max_in_flight") when out of range.
void validate(const concurrency_limit_options& options,
              std::string_view prefix = "concurrency_limit");

class concurrency_limiter {
 public:
  // Throws core::config_error (see validate()).
  explicit concurrency_limiter(concurrency_limit_options options = {});
  concurrency_limiter(const concurrency_limiter&) = delete;
  concurrency_limiter& operator=(const concurrency_limiter&) = delete;

  // Takes a slot if one is free: true (then release() it exactly once when
  // the request is done) or false (at the limit; nothing to release).
  bool try_acquire() noexcept;
  // Gives back a slot taken by try_acquire().
  // REQUIRES: a slot was taken and not yet released.
  void release() noexcept;

  std::uint32_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  std::uint32_t limit() const noexcept { return options_.max_in_flight; }
  std::uint64_t admitted() const noexcept { return admitted_.load(std::memory_order_relaxed); }
  std::uint64_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }

 private:
  const concurrency_limit_options options_;
  std::atomic<std::uint32_t> in_flight_{0};
  std::atomic<std::uint64_t> admitted_{0};
  std::atomic<std::uint64_t> refused_{0};
};

// Middleware: before() takes a slot or answers 503 (a small problem+json
// body, no Retry-After: a slot may free up at any moment); after()
// releases it. The router runs after() for every middleware whose before()
// ran, also when the handler threw, so a slot is never leaked by a
// failing handler. A streamed response body (response::stream) is still
// being written after after(): the slot covers the handler, which for a
// proxy is the upstream exchange up to its response head.
struct concurrency_limit_middleware_options {
  // Names the limited upstream in the 503 body, and keys the request
  // attribute ("concurrency_limit:<name>") that tells after() a slot was
  // taken, so several limiters can be stacked on one router.
  std::string name = "upstream";
};

class concurrency_limit_middleware final : public http::middleware {
 public:
  // REQUIRES: limiter is not null.
  explicit concurrency_limit_middleware(std::shared_ptr<concurrency_limiter> limiter,
                                        concurrency_limit_middleware_options options = {});

  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;
  asio::awaitable<void> after(http::request& req, http::response& res) override;

  concurrency_limiter& limiter() const noexcept { return *limiter_; }

 private:
  std::shared_ptr<concurrency_limiter> limiter_;
  concurrency_limit_middleware_options options_;
  std::string attribute_;
};

}  // namespace trellis::gateway
