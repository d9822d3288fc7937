// Tests of http::server against real clients on 127.0.0.1: curl and
// Python's http.client as child processes, and raw sockets for exact bytes
// (pipelined bursts, malformed heads, a head trickled byte by byte). Each
// server runs on its own one-worker runtime on a background thread; the
// test body uses blocking clients whose every wait is bounded, and the
// fixture drains and joins the runtime even when an assertion fails.
#include "trellis/http/server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/bytes.hpp"
#include "support/certs.hpp"
#include "support/http_client.hpp"
#include "support/http_server.hpp"
#include "support/process.hpp"
#include "trellis/codec/http/error.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/net/tls.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using steady = std::chrono::steady_clock;

#define REQUIRE_PROGRAM(name)                                                           \
  do {                                                                                  \
    if (!test::program_exists(name))                                                    \
      GTEST_SKIP() << "needs the `" name "` program on PATH (Debian package " name ")"; \
  } while (0)

using test::test_server;

// The value of the series `series` (name plus labels, as exposed) in the
// server's Prometheus text; NaN when it is absent.
double metric(server& s, std::string_view series) {
  std::istringstream in(s.metrics().expose());
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  }
  return std::nan("");
}

// Polls `pred` every 5 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 2s) {
  const auto until = steady::now() + timeout;
  while (!pred()) {
    if (steady::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::string get(std::string_view target, std::string_view extra = {}) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra) +
         "\r\n";
}

using test::make_bytes;

// The handler most tests use: /echo answers the request body; /throw
// throws; anything else answers "<METHOD> <target>".
asio::awaitable<void> basic(request& req, response& res) {
  if (req.path() == "/echo") {
    auto body = co_await req.read_body();
    if (!body) {
      res.status = status_for(body.error());
      res.close = true;
      co_return;
    }
    res.body = std::move(*body);
    co_return;
  }
  if (req.path() == "/throw") throw std::runtime_error("boom: secret detail");
  res.set_text(std::string(req.method_text()) + " " + std::string(req.target()));
}

// Records the client port of every request, from the server's side.
struct port_log {
  std::mutex m;
  std::vector<std::uint16_t> ports;
  void add(std::uint16_t p) {
    std::lock_guard l(m);
    ports.push_back(p);
  }
  std::vector<std::uint16_t> get() {
    std::lock_guard l(m);
    return ports;
  }
};

// ---------------------------------------------------------------------------
// curl

TEST(http_server, keeps_one_connection_alive_for_two_curl_requests) {
  REQUIRE_PROGRAM("curl");
  port_log seen;
  test_server s([&](request& req, response& res) -> asio::awaitable<void> {
    seen.add(req.remote_endpoint().port());
    res.set_text(std::string(req.path()) + "\n");
    co_return;
  });
  auto r = test::run(
      {"curl", "-sS", "--max-time", "10", "-w", "%{num_connects} ", s.url("/a"), s.url("/b")});
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  EXPECT_EQ(r.out, "/a\n1 /b\n0 ") << "curl opened a second connection";
  const auto ports = seen.get();
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0], ports[1]) << "the server saw two connections";
}

TEST(http_server, echoes_a_1mb_chunked_upload_from_curl_exactly) {
  REQUIRE_PROGRAM("curl");
  std::mutex m;
  std::string framing;
  test_server s([&](request& req, response& res) -> asio::awaitable<void> {
    {
      std::lock_guard l(m);
      framing = std::string(req.header("Transfer-Encoding"));
    }
    co_await basic(req, res);
  });
  const std::string data = make_bytes(1 << 20);
  auto r = test::run({"curl", "-sS", "--max-time", "20", "-T", "-", s.url("/echo")}, data);
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  EXPECT_EQ(r.out.size(), data.size());
  EXPECT_TRUE(r.out == data) << "the echoed body differs from the upload";
  std::lock_guard l(m);
  EXPECT_EQ(framing, "chunked") << "curl -T - should upload with chunked framing";
}

TEST(http_server, sends_100_continue_so_curl_sends_a_large_body_at_once) {
  REQUIRE_PROGRAM("curl");
  std::mutex m;
  std::string expect;
  test_server s([&](request& req, response& res) -> asio::awaitable<void> {
    {
      std::lock_guard l(m);
      expect = std::string(req.header("Expect"));
    }
    auto body = co_await req.read_body();
    if (!body) {
      res.status = status_for(body.error());
      co_return;
    }
    res.set_text(std::to_string(body->size()));
  });
  const std::string data = make_bytes(2 << 20);
  const auto t0 = steady::now();
  // curl asks for 100-continue on a body this large; if the server did not
  // answer it, curl would wait --expect100-timeout (10 s) before sending.
  auto r = test::run({"curl", "-sS", "-v", "--max-time", "20", "--expect100-timeout", "10",
                      "--data-binary", "@-", s.url("/upload")},
                     data);
  const auto elapsed = steady::now() - t0;
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  EXPECT_EQ(r.out, std::to_string(data.size()));
  EXPECT_THAT(r.err, HasSubstr("< HTTP/1.1 100 Continue"));
  EXPECT_LT(elapsed, 5s) << "curl waited for a 100 Continue that never came";
  std::lock_guard l(m);
  EXPECT_EQ(expect, "100-continue");
}

