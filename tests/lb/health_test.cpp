#include "trellis/lb/health.hpp"

#include <gtest/gtest.h>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <unistd.h>

#include "support/blackhole.hpp"
#include "support/http_server.hpp"
#include "support/loop.hpp"
#include "support/loopback_listener.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/net/error.hpp"

namespace trellis::lb {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

// --- the state machine ---------------------------------------------------------

std::string run(health_state& s, std::string_view results) {
  std::string out;
  for (char c : results) {
    switch (s.record(c == '+')) {
      case health_transition::none:
        out += '.';
        break;
      case health_transition::became_healthy:
        out += 'U';
        break;
      case health_transition::became_unhealthy:
        out += 'D';
        break;
    }
  }
  return out;
}

TEST(lb_health_state, goes_down_after_fall_failures_in_a_row) {
  health_state s(2, 3, true);
  EXPECT_EQ(run(s, "--+--+---"), "........D");
  EXPECT_FALSE(s.healthy());
  EXPECT_EQ(s.consecutive_failures(), 3u);
}

TEST(lb_health_state, comes_up_after_rise_passes_in_a_row) {
  health_state s(2, 3, true);
  run(s, "---");
  EXPECT_EQ(run(s, "+-+-++"), ".....U");
  EXPECT_TRUE(s.healthy());
  EXPECT_EQ(s.consecutive_passes(), 2u);
  EXPECT_EQ(run(s, "+++--+"), "......") << "passes beyond rise and short failure runs change nothing";
}

TEST(lb_health_state, rise_and_fall_of_one_follow_every_result) {
  health_state s(1, 1, true);
  EXPECT_EQ(run(s, "-+-+"), "DUDU");
}

TEST(lb_health_state, a_host_that_starts_unhealthy_comes_up_on_its_first_pass) {
  health_state s(3, 3, false);
  EXPECT_FALSE(s.healthy());
  EXPECT_FALSE(s.checked());
  EXPECT_EQ(run(s, "+"), "U");
  EXPECT_TRUE(s.checked());
  health_state t(3, 3, false);
  EXPECT_EQ(run(t, "-+++"), "...U") << "after a failure the full rise applies";
}

TEST(lb_health_state, built_from_options) {
  health_check_options o;
  o.rise = 1;
  o.fall = 2;
  o.start_healthy = false;
  health_state s(o);
  EXPECT_FALSE(s.healthy());
  EXPECT_EQ(run(s, "-+--"), ".U.D");
}

TEST(lb_health_options, bad_values_name_their_field) {
  auto field_of = [](health_check_options o) -> std::string {
    try {
      validate(o);
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "";
  };
  health_check_options o;
  EXPECT_EQ(field_of(o), "");
  o.rise = 0;
  EXPECT_EQ(field_of(o), "cluster.health.rise");
  o = {};
  o.fall = 0;
  EXPECT_EQ(field_of(o), "cluster.health.fall");
  o = {};
  o.interval = 0ms;
  EXPECT_EQ(field_of(o), "cluster.health.interval");
  o = {};
  o.timeout = 10s;
  EXPECT_EQ(field_of(o), "cluster.health.timeout");
  o = {};
  o.jitter = 1.5;
  EXPECT_EQ(field_of(o), "cluster.health.jitter");
  o = {};
  o.path = "health";
  EXPECT_EQ(field_of(o), "cluster.health.path");
  o = {};
  o.path = "/a b";
  EXPECT_EQ(field_of(o), "cluster.health.path");
  o = {};
  o.host_header = "a\r\nX: y";
  EXPECT_EQ(field_of(o), "cluster.health.host_header");
  o = {};
  o.expected_status_min = 99;
  EXPECT_EQ(field_of(o), "cluster.health.expected_status_min");
  o = {};
  o.expected_status_min = 300;
  o.expected_status_max = 200;
  EXPECT_EQ(field_of(o), "cluster.health.expected_status_max");
}

TEST(lb_health_check_result, describes_itself) {
  check_result r;
  r.passed = true;
  EXPECT_EQ(r.describe(), "passed");
  r.status = 204;
  EXPECT_EQ(r.describe(), "passed: status 204");
  r = {};
  r.error = net::error::timed_out;
  EXPECT_EQ(r.describe().rfind("failed: ", 0), 0u);
  EXPECT_GT(r.describe().size(), 8u);
}

// --- probes against real loopback peers -----------------------------------------

health_check_options tcp_check(std::chrono::milliseconds timeout = 2s) {
  health_check_options o;
  o.type = health_check_type::tcp;
  o.interval = 5s;
  o.timeout = timeout;
  return o;
}

health_check_options http_check(std::chrono::milliseconds timeout = 2s) {
  health_check_options o = tcp_check(timeout);
  o.type = health_check_type::http;
  o.path = "/healthz";
  return o;
}

// A port on 127.0.0.1 with nothing listening (bound then closed).
std::uint16_t closed_port() {
  std::uint16_t port = 0;
  const int fd = test::listen_on_loopback(port);
  if (fd >= 0) ::close(fd);
  return port;
}

tcp::endpoint loopback(std::uint16_t port) {
  return {asio::ip::address_v4::loopback(), port};
}

TEST(lb_health_probe, tcp_passes_when_a_connection_is_made) {
  std::uint16_t port = 0;
  const int fd = test::listen_on_loopback(port);
  ASSERT_GE(fd, 0);
  test::run_bounded([&]() -> asio::awaitable<void> {
    check_result r = co_await run_check(loopback(port), tcp_check(), "");
    EXPECT_TRUE(r.passed) << r.describe();
    EXPECT_FALSE(r.error);
  });
  ::close(fd);
}

TEST(lb_health_probe, tcp_fails_on_a_closed_port) {
  const std::uint16_t port = closed_port();
  test::run_bounded([&]() -> asio::awaitable<void> {
    check_result r = co_await run_check(loopback(port), tcp_check(), "");
    EXPECT_FALSE(r.passed);
    EXPECT_EQ(r.error, asio::error::connection_refused) << r.describe();
  });
}

TEST(lb_health_probe, tcp_times_out_on_a_host_that_never_answers) {
  test::run_bounded([&]() -> asio::awaitable<void> {
    auto hole = co_await test::blackhole::make();
    if (!hole->filled()) CO_SKIP("could not fill the listener's accept queue on this kernel");
    check_result r = co_await run_check(hole->endpoint(), tcp_check(200ms), "");
    EXPECT_FALSE(r.passed);
    EXPECT_EQ(r.error, net::error::timed_out) << r.describe();
  });
}

TEST(lb_health_probe, http_judges_the_status_and_sends_path_and_host) {
  std::atomic<int> status{200};
  std::atomic<int> requests{0};
  std::string seen_target, seen_host, seen_connection;
  std::mutex seen_mutex;
  test::test_server server([&](http::request& req, http::response& res) -> asio::awaitable<void> {
    ++requests;
    {
      std::lock_guard lock(seen_mutex);
      seen_target = std::string(req.target());
      seen_host = std::string(req.header("Host"));
      seen_connection = std::string(req.header("Connection"));
    }
    res.status = status.load();
    res.set_text("state");
    co_return;
  });
  test::run_bounded([&]() -> asio::awaitable<void> {
    const tcp::endpoint target = loopback(server.port());
    check_result ok = co_await run_check(target, http_check(), "backend.internal");
    EXPECT_TRUE(ok.passed) << ok.describe();
    EXPECT_EQ(ok.status, 200);
    status = 500;
    check_result bad = co_await run_check(target, http_check(), "backend.internal");
    EXPECT_FALSE(bad.passed);
    EXPECT_EQ(bad.status, 500);
    EXPECT_FALSE(bad.error);
    EXPECT_EQ(bad.describe(), "failed: status 500");
    status = 302;
    check_result redirect = co_await run_check(target, http_check(), "backend.internal");
    EXPECT_TRUE(redirect.passed) << "3xx is in the default expected range";
    health_check_options strict = http_check();
    strict.expected_status_max = 299;
    strict.host_header = "override.example";
    check_result narrowed = co_await run_check(target, strict, "backend.internal");
    EXPECT_FALSE(narrowed.passed);
  });
  EXPECT_EQ(requests.load(), 4);
  std::lock_guard lock(seen_mutex);
  EXPECT_EQ(seen_target, "/healthz");
  EXPECT_EQ(seen_host, "override.example");
  EXPECT_EQ(seen_connection, "close");
}

TEST(lb_health_probe, http_fails_on_a_closed_port) {
  const std::uint16_t port = closed_port();
  test::run_bounded([&]() -> asio::awaitable<void> {
    check_result r = co_await run_check(loopback(port), http_check(), "x");
    EXPECT_FALSE(r.passed);
    EXPECT_EQ(r.error, asio::error::connection_refused) << r.describe();
    EXPECT_EQ(r.status, 0);
  });
}

TEST(lb_health_probe, http_times_out_when_the_peer_accepts_but_never_answers) {
  std::uint16_t port = 0;
  const int fd = test::listen_on_loopback(port);  // the kernel accepts; nobody reads
  ASSERT_GE(fd, 0);
  test::run_bounded([&]() -> asio::awaitable<void> {
    check_result r = co_await run_check(loopback(port), http_check(200ms), "x");
    EXPECT_FALSE(r.passed);
    EXPECT_EQ(r.error, net::error::timed_out) << r.describe();
  });
  ::close(fd);
}

TEST(lb_health_probe, http_fails_on_a_garbled_answer) {
  std::uint16_t port = 0;
  const int fd = test::listen_on_loopback(port);
  ASSERT_GE(fd, 0);
  std::thread peer([fd] {
    const int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) return;
    char buf[1024];
    (void)::read(c, buf, sizeof buf);
    const char reply[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    (void)::write(c, reply, sizeof reply - 1);
    ::close(c);
  });
  test::run_bounded([&]() -> asio::awaitable<void> {
    check_result r = co_await run_check(loopback(port), http_check(), "x");
    EXPECT_FALSE(r.passed);
    EXPECT_TRUE(r.error) << r.describe();
  });
  peer.join();
  ::close(fd);
}

// --- a cluster running its own checks -------------------------------------------------

asio::awaitable<bool> eventually(std::function<bool()> pred, std::chrono::milliseconds limit = 8s) {
  for (auto waited = 0ms; waited < limit; waited += 10ms) {
    if (pred()) co_return true;
    asio::steady_timer t(co_await asio::this_coro::executor, 10ms);
    co_await t.async_wait(use_nothrow);
  }
  co_return pred();
}

TEST(lb_health_cluster, started_checks_move_a_host_out_and_back_in) {
  std::atomic<int> status{200};
  test::test_server server([&](http::request&, http::response& res) -> asio::awaitable<void> {
    res.status = status.load();
    co_return;
  });
  const std::uint16_t dead = closed_port();
  cluster_options o;
  o.name = "checked";
  o.panic_threshold = 0;
  o.health = http_check(500ms);
  o.health.interval = 30ms;
  o.health.timeout = 30ms;
  o.health.rise = 2;
  o.health.fall = 2;
  o.health.jitter = 0.5;
  const std::string live = "127.0.0.1:" + std::to_string(server.port());
  cluster c(o, {{live, 1}, {"127.0.0.1:" + std::to_string(dead), 1}});
  test::run_bounded([&]() -> asio::awaitable<void> {
    c.start(co_await asio::this_coro::executor);
    const bool dead_out = co_await eventually([&] { return c.eligible()->size() == 1; });
    CO_ASSERT_TRUE(dead_out);
    EXPECT_EQ((*c.eligible())[0].address(), live);
    auto st = c.status();
    EXPECT_FALSE(st[1].healthy);
    EXPECT_EQ(st[1].last_check.rfind("failed", 0), 0u) << st[1].last_check;

    status = 500;
    const bool live_out = co_await eventually([&] { return c.eligible()->empty(); });
    CO_ASSERT_TRUE(live_out);
    EXPECT_EQ(c.status()[0].last_check, "failed: status 500");

    const auto before = std::chrono::steady_clock::now();
    status = 200;
    const bool back = co_await eventually([&] { return c.eligible()->size() == 1; });
    CO_ASSERT_TRUE(back);
    EXPECT_GE((*c.eligible())[0].healthy_since(), before) << "stamped for slow start";
    c.stop();
  });
}

}  // namespace
}  // namespace trellis::lb
