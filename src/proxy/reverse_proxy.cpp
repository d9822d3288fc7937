#include "trellis/proxy/reverse_proxy.hpp"

#include <algorithm>
#include <asio/this_coro.hpp>
#include <atomic>
#include <charconv>
#include <random>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/error.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/dns/resolver.hpp"
#include "relay.hpp"

namespace trellis::proxy {

namespace {

using steady = std::chrono::steady_clock;

// Why an attempt failed, as the status the client gets.
enum class failure { connect, timeout, pool, bad_response };

failure classify(std::error_code ec) {
  using http::client_error;
  if (ec == client_error::pool_wait_timeout) return failure::pool;
  if (ec == client_error::connect_timeout || ec == client_error::resolve_timeout ||
      ec == client_error::tls_timeout || ec == client_error::resolve_failed ||
      ec == client_error::connect_failed || ec == client_error::tls_handshake_failed)
    return failure::connect;
  if (ec == std::errc::timed_out) return failure::timeout;  // first byte, read, total
  if (ec.category() == std::system_category() || ec.category() == asio::error::get_system_category())
    return failure::connect;  // the OS refused the connect: nothing was sent
  return failure::bad_response;  // closed or reset before a whole head, malformed, too large
}

// Whether the request could not have reached the backend: the connection
// never opened. Such an attempt may be repeated for any method.
bool before_sending(std::error_code ec) {
  const failure f = classify(ec);
  return f == failure::connect || f == failure::pool;
}

int status_of(failure f) {
  switch (f) {
    case failure::timeout:
      return 504;
    case failure::pool:
      return 503;
    case failure::connect:
    case failure::bad_response:
      break;
  }
  return 502;
}

const char* kind_of(failure f) {
  switch (f) {
    case failure::connect:
      return "connect";
    case failure::timeout:
      return "timeout";
    case failure::pool:
      return "pool";
    case failure::bad_response:
      break;
  }
  return "bad_response";
}

bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 200) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Retry-After (RFC 9110 §10.2.3) in delay-seconds form, as a time on the
// cluster's clock. The HTTP-date form is rare from backends and ignored.
std::optional<lb::time_point> retry_after(const http::fields& f, lb::time_point now) {
  const auto v = f.get("Retry-After");
  if (!v) return std::nullopt;
  unsigned seconds = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), seconds);
  if (ec != std::errc{} || end != v->data() + v->size()) return std::nullopt;
  return now + std::chrono::seconds(std::min(seconds, 3600u));
}

// The target to send: origin form, with the prefix rewrite applied.
std::string upstream_target(const http::request& req, const reverse_proxy_options& o) {
  std::string target;
  const std::string_view raw = req.target();
  if (raw.starts_with('/') || raw == "*") {
    target = raw;
  } else {  // absolute form: a reverse proxy sends the origin form on
    target = req.path();
    if (raw.find('?') != std::string_view::npos) {
      target += '?';
      target += req.query();
    }
  }
  const std::string& prefix = o.strip_prefix;
  if (prefix.empty() || !target.starts_with(prefix)) return target;
  const std::string_view rest = std::string_view(target).substr(prefix.size());
  if (!rest.empty() && rest.front() != '/' && rest.front() != '?' && !prefix.ends_with('/'))
    return target;  // "/api" is not a prefix of "/apix"
  std::string out = o.prefix_rewrite;
  if (out.ends_with('/') && rest.starts_with('/')) out.pop_back();
  out += rest;
  if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  return out;
}

}  // namespace

