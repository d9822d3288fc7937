// reverse_proxy: an HTTP handler that forwards each request to a host of
// an upstream cluster and relays the response back.
//
// A reverse proxy stands in front of servers and speaks for them: the
// client connects to the proxy, the proxy picks a backend (lb::cluster,
// lb::balancer), sends the request on a pooled keep-alive connection
// (http::client), and relays the response. What it does for one request:
//
//   1. Rewrites the request: hop-by-hop fields removed (forwarding.hpp),
//      X-Forwarded-* / Forwarded / Via set, the request id kept or made
//      (X-Request-Id), optionally the Host replaced and a path prefix
//      stripped or replaced. The request-target is otherwise passed on
//      byte for byte — a proxy that "cleans up" paths disagrees with the
//      backend about what was asked for.
//   2. Picks a host. None available (every host ejected or failing its
//      checks with panic off): 503.
//   3. Sends the request, streaming its body as it arrives from the client
//      (no buffering of whole uploads: the next read from the client waits
//      for the write to the backend).
//   4. Waits for the response head within the first-byte deadline. Status
//      mapping of failures (nginx's and Envoy's): connect refused, reset,
//      or a malformed response -> 502; the pool full for too long or no
//      host -> 503; a deadline -> 504.
//   5. Retries, when the attempt failed without a response: to a different
//      host, only when it is safe — an idempotent method, or a failure
//      before anything was sent (connect) for any method — only while the
//      request body has not started to flow, and only within the retry
//      budget (Envoy's: retries in flight may be at most budget x requests
//      in flight, with a floor), so that retries cannot multiply the load
//      on a cluster that is already failing.
//   6. Relays the response: a small body (up to buffer_size) is read whole
//      and sent with its head in one write; a larger one is streamed at the
//      pace of the client (the next read from the backend waits for the
//      write to the client). Framing is the proxy's own on each side, so a
//      backend that breaks its framing mid-body makes the proxy cut its own
//      response short (the client sees an incomplete message, never a
//      clean but truncated one).
//   7. Reports the outcome to the balancer: latency and status feed the
//      policy (peak EWMA, Retry-After) and the cluster's outlier detection.
//
// Threading: shared-nothing. The proxy keeps, per worker of the runtime,
// its own http::client (the connection pool), DNS resolver and balancer;
// a request uses its worker's. The cluster is shared (it is thread-safe).
// Make the proxy before runtime::run() and keep it alive until run()
// returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/metrics.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/caching.hpp"
#include "trellis/http/client.hpp"
#include "trellis/http/message.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/lb/hash_policy.hpp"
#include "trellis/proxy/forwarding.hpp"
#include "trellis/proxy/http_cache.hpp"

