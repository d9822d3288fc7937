#include "trellis/dns/resolver.hpp"

#include <gtest/gtest.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <functional>
#include <memory>

#include "support/loop.hpp"
#include "support/process.hpp"
#include "trellis/codec/dns/text.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/dns/connect.hpp"
#include "trellis/net/udp.hpp"

namespace trellis::dns {
namespace {

using namespace std::chrono_literals;
using asio::ip::make_address;
using asio::ip::tcp;
using asio::ip::udp;
using clock = std::chrono::steady_clock;
const udp::endpoint loopback_any{asio::ip::address_v4::loopback(), 0};

name n(std::string_view text) {
  return name::from_text(text).value();
}

record a_record(std::string_view owner, std::uint8_t last, std::uint32_t ttl = 60) {
  return {n(owner), rtype::a, rclass::in, ttl, a_data{{192, 0, 2, last}}};
}

record cname_record(std::string_view owner, std::string_view target, std::uint32_t ttl = 60) {
  return {n(owner), rtype::cname, rclass::in, ttl, cname_data{n(target)}};
}

record soa_record(std::uint32_t ttl, std::uint32_t minimum) {
  soa_data soa{n("ns.example"), n("admin.example"), 1, 3600, 600, 86400, minimum};
  return {n("example"), rtype::soa, rclass::in, ttl, soa};
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

// A scripted recursive server on 127.0.0.1: `script` turns each query into
// a response (nullopt: stay silent). It counts the queries per name.
class fake_server {
 public:
  using script = std::function<std::optional<message>(const message& query)>;

  static asio::awaitable<std::unique_ptr<fake_server>> start(script s) {
    auto ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<state>();
    st->sock.emplace(net::udp_socket::bind(ex, loopback_any).value());
    st->handler = std::move(s);
    asio::co_spawn(ex, serve(st), [](std::exception_ptr e) {
      if (e) ADD_FAILURE() << "fake server threw";
    });
    co_return std::unique_ptr<fake_server>(new fake_server(st));
  }
  ~fake_server() { st_->sock->close(); }
  udp::endpoint endpoint() const { return st_->sock->local_endpoint(); }
  std::size_t queries() const { return st_->queries.size(); }
  std::size_t queries_for(std::string_view qname) const {
    std::size_t c = 0;
    for (const auto& q : st_->queries) c += q.questions.at(0).qname == n(qname);
    return c;
  }

