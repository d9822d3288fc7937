// Tests of the trellis-backend example as a real process, driven with curl
// on 127.0.0.1: the instance JSON and X-Instance header, the echoed path,
// injected failures (from the command line and at run time), the health
// flip, /bytes/N (size, content, chunked), the /echo round trip, and
// start-up errors that name the bad flag. Each test starts its own
// instance (--port 0; the bound port is read from its "listening" log
// line) and kills it at the end whatever happened.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/bytes.hpp"
#include "support/curl_reply.hpp"
#include "support/process.hpp"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string backend_bin = std::string(TRELLIS_BIN_DIR) + "/trellis-backend";

using reply = test::curl_reply;
using test::parse_curl;

// One trellis-backend process on a port of its choosing.
class backend {
 public:
  explicit backend(std::vector<std::string> extra) : proc_(argv(std::move(extra))) {
    if (!proc_.wait_for_output("listening", 10s, /*from_stderr=*/true))
      throw std::runtime_error("trellis-backend did not start: " + proc_.err());
    const auto port = test::logged_port(proc_.err());
    if (!port) throw std::runtime_error("no address in: " + proc_.err());
    port_ = *port;
  }
  ~backend() { proc_.wait_or_kill(0ms, 2s); }
  backend(const backend&) = delete;
  backend& operator=(const backend&) = delete;

  int port() const { return port_; }

  // One request through curl; `extra` goes before the URL.
  reply call(const std::string& method, const std::string& path,
             const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"curl", "-sS",  "-i", "--max-time", "20",
                                     "-X",   method, "-H", "Expect:"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("http://127.0.0.1:" + std::to_string(port_) + path);
    const auto done = test::run(args, {}, 30s);
    EXPECT_TRUE(done.status.success()) << "curl " << method << " " << path << ": " << done.err;
    return parse_curl(done.out);
  }
  reply get(const std::string& path) { return call("GET", path); }
  reply post(const std::string& path) { return call("POST", path); }

 private:
  static std::vector<std::string> argv(std::vector<std::string> extra) {
    std::vector<std::string> a = {backend_bin, "--address", "127.0.0.1", "--port",
                                  "0",         "--workers", "2"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  test::process proc_;
  int port_ = 0;
};

class BackendExample : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(backend_bin.c_str(), X_OK) != 0)
      GTEST_SKIP() << backend_bin << " is not built (configure with TRELLIS_BUILD_EXAMPLES=ON)";
    if (!test::program_exists("curl"))
      GTEST_SKIP() << "needs the `curl` program on PATH (Debian package curl)";
  }
};

TEST_F(BackendExample, root_answers_instance_json_and_counts_requests) {
  backend b({"--name", "alpha"});
  for (int i = 1; i <= 3; ++i) {
    const auto r = b.get("/");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-instance"), "alpha");
    EXPECT_THAT(r.header("content-type"), HasSubstr("application/json"));
    const json j = r.parsed();
    EXPECT_EQ(j["instance"], "alpha");
    EXPECT_EQ(j["port"], b.port());
    EXPECT_EQ(j["request"], i) << "requests this instance served, counted from 1";
    EXPECT_EQ(j["path"], "/");
  }
}

TEST_F(BackendExample, any_other_path_answers_the_same_with_the_path) {
  backend b({"--name", "beta", "--latency", "5", "--jitter", "5"});
  const auto r = b.get("/api/v1/items?x=1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-instance"), "beta");
  const json j = r.parsed();
  EXPECT_EQ(j["instance"], "beta");
  EXPECT_EQ(j["path"], "/api/v1/items");
  EXPECT_EQ(j["request"], 1);
  const auto p = b.post("/submit");
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(p.parsed()["request"], 2);
}

TEST_F(BackendExample, fail_rate_one_answers_the_fail_status_but_health_stays_ok) {
  backend b({"--name", "gamma", "--fail-rate", "1", "--fail-status", "503"});
  for (int i = 0; i < 3; ++i) {
    const auto r = b.get("/");
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.header("x-instance"), "gamma");
    EXPECT_EQ(r.parsed()["instance"], "gamma");
  }
  const auto h = b.get("/health");
  EXPECT_EQ(h.status, 200) << "health is never failed";
  EXPECT_EQ(h.body, "ok");
}

TEST_F(BackendExample, fail_rate_and_latency_change_at_run_time) {
  backend b({"--name", "delta"});
  EXPECT_EQ(b.get("/").status, 200);
  auto set = b.post("/admin/fail-rate?p=1");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.parsed()["fail_rate"], 1.0);
  EXPECT_EQ(b.get("/").status, 500) << "the default fail status";
  EXPECT_EQ(b.post("/admin/fail-rate?p=0").status, 200);
  EXPECT_EQ(b.get("/").status, 200);

  set = b.post("/admin/latency?ms=20");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.parsed()["latency_ms"], 20);
  EXPECT_EQ(b.get("/").status, 200);

  EXPECT_EQ(b.post("/admin/fail-rate?p=1.5").status, 400);
  EXPECT_EQ(b.post("/admin/fail-rate").status, 400);
  EXPECT_EQ(b.post("/admin/latency?ms=-1").status, 400);
  EXPECT_EQ(b.post("/admin/latency?ms=999999").status, 400);
}