namespace trellis::proxy {

namespace detail {
struct upstream_call;
class body_capture;
}  // namespace detail

// What the Host field of the forwarded request says.
enum class host_header {
  keep,      // the client's (HAProxy's and Envoy's default)
  upstream,  // the picked host's address (nginx's default, $proxy_host)
  fixed,     // reverse_proxy_options::host_value
};

// Caching (a CDN edge): responses kept in a shared http_cache and served
// by RFC 9111's rules (http/caching.hpp). See docs/caching.md.
struct proxy_cache_options {
  // Where responses are kept; null: no caching. May be shared by several
  // proxies (and purged through it).
  std::shared_ptr<http_cache> store;
  // The rules' knobs: heuristic freshness, stale-if-error default...
  http::cache_options rules;
  // The cache's name in Cache-Status (RFC 9211).
  std::string name = "trellis";
  // How long a stale response with a validator (ETag, Last-Modified) is
  // kept past its freshness, for a cheap revalidation (a 304) instead of
  // a full fetch. Beyond it, or without a validator, a response is kept
  // only as long as stale-while-revalidate / stale-if-error may use it.
  std::chrono::seconds keep_stale{3600};
  // Compress compressible responses (http::is_compressible Content-Type,
  // no Content-Encoding, no no-transform, from gzip_min_size to
  // gzip_max_size bytes) with gzip once, when they are stored, and serve
  // that copy to clients whose Accept-Encoding takes gzip — a CDN's edge
  // compression. Responses that have a gzip copy carry "Vary:
  // Accept-Encoding" and, compressed, a weak ETag (RFC 9110 §8.8.1: the
  // bytes differ, the content does not).
  bool gzip = false;
  std::size_t gzip_min_size = 1024;
  std::size_t gzip_max_size = 4 << 20;
};

// The key a caching reverse proxy stores a URL's responses under: the
// absolute URL with scheme and host lower-cased and a default port left
// out ("http://example.com/a?b"); what http_cache::purge() takes.
std::string cache_key(const http::url& u);

struct reverse_proxy_options {
  // --- deadlines, towards the upstream ------------------------------------
  // Connecting (and, for https upstreams, the TLS handshake). Short: a host
  // that does not accept in this time is better skipped for another.
  std::chrono::milliseconds connect_timeout{5'000};
  // From the request having been sent to the first byte of the response:
  // the backend's thinking time. nginx's proxy_read_timeout default.
  std::chrono::milliseconds first_byte_timeout{60'000};
  // Longest pause while the response body arrives.
  std::chrono::milliseconds idle_timeout{60'000};
  // The whole exchange with the upstream, body included. Long by default:
  // a large download is not a slow one. 0: no limit beyond the others.
  std::chrono::milliseconds total_timeout{0};
  // How long a request waits for a connection when max_connections to
  // its host are busy: 503 beyond it.
  std::chrono::milliseconds pool_wait_timeout{5'000};
  // Connections to one upstream host per worker, busy and idle.
  std::size_t max_connections = 64;
  // Idle upstream connections are closed after this.
  std::chrono::milliseconds upstream_idle_timeout{30'000};

  // --- retries --------------------------------------------------------------
  // Extra attempts after the first, each to a host not tried yet. 0: none.
  unsigned max_retries = 1;
  // Retries in flight may be at most this fraction of the requests in
  // flight (per worker), but at least min_retry_concurrency: a failing
  // cluster gets a bounded amount of extra load, not twice its traffic.
  double retry_budget = 0.2;
  unsigned min_retry_concurrency = 3;
  // Also retry (idempotent requests) when the response is 502, 503 or 504
  // from the backend itself; its body is dropped. Off by default, as in
  // nginx (proxy_next_upstream error timeout).
  bool retry_on_gateway_status = false;

  // What ring_hash and maglev hash for a request (client IP, a header, a
  // cookie, the path). Unset: requests have no hash and those policies
  // pick at random.
  std::optional<lb::hash_policy> hash;

  // --- rewriting --------------------------------------------------------------
  forwarding_options forwarding;
  host_header host = host_header::keep;
  std::string host_value;  // for host_header::fixed
  // A path prefix replaced before forwarding: with strip_prefix "/api" and
  // prefix_rewrite "/v2", "/api/users?x" goes out as "/v2/users?x"; with
  // an empty rewrite, as "/users?x". The prefix must match whole segments
  // ("/api" does not match "/apix"). Empty: the path is not touched.
  std::string strip_prefix;
  std::string prefix_rewrite;
  // The request id field: kept when the client sent a sane one (visible
  // ASCII, at most 200 bytes), made (32 hex digits) otherwise, and copied
  // to the response. Empty: no request ids.
  std::string request_id_header = "X-Request-Id";
  // The last word on the fields of each request as it goes upstream, after
  // the proxy's own (forwarding fields, request id, Host): header
  // transformations, and what an API gateway tells its services about the
  // request — the subject a token authenticated, from the request's
  // attributes. Called once per attempt, on the request's worker; it must
  // not touch framing fields (Content-Length, Transfer-Encoding), which the
  // proxy derives from the body it sends. Unset: nothing more is done.
  std::function<void(const http::request&, http::fields&)> adjust_request;

  // --- the response -----------------------------------------------------------
  // A response body up to this size is read whole before the head is
  // sent (one write for head and body, and the upstream connection is free
  // sooner); beyond it the body is streamed. nginx's proxy_buffers.
  std::size_t buffer_size = 64 * 1024;
  // The largest response head accepted from a backend (502 beyond).
  std::size_t max_response_head = 64 * 1024;

  // TLS towards https upstreams (verification on by default).
  net::tls::client_options upstream_tls;
  bool upstream_https = false;

  // --- caching ------------------------------------------------------------------
  proxy_cache_options cache;

  // Where per-cluster metrics go: upstream responses by class, failures by
  // kind, retries, upstream latency. Null: the proxy keeps its own.
  core::metrics_registry* metrics = nullptr;
};

// Failure counts, summed over workers; for tests and the admin page.
struct reverse_proxy_stats {
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;
  std::uint64_t no_host = 0;         // 503: nothing to pick
  std::uint64_t connect_errors = 0;  // 502
  std::uint64_t timeouts = 0;        // 504
  std::uint64_t bad_responses = 0;   // 502: broken framing or a reset mid-response
  std::uint64_t retry_budget_exhausted = 0;
};

class reverse_proxy {
 public:
  // One per-worker state for each worker of `rt`. Throws core::config_error
  // for bad options ("proxy.retry_budget", "proxy.host_value"...).
  // REQUIRES: cluster is not null; the proxy outlives every request it
  // handles.
  reverse_proxy(core::runtime& rt, std::shared_ptr<lb::cluster> cluster,
                reverse_proxy_options options = {});
  ~reverse_proxy();
  reverse_proxy(const reverse_proxy&) = delete;
  reverse_proxy& operator=(const reverse_proxy&) = delete;

  // The handler to give an http::server or a router route. It refers to
  // this proxy.
  http::handler handler();
  // Forwards one request (what handler() calls). REQUIRES: runs on a
  // worker of the runtime given to the constructor.
  asio::awaitable<void> handle(http::request& req, http::response& res);

  lb::cluster& cluster() const noexcept { return *cluster_; }
  const reverse_proxy_options& options() const noexcept { return options_; }
  core::metrics_registry& metrics() noexcept { return *metrics_; }
  reverse_proxy_stats stats() const;

  struct worker_state;

 private:
  using fields_adjuster = std::function<void(http::fields&)>;

  worker_state& state_for(const asio::any_io_executor& ex);
  // Picks a host, sends the request (with retries) and waits for the
  // response head; `adjust`, when set, has the last word on the fields.
  asio::awaitable<void> call_upstream(http::request& req, worker_state& ws,
                                      std::string_view request_id, const fields_adjuster* adjust,
                                      detail::upstream_call& out);
  // Answers the client for a call that got no response.
  void answer_failure(const detail::upstream_call& call, worker_state& ws,
                      std::string_view request_id, http::response& res);
  // Relays the call's response (detail::relay_response), its body also to
  // `capture` when set.
  asio::awaitable<void> relay(http::request& req, http::response& res, worker_state& ws,
                              detail::upstream_call& call, std::string_view request_id,
                              std::shared_ptr<detail::body_capture> capture);
  // handle() with a cache (reverse_proxy_cache.cpp).
  asio::awaitable<void> handle_cached(http::request& req, http::response& res, worker_state& ws,
                                      std::string_view request_id);
  // Revalidates or refetches `stored` for `key` after a stale response was
  // served (stale-while-revalidate). Every argument is owned by the task
  // that runs it (`req` is a copy of the request).
  asio::awaitable<void> refresh_in_background(http::request& req, worker_state& ws,
                                              const std::string& key, const cached_ptr& stored,
                                              const std::string& request_id);
  enum class cache_result { hit, stale, revalidated, miss, bypass };
  void count_cache(cache_result r);

  std::shared_ptr<lb::cluster> cluster_;
  reverse_proxy_options options_;
  std::unique_ptr<core::metrics_registry> own_metrics_;
  core::metrics_registry* metrics_;
  std::vector<std::unique_ptr<worker_state>> workers_;
  core::counter* cache_counters_[5] = {};  // by cache_result
};

}  // namespace trellis::proxy
