// trellis-dig: a dig-like DNS lookup tool on trellis's transport and
// iterative resolver.
//
//   trellis-dig [@server[:port]] [-p port] name [type] [+tcp] [+short]
//               [+norec] [+trace] [+noedns] [+timeout=ms] [-x address]
//               [+repeat=N [+wait=ms]]
//
// Without @server it asks the first nameserver of /etc/resolv.conf. The
// output follows dig's layout (header, question, answer, authority and
// additional sections, then the query time, server and size), so the two
// can be read side by side. +trace resolves iteratively as a recursive
// server would: it asks @server for the root's NS records, then walks down
// from those servers following referrals, printing each step with what the
// server said and how long it took. +repeat=N looks the name up N times
// through trellis's stub resolver and its cache (waiting +wait=ms between),
// printing where each answer came from and the TTL left: caching made
// visible. Exit status: 0 when a server answered
// (whatever the RCODE, as dig), 9 when none did, 1 for a usage error.
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "trellis/codec/dns/text.hpp"
#include "trellis/dns/config.hpp"
#include "trellis/dns/iterative.hpp"
#include "trellis/dns/resolver.hpp"
#include "trellis/dns/transport.hpp"

namespace {

using namespace trellis;
using namespace trellis::dns;
using asio::ip::udp;

constexpr const char* usage =
    "usage: trellis-dig [@server[:port]] [-p port] name [type] [options]\n"
    "       trellis-dig [@server[:port]] -x address\n"
    "\n"
    "  @server[:port]  the server to ask (default: first nameserver of /etc/resolv.conf)\n"
    "  -p port         its port (default 53)\n"
    "  type            A, AAAA, MX, TXT, SRV, NS, SOA, CNAME, PTR, CAA, ANY or TYPEn (default A)\n"
    "  -x address      reverse lookup: PTR of the address's in-addr.arpa / ip6.arpa name\n"
    "  +tcp            ask over TCP\n"
    "  +short          print only the answer's data\n"
    "  +norec          clear the RD bit (ask an authoritative server as itself)\n"
    "  +noedns         send no EDNS0 OPT record (answers limited to 512 octets)\n"
    "  +trace          resolve iteratively from the root servers @server names\n"
    "  +timeout=ms     per-query timeout (default 5000)\n"
    "  +repeat=N       look up N times through the caching stub resolver\n"
    "  +wait=ms        pause between repeated lookups (default 1000)\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "trellis-dig: %s\n%s", message.c_str(), usage);
  std::exit(1);
}

struct settings {
  std::string server;
  std::optional<std::uint16_t> port;
  std::string qname;
  rtype qtype = rtype::a;
  bool tcp = false, short_form = false, norec = false, trace = false, noedns = false;
  std::chrono::milliseconds timeout{5000};
  unsigned repeat = 0;
  std::chrono::milliseconds wait{1000};
};

std::uint16_t parse_port(const std::string& s) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || v < 1 || v > 65535) usage_error("bad port '" + s + "'");
  return static_cast<std::uint16_t>(v);
}

settings parse(int argc, char** argv) {
  settings s;
  bool have_type = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      std::exit(0);
    } else if (a[0] == '@') {
      s.server = a.substr(1);
      // @addr:port for IPv4 and names; IPv6 needs -p (its address has colons).
      if (const auto colon = s.server.rfind(':');
          colon != std::string::npos && s.server.find(':') == colon) {
        s.port = parse_port(s.server.substr(colon + 1));
        s.server.resize(colon);
      }
    } else if (a == "-p") {
      if (++i >= argc) usage_error("-p needs a port");
      s.port = parse_port(argv[i]);
    } else if (a == "-x") {
      if (++i >= argc) usage_error("-x needs an address");
      std::error_code ec;
      const auto addr = asio::ip::make_address(argv[i], ec);
      if (ec) usage_error(std::string("-x: not an address: ") + argv[i]);
      s.qname = reverse_name(addr).to_string();
      s.qtype = rtype::ptr;
      have_type = true;
    } else if (a == "+tcp") {
      s.tcp = true;
    } else if (a == "+short") {
      s.short_form = true;
    } else if (a == "+norec" || a == "+norecurse") {
      s.norec = true;
    } else if (a == "+trace") {
      s.trace = true;
    } else if (a == "+noedns") {
      s.noedns = true;
    } else if (a.rfind("+timeout=", 0) == 0) {
      s.timeout = std::chrono::milliseconds(parse_port(a.substr(9)));
    } else if (a.rfind("+repeat=", 0) == 0) {
      s.repeat = parse_port(a.substr(8));
    } else if (a.rfind("+wait=", 0) == 0) {
      s.wait = std::chrono::milliseconds(parse_port(a.substr(6)));
    } else if (a[0] == '+' || a[0] == '-') {
      usage_error("unknown option " + a);
    } else if (s.qname.empty()) {
      s.qname = a;
    } else if (!have_type) {
      auto t = parse_rtype(a);
      if (!t) usage_error("unknown type " + a);
      s.qtype = *t;
      have_type = true;
    } else {
      usage_error("unexpected argument " + a);
    }
  }
  if (s.qname.empty()) usage_error("no name to look up");
  return s;
}

