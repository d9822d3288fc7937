// ip_filter: allow and deny lists of client address blocks, as middleware
// — nginx's allow/deny (ngx_http_access_module), Envoy's RBAC on
// remote_ip, Kong's ip-restriction plugin.
//
// The rule, which does not depend on the order of the lists:
//   1. an address in a deny block is refused;
//   2. otherwise, when the allow list is not empty, an address outside
//      every allow block is refused;
//   3. everything else passes.
// So deny always wins over allow, even a narrower allow: allow
// 10.0.0.0/8 with deny 10.6.6.0/24 lets 10.1.2.3 in and keeps 10.6.6.6
// out, and there is no way to re-allow one host inside a denied block
// (shrink the deny instead). nginx checks its directives in order and the
// first match wins, which makes the same lines mean different things when
// reordered; a fixed rule is easier to review.
//
// A refused request is answered 403 with a small RFC 9457 problem body,
// never reaches the handler or later middleware, and is logged (one line at
// info, with the address and which rule refused it). Blocks are CIDR
// (net::cidr): "10.0.0.0/8", "2001:db8::/32" or a bare address; an IPv4
// block also matches an IPv4-mapped IPv6 peer (::ffff:10.1.2.3), which is
// how a dual-stack listener reports IPv4 clients.
//
// Which address: the request attribute "client.ip" when an earlier
// middleware set it (from X-Forwarded-For or Forwarded, believed only from
// trusted proxies — proxy/forwarding.hpp explains why), else the
// connection's peer. The filter never reads forwarding fields itself: a
// client writes whatever it likes in them. An attribute that is not an IP
// address is refused (fail closed): it is a bug in the middleware that set
// it, and letting the request through would turn that bug into a bypass.
// Put the filter first in the chain (after whatever sets client.ip), so
// refused clients cost nothing further.
//
// Thread-safety: immutable after construction; shared by every worker.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/http/router.hpp"
#include "trellis/net/cidr.hpp"

namespace trellis::gateway {

struct ip_filter_options {
  // Blocks whose addresses may pass ("10.0.0.0/8", "192.0.2.7",
  // "2001:db8::/32"). Empty (the default): everyone not denied.
  std::vector<std::string> allow;
  // Blocks whose addresses are refused, whatever the allow list says.
  // Empty (the default): nobody is denied by this list.
  std::vector<std::string> deny;
  // The request attribute that carries the client's address when a
  // trusted proxy reported it. Default "client.ip", the name trellis
  // middleware uses for it; empty: always use the connection's peer.
  std::string client_ip_attribute = "client.ip";
  // Log each refusal (info). Default on: a refusal is what an operator
  // looks for when a client says "403". Off for an endpoint under a flood
  // of refused requests, where one line each is a cost of its own.
  bool log_refusals = true;
};

class ip_filter final : public http::middleware {
 public:
  // Why an address passes or not.
  enum class verdict {
    allowed,
    denied,         // it lies in a deny block
    not_allowed,    // the allow list is not empty and no block of it holds it
    bad_client_ip,  // the client-ip attribute is not an address
  };

  // Parses the blocks. Throws core::config_error naming the bad entry
  // under "ip_filter.", as the gateway's configuration spells it:
  // "ip_filter.allow[2]", "ip_filter.deny[0]".
  explicit ip_filter(const ip_filter_options& options);

  // The rule above, for one address.
  verdict check(const asio::ip::address& a) const noexcept;
  // The address the filter judges for `req`: the client-ip attribute when
  // it is set, else the peer's. nullopt when the attribute is set but not
  // an IP address (verdict::bad_client_ip).
  std::optional<asio::ip::address> client_address(const http::request& req) const;

  // Refuses (403, filter_status::respond) or lets the request proceed.
  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;

 private:
  http::filter_status judge(const http::request& req, http::response& res) const;

  net::cidr_set allow_;
  net::cidr_set deny_;
  std::string attribute_;
  bool log_ = true;
};

// "allowed", "denied", "not_allowed", "bad_client_ip".
std::string_view to_string(ip_filter::verdict v) noexcept;

}  // namespace trellis::gateway
