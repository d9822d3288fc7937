// tls: TLS 1.2/1.3 for trellis connections, on asio::ssl and OpenSSL 3.
//
// Three steps, as in every TLS stack:
//
//   1. At start-up, build one context per role from an options struct
//      (make_server_context / make_client_context). Bad files throw
//      core::config_error naming the field ("tls.cert_file"...), with
//      OpenSSL's reason in the message.
//   2. Per connection, wrap the connected socket in a tls::stream and
//      handshake: client_handshake(s, host) first sets SNI (RFC 6066 §3) and
//      the name the certificate must match (RFC 6125; RFC 9110 §4.3.4 for
//      https), server_handshake(s) answers.
//   3. Read and write the stream like a socket. classify_read_error tells a
//      clean end (the peer sent close_notify: asio::error::eof) from a
//      truncation (net::error::tls_truncated, RFC 8446 §6.1), and
//      shutdown(s) sends our own close_notify.
//
//   auto ctx = tls::make_client_context({.ca_file = "ca.pem", .alpn = {"http/1.1"}});
//   tls::stream s(std::move(socket), ctx);
//   if (auto ec = co_await tls::client_handshake(s, "api.example.com")) {
//     if (tls::is_verification_failure(ec)) log(ec.message());  // "certificate has expired"
//     co_return;
//   }
//
// Policy: only TLS 1.2 and 1.3; for TLS 1.2 only ECDHE key exchange with
// AEAD ciphers (forward secrecy, no CBC padding oracles); no compression
// (CRIME); no renegotiation (a DoS lever and the source of several CVEs);
// the server picks the cipher. TLS 1.3 suites are all AEAD already and keep
// OpenSSL's defaults. Clients verify the server's chain and name unless the
// caller writes `verify = false`; a connection is never silently unverified.
//
// Certificate verification failures are reported in their own category
// (verify_category()): the value is OpenSSL's X509_V_ERR_* code and the
// message its text ("hostname mismatch", "certificate has expired"), so
// both a program and a person can tell why. Other handshake failures keep
// asio's SSL category (OpenSSL's packed error: "unsupported protocol"...).
//
// Deadlines are not part of these helpers: a handshake or a shutdown waits
// for the peer as long as it takes, so bound them with net::deadline (which
// closes or cancels the socket) like any other I/O.
//
// Thread-safety: a context is immutable after make_*_context returns and may
// be shared by every worker thread (OpenSSL locks its own session cache). A
// stream, like a socket, belongs to one executor at a time.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/stream.hpp>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trellis/core/result.hpp"

