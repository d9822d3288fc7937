#include "trellis/gateway/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <array>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "trellis/codec/base64.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {

using json = nlohmann::json;

// The key material. An EVP_PKEY is immutable once loaded and may be used
// by many threads at once, each with its own EVP_MD_CTX.
struct jwt_key::impl {
  jwt_algorithm alg = jwt_algorithm::hs256;
  std::string kid;
  std::string secret;        // HS256
  EVP_PKEY* pkey = nullptr;  // RS256, ES256
  bool has_private = false;  // pkey holds the private half

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
    EVP_PKEY_free(pkey);
    OPENSSL_cleanse(secret.data(), secret.size());
  }
};

namespace {

constexpr std::size_t k_min_hmac_secret = 32;  // RFC 7518 §3.2: >= the hash output
constexpr int k_min_rsa_bits = 2048;           // RFC 7518 §3.3
constexpr std::size_t k_p256_size = 32;        // bytes of a P-256 coordinate or scalar

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.gateway.jwt"; }
  std::string message(int v) const override {
    switch (static_cast<jwt_error>(v)) {
      case jwt_error::bad_signature: return "token signature does not verify";
      case jwt_error::unknown_key: return "token names an unknown key id";
      case jwt_error::algorithm_not_allowed: return "token algorithm is not allowed";
      case jwt_error::expired: return "token has expired";
      case jwt_error::not_yet_valid: return "token is not valid yet";
      case jwt_error::bad_issuer: return "token issuer is not accepted";
      case jwt_error::bad_audience: return "token audience is not accepted";
      case jwt_error::bad_claim: return "token claim is missing or malformed";
    }
    return "unknown gateway jwt error";
  }
};

// Small RAII holders for the OpenSSL objects used below.
struct bio_deleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct pkey_ctx_deleter {
  void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
struct bn_deleter {
  void operator()(BIGNUM* b) const noexcept { BN_clear_free(b); }
};
struct sig_deleter {
  void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};
struct bld_deleter {
  void operator()(OSSL_PARAM_BLD* b) const noexcept { OSSL_PARAM_BLD_free(b); }
};
struct param_deleter {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_deleter>;
using bn_ptr = std::unique_ptr<BIGNUM, bn_deleter>;
using sig_ptr = std::unique_ptr<ECDSA_SIG, sig_deleter>;
using bld_ptr = std::unique_ptr<OSSL_PARAM_BLD, bld_deleter>;
using param_ptr = std::unique_ptr<OSSL_PARAM, param_deleter>;

const unsigned char* bytes(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string hmac_sha256(std::string_view secret, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), bytes(data), data.size(),
       out.data(), &n);
  return std::string(reinterpret_cast<const char*>(out.data()), n);
}

// RFC 7518 §3.4: the JWS form of an ECDSA signature is R and S, each
// zero-padded to 32 bytes; OpenSSL speaks DER (SEQUENCE { INTEGER r,
// INTEGER s }). These two convert between them.
std::string raw_to_der(std::string_view raw) {
  sig_ptr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes(raw), k_p256_size, nullptr);
  BIGNUM* s = BN_bin2bn(bytes(raw) + k_p256_size, k_p256_size, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return {};
  }
  unsigned char* der = nullptr;
  const int n = i2d_ECDSA_SIG(sig.get(), &der);
  if (n <= 0) return {};
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string der_to_raw(std::string_view der) {
  const unsigned char* p = bytes(der);
  sig_ptr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return {};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * k_p256_size, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, o, k_p256_size) < 0 || BN_bn2binpad(s, o + k_p256_size, k_p256_size) < 0)
    return {};
  return out;
}

bool evp_verify(EVP_PKEY* pkey, std::string_view data, std::string_view sig) {
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  const bool ok =
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx.get(), bytes(sig), sig.size(), bytes(data), data.size()) == 1;
  // A failed verification leaves reasons on the thread's error queue;
  // nobody reads them, and they would leak into the next TLS call's report.
  ERR_clear_error();
  return ok;
}

