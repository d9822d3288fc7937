// server: an authoritative DNS server over UDP and TCP on one port
// (RFC 1035 §4.2, RFC 6891 §6.2.5, RFC 7766).
//
// The server answers from its zones only (no recursion: RA is never set):
// a query goes to the zone whose origin is the longest suffix of its name,
// and the zone answers it (see zone.hpp); a name in no zone is REFUSED.
// Before that, the server checks what RFC 1035 §4.1.1 makes its job:
//   - undecodable query whose header is readable: FORMERR, the header's ID
//     echoed and no question; shorter than a header, or with QR set (a
//     response, perhaps reflected at us): dropped without a word;
//   - an opcode other than QUERY: NOTIMP; not exactly one question: FORMERR;
//   - EDNS version above 0: BADVERS (RFC 6891 §6.1.3);
//   - a class other than IN (or ANY): REFUSED; AXFR/IXFR: REFUSED (zone
//     transfers are not offered).
//
// UDP: one socket per worker, SO_REUSEPORT on the same port, read and
// written in batches (recvmmsg/sendmmsg: one pair of system calls for all
// the queries waiting, up to 32). A response
// must fit the client's buffer: 512 octets without EDNS, else the client's
// advertised size, at least 512 and at most `max_udp_size`. The encoder
// drops whole RRsets from the end to fit and sets TC when an answer had to
// go, and the client then asks again over TCP (RFC 7766 §6.2.1.1). Each
// response advertises `max_udp_size` in its own OPT record when the query
// had one.
//
// TCP: the listener of every worker (net::listen_on_all), then per
// connection a loop that reads length-prefixed queries, any number per
// connection and pipelined (RFC 7766 §6.2.1.1): every complete query in a
// read is answered, in order, and the answers go out in one write. A
// connection idle for `tcp_idle_timeout` is closed (RFC 7766 §6.2.3), one
// that does not take its answer within `write_timeout` too; a query whose
// header cannot be read closes the connection.
//
// Answer cache: most queries ask the same few names, and an answer fixed by
// the zone's data (not drawn from a rotated or weighted RRset) is the same
// bytes every time but for the ID, the RD and CD bits and the case of the
// question's name. So each worker keeps the encoded responses of such
// queries, keyed by question, EDNS presence and UDP size limit, and answers
// a repeat by copying them and patching those fields in: no decoding, no
// lookup, no encoding, no allocation. Only queries of the usual shape (one
// uncompressed question, at most an OPT record of version 0) are cached;
// every other query, and every answer that varies, takes the full path.
// The responses are byte for byte those of the full path.
//
// Metrics (core metrics, one shard per worker): queries by transport,
// responses by rcode, truncated UDP responses, dropped datagrams.
//
// Shutdown: on drain the UDP sockets and listeners close, idle TCP
// connections close at once and busy ones after their current answers.
//
// Thread-safety: a server is configured before listen() and then shared by
// every worker (its zones are read-only but for their atomic rotation
// counters); each worker has its own sockets, connections and metric
// instances. answer() and respond() may be called from any thread.
#pragma once

#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "trellis/codec/dns/message.hpp"
#include "trellis/core/metrics.hpp"
#include "trellis/core/result.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/dns/zone.hpp"
#include "trellis/net/listener.hpp"
#include "trellis/net/udp.hpp"

namespace trellis::dns {

struct server_options {
  // The largest UDP response sent, whatever a client advertises. 1232 is
  // the DNS Flag Day 2020 size that avoids IP fragmentation on almost any
  // path; raising it risks answers lost in fragments, lowering it sends
  // more clients to TCP. REQUIRES: 512..65535.
  std::uint16_t max_udp_size = 1232;
  // How long a TCP connection may wait for its next query. RFC 7766 §6.2.3
  // suggests seconds, not minutes: a DNS client that wants the connection
  // again soon keeps it busy, and idle ones hold descriptors.
  std::chrono::milliseconds tcp_idle_timeout{10'000};
  // Longest wait for a client to take an answer (TCP) or for a datagram to
  // be sent (UDP).
  std::chrono::milliseconds write_timeout{5'000};
  // TCP listener settings; max_connections caps connections per worker.
  net::listener_options listener{.max_connections = 1'000};
  // UDP socket settings. The receive buffer absorbs bursts a busy worker
  // cannot read at once; datagrams beyond it are dropped by the kernel.
  net::udp_options udp{.reuse_port = true, .receive_buffer = 1 << 20};
  // Bytes of encoded answers each worker keeps for repeated questions (see
  // the top of this file); when full, a worker's cache starts over. 1 MiB
  // holds thousands of typical answers; 0 turns the cache off.
  std::size_t answer_cache_size = 1 << 20;
  // Where the server's metrics go. Null: the server keeps its own, see
  // metrics().
  core::metrics_registry* metrics = nullptr;
  // Random source for weighted answers (see zone.hpp); empty: a
  // thread-local generator.
  random_source random;
};

class server {
 public:
  // Serves `zones`. Throws core::config_error ("zones[i]") when two zones
  // have the same origin, or ("max_udp_size") when that is below 512.
  explicit server(std::vector<zone> zones, server_options options = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds UDP and TCP on `address`:`port` on every worker of `rt`. With port
  // 0 the kernel picks one port that both protocols then share. Returns the
  // port, or the first error (then nothing is left bound). REQUIRES: the
  // server outlives rt.run(); listen() is called once.
  result<std::uint16_t> listen(core::runtime& rt, const asio::ip::address& address,
                               std::uint16_t port);

  // The response to a decoded query (the checks at the top of this file,
  // then the zone's answer), or nullopt for a query that gets no answer
  // (QR set).
  std::optional<message> answer(const message& query) const;

  // The whole path from a query's bytes to the response's bytes, as sent
  // over UDP (`udp` true: sized to the client's buffer, TC set when cut)
  // or TCP (no size limit, no length prefix). Empty: drop the query.
  std::vector<std::uint8_t> respond(std::span<const std::uint8_t> query, bool udp) const;

  const std::vector<zone>& zones() const noexcept { return zones_; }
  const server_options& options() const noexcept { return options_; }
  core::metrics_registry& metrics() noexcept { return *metrics_; }

  struct worker_state;

 private:
  std::vector<zone> zones_;
  server_options options_;
  std::unique_ptr<core::metrics_registry> own_metrics_;
  core::metrics_registry* metrics_;
  std::vector<std::unique_ptr<worker_state>> workers_;
};

}  // namespace trellis::dns
