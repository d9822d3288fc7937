// forward_proxy: an HTTP handler that fetches on behalf of its clients —
// what `curl -x`, browsers and package managers configure as "the proxy".
//
// A forward proxy is chosen by the client (a reverse proxy is chosen by
// the server) and speaks for the client: the origin sees the proxy's
// address. Two kinds of request reach it (RFC 9112 §3.2.2, RFC 9110
// §9.3.6):
//
//   * absolute form, "GET http://example.com/page HTTP/1.1": the proxy
//     sends the request on to that origin (over its own connection pool,
//     http or https) and relays the response, with the hop-by-hop fields
//     removed, the Host replaced by the URL's authority, Via added and the
//     client's Proxy-Authorization kept to itself;
//   * CONNECT "example.com:443": the proxy opens a TCP connection to that
//     host and port, answers 200, and from then on copies bytes both ways
//     without reading them — the client speaks TLS end to end through it.
//
// A proxy that connects anywhere is an open relay (spam through port 25,
// scans of internal addresses), so destinations are checked against an
// allow-list: CONNECT only to the listed ports (443 by default), and both
// kinds only to the listed hosts when the list is not empty. Refused
// destinations get 403; unresolvable or unreachable ones 502; slow ones
// 504. An origin-form request ("GET /page") is not for a forward proxy:
// 400.
//
// Threading: as reverse_proxy — per worker a resolver (the system's
// resolv.conf and hosts file unless options say otherwise) and an
// http::client; make it before runtime::run() and keep it alive until
// run() returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/metrics.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/dns/resolver.hpp"
#include "trellis/http/message.hpp"
#include "trellis/net/cidr.hpp"
#include "trellis/net/tls.hpp"
#include "trellis/proxy/forwarding.hpp"

namespace trellis::proxy {

struct forward_proxy_options {
  // Ports CONNECT may reach. Default {443} (HTTPS), as most proxies:
  // tunnels to arbitrary ports make the proxy an open relay for any
  // protocol.
  std::vector<std::uint16_t> connect_ports{443};
  // Destinations allowed, for both kinds of request: a host name
  // (case-insensitive), "*.example.com" (its subdomains, not itself), or
  // an address block ("10.0.0.0/8", "127.0.0.1") for IP-literal
  // destinations. Empty (the default): any destination. Names are matched
  // as the client wrote them, before resolution.
  std::vector<std::string> allowed_hosts;
  // Resolving and connecting to the destination.
  std::chrono::milliseconds connect_timeout{10'000};
  // From the request sent to the first byte of the response (absolute form).
  std::chrono::milliseconds first_byte_timeout{60'000};
  // Longest pause while a response body arrives, or in a tunnel either way.
  std::chrono::milliseconds idle_timeout{300'000};
  // Forwarding fields added to absolute-form requests. Default: Via only —
  // a forward proxy usually should not tell origins its clients' addresses.
  forwarding_options forwarding = [] {
    forwarding_options f;
    f.x_forwarded = false;
    f.forwarded = false;
    return f;
  }();
  // Response bodies up to this size are read whole before being sent.
  std::size_t buffer_size = 64 * 1024;
  // How destinations are resolved. Default: the system's configuration.
  std::optional<dns::resolver_options> resolver;
  // TLS towards https:// origins of absolute-form requests.
  net::tls::client_options tls;
  // Where the counters go (requests by kind, refusals, failures). Null: own.
  core::metrics_registry* metrics = nullptr;
};

struct forward_proxy_stats {
  std::uint64_t forwarded = 0;  // absolute-form requests sent on
  std::uint64_t tunnels = 0;    // CONNECTs answered 200
  std::uint64_t refused = 0;    // 403: port or host not allowed
  std::uint64_t failed = 0;     // 502/504: resolve, connect or upstream failure
  std::uint64_t not_proxy = 0;  // 400: an origin-form request
};

class forward_proxy {
 public:
  // Throws core::config_error for bad options ("forward_proxy.allowed_hosts[1]",
  // "forward_proxy.connect_ports"...).
  explicit forward_proxy(core::runtime& rt, forward_proxy_options options = {});
  ~forward_proxy();
  forward_proxy(const forward_proxy&) = delete;
  forward_proxy& operator=(const forward_proxy&) = delete;

  http::handler handler();
  asio::awaitable<void> handle(http::request& req, http::response& res);

  // Whether `host` (a name or an IP literal, without brackets) may be
  // reached, per allowed_hosts.
  bool host_allowed(std::string_view host) const;
  const forward_proxy_options& options() const noexcept { return options_; }
  forward_proxy_stats stats() const;

  struct worker_state;

 private:
  worker_state& state_for(const asio::any_io_executor& ex);

  forward_proxy_options options_;
  std::vector<std::string> allowed_names_;  // lower case; "*.x" kept as ".x"
  net::cidr_set allowed_blocks_;
  std::unique_ptr<core::metrics_registry> own_metrics_;
  core::metrics_registry* metrics_;
  std::vector<std::unique_ptr<worker_state>> workers_;
};

}  // namespace trellis::proxy
