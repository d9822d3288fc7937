// tcp_listener: an accept loop that owns its connections.
//
// A listener binds one address, accepts connections and runs a handler
// coroutine for each on the listener's executor. It is built to be opened
// once per worker on the same port with SO_REUSEPORT (listen_on_all), so the
// kernel spreads new connections across workers and each connection stays
// on the worker that accepted it.
//
// What keeps it alive under stress:
// - running out of file descriptors (EMFILE/ENFILE) or kernel memory does
//   not end the loop: it logs, backs off and tries again, as nginx does;
// - max_connections caps concurrent connections: at the cap the listener
//   stops accepting, leaving new connections in the kernel's backlog, until
//   one finishes (HAProxy's maxconn);
// - serve() returns only after close() and once every connection handler
//   has finished, so a drain that waits for serve() waits for the in-flight
//   work, and no handler outlives the listener.
//
// A connection is run either as a coroutine (a `handler`: one co_spawn per
// connection, which owns the connection until its coroutine ends) or handed
// over with its `seat` (an `adopter`): the seat counts the connection until
// it is destroyed, so a server can keep an idle connection as a plain
// completion handler and start a coroutine only while it is busy, leaving
// an idle connection no coroutine frame at all (http::server does).
//
// Thread-safety: a listener belongs to one executor (worker); call its
// methods on that executor's thread.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "trellis/core/result.hpp"
#include "trellis/core/runtime.hpp"

namespace trellis::net {

struct listener_options {
  // Share the port with the other listeners (one per worker) and let the
  // kernel balance connections between them. Linux lets any socket of the
  // same user join, so a second copy of a server started by mistake takes
  // a share of the traffic instead of failing with EADDRINUSE; turn it off
  // where that matters more than spreading load.
  bool reuse_port = true;
  // Kernel accept backlog. Connections beyond it wait in SYN retries; the
  // kernel caps it at net.core.somaxconn.
  int backlog = 4096;
  // Concurrent connections served by this listener; more wait in the
  // backlog. Bounds memory and descriptors under a connection flood.
  std::size_t max_connections = 10'000;
  // Pause after an accept error caused by resource exhaustion (EMFILE,
  // ENFILE, ENOBUFS, ENOMEM) before accepting again. Short enough to
  // recover quickly, long enough not to spin on a persistent shortage.
  std::chrono::milliseconds accept_backoff{100};
  // Disable Nagle's algorithm on accepted sockets: request/response
  // protocols want each write sent now, not batched with the next.
  bool no_delay = true;
};

class tcp_listener {
  // The count of active connections, shared with the seats.
  struct seats {
    std::size_t active = 0;
    tcp_listener* listener = nullptr;  // null once the listener is gone
  };

 public:
  // A connection's place among the listener's active connections: counted
  // against max_connections, and waited for by serve() after close(), from
  // the accept until the seat is destroyed. May outlive the listener (it
  // then counts for nothing). Destroy it on the listener's executor.
  class seat {
   public:
    seat() = default;
    seat(seat&& o) noexcept = default;
    seat& operator=(seat&& o) noexcept;
    ~seat() { release(); }
    // Frees the place now; idempotent.
    void release() noexcept;

   private:
    friend class tcp_listener;
    explicit seat(std::shared_ptr<seats> s) : seats_(std::move(s)) {}
    std::shared_ptr<seats> seats_;
  };

  // Runs one connection as a coroutine; the connection is counted until the
  // coroutine ends.
  using handler = std::function<asio::awaitable<void>(asio::ip::tcp::socket)>;
  // Takes one connection over, with its seat, on the listener's executor
  // and without blocking; the connection is counted until the seat is
  // destroyed.
  using adopter = std::function<void(asio::ip::tcp::socket, seat)>;

  // Binds and listens. Returns the OS error (address in use, permission
  // denied...) instead of throwing: the caller decides how to report it.
  static result<std::unique_ptr<tcp_listener>> open(const asio::any_io_executor& ex,
                                                    const asio::ip::tcp::endpoint& address,
                                                    listener_options options = {});
  ~tcp_listener();
  tcp_listener(const tcp_listener&) = delete;
  tcp_listener& operator=(const tcp_listener&) = delete;

  asio::ip::tcp::endpoint local_endpoint() const;
  std::size_t active_connections() const noexcept { return seats_->active; }
  const listener_options& options() const noexcept { return options_; }

  // Accepts until close(), running `on_connection` for each connection as a
  // child of this coroutine; returns when closed and every child finished.
  // A child's exception is logged, never propagated. REQUIRES: one serve()
  // at a time; the listener outlives it.
  asio::awaitable<void> serve(handler on_connection);
  // The same, handing each connection to `on_connection` with its seat.
  // REQUIRES: as above.
  asio::awaitable<void> serve(adopter on_connection);

  // Stops accepting. Connections being served are not touched.
  void close();

 private:
  tcp_listener(asio::ip::tcp::acceptor acceptor, listener_options options);

  asio::ip::tcp::acceptor acceptor_;
  listener_options options_;
  std::shared_ptr<seats> seats_;
  asio::steady_timer wake_;  // used as an event: cancelled when a seat frees
};

// Opens one listener per worker of `rt` on `address` (SO_REUSEPORT) and
// runs serve(make_handler(worker)) on each as an owned task; on drain the
// listeners close. With port 0, the first listener picks the port and the
// others join it. Returns the bound address, or the first error (then no
// listener is left open).
result<asio::ip::tcp::endpoint> listen_on_all(
    core::runtime& rt, const asio::ip::tcp::endpoint& address, listener_options options,
    std::function<tcp_listener::handler(core::worker&)> make_handler);
// The same with an adopter per worker (see tcp_listener::adopter).
result<asio::ip::tcp::endpoint> listen_on_all(
    core::runtime& rt, const asio::ip::tcp::endpoint& address, listener_options options,
    std::function<tcp_listener::adopter(core::worker&)> make_adopter);

}  // namespace trellis::net
