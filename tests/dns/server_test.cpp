// Tests of dns::server: the query checks as pure functions (answer and
// respond: NOTIMP, FORMERR, BADVERS, REFUSED, UDP sizing and TC), then a
// real server on 127.0.0.1 (ephemeral port, one-worker runtime on a
// background thread) queried by `dig` for every record type, negative
// answers, truncation and the TCP retry, rotation and referrals; raw
// sockets for pipelined TCP, malformed datagrams, idle time-outs and
// drain; and the trellis-dns example program on the example zone.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "trellis/codec/dns/message.hpp"
#include "trellis/codec/dns/text.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/dns/server.hpp"

namespace trellis::dns {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

#define REQUIRE_DIG()                                                                    \
  do {                                                                                   \
    if (!test::program_exists("dig"))                                                    \
      GTEST_SKIP() << "needs the `dig` program on PATH (Debian package bind9-dnsutils)"; \
  } while (0)

const std::string example_zone = std::string(TRELLIS_SOURCE_DIR) + "/examples/dns/example.zone";

name n(std::string_view text) {
  return name::from_text(text).value();
}

// big.test.: 100 A records at many.big.test. (rotated), and one TXT record
// of six 250-octet strings at text.big.test. (fixed), far over any UDP size.
zone big_zone() {
  std::string text = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 127.0.0.1\n";
  for (int i = 1; i <= 100; ++i) text += "many A 127.0.1." + std::to_string(i) + "\n";
  text += "text TXT";
  for (char c = 'a'; c < 'g'; ++c) text += " \"" + std::string(250, c) + "\"";
  text += "\n";
  return zone::parse_master(text, "big.zone");
}

std::vector<zone> test_zones() {
  std::vector<zone> zones;
  zones.push_back(zone::load(example_zone));
  zones.push_back(big_zone());
  return zones;
}

// A server on its own one-worker runtime, run on a background thread.
class test_server {
 public:
  explicit test_server(server_options o = {})
      : srv_(test_zones(), std::move(o)),
        rt_({.workers = 1, .drain_timeout = 3s, .handle_signals = false}) {
    auto p = srv_.listen(rt_, asio::ip::address_v4::loopback(), 0);
    if (!p) throw std::runtime_error("listen failed: " + p.error().message());
    port_ = *p;
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~test_server() { stop(); }

  std::uint16_t port() const { return port_; }
  server& srv() { return srv_; }
  void stop() {
    rt_.drain();
    if (thread_.joinable()) thread_.join();
  }

 private:
  server srv_;  // declared first: destroyed after the runtime and its coroutines
  core::runtime rt_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// The value of `series` in the server's Prometheus text; NaN when absent.
double metric(server& s, std::string_view series) {
  std::istringstream in(s.metrics().expose());
  for (std::string line; std::getline(in, line);)
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return std::nan("");
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 3s) {
  const auto until = steady::now() + timeout;
  while (!pred()) {
    if (steady::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// dig's output for one query, with the usual bounded retry settings.
std::string dig(std::uint16_t port, const std::string& qname, const std::string& type,
                std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"dig",     "@127.0.0.1", "-p",     std::to_string(port),
                                   qname,     type,         "+norec", "+time=3",
                                   "+tries=1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = test::run(argv, {}, 20s);
  EXPECT_FALSE(r.timed_out) << "dig timed out";
  return r.out;
}

// The record lines of dig output (no comments, no blank lines), each with
// its runs of blanks collapsed to one space.
std::vector<std::string> records(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == ';') continue;
    std::string norm;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (!quoted && (c == ' ' || c == '\t')) {
        if (!norm.empty() && norm.back() != ' ') norm += ' ';
      } else {
        norm += c;
      }
    }
    while (!norm.empty() && norm.back() == ' ') norm.pop_back();
    lines.push_back(norm);
  }
  return lines;
}

// Record lines of one section of full dig output ("ANSWER", "AUTHORITY",
// "ADDITIONAL").
std::vector<std::string> section(const std::string& out, const std::string& which) {
  const auto start = out.find(";; " + which + " SECTION:");
  if (start == std::string::npos) return {};
  const auto body = out.find('\n', start);
  const auto end = out.find("\n\n", body);
  return records(out.substr(body + 1, end == std::string::npos ? end : end - body - 1));
}

// The text between `start` and the next `end` in dig's output ("" if absent).
std::string between(const std::string& out, std::string_view start, char end) {
  const auto at = out.find(start);
  if (at == std::string::npos) return "";
  const auto from = at + start.size();
  const auto to = out.find(end, from);
  return to == std::string::npos ? "" : out.substr(from, to - from);
}

std::string header_flags(const std::string& out) {
  return between(out, ";; flags: ", ';');
}

std::string status(const std::string& out) {
  return between(out, "status: ", ',');
}

std::vector<std::uint8_t> query_bytes(const message& m) {
  return encode(m).value();
}

message query(std::string_view qname, rtype t, std::uint16_t id = 7, std::uint16_t udp = 1232) {
  return make_query(id, question{n(qname), t, rclass::in}, udp, false);
}

// --- a tiny blocking DNS client over raw sockets -----------------------------------

class raw_socket {
 public:
  raw_socket(int type, std::uint16_t port) {
    fd_ = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~raw_socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  bool send(const std::vector<std::uint8_t>& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // One read of what is there within `timeout`: bytes, empty on EOF, nullopt
  // on time-out or error.
  std::optional<std::vector<std::uint8_t>> read(std::chrono::milliseconds timeout = 5s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    std::vector<std::uint8_t> buf(65536);
    const ssize_t got = ::recv(fd_, buf.data(), buf.size(), 0);
    if (got < 0) {
      if (errno == ECONNRESET) return std::vector<std::uint8_t>{};  // closed too
      return std::nullopt;
    }
    buf.resize(static_cast<std::size_t>(got));
    return buf;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Reads from a TCP socket until `count` length-prefixed messages arrived;
// nullopt on time-out or close.
std::optional<std::vector<message>> read_tcp(raw_socket& s, std::size_t count) {
  tcp_framer framer;
  std::vector<message> out;
  for (int reads = 0; out.size() < count && reads < 1000; ++reads) {
    auto bytes = s.read();
    if (!bytes || bytes->empty()) return std::nullopt;
    framer.feed(*bytes);
    while (auto m = framer.next()) {
      auto d = decode(*m);
      if (!d) return std::nullopt;
      out.push_back(std::move(*d));
    }
  }
  return out;
}

// The bytes of the next length-prefixed message on a TCP socket; empty on
// time-out or close.
std::vector<std::uint8_t> read_tcp_bytes(raw_socket& s) {
  tcp_framer framer;
  for (int reads = 0; reads < 1000; ++reads) {
    auto bytes = s.read();
    if (!bytes || bytes->empty()) return {};
    framer.feed(*bytes);
    if (auto m = framer.next()) return {m->begin(), m->end()};
  }
  return {};
}

std::vector<std::uint8_t> framed(const std::vector<std::vector<std::uint8_t>>& messages) {
  std::vector<std::uint8_t> out;
  for (const auto& m : messages) frame_for_tcp(m, out);
  return out;
}

// --- the checks, as pure functions ---------------------------------------------------

TEST(DnsServer, RefusesBadConfiguration) {
  std::vector<zone> two;
  two.push_back(big_zone());
  two.push_back(big_zone());
  try {
    server s(std::move(two));
    ADD_FAILURE() << "two zones with one origin were accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "zones[1]");
  }
  try {
    server s(test_zones(), {.max_udp_size = 511});
    ADD_FAILURE() << "max_udp_size 511 was accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "max_udp_size");
  }
}

TEST(DnsServer, AnswersFromTheZoneWithTheLongestOrigin) {
  const server s(test_zones());
  auto m = s.answer(query("www.example.test.", rtype::a));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->qr && m->aa && !m->ra);
  EXPECT_EQ(m->rcode, rcode::noerror);
  ASSERT_EQ(m->answers.size(), 1u);
  ASSERT_TRUE(m->edns);
  EXPECT_EQ(m->edns->udp_size, 1232);
  auto big = s.answer(query("many.big.test.", rtype::a));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->answers.size(), 100u);
  auto out = s.answer(query("www.example.org.", rtype::a));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->rcode, rcode::refused);
  EXPECT_FALSE(out->aa);
}

TEST(DnsServer, ChecksOpcodeQuestionCountClassAndEdnsVersion) {
  const server s(test_zones());
  message q = query("www.example.test.", rtype::a);
  q.opcode = opcode::status;
  EXPECT_EQ(s.answer(q)->rcode, rcode::notimp);

  q = query("www.example.test.", rtype::a);
  q.questions.push_back(q.questions.front());
  EXPECT_EQ(s.answer(q)->rcode, rcode::formerr);
  q.questions.clear();
  EXPECT_EQ(s.answer(q)->rcode, rcode::formerr);

  q = query("www.example.test.", rtype::a);
  q.questions[0].qclass = rclass::ch;
  EXPECT_EQ(s.answer(q)->rcode, rcode::refused);
  q = query("example.test.", rtype::axfr);
  EXPECT_EQ(s.answer(q)->rcode, rcode::refused);

  q = query("www.example.test.", rtype::a);
  q.edns->version = 1;
  auto bad = s.answer(q);
  EXPECT_EQ(bad->rcode, rcode::badvers);
  EXPECT_EQ(bad->edns->version, 0);
  EXPECT_TRUE(bad->answers.empty());

  q = query("www.example.test.", rtype::a);
  q.qr = true;  // a response: never answered
  EXPECT_FALSE(s.answer(q));
}

TEST(DnsServer, SizesUdpAnswersToTheClientAndSetsTc) {
  const server s(test_zones(), {.max_udp_size = 1400});
  const auto check = [&](std::uint16_t advertised, std::size_t limit) {
    const auto out = s.respond(query_bytes(query("many.big.test.", rtype::a, 9, advertised)), true);
    ASSERT_FALSE(out.empty());
    EXPECT_LE(out.size(), limit) << "advertised " << advertised;
    auto m = decode(out);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_TRUE(m->tc);
    // RRsets go whole or not at all (RFC 2181 §9): the one RRset is gone.
    EXPECT_TRUE(m->answers.empty());
    EXPECT_EQ(m->questions.size(), 1u);
  };
  check(0, 512);      // no EDNS: 512
  check(300, 512);    // below 512 counts as 512
  check(1000, 1000);  // the client's size
  check(4096, 1400);  // capped by max_udp_size
  // Over TCP the whole answer goes, untruncated.
  auto all = decode(s.respond(query_bytes(query("many.big.test.", rtype::a)), false));
  ASSERT_TRUE(all);
  EXPECT_FALSE(all->tc);
  EXPECT_EQ(all->answers.size(), 100u);
}

TEST(DnsServer, MalformedQueriesGetFormerrOrNothing) {
  const server s(test_zones());
  auto good = query_bytes(query("www.example.test.", rtype::a, 0x1234));
  auto cut = good;
  cut.resize(good.size() - 3);  // ends inside the question
  cut[2] |= 0x01;               // RD
  auto out = s.respond(cut, true);
  ASSERT_FALSE(out.empty());
  auto m = decode(out);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_TRUE(m->qr);
  EXPECT_TRUE(m->rd);
  EXPECT_EQ(m->rcode, rcode::formerr);
  EXPECT_TRUE(m->questions.empty());

  EXPECT_TRUE(s.respond(std::vector<std::uint8_t>(good.begin(), good.begin() + 11), true).empty());
  auto response = good;
  response[2] |= 0x80;  // QR: a response sent to us
  EXPECT_TRUE(s.respond(response, true).empty());
}

// --- a real server, asked by dig -------------------------------------------------------

TEST(DnsServer, DigGetsEveryRecordType) {
  REQUIRE_DIG();
  test_server ts;
  const std::pair<std::pair<const char*, const char*>, std::vector<std::string>> cases[] = {
      {{"www.example.test", "A"}, {"www.example.test. 300 IN A 127.0.0.10"}},
      {{"www.example.test", "AAAA"}, {"www.example.test. 300 IN AAAA ::1"}},
      {{"example.test", "NS"},
       {"example.test. 3600 IN NS ns1.example.test.",
        "example.test. 3600 IN NS ns2.example.test."}},
      {{"web.example.test", "CNAME"}, {"web.example.test. 300 IN CNAME www.example.test."}},
      {{"example.test", "SOA"},
       {"example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 "
        "3600 1209600 60"}},
      {{"ptr.example.test", "PTR"}, {"ptr.example.test. 300 IN PTR www.example.test."}},
      {{"example.test", "MX"},
       {"example.test. 300 IN MX 10 mail.example.test.",
        "example.test. 300 IN MX 20 mail2.example.test."}},
      {{"txt.example.test", "TXT"},
       {"txt.example.test. 300 IN TXT \"hello world\" \"a \\\"quoted\\\" word\" \"tab\\009here\""}},
      {{"_http._tcp.example.test", "SRV"},
       {"_http._tcp.example.test. 300 IN SRV 10 60 8080 www.example.test.",
        "_http._tcp.example.test. 300 IN SRV 20 40 8081 web-2.example.test."}},
      {{"example.test", "CAA"}, {"example.test. 300 IN CAA 0 issue \"ca.example.test\""}},
  };
  for (const auto& [q, expected] : cases) {
    const std::string out = dig(ts.port(), q.first, q.second);
    EXPECT_EQ(status(out), "NOERROR") << out;
    EXPECT_EQ(header_flags(out), "qr aa") << out;
    EXPECT_EQ(section(out, "ANSWER"), expected) << out;
  }
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_queries_total{transport=\"udp\"}"), 10.0);
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_responses_total{rcode=\"NOERROR\"}"), 10.0);
}

TEST(DnsServer, DigSeesAdditionalAddressesAndCnameChains) {
  REQUIRE_DIG();
  test_server ts;
  const std::string mx = dig(ts.port(), "example.test", "MX");
  EXPECT_EQ(section(mx, "ADDITIONAL"),
            (std::vector<std::string>{"mail.example.test. 300 IN A 127.0.0.25",
                                      "mail2.example.test. 300 IN A 127.0.0.26"}))
      << mx;
  const std::string chain = dig(ts.port(), "alias.example.test", "A");
  EXPECT_EQ(section(chain, "ANSWER"),
            (std::vector<std::string>{"alias.example.test. 300 IN CNAME web.example.test.",
                                      "web.example.test. 300 IN CNAME www.example.test.",
                                      "www.example.test. 300 IN A 127.0.0.10"}))
      << chain;
  const std::string wild = dig(ts.port(), "shop.apps.example.test", "A");
  EXPECT_EQ(section(wild, "ANSWER"),
            std::vector<std::string>{"shop.apps.example.test. 300 IN A 127.0.0.60"})
      << wild;
}

TEST(DnsServer, DigTellsNxdomainFromNodataBothWithTheSoa) {
  REQUIRE_DIG();
  test_server ts;
  const std::string soa =
      "example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 "
      "1209600 60";
  const std::string nx = dig(ts.port(), "nope.example.test", "A");
  EXPECT_EQ(status(nx), "NXDOMAIN") << nx;
  EXPECT_EQ(header_flags(nx), "qr aa") << nx;
  EXPECT_TRUE(section(nx, "ANSWER").empty()) << nx;
  EXPECT_EQ(section(nx, "AUTHORITY"), std::vector<std::string>{soa}) << nx;

  const std::string nodata = dig(ts.port(), "www.example.test", "MX");
  EXPECT_EQ(status(nodata), "NOERROR") << nodata;
  EXPECT_NE(nodata.find("ANSWER: 0, AUTHORITY: 1"), std::string::npos) << nodata;
  EXPECT_EQ(section(nodata, "AUTHORITY"), std::vector<std::string>{soa}) << nodata;

  const std::string refused = dig(ts.port(), "www.example.org", "A");
  EXPECT_EQ(status(refused), "REFUSED") << refused;
  EXPECT_EQ(header_flags(refused), "qr") << refused;
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_responses_total{rcode=\"NXDOMAIN\"}"), 1.0);
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_responses_total{rcode=\"REFUSED\"}"), 1.0);
}

