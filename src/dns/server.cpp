#include "trellis/dns/server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/error.hpp"

namespace trellis::dns {
namespace {

using tcp = asio::ip::tcp;

// What became of one query, for the metrics.
struct outcome {
  bool dropped = false;
  dns::rcode rcode = dns::rcode::noerror;
  bool truncated = false;
};

// The rcodes counted under their own label; the rest count as "other".
constexpr dns::rcode counted_rcodes[] = {rcode::noerror,  rcode::formerr, rcode::servfail,
                                         rcode::nxdomain, rcode::notimp,  rcode::refused,
                                         rcode::badvers};
constexpr std::size_t rcode_slots = std::size(counted_rcodes) + 1;

// Bytes asked of the kernel per TCP read: a few typical queries.
constexpr std::size_t tcp_read_chunk = 4096;
// Attempts to find a port free for both UDP and TCP when the kernel picks.
constexpr int port_attempts = 8;

// Datagrams taken from the kernel per recvmmsg(2), answered, and given back
// per sendmmsg(2): one pair of system calls for a batch of queries.
constexpr std::size_t udp_batch = 32;
// The largest UDP payload; a bigger datagram would be cut (MSG_TRUNC) and is
// dropped unanswered.
constexpr std::size_t max_datagram = 65535;
// Encoded responses larger than this are not kept in the answer cache.
constexpr std::size_t max_cached_response = 4096;

// The response to a query that failed to decode, built from its header.
message format_error(const header_view& h, std::span<const std::uint8_t> wire) {
  message m;
  m.id = h.id;
  m.qr = true;
  m.opcode = static_cast<dns::opcode>((wire[2] >> 3) & 0x0f);
  m.rd = (wire[2] & 0x01) != 0;
  m.rcode = rcode::formerr;
  return m;
}

std::uint16_t get16(std::span<const std::uint8_t> wire, std::size_t at) {
  return static_cast<std::uint16_t>(wire[at] << 8 | wire[at + 1]);
}

// A cache key: the question's name (lower-cased wire form), QTYPE, QCLASS,
// whether the query has EDNS, and the UDP size limit (0 over TCP).
struct cache_key {
  std::array<char, max_name_length + 7> bytes;
  std::size_t size = 0;
  std::string_view view() const noexcept { return {bytes.data(), size}; }
};

// The answer cache key of a query of the usual shape, read in place: a
// QUERY with one question whose name is not compressed, and no other record
// than an OPT of EDNS version 0 with well-formed options, nothing after it.
// Every such query decodes, and its response depends only on what the key
// holds; the query's ID, RD and CD bits and the case of its name are copied
// into a cached response (see respond_into). Returns the length of the
// question's name, or 0 for any other query (the general path judges it).
std::size_t make_cache_key(std::span<const std::uint8_t> wire, bool udp, std::uint16_t max_udp_size,
                           cache_key& key) {
  if (wire.size() < 17 || (wire[2] & 0xF8) != 0) return 0;  // a response, or not a QUERY
  if (get16(wire, 4) != 1 || get16(wire, 6) != 0 || get16(wire, 8) != 0) return 0;
  const std::uint16_t arcount = get16(wire, 10);
  if (arcount > 1) return 0;
  char* k = key.bytes.data();
  std::size_t at = 12;
  for (;;) {
    if (at >= wire.size()) return 0;
    const std::uint8_t len = wire[at];
    if (len == 0) break;
    if ((len & 0xC0) != 0 || at + 1 + len > wire.size()) return 0;
    if (at - 12 + 1 + len + 1 > max_name_length) return 0;
    *k++ = static_cast<char>(len);
    for (std::size_t i = at + 1; i <= at + len; ++i) {
      const auto c = static_cast<char>(wire[i]);
      *k++ = c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
    }
    at += 1 + len;
  }
  *k++ = '\0';
  ++at;
  const std::size_t qname_length = at - 12;
  if (wire.size() - at < 4) return 0;
  std::memcpy(k, wire.data() + at, 4);  // QTYPE, QCLASS
  k += 4;
  at += 4;
  std::size_t limit = udp ? 512 : 0;
  const bool edns = arcount == 1;
  if (edns) {
    // Root owner, TYPE OPT, CLASS the UDP size, TTL (extended RCODE,
    // VERSION, flags), RDLENGTH, then options as code, length, data.
    if (wire.size() - at < 11 || wire[at] != 0 ||
        get16(wire, at + 1) != static_cast<std::uint16_t>(rtype::opt) || wire[at + 6] != 0)
      return 0;
    if (udp) limit = std::clamp<std::size_t>(get16(wire, at + 3), 512, max_udp_size);
    const std::size_t rdlength = get16(wire, at + 9);
    at += 11;
    if (wire.size() - at != rdlength) return 0;
    while (at < wire.size()) {
      if (wire.size() - at < 4) return 0;
      const std::size_t olen = get16(wire, at + 2);
      at += 4;
      if (wire.size() - at < olen) return 0;
      at += olen;
    }
  }
  if (at != wire.size()) return 0;
  *k++ = edns ? '\1' : '\0';
  *k++ = static_cast<char>(limit >> 8);
  *k++ = static_cast<char>(limit & 0xFF);
  key.size = static_cast<std::size_t>(k - key.bytes.data());
  return qname_length;
}

// A response kept for reuse, and what it counts as.
struct cached_answer {
  std::vector<std::uint8_t> wire;
  outcome oc;
};

// Looks keys up by view, without making a string of them.
struct key_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view k) const noexcept {
    return std::hash<std::string_view>{}(k);
  }
};

