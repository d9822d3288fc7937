// libFuzzer target for the JWS compact serialization codec (parse_jwt).
// Beyond "no crash, no sanitizer report", it checks what the verifier
// relies on:
//   - a parsed token's header is an object with a string "alg" and no
//     "crit", its claims are an object;
//   - the signing input is the input up to its last '.', byte for byte;
//   - a parsed token, re-encoded (jwt_signing_input + jwt_assemble),
//     parses to the same header, claims and signature;
//   - every refusal is an error of the codec's own category.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "trellis/codec/jwt.hpp"

namespace {

using namespace trellis::codec;

void check(std::string_view in) {
  auto t = parse_jwt(in);
  if (!t) {
    FUZZ_CHECK(t.error().category() == jwt_category());
    return;
  }
  FUZZ_CHECK(t->header.is_object() && t->claims.is_object());
  FUZZ_CHECK(t->header.contains("alg") && t->header["alg"].is_string());
  FUZZ_CHECK(t->alg() == t->header["alg"].get<std::string>());
  FUZZ_CHECK(!t->header.contains("crit"));
  FUZZ_CHECK(t->signing_input == in.substr(0, in.rfind('.')));

  auto input = jwt_signing_input(t->header, t->claims);
  FUZZ_CHECK(input.has_value());
  const std::string again_text = jwt_assemble(*input, t->signature);
  // Re-serialising may lengthen a token ("1e5" becomes "100000.0"), so the
  // size limit is lifted for the second parse; the depth limit is not.
  auto again = parse_jwt(again_text, {.max_size = SIZE_MAX});
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->header == t->header);
  FUZZ_CHECK(again->claims == t->claims);
  FUZZ_CHECK(again->signature == t->signature);
  FUZZ_CHECK(again->signing_input == *input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
