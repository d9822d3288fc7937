#include "trellis/dns/transport.hpp"

#include <gtest/gtest.h>

#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "support/loop.hpp"
#include "support/process.hpp"
#include "trellis/codec/dns/text.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/net/udp.hpp"

namespace trellis::dns {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using asio::ip::udp;
const udp::endpoint loopback_any{asio::ip::address_v4::loopback(), 0};

name n(std::string_view text) {
  return name::from_text(text).value();
}

record a_record(const name& owner, std::array<std::uint8_t, 4> address, std::uint32_t ttl = 60) {
  return {owner, rtype::a, rclass::in, ttl, a_data{address}};
}

std::span<const char> chars(const std::vector<std::uint8_t>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

// One datagram the fake server sends in reply to a query.
struct reply {
  std::vector<std::uint8_t> wire;
  bool from_other_port = false;  // sent from a second socket: a spoof attempt
};

// A scripted DNS server on 127.0.0.1: for each query it receives, `script`
// returns the datagrams to send back, in order. Stops when destroyed.
class fake_server {
 public:
  using script = std::function<std::vector<reply>(const message& query)>;

  static asio::awaitable<std::unique_ptr<fake_server>> start(script s) {
    auto ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<state>();
    st->main.emplace(net::udp_socket::bind(ex, loopback_any).value());
    st->other.emplace(net::udp_socket::bind(ex, loopback_any).value());
    st->handler = std::move(s);
    asio::co_spawn(ex, serve(st), [](std::exception_ptr e) {
      if (e) ADD_FAILURE() << "fake server threw";
    });
    co_return std::unique_ptr<fake_server>(new fake_server(st));
  }
  ~fake_server() {
    st_->main->close();
    st_->other->close();
  }
  udp::endpoint endpoint() const { return st_->main->local_endpoint(); }
  const std::vector<message>& queries() const { return st_->queries; }
  const std::vector<udp::endpoint>& senders() const { return st_->senders; }

 private:
  struct state {
    std::optional<net::udp_socket> main, other;
    script handler;
    std::vector<message> queries;
    std::vector<udp::endpoint> senders;
  };
  explicit fake_server(std::shared_ptr<state> st) : st_(std::move(st)) {}

  static asio::awaitable<void> serve(std::shared_ptr<state> st) {
    std::vector<char> buf(65535);
    for (;;) {
      auto d = co_await st->main->receive_from(buf, 60s);
      if (!d) co_return;  // closed
      auto q = decode({reinterpret_cast<const std::uint8_t*>(buf.data()), d->size});
      if (!q) continue;
      st->queries.push_back(*q);
      st->senders.push_back(d->sender);
      for (const reply& r : st->handler(*q)) {
        auto& from = r.from_other_port ? *st->other : *st->main;
        (void)co_await from.send_to(chars(r.wire), d->sender, 1s);
      }
    }
  }
  std::shared_ptr<state> st_;
};

// Questions are made by a function, never brace-initialised inside a
// co_await expression: GCC 12 destroys such aggregate temporaries twice.
question ask(std::string_view qname, rtype type) {
  return {n(qname), type, rclass::in};
}

std::vector<std::uint8_t> wire_of(const message& m) {
  return encode(m).value();
}

// The normal answer to `q`: one A record 192.0.2.<last>.
message answer_to(const message& q, std::uint8_t last) {
  message r = make_response(q);
  r.ra = true;
  r.answers.push_back(a_record(q.questions[0].qname, {192, 0, 2, last}));
  return r;
}

std::uint8_t last_octet(const message& m) {
  return std::get<a_data>(m.answers.at(0).data).address[3];
}

TEST(dns_transport, matches_requires_id_qr_and_the_same_question) {
  message q = make_query(7, {n("www.example"), rtype::a, rclass::in});
  message r = make_response(q);
  EXPECT_TRUE(matches(q, r));
  r.questions[0].qname = n("WWW.EXAMPLE.");
  EXPECT_TRUE(matches(q, r)) << "names compare case-insensitively";
  r.id = 8;
  EXPECT_FALSE(matches(q, r));
  r = make_response(q);
  r.qr = false;
  EXPECT_FALSE(matches(q, r));
  r = make_response(q);
  r.questions[0].qtype = rtype::aaaa;
  EXPECT_FALSE(matches(q, r));
  r = make_response(q);
  r.questions.clear();
  EXPECT_FALSE(matches(q, r));
}

TEST(dns_transport, queries_carry_random_ids_from_fresh_ports_and_edns0) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) { return std::vector<reply>{{wire_of(answer_to(q, 1))}}; };
    auto server = co_await fake_server::start(std::move(script));
    for (int i = 0; i < 4; ++i) {
      auto r = co_await query(server->endpoint(), ask("www.example", rtype::a), {.timeout = 2s});
      CO_ASSERT_OK(r);
      EXPECT_FALSE(r->used_tcp);
      EXPECT_EQ(r->server, server->endpoint());
      EXPECT_GT(r->wire_size, 12u);
    }
    CO_ASSERT_TRUE(server->queries().size() == 4);
    std::set<std::uint16_t> ids;
    std::set<std::uint16_t> ports;
    for (std::size_t i = 0; i < 4; ++i) {
      ids.insert(server->queries()[i].id);
      ports.insert(server->senders()[i].port());
      const auto& q = server->queries()[i];
      CO_ASSERT_TRUE(q.edns.has_value());
      EXPECT_EQ(q.edns->udp_size, 1232);
      EXPECT_TRUE(q.rd);
    }
    EXPECT_GT(ids.size(), 1u) << "IDs are random";
    EXPECT_GT(ports.size(), 1u) << "each query comes from a fresh socket";
  });
}

