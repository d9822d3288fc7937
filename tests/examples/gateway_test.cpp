// Tests of the trellis-gateway example as a real process: the embedded
// demo configuration checks, tokens it issues verify, a bad configuration
// is refused naming the field, SIGHUP reloads the --config file (a good
// one takes over; a bad one is refused and the old one keeps serving;
// reloads under load fail no request), an HTTPS listener serves with its
// certificate, the admin dashboard's data follow live traffic, two
// gateway processes enforce one rate limit kept in a real Redis, and a
// browser calling the gateway from a page is allowed or blocked by its
// origin.
// Upstreams are trellis test servers on 127.0.0.1; requests go through
// curl, load through wrk.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/browser.hpp"
#include "support/certs.hpp"
#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/nginx_server.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/wrk.hpp"
#include "trellis/codec/base64.hpp"
#include "trellis/http/json.hpp"
#include "trellis/http/router.hpp"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string gateway_bin = std::string(TRELLIS_BIN_DIR) + "/trellis-gateway";

class GatewayExample : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(gateway_bin.c_str(), X_OK) != 0)
      GTEST_SKIP() << gateway_bin << " is not built (configure with TRELLIS_BUILD_EXAMPLES=ON)";
    if (!test::program_exists("curl"))
      GTEST_SKIP() << "needs the `curl` program on PATH (Debian package curl)";
  }
};

// An upstream that names itself in its body.
http::handler named(std::string name) {
  return [name](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text(name + "\n");
    co_return;
  };
}