 private:
  struct state {
    std::optional<net::udp_socket> sock;
    script handler;
    std::vector<message> queries;
  };
  explicit fake_server(std::shared_ptr<state> st) : st_(std::move(st)) {}
  static asio::awaitable<void> serve(std::shared_ptr<state> st) {
    std::vector<char> buf(65535);
    for (;;) {
      auto d = co_await st->sock->receive_from(buf, 60s);
      if (!d) co_return;
      auto q = decode({reinterpret_cast<const std::uint8_t*>(buf.data()), d->size});
      if (!q || q->questions.size() != 1) continue;
      st->queries.push_back(*q);
      auto r = st->handler(*q);
      if (!r) continue;
      auto wire = encode(*r).value();
      (void)co_await st->sock->send_to({reinterpret_cast<const char*>(wire.data()), wire.size()},
                                       d->sender, 1s);
    }
  }
  std::shared_ptr<state> st_;
};

// A response to q with the given answers.
message reply(const message& q, std::vector<record> answers, rcode rc = rcode::noerror,
              std::vector<record> authorities = {}) {
  message r = make_response(q);
  r.ra = true;
  r.rcode = rc;
  r.answers = std::move(answers);
  r.authorities = std::move(authorities);
  return r;
}

resolver_options options_for(std::vector<udp::endpoint> servers,
                             std::chrono::milliseconds timeout = 2s) {
  resolver_options o;
  o.conf.nameservers = std::move(servers);
  o.conf.timeout = timeout;
  o.conf.attempts = 1;
  return o;
}

// Built outside the coroutines: GCC 12 mishandles std::initializer_list
// temporaries inside a coroutine body (double destruction).
template <class... T>
std::vector<std::string> strings(T... s) {
  return {std::string(s)...};
}

template <class... T>
std::vector<name> search_list(T... s) {
  return {n(s)...};
}

template <class... T>
std::vector<udp::endpoint> endpoints(T... e) {
  return {e...};
}

std::vector<std::string> texts(const std::vector<asio::ip::address>& v) {
  std::vector<std::string> out;
  for (const auto& a : v) out.push_back(a.to_string());
  return out;
}

// --- local answers -------------------------------------------------------------

TEST(dns_resolver, ip_literals_hosts_and_localhost_need_no_server) {
  test::run_bounded([]() -> asio::awaitable<void> {
    resolver_options o;  // no nameserver at all
    o.hosts = hosts::parse("10.1.2.3 db.internal db\n");
    o.order = address_order::none;
    resolver r(co_await asio::this_coro::executor, o);
    auto lit = co_await r.resolve("192.0.2.7");
    CO_ASSERT_OK(lit);
    EXPECT_EQ(texts(*lit), strings("192.0.2.7"));
    auto h = co_await r.resolve("DB.internal");
    CO_ASSERT_OK(h);
    EXPECT_EQ(texts(*h), strings("10.1.2.3"));
    auto lh = co_await r.resolve("localhost");
    CO_ASSERT_OK(lh);
    EXPECT_EQ(texts(*lh), strings("127.0.0.1", "::1"));
    auto sub = co_await r.resolve("app.localhost.", address_family::v6);
    CO_ASSERT_OK(sub);
    EXPECT_EQ(texts(*sub), strings("::1"));
    auto mx = co_await r.lookup("localhost", rtype::mx);
    CO_ASSERT_FALSE(mx);
    EXPECT_EQ(mx.error(), error::nodata);
    auto rev = co_await r.reverse(make_address("10.1.2.3"));
    CO_ASSERT_OK(rev);
    CO_ASSERT_TRUE(rev->size() == 1);
    EXPECT_EQ((*rev)[0].to_string(), "db.internal.");
    EXPECT_EQ(r.stats().queries_sent, 0u);
    auto none = co_await r.resolve("www.example.com");
    CO_ASSERT_FALSE(none);
    EXPECT_EQ(none.error(), error::no_servers);
    auto bad = co_await r.lookup("a..b", rtype::a);
    CO_ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), error::bad_query);
  });
}

TEST(dns_resolver, explicit_family_orders_are_honoured) {
  const std::vector<asio::ip::address> mixed = {
      make_address("192.0.2.1"), make_address("2001:db8::1"), make_address("192.0.2.2")};
  EXPECT_EQ(texts(sort_addresses(mixed, address_order::ipv4_first)),
            strings("192.0.2.1", "192.0.2.2", "2001:db8::1"));
  EXPECT_EQ(texts(sort_addresses(mixed, address_order::ipv6_first)).front(), "2001:db8::1");
  EXPECT_EQ(texts(sort_addresses(mixed, address_order::none)),
            strings("192.0.2.1", "2001:db8::1", "192.0.2.2"));
}

TEST(dns_resolver, rfc6724_puts_ipv6_loopback_first_when_it_is_usable) {
  asio::io_context ctx;
  std::error_code ec;
  udp::socket probe(ctx);
  probe.open(udp::v6(), ec);
  if (!ec) probe.bind({asio::ip::address_v6::loopback(), 0}, ec);
  const bool v6_loopback = !ec;
  const auto sorted =
      sort_addresses({make_address("127.0.0.1"), make_address("::1")}, address_order::rfc6724);
  EXPECT_EQ(sorted.front().to_string(), v6_loopback ? "::1" : "127.0.0.1")
      << "precedence 50 (::1) beats 35 (IPv4) unless ::1 is unusable here";
}

// --- against a scripted server -------------------------------------------------

TEST(dns_resolver, cname_chains_in_the_answer_are_followed) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      return reply(q, {cname_record("alias.example", "mid.example"),
                       cname_record("mid.example", "www.example"), a_record("www.example", 7)});
    };
    auto server = co_await fake_server::start(std::move(script));
    auto exec = co_await asio::this_coro::executor;
    resolver r(exec, options_for(endpoints(server->endpoint())));
    auto a = co_await r.lookup("alias.example.", rtype::a);
    CO_ASSERT_OK(a);
    EXPECT_EQ(a->qname.to_string(), "alias.example.");
    EXPECT_EQ(a->canonical.to_string(), "www.example.");
    CO_ASSERT_TRUE(a->records.size() == 1);
    EXPECT_EQ(to_string(a->records[0].data), "192.0.2.7");
    EXPECT_EQ(server->queries(), 1u) << "the chain came whole: no second query";
  });
}

TEST(dns_resolver, a_chain_that_stops_short_is_queried_again_at_its_end) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      if (q.questions[0].qname == n("alias.example"))
        return reply(q, {cname_record("alias.example", "www.example")});
      if (q.questions[0].qname == n("www.example")) return reply(q, {a_record("www.example", 8)});
      return reply(q, {}, rcode::nxdomain);
    };
    auto server = co_await fake_server::start(std::move(script));
    auto exec = co_await asio::this_coro::executor;
    resolver r(exec, options_for(endpoints(server->endpoint())));
    auto a = co_await r.lookup("alias.example.", rtype::a);
    CO_ASSERT_OK(a);
    EXPECT_EQ(a->canonical.to_string(), "www.example.");
    EXPECT_EQ(server->queries_for("www.example"), 1u);
  });
}

TEST(dns_resolver, cname_loops_and_overlong_chains_are_errors) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      const auto& qn = q.questions[0].qname;
      if (qn == n("a.example")) return reply(q, {cname_record("a.example", "b.example")});
      if (qn == n("b.example")) return reply(q, {cname_record("b.example", "a.example")});
      // long.example: c0 -> c1 -> ... each answered separately.
      const std::string label(qn.label(0));
      if (label.starts_with("c")) {
        const int i = std::stoi(label.substr(1));
        return reply(q, {cname_record(qn.to_string(), "c" + std::to_string(i + 1) + ".example")});
      }
      return reply(q, {}, rcode::nxdomain);
    };
    auto server = co_await fake_server::start(std::move(script));
    resolver_options o = options_for(endpoints(server->endpoint()));
    o.max_cname_chain = 4;
    resolver r(co_await asio::this_coro::executor, o);
    auto loop = co_await r.lookup("a.example.", rtype::a);
    CO_ASSERT_FALSE(loop);
    EXPECT_EQ(loop.error(), error::cname_loop);
    auto chain = co_await r.lookup("c0.example.", rtype::a);
    CO_ASSERT_FALSE(chain);
    EXPECT_EQ(chain.error(), error::cname_loop);
    EXPECT_LE(server->queries_for("c5.example"), 1u);
    EXPECT_EQ(server->queries_for("c6.example"), 0u) << "the limit bounds the queries";
  });
}