TEST(dns_transport, options_control_rd_and_edns) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) { return std::vector<reply>{{wire_of(answer_to(q, 1))}}; };
    auto server = co_await fake_server::start(std::move(script));
    auto r = co_await query(server->endpoint(), ask("www.example", rtype::a),
                            {.timeout = 2s, .recursion_desired = false, .edns_udp_size = 0});
    CO_ASSERT_OK(r);
    CO_ASSERT_TRUE(server->queries().size() == 1);
    EXPECT_FALSE(server->queries()[0].rd);
    EXPECT_FALSE(server->queries()[0].edns.has_value());
  });
}

TEST(dns_transport, spoofed_answers_are_ignored_and_the_real_one_wins) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      message wrong_id = answer_to(q, 66);
      wrong_id.id = static_cast<std::uint16_t>(q.id + 1);
      message wrong_question = answer_to(q, 77);
      wrong_question.questions[0].qname = n("evil.example");
      message not_a_response = answer_to(q, 88);
      not_a_response.qr = false;
      return std::vector<reply>{
          {wire_of(answer_to(q, 99)), true},  // right ID and question, wrong port
          {wire_of(wrong_id)},
          {wire_of(wrong_question)},
          {wire_of(not_a_response)},
          {{0xde, 0xad}},              // not DNS at all
          {wire_of(answer_to(q, 1))},  // the real answer, last
      };
    };
    auto server = co_await fake_server::start(std::move(script));
    auto r = co_await query(server->endpoint(), ask("www.example", rtype::a), {.timeout = 5s});
    CO_ASSERT_OK(r);
    EXPECT_EQ(last_octet(r->response), 1) << "the real answer wins";
    // The other port's datagram never reaches the connected socket; the rest are read and dropped.
    EXPECT_EQ(r->ignored_datagrams, 4u);
  });
}

TEST(dns_transport, only_spoofed_answers_end_in_a_timeout) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      message wrong_id = answer_to(q, 66);
      wrong_id.id = static_cast<std::uint16_t>(q.id ^ 0x8000);
      return std::vector<reply>{{wire_of(wrong_id)}, {wire_of(answer_to(q, 99)), true}};
    };
    auto server = co_await fake_server::start(std::move(script));
    auto r = co_await query(server->endpoint(), ask("www.example", rtype::a), {.timeout = 300ms});
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), error::timed_out);
  });
}

