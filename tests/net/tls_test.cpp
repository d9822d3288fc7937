// Tests of net/tls against real peers on 127.0.0.1: `openssl s_server` and
// `openssl s_client` as child processes, and trellis talking to itself.
// Certificates come from support/certs (generated per test process), and
// every run of an io_context is bounded, so a broken peer fails a test
// instead of hanging it. The end of the file tests the two support
// utilities themselves (process, certs), which other tests reuse.
#include "trellis/net/tls.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <signal.h>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/read_until.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <exception>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/certs.hpp"
#include "support/process.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/net/error.hpp"

namespace trellis::net {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using ::testing::AnyOf;
using ::testing::HasSubstr;

const asio::ip::address loopback = asio::ip::make_address("127.0.0.1");

// Runs coroutines on one io_context for a bounded time. The coroutines used
// below are named lambdas (`auto server = [&]...; tasks.spawn(server());`):
// the lambda object must outlive its coroutine, which reads its captures
// through it, so a temporary lambda would leave the coroutine dangling.
class task_runner {
 public:
  asio::io_context& io() { return io_; }

  void spawn(asio::awaitable<void> task) {
    ++pending_;
    asio::co_spawn(io_, std::move(task), [this](std::exception_ptr e) {
      --pending_;
      if (e) errors_.push_back(e);
    });
  }

  // Runs until every task finished or `limit` passed.
  ::testing::AssertionResult run(std::chrono::milliseconds limit = 10s) {
    io_.run_for(limit);
    for (const auto& e : errors_) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        return ::testing::AssertionFailure() << "a task threw: " << ex.what();
      }
    }
    if (pending_ != 0)
      return ::testing::AssertionFailure()
             << pending_ << " task(s) still running after " << limit.count() << " ms";
    return ::testing::AssertionSuccess();
  }

 private:
  asio::io_context io_;
  int pending_ = 0;
  std::vector<std::exception_ptr> errors_;
};

// A port that was free a moment ago, for peers that need one on their
// command line: bind to port 0, read the port the kernel chose, release it.
unsigned short free_port() {
  asio::io_context io;
  tcp::acceptor a(io, {loopback, 0});
  return a.local_endpoint().port();
}

// Polls until something accepts TCP connections on 127.0.0.1:port; gives
// up when `peer` exits or `timeout` passes.
bool wait_until_listening(unsigned short port, test::process& peer,
                          std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  asio::io_context io;
  while (std::chrono::steady_clock::now() < deadline && peer.running()) {
    tcp::socket probe(io);
    std::error_code ec;
    probe.connect({loopback, port}, ec);  // loopback: refused or accepted at once
    if (!ec) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Reads everything until the stream ends; returns the data and how it
// ended, classified (eof = close_notify, tls_truncated, or another error).
asio::awaitable<std::pair<std::string, std::error_code>> read_to_end(tls::stream& s) {
  std::string data;
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
    data.append(buf, n);
    if (ec) co_return std::pair{data, tls::classify_read_error(ec)};
  }
}

asio::awaitable<std::error_code> write_all(tls::stream& s, const std::string& text) {
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(text), use_nothrow);
  co_return ec;
}

// What one end of a connection saw.
struct side {
  std::error_code handshake;
  tls::session_info info;  // when the handshake succeeded
  std::string received;
  std::error_code end;       // how reading ended (classified)
  std::error_code shutdown;  // result of tls::shutdown, when called
};

enum class server_close { close_notify, tcp_only };

const std::string greeting = "hello from the trellis server\n";

// One in-process connection: the server handshakes, sends `greeting` and
// closes (with close_notify, or by dropping TCP); the client handshakes for
// `host`, reads to the end and, after a clean end, closes in turn.
struct exchange {
  side server, client;
  ::testing::AssertionResult finished = ::testing::AssertionFailure();
};