TEST(dns_resolver, rcodes_become_errors) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      const std::string label(q.questions[0].qname.label(0));
      if (label == "fail") return reply(q, {}, rcode::servfail);
      if (label == "no") return reply(q, {}, rcode::refused);
      if (label == "empty") return reply(q, {});
      return reply(q, {}, rcode::nxdomain);
    };
    auto server = co_await fake_server::start(std::move(script));
    auto exec = co_await asio::this_coro::executor;
    resolver r(exec, options_for(endpoints(server->endpoint())));
    auto fail = co_await r.lookup("fail.example.", rtype::a);
    EXPECT_EQ(fail.error(), error::servfail);
    auto refused = co_await r.lookup("no.example.", rtype::a);
    EXPECT_EQ(refused.error(), error::refused);
    auto nodata = co_await r.lookup("empty.example.", rtype::a);
    EXPECT_EQ(nodata.error(), error::nodata);
    auto nx = co_await r.lookup("missing.example.", rtype::a);
    EXPECT_EQ(nx.error(), error::nxdomain);
    auto both = co_await r.resolve("missing.example.");
    EXPECT_EQ(both.error(), error::nxdomain);
  });
}

TEST(dns_resolver, the_search_list_is_tried_by_the_ndots_rule) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      if (q.questions[0].qname == n("www.corp.example") && q.questions[0].qtype == rtype::a)
        return reply(q, {a_record("www.corp.example", 9)});
      return reply(q, {}, rcode::nxdomain);
    };
    auto server = co_await fake_server::start(std::move(script));
    resolver_options o = options_for(endpoints(server->endpoint()));
    o.conf.search = search_list("other.example", "corp.example");
    resolver r(co_await asio::this_coro::executor, o);
    auto a = co_await r.lookup("www", rtype::a);
    CO_ASSERT_OK(a);
    EXPECT_EQ(a->qname.to_string(), "www.corp.example.");
    EXPECT_EQ(server->queries_for("www.other.example"), 1u);
    EXPECT_EQ(server->queries_for("www"), 0u) << "found before the name as typed";
  });
}

TEST(dns_resolver, negative_answers_are_cached_for_the_soa_minimum) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      if (q.questions[0].qtype == rtype::mx)
        return reply(q, {}, rcode::noerror, {soa_record(300, 45)});
      return reply(q, {}, rcode::nxdomain, {soa_record(300, 30)});
    };
    auto server = co_await fake_server::start(std::move(script));
    auto exec = co_await asio::this_coro::executor;
    resolver r(exec, options_for(endpoints(server->endpoint())));
    for (int i = 0; i < 3; ++i) {
      auto nx = co_await r.lookup("gone.example.", rtype::a);
      EXPECT_EQ(nx.error(), error::nxdomain);
      auto nodata = co_await r.lookup("gone.example.", rtype::mx);
      EXPECT_EQ(nodata.error(), error::nodata);
    }
    EXPECT_EQ(server->queries(), 2u) << "one query each; the rest came from the cache";
    const question nxq{n("gone.example"), rtype::a, rclass::in};
    const question ndq{n("gone.example"), rtype::mx, rclass::in};
    auto& c = r.answer_cache();
    const auto now = clock::now();
    EXPECT_TRUE(c.lookup(nxq, now + 29s));
    EXPECT_FALSE(c.lookup(nxq, now + 31s)) << "NXDOMAIN lives for the SOA minimum (30 s)";
    EXPECT_TRUE(c.lookup(ndq, now + 44s));
    EXPECT_FALSE(c.lookup(ndq, now + 46s)) << "NODATA lives for the SOA minimum (45 s)";
  });
}

TEST(dns_resolver, cached_answers_report_their_remaining_ttl) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      return reply(q, {a_record("www.example", 1, 120)});
    };
    auto server = co_await fake_server::start(std::move(script));
    auto exec = co_await asio::this_coro::executor;
    resolver r(exec, options_for(endpoints(server->endpoint())));
    auto first = co_await r.lookup("www.example.", rtype::a);
    CO_ASSERT_OK(first);
    EXPECT_FALSE(first->from_cache);
    EXPECT_EQ(first->ttl, 120u);
    auto second = co_await r.lookup("www.example.", rtype::a);
    CO_ASSERT_OK(second);
    EXPECT_TRUE(second->from_cache);
    EXPECT_LE(second->ttl, 120u);
    EXPECT_EQ(server->queries(), 1u);
    EXPECT_EQ(r.stats().cache_hits, 1u);
  });
}

