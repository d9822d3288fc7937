#include "trellis/dns/transport.hpp"

#include <openssl/rand.h>

#include <asio/ip/tcp.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <random>
#include <vector>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/error.hpp"
#include "trellis/net/udp.hpp"

namespace trellis::dns {
namespace {

using clock = std::chrono::steady_clock;
using asio::ip::tcp;
using asio::ip::udp;

// The largest datagram there is: a reply bigger than what we advertised
// still arrives whole, so that it can be recognised (and ignored or used)
// rather than reported as cut.
constexpr std::size_t max_datagram = 65535;

std::chrono::milliseconds remaining(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

// What a receive loop ended with when no acceptable answer came.
std::error_code failure(bool saw_malformed) {
  return saw_malformed ? make_error_code(error::malformed) : make_error_code(error::timed_out);
}

struct attempt_result {
  message response;
  std::size_t wire_size = 0;
  std::chrono::nanoseconds rtt{0};
  std::size_t ignored = 0;
};

// Decodes `wire` and returns the message when it answers `q`; nullopt when
// it must be ignored. Sets `malformed` for an answer with our ID that does
// not decode.
std::optional<message> accept(const message& q, std::span<const std::uint8_t> wire,
                              bool& malformed) {
  auto h = peek_header(wire);
  if (!h || !h->qr || h->id != q.id) return std::nullopt;  // not even a candidate
  auto m = decode(wire);
  if (!m) {
    core::log::debug("dns: undecodable answer ignored", {{"error", m.error().message()}});
    malformed = true;
    return std::nullopt;
  }
  if (!matches(q, *m)) return std::nullopt;
  return std::move(*m);
}

asio::awaitable<result<attempt_result>> over_udp(const udp::endpoint& server, const message& q,
                                                 const std::vector<std::uint8_t>& wire,
                                                 clock::time_point deadline) {
  const auto ex = co_await asio::this_coro::executor;
  auto sock = net::udp_socket::connect(ex, server);
  if (!sock) co_return unexpected(sock.error());
  const auto sent_at = clock::now();
  if (auto ec = co_await sock->send({reinterpret_cast<const char*>(wire.data()), wire.size()},
                                    remaining(deadline))) {
    co_return unexpected(ec == net::error::timed_out ? make_error_code(error::timed_out) : ec);
  }
  std::vector<char> buf(max_datagram);
  attempt_result out;
  bool malformed = false;
  for (;;) {
    const auto left = remaining(deadline);
    if (left.count() == 0) co_return unexpected(failure(malformed));
    auto d = co_await sock->receive_from(buf, left);
    if (!d) {
      if (d.error() == net::error::timed_out) co_return unexpected(failure(malformed));
      if (d.error() == net::error::message_too_long) {  // not a DNS answer of any size
        ++out.ignored;
        continue;
      }
      co_return unexpected(d.error());
    }
    const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(buf.data()),
                                              d->size);
    // The kernel filters a connected socket's senders; checking again costs nothing.
    if (d->sender != server) {
      ++out.ignored;
      continue;
    }
    auto m = accept(q, bytes, malformed);
    if (!m) {
      ++out.ignored;
      continue;
    }
    out.rtt = clock::now() - sent_at;
    out.wire_size = d->size;
    out.response = std::move(*m);
    co_return out;
  }
}

asio::awaitable<result<attempt_result>> over_tcp(const udp::endpoint& server, const message& q,
                                                 const std::vector<std::uint8_t>& wire,
                                                 clock::time_point deadline) {
  const auto sent_at = clock::now();
  auto left = remaining(deadline);
  if (left.count() == 0) co_return unexpected(error::timed_out);
  auto sock = co_await net::connect(tcp::endpoint(server.address(), server.port()),
                                    net::connect_options{.timeout = left});
  if (!sock) {
    co_return unexpected(sock.error() == net::error::timed_out ? make_error_code(error::timed_out)
                                                               : sock.error());
  }
  tcp::socket& s = *sock;
  const auto ex = s.get_executor();
  net::deadline dl(ex, [&s] {
    std::error_code ignored;
    s.cancel(ignored);
  });
  dl.expires_at(deadline);

  std::vector<std::uint8_t> framed;
  frame_for_tcp(wire, framed);
  auto [wec, wn] = co_await asio::async_write(s, asio::buffer(framed), use_nothrow);
  if (wec) {
    wec = dl.map(wec);
    co_return unexpected(wec == net::error::timed_out ? make_error_code(error::timed_out) : wec);
  }

  tcp_framer framer;
  std::vector<std::uint8_t> buf(16384);
  attempt_result out;
  bool malformed = false;
  for (;;) {
    while (auto frame = framer.next()) {
      auto m = accept(q, *frame, malformed);
      if (!m) {
        ++out.ignored;
        continue;
      }
      out.rtt = clock::now() - sent_at;
      out.wire_size = frame->size();
      out.response = std::move(*m);
      co_return out;
    }
    // A server sends at most one 65535-octet message plus its framing for
    // our one query; more than a few of them unanswered is not a DNS server.
    if (framer.buffered() > 4 * (max_datagram + 2)) co_return unexpected(error::malformed);
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
    if (ec) {
      ec = dl.map(ec);
      if (ec == net::error::timed_out) co_return unexpected(failure(malformed));
      co_return unexpected(malformed ? make_error_code(error::malformed) : ec);
    }
    framer.feed({buf.data(), n});
  }
}

}  // namespace

std::uint16_t random_id() {
  std::uint16_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) == 1) return id;
  // OpenSSL's generator failed (no entropy source): fall back to the
  // kernel's, through random_device, rather than to a predictable value.
  static thread_local std::random_device rd;
  return static_cast<std::uint16_t>(rd());
}