TEST(http_server, a_handler_refusing_an_expect_100_body_answers_413_without_receiving_it) {
  REQUIRE_PROGRAM("curl");
  std::atomic<bool> read_attempted{false};
  test_server s([&](request& req, response& res) -> asio::awaitable<void> {
    if (req.has_body() && req.head().content_length > 1000) {
      res.status = 413;
      res.set_text("too large\n");
      co_return;
    }
    read_attempted = true;
    co_await basic(req, res);
  });
  const std::string data = make_bytes(2 << 20);
  const auto t0 = steady::now();
  auto r = test::run({"curl", "-sS", "-v", "--max-time", "20", "--expect100-timeout", "10", "-H",
                      "Expect: 100-continue", "-w", "\n%{http_code} %{size_upload}",
                      "--data-binary", "@-", s.url("/upload")},
                     data);
  const auto elapsed = steady::now() - t0;
  ASSERT_FALSE(r.timed_out);
  EXPECT_THAT(r.out, ::testing::EndsWith("\n413 0")) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("100 Continue")));
  EXPECT_THAT(r.err, HasSubstr("< Connection: close"));
  EXPECT_LT(elapsed, 5s);
  EXPECT_FALSE(read_attempted);
  // The server read the head and nothing of the 2 MiB body.
  EXPECT_LT(metric(s.srv(), "trellis_http_received_bytes_total"), 4096.0);
}

TEST(http_server, a_refused_expect_100_request_gets_its_final_status_and_the_connection_closes) {
  test_server s([](request& req, response& res) -> asio::awaitable<void> {
    if (req.head().content_length > 1000) {
      res.status = 413;
      res.set_text("too large\n");
      co_return;
    }
    co_await basic(req, res);
  });
  test::raw_client c(s.port());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(
      c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: "
             "100-continue\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 413) << "no 100 Continue before the final answer: " << r->head;
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_EQ(r->body, "too large\n");
  EXPECT_TRUE(c.wait_closed(2s)) << "the body was never sent, so the connection cannot be reused";
}

TEST(http_server, answers_head_with_content_length_and_no_body) {
  test_server s([](request&, response& res) -> asio::awaitable<void> {
    res.set_text("Hello, World!");
    co_return;
  });
  // Raw: a HEAD and a GET pipelined; if the HEAD response carried a body,
  // the GET response would not parse.
  test::raw_client c(s.port());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n" + get("/hello")));
  auto head = c.read_response(/*head_request=*/true);
  ASSERT_TRUE(head) << c.error();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), "13");
  EXPECT_EQ(head->header("Content-Type"), "text/plain; charset=utf-8");
  auto body = c.read_response();
  ASSERT_TRUE(body) << c.error();
  EXPECT_EQ(body->status, 200);
  EXPECT_EQ(body->body, "Hello, World!");

  if (!test::program_exists("curl"))
    GTEST_SKIP() << "raw part passed; curl part needs `curl` (Debian package curl)";
  auto r = test::run({"curl", "-sS", "--max-time", "10", "-I", "-w", "downloaded=%{size_download}",
                      s.url("/hello")});
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  EXPECT_THAT(r.out, HasSubstr("Content-Length: 13\r\n"));
  EXPECT_THAT(r.out, HasSubstr("downloaded=0"));
}

TEST(http_server, serves_https_to_curl_over_alpn_negotiated_http_1_1) {
  REQUIRE_OPENSSL();
  REQUIRE_PROGRAM("curl");
  const auto& pki = test::test_pki();
  auto ctx = net::tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file, .alpn = {"http/1.1"}});
  std::atomic<int> secure{0};
  test_server s(
      [&](request& req, response& res) -> asio::awaitable<void> {
        if (req.secure()) ++secure;
        co_await basic(req, res);
      },
      {}, &ctx);
  auto r =
      test::run({"curl", "-sS", "--max-time", "10", "--cacert", pki.ca_file, "-w",
                 " %{http_version} %{num_connects}\n", s.url("/a", "https"), s.url("/b", "https")});
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  EXPECT_EQ(r.out, "GET /a 1.1 1\nGET /b 1.1 0\n");
  EXPECT_EQ(secure, 2) << "request::secure() must be true over TLS";
}