// Encoded responses of one worker by cache key (see make_cache_key). Only
// answers fixed by the zones' data go in (not those of rotated or weighted
// RRsets); zones do not change while served, so an entry never goes stale.
// Bounded by the bytes it holds: when full, it starts over empty.
class answer_cache {
 public:
  explicit answer_cache(std::size_t capacity) : capacity_(capacity) {}

  bool enabled() const noexcept { return capacity_ > 0; }
  const cached_answer* find(std::string_view key) const {
    const auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  void insert(std::string_view key, std::span<const std::uint8_t> wire, const outcome& oc) {
    const std::size_t cost = key.size() + wire.size() + sizeof(cached_answer) + 32;
    if (cost > capacity_ || wire.size() > max_cached_response) return;
    if (bytes_ + cost > capacity_) {
      map_.clear();
      bytes_ = 0;
    }
    if (map_.try_emplace(std::string(key), cached_answer{{wire.begin(), wire.end()}, oc}).second)
      bytes_ += cost;
  }

 private:
  std::size_t capacity_;
  std::size_t bytes_ = 0;
  std::unordered_map<std::string, cached_answer, key_hash, std::equal_to<>> map_;
};

// A worker's scratch state for answering: its cache and the key buffer.
struct answer_scratch {
  explicit answer_scratch(std::size_t capacity) : cache(capacity) {}
  answer_cache cache;
  cache_key key;
};

// The response to a decoded query (the checks at the top of server.hpp),
// or nullopt when it gets none. Sets `varies` when the zone's answer came
// from a rotated or weighted RRset.
std::optional<message> answer_query(std::span<const zone> zones, const server_options& options,
                                    const message& query, bool& varies) {
  if (query.qr) return std::nullopt;
  message m = make_response(query);
  m.aa = false;
  m.ra = false;
  if (m.edns) {
    m.edns->udp_size = options.max_udp_size;
    m.edns->options.clear();  // none understood, so none echoed (RFC 6891 §6.1.1)
  }
  if (query.opcode != opcode::query) {
    m.rcode = rcode::notimp;
    return m;
  }
  if (query.questions.size() != 1) {
    m.rcode = rcode::formerr;
    return m;
  }
  if (query.edns && query.edns->version > 0) {
    m.rcode = rcode::badvers;  // RFC 6891 §6.1.3: we speak version 0
    m.edns->version = 0;
    return m;
  }
  const question& q = query.questions.front();
  if ((q.qclass != rclass::in && q.qclass != rclass::any) || q.qtype == rtype::axfr ||
      q.qtype == rtype::ixfr) {
    m.rcode = rcode::refused;
    return m;
  }
  const zone* z = find_zone(zones, q.qname);
  if (!z) {
    m.rcode = rcode::refused;
    return m;
  }
  auto r = z->lookup(q, options.random);
  varies = r.varies;
  std::move(r).move_into(m);
  return m;
}

// Appends the response to `wire` to `out` (nothing when the query is
// dropped) and says what became of it. With `scratch`, a query of the
// usual shape is answered from the worker's cache when it can be, and its
// response goes into the cache when it is fixed by the zones' data.
outcome respond_into(std::span<const zone> zones, const server_options& options,
                     std::span<const std::uint8_t> wire, bool udp, std::vector<std::uint8_t>& out,
                     answer_scratch* scratch) {
  outcome oc;
  auto h = peek_header(wire);
  if (!h || h->qr) {
    oc.dropped = true;
    return oc;
  }
  std::size_t qname_length = 0;
  if (scratch && scratch->cache.enabled())
    qname_length = make_cache_key(wire, udp, options.max_udp_size, scratch->key);
  if (qname_length) {
    if (const cached_answer* hit = scratch->cache.find(scratch->key.view())) {
      const std::size_t base = out.size();
      out.insert(out.end(), hit->wire.begin(), hit->wire.end());
      std::uint8_t* p = out.data() + base;
      p[0] = wire[0];  // ID
      p[1] = wire[1];
      p[2] = static_cast<std::uint8_t>((p[2] & ~0x01) | (wire[2] & 0x01));  // RD
      p[3] = static_cast<std::uint8_t>((p[3] & ~0x10) | (wire[3] & 0x10));  // CD
      // The question's name as the client wrote it; the rest of the
      // response refers to it by compression pointers, never by its case.
      std::memcpy(p + 12, wire.data() + 12, qname_length);
      return hit->oc;
    }
  }
  auto query = decode(wire);
  message m;
  bool varies = false;
  if (query) {
    auto a = answer_query(zones, options, *query, varies);
    if (!a) {
      oc.dropped = true;
      return oc;
    }
    m = std::move(*a);
  } else {
    core::log::debug("malformed dns query", {{"error", query.error().message()}});
    m = format_error(*h, wire);
  }
  std::size_t limit = 0;
  if (udp) {
    limit = 512;
    if (query && query->edns)
      limit = std::clamp<std::size_t>(query->edns->udp_size, 512, options.max_udp_size);
  }
  const std::size_t base = out.size();
  auto n = encode(m, out, {.max_size = limit});
  if (!n && query) {
    // A record the encoder refuses (it should not get past the zone
    // loader): answer SERVFAIL rather than nothing.
    core::log::warn("dns response failed to encode", {{"error", n.error().message()}});
    message s = make_response(*query);
    s.rcode = rcode::servfail;
    if (!encode(s, out, {.max_size = limit})) {
      oc.dropped = true;
      return oc;
    }
    oc.rcode = rcode::servfail;
    oc.truncated = (out[base + 2] & 0x02) != 0;
    return oc;
  }
  if (!n) {
    oc.dropped = true;
    return oc;
  }
  oc.rcode = m.rcode;
  oc.truncated = (out[base + 2] & 0x02) != 0;
  if (qname_length && query && !varies)
    scratch->cache.insert(scratch->key.view(), {out.data() + base, out.size() - base}, oc);
  return oc;
}

}  // namespace

