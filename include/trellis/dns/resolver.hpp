// The stub resolver: names to addresses (and to MX, TXT, SRV, PTR or any
// record type) by asking the recursive servers of resolv.conf, the way the
// C library's resolver does, but asynchronously on Asio coroutines.
//
// A lookup goes, in order, through:
//   1. IP literals (resolve() only) and the hosts file (A/AAAA only, the
//      name as typed), then `localhost` and names below it (RFC 6761 §6.3),
//      answered with the loopback addresses and never sent anywhere;
//   2. the search list (config.hpp: ndots, search domains); for each name
//      in turn, NXDOMAIN and NODATA move on to the next one, while a server
//      failure ends the lookup;
//   3. the cache (cache.hpp), then one network query per question however
//      many coroutines ask it at once (single flight: the others wait for
//      the first one's answer);
//   4. the servers: attempts × servers tries, each try waiting `timeout`
//      doubled per round (1×, 2×, 4×...), starting with the first server
//      or, with `rotate`, the next one in turn. A server that fails
//      `failure_threshold` times in a row (timeout, SERVFAIL, REFUSED, a
//      network error) goes to the back of the list for `penalty` (doubling
//      per further failure up to `max_penalty`) and is tried first again
//      after that; one success restores it;
//   5. CNAME chains (RFC 1034 §3.6.2, §4.3.2): the records of a chain in
//      the answer are followed; when the chain ends without the records
//      asked for, its target is queried again. More than max_cname_chain
//      links, or a name seen twice, is dns::error::cname_loop;
//   6. when every server failed: a stale cache entry if serve-stale is on
//      (RFC 8767), else the error.
// A cache hit in the last part of its TTL starts a background refresh
// (prefetch) so that a popular name never expires under its clients.
//
// resolve() asks A and AAAA in parallel and sorts the addresses by a
// documented subset of RFC 6724 §6 (see address_order). Errors are dns::error
// codes: nxdomain, nodata, servfail, refused, not_implemented, format_error,
// timed_out, malformed, no_servers, cname_loop, bad_query.
//
// Thread-safety: a resolver belongs to ONE executor (one io_context, one
// worker thread): make one per worker. Every call must run on that
// executor. Nothing in it is locked or atomic — the cache, the in-flight
// table and the server health are plain per-worker state, which is what
// makes a cached lookup cost nanoseconds. Destroying the resolver while
// calls are in flight is allowed: background work holds its own reference
// to the shared state and ends with its io_context.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/dns/message.hpp"
#include "trellis/core/result.hpp"
#include "trellis/dns/cache.hpp"
#include "trellis/dns/config.hpp"

