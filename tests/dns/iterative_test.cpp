// Iterative resolution against a local hierarchy of trellis authoritative
// servers on loopback addresses, all on one unprivileged port:
//
//   127.0.0.2  the root (".")            delegates test.
//   127.0.0.3  test.                     delegates example.test. (with glue)
//                                        and lab.test. (without glue)
//   127.0.0.4  example.test., lab.test.  the answers
#include "trellis/dns/iterative.hpp"

#include <gtest/gtest.h>

#include <asio/ip/udp.hpp>
#include <chrono>
#include <memory>
#include <thread>

#include "support/loop.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/dns/server.hpp"
#include "trellis/dns/zone.hpp"

namespace trellis::dns {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view root_zone = R"(
$ORIGIN .
$TTL 3600
@                   SOA a.root-servers.test. hostmaster.root-servers.test. 1 7200 900 1209600 60
@                   NS  a.root-servers.test.
test.               NS  ns1.test.
ns1.test.           A   127.0.0.3
a.root-servers.test. A  127.0.0.2
)";

constexpr std::string_view test_zone = R"(
$ORIGIN test.
$TTL 3600
@            SOA ns1 hostmaster 1 7200 900 1209600 60
@            NS  ns1
ns1          A   127.0.0.3
example      NS  ns1.example
ns1.example  A   127.0.0.4
lab          NS  ns.example.test.
alias        CNAME www.example.test.
)";

constexpr std::string_view example_zone = R"(
$ORIGIN example.test.
$TTL 300
@     SOA ns1 hostmaster 1 7200 900 1209600 60
@     NS  ns1
ns1   A   127.0.0.4
ns    A   127.0.0.4
www   A   127.0.0.10
web   CNAME www
loop1 CNAME loop2
loop2 CNAME loop1
)";

constexpr std::string_view lab_zone = R"(
$ORIGIN lab.test.
$TTL 300
@     SOA ns.example.test. hostmaster 1 7200 900 1209600 60
@     NS  ns.example.test.
host  A   127.0.0.20
)";

name N(std::string_view t) {
  return name::from_text(t).value();
}

std::vector<zone> zones_of(std::initializer_list<std::string_view> texts) {
  std::vector<zone> out;
  for (auto t : texts) out.push_back(zone::parse_master(t));
  return out;
}