result<std::string> evp_sign(EVP_PKEY* pkey, std::string_view data) {
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  std::size_t n = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &n, bytes(data), data.size()) != 1) {
    ERR_clear_error();
    return unexpected(core::errc::invalid_argument);
  }
  std::string out(n, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n, bytes(data),
                     data.size()) != 1) {
    ERR_clear_error();
    return unexpected(core::errc::invalid_argument);
  }
  out.resize(n);
  return out;
}

[[noreturn]] void config_fail(std::string_view field, const std::string& what) {
  ERR_clear_error();
  throw core::config_error(std::string(field), what);
}

std::string read_file(const std::string& path, std::string_view field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) config_fail(field, "cannot read file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

// Refuses to prompt on a terminal for the passphrase of an encrypted key.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

// Checks that `pkey` suits `alg`: RSA of at least 2048 bits, or EC on P-256.
void check_key_type(jwt_algorithm alg, EVP_PKEY* pkey, std::string_view field) {
  if (alg == jwt_algorithm::rs256) {
    if (!EVP_PKEY_is_a(pkey, "RSA")) config_fail(field, "RS256 needs an RSA key");
    const int bits = EVP_PKEY_get_bits(pkey);
    if (bits < k_min_rsa_bits)
      config_fail(field, "RSA key of " + std::to_string(bits) +
                             " bits; RS256 needs at least 2048 (RFC 7518 §3.3)");
    return;
  }
  if (!EVP_PKEY_is_a(pkey, "EC")) config_fail(field, "ES256 needs an EC key");
  std::array<char, 64> group{};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(),
                                     &len) != 1 ||
      std::string_view(group.data(), len) != "prime256v1")
    config_fail(field, "ES256 needs an EC key on P-256 (prime256v1)");
}

// A base64url JWK member, decoded; throws naming field.member.
std::string jwk_member(const json& jwk, const char* member, std::string_view field,
                       bool required = true) {
  const std::string where = std::string(field) + "." + member;
  const auto it = jwk.find(member);
  if (it == jwk.end()) {
    if (required) config_fail(where, "missing");
    return {};
  }
  if (!it->is_string()) config_fail(where, "must be a base64url string");
  auto decoded = codec::base64_decode(it->get_ref<const std::string&>(),
                                      {.alphabet = codec::base64_alphabet::url, .padding = false});
  if (!decoded) config_fail(where, "not unpadded base64url: " + decoded.error().message());
  if (decoded->empty()) config_fail(where, "empty");
  return std::move(*decoded);
}

bn_ptr to_bn(std::string_view big_endian) {
  return bn_ptr(BN_bin2bn(bytes(big_endian), static_cast<int>(big_endian.size()), nullptr));
}

// Builds an EVP_PKEY of `type` ("RSA" or "EC") from OSSL parameters.
EVP_PKEY* from_params(const char* type, OSSL_PARAM_BLD* bld, bool with_private,
                      std::string_view field) {
  param_ptr params(OSSL_PARAM_BLD_to_param(bld));
  pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, with_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                        params.get()) != 1)
    config_fail(field, std::string("not a valid ") + type + " key");
  return pkey;
}