TEST(http_server, closes_an_idle_tls_connection_at_idle_timeout_with_close_notify) {
  REQUIRE_OPENSSL();
  REQUIRE_PROGRAM("python3");
  const auto& pki = test::test_pki();
  auto ctx = net::tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file, .alpn = {"http/1.1"}});
  server_options o;
  o.idle_timeout = 300ms;
  test_server s(basic, o, &ctx);
  // Python's ssl module: one request, then wait silently for the server.
  const char* script = R"PY(
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
t = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5), server_hostname='127.0.0.1')
t.sendall(b'GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n')
data = b''
while b'GET /a' not in data:
    data += t.recv(4096)
t0 = time.monotonic()
try:
    rest = t.recv(4096)
except (ssl.SSLError, OSError) as e:
    rest = repr(e)
print(int((time.monotonic() - t0) * 1000), repr(rest))
)PY";
  auto r = test::run({"python3", "-c", script, std::to_string(s.port()), pki.ca_file}, {}, 15s);
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  std::istringstream in(r.out);
  int ms = -1;
  std::string rest;
  in >> ms >> rest;
  EXPECT_EQ(rest, "b''") << "a clean TLS close (close_notify), then EOF: " << r.out;
  EXPECT_GE(ms, 250) << r.out;
  EXPECT_LT(ms, 1500) << r.out;
}

// ---------------------------------------------------------------------------
// Python's http.client

TEST(http_server, serves_three_requests_from_python_http_client_on_one_connection) {
  REQUIRE_PROGRAM("python3");
  port_log seen;
  test_server s([&](request& req, response& res) -> asio::awaitable<void> {
    seen.add(req.remote_endpoint().port());
    co_await basic(req, res);
  });
  const char* script = R"PY(
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=5)
for method, path, body in [('GET', '/one', None), ('POST', '/echo', b'x' * 1000), ('GET', '/three', None)]:
    c.request(method, path, body=body)
    r = c.getresponse()
    data = r.read()
    port = c.sock.getsockname()[1] if c.sock else 'closed'
    print(r.status, len(data), data[:10].decode().replace(' ', '_'), port)
c.close()
)PY";
  auto r = test::run({"python3", "-c", script, std::to_string(s.port())}, {}, 15s);
  ASSERT_TRUE(r.status.success()) << r.status.describe() << ": " << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> status, length, start, port;
  for (std::string a, b, c, d; lines >> a >> b >> c >> d;) {
    status.push_back(a);
    length.push_back(b);
    start.push_back(c);
    port.push_back(d);
  }
  ASSERT_EQ(status.size(), 3u) << r.out;
  EXPECT_EQ(status, (std::vector<std::string>{"200", "200", "200"}));
  EXPECT_EQ(length, (std::vector<std::string>{"8", "1000", "10"}));
  EXPECT_EQ(start, (std::vector<std::string>{"GET_/one", "xxxxxxxxxx", "GET_/three"}));
  EXPECT_NE(port[0], "closed");
  EXPECT_EQ(port[0], port[1]);
  EXPECT_EQ(port[1], port[2]);
  const auto ports = seen.get();
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(std::to_string(ports[0]), port[0]);
  EXPECT_EQ(ports[1], ports[0]);
  EXPECT_EQ(ports[2], ports[0]);
}

// ---------------------------------------------------------------------------
// Raw sockets: connection management

TEST(http_server, answers_pipelined_requests_in_order) {
  test_server s(basic);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send(get("/1") + "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo" +
                     get("/3")));
  std::vector<std::string> bodies;
  for (int i = 0; i < 3; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << "response " << i << ": " << c.error();
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(r->has_header("Connection")) << r->head;
    bodies.push_back(r->body);
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"GET /1", "two", "GET /3"}));
  EXPECT_TRUE(c.buffered().empty()) << "unexpected bytes: " << c.buffered();
  // Still open for more.
  ASSERT_TRUE(c.send(get("/4")));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body, "GET /4");
}

TEST(http_server, answers_a_burst_of_1000_pipelined_requests_larger_than_a_read_in_order) {
  test_server s(basic);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.connected()) << c.error();
  std::string burst;
  for (int i = 0; i < 1000; ++i) burst += get("/r" + std::to_string(i));
  ASSERT_GT(burst.size(), 32u * 1024) << "the burst must span several reads of the server";
  ASSERT_TRUE(c.send(burst)) << c.error();
  for (int i = 0; i < 1000; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << "response " << i << ": " << c.error();
    ASSERT_EQ(r->body, "GET /r" + std::to_string(i));
  }
  EXPECT_TRUE(c.buffered().empty());
}

