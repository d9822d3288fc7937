// gateway: an API gateway assembled from its configuration — the front
// door of a set of services (the study guide's microservices chapter).
//
// A request meets, in order (config.hpp says why this order):
//
//   access log, route metrics          every request, matched or not
//   router                             path pattern + method -> route
//   IP filter, CORS                    who may call at all; preflights
//   session                            the browser's login, from its cookie
//   authenticate, require              who is calling, may they
//   session login                      a caller let in by a password or a
//                                      token is remembered (session_auth.hpp)
//   rate limit                         how often (keyed on the subject)
//   request checks                     size, content type
//   concurrency limit, breaker         protect the upstream
//   reverse proxy | composition        the upstream call(s)
//   compression, response headers      on the way out
//
// Every piece is a library object of its own (gateway/*.hpp, proxy/,
// lb/); this class only builds them from a config and wires them into
// one http::handler for the listeners' servers.
//
// Virtual hosts: a route may name the hosts it serves ("host":
// "api.example.com" or "*.example.com"). The Host field, lower-cased and
// without its port, picks one set of routes first — its exact name, else
// the most specific "*." name covering it, else the routes that name no
// host — and only then does the path pick a route within that set, as
// nginx picks a server block and Envoy a virtual host before a location
// or route. A host with a set of its own never falls back to the
// host-less routes: api.example.com/admin is not served by a catch-all
// meant for another site.
//
// Reload: reload() builds a whole new set from a new configuration —
// clusters with their health checks, proxies, middleware, router — and
// swaps it in with one atomic pointer store. Requests in flight finish on
// the set they started with (each holds a reference to it); new requests
// take the new one; a configuration that does not build is refused with
// its config_error and the old set keeps serving. What a reload cannot
// change — listeners, workers, the admin address — is the program's to
// check (it owns the sockets). Old sets are kept until the gateway is
// destroyed: their objects belong to the workers' threads, and are
// destroyed when the workers have stopped rather than from whichever
// thread happened to drop the last reference.
//
// Shared state across workers: the rate-limit stores, breakers,
// concurrency limits and the HTTP cache are each one object shared by
// every worker (each says how it stays consistent); everything else is
// per worker or immutable.
//
// Thread-safety: handler() and status() may be called from any worker;
// reload() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "trellis/core/metrics.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/gateway/config.hpp"
#include "trellis/gateway/session.hpp"
#include "trellis/http/message.hpp"

namespace trellis::gateway {

struct gateway_options {
  // Where every piece's metrics go. Null: the gateway keeps its own.
  core::metrics_registry* metrics = nullptr;
  // The clock JWTs are checked against (tests inject one). Null:
  // system_clock::now.
  std::function<std::chrono::system_clock::time_point()> jwt_clock;
};

class gateway {
 public:
  // Builds everything `c` describes and starts its clusters' health
  // checks on the first worker. Throws core::config_error for what only
  // building finds (a key file that vanished, bad cluster options).
  // REQUIRES: rt outlives the gateway; the gateway outlives rt.run().
  gateway(core::runtime& rt, config c, gateway_options options = {});
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  // The handler for the listeners' servers; it refers to this gateway.
  http::handler handler();

  // Replaces routes, clusters and middleware with those of `c` (see
  // above). Throws core::config_error, leaving the current set serving.
  void reload(config c);

  // Stops the background work of the running set (health checks, DNS
  // refreshes): call it when the runtime drains. Requests are still
  // served.
  void stop();

  // For the admin endpoint: {"generation", "routes" (with responses by
  // class, p50/p99, breaker state, hosts), "clusters" (each host's
  // health), "rate_limits" (each named limit's store and policies with
  // their allowed/limited counts), "cache"}.
  nlohmann::json status() const;

  // How many configurations have been applied (1 after construction).
  std::uint64_t generation() const;

  core::metrics_registry& metrics() noexcept { return *metrics_; }
  const config& current_config() const;

  struct built;

 private:
  std::shared_ptr<const built> current() const;

  core::runtime& rt_;
  gateway_options options_;
  std::unique_ptr<core::metrics_registry> own_metrics_;
  core::metrics_registry* metrics_;
  // The set serving new requests: one atomic load per request.
  std::atomic<std::shared_ptr<const built>> current_;
  mutable std::mutex mu_;  // guards retired_, generation_ (reload and status)
  std::vector<std::shared_ptr<const built>> retired_;
  // Sessions kept in memory live across reloads (a reload must not log
  // everyone out); created by the first configuration with such sessions.
  std::shared_ptr<session_store> memory_sessions_;
  std::uint64_t generation_ = 0;
};

}  // namespace trellis::gateway
