// redis_rate_limit_store: rate-limit state kept in Redis, so that several
// gateway processes — behind an L4 balancer, on several machines — enforce
// one limit together instead of each its own (ARCHITECTURE.md principle 9;
// Kong's "redis" policy, Envoy's global rate limit service).
//
// One acquire() is one Lua script run by Redis (EVALSHA, falling back to
// EVAL once after a restart emptied the script cache): it reads the state
// of every (policy, key) of the request, runs the same integer steps as
// gcra_step and sliding_window_step (rate_limit_policy.hpp, whose
// comments sketch the script), and writes the new states only if every
// policy allowed the request — all or nothing, as the local store. Redis
// runs a script without interleaving any other command, so two gateways
// charging one key at the same instant cannot both take its last token:
// the read-modify-write is atomic without locks or WATCH retries. The
// time is Redis's own (TIME), so gateways whose clocks differ still agree
// on every key's state; the `now` acquire() is given is not used.
//
// Keys: "<prefix><policy name>:<key>", a string (GCRA's theoretical
// arrival time) or a hash (the sliding window's start and two counts),
// each with a time-to-live of the time until its state is full again, so
// Redis forgets idle clients by itself and holds only active ones.
//
// What a limit check costs: one round trip to Redis, pipelined with the
// other requests of the same worker on its one connection. If Redis is
// down or slower than the command timeout, acquire() fails with
// rate_limit_error::store_unavailable and the limiter fails open or closed
// as configured (rate_limit_options::fail_open).
//
// Thread-safety: shared by every worker; each worker uses its own Redis
// client (a client belongs to one executor), chosen by the executor the
// call runs on.
#pragma once

#include <asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "trellis/core/runtime.hpp"
#include "trellis/gateway/rate_limit_store.hpp"
#include "trellis/redis/client.hpp"
#include "trellis/redis/worker_clients.hpp"

namespace trellis::gateway {

struct redis_rate_limit_store_options {
  // Each worker's connection. The command timeout is the longest a request
  // waits for its limit check: keep it short (a Redis on the same network
  // answers in well under a millisecond), so a sick Redis costs requests
  // little before the limiter fails open or closed.
  redis::client_options client;
  // Put before every key, so several applications can share one Redis.
  std::string key_prefix = "trellis:rl:";
};

class redis_rate_limit_store final : public rate_limit_store {
 public:
  // One client per worker of `rt`, connecting on first use. Throws
  // core::config_error for bad client options.
  redis_rate_limit_store(core::runtime& rt, asio::ip::tcp::endpoint server,
                         redis_rate_limit_store_options options = {});
  ~redis_rate_limit_store() override;
  redis_rate_limit_store(const redis_rate_limit_store&) = delete;
  redis_rate_limit_store& operator=(const redis_rate_limit_store&) = delete;

  // Errors: rate_limit_error::bad_charge (see rate_limit_store),
  // rate_limit_error::store_unavailable when Redis could not be asked or
  // answered something other than the script's reply.
  // REQUIRES: runs on a worker of the runtime given to the constructor.
  asio::awaitable<result<bool>> acquire(std::span<const rate_limit_charge> charges,
                                        std::int64_t cost, std::chrono::microseconds now,
                                        std::span<rate_limit_decision> out) override;

  // The script, for tests and for reading.
  static const std::string& script_source();

 private:
  redis::script script_;
  std::string prefix_;
  redis::worker_clients clients_;
};

}  // namespace trellis::gateway
