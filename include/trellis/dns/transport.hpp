// DNS transport: one query to one server, over UDP with a TCP retry
// (RFC 1035 §4.2, RFC 7766), and nothing more — no search list, no caching,
// no server selection. The stub resolver, an iterative resolver and a
// dig-like tool all build on it.
//
// Anti-spoofing (RFC 5452): by default every query goes out from a fresh UDP
// socket on a kernel-chosen ephemeral port, with an ID from a cryptographic
// generator (OpenSSL RAND_bytes, drawn a few hundred octets at a time and
// handed out per thread). A udp_channel with queries_per_socket > 1 instead
// keeps a socket to its server for that many queries (see udp_channel for
// what that trades away). The socket is connected to the server, so the kernel
// drops datagrams from other addresses or ports, and the sender is checked
// again on receipt. A datagram is accepted only when its ID, QR bit and
// question (name case-insensitively, type, class) match the query; anything
// else is ignored and the transport keeps reading until the deadline. A
// datagram that matches the ID but fails to decode is ignored the same way
// (an attacker can send garbage with a guessed ID), but remembered: if
// nothing better arrives, the error is dns::error::malformed instead of
// timed_out. (The stub resolver's answers are checked against the question
// on the wire before the rest is decoded: one with our ID and another
// question is ignored without a look at the rest.)
//
// EDNS0 (RFC 6891) advertises a 1232-octet UDP buffer by default (DNS Flag
// Day 2020: no IP fragmentation on common paths). A server that answers
// FORMERR without an OPT record does not speak EDNS: the query is repeated
// once without it (RFC 6891 §7). A truncated answer (TC) is retried over TCP
// with two-octet length framing, within what is left of the deadline.
//
// The response's RCODE is not an error here: NXDOMAIN, SERVFAIL and REFUSED
// come back as a successful exchange whose message says so; the caller
// decides. Errors are: dns::error::timed_out (no acceptable answer in
// time), dns::error::malformed (only undecodable answers arrived), the
// socket's own errors (connection_refused when the server's port is closed:
// ICMP port unreachable on the connected socket), and dns::error::bad_query
// for a query that cannot be encoded.
//
// Cost (fresh port): socket, the non-blocking switch (Asio's, on the first
// wait), one epoll registration and one re-arm, connect, send, one receive
// once readable, close — eight system calls, no speculative receive. The
// receive buffer (the largest datagram) is one per thread, since a datagram
// is decoded before the coroutine waits again. With a shared socket (a
// udp_channel with queries_per_socket > 1): send and receive, the rest
// amortised, plus the readiness wait that Asio re-arms per wait (epoll_ctl)
// when nothing else is waiting; the reader receives at most one datagram
// per query that was waiting when it woke, so a query answered alone costs
// no receive that finds nothing. The query is one coroutine frame, encoded
// straight into a per-thread buffer when it is a plain question, waits in
// its frame (no timer of its own: one per channel), and is resumed by the
// socket's reader as soon as its answer is decoded, without another trip
// through the scheduler. The stub resolver's tries need no coroutine of
// their own: they wait in the frame of the resolver's coroutine that asks
// the question (src/dns/udp_try.hpp), and an exchange coroutine is started
// only when an answer asks for more (EDNS fallback, TCP). Cancelling the
// awaiting operation (e.g. the losing side of `||`) ends the wait with
// operation_aborted.
//
// Thread-safety: each call is independent and runs on the caller's
// executor; calls may run concurrently on the same executor. A udp_channel
// belongs to one executor, like the resolver that owns it.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/udp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "trellis/codec/dns/message.hpp"
#include "trellis/core/result.hpp"