TEST(http_server, closes_after_answering_connection_close) {
  test_server s(basic);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send(get("/bye", "Connection: close\r\n"))) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /bye");
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_TRUE(c.wait_closed(2s));
}

TEST(http_server, closes_an_http_1_0_connection_without_keep_alive) {
  test_server s(basic);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n")) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /old");
  EXPECT_NE(r->header("Connection"), "keep-alive");
  EXPECT_TRUE(c.wait_closed(2s));
}

TEST(http_server, keeps_an_http_1_0_connection_open_when_asked_and_says_so) {
  test_server s(basic);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Connection"), "keep-alive");
  EXPECT_FALSE(c.readable_within(200ms)) << "the server closed a keep-alive HTTP/1.0 connection";
  ASSERT_TRUE(c.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")) << c.error();
  r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body, "GET /b");
}

TEST(http_server, sends_one_date_and_one_server_field_even_when_the_handler_sets_them) {
  test_server s([](request&, response& res) -> asio::awaitable<void> {
    (void)res.headers.set("Date",
                          "Tue, 15 Nov 1994 08:12:31 GMT");  // e.g. a proxy passing upstream's on
    (void)res.headers.set("Server", "upstream/1.0");
    res.set_text("ok");
    co_return;
  });
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send(get("/"))) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  int dates = 0, servers = 0;
  for (const auto& [name, value] : r->fields) {
    dates += test::raw_response::iequals(name, "Date");
    servers += test::raw_response::iequals(name, "Server");
  }
  // RFC 9110 §5.3: a sender MUST NOT generate a field twice unless it is a
  // list; Date (§6.6.1) and Server (§10.2.4) are not.
  // (Which value wins is policy: nginx keeps its own unless told to pass
  // the upstream's on. Either way there must be one.)
  EXPECT_EQ(dates, 1) << r->head;
  EXPECT_EQ(servers, 1) << r->head;
}

// ---------------------------------------------------------------------------
// Malformed requests: the right status, "Connection: close", then the close.

server_options small_limits() {
  server_options o;
  o.limits.max_request_line = 256;
  o.limits.max_header_bytes = 1024;
  o.limits.max_header_count = 8;
  o.limits.max_body = 1000;
  return o;
}

void expect_rejected(const std::string& bytes, int status) {
  test_server s(basic, small_limits());
  test::raw_client c(s.port());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send(bytes)) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, status) << r->head;
  EXPECT_EQ(r->header("Connection"), "close") << r->head;
  EXPECT_TRUE(c.wait_closed(2s)) << "the connection must close after a malformed request";
  EXPECT_EQ(c.buffered(), "") << "nothing may follow the error response";
}

TEST(http_server, rejects_content_length_with_transfer_encoding_with_400_and_closes) {
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n",
      400);
}

TEST(http_server, rejects_two_different_content_lengths_with_400_and_closes) {
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400);
}

// A coding trellis does not decode, ahead of a final chunked (RFC 9112 §6.1).
TEST(http_server, rejects_transfer_encoding_gzip_chunked_with_501_and_closes) {
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
}

// A request whose final coding is not chunked has no knowable length: 400,
// not 501 (RFC 9112 §6.3).
TEST(http_server, rejects_transfer_encoding_gzip_alone_with_400_and_closes) {
  expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
}

TEST(http_server, rejects_obs_fold_with_400_and_closes) {
  expect_rejected("GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n", 400);
}

TEST(http_server, rejects_bare_lf_with_400_and_closes) {
  expect_rejected("GET / HTTP/1.1\nHost: x\n\n", 400);
}