udp::endpoint server_endpoint(const settings& s) {
  if (!s.server.empty()) {
    std::error_code ec;
    const auto addr = asio::ip::make_address(s.server, ec);
    if (ec) usage_error("@" + s.server + ": give the server as an IP address");
    return {addr, s.port.value_or(53)};
  }
  auto conf = load_resolv_conf();
  if (!conf || conf->nameservers.empty()) {
    std::fprintf(stderr, "trellis-dig: no nameserver in /etc/resolv.conf; give @server\n");
    std::exit(9);
  }
  auto ep = conf->nameservers.front();
  if (s.port) ep.port(*s.port);
  return ep;
}

std::string flags_of(const message& m) {
  std::string f;
  for (auto [on, text] : {std::pair{m.qr, "qr"},
                          {m.aa, "aa"},
                          {m.tc, "tc"},
                          {m.rd, "rd"},
                          {m.ra, "ra"},
                          {m.ad, "ad"},
                          {m.cd, "cd"}})
    if (on) f += std::string(f.empty() ? "" : " ") + text;
  return f;
}

std::string endpoint_text(const udp::endpoint& ep) {
  return ep.address().to_string() + "#" + std::to_string(ep.port());
}

double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

void print_section(const char* title, const std::vector<record>& records) {
  if (records.empty()) return;
  std::printf("\n;; %s SECTION:\n", title);
  for (const auto& r : records) std::printf("%s\n", to_string(r).c_str());
}

void print_message(const message& m) {
  std::printf(";; ->>HEADER<<- opcode: QUERY, status: %s, id: %u\n", to_string(m.rcode).c_str(),
              m.id);
  const std::size_t additional = m.additionals.size() + (m.edns ? 1 : 0);
  std::printf(";; flags: %s; QUERY: %zu, ANSWER: %zu, AUTHORITY: %zu, ADDITIONAL: %zu\n",
              flags_of(m).c_str(), m.questions.size(), m.answers.size(), m.authorities.size(),
              additional);
  if (m.edns) {
    std::printf("\n;; OPT PSEUDOSECTION:\n; EDNS: version: %u, flags:%s; udp: %u\n",
                m.edns->version, m.edns->dnssec_ok ? " do" : "", m.edns->udp_size);
  }
  std::printf("\n;; QUESTION SECTION:\n");
  for (const auto& q : m.questions) std::printf("%s\n", to_string(q).c_str());
  print_section("ANSWER", m.answers);
  print_section("AUTHORITY", m.authorities);
  print_section("ADDITIONAL", m.additionals);
}

asio::awaitable<int> lookup(const settings& s, const udp::endpoint& server, const question& q) {
  query_options o{.timeout = s.timeout,
                  .recursion_desired = !s.norec,
                  .edns_udp_size = static_cast<std::uint16_t>(s.noedns ? 0 : 1232),
                  .tcp_only = s.tcp};
  auto ex = co_await query(server, q, o);
  if (!ex) {
    std::printf(";; no answer from %s: %s\n", endpoint_text(server).c_str(),
                ex.error().message().c_str());
    co_return 9;
  }
  if (s.short_form) {
    for (const auto& r : ex->response.answers) std::printf("%s\n", to_string(r.data).c_str());
    co_return 0;
  }
  if (ex->truncated_udp) std::printf(";; Truncated, retrying in TCP mode.\n");
  print_message(ex->response);
  std::printf("\n;; Query time: %.1f msec\n", ms(ex->rtt));
  std::printf(";; SERVER: %s(%s) (%s)\n", endpoint_text(ex->server).c_str(),
              ex->server.address().to_string().c_str(), ex->used_tcp ? "TCP" : "UDP");
  std::printf(";; MSG SIZE  rcvd: %zu\n", ex->wire_size);
  co_return 0;
}

