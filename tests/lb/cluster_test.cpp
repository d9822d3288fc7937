#include "trellis/lb/cluster.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <set>
#include <thread>

#include "support/loop.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/dns/resolver.hpp"
#include "trellis/dns/server.hpp"
#include "trellis/dns/zone.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;

std::vector<endpoint_config> ips(int n, int first = 1) {
  std::vector<endpoint_config> out;
  for (int i = 0; i < n; ++i) out.push_back({"10.0.0." + std::to_string(first + i) + ":80", 1});
  return out;
}

cluster_options opts(manual_clock& clock) {
  cluster_options o;
  o.name = "backend";
  o.clock = clock.function();
  return o;
}

std::set<std::string> addresses(const host_set& hs) {
  std::set<std::string> out;
  for (const auto& h : hs.hosts()) out.insert(h->address());
  return out;
}

const host& host_named(const cluster& c, std::string_view address) {
  auto all = c.all_hosts();
  for (const auto& h : all->hosts())
    if (h->address() == address) return *h;
  throw std::runtime_error("no host " + std::string(address));
}

void fail(cluster& c, const host& h, int times, int status = 500) {
  response_outcome o;
  o.status = status;
  for (int i = 0; i < times; ++i) c.report(h, o);
}

check_result check(bool passed) {
  check_result r;
  r.passed = passed;
  r.status = passed ? 200 : 500;
  return r;
}

std::string config_field(cluster_options o, std::vector<endpoint_config> e) {
  try {
    cluster c(std::move(o), std::move(e));
  } catch (const core::config_error& x) {
    return x.field();
  }
  return "";
}

// --- configuration ---------------------------------------------------------

TEST(lb_cluster, parses_endpoint_addresses) {
  auto v4 = parse_endpoint("127.0.0.1:8080");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  EXPECT_TRUE(v4->is_ip);
  auto v6 = parse_endpoint("[::1]:80");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->is_ip);
  auto name = parse_endpoint("api.internal:443");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->host, "api.internal");
  EXPECT_FALSE(name->is_ip);
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                          "::1:80", "[::1]80", "[nope]:80", ":80", "a b:80", "host:8o"})
    EXPECT_FALSE(parse_endpoint(bad)) << bad;
}

TEST(lb_cluster, bad_configuration_names_the_field) {
  manual_clock clock;
  cluster_options o = opts(clock);
  EXPECT_EQ(config_field(o, ips(2)), "");
  o.name.clear();
  EXPECT_EQ(config_field(o, ips(2)), "cluster.name");
  o = opts(clock);
  EXPECT_EQ(config_field(o, {}), "cluster.endpoints");
  EXPECT_EQ(config_field(o, {{"10.0.0.1:80", 1}, {"10.0.0.2", 1}}),
            "cluster.endpoints[1].address");
  EXPECT_EQ(config_field(o, {{"10.0.0.1:80", 0}}), "cluster.endpoints[0].weight");
  o.policy = "fastest";
  EXPECT_EQ(config_field(o, ips(1)), "cluster.policy");
  o = opts(clock);
  o.policy_config.slow_start.min_weight_fraction = 2;
  EXPECT_EQ(config_field(o, ips(1)), "cluster.policy_config.slow_start.min_weight_fraction");
  o = opts(clock);
  o.health.rise = 0;
  EXPECT_EQ(config_field(o, ips(1)), "cluster.health.rise");
  o = opts(clock);
  o.outlier.max_ejection_percent = -1;
  EXPECT_EQ(config_field(o, ips(1)), "cluster.outlier.max_ejection_percent");
  o = opts(clock);
  o.panic_threshold = 1.5;
  EXPECT_EQ(config_field(o, ips(1)), "cluster.panic_threshold");
  o = opts(clock);
  o.dns_refresh_min = 0ms;
  EXPECT_EQ(config_field(o, ips(1)), "cluster.dns_refresh_min");
}

TEST(lb_cluster, a_name_endpoint_needs_a_resolver_to_start) {
  manual_clock clock;
  cluster c(opts(clock), {{"10.0.0.1:80", 1}, {"api.internal:80", 1}});
  EXPECT_EQ(c.all_hosts()->size(), 1u) << "names have no hosts before they are resolved";
  asio::io_context ctx;
  try {
    c.start(ctx.get_executor(), nullptr);
    ADD_FAILURE() << "start() without a resolver should throw";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "cluster.resolver");
  }
}