TEST(dns_transport, an_undecodable_answer_with_our_id_is_malformed) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      auto wire = wire_of(answer_to(q, 1));
      wire.resize(wire.size() - 3);  // cut inside the A record
      return std::vector<reply>{{wire}};
    };
    auto server = co_await fake_server::start(std::move(script));
    auto r = co_await query(server->endpoint(), ask("www.example", rtype::a), {.timeout = 300ms});
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), error::malformed);
  });
}

TEST(dns_transport, a_silent_server_times_out) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto silent = net::udp_socket::bind(ex, loopback_any);
    CO_ASSERT_OK(silent);
    auto r =
        co_await query(silent->local_endpoint(), ask("www.example", rtype::a), {.timeout = 200ms});
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), error::timed_out);
  });
}

TEST(dns_transport, a_closed_port_fails_without_waiting_for_the_timeout) {
  test::run_bounded([]() -> asio::awaitable<void> {
    udp::endpoint closed;
    {
      auto ex = co_await asio::this_coro::executor;
      auto s = net::udp_socket::bind(ex, loopback_any);
      CO_ASSERT_OK(s);
      closed = s->local_endpoint();
    }
    auto r = co_await query(closed, ask("www.example", rtype::a), {.timeout = 30s});
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), asio::error::connection_refused) << r.error().message();
  });
}

TEST(dns_transport, rcodes_are_returned_not_failed) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      message r = make_response(q);
      r.rcode = rcode::nxdomain;
      return std::vector<reply>{{wire_of(r)}};
    };
    auto server = co_await fake_server::start(std::move(script));
    auto r = co_await query(server->endpoint(), ask("nope.example", rtype::a), {.timeout = 2s});
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->response.rcode, rcode::nxdomain);
  });
}

TEST(dns_transport, a_server_without_edns_is_asked_again_plainly) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) {
      if (q.edns) {
        message r = make_response(q);
        r.edns.reset();
        r.rcode = rcode::formerr;
        return std::vector<reply>{{wire_of(r)}};
      }
      return std::vector<reply>{{wire_of(answer_to(q, 3))}};
    };
    auto server = co_await fake_server::start(std::move(script));
    auto r = co_await query(server->endpoint(), ask("old.example", rtype::a), {.timeout = 2s});
    CO_ASSERT_OK(r);
    EXPECT_TRUE(r->edns_fallback);
    EXPECT_EQ(last_octet(r->response), 3);
    EXPECT_EQ(server->queries().size(), 2u);
  });
}

// Serves one TCP connection on `acceptor`: reads one framed query, answers
// with `make`'s message (framed). Counts what it served.
asio::awaitable<void> serve_tcp_once(tcp::acceptor& acceptor,
                                     std::function<message(const message&)> make, int& served) {
  auto [ec, s] = co_await acceptor.async_accept(use_nothrow);
  if (ec) co_return;
  std::uint8_t len[2];
  auto [e1, n1] = co_await asio::async_read(s, asio::buffer(len), use_nothrow);
  if (e1) co_return;
  std::vector<std::uint8_t> body(static_cast<std::size_t>(len[0] << 8 | len[1]));
  auto [e2, n2] = co_await asio::async_read(s, asio::buffer(body), use_nothrow);
  if (e2) co_return;
  auto q = decode(body);
  if (!q) co_return;
  std::vector<std::uint8_t> out;
  frame_for_tcp(wire_of(make(*q)), out);
  auto [e3, n3] = co_await asio::async_write(s, asio::buffer(out), use_nothrow);
  if (!e3) ++served;
}

// A fake UDP server and a TCP acceptor on the same port number, as a real
// DNS server has. The UDP port is the kernel's pick; another test running in
// parallel may hold the same TCP port, so on a clash both are dropped and
// the pair is tried again on a new port.
struct udp_and_tcp {
  std::unique_ptr<fake_server> udp;
  tcp::acceptor acceptor;
};
asio::awaitable<udp_and_tcp> start_udp_and_tcp(fake_server::script script) {
  auto ex = co_await asio::this_coro::executor;
  for (int attempt = 0;; ++attempt) {
    auto server = co_await fake_server::start(script);
    tcp::acceptor acceptor(ex);
    const tcp::endpoint ep(server->endpoint().address(), server->endpoint().port());
    std::error_code ec;
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) co_return udp_and_tcp{std::move(server), std::move(acceptor)};
    if (attempt == 20) throw std::system_error(ec, "no port free for both UDP and TCP");
  }
}

