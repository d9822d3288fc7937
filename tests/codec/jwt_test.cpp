// Tests of the JWS compact serialization codec: the RFC 7515 / RFC 7519
// example token, every refusal the strict parser promises, building tokens,
// and, standing in for a byte-at-a-time test (a token arrives whole, in
// one header field), every prefix and every single-byte mutation of a
// token, each of which must parse or fail cleanly.
#include "trellis/codec/jwt.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/codec/base64.hpp"
#include "trellis/core/error.hpp"

namespace trellis::codec {
namespace {

using json = nlohmann::json;

// RFC 7515 Appendix A.1 (also RFC 7519 §3.1): an HS256 token whose header
// and claims JSON contain CRLFs, which is why the signing input must be
// kept as sent rather than re-serialised.
constexpr std::string_view k_rfc_header = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
constexpr std::string_view k_rfc_claims =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q";
constexpr std::string_view k_rfc_signature = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

std::string rfc_token() {
  return std::string(k_rfc_header) + "." + std::string(k_rfc_claims) + "." +
         std::string(k_rfc_signature);
}

std::string b64(std::string_view s) {
  return base64_encode(s, {.alphabet = base64_alphabet::url, .padding = false});
}

// A token from raw header and claims text with a fixed signature.
std::string token_of(std::string_view header, std::string_view claims,
                     std::string_view signature = "sig") {
  return b64(header) + "." + b64(claims) + "." + b64(signature);
}

std::error_code parse_error(std::string_view token, const jwt_parse_options& o = {}) {
  return parse_jwt(token, o).error();
}

TEST(codec_jwt, parses_the_rfc7515_a1_example) {
  auto t = parse_jwt(rfc_token());
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->alg(), "HS256");
  EXPECT_EQ(t->kid(), "");
  EXPECT_EQ(t->header, json::parse(R"({"typ":"JWT","alg":"HS256"})"));
  EXPECT_EQ(t->claims["iss"], "joe");
  EXPECT_EQ(t->claims["exp"], 1300819380);
  EXPECT_EQ(t->claims["http://example.com/is_root"], true);
  EXPECT_EQ(t->signing_input, std::string(k_rfc_header) + "." + std::string(k_rfc_claims))
      << "the signing input is the first two segments exactly as sent";
  EXPECT_EQ(t->signature.size(), 32u) << "an HMAC-SHA-256";
  EXPECT_EQ(b64(t->signature), k_rfc_signature);
}

TEST(codec_jwt, reads_kid_only_when_it_is_a_string) {
  auto a = parse_jwt(token_of(R"({"alg":"RS256","kid":"2011-04-29"})", "{}"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kid(), "2011-04-29");
  auto b = parse_jwt(token_of(R"({"alg":"RS256","kid":7})", "{}"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->kid(), "");
}

TEST(codec_jwt, accepts_an_empty_signature_so_the_verifier_can_refuse_it) {
  // RFC 7519 §6.1's unsecured JWT: header, claims and an empty third segment.
  auto t = parse_jwt(b64(R"({"alg":"none"})") + "." + b64(R"({"iss":"joe"})") + ".");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->alg(), "none");
  EXPECT_EQ(t->signature, "");
}

TEST(codec_jwt, refuses_anything_but_three_segments) {
  const std::string h = b64(R"({"alg":"HS256"})");
  const std::string c = b64("{}");
  for (const std::string& bad :
       {std::string(), std::string("."), h, h + "." + c, h + "." + c + ".x.y",
        h + "." + c + ".." + c, h + "." + c + ".sig.", std::string("....")}) {
    EXPECT_EQ(parse_error(bad), jwt_error::malformed) << "'" << bad << "'";
  }
  // Three empty segments are three segments: the empty header is what fails.
  EXPECT_EQ(parse_error(".."), jwt_error::bad_json);
  // A JWE (RFC 7516) has five segments: refused as malformed too.
  EXPECT_EQ(parse_error(h + ".a.b.c.d"), jwt_error::malformed);
}

TEST(codec_jwt, refuses_padding_whitespace_and_the_standard_alphabet) {
  const std::string good = rfc_token();
  const std::string padded_sig = good + "=";  // 43 chars of signature + '='
  EXPECT_EQ(parse_error(padded_sig), jwt_error::bad_base64);
  const std::string h = b64(R"({"alg":"HS256"})");
  EXPECT_EQ(parse_error(h + "=." + b64("{}") + ".c2ln"), jwt_error::bad_base64);
  EXPECT_EQ(parse_error(" " + good), jwt_error::bad_base64) << "leading space";
  EXPECT_EQ(parse_error(good + " "), jwt_error::bad_base64) << "trailing space";
  EXPECT_EQ(parse_error(good + "\r\n"), jwt_error::bad_base64);
  std::string with_space = good;
  with_space.insert(10, " ");
  EXPECT_EQ(parse_error(with_space), jwt_error::bad_base64) << "inner space";
  std::string standard = good;
  standard[standard.find('-')] = '+';  // the signature has a '-': base64url only
  EXPECT_EQ(parse_error(standard), jwt_error::bad_base64);
  // Non-zero unused bits: a second spelling of the same bytes.
  std::string noncanonical = good;
  noncanonical.back() = 'l';  // "...jXk" -> "...jXl": same 32 bytes if decoded leniently
  EXPECT_EQ(parse_error(noncanonical), jwt_error::bad_base64);
}

TEST(codec_jwt, refuses_headers_that_are_not_objects_with_a_string_alg) {
  EXPECT_EQ(parse_error(token_of("not json", "{}")), jwt_error::bad_json);
  EXPECT_EQ(parse_error(token_of("", "{}")), jwt_error::bad_json);
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256"} x)", "{}")), jwt_error::bad_json)
      << "nothing may follow the value";
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256"/*c*/})", "{}")), jwt_error::bad_json)
      << "no comments";
  EXPECT_EQ(parse_error(token_of(R"(["alg","HS256"])", "{}")), jwt_error::not_an_object);
  EXPECT_EQ(parse_error(token_of(R"("HS256")", "{}")), jwt_error::not_an_object);
  EXPECT_EQ(parse_error(token_of(R"({"typ":"JWT"})", "{}")), jwt_error::missing_alg);
  EXPECT_EQ(parse_error(token_of(R"({"alg":256})", "{}")), jwt_error::missing_alg);
  EXPECT_EQ(parse_error(token_of(R"({"alg":null})", "{}")), jwt_error::missing_alg);
}

