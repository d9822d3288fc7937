// server: an HTTP/1.1 server on trellis's runtime (RFC 9112, RFC 9110).
//
// One coroutine per busy connection, on the worker that accepted it. Per
// request: wait until the socket is readable, read what is there, parse
// every complete request in it, run the handler for each, serialise the
// responses into one buffer, and send them with one write — so a
// pipelined burst of 16 requests costs one read and one write (nginx
// writes each response separately), and a keep-alive request costs one
// read, one write and the epoll re-arm of the readiness wait.
//
// Memory: an idle plain-HTTP keep-alive connection holds no read buffer,
// no parser and no response: those live in a per-worker pool, taken when
// bytes arrive and given back when the connection goes idle. After 100 ms
// idle it also gives up its coroutine ("parks"): it waits for its next
// request as a bare completion handler, and the request loop starts again
// when bytes arrive. What a parked connection costs is its socket, its
// connection object (its deadline is a node in the worker's deadline
// lists, see net::deadline) and its pending readiness wait: about 0.7 KiB,
// as much as nginx's. Keep-alive clients that send their next request
// sooner never park, so a busy connection pays nothing for it. (A TLS
// connection keeps its set and its coroutine while idle: OpenSSL holds
// decrypted bytes the socket's readiness cannot show.)
//
// Deadlines (one sliding watchdog per connection, net::deadline):
//   idle_timeout     waiting for the first byte of the next request; closed silently
//   header_timeout   from the first byte of a request until its head is complete;
//                    408 and close (the slowloris defence)
//   body_timeout     between two reads of the request body that make progress (408)
//   write_timeout    for each write of the response to make progress; close
//   request_timeout  for the handler; the connection is closed when it passes
// Malformed requests get the status their error calls for (400, 413, 414,
// 417, 431, 501, 505) and the connection is closed after it: with broken
// framing nothing that follows can be trusted.
//
// Shutdown: on drain the listeners close, idle connections close at once,
// and busy ones finish their current request and answer with
// "Connection: close".
//
// Thread-safety: a server is configured before listen() and then shared
// by every worker; each worker has its own connections, pools and metric
// instances.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "trellis/codec/http/parser.hpp"
#include "trellis/core/metrics.hpp"
#include "trellis/core/result.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/message.hpp"
#include "trellis/net/listener.hpp"

namespace trellis::http {

struct server_options {
  // Parser limits: request line (414), header section and count (431),
  // body (413), chunk line and trailers. See parser_limits.
  parser_limits limits;
  // Keep-alive: how long a connection may wait for its next request. Idle
  // connections cost little here (no buffers), so the limit is about
  // descriptors and NAT state, not memory.
  std::chrono::milliseconds idle_timeout{60'000};
  // From a request's first byte until its head is complete. Short enough
  // to shed slow-header (slowloris) clients; long enough for slow links.
  std::chrono::milliseconds header_timeout{10'000};
  // Longest wait for more request body while the handler reads it: a floor
  // on upload rate without penalising large uploads that keep moving.
  std::chrono::milliseconds body_timeout{30'000};
  // Longest wait for the client to take more of a response.
  std::chrono::milliseconds write_timeout{30'000};
  // Longest a handler may run; the connection is closed when it passes.
  std::chrono::milliseconds request_timeout{120'000};
  // A connection taken over after a 101 or a CONNECT (response::upgrade)
  // closes after this long without a byte either way: long, since a quiet
  // WebSocket is normal (HAProxy's `timeout tunnel`).
  std::chrono::milliseconds tunnel_timeout{3'600'000};
  // Pipelined requests answered before their responses are written out.
  // Batching saves writes; the cap bounds the response buffer.
  std::size_t max_pipelined = 16;
  // Unread request body the server reads and discards after a handler
  // ignored it, to keep the connection; beyond it the connection closes.
  std::size_t discard_body_limit = 64 * 1024;
  // Listener settings, including max_connections per worker.
  net::listener_options listener;
  // The Server field of every response; empty to send none.
  std::string server_name = "trellis";
  // Where the server's metrics go (requests by status class, bytes, active
  // connections, latency). Null: the server keeps its own, see metrics().
  core::metrics_registry* metrics = nullptr;
};

class server {
 public:
  explicit server(handler h, server_options options = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Listens on `address` on every worker of `rt` (plain HTTP, or HTTPS when
  // `tls` is given; give its context the "http/1.1" ALPN protocol). Returns
  // the bound address. REQUIRES: the server and `tls` outlive rt.run().
  result<asio::ip::tcp::endpoint> listen(core::runtime& rt, const asio::ip::tcp::endpoint& address,
                                         asio::ssl::context* tls = nullptr);

  const server_options& options() const noexcept { return options_; }
  core::metrics_registry& metrics() noexcept { return *metrics_; }

  struct worker_state;

 private:
  handler handler_;
  server_options options_;
  std::unique_ptr<core::metrics_registry> own_metrics_;
  core::metrics_registry* metrics_;
  std::vector<std::unique_ptr<worker_state>> workers_;
};

}  // namespace trellis::http
