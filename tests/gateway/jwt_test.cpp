// Tests of gateway::jwt: the RFC 7515 Appendix A tokens verify with the
// keys printed there, tokens signed here verify for all three algorithms,
// and every way a token can be wrong is refused with its own error. Time
// is always passed in, so the expiry edges are exact.
#include "trellis/gateway/jwt.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>

#include "trellis/codec/base64.hpp"
#include "trellis/codec/jwt.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;
using std::chrono::system_clock;

system_clock::time_point at(std::int64_t unix_seconds) {
  return system_clock::time_point(seconds(unix_seconds));
}

// The RFC 7515 examples all carry "exp":1300819380 (2011-03-22).
const system_clock::time_point k_rfc_now = at(1300819380 - 3600);

constexpr std::string_view k_rfc_claims_b64 =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q";

// RFC 7515 A.1 (and RFC 7519 §3.1): HS256.
const std::string k_a1_token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." +
                               std::string(k_rfc_claims_b64) +
                               ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const json k_a1_jwk = {
    {"kty", "oct"},
    {"k",
     "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}};

// RFC 7515 A.2: RS256 with a 2048-bit key (the private members included,
// so the same key also signs in the round-trip test).
const std::string k_a2_token = "eyJhbGciOiJSUzI1NiJ9." + std::string(k_rfc_claims_b64) +
                               ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
                               "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"
                               "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
                               "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"
                               "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"
                               "p0igcN_IoypGlUPQGe77Rw";
const json k_a2_jwk = {
    {"kty", "RSA"},
    {"n",
     "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-"
     "4qPCJrcS2mJPMEzP1Pt0Bm4d4Q"
     "lL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
     "bSf63kpaSHSXndS5z5rexMdbBY"
     "UsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"
     "DWNm"
     "oudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"},
    {"e", "AQAB"},
    {"d",
     "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-"
     "7YwVol2NXOoAJ"
     "e46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_"
     "V51gfpRLI"
     "9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_"
     "jTj3ccPDVZFD9p"
     "IuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ"},
    {"p",
     "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_"
     "Py5PJdT"
     "JNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc"},
    {"q",
     "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-"
     "7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_Y"
     "wD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc"},
    {"dp",
     "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-"
     "FOKnu1R6Hs"
     "JeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0"},
    {"dq",
     "h_96-mK1R_"
     "7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-"
     "NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU"},
    {"qi",
     "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_"
     "QJQ3ydy5cY7YIBi"
     "87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"}};

// RFC 7515 A.3: ES256 over P-256.
const std::string k_a3_token =
    "eyJhbGciOiJFUzI1NiJ9." + std::string(k_rfc_claims_b64) +
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
const json k_a3_jwk = {{"kty", "EC"},
                       {"crv", "P-256"},
                       {"x", "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"},
                       {"y", "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
                       {"d", "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}};

json public_part(json jwk) {
  for (const char* m : {"d", "p", "q", "dp", "dq", "qi"}) jwk.erase(m);
  return jwk;
}

std::string b64(std::string_view s) {
  return codec::base64_encode(s, {.alphabet = codec::base64_alphabet::url, .padding = false});
}

// A fresh key pair as PEM, made with OpenSSL (keys are never committed).
struct pem_pair {
  std::string public_pem;
  std::string private_pem;
};

pem_pair generate(const char* type, const char* param, std::size_t bits = 0) {
  EVP_PKEY* k = bits ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, bits)
                     : EVP_PKEY_Q_keygen(nullptr, nullptr, type, param);
  if (!k) throw std::runtime_error("keygen failed");
  BIO* pub = BIO_new(BIO_s_mem());
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, k);
  PEM_write_bio_PrivateKey(priv, k, nullptr, nullptr, 0, nullptr, nullptr);
  auto text = [](BIO* b) {
    char* p = nullptr;
    const long n = BIO_get_mem_data(b, &p);
    return std::string(p, static_cast<std::size_t>(n));
  };
  pem_pair out{text(pub), text(priv)};
  BIO_free(pub);
  BIO_free(priv);
  EVP_PKEY_free(k);
  return out;
}

const pem_pair& rsa2048() {
  static const pem_pair p = generate("RSA", nullptr, 2048);
  return p;
}
const pem_pair& ec_p256() {
  static const pem_pair p = generate("EC", "P-256");
  return p;
}

const std::string k_secret = "0123456789abcdef0123456789abcdef-test-secret";

jwt_key hs_key(std::string kid = {}) {
  return jwt_key::hmac(k_secret, "test.secret", std::move(kid));
}

jwt_verifier verifier_of(jwt_key key, jwt_verify_options o = {}) {
  jwt_key_set s;
  s.add(std::move(key));
  return jwt_verifier(std::move(s), std::move(o));
}

// A token with any header, signed by HMAC-SHA-256 with `secret`, the way
// an attacker (or a sloppy issuer) would make one: by hand, so nothing
// stops a header the codec would refuse to build.
std::string hs256_token(const json& header, const json& claims,
                        std::string_view secret = k_secret) {
  const std::string input = b64(header.dump()) + "." + b64(claims.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &n);
  return codec::jwt_assemble(input, std::string_view(reinterpret_cast<const char*>(mac), n));
}

// Whether f throws core::config_error naming `field`.
::testing::AssertionResult throws_config_error(const std::function<void()>& f,
                                               std::string_view field) {
  try {
    f();
  } catch (const core::config_error& e) {
    if (e.field() == field) return ::testing::AssertionSuccess() << e.what();
    return ::testing::AssertionFailure() << "names field '" << e.field() << "': " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw something else: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// --- the RFC examples ---------------------------------------------------

TEST(gateway_jwt, verifies_rfc7515_a1_hs256_with_its_jwk) {
  auto v = verifier_of(jwt_key::from_jwk(k_a1_jwk, "a1"));
  auto t = v.verify(k_a1_token, k_rfc_now);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->header["typ"], "JWT");
  EXPECT_EQ(t->claims["iss"], "joe");
}

TEST(gateway_jwt, verifies_rfc7515_a2_rs256_with_its_jwk) {
  auto v = verifier_of(jwt_key::from_jwk(public_part(k_a2_jwk), "a2"));
  auto t = v.verify(k_a2_token, k_rfc_now);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->header["alg"], "RS256");
  EXPECT_EQ(t->claims["http://example.com/is_root"], true);
}

TEST(gateway_jwt, verifies_rfc7515_a3_es256_with_its_jwk) {
  auto v = verifier_of(jwt_key::from_jwk(public_part(k_a3_jwk), "a3"));
  auto t = v.verify(k_a3_token, k_rfc_now);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->header["alg"], "ES256");
}

TEST(gateway_jwt, reads_the_rfc7519_section_3_1_example_claims) {
  // RFC 7519 §3.1's JWT is A.1's token: its claims decode to exactly these.
  auto v = verifier_of(jwt_key::from_jwk(k_a1_jwk, "a1"));
  auto t = v.verify(k_a1_token, k_rfc_now);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->claims, json::parse(R"({"iss":"joe","exp":1300819380,
                                       "http://example.com/is_root":true})"));
  EXPECT_EQ(v.verify(k_a1_token, at(1300819380 + 60)).error(), jwt_error::expired)
      << "and it expired in 2011";
}

TEST(gateway_jwt, rfc_tokens_verify_only_with_their_own_key) {
  jwt_key_set all = jwt_key_set::from_jwks(
      json{{"keys", {k_a1_jwk, public_part(k_a2_jwk), public_part(k_a3_jwk)}}}.dump(), "jwks");
  ASSERT_EQ(all.size(), 3u);
  jwt_verifier v(all);
  for (const std::string& t : {k_a1_token, k_a2_token, k_a3_token})
    EXPECT_TRUE(v.verify(t, k_rfc_now)) << t.substr(0, 20);
  // Each signature is checked against the right key: swap signatures.
  const std::string a2_with_a3_sig =
      k_a2_token.substr(0, k_a2_token.rfind('.')) + k_a3_token.substr(k_a3_token.rfind('.'));
  EXPECT_EQ(v.verify(a2_with_a3_sig, k_rfc_now).error(), jwt_error::bad_signature);
}

// --- sign -> verify -------------------------------------------------------

TEST(gateway_jwt, round_trips_hs256) {
  const json claims = {{"sub", "alice"}, {"exp", 2000}};
  auto token = sign_jwt(claims, hs_key("h1"));
  ASSERT_TRUE(token) << token.error().message();
  auto t = verifier_of(hs_key("h1")).verify(*token, at(1000));
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->claims, claims);
  EXPECT_EQ(t->header, json::parse(R"({"alg":"HS256","typ":"JWT","kid":"h1"})"));
}

