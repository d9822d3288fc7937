// jwt: verifying (and minting) JSON Web Tokens — RFC 7519 claims over
// RFC 7515 signatures with the RFC 7518 algorithms HS256, RS256 and ES256,
// keys from secrets, PEM files or JWK / JWK Sets (RFC 7517).
//
//   auto keys = gateway::jwt_key_set::from_jwks_file("/etc/gw/jwks.json", "auth.jwks_file");
//   gateway::jwt_verifier v(std::move(keys), {.issuer = "https://id.example",
//                                             .audiences = {"orders-api"}});
//   auto t = v.verify(token, std::chrono::system_clock::now());
//   if (!t) return reject(t.error());          // gateway::jwt_error or codec::jwt_error
//   std::string sub = t->claims["sub"];
//
// What makes a verifier safe is what it refuses (the lessons of a decade of
// JWT library CVEs):
//   - "alg":"none" is never accepted (RFC 7519 §6 tokens are unsecured).
//   - A key fixes its algorithm. The token's "alg" only selects among the
//     configured keys of that algorithm; it never decides how a key's bytes
//     are used. So the algorithm-confusion attack — an RS256 public key's
//     PEM, which is public, used as an HMAC secret to sign an HS256 token —
//     finds no HS256 key and fails, instead of verifying.
//   - Key choice: by "kid" when the token names one (an unknown kid is an
//     error, not a reason to try every key); otherwise every key of the
//     token's algorithm is tried (key rotation without kids).
//   - ES256 signatures are the fixed-size R||S of RFC 7518 §3.4, exactly 64
//     bytes; the DER form OpenSSL produces natively is refused.
//   - HS256 secrets shorter than 32 bytes (RFC 7518 §3.2: at least the hash
//     size) and RSA keys under 2048 bits (§3.3) are refused at load time,
//     as configuration errors naming the field.
//   - HMACs are compared in constant time (CRYPTO_memcmp), so response
//     timing does not reveal how many leading bytes of a forgery matched.
//   - Claims: "exp", "nbf" and "iat" must be numbers (NumericDate, RFC 7519
//     §2) when present; "exp" is required by default; "iss" and "aud" are
//     checked when configured. Times are compared with a leeway for clock
//     skew between the issuer and us.
// The verifier never reads a clock: the caller passes `now`, which keeps
// the expiry edges testable to the second.
//
// Thread-safety: keys, key sets and verifiers are immutable once built;
// verify() and sign() are safe from every worker at once (OpenSSL 3 keys
// are read-only after loading; each call uses its own digest context).
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trellis/codec/jwt.hpp"
#include "trellis/core/result.hpp"

namespace trellis::gateway {

// Why a token was refused. The codec's errors (codec::jwt_error: malformed,
// bad_base64, ...) come through unchanged.
enum class jwt_error {
  bad_signature = 1,      // no key of the token's algorithm verified the signature
  unknown_key,            // the token's "kid" names no configured key
  algorithm_not_allowed,  // "alg" is "none", unsupported, or has no configured key
  expired,                // now >= exp + leeway
  not_yet_valid,          // now + leeway < nbf
  bad_issuer,             // "iss" missing or not the configured issuer
  bad_audience,           // "aud" missing or names none of the configured audiences
  bad_claim,              // a registered claim of the wrong type, or a required one missing
};

const std::error_category& jwt_category() noexcept;

inline std::error_code make_error_code(jwt_error e) noexcept {
  return {static_cast<int>(e), jwt_category()};
}

enum class jwt_algorithm {
  hs256,  // HMAC SHA-256 with a shared secret (RFC 7518 §3.2)
  rs256,  // RSASSA-PKCS1-v1_5 SHA-256 (§3.3)
  es256,  // ECDSA P-256 SHA-256 (§3.4)
};

// "HS256", "RS256", "ES256".
std::string_view to_string(jwt_algorithm a) noexcept;
// The algorithm named `name` (exactly, case-sensitive), or nullopt ("none" included).
std::optional<jwt_algorithm> parse_jwt_algorithm(std::string_view name) noexcept;

// One key: its algorithm, an optional key id, and the secret or the
// public (and possibly private) key. Cheap to copy (shared, immutable).
class jwt_key {
 public:
  // An HS256 key. Throws core::config_error(field) when the secret is
  // shorter than 32 bytes, or looks like a PEM block (a public key pasted
  // as a secret is how algorithm confusion starts).
  static jwt_key hmac(std::string_view secret, std::string_view field, std::string kid = {});
  // An RS256 or ES256 key from PEM text: a public key (SubjectPublicKeyInfo,
  // "BEGIN PUBLIC KEY") verifies; a private key ("BEGIN PRIVATE KEY", or
  // the traditional "BEGIN RSA/EC PRIVATE KEY"; unencrypted) also signs.
  // Throws core::config_error(field) for unreadable PEM, a key of the wrong
  // type for `alg`, an EC key not on P-256, an RSA key under 2048 bits, or
  // alg == hs256 (use hmac()).
  static jwt_key from_pem(jwt_algorithm alg, std::string_view pem, std::string_view field,
                          std::string kid = {});
  // from_pem over the contents of file `path` (config_error also when it
  // cannot be read).
  static jwt_key from_pem_file(jwt_algorithm alg, const std::string& path, std::string_view field,
                               std::string kid = {});
  // A key from a JWK (RFC 7517 §4; RFC 7518 §6): kty "oct" (k), "RSA" (n,
  // e; d and optionally p, q, dp, dq, qi to sign) or "EC" with crv "P-256"
  // (x, y; d to sign). "kid" is kept; "alg", when present, must be the one
  // the key type implies (HS256, RS256, ES256); "use", when present, must
  // be "sig". Throws core::config_error naming the member ("field.n").
  static jwt_key from_jwk(const nlohmann::json& jwk, std::string_view field);