TEST(DnsServer, DigRetriesATruncatedAnswerOverTcp) {
  REQUIRE_DIG();
  test_server ts;
  const std::string udp = dig(ts.port(), "many.big.test", "A", {"+ignore"});
  EXPECT_EQ(header_flags(udp), "qr aa tc") << udp;
  EXPECT_NE(udp.find("ANSWER: 0,"), std::string::npos) << udp;  // the RRset went whole
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_truncated_total"), 1.0);

  const std::string tcp = dig(ts.port(), "many.big.test", "A", {"+tcp"});
  EXPECT_EQ(header_flags(tcp), "qr aa") << tcp;
  const auto all = section(tcp, "ANSWER");
  EXPECT_EQ(all.size(), 100u) << tcp;
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 100u);
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_queries_total{transport=\"tcp\"}"), 1.0);

  // Without +ignore, dig itself falls back to TCP on TC and prints it all.
  EXPECT_EQ(section(dig(ts.port(), "many.big.test", "A"), "ANSWER").size(), 100u);
}

TEST(DnsServer, DigSeesRoundRobinRotation) {
  REQUIRE_DIG();
  test_server ts;
  std::vector<std::string> firsts;
  for (int i = 0; i < 3; ++i) {
    const auto answer = section(dig(ts.port(), "rr.example.test", "A"), "ANSWER");
    ASSERT_EQ(answer.size(), 3u);
    firsts.push_back(answer[0]);
  }
  // Consecutive answers start one record further on each time.
  EXPECT_EQ(firsts, (std::vector<std::string>{"rr.example.test. 300 IN A 127.0.0.31",
                                              "rr.example.test. 300 IN A 127.0.0.32",
                                              "rr.example.test. 300 IN A 127.0.0.33"}));
}

