// Tests of http::client against real servers on 127.0.0.1: trellis's own
// server (on a background thread) and raw-socket servers that misbehave on
// purpose (never answer, stall mid-body, close a kept-alive connection,
// send broken framing). The client runs on the test's own io_context
// through run_bounded, so a hang fails the test instead of stalling CI.
#include "trellis/http/client.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/blackhole.hpp"
#include "support/certs.hpp"
#include "support/http_server.hpp"
#include "support/loop.hpp"
#include "support/loopback_listener.hpp"
#include "support/raw_server.hpp"
#include "trellis/codec/http/content_coding.hpp"
#include "trellis/codec/http/error.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/net/tls.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
using test::run_bounded;
using test::raw_server;
using test::test_server;
using ::testing::HasSubstr;

// A resolver with no servers: the tests use IP literals and "localhost",
// which the resolver answers itself.
dns::resolver local_resolver(asio::any_io_executor ex) {
  return dns::resolver(std::move(ex), dns::resolver_options{});
}

// Remembers the remote port of every request: one port, one connection.
struct port_log {
  std::mutex m;
  std::vector<std::uint16_t> ports;
  void add(std::uint16_t p) {
    std::lock_guard lock(m);
    ports.push_back(p);
  }
  std::size_t distinct() {
    std::lock_guard lock(m);
    return std::set<std::uint16_t>(ports.begin(), ports.end()).size();
  }
};

// A handler that answers "<method> <target>" and the request body.
handler echo(port_log* log = nullptr) {
  return [log](request& req, response& res) -> asio::awaitable<void> {
    if (log) log->add(req.remote_endpoint().port());
    auto body = co_await req.read_body();
    res.set_text(std::string(req.method_text()) + " " + std::string(req.target()) +
                 (body && !body->empty() ? " " + *body : ""));
    if (auto auth = req.header("Authorization"); !auth.empty())
      (void)res.headers.set("X-Saw-Authorization", auth);
  };
}

constexpr std::string_view ok_response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// ---------------------------------------------------------------------------
// Basics and the pool

TEST(http_client, gets_a_response_and_times_each_phase) {
  test_server s(echo());
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    auto res = co_await c.get(s.url("/hello?x=1"));
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->reason, "OK");
    EXPECT_EQ(res->body, "GET /hello?x=1");
    EXPECT_EQ(res->headers.get("Content-Type").value_or(""), "text/plain; charset=utf-8");
    EXPECT_EQ(res->url, s.url("/hello?x=1"));
    EXPECT_FALSE(res->timing.reused);
    EXPECT_GT(res->timing.connect.count(), 0);
    EXPECT_GT(res->timing.first_byte.count(), 0);
    EXPECT_GE(res->timing.total, res->timing.first_byte);
    EXPECT_EQ(res->remote.port(), s.port());
  });
}

TEST(http_client, reuses_one_connection_for_sequential_requests) {
  port_log log;
  test_server s(echo(&log));
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    for (int i = 0; i < 5; ++i) {
      auto res = co_await c.get(s.url("/n" + std::to_string(i)));
      CO_ASSERT_OK(res);
      EXPECT_EQ(res->body, "GET /n" + std::to_string(i));
      EXPECT_EQ(res->timing.reused, i > 0) << "request " << i;
    }
    EXPECT_EQ(c.stats().connections_opened, 1u);
    EXPECT_EQ(c.stats().connections_reused, 4u);
    EXPECT_EQ(c.stats().idle, 1u);
  });
  EXPECT_EQ(log.ports.size(), 5u);
  EXPECT_EQ(log.distinct(), 1u) << "the server saw one TCP connection";
}

// Answers after `delay`, so that requests overlap.
handler slow(std::chrono::milliseconds delay, port_log* log) {
  return [delay, log](request& req, response& res) -> asio::awaitable<void> {
    log->add(req.remote_endpoint().port());
    asio::steady_timer t(co_await asio::this_coro::executor, delay);
    co_await t.async_wait(use_nothrow);
    res.set_text("slow");
  };
}

