// Tests of http::client against a real nginx on 127.0.0.1: static files
// read byte for byte (1 MiB included), keep-alive reuse checked on the
// server's side ($connection, $connection_requests), chunked responses
// (nginx's SSI filter drops Content-Length, so HTTP/1.1 replies are
// chunked), gzip decoded with decode_content, TLS with the test CA, HEAD
// and 404.
//
// Each test starts its own nginx as a child process (support/nginx_server.hpp:
// a configuration in a fresh temporary directory, one process, a free port
// on 127.0.0.1, only modules built into Debian's nginx-light). Without
// nginx the tests skip visibly. The client runs through run_bounded, so a
// hang fails the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "support/certs.hpp"
#include "support/loop.hpp"
#include "support/nginx_server.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/http/client.hpp"
#include "trellis/net/tls.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
using test::nginx_server;
using test::run_bounded;
using ::testing::HasSubstr;

dns::resolver local_resolver(asio::any_io_executor ex) {
  return dns::resolver(std::move(ex), dns::resolver_options{});
}

// Records the raw heads a call sent and received.
struct head_recorder : client_observer {
  std::string request_heads;
  std::string response_heads;
  void on_request_head(std::string_view bytes) override { request_heads.append(bytes); }
  void on_response_head(std::string_view bytes) override { response_heads.append(bytes); }
};

// `n` bytes of every value 0..255, in a fixed pseudo-random order.
std::string binary_bytes(std::size_t n) {
  std::mt19937 gen(12345);
  std::string s(n, '\0');
  for (auto& ch : s) ch = static_cast<char>(gen() & 0xff);
  return s;
}

// Compressible text of about `n` bytes.
std::string text_bytes(std::size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i) s += "line " + std::to_string(i) + " of a text file\n";
  return s;
}

std::string header_or_empty(const client_response& r, std::string_view name) {
  return std::string(r.headers.get(name).value_or(""));
}

// ---------------------------------------------------------------------------

TEST(http_client_nginx, reads_static_files_byte_for_byte) {
  REQUIRE_NGINX();
  nginx_server ngx;
  const std::string small = "hello from nginx\n";
  const std::string big = binary_bytes(1u << 20);
  ngx.put("/hello.txt", small);
  ngx.put("/big.bin", big);
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.request_timeout = 10s});

    auto a = co_await c.get(ngx.url("/hello.txt"));
    CO_ASSERT_OK(a);
    EXPECT_EQ(a->status, 200) << ngx.error_log();
    EXPECT_EQ(a->body, small);
    EXPECT_EQ(header_or_empty(*a, "Content-Type"), "text/plain");
    EXPECT_EQ(header_or_empty(*a, "Content-Length"), std::to_string(small.size()));
    EXPECT_THAT(header_or_empty(*a, "Server"), HasSubstr("nginx"));

    auto b = co_await c.get(ngx.url("/big.bin"));
    CO_ASSERT_OK(b);
    EXPECT_EQ(b->status, 200);
    EXPECT_EQ(header_or_empty(*b, "Content-Length"), "1048576");
    EXPECT_EQ(b->body.size(), big.size());
    EXPECT_TRUE(b->body == big) << "the 1 MiB body differs from the file";
  });
}

TEST(http_client_nginx, reuses_one_connection_for_sequential_requests) {
  REQUIRE_NGINX();
  nginx_server ngx;
  ngx.put("/a.txt", "a");
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    constexpr int n = 8;
    std::string first_connection;
    for (int i = 1; i <= n; ++i) {
      auto res = co_await c.get(ngx.url("/a.txt"));
      CO_ASSERT_OK(res);
      EXPECT_EQ(res->body, "a");
      const std::string conn = header_or_empty(*res, "X-Connection");
      EXPECT_FALSE(conn.empty());
      if (i == 1) first_connection = conn;
      // nginx's own view: the same connection, carrying its i-th request.
      EXPECT_EQ(conn, first_connection) << "request " << i;
      EXPECT_EQ(header_or_empty(*res, "X-Connection-Requests"), std::to_string(i))
          << "request " << i;
      EXPECT_EQ(res->timing.reused, i > 1) << "request " << i;
    }
    EXPECT_EQ(c.stats().connections_opened, 1u);
    EXPECT_EQ(c.stats().connections_reused, static_cast<std::uint64_t>(n - 1));
    EXPECT_EQ(c.stats().idle, 1u);
  });
}