exchange run_exchange(asio::ssl::context& server_ctx, asio::ssl::context& client_ctx,
                      const std::string& host, server_close how = server_close::close_notify) {
  exchange x;
  task_runner tasks;
  tcp::acceptor acceptor(tasks.io(), {loopback, 0});
  const auto port = acceptor.local_endpoint().port();

  auto server = [&]() -> asio::awaitable<void> {
    tls::stream s(co_await acceptor.async_accept(asio::use_awaitable), server_ctx);
    x.server.handshake = co_await tls::server_handshake(s);
    if (x.server.handshake) co_return;
    x.server.info = tls::describe(s);
    if (auto ec = co_await write_all(s, greeting)) {
      x.server.end = ec;
      co_return;
    }
    if (how == server_close::close_notify) x.server.shutdown = co_await tls::shutdown(s);
    s.next_layer().close();
  };
  auto client = [&]() -> asio::awaitable<void> {
    tls::stream s(tasks.io(), client_ctx);
    co_await s.next_layer().async_connect({loopback, port}, asio::use_awaitable);
    x.client.handshake = co_await tls::client_handshake(s, host);
    if (x.client.handshake) co_return;
    x.client.info = tls::describe(s);
    std::tie(x.client.received, x.client.end) = co_await read_to_end(s);
    if (x.client.end == asio::error::eof) x.client.shutdown = co_await tls::shutdown(s);
  };
  tasks.spawn(server());
  tasks.spawn(client());
  x.finished = tasks.run();
  return x;
}

asio::ssl::context server_context() {
  const auto& pki = test::test_pki();
  return tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file});
}

asio::ssl::context client_context() {
  return tls::make_client_context({.ca_file = test::test_pki().ca_file});
}

// The reason of an error in asio's SSL category (OpenSSL's packed code).
int ssl_reason(const std::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return 0;
  return ERR_GET_REASON(static_cast<unsigned long>(static_cast<unsigned int>(ec.value())));
}

// --- against openssl s_server ---------------------------------------------------

TEST(tls, client_verifies_openssl_s_server_and_exchanges_data) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  const auto port = free_port();
  // -rev: s_server answers each line with the line reversed.
  test::process peer({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                      "-cert", pki.server.cert_file, "-key", pki.server.key_file, "-rev"});
  ASSERT_TRUE(wait_until_listening(port, peer, 10s)) << peer.command() << "\n" << peer.err();

  auto ctx = client_context();
  side client;
  std::string line;
  task_runner tasks;
  auto run_client = [&]() -> asio::awaitable<void> {
    tls::stream s(tasks.io(), ctx);
    co_await s.next_layer().async_connect({loopback, port}, asio::use_awaitable);
    client.handshake = co_await tls::client_handshake(s, "localhost");
    if (client.handshake) co_return;
    client.info = tls::describe(s);
    if ((client.end = co_await write_all(s, "hello trellis\n"))) co_return;
    auto [ec, n] =
        co_await asio::async_read_until(s, asio::dynamic_buffer(line), '\n', use_nothrow);
    client.end = ec;
    client.shutdown = co_await tls::shutdown(s);
  };
  tasks.spawn(run_client());
  ASSERT_TRUE(tasks.run()) << peer.err();

  ASSERT_FALSE(client.handshake) << client.handshake.message() << "\n" << peer.err();
  EXPECT_FALSE(client.end) << client.end.message();
  EXPECT_EQ(line, "sillert olleh\n");
  EXPECT_FALSE(client.shutdown) << client.shutdown.message();
  EXPECT_THAT(client.info.protocol, AnyOf("TLSv1.2", "TLSv1.3"));
  EXPECT_FALSE(client.info.cipher.empty());
  EXPECT_EQ(client.info.peer_subject, "CN=localhost");
  EXPECT_EQ(client.info.peer_issuer, "CN=trellis test CA");
}

// --- against openssl s_client -------------------------------------------------

// What a trellis server and an `openssl s_client` run saw of one connection.
struct s_client_exchange {
  side server;
  test::exit_status client_status;
  std::string client_out, client_err;
  ::testing::AssertionResult finished = ::testing::AssertionFailure();
};