struct reverse_proxy::worker_state {
  worker_state(reverse_proxy& p, core::worker& w, const http::client_options& co)
      : context(&w.context()),
        resolver(w.executor(), dns::resolver_options{}),  // hosts are addresses: no lookups
        client(w.executor(), resolver, co),
        balancer(p.cluster_, std::random_device{}() ^ (w.index() + 1) * 0x9e3779b97f4a7c15ull),
        ids(std::random_device{}()) {
    auto& m = *p.metrics_;
    const std::string& name = p.cluster_->name();
    static constexpr const char* classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 0; i < 5; ++i)
      responses[i] = &m.add_counter("trellis_proxy_upstream_responses_total",
                                    "Responses from upstream hosts, by status class",
                                    {{"cluster", name}, {"class", classes[i]}});
    for (failure f : {failure::connect, failure::timeout, failure::pool, failure::bad_response})
      errors[static_cast<int>(f)] =
          &m.add_counter("trellis_proxy_upstream_errors_total",
                         "Upstream attempts that got no usable response, by kind",
                         {{"cluster", name}, {"kind", kind_of(f)}});
    no_host = &m.add_counter("trellis_proxy_no_host_total",
                             "Requests answered 503 because no host was available",
                             {{"cluster", name}});
    retries = &m.add_counter("trellis_proxy_retries_total", "Attempts repeated on another host",
                             {{"cluster", name}});
    latency = &m.add_histogram("trellis_proxy_upstream_duration_seconds",
                               "From sending a request upstream to its response head",
                               {{"cluster", name}}, {.scale = 1e-9});
    // Idle upstream connections would keep a draining worker alive.
    hook = w.on_drain([this] { client.close_idle(); });
  }

  std::string request_id() {
    static constexpr char hex[] = "0123456789abcdef";
    std::string id(32, '0');
    for (int half = 0; half < 2; ++half) {
      std::uint64_t v = ids();
      for (int i = 0; i < 16; ++i, v >>= 4) id[static_cast<std::size_t>(half * 16 + i)] = hex[v & 15];
    }
    return id;
  }

  asio::execution_context* context;
  dns::resolver resolver;
  http::client client;
  lb::balancer balancer;
  std::mt19937_64 ids;
  std::uint32_t active = 0;          // requests in flight on this worker
  std::uint32_t active_retries = 0;  // of which retries

  core::counter* responses[5] = {};
  core::counter* errors[4] = {};
  core::counter* no_host = nullptr;
  core::counter* retries = nullptr;
  core::histogram* latency = nullptr;
  core::drain_hook hook;

  // Read by stats() from any thread; written by this worker only.
  std::atomic<std::uint64_t> n_requests{0}, n_retries{0}, n_no_host{0}, n_connect{0},
      n_timeouts{0}, n_bad{0}, n_budget{0};
};