TEST(http_client_nginx, opens_a_new_connection_after_nginx_says_connection_close) {
  REQUIRE_NGINX();
  nginx_server ngx;
  ngx.put("/limited/a.txt", "a");
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    std::vector<std::string> counts, connections;
    for (int i = 0; i < 5; ++i) {
      auto res = co_await c.get(ngx.url("/limited/a.txt"));
      CO_ASSERT_OK(res);
      EXPECT_EQ(res->body, "a");
      counts.push_back(header_or_empty(*res, "X-Connection-Requests"));
      connections.push_back(header_or_empty(*res, "X-Connection"));
      if (i == 2) {
        EXPECT_EQ(header_or_empty(*res, "Connection"), "close");
      }
    }
    EXPECT_THAT(counts, ::testing::ElementsAre("1", "2", "3", "1", "2"));
    EXPECT_EQ(connections[0], connections[2]);
    EXPECT_NE(connections[2], connections[3]);
    EXPECT_EQ(c.stats().connections_opened, 2u);
    EXPECT_EQ(c.stats().retries, 0u) << "the closed connection was never tried again";
  });
}

TEST(http_client_nginx, notices_a_connection_nginx_closed_while_idle) {
  REQUIRE_NGINX();
  nginx_server ngx;
  ngx.put("/short/a.txt", "a");
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    auto first = co_await c.get(ngx.url("/short/a.txt"));
    CO_ASSERT_OK(first);
    EXPECT_EQ(c.stats().idle, 1u);
    asio::steady_timer t(ex, 1500ms);  // past nginx's keepalive_timeout
    co_await t.async_wait(use_nothrow);
    auto second = co_await c.get(ngx.url("/short/a.txt"));
    CO_ASSERT_OK(second);
    EXPECT_EQ(second->body, "a");
    EXPECT_FALSE(second->timing.reused);
    EXPECT_NE(header_or_empty(*second, "X-Connection"), header_or_empty(*first, "X-Connection"));
    // Found closed before use, by the peek: no request was lost or resent.
    EXPECT_EQ(c.stats().stale_closed, 1u);
    EXPECT_EQ(c.stats().retries, 0u);
    EXPECT_EQ(second->timing.retries, 0u);
  });
}

TEST(http_client_nginx, reads_a_chunked_response_and_reuses_the_connection_after_it) {
  REQUIRE_NGINX();
  nginx_server ngx;
  // SSI replaces the directive with the request URI; the text around it is
  // large enough to span several chunks.
  const std::string before = text_bytes(200'000);
  const std::string after = text_bytes(50'000);
  ngx.put("/ssi/page.html", before + "<!--# echo var=\"request_uri\" -->" + after);
  ngx.put("/after.txt", "after");
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.request_timeout = 10s});
    auto res = co_await c.get(ngx.url("/ssi/page.html?x=1"));
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->status, 200) << ngx.error_log();
    EXPECT_EQ(header_or_empty(*res, "Transfer-Encoding"), "chunked");
    EXPECT_FALSE(res->headers.contains("Content-Length"));
    const std::string expected = before + "/ssi/page.html?x=1" + after;
    EXPECT_EQ(res->body.size(), expected.size());
    EXPECT_TRUE(res->body == expected) << "the dechunked body differs from the expected page";

    // The last chunk was read to its end: the connection carries the next
    // request.
    auto next = co_await c.get(ngx.url("/after.txt"));
    CO_ASSERT_OK(next);
    EXPECT_EQ(next->body, "after");
    EXPECT_TRUE(next->timing.reused);
    EXPECT_EQ(header_or_empty(*next, "X-Connection-Requests"), "2");
  });
}

TEST(http_client_nginx, decodes_gzip_with_decode_content) {
  REQUIRE_NGINX();
  nginx_server ngx;
  const std::string text = text_bytes(300'000);
  ngx.put("/gzip/text.txt", text);
  ngx.put("/gzip/tiny.txt", "x");
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.request_timeout = 10s, .decode_content = true});
    head_recorder seen;
    auto res = co_await c.get(ngx.url("/gzip/text.txt"), {.observer = &seen});
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->status, 200) << ngx.error_log();
    EXPECT_THAT(seen.request_heads, HasSubstr("Accept-Encoding: gzip"));
    // nginx compressed it (and so framed it chunked)...
    EXPECT_THAT(seen.response_heads, HasSubstr("Content-Encoding: gzip"));
    EXPECT_THAT(seen.response_heads, HasSubstr("Transfer-Encoding: chunked"));
    // ...and the caller sees the file as it is on disk.
    EXPECT_EQ(res->body.size(), text.size());
    EXPECT_TRUE(res->body == text) << "the decoded body differs from the file";
    EXPECT_FALSE(res->headers.contains("Content-Encoding"));
    EXPECT_FALSE(res->headers.contains("Content-Length"));

    auto tiny = co_await c.get(ngx.url("/gzip/tiny.txt"));
    CO_ASSERT_OK(tiny);
    EXPECT_EQ(tiny->body, "x");
    EXPECT_TRUE(tiny->timing.reused);

    // Without decode_content the client asks for no coding, and nginx sends
    // the file as it is, with its length.
    client plain(ex, r);
    head_recorder raw;
    auto identity = co_await plain.get(ngx.url("/gzip/text.txt"), {.observer = &raw});
    CO_ASSERT_OK(identity);
    EXPECT_THAT(raw.request_heads, ::testing::Not(HasSubstr("Accept-Encoding")));
    EXPECT_FALSE(identity->headers.contains("Content-Encoding"));
    EXPECT_EQ(header_or_empty(*identity, "Content-Length"), std::to_string(text.size()));
    EXPECT_TRUE(identity->body == text);
  });
}