TEST(dns_resolver, identical_concurrent_lookups_share_one_query) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto script = [](const message& q) -> std::optional<message> {
      return reply(q, {a_record("hot.example", 4)});
    };
    auto server = co_await fake_server::start(std::move(script));
    resolver_options o = options_for(endpoints(server->endpoint()));
    o.use_cache = false;  // only coalescing can save the queries
    resolver r(ex, o);
    constexpr int clients = 8;
    int done = 0, ok = 0;
    for (int i = 0; i < clients; ++i) {
      asio::co_spawn(
          ex,
          [&]() -> asio::awaitable<void> {
            auto a = co_await r.lookup("hot.example.", rtype::a);
            if (a && a->records.size() == 1) ++ok;
            ++done;
          },
          [](std::exception_ptr e) {
            if (e) ADD_FAILURE() << "lookup threw";
          });
    }
    for (int i = 0; i < 200 && done < clients; ++i) co_await sleep_for(10ms);
    CO_ASSERT_TRUE(done == clients);
    EXPECT_EQ(ok, clients);
    EXPECT_EQ(server->queries(), 1u);
    EXPECT_EQ(r.stats().coalesced, static_cast<std::uint64_t>(clients - 1));
    // Not coalesced across time: a later lookup asks again (no cache here).
    CO_ASSERT_OK(co_await r.lookup("hot.example.", rtype::a));
    EXPECT_EQ(server->queries(), 2u);
  });
}

// --- what the resolver accepts ------------------------------------------------
//
// The resolver waits for its UDP answers in its own coroutine (not through
// the transport's query()), so the checks of an answer are tested here too,
// in both port modes.

// One datagram a raw server sends in reply: any bytes, from its own port or
// from a second socket (a spoof attempt).
struct datagram {
  std::vector<std::uint8_t> wire;
  bool from_other_port = false;
};

std::vector<std::uint8_t> wire_of(const message& m) {
  return encode(m).value();
}

// A scripted server on 127.0.0.1 that answers each query with any number of
// datagrams, forged ones included, and optionally serves TCP on the same
// port number (one framed answer per connection, from `tcp_script`).
class raw_server {
 public:
  using script = std::function<std::vector<datagram>(const message& query)>;
  using tcp_script = std::function<message(const message& query)>;

  static asio::awaitable<std::unique_ptr<raw_server>> start(script s, tcp_script t = nullptr) {
    auto ex = co_await asio::this_coro::executor;
    // The UDP port is the kernel's pick; a TCP listener on the same number
    // may clash with another test's: then the pair is tried again.
    for (int attempt = 0;; ++attempt) {
      auto st = std::make_shared<state>(ex);
      st->main.emplace(net::udp_socket::bind(ex, loopback_any).value());
      st->other.emplace(net::udp_socket::bind(ex, loopback_any).value());
      st->handler = s;
      st->tcp_handler = t;
      std::error_code ec;
      if (t) {
        const tcp::endpoint ep(st->main->local_endpoint().address(),
                               st->main->local_endpoint().port());
        st->acceptor.open(ep.protocol(), ec);
        if (!ec) st->acceptor.bind(ep, ec);
        if (!ec) st->acceptor.listen(asio::socket_base::max_listen_connections, ec);
      }
      if (ec) {
        if (attempt == 20) throw std::system_error(ec, "no port free for both UDP and TCP");
        continue;
      }
      asio::co_spawn(ex, serve(st), [](std::exception_ptr e) {
        if (e) ADD_FAILURE() << "raw server threw";
      });
      if (t) {
        asio::co_spawn(ex, serve_tcp(st), [](std::exception_ptr e) {
          if (e) ADD_FAILURE() << "raw server (tcp) threw";
        });
      }
      co_return std::unique_ptr<raw_server>(new raw_server(st));
    }
  }
  ~raw_server() {
    st_->main->close();
    st_->other->close();
    std::error_code ignored;
    st_->acceptor.close(ignored);
  }
  udp::endpoint endpoint() const { return st_->main->local_endpoint(); }
  const std::vector<message>& queries() const { return st_->queries; }
  int tcp_served() const { return st_->tcp_served; }

 private:
  struct state {
    explicit state(const asio::any_io_executor& ex) : acceptor(ex) {}
    std::optional<net::udp_socket> main, other;
    tcp::acceptor acceptor;
    script handler;
    tcp_script tcp_handler;
    std::vector<message> queries;
    int tcp_served = 0;
  };
  explicit raw_server(std::shared_ptr<state> st) : st_(std::move(st)) {}

  static asio::awaitable<void> serve(std::shared_ptr<state> st) {
    std::vector<char> buf(65535);
    for (;;) {
      auto d = co_await st->main->receive_from(buf, 60s);
      if (!d) co_return;  // closed
      auto q = decode({reinterpret_cast<const std::uint8_t*>(buf.data()), d->size});
      if (!q || q->questions.size() != 1) continue;
      st->queries.push_back(*q);
      for (const datagram& r : st->handler(*q)) {
        auto& from = r.from_other_port ? *st->other : *st->main;
        const std::span<const char> bytes(reinterpret_cast<const char*>(r.wire.data()),
                                          r.wire.size());
        (void)co_await from.send_to(bytes, d->sender, 1s);
      }
    }
  }

  static asio::awaitable<void> serve_tcp(std::shared_ptr<state> st) {
    for (;;) {
      auto [ec, s] = co_await st->acceptor.async_accept(use_nothrow);
      if (ec) co_return;
      std::uint8_t len[2];
      auto [e1, n1] = co_await asio::async_read(s, asio::buffer(len), use_nothrow);
      if (e1) continue;
      std::vector<std::uint8_t> body(static_cast<std::size_t>(len[0] << 8 | len[1]));
      auto [e2, n2] = co_await asio::async_read(s, asio::buffer(body), use_nothrow);
      if (e2) continue;
      auto q = decode(body);
      if (!q) continue;
      st->queries.push_back(*q);
      std::vector<std::uint8_t> out;
      frame_for_tcp(wire_of(st->tcp_handler(*q)), out);
      auto [e3, n3] = co_await asio::async_write(s, asio::buffer(out), use_nothrow);
      if (!e3) ++st->tcp_served;
    }
  }
  std::shared_ptr<state> st_;
};