TEST(http_server, rejects_whitespace_before_colon_with_400_and_closes) {
  expect_rejected("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
}

TEST(http_server, rejects_http_1_1_without_host_with_400_and_closes) {
  expect_rejected("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
}

TEST(http_server, rejects_http_2_0_request_line_with_505_and_closes) {
  expect_rejected("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
}

TEST(http_server, rejects_a_request_line_over_max_request_line_with_414_and_closes) {
  expect_rejected(get("/" + std::string(300, 'a')), 414);
}

TEST(http_server, rejects_a_header_section_over_max_header_bytes_with_431_and_closes) {
  const std::string big(600, 'v');
  expect_rejected(get("/", "X-A: " + big + "\r\nX-B: " + big + "\r\n"), 431);
}

TEST(http_server, rejects_too_many_header_fields_with_431_and_closes) {
  std::string fields;
  for (int i = 0; i < 10; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  expect_rejected(get("/", fields), 431);
}

TEST(http_server, rejects_a_content_length_over_max_body_with_413_and_closes) {
  expect_rejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413);
}

TEST(http_server, rejects_an_unknown_expectation_with_417_and_closes) {
  expect_rejected(get("/", "Expect: something-else\r\n"), 417);
}

// ---------------------------------------------------------------------------
// Handler failures, deadlines, shutdown

TEST(http_server, answers_500_when_the_handler_throws_and_keeps_serving) {
  test_server s(basic);
  {
    test::raw_client c(s.port());
    ASSERT_TRUE(c.send(get("/throw"))) << c.error();
    auto r = c.read_response();
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 500);
    EXPECT_THAT(r->body, Not(HasSubstr("secret")))
        << "the exception's text must not reach the client";
  }
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send(get("/after"))) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /after");
}

// Sends one more byte of a field line every 100 ms until the server says
// something or closes (at most 60 bytes: 6 s).
void trickle_head(test::raw_client& c) {
  const std::string line = "X-Slow: " + std::string(52, 'a');
  for (char ch : line) {
    if (c.readable_within(100ms)) return;
    if (!c.send(std::string(1, ch))) return;  // the server may close between two checks
  }
}

TEST(http_server, answers_408_to_a_slowloris_head_at_header_timeout_then_closes) {
  server_options o;
  o.header_timeout = 500ms;
  test_server s(basic, o);
  test::raw_client c(s.port(), 5s);
  const auto t0 = steady::now();
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n")) << c.error();
  trickle_head(c);
  auto r = c.read_response();
  const auto elapsed = steady::now() - t0;
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_GE(elapsed, 450ms) << "trickled bytes must not be cut off before header_timeout";
  EXPECT_LT(elapsed, 2s) << "trickled bytes must not extend header_timeout";
  EXPECT_TRUE(c.wait_closed(1s));
}

TEST(http_server, applies_header_timeout_to_a_pipelined_request_trickled_after_the_first) {
  server_options o;
  o.header_timeout = 500ms;
  o.write_timeout = 3s;  // bounds the test should header_timeout not apply
  o.request_timeout = 3s;
  test_server s(basic, o);
  test::raw_client c(s.port(), 5s);
  // A complete request and the start of a second one arrive together; the
  // second one's head then trickles in.
  ASSERT_TRUE(c.send(get("/first") + "GET /second HTTP/1.1\r\nHost: x\r\n")) << c.error();
  auto first = c.read_response();
  ASSERT_TRUE(first) << c.error();
  EXPECT_EQ(first->body, "GET /first");
  const auto t0 = steady::now();
  trickle_head(c);
  auto r = c.read_response();
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
  ASSERT_TRUE(r) << "no 408 for the trickled second head; after " << elapsed.count()
                 << " ms: " << c.error();
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_LT(elapsed, 2s) << "the second head must get header_timeout too";
  EXPECT_TRUE(c.wait_closed(1s));
}

TEST(http_server, answers_408_when_a_request_body_stalls_past_body_timeout) {
  server_options o;
  o.body_timeout = 500ms;
  test_server s(basic, o);  // basic answers status_for(error) when reading the body fails
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"))
      << c.error();
  const auto t0 = steady::now();
  auto r = c.read_response();
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 408)
      << "a body that stops coming is a request timeout (RFC 9110 §15.5.9), as "
         "server.hpp promises for body_timeout";
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_GE(elapsed, 450ms);
  EXPECT_LT(elapsed, 900ms)
      << "once the body has timed out the server must not wait body_timeout again";
  EXPECT_TRUE(c.wait_closed(1s));
}

