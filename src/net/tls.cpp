#include "trellis/net/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <asio/ip/address.hpp>
#include <memory>
#include <string>
#include <tuple>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/net/error.hpp"

namespace trellis::net::tls {
namespace {

// --- OpenSSL error reporting --------------------------------------------------

// Drains OpenSSL's thread-local error queue into one line, oldest first,
// e.g. "No such file or directory (calling fopen(/x.pem, r)); system lib".
std::string drain_openssl_errors() {
  std::string out, last;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    std::string piece;
    if (ERR_SYSTEM_ERROR(e)) {
      // An errno from the C library (fopen...), which has no OpenSSL text.
      piece = std::system_category().message(ERR_GET_REASON(e));
    } else if (const char* reason = ERR_reason_error_string(e)) {
      piece = reason;
    } else {
      piece = "error " + std::to_string(ERR_GET_REASON(e));
    }
    if ((flags & ERR_TXT_STRING) && data && *data) piece += std::string(" (") + data + ")";
    if (piece == last) continue;  // each layer re-reports "system lib"
    if (!out.empty()) out += "; ";
    out += piece;
    last = std::move(piece);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

[[noreturn]] void fail(const char* field, const std::string& what) {
  throw core::config_error(field, what + ": " + drain_openssl_errors());
}

// --- context set-up shared by both roles --------------------------------------

void apply_protocol_policy(SSL_CTX* ctx, const std::string& tls12_ciphers) {
  // TLS 1.2 and 1.3 only. Max 0 means "the highest this OpenSSL supports".
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, 0);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  ERR_clear_error();
  if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers.c_str()) != 1)
    fail("tls.tls12_ciphers", "no usable cipher in '" + tls12_ciphers + "'");
}

// Loads a certificate chain and its key and checks that they belong together.
void load_identity(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    fail("tls.cert_file", "cannot load certificate chain '" + cert_file + "'");
  // use_PrivateKey_file already compares the key with the certificate
  // ("key values mismatch"); check_private_key makes that explicit.
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    fail("tls.key_file", "cannot load private key '" + key_file + "'");
  if (SSL_CTX_check_private_key(ctx) != 1)
    fail("tls.key_file", "private key '" + key_file + "' does not match '" + cert_file + "'");
}

// ALPN's wire format (RFC 7301 §3.1): each name prefixed by its length byte.
std::string encode_alpn(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255)
      throw core::config_error("tls.alpn", "protocol name '" + p + "' must be 1 to 255 bytes");
    wire += static_cast<char>(p.size());
    wire += p;
  }
  return wire;
}

// --- server ALPN ------------------------------------------------------------

// The server's ALPN list must live as long as the SSL_CTX, which OpenSSL
// reference-counts (every connection holds a reference). So it is stored in
// the context's ex_data slot, whose free callback runs when the last
// reference goes.
void free_alpn(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

int alpn_index() {
  static const int index =
      CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, nullptr, nullptr, nullptr, free_alpn);
  return index;
}

// Picks the first of the server's protocols that the client also offers
// (server preference); no overlap is fatal, as RFC 7301 §3.2 requires.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto* ours = static_cast<const std::string*>(arg);
  unsigned char* chosen = nullptr;
  const int r =
      SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(ours->data()),
                            static_cast<unsigned int>(ours->size()), in, inlen);
  if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = chosen;  // points into `ours` or `in`, both outlive the callback's use
  return SSL_TLSEXT_ERR_OK;
}

void set_server_alpn(SSL_CTX* ctx, const std::vector<std::string>& protocols) {
  auto wire = std::make_unique<std::string>(encode_alpn(protocols));
  if (SSL_CTX_set_ex_data(ctx, alpn_index(), wire.get()) != 1)
    fail("tls.alpn", "cannot attach the ALPN list");
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, wire.release());  // now owned by ctx
}

// --- verification -----------------------------------------------------------

// Verification callback of client_options::verify = false: accept whatever
// the chain check found. OpenSSL still records the result, which
// verify_result() reports.
int accept_unverified(int, X509_STORE_CTX*) {
  return 1;
}

class verify_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.tls.verify"; }
  std::string message(int v) const override { return X509_verify_cert_error_string(v); }
};