TEST(http_client, opens_at_most_max_connections_per_origin_and_queues_the_rest) {
  port_log log;
  test_server s(slow(50ms, &log));
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.max_connections_per_origin = 2});
    int done = 0;
    for (int i = 0; i < 6; ++i)
      asio::co_spawn(ex, c.get(s.url("/")), [&](std::exception_ptr e, result<client_response> res) {
        EXPECT_FALSE(e);
        EXPECT_TRUE(res) << res.error().message();
        ++done;
      });
    asio::steady_timer t(ex);
    for (int i = 0; i < 200 && done < 6; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(use_nothrow);
    }
    EXPECT_EQ(done, 6);
    EXPECT_EQ(c.stats().connections_opened, 2u);
  });
  EXPECT_EQ(log.ports.size(), 6u);
  EXPECT_EQ(log.distinct(), 2u);
}

TEST(http_client, a_request_waiting_for_a_full_pool_gives_up_at_pool_wait_timeout) {
  port_log log;
  test_server s(slow(1500ms, &log));
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.max_connections_per_origin = 1, .pool_wait_timeout = 100ms});
    bool first_done = false;
    asio::co_spawn(ex, c.get(s.url("/busy")), [&](std::exception_ptr, result<client_response> res) {
      EXPECT_TRUE(res) << res.error().message();
      first_done = true;
    });
    auto second = co_await c.get(s.url("/waits"));
    CO_ASSERT_FALSE(second);
    EXPECT_EQ(second.error(), client_error::pool_wait_timeout);
    EXPECT_EQ(second.error(), std::errc::timed_out);
    EXPECT_FALSE(first_done);
    asio::steady_timer t(ex);
    for (int i = 0; i < 300 && !first_done; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(use_nothrow);
    }
    EXPECT_TRUE(first_done);
  });
}

TEST(http_client, closes_idle_connections_after_idle_timeout) {
  port_log log;
  test_server s(echo(&log));
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.idle_timeout = 100ms});
    CO_ASSERT_OK(co_await c.get(s.url("/a")));
    EXPECT_EQ(c.stats().idle, 1u);
    asio::steady_timer t(ex, 300ms);
    co_await t.async_wait(use_nothrow);
    EXPECT_EQ(c.stats().idle, 0u);
    EXPECT_EQ(c.stats().open, 0u);
    auto again = co_await c.get(s.url("/b"));
    CO_ASSERT_OK(again);
    EXPECT_FALSE(again->timing.reused);
  });
  EXPECT_EQ(log.distinct(), 2u);
}

// ---------------------------------------------------------------------------
// The keep-alive race: the server closes a connection the client reuses

// First connection: answers one request with keep-alive, then reads the
// next request and closes without answering. Later connections answer.
void close_after_first(int fd, int index) {
  raw_server::read_head(fd);
  if (index == 0) {
    raw_server::send_all(fd, ok_response);
    raw_server::read_head(fd);  // the reused request arrives...
    return;                     // ...and the connection closes unanswered
  }
  raw_server::send_all(fd, ok_response);
}

TEST(http_client, retries_a_get_once_on_a_fresh_connection_when_a_reused_one_was_closed) {
  raw_server s(close_after_first);
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    CO_ASSERT_OK(co_await c.get(s.url("/1")));
    auto second = co_await c.get(s.url("/2"));
    CO_ASSERT_OK(second);
    EXPECT_EQ(second->body, "ok");
    EXPECT_EQ(second->timing.retries, 1u);
    EXPECT_FALSE(second->timing.reused) << "the answer came on the fresh connection";
    EXPECT_EQ(c.stats().retries, 1u);
  });
  EXPECT_EQ(s.accepted(), 2);
}

TEST(http_client, never_retries_a_post_that_may_have_been_acted_on) {
  raw_server s(close_after_first);
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    CO_ASSERT_OK(co_await c.get(s.url("/1")));
    client_request post;
    post.method = "POST";
    post.url = s.url("/order");
    post.body = "one coffee";
    auto second = co_await c.send(std::move(post));
    CO_ASSERT_FALSE(second);
    EXPECT_EQ(second.error(), client_error::connection_closed);
    EXPECT_EQ(c.stats().retries, 0u);
  });
  EXPECT_EQ(s.accepted(), 1);
}