bool matches(const message& q, const message& response) noexcept {
  return response.qr && response.id == q.id && response.questions.size() == 1 &&
         q.questions.size() == 1 && response.questions[0] == q.questions[0];
}

asio::awaitable<result<exchange_result>> query(const udp::endpoint& server, message q,
                                               query_options options) {
  if (q.questions.size() != 1) co_return unexpected(error::bad_query);
  const auto deadline = clock::now() + options.timeout;
  q.rd = options.recursion_desired;
  if (options.edns_udp_size > 0) {
    if (!q.edns) q.edns.emplace();
    q.edns->udp_size = std::max<std::uint16_t>(options.edns_udp_size, 512);
    q.edns->dnssec_ok = options.dnssec_ok;
  } else {
    q.edns.reset();
  }

  exchange_result out;
  out.server = server;
  bool use_tcp = options.tcp_only;
  for (int round = 0; round < 3; ++round) {  // UDP, EDNS fallback, TCP at most
    q.id = random_id();
    auto wire = encode(q);
    if (!wire) co_return unexpected(error::bad_query);
    // Two statements, not `c ? co_await a : co_await b`: g++ 12 destroys
    // the temporaries of a co_await inside a conditional expression twice.
    result<attempt_result> r = unexpected(error::timed_out);
    if (use_tcp)
      r = co_await over_tcp(server, q, *wire, deadline);
    else
      r = co_await over_udp(server, q, *wire, deadline);
    if (!r) co_return unexpected(r.error());
    out.ignored_datagrams += r->ignored;
    message& m = r->response;
    if (q.edns && !m.edns && m.rcode == rcode::formerr && !out.edns_fallback) {
      q.edns.reset();  // RFC 6891 §7: a server without EDNS; ask again plainly
      out.edns_fallback = true;
      continue;
    }
    if (!use_tcp && m.tc && options.tcp_fallback) {
      out.truncated_udp = true;
      use_tcp = true;
      continue;
    }
    out.used_tcp = use_tcp;
    out.rtt = r->rtt;
    out.wire_size = r->wire_size;
    out.response = std::move(m);
    co_return out;
  }
  co_return unexpected(error::malformed);  // a server that keeps answering FORMERR then TC
}

asio::awaitable<result<exchange_result>> query(const udp::endpoint& server, const question& q,
                                               query_options options) {
  message m;
  m.questions.push_back(q);
  co_return co_await query(server, std::move(m), options);
}

}  // namespace trellis::dns
