// client: an HTTP/1.1 client with a connection pool per origin.
//
// What happens when a program requests a URL, step by step, and what this
// client does at each step:
//
//   1. Pick a connection. Connections are pooled per origin (scheme, host,
//      port: url::origin()). An idle one is reused if the server has not
//      closed it meanwhile (checked without blocking before each reuse);
//      otherwise a new one is opened, up to max_connections_per_origin; past
//      that the request waits in line, at most pool_wait_timeout.
//   2. Resolve the host through trellis's DNS resolver (hosts file, cache,
//      A and AAAA in parallel), within resolve_timeout.
//   3. Connect with Happy Eyeballs (net/connect.hpp), within connect_timeout.
//   4. For https, the TLS handshake with SNI and certificate verification
//      against the host name (on by default, system CA store), within
//      tls_timeout.
//   5. Send the request head and body; then wait for the first byte of
//      the response, within first_byte_timeout.
//   6. Read the response with trellis's strict parser (framing errors,
//      oversize heads, bad chunking and an early close are errors, never a
//      truncated body reported as success); give the connection back to the
//      pool when the response said keep-alive and was read to its end.
//   7. Follow redirects when asked (http/redirect.hpp), each hop a new
//      exchange, all of them within request_timeout.
//
// A request that fails on a reused connection before any byte of the
// response arrived — the server closed the idle connection as the request
// went out, the classic keep-alive race — is sent once more on a fresh
// connection when its method is idempotent (RFC 9110 §9.2.2) and its body
// can be sent again; never otherwise, since a POST may have been acted on.
//
// Every response says how long each phase took and whether its connection
// was reused (client_response::timing); an observer sees each step as it
// happens (the verbose mode of trellis-fetch).
//
//   http::client c(ex, resolver);
//   auto r = co_await c.get("http://127.0.0.1:8080/");
//   if (!r) log(r.error().message());        // "connect timed out", "hostname mismatch"...
//   else    use(r->status, r->body);
//
// Thread-safety: a client belongs to one executor (one worker): its pool
// needs no lock. A program with several workers gives each its own client,
// as it gives each its own resolver.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "trellis/codec/http/fields.hpp"
#include "trellis/codec/http/parser.hpp"
#include "trellis/core/result.hpp"
#include "trellis/dns/resolver.hpp"
#include "trellis/http/client_error.hpp"
#include "trellis/http/message.hpp"
#include "trellis/http/proxy_config.hpp"
#include "trellis/http/redirect.hpp"
#include "trellis/net/tls.hpp"

