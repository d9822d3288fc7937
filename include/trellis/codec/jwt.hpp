// jwt: the JWS Compact Serialization (RFC 7515 §7.1) as JSON Web Tokens
// use it (RFC 7519 §7.2) — parsing a token into its parts, and building
// one from parts. No cryptography here: this is the sans-I/O codec; keys,
// signatures and claim checks live in gateway/jwt.hpp.
//
//   BASE64URL(header) '.' BASE64URL(claims) '.' BASE64URL(signature)
//
// Parsing is strict, because a token is an attacker's input that decides
// who a request is:
//   - exactly three segments, split on '.'; whitespace, padding '=' and
//     the standard alphabet's '+' '/' are refused (base64url without
//     padding, RFC 7515 §2, decoded by codec/base64.hpp's strict decoder,
//     so one token has exactly one spelling);
//   - the header is a JSON object with a string "alg" (§4.1.1); a "crit"
//     header (§4.1.11) is refused, since it lists extensions the recipient
//     MUST understand and we understand none;
//   - the payload is a JSON object (the claims, RFC 7519 §7.2 step 10);
//   - JSON objects with a duplicate member name are refused. RFC 7515 §5.2
//     allows either refusing them or taking the last one; refusing closes
//     the door on two parsers (a gateway and a service behind it) reading
//     different "alg" or "sub" values from the same bytes;
//   - non-finite numbers, nesting deeper than a limit, and tokens over a
//     size limit (8 KiB by default: larger than any sane bearer token, and
//     well under the 16 KiB many servers allow for all header fields) are
//     refused before they cost much.
// The signature segment may be empty: that is how an unsecured ("alg":
// "none") token looks (RFC 7519 §6.1). Refusing those is the verifier's
// job, which needs to see them to refuse them with the right error.
//
// The other direction: jwt_signing_input() encodes a header and claims,
// jwt_assemble() appends a signature, and build_jwt() does both around a
// signer callback.
//
// Thread-safety: pure functions; safe everywhere.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>

#include "trellis/core/result.hpp"

namespace trellis::codec {

enum class jwt_error {
  malformed = 1,     // not exactly three '.'-separated segments
  bad_base64,        // a segment that is not strict unpadded base64url
  bad_json,          // a segment that is not one well-formed JSON value
  not_an_object,     // the header or the claims are JSON but not an object
  missing_alg,       // the header has no "alg", or it is not a string
  unsupported_crit,  // the header has "crit": extensions we cannot honour
  too_large,         // the token is longer than max_size
  duplicate_member,  // a JSON object names the same member twice
  too_deep,          // JSON nested deeper than max_depth
};

const std::error_category& jwt_category() noexcept;

inline std::error_code make_error_code(jwt_error e) noexcept {
  return {static_cast<int>(e), jwt_category()};
}

struct jwt_parse_options {
  // The longest token accepted, in bytes. 8 KiB holds a token with a few
  // dozen claims and an RSA-4096 signature; raising it raises what each
  // unauthenticated request can make the gateway decode and parse.
  std::size_t max_size = 8 * 1024;
  // The deepest nesting of arrays and objects accepted in the header or
  // the claims (the top-level object is depth 1). Real claims nest two or
  // three levels ("realm_access": {"roles": [...]}).
  std::size_t max_depth = 16;
};

// A parsed token. Owns everything: nothing points into the input.
struct jwt_token {
  nlohmann::json header;  // a JSON object with a string "alg"
  nlohmann::json claims;  // a JSON object
  // The first two segments and the '.' between them, exactly as sent:
  // what the signature covers (RFC 7515 §5.2 step 8). Never re-encoded —
  // a verifier that re-serialised the JSON would check different bytes.
  std::string signing_input;
  std::string signature;  // the decoded third segment; empty for "alg":"none"

  // The header's "alg" value.
  std::string_view alg() const noexcept;
  // The header's "kid" value (RFC 7515 §4.1.4), or "" when there is none
  // or it is not a string.
  std::string_view kid() const noexcept;
};

// Parses a compact token. Errors: jwt_error, as described above, the
// first one found reading left to right (too_large before anything).
result<jwt_token> parse_jwt(std::string_view token, const jwt_parse_options& options = {});

// BASE64URL(UTF8(header)) '.' BASE64URL(claims), each serialised compactly.
// REQUIRES: nothing. Errors: not_an_object (either is not an object),
// missing_alg (the header has no string "alg"), unsupported_crit (the
// header has "crit": parse_jwt would refuse the result), bad_json (a
// string holds invalid UTF-8, which JSON cannot carry).
result<std::string> jwt_signing_input(const nlohmann::json& header, const nlohmann::json& claims);

// signing_input '.' BASE64URL(signature): the compact token.
std::string jwt_assemble(std::string_view signing_input, std::string_view signature);

// Signs a signing input; returns the raw signature bytes or why not.
using jwt_signer = std::function<result<std::string>(std::string_view signing_input)>;

// jwt_signing_input, then `sign` over it, then jwt_assemble. Errors: those
// of jwt_signing_input, and whatever `sign` returns.
result<std::string> build_jwt(const nlohmann::json& header, const nlohmann::json& claims,
                              const jwt_signer& sign);

}  // namespace trellis::codec

template <>
struct std::is_error_code_enum<trellis::codec::jwt_error> : std::true_type {};
