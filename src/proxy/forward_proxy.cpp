#include "trellis/proxy/forward_proxy.hpp"

#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <atomic>

#include "relay.hpp"
#include "trellis/codec/ascii.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/http/client.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"

namespace trellis::proxy {

namespace {

using tcp = asio::ip::tcp;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void bump(std::atomic<std::uint64_t>& c) {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// A connected socket as a tunnel, each read bounded by an idle deadline.
class socket_tunnel final : public http::tunnel {
 public:
  socket_tunnel(tcp::socket s, std::chrono::milliseconds idle)
      : socket_(std::move(s)), idle_(idle), deadline_(socket_.get_executor(), [this] {
          std::error_code ignored;
          socket_.close(ignored);
        }) {}

  asio::awaitable<result<std::size_t>> read_some(std::span<char> into) override {
    deadline_.expires_after(idle_);
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(into.data(), into.size()), use_nothrow);
    if (n > 0) co_return n;
    if (deadline_.expired()) co_return unexpected(make_error_code(std::errc::timed_out));
    if (ec == asio::error::eof) co_return std::size_t{0};
    if (ec) co_return unexpected(ec);
    co_return std::size_t{0};
  }
  asio::awaitable<std::error_code> write(std::string_view data) override {
    deadline_.expires_after(idle_);
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(data), use_nothrow);
    co_return ec;
  }
  void shutdown_send() override {
    std::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }

 private:
  tcp::socket socket_;
  std::chrono::milliseconds idle_;
  net::deadline deadline_;
};

}  // namespace

struct forward_proxy::worker_state {
  worker_state(forward_proxy& p, core::worker& w, const http::client_options& co)
      : context(&w.context()),
        resolver(w.executor(), p.options_.resolver ? *p.options_.resolver
                                                   : dns::resolver_options::system()),
        client(w.executor(), resolver, co) {
    auto& m = *p.metrics_;
    for (const char* kind : {"forwarded", "tunnel", "refused", "failed", "not_proxy"})
      counters.push_back(&m.add_counter("trellis_forward_proxy_requests_total",
                                        "Forward proxy requests, by outcome", {{"outcome", kind}}));
    hook = w.on_drain([this] { client.close_idle(); });
  }

  asio::execution_context* context;
  dns::resolver resolver;
  http::client client;
  std::vector<core::counter*> counters;  // in the order above
  core::drain_hook hook;
  std::atomic<std::uint64_t> forwarded{0}, tunnels{0}, refused{0}, failed{0}, not_proxy{0};

  void count(std::atomic<std::uint64_t>& n, std::size_t which) {
    bump(n);
    counters[which]->add();
  }
};

forward_proxy::forward_proxy(core::runtime& rt, forward_proxy_options options)
    : options_(std::move(options)) {
  const auto& o = options_;
  for (std::size_t i = 0; i < o.allowed_hosts.size(); ++i) {
    const std::string& h = o.allowed_hosts[i];
    const std::string field = "forward_proxy.allowed_hosts[" + std::to_string(i) + "]";
    if (h.empty()) throw core::config_error(field, "empty");
    if (auto block = net::cidr::parse(h)) {
      allowed_blocks_.add(*block);
    } else if (h.starts_with("*.") && h.size() > 2) {
      allowed_names_.push_back(lower(h.substr(1)));  // ".example.com"
    } else if (h.find_first_of("/*:[] ") != std::string::npos) {
      throw core::config_error(field, "expected a host name, *.domain or an address block, got '" +
                                          h + "'");
    } else {
      allowed_names_.push_back(lower(h));
    }
  }
  for (auto port : o.connect_ports)
    if (port == 0) throw core::config_error("forward_proxy.connect_ports", "port 0");
  if (o.connect_timeout.count() <= 0)
    throw core::config_error("forward_proxy.connect_timeout", "must be positive");
  if (o.metrics == nullptr) own_metrics_ = std::make_unique<core::metrics_registry>();
  metrics_ = o.metrics != nullptr ? o.metrics : own_metrics_.get();

  http::client_options co;
  co.connect_timeout = o.connect_timeout;
  co.resolve_timeout = o.connect_timeout;
  co.tls_timeout = o.connect_timeout;
  co.first_byte_timeout = o.first_byte_timeout;
  co.read_timeout = o.idle_timeout;
  co.request_timeout = std::chrono::hours(24 * 365);
  co.limits.max_body = UINT64_MAX;
  co.tls = o.tls;
  co.user_agent.clear();
  for (std::size_t i = 0; i < rt.size(); ++i)
    workers_.push_back(std::make_unique<worker_state>(*this, rt[i], co));
}

forward_proxy::~forward_proxy() = default;

http::handler forward_proxy::handler() {
  return [this](http::request& req, http::response& res) { return handle(req, res); };
}

forward_proxy::worker_state& forward_proxy::state_for(const asio::any_io_executor& ex) {
  return detail::state_for(workers_, ex);
}

bool forward_proxy::host_allowed(std::string_view host) const {
  if (options_.allowed_hosts.empty()) return true;
  std::error_code ec;
  const auto address = asio::ip::make_address(std::string(host), ec);
  if (!ec) return allowed_blocks_.contains(address);
  std::string name = lower(host);
  if (name.ends_with('.')) name.pop_back();  // "example.com." is example.com
  for (const auto& allowed : allowed_names_) {
    if (allowed.starts_with('.')) {
      if (name.size() > allowed.size() && name.ends_with(allowed)) return true;
    } else if (name == allowed) {
      return true;
    }
  }
  return false;
}