TEST(DnsServer, DigGetsAReferralWithGlueAtADelegation) {
  REQUIRE_DIG();
  test_server ts;
  const std::string out = dig(ts.port(), "host.sub.example.test", "A");
  EXPECT_EQ(status(out), "NOERROR") << out;
  EXPECT_EQ(header_flags(out), "qr") << out;  // not authoritative
  EXPECT_TRUE(section(out, "ANSWER").empty()) << out;
  EXPECT_EQ(section(out, "AUTHORITY"),
            std::vector<std::string>{"sub.example.test. 300 IN NS ns.sub.example.test."})
      << out;
  EXPECT_EQ(section(out, "ADDITIONAL"),
            std::vector<std::string>{"ns.sub.example.test. 300 IN A 127.0.0.70"})
      << out;
}

TEST(DnsServer, DigGetsBadversForEdnsVersionOne) {
  REQUIRE_DIG();
  test_server ts;
  const std::string out = dig(ts.port(), "www.example.test", "A", {"+edns=1", "+noednsneg"});
  EXPECT_EQ(status(out), "BADVERS") << out;
}

// --- raw sockets: framing, malformed input, time-outs, drain -------------------------------

TEST(DnsServer, AnswersPipelinedQueriesOnOneTcpConnection) {
  test_server ts;
  raw_socket c(SOCK_STREAM, ts.port());
  ASSERT_TRUE(c.connected());
  // Three queries in one write, the last one split across two writes.
  auto third = framed({query_bytes(query("rr.example.test.", rtype::a, 3))});
  auto first_two = framed({query_bytes(query("www.example.test.", rtype::a, 1)),
                           query_bytes(query("nope.example.test.", rtype::a, 2))});
  first_two.insert(first_two.end(), third.begin(), third.begin() + 5);
  ASSERT_TRUE(c.send(first_two));
  auto got = read_tcp(c, 2);
  ASSERT_TRUE(got);
  ASSERT_TRUE(c.send({third.begin() + 5, third.end()}));
  auto rest = read_tcp(c, 1);
  ASSERT_TRUE(rest);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, 1);
  EXPECT_EQ((*got)[0].rcode, rcode::noerror);
  EXPECT_EQ((*got)[1].id, 2);
  EXPECT_EQ((*got)[1].rcode, rcode::nxdomain);
  EXPECT_EQ((*rest)[0].id, 3);
  EXPECT_EQ((*rest)[0].answers.size(), 3u);
  EXPECT_TRUE(eventually(
      [&] { return metric(ts.srv(), "trellis_dns_queries_total{transport=\"tcp\"}") == 3.0; }));
}