TEST(dns_transport, a_truncated_udp_answer_is_retried_over_tcp) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto script = [](const message& q) {
      message r = make_response(q);
      r.tc = true;  // "too big for UDP"
      return std::vector<reply>{{wire_of(r)}};
    };
    auto pair = co_await start_udp_and_tcp(std::move(script));
    auto& server = pair.udp;
    auto& acceptor = pair.acceptor;
    int served = 0;
    asio::co_spawn(ex,
                   serve_tcp_once(
                       acceptor,
                       [](const message& q) {
                         message r = answer_to(q, 1);
                         for (std::uint8_t i = 2; i < 60; ++i)
                           r.answers.push_back(a_record(q.questions[0].qname, {192, 0, 2, i}));
                         return r;
                       },
                       served),
                   [](std::exception_ptr e) {
                     if (e) ADD_FAILURE() << "tcp server threw";
                   });
    auto r = co_await query(server->endpoint(), ask("big.example", rtype::a), {.timeout = 5s});
    CO_ASSERT_OK(r);
    EXPECT_TRUE(r->truncated_udp);
    EXPECT_TRUE(r->used_tcp);
    EXPECT_FALSE(r->response.tc);
    EXPECT_EQ(r->response.answers.size(), 59u);
    EXPECT_EQ(served, 1);
  });
}

TEST(dns_transport, tcp_only_skips_udp_and_tc_can_be_kept) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto script = [](const message& q) {
      message r = answer_to(q, 5);
      r.tc = true;
      return std::vector<reply>{{wire_of(r)}};
    };
    auto pair = co_await start_udp_and_tcp(std::move(script));
    auto& server = pair.udp;
    auto& acceptor = pair.acceptor;
    int served = 0;
    asio::co_spawn(ex,
                   serve_tcp_once(
                       acceptor, [](const message& q) { return answer_to(q, 6); }, served),
                   [](std::exception_ptr e) {
                     if (e) ADD_FAILURE() << "tcp server threw";
                   });
    auto kept = co_await query(server->endpoint(), ask("x.example", rtype::a),
                               {.timeout = 2s, .tcp_fallback = false});
    CO_ASSERT_OK(kept);
    EXPECT_TRUE(kept->response.tc);
    EXPECT_FALSE(kept->used_tcp);
    auto r = co_await query(server->endpoint(), ask("x.example", rtype::a),
                            {.timeout = 2s, .tcp_only = true});
    CO_ASSERT_OK(r);
    EXPECT_TRUE(r->used_tcp);
    EXPECT_FALSE(r->truncated_udp);
    EXPECT_EQ(last_octet(r->response), 6);
    EXPECT_EQ(server->queries().size(), 1u) << "the tcp_only query sent no datagram";
  });
}

TEST(dns_transport, a_query_needs_exactly_one_question) {
  test::run_bounded([]() -> asio::awaitable<void> {
    const message empty;
    auto r = co_await query(udp::endpoint(asio::ip::address_v4::loopback(), 53), empty);
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), error::bad_query);
  });
}

// --- shared sockets (udp_channel, queries_per_socket > 1) ----------------------

// The octet each name is answered with, so that a result shows whose answer it got.
std::uint8_t octet_for(const message& q) {
  const std::string text = q.questions.at(0).qname.to_string();
  return static_cast<std::uint8_t>(text.size() + text.front());
}

using result_pair = std::tuple<result<exchange_result>, result<exchange_result>>;

// Two queries through `channel` at once.
asio::awaitable<result_pair> query_two(udp_channel& channel, const question& a, const question& b,
                                       query_options o) {
  using namespace asio::experimental::awaitable_operators;
  auto first = query(channel, a, o);
  auto second = query(channel, b, o);
  auto both = std::move(first) && std::move(second);
  co_return co_await std::move(both);
}