// ---------------------------------------------------------------------------
// Deadlines, one per phase

TEST(http_client, a_server_that_never_answers_fails_at_first_byte_timeout) {
  raw_server s([](int fd, int) {
    raw_server::read_head(fd);
    std::this_thread::sleep_for(1500ms);
  });
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.first_byte_timeout = 200ms});
    const auto t0 = std::chrono::steady_clock::now();
    auto res = co_await c.get(s.url("/"));
    CO_ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), client_error::first_byte_timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1400ms) << "the deadline, not the server, ended it";
  });
}

TEST(http_client, a_body_that_stalls_fails_at_request_timeout) {
  raw_server s([](int fd, int) {
    raw_server::read_head(fd);
    raw_server::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
    std::this_thread::sleep_for(1500ms);
  });
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.request_timeout = 300ms});
    auto res = co_await c.get(s.url("/"));
    CO_ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), client_error::request_timeout);
  });
}

TEST(http_client, a_server_that_never_answers_the_tls_hello_fails_at_tls_timeout) {
  raw_server s([](int fd, int) {
    raw_server::read_head(fd);  // takes the ClientHello (no CRLFCRLF: waits its 2 s)
    std::this_thread::sleep_for(1500ms);
  });
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.tls_timeout = 200ms});
    const auto t0 = std::chrono::steady_clock::now();
    auto res = co_await c.get("https://127.0.0.1:" + std::to_string(s.port()) + "/");
    CO_ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), client_error::tls_timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1400ms);
  });
}

TEST(http_client, a_connect_that_hangs_fails_at_connect_timeout) {
  run_bounded([&]() -> asio::awaitable<void> {
    auto hole = co_await test::blackhole::make();
    if (!hole->filled()) CO_SKIP("could not fill a listen queue here");
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.connect_timeout = 200ms});
    auto res = co_await c.get("http://127.0.0.1:" + std::to_string(hole->endpoint().port()) + "/");
    CO_ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), client_error::connect_timeout);
  });
}

TEST(http_client, a_dns_server_that_never_answers_fails_at_resolve_timeout) {
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    // A UDP socket that receives queries and never answers.
    asio::ip::udp::socket silent(ex, {asio::ip::address_v4::loopback(), 0});
    dns::resolver_options ro;
    ro.conf.nameservers.push_back(silent.local_endpoint());
    ro.conf.timeout = 5s;
    dns::resolver r(ex, ro);
    client c(ex, r, {.resolve_timeout = 200ms});
    const auto t0 = std::chrono::steady_clock::now();
    auto res = co_await c.get("http://nowhere.test/");
    CO_ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), client_error::resolve_timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  });
}

TEST(http_client, a_refused_connection_is_the_os_error) {
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    // A port that was just free: nothing listens there.
    asio::ip::tcp::acceptor a(ex, {asio::ip::address_v4::loopback(), 0});
    const auto port = a.local_endpoint().port();
    a.close();
    auto r = local_resolver(ex);
    client c(ex, r);
    auto res = co_await c.get("http://127.0.0.1:" + std::to_string(port) + "/");
    CO_ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), asio::error::connection_refused);
  });
}

// ---------------------------------------------------------------------------
// Malformed responses are errors, never a hang or a short body

struct bad_case {
  const char* name;
  std::string_view response;
  std::error_code expected;
};

TEST(http_client, malformed_responses_are_errors_with_codes) {
  const bad_case cases[] = {
      {"content-length with transfer-encoding",
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       http::error::content_length_with_transfer_encoding},
      {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
       http::error::bad_chunk},
      {"closed mid-body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
       client_error::connection_closed},
      {"closed mid-head", "HTTP/1.1 200 OK\r\nContent-Le", client_error::connection_closed},
      {"not http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", http::error::bad_version},
      {"status out of range", "HTTP/1.1 999 Nine\r\n\r\n", http::error::bad_status_line},
  };
  for (const auto& bc : cases) {
    raw_server s([&](int fd, int) {
      raw_server::read_head(fd);
      raw_server::send_all(fd, bc.response);
    });
    run_bounded([&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      auto r = local_resolver(ex);
      client c(ex, r);
      auto res = co_await c.get(s.url("/"));
      EXPECT_FALSE(res) << bc.name << ": got a response";
      if (!res) {
        EXPECT_EQ(res.error(), bc.expected) << bc.name << ": " << res.error().message();
      }
    });
  }
}