TEST(DnsServer, AnswersMalformedDatagramsWithFormerrAndDropsRunts) {
  test_server ts;
  raw_socket u(SOCK_DGRAM, ts.port());
  ASSERT_TRUE(u.connected());
  ASSERT_TRUE(u.send({0x00, 0x01, 0x02}));  // shorter than a header: dropped
  auto bad = query_bytes(query("www.example.test.", rtype::a, 0xbeef));
  bad.resize(bad.size() - 2);
  ASSERT_TRUE(u.send(bad));
  auto reply = u.read();
  ASSERT_TRUE(reply);
  auto m = decode(*reply);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->id, 0xbeef);  // the runt got no answer, so this is the first one
  EXPECT_EQ(m->rcode, rcode::formerr);
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_dropped_total"), 1.0);
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_responses_total{rcode=\"FORMERR\"}"), 1.0);

  message status_query = query("www.example.test.", rtype::a, 77);
  status_query.opcode = opcode::status;
  ASSERT_TRUE(u.send(query_bytes(status_query)));
  reply = u.read();
  ASSERT_TRUE(reply);
  m = decode(*reply);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 77);
  EXPECT_EQ(m->rcode, rcode::notimp);
}

// Queries of many shapes, each sent twice over UDP and over TCP: every
// response must be byte for byte what respond() (the full path, no cache)
// gives, whether it came from the worker's answer cache or not. Rotated and
// weighted names are left out: their answers change from one query to the
// next by design (see CachedServerStillRotatesAndWeighs); text.big.test.
// is a fixed answer that is truncated over UDP at every size.
void expect_answers_of_the_full_path(test_server& ts) {
  struct shape {
    std::string qname;
    rtype type;
    rclass klass = rclass::in;
  };
  const std::vector<shape> shapes = {
      {"www.example.test.", rtype::a},
      {"WWW.Example.TEST.", rtype::a},
      {"www.example.test.", rtype::aaaa},
      {"alias.example.test.", rtype::a},
      {"ALIAS.example.test.", rtype::a},
      {"nope.example.test.", rtype::a},
      {"NoPe.example.test.", rtype::a},
      {"example.test.", rtype::mx},
      {"example.test.", rtype::any},
      {"txt.example.test.", rtype::txt},
      {"www.example.test.", rtype::mx},
      {"x.apps.example.test.", rtype::a},
      {"X.Apps.Example.Test.", rtype::a},
      {"deep.sub.example.test.", rtype::a},
      {"_http._tcp.example.test.", rtype::srv},
      {"text.big.test.", rtype::txt},
      {"www.example.test.", rtype::a, rclass::ch},
      {"www.elsewhere.test.", rtype::a},
      {"example.test.", rtype::axfr},
  };
  raw_socket u(SOCK_DGRAM, ts.port());
  raw_socket t(SOCK_STREAM, ts.port());
  ASSERT_TRUE(u.connected());
  ASSERT_TRUE(t.connected());
  std::uint16_t id = 100;
  for (const auto& s : shapes)
    for (const std::uint16_t udp_size : {0, 512, 1232, 4096})
      for (int variant = 0; variant < 4; ++variant) {
        message q =
            make_query(++id, question{n(s.qname), s.type, s.klass}, udp_size, (variant & 1) != 0);
        q.cd = (variant & 2) != 0;
        if (q.edns && variant == 3) {
          q.edns->dnssec_ok = true;
          q.edns->options.push_back({10, {1, 2, 3, 4, 5, 6, 7, 8}});  // a client cookie
        }
        const auto bytes = query_bytes(q);
        SCOPED_TRACE(s.qname + " " + to_string(s.type) + " udp " + std::to_string(udp_size) +
                     " variant " + std::to_string(variant));
        for (int round = 0; round < 2; ++round) {
          ASSERT_TRUE(u.send(bytes));
          auto reply = u.read();
          ASSERT_TRUE(reply);
          EXPECT_EQ(*reply, ts.srv().respond(bytes, true));
          ASSERT_TRUE(t.send(framed({bytes})));
          EXPECT_EQ(read_tcp_bytes(t), ts.srv().respond(bytes, false));
        }
      }
  const double all = static_cast<double>(id - 100) * 2;
  EXPECT_TRUE(eventually([&] {
    return metric(ts.srv(), "trellis_dns_queries_total{transport=\"udp\"}") == all &&
           metric(ts.srv(), "trellis_dns_queries_total{transport=\"tcp\"}") == all;
  }));
  // Every NXDOMAIN counted, those answered from the cache too.
  EXPECT_EQ(metric(ts.srv(), "trellis_dns_responses_total{rcode=\"NXDOMAIN\"}"), 32 * 2 * 2);
  EXPECT_GT(metric(ts.srv(), "trellis_dns_truncated_total"), 0.0);
}

