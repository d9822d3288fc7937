// dashboard_page: the HTML page of the gateway's live dashboard.
//
// One self-contained document that charts what the dashboard sampler
// collects (gateway/dashboard.hpp): requests per second; latency p50 and
// p99 in milliseconds; responses per second by status class, stacked;
// healthy hosts per cluster over time, with a table of the hosts as they
// are now (healthy, ejected, circuit breaker state); the cache hit ratio
// in percent; rate-limit rejections per second. A header line gives the
// configuration generation, the current request rate and the time of the
// last sample, and a table the totals of each route.
//
// Served at some path P, the page polls P + "/data" (P taken from its own
// location, a trailing '/' stripped) with fetch() every "interval_ms" of
// the answer, and redraws. Gaps in the data (a null percentile: no request
// finished in that second; a null hit ratio: nothing cacheable was looked
// up) are drawn as gaps, not zeros. A failed poll shows "no data from the
// gateway" and the page keeps polling, so it recovers by itself when the
// gateway comes back or is restarted.
//
// No external dependency: the CSS and the script are inline and the
// charts are drawn by hand on <canvas>; no CDN, font or image. An admin
// listener is often on a host without Internet access, an outage is
// exactly when a CDN may be unreachable, and a page that loads nothing
// from elsewhere can be served under a Content-Security-Policy of
// "default-src 'none'" plus inline script and style, with "connect-src
// 'self'" for the polling.
//
// For tests, after every successful render the page sets on <body>
// data-rendered="true" and data-samples="N" (the samples drawn), and on
// each chart's element (id "chart-" + requests, latency, status, health,
// cache or ratelimit) data-points="N": the non-null values drawn, summed
// over the chart's series. Each chart's latest value is the text of
// "latest-" + the same name; the status line is #status, with
// data-status="ok" or "err" on <body>.
//
// Thread-safety: the page is a constant; call from any thread.
#pragma once

#include <string_view>

namespace trellis::gateway {

// The page, UTF-8 HTML. The view refers to static storage.
std::string_view dashboard_page() noexcept;

// The Content-Security-Policy to serve the page with: nothing from
// anywhere but the page's own inline script and style, and fetch() to its
// own origin. A CDN script added by mistake is refused by the browser
// (and shows as a console message in the page's test).
std::string_view dashboard_content_security_policy() noexcept;

}  // namespace trellis::gateway