TEST(gateway_jwt, round_trips_rs256_with_pem_and_jwk_keys) {
  const json claims = {{"sub", "bob"}, {"exp", 2000}};
  auto signer = jwt_key::from_pem(jwt_algorithm::rs256, rsa2048().private_pem, "rsa.private");
  ASSERT_TRUE(signer.can_sign());
  auto token = sign_jwt(claims, signer);
  ASSERT_TRUE(token) << token.error().message();
  auto pub = jwt_key::from_pem(jwt_algorithm::rs256, rsa2048().public_pem, "rsa.public");
  EXPECT_FALSE(pub.can_sign());
  auto t = verifier_of(pub).verify(*token, at(1000));
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->claims, claims);
  EXPECT_EQ(sign_jwt(claims, pub).error(), core::errc::invalid_argument)
      << "public keys verify only";
  // The RFC's private JWK signs tokens its public JWK accepts.
  auto jwk_token = sign_jwt(claims, jwt_key::from_jwk(k_a2_jwk, "a2"));
  ASSERT_TRUE(jwk_token);
  EXPECT_TRUE(
      verifier_of(jwt_key::from_jwk(public_part(k_a2_jwk), "a2")).verify(*jwk_token, at(1000)));
}

TEST(gateway_jwt, round_trips_es256_with_raw_64_byte_signatures) {
  const json claims = {{"sub", "carol"}, {"exp", 2000}};
  auto signer = jwt_key::from_pem(jwt_algorithm::es256, ec_p256().private_pem, "ec.private");
  auto verifier = verifier_of(jwt_key::from_pem(jwt_algorithm::es256, ec_p256().public_pem, "ec"));
  // ECDSA is randomised, and R or S sometimes has leading zero bytes: sign
  // a few times so the zero-padding path is likely exercised.
  for (int i = 0; i < 20; ++i) {
    auto token = sign_jwt(claims, signer);
    ASSERT_TRUE(token) << token.error().message();
    auto parsed = codec::parse_jwt(*token);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->signature.size(), 64u);
    auto t = verifier.verify(*token, at(1000));
    ASSERT_TRUE(t) << t.error().message();
  }
  auto jwk_token = sign_jwt(claims, jwt_key::from_jwk(k_a3_jwk, "a3"));
  ASSERT_TRUE(jwk_token);
  EXPECT_TRUE(
      verifier_of(jwt_key::from_jwk(public_part(k_a3_jwk), "a3")).verify(*jwk_token, at(1000)));
}