TEST(lb_cluster, static_endpoints_are_all_eligible_at_first) {
  manual_clock clock;
  cluster c(opts(clock), {{"10.0.0.1:80", 2}, {"[::1]:8080", 1}});
  EXPECT_EQ(c.name(), "backend");
  EXPECT_EQ(c.version(), 1u);
  EXPECT_FALSE(c.in_panic());
  auto hs = c.eligible();
  ASSERT_EQ(hs->size(), 2u);
  EXPECT_EQ(addresses(*hs), (std::set<std::string>{"10.0.0.1:80", "[::1]:8080"}));
  EXPECT_EQ(hs->total_weight(), 3u);
  EXPECT_EQ((*hs)[0].healthy_since(), time_point::min()) << "no slow start at start-up";
  auto st = c.status();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].address, "10.0.0.1:80");
  EXPECT_EQ(st[0].weight, 2u);
  EXPECT_TRUE(st[0].healthy);
  EXPECT_FALSE(st[0].ejected);
  EXPECT_TRUE(st[0].last_check.empty());
}

// --- outlier ejection --------------------------------------------------------

TEST(lb_cluster, consecutive_5xx_eject_a_host_until_its_time_ends) {
  manual_clock clock;
  cluster c(opts(clock), ips(3));
  const host& bad = host_named(c, "10.0.0.2:80");
  fail(c, bad, 4);
  EXPECT_EQ(c.version(), 1u) << "below the threshold nothing changes";
  fail(c, bad, 1);
  EXPECT_EQ(c.version(), 2u);
  EXPECT_EQ(addresses(*c.eligible()), (std::set<std::string>{"10.0.0.1:80", "10.0.0.3:80"}));
  auto st = c.status();
  EXPECT_TRUE(st[1].ejected);
  EXPECT_FALSE(st[1].eligible);
  EXPECT_EQ(st[1].ejections, 1u);
  ASSERT_TRUE(st[1].ejected_until);
  EXPECT_EQ(*st[1].ejected_until, clock.now() + 30s);

  clock.advance(30s - 1ms);
  EXPECT_EQ(c.eligible()->size(), 2u);
  EXPECT_EQ(c.version(), 2u);
  clock.advance(1ms);
  EXPECT_EQ(c.eligible()->size(), 3u) << "eligible() notices the ejection ended";
  EXPECT_EQ(c.version(), 3u);
  EXPECT_EQ(bad.healthy_since(), clock.now()) << "stamped for slow start on its return";
}

TEST(lb_cluster, repeated_ejections_last_longer_and_the_multiplier_decays) {
  manual_clock clock;
  cluster c(opts(clock), ips(3));
  const host& bad = host_named(c, "10.0.0.1:80");
  for (int n = 1; n <= 3; ++n) {
    fail(c, bad, 5);
    auto st = c.status();
    ASSERT_TRUE(st[0].ejected_until) << "ejection " << n;
    EXPECT_EQ(*st[0].ejected_until, clock.now() + n * 30s) << "ejection " << n;
    clock.advance(n * 30s);
    c.refresh();
  }
  EXPECT_EQ(c.status()[0].ejection_multiplier, 3u);
  clock.advance(25s);  // two whole decay intervals in rotation
  EXPECT_EQ(c.status()[0].ejection_multiplier, 1u);
  fail(c, bad, 5);
  EXPECT_EQ(*c.status()[0].ejected_until, clock.now() + 60s);
  EXPECT_EQ(c.status()[0].ejections, 4u);
}

TEST(lb_cluster, a_success_resets_the_count) {
  manual_clock clock;
  cluster c(opts(clock), ips(3));
  const host& h = host_named(c, "10.0.0.1:80");
  fail(c, h, 4);
  EXPECT_EQ(c.status()[0].consecutive_failures, 4u);
  c.report(h, {.latency = 1ms, .status = 200, .retry_after = {}});
  EXPECT_EQ(c.status()[0].consecutive_failures, 0u);
  fail(c, h, 4);
  EXPECT_FALSE(c.status()[0].ejected);
}