namespace trellis::dns {

// Which addresses resolve() asks for.
enum class address_family : std::uint8_t { any, v4, v6 };

// How resolve() orders what it found.
enum class address_order : std::uint8_t {
  // RFC 6724 §6, rules 1 and 6 only: addresses this host has no route to
  // come last (found by connect(2) on a UDP socket, which sends nothing),
  // then by the default policy table's precedence: ::1 (50), other IPv6
  // (40), IPv4 (35), 6to4 (30), Teredo (5), ULA (3), site-local and
  // 6bone (1). So IPv6 comes first exactly when this host can reach it.
  // Equal addresses keep the server's order.
  rfc6724,
  // The family first (then as rfc6724 within each family). For hosts
  // whose IPv6 route exists but is known to be worse.
  ipv4_first,
  ipv6_first,
  // The order the answers came in: A records first, then AAAA.
  none,
};

struct resolver_options {
  // Servers, search list, ndots, timeout, attempts, rotate, EDNS.
  // Default: nothing configured (every lookup that needs the network fails
  // with no_servers); use resolver_options::system() for the host's files.
  resolv_conf conf;
  // The static host table, consulted first for A and AAAA.
  dns::hosts hosts;
  // Answer caching. Off, every lookup costs a round trip.
  bool use_cache = true;
  dns::cache::options cache_options;
  // Refresh hot entries before they expire (see cache::options::prefetch_fraction).
  bool prefetch = true;
  address_order order = address_order::rfc6724;
  // CNAME links followed at most. Real chains rarely exceed 3; 8 is what
  // the C library allows (it gives up at 16 nested lookups).
  unsigned max_cname_chain = 8;
  // Consecutive failures after which a server is moved to the back.
  unsigned failure_threshold = 2;
  // How long a failing server stays at the back; doubles per further
  // failure up to max_penalty. Longer keeps a dead server from costing a
  // timeout on every query, but notices its return later.
  std::chrono::milliseconds penalty{5'000};
  std::chrono::milliseconds max_penalty{60'000};
  // UDP queries carried by one socket per server (udp_channel in
  // transport.hpp). 1: a fresh socket on a new random port per query, so a
  // forged answer must guess the port as well as the 16-bit ID (RFC 5452).
  // N > 1: a socket carries N queries before a new port replaces it — up to
  // four system calls fewer per query, but once its port is known a forger
  // needs only the ID for the rest of them. For a resolver on this host or
  // a trusted path (c-ares 1.18 keeps one port forever).
  unsigned queries_per_socket = 1;

  // /etc/resolv.conf (and RES_OPTIONS) and /etc/hosts. A missing
  // resolv.conf gives no servers; a missing hosts file an empty table.
  static resolver_options system();
};

// The answer to lookup(): the records of the type asked for, after the
// search list and any CNAME chain.
struct answer {
  name qname;      // the name that got the answer (search domain applied)
  name canonical;  // the end of the CNAME chain; == qname without one
  rtype type = rtype::a;
  std::vector<record> records;  // of `type`, owned by `canonical`; TTLs as left now
  std::uint32_t ttl = 0;        // the smallest TTL among them
  bool from_cache = false;      // no packet was sent for the final answer
  bool stale = false;           // served stale (RFC 8767): every server failed
};

struct resolver_stats {
  std::uint64_t lookups = 0;          // questions asked of the cache/network layer
  std::uint64_t cache_hits = 0;       // answered from the cache (fresh)
  std::uint64_t queries_sent = 0;     // exchanges attempted with servers
  std::uint64_t coalesced = 0;        // questions that waited for an identical one in flight
  std::uint64_t server_failures = 0;  // tries that timed out or failed
  std::uint64_t stale_answers = 0;    // answers served stale
  std::uint64_t prefetches = 0;       // background refreshes started
  std::uint64_t hosts_answers = 0;    // answered by the hosts file or localhost
};

// How one server is doing (for metrics and tests).
struct server_status {
  asio::ip::udp::endpoint endpoint;
  unsigned consecutive_failures = 0;
  bool deprioritised = false;  // in its penalty period now
};

namespace detail {
struct resolver_state;
}

class resolver {
 public:
  // REQUIRES: every call on this resolver runs on `ex`.
  resolver(asio::any_io_executor ex, resolver_options options);
  ~resolver();
  resolver(resolver&&) noexcept;
  resolver& operator=(resolver&&) noexcept;

  // Addresses of `host`: an IP literal as is; the hosts file; localhost;
  // otherwise A and AAAA in parallel (one of them with `family`), sorted by
  // options.order. Succeeds when either family has addresses (a timed-out
  // AAAA does not hide a good A). Errors: as the file comment; when both
  // fail, a server failure wins over nodata, nodata over nxdomain.
  asio::awaitable<result<std::vector<asio::ip::address>>> resolve(
      std::string_view host, address_family family = address_family::any);

  // Records of any type for `host`, through hosts/localhost (A, AAAA), the
  // search list, the cache and CNAME chains. Errors: as the file comment.
  asio::awaitable<result<answer>> lookup(std::string_view host, rtype type);

  // MX exchanges, by preference (lowest first).
  asio::awaitable<result<std::vector<mx_data>>> lookup_mx(std::string_view host);
  // TXT records, each record's strings concatenated (RFC 7208 §3.3).
  asio::awaitable<result<std::vector<std::string>>> lookup_txt(std::string_view host);
  // SRV records of e.g. "_sip._tcp.example.com", by priority (lowest
  // first), then weight (highest first). The weighted random choice of
  // RFC 2782 is the caller's, among records of equal priority.
  asio::awaitable<result<std::vector<srv_data>>> lookup_srv(std::string_view service);
  // Names of an address: the hosts file, else PTR records of its
  // in-addr.arpa / ip6.arpa name.
  asio::awaitable<result<std::vector<name>>> reverse(const asio::ip::address& address);

  // One question, as asked (no search list, hosts or CNAME following),
  // through the cache, single flight, server selection and serve-stale.
  // Returns the response whatever its RCODE (NXDOMAIN included); errors only
  // when no server gave a usable answer (servfail, refused, timed_out,
  // no_servers...). A response from the cache is rebuilt with current TTLs.
  asio::awaitable<result<message>> query(const question& q);

  const resolver_stats& stats() const noexcept;
  std::vector<server_status> servers() const;
  dns::cache& answer_cache() noexcept;
  const resolver_options& options() const noexcept;

 private:
  std::shared_ptr<detail::resolver_state> state_;
};

// `addresses` ordered by `order` (see address_order). Exposed for tests.
std::vector<asio::ip::address> sort_addresses(std::vector<asio::ip::address> addresses,
                                              address_order order);

}  // namespace trellis::dns