// --- refusals -------------------------------------------------------------

TEST(gateway_jwt, refuses_alg_none_with_or_without_a_signature) {
  auto v = verifier_of(hs_key());
  const std::string unsigned_part = b64(R"({"alg":"none"})") + "." + b64(R"({"exp":2000})");
  EXPECT_EQ(v.verify(unsigned_part + ".", at(1000)).error(), jwt_error::algorithm_not_allowed);
  EXPECT_EQ(v.verify(unsigned_part + "." + b64("anything"), at(1000)).error(),
            jwt_error::algorithm_not_allowed);
  for (const char* spelling : {"None", "NONE", "nOnE", "HS384", "PS256", ""}) {
    const std::string t = b64(json{{"alg", spelling}}.dump()) + "." + b64(R"({"exp":2000})") + ".";
    EXPECT_EQ(v.verify(t, at(1000)).error(), jwt_error::algorithm_not_allowed) << spelling;
  }
}

TEST(gateway_jwt, refuses_the_algorithm_confusion_attack) {
  // The attacker knows the RS256 public key (it is public) and signs an
  // HS256 token using its PEM text as the HMAC secret. A verifier that
  // let the token's "alg" pick how to use the key would accept it.
  const std::string pem = rsa2048().public_pem;
  const std::string forged =
      hs256_token({{"alg", "HS256"}, {"typ", "JWT"}}, {{"sub", "admin"}, {"exp", 2000}}, pem);
  auto v = verifier_of(jwt_key::from_pem(jwt_algorithm::rs256, pem, "rsa"));
  EXPECT_EQ(v.verify(forged, at(1000)).error(), jwt_error::algorithm_not_allowed);
  // The same with a kid naming the RSA key.
  const std::string forged_kid =
      hs256_token({{"alg", "HS256"}, {"kid", "rsa1"}}, {{"sub", "admin"}, {"exp", 2000}}, pem);
  auto vk = verifier_of(jwt_key::from_pem(jwt_algorithm::rs256, pem, "rsa", "rsa1"));
  EXPECT_EQ(vk.verify(forged_kid, at(1000)).error(), jwt_error::algorithm_not_allowed);
  // And nobody can configure the PEM as a secret by mistake.
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key::hmac(pem, "auth.secret"); }, "auth.secret"));
}

