// Tests of the trellis-gateway example as a real process: the embedded
// demo configuration checks, tokens it issues verify, a bad configuration
// is refused naming the field, and SIGHUP reloads the --config file (a
// good one takes over; a bad one is refused and the old one keeps
// serving). Upstreams are trellis test servers on 127.0.0.1; requests go
// through curl.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/nginx_server.hpp"
#include "support/process.hpp"
#include "trellis/codec/base64.hpp"
#include "trellis/http/json.hpp"

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

}  // namespace
}  // namespace trellis