TEST(http_server, keeps_writing_to_a_slow_reader_that_makes_steady_progress) {
  // The client takes 64 KiB every 2 ms (~30 MB/s) through a small receive
  // buffer. The server sees that progress in bursts (Linux reports a socket
  // writable once half of what it has queued is gone: ~2 MB, ~70 ms here),
  // far more often than write_timeout; but the whole 40 MB response keeps
  // the server waiting on the client for several write_timeouts.
  server_options o;
  o.write_timeout = 400ms;
  constexpr std::size_t size = 40u << 20;
  test_server s(
      [](request&, response& res) -> asio::awaitable<void> {
        res.body.assign(size, 'x');
        co_return;
      },
      o);
  test::raw_client c(s.port(), 10s, 64 * 1024);
  ASSERT_TRUE(c.send(get("/big"))) << c.error();
  std::string head;
  std::size_t body = 0, want = 0;
  bool have_head = false;
  std::vector<char> buf(64 * 1024);
  const auto t0 = steady::now();
  while (steady::now() - t0 < 15s) {
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    const ssize_t n = ::recv(c.fd(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    std::string_view got(buf.data(), static_cast<std::size_t>(n));
    if (!have_head) {
      head.append(got);
      const auto end = head.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      have_head = true;
      const auto cl = head.find("Content-Length: ");
      if (cl != std::string::npos && cl < end)
        want = std::stoul(head.substr(cl + 16, head.find("\r\n", cl) - cl - 16));
      body = head.size() - end - 4;
    } else {
      body += got.size();
    }
    if (have_head && body >= want) break;
    std::this_thread::sleep_for(2ms);
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
  ASSERT_TRUE(have_head) << "no response head";
  ASSERT_EQ(want, size) << head;
  EXPECT_EQ(body, want) << "the response was cut off after " << elapsed.count() << " ms (" << body
                        << " of " << want << " bytes) although the client never stopped reading";
  if (body == want) {
    EXPECT_GT(elapsed, 2 * o.write_timeout)
        << "the test means nothing unless the transfer outlasts write_timeout";
  }
}

TEST(http_server, closes_the_connection_when_a_handler_overruns_request_timeout) {
  server_options o;
  o.request_timeout = 300ms;
  test_server s(
      [](request& req, response& res) -> asio::awaitable<void> {
        if (req.path() == "/slow") {
          asio::steady_timer t(co_await asio::this_coro::executor, 800ms);
          co_await t.async_wait(use_nothrow);
        }
        co_await basic(req, res);
      },
      o);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send(get("/slow"))) << c.error();
  const auto t0 = steady::now();
  EXPECT_TRUE(c.wait_closed(3s));
  const auto elapsed = steady::now() - t0;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 750ms) << "closed when the handler finished, not at request_timeout";
  EXPECT_EQ(c.buffered(), "");
  test::raw_client d(s.port());
  ASSERT_TRUE(d.send(get("/fast"))) << d.error();
  auto r = d.read_response();
  ASSERT_TRUE(r) << d.error();
  EXPECT_EQ(r->body, "GET /fast");
}

TEST(http_server, closes_a_silent_keep_alive_connection_at_idle_timeout) {
  server_options o;
  o.idle_timeout = 300ms;
  test_server s(basic, o);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send(get("/"))) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  const auto t0 = steady::now();
  EXPECT_TRUE(c.wait_closed(3s));
  const auto elapsed = steady::now() - t0;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 1500ms);
  EXPECT_EQ(c.buffered(), "") << "an idle close is silent";
  EXPECT_TRUE(eventually([&] { return metric(s.srv(), "trellis_http_connections") == 0; }));
}

TEST(http_server,
     drain_finishes_in_flight_requests_with_connection_close_and_closes_idle_ones_at_once) {
  std::atomic<bool> slow_started{false};
  test_server s([&](request& req, response& res) -> asio::awaitable<void> {
    if (req.path() == "/slow") {
      slow_started = true;
      asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
      co_await t.async_wait(use_nothrow);
      res.set_text("slow done");
      co_return;
    }
    co_await basic(req, res);
  });
  test::raw_client idle(s.port());
  ASSERT_TRUE(idle.send(get("/fast"))) << idle.error();
  ASSERT_TRUE(idle.read_response()) << idle.error();
  test::raw_client busy(s.port());
  ASSERT_TRUE(busy.send(get("/slow"))) << busy.error();
  ASSERT_TRUE(eventually([&] { return slow_started.load(); }));

  const auto t0 = steady::now();
  s.drain();
  EXPECT_TRUE(idle.wait_closed(2s));
  const auto idle_closed = steady::now() - t0;
  EXPECT_LT(idle_closed, 150ms) << "an idle connection must not wait for the busy one";
  EXPECT_EQ(idle.buffered(), "");
  {
    // The drain hooks have run: nothing new is taken.
    test::raw_client late(s.port(), 1s);
    if (late.connected() && late.send(get("/late"))) {
      EXPECT_TRUE(late.wait_closed(1s));
      EXPECT_EQ(late.buffered(), "") << "a draining server must not take new requests";
    }
  }

  auto r = busy.read_response();
  ASSERT_TRUE(r) << busy.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "slow done");
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_TRUE(busy.wait_closed(2s));

  const auto t1 = steady::now();
  s.stop();
  EXPECT_LT(steady::now() - t1, 2s)
      << "run() must return once the in-flight request is done, not at drain_timeout";
}

// An idle plain-HTTP connection parks after a short while: its coroutine
// ends and a readiness wait takes its place. Parking must be invisible to
// the client: the next request, single or pipelined, is served as before,
// and the connection still counts as open.
TEST(http_server, a_parked_connection_serves_its_next_requests) {
  test_server s(basic);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send(get("/first"))) << c.error();
  ASSERT_TRUE(c.read_response()) << c.error();
  std::this_thread::sleep_for(400ms);  // well past the park delay
  EXPECT_EQ(metric(s.srv(), "trellis_http_connections"), 1.0);
  ASSERT_TRUE(c.send(get("/second"))) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body, "GET /second");
  std::this_thread::sleep_for(400ms);
  ASSERT_TRUE(c.send(get("/a") + get("/b") + get("/c"))) << c.error();
  for (const char* want : {"GET /a", "GET /b", "GET /c"}) {
    auto p = c.read_response();
    ASSERT_TRUE(p) << c.error();
    EXPECT_EQ(p->body, want);
  }
}