std::uint8_t first_octet_of(const result<answer>& a) {
  if (!a || a->records.empty()) return 0;
  const auto* d = std::get_if<a_data>(&a->records[0].data);
  return d ? d->address[3] : 0;
}

resolver_options raw_options(const udp::endpoint& server, unsigned per_socket,
                             std::chrono::milliseconds timeout = 2s) {
  resolver_options o = options_for(endpoints(server), timeout);
  o.queries_per_socket = per_socket;
  o.use_cache = false;
  return o;
}

TEST(dns_resolver, forged_answers_are_ignored_and_the_real_one_wins) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      const auto answer = [&q](std::uint8_t last) {
        return reply(q, {a_record(q.questions[0].qname.to_string(), last)});
      };
      message wrong_id = answer(66);
      wrong_id.id = static_cast<std::uint16_t>(q.id + 1);
      message wrong_name = answer(77);
      wrong_name.questions[0].qname = n("evil.example");
      message wrong_type = answer(55);
      wrong_type.questions[0].qtype = rtype::aaaa;
      message wrong_class = answer(44);
      wrong_class.questions[0].qclass = rclass::ch;
      message two_questions = answer(33);
      two_questions.questions.push_back(two_questions.questions[0]);
      message no_question = answer(22);
      no_question.questions.clear();
      message not_a_response = answer(88);
      not_a_response.qr = false;
      std::vector<datagram> out;
      out.push_back({wire_of(answer(99)), true});  // right ID and question, wrong port
      out.push_back({wire_of(wrong_id)});
      out.push_back({wire_of(wrong_name)});
      out.push_back({wire_of(wrong_type)});
      out.push_back({wire_of(wrong_class)});
      out.push_back({wire_of(two_questions)});
      out.push_back({wire_of(no_question)});
      out.push_back({wire_of(not_a_response)});
      out.push_back({std::vector<std::uint8_t>{0xde, 0xad}});  // not DNS at all
      out.push_back({wire_of(answer(1))});                     // the real answer, last
      return out;
    };
    auto server = co_await raw_server::start(std::move(script));
    auto ex = co_await asio::this_coro::executor;
    for (const unsigned per_socket : {1u, 100u}) {
      resolver r(ex, raw_options(server->endpoint(), per_socket));
      for (int i = 0; i < 3; ++i) {
        auto a = co_await r.lookup("www.example.", rtype::a);
        CO_ASSERT_OK(a);
        EXPECT_EQ(first_octet_of(a), 1) << "the real answer wins, per_socket " << per_socket;
      }
    }
  });
}

TEST(dns_resolver, only_forged_answers_time_out_and_undecodable_ones_are_malformed) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      std::vector<datagram> out;
      const std::string label(q.questions[0].qname.label(0));
      message wrong_id = reply(q, {a_record("forged.example", 66)});
      wrong_id.id = static_cast<std::uint16_t>(q.id ^ 0x8000);
      message real = reply(q, {a_record(q.questions[0].qname.to_string(), 1)});
      if (label == "forged") {
        out.push_back({wire_of(wrong_id)});
        out.push_back({wire_of(real), true});
      } else {
        auto cut = wire_of(real);
        cut.resize(cut.size() - 3);  // our ID and question, cut inside the A record
        out.push_back({cut});
      }
      return out;
    };
    auto server = co_await raw_server::start(std::move(script));
    auto ex = co_await asio::this_coro::executor;
    for (const unsigned per_socket : {1u, 100u}) {
      resolver r(ex, raw_options(server->endpoint(), per_socket, 300ms));
      auto forged = co_await r.lookup("forged.example.", rtype::a);
      EXPECT_EQ(forged.error(), error::timed_out) << "per_socket " << per_socket;
      auto cut = co_await r.lookup("cut.example.", rtype::a);
      EXPECT_EQ(cut.error(), error::malformed) << "per_socket " << per_socket;
    }
  });
}

TEST(dns_resolver, the_question_may_come_back_in_another_case) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      const std::string label(q.questions[0].qname.label(0));
      std::vector<datagram> out;
      if (label == "www") {
        // The question echoed in capitals (a 0x20-mixing server); the
        // record's owner is a pointer to it.
        message r = reply(q, {a_record("WWW.EXAMPLE.", 5)});
        r.questions[0].qname = n("WWW.EXAMPLE.");
        out.push_back({wire_of(r)});
      } else {
        out.push_back({wire_of(reply(q, {a_record(q.questions[0].qname.to_string(), 6)}))});
      }
      return out;
    };
    auto server = co_await raw_server::start(std::move(script));
    auto ex = co_await asio::this_coro::executor;
    for (const unsigned per_socket : {1u, 100u}) {
      resolver r(ex, raw_options(server->endpoint(), per_socket));
      auto a = co_await r.lookup("www.example.", rtype::a);
      CO_ASSERT_OK(a);
      EXPECT_EQ(first_octet_of(a), 5);
      EXPECT_EQ(a->records.at(0).owner.to_string(), "WWW.EXAMPLE.") << "as the answer spells it";
      // query() hands back the whole message, question included.
      question q;
      q.qname = n("ptr.example.");
      q.qtype = rtype::a;
      auto m = co_await r.query(q);
      CO_ASSERT_OK(m);
      CO_ASSERT_TRUE(m->questions.size() == 1);
      EXPECT_EQ(m->questions[0], q);
      EXPECT_EQ(m->answers.size(), 1u);
    }
  });
}