  jwt_algorithm algorithm() const noexcept;
  const std::string& kid() const noexcept;
  // Whether the key holds private material (or is an HMAC secret).
  bool can_sign() const noexcept;

  // Whether `signature` is this key's signature of `signing_input`.
  bool verify(std::string_view signing_input, std::string_view signature) const;
  // This key's signature of `signing_input` (ES256: raw R||S, 64 bytes).
  // Errors: core::errc::invalid_argument when the key cannot sign.
  result<std::string> sign(std::string_view signing_input) const;

  struct impl;

 private:
  explicit jwt_key(std::shared_ptr<const impl> i) : impl_(std::move(i)) {}
  std::shared_ptr<const impl> impl_;
};

// The keys a verifier trusts.
class jwt_key_set {
 public:
  jwt_key_set() = default;
  jwt_key_set& add(jwt_key key);

  // A JWK Set (RFC 7517 §5: {"keys": [...]}) from JSON text. Keys this
  // verifier cannot use — another "kty", "crv" or "alg" (PS256, ES384...),
  // or "use" other than "sig" — are skipped, as §5 says, since a provider's
  // set often holds more than one service needs; a key of a supported type
  // that is malformed or weak throws core::config_error naming it
  // ("field.keys[2].n"), as does a set with no usable key or a duplicate kid.
  static jwt_key_set from_jwks(std::string_view text, std::string_view field);
  static jwt_key_set from_jwks_file(const std::string& path, std::string_view field);

  const std::vector<jwt_key>& keys() const noexcept { return keys_; }
  bool empty() const noexcept { return keys_.empty(); }
  std::size_t size() const noexcept { return keys_.size(); }

 private:
  std::vector<jwt_key> keys_;
};

struct jwt_verify_options {
  // The exact "iss" required (RFC 7519 §4.1.1), or nullopt to accept any.
  // Set it whenever keys are shared by several issuers.
  std::optional<std::string> issuer{};
  // When not empty, "aud" (a string or an array of strings, §4.1.3) must
  // name at least one of these. Without it, a token minted for another
  // service that trusts the same issuer is accepted here too.
  std::vector<std::string> audiences{};
  // Clock skew tolerated for "exp" and "nbf". Default 60 s: NTP-synced
  // hosts are within a second; a minute also covers a slow token hop. A
  // larger leeway extends every stolen token's life by as much.
  std::chrono::seconds leeway{60};
  // Refuse tokens without "exp" (bad_claim). Default true: a token that
  // never expires cannot be revoked by waiting.
  bool require_exp = true;
  // Size and nesting limits of the codec.
  codec::jwt_parse_options parse{};
};

// A token that passed every check.
struct verified_jwt {
  nlohmann::json header;
  nlohmann::json claims;
};

class jwt_verifier {
 public:
  // Throws core::config_error("jwt.keys") when `keys` is empty.
  explicit jwt_verifier(jwt_key_set keys, jwt_verify_options options = {});

  // Parses and checks `token` as of `now`: signature, then claims.
  // Errors: codec::jwt_error for a token that does not parse, then
  // gateway::jwt_error (algorithm_not_allowed, unknown_key, bad_signature,
  // then bad_claim, expired, not_yet_valid, bad_issuer, bad_audience).
  result<verified_jwt> verify(std::string_view token,
                              std::chrono::system_clock::time_point now) const;

  const jwt_verify_options& options() const noexcept { return options_; }

 private:
  jwt_key_set keys_;
  jwt_verify_options options_;
};

// Mints a token: header {"alg": key's, "typ": "JWT", "kid": key's if any}
// plus the members of `extra_header` (which may not override "alg"),
// signed with `key`. Errors: core::errc::invalid_argument (the key cannot
// sign, or extra_header is not an object or sets "alg"), and those of
// codec::build_jwt.
result<std::string> sign_jwt(const nlohmann::json& claims, const jwt_key& key,
                             const nlohmann::json& extra_header = nlohmann::json::object());

}  // namespace trellis::gateway

template <>
struct std::is_error_code_enum<trellis::gateway::jwt_error> : std::true_type {};
