#include "trellis/dns/server.hpp"

#include <algorithm>
#include <asio/write.hpp>
#include <list>
#include <string>

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

std::vector<std::uint8_t> respond_impl(const server& srv, std::span<const std::uint8_t> wire,
                                       bool udp, outcome& oc) {
  auto h = peek_header(wire);
  if (!h || h->qr) {
    oc.dropped = true;
    return {};
  }
  auto query = decode(wire);
  message m;
  if (query) {
    auto a = srv.answer(*query);
    if (!a) {
      oc.dropped = true;
      return {};
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
      limit = std::clamp<std::size_t>(query->edns->udp_size, 512, srv.options().max_udp_size);
  }
  auto out = encode(m, {.max_size = limit});
  if (!out && query) {
    // A record the encoder refuses (it should not get past the zone
    // loader): answer SERVFAIL rather than nothing.
    core::log::warn("dns response failed to encode", {{"error", out.error().message()}});
    message s = make_response(*query);
    s.rcode = rcode::servfail;
    out = encode(s, {.max_size = limit});
    if (!out) {
      oc.dropped = true;
      return {};
    }
    m.rcode = rcode::servfail;
  }
  if (!out) {
    oc.dropped = true;
    return {};
  }
  oc.rcode = m.rcode;
  oc.truncated = out->size() > 2 && ((*out)[2] & 0x02) != 0;
  return std::move(*out);
}

}  // namespace

// One TCP connection as the worker's drain hook sees it.
struct tcp_connection {
  tcp::socket* socket;
  bool reading = false;  // waiting for a query: safe to close now
};

// Per-worker state: touched only on that worker's thread.
struct server::worker_state {
  worker_state(server& s, core::worker& w) : srv(s), wk(w) {
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

  server& srv;
  core::worker& wk;
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

asio::awaitable<void> serve_udp(server::worker_state& ws) {
  net::udp_socket& sock = *ws.udp;
  std::vector<char> buf(65535);
  const auto write_timeout = ws.srv.options().write_timeout;
  while (!ws.draining) {
    auto d = co_await sock.receive_from(buf, std::chrono::hours(1));
    if (!d) {
      if (ws.draining || d.error() == asio::error::bad_descriptor ||
          d.error() == asio::error::operation_aborted)
        break;
      continue;  // a time-out, or an ICMP error left by an earlier reply
    }
    ws.queries_udp->add();
    outcome oc;
    const auto out = respond_impl(
        ws.srv, {reinterpret_cast<const std::uint8_t*>(buf.data()), d->size}, true, oc);
    ws.count(oc);
    if (out.empty()) continue;
    if (auto ec = co_await sock.send_to({reinterpret_cast<const char*>(out.data()), out.size()},
                                        d->sender, write_timeout))
      core::log::debug("dns udp send failed", {{"error", ec.message()}});
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
      outcome oc;
      const auto resp = respond_impl(ws.srv, *q, false, oc);
      ws.count(oc);
      if (resp.empty()) {  // no readable header: nothing after it can be trusted
        close = true;
        break;
      }
      frame_for_tcp(resp, out);
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
  if (query.qr) return std::nullopt;
  message m = make_response(query);
  m.aa = false;
  m.ra = false;
  if (m.edns) {
    m.edns->udp_size = options_.max_udp_size;
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
  const zone* z = find_zone(zones_, q.qname);
  if (!z) {
    m.rcode = rcode::refused;
    return m;
  }
  auto r = z->lookup(q, options_.random);
  m.rcode = r.rcode;
  m.aa = r.authoritative;
  m.answers = std::move(r.answers);
  m.authorities = std::move(r.authorities);
  m.additionals = std::move(r.additionals);
  return m;
}

std::vector<std::uint8_t> server::respond(std::span<const std::uint8_t> query, bool udp) const {
  outcome ignored;
  return respond_impl(*this, query, udp, ignored);
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