TEST(http_client_nginx, verifies_nginx_certificate_against_the_test_ca) {
  REQUIRE_NGINX();
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  nginx_server ngx(&pki.server);
  const std::string big = binary_bytes(1u << 20);
  ngx.put("/secure.txt", "secret");
  ngx.put("/big.bin", big);
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.request_timeout = 10s, .tls = {.ca_file = pki.ca_file}});
    auto ok = co_await c.get(ngx.url("/secure.txt", "https"));
    CO_ASSERT_OK(ok);
    EXPECT_EQ(ok->status, 200) << ngx.error_log();
    EXPECT_EQ(ok->body, "secret");
    EXPECT_GT(ok->timing.tls.count(), 0);

    // A large body over TLS, on the same connection.
    auto b = co_await c.get(ngx.url("/big.bin", "https"));
    CO_ASSERT_OK(b);
    EXPECT_TRUE(b->timing.reused);
    EXPECT_EQ(header_or_empty(*b, "X-Connection-Requests"), "2");
    EXPECT_TRUE(b->body == big) << "the 1 MiB body over TLS differs from the file";

    // The certificate also names localhost (SNI and name check by name).
    auto by_name = co_await c.get(ngx.url("/secure.txt", "https", "localhost"));
    CO_ASSERT_OK(by_name);
    EXPECT_EQ(by_name->body, "secret");

    // A client that does not trust the test CA refuses the certificate.
    client untrusting(ex, r, {.tls = {.ca_file = pki.other_ca_file}});
    auto refused = co_await untrusting.get(ngx.url("/secure.txt", "https"));
    CO_ASSERT_FALSE(refused);
    EXPECT_TRUE(net::tls::is_verification_failure(refused.error())) << refused.error().message();
    client system_store(ex, r);
    auto refused_too = co_await system_store.get(ngx.url("/secure.txt", "https"));
    CO_ASSERT_FALSE(refused_too);
    EXPECT_TRUE(net::tls::is_verification_failure(refused_too.error()))
        << refused_too.error().message();
  });
}

TEST(http_client_nginx, a_head_request_reads_no_body) {
  REQUIRE_NGINX();
  nginx_server ngx;
  ngx.put("/big.bin", binary_bytes(1u << 20));
  ngx.put("/small.txt", "small");
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    // Were the client to wait for 1 MiB that never comes, it would fail here.
    client c(ex, r, {.first_byte_timeout = 3s, .request_timeout = 3s});
    client_request head;
    head.method = "HEAD";
    head.url = ngx.url("/big.bin");
    auto res = co_await c.send(head);
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->status, 200) << ngx.error_log();
    EXPECT_EQ(header_or_empty(*res, "Content-Length"), "1048576");
    EXPECT_TRUE(res->body.empty());

    // Nothing of a body was left in the connection: the next response on it
    // is read cleanly.
    auto next = co_await c.get(ngx.url("/small.txt"));
    CO_ASSERT_OK(next);
    EXPECT_EQ(next->body, "small");
    EXPECT_TRUE(next->timing.reused);
    EXPECT_EQ(header_or_empty(*next, "X-Connection-Requests"), "2");
  });
}

TEST(http_client_nginx, a_missing_file_is_a_404_response_not_an_error) {
  REQUIRE_NGINX();
  nginx_server ngx;
  ngx.put("/here.txt", "here");
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    auto res = co_await c.get(ngx.url("/missing.txt"));
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->status, 404);
    EXPECT_EQ(res->reason, "Not Found");
    EXPECT_THAT(res->body, HasSubstr("404 Not Found"));
    EXPECT_EQ(header_or_empty(*res, "Content-Length"), std::to_string(res->body.size()));

    // nginx keeps the connection open after a 404, and so does the client.
    auto next = co_await c.get(ngx.url("/here.txt"));
    CO_ASSERT_OK(next);
    EXPECT_EQ(next->body, "here");
    EXPECT_TRUE(next->timing.reused);
  });
}

}  // namespace
}  // namespace trellis::http