TEST(http_client, an_oversize_head_or_body_is_response_too_large) {
  raw_server s([](int fd, int index) {
    raw_server::read_head(fd);
    if (index == 0)
      raw_server::send_all(fd, "HTTP/1.1 200 OK\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    else
      raw_server::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'b'));
  });
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client_options o;
    o.limits.max_body = 1000;
    client c(ex, r, o);
    auto head = co_await c.get(s.url("/head"));
    CO_ASSERT_FALSE(head);
    EXPECT_EQ(head.error(), client_error::response_too_large);
    auto body = co_await c.get(s.url("/body"));
    CO_ASSERT_FALSE(body);
    EXPECT_EQ(body.error(), client_error::response_too_large);
  });
}

TEST(http_client, reads_a_body_delimited_by_close_and_does_not_reuse_that_connection) {
  raw_server s([](int fd, int) {
    raw_server::read_head(fd);
    raw_server::send_all(fd, "HTTP/1.1 200 OK\r\n\r\nuntil the end");
  });
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    auto res = co_await c.get(s.url("/"));
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->body, "until the end");
    EXPECT_EQ(c.stats().idle, 0u);
  });
}

TEST(http_client, skips_interim_responses) {
  raw_server s([](int fd, int) {
    raw_server::read_head(fd);
    raw_server::send_all(fd, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
    raw_server::send_all(fd, ok_response);
  });
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    auto res = co_await c.get(s.url("/"));
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "ok");
  });
}

// ---------------------------------------------------------------------------
// Bodies both ways

TEST(http_client, posts_a_buffered_body_and_streams_a_chunked_one) {
  test_server s(echo());
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    client_request post;
    post.method = "POST";
    post.url = s.url("/buffered");
    post.body = "hello";
    auto a = co_await c.send(std::move(post));
    CO_ASSERT_OK(a);
    EXPECT_EQ(a->body, "POST /buffered hello");

    client_request put;
    put.method = "PUT";
    put.url = s.url("/streamed");
    int calls = 0;
    put.body_source = [&calls]() -> asio::awaitable<result<std::string_view>> {
      static constexpr std::string_view parts[] = {"one,", "two,", "three", ""};
      co_return parts[std::min(calls++, 3)];
    };
    auto b = co_await c.send(std::move(put));
    CO_ASSERT_OK(b);
    EXPECT_EQ(b->body, "PUT /streamed one,two,three");
    EXPECT_EQ(calls, 4);
  });
}

TEST(http_client, hands_a_large_body_to_a_sink_piece_by_piece) {
  const std::string big(3 << 20, 'x');
  test_server s([&](request&, response& res) -> asio::awaitable<void> {
    res.stream = [&](body_writer& w) -> asio::awaitable<void> {
      for (std::size_t off = 0; off < big.size(); off += 64 * 1024)
        if (co_await w.write(std::string_view(big).substr(off, 64 * 1024))) co_return;
    };
    co_return;
  });
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    std::size_t total = 0, pieces = 0, largest = 0;
    call_options o;
    o.sink = [&](std::string_view piece) -> asio::awaitable<std::error_code> {
      total += piece.size();
      ++pieces;
      largest = std::max(largest, piece.size());
      co_return std::error_code{};
    };
    auto res = co_await c.get(s.url("/big"), std::move(o));
    CO_ASSERT_OK(res);
    EXPECT_EQ(total, big.size());
    EXPECT_TRUE(res->body.empty());
    EXPECT_GT(pieces, 10u);
    EXPECT_LE(largest, 64u * 1024) << "pieces are at most one read";
  });
}