EVP_PKEY* rsa_from_jwk(const json& jwk, std::string_view field, bool& has_private) {
  std::vector<bn_ptr> owned;  // BIGNUMs must outlive OSSL_PARAM_BLD_to_param
  bld_ptr bld(OSSL_PARAM_BLD_new());
  auto push = [&](const char* member, const char* param, bool required) {
    const std::string v = jwk_member(jwk, member, field, required);
    if (v.empty()) return false;
    owned.push_back(to_bn(v));
    if (!owned.back() || OSSL_PARAM_BLD_push_BN(bld.get(), param, owned.back().get()) != 1)
      config_fail(std::string(field) + "." + member, "cannot be used");
    return true;
  };
  push("n", OSSL_PKEY_PARAM_RSA_N, true);
  push("e", OSSL_PKEY_PARAM_RSA_E, true);
  has_private = push("d", OSSL_PKEY_PARAM_RSA_D, false);
  if (has_private && jwk.contains("p")) {
    // The CRT parameters (RFC 7518 §6.3.2.3-7) make signing ~4x faster;
    // they come all together or not at all.
    push("p", OSSL_PKEY_PARAM_RSA_FACTOR1, true);
    push("q", OSSL_PKEY_PARAM_RSA_FACTOR2, true);
    push("dp", OSSL_PKEY_PARAM_RSA_EXPONENT1, true);
    push("dq", OSSL_PKEY_PARAM_RSA_EXPONENT2, true);
    push("qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1, true);
  }
  return from_params("RSA", bld.get(), has_private, field);
}

EVP_PKEY* ec_from_jwk(const json& jwk, std::string_view field, bool& has_private) {
  const auto crv = jwk.find("crv");
  if (crv == jwk.end() || *crv != "P-256")
    config_fail(std::string(field) + ".crv", "must be \"P-256\" for ES256");
  const std::string x = jwk_member(jwk, "x", field);
  const std::string y = jwk_member(jwk, "y", field);
  // RFC 7518 §6.2.1.2-3: coordinates are full-length, never trimmed.
  if (x.size() != k_p256_size) config_fail(std::string(field) + ".x", "must be 32 bytes");
  if (y.size() != k_p256_size) config_fail(std::string(field) + ".y", "must be 32 bytes");
  std::string point = "\x04" + x + y;  // SEC 1 uncompressed point
  bld_ptr bld(OSSL_PARAM_BLD_new());
  char group[] = "prime256v1";
  bool ok = bld &&
            OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                             point.size()) == 1;
  const std::string d = jwk_member(jwk, "d", field, false);
  bn_ptr priv;
  has_private = !d.empty();
  if (has_private) {
    if (d.size() != k_p256_size) config_fail(std::string(field) + ".d", "must be 32 bytes");
    priv = to_bn(d);
    ok = ok && priv && OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) == 1;
  }
  if (!ok) config_fail(field, "cannot build the EC key");
  EVP_PKEY* pkey = from_params("EC", bld.get(), has_private, field);
  // An (x, y) that is not on the curve must not load: ECDSA verification
  // with an invalid point is undefined territory.
  pkey_ctx_ptr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    EVP_PKEY_free(pkey);
    config_fail(field, "the point (x, y) is not on P-256");
  }
  return pkey;
}

}  // namespace

const std::error_category& jwt_category() noexcept {
  static const category instance;
  return instance;
}

std::string_view to_string(jwt_algorithm a) noexcept {
  switch (a) {
    case jwt_algorithm::hs256: return "HS256";
    case jwt_algorithm::rs256: return "RS256";
    case jwt_algorithm::es256: return "ES256";
  }
  return "?";
}

std::optional<jwt_algorithm> parse_jwt_algorithm(std::string_view name) noexcept {
  if (name == "HS256") return jwt_algorithm::hs256;
  if (name == "RS256") return jwt_algorithm::rs256;
  if (name == "ES256") return jwt_algorithm::es256;
  return std::nullopt;
}

jwt_key jwt_key::hmac(std::string_view secret, std::string_view field, std::string kid) {
  if (secret.size() < k_min_hmac_secret)
    config_fail(field, "HS256 secret of " + std::to_string(secret.size()) +
                           " bytes; at least 32 are required (RFC 7518 §3.2)");
  if (secret.find("-----BEGIN") != std::string_view::npos)
    config_fail(field, "HS256 secret looks like a PEM key; use an RS256/ES256 key instead");
  auto k = std::make_shared<impl>();
  k->alg = jwt_algorithm::hs256;
  k->kid = std::move(kid);
  k->secret.assign(secret);
  return jwt_key(std::move(k));
}