TEST(http_server, drain_closes_parked_and_never_used_connections) {
  test_server s(basic);
  test::raw_client used(s.port());
  ASSERT_TRUE(used.send(get("/"))) << used.error();
  ASSERT_TRUE(used.read_response()) << used.error();
  test::raw_client silent(s.port());
  ASSERT_TRUE(silent.connected()) << silent.error();
  ASSERT_TRUE(eventually([&] { return metric(s.srv(), "trellis_http_connections") == 2; }));
  std::this_thread::sleep_for(400ms);  // both parked
  s.drain();
  EXPECT_TRUE(used.wait_closed(5s));
  EXPECT_TRUE(silent.wait_closed(5s));
  EXPECT_EQ(used.buffered(), "");
  EXPECT_EQ(silent.buffered(), "");
}

// Raises the soft RLIMIT_NOFILE to the hard limit for the life of the object.
class raised_fd_limit {
 public:
  raised_fd_limit() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit r = saved_;
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) == 0)
      current_ = r.rlim_cur;
    else
      current_ = saved_.rlim_cur;
  }
  ~raised_fd_limit() { setrlimit(RLIMIT_NOFILE, &saved_); }
  rlim_t limit() const noexcept { return current_; }

 private:
  rlimit saved_{};
  rlim_t current_ = 0;
};

TEST(http_server, holds_10000_idle_keep_alive_connections_and_still_serves_new_ones) {
  const auto t0 = steady::now();
  raised_fd_limit fds;
  // Each connection costs two descriptors here (client and server end);
  // keep some for the test binary, the runtime and the rest.
  constexpr std::size_t wanted = 10'000;
  constexpr rlim_t reserve = 500;
  std::size_t n = wanted;
  if (fds.limit() != RLIM_INFINITY && fds.limit() < 2 * wanted + reserve) {
    n = fds.limit() > reserve + 200 ? static_cast<std::size_t>((fds.limit() - reserve) / 2) : 100;
    std::cout << "[   NOTE   ] RLIMIT_NOFILE allows only " << fds.limit() << " descriptors (< "
              << 2 * wanted + reserve << "): holding " << n << " connections instead of " << wanted
              << "\n";
    RecordProperty("scaled_down_connections", static_cast<int>(n));
  }
  server_options o;
  o.listener.max_connections = n + 16;
  test_server s(basic, o);

  std::vector<test::raw_client> clients;
  clients.reserve(n);
  const std::string request = get("/");
  for (std::size_t i = 0; i < n; ++i) {
    clients.emplace_back(s.port(), 5s);
    auto& c = clients.back();
    ASSERT_TRUE(c.connected()) << "connection " << i << ": " << c.error();
    ASSERT_TRUE(c.send(request)) << "connection " << i << ": " << c.error();
    auto r = c.read_response();
    ASSERT_TRUE(r) << "connection " << i << ": " << c.error();
    ASSERT_EQ(r->status, 200) << "connection " << i;
  }
  EXPECT_TRUE(eventually([&] {
    return metric(s.srv(), "trellis_http_connections") == static_cast<double>(n);
  })) << "gauge: "
      << metric(s.srv(), "trellis_http_connections") << ", want " << n;

  // A newcomer is served, and so is the oldest idle connection.
  test::raw_client late(s.port());
  ASSERT_TRUE(late.send(get("/late"))) << late.error();
  auto r = late.read_response();
  ASSERT_TRUE(r) << late.error();
  EXPECT_EQ(r->body, "GET /late");
  ASSERT_TRUE(clients.front().send(get("/again"))) << clients.front().error();
  r = clients.front().read_response();
  ASSERT_TRUE(r) << clients.front().error();
  EXPECT_EQ(r->body, "GET /again");

  clients.clear();
  late.close();
  EXPECT_TRUE(eventually([&] { return metric(s.srv(), "trellis_http_connections") == 0; }, 10s))
      << "gauge: " << metric(s.srv(), "trellis_http_connections");
  EXPECT_LT(steady::now() - t0, 20s);
}

// ---------------------------------------------------------------------------
// Streaming both ways

asio::awaitable<void> streamed(request&, response& res) {
  (void)res.headers.set("Content-Type", "text/plain");
  res.stream = [](body_writer& w) -> asio::awaitable<void> {
    for (std::string_view part : {"one,", "two,", "three"})
      if (auto ec = co_await w.write(part)) co_return;
  };
  co_return;
}

