// worker_clients: one redis::client per worker of a core::runtime, for the
// objects every worker shares that keep their state in Redis (the gateway's
// rate-limit and session stores).
//
// A redis::client belongs to one executor (its coroutines and socket run
// there, with no locks), and the runtime runs one io_context per worker
// thread. So a shared object holds a client per worker and, on each call,
// takes the one of the worker it runs on: N workers, N connections to
// Redis, each pipelining the requests of its own worker.
//
// Draining: when a worker drains, its client closes its connection as soon
// as no command waits on it (redis::client::close_idle()). An idle Redis
// connection has a read pending forever, which would otherwise keep the
// worker's io_context busy until the drain timeout cut it off.
//
// Thread-safety: here() may be called from any worker concurrently (it
// only reads); each client is then used on its own worker only.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "trellis/core/runtime.hpp"
#include "trellis/redis/client.hpp"

namespace trellis::redis {

class worker_clients {
 public:
  // A client per worker of `rt`, not yet connected (each connects on its
  // first command). `owner` names the user in the logic_error of here().
  // Throws core::config_error for invalid options (see client).
  // REQUIRES: rt outlives this object.
  worker_clients(core::runtime& rt, asio::ip::tcp::endpoint server, const client_options& options,
                 std::string owner);
  ~worker_clients();
  worker_clients(const worker_clients&) = delete;
  worker_clients& operator=(const worker_clients&) = delete;

  // The client of the worker that `ex` belongs to. Throws std::logic_error
  // when `ex` is not one of the runtime's workers' executors: calling from
  // elsewhere is a wiring bug, not a runtime condition.
  client& here(const asio::any_io_executor& ex) const;

  std::size_t size() const noexcept { return slots_.size(); }

 private:
  struct slot;
  std::vector<std::unique_ptr<slot>> slots_;
  std::string owner_;
};

}  // namespace trellis::redis
