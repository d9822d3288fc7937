#include "trellis/gateway/route_metrics.hpp"

#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

// "<start ns> <route>": what before() leaves for after(), in one attribute
// so that a request pays one attribute slot.
constexpr std::string_view k_attribute = "route_metrics.start";
constexpr std::string_view k_other = "other";
constexpr const char* k_classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// Every route_metrics gets an id never reused, so a thread_local table
// keyed by it can never confuse a destroyed middleware with a new one at
// the same address.
std::atomic<std::uint64_t> next_id{1};

// Heterogeneous lookup: find a route by string_view without building a
// std::string per request.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

std::size_t class_index(int status) {
  if (status < 100) return 4;  // not a valid status: counted with server errors
  if (status >= 600) return 4;
  return static_cast<std::size_t>(status / 100 - 1);
}

// One thread's instances of one route's series. Written by that thread
// only (the histogram's single writer); read by any thread (stats, scrape).
struct route_series {
  core::counter* by_class[5] = {};
  core::gauge* in_flight = nullptr;
  core::histogram* latency = nullptr;
};

// One thread's series, by route name. Touched only by its thread.
struct thread_shard {
  std::unordered_map<std::string, route_series*, string_hash, std::equal_to<>> routes;
};

// This thread's shard of each live route_metrics, by id. Entries of
// destroyed middleware stay (two words each) until the thread ends; they
// are never matched again since ids are not reused.
thread_local std::vector<std::pair<std::uint64_t, thread_shard*>> tls_shards;

}  // namespace

struct route_metrics::impl {
  core::metrics_registry* metrics = nullptr;
  std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  std::string default_route;
  std::size_t max_routes = 0;
  std::function<std::chrono::steady_clock::time_point()> clock;

  std::mutex mu;  // guards everything below (registration, stats)
  std::vector<std::unique_ptr<thread_shard>> shards;
  std::vector<std::unique_ptr<route_series>> series_store;
  std::map<std::string, std::vector<route_series*>, std::less<>> by_route;  // every thread's
  std::set<std::string, std::less<>> names;  // labels in use, at most max_routes

  route_series& series(std::string_view route);
  std::string_view route_of(const http::request& req) const {
    return req.has_attribute("route") ? req.attribute("route") : std::string_view(default_route);
  }
};

route_metrics::route_metrics(route_metrics_options options) : impl_(std::make_unique<impl>()) {
  if (options.route.empty()) throw core::config_error("route_metrics.route", "must not be empty");
  if (options.max_routes == 0)
    throw core::config_error("route_metrics.max_routes", "must be at least 1");
  if (options.metrics == nullptr) own_metrics_ = std::make_unique<core::metrics_registry>();
  metrics_ = options.metrics != nullptr ? options.metrics : own_metrics_.get();
  impl_->metrics = metrics_;
  impl_->default_route = std::move(options.route);
  impl_->max_routes = options.max_routes;
  impl_->clock = std::move(options.clock);
}

route_metrics::~route_metrics() = default;

route_series& route_metrics::impl::series(std::string_view route) {
  impl& m = *this;
  thread_shard* shard = nullptr;
  for (const auto& [owner, sh] : tls_shards)
    if (owner == m.id) {
      shard = sh;
      break;
    }
  if (shard) {
    if (auto it = shard->routes.find(route); it != shard->routes.end()) return *it->second;
  }

  // First request of this route on this thread: register its instances.
  std::lock_guard lock(m.mu);
  if (!shard) {
    m.shards.push_back(std::make_unique<thread_shard>());
    shard = m.shards.back().get();
    tls_shards.emplace_back(m.id, shard);
  }
  std::string label(route);
  if (!m.names.contains(label)) {
    const std::size_t named = m.names.size() - (m.names.contains(k_other) ? 1 : 0);
    if (named >= m.max_routes) label = k_other;
    m.names.insert(label);
  }
  route_series* s = nullptr;
  if (auto it = shard->routes.find(label); it != shard->routes.end()) {
    s = it->second;
  } else {
    auto owned = std::make_unique<route_series>();
    s = owned.get();
    for (int i = 0; i < 5; ++i)
      s->by_class[i] = &metrics->add_counter("trellis_route_requests_total",
                                             "Requests answered, by route and status class",
                                             {{"route", label}, {"class", k_classes[i]}});
    s->in_flight = &metrics->add_gauge("trellis_route_requests_in_flight",
                                       "Requests being handled, by route", {{"route", label}});
    s->latency = &metrics->add_histogram(
        "trellis_route_request_duration_seconds",
        "From the route metrics middleware's before() to its after(), by route", {{"route", label}},
        {.scale = 1e-9});
    m.series_store.push_back(std::move(owned));
    m.by_route[label].push_back(s);
    shard->routes.emplace(label, s);
  }
  // Remember the name asked for too, when it was folded into "other" —
  // within a bound, should the names be unbounded (a path used as a route
  // name); past it they take this slow path each time.
  if (label != route && shard->routes.size() < 4 * m.max_routes)
    shard->routes.emplace(std::string(route), s);
  return *s;
}

asio::awaitable<http::filter_status> route_metrics::before(http::request& req, http::response&) {
  const std::string_view route = impl_->route_of(req);
  impl_->series(route).in_flight->add(1);
  const auto t = impl_->clock ? impl_->clock() : std::chrono::steady_clock::now();
  std::string value = std::to_string(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
  value += ' ';
  value += route;
  req.set_attribute(k_attribute, value);
  co_return http::filter_status::proceed;
}

http::handler route_metrics::wrap(std::string name, http::handler h) {
  return [this, name = std::move(name), h = std::move(h)](http::request& req, http::response& res) {
    const std::string mark(req.attribute(k_attribute));  // a copy: set_attribute replaces it
    const std::size_t space = mark.find(' ');
    if (space != std::string::npos) {
      const std::string_view started_as = std::string_view(mark).substr(space + 1);
      if (started_as != name) {
        impl_->series(started_as).in_flight->sub(1);
        impl_->series(name).in_flight->add(1);
        req.set_attribute(k_attribute, mark.substr(0, space + 1) + name);
      }
    }
    req.set_attribute("route", name);
    return h(req, res);
  };
}

asio::awaitable<void> route_metrics::after(http::request& req, http::response& res) {
  const auto t = impl_->clock ? impl_->clock() : std::chrono::steady_clock::now();
  const std::string_view mark = req.attribute(k_attribute);
  const std::size_t space = mark.find(' ');
  if (space == std::string_view::npos) co_return;  // before() did not run: nothing to pair with
  std::int64_t start = 0;
  const auto [end, ec] = std::from_chars(mark.data(), mark.data() + space, start);
  if (ec != std::errc() || end != mark.data() + space) co_return;
  const std::string_view started_as = mark.substr(space + 1);

  // The gauge goes down on the series it went up on; the sum over threads
  // stays right even if after() runs on another thread than before().
  impl_->series(started_as).in_flight->sub(1);
  route_series& s = impl_->series(impl_->route_of(req));
  s.by_class[class_index(res.status)]->add(1);
  const std::int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count() - start;
  s.latency->record(static_cast<std::uint64_t>(ns > 0 ? ns : 0));
}

route_stats route_metrics::stats(std::string_view route) const {
  route_stats out;
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->by_route.find(route);
  if (it == impl_->by_route.end()) return out;
  for (const route_series* s : it->second) {
    for (int i = 0; i < 5; ++i) out.by_class[i] += s->by_class[i]->value();
    out.in_flight += s->in_flight->value();
    out.latency.merge(s->latency->snapshot());
  }
  return out;
}

}  // namespace trellis::gateway