TEST(lb_cluster, max_ejection_percent_caps_how_many_hosts_are_out) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.outlier.max_ejection_percent = 20;  // 2 of 10
  cluster c(o, ips(10));
  for (int i = 1; i <= 4; ++i) fail(c, host_named(c, "10.0.0." + std::to_string(i) + ":80"), 5);
  EXPECT_EQ(c.eligible()->size(), 8u);
  EXPECT_EQ(c.version(), 3u) << "two ejections, two bumps";
  auto st = c.status();
  EXPECT_EQ(std::count_if(st.begin(), st.end(), [](const auto& s) { return s.ejected; }), 2);
  // Host 3, kept in by the cap, goes on its next failure once there is room.
  clock.advance(30s);
  EXPECT_EQ(c.eligible()->size(), 10u);
  fail(c, host_named(c, "10.0.0.3:80"), 1);
  EXPECT_TRUE(c.status()[2].ejected);
}

TEST(lb_cluster, small_clusters_can_always_eject_one_host) {
  manual_clock clock;
  cluster c(opts(clock), ips(3));  // 10 % of 3 rounds to 0
  fail(c, host_named(c, "10.0.0.1:80"), 5);
  fail(c, host_named(c, "10.0.0.2:80"), 5);
  EXPECT_EQ(c.eligible()->size(), 2u);
}

TEST(lb_cluster, reports_for_unknown_hosts_are_ignored) {
  manual_clock clock;
  cluster c(opts(clock), ips(2));
  host stranger("10.9.9.9:80");
  fail(c, stranger, 10);
  c.report_check(stranger, check(false));
  EXPECT_EQ(c.version(), 1u);
}

TEST(lb_cluster, outlier_detection_can_be_turned_off) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.outlier.enabled = false;
  cluster c(o, ips(2));
  fail(c, host_named(c, "10.0.0.1:80"), 50, 0);
  EXPECT_EQ(c.eligible()->size(), 2u);
  EXPECT_EQ(c.version(), 1u);
}

// --- panic ------------------------------------------------------------------

TEST(lb_cluster, panics_below_the_threshold_and_recovers_above_it) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.outlier.max_ejection_percent = 100;
  cluster c(o, ips(10));
  for (int i = 1; i <= 5; ++i) fail(c, host_named(c, "10.0.0." + std::to_string(i) + ":80"), 5);
  EXPECT_FALSE(c.in_panic()) << "5 of 10 is not below 50 %";
  EXPECT_EQ(c.eligible()->size(), 5u);
  EXPECT_EQ(c.version(), 6u);

  clock.advance(10s);
  fail(c, host_named(c, "10.0.0.6:80"), 5);  // 4 of 10 left
  EXPECT_TRUE(c.in_panic());
  EXPECT_EQ(c.eligible()->size(), 10u) << "panic offers every host";
  EXPECT_EQ(c.version(), 7u);
  auto snap = c.eligible_snapshot();
  EXPECT_TRUE(snap.panic);
  EXPECT_EQ(snap.version, 7u);

  fail(c, host_named(c, "10.0.0.7:80"), 5);
  EXPECT_TRUE(c.status()[6].ejected);
  EXPECT_EQ(c.version(), 7u) << "an ejection in panic leaves the offered set as it was";

  clock.advance(20s);  // hosts 1-5 return; 6 and 7 are still out
  EXPECT_EQ(addresses(*c.eligible()).size(), 8u);
  EXPECT_FALSE(c.in_panic());
  EXPECT_EQ(addresses(*c.eligible()).count("10.0.0.6:80"), 0u);
  EXPECT_EQ(c.version(), 8u);
}

TEST(lb_cluster, panic_threshold_zero_serves_from_what_is_left) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.panic_threshold = 0;
  cluster c(o, ips(1));
  fail(c, host_named(c, "10.0.0.1:80"), 5);
  EXPECT_FALSE(c.in_panic());
  EXPECT_TRUE(c.eligible()->empty());
}

// --- active health state ----------------------------------------------------