jwt_key jwt_key::from_pem(jwt_algorithm alg, std::string_view pem, std::string_view field,
                          std::string kid) {
  if (alg == jwt_algorithm::hs256) config_fail(field, "HS256 takes a secret, not a PEM key");
  auto k = std::make_shared<impl>();
  k->alg = alg;
  k->kid = std::move(kid);
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) config_fail(field, "out of memory");
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos) {
    k->pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr);
    k->has_private = true;
  } else {
    k->pkey = PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr);
  }
  if (!k->pkey) config_fail(field, "not a readable PEM public or (unencrypted) private key");
  ERR_clear_error();
  check_key_type(alg, k->pkey, field);
  return jwt_key(std::move(k));
}

jwt_key jwt_key::from_pem_file(jwt_algorithm alg, const std::string& path, std::string_view field,
                               std::string kid) {
  return from_pem(alg, read_file(path, field), field, std::move(kid));
}

jwt_key jwt_key::from_jwk(const json& jwk, std::string_view field) {
  if (!jwk.is_object()) config_fail(field, "a JWK must be a JSON object");
  const auto kty = jwk.find("kty");
  if (kty == jwk.end() || !kty->is_string())
    config_fail(std::string(field) + ".kty", "missing or not a string");
  jwt_algorithm alg;
  if (*kty == "oct") {
    alg = jwt_algorithm::hs256;
  } else if (*kty == "RSA") {
    alg = jwt_algorithm::rs256;
  } else if (*kty == "EC") {
    alg = jwt_algorithm::es256;
  } else {
    config_fail(std::string(field) + ".kty", "unsupported key type (oct, RSA, EC are)");
  }
  if (const auto a = jwk.find("alg"); a != jwk.end() && *a != to_string(alg))
    config_fail(std::string(field) + ".alg",
                "must be \"" + std::string(to_string(alg)) + "\" for this key type");
  if (const auto u = jwk.find("use"); u != jwk.end() && *u != "sig")
    config_fail(std::string(field) + ".use", "must be \"sig\" for a signing key");
  std::string kid;
  if (const auto id = jwk.find("kid"); id != jwk.end()) {
    if (!id->is_string()) config_fail(std::string(field) + ".kid", "must be a string");
    kid = id->get<std::string>();
  }
  if (alg == jwt_algorithm::hs256) {
    const std::string secret = jwk_member(jwk, "k", field);
    return hmac(secret, std::string(field) + ".k", std::move(kid));
  }
  auto k = std::make_shared<impl>();
  k->alg = alg;
  k->kid = std::move(kid);
  k->pkey = alg == jwt_algorithm::rs256 ? rsa_from_jwk(jwk, field, k->has_private)
                                        : ec_from_jwk(jwk, field, k->has_private);
  check_key_type(alg, k->pkey, field);
  return jwt_key(std::move(k));
}

jwt_algorithm jwt_key::algorithm() const noexcept {
  return impl_->alg;
}
const std::string& jwt_key::kid() const noexcept {
  return impl_->kid;
}
bool jwt_key::can_sign() const noexcept {
  return impl_->alg == jwt_algorithm::hs256 || impl_->has_private;
}

bool jwt_key::verify(std::string_view signing_input, std::string_view signature) const {
  switch (impl_->alg) {
    case jwt_algorithm::hs256: {
      const std::string mac = hmac_sha256(impl_->secret, signing_input);
      // Constant time: memcmp stops at the first differing byte, and that
      // difference in time is measurable over many requests.
      return signature.size() == mac.size() &&
             CRYPTO_memcmp(signature.data(), mac.data(), mac.size()) == 0;
    }
    case jwt_algorithm::rs256: return evp_verify(impl_->pkey, signing_input, signature);
    case jwt_algorithm::es256: {
      // Exactly R||S. A DER signature (what a careless signer emits) is
      // 70-72 bytes and refused here rather than guessed at.
      if (signature.size() != 2 * k_p256_size) return false;
      const std::string der = raw_to_der(signature);
      return !der.empty() && evp_verify(impl_->pkey, signing_input, der);
    }
  }
  return false;
}

