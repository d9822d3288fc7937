// Resolve and connect in one call: a host name and port to a connected TCP
// socket, the job of getaddrinfo() plus a Happy Eyeballs connect.
//
// dns::connect() resolves A and AAAA in parallel through a resolver (hosts
// file, cache, search list and all; resolver.hpp), which sorts the
// addresses (RFC 6724 basics), then races connections to them with
// net::connect() (RFC 8305 §5, net/connect.hpp): a dead first address costs
// an attempt delay, not a timeout. The two phases have their own limits:
// resolution the resolver's timeout × attempts, connection
// options.connect.timeout.
//
// Thread-safety: as the resolver: run it on the resolver's executor; the
// returned socket belongs to that executor.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <string_view>

#include "trellis/core/result.hpp"
#include "trellis/dns/resolver.hpp"
#include "trellis/net/connect.hpp"

namespace trellis::dns {

struct connect_options {
  // Timeout of the connection phase and the Happy Eyeballs attempt delay.
  net::connect_options connect;
  // Which families to resolve (any: both, raced).
  address_family family = address_family::any;
};

// Resolves `host` (a name or an IP literal) and connects to `port` on the
// first address that accepts. Errors: the resolver's dns::error (nxdomain,
// timed_out...) when resolution fails; the connect error of the last
// attempt (connection_refused...) or net::error::timed_out otherwise.
asio::awaitable<result<asio::ip::tcp::socket>> connect(resolver& r, std::string_view host,
                                                       std::uint16_t port,
                                                       connect_options options = {});

}  // namespace trellis::dns