TEST(http_client, decodes_gzip_when_asked) {
  const std::string text = [] {
    std::string t;
    for (int i = 0; i < 2000; ++i) t += "line " + std::to_string(i) + "\n";
    return t;
  }();
  test_server s([&](request& req, response& res) -> asio::awaitable<void> {
    if (req.header("Accept-Encoding").find("gzip") == std::string_view::npos) {
      res.set_text(text);
      co_return;
    }
    content_encoder enc(content_coding::gzip);
    std::string z;
    enc.encode(text, z);
    enc.finish(z);
    res.body = std::move(z);
    (void)res.headers.set("Content-Encoding", "gzip");
    co_return;
  });
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r, {.decode_content = true});
    auto res = co_await c.get(s.url("/"));
    CO_ASSERT_OK(res);
    EXPECT_EQ(res->body, text);
    EXPECT_FALSE(res->headers.contains("Content-Encoding"));

    client_options small;
    small.decode_content = true;
    small.limits.max_body = 1000;  // far less than the decoded text
    client limited(ex, r, small);
    auto bomb = co_await limited.get(s.url("/"));
    CO_ASSERT_FALSE(bomb);
    EXPECT_EQ(bomb.error(), client_error::response_too_large);
  });
}

// ---------------------------------------------------------------------------
// Redirects

handler redirector(std::string other_origin) {
  return [other_origin](request& req, response& res) -> asio::awaitable<void> {
    const std::string_view p = req.path();
    auto body = co_await req.read_body();
    if (p == "/301") {
      res.status = 301;
      (void)res.headers.set("Location", "/landed");
    } else if (p == "/307") {
      res.status = 307;
      (void)res.headers.set("Location", "/landed");
    } else if (p == "/away") {
      res.status = 302;
      (void)res.headers.set("Location", other_origin + "/landed");
    } else if (p == "/loop") {
      res.status = 302;
      (void)res.headers.set("Location", "/loop");
    } else {
      res.set_text(std::string(req.method_text()) + " " + std::string(p) +
                   (body && !body->empty() ? " " + *body : "") +
                   (req.header("Authorization").empty() ? "" : " with credentials"));
    }
  };
}

TEST(http_client, follows_redirects_by_the_rules) {
  test_server other(redirector(""));
  test_server s(redirector("http://127.0.0.1:" + std::to_string(other.port())));
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client_options o;
    o.redirects.follow = true;
    o.redirects.max_redirects = 5;
    client c(ex, r, o);

    client_request post;
    post.method = "POST";
    post.url = s.url("/301");
    post.body = "data";
    auto a = co_await c.send(post);
    CO_ASSERT_OK(a);
    EXPECT_EQ(a->body, "GET /landed") << "301 turns POST into GET without the body";
    EXPECT_EQ(a->redirects, 1u);
    EXPECT_EQ(a->url, s.url("/landed"));

    post.url = s.url("/307");
    auto b = co_await c.send(post);
    CO_ASSERT_OK(b);
    EXPECT_EQ(b->body, "POST /landed data") << "307 keeps method and body";

    client_request away;
    away.url = s.url("/away");
    (void)away.headers.set("Authorization", "Bearer secret");
    auto d = co_await c.send(away);
    CO_ASSERT_OK(d);
    EXPECT_EQ(d->body, "GET /landed") << "credentials stay behind on a cross-origin hop";
    EXPECT_EQ(d->url, other.url("/landed"));

    auto loop = co_await c.get(s.url("/loop"));
    CO_ASSERT_FALSE(loop);
    EXPECT_EQ(loop.error(), client_error::too_many_redirects);

    client off(ex, r);  // the default: redirects are returned, not followed
    auto e = co_await off.get(s.url("/301"));
    CO_ASSERT_OK(e);
    EXPECT_EQ(e->status, 301);
    EXPECT_EQ(e->headers.get("Location").value_or(""), "/landed");
  });
}

// ---------------------------------------------------------------------------
// HTTPS

