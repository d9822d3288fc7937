// dashboard: the gateway's live view — a sampler that turns its metrics
// into per-second rates and percentiles, and the page that charts them.
//
// Prometheus answers "what happened" by scraping counters and letting the
// server compute rates; a dashboard inside the gateway answers "what is
// happening now" with nothing else to run. Every `interval` the sampler
// reads the registry (the same series /metrics exposes) and the gateway's
// status, and keeps the differences since the previous reading:
//
//   requests, by_class      trellis_route_requests_total      / interval
//   p50_ms, p99_ms          trellis_route_request_duration_seconds, the
//                           buckets that grew in the interval
//                           (histogram_snapshot::since)
//   cache_hits, _misses     trellis_proxy_cache_requests_total: hit, stale
//                           and revalidated are hits (served from the
//                           cache); miss is a miss; bypass is neither
//   rate_limited            trellis_rate_limit_requests_total{result=
//                           "limited"} (a request refused by two policies
//                           counts twice)
//   in_flight               trellis_route_requests_in_flight, now
//   healthy_hosts           per cluster, from status()
//
// Percentiles of an interval, not of all time: a p99 averaged since start
// hides the minute that matters (the study guide's SLI chapter). An
// interval with no finished request has null percentiles — a gap in the
// chart, not a misleading zero. The last `history` samples are kept (a
// ring: memory is fixed, ~200 bytes per sample plus the cluster names).
//
//   gateway::dashboard d(metrics, [&] { return gw.status(); });
//   d.start(rt[0]);                       // samples until the worker drains
//   d.mount(admin_router);                // GET /dashboard, /dashboard/data
//
// Counters only grow (a reload registers new instances of the same series,
// and the registry sums them), so a difference is never negative; if one
// ever is, after an external reset, the sample counts it as zero.
//
// Thread-safety: sample() and data() may be called from any thread
// (a mutex); start() from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trellis/core/metrics.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

struct dashboard_options {
  // Time between samples; the page polls at the same pace.
  std::chrono::milliseconds interval{1000};
  // Samples kept (5 minutes at the default interval).
  std::size_t history = 300;
};

class dashboard {
 public:
  // `status` returns the gateway's status JSON (gateway::status(): the
  // "generation", "clusters" with their "hosts", "routes" with their
  // "breaker"). Throws core::config_error for a zero interval or history
  // ("dashboard.interval", "dashboard.history").
  dashboard(core::metrics_registry& metrics, std::function<nlohmann::json()> status,
            dashboard_options options = {});
  ~dashboard();
  dashboard(const dashboard&) = delete;
  dashboard& operator=(const dashboard&) = delete;

  // Takes a sample at wall time `now`: rates over the time since the
  // previous call. The first call only records the baseline. Tests call
  // it directly; start() calls it every interval.
  void sample(std::chrono::system_clock::time_point now);

  // {"interval_ms", "generation", "samples": [...], "clusters": [...],
  //  "routes": [...]}: the page's data (see dashboard_page.hpp).
  nlohmann::json data() const;

  // Samples every interval on `w`, from now until `w` drains.
  // REQUIRES: the dashboard outlives the worker's run.
  void start(core::worker& w);

  // GET `path` (the page) and GET `path` + "/data" (data()).
  // REQUIRES: the dashboard outlives the router's handlers.
  void mount(http::router& r, const std::string& path = "/dashboard");

  // Samples taken so far (at most history).
  std::size_t size() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace trellis::gateway