// One TCP connection as the worker's drain hook sees it.
struct tcp_connection {
  tcp::socket* socket;
  bool reading = false;  // waiting for a query: safe to close now
};

// Per-worker state: touched only on that worker's thread.
struct server::worker_state {
  worker_state(server& s, core::worker& w) : srv(s), wk(w), scratch(s.options_.answer_cache_size) {
    auto& m = *s.metrics_;
    queries_udp = &m.add_counter("trellis_dns_queries_total", "DNS queries received, by transport",
                                 {{"transport", "udp"}});
    queries_tcp = &m.add_counter("trellis_dns_queries_total", "DNS queries received, by transport",
                                 {{"transport", "tcp"}});
    for (std::size_t i = 0; i < rcode_slots; ++i) {
      const std::string label =
          i < std::size(counted_rcodes) ? to_string(counted_rcodes[i]) : "other";
      responses[i] = &m.add_counter("trellis_dns_responses_total", "DNS responses sent, by rcode",
                                    {{"rcode", label}});
    }
    truncated = &m.add_counter("trellis_dns_truncated_total",
                               "UDP responses cut to the client's size, with TC set");
    dropped = &m.add_counter("trellis_dns_dropped_total",
                             "Queries dropped unanswered (no readable header, or QR set)");
    connections_gauge = &m.add_gauge("trellis_dns_tcp_connections", "Open DNS TCP connections");
    hook = w.on_drain([this] {
      draining = true;
      if (udp) udp->close();
      for (auto* c : connections) {
        if (!c->reading) continue;
        std::error_code ignored;
        c->socket->cancel(ignored);
      }
    });
  }