result<std::string> jwt_key::sign(std::string_view signing_input) const {
  if (!can_sign()) return unexpected(core::errc::invalid_argument);
  switch (impl_->alg) {
    case jwt_algorithm::hs256: return hmac_sha256(impl_->secret, signing_input);
    case jwt_algorithm::rs256: return evp_sign(impl_->pkey, signing_input);
    case jwt_algorithm::es256: {
      auto der = evp_sign(impl_->pkey, signing_input);
      if (!der) return der;
      std::string raw = der_to_raw(*der);
      if (raw.empty()) return unexpected(core::errc::invalid_argument);
      return raw;
    }
  }
  return unexpected(core::errc::invalid_argument);
}

jwt_key_set& jwt_key_set::add(jwt_key key) {
  keys_.push_back(std::move(key));
  return *this;
}

jwt_key_set jwt_key_set::from_jwks(std::string_view text, std::string_view field) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) config_fail(field, "not valid JSON");
  const auto keys = doc.is_object() ? doc.find("keys") : doc.end();
  if (!doc.is_object() || keys == doc.end() || !keys->is_array())
    config_fail(field, "a JWK Set is an object with a \"keys\" array (RFC 7517 §5)");
  jwt_key_set out;
  std::set<std::string> kids;
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const json& jwk = (*keys)[i];
    const std::string where = std::string(field) + ".keys[" + std::to_string(i) + "]";
    if (!jwk.is_object()) config_fail(where, "a JWK must be a JSON object");
    // Skipped, not refused: keys meant for something else or for
    // algorithms we do not implement.
    const auto kty = jwk.find("kty");
    const bool usable_type =
        kty != jwk.end() &&
        (*kty == "oct" || *kty == "RSA" || (*kty == "EC" && jwk.value("crv", "") == "P-256"));
    const auto use = jwk.find("use");
    const bool for_signing = use == jwk.end() || *use == "sig";
    const auto alg = jwk.find("alg");
    const bool known_alg =
        alg == jwk.end() || (alg->is_string() && parse_jwt_algorithm(alg->get<std::string>()));
    if (!usable_type || !for_signing || !known_alg) continue;
    jwt_key key = jwt_key::from_jwk(jwk, where);
    if (!key.kid().empty() && !kids.insert(key.kid()).second)
      config_fail(where + ".kid", "duplicate key id \"" + key.kid() + "\"");
    out.add(std::move(key));
  }
  if (out.empty()) config_fail(field, "no usable signing key (HS256, RS256 or ES256)");
  return out;
}

jwt_key_set jwt_key_set::from_jwks_file(const std::string& path, std::string_view field) {
  return from_jwks(read_file(path, field), field);
}

jwt_verifier::jwt_verifier(jwt_key_set keys, jwt_verify_options options)
    : keys_(std::move(keys)), options_(std::move(options)) {
  if (keys_.empty()) throw core::config_error("jwt.keys", "a verifier needs at least one key");
}