TEST(dns_resolver, a_server_without_edns_is_asked_again_plainly) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      std::vector<datagram> out;
      if (q.edns) {
        message r = make_response(q);
        r.edns.reset();
        r.rcode = rcode::formerr;
        out.push_back({wire_of(r)});
      } else {
        out.push_back({wire_of(reply(q, {a_record(q.questions[0].qname.to_string(), 3)}))});
      }
      return out;
    };
    auto server = co_await raw_server::start(std::move(script));
    auto ex = co_await asio::this_coro::executor;
    for (const unsigned per_socket : {1u, 100u}) {
      const std::size_t before = server->queries().size();
      resolver r(ex, raw_options(server->endpoint(), per_socket));
      auto a = co_await r.lookup("old.example.", rtype::a);
      CO_ASSERT_OK(a);
      EXPECT_EQ(first_octet_of(a), 3);
      CO_ASSERT_TRUE(server->queries().size() == before + 2);
      EXPECT_TRUE(server->queries()[before].edns.has_value());
      EXPECT_FALSE(server->queries()[before + 1].edns.has_value());
    }
  });
}

TEST(dns_resolver, a_truncated_answer_is_asked_again_over_tcp) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      message r = make_response(q);
      r.tc = true;  // "too big for UDP"
      return std::vector<datagram>{{wire_of(r)}};
    };
    auto over_tcp = [](const message& q) {
      std::vector<record> records;
      for (std::uint8_t i = 1; i < 60; ++i)
        records.push_back(a_record(q.questions[0].qname.to_string(), i));
      return reply(q, std::move(records));
    };
    auto server = co_await raw_server::start(std::move(script), std::move(over_tcp));
    auto ex = co_await asio::this_coro::executor;
    for (const unsigned per_socket : {1u, 100u}) {
      const int before = server->tcp_served();
      resolver r(ex, raw_options(server->endpoint(), per_socket));
      auto a = co_await r.lookup("big.example.", rtype::a);
      CO_ASSERT_OK(a);
      EXPECT_EQ(a->records.size(), 59u);
      EXPECT_EQ(server->tcp_served(), before + 1);
    }
  });
}

TEST(dns_resolver, a_lookup_waiting_for_its_answer_can_be_cancelled) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto count = std::make_shared<int>(0);
    auto script = [count](const message& q) {
      std::vector<datagram> out;
      if ((*count)++ % 2 == 0) return out;  // every other query goes unanswered
      out.push_back({wire_of(reply(q, {a_record(q.questions[0].qname.to_string(), 3)}))});
      return out;
    };
    auto server = co_await raw_server::start(std::move(script));
    auto ex = co_await asio::this_coro::executor;
    using namespace asio::experimental::awaitable_operators;
    for (const unsigned per_socket : {1u, 100u}) {
      resolver r(ex, raw_options(server->endpoint(), per_socket, 30s));
      asio::steady_timer timer(ex, 50ms);
      auto lost = r.lookup("www.example.", rtype::a);
      auto tick = timer.async_wait(use_nothrow);
      auto race = std::move(lost) || std::move(tick);
      const auto started = clock::now();
      auto which = co_await std::move(race);
      EXPECT_EQ(which.index(), 1u) << "the timer, not the lookup, finished first";
      EXPECT_LT(clock::now() - started, 10s);
      auto a = co_await r.lookup("www.example.", rtype::a);
      CO_ASSERT_OK(a);
      EXPECT_EQ(first_octet_of(a), 3);
    }
  });
}

TEST(dns_resolver, a_dead_first_server_is_skipped_then_deprioritised) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto dead = net::udp_socket::bind(ex, loopback_any);  // bound, never answers
    CO_ASSERT_OK(dead);
    auto live = co_await fake_server::start([](const message& q) -> std::optional<message> {
      return reply(q, {a_record(q.questions[0].qname.to_string(), 1)});
    });
    resolver_options o = options_for(endpoints(dead->local_endpoint(), live->endpoint()), 200ms);
    o.failure_threshold = 2;
    o.penalty = 60s;
    o.use_cache = false;
    resolver r(ex, o);
    for (int i = 0; i < 2; ++i) {
      auto a = co_await r.lookup("www.example.", rtype::a);
      CO_ASSERT_OK(a);  // the second server answered within the attempt
    }
    auto status = r.servers();
    CO_ASSERT_TRUE(status.size() == 2);
    EXPECT_EQ(status[0].consecutive_failures, 2u);
    EXPECT_TRUE(status[0].deprioritised);
    EXPECT_FALSE(status[1].deprioritised);
    const auto sent_before = r.stats().queries_sent;
    auto third = co_await r.lookup("www.example.", rtype::a);
    CO_ASSERT_OK(third);
    EXPECT_EQ(r.stats().queries_sent - sent_before, 1u) << "straight to the healthy server";
    // The dead server saw exactly the two first queries.
    std::size_t seen = 0;
    char buf[512];
    for (int i = 0; i < 10; ++i) {
      auto d = co_await dead->receive_from(buf, 50ms);
      if (!d) break;
      ++seen;
    }
    EXPECT_EQ(seen, 2u);
  });
}