TEST(gateway_jwt, refuses_wrong_and_tampered_signatures_and_payloads) {
  auto v = verifier_of(hs_key());
  const std::string good = sign_jwt({{"sub", "alice"}, {"exp", 2000}}, hs_key()).value();
  ASSERT_TRUE(v.verify(good, at(1000)));
  // Signed with another secret.
  const std::string other = sign_jwt({{"sub", "alice"}, {"exp", 2000}},
                                     jwt_key::hmac("another-secret-that-is-32-bytes-long!", "s"))
                                .value();
  EXPECT_EQ(v.verify(other, at(1000)).error(), jwt_error::bad_signature);
  // The claims swapped for others, the signature kept.
  const std::string forged_claims = good.substr(0, good.find('.') + 1) +
                                    b64(R"({"sub":"admin","exp":2000})") +
                                    good.substr(good.rfind('.'));
  EXPECT_EQ(v.verify(forged_claims, at(1000)).error(), jwt_error::bad_signature);
  // One signature byte flipped (re-encoded so the base64 stays valid).
  auto parsed = codec::parse_jwt(good).value();
  std::string sig = parsed.signature;
  sig[5] = static_cast<char>(sig[5] ^ 1);
  EXPECT_EQ(v.verify(codec::jwt_assemble(parsed.signing_input, sig), at(1000)).error(),
            jwt_error::bad_signature);
  // A truncated signature and an empty one.
  EXPECT_EQ(
      v.verify(codec::jwt_assemble(parsed.signing_input, sig.substr(0, 31)), at(1000)).error(),
      jwt_error::bad_signature);
  EXPECT_EQ(v.verify(parsed.signing_input + ".", at(1000)).error(), jwt_error::bad_signature);
  // RS256 and ES256 tampering.
  auto rs = verifier_of(jwt_key::from_jwk(public_part(k_a2_jwk), "a2"));
  std::string a2 = k_a2_token;
  a2[a2.size() - 5] = a2[a2.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(rs.verify(a2, k_rfc_now).error(), jwt_error::bad_signature);
  auto es = verifier_of(jwt_key::from_jwk(public_part(k_a3_jwk), "a3"));
  std::string a3 = k_a3_token;
  a3[a3.size() - 10] = a3[a3.size() - 10] == 'A' ? 'B' : 'A';
  EXPECT_EQ(es.verify(a3, k_rfc_now).error(), jwt_error::bad_signature);
}

TEST(gateway_jwt, refuses_an_es256_signature_in_der_form) {
  auto key = jwt_key::from_pem(jwt_algorithm::es256, ec_p256().private_pem, "ec");
  const std::string input = codec::jwt_signing_input({{"alg", "ES256"}}, {{"exp", 2000}}).value();
  // A DER signature over the same input, as OpenSSL makes it natively.
  EVP_PKEY* pkey = nullptr;
  {
    BIO* bio = BIO_new_mem_buf(ec_p256().private_pem.data(),
                               static_cast<int>(ec_p256().private_pem.size()));
    pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
  }
  ASSERT_NE(pkey, nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t n = 128;
  std::string der(n, '\0');
  ASSERT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey), 1);
  ASSERT_EQ(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &n,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()),
            1);
  der.resize(n);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  EXPECT_NE(der.size(), 64u);
  EXPECT_FALSE(key.verify(input, der)) << "DER is not the JWS form";
  auto v = verifier_of(key);
  EXPECT_EQ(v.verify(codec::jwt_assemble(input, der), at(1000)).error(), jwt_error::bad_signature);
  // And any other length is refused before OpenSSL sees it.
  const std::string raw = key.sign(input).value();
  ASSERT_EQ(raw.size(), 64u);
  EXPECT_TRUE(key.verify(input, raw));
  EXPECT_FALSE(key.verify(input, raw + '\0'));
  EXPECT_FALSE(key.verify(input, raw.substr(0, 63)));
}