// True when OpenSSL's handshake error says the peer's chain did not verify.
bool is_verify_failed_error(const std::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return false;
  const auto e = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
  return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

// Replaces OpenSSL's generic "certificate verify failed" with the reason.
std::error_code explain_handshake_error(stream& s, std::error_code ec) {
  if (is_verify_failed_error(ec))
    if (auto why = verify_result(s)) return why;
  return ec;
}

// IPv6 brackets and a trailing dot belong to URLs and DNS, not to the name
// a certificate carries.
std::string_view bare_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

std::string x509_name_text(const X509_NAME* name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

asio::ssl::context make_server_context(const server_options& opts) {
  if (opts.cert_file.empty()) throw core::config_error("tls.cert_file", "required");
  if (opts.key_file.empty()) throw core::config_error("tls.key_file", "required");
  if (opts.require_client_cert && opts.client_ca_file.empty())
    throw core::config_error("tls.require_client_cert",
                             "needs tls.client_ca_file to verify client certificates");

  asio::ssl::context ctx(asio::ssl::context::tls_server);
  SSL_CTX* h = ctx.native_handle();
  apply_protocol_policy(h, opts.tls12_ciphers);
  SSL_CTX_set_options(h, SSL_OP_CIPHER_SERVER_PREFERENCE);
  load_identity(h, opts.cert_file, opts.key_file);

  if (!opts.client_ca_file.empty()) {
    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(h, opts.client_ca_file.c_str(), nullptr) != 1)
      fail("tls.client_ca_file", "cannot load CA certificates '" + opts.client_ca_file + "'");
    // The CertificateRequest names these CAs so a client with several
    // certificates can pick the right one.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(opts.client_ca_file.c_str());
    if (!names) fail("tls.client_ca_file", "no CA names in '" + opts.client_ca_file + "'");
    SSL_CTX_set_client_CA_list(h, names);  // takes ownership
    int mode = SSL_VERIFY_PEER;
    if (opts.require_client_cert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(h, mode, nullptr);
    // A resumed session skips the client-certificate check, so OpenSSL
    // only resumes sessions tied to a context id; without one, a client
    // that tries fails its handshake ("session id context uninitialized").
    static constexpr unsigned char sid_context[] = "trellis";
    SSL_CTX_set_session_id_context(h, sid_context, sizeof sid_context - 1);
  }

  if (!opts.alpn.empty()) set_server_alpn(h, opts.alpn);
  return ctx;
}

asio::ssl::context make_client_context(const client_options& opts) {
  if (opts.cert_file.empty() != opts.key_file.empty())
    throw core::config_error(opts.cert_file.empty() ? "tls.cert_file" : "tls.key_file",
                             "tls.cert_file and tls.key_file must be set together");

  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX* h = ctx.native_handle();
  apply_protocol_policy(h, opts.tls12_ciphers);

  ERR_clear_error();
  if (opts.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(h) != 1)
      fail("tls.ca_file", "cannot load the system CA store");
  } else if (SSL_CTX_load_verify_locations(h, opts.ca_file.c_str(), nullptr) != 1) {
    fail("tls.ca_file", "cannot load CA certificates '" + opts.ca_file + "'");
  }
  SSL_CTX_set_verify(h, SSL_VERIFY_PEER, opts.verify ? nullptr : accept_unverified);

  if (!opts.cert_file.empty()) load_identity(h, opts.cert_file, opts.key_file);
  if (!opts.alpn.empty()) {
    const std::string wire = encode_alpn(opts.alpn);
    // Unlike most OpenSSL calls, set_alpn_protos returns 0 on success.
    if (SSL_CTX_set_alpn_protos(h, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0)
      fail("tls.alpn", "cannot set the ALPN list");
  }
  return ctx;
}

result<void> set_peer_name(stream& s, std::string_view host) {
  SSL* ssl = s.native_handle();
  const std::string name(bare_host(host));
  if (name.empty()) return unexpected(core::errc::invalid_argument);

  if (SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE)
    SSL_set_verify(ssl, SSL_VERIFY_PEER, SSL_get_verify_callback(ssl));

  std::error_code not_ip;
  (void)asio::ip::make_address(name, not_ip);
  ERR_clear_error();
  if (!not_ip) {
    // An IP literal: no SNI; the certificate must list the address.
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1)
      return unexpected(core::errc::invalid_argument);
    return {};
  }
  if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
    return unexpected(core::errc::invalid_argument);
  // RFC 6125 §6.4.3: a wildcard matches one whole left-most label only
  // ("*.example.com", never "f*.example.com").
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl, name.c_str()) != 1) return unexpected(core::errc::invalid_argument);
  return {};
}

asio::awaitable<std::error_code> client_handshake(stream& s, std::string host) {
  if (auto prepared = set_peer_name(s, host); !prepared) co_return prepared.error();
  auto [ec] = co_await s.async_handshake(stream::client, use_nothrow);
  co_return explain_handshake_error(s, ec);
}

asio::awaitable<std::error_code> server_handshake(stream& s) {
  auto [ec] = co_await s.async_handshake(stream::server, use_nothrow);
  co_return explain_handshake_error(s, ec);
}

asio::awaitable<std::error_code> shutdown(stream& s) {
  auto [ec] = co_await s.async_shutdown(use_nothrow);
  // Our close_notify went out; the peer then either answered with its own
  // (no error) or closed the connection (eof, or stream_truncated when it
  // sent no close_notify). RFC 8446 §6.1 allows a peer to close without
  // answering, and nothing more is expected from it, so both are success.
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
    co_return std::error_code{};
  co_return ec;
}

std::error_code classify_read_error(std::error_code ec) noexcept {
  if (ec == asio::ssl::error::stream_truncated) return error::tls_truncated;
  return ec;
}

const std::error_category& verify_category() noexcept {
  static const verify_category_impl instance;
  return instance;
}

bool is_verification_failure(const std::error_code& ec) noexcept {
  return ec.category() == verify_category();
}

std::error_code verify_result(stream& s) noexcept {
  const long v = SSL_get_verify_result(s.native_handle());
  if (v == X509_V_OK) return {};
  return {static_cast<int>(v), verify_category()};
}

session_info describe(stream& s) {
  SSL* ssl = s.native_handle();
  session_info info;
  info.protocol = SSL_get_version(ssl);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) info.cipher = SSL_CIPHER_get_name(c);

  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn) info.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);

  // get0: borrowed, valid while the connection lives.
  if (const X509* peer = SSL_get0_peer_certificate(ssl)) {
    info.peer_subject = x509_name_text(X509_get_subject_name(peer));
    info.peer_issuer = x509_name_text(X509_get_issuer_name(peer));
  }
  return info;
}

}  // namespace trellis::net::tls
