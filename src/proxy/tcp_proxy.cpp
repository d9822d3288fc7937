#include "trellis/proxy/tcp_proxy.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/write.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"

namespace trellis::proxy {
namespace {

using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

// Parsed host addresses a worker keeps; past this the cache starts over
// (a cluster whose DNS names keep changing addresses would otherwise grow
// it for ever).
constexpr std::size_t max_cached_endpoints = 4096;

std::string to_string(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

// Per-worker state: touched only on that worker's thread, except the
// metric instances, which stats() reads from anywhere (atomics).
struct tcp_proxy::worker_state {
  worker_state(tcp_proxy& p, core::worker& w)
      : proxy(p), balancer(p.cluster_, seed_for(*p.cluster_, w.index())) {
    auto& m = *p.metrics_;
    const std::string& name = p.cluster_->name();
    accepted = &m.add_counter("trellis_tcp_proxy_connections_total",
                              "Client connections accepted by the TCP proxy", {{"cluster", name}});
    active = &m.add_gauge("trellis_tcp_proxy_connections",
                          "Client connections open in the TCP proxy", {{"cluster", name}});
    up = &m.add_counter("trellis_tcp_proxy_bytes_total", "Bytes relayed by the TCP proxy",
                        {{"cluster", name}, {"direction", "upstream"}});
    down = &m.add_counter("trellis_tcp_proxy_bytes_total", "Bytes relayed by the TCP proxy",
                          {{"cluster", name}, {"direction", "downstream"}});
    connect_failures =
        &m.add_counter("trellis_tcp_proxy_connect_failures_total",
                       "Failed connect attempts to upstream hosts", {{"cluster", name}});
    no_upstream = &m.add_counter("trellis_tcp_proxy_no_upstream_total",
                                 "Client connections closed because no upstream host was reachable",
                                 {{"cluster", name}});
  }

  // Each worker draws its own random sequence: a fixed seed in the
  // cluster's policy options becomes seed + worker index; 0 stays 0
  // (random).
  static std::uint64_t seed_for(const lb::cluster& c, std::size_t index) {
    const std::uint64_t base = c.options().policy_config.seed;
    return base == 0 ? 0 : base + index;
  }

  // The endpoint of a host's "ip:port" / "[v6]:port" address, parsed once
  // per worker; nullopt when it is not an IP address and port.
  std::optional<tcp::endpoint> endpoint_of(const lb::host& h) {
    if (auto it = endpoints.find(h.address()); it != endpoints.end()) return it->second;
    auto parsed = lb::parse_endpoint(h.address());
    if (!parsed || !parsed->is_ip) return std::nullopt;
    std::error_code ec;
    const auto ip = asio::ip::make_address(parsed->host, ec);
    if (ec) return std::nullopt;
    if (endpoints.size() >= max_cached_endpoints) endpoints.clear();
    const tcp::endpoint ep(ip, parsed->port);
    endpoints.emplace(h.address(), ep);
    return ep;
  }

  // A share in the host the balancer just picked, so that it outlives a
  // change of the cluster while the connection uses it; null if the
  // balancer's snapshot does not hold it (it always should).
  std::shared_ptr<const lb::host> hold(const lb::host* h) const {
    const lb::policy* p = balancer.current_policy();
    if (p == nullptr) return nullptr;
    const lb::host_set& set = p->hosts();
    const std::size_t i = set.index_of(h);
    return i < set.size() ? set.hosts()[i] : nullptr;
  }

  tcp_proxy& proxy;
  lb::balancer balancer;
  std::unordered_map<std::string, tcp::endpoint> endpoints;
  core::counter* accepted = nullptr;
  core::gauge* active = nullptr;
  core::counter* up = nullptr;
  core::counter* down = nullptr;
  core::counter* connect_failures = nullptr;
  core::counter* no_upstream = nullptr;
};

namespace {

// Counts a client connection as open for its lifetime.
class open_connection {
 public:
  explicit open_connection(core::gauge& g) noexcept : gauge_(g) { gauge_.add(1); }
  ~open_connection() { gauge_.sub(1); }
  open_connection(const open_connection&) = delete;
  open_connection& operator=(const open_connection&) = delete;

 private:
  core::gauge& gauge_;
};

// The two sockets of a relayed connection and the idle watchdog they
// share. Lives in the session's coroutine frame (it never moves: the
// watchdog refers to it).
class tunnel {
 public:
  tunnel(tcp::socket client_socket, tcp::socket upstream_socket, std::chrono::milliseconds idle)
      : client(std::move(client_socket)),
        upstream(std::move(upstream_socket)),
        idle_timeout_(idle),
        idle_(client.get_executor(), [this] {
          timed_out_ = true;
          close(false);
        }) {}
  tunnel(const tunnel&) = delete;
  tunnel& operator=(const tunnel&) = delete;

  // Bytes moved: the idle deadline starts again.
  void touch() { idle_.expires_after(idle_timeout_); }

  // Ends both directions: closes both sockets, with an RST (SO_LINGER 0)
  // when `reset`, so that a reset on one side reaches the other as one.
  // Pending reads and writes complete with operation_aborted. Idempotent.
  void close(bool reset) {
    if (closed_) return;
    closed_ = true;
    std::error_code ignored;
    if (reset) {
      client.set_option(asio::socket_base::linger(true, 0), ignored);
      upstream.set_option(asio::socket_base::linger(true, 0), ignored);
    }
    client.close(ignored);
    upstream.close(ignored);
  }

  // Whether the idle deadline closed the tunnel.
  bool timed_out() const noexcept { return timed_out_; }

  tcp::socket client;
  tcp::socket upstream;

 private:
  std::chrono::milliseconds idle_timeout_;
  net::deadline idle_;
  bool closed_ = false;
  bool timed_out_ = false;
};

// Moves bytes from `from` to `to` through `buf`: read, then write all of
// it before reading again. A FIN from `from` becomes a shutdown(send) on
// `to` and ends this direction only; an error on either socket ends both.
asio::awaitable<void> pump(tunnel& t, tcp::socket& from, tcp::socket& to, std::span<char> buf,
                           core::counter& moved) {
  for (;;) {
    t.touch();
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf.data(), buf.size()), use_nothrow);
    if (n > 0) {
      moved.add(n);
      t.touch();
      auto [wec, written] =
          co_await asio::async_write(to, asio::buffer(buf.data(), n), use_nothrow);
      (void)written;
      if (wec) {
        // The receiving side went away (or we closed it): end both, and
        // let the sending side know with a reset.
        t.close(wec != asio::error::operation_aborted);
        co_return;
      }
    }
    if (!ec) continue;
    if (ec == asio::error::eof) {
      std::error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    // Reset by the peer: reset the other side too. Aborted: closed by the
    // idle watchdog or by the other direction, nothing left to do.
    t.close(ec != asio::error::operation_aborted);
    co_return;
  }
}

// One client connection: connect to an upstream host (with failover),
// then relay until both directions have ended.
asio::awaitable<void> serve(tcp_proxy::worker_state& ws, tcp::socket client) {
  const tcp_proxy_options& opt = ws.proxy.options();
  ws.accepted->add();
  const open_connection counted(*ws.active);

  net::connect_options copts;
  copts.timeout = opt.connect_timeout;
  std::optional<tcp::socket> upstream;
  std::shared_ptr<const lb::host> host;
  std::vector<const lb::host*> tried;
  tried.reserve(opt.connect_attempts);
  std::error_code last_error;
  while (!upstream && tried.size() < opt.connect_attempts) {
    lb::request_context ctx;
    ctx.exclude = std::span<const lb::host* const>(tried.data(), tried.size());
    const lb::host* picked = ws.balancer.pick(ctx);
    if (picked == nullptr) break;
    tried.push_back(picked);
    // Held across the connect: the cluster may drop the host meanwhile.
    std::shared_ptr<const lb::host> held = ws.hold(picked);
    if (!held) continue;
    const auto ep = ws.endpoint_of(*held);
    const auto started = steady::now();
    std::error_code ec;
    if (ep) {
      auto s = co_await net::connect(*ep, copts);
      if (s)
        upstream.emplace(std::move(*s));
      else
        ec = s.error();
    } else {
      ec = make_error_code(core::errc::invalid_argument);
    }
    lb::response_outcome outcome;
    outcome.latency = steady::now() - started;
    outcome.status = upstream ? 200 : 0;
    ws.balancer.observe(*held, outcome);
    if (upstream) {
      host = std::move(held);
    } else {
      ws.connect_failures->add();
      last_error = ec;
      const std::string why = ec.message();
      core::log::debug("tcp proxy: connect failed", {{"cluster", ws.proxy.upstreams().name()},
                                                     {"upstream", held->address()},
                                                     {"error", why}});
    }
  }

  std::error_code ignored;
  if (!upstream) {
    ws.no_upstream->add();
    const std::string from = to_string(client.remote_endpoint(ignored));
    const std::string why = last_error ? last_error.message() : "no host available";
    core::log::warn("tcp proxy: no upstream reachable", {{"cluster", ws.proxy.upstreams().name()},
                                                         {"client", from},
                                                         {"tried", tried.size()},
                                                         {"error", why}});
    co_return;  // the client's connection closes with this frame
  }

  const lb::request_guard busy(*host);
  tunnel t(std::move(client), std::move(*upstream), opt.idle_timeout);
  const auto buffers = std::make_unique_for_overwrite<char[]>(2 * opt.buffer_size);
  const std::span<char> up_buf(buffers.get(), opt.buffer_size);
  const std::span<char> down_buf(buffers.get() + opt.buffer_size, opt.buffer_size);
  {
    using namespace asio::experimental::awaitable_operators;
    auto up = pump(t, t.client, t.upstream, up_buf, *ws.up);
    auto down = pump(t, t.upstream, t.client, down_buf, *ws.down);
    auto both = std::move(up) && std::move(down);
    co_await std::move(both);
  }
  if (t.timed_out())
    core::log::debug("tcp proxy: idle timeout",
                     {{"cluster", ws.proxy.upstreams().name()}, {"upstream", host->address()}});
  t.close(false);
}

}  // namespace

tcp_proxy::tcp_proxy(std::shared_ptr<lb::cluster> upstreams, tcp_proxy_options options)
    : cluster_(std::move(upstreams)), options_(std::move(options)) {
  if (!cluster_) throw core::config_error("tcp_proxy.cluster", "a cluster is required");
  if (options_.connect_timeout.count() <= 0)
    throw core::config_error("tcp_proxy.connect_timeout", "must be positive");
  if (options_.connect_attempts < 1)
    throw core::config_error("tcp_proxy.connect_attempts", "must be at least 1");
  if (options_.idle_timeout.count() <= 0)
    throw core::config_error("tcp_proxy.idle_timeout", "must be positive");
  if (options_.buffer_size < 1)
    throw core::config_error("tcp_proxy.buffer_size", "must be at least 1 byte");
  if (options_.metrics) {
    metrics_ = options_.metrics;
  } else {
    own_metrics_ = std::make_unique<core::metrics_registry>();
    metrics_ = own_metrics_.get();
  }
}

tcp_proxy::~tcp_proxy() = default;

result<tcp::endpoint> tcp_proxy::listen(core::runtime& rt, const tcp::endpoint& address) {
  if (workers_.empty()) {
    for (std::size_t i = 0; i < rt.size(); ++i)
      workers_.push_back(std::make_unique<worker_state>(*this, rt[i]));
  }
  return net::listen_on_all(rt, address, options_.listener,
                            [this](core::worker& w) -> net::tcp_listener::handler {
                              worker_state& ws = *workers_[w.index()];
                              return [&ws](tcp::socket s) { return serve(ws, std::move(s)); };
                            });
}

tcp_proxy_stats tcp_proxy::stats() const {
  tcp_proxy_stats s;
  std::int64_t active = 0;
  for (const auto& w : workers_) {
    active += w->active->value();
    s.total += w->accepted->value();
    s.bytes_up += w->up->value();
    s.bytes_down += w->down->value();
    s.connect_failures += w->connect_failures->value();
    s.no_upstream += w->no_upstream->value();
  }
  s.active = active > 0 ? static_cast<std::uint64_t>(active) : 0;
  return s;
}

}  // namespace trellis::proxy