TEST(http_client, verifies_the_server_certificate_and_its_name) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto good = net::tls::make_server_context({.cert_file = pki.server.cert_file,
                                             .key_file = pki.server.key_file,
                                             .alpn = {"http/1.1"}});
  auto untrusted = net::tls::make_server_context(
      {.cert_file = pki.untrusted_server.cert_file, .key_file = pki.untrusted_server.key_file});
  auto expired = net::tls::make_server_context(
      {.cert_file = pki.expired_server.cert_file, .key_file = pki.expired_server.key_file});
  test_server s(echo(), {}, &good);
  test_server u(echo(), {}, &untrusted);
  test_server x(echo(), {}, &expired);
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    dns::resolver_options ro;
    ro.hosts = dns::hosts::parse("127.0.0.1 wrong-name.test\n");
    dns::resolver r(ex, ro);
    client c(ex, r, {.tls = {.ca_file = pki.ca_file}});
    auto ok = co_await c.get(s.url("/secure", "https"));
    CO_ASSERT_OK(ok);
    EXPECT_EQ(ok->body, "GET /secure");
    EXPECT_GT(ok->timing.tls.count(), 0);
    auto again = co_await c.get(s.url("/again", "https"));
    CO_ASSERT_OK(again);
    EXPECT_TRUE(again->timing.reused);

    // The certificate names localhost and 127.0.0.1: the same server under
    // another name fails verification.
    auto wrong_name = co_await c.get("https://wrong-name.test:" + std::to_string(s.port()) + "/");
    CO_ASSERT_FALSE(wrong_name);
    EXPECT_TRUE(net::tls::is_verification_failure(wrong_name.error())) << wrong_name.error().message();

    auto unknown_ca = co_await c.get(u.url("/", "https"));
    CO_ASSERT_FALSE(unknown_ca);
    EXPECT_TRUE(net::tls::is_verification_failure(unknown_ca.error())) << unknown_ca.error().message();

    auto stale = co_await c.get(x.url("/", "https"));
    CO_ASSERT_FALSE(stale);
    EXPECT_THAT(stale.error().message(), HasSubstr("expired"));
  });
}

TEST(http_client, presents_a_client_certificate_when_the_server_requires_one) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto mtls = net::tls::make_server_context({.cert_file = pki.server.cert_file,
                                             .key_file = pki.server.key_file,
                                             .client_ca_file = pki.ca_file,
                                             .require_client_cert = true});
  test_server s(echo(), {}, &mtls);
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client with(ex, r,
                {.tls = {.ca_file = pki.ca_file,
                         .cert_file = pki.client.cert_file,
                         .key_file = pki.client.key_file}});
    auto ok = co_await with.get(s.url("/mtls", "https"));
    CO_ASSERT_OK(ok);
    EXPECT_EQ(ok->body, "GET /mtls");

    client without(ex, r, {.tls = {.ca_file = pki.ca_file}});
    auto refused = co_await without.get(s.url("/mtls", "https"));
    EXPECT_FALSE(refused) << "the server must refuse a client without a certificate";
  });
}

TEST(http_client, refuses_urls_it_cannot_send) {
  run_bounded([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto r = local_resolver(ex);
    client c(ex, r);
    auto ftp = co_await c.get("ftp://127.0.0.1/file");
    CO_ASSERT_FALSE(ftp);
    EXPECT_EQ(ftp.error(), client_error::unsupported_scheme);
    auto relative = co_await c.get("/just/a/path");
    CO_ASSERT_FALSE(relative);
    EXPECT_EQ(relative.error().category(), url_category());
    client_request bad_method;
    bad_method.method = "GET /x HTTP/1.1\r\nX:";
    bad_method.url = "http://127.0.0.1:1/";
    auto injected = co_await c.send(std::move(bad_method));
    CO_ASSERT_FALSE(injected);
  });
}

TEST(http_client, counts_idempotent_methods_as_rfc_9110_does) {
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
    EXPECT_TRUE(is_idempotent(m)) << m;
  for (const char* m : {"POST", "PATCH", "CONNECT", "get"}) EXPECT_FALSE(is_idempotent(m)) << m;
}

}  // namespace
}  // namespace trellis::http
