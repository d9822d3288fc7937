// Tests of trellis-fetch as a real process against a trellis server on
// 127.0.0.1: the body on stdout, curl's exit codes for each failure, the
// verbose request cycle, the phase timings, form posts, output files,
// redirects, and HTTPS verified against the test CA (and -k's warning).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/certs.hpp"
#include "support/http_server.hpp"
#include "support/process.hpp"
#include "trellis/net/tls.hpp"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string fetch_bin = std::string(TRELLIS_BIN_DIR) + "/trellis-fetch";

// "/": a greeting; "/form": echoes the method, Content-Type and body;
// "/moved": 302 to "/"; anything else 404.
asio::awaitable<void> site(http::request& req, http::response& res) {
  const std::string_view p = req.path();
  auto body = co_await req.read_body();
  if (p == "/") {
    res.set_text("hello from trellis\n");
  } else if (p == "/form") {
    res.set_text(std::string(req.method_text()) + " " + std::string(req.header("Content-Type")) +
                 " " + (body ? *body : std::string()));
  } else if (p == "/moved") {
    res.status = 302;
    (void)res.headers.set("Location", "/");
  } else {
    res.status = 404;
    res.set_text("no such page\n");
  }
}

class FetchTool : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(fetch_bin.c_str(), X_OK) != 0) GTEST_SKIP() << "trellis-fetch is not built";
  }
  static test::run_result fetch(std::vector<std::string> args) {
    args.insert(args.begin(), fetch_bin);
    return test::run(args, {}, 20s);
  }
};

TEST_F(FetchTool, prints_the_body_and_exits_0) {
  test::test_server s(site);
  auto r = fetch({s.url("/")});
  EXPECT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  EXPECT_EQ(r.out, "hello from trellis\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(FetchTool, verbose_shows_each_step_of_the_request_cycle) {
  test::test_server s(site);
  auto r = fetch({"-v", "--timing", "http://localhost:" + std::to_string(s.port()) + "/"});
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  EXPECT_EQ(r.out, "hello from trellis\n") << "the body alone on stdout";
  EXPECT_THAT(r.err, HasSubstr("* Resolved localhost to "));
  EXPECT_THAT(r.err, HasSubstr("(TTL "));
  EXPECT_THAT(r.err, HasSubstr("* Connected to "));
  EXPECT_THAT(r.err, HasSubstr("> GET / HTTP/1.1\n> Host: localhost:" + std::to_string(s.port())));
  EXPECT_THAT(r.err, HasSubstr("< HTTP/1.1 200 OK\n"));
  EXPECT_THAT(r.err, HasSubstr("< Content-Length: 19\n"));
  for (const char* phase : {"dns ", "connect ", "tls ", "first byte ", "total ", "reused "})
    EXPECT_THAT(r.err, HasSubstr(std::string("\n") + phase)) << phase;
}

TEST_F(FetchTool, posts_forms_and_binary_data_like_curl) {
  test::test_server s(site);
  auto r = fetch({"-d", "a=1", "-d", "b=2", s.url("/form")});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_EQ(r.out, "POST application/x-www-form-urlencoded a=1&b=2");

  const auto file = std::filesystem::temp_directory_path() / ("fetch-body-" + std::to_string(::getpid()));
  { std::ofstream(file) << "line one\nline two\n"; }
  auto binary = fetch({"-X", "PUT", "--data-binary", "@" + file.string(), "-H",
                       "Content-Type: text/plain", s.url("/form")});
  ASSERT_TRUE(binary.status.success()) << binary.err;
  EXPECT_EQ(binary.out, "PUT text/plain line one\nline two\n") << "--data-binary keeps newlines";
  auto form = fetch({"-d", "@" + file.string(), s.url("/form")});
  EXPECT_EQ(form.out, "POST application/x-www-form-urlencoded line oneline two") << "-d @file drops them";
  std::filesystem::remove(file);
}

TEST_F(FetchTool, writes_the_body_to_a_file_with_o) {
  test::test_server s(site);
  const auto file = std::filesystem::temp_directory_path() / ("fetch-out-" + std::to_string(::getpid()));
  auto r = fetch({"-o", file.string(), s.url("/")});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_EQ(r.out, "");
  std::ifstream in(file);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "hello from trellis\n");
  std::filesystem::remove(file);
}

TEST_F(FetchTool, head_and_include_print_the_response_head) {
  test::test_server s(site);
  auto head = fetch({"-I", s.url("/")});
  ASSERT_TRUE(head.status.success()) << head.err;
  EXPECT_THAT(head.out, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(head.out, HasSubstr("Content-Length: 19\r\n"));
  EXPECT_THAT(head.out, Not(HasSubstr("hello"))) << "HEAD has no body";
  auto inc = fetch({"-i", s.url("/")});
  EXPECT_THAT(inc.out, HasSubstr("\r\n\r\nhello from trellis\n"));
}

TEST_F(FetchTool, follows_redirects_only_with_L) {
  test::test_server s(site);
  auto plain = fetch({s.url("/moved")});
  EXPECT_TRUE(plain.status.success());
  EXPECT_EQ(plain.out, "") << "a 302 with no body, not followed";
  auto followed = fetch({"-L", "--timing", s.url("/moved")});
  ASSERT_TRUE(followed.status.success()) << followed.err;
  EXPECT_EQ(followed.out, "hello from trellis\n");
  EXPECT_THAT(followed.err, HasSubstr("redirects   1"));
  auto capped = fetch({"-L", "--max-redirs", "0", s.url("/moved")});
  EXPECT_EQ(capped.status.code, 47) << capped.err;
}

TEST_F(FetchTool, exits_with_curls_codes_on_failure) {
  test::test_server s(site);
  auto not_found = fetch({"-f", s.url("/missing")});
  EXPECT_EQ(not_found.status.code, 22);
  EXPECT_EQ(not_found.out, "") << "-f prints no error page";
  EXPECT_THAT(not_found.err, HasSubstr("404"));
  auto shown = fetch({s.url("/missing")});
  EXPECT_TRUE(shown.status.success()) << "without -f an HTTP error is still a response";
  EXPECT_EQ(shown.out, "no such page\n");

  auto refused = fetch({"http://127.0.0.1:1/"});
  EXPECT_EQ(refused.status.code, 7) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("refused"));
  auto unresolved = fetch({"http://does-not-exist.invalid/"});
  EXPECT_NE(unresolved.status.code, 0);
  auto bad = fetch({"not a url"});
  EXPECT_EQ(bad.status.code, 3) << bad.err;
  auto usage = fetch({"--no-such-flag", s.url("/")});
  EXPECT_EQ(usage.status.code, 2);
}

TEST_F(FetchTool, verifies_https_against_cacert_and_warns_on_k) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto tls = net::tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file, .alpn = {"http/1.1"}});
  test::test_server s(site, {}, &tls);
  auto good = fetch({"--cacert", pki.ca_file, "-v", s.url("/", "https")});
  ASSERT_TRUE(good.status.success()) << good.err;
  EXPECT_EQ(good.out, "hello from trellis\n");
  EXPECT_THAT(good.err, HasSubstr("* TLS: TLSv1.3"));
  EXPECT_THAT(good.err, HasSubstr("subject CN=localhost"));

  auto untrusted = fetch({s.url("/", "https")});
  EXPECT_EQ(untrusted.status.code, 60) << untrusted.err;
  auto insecure = fetch({"-k", s.url("/", "https")});
  EXPECT_TRUE(insecure.status.success()) << insecure.err;
  EXPECT_THAT(insecure.err, HasSubstr("NOT verified"));
}

}  // namespace
}  // namespace trellis
