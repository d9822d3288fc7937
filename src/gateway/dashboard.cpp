#include "trellis/gateway/dashboard.hpp"

#include <asio/steady_timer.hpp>
#include <deque>
#include <map>
#include <optional>
#include <string_view>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/gateway/dashboard_page.hpp"

namespace trellis::gateway {

namespace {

using json = nlohmann::json;
using wall = std::chrono::system_clock;

constexpr const char* k_classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// The cumulative figures one reading of the registry gives; a sample is
// the difference of two.
struct reading {
  std::uint64_t by_class[5] = {};
  core::histogram_snapshot latency;  // nanoseconds, every route merged
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;
  std::uint64_t rate_limited = 0;
};

struct sample_row {
  std::int64_t t_ms = 0;
  double by_class[5] = {};  // per second
  std::optional<double> p50_ms, p99_ms;
  double cache_hits = 0, cache_misses = 0, rate_limited = 0;
  std::int64_t in_flight = 0;
  std::vector<std::pair<std::string, std::int64_t>> healthy_hosts;
};

reading read(const core::metrics_registry& m) {
  reading r;
  for (const auto& [labels, v] : m.counter_values("trellis_route_requests_total")) {
    const std::string_view c = core::label_value(labels, "class");
    for (int i = 0; i < 5; ++i)
      if (c == k_classes[i]) r.by_class[i] += v;
  }
  for (const auto& [labels, h] : m.histogram_values("trellis_route_request_duration_seconds"))
    r.latency.merge(h);
  for (const auto& [labels, v] : m.counter_values("trellis_proxy_cache_requests_total")) {
    const std::string_view result = core::label_value(labels, "result");
    if (result == "hit" || result == "stale" || result == "revalidated")
      r.cache_hits += v;
    else if (result == "miss")
      r.cache_misses += v;
  }
  for (const auto& [labels, v] : m.counter_values("trellis_rate_limit_requests_total"))
    if (core::label_value(labels, "result") == "limited") r.rate_limited += v;
  return r;
}

double per_second(std::uint64_t now, std::uint64_t before, double seconds) {
  return now > before ? static_cast<double>(now - before) / seconds : 0.0;
}

std::int64_t unix_ms(wall::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

json optional_number(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

// The worse breaker state of `a` (empty: none yet) and `b`: open, then
// half_open, then closed.
std::string worse(const std::string& a, const std::string& b) {
  auto rank = [](const std::string& s) {
    return s == "open" ? 3 : s == "half_open" ? 2 : s.empty() ? 0 : 1;
  };
  return rank(b) > rank(a) ? b : a;
}

}  // namespace

struct dashboard::impl {
  core::metrics_registry& metrics;
  std::function<json()> status;
  dashboard_options options;

  mutable std::mutex mu;  // guards everything below
  std::optional<reading> last;
  wall::time_point last_time;
  std::deque<sample_row> samples;

  impl(core::metrics_registry& m, std::function<json()> s, dashboard_options o)
      : metrics(m), status(std::move(s)), options(o) {}
};

dashboard::dashboard(core::metrics_registry& metrics, std::function<json()> status,
                     dashboard_options options) {
  if (options.interval.count() <= 0)
    throw core::config_error("dashboard.interval", "must be positive");
  if (options.history == 0) throw core::config_error("dashboard.history", "must be at least 1");
  impl_ = std::make_unique<impl>(metrics, std::move(status), options);
}

dashboard::~dashboard() = default;

void dashboard::sample(wall::time_point now) {
  // Read outside the lock: the registry and status() take their own.
  reading r = read(impl_->metrics);
  std::int64_t in_flight = 0;
  for (const auto& [labels, v] : impl_->metrics.gauge_values("trellis_route_requests_in_flight"))
    in_flight += v;
  const json st = impl_->status();

  std::lock_guard lock(impl_->mu);
  const std::optional<reading> before = std::move(impl_->last);
  const wall::time_point then = impl_->last_time;
  impl_->last = std::move(r);
  impl_->last_time = now;
  if (!before || now <= then) return;  // the baseline (or a clock that went back)

  const reading& cur = *impl_->last;
  const double seconds = std::chrono::duration<double>(now - then).count();
  sample_row row;
  row.t_ms = unix_ms(now);
  for (int i = 0; i < 5; ++i)
    row.by_class[i] = per_second(cur.by_class[i], before->by_class[i], seconds);
  const core::histogram_snapshot interval = cur.latency.since(before->latency);
  if (interval.count() > 0) {
    row.p50_ms = ms(interval.percentile(50));
    row.p99_ms = ms(interval.percentile(99));
  }
  row.cache_hits = per_second(cur.cache_hits, before->cache_hits, seconds);
  row.cache_misses = per_second(cur.cache_misses, before->cache_misses, seconds);
  row.rate_limited = per_second(cur.rate_limited, before->rate_limited, seconds);
  row.in_flight = in_flight;
  if (st.contains("clusters"))
    for (const auto& c : st["clusters"]) {
      std::int64_t healthy = 0;
      for (const auto& h : c.value("hosts", json::array()))
        if (h.value("healthy", false) && !h.value("ejected", false)) ++healthy;
      row.healthy_hosts.emplace_back(c.value("name", ""), healthy);
    }
  impl_->samples.push_back(std::move(row));
  while (impl_->samples.size() > impl_->options.history) impl_->samples.pop_front();
}

json dashboard::data() const {
  const json st = impl_->status();
  json out = {{"interval_ms", impl_->options.interval.count()},
              {"generation", st.value("generation", 0)}};

  // Routes' totals, and the worst breaker state of the routes to each
  // cluster (a breaker belongs to a route; the page shows it by cluster).
  json routes = json::array();
  std::map<std::string, std::string> breakers;
  for (const auto& r : st.value("routes", json::array())) {
    const json responses = r.value("responses", json::object());
    std::uint64_t requests = 0;
    for (const char* c : k_classes) requests += responses.value(c, std::uint64_t{0});
    json row = {{"name", r.value("name", "")},
                {"requests", requests},
                {"errors", responses.value("5xx", std::uint64_t{0})},
                {"p99_ms", r.value("p99_ms", 0.0)}};
    if (r.contains("breaker")) {
      const std::string state = r["breaker"].value("state", "closed");
      row["breaker"] = state;
      if (r.contains("cluster")) {
        auto& b = breakers[r.value("cluster", "")];
        b = worse(b, state);
      }
    }
    routes.push_back(std::move(row));
  }

  json clusters = json::array();
  for (const auto& c : st.value("clusters", json::array())) {
    json hosts = json::array();
    std::int64_t healthy = 0;
    for (const auto& h : c.value("hosts", json::array())) {
      const bool ok = h.value("healthy", false), ejected = h.value("ejected", false);
      if (ok && !ejected) ++healthy;
      hosts.push_back({{"address", h.value("address", "")}, {"healthy", ok}, {"ejected", ejected}});
    }
    json row = {{"name", c.value("name", "")},
                {"healthy", healthy},
                {"total", hosts.size()},
                {"hosts", std::move(hosts)}};
    if (auto it = breakers.find(row["name"].get<std::string>()); it != breakers.end())
      row["breaker"] = it->second;
    clusters.push_back(std::move(row));
  }

  json samples = json::array();
  {
    std::lock_guard lock(impl_->mu);
    for (const sample_row& s : impl_->samples) {
      double requests = 0;
      json by_class = json::object();
      for (int i = 0; i < 5; ++i) {
        by_class[k_classes[i]] = s.by_class[i];
        requests += s.by_class[i];
      }
      const double lookups = s.cache_hits + s.cache_misses;
      json healthy = json::object();
      for (const auto& [name, n] : s.healthy_hosts) healthy[name] = n;
      samples.push_back(
          {{"t", s.t_ms},
           {"requests", requests},
           {"by_class", std::move(by_class)},
           {"p50_ms", optional_number(s.p50_ms)},
           {"p99_ms", optional_number(s.p99_ms)},
           {"cache_hits", s.cache_hits},
           {"cache_misses", s.cache_misses},
           {"cache_hit_ratio", lookups > 0 ? json(s.cache_hits / lookups) : json(nullptr)},
           {"rate_limited", s.rate_limited},
           {"in_flight", s.in_flight},
           {"healthy_hosts", std::move(healthy)}});
    }
  }
  out["samples"] = std::move(samples);
  out["clusters"] = std::move(clusters);
  out["routes"] = std::move(routes);
  return out;
}

std::size_t dashboard::size() const {
  std::lock_guard lock(impl_->mu);
  return impl_->samples.size();
}

void dashboard::start(core::worker& w) {
  // The timer lives in the coroutine's frame; the drain hook cancels it
  // through a shared pointer that the coroutine clears when it ends.
  auto timer = std::make_shared<asio::steady_timer>(w.executor());
  auto hook = std::make_shared<core::drain_hook>(w.on_drain([timer] { timer->cancel(); }));
  w.spawn(
      [](dashboard* self, core::worker* wk, std::shared_ptr<asio::steady_timer> t,
         std::shared_ptr<core::drain_hook> h) -> asio::awaitable<void> {
        self->sample(wall::now());  // the baseline
        while (!wk->draining()) {
          t->expires_after(self->impl_->options.interval);
          auto [ec] = co_await t->async_wait(use_nothrow);
          if (ec || wk->draining()) break;
          self->sample(wall::now());
        }
        h->reset();
      }(this, &w, timer, hook),
      "dashboard sampler");
}

void dashboard::mount(http::router& r, const std::string& path) {
  r.get(path, [](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text(std::string(dashboard_page()), "text/html; charset=utf-8");
    // The page loads nothing from anywhere; the policy makes the browser
    // enforce that.
    (void)res.headers.set("Content-Security-Policy",
                          std::string(dashboard_content_security_policy()));
    (void)res.headers.set("Cache-Control", "no-store");
    co_return;
  });
  r.get(path + "/data", [this](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text(data().dump(), "application/json");
    (void)res.headers.set("Cache-Control", "no-store");
    co_return;
  });
}

}  // namespace trellis::gateway