// Serves one `openssl s_client <client_args>` connection with a server made
// from `opts`: after the handshake the server reads a line, answers
// "pong: <line>" and closes with close_notify. s_client's stdin gets `input`.
s_client_exchange exchange_with_s_client(const tls::server_options& opts,
                                         const std::vector<std::string>& client_args,
                                         const std::string& input = "ping\n") {
  s_client_exchange x;
  auto ctx = tls::make_server_context(opts);
  task_runner tasks;
  tcp::acceptor acceptor(tasks.io(), {loopback, 0});
  std::vector<std::string> argv{"openssl", "s_client", "-connect",
                                "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port())};
  argv.insert(argv.end(), client_args.begin(), client_args.end());
  // -ign_eof: keep reading after stdin ends, until the server closes;
  // -nocommands: a line starting with Q, R or k is data, not a command.
  argv.insert(argv.end(), {"-ign_eof", "-nocommands"});
  test::process client(argv, {.pipe_stdin = true});
  (void)client.write_stdin(input);

  auto server = [&]() -> asio::awaitable<void> {
    tls::stream s(co_await acceptor.async_accept(asio::use_awaitable), ctx);
    x.server.handshake = co_await tls::server_handshake(s);
    if (x.server.handshake) co_return;
    x.server.info = tls::describe(s);
    std::string line;
    auto [ec, n] =
        co_await asio::async_read_until(s, asio::dynamic_buffer(line), '\n', use_nothrow);
    x.server.end = tls::classify_read_error(ec);
    if (ec) co_return;
    x.server.received = line.substr(0, n);
    if ((x.server.end = co_await write_all(s, "pong: " + x.server.received))) co_return;
    x.server.shutdown = co_await tls::shutdown(s);
  };
  tasks.spawn(server());
  x.finished = tasks.run();
  client.close_stdin();
  x.client_status = client.wait_or_kill(10s);
  x.client_out = client.out();
  x.client_err = client.err();
  if (!x.finished)
    x.finished << "\n" << client.command() << "\n" << x.client_out << "\n" << x.client_err;
  return x;
}

TEST(tls, server_serves_openssl_s_client_and_negotiates_alpn) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto x = exchange_with_s_client(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file, .alpn = {"http/1.1"}},
      {"-CAfile", pki.ca_file, "-servername", "localhost", "-verify_hostname", "localhost",
       "-verify_return_error", "-alpn", "http/1.1"});
  ASSERT_TRUE(x.finished) << x.client_err;

  ASSERT_FALSE(x.server.handshake) << x.server.handshake.message() << "\n" << x.client_err;
  EXPECT_EQ(x.server.received, "ping\n");
  EXPECT_FALSE(x.server.shutdown) << x.server.shutdown.message();
  EXPECT_THAT(x.server.info.protocol, AnyOf("TLSv1.2", "TLSv1.3"));
  EXPECT_EQ(x.server.info.alpn, "http/1.1");
  EXPECT_EQ(x.server.info.peer_subject, "") << "no client certificate was asked for";

  // s_client's own view: it verified us, agreed on ALPN and got the answer.
  EXPECT_TRUE(x.client_status.success()) << x.client_status.describe() << "\n" << x.client_err;
  EXPECT_THAT(x.client_out, HasSubstr("Verification: OK"));
  EXPECT_THAT(x.client_out, HasSubstr("ALPN protocol: http/1.1"));
  EXPECT_THAT(x.client_out, HasSubstr("pong: ping"));
}

TEST(tls, server_negotiates_tls_1_2_only_with_an_ecdhe_aead_cipher) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto x =
      exchange_with_s_client({.cert_file = pki.server.cert_file, .key_file = pki.server.key_file},
                             {"-CAfile", pki.ca_file, "-verify_return_error", "-tls1_2"});
  ASSERT_TRUE(x.finished);
  ASSERT_FALSE(x.server.handshake) << x.server.handshake.message() << "\n" << x.client_err;
  EXPECT_EQ(x.server.info.protocol, "TLSv1.2");
  EXPECT_THAT(x.server.info.cipher, ::testing::StartsWith("ECDHE-"));
  EXPECT_THAT(x.server.info.cipher, AnyOf(HasSubstr("GCM"), HasSubstr("CHACHA20-POLY1305")));
  EXPECT_EQ(x.server.received, "ping\n");
}