TEST(dns_transport, a_shared_socket_hands_out_of_order_answers_to_the_right_queries) {
  test::run_bounded([]() -> asio::awaitable<void> {
    // Holds the answers until three queries are in, then answers the last first.
    auto held = std::make_shared<std::vector<message>>();
    auto script = [held](const message& q) {
      held->push_back(q);
      std::vector<reply> out;
      if (held->size() < 3) return out;
      for (auto it = held->rbegin(); it != held->rend(); ++it)
        out.push_back({wire_of(answer_to(*it, octet_for(*it)))});
      held->clear();
      return out;
    };
    auto server = co_await fake_server::start(std::move(script));
    udp_channel channel(co_await asio::this_coro::executor, server->endpoint(), 10);
    using namespace asio::experimental::awaitable_operators;
    const query_options o{.timeout = 5s};
    // Named: the coroutines hold references to their questions until they run.
    const question qa = ask("a.example", rtype::a);
    const question qb = ask("bb.example", rtype::a);
    const question qc = ask("ccc.example", rtype::a);
    auto a = query(channel, qa, o);
    auto b = query(channel, qb, o);
    auto c = query(channel, qc, o);
    auto all = std::move(a) && std::move(b) && std::move(c);
    auto [ra, rb, rc] = co_await std::move(all);
    CO_ASSERT_OK(ra);
    CO_ASSERT_OK(rb);
    CO_ASSERT_OK(rc);
    for (const auto* r : {&ra, &rb, &rc}) {
      const message& m = (*r)->response;
      EXPECT_EQ(last_octet(m), octet_for(m)) << m.questions.at(0).qname.to_string();
      EXPECT_EQ((*r)->ignored_datagrams, 0u);
    }
    CO_ASSERT_TRUE(server->senders().size() == 3);
    EXPECT_EQ(server->senders()[0], server->senders()[1]) << "one socket, one port";
    EXPECT_EQ(server->senders()[1], server->senders()[2]);
    std::set<std::uint16_t> ids;
    for (const message& q : server->queries()) ids.insert(q.id);
    EXPECT_EQ(ids.size(), 3u) << "IDs are unique among a socket's queries in flight";
    EXPECT_EQ(channel.sockets_opened(), 1u);
  });
}

TEST(dns_transport, forged_answers_on_a_shared_socket_are_ignored) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto held = std::make_shared<std::vector<message>>();
    auto script = [held](const message& q) {
      held->push_back(q);
      std::vector<reply> out;
      if (held->size() < 2) return out;
      const message& first = (*held)[0];
      const message& second = (*held)[1];
      // The first query's ID with the second one's question: right ID, wrong question.
      message crossed = answer_to(second, 66);
      crossed.id = first.id;
      // An ID no query has.
      message stray = answer_to(first, 77);
      do {
        ++stray.id;
      } while (stray.id == first.id || stray.id == second.id);
      message wrong_question = answer_to(second, 88);
      wrong_question.questions[0].qname = n("evil.example");
      out.push_back({wire_of(crossed)});
      out.push_back({wire_of(stray)});
      out.push_back({wire_of(wrong_question)});
      out.push_back({wire_of(answer_to(first, 99)), true});  // from another port
      out.push_back({wire_of(answer_to(second, octet_for(second)))});
      out.push_back({wire_of(answer_to(first, octet_for(first)))});
      held->clear();
      return out;
    };
    auto server = co_await fake_server::start(std::move(script));
    udp_channel channel(co_await asio::this_coro::executor, server->endpoint(), 10);
    const question one = ask("one.example", rtype::a);
    const question two = ask("two.example", rtype::a);
    auto [r1, r2] = co_await query_two(channel, one, two, {.timeout = 5s});
    CO_ASSERT_OK(r1);
    CO_ASSERT_OK(r2);
    EXPECT_EQ(last_octet(r1->response), octet_for(r1->response));
    EXPECT_EQ(last_octet(r2->response), octet_for(r2->response));
    EXPECT_EQ(r1->ignored_datagrams, 1u) << "its ID, another question";
    EXPECT_EQ(r2->ignored_datagrams, 1u) << "its ID, a question it did not ask";
  });
}

