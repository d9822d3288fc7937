// TCP connect with a deadline, and Happy Eyeballs (RFC 8305) over a list.
//
// A connect to one address either succeeds, is refused, or hangs until the
// kernel gives up (minutes, with SYN retries). trellis bounds every attempt
// with a deadline, reported as net::error::timed_out.
//
// Given several addresses (a name with AAAA and A records, or several
// replicas), connecting to them one after another makes a dead first
// address cost a full timeout. Happy Eyeballs races them instead:
//   1. order the addresses so families alternate, starting with the first
//      address's family (RFC 8305 §4: IPv6 first when the resolver sorted
//      it first, but an IPv4 address follows right after);
//   2. start an attempt; if it has not succeeded after `attempt_delay`
//      (RFC 8305 §5 recommends 250 ms) start the next one, without
//      cancelling the first; when an attempt fails, start the next at once;
//   3. the first attempt to complete wins; the others are cancelled and
//      their sockets closed; the call returns only after every attempt has
//      finished, so no coroutine outlives it.
// If every attempt fails, the error of the last one to fail is returned;
// if the overall deadline passes first, net::error::timed_out.
//
// Thread-safety: each call is independent; the returned socket belongs to
// the executor the call ran on.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <span>

#include "trellis/core/result.hpp"

namespace trellis::net {

struct connect_options {
  // Deadline for the whole connect (all attempts together).
  std::chrono::milliseconds timeout{10'000};
  // Head start each attempt gets before the next one starts in parallel.
  // RFC 8305 recommends 250 ms, bounded to [100 ms, 2 s]; lower finds a
  // working address sooner at the price of more half-open connections.
  std::chrono::milliseconds attempt_delay{250};
  // Set TCP_NODELAY on the connected socket.
  bool no_delay = true;
};

// Connects to one address within options.timeout.
asio::awaitable<result<asio::ip::tcp::socket>> connect(asio::ip::tcp::endpoint address,
                                                       connect_options options = {});

// Happy Eyeballs over `addresses` (see above). Returns net::error::no_addresses
// for an empty list. The span must stay valid until the call completes.
asio::awaitable<result<asio::ip::tcp::socket>> connect(
    std::span<const asio::ip::tcp::endpoint> addresses, connect_options options = {});

// The order in which connect() tries `addresses`: families interleaved,
// starting with the family of the first address, relative order kept.
std::vector<asio::ip::tcp::endpoint> interleave_families(
    std::span<const asio::ip::tcp::endpoint> addresses);

}  // namespace trellis::net
