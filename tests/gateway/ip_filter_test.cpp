// Tests of gateway::ip_filter: the allow/deny rule on IPv4, IPv6 and
// IPv4-mapped addresses, the client-ip attribute an earlier middleware
// sets, configuration errors, and the 403 answer — through http::router
// in-process (requests bound to a hand-made head and peer endpoint, as
// router_test.cpp does), and once against a real server on loopback with
// curl coming from 127.0.0.1 and from 127.0.0.2.
#include "trellis/gateway/ip_filter.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/process.hpp"
#include "support/routed.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using verdict = ip_filter::verdict;

asio::ip::address ip(std::string_view text) {
  return asio::ip::make_address(std::string(text));
}

ip_filter make(std::vector<std::string> allow, std::vector<std::string> deny) {
  ip_filter_options o;
  o.allow = std::move(allow);
  o.deny = std::move(deny);
  return ip_filter(o);
}

// Whether constructing the filter throws core::config_error naming `field`.
::testing::AssertionResult config_error_names(const ip_filter_options& o,
                                              const std::string& field) {
  try {
    ip_filter f(o);
  } catch (const core::config_error& e) {
    if (e.field() == field) return ::testing::AssertionSuccess() << e.what();
    return ::testing::AssertionFailure()
           << "config_error names field '" << e.field() << "': " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw something else: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// Records log lines while alive, and restores stderr after.
class log_capture {
 public:
  log_capture() {
    core::log::set_sink([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    });
  }
  ~log_capture() { core::log::set_sink({}); }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// Raises the log level for a scope (refusals the test is not about are
// logged at info), restoring it even when an assertion returns early.
class quiet_log {
 public:
  quiet_log() : saved_(core::log::current_level()) { core::log::set_level(core::log::level::warn); }
  ~quiet_log() { core::log::set_level(saved_); }

 private:
  core::log::level saved_;
};

// A middleware standing in for the one that reads trusted forwarding
// fields: copies the request's X-Test-Client field into an attribute.
class set_client_ip final : public http::middleware {
 public:
  explicit set_client_ip(std::string name) : name_(std::move(name)) {}
  asio::awaitable<http::filter_status> before(http::request& req, http::response&) override {
    const std::string_view v = req.header("X-Test-Client");
    if (!v.empty()) req.set_attribute(name_, v);
    co_return http::filter_status::proceed;
  }

 private:
  std::string name_;
};

using exchange = test::routed;

// Routes a GET / from `peer`, with X-Test-Client: `client` when not empty.
std::unique_ptr<exchange> send(const http::router& r, std::string_view peer,
                               std::string_view client = {}) {
  test::route_request in{.peer = {ip(peer), 40000}};
  if (!client.empty()) in.headers.emplace_back("X-Test-Client", std::string(client));
  return test::route(r, std::move(in), 2s);
}

void add_hello(http::router& r) {
  r.get("/", [](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text("hello\n");
    co_return;
  });
}

// ---------------------------------------------------------------- the rule

TEST(gateway_ip_filter, with_no_lists_lets_everyone_in) {
  const auto f = make({}, {});
  EXPECT_EQ(f.check(ip("203.0.113.9")), verdict::allowed);
  EXPECT_EQ(f.check(ip("2001:db8::1")), verdict::allowed);
}

TEST(gateway_ip_filter, deny_only_refuses_the_denied_blocks) {
  const auto f = make({}, {"203.0.113.0/24", "198.51.100.7", "2001:db8:bad::/48"});
  EXPECT_EQ(f.check(ip("203.0.113.0")), verdict::denied);
  EXPECT_EQ(f.check(ip("203.0.113.255")), verdict::denied);
  EXPECT_EQ(f.check(ip("203.0.114.0")), verdict::allowed);
  EXPECT_EQ(f.check(ip("198.51.100.7")), verdict::denied);
  EXPECT_EQ(f.check(ip("198.51.100.8")), verdict::allowed);
  EXPECT_EQ(f.check(ip("2001:db8:bad::1")), verdict::denied);
  EXPECT_EQ(f.check(ip("2001:db8:bad:ffff:ffff:ffff:ffff:ffff")), verdict::denied);
  EXPECT_EQ(f.check(ip("2001:db8:bae::1")), verdict::allowed);
}

TEST(gateway_ip_filter, allow_only_refuses_everyone_else) {
  const auto f = make({"10.0.0.0/8", "fd00::/8"}, {});
  EXPECT_EQ(f.check(ip("10.1.2.3")), verdict::allowed);
  EXPECT_EQ(f.check(ip("11.0.0.1")), verdict::not_allowed);
  EXPECT_EQ(f.check(ip("fd12:3456::1")), verdict::allowed);
  EXPECT_EQ(f.check(ip("fe80::1")), verdict::not_allowed);
  EXPECT_EQ(f.check(ip("::ffff:10.1.2.3")), verdict::allowed) << "IPv4-mapped matches IPv4";
  EXPECT_EQ(f.check(ip("::ffff:11.0.0.1")), verdict::not_allowed);
  EXPECT_EQ(f.check(ip("::a01:203")), verdict::not_allowed)
      << "an IPv4-compatible (not mapped) address is IPv6";
}

TEST(gateway_ip_filter, deny_wins_over_allow_whatever_the_order) {
  const auto f = make({"10.0.0.0/8", "10.6.6.6"}, {"10.6.6.0/24"});
  EXPECT_EQ(f.check(ip("10.1.2.3")), verdict::allowed);
  EXPECT_EQ(f.check(ip("10.6.6.6")), verdict::denied) << "even a narrower allow";
  EXPECT_EQ(f.check(ip("10.6.7.1")), verdict::allowed);
  EXPECT_EQ(f.check(ip("192.0.2.1")), verdict::not_allowed);
  EXPECT_EQ(f.check(ip("::ffff:10.6.6.1")), verdict::denied) << "mapped peers are denied too";
}

TEST(gateway_ip_filter, families_do_not_mix_beyond_mapping) {
  const auto f = make({"0.0.0.0/0"}, {});
  EXPECT_EQ(f.check(ip("192.0.2.1")), verdict::allowed);
  EXPECT_EQ(f.check(ip("2001:db8::1")), verdict::not_allowed) << "an IPv4 block holds no IPv6";
  const auto g = make({}, {"::/0"});
  EXPECT_EQ(g.check(ip("2001:db8::1")), verdict::denied);
  EXPECT_EQ(g.check(ip("192.0.2.1")), verdict::allowed) << "an IPv6 block holds no IPv4";
}

// ---------------------------------------------------------------- configuration

TEST(gateway_ip_filter_config, names_the_bad_block) {
  ip_filter_options o;
  o.allow = {"10.0.0.0/8", "192.168.0.0/16", "not-an-address"};
  EXPECT_TRUE(config_error_names(o, "ip_filter.allow[2]"));
  o.allow = {"10.0.0.0/33"};
  EXPECT_TRUE(config_error_names(o, "ip_filter.allow[0]")) << "prefix too long";
  o.allow = {};
  o.deny = {"2001:db8::/32", "10.1.0.0/8"};
  EXPECT_TRUE(config_error_names(o, "ip_filter.deny[1]")) << "bits past the prefix";
  o.deny = {"fd00::/129"};
  EXPECT_TRUE(config_error_names(o, "ip_filter.deny[0]"));
  o.deny = {""};
  EXPECT_TRUE(config_error_names(o, "ip_filter.deny[0]"));
  o.deny = {"10.0.0.0/8", "::1", "2001:db8::/32"};
  EXPECT_NO_THROW(ip_filter{o});
}

// ---------------------------------------------------------------- as middleware

TEST(gateway_ip_filter_router, answers_403_with_a_problem_and_skips_the_handler) {
  http::router r;
  r.use(std::make_shared<ip_filter>(make({}, {"192.0.2.0/24"})));
  add_hello(r);
  auto ok = send(r, "198.51.100.1");
  EXPECT_EQ(ok->res.status, 200);
  EXPECT_EQ(ok->res.body, "hello\n");

  log_capture log;
  auto refused = send(r, "192.0.2.77");
  EXPECT_EQ(refused->res.status, 403);
  EXPECT_EQ(refused->res.headers.get("Content-Type"), "application/problem+json");
  const auto body = nlohmann::json::parse(refused->res.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << refused->res.body;
  EXPECT_EQ(body["status"], 403);
  EXPECT_EQ(body["title"], "Forbidden");
  EXPECT_EQ(refused->res.body.find("192.0.2"), std::string::npos)
      << "the answer does not describe the lists";
  const auto lines = log.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("ip_filter refused"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("192.0.2.77"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("denied"), std::string::npos) << lines[0];
}

TEST(gateway_ip_filter_router, later_middleware_does_not_run_for_a_refused_request) {
  struct counter final : http::middleware {
    int* runs;
    explicit counter(int* n) : runs(n) {}
    asio::awaitable<http::filter_status> before(http::request&, http::response&) override {
      ++*runs;
      co_return http::filter_status::proceed;
    }
  };
  int runs = 0;
  http::router r;
  r.use(std::make_shared<ip_filter>(make({"127.0.0.0/8"}, {})));
  r.use(std::make_shared<counter>(&runs));
  add_hello(r);
  const quiet_log quiet;
  EXPECT_EQ(send(r, "10.0.0.1")->res.status, 403);
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(send(r, "127.0.0.1")->res.status, 200);
  EXPECT_EQ(runs, 1);
}

TEST(gateway_ip_filter_router, matches_v6_and_mapped_peers) {
  http::router r;
  r.use(std::make_shared<ip_filter>(make({"10.0.0.0/8", "2001:db8::/32"}, {})));
  add_hello(r);
  const quiet_log quiet;
  EXPECT_EQ(send(r, "2001:db8::5")->res.status, 200);
  EXPECT_EQ(send(r, "2001:db9::5")->res.status, 403);
  EXPECT_EQ(send(r, "::ffff:10.9.9.9")->res.status, 200) << "a dual-stack listener's IPv4 peer";
  EXPECT_EQ(send(r, "::ffff:11.9.9.9")->res.status, 403);
}

TEST(gateway_ip_filter_router, the_client_ip_attribute_overrides_the_peer) {
  // The peer is the trusted proxy (10.0.0.1); the attribute is the client
  // it reported.
  http::router r;
  r.use(std::make_shared<set_client_ip>("client.ip"));
  r.use(std::make_shared<ip_filter>(make({"10.0.0.0/8", "198.51.100.0/24"}, {"198.51.100.66"})));
  add_hello(r);
  log_capture log;
  EXPECT_EQ(send(r, "10.0.0.1")->res.status, 200) << "no attribute: the peer";
  EXPECT_EQ(send(r, "10.0.0.1", "198.51.100.5")->res.status, 200);
  EXPECT_EQ(send(r, "10.0.0.1", "198.51.100.66")->res.status, 403)
      << "an allowed peer does not let a denied client in";
  EXPECT_EQ(send(r, "10.0.0.1", "203.0.113.1")->res.status, 403);
  EXPECT_EQ(send(r, "203.0.113.1", "198.51.100.5")->res.status, 200)
      << "the reported client is judged, not the peer";
  EXPECT_EQ(send(r, "10.0.0.1", "::ffff:198.51.100.66")->res.status, 403);
  // Not an address: refused, never waved through on the peer's merits.
  for (const std::string_view bad :
       {"198.51.100.5:443", "[::1]", "198.51.100.5, 10.0.0.1", "unknown", "198.51.100"}) {
    EXPECT_EQ(send(r, "10.0.0.1", bad)->res.status, 403) << bad;
  }
  const auto lines = log.lines();
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_NE(lines[0].find("198.51.100.66"), std::string::npos) << lines[0];
  EXPECT_NE(lines[3].find("bad_client_ip"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("198.51.100.5:443"), std::string::npos) << lines[3];
}

TEST(gateway_ip_filter_router, the_attribute_name_is_an_option) {
  http::router r;
  ip_filter_options o;
  o.deny = {"198.51.100.0/24"};
  o.client_ip_attribute = "";  // the peer only
  o.log_refusals = false;
  r.use(std::make_shared<set_client_ip>("client.ip"));
  r.use(std::make_shared<ip_filter>(o));
  add_hello(r);
  log_capture log;
  EXPECT_EQ(send(r, "10.0.0.1", "198.51.100.5")->res.status, 200) << "attribute ignored";
  EXPECT_EQ(send(r, "198.51.100.5", "10.0.0.1")->res.status, 403);
  EXPECT_EQ(log.lines(), std::vector<std::string>{}) << "log_refusals off";

  http::router custom;
  o.client_ip_attribute = "real.ip";
  custom.use(std::make_shared<set_client_ip>("real.ip"));
  custom.use(std::make_shared<ip_filter>(o));
  add_hello(custom);
  EXPECT_EQ(send(custom, "10.0.0.1", "198.51.100.5")->res.status, 403);
}

// ---------------------------------------------------------------- end to end

TEST(gateway_ip_filter_curl, refuses_a_denied_loopback_address) {
  if (!test::program_exists("curl")) GTEST_SKIP() << "curl not installed";
  http::router r;
  r.use(std::make_shared<ip_filter>(make({"127.0.0.0/8"}, {"127.0.0.2"})));
  add_hello(r);
  const quiet_log quiet;
  test::test_server s(r.to_handler());
  const auto curl = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{"curl", "-sS", "-i", "--max-time", "10"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(s.url("/"));
    return test::run(argv, {}, 15s);
  };
  auto from_one = curl({});
  ASSERT_TRUE(from_one.status.success()) << from_one.status.describe() << ": " << from_one.err;
  auto ok = test::parse_curl(from_one.out);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "hello\n");

  auto from_two = curl({"--interface", "127.0.0.2"});
  if (!from_two.status.success())
    GTEST_SKIP() << "curl cannot bind 127.0.0.2 here (" << from_two.status.describe()
                 << "): " << from_two.err;
  auto refused = test::parse_curl(from_two.out);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.header("content-type"), "application/problem+json");
  EXPECT_EQ(refused.parsed()["status"], 403);
}

}  // namespace
}  // namespace trellis::gateway