TEST(dns_transport, a_shared_socket_is_replaced_after_its_queries) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) { return std::vector<reply>{{wire_of(answer_to(q, 1))}}; };
    auto server = co_await fake_server::start(std::move(script));
    udp_channel channel(co_await asio::this_coro::executor, server->endpoint(), 2);
    for (int i = 0; i < 5; ++i) {
      auto r = co_await query(channel, ask("www.example", rtype::a), {.timeout = 5s});
      CO_ASSERT_OK(r);
    }
    const auto& from = server->senders();
    CO_ASSERT_TRUE(from.size() == 5);
    EXPECT_EQ(from[0], from[1]);
    EXPECT_NE(from[1], from[2]) << "a new socket after two queries";
    EXPECT_EQ(from[2], from[3]);
    EXPECT_NE(from[3], from[4]);
    EXPECT_EQ(channel.sockets_opened(), 3u);
  });
}

TEST(dns_transport, a_shared_socket_outlives_a_timeout_and_keeps_answering) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto count = std::make_shared<int>(0);
    auto script = [count](const message& q) {
      if ((*count)++ == 0) return std::vector<reply>{};  // the first query goes unanswered
      return std::vector<reply>{{wire_of(answer_to(q, 2))}};
    };
    auto server = co_await fake_server::start(std::move(script));
    udp_channel channel(co_await asio::this_coro::executor, server->endpoint(), 10);
    auto lost = co_await query(channel, ask("www.example", rtype::a), {.timeout = 200ms});
    CO_ASSERT_FALSE(lost);
    EXPECT_EQ(lost.error(), error::timed_out);
    auto r = co_await query(channel, ask("www.example", rtype::a), {.timeout = 5s});
    CO_ASSERT_OK(r);
    EXPECT_EQ(last_octet(r->response), 2);
    CO_ASSERT_TRUE(server->senders().size() == 2);
    EXPECT_EQ(server->senders()[0], server->senders()[1]);
  });
}

TEST(dns_transport, one_query_per_socket_through_a_channel_uses_fresh_ports) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) { return std::vector<reply>{{wire_of(answer_to(q, 1))}}; };
    auto server = co_await fake_server::start(std::move(script));
    udp_channel channel(co_await asio::this_coro::executor, server->endpoint());
    for (int i = 0; i < 3; ++i) {
      auto r = co_await query(channel, ask("www.example", rtype::a), {.timeout = 5s});
      CO_ASSERT_OK(r);
    }
    const auto& from = server->senders();
    CO_ASSERT_TRUE(from.size() == 3);
    EXPECT_NE(from[0], from[1]);
    EXPECT_NE(from[1], from[2]);
    EXPECT_EQ(channel.sockets_opened(), 0u);
  });
}

TEST(dns_transport, a_closed_port_fails_the_queries_of_a_shared_socket) {
  test::run_bounded([]() -> asio::awaitable<void> {
    udp::endpoint closed;
    {
      auto s = net::udp_socket::bind(co_await asio::this_coro::executor, loopback_any);
      CO_ASSERT_OK(s);
      closed = s->local_endpoint();
    }
    udp_channel channel(co_await asio::this_coro::executor, closed, 10);
    auto r = co_await query(channel, ask("www.example", rtype::a), {.timeout = 30s});
    CO_ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), asio::error::connection_refused) << r.error().message();
    auto again = co_await query(channel, ask("www.example", rtype::a), {.timeout = 30s});
    CO_ASSERT_FALSE(again);
    EXPECT_EQ(channel.sockets_opened(), 2u) << "a failed socket is replaced";
  });
}

TEST(dns_transport, a_query_waiting_on_a_shared_socket_can_be_cancelled) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto count = std::make_shared<int>(0);
    auto script = [count](const message& q) {
      if ((*count)++ == 0) return std::vector<reply>{};  // the first query goes unanswered
      return std::vector<reply>{{wire_of(answer_to(q, 3))}};
    };
    auto server = co_await fake_server::start(std::move(script));
    udp_channel channel(co_await asio::this_coro::executor, server->endpoint(), 10);
    using namespace asio::experimental::awaitable_operators;
    // The timer wins the race long before the query's own 30 s deadline;
    // the query must then give up its wait rather than hold the group open.
    asio::steady_timer timer(co_await asio::this_coro::executor, 50ms);
    auto lost = query(channel, ask("www.example", rtype::a), {.timeout = 30s});
    auto tick = timer.async_wait(use_nothrow);
    auto race = std::move(lost) || std::move(tick);
    const auto started = std::chrono::steady_clock::now();
    auto which = co_await std::move(race);
    EXPECT_EQ(which.index(), 1u) << "the timer, not the query, finished first";
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    // The socket and the channel carry on.
    auto r = co_await query(channel, ask("www.example", rtype::a), {.timeout = 5s});
    CO_ASSERT_OK(r);
    EXPECT_EQ(last_octet(r->response), 3);
    EXPECT_EQ(channel.sockets_opened(), 1u);
  });
}