  void count(const outcome& oc) {
    if (oc.dropped) {
      dropped->add();
      return;
    }
    std::size_t slot = std::size(counted_rcodes);
    for (std::size_t i = 0; i < std::size(counted_rcodes); ++i)
      if (counted_rcodes[i] == oc.rcode) slot = i;
    responses[slot]->add();
    if (oc.truncated) truncated->add();
  }

  // The response to `wire`, appended to `out`, answered through this
  // worker's cache; counted in the metrics.
  outcome respond(std::span<const std::uint8_t> wire, bool over_udp,
                  std::vector<std::uint8_t>& out) {
    const outcome oc = respond_into(srv.zones(), srv.options(), wire, over_udp, out, &scratch);
    count(oc);
    return oc;
  }

  server& srv;
  core::worker& wk;
  answer_scratch scratch;
  std::optional<net::udp_socket> udp;
  std::list<tcp_connection*> connections;
  bool draining = false;
  core::counter* queries_udp = nullptr;
  core::counter* queries_tcp = nullptr;
  core::counter* responses[rcode_slots] = {};
  core::counter* truncated = nullptr;
  core::counter* dropped = nullptr;
  core::gauge* connections_gauge = nullptr;
  core::drain_hook hook;
};

namespace {

// The buffers of one worker's UDP loop: a batch of datagrams in, a batch
// of answers out. The receive buffers are left uninitialised: a page of them
// is only made resident when a datagram is written into it, so the 2 MiB of
// room for the largest datagrams costs a few pages per slot in practice.
struct udp_buffers {
  udp_buffers() : data(std::make_unique_for_overwrite<std::uint8_t[]>(udp_batch * max_datagram)) {
    for (std::size_t i = 0; i < udp_batch; ++i) {
      in_iov[i] = {data.get() + i * max_datagram, max_datagram};
      in[i].msg_hdr = {};
      in[i].msg_hdr.msg_iov = &in_iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
      in[i].msg_hdr.msg_name = &from[i];
    }
    out.reserve(udp_batch * 512);
  }