TEST(gateway_jwt, refuses_expired_tokens_at_the_leeway_edge_exactly) {
  const std::string t = sign_jwt({{"exp", 1'000'000}}, hs_key()).value();
  auto v = verifier_of(hs_key());  // leeway 60 s
  EXPECT_TRUE(v.verify(t, at(1'000'000 + 59)));
  EXPECT_EQ(v.verify(t, at(1'000'000 + 60)).error(), jwt_error::expired);
  auto strict = verifier_of(hs_key(), {.leeway = seconds(0)});
  EXPECT_TRUE(strict.verify(t, at(999'999)));
  EXPECT_EQ(strict.verify(t, at(1'000'000)).error(), jwt_error::expired)
      << "RFC 7519 §4.1.4: now must be before exp";
  // A fractional NumericDate and a sub-second now.
  const std::string frac = sign_jwt({{"exp", 1'000'000.5}}, hs_key()).value();
  EXPECT_TRUE(strict.verify(frac, at(1'000'000) + std::chrono::milliseconds(499)));
  EXPECT_EQ(strict.verify(frac, at(1'000'000) + std::chrono::milliseconds(500)).error(),
            jwt_error::expired);
}

TEST(gateway_jwt, refuses_tokens_before_nbf_at_the_leeway_edge_exactly) {
  const std::string t = sign_jwt({{"exp", 9'000'000}, {"nbf", 2'000'000}}, hs_key()).value();
  auto v = verifier_of(hs_key());
  EXPECT_TRUE(v.verify(t, at(2'000'000 - 60)));
  EXPECT_EQ(v.verify(t, at(2'000'000 - 61)).error(), jwt_error::not_yet_valid);
  auto strict = verifier_of(hs_key(), {.leeway = seconds(0)});
  EXPECT_TRUE(strict.verify(t, at(2'000'000))) << "§4.1.5: valid at nbf itself";
  EXPECT_EQ(strict.verify(t, at(1'999'999)).error(), jwt_error::not_yet_valid);
}

TEST(gateway_jwt, checks_the_types_of_time_claims_and_requires_exp) {
  auto v = verifier_of(hs_key());
  EXPECT_EQ(v.verify(sign_jwt({{"sub", "x"}}, hs_key()).value(), at(1000)).error(),
            jwt_error::bad_claim)
      << "exp is required by default";
  auto lax = verifier_of(hs_key(), {.require_exp = false});
  EXPECT_TRUE(lax.verify(sign_jwt({{"sub", "x"}}, hs_key()).value(), at(1000)));
  for (const json& claims : {json{{"exp", "2000"}}, json{{"exp", 2000}, {"nbf", "0"}},
                             json{{"exp", 2000}, {"iat", true}}, json{{"exp", nullptr}},
                             json{{"exp", 2000}, {"sub", 42}}}) {
    EXPECT_EQ(v.verify(sign_jwt(claims, hs_key()).value(), at(1000)).error(), jwt_error::bad_claim)
        << claims.dump();
  }
}

TEST(gateway_jwt, checks_the_issuer_exactly) {
  auto v = verifier_of(hs_key(), {.issuer = "https://id.example"});
  auto tok = [](const json& iss) {
    json c = {{"exp", 2000}};
    if (!iss.is_null()) c["iss"] = iss;
    return sign_jwt(c, hs_key()).value();
  };
  EXPECT_TRUE(v.verify(tok("https://id.example"), at(1000)));
  EXPECT_EQ(v.verify(tok("https://id.example/"), at(1000)).error(), jwt_error::bad_issuer);
  EXPECT_EQ(v.verify(tok("https://ID.example"), at(1000)).error(), jwt_error::bad_issuer);
  EXPECT_EQ(v.verify(tok(nullptr), at(1000)).error(), jwt_error::bad_issuer);
  EXPECT_EQ(v.verify(tok(json::array({"https://id.example"})), at(1000)).error(),
            jwt_error::bad_issuer);
}

TEST(gateway_jwt, checks_the_audience_as_a_string_or_an_array) {
  auto v = verifier_of(hs_key(), {.audiences = {"orders", "billing"}});
  auto tok = [](const json& aud) {
    json c = {{"exp", 2000}};
    if (!aud.is_null()) c["aud"] = aud;
    return sign_jwt(c, hs_key()).value();
  };
  EXPECT_TRUE(v.verify(tok("orders"), at(1000)));
  EXPECT_TRUE(v.verify(tok(json::array({"other", "billing"})), at(1000)));
  EXPECT_EQ(v.verify(tok("inventory"), at(1000)).error(), jwt_error::bad_audience);
  EXPECT_EQ(v.verify(tok(json::array({"inventory", "Orders"})), at(1000)).error(),
            jwt_error::bad_audience);
  EXPECT_EQ(v.verify(tok(json::array()), at(1000)).error(), jwt_error::bad_audience);
  EXPECT_EQ(v.verify(tok(nullptr), at(1000)).error(), jwt_error::bad_audience);
  EXPECT_EQ(v.verify(tok(json::array({"orders", 7})), at(1000)).error(), jwt_error::bad_claim);
  EXPECT_EQ(v.verify(tok(7), at(1000)).error(), jwt_error::bad_claim);
  // Not configured: aud is not checked.
  EXPECT_TRUE(verifier_of(hs_key()).verify(tok("anyone"), at(1000)));
}

TEST(gateway_jwt, chooses_keys_by_kid_and_refuses_unknown_kids) {
  jwt_key_set keys;
  keys.add(jwt_key::hmac("first-secret-first-secret-first-secret", "a", "k1"));
  keys.add(jwt_key::hmac("second-secret-second-secret-second-sec", "b", "k2"));
  jwt_verifier v(keys);
  const json claims = {{"exp", 2000}};
  EXPECT_TRUE(v.verify(sign_jwt(claims, keys.keys()[1]).value(), at(1000)));
  EXPECT_EQ(v.verify(hs256_token({{"alg", "HS256"}, {"kid", "k3"}}, claims,
                                 "second-secret-second-secret-second-sec"),
                     at(1000))
                .error(),
            jwt_error::unknown_key);
  // The kid names k1 but the token is signed with k2's secret: only k1 is tried.
  EXPECT_EQ(v.verify(hs256_token({{"alg", "HS256"}, {"kid", "k1"}}, claims,
                                 "second-secret-second-secret-second-sec"),
                     at(1000))
                .error(),
            jwt_error::bad_signature);
  // Without a kid, every key of the algorithm is tried (rotation).
  EXPECT_TRUE(v.verify(
      hs256_token({{"alg", "HS256"}}, claims, "second-secret-second-secret-second-sec"), at(1000)));
  EXPECT_EQ(v.verify(hs256_token({{"alg", "HS256"}, {"kid", 1}}, claims,
                                 "second-secret-second-secret-second-sec"),
                     at(1000))
                .error(),
            jwt_error::unknown_key)
      << "a kid that is not a string names nothing";
}

TEST(gateway_jwt, passes_codec_errors_through) {
  auto v = verifier_of(hs_key());
  const std::string good = sign_jwt({{"exp", 2000}}, hs_key()).value();
  EXPECT_EQ(v.verify(good.substr(0, good.rfind('.')), at(1000)).error(),
            codec::jwt_error::malformed)
      << "two segments";
  EXPECT_EQ(v.verify(good + ".x", at(1000)).error(), codec::jwt_error::malformed) << "four";
  EXPECT_EQ(v.verify(good + "=", at(1000)).error(), codec::jwt_error::bad_base64) << "padding";
  EXPECT_EQ(v.verify(" " + good, at(1000)).error(), codec::jwt_error::bad_base64) << "whitespace";
  EXPECT_EQ(v.verify(hs256_token({{"alg", "HS256"}, {"crit", {"exp"}}}, {{"exp", 2000}}), at(1000))
                .error(),
            codec::jwt_error::unsupported_crit);
  const std::string array_claims = b64(R"({"alg":"HS256"})") + "." + b64("[1]") + ".";
  EXPECT_EQ(v.verify(array_claims, at(1000)).error(), codec::jwt_error::not_an_object);
  const std::string big =
      sign_jwt({{"exp", 2000}, {"pad", std::string(9000, 'x')}}, hs_key()).value();
  EXPECT_EQ(v.verify(big, at(1000)).error(), codec::jwt_error::too_large);
  auto roomy = verifier_of(hs_key(), {.parse = {.max_size = 16 * 1024}});
  EXPECT_TRUE(roomy.verify(big, at(1000))) << "the limit is an option";
}

// --- configuration errors ---------------------------------------------------

TEST(gateway_jwt, refuses_weak_or_mismatched_keys_at_load) {
  EXPECT_TRUE(
      throws_config_error([] { (void)jwt_key::hmac("short", "auth.secret"); }, "auth.secret"));
  EXPECT_TRUE(throws_config_error([] { (void)jwt_key::hmac(std::string(31, 'x'), "auth.secret"); },
                                  "auth.secret"));
  EXPECT_NO_THROW((void)jwt_key::hmac(std::string(32, 'x'), "auth.secret"));

  const pem_pair weak = generate("RSA", nullptr, 1024);
  EXPECT_TRUE(throws_config_error(
      [&] { (void)jwt_key::from_pem(jwt_algorithm::rs256, weak.public_pem, "auth.rsa_key"); },
      "auth.rsa_key"));
  EXPECT_TRUE(throws_config_error(
      [&] { (void)jwt_key::from_pem(jwt_algorithm::es256, rsa2048().public_pem, "auth.ec_key"); },
      "auth.ec_key"));
  EXPECT_TRUE(throws_config_error(
      [&] { (void)jwt_key::from_pem(jwt_algorithm::rs256, ec_p256().public_pem, "auth.rsa_key"); },
      "auth.rsa_key"));
  const pem_pair p384 = generate("EC", "P-384");
  EXPECT_TRUE(throws_config_error(
      [&] { (void)jwt_key::from_pem(jwt_algorithm::es256, p384.public_pem, "auth.ec_key"); },
      "auth.ec_key"));
  EXPECT_TRUE(throws_config_error(
      [] { (void)jwt_key::from_pem(jwt_algorithm::rs256, "not a pem", "auth.rsa_key"); },
      "auth.rsa_key"));
  EXPECT_TRUE(throws_config_error(
      [] { (void)jwt_key::from_pem(jwt_algorithm::hs256, "x", "auth.key"); }, "auth.key"));
  EXPECT_TRUE(throws_config_error(
      [] {
        (void)jwt_key::from_pem_file(jwt_algorithm::rs256, "/nonexistent/key.pem", "auth.key_file");
      },
      "auth.key_file"));
}

TEST(gateway_jwt, refuses_malformed_jwks_naming_the_member) {
  json weak_rsa = public_part(k_a2_jwk);
  weak_rsa["n"] = b64(std::string(128, '\x9f'));  // a 1024-bit modulus
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key::from_jwk(weak_rsa, "jwk"); }, "jwk"));
  json no_n = public_part(k_a2_jwk);
  no_n.erase("n");
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key::from_jwk(no_n, "jwk"); }, "jwk.n"));
  json padded = k_a1_jwk;
  padded["k"] = padded["k"].get<std::string>() + "==";
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key::from_jwk(padded, "jwk"); }, "jwk.k"));
  json off_curve = public_part(k_a3_jwk);
  off_curve["y"] = off_curve["x"];
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key::from_jwk(off_curve, "jwk"); }, "jwk"));
  json short_x = public_part(k_a3_jwk);
  short_x["x"] = b64(std::string(31, '\x01'));
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key::from_jwk(short_x, "jwk"); }, "jwk.x"));
  json wrong_alg = k_a1_jwk;
  wrong_alg["alg"] = "RS256";
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key::from_jwk(wrong_alg, "jwk"); }, "jwk.alg"));
  json enc = public_part(k_a2_jwk);
  enc["use"] = "enc";
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key::from_jwk(enc, "jwk"); }, "jwk.use"));
  EXPECT_TRUE(throws_config_error(
      [] {
        (void)jwt_key::from_jwk(json{{"kty", "OKP"}}, "jwk");
      },
      "jwk.kty"));

  // In a set: the offending key is named by its index.
  json set = {{"keys", {k_a1_jwk, no_n}}};
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key_set::from_jwks(set.dump(), "auth.jwks"); },
                                  "auth.jwks.keys[1].n"));
  EXPECT_TRUE(
      throws_config_error([] { (void)jwt_key_set::from_jwks("{", "auth.jwks"); }, "auth.jwks"));
  EXPECT_TRUE(
      throws_config_error([] { (void)jwt_key_set::from_jwks("[]", "auth.jwks"); }, "auth.jwks"));
  json dup = {{"keys", {k_a1_jwk, k_a1_jwk}}};
  dup["keys"][0]["kid"] = "same";
  dup["keys"][1]["kid"] = "same";
  EXPECT_TRUE(throws_config_error([&] { (void)jwt_key_set::from_jwks(dup.dump(), "auth.jwks"); },
                                  "auth.jwks.keys[1].kid"));
  EXPECT_TRUE(throws_config_error([] { jwt_verifier v{jwt_key_set{}}; }, "jwt.keys"));
}

