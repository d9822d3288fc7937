#include "trellis/codec/base64.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trellis::codec {
namespace {

constexpr base64_options k_url_unpadded{.alphabet = base64_alphabet::url, .padding = false};

// RFC 4648 §10 test vectors.
const std::vector<std::pair<std::string_view, std::string_view>> k_rfc4648_vectors = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(base64, encodes_the_rfc4648_test_vectors) {
  for (const auto& [bytes, text] : k_rfc4648_vectors)
    EXPECT_EQ(base64_encode(bytes), text) << bytes;
}

TEST(base64, decodes_the_rfc4648_test_vectors) {
  for (const auto& [bytes, text] : k_rfc4648_vectors) {
    auto d = base64_decode(text);
    ASSERT_TRUE(d) << text << ": " << d.error().message();
    EXPECT_EQ(*d, bytes) << text;
  }
}

TEST(base64, encodes_basic_credentials_as_rfc7617_shows) {
  EXPECT_EQ(base64_encode("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

TEST(base64, url_alphabet_uses_dash_and_underscore_and_may_drop_padding) {
  const std::string bytes("\xfb\xff\xbf", 3);  // all three 6-bit groups high: 62, 63, 62, 63
  EXPECT_EQ(base64_encode(bytes), "+/+/");
  EXPECT_EQ(base64_encode(bytes, {.alphabet = base64_alphabet::url}), "-_-_");
  EXPECT_EQ(base64_encode("f", k_url_unpadded), "Zg");
  EXPECT_EQ(base64_encode("fo", k_url_unpadded), "Zm8");
  EXPECT_EQ(base64_decode("-_-_", {.alphabet = base64_alphabet::url}).value(), bytes);
  EXPECT_EQ(base64_decode("Zm8", k_url_unpadded).value(), "fo");
  // Each alphabet refuses the other's two characters.
  EXPECT_EQ(base64_decode("-_-_").error(), base64_error::bad_character);
  EXPECT_EQ(base64_decode("+/+/", k_url_unpadded).error(), base64_error::bad_character);
}

TEST(base64, round_trips_every_byte_value_at_every_length_mod_3) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (std::size_t n : {all.size(), all.size() - 1, all.size() - 2}) {
    const std::string bytes = all.substr(0, n);
    for (const base64_options& o : {base64_options{}, k_url_unpadded}) {
      auto d = base64_decode(base64_encode(bytes, o), o);
      ASSERT_TRUE(d) << n;
      EXPECT_EQ(*d, bytes) << n;
    }
  }
}

TEST(base64, strict_decoding_refuses_every_other_spelling) {
  const std::vector<std::pair<std::string_view, base64_error>> padded = {
      {"Zm9", base64_error::bad_length},        // padding required
      {"Zm9vY", base64_error::bad_length},      //
      {"Zg=", base64_error::bad_length},        // one '=' short
      {"Zg===", base64_error::bad_length},      //
      {"Z===", base64_error::bad_padding},      // three '=' never happen
      {"====", base64_error::bad_padding},      //
      {"Zg==Zg==", base64_error::bad_padding},  // padding in the middle
      {"Z=g=", base64_error::bad_padding},      //
      {"Zm\r\n", base64_error::bad_character},  // line breaks are not skipped...
      {"Z m=", base64_error::bad_character},    // ...nor spaces...
      {"Zm9 ", base64_error::bad_character},    // ...nor any other byte
      {"Zm9\x80", base64_error::bad_character},
      {"Zh==", base64_error::non_canonical},  // "Zg==" with a low bit set: also "f"
      {"Zm9=", base64_error::non_canonical},  // "Zm8=" with low bits set
      {"QR==", base64_error::non_canonical},
  };
  for (const auto& [text, want] : padded) {
    auto d = base64_decode(text);
    ASSERT_FALSE(d) << text;
    EXPECT_EQ(d.error(), want) << text << ": " << d.error().message();
  }
  // Unpadded: any '=' is refused, and 4n+1 characters cannot be.
  EXPECT_EQ(base64_decode("Zg==", k_url_unpadded).error(), base64_error::bad_character);
  EXPECT_EQ(base64_decode("Zm9vY", k_url_unpadded).error(), base64_error::bad_length);
  EXPECT_EQ(base64_decode("Zh", k_url_unpadded).error(), base64_error::non_canonical);
}

TEST(base64, errors_have_a_category_and_messages) {
  std::error_code ec = base64_error::non_canonical;
  EXPECT_STREQ(ec.category().name(), "trellis.base64");
  EXPECT_EQ(ec.message(), "base64 text with non-zero unused bits");
}

}  // namespace
}  // namespace trellis::codec