  std::unique_ptr<std::uint8_t[]> data;
  mmsghdr in[udp_batch];
  iovec in_iov[udp_batch];
  sockaddr_storage from[udp_batch];
  std::vector<std::uint8_t> out;  // the answers of a batch, back to back
  mmsghdr reply[udp_batch];
  iovec reply_iov[udp_batch];
  std::size_t reply_end[udp_batch];  // where each answer ends in `out`
};

// Sends the `count` answers of `b.reply`, waiting up to `timeout` each time
// the socket's buffer is full. Returns false when the socket is gone.
asio::awaitable<bool> send_batch(asio::ip::udp::socket& sock, net::deadline& dl, udp_buffers& b,
                                 std::size_t count, std::chrono::milliseconds timeout) {
  std::size_t sent = 0;
  while (sent < count) {
    const int n = ::sendmmsg(sock.native_handle(), b.reply + sent,
                             static_cast<unsigned>(count - sent), MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      dl.expires_after(timeout);
      auto [ec] = co_await sock.async_wait(asio::ip::udp::socket::wait_write, use_nothrow);
      ec = dl.map(ec);
      dl.expires_never();
      if (!ec) continue;
      core::log::debug("dns udp send failed", {{"error", ec.message()}});
      co_return ec != asio::error::operation_aborted&& ec != asio::error::bad_descriptor;
    }
    const std::error_code ec(n < 0 ? errno : EIO, asio::error::get_system_category());
    if (ec == std::errc::bad_file_descriptor) co_return false;
    core::log::debug("dns udp send failed", {{"error", ec.message()}});
    ++sent;  // this answer cannot go (its sender's address, say): the next ones may
  }
  co_return true;
}

asio::awaitable<void> serve_udp(server::worker_state& ws) {
  asio::ip::udp::socket& sock = ws.udp->native();
  const auto b = std::make_unique<udp_buffers>();
  net::deadline dl(sock.get_executor(), [&sock] {
    std::error_code ignored;
    sock.cancel(ignored);
  });
  const auto write_timeout = ws.srv.options().write_timeout;
  const asio::any_io_executor ex = sock.get_executor();
  std::size_t since_wait = 0;  // datagrams taken since the loop last let others run
  while (!ws.draining) {
    for (auto& m : b->in) m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    const int n = ::recvmmsg(sock.native_handle(), b->in, udp_batch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        since_wait = 0;
        auto [ec] = co_await sock.async_wait(asio::ip::udp::socket::wait_read, use_nothrow);
        if (ec && (ws.draining || ec == asio::error::bad_descriptor ||
                   ec == asio::error::operation_aborted))
          break;
        continue;
      }
      if (n < 0 && errno == EBADF) break;
      continue;  // EINTR, or an ICMP error left by an earlier reply
    }
    b->out.clear();
    std::size_t replies = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      const msghdr& h = b->in[i].msg_hdr;
      if (h.msg_flags & MSG_TRUNC) continue;  // larger than any query: dropped
      ws.queries_udp->add();
      const std::size_t before = b->out.size();
      ws.respond({b->data.get() + i * max_datagram, b->in[i].msg_len}, true, b->out);
      if (b->out.size() == before) continue;
      msghdr& r = b->reply[replies].msg_hdr;
      r = {};
      r.msg_name = h.msg_name;
      r.msg_namelen = h.msg_namelen;
      r.msg_iov = &b->reply_iov[replies];
      r.msg_iovlen = 1;
      b->reply_end[replies++] = b->out.size();
    }
    // The answers' bytes stay where they are from here on: point at them.
    for (std::size_t i = 0, at = 0; i < replies; at = b->reply_end[i++])
      b->reply_iov[i] = {b->out.data() + at, b->reply_end[i] - at};
    if (replies) {
      const bool open = co_await send_batch(sock, dl, *b, replies, write_timeout);
      if (!open) break;
    }
    // Let the worker's other work (TCP connections) run once in a while
    // when the queries keep coming without a wait.
    since_wait += static_cast<std::size_t>(n);
    if (since_wait >= udp_batch) {
      since_wait = 0;
      co_await asio::post(ex, asio::use_awaitable);
    }
  }
}