TEST(dns_transport, a_context_destroyed_with_shared_queries_waiting_lets_them_go) {
  // A server that never answers; the queries are still waiting when their
  // io_context is destroyed. Nothing may leak or be touched after it (the
  // sanitizer builds check), and the channel may outlive the context.
  std::optional<udp_channel> channel;
  {
    asio::io_context ctx;
    auto silent = net::udp_socket::bind(ctx.get_executor(), loopback_any);
    ASSERT_TRUE(silent);
    channel.emplace(ctx.get_executor(), silent->local_endpoint(), 10);
    int finished = 0;
    for (int i = 0; i < 3; ++i) {
      asio::co_spawn(
          ctx,
          [&]() -> asio::awaitable<void> {
            auto r = co_await query(*channel, ask("www.example", rtype::a), {.timeout = 30s});
            (void)r;
            ++finished;
          },
          asio::detached);
    }
    ctx.run_for(100ms);
    EXPECT_EQ(finished, 0);
  }
  EXPECT_EQ(channel->sockets_opened(), 1u);
  channel.reset();
}

TEST(dns_transport, plain_queries_go_out_as_the_codec_encodes_them) {
  test::run_bounded([]() -> asio::awaitable<void> {
    auto script = [](const message& q) { return std::vector<reply>{{wire_of(answer_to(q, 1))}}; };
    auto server = co_await fake_server::start(std::move(script));
    udp_channel channel(co_await asio::this_coro::executor, server->endpoint(), 10);
    const query_options with_do{.timeout = 5s, .dnssec_ok = true};
    const query_options plain{.timeout = 5s, .recursion_desired = false, .edns_udp_size = 0};
    CO_ASSERT_OK(co_await query(channel, ask("Mixed.Case.example", rtype::aaaa), with_do));
    CO_ASSERT_OK(co_await query(channel, ask("www.example", rtype::mx), plain));
    CO_ASSERT_TRUE(server->queries().size() == 2);
    const message& a = server->queries()[0];
    EXPECT_TRUE(a.rd);
    EXPECT_EQ(a.questions.at(0).qname.to_string(), "Mixed.Case.example.");
    EXPECT_EQ(a.questions.at(0).qtype, rtype::aaaa);
    CO_ASSERT_TRUE(a.edns.has_value());
    EXPECT_EQ(a.edns->udp_size, 1232);
    EXPECT_TRUE(a.edns->dnssec_ok);
    const message& b = server->queries()[1];
    EXPECT_FALSE(b.rd);
    EXPECT_FALSE(b.edns.has_value());
    EXPECT_EQ(b.questions.at(0).qtype, rtype::mx);
    // The message encode() makes for the same query, as the server read it.
    message expect = make_query(b.id, ask("www.example", rtype::mx), 0, false);
    EXPECT_EQ(wire_of(expect), wire_of(b));
  });
}

// --- against dnsmasq, compared with dig ---------------------------------------

std::uint16_t free_port() {
  asio::io_context ctx;
  udp::socket s(ctx, loopback_any);
  return s.local_endpoint().port();
}

struct dnsmasq_peer {
  std::unique_ptr<test::process> proc;
  std::uint16_t port = 0;
};