// A configuration with one open route to `port`, on listener `listen`.
json config(std::uint16_t listen, std::uint16_t port) {
  json j = json::parse(R"({"listeners": [{"address": ""}],
    "clusters": [{"name": "svc", "endpoints": []}],
    "routes": [{"name": "all", "path": "/*", "cluster": "svc"}]})");
  j["listeners"][0]["address"] = "127.0.0.1:" + std::to_string(listen);
  j["clusters"][0]["endpoints"].push_back("127.0.0.1:" + std::to_string(port));
  return j;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string curl_body(std::uint16_t port, const std::string& path) {
  const auto r = test::run(
      {"curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + std::to_string(port) + path}, {},
      20s);
  return r.out;
}

TEST_F(GatewayExample, the_embedded_demo_configuration_checks) {
  const auto r = test::run({gateway_bin, "--check"}, {}, 20s);
  EXPECT_TRUE(r.status.success()) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok: 1 listener(s), 3 cluster(s), 4 route(s)"));
}

TEST_F(GatewayExample, issues_a_token_for_the_demo) {
  const auto r =
      test::run({gateway_bin, "--issue-token", "alice", "--scope", "users:read"}, {}, 20s);
  ASSERT_TRUE(r.status.success()) << r.err;
  std::string token = r.out;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  ASSERT_NE(second, std::string::npos) << token;
  auto payload = codec::base64_decode(token.substr(first + 1, second - first - 1),
                                      {.alphabet = codec::base64_alphabet::url, .padding = false});
  ASSERT_TRUE(payload);
  const auto claims = json::parse(*payload);
  EXPECT_EQ(claims["sub"], "alice");
  EXPECT_EQ(claims["scope"], "users:read");
  EXPECT_EQ(claims["iss"], "trellis-demo");
  EXPECT_GT(claims["exp"].get<long long>(), claims["iat"].get<long long>());
}

TEST_F(GatewayExample, a_bad_configuration_is_refused_naming_the_field) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("gw-bad-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  json j = config(test::free_port(), 1);
  j["routes"][0]["rate_limit"] = "missing";
  write((dir / "g.json").string(), j.dump());
  const auto r = test::run({gateway_bin, "--config", (dir / "g.json").string()}, {}, 20s);
  EXPECT_EQ(r.status.code, 2);
  EXPECT_THAT(r.err, HasSubstr("routes[0].rate_limit"));
  std::filesystem::remove_all(dir);
}

TEST_F(GatewayExample, sighup_reloads_the_config_file_and_refuses_a_bad_one) {
  test::test_server a(named("a")), b(named("b"));
  const auto dir =
      std::filesystem::temp_directory_path() / ("gw-hup-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "g.json").string();
  const auto port = test::free_port();
  write(file, config(port, a.port()).dump());
  test::process gw({gateway_bin, "--config", file});
  ASSERT_TRUE(gw.wait_for_output("listening", 10s, /*from_stderr=*/true)) << gw.err();
  EXPECT_EQ(curl_body(port, "/x"), "a\n");

  write(file, config(port, b.port()).dump());
  ::kill(gw.pid(), SIGHUP);
  ASSERT_TRUE(gw.wait_for_output("configuration reloaded", 10s, true)) << gw.err();
  EXPECT_EQ(curl_body(port, "/x"), "b\n");

  json bad = config(port, a.port());
  bad["routes"][0]["helth"] = true;
  write(file, bad.dump());
  ::kill(gw.pid(), SIGHUP);
  ASSERT_TRUE(gw.wait_for_output("reload refused", 10s, true)) << gw.err();
  EXPECT_THAT(gw.err(), HasSubstr("routes[0].helth"));
  EXPECT_EQ(curl_body(port, "/x"), "b\n") << "the running configuration stays";

  gw.terminate();
  const auto ended = gw.wait_for(10s);
  ASSERT_TRUE(ended);
  EXPECT_TRUE(ended->success()) << gw.err();
  std::filesystem::remove_all(dir);
}

// A scratch directory for one test's files, removed at the end.
struct scratch {
  std::filesystem::path dir;
  explicit scratch(const std::string& name)
      : dir(std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir);
  }
  ~scratch() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

TEST_F(GatewayExample, reloads_under_load_fail_no_request) {
  if (!test::program_exists("wrk")) GTEST_SKIP() << "needs the `wrk` program (Debian package wrk)";
  test::test_server a(named("a")), b(named("b"));
  scratch tmp("gw-hup-load");
  const std::string file = tmp.file("g.json");
  const auto port = test::free_port();
  write(file, config(port, a.port()).dump());
  test::process gw({gateway_bin, "--config", file});
  ASSERT_TRUE(gw.wait_for_output("listening", 10s, /*from_stderr=*/true)) << gw.err();

  // 8 keep-alive connections for 4 s (bounded by wrk itself, and by the
  // wait below), while the configuration flips between two upstreams
  // six times: each reload builds a new set of clusters and pools, and
  // requests in flight finish on the set they started with.
  test::process wrk(
      {"wrk", "-t1", "-c8", "-d4s", "http://127.0.0.1:" + std::to_string(port) + "/"});
  int reloads = 0;
  for (int i = 1; i <= 6; ++i) {
    std::this_thread::sleep_for(400ms);
    write(file, config(port, i % 2 == 1 ? b.port() : a.port()).dump());
    ::kill(gw.pid(), SIGHUP);
    ++reloads;
  }
  const auto done = wrk.wait_for(30s);
  ASSERT_TRUE(done) << "wrk did not finish";
  EXPECT_TRUE(done->success()) << wrk.err();
  const auto s = test::parse_wrk(wrk.out());
  EXPECT_GT(s.requests, 0) << wrk.out();
  EXPECT_FALSE(s.socket_errors) << wrk.out();
  EXPECT_FALSE(s.non_2xx) << wrk.out();
  // Every reload took (a refused one would leave the count short), and the
  // last configuration, back on `a`, serves.
  auto reloaded = [&] {
    std::size_t n = 0;
    const std::string err = gw.err();
    for (auto at = err.find("configuration reloaded"); at != std::string::npos;
         at = err.find("configuration reloaded", at + 1))
      ++n;
    return n;
  };
  for (int i = 0; i < 100 && reloaded() < static_cast<std::size_t>(reloads); ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(reloaded(), static_cast<std::size_t>(reloads)) << gw.err();
  EXPECT_EQ(curl_body(port, "/x"), "a\n");

  gw.terminate();
  const auto ended = gw.wait_for(10s);
  ASSERT_TRUE(ended);
  EXPECT_TRUE(ended->success()) << gw.err();
}

TEST_F(GatewayExample, serves_https_on_a_tls_listener) {
  REQUIRE_OPENSSL();
  test::test_server a(named("a"));
  const auto& pki = test::test_pki();
  scratch tmp("gw-tls");
  const auto port = test::free_port();
  json j = config(port, a.port());
  j["listeners"][0]["tls"] = {{"cert", pki.server.cert_file}, {"key", pki.server.key_file}};
  write(tmp.file("g.json"), j.dump());
  test::process gw({gateway_bin, "--config", tmp.file("g.json")});
  ASSERT_TRUE(gw.wait_for_output("listening", 10s, /*from_stderr=*/true)) << gw.err();
  EXPECT_THAT(gw.err(), HasSubstr("tls=true"));

  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/x";
  const auto ok =
      test::run({"curl", "-sS", "--max-time", "10", "--cacert", pki.ca_file, url}, {}, 20s);
  EXPECT_TRUE(ok.status.success()) << ok.err;
  EXPECT_EQ(ok.out, "a\n");
  // A client that does not trust the certificate's issuer refuses it.
  const auto untrusted = test::run({"curl", "-sS", "--max-time", "10", url}, {}, 20s);
  EXPECT_FALSE(untrusted.status.success()) << untrusted.out;
  // Plain HTTP to the TLS port is not answered as HTTP.
  const auto plain = test::run(
      {"curl", "-sS", "--max-time", "10", "http://127.0.0.1:" + std::to_string(port) + "/x"}, {},
      20s);
  EXPECT_NE(plain.out, "a\n");

  gw.terminate();
  ASSERT_TRUE(gw.wait_for(10s));
}

TEST_F(GatewayExample, the_admin_dashboard_follows_live_traffic) {
  test::test_server a(named("a"));
  scratch tmp("gw-dash");
  const auto port = test::free_port();
  const auto admin = test::free_port();
  json j = config(port, a.port());
  j["admin"] = "127.0.0.1:" + std::to_string(admin);
  write(tmp.file("g.json"), j.dump());
  test::process gw({gateway_bin, "--config", tmp.file("g.json")});
  ASSERT_TRUE(gw.wait_for_output("admin listening", 10s, /*from_stderr=*/true)) << gw.err();

  const auto page = test::run({"curl", "-sS", "-i", "--max-time", "10",
                               "http://127.0.0.1:" + std::to_string(admin) + "/dashboard"},
                              {}, 20s);
  EXPECT_THAT(page.out, HasSubstr("Content-Type: text/html"));
  EXPECT_THAT(page.out, HasSubstr("Content-Security-Policy: default-src 'none'"));

  // Traffic, then samples: within a few sampling intervals one of them
  // has seen it (bounded: 50 polls of 200 ms).
  for (int i = 0; i < 20; ++i) EXPECT_EQ(curl_body(port, "/x"), "a\n");
  json data;
  double seen = 0;
  for (int i = 0; i < 50 && seen == 0; ++i) {
    std::this_thread::sleep_for(200ms);
    data = json::parse(curl_body(admin, "/dashboard/data"), nullptr, /*allow_exceptions=*/false);
    if (!data.is_object()) continue;
    for (const auto& s : data["samples"]) seen += s["by_class"]["2xx"].get<double>();
  }
  EXPECT_GT(seen, 0) << data.dump();
  ASSERT_TRUE(data.is_object());
  EXPECT_EQ(data["interval_ms"], 1000);
  ASSERT_EQ(data["clusters"].size(), 1u) << data.dump();
  EXPECT_EQ(data["clusters"][0]["name"], "svc");
  EXPECT_EQ(data["clusters"][0]["total"], 1);
  ASSERT_EQ(data["routes"].size(), 1u);
  EXPECT_EQ(data["routes"][0]["requests"], 20);

  // The page itself, in a real browser, on the gateway's own data and
  // under its Content-Security-Policy: it renders the samples, shows the
  // cluster, and logs nothing (no error, no refused resource).
  if (test::find_browser()) {
    const std::string dir = test::make_temp_dir("gw-dash-shot");
    test::browser_options bo;
    bo.virtual_time = 3000ms;
    bo.screenshot = dir + "/dashboard.png";
    const auto shown =
        test::load_page("http://127.0.0.1:" + std::to_string(admin) + "/dashboard", bo);
    EXPECT_TRUE(shown.finished()) << shown.describe();
    EXPECT_EQ(test::body_attribute(shown.dom, "data-rendered").value_or(""), "true")
        << shown.describe();
    EXPECT_GT(std::stoi(test::body_attribute(shown.dom, "data-samples").value_or("0")), 0);
    EXPECT_THAT(shown.dom, HasSubstr("127.0.0.1:" + std::to_string(a.port())));
    EXPECT_TRUE(shown.console.empty()) << shown.describe();
    EXPECT_TRUE(std::filesystem::file_size(bo.screenshot) > 10'000) << bo.screenshot;
    std::cout << "dashboard screenshot: " << bo.screenshot << "\n";
  }

  gw.terminate();
  ASSERT_TRUE(gw.wait_for(10s));
}

TEST_F(GatewayExample, two_gateways_enforce_one_limit_kept_in_redis) {
  REQUIRE_REDIS();
  test::redis_server redis;
  test::test_server a(named("a"));
  scratch tmp("gw-redis");
  // 30 per hour with a burst of 30: a token comes back every 2 minutes,
  // so during the test exactly 30 requests fit, wherever they arrive.
  auto with_limit = [&](std::uint16_t listen) {
    json j = config(listen, a.port());
    j["redis"] = {{"address", "127.0.0.1:" + std::to_string(redis.port())}};
    j["rate_limits"] = {
        {"shared",
         {{"policies", {{{"name", "hourly"}, {"limit", 30}, {"period", "1h"}, {"burst", 30}}}},
          {"key", "header:X-Client"},
          {"store", "redis"}}}};
    j["routes"][0]["rate_limit"] = "shared";
    return j;
  };
  const std::uint16_t ports[2] = {test::free_port(), test::free_port()};
  write(tmp.file("g1.json"), with_limit(ports[0]).dump());
  write(tmp.file("g2.json"), with_limit(ports[1]).dump());
  test::process g1({gateway_bin, "--config", tmp.file("g1.json")});
  test::process g2({gateway_bin, "--config", tmp.file("g2.json")});
  ASSERT_TRUE(g1.wait_for_output("listening", 10s, /*from_stderr=*/true)) << g1.err();
  ASSERT_TRUE(g2.wait_for_output("listening", 10s, /*from_stderr=*/true)) << g2.err();

  // 40 requests at each gateway at once, 10 in parallel per gateway, all
  // from one client.
  auto hammer = [&](std::uint16_t port) {
    std::vector<std::string> argv = {
        "curl",     "-sS", "--max-time",      "20", "--parallel",      "--parallel-max",
        "10",       "-H",  "X-Client: alice", "-w", "%{http_code}\\n", "-o",
        "/dev/null"};
    for (int i = 0; i < 40; ++i) {
      argv.push_back("http://127.0.0.1:" + std::to_string(port) + "/x");
      if (i + 1 < 40) argv.push_back("-o"), argv.push_back("/dev/null");
    }
    return std::make_unique<test::process>(argv);
  };
  auto c1 = hammer(ports[0]);
  auto c2 = hammer(ports[1]);
  int admitted = 0, refused = 0, other = 0;
  for (auto* c : {c1.get(), c2.get()}) {
    ASSERT_TRUE(c->wait_for(30s)) << "curl did not finish";
    std::istringstream lines(c->out());
    for (std::string code; std::getline(lines, code);) {
      if (code == "200")
        ++admitted;
      else if (code == "429")
        ++refused;
      else
        ++other;
    }
  }
  EXPECT_EQ(admitted, 30) << "the sum over both gateways is the one limit";
  EXPECT_EQ(refused, 50);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(redis.cli({"EXISTS", "trellis:rl:hourly:hdr:alice"}).out, "1\n")
      << "the state is in Redis under the documented key";

  // Another client has its own allowance.
  const auto bob =
      test::run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Client: bob",
                 "http://127.0.0.1:" + std::to_string(ports[1]) + "/x"},
                {}, 20s);
  EXPECT_EQ(bob.out, "200");
  g1.terminate();
  g2.terminate();
  ASSERT_TRUE(g1.wait_for(10s));
  ASSERT_TRUE(g2.wait_for(10s));
}

// A page that calls the gateway with a bearer token (so the browser sends
// a preflight first) and writes the outcome into itself.
constexpr const char* k_caller_page = R"html(<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>caller</title></head>
<body><p id="outcome">pending</p>
<script>
'use strict';
const q = new URLSearchParams(location.search);
fetch(q.get('api') + '/api/x', { headers: { 'Authorization': 'Bearer ' + q.get('token') } })
  .then(async (res) => { document.getElementById('outcome').textContent =
                           'ok ' + res.status + ' ' + (await res.text()).trim(); })
  .catch((e) => { document.getElementById('outcome').textContent = 'blocked ' + e.name; })
  .finally(() => { document.body.dataset.done = 'true'; });
</script></body></html>
)html";

TEST_F(GatewayExample, a_browser_page_calls_the_gateway_only_from_an_allowed_origin) {
  REQUIRE_BROWSER();
  test::test_server a(named("a"));
  http::router page_routes;
  page_routes.get("/", [](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text(k_caller_page, "text/html; charset=utf-8");
    co_return;
  });
  test::test_server pages(page_routes.to_handler());
  scratch tmp("gw-cors");
  const auto port = test::free_port();
  json j = config(port, a.port());
  j["auth"] = json::parse(R"({"jwt": {"keys": [{"kty": "oct",
      "k": "dHJlbGxpcy1kZW1vLWtleS1ub3QtYS1zZWNyZXQtYW55d2hlcmU"}]}})");
  j["routes"][0]["path"] = "/api/*";
  j["routes"][0]["auth"] = {"jwt"};
  j["routes"][0]["cors"] = {{"allow_origins", {"http://127.0.0.1:" + std::to_string(pages.port())}},
                            {"allow_headers", {"Authorization"}},
                            {"allow_methods", {"GET"}}};
  write(tmp.file("g.json"), j.dump());
  const auto issued =
      test::run({gateway_bin, "--config", tmp.file("g.json"), "--issue-token", "ada"}, {}, 20s);
  ASSERT_TRUE(issued.status.success()) << issued.err;
  std::string token = issued.out;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  test::process gw({gateway_bin, "--config", tmp.file("g.json")});
  ASSERT_TRUE(gw.wait_for_output("listening", 10s, /*from_stderr=*/true)) << gw.err();

  const std::string query = "/?api=http://127.0.0.1:" + std::to_string(port) + "&token=" + token;
  auto outcome = [&](const std::string& page_host) {
    test::browser_options bo;
    bo.virtual_time = 3000ms;
    const auto loaded =
        test::load_page("http://" + page_host + ":" + std::to_string(pages.port()) + query, bo);
    EXPECT_TRUE(loaded.finished()) << loaded.describe();
    EXPECT_EQ(test::body_attribute(loaded.dom, "data-done").value_or(""), "true")
        << loaded.describe();
    return test::dom_text(loaded.dom, "outcome").value_or("(no outcome)");
  };
  // The allowed origin: preflight answered, then the call with the token.
  EXPECT_EQ(outcome("127.0.0.1"), "ok 200 a");
  // The same page from another origin (the host differs): the gateway's
  // preflight answer carries no permission, so the browser never sends
  // the call.
  EXPECT_EQ(outcome("localhost"), "blocked TypeError");

  gw.terminate();
  ASSERT_TRUE(gw.wait_for(10s));
}

}  // namespace
}  // namespace trellis