asio::awaitable<void> serve_tcp(tcp::socket s, server::worker_state& ws) {
  tcp_connection self{&s};
  const auto it = ws.connections.insert(ws.connections.end(), &self);
  ws.connections_gauge->add(1);
  const auto& o = ws.srv.options();
  net::deadline dl(s.get_executor(), [&s] {
    std::error_code ignored;
    s.cancel(ignored);
  });
  tcp_framer framer;
  std::vector<std::uint8_t> buf(tcp_read_chunk);
  std::vector<std::uint8_t> out;
  while (!ws.draining) {
    // The idle clock restarts only between messages, so a client that
    // trickles one message byte by byte gets no more than one idle period.
    if (framer.buffered() == 0) dl.expires_after(o.tcp_idle_timeout);
    self.reading = true;
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
    self.reading = false;
    if (ec) break;  // the client closed, the idle deadline passed, or drain
    framer.feed({buf.data(), n});
    out.clear();
    bool close = false;
    while (auto q = framer.next()) {
      ws.queries_tcp->add();
      // The two-octet length first (RFC 1035 §4.2.2), filled in once the
      // answer is written after it.
      const std::size_t at = out.size();
      out.resize(at + 2);
      ws.respond(*q, false, out);
      const std::size_t len = out.size() - at - 2;
      if (len == 0) {  // no readable header: nothing after it can be trusted
        out.resize(at);
        close = true;
        break;
      }
      out[at] = static_cast<std::uint8_t>(len >> 8);
      out[at + 1] = static_cast<std::uint8_t>(len);
    }
    if (!out.empty()) {
      dl.expires_after(o.write_timeout);
      auto [wec, written] = co_await asio::async_write(s, asio::buffer(out), use_nothrow);
      if (wec) break;
    }
    if (close) break;
  }
  dl.expires_never();
  std::error_code ignored;
  s.shutdown(tcp::socket::shutdown_both, ignored);
  s.close(ignored);
  ws.connections.erase(it);
  ws.connections_gauge->sub(1);
}

}  // namespace

server::server(std::vector<zone> zones, server_options options)
    : zones_(std::move(zones)), options_(std::move(options)) {
  if (options_.max_udp_size < 512)
    throw core::config_error("max_udp_size", "at least 512 (RFC 1035 §4.2.1)");
  for (std::size_t i = 0; i < zones_.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (zones_[i].origin() == zones_[j].origin())
        throw core::config_error("zones[" + std::to_string(i) + "]",
                                 "the zone " + zones_[i].origin().to_string() +
                                     " is already served by zones[" + std::to_string(j) + "]");
  if (options_.metrics) {
    metrics_ = options_.metrics;
  } else {
    own_metrics_ = std::make_unique<core::metrics_registry>();
    metrics_ = own_metrics_.get();
  }
}

server::~server() = default;

std::optional<message> server::answer(const message& query) const {
  bool varies = false;
  return answer_query(zones_, options_, query, varies);
}

std::vector<std::uint8_t> server::respond(std::span<const std::uint8_t> query, bool udp) const {
  std::vector<std::uint8_t> out;
  respond_into(zones_, options_, query, udp, out, nullptr);
  return out;
}

result<std::uint16_t> server::listen(core::runtime& rt, const asio::ip::address& address,
                                     std::uint16_t port) {
  if (workers_.empty())
    for (std::size_t i = 0; i < rt.size(); ++i)
      workers_.push_back(std::make_unique<worker_state>(*this, rt[i]));

  std::error_code last;
  for (int attempt = 0; attempt < (port == 0 ? port_attempts : 1); ++attempt) {
    // UDP first: its sockets start nothing, so they are easy to give back
    // if TCP cannot have the same port.
    std::vector<net::udp_socket> udp;
    std::uint16_t bound = port;
    for (std::size_t i = 0; i < rt.size(); ++i) {
      auto u = net::udp_socket::bind(rt[i].executor(), {address, bound}, options_.udp);
      if (!u) return unexpected(u.error());
      bound = u->local_endpoint().port();
      udp.push_back(std::move(*u));
    }
    auto tcp_bound =
        net::listen_on_all(rt, {address, bound}, options_.listener,
                           [this](core::worker& w) -> net::tcp_listener::handler {
                             worker_state& ws = *workers_[w.index()];
                             return [&ws](tcp::socket s) { return serve_tcp(std::move(s), ws); };
                           });
    if (!tcp_bound) {
      last = tcp_bound.error();
      if (last == asio::error::address_in_use && port == 0) continue;  // try another port
      return unexpected(last);
    }
    for (std::size_t i = 0; i < rt.size(); ++i) {
      workers_[i]->udp.emplace(std::move(udp[i]));
      rt[i].spawn(serve_udp(*workers_[i]), "dns udp");
    }
    return bound;
  }
  return unexpected(last);
}

}  // namespace trellis::dns