namespace {

void bump(std::atomic<std::uint64_t>& c) {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// Counts a request (or a retry) in flight for the duration of a scope.
class in_flight {
 public:
  explicit in_flight(std::uint32_t& n) noexcept : n_(&n) { ++*n_; }
  ~in_flight() { --*n_; }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;

 private:
  std::uint32_t* n_;
};

// What a streamed response or a tunnel keeps alive after the handler
// returned: the host's count of active requests, and the host itself
// (through the snapshot that holds it).
struct held_host {
  held_host(const lb::host& h, lb::host_set_ptr snap) : guard(h), snapshot(std::move(snap)) {}
  lb::request_guard guard;
  lb::host_set_ptr snapshot;
};

}  // namespace

reverse_proxy::reverse_proxy(core::runtime& rt, std::shared_ptr<lb::cluster> cluster,
                             reverse_proxy_options options)
    : cluster_(std::move(cluster)), options_(std::move(options)) {
  if (!cluster_) throw core::config_error("proxy.cluster", "no cluster given");
  const auto& o = options_;
  if (!(o.retry_budget >= 0 && o.retry_budget <= 1))
    throw core::config_error("proxy.retry_budget", "must be within [0, 1]");
  if (o.host == host_header::fixed && o.host_value.empty())
    throw core::config_error("proxy.host_value", "empty, but the Host is to be fixed");
  if (!o.strip_prefix.empty() && o.strip_prefix.front() != '/')
    throw core::config_error("proxy.strip_prefix", "must start with '/'");
  if (!o.prefix_rewrite.empty() && o.prefix_rewrite.front() != '/')
    throw core::config_error("proxy.prefix_rewrite", "must start with '/'");
  if (o.connect_timeout.count() <= 0)
    throw core::config_error("proxy.connect_timeout", "must be positive");
  if (o.first_byte_timeout.count() <= 0)
    throw core::config_error("proxy.first_byte_timeout", "must be positive");
  if (o.max_connections == 0) throw core::config_error("proxy.max_connections", "must be >= 1");

  if (o.metrics == nullptr) own_metrics_ = std::make_unique<core::metrics_registry>();
  metrics_ = o.metrics != nullptr ? o.metrics : own_metrics_.get();

  if (o.cache.store) {
    static constexpr const char* results[] = {"hit", "stale", "revalidated", "miss", "bypass"};
    for (int i = 0; i < 5; ++i)
      cache_counters_[i] = &metrics_->add_counter(
          "trellis_proxy_cache_requests_total",
          "Requests by what the cache did: hit (fresh), stale (served stale), revalidated (304 "
          "from the origin), miss (fetched), bypass (method not cached)",
          {{"cluster", cluster_->name()}, {"result", results[i]}});
  }

  http::client_options co;
  co.max_connections_per_origin = o.max_connections;
  co.idle_timeout = o.upstream_idle_timeout;
  // Busy upstream connections are reused without a liveness check; a
  // request that meets a connection the backend just closed is retried
  // when it is safe (see the retries above).
  co.check_idle_after = std::chrono::seconds(1);
  co.pool_wait_timeout = o.pool_wait_timeout;
  co.connect_timeout = o.connect_timeout;
  co.tls_timeout = o.connect_timeout;
  co.first_byte_timeout = o.first_byte_timeout;
  co.read_timeout = o.idle_timeout;
  co.request_timeout = o.total_timeout.count() > 0
                           ? o.total_timeout
                           : std::chrono::milliseconds(std::chrono::hours(24 * 365));
  co.limits.max_header_bytes = o.max_response_head;
  co.limits.max_body = UINT64_MAX;  // streamed through, never held whole
  co.tls = o.upstream_tls;
  co.user_agent.clear();  // the client's own User-Agent, or none
  for (std::size_t i = 0; i < rt.size(); ++i)
    workers_.push_back(std::make_unique<worker_state>(*this, rt[i], co));
}

reverse_proxy::~reverse_proxy() = default;

http::handler reverse_proxy::handler() {
  return [this](http::request& req, http::response& res) { return handle(req, res); };
}

reverse_proxy::worker_state& reverse_proxy::state_for(const asio::any_io_executor& ex) {
  return detail::state_for(workers_, ex);
}

reverse_proxy_stats reverse_proxy::stats() const {
  reverse_proxy_stats s;
  for (const auto& w : workers_) {
    s.requests += w->n_requests.load(std::memory_order_relaxed);
    s.retries += w->n_retries.load(std::memory_order_relaxed);
    s.no_host += w->n_no_host.load(std::memory_order_relaxed);
    s.connect_errors += w->n_connect.load(std::memory_order_relaxed);
    s.timeouts += w->n_timeouts.load(std::memory_order_relaxed);
    s.bad_responses += w->n_bad.load(std::memory_order_relaxed);
    s.retry_budget_exhausted += w->n_budget.load(std::memory_order_relaxed);
  }
  return s;
}

asio::awaitable<void> reverse_proxy::handle(http::request& req, http::response& res) {
  const auto ex = co_await asio::this_coro::executor;
  worker_state& ws = state_for(ex);
  in_flight counted(ws.active);
  bump(ws.n_requests);

  // The request id: the client's when sane, else a new one.
  std::string request_id;
  if (!options_.request_id_header.empty()) {
    const std::string_view incoming = req.header(options_.request_id_header);
    request_id = sane_request_id(incoming) ? std::string(incoming) : ws.request_id();
  }
  if (options_.cache.store) {
    co_await handle_cached(req, res, ws, request_id);
    co_return;
  }
  detail::upstream_call call;
  co_await call_upstream(req, ws, request_id, nullptr, call);
  if (!call.stream) {
    answer_failure(call, ws, request_id, res);
    co_return;
  }
  co_await relay(req, res, ws, call, request_id, nullptr);
}

asio::awaitable<void> reverse_proxy::call_upstream(http::request& req, worker_state& ws,
                                                   std::string_view request_id,
                                                   const fields_adjuster* adjust,
                                                   detail::upstream_call& out) {
  const reverse_proxy_options& o = options_;
  bool body_started = false;
  const std::size_t scheme_size = o.upstream_https ? 8 : 7;
  // The request as it goes upstream, built anew for each attempt (a retry
  // is rare; copying a prepared one for every request in case of a retry
  // would not be).
  const auto make_request = [&](const lb::host& h) {
    http::client_request up;
    up.method = req.method_text();
    up.target = upstream_target(req, o);
    detail::upstream_fields(req, up.headers, o.forwarding);
    if (!request_id.empty()) (void)up.headers.set(o.request_id_header, request_id);
    if (o.host == host_header::fixed)
      (void)up.headers.set("Host", o.host_value);
    else if (o.host == host_header::upstream)
      (void)up.headers.set("Host", h.address());
    if (o.adjust_request) o.adjust_request(req, up.headers);
    if (adjust != nullptr) (*adjust)(up.headers);
    if (req.has_body()) {
      up.body_source = [&req, &body_started]() {
        body_started = true;
        return req.read_some();
      };
    }
    up.url.reserve(scheme_size + h.address().size());
    up.url = o.upstream_https ? "https://" : "http://";
    up.url += h.address();
    return up;
  };
  const bool idempotent = http::is_idempotent(req.method_text());

  std::vector<const lb::host*> tried;
  std::optional<lb::request_guard> guard;  // the current attempt's host
  std::optional<std::uint64_t> hash;
  if (o.hash) {
    const std::string client_ip = req.remote_endpoint().address().to_string();
    const std::string_view needed = o.hash->header_needed();
    hash = o.hash->key(client_ip, req.path(), needed.empty() ? "" : req.header(needed));
  }
  for (unsigned attempt = 0;; ++attempt) {
    lb::request_context ctx;
    ctx.hash = hash;
    ctx.exclude = tried;
    const lb::host* h = ws.balancer.pick(ctx);
    if (h == nullptr) {
      if (attempt == 0) {
        ws.no_host->add();
        bump(ws.n_no_host);
        out.no_host = true;
      }
      // Every host was tried: a gateway status kept from the last attempt
      // is relayed; otherwise its failure is the answer.
      co_return;
    }
    out.stream.reset();
    out.snapshot = ws.balancer.current_policy()->snapshot();  // keeps *h alive
    std::optional<in_flight> retry_counted;
    if (attempt > 0) retry_counted.emplace(ws.active_retries);

    http::client_request up = make_request(*h);
    guard.reset();
    guard.emplace(*h);
    out.request_time = std::chrono::system_clock::now();
    const auto t0 = steady::now();
    auto opened = co_await ws.client.open(std::move(up));
    const auto latency = steady::now() - t0;
    out.response_time = std::chrono::system_clock::now();
    ws.latency->record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count()));