TEST(DnsServer, CachedAnswersAreThoseOfTheFullPath) {
  test_server ts;
  expect_answers_of_the_full_path(ts);
}

TEST(DnsServer, AnswersAreTheSameWithoutTheCacheOrWithATinyOne) {
  {
    test_server off({.answer_cache_size = 0});
    expect_answers_of_the_full_path(off);
  }
  test_server tiny({.answer_cache_size = 1500});  // a few entries: starts over often
  expect_answers_of_the_full_path(tiny);
}

TEST(DnsServer, CachedServerStillRotatesAndWeighs) {
  test_server ts;
  raw_socket u(SOCK_DGRAM, ts.port());
  ASSERT_TRUE(u.connected());
  auto ask = [&](std::string_view qname) {
    EXPECT_TRUE(u.send(query_bytes(query(qname, rtype::a))));
    auto reply = u.read();
    EXPECT_TRUE(reply);
    return reply ? decode(*reply).value() : message{};
  };
  std::set<std::string> firsts;
  for (int i = 0; i < 3; ++i) {
    const message m = ask("rr.example.test.");
    ASSERT_EQ(m.answers.size(), 3u);
    firsts.insert(to_string(m.answers.front()));
  }
  EXPECT_EQ(firsts.size(), 3u) << "three answers in a row start at three different records";
  std::set<std::string> picks;
  for (int i = 0; i < 200 && picks.size() < 2; ++i) {
    const message m = ask("canary.example.test.");
    ASSERT_EQ(m.answers.size(), 1u);
    picks.insert(to_string(m.answers.front()));
  }
  EXPECT_EQ(picks.size(), 2u) << "both weighted records are drawn";
}