TEST(dns_resolver, rotate_spreads_queries_over_the_servers) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      return reply(q, {a_record(q.questions[0].qname.to_string(), 1)});
    };
    auto s1 = co_await fake_server::start(script);
    auto s2 = co_await fake_server::start(script);
    resolver_options o = options_for(endpoints(s1->endpoint(), s2->endpoint()));
    o.conf.rotate = true;
    o.use_cache = false;
    resolver r(co_await asio::this_coro::executor, o);
    for (int i = 0; i < 4; ++i) CO_ASSERT_OK(co_await r.lookup("www.example.", rtype::a));
    EXPECT_EQ(s1->queries(), 2u);
    EXPECT_EQ(s2->queries(), 2u);
  });
}

TEST(dns_resolver, every_server_down_times_out_or_serves_stale) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto dead = net::udp_socket::bind(ex, loopback_any);
    CO_ASSERT_OK(dead);
    resolver_options o = options_for(endpoints(dead->local_endpoint()), 100ms);
    o.conf.attempts = 2;
    o.cache_options.serve_stale = true;
    resolver r(ex, o);
    auto none = co_await r.lookup("www.example.", rtype::a);
    CO_ASSERT_FALSE(none);
    EXPECT_EQ(none.error(), error::timed_out);
    EXPECT_EQ(r.stats().queries_sent, 2u) << "attempts x servers";

    // An answer that expired 10 s ago is still served, with TTL 30.
    const question q{n("www.example"), rtype::a, rclass::in};
    message old = make_response(make_query(1, q));
    old.answers.push_back(a_record("www.example", 42, 5));
    CO_ASSERT_TRUE(r.answer_cache().insert(q, old, clock::now() - 15s).has_value());
    auto stale = co_await r.lookup("www.example.", rtype::a);
    CO_ASSERT_OK(stale);
    EXPECT_TRUE(stale->stale);
    EXPECT_EQ(stale->ttl, 30u);
    EXPECT_EQ(to_string(stale->records.at(0).data), "192.0.2.42");
    EXPECT_EQ(r.stats().stale_answers, 1u);
  });
}

TEST(dns_resolver, a_hit_near_expiry_is_refreshed_in_the_background) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) -> std::optional<message> {
      return reply(q, {a_record("www.example", 2, 100)});
    };
    auto server = co_await fake_server::start(std::move(script));
    auto exec = co_await asio::this_coro::executor;
    resolver r(exec, options_for(endpoints(server->endpoint())));
    const question q{n("www.example"), rtype::a, rclass::in};
    message old = make_response(make_query(1, q));
    old.answers.push_back(a_record("www.example", 1, 100));
    CO_ASSERT_TRUE(r.answer_cache().insert(q, old, clock::now() - 95s).has_value());
    auto hit = co_await r.lookup("www.example.", rtype::a);
    CO_ASSERT_OK(hit);
    EXPECT_TRUE(hit->from_cache);
    EXPECT_EQ(to_string(hit->records.at(0).data), "192.0.2.1") << "the client is not made to wait";
    for (int i = 0; i < 200 && server->queries() == 0; ++i) co_await sleep_for(10ms);
    EXPECT_EQ(server->queries(), 1u);
    EXPECT_EQ(r.stats().prefetches, 1u);
    for (int i = 0; i < 200; ++i) {
      auto c = r.answer_cache().lookup(q, clock::now());
      if (c && c->answers().at(0) == a_record("www.example", 2, c->answers().at(0).ttl)) break;
      co_await sleep_for(10ms);
    }
    auto fresh = co_await r.lookup("www.example.", rtype::a);
    CO_ASSERT_OK(fresh);
    EXPECT_EQ(to_string(fresh->records.at(0).data), "192.0.2.2");
    EXPECT_GT(fresh->ttl, 50u);
  });
}

// --- against dnsmasq ------------------------------------------------------------

std::uint16_t free_port() {
  asio::io_context ctx;
  udp::socket s(ctx, loopback_any);
  return s.local_endpoint().port();
}

struct dnsmasq_peer {
  std::unique_ptr<test::process> proc;
  udp::endpoint endpoint;
};

std::optional<dnsmasq_peer> start_dnsmasq(std::string& why) {
  if (!test::program_exists("dnsmasq")) {
    why = "dnsmasq not installed (package dnsmasq-base)";
    return std::nullopt;
  }
  dnsmasq_peer p;
  const std::uint16_t port = free_port();
  p.endpoint = udp::endpoint(asio::ip::address_v4::loopback(), port);
  p.proc = std::make_unique<test::process>(
      strings("dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
              "--pid-file=", "--log-facility=-", "--bind-interfaces", "--listen-address=127.0.0.1",
              "--port=" + std::to_string(port), "--local=/test/", "--local-ttl=300",
              "--host-record=www.test,127.0.0.5,::5", "--host-record=v4only.test,127.0.0.6",
              "--cname=alias.test,www.test", "--txt-record=t.test,v=spf1 ,-all",
              "--mx-host=test,mail.test,20", "--mx-host=test,backup.test,10",
              "--srv-host=_http._tcp.test,www.test,8080,2,5",
              "--srv-host=_http._tcp.test,alias.test,8081,1,5"));
  if (!p.proc->wait_for_output("started", 5s, true)) {
    why = "dnsmasq did not start: " + p.proc->err();
    return std::nullopt;
  }
  return p;
}