namespace {

// RFC 7519 §7.2 step 10 onwards: the claims, once the signature is good.
result<void> check_claims(const json& claims, const jwt_verify_options& o,
                          std::chrono::system_clock::time_point now) {
  for (const char* name : {"exp", "nbf", "iat"}) {
    const auto it = claims.find(name);
    if (it != claims.end() && !it->is_number()) return unexpected(jwt_error::bad_claim);
  }
  if (const auto sub = claims.find("sub"); sub != claims.end() && !sub->is_string())
    return unexpected(jwt_error::bad_claim);
  // NumericDate may have a fraction; compare in double seconds. Whole
  // seconds (all real tokens) are exact in a double for ~285 million years.
  const double t = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = static_cast<double>(o.leeway.count());
  const auto exp = claims.find("exp");
  if (exp == claims.end()) {
    if (o.require_exp) return unexpected(jwt_error::bad_claim);
  } else if (t >= exp->get<double>() + leeway) {
    // §4.1.4: "the current date/time MUST be before the expiration".
    return unexpected(jwt_error::expired);
  }
  if (const auto nbf = claims.find("nbf"); nbf != claims.end() && t + leeway < nbf->get<double>())
    return unexpected(jwt_error::not_yet_valid);  // §4.1.5: "after or equal to"

  if (o.issuer) {
    const auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || *iss != *o.issuer)
      return unexpected(jwt_error::bad_issuer);
  }
  if (!o.audiences.empty()) {
    const auto aud = claims.find("aud");
    if (aud == claims.end()) return unexpected(jwt_error::bad_audience);
    auto accepted = [&](const json& v) {
      for (const auto& a : o.audiences)
        if (v == a) return true;
      return false;
    };
    if (aud->is_string()) {
      if (!accepted(*aud)) return unexpected(jwt_error::bad_audience);
    } else if (aud->is_array()) {
      bool any = false;
      for (const auto& v : *aud) {
        if (!v.is_string()) return unexpected(jwt_error::bad_claim);
        any = any || accepted(v);
      }
      if (!any) return unexpected(jwt_error::bad_audience);
    } else {
      return unexpected(jwt_error::bad_claim);
    }
  }
  return {};
}

}  // namespace

result<verified_jwt> jwt_verifier::verify(std::string_view token,
                                          std::chrono::system_clock::time_point now) const {
  auto parsed = codec::parse_jwt(token, options_.parse);
  if (!parsed) return unexpected(parsed.error());
  // "none" and anything we do not implement end here, before any key.
  const auto alg = parse_jwt_algorithm(parsed->alg());
  if (!alg) return unexpected(jwt_error::algorithm_not_allowed);

  const auto kid_it = parsed->header.find("kid");
  const bool has_kid = kid_it != parsed->header.end();
  if (has_kid && !kid_it->is_string()) return unexpected(jwt_error::unknown_key);
  // The keys this token may be checked with: the ones its kid names, or
  // without a kid every key. Either way only keys of the token's algorithm
  // are tried — the key decides the algorithm, never the token.
  bool named = false;     // a key with the token's kid exists
  bool eligible = false;  // a key of the token's algorithm (and kid) exists
  for (const jwt_key& k : keys_.keys()) {
    if (has_kid && k.kid() != parsed->kid()) continue;
    named = true;
    if (k.algorithm() != *alg) continue;
    eligible = true;
    if (k.verify(parsed->signing_input, parsed->signature)) {
      if (auto ok = check_claims(parsed->claims, options_, now); !ok) return unexpected(ok.error());
      verified_jwt out;
      out.header = std::move(parsed->header);
      out.claims = std::move(parsed->claims);
      return out;
    }
  }
  if (has_kid && !named) return unexpected(jwt_error::unknown_key);
  if (!eligible) return unexpected(jwt_error::algorithm_not_allowed);
  return unexpected(jwt_error::bad_signature);
}

result<std::string> sign_jwt(const json& claims, const jwt_key& key, const json& extra_header) {
  if (!key.can_sign() || !extra_header.is_object() || extra_header.contains("alg"))
    return unexpected(core::errc::invalid_argument);
  json header = json::object();
  header["alg"] = to_string(key.algorithm());
  header["typ"] = "JWT";
  if (!key.kid().empty()) header["kid"] = key.kid();
  for (const auto& [name, value] : extra_header.items()) header[name] = value;
  const codec::jwt_signer signer = [&key](std::string_view input) { return key.sign(input); };
  return codec::build_jwt(header, claims, signer);
}

}  // namespace trellis::gateway