TEST(codec_jwt, refuses_crit_whatever_it_lists) {
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256","crit":["exp"],"exp":1})", "{}")),
            jwt_error::unsupported_crit);
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256","crit":[]})", "{}")),
            jwt_error::unsupported_crit)
      << "an empty crit is itself invalid (RFC 7515 §4.1.11)";
}

TEST(codec_jwt, refuses_claims_that_are_not_an_object) {
  const std::string_view h = R"({"alg":"HS256"})";
  EXPECT_EQ(parse_error(token_of(h, "[1,2]")), jwt_error::not_an_object);
  EXPECT_EQ(parse_error(token_of(h, "42")), jwt_error::not_an_object);
  EXPECT_EQ(parse_error(token_of(h, "null")), jwt_error::not_an_object);
  EXPECT_EQ(parse_error(token_of(h, "{")), jwt_error::bad_json);
  EXPECT_EQ(parse_error(token_of(h, "")), jwt_error::bad_json);
  EXPECT_EQ(parse_error(token_of(h, "{\"sub\":\"\xff\"}")), jwt_error::bad_json) << "invalid UTF-8";
  EXPECT_EQ(parse_error(token_of(h, R"({"exp":1e999})")), jwt_error::bad_json)
      << "a number that overflows to infinity";
}

TEST(codec_jwt, refuses_duplicate_member_names_at_any_depth) {
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256","alg":"none"})", "{}")),
            jwt_error::duplicate_member);
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256"})", R"({"sub":"a","sub":"b"})")),
            jwt_error::duplicate_member);
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256"})", R"({"x":[{"a":1,"a":1}]})")),
            jwt_error::duplicate_member);
  EXPECT_TRUE(parse_jwt(token_of(R"({"alg":"HS256"})", R"({"x":{"a":1},"y":{"a":1}})")))
      << "the same name in different objects is fine";
}

TEST(codec_jwt, limits_nesting_depth) {
  const jwt_parse_options o{.max_depth = 4};
  EXPECT_TRUE(parse_jwt(token_of(R"({"alg":"HS256"})", R"({"a":{"b":[[1]]}})"), o));
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256"})", R"({"a":{"b":[[[1]]]}})"), o),
            jwt_error::too_deep);
  // The default limit holds against a hostile 3000-deep array.
  const std::string deep = "{\"a\":" + std::string(3000, '[') + std::string(3000, ']') + "}";
  EXPECT_EQ(parse_error(token_of(R"({"alg":"HS256"})", deep), {.max_size = 1 << 20}),
            jwt_error::too_deep);
}

TEST(codec_jwt, refuses_tokens_over_the_size_limit_at_the_exact_boundary) {
  const std::string t = rfc_token();
  EXPECT_TRUE(parse_jwt(t, {.max_size = t.size()}));
  EXPECT_EQ(parse_error(t, {.max_size = t.size() - 1}), jwt_error::too_large);
  const std::string big =
      token_of(R"({"alg":"HS256"})", "{\"x\":\"" + std::string(9000, 'a') + "\"}");
  EXPECT_EQ(parse_error(big), jwt_error::too_large) << "8 KiB by default";
}