TEST_F(BackendExample, health_flips_down_and_up) {
  backend b({"--name", "epsilon"});
  EXPECT_EQ(b.get("/health").status, 200);
  auto set = b.post("/admin/health?state=down");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.parsed()["healthy"], false);
  const auto down = b.get("/health");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.header("x-instance"), "epsilon");
  EXPECT_EQ(b.get("/").status, 200) << "an unhealthy instance still serves";
  EXPECT_EQ(b.post("/admin/health?state=up").status, 200);
  EXPECT_EQ(b.get("/health").status, 200);
  EXPECT_EQ(b.post("/admin/health?state=sideways").status, 400);
}

TEST_F(BackendExample, bytes_streams_n_bytes_of_the_pattern_chunked) {
  backend b({"--name", "zeta"});
  const std::size_t n = 100'003;  // not a multiple of 16 KiB nor of 10
  const auto r = b.get("/bytes/" + std::to_string(n));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  ASSERT_EQ(r.body.size(), n);
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_EQ(r.body[i], static_cast<char>('0' + i % 10)) << "byte " << i;
  EXPECT_EQ(b.get("/bytes/0").body, "");
  EXPECT_EQ(b.get("/bytes/abc").status, 400);
}

TEST_F(BackendExample, echo_returns_the_request_body) {
  backend b({"--name", "eta"});
  const std::string data = test::make_bytes(1024 * 1024 + 7);
  const auto file = std::filesystem::temp_directory_path() /
                    ("trellis-backend-echo-" + std::to_string(::getpid()));
  {
    std::ofstream f(file, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  const auto r = b.call("PUT", "/echo", {"--data-binary", "@" + file.string()});
  std::filesystem::remove(file);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-instance"), "eta");
  ASSERT_EQ(r.body.size(), data.size());
  EXPECT_TRUE(r.body == data) << "the echoed body differs";
  const auto empty = b.call("POST", "/echo");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body, "");
}

TEST_F(BackendExample, cached_answers_carry_cache_headers_and_304_a_matching_condition) {
  backend b({"--name", "origin", "--max-age", "45"});
  const auto r = b.get("/cached/products/7");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("cache-control"), "max-age=45");
  EXPECT_EQ(r.header("etag"), "\"v1\"");
  EXPECT_FALSE(r.header("last-modified").empty());
  EXPECT_EQ(r.header("surrogate-key"), "cached products");
  EXPECT_EQ(r.parsed()["version"], 1);
  EXPECT_EQ(b.get("/cached/x?max-age=5&swr=10&sie=60").header("cache-control"),
            "max-age=5, stale-while-revalidate=10, stale-if-error=60");

  EXPECT_EQ(b.call("GET", "/cached/products/7", {"-H", "If-None-Match: \"v1\""}).status, 304);
  EXPECT_EQ(b.call("GET", "/cached/products/7", {"-H", "If-None-Match: \"v0\""}).status, 200);
  const std::string since = r.header("last-modified");
  EXPECT_EQ(b.call("GET", "/cached/products/7", {"-H", "If-Modified-Since: " + since}).status, 304);

  const auto bumped = b.post("/admin/version?bump");
  ASSERT_EQ(bumped.status, 200) << bumped.body;
  EXPECT_EQ(bumped.parsed()["version"], 2);
  const auto after = b.call("GET", "/cached/products/7", {"-H", "If-None-Match: \"v1\""});
  EXPECT_EQ(after.status, 200) << "a new version fails the old validator";
  EXPECT_EQ(after.header("etag"), "\"v2\"");
}

TEST_F(BackendExample, bad_flags_fail_at_start_naming_the_flag) {
  struct bad_case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<bad_case> cases = {
      {{"--port", "0"}, "--name"},
      {{"--name", "x", "--latency", "soon"}, "--latency"},
      {{"--name", "x", "--jitter", "-3"}, "--jitter"},
      {{"--name", "x", "--fail-rate", "2"}, "--fail-rate"},
      {{"--name", "x", "--fail-status", "42"}, "--fail-status"},
      {{"--name", "x", "--port", "70000"}, "--port"},
      {{"--name", "x", "--colour", "red"}, "--colour"},
      {{"--name", "two words"}, "--name"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {backend_bin};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto done = test::run(argv, {}, 10s);
    EXPECT_FALSE(done.timed_out) << c.names;
    EXPECT_EQ(done.status.code, 2) << c.names << ": " << done.status.describe();
    EXPECT_THAT(done.err, HasSubstr(c.names));
  }
}

}  // namespace
}  // namespace trellis