asio::awaitable<bool> wait_ready(resolver_options o) {
  o.use_cache = false;
  o.conf.timeout = 100ms;
  resolver probe(co_await asio::this_coro::executor, o);
  for (int i = 0; i < 50; ++i) {
    if (co_await probe.lookup("www.test.", rtype::a)) co_return true;
    co_await sleep_for(50ms);
  }
  co_return false;
}

std::vector<std::string> dig_short(const udp::endpoint& server, std::string_view qname,
                                   std::string_view type) {
  auto r = test::run({"dig", "@127.0.0.1", "-p", std::to_string(server.port()), "+short",
                      "+tries=1", "+time=2", std::string(qname), std::string(type)},
                     {}, 10s);
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < r.out.size()) {
    const std::size_t nl = r.out.find('\n', start);
    lines.push_back(r.out.substr(start, nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return lines;
}

TEST(dns_resolver, resolves_through_dnsmasq_as_dig_sees_it) {
  std::string why;
  auto peer = start_dnsmasq(why);
  if (!peer) GTEST_SKIP() << why;
  const bool have_dig = test::program_exists("dig");
  std::vector<std::string> addresses, alias, ptr;
  test::run_bounded([&]() -> asio::awaitable<void> {
    resolver_options o = options_for(endpoints(peer->endpoint));
    o.order = address_order::ipv4_first;
    o.conf.search = search_list("test");
    CO_ASSERT_TRUE(co_await wait_ready(o));
    resolver r(co_await asio::this_coro::executor, o);
    auto www = co_await r.resolve("www");  // through the search list
    CO_ASSERT_OK(www);
    addresses = texts(*www);
    auto via_alias = co_await r.lookup("alias.test", rtype::aaaa);
    CO_ASSERT_OK(via_alias);
    EXPECT_EQ(via_alias->canonical.to_string(), "www.test.");
    for (const auto& rec : via_alias->records) alias.push_back(to_string(rec.data));
    auto v4only = co_await r.resolve("v4only.test");
    CO_ASSERT_OK(v4only);
    EXPECT_EQ(texts(*v4only), strings("127.0.0.6")) << "a missing AAAA does not fail the lookup";
    auto rev = co_await r.reverse(make_address("127.0.0.5"));
    CO_ASSERT_OK(rev);
    for (const auto& x : *rev) ptr.push_back(x.to_string());
    auto mx = co_await r.lookup_mx("test");
    CO_ASSERT_OK(mx);
    CO_ASSERT_TRUE(mx->size() == 2);
    EXPECT_EQ((*mx)[0].preference, 10);
    EXPECT_EQ((*mx)[0].exchange.to_string(), "backup.test.");
    auto txt = co_await r.lookup_txt("t.test");
    CO_ASSERT_OK(txt);
    EXPECT_EQ(*txt, strings("v=spf1 -all"));
    auto srv = co_await r.lookup_srv("_http._tcp.test");
    CO_ASSERT_OK(srv);
    CO_ASSERT_TRUE(srv->size() == 2);
    EXPECT_EQ((*srv)[0].port, 8081) << "priority 1 first";
    EXPECT_EQ((*srv)[1].target.to_string(), "www.test.");
    auto nx = co_await r.resolve("nope.test.");
    CO_ASSERT_FALSE(nx);
    EXPECT_EQ(nx.error(), error::nxdomain);
    auto nodata = co_await r.lookup("www.test.", rtype::mx);
    CO_ASSERT_FALSE(nodata);
    EXPECT_EQ(nodata.error(), error::nodata);
  });
  EXPECT_EQ(addresses, strings("127.0.0.5", "::5"));
  if (!have_dig) GTEST_SKIP() << "dig not installed (bind9-dnsutils): answers not compared";
  EXPECT_EQ(alias, strings(dig_short(peer->endpoint, "alias.test", "AAAA").at(1)));
  EXPECT_EQ(ptr, dig_short(peer->endpoint, "-x", "127.0.0.5"));
  EXPECT_EQ(dig_short(peer->endpoint, "www.test", "A"), strings(addresses[0]));
}

TEST(dns_resolver, connect_resolves_and_races_to_a_listener) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    resolver_options o;
    // ::1 first when usable, but nothing listens there: the race moves on to IPv4.
    o.hosts = hosts::parse("127.0.0.1 svc.internal\n::1 svc.internal\n");
    o.order = address_order::ipv6_first;
    resolver r(ex, o);
    auto s = co_await connect(r, "svc.internal", acceptor.local_endpoint().port(),
                              {.connect = {.timeout = 5s}});
    CO_ASSERT_OK(s);
    EXPECT_EQ(s->remote_endpoint(), acceptor.local_endpoint());
    auto missing = co_await connect(r, "nope.internal", 80);
    CO_ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error(), error::no_servers);
  });
}

}  // namespace
}  // namespace trellis::dns