forward_proxy_stats forward_proxy::stats() const {
  forward_proxy_stats s;
  for (const auto& w : workers_) {
    s.forwarded += w->forwarded.load(std::memory_order_relaxed);
    s.tunnels += w->tunnels.load(std::memory_order_relaxed);
    s.refused += w->refused.load(std::memory_order_relaxed);
    s.failed += w->failed.load(std::memory_order_relaxed);
    s.not_proxy += w->not_proxy.load(std::memory_order_relaxed);
  }
  return s;
}

asio::awaitable<void> forward_proxy::handle(http::request& req, http::response& res) {
  const auto ex = co_await asio::this_coro::executor;
  worker_state& ws = state_for(ex);
  const forward_proxy_options& o = options_;

  if (req.method() == http::method::connect) {
    // CONNECT host:port — a tunnel to it.
    auto dest = lb::parse_endpoint(req.target());
    if (!dest) {
      ws.count(ws.not_proxy, 4);
      res.status = 400;
      res.set_text("CONNECT needs host:port\n");
      co_return;
    }
    if (std::find(o.connect_ports.begin(), o.connect_ports.end(), dest->port) == o.connect_ports.end()) {
      ws.count(ws.refused, 2);
      res.status = 403;
      res.set_text("CONNECT to port " + std::to_string(dest->port) + " is not allowed\n");
      co_return;
    }
    if (!host_allowed(dest->host)) {
      ws.count(ws.refused, 2);
      res.status = 403;
      res.set_text("destination " + dest->host + " is not allowed\n");
      co_return;
    }
    std::vector<tcp::endpoint> endpoints;
    if (dest->is_ip) {
      endpoints.emplace_back(asio::ip::make_address(dest->host), dest->port);
    } else {
      auto addresses = co_await ws.resolver.resolve(dest->host);
      if (!addresses || addresses->empty()) {
        ws.count(ws.failed, 3);
        res.status = 502;
        res.set_text("cannot resolve " + dest->host + "\n");
        co_return;
      }
      for (const auto& a : *addresses) endpoints.emplace_back(a, dest->port);
    }
    net::connect_options co;
    co.timeout = o.connect_timeout;
    auto sock = co_await net::connect(endpoints, co);
    if (!sock) {
      ws.count(ws.failed, 3);
      const bool timed_out = sock.error() == std::errc::timed_out;
      res.status = timed_out ? 504 : 502;
      res.set_text("cannot connect to " + std::string(req.target()) + ": " + sock.error().message() + "\n");
      co_return;
    }
    ws.count(ws.tunnels, 1);
    res.status = 200;
    auto up = std::make_shared<socket_tunnel>(std::move(*sock), o.idle_timeout);
    res.upgrade = [up](http::tunnel& down) -> asio::awaitable<void> {
      co_await detail::splice(down, *up);
    };
    co_return;
  }

  // An absolute-form request: the URL names the origin.
  const std::string_view target = req.target();
  auto url = http::parse_url(target);
  if (target.starts_with('/') || target == "*" || !url ||
      (url->scheme != "http" && url->scheme != "https") || url->host.empty()) {
    ws.count(ws.not_proxy, 4);
    res.status = 400;
    res.set_text("this is a forward proxy: send absolute-form requests (GET http://host/path) "
                 "or CONNECT\n");
    co_return;
  }
  if (!host_allowed(url->host)) {
    ws.count(ws.refused, 2);
    res.status = 403;
    res.set_text("destination " + url->host + " is not allowed\n");
    co_return;
  }

  http::client_request up;
  up.method = req.method_text();
  up.url = url->scheme + "://" + url->authority();
  // The request-target goes on as the client wrote it, in origin form.
  const std::size_t authority_end = target.find('/', url->scheme.size() + 3);
  if (authority_end == std::string_view::npos) {
    up.target = "/";
    if (const auto q = target.find('?'); q != std::string_view::npos) up.target += target.substr(q);
  } else {
    up.target = target.substr(authority_end);
  }
  if (const auto hash = up.target.find('#'); hash != std::string::npos) up.target.resize(hash);
  detail::upstream_fields(req, up.headers, o.forwarding);
  up.headers.erase("Proxy-Authorization");  // meant for this proxy, not the origin
  // The Host is the URL's authority (RFC 9112 §3.2.2), whatever the client wrote.
  (void)up.headers.set("Host", url->authority());
  if (req.has_body()) up.body_source = [&req]() { return req.read_some(); };

  auto opened = co_await ws.client.open(std::move(up));
  if (!opened) {
    ws.count(ws.failed, 3);
    const bool timed_out = opened.error() == std::errc::timed_out;
    core::log::info("forward proxy request failed",
                    {{"url", url->origin()}, {"error", opened.error().message()}});
    res.status = timed_out ? 504 : 502;
    res.set_text("upstream " + url->origin() + ": " + opened.error().message() + "\n");
    co_return;
  }
  ws.count(ws.forwarded, 0);
  detail::relay_settings settings;
  settings.via = o.forwarding.via;
  settings.buffer_size = o.buffer_size;
  const std::function<std::shared_ptr<void>()> hold = [] { return std::shared_ptr<void>(); };
  std::function<void(std::error_code)> on_broken = [&ws](std::error_code) { bump(ws.failed); };
  co_await detail::relay_response(std::move(*opened), req, res, settings, hold, std::move(on_broken));
}

}  // namespace trellis::proxy