TEST(DnsServer, ClosesIdleTcpConnections) {
  test_server ts({.tcp_idle_timeout = 200ms});
  raw_socket c(SOCK_STREAM, ts.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(framed({query_bytes(query("www.example.test.", rtype::a))})));
  ASSERT_TRUE(read_tcp(c, 1));
  auto after = c.read(10s);  // waits for the server's close
  ASSERT_TRUE(after) << "the idle connection was not closed";
  EXPECT_TRUE(after->empty());
}

TEST(DnsServer, ClosesTcpConnectionsWhoseQueryHasNoHeader) {
  test_server ts;
  raw_socket c(SOCK_STREAM, ts.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(framed({{1, 2, 3, 4}})));
  auto after = c.read(10s);
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());
}

TEST(DnsServer, DrainClosesIdleConnectionsAndStops) {
  std::mutex mu;
  std::string logged;
  core::log::set_sink([&](std::string_view line) {
    std::lock_guard lock(mu);
    logged += line;
  });
  {
    test_server ts({.tcp_idle_timeout = 3600s});
    raw_socket c(SOCK_STREAM, ts.port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send(framed({query_bytes(query("www.example.test.", rtype::a))})));
    ASSERT_TRUE(read_tcp(c, 1));
    std::thread stopper([&] { ts.stop(); });  // returns once every coroutine ended
    auto after = c.read(10s);
    stopper.join();
    ASSERT_TRUE(after);
    EXPECT_TRUE(after->empty());
    EXPECT_EQ(metric(ts.srv(), "trellis_dns_tcp_connections"), 0.0);
  }
  core::log::set_sink({});
  // Every task ended by itself (the UDP loop, the listener, the connection):
  // the runtime never had to cut the drain short.
  std::lock_guard lock(mu);
  EXPECT_NE(logged.find("draining"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("drain deadline passed"), std::string::npos) << logged;
}

// --- the example program ---------------------------------------------------------------

TEST(DnsServer, ExampleProgramServesTheExampleZone) {
  REQUIRE_DIG();
  const std::string bin = std::string(TRELLIS_BIN_DIR) + "/trellis-dns";
  if (::access(bin.c_str(), X_OK) != 0) GTEST_SKIP() << bin << " is not built";
  test::process p({bin, "--zone", example_zone, "--port", "0", "--workers", "1"});
  ASSERT_TRUE(p.wait_for_output("listening", 10s, true)) << p.err();
  const auto logged = test::logged_port(p.err());
  ASSERT_TRUE(logged) << p.err();
  const auto port = *logged;
  const std::string out = dig(port, "www.example.test", "A");
  EXPECT_EQ(section(out, "ANSWER"),
            std::vector<std::string>{"www.example.test. 300 IN A 127.0.0.10"})
      << out;
  const std::string tcp = dig(port, "example.test", "SOA", {"+tcp"});
  EXPECT_EQ(status(tcp), "NOERROR") << tcp;
  p.terminate();
  auto st = p.wait_for(10s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->success()) << st->describe() << "\n" << p.err();
}

TEST(DnsServer, ExampleProgramNamesTheBrokenLineOfABadZone) {
  const std::string bin = std::string(TRELLIS_BIN_DIR) + "/trellis-dns";
  if (::access(bin.c_str(), X_OK) != 0) GTEST_SKIP() << bin << " is not built";
  const std::string path = ::testing::TempDir() + "bad-" + std::to_string(::getpid()) + ".zone";
  {
    std::ofstream f(path);
    f << "$ORIGIN t.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\nwww A 127.0.0.999\n";
  }
  auto r = test::run({bin, "--zone", path, "--port", "0"}, {}, 10s);
  std::remove(path.c_str());
  EXPECT_EQ(r.status.code, 2) << r.status.describe();
  EXPECT_NE(r.err.find(path + ":4: bad A data"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace trellis::dns
