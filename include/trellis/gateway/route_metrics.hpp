// Per-route metrics: requests by status class, a latency histogram and
// the requests in flight, labelled by route name, in a
// core::metrics_registry and so in the Prometheus text format
// (ARCHITECTURE, principle 8 — the RED method: rate, errors, duration).
//
//   trellis_route_requests_total{route="users",class="2xx"} 1042
//   trellis_route_request_duration_seconds_bucket{route="users",le="0.000511"} 97
//   trellis_route_requests_in_flight{route="users"} 3
//
// The server's own metrics (trellis_http_*) count the whole server; these
// split it by route, which is where a gateway's questions are ("is the
// orders API slow?"). p50/p90/p99 come from the histogram: Prometheus
// computes them with histogram_quantile() over the buckets, and
// stats(route).latency.percentile(99) gives them in-process.
//
// The route name is the request attribute "route" — set by wrap() around
// a handler, or by earlier middleware — else route_metrics_options::route:
//
//   auto metrics = std::make_shared<gateway::route_metrics>(opts);
//   r.use(metrics);
//   r.get("/users/{id}", metrics->wrap("users.get", get_user));
//
// The middleware's before() runs before the router has matched a route,
// so it counts the request in flight under the name known then; wrap()
// moves that count to the route's own name when the handler starts, and
// after() counts and times the request under the name known at the end.
// Label values must come from a small fixed set (every distinct value is
// a new series in Prometheus, forever): names beyond max_routes are
// counted as "other".
//
// Latency runs from this middleware's before() to its after(): put it
// first in the chain to time the other middleware too.
//
// Recording without contention: a core::histogram takes one writer thread
// only (see core/metrics.hpp), and the middleware is shared by every
// worker. So each thread that records gets its own instances of a route's
// series, registered on its first request there (a mutex, once); later
// requests find them through a thread_local table with no lock and no
// atomic read-modify-write but the counters'. The registry sums the shards
// on exposition, as it does for the server's per-worker shards. The price
// is memory: one histogram (~8 KiB) per thread per route.
//
// Thread-safety: shared by every worker; all members may be called
// concurrently.
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "trellis/core/metrics.hpp"
#include "trellis/http/message.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

struct route_metrics_options {
  // Where the series go; null: the middleware keeps its own registry (see
  // metrics()). Share the server's to expose everything on one endpoint.
  core::metrics_registry* metrics = nullptr;
  // The route label of requests without a "route" attribute.
  std::string route = "default";
  // Distinct route names kept; requests of further names are counted
  // under "other". Each name costs 7 series per exposition (plus the
  // histogram's bucket lines) and a histogram per worker thread.
  std::size_t max_routes = 100;
  // Latency clock, injectable for tests; null: steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock{};
};

// One route's totals, merged over every thread.
struct route_stats {
  std::uint64_t by_class[5] = {};  // 1xx, 2xx, 3xx, 4xx, 5xx
  std::int64_t in_flight = 0;
  core::histogram_snapshot latency;  // nanoseconds
};

class route_metrics final : public http::middleware {
 public:
  // Throws core::config_error: "route_metrics.route" (empty),
  // "route_metrics.max_routes" (zero); the registry's own errors when its
  // metric names were registered with another type or help.
  explicit route_metrics(route_metrics_options options = {});
  ~route_metrics() override;

  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;
  asio::awaitable<void> after(http::request& req, http::response& res) override;

  // A handler that names its route: sets the request attribute "route"
  // to `name` (which access_log also reads), moves the request's in-flight
  // count to that name, then runs `h`. REQUIRES: this middleware outlives
  // the handler.
  http::handler wrap(std::string name, http::handler h);

  // The totals of `route` so far (zeros for a route never seen).
  route_stats stats(std::string_view route) const;

  core::metrics_registry& metrics() noexcept { return *metrics_; }

 private:
  struct impl;
  std::unique_ptr<core::metrics_registry> own_metrics_;
  core::metrics_registry* metrics_;
  std::unique_ptr<impl> impl_;
};

}  // namespace trellis::gateway