namespace trellis::net::tls {

// A TLS connection over TCP. The TCP socket is s.next_layer().
using stream = asio::ssl::stream<asio::ip::tcp::socket>;

// The TLS 1.2 cipher list of both contexts by default: ECDHE key exchange
// with AES-GCM or ChaCha20-Poly1305, ECDSA keys first (the Mozilla
// "intermediate" list minus the finite-field DHE suites). TLS 1.3 suites are
// configured separately by OpenSSL and are all acceptable.
inline constexpr const char* default_tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct server_options {
  // PEM file: the server certificate, then any intermediate CA certificates
  // up to (not including) the root. Required.
  std::string cert_file;
  // PEM file with the private key of cert_file (not encrypted). Required.
  std::string key_file;
  // PEM file of the CAs that issue client certificates. Default empty: the
  // server does not ask for client certificates. When set, the server asks,
  // and a certificate that is presented must verify against these CAs; a
  // client without one is still accepted unless require_client_cert is set.
  std::string client_ca_file;
  // Mutual TLS: refuse clients that present no valid certificate. Default
  // false. REQUIRES client_ca_file. With TLS 1.3 a client learns of the
  // refusal only on its first read (its handshake finishes before the
  // server has checked the certificate), so the failure may surface there.
  bool require_client_cert = false;
  // ALPN protocols the server speaks, most preferred first, e.g.
  // {"http/1.1"}. Default empty: ALPN is ignored. When set and the client
  // offers ALPN but none of these, the handshake fails with the
  // no_application_protocol alert (RFC 7301 §3.2); a client that offers no
  // ALPN at all is accepted and no protocol is selected.
  std::vector<std::string> alpn;
  // OpenSSL cipher list for TLS 1.2. Default: default_tls12_ciphers.
  // Widening it (e.g. adding CBC or RSA key exchange) reaches older clients
  // at the price of forward secrecy or padding-oracle exposure.
  std::string tls12_ciphers = default_tls12_ciphers;
};

struct client_options {
  // Verify the server's certificate chain and name. Default true.
  // DANGEROUS to turn off: anyone on the path can then impersonate the
  // server and read the traffic. Only for tests against throw-away
  // certificates or a debugging tool's "--insecure"; even then the result
  // of the check that was skipped stays readable through verify_result().
  bool verify = true;
  // PEM file of the CAs trusted to sign server certificates. Default empty:
  // the system store (OpenSSL's default paths, /etc/ssl/certs on Debian).
  std::string ca_file;
  // Client certificate (PEM, with intermediates) for servers that require
  // mutual TLS. Default empty: none is sent. Set both or neither.
  std::string cert_file;
  // Private key of cert_file (PEM, not encrypted). Default empty.
  std::string key_file;
  // ALPN protocols offered, most preferred first, e.g. {"h2", "http/1.1"}.
  // Default empty: no ALPN extension is sent.
  std::vector<std::string> alpn;
  // OpenSSL cipher list for TLS 1.2. Default: default_tls12_ciphers, which
  // every maintained server supports; widen it only for a known legacy peer.
  std::string tls12_ciphers = default_tls12_ciphers;
};

// Builds a server context. Throws core::config_error naming the offending
// field ("tls.cert_file", "tls.key_file", "tls.client_ca_file",
// "tls.require_client_cert", "tls.alpn", "tls.tls12_ciphers") when a file
// is missing, unreadable or not PEM, the key does not match the
// certificate, or a value is invalid; the message carries OpenSSL's reason.
asio::ssl::context make_server_context(const server_options& opts);

// Builds a client context. Throws core::config_error like
// make_server_context ("tls.ca_file", "tls.cert_file", "tls.key_file",
// "tls.alpn", "tls.tls12_ciphers").
asio::ssl::context make_client_context(const client_options& opts);

// Prepares a client connection for the server `host`, before the handshake:
// sends `host` as SNI when it is a DNS name (RFC 6066 forbids IP literals
// there) and makes verification check the certificate against it: DNS
// names against subjectAltName dNSName entries (wildcards only as a whole
// left-most label), IP literals against iPAddress entries. A trailing dot
// and IPv6 brackets ("[::1]") are removed first. If the stream's context
// does not verify peers (a bare asio::ssl::context defaults to none),
// verification is switched on for this connection; only
// client_options::verify = false turns it off.
// client_handshake calls this; call it yourself only to handshake another way.
// REQUIRES: `s` has not started its handshake.
// Returns core::errc::invalid_argument for an empty host or one OpenSSL
// rejects.
result<void> set_peer_name(stream& s, std::string_view host);

// Client handshake: set_peer_name(s, host), then the TLS handshake.
// Returns {} on success; a verify_category() code when the server's
// certificate failed verification (untrusted, expired, wrong name...);
// otherwise the transport or TLS error (asio's SSL category).
// `host` is taken by value so the awaitable owns it.
// REQUIRES: s.next_layer() is connected; `s` outlives the awaitable.
asio::awaitable<std::error_code> client_handshake(stream& s, std::string host);

// Server handshake. Returns {} on success; a verify_category() code when a
// client certificate failed verification; otherwise the transport or TLS
// error (e.g. "unsupported protocol" for a TLS 1.1 client, "peer did not
// return a certificate" under require_client_cert).
// REQUIRES: s.next_layer() is an accepted connection; `s` outlives the
// awaitable.
asio::awaitable<std::error_code> server_handshake(stream& s);

// Graceful close (RFC 8446 §6.1): sends close_notify and waits until the
// peer answers with its own or closes the connection; both count as
// success, since nothing more is expected from the peer. Returns the error
// otherwise (e.g. the write failed). The TCP socket stays open: close
// s.next_layer() afterwards. Bound it with a deadline: a peer that neither
// answers nor closes keeps it waiting.
// REQUIRES: the handshake succeeded; no other write is in progress.
asio::awaitable<std::error_code> shutdown(stream& s);

// Names the way a read from a TLS stream ended:
//   asio::error::eof            the peer sent close_notify: a clean end;
//   net::error::tls_truncated   the TCP connection ended without
//                               close_notify, so the data may have been cut
//                               by an attacker or a crash (asio reports it
//                               as asio::ssl::error::stream_truncated);
//   anything else               unchanged.
std::error_code classify_read_error(std::error_code ec) noexcept;

// The category of certificate verification failures. value() is OpenSSL's
// X509_V_ERR_* code (e.g. X509_V_ERR_CERT_HAS_EXPIRED), message() its text.
const std::error_category& verify_category() noexcept;

// True when `ec` is a certificate verification failure (verify_category()).
bool is_verification_failure(const std::error_code& ec) noexcept;

// The peer certificate's verification result as OpenSSL recorded it during
// the handshake: {} when it verified (or none was presented), else a
// verify_category() code. With client_options::verify = false this is the
// only place a failed check shows; OpenSSL then carries on past each
// failure and keeps the last one (for an unknown CA: "unable to verify the
// first certificate").
std::error_code verify_result(stream& s) noexcept;

// What a finished handshake negotiated; for logs and verbose clients.
struct session_info {
  std::string protocol;      // "TLSv1.2" or "TLSv1.3"
  std::string cipher;        // e.g. "TLS_AES_256_GCM_SHA384"
  std::string alpn;          // selected ALPN protocol; empty when none
  std::string peer_subject;  // peer certificate subject, RFC 2253 ("CN=localhost");
                             // empty when the peer sent no certificate
  std::string peer_issuer;   // its issuer, same format; empty likewise
};

// REQUIRES: the handshake succeeded.
session_info describe(stream& s);

}  // namespace trellis::net::tls
