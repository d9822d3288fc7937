#include "trellis/codec/base64.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace trellis::codec {
namespace {

constexpr std::string_view k_standard =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view k_url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Character -> 6-bit value, or -1 for a character outside the alphabet.
constexpr std::array<std::int8_t, 256> make_decode_table(std::string_view alphabet) {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (std::size_t i = 0; i < alphabet.size(); ++i)
    t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}

constexpr auto k_standard_values = make_decode_table(k_standard);
constexpr auto k_url_values = make_decode_table(k_url);

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.base64"; }
  std::string message(int v) const override {
    switch (static_cast<base64_error>(v)) {
      case base64_error::bad_character: return "character outside the base64 alphabet";
      case base64_error::bad_length: return "base64 text of impossible length";
      case base64_error::bad_padding: return "misplaced or wrong base64 padding";
      case base64_error::non_canonical: return "base64 text with non-zero unused bits";
    }
    return "unknown base64 error";
  }
};

}  // namespace

const std::error_category& base64_category() noexcept {
  static const category instance;
  return instance;
}

std::string base64_encode(std::string_view bytes, const base64_options& options) {
  const std::string_view alphabet = options.alphabet == base64_alphabet::url ? k_url : k_standard;
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  auto byte = [bytes](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  std::size_t i = 0;
  // Whole groups: 3 bytes -> 24 bits -> 4 characters.
  for (; bytes.size() - i >= 3; i += 3) {
    const std::uint32_t group = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += alphabet[group >> 18];
    out += alphabet[(group >> 12) & 63];
    out += alphabet[(group >> 6) & 63];
    out += alphabet[group & 63];
  }
  // The last 1 or 2 bytes: 2 or 3 characters, the unused bits zero.
  const std::size_t rest = bytes.size() - i;
  if (rest == 0) return out;
  const std::uint32_t group = (byte(i) << 16) | (rest == 2 ? byte(i + 1) << 8 : 0);
  out += alphabet[group >> 18];
  out += alphabet[(group >> 12) & 63];
  if (rest == 2) out += alphabet[(group >> 6) & 63];
  if (options.padding) out.append(3 - rest, '=');
  return out;
}

result<std::string> base64_decode(std::string_view text, const base64_options& options) {
  const auto& values = options.alphabet == base64_alphabet::url ? k_url_values : k_standard_values;

  std::string_view data = text;
  if (options.padding) {
    if (text.size() % 4 != 0) return unexpected(base64_error::bad_length);
    std::size_t pad = 0;
    while (pad < data.size() && data[data.size() - 1 - pad] == '=') ++pad;
    if (pad > 2) return unexpected(base64_error::bad_padding);
    data.remove_suffix(pad);
  } else if (text.size() % 4 == 1) {
    return unexpected(base64_error::bad_length);
  }

  std::string out;
  out.reserve(data.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : data) {
    const std::int8_t v = values[static_cast<unsigned char>(c)];
    if (v < 0) {
      const bool is_inner_padding = c == '=' && options.padding;
      return unexpected(is_inner_padding ? base64_error::bad_padding : base64_error::bad_character);
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // 2 trailing characters leave 4 unused bits, 3 leave 2: RFC 4648 §3.5
  // lets a decoder refuse them when they are not zero.
  if ((acc & ((1u << bits) - 1)) != 0) return unexpected(base64_error::non_canonical);
  return out;
}

}  // namespace trellis::codec