TEST(gateway_jwt, skips_jwks_entries_it_cannot_use) {
  json enc = public_part(k_a2_jwk);
  enc["use"] = "enc";
  json ps256 = public_part(k_a2_jwk);
  ps256["alg"] = "PS256";
  json p384 = {{"kty", "EC"}, {"crv", "P-384"}, {"x", "AA"}, {"y", "AA"}};
  json okp = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "AA"}};
  json es = public_part(k_a3_jwk);
  es["kid"] = "ec1";
  auto set = jwt_key_set::from_jwks(json{{"keys", {enc, ps256, p384, okp, es}}}.dump(), "jwks");
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set.keys()[0].kid(), "ec1");
  EXPECT_EQ(set.keys()[0].algorithm(), jwt_algorithm::es256);
  EXPECT_TRUE(throws_config_error(
      [&] {
        (void)jwt_key_set::from_jwks(json{{"keys", {enc, okp}}}.dump(), "jwks");
      },
      "jwks"))
      << "a set with nothing usable is a configuration error";
}

TEST(gateway_jwt, loads_keys_from_files) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("trellis-jwt-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
    return (dir / name).string();
  };
  const std::string jwks = write("jwks.json", json{{"keys", {public_part(k_a2_jwk)}}}.dump());
  const std::string pem = write("ec.pem", ec_p256().public_pem);
  auto set = jwt_key_set::from_jwks_file(jwks, "auth.jwks_file");
  EXPECT_TRUE(jwt_verifier(set).verify(k_a2_token, k_rfc_now));
  auto ec = jwt_key::from_pem_file(jwt_algorithm::es256, pem, "auth.key_file", "e1");
  EXPECT_EQ(ec.kid(), "e1");
  EXPECT_TRUE(throws_config_error(
      [&] { (void)jwt_key_set::from_jwks_file((dir / "missing.json").string(), "auth.jwks_file"); },
      "auth.jwks_file"));
  std::filesystem::remove_all(dir);
}

TEST(gateway_jwt, errors_have_a_category_and_messages) {
  std::error_code ec = jwt_error::algorithm_not_allowed;
  EXPECT_STREQ(ec.category().name(), "trellis.gateway.jwt");
  EXPECT_EQ(ec.message(), "token algorithm is not allowed");
  for (int e = 1; e <= static_cast<int>(jwt_error::bad_claim); ++e)
    EXPECT_NE(jwt_category().message(e), "unknown gateway jwt error") << e;
  EXPECT_EQ(to_string(jwt_algorithm::es256), "ES256");
  EXPECT_EQ(parse_jwt_algorithm("RS256"), jwt_algorithm::rs256);
  EXPECT_FALSE(parse_jwt_algorithm("rs256")) << "algorithm names are case-sensitive";
}

}  // namespace
}  // namespace trellis::gateway
