// tcp_proxy: a layer-4 (TCP) proxy — HAProxy's `mode tcp`, nginx's
// `stream` module, Envoy's tcp_proxy filter.
//
// It accepts TCP connections on every worker of a runtime, picks an
// upstream host for each connection with the cluster's balancing policy,
// connects to it, and relays bytes both ways without looking at them, so
// it carries any protocol over TCP: TLS it cannot decrypt, databases,
// HTTP/1.0. Per connection:
//   connect   pick a host (lb::balancer, one per worker), connect within
//             connect_timeout; on failure (refused, unreachable, timed out)
//             report it to the balancer (status 0: outlier detection sees
//             it) and pick another host, excluding the ones tried, up to
//             connect_attempts in all (HAProxy's `retries` with `option
//             redispatch`). If no host could be reached the client's
//             connection is closed. A success is reported as status 200,
//             with the connect time as the latency.
//   relay     one fixed buffer per direction (buffer_size): read, then
//             write what was read before reading again, so a slow reader
//             slows its writer down (backpressure) and a connection holds
//             at most two buffers however fast either side sends.
//   half-close  a FIN from one side becomes a shutdown(send) towards the
//             other, and the other direction goes on until it ends too
//             (what `printf x | nc` clients and HTTP/1.0 bodies delimited
//             by close rely on). The connection closes when both
//             directions have ended.
//   reset     a reset (or failed write) on one side resets the other (an
//             RST via SO_LINGER 0) and ends both directions.
//   idle      no byte in either direction for idle_timeout closes both
//             sides (HAProxy's `timeout tunnel`, default 1 h here).
// While a connection is relayed it counts as an active request on its
// host (lb::request_guard), so least_connections and least_request
// balance open connections at L4.
//
// What it does not do (yet): PROXY protocol headers, TLS termination or
// SNI routing, per-client connection limits (see listener_options for the
// per-worker cap), and a graceful end for tunnels on drain: the listeners
// close, and tunnels still open when the runtime's drain_timeout passes
// are cut off with the runtime.
//
// Stats: connections active and total, bytes each way, failed connect
// attempts and connections that found no upstream; as Prometheus metrics
// (trellis_tcp_proxy_*, labelled with the cluster's name) and as a summed
// snapshot (stats()).
//
// Thread-safety: configure and listen() before the runtime runs; each
// worker then has its own balancer, connections and metric instances.
// stats() may be called from any thread once listen() returned. The
// cluster is shared and thread-safe; its owner starts its background
// work (health checks, DNS) with cluster::start().
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "trellis/core/metrics.hpp"
#include "trellis/core/result.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/net/listener.hpp"

namespace trellis::proxy {

struct tcp_proxy_options {
  // Deadline for one connect attempt to an upstream host. Short enough
  // that a dead host costs the client little before failover; long
  // enough for a loaded host's accept queue. > 0; default 5 s.
  std::chrono::milliseconds connect_timeout{5'000};
  // Hosts tried per client connection, the first pick included (each
  // another host). More rides out more dead hosts at the price of a
  // client waiting longer. >= 1; default 3.
  std::size_t connect_attempts = 3;
  // A connection with no byte in either direction for this long is
  // closed on both sides. Long, as HAProxy's `timeout tunnel` usually is:
  // L4 protocols (databases, SSH) sit idle legitimately; shorter frees
  // descriptors of dead peers sooner. > 0; default 1 h.
  std::chrono::milliseconds idle_timeout{3'600'000};
  // Bytes of buffer per direction of a connection (two per connection).
  // Larger moves bulk data with fewer system calls; smaller bounds
  // memory under many connections. >= 1; default 16 KiB.
  std::size_t buffer_size = 16 * 1024;
  // Listener settings, including max_connections per worker.
  net::listener_options listener;
  // Where the metrics go. Null: the proxy keeps its own, see metrics().
  core::metrics_registry* metrics = nullptr;
};

// Totals over every worker since the proxy started.
struct tcp_proxy_stats {
  std::uint64_t active = 0;            // client connections open now
  std::uint64_t total = 0;             // client connections accepted
  std::uint64_t bytes_up = 0;          // client -> upstream
  std::uint64_t bytes_down = 0;        // upstream -> client
  std::uint64_t connect_failures = 0;  // failed connect attempts to upstream hosts
  std::uint64_t no_upstream = 0;       // client connections closed: no host reachable
};

class tcp_proxy {
 public:
  // REQUIRES: upstreams is not null. Throws core::config_error naming the
  // field ("tcp_proxy.connect_timeout", "tcp_proxy.connect_attempts",
  // "tcp_proxy.idle_timeout", "tcp_proxy.buffer_size", "tcp_proxy.cluster")
  // for an invalid setting.
  explicit tcp_proxy(std::shared_ptr<lb::cluster> upstreams, tcp_proxy_options options = {});
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  // Listens on `address` on every worker of `rt`; returns the bound
  // address (port 0 picks one) or the OS error. May be called for several
  // addresses. REQUIRES: the proxy outlives rt.run(); every call uses the
  // same runtime.
  result<asio::ip::tcp::endpoint> listen(core::runtime& rt, const asio::ip::tcp::endpoint& address);

  const tcp_proxy_options& options() const noexcept { return options_; }
  lb::cluster& upstreams() const noexcept { return *cluster_; }
  core::metrics_registry& metrics() noexcept { return *metrics_; }
  // The counters summed over the workers. Any thread.
  tcp_proxy_stats stats() const;

  struct worker_state;

 private:
  std::shared_ptr<lb::cluster> cluster_;
  tcp_proxy_options options_;
  std::unique_ptr<core::metrics_registry> own_metrics_;
  core::metrics_registry* metrics_;
  std::vector<std::unique_ptr<worker_state>> workers_;
};

}  // namespace trellis::proxy
