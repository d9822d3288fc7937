// Rate-limit stores: where the per-key state of the policies lives.
//
// SHARED STATE (ARCHITECTURE principle 4): unlike most of trellis, rate-
// limit state cannot be per worker — a client whose connections land on
// four workers would otherwise get four times its limit. So one store is
// shared by every worker thread of the process (local_rate_limit_store
// below: sharded, a mutex per shard), or by every gateway process of a
// fleet (a Redis store, which runs the same steps of rate_limit_policy.hpp
// in a Lua script; principle 9).
//
// rate_limit_store is the interface the middleware talks to. acquire()
// charges one request to several (policy, key) pairs at once, all or
// nothing: if any policy refuses, none is charged. Charging them one by
// one would let the policy that allowed keep the cost of a request that
// was refused anyway (a client at its hourly quota would still drain its
// per-second bucket), which is a known complaint about limiters that
// increment every counter regardless. A Redis store gets the same
// atomicity by passing every key to one script (in Redis Cluster the keys
// share a hash slot when they carry the same {hash tag}, e.g. the client
// key).
//
// local_rate_limit_store keeps the state in process memory:
//   - sharded: a key's shard is picked by its hash; each shard has its own
//     mutex, held for one hash lookup and a few integer operations, so
//     workers rarely wait for each other. A multi-policy charge locks its
//     shards in index order (no deadlock);
//   - bounded: at most `max_keys` keys (split evenly across shards). A key
//     whose state is back to "full" (its bucket refilled, its windows
//     expired) carries no information — dropping it changes no decision —
//     so such keys go first. When a shard is full of live keys, the least
//     recently used one is evicted: that forgives its client (it comes back
//     with a full bucket), and LRU makes sure the forgiven client is an
//     idle one. An abusive client is by definition recent and keeps its
//     state; evicting by age ("oldest first") would forgive exactly the
//     long-running abuser, and an attacker spraying fresh keys can only
//     push out idle ones;
//   - no background thread: each acquire() looks at a couple of keys at
//     the cold end of its shard's LRU list and drops those that are full.
//     The sweep costs O(1) per request, needs no executor or timer to own
//     and stop, never holds a lock for long, and memory stays bounded by
//     max_keys whatever the sweep misses. A shard nobody touches keeps its
//     stale keys until someone does — bounded, and harmless.
// Clock: `now` must come from one clock for all callers of a store (the
// middleware's clock option; the steady clock by default). It may wobble
// backwards by the microseconds between two threads reading it; the
// steps clamp such a `now` to the stored state rather than misbehave.
//
// Thread-safety: rate_limit_store implementations must be safe to call
// from every worker at once. local_rate_limit_store is.
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

#include "trellis/core/result.hpp"
#include "trellis/gateway/rate_limit_policy.hpp"

namespace trellis::gateway {

enum class rate_limit_error {
  store_unavailable = 1,  // the store could not be reached or answered wrongly (a Redis store)
  bad_charge,             // acquire() was called with arguments it does not accept
};

const std::error_category& rate_limit_category() noexcept;

inline std::error_code make_error_code(rate_limit_error e) noexcept {
  return {static_cast<int>(e), rate_limit_category()};
}

// One policy applied to one key. REQUIRES: *policy passed validate() and
// outlives the acquire() call.
struct rate_limit_charge {
  const rate_limit_policy* policy = nullptr;
  std::string_view key;
};

// What a policy said about a request.
struct rate_limit_decision {
  bool allowed = false;
  // The cost can never be admitted at once (more than the burst, or the
  // limit of a window); retry_after means nothing then.
  bool over_capacity = false;
  // Requests of cost 1 still admitted now (after this one when allowed).
  std::int64_t remaining = 0;
  // Until the key's state is back to full (bucket refilled, windows empty).
  std::chrono::microseconds reset{0};
  // Refused: until the same cost would be allowed. Zero when allowed.
  std::chrono::microseconds retry_after{0};
};

class rate_limit_store {
 public:
  virtual ~rate_limit_store() = default;

  // Charges `cost` to every pair in `charges` at time `now` if every policy
  // allows it; otherwise charges nothing. out[i] gets the decision of
  // charges[i] either way. Returns whether the request is allowed (every
  // out[i].allowed). A store with its own clock (Redis's TIME) may use it
  // instead of `now`.
  // REQUIRES: out.size() == charges.size(); cost >= 0; no (policy name,
  // key) pair twice; both spans valid until the coroutine completes.
  // Errors: rate_limit_error::bad_charge when a REQUIRES is broken; a
  // remote store's rate_limit_error::store_unavailable (or its own code).
  virtual asio::awaitable<result<bool>> acquire(std::span<const rate_limit_charge> charges,
                                                std::int64_t cost, std::chrono::microseconds now,
                                                std::span<rate_limit_decision> out) = 0;
};

struct local_rate_limit_store_options {
  // Keys kept at most (a key is one policy name plus one client key). Each
  // costs about 150 bytes plus its length, so the default 100000 is about
  // 16 MiB. Fewer risks forgiving clients early under a flood of distinct
  // keys; more costs memory. >= shards.
  std::size_t max_keys = 100'000;
  // Independent lock domains. More shards mean less contention between
  // workers (16 is plenty for 16 cores hitting distinct keys); a hot single
  // key serialises on its shard whatever this is. >= 1.
  std::size_t shards = 16;
  // Keys examined at the cold end of the shard on each acquire(), dropped
  // if full. Default 2: more than one, so the sweep outpaces the rate at
  // which a steady stream of new keys arrives. 0 turns the sweep off (full
  // keys are then dropped only when the shard is at max capacity).
  std::size_t sweep_per_access = 2;
  // When a shard is at capacity, how far from the cold end to look for a
  // full key before evicting the least recently used live one.
  std::size_t eviction_scan = 8;
};

class local_rate_limit_store final : public rate_limit_store {
 public:
  // Throws core::config_error naming "rate_limit.store.max_keys" or
  // "rate_limit.store.shards" for a zero or max_keys < shards.
  explicit local_rate_limit_store(local_rate_limit_store_options options = {});
  ~local_rate_limit_store() override;
  local_rate_limit_store(const local_rate_limit_store&) = delete;
  local_rate_limit_store& operator=(const local_rate_limit_store&) = delete;

  // Never fails but for bad_charge; completes without suspending.
  asio::awaitable<result<bool>> acquire(std::span<const rate_limit_charge> charges,
                                        std::int64_t cost, std::chrono::microseconds now,
                                        std::span<rate_limit_decision> out) override;

  // The same, synchronously: what acquire() does (it never waits for I/O).
  result<bool> try_acquire(std::span<const rate_limit_charge> charges, std::int64_t cost,
                           std::chrono::microseconds now, std::span<rate_limit_decision> out);

  struct statistics {
    std::size_t keys = 0;            // keys held now
    std::uint64_t dropped_full = 0;  // keys dropped because their state was full (no loss)
    std::uint64_t evicted = 0;       // live keys evicted at capacity (their clients forgiven)
  };
  // A consistent count per shard, summed shard by shard.
  statistics stats() const;

 private:
  struct shard;
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace trellis::gateway

template <>
struct std::is_error_code_enum<trellis::gateway::rate_limit_error> : std::true_type {};