    lb::response_outcome outcome;
    outcome.latency = std::chrono::duration_cast<lb::duration>(latency);
    if (opened) {
      outcome.status = opened->response().status;
      if (outcome.status == 429 || outcome.status == 503) {
        const auto& clock = ws.balancer.owner().options().clock;
        outcome.retry_after =
            retry_after(opened->response().headers, clock ? clock() : lb::steady_now());
      }
      const int cls = outcome.status / 100 - 1;
      if (cls >= 0 && cls < 5) ws.responses[cls]->add();
    } else {
      out.error = opened.error();
      out.error_host = h->address();
      ws.errors[static_cast<int>(classify(out.error))]->add();
    }
    ws.balancer.observe(*h, outcome);

    // Another host may be tried when this one gave no response (a timeout
    // aside: the backend may still be working on it), or a gateway status
    // when asked to; only while no byte of the request body has been
    // taken from the client, for an idempotent method unless the request
    // never left, and within the budget.
    const bool gateway_status = opened && o.retry_on_gateway_status &&
                                (outcome.status == 502 || outcome.status == 503 ||
                                 outcome.status == 504);
    const bool no_response = !opened && classify(out.error) != failure::timeout;
    const bool retriable = (no_response || gateway_status) && attempt < o.max_retries &&
                           !body_started && (idempotent || (!opened && before_sending(out.error)));
    if (retriable) {
      const double allowed =
          std::max<double>(o.min_retry_concurrency, o.retry_budget * static_cast<double>(ws.active));
      if (static_cast<double>(ws.active_retries) < allowed) {
        tried.push_back(h);
        ws.retries->add();
        bump(ws.n_retries);
        if (opened) {  // kept, in case no other host is left to try
          out.stream.emplace(std::move(*opened));
          out.host = h;
        }
        continue;
      }
      bump(ws.n_budget);
    }
    if (opened) {
      out.stream.emplace(std::move(*opened));
      out.host = h;
    }
    co_return;
  }
}

