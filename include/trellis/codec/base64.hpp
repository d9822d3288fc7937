// Base64 (RFC 4648 §4) and base64url (RFC 4648 §5) encoding and strict
// decoding.
//
// Where HTTP meets it: Basic credentials (RFC 7617: "Basic " +
// base64("user:pass")) in Authorization and Proxy-Authorization, JWT
// segments (RFC 7515: base64url without padding), Sec-WebSocket-Key and
// -Accept (RFC 6455 §4).
//
// Decoding is strict — exactly one spelling of each byte string is
// accepted, as RFC 4648 §3.3 and §3.5 allow a decoder to insist on:
// characters outside the alphabet (whitespace and line breaks included),
// a length that is not what the padding rule gives, '=' anywhere but at
// the end, and non-zero unused bits in the last character ("QQ==" is "A";
// "QR==" is refused) are all errors. Lenient decoders let two different
// strings decode to the same bytes, which breaks anything that compares or
// signs the encoded form.
//
// Thread-safety: pure functions; safe everywhere.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "trellis/core/result.hpp"

namespace trellis::codec {

enum class base64_error {
  bad_character = 1,  // a byte outside the alphabet (or '=' when padding is off)
  bad_length,         // a length no encoding produces (5 characters; unpadded 4n+1)
  bad_padding,        // '=' in the middle, too many or too few of them
  non_canonical,      // the unused low bits of the last character are not zero
};

const std::error_category& base64_category() noexcept;

inline std::error_code make_error_code(base64_error e) noexcept {
  return {static_cast<int>(e), base64_category()};
}

enum class base64_alphabet {
  standard,  // A-Z a-z 0-9 + /   (RFC 4648 §4)
  url,       // A-Z a-z 0-9 - _   (RFC 4648 §5: safe in URLs and file names)
};

struct base64_options {
  base64_alphabet alphabet = base64_alphabet::standard;
  // Pad the output with '=' to a multiple of 4 characters, and require that
  // padding when decoding. Default on, as RFC 4648 §3.2 says unless the
  // referring specification says otherwise; JWT (RFC 7515 §2) turns it off,
  // and a decoder with padding off refuses '='.
  bool padding = true;
};

// The encoding of `bytes`: 4 characters for every 3 bytes (rounded up).
std::string base64_encode(std::string_view bytes, const base64_options& options = {});

// The bytes `text` encodes. Errors: base64_error::bad_character,
// bad_length, bad_padding, non_canonical, as described above. "" decodes
// to "".
result<std::string> base64_decode(std::string_view text, const base64_options& options = {});

}  // namespace trellis::codec

template <>
struct std::is_error_code_enum<trellis::codec::base64_error> : std::true_type {};