namespace trellis::dns {

struct query_options {
  // Deadline for the whole exchange: the UDP wait and, when TC is set, the
  // TCP retry together. A resolver sets it per try; a lower value moves on
  // to the next server sooner but gives up on slow, far servers.
  std::chrono::milliseconds timeout{5000};
  // The RD bit. A stub asks a recursive server (true); an iterative
  // resolver asks authoritative servers (false).
  bool recursion_desired = true;
  // EDNS0 UDP payload size advertised; 0 sends no OPT record and limits
  // answers to 512 octets (more truncation, more TCP).
  std::uint16_t edns_udp_size = 1232;
  // Set the DO bit (RFC 3225) to ask for DNSSEC records.
  bool dnssec_ok = false;
  // Skip UDP and ask over TCP only (dig +tcp, zone transfers, or after a
  // UDP answer proved too big).
  bool tcp_only = false;
  // Retry over TCP when the UDP answer has TC. Off: the truncated answer is
  // returned as is (dig +ignore).
  bool tcp_fallback = true;
};

// One completed exchange.
struct exchange_result {
  message response;                   // the accepted answer, decoded
  asio::ip::udp::endpoint server;     // who answered (address and port)
  std::chrono::nanoseconds rtt{0};    // from sending to the accepted answer (last transport)
  bool used_tcp = false;              // the answer came over TCP
  bool truncated_udp = false;         // a UDP answer with TC came first
  bool edns_fallback = false;         // the query was repeated without EDNS
  std::size_t wire_size = 0;          // octets of the accepted answer (without TCP framing)
  std::size_t ignored_datagrams = 0;  // datagrams that did not match and were dropped
};

// Sends `q` to `server` and waits for the matching answer. The query's ID
// is replaced by a fresh random one; its RD flag and EDNS record are set
// from `options` (the rest of the message — opcode, CD, extra records — is
// sent as given).
// REQUIRES: q has exactly one question (otherwise dns::error::bad_query).
asio::awaitable<result<exchange_result>> query(const asio::ip::udp::endpoint& server, message q,
                                               query_options options = {});

// The same for one question (the common case).
asio::awaitable<result<exchange_result>> query(const asio::ip::udp::endpoint& server,
                                               const question& q, query_options options = {});

class udp_channel;

namespace detail {
struct udp_channel_state;

// query() through `channel` for the stub resolver: the answer is decoded
// straight into `response` (the caller's, awaiting at once), and only the
// error, if any, is returned. An answer that came over the channel's UDP
// socket is decoded without its question section (checked on the wire, as
// always, and left out of `response`: the caller has it). After an error
// `response` is unspecified.
asio::awaitable<std::error_code> query_into(udp_channel& channel, const question& q,
                                            const query_options& options, message& response);

// The channel's state, for the resolver's tries (src/dns/udp_try.hpp).
udp_channel_state& state_of(udp_channel& channel) noexcept;
}  // namespace detail

// The UDP path to one server for many queries, in the spirit of c-ares's
// ARES_OPT_UDP_MAX_QUERIES.
//
// queries_per_socket == 1 (the default): every query gets a fresh socket on
// a new random ephemeral port, as query(endpoint, ...) does. An off-path
// attacker forging an answer must guess the 16-bit ID and the port
// (~16 bits more, RFC 5452 §9.2) for each query separately.
//
// queries_per_socket == N > 1: queries share one connected socket on a
// random ephemeral port, which carries up to N queries and is then replaced
// by a new one (a new port). One reader per socket, running while queries
// are pending, hands each datagram to the query whose ID it carries (IDs
// are unique among the socket's queries in flight, found through a flat
// table) and resumes that query on the spot; the usual checks then
// apply (sender, ID, QR, question), so a datagram that fails them is
// ignored and its query keeps waiting until its own deadline. What it
// trades: the port stops being a secret after the first query an attacker
// can observe or provoke, so for the rest of the socket's N queries a
// forged answer needs to match only the ID — 16 bits instead of ~32. Larger
// N saves more system calls (socket, connect, epoll registration, close:
// four of the fresh port's seven) and exposes more queries. Use it towards
// a resolver on this host or on a path no attacker can inject into, or when
// answers are validated (DNSSEC) further on. c-ares 1.18 keeps one port
// forever; unbound, like the default here, uses a fresh one per query.
//
// A socket that reports an error (ICMP port unreachable: connection_refused)
// fails the queries waiting on it and is replaced at the next query. Idle
// sockets are kept for the next query and closed with the channel, or when
// the execution context shuts down, whichever comes first. The deadlines of
// the queries waiting on a channel's sockets share one timer, which is
// stopped soon after the last of them ends, so that an io_context with
// nothing else to do runs out of work. Queries still waiting when the
// execution context shuts down are dropped with it (their coroutines are
// destroyed, never resumed).
class udp_channel {
 public:
  // REQUIRES: every query through this channel runs on `ex`.
  // queries_per_socket: 0 is taken as 1.
  udp_channel(const asio::any_io_executor& ex, const asio::ip::udp::endpoint& server,
              unsigned queries_per_socket = 1);
  ~udp_channel();
  udp_channel(const udp_channel&) = delete;
  udp_channel& operator=(const udp_channel&) = delete;

  const asio::ip::udp::endpoint& server() const noexcept;
  unsigned queries_per_socket() const noexcept;
  // Shared sockets opened so far (0 while queries_per_socket is 1).
  std::uint64_t sockets_opened() const noexcept;

 private:
  friend asio::awaitable<result<exchange_result>> query(udp_channel& channel, message q,
                                                        query_options options);
  friend asio::awaitable<std::error_code> detail::query_into(udp_channel& channel,
                                                             const question& q,
                                                             const query_options& options,
                                                             message& response);
  friend detail::udp_channel_state& detail::state_of(udp_channel& channel) noexcept;
  std::shared_ptr<detail::udp_channel_state> state_;
};

// query() through `channel` (its server, its sockets). TCP attempts are
// per query as always.
// REQUIRES: runs on the channel's executor; q has exactly one question.
asio::awaitable<result<exchange_result>> query(udp_channel& channel, message q,
                                               query_options options = {});
asio::awaitable<result<exchange_result>> query(udp_channel& channel, const question& q,
                                               query_options options = {});

// A fresh 16-bit ID from the CSPRNG (for callers that build their own
// exchanges, e.g. a server's tests).
std::uint16_t random_id();

// True when `response` answers `q`: QR set, same ID, one question equal to
// q's (name case-insensitive, type, class). Exposed for tests and for other
// transports.
bool matches(const message& q, const message& response) noexcept;

}  // namespace trellis::dns