TEST(tls, server_refuses_a_tls_1_2_client_offering_only_cbc_without_forward_secrecy) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto x =
      exchange_with_s_client({.cert_file = pki.server.cert_file, .key_file = pki.server.key_file},
                             {"-tls1_2", "-cipher", "AES128-SHA"});
  ASSERT_TRUE(x.finished);
  EXPECT_EQ(ssl_reason(x.server.handshake), SSL_R_NO_SHARED_CIPHER) << x.server.handshake.message();
  EXPECT_FALSE(x.client_status.success());
}

TEST(tls, server_refuses_a_tls_1_1_client) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  // OpenSSL 3.0 disables TLS < 1.2 below security level 0 on its own
  // client side; lowering it makes s_client really send a TLS 1.1 hello,
  // so the refusal below is our server's, not s_client's.
  auto x =
      exchange_with_s_client({.cert_file = pki.server.cert_file, .key_file = pki.server.key_file},
                             {"-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"});
  ASSERT_TRUE(x.finished);
  EXPECT_EQ(ssl_reason(x.server.handshake), SSL_R_UNSUPPORTED_PROTOCOL)
      << x.server.handshake.message();
  EXPECT_FALSE(x.client_status.success());
  EXPECT_THAT(x.client_err, HasSubstr("alert protocol version"));
}

// --- verification ---------------------------------------------------------------

TEST(tls, client_accepts_the_right_certificate_for_localhost) {
  REQUIRE_OPENSSL();
  auto server_ctx = server_context();
  auto client_ctx = client_context();
  auto x = run_exchange(server_ctx, client_ctx, "localhost");
  ASSERT_TRUE(x.finished);
  ASSERT_FALSE(x.client.handshake) << x.client.handshake.message();
  EXPECT_EQ(x.client.received, greeting);
  EXPECT_EQ(x.client.info.peer_subject, "CN=localhost");
}