// Starts dnsmasq on a free loopback port, answering for test. only.
std::optional<dnsmasq_peer> start_dnsmasq(std::string& why) {
  if (!test::program_exists("dnsmasq")) {
    why = "dnsmasq not installed (package dnsmasq-base)";
    return std::nullopt;
  }
  dnsmasq_peer p;
  p.port = free_port();
  p.proc = std::make_unique<test::process>(std::vector<std::string>{
      "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
      "--pid-file=", "--log-facility=-", "--bind-interfaces", "--listen-address=127.0.0.1",
      "--port=" + std::to_string(p.port), "--local=/test/", "--local-ttl=300",
      "--host-record=www.test,127.0.0.5,::5", "--cname=alias.test,www.test",
      "--txt-record=t.test,hello world,second", "--mx-host=test,mail.test,10",
      "--srv-host=_http._tcp.test,www.test,8080,1,5"});
  if (!p.proc->wait_for_output("started", 5s, true)) {
    why = "dnsmasq did not start: " + p.proc->err();
    return std::nullopt;
  }
  return p;
}

// Waits until the server answers (it binds before printing, but be sure).
asio::awaitable<bool> wait_ready(const udp::endpoint& server) {
  for (int i = 0; i < 50; ++i) {
    auto r = co_await query(server, ask("www.test", rtype::a), {.timeout = 100ms});
    if (r) co_return true;
    asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
    co_await t.async_wait(use_nothrow);
  }
  co_return false;
}

std::string dig_short(std::uint16_t port, std::string_view qname, std::string_view type) {
  auto r = test::run({"dig", "@127.0.0.1", "-p", std::to_string(port), "+short", "+tries=1",
                      "+time=2", std::string(qname), std::string(type)},
                     {}, 10s);
  return r.out;
}

TEST(dns_transport, answers_from_dnsmasq_agree_with_dig) {
  std::string why;
  auto peer = start_dnsmasq(why);
  if (!peer) GTEST_SKIP() << why;
  if (!test::program_exists("dig")) GTEST_SKIP() << "dig not installed (bind9-dnsutils)";
  const std::uint16_t port = peer->port;
  struct case_ {
    const char* qname;
    rtype type;
  };
  const std::vector<case_> cases = {{"www.test", rtype::a},   {"www.test", rtype::aaaa},
                                    {"alias.test", rtype::a}, {"t.test", rtype::txt},
                                    {"test", rtype::mx},      {"_http._tcp.test", rtype::srv}};
  std::vector<std::string> ours(cases.size());
  test::run_bounded([&]() -> asio::awaitable<void> {
    const udp::endpoint server(asio::ip::address_v4::loopback(), port);
    CO_ASSERT_TRUE(co_await wait_ready(server));
    for (std::size_t i = 0; i < cases.size(); ++i) {
      auto r = co_await query(server, ask(cases[i].qname, cases[i].type), {.timeout = 2s});
      CO_ASSERT_OK(r);
      EXPECT_EQ(r->response.rcode, rcode::noerror);
      EXPECT_TRUE(r->response.ra);
      for (const record& rec : r->response.answers) ours[i] += to_string(rec.data) + "\n";
    }
  });
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(ours[i], dig_short(port, cases[i].qname, to_string(cases[i].type)))
        << cases[i].qname << " " << to_string(cases[i].type);
  }
  EXPECT_NE(ours[0].find("127.0.0.5"), std::string::npos);
}

TEST(dns_transport, dnsmasq_answers_nxdomain_for_unknown_local_names) {
  std::string why;
  auto peer = start_dnsmasq(why);
  if (!peer) GTEST_SKIP() << why;
  test::run_bounded([&]() -> asio::awaitable<void> {
    const udp::endpoint server(asio::ip::address_v4::loopback(), peer->port);
    CO_ASSERT_TRUE(co_await wait_ready(server));
    auto r = co_await query(server, ask("nope.test", rtype::a), {.timeout = 2s});
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->response.rcode, rcode::nxdomain);
    auto tcp_r =
        co_await query(server, ask("www.test", rtype::a), {.timeout = 2s, .tcp_only = true});
    CO_ASSERT_OK(tcp_r);
    EXPECT_TRUE(tcp_r->used_tcp);
    CO_ASSERT_TRUE(tcp_r->response.answers.size() == 1);
    EXPECT_EQ(to_string(tcp_r->response.answers[0].data), "127.0.0.5");
  });
}

}  // namespace
}  // namespace trellis::dns