TEST(lb_cluster, health_checks_take_a_host_out_after_fall_and_back_after_rise) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.health.type = health_check_type::tcp;  // checks fed by hand: start() is not called
  cluster c(o, ips(3));
  const host& h = host_named(c, "10.0.0.3:80");
  c.report_check(h, check(false));
  c.report_check(h, check(false));
  EXPECT_EQ(c.version(), 1u);
  c.report_check(h, check(false));
  EXPECT_EQ(c.version(), 2u);
  EXPECT_EQ(c.eligible()->size(), 2u);
  auto st = c.status()[2];
  EXPECT_FALSE(st.healthy);
  EXPECT_EQ(st.last_check, "failed: status 500");

  clock.advance(5s);
  c.report_check(h, check(true));
  EXPECT_EQ(c.eligible()->size(), 2u);
  c.report_check(h, check(true));
  EXPECT_EQ(c.eligible()->size(), 3u);
  EXPECT_EQ(c.version(), 3u);
  EXPECT_EQ(h.healthy_since(), clock.now());
  EXPECT_EQ(c.status()[2].last_check, "passed: status 200");
}

TEST(lb_cluster, an_ejected_host_that_passes_checks_stays_out_until_its_time_ends) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.health.type = health_check_type::tcp;
  o.health.fall = 1;
  o.health.rise = 1;
  cluster c(o, ips(3));
  const host& h = host_named(c, "10.0.0.1:80");
  fail(c, h, 5);
  c.report_check(h, check(false));
  c.report_check(h, check(true));
  EXPECT_EQ(c.eligible()->size(), 2u);
  clock.advance(30s);
  EXPECT_EQ(c.eligible()->size(), 3u);
  EXPECT_EQ(h.healthy_since(), clock.now());
}

TEST(lb_cluster, hosts_that_start_unhealthy_wait_for_their_first_check) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.health.type = health_check_type::http;
  o.health.start_healthy = false;
  cluster c(o, ips(3));
  EXPECT_TRUE(c.eligible()->empty());
  EXPECT_FALSE(c.in_panic()) << "unchecked hosts do not count towards panic";
  c.report_check(host_named(c, "10.0.0.1:80"), check(true));  // one pass suffices the first time
  EXPECT_EQ(addresses(*c.eligible()), (std::set<std::string>{"10.0.0.1:80"}));
  EXPECT_FALSE(c.in_panic()) << "1 of 1 checked host is eligible";
  c.report_check(host_named(c, "10.0.0.2:80"), check(false));
  EXPECT_EQ(c.eligible()->size(), 1u);
  EXPECT_FALSE(c.in_panic()) << "1 of 2 checked hosts";
}

// --- balancer ------------------------------------------------------------------

TEST(lb_balancer, picks_round_robin_over_eligible_hosts) {
  manual_clock clock;
  auto c = std::make_shared<cluster>(opts(clock), ips(3));
  balancer b(c, 1);
  std::map<std::string, int> seen;
  for (int i = 0; i < 30; ++i) ++seen[b.pick()->address()];
  EXPECT_EQ(seen, (std::map<std::string, int>{{"10.0.0.1:80", 10}, {"10.0.0.2:80", 10},
                                              {"10.0.0.3:80", 10}}));
  EXPECT_EQ(b.rebuilds(), 1u);
  EXPECT_EQ(b.version(), 1u);
  EXPECT_EQ(&b.owner(), c.get());
}

TEST(lb_balancer, rebuilds_when_the_version_changes_and_never_picks_an_ejected_host) {
  manual_clock clock;
  auto c = std::make_shared<cluster>(opts(clock), ips(3));
  balancer b(c, 1);
  ASSERT_NE(b.pick(), nullptr);
  const host& bad = host_named(*c, "10.0.0.2:80");
  response_outcome err;
  err.status = 503;
  for (int i = 0; i < 5; ++i) b.observe(bad, err);  // the policy's view and the cluster's
  EXPECT_EQ(bad.recent_failures(), 5u);
  for (int i = 0; i < 20; ++i) EXPECT_NE(b.pick(), &bad);
  EXPECT_EQ(b.rebuilds(), 2u);
  EXPECT_EQ(b.version(), c->version());
  for (int i = 0; i < 20; ++i) b.pick();
  EXPECT_EQ(b.rebuilds(), 2u) << "no change, no rebuild";

  clock.advance(30s);
  c->refresh();
  std::set<const host*> seen;
  for (int i = 0; i < 6; ++i) seen.insert(b.pick());
  EXPECT_TRUE(seen.count(&bad)) << "back in rotation after the ejection";
  EXPECT_EQ(b.rebuilds(), 3u);
}