// The three servers on one runtime, run on a background thread.
class hierarchy {
 public:
  hierarchy()
      : root_(zones_of({root_zone})),
        tld_(zones_of({test_zone})),
        leaf_(zones_of({example_zone, lab_zone})),
        rt_({.workers = 1, .drain_timeout = 3s, .handle_signals = false}) {
    auto p = root_.listen(rt_, asio::ip::make_address("127.0.0.2"), 0);
    if (!p) throw std::runtime_error("listen: " + p.error().message());
    port_ = *p;
    for (auto [srv, addr] : {std::pair{&tld_, "127.0.0.3"}, std::pair{&leaf_, "127.0.0.4"}}) {
      auto q = srv->listen(rt_, asio::ip::make_address(addr), port_);
      if (!q)
        throw std::runtime_error(std::string("listen on ") + addr + ": " + q.error().message());
    }
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~hierarchy() {
    rt_.drain();
    thread_.join();
  }

  iterative_options options(std::vector<root_hint> roots = {}) const {
    if (roots.empty()) roots = {{N("a.root-servers.test."), asio::ip::make_address("127.0.0.2")}};
    return {.roots = std::move(roots), .port = port_, .query_timeout = 2s};
  }

 private:
  server root_, tld_, leaf_;  // destroyed after the runtime
  core::runtime rt_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

iterative_result walk(const hierarchy& h, question q, iterative_options o) {
  iterative_result out;
  test::run_bounded([&]() -> asio::awaitable<void> {
    out = co_await resolve_iterative(std::move(q), std::move(o));
  });
  (void)h;
  return out;
}

using outcome = trace_step::outcome;

std::vector<outcome> outcomes(const iterative_result& r) {
  std::vector<outcome> v;
  for (const auto& s : r.trace) v.push_back(s.result);
  return v;
}

TEST(DnsIterative, FollowsReferralsFromTheRootDown) {
  hierarchy h;
  const auto r = walk(h, {N("www.example.test."), rtype::a}, h.options());
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_EQ(r.answers.size(), 1u);
  EXPECT_EQ(std::get<a_data>(r.answers[0].data).address,
            (std::array<std::uint8_t, 4>{127, 0, 0, 10}));
  ASSERT_EQ(outcomes(r), (std::vector{outcome::referral, outcome::referral, outcome::answer}));
  // Who was asked, as which zone, and what each said.
  EXPECT_EQ(r.trace[0].server.address().to_string(), "127.0.0.2");
  EXPECT_TRUE(r.trace[0].zone.is_root());
  EXPECT_EQ(r.trace[1].server.address().to_string(), "127.0.0.3");
  EXPECT_EQ(r.trace[1].zone, N("test."));
  EXPECT_EQ(r.trace[1].server_name, N("ns1.test."));
  EXPECT_EQ(r.trace[2].server.address().to_string(), "127.0.0.4");
  EXPECT_EQ(r.trace[2].zone, N("example.test."));
  EXPECT_TRUE(r.trace[2].response.aa);
  EXPECT_FALSE(r.trace[0].response.aa);  // a referral is not authoritative
  for (const auto& s : r.trace) {
    EXPECT_FALSE(s.response.rd);  // iterative queries ask with RD clear
    EXPECT_GT(s.rtt.count(), 0);
  }
}

TEST(DnsIterative, RestartsFromTheRootForAnAliasInAnotherZone) {
  hierarchy h;
  const auto r = walk(h, {N("alias.test."), rtype::a}, h.options());
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_EQ(r.answers.size(), 2u);
  EXPECT_EQ(r.answers[0].type, rtype::cname);
  EXPECT_EQ(r.answers[1].owner, N("www.example.test."));
  EXPECT_EQ(outcomes(r), (std::vector{outcome::referral, outcome::alias, outcome::referral,
                                      outcome::referral, outcome::answer}));
}

TEST(DnsIterative, UsesAnAliasChainInOneAnswer) {
  hierarchy h;
  const auto r = walk(h, {N("web.example.test."), rtype::a}, h.options());
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_EQ(r.answers.size(), 2u);
  EXPECT_EQ(r.answers[0].type, rtype::cname);
  EXPECT_EQ(r.answers[1].type, rtype::a);
  EXPECT_EQ(r.trace.size(), 3u);  // no restart: the target was in the same answer
}

TEST(DnsIterative, ResolvesAServerNameWhenAReferralHasNoGlue) {
  hierarchy h;
  const auto r = walk(h, {N("host.lab.test."), rtype::a}, h.options());
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_EQ(r.answers.size(), 1u);
  EXPECT_EQ(std::get<a_data>(r.answers[0].data).address,
            (std::array<std::uint8_t, 4>{127, 0, 0, 20}));
  // The walk for ns.example.test. is nested one level deeper.
  bool nested = false;
  for (const auto& s : r.trace)
    if (s.depth == 1) {
      nested = true;
      EXPECT_EQ(s.asked.qname, N("ns.example.test."));
    }
  EXPECT_TRUE(nested);
  EXPECT_EQ(r.trace.back().depth, 0u);
  EXPECT_EQ(r.trace.back().zone, N("lab.test."));
}

TEST(DnsIterative, ReportsNxdomainAndNodataWithTheSoa) {
  hierarchy h;
  const auto nx = walk(h, {N("nope.example.test."), rtype::a}, h.options());
  EXPECT_EQ(nx.error, error::nxdomain);
  ASSERT_FALSE(nx.final_response.authorities.empty());
  EXPECT_EQ(nx.final_response.authorities[0].type, rtype::soa);
  EXPECT_EQ(outcomes(nx).back(), outcome::nxdomain);

  const auto nodata = walk(h, {N("www.example.test."), rtype::mx}, h.options());
  EXPECT_EQ(nodata.error, error::nodata);
  EXPECT_EQ(outcomes(nodata).back(), outcome::nodata);
}

TEST(DnsIterative, StopsAnAliasLoop) {
  hierarchy h;
  const auto r = walk(h, {N("loop1.example.test."), rtype::a}, h.options());
  EXPECT_EQ(r.error, error::cname_loop);
}

TEST(DnsIterative, SkipsADeadRootForTheNextOne) {
  hierarchy h;
  // Nothing listens on 127.0.0.9: the first root fails at once (ICMP).
  auto o = h.options({{N("dead.root-servers.test."), asio::ip::make_address("127.0.0.9")},
                      {N("a.root-servers.test."), asio::ip::make_address("127.0.0.2")}});
  const auto r = walk(h, {N("www.example.test."), rtype::a}, o);
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_GE(r.trace.size(), 4u);
  EXPECT_EQ(r.trace[0].result, outcome::failed);
  EXPECT_TRUE(r.trace[0].error);
  EXPECT_EQ(r.trace[1].server.address().to_string(), "127.0.0.2");
}

TEST(DnsIterative, FailsWithoutRootsOrWhenAllServersFail) {
  hierarchy h;
  auto none = h.options();
  none.roots.clear();
  EXPECT_EQ(walk(h, {N("www.example.test."), rtype::a}, none).error, error::no_servers);

  auto dead = h.options({{N("dead."), asio::ip::make_address("127.0.0.9")}});
  dead.query_timeout = 300ms;
  const auto r = walk(h, {N("www.example.test."), rtype::a}, dead);
  EXPECT_TRUE(r.error);
  ASSERT_EQ(r.trace.size(), 1u);
  EXPECT_EQ(r.trace[0].result, outcome::failed);
}

TEST(DnsIterative, CapsTheNumberOfQueries) {
  hierarchy h;
  auto o = h.options();
  o.max_queries = 2;  // the walk needs three
  const auto r = walk(h, {N("www.example.test."), rtype::a}, o);
  EXPECT_EQ(r.error, error::servfail);
  EXPECT_EQ(r.trace.size(), 2u);
}

}  // namespace
}  // namespace trellis::dns