TEST(tls, client_rejects_a_certificate_for_another_hostname) {
  REQUIRE_OPENSSL();
  auto server_ctx = server_context();
  auto client_ctx = client_context();
  auto x = run_exchange(server_ctx, client_ctx, "example.test");
  ASSERT_TRUE(x.finished);
  ASSERT_TRUE(tls::is_verification_failure(x.client.handshake)) << x.client.handshake.message();
  EXPECT_EQ(x.client.handshake.value(), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(x.client.handshake.message(), "hostname mismatch");
  EXPECT_TRUE(x.server.handshake) << "the client aborts, so the server's handshake fails too";
  EXPECT_EQ(x.client.received, "");
}

TEST(tls, client_checks_ip_literals_against_the_certificates_ip_addresses) {
  REQUIRE_OPENSSL();
  auto server_ctx = server_context();
  auto client_ctx = client_context();
  // The certificate lists IP:127.0.0.1 but not ::1.
  auto ok = run_exchange(server_ctx, client_ctx, "127.0.0.1");
  ASSERT_TRUE(ok.finished);
  EXPECT_FALSE(ok.client.handshake) << ok.client.handshake.message();
  EXPECT_EQ(ok.client.received, greeting);

  auto wrong = run_exchange(server_ctx, client_ctx, "[::1]");
  ASSERT_TRUE(wrong.finished);
  ASSERT_TRUE(tls::is_verification_failure(wrong.client.handshake))
      << wrong.client.handshake.message();
  EXPECT_EQ(wrong.client.handshake.value(), X509_V_ERR_IP_ADDRESS_MISMATCH);
}

TEST(tls, client_rejects_a_certificate_from_an_untrusted_ca) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto server_ctx = tls::make_server_context(
      {.cert_file = pki.untrusted_server.cert_file, .key_file = pki.untrusted_server.key_file});
  auto client_ctx = client_context();
  auto x = run_exchange(server_ctx, client_ctx, "localhost");
  ASSERT_TRUE(x.finished);
  ASSERT_TRUE(tls::is_verification_failure(x.client.handshake)) << x.client.handshake.message();
  EXPECT_EQ(x.client.handshake.value(), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(x.client.received, "");
}

TEST(tls, client_rejects_an_expired_certificate) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto server_ctx = tls::make_server_context(
      {.cert_file = pki.expired_server.cert_file, .key_file = pki.expired_server.key_file});
  auto client_ctx = client_context();
  auto x = run_exchange(server_ctx, client_ctx, "localhost");
  ASSERT_TRUE(x.finished);
  ASSERT_TRUE(tls::is_verification_failure(x.client.handshake)) << x.client.handshake.message();
  EXPECT_EQ(x.client.handshake.value(), X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_EQ(x.client.handshake.message(), "certificate has expired");
}

TEST(tls, client_trusting_the_system_store_rejects_the_test_ca) {
  REQUIRE_OPENSSL();
  auto server_ctx = server_context();
  auto client_ctx = tls::make_client_context({});  // ca_file empty: system store
  auto x = run_exchange(server_ctx, client_ctx, "localhost");
  ASSERT_TRUE(x.finished);
  ASSERT_TRUE(tls::is_verification_failure(x.client.handshake)) << x.client.handshake.message();
}

TEST(tls, client_verifies_even_with_a_bare_asio_context) {
  REQUIRE_OPENSSL();
  // asio::ssl::context defaults to verify_none; client_handshake switches
  // verification on rather than connect unverified.
  auto server_ctx = server_context();
  asio::ssl::context bare(asio::ssl::context::tls_client);
  auto x = run_exchange(server_ctx, bare, "localhost");
  ASSERT_TRUE(x.finished);
  ASSERT_TRUE(tls::is_verification_failure(x.client.handshake)) << x.client.handshake.message();
}

TEST(tls, client_with_verification_off_connects_but_keeps_the_failed_check_visible) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto server_ctx = tls::make_server_context(
      {.cert_file = pki.untrusted_server.cert_file, .key_file = pki.untrusted_server.key_file});
  auto client_ctx = tls::make_client_context({.verify = false, .ca_file = pki.ca_file});
  task_runner tasks;
  tcp::acceptor acceptor(tasks.io(), {loopback, 0});
  std::error_code server_ec, client_ec, recorded;
  auto server = [&]() -> asio::awaitable<void> {
    tls::stream s(co_await acceptor.async_accept(asio::use_awaitable), server_ctx);
    server_ec = co_await tls::server_handshake(s);
  };
  auto client = [&]() -> asio::awaitable<void> {
    tls::stream s(tasks.io(), client_ctx);
    co_await s.next_layer().async_connect(acceptor.local_endpoint(), asio::use_awaitable);
    client_ec = co_await tls::client_handshake(s, "localhost");
    recorded = tls::verify_result(s);
  };
  tasks.spawn(server());
  tasks.spawn(client());
  ASSERT_TRUE(tasks.run());
  EXPECT_FALSE(client_ec) << client_ec.message();
  EXPECT_FALSE(server_ec) << server_ec.message();
  ASSERT_TRUE(tls::is_verification_failure(recorded));
  // Told to go on, OpenSSL checks the rest of the chain and records the
  // last failure: after "unable to get local issuer certificate" comes
  // "unable to verify the first certificate".
  EXPECT_EQ(recorded.value(), X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE) << recorded.message();
}