TEST(lb_balancer, notices_an_ejection_ending_when_nothing_is_left_to_pick) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.panic_threshold = 0;
  auto c = std::make_shared<cluster>(o, ips(1));
  balancer b(c, 1);
  const host* only = b.pick();
  ASSERT_NE(only, nullptr);
  fail(*c, *only, 5, 0);
  EXPECT_EQ(b.pick(), nullptr);
  clock.advance(30s);  // nobody calls eligible() or report(): the pick itself refreshes
  EXPECT_EQ(b.pick(), only);
}

TEST(lb_balancer, respects_exclusions_and_the_cluster_policy) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.policy = "least_request";
  auto c = std::make_shared<cluster>(o, ips(2));
  balancer b(c, 7);
  const host* first = b.pick();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(b.current_policy()->name(), "least_request");
  const host* const excluded[] = {first};
  request_context ctx;
  ctx.exclude = excluded;
  for (int i = 0; i < 10; ++i) EXPECT_NE(b.pick(ctx), first);
}

TEST(lb_balancer, many_workers_share_one_cluster) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.outlier.max_ejection_percent = 50;
  o.panic_threshold = 0;
  auto c = std::make_shared<cluster>(o, ips(4));
  const host& bad = host_named(*c, "10.0.0.4:80");
  std::vector<std::thread> workers;
  std::atomic<int> bad_after_ejection{0};
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&, w] {
      balancer b(c, static_cast<std::uint64_t>(w + 1));
      response_outcome ok;
      ok.status = 200;
      response_outcome err;
      err.status = 502;
      for (int i = 0; i < 2000; ++i) {
        const std::uint64_t v = c->version();
        const host* h = b.pick();
        if (h == nullptr) continue;
        if (h == &bad && v > 1 && c->version() == v) ++bad_after_ejection;
        b.observe(*h, h == &bad ? err : ok);
      }
    });
  for (auto& t : workers) t.join();
  EXPECT_EQ(c->version(), 2u) << "ejected once; never returned (time stands still)";
  EXPECT_TRUE(c->status()[3].ejected);
  EXPECT_EQ(bad_after_ejection.load(), 0);
}

// --- background work -------------------------------------------------------------

TEST(lb_cluster, stop_ends_every_background_coroutine) {
  manual_clock clock;
  cluster_options o = opts(clock);
  o.health.type = health_check_type::tcp;
  o.health.interval = 20ms;
  o.health.timeout = 20ms;
  cluster c(o, {{"127.0.0.1:1", 1}, {"127.0.0.1:2", 1}});
  asio::io_context ctx;
  c.start(ctx.get_executor());
  c.start(ctx.get_executor());  // a second start is a no-op
  ctx.run_for(100ms);
  EXPECT_FALSE(ctx.stopped()) << "checks keep the context busy while started";
  c.stop();
  ctx.restart();
  ctx.run_for(5s);
  EXPECT_TRUE(ctx.stopped()) << "after stop() the context runs out of work";
  for (const auto& s : c.status()) EXPECT_FALSE(s.last_check.empty());
}

TEST(lb_cluster, may_outlive_the_context_it_was_started_on) {
  manual_clock clock;
  auto c = std::make_unique<cluster>(opts(clock), ips(2));
  {
    asio::io_context ctx;
    c->start(ctx.get_executor());
    ctx.run_for(10ms);
  }
  c.reset();  // stop() must not post to the destroyed context
  SUCCEED();
}

// --- DNS endpoints -----------------------------------------------------------------