void print_step(const trace_step& st, std::size_t n) {
  const std::string indent(2 * st.depth, ' ');
  std::printf("%s;; step %zu: %s for %s %s, asked %s (%s) as zone %s\n", indent.c_str(), n,
              to_string(st.result).c_str(), st.asked.qname.to_string().c_str(),
              to_string(st.asked.qtype).c_str(), st.server_name.to_string().c_str(),
              endpoint_text(st.server).c_str(), st.zone.to_string().c_str());
  if (st.result == trace_step::outcome::failed) {
    std::printf("%s;;   failed: %s\n", indent.c_str(),
                st.error ? st.error.message().c_str() : "no usable answer");
    return;
  }
  const auto& m = st.response;
  for (const auto* section : {&m.answers, &m.authorities, &m.additionals})
    for (const auto& r : *section) std::printf("%s%s\n", indent.c_str(), to_string(r).c_str());
  std::printf("%s;; %.1f ms%s\n\n", indent.c_str(), ms(st.rtt), st.used_tcp ? " over TCP" : "");
}

asio::awaitable<int> trace(const settings& s, const udp::endpoint& server, const question& q) {
  // Like dig +trace: learn the root servers from the first server.
  const question roots_q{name{}, rtype::ns};
  query_options o{.timeout = s.timeout, .tcp_only = s.tcp};
  auto roots = co_await query(server, roots_q, o);
  if (!roots) {
    std::printf(";; no answer from %s for the root servers: %s\n", endpoint_text(server).c_str(),
                roots.error().message().c_str());
    co_return 9;
  }
  iterative_options io{.port = server.port(), .query_timeout = s.timeout, .tcp_only = s.tcp};
  for (const auto& ns : roots->response.answers) {
    if (ns.type != rtype::ns) continue;
    std::printf("%s\n", to_string(ns).c_str());
    const auto& host = std::get<ns_data>(ns.data).host;
    for (const auto& a : roots->response.additionals) {
      if (!(a.owner == host)) continue;
      if (const auto* v4 = std::get_if<a_data>(&a.data))
        io.roots.push_back({host, asio::ip::address_v4(v4->address)});
      else if (const auto* v6 = std::get_if<aaaa_data>(&a.data))
        io.roots.push_back({host, asio::ip::address_v6(v6->address)});
    }
  }
  std::printf(";; root servers from %s in %.1f ms\n\n", endpoint_text(server).c_str(),
              ms(roots->rtt));
  if (io.roots.empty()) {
    std::printf(";; %s named no root server with an address\n", endpoint_text(server).c_str());
    co_return 9;
  }
  auto r = co_await resolve_iterative(q, io);
  std::size_t n = 0;
  for (const auto& st : r.trace) print_step(st, ++n);
  if (r.error) {
    std::printf(";; resolution ended: %s\n", r.error.message().c_str());
    const bool answered = r.error == error::nxdomain || r.error == error::nodata;
    co_return answered ? 0 : 9;
  }
  std::printf(";; answer after %zu queries:\n", r.trace.size());
  for (const auto& rec : r.answers) std::printf("%s\n", to_string(rec).c_str());
  co_return 0;
}

// +repeat: the same question through a resolver with its cache, to show
// an answer served from cache with its TTL counting down, and expiring.
asio::awaitable<int> repeat(const settings& s, const udp::endpoint& server, const question& q) {
  resolver_options o;
  o.conf.nameservers = {server};
  o.conf.search.clear();
  o.conf.timeout = s.timeout;
  o.prefetch = false;  // a refresh in the background would hide the expiry
  resolver r(co_await asio::this_coro::executor, o);
  asio::steady_timer pause(co_await asio::this_coro::executor);
  const std::string host = q.qname.to_string();
  for (unsigned i = 1; i <= s.repeat; ++i) {
    if (i > 1) {
      pause.expires_after(s.wait);
      co_await pause.async_wait(asio::use_awaitable);
    }
    const auto sent_before = r.stats().queries_sent;
    auto a = co_await r.lookup(host, q.qtype);
    const bool asked = r.stats().queries_sent != sent_before;
    const char* source = asked ? "server" : "cache ";
    if (!a) {
      std::printf("%u: %s  %s\n", i, source, a.error().message().c_str());
      continue;
    }
    std::printf("%u: %s  ttl %u ", i, source, a->ttl);
    for (const auto& rec : a->records) std::printf(" %s", to_string(rec.data).c_str());
    std::printf("\n");
  }
  const auto& st = r.stats();
  std::printf(";; %llu lookups, %llu queries sent, %llu cache hits\n",
              static_cast<unsigned long long>(s.repeat),
              static_cast<unsigned long long>(st.queries_sent),
              static_cast<unsigned long long>(st.cache_hits));
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto s = parse(argc, argv);
  auto qname = name::from_text(s.qname);
  if (!qname) usage_error("'" + s.qname + "' is not a domain name: " + qname.error().message());
  const question q{*qname, s.qtype};
  const auto server = server_endpoint(s);

  asio::io_context ctx(1);
  int status = 9;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        if (s.trace)
          status = co_await trace(s, server, q);
        else if (s.repeat)
          status = co_await repeat(s, server, q);
        else
          status = co_await lookup(s, server, q);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();
  return status;
}