TEST(tls, set_peer_name_refuses_an_empty_host) {
  asio::io_context io;
  auto ctx = tls::make_client_context({});
  tls::stream s(io, ctx);
  auto r = tls::set_peer_name(s, "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), core::errc::invalid_argument);
}

// --- mutual TLS and ALPN --------------------------------------------------------

TEST(tls, server_requiring_client_certificates_refuses_a_client_without_one) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto server_ctx = tls::make_server_context({.cert_file = pki.server.cert_file,
                                              .key_file = pki.server.key_file,
                                              .client_ca_file = pki.ca_file,
                                              .require_client_cert = true});
  auto client_ctx = client_context();
  auto x = run_exchange(server_ctx, client_ctx, "localhost");
  ASSERT_TRUE(x.finished);
  EXPECT_EQ(ssl_reason(x.server.handshake), SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
      << x.server.handshake.message();
  // With TLS 1.3 the client's handshake completes before the server has
  // checked it; the refusal arrives as an alert on the client's first read.
  const std::error_code client_failure = x.client.handshake ? x.client.handshake : x.client.end;
  EXPECT_TRUE(client_failure);
  EXPECT_NE(client_failure, asio::error::eof) << "a refusal is not a clean end";
  EXPECT_EQ(x.client.received, "");
}

TEST(tls, server_requiring_client_certificates_accepts_a_client_with_one) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto server_ctx = tls::make_server_context({.cert_file = pki.server.cert_file,
                                              .key_file = pki.server.key_file,
                                              .client_ca_file = pki.ca_file,
                                              .require_client_cert = true});
  auto client_ctx = tls::make_client_context(
      {.ca_file = pki.ca_file, .cert_file = pki.client.cert_file, .key_file = pki.client.key_file});
  auto x = run_exchange(server_ctx, client_ctx, "localhost");
  ASSERT_TRUE(x.finished);
  ASSERT_FALSE(x.server.handshake) << x.server.handshake.message();
  ASSERT_FALSE(x.client.handshake) << x.client.handshake.message();
  EXPECT_EQ(x.server.info.peer_subject, "CN=trellis test client");
  EXPECT_EQ(x.client.received, greeting);
}

TEST(tls, alpn_selects_the_servers_preferred_common_protocol) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto server_ctx = tls::make_server_context({.cert_file = pki.server.cert_file,
                                              .key_file = pki.server.key_file,
                                              .alpn = {"http/1.1", "h2"}});
  auto client_ctx = tls::make_client_context({.ca_file = pki.ca_file, .alpn = {"h2", "http/1.1"}});
  auto x = run_exchange(server_ctx, client_ctx, "localhost");
  ASSERT_TRUE(x.finished);
  ASSERT_FALSE(x.client.handshake) << x.client.handshake.message();
  EXPECT_EQ(x.server.info.alpn, "http/1.1");
  EXPECT_EQ(x.client.info.alpn, "http/1.1");
}

TEST(tls, alpn_without_a_common_protocol_fails_the_handshake) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto server_ctx = tls::make_server_context(
      {.cert_file = pki.server.cert_file, .key_file = pki.server.key_file, .alpn = {"http/1.1"}});
  auto client_ctx = tls::make_client_context({.ca_file = pki.ca_file, .alpn = {"h2"}});
  auto x = run_exchange(server_ctx, client_ctx, "localhost");
  ASSERT_TRUE(x.finished);
  EXPECT_TRUE(x.server.handshake);
  EXPECT_TRUE(x.client.handshake);
  EXPECT_THAT(x.client.handshake.message(), HasSubstr("no application protocol"));
}

// --- the end of a stream ----------------------------------------------------------

TEST(tls, close_notify_reads_as_a_clean_end_of_stream) {
  REQUIRE_OPENSSL();
  auto server_ctx = server_context();
  auto client_ctx = client_context();
  auto x = run_exchange(server_ctx, client_ctx, "localhost", server_close::close_notify);
  ASSERT_TRUE(x.finished);
  ASSERT_FALSE(x.client.handshake) << x.client.handshake.message();
  EXPECT_EQ(x.client.received, greeting);
  EXPECT_EQ(x.client.end, asio::error::eof) << x.client.end.message();
  EXPECT_FALSE(x.client.shutdown) << x.client.shutdown.message();
  EXPECT_FALSE(x.server.shutdown) << x.server.shutdown.message();
}