// An authoritative server for `zone_text` on 127.0.0.1, on its own
// one-worker runtime and thread.
class zone_server {
 public:
  explicit zone_server(std::string_view zone_text)
      : srv_(make_zones(zone_text)),
        rt_({.workers = 1, .drain_timeout = 2s, .handle_signals = false}) {
    auto p = srv_.listen(rt_, asio::ip::address_v4::loopback(), 0);
    if (!p) throw std::runtime_error("listen failed: " + p.error().message());
    port_ = *p;
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~zone_server() { stop(); }
  asio::ip::udp::endpoint endpoint() const { return {asio::ip::address_v4::loopback(), port_}; }
  void stop() {
    rt_.drain();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static std::vector<dns::zone> make_zones(std::string_view text) {
    std::vector<dns::zone> z;
    z.push_back(dns::zone::parse_master(text, "test.zone"));
    return z;
  }
  dns::server srv_;  // destroyed after the runtime
  core::runtime rt_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

std::string zone_with(std::initializer_list<const char*> ips) {
  std::string z =
      "$ORIGIN example.\n$TTL 0\n"
      "@ IN SOA ns.example. admin.example. 1 3600 600 86400 0\n";
  for (const char* ip : ips) z += std::string("svc IN A ") + ip + "\n";
  return z;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_nothrow);
}

// Polls `pred` every 10 ms for up to `limit`; returns its last value.
asio::awaitable<bool> eventually(std::function<bool()> pred,
                                 std::chrono::milliseconds limit = 8s) {
  for (auto waited = 0ms; waited < limit; waited += 10ms) {
    if (pred()) co_return true;
    co_await pause(10ms);
  }
  co_return pred();
}

TEST(lb_cluster, name_endpoints_follow_dns_and_keep_the_hosts_that_stay) {
  // Two authoritative servers with different answers for svc.example: the
  // resolver asks the first; once it is stopped, the second answers.
  zone_server first(zone_with({"127.0.0.1", "127.0.0.2"}));
  zone_server second(zone_with({"127.0.0.2", "127.0.0.3"}));
  manual_clock clock;
  test::run_bounded(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        dns::resolver_options ro;
        ro.conf.nameservers = {first.endpoint(), second.endpoint()};
        ro.conf.timeout = 300ms;
        ro.conf.attempts = 1;
        ro.use_cache = false;
        dns::resolver resolver(ex, ro);

        cluster_options o = opts(clock);
        o.dns_refresh_min = 20ms;  // TTL 0: re-resolve at the floor
        cluster c(o, {{"10.1.1.1:80", 1}, {"svc.example:8080", 3}});
        EXPECT_EQ(c.all_hosts()->size(), 1u);
        c.start(ex, &resolver);

        const bool resolved = co_await eventually([&] { return c.all_hosts()->size() == 3; });
        CO_ASSERT_TRUE(resolved);
        EXPECT_EQ(addresses(*c.all_hosts()),
                  (std::set<std::string>{"10.1.1.1:80", "127.0.0.1:8080", "127.0.0.2:8080"}));
        EXPECT_EQ(c.eligible()->size(), 3u);
        EXPECT_EQ(host_named(c, "127.0.0.2:8080").weight(), 3u);
        EXPECT_EQ(host_named(c, "127.0.0.1:8080").healthy_since(), time_point::min())
            << "the first resolution is the cluster's start: no slow start";
        const std::uint64_t version = c.version();
        const host* kept = &host_named(c, "127.0.0.2:8080");
        host_set_ptr pin = c.all_hosts();  // keeps the host objects alive for the comparison
        kept->begin_request();

        clock.advance(1min);
        first.stop();
        const bool moved = co_await eventually([&] {
          return addresses(*c.all_hosts()).count("127.0.0.3:8080") == 1 &&
                 addresses(*c.all_hosts()).count("127.0.0.1:8080") == 0;
        });
        CO_ASSERT_TRUE(moved);
        EXPECT_EQ(c.all_hosts()->size(), 3u);
        EXPECT_EQ(&host_named(c, "127.0.0.2:8080"), kept) << "a host that stays is the same object";
        EXPECT_EQ(kept->active_requests(), 1u);
        EXPECT_EQ(host_named(c, "127.0.0.3:8080").healthy_since(), clock.now())
            << "a host added later ramps in with slow start";
        EXPECT_GT(c.version(), version);
        EXPECT_EQ(addresses(*c.eligible()),
                  (std::set<std::string>{"10.1.1.1:80", "127.0.0.2:8080", "127.0.0.3:8080"}));
        kept->end_request();

        // Every server gone: resolution fails, the last good set stays.
        second.stop();
        const std::uint64_t before = c.version();
        co_await pause(400ms);
        EXPECT_EQ(c.version(), before);
        EXPECT_EQ(c.all_hosts()->size(), 3u);
        c.stop();
      },
      20s);
}

}  // namespace
}  // namespace trellis::lb