void reverse_proxy::answer_failure(const detail::upstream_call& call, worker_state& ws,
                                   std::string_view request_id, http::response& res) {
  const reverse_proxy_options& o = options_;
  const auto fail = [&](int status, std::string text) {
    res.status = status;
    res.headers.clear();
    res.set_text(std::move(text));
    if (!request_id.empty()) (void)res.headers.set(o.request_id_header, request_id);
  };
  if (call.no_host) {
    fail(503, "no healthy upstream\n");
    return;
  }
  const failure f = classify(call.error);
  switch (f) {
    case failure::connect:
    case failure::pool:
      bump(ws.n_connect);
      break;
    case failure::timeout:
      bump(ws.n_timeouts);
      break;
    case failure::bad_response:
      bump(ws.n_bad);
      break;
  }
  core::log::info("upstream request failed", {{"cluster", cluster_->name()},
                                              {"host", call.error_host},
                                              {"error", call.error.message()}});
  switch (status_of(f)) {
    case 504:
      fail(504, "upstream timed out\n");
      break;
    case 503:
      fail(503, "upstream connection pool exhausted\n");
      break;
    default:
      if (f == failure::connect)
        fail(502, "upstream connect error: " + call.error.message() + "\n");
      else
        fail(502, "upstream sent no valid response: " + call.error.message() + "\n");
  }
}

asio::awaitable<void> reverse_proxy::relay(http::request& req, http::response& res,
                                           worker_state& ws, detail::upstream_call& call,
                                           std::string_view request_id,
                                           std::shared_ptr<detail::body_capture> capture) {
  const reverse_proxy_options& o = options_;
  detail::relay_settings settings;
  settings.via = o.forwarding.via;
  settings.buffer_size = o.buffer_size;
  settings.request_id_header = o.request_id_header;
  settings.request_id = request_id;
  settings.capture = std::move(capture);
  const lb::host* chosen = call.host;
  // A streamed body or a tunnel keeps counting as a request on its host,
  // and keeps the host alive, after the handler returned.
  // (Both callbacks are named, not temporaries of the co_await below: g++
  // 12 destroys such temporaries twice.)
  const std::function<std::shared_ptr<void>()> hold = [&]() -> std::shared_ptr<void> {
    return std::make_shared<held_host>(*chosen, std::move(call.snapshot));
  };
  // A body that breaks off counts against its host as a gateway failure:
  // its head was reported as a success when it came, and a backend that
  // keeps dying in the middle of bodies must still end up ejected. (`chosen`
  // is kept alive by `hold` while a streamed body is relayed.)
  std::function<void(std::error_code)> on_broken = [&ws, this, host = chosen,
                                                    address = chosen->address()](std::error_code ec) {
    ws.errors[static_cast<int>(failure::bad_response)]->add();
    bump(ws.n_bad);
    cluster_->report(*host, lb::response_outcome{});  // status 0: no whole response
    core::log::info("upstream response broke",
                    {{"cluster", cluster_->name()}, {"host", address}, {"error", ec.message()}});
  };
  co_await detail::relay_response(std::move(*call.stream), req, res, settings, hold,
                                  std::move(on_broken));
}

}  // namespace trellis::proxy
