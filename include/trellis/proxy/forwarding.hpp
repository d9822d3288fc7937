// forwarding: what a proxy does to the header fields it passes on.
//
// Two kinds of fields must not cross a proxy as they came:
//
//   * hop-by-hop fields (RFC 9110 §7.6.1) describe one connection, not the
//     message: Connection itself and every field it names, and the ones
//     defined as per-connection — Keep-Alive, Proxy-Connection, TE,
//     Transfer-Encoding, Upgrade. The proxy frames and negotiates each of
//     its two connections itself, so it removes them both ways. A client
//     that writes "Connection: X-Secret" asks every proxy to drop
//     X-Secret, and a proxy that forgot would leak or honour it.
//   * forwarding fields say who the client really was, since the backend
//     only sees the proxy's address: X-Forwarded-For, -Proto and -Host (the
//     de-facto standard), RFC 7239 Forwarded, and Via (RFC 9110 §7.6.3,
//     the chain of intermediaries). Anyone can write them, so incoming ones
//     are believed only from a configured list of trusted proxies (the
//     load balancer in front, say): from a trusted peer the proxy appends
//     to them; from anyone else it replaces them with what it saw itself.
//     Otherwise a client sends "X-Forwarded-For: 10.0.0.1" and walks past
//     an allow-list (nginx's realip module and Envoy's xff_num_trusted_hops
//     solve the same problem).
//
// Pure functions over http::fields; no I/O. Thread-safety: the options are
// immutable after construction and may be shared.
#pragma once

#include <asio/ip/address.hpp>
#include <string>
#include <string_view>

#include "trellis/codec/http/fields.hpp"
#include "trellis/net/cidr.hpp"

namespace trellis::proxy {

// Removes Connection, every field it names, Keep-Alive, Proxy-Connection,
// TE, Transfer-Encoding and Upgrade.
void remove_hop_by_hop(http::fields& f);

// Whether `name` is one of the fields that describe one connection only
// (Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding,
// Upgrade), which remove_hop_by_hop drops along with those Connection names.
bool is_hop_by_hop(std::string_view name) noexcept;

struct forwarding_options {
  // Peers whose forwarding fields are believed and appended to. Empty (the
  // default): nobody's; every request starts a new chain.
  net::cidr_set trusted_proxies;
  // Set X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host.
  bool x_forwarded = true;
  // Set the RFC 7239 Forwarded field (for, proto, host).
  bool forwarded = true;
  // The pseudonym this proxy adds to Via ("1.1 trellis"); empty: no Via.
  // A pseudonym rather than a host name, as RFC 9110 §7.6.3 allows, so
  // the field does not reveal internal names.
  std::string via = "trellis";
};

// The downstream side of one request.
struct downstream_info {
  asio::ip::address peer;  // the address the request came from
  bool secure = false;     // it came over TLS
  std::string_view host;   // its Host field
  int version_minor = 1;   // its HTTP version, for Via
};

// Sets the forwarding fields of a request about to be forwarded, per the
// options: appended to the incoming ones when d.peer is trusted, replacing
// them otherwise. Via is always appended to (it lists intermediaries, not
// clients, and lying in it gains nothing).
void set_forwarding_fields(http::fields& f, const downstream_info& d,
                           const forwarding_options& options);

// Appends "1.x PSEUDONYM" to Via (for responses too). Nothing when
// pseudonym is empty.
void append_via(http::fields& f, int version_minor, std::string_view pseudonym);

// An address as a node of RFC 7239: "192.0.2.43", or the quoted and
// bracketed "\"[2001:db8::17]\"" that IPv6 needs. IPv4-mapped IPv6 peers
// are written as IPv4.
std::string forwarded_node(const asio::ip::address& a);

// An address as X-Forwarded-For writes it: IPv4 as is, IPv6 without
// brackets, IPv4-mapped IPv6 as IPv4.
std::string forwarded_for(const asio::ip::address& a);

}  // namespace trellis::proxy