TEST(codec_jwt, builds_a_token_that_parses_back_to_the_same_values) {
  const json header = {{"alg", "HS256"}, {"typ", "JWT"}, {"kid", "k1"}};
  const json claims = {{"sub", "alice"},
                       {"exp", 1700000000},
                       {"scope", "read write"},
                       {"nested", {{"roles", {"admin", "ops"}}}},
                       {"pi", 3.25}};
  std::string seen_input;
  const jwt_signer signer = [&](std::string_view input) -> result<std::string> {
    seen_input.assign(input);
    return std::string("\x00\xff\x10signature", 12);
  };
  auto token = build_jwt(header, claims, signer);
  ASSERT_TRUE(token) << token.error().message();
  auto t = parse_jwt(*token);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->header, header);
  EXPECT_EQ(t->claims, claims);
  EXPECT_EQ(t->signature, std::string("\x00\xff\x10signature", 12));
  EXPECT_EQ(t->signing_input, seen_input) << "the signer saw exactly what the token carries";
  EXPECT_EQ(*token, jwt_assemble(seen_input, t->signature));
}

TEST(codec_jwt, refuses_to_build_what_it_would_refuse_to_parse) {
  const jwt_signer never = [](std::string_view) -> result<std::string> {
    ADD_FAILURE() << "the signer must not run";
    return std::string();
  };
  EXPECT_EQ(build_jwt(json::array(), json::object(), never).error(), jwt_error::not_an_object);
  EXPECT_EQ(build_jwt({{"alg", "HS256"}}, json::array(), never).error(), jwt_error::not_an_object);
  EXPECT_EQ(build_jwt({{"typ", "JWT"}}, json::object(), never).error(), jwt_error::missing_alg);
  EXPECT_EQ(build_jwt({{"alg", "HS256"}, {"crit", {"x"}}}, json::object(), never).error(),
            jwt_error::unsupported_crit);
  EXPECT_EQ(build_jwt({{"alg", "HS256"}}, {{"sub", "\xff"}}, never).error(), jwt_error::bad_json);
}

TEST(codec_jwt, passes_the_signers_error_through) {
  const jwt_signer failing = [](std::string_view) -> result<std::string> {
    return unexpected(core::errc::invalid_argument);
  };
  EXPECT_EQ(build_jwt({{"alg", "HS256"}}, json::object(), failing).error(),
            core::errc::invalid_argument);
}

// Every prefix of a token: too short to hold three segments is malformed;
// a prefix cut inside the signature may happen to be valid base64url, and
// then it parses with the same header and claims and a shorter signature.
// Nothing crashes and every error is one of the codec's.
TEST(codec_jwt, every_prefix_parses_or_fails_cleanly) {
  const std::string t = rfc_token();
  auto whole = parse_jwt(t);
  ASSERT_TRUE(whole);
  const std::size_t sig_start = t.rfind('.') + 1;
  for (std::size_t n = 0; n < t.size(); ++n) {
    const std::string prefix = t.substr(0, n);
    auto p = parse_jwt(prefix);
    if (n < sig_start) {
      ASSERT_FALSE(p) << n;
      EXPECT_EQ(p.error(), jwt_error::malformed) << n;
      continue;
    }
    if (!p) {
      EXPECT_EQ(p.error(), jwt_error::bad_base64) << n;
      continue;
    }
    EXPECT_EQ(p->header, whole->header) << n;
    EXPECT_EQ(p->claims, whole->claims) << n;
    EXPECT_EQ(p->signing_input, whole->signing_input) << n;
    EXPECT_TRUE(whole->signature.starts_with(p->signature)) << n;
    EXPECT_LT(p->signature.size(), whole->signature.size()) << n;
  }
}

// Every position, every byte value. A mutation either fails with a codec
// error or yields a token whose signing input is the mutated text — so a
// changed header or claims byte always changes what the signature covers,
// and a changed signature byte always changes the signature.
TEST(codec_jwt, every_single_byte_mutation_parses_or_fails_cleanly) {
  const std::string t = rfc_token();
  auto whole = parse_jwt(t);
  ASSERT_TRUE(whole);
  std::size_t parsed = 0;
  std::size_t refused = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    for (int b = 0; b < 256; ++b) {
      if (static_cast<char>(b) == t[i]) continue;
      std::string m = t;
      m[i] = static_cast<char>(b);
      auto p = parse_jwt(m);
      if (!p) {
        ASSERT_EQ(p.error().category(), jwt_category()) << i << " " << b;
        ++refused;
        continue;
      }
      ++parsed;
      const std::size_t last_dot = m.rfind('.');
      ASSERT_EQ(p->signing_input, m.substr(0, last_dot)) << i << " " << b;
      if (i > last_dot) {
        ASSERT_NE(p->signature, whole->signature) << i << " " << b;
      } else {
        ASSERT_NE(p->signing_input, whole->signing_input) << i << " " << b;
      }
    }
  }
  EXPECT_GT(parsed, 0u) << "some mutations (in the signature, say) are still well-formed";
  EXPECT_GT(refused, parsed) << "most are not";
}

TEST(codec_jwt, errors_have_a_category_and_messages) {
  std::error_code ec = jwt_error::unsupported_crit;
  EXPECT_STREQ(ec.category().name(), "trellis.jwt");
  EXPECT_EQ(ec.message(), "token header has \"crit\" extensions");
  for (int e = 1; e <= static_cast<int>(jwt_error::too_deep); ++e)
    EXPECT_NE(jwt_category().message(e), "unknown jwt error") << e;
}

}  // namespace
}  // namespace trellis::codec