TEST(http_server, streams_a_chunked_response_in_three_writes) {
  test_server s(streamed);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send(get("/stream"))) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->chunked);
  EXPECT_FALSE(r->has_header("Content-Length"));
  EXPECT_EQ(r->wire_body, "4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n");
  EXPECT_EQ(r->body, "one,two,three");
  // The connection is still good for the next request.
  ASSERT_TRUE(c.send(get("/stream"))) << c.error();
  r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body, "one,two,three");

  if (!test::program_exists("curl"))
    GTEST_SKIP() << "raw part passed; curl part needs `curl` (Debian package curl)";
  auto cr = test::run({"curl", "-sS", "--max-time", "10", s.url("/stream")});
  ASSERT_TRUE(cr.status.success()) << cr.status.describe() << ": " << cr.err;
  EXPECT_EQ(cr.out, "one,two,three");
}

TEST(http_server, sends_the_trailers_a_stream_sets_after_its_last_chunk) {
  test_server s([](request&, response& res) -> asio::awaitable<void> {
    (void)res.headers.set("Trailer", "X-Checksum");
    res.stream = [&res](body_writer& w) -> asio::awaitable<void> {
      if (auto ec = co_await w.write("data")) co_return;
      // Known only once the body is written, as a digest would be.
      (void)res.trailers.set("X-Checksum", "4-bytes");
      (void)res.trailers.set("Content-Length", "4");  // framing: never a trailer
      (void)res.trailers.set("X-Second", "two");
    };
    co_return;
  });
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send(get("/t"))) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->wire_body, "4\r\ndata\r\n0\r\nX-Checksum: 4-bytes\r\nX-Second: two\r\n\r\n");
  ASSERT_TRUE(c.send(get("/t"))) << c.error();
  r = c.read_response();
  ASSERT_TRUE(r) << c.error() << " (the connection must stay usable after a trailer section)";
  EXPECT_EQ(r->body, "data");

  // An HTTP/1.0 client gets no chunked coding, so no trailers either.
  test::raw_client old(s.port());
  ASSERT_TRUE(old.send("GET /t HTTP/1.0\r\n\r\n")) << old.error();
  r = old.read_response();
  ASSERT_TRUE(r) << old.error();
  EXPECT_EQ(r->body, "data");
  EXPECT_FALSE(r->has_header("X-Checksum"));
}

TEST(http_server, streams_to_an_http_1_0_client_delimited_by_close) {
  test_server s(streamed);
  test::raw_client c(s.port());
  ASSERT_TRUE(c.send("GET /stream HTTP/1.0\r\n\r\n")) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_FALSE(r->chunked) << "HTTP/1.0 has no chunked coding";
  EXPECT_FALSE(r->has_header("Content-Length"));
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_EQ(r->body, "one,two,three");
}

TEST(http_server, hands_a_10mb_chunked_upload_to_the_handler_piece_by_piece) {
  constexpr std::size_t total = 10u << 20;
  std::atomic<std::size_t> max_piece{0}, pieces{0};
  server_options o;
  o.limits.max_body = 16u << 20;
  test_server s(
      [&](request& req, response& res) -> asio::awaitable<void> {
        std::size_t n = 0;
        for (int guard = 0; guard < 1'000'000; ++guard) {
          auto piece = co_await req.read_some();
          if (!piece) {
            res.status = status_for(piece.error());
            res.set_text(piece.error().message());
            co_return;
          }
          if (piece->empty()) break;
          n += piece->size();
          ++pieces;
          if (piece->size() > max_piece) max_piece = piece->size();
        }
        res.set_text(std::to_string(n));
      },
      o);
  // Chunks of assorted sizes, so chunk boundaries fall anywhere in a read.
  std::string wire = "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  wire.reserve(total + total / 100 + 1024);
  const std::string data = make_bytes(70'000);
  static constexpr std::size_t sizes[] = {1, 70'000, 4093, 65'536, 17, 30'000};
  std::size_t sent = 0;
  for (std::size_t i = 0; sent < total; ++i) {
    const std::size_t k = std::min(sizes[i % std::size(sizes)], total - sent);
    std::ostringstream hex;
    hex << std::hex << k;
    wire += hex.str() + "\r\n";
    wire.append(data, 0, k);
    wire += "\r\n";
    sent += k;
  }
  wire += "0\r\n\r\n";

  test::raw_client c(s.port(), 20s);
  ASSERT_TRUE(c.send(wire)) << c.error();
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, std::to_string(total));
  EXPECT_LE(max_piece.load(), 64u * 1024)
      << "the body must be handed out as it arrives, not buffered";
  EXPECT_GE(pieces.load(), total / (64 * 1024));
}

}  // namespace
}  // namespace trellis::http