TEST(tls, tcp_close_without_close_notify_reads_as_truncation) {
  REQUIRE_OPENSSL();
  auto server_ctx = server_context();
  auto client_ctx = client_context();
  auto x = run_exchange(server_ctx, client_ctx, "localhost", server_close::tcp_only);
  ASSERT_TRUE(x.finished);
  ASSERT_FALSE(x.client.handshake) << x.client.handshake.message();
  EXPECT_EQ(x.client.received, greeting);
  EXPECT_EQ(x.client.end, error::tls_truncated) << x.client.end.message();
}

TEST(tls, classify_read_error_keeps_other_errors) {
  EXPECT_EQ(tls::classify_read_error(asio::ssl::error::stream_truncated), error::tls_truncated);
  EXPECT_EQ(tls::classify_read_error(asio::error::eof), asio::error::eof);
  EXPECT_EQ(tls::classify_read_error(asio::error::connection_reset), asio::error::connection_reset);
  EXPECT_FALSE(tls::classify_read_error({}));
}

// --- configuration errors ---------------------------------------------------------

// Returns the field named by the config_error `make` throws, or "" if none.
template <class F>
std::pair<std::string, std::string> config_error_of(F make) {
  try {
    make();
  } catch (const core::config_error& e) {
    return {e.field(), e.what()};
  }
  return {"", "no config_error thrown"};
}

TEST(tls, a_missing_certificate_file_is_a_config_error_naming_the_cert_field) {
  const std::string missing = "/nonexistent/trellis-test/server.pem";
  auto [field, what] = config_error_of(
      [&] { (void)tls::make_server_context({.cert_file = missing, .key_file = missing}); });
  EXPECT_EQ(field, "tls.cert_file");
  EXPECT_THAT(what, HasSubstr(missing));
  EXPECT_THAT(what, HasSubstr("No such file or directory")) << "OpenSSL's reason is kept";
}

TEST(tls, a_key_that_does_not_match_the_certificate_is_a_config_error_naming_the_key_field) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  auto [field, what] = config_error_of([&] {
    (void)tls::make_server_context(
        {.cert_file = pki.server.cert_file, .key_file = pki.client.key_file});
  });
  EXPECT_EQ(field, "tls.key_file");
  EXPECT_THAT(what, HasSubstr("mismatch"));
}

TEST(tls, other_configuration_mistakes_name_their_field) {
  REQUIRE_OPENSSL();
  const auto& pki = test::test_pki();
  const tls::server_options good{.cert_file = pki.server.cert_file,
                                 .key_file = pki.server.key_file};
  auto server_with = [&](auto change) {
    tls::server_options o = good;
    change(o);
    return config_error_of([&] { (void)tls::make_server_context(o); }).first;
  };
  EXPECT_EQ(server_with([](auto& o) { o.require_client_cert = true; }), "tls.require_client_cert");
  EXPECT_EQ(server_with([](auto& o) { o.client_ca_file = "/nonexistent.pem"; }),
            "tls.client_ca_file");
  EXPECT_EQ(server_with([](auto& o) { o.alpn = {""}; }), "tls.alpn");
  EXPECT_EQ(server_with([](auto& o) { o.tls12_ciphers = "NO-SUCH-CIPHER"; }), "tls.tls12_ciphers");
  EXPECT_EQ(server_with([](auto& o) { o.key_file = ""; }), "tls.key_file");

  EXPECT_EQ(config_error_of([&] {
              (void)tls::make_client_context({.cert_file = pki.client.cert_file});
            }).first,
            "tls.key_file");
  EXPECT_EQ(config_error_of([] {
              (void)tls::make_client_context({.ca_file = "/nonexistent.pem"});
            }).first,
            "tls.ca_file");
}

}  // namespace
}  // namespace trellis::net