namespace trellis::http {

struct client_options {
  // --- the pool ---------------------------------------------------------------
  // Connections open to one origin at most, busy and idle together. More
  // lets more requests run at once; each costs the server a connection.
  // Browsers use 6 per origin; 16 suits a proxy talking to a backend.
  std::size_t max_connections_per_origin = 16;
  // How long an idle connection is kept for reuse. Shorter than the
  // server's own idle timeout avoids most races with its close (nginx
  // closes after 75 s, many servers after 60 s or less).
  std::chrono::milliseconds idle_timeout{30'000};
  // Before reusing a connection that has been idle at least this long,
  // check without blocking that the server has not closed it (one recv
  // with MSG_PEEK, as curl does). 0 (the default): check every reuse.
  // A proxy relaying thousands of requests a second on busy connections
  // sets it to a second or so and saves a system call per request: a
  // connection the server closed a moment ago then fails the request, and
  // only an idempotent one is retried (nginx and HAProxy never check).
  std::chrono::milliseconds check_idle_after{0};
  // How long a request waits for a connection when its origin is at
  // max_connections_per_origin. Beyond it: client_error::pool_wait_timeout.
  std::chrono::milliseconds pool_wait_timeout{10'000};

  // --- deadlines, one per phase -------------------------------------------------
  std::chrono::milliseconds resolve_timeout{5'000};  // client_error::resolve_timeout
  std::chrono::milliseconds connect_timeout{5'000};  // client_error::connect_timeout
  std::chrono::milliseconds tls_timeout{10'000};     // client_error::tls_timeout
  // From the end of sending the request to the first byte of the response:
  // the server's thinking time plus a round trip. (Sending itself is bounded
  // by request_timeout, so a large upload is not cut short by this.)
  std::chrono::milliseconds first_byte_timeout{30'000};  // client_error::first_byte_timeout
  // Longest pause while the response body arrives: each read of the body
  // must bring bytes within it. 0 (the default): only request_timeout
  // bounds the body. A proxy relaying downloads sets it instead of a short
  // total deadline.
  std::chrono::milliseconds read_timeout{0};  // client_error::read_timeout
  // The whole call: every phase of every hop, the body included.
  std::chrono::milliseconds request_timeout{120'000};  // client_error::request_timeout

  // --- limits -------------------------------------------------------------------
  // The response parser's limits: head size and field count, chunk line,
  // trailers, and max_body, the body limit, counted after content decoding.
  // Default 64 MiB of body, whether held in memory or streamed to a sink:
  // raise it for large downloads. Beyond any of them:
  // client_error::response_too_large.
  parser_limits limits = default_limits();

  // --- TLS ----------------------------------------------------------------------
  // Verification is on unless tls.verify is false: CA file (default: the
  // system store), client certificate, ALPN. Bad files throw
  // core::config_error from the constructor, naming the field.
  net::tls::client_options tls;

  // --- behaviour ----------------------------------------------------------------
  redirect_options redirects;
  // Ask for gzip/deflate (Accept-Encoding) and decode what comes back;
  // the decoded response has no Content-Encoding or Content-Length field.
  bool decode_content = false;
  // Forward proxies (proxy_config_from_env(process_env) for the usual
  // environment variables). http:// requests go to the proxy in absolute
  // form; https:// requests through a CONNECT tunnel.
  proxy_config proxy;
  // Sent when the request has no User-Agent field; empty: none.
  std::string user_agent = "trellis/0.1";

  static parser_limits default_limits() {
    parser_limits l;
    l.max_body = 64u << 20;
    return l;
  }
};

// How long each phase of one call took. Phases a reused connection skips
// are zero. With redirects, the figures are the last hop's except total.
struct client_timing {
  std::chrono::microseconds dns{0};         // name resolution
  std::chrono::microseconds connect{0};     // TCP connect (to the proxy, if any)
  std::chrono::microseconds tls{0};         // TLS handshake
  std::chrono::microseconds first_byte{0};  // request sent -> first response byte (TTFB)
  std::chrono::microseconds total{0};       // the whole call, every hop
  bool reused = false;                      // the last hop ran on a pooled connection
  unsigned retries = 0;                     // stale-connection retries (0 or 1 per hop)
};

// A request: method, absolute URL, fields and an optional body.
struct client_request {
  std::string method = "GET";  // any token; case-sensitive (RFC 9110 §9.1)
  std::string url;             // absolute http:// or https:// URL
  // Content-Length and Transfer-Encoding are the client's to write. A Host
  // here replaces the URL's authority in the Host field (as curl -H does);
  // it is dropped on a redirect.
  fields headers;
  std::string body;            // sent with Content-Length (also 0 for POST/PUT/PATCH)
  // A streamed body instead of `body`: called until it returns an empty
  // view; each view valid until the next call. Sent chunked, or raw when
  // headers carry a Content-Length (which it must then match exactly).
  // A streamed body cannot be sent twice: no stale-connection retry, and a
  // 307/308 redirect is returned to the caller instead of followed.
  std::function<asio::awaitable<result<std::string_view>>()> body_source;
  // The request-target to send as is, instead of the URL's path and query:
  // an origin-form target ("/a%2Fb?x=1") that a proxy forwards byte for
  // byte, or "*". Empty (the default): the URL's. A redirect uses its
  // Location. Anything else is client_error::bad_url.
  std::string target;
};

struct client_response {
  int status = 0;
  std::string reason;
  int version_minor = 1;
  fields headers;
  std::string body;  // empty when a sink took it
  std::string url;   // the URL that answered (after redirects)
  unsigned redirects = 0;
  client_timing timing;
  asio::ip::tcp::endpoint remote;  // the peer of the last hop (the proxy, through one)
};

// Sees each step of a call as it happens; every method has an empty
// default. Views are valid during the call only.
class client_observer {
 public:
  virtual ~client_observer() = default;
  // A name resolved (not called for IP literals). `ttl`: seconds the
  // answer stays cached (for the family of the first address).
  virtual void on_resolved(std::string_view /*host*/,
                           std::span<const asio::ip::address> /*addresses*/,
                           std::uint32_t /*ttl*/) {}
  virtual void on_connected(const asio::ip::tcp::endpoint& /*peer*/) {}
  virtual void on_tls(const net::tls::session_info& /*session*/) {}
  virtual void on_reused(const asio::ip::tcp::endpoint& /*peer*/) {}
  virtual void on_request_head(std::string_view /*bytes*/) {}
  virtual void on_response_head(std::string_view /*bytes*/) {}
  virtual void on_redirect(int /*status*/, std::string_view /*next_url*/) {}
  virtual void on_retry(std::error_code /*why*/) {}
};

// Per-call extras.
struct call_options {
  // Receives the body piece by piece instead of client_response::body;
  // the next read from the socket waits for it (backpressure). An error it
  // returns ends the call with that error.
  std::function<asio::awaitable<std::error_code>(std::string_view)> sink;
  // Called once the final response's head is known (status, reason,
  // fields; body still empty), before its first body byte: the place to
  // print a head or decide what to do with the body that follows. The
  // bodies of redirects that are followed reach neither this nor the sink.
  std::function<void(const client_response&)> on_head;
  client_observer* observer = nullptr;
};

// Pool figures, for tests and metrics.
struct client_stats {
  std::uint64_t connections_opened = 0;
  std::uint64_t connections_reused = 0;
  std::uint64_t stale_closed = 0;  // idle connections found closed by the server
  std::uint64_t retries = 0;
  std::size_t idle = 0;  // now
  std::size_t open = 0;  // now, busy and idle
};

namespace detail {
struct client_state;
struct stream_state;
}  // namespace detail

// A response whose body the caller reads piece by piece: client::open()
// returns one once the head has arrived. Reading is pull-based: the next
// socket read happens only when the caller asks, so a slow consumer slows
// the server down instead of filling memory (what a proxy needs to relay
// a large download at the pace of its own client).
class client_stream {
 public:
  client_stream(client_stream&&) noexcept;
  client_stream& operator=(client_stream&&) noexcept;
  // A body not read to its end closes the connection (the bytes left on it
  // would be taken for the next response).
  ~client_stream();

  // Status, reason, fields, peer and timing (total: up to the head); the
  // body is empty.
  const client_response& response() const noexcept;
  client_response& response() noexcept;  // to move the fields out
  // The next piece of the body (decoded when decode_content is on), or an
  // empty view at its end, when the connection goes back to the pool. The
  // view is valid until the next call. Errors as client::send()'s; after
  // one, the connection is closed and every later call fails.
  asio::awaitable<result<std::string_view>> read_some();
  // Whether the body was read to its end.
  bool done() const noexcept;
  // When the response turned the connection into a tunnel — a 101
  // (Switching Protocols) or a 2xx to CONNECT — the connection as a raw
  // byte stream (bytes that came after the head first; each read bounded
  // by read_timeout when set); null otherwise. The connection belongs to
  // the stream: it closes with it and never returns to the pool.
  tunnel* upgraded() noexcept;

 private:
  friend class client;
  explicit client_stream(std::unique_ptr<detail::stream_state> state);
  std::unique_ptr<detail::stream_state> state_;
};

class client {
 public:
  // Uses `resolver` for names. REQUIRES: the resolver and every call run
  // on `ex`, and the resolver outlives the client.
  // Throws core::config_error for bad TLS files ("tls.ca_file"...).
  client(asio::any_io_executor ex, dns::resolver& resolver, client_options options = {});
  ~client();  // closes every pooled connection
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends `req` and reads the whole response (or hands its body to
  // opts.sink). Errors: client_error for the phase that failed (and its
  // timeouts), url_error for a malformed URL, http::error for a malformed
  // response, a verify_category() code for a certificate that failed
  // verification, the OS error of a failed connect.
  asio::awaitable<result<client_response>> send(client_request req, call_options opts = {});
  asio::awaitable<result<client_response>> get(std::string url, call_options opts = {});

  // Sends `req` and returns once the response head has arrived; the caller
  // reads the body from the stream. Redirects are not followed (a 3xx is
  // returned like any response); opts.sink is not used. Same pool, retry,
  // deadlines and errors as send(); request_timeout also bounds the reading
  // of the body. REQUIRES: the client outlives the stream.
  asio::awaitable<result<client_stream>> open(client_request req, call_options opts = {});

  // Closes idle connections now (busy ones close when their call ends).
  void close_idle();

  client_stats stats() const;
  const client_options& options() const noexcept;

 private:
  std::shared_ptr<detail::client_state> state_;
};

// Whether a request with `method` may be repeated without a different
// effect (RFC 9110 §9.2.2): GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
bool is_idempotent(std::string_view method) noexcept;

}  // namespace trellis::http
