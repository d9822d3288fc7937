// Case-insensitive comparison and hashing of wire-form names, eight octets
// at a time (internal to the DNS layer). ASCII letters are lower-cased with
// word arithmetic instead of a branch per octet: for each byte whose top bit
// is clear, adding 0x25 sets the top bit exactly when it is above 'Z', adding
// 0x3f when it is at least 'A'; neither carries into the next byte. Other
// octets (label lengths, binary labels) compare exactly (RFC 4343 §3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace trellis::dns::detail {

inline std::uint64_t lower8(std::uint64_t x) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  constexpr std::uint64_t highs = 0x8080808080808080ull;
  const std::uint64_t low7 = x & ~highs;
  const std::uint64_t above_z = low7 + (0x7f - 'Z') * ones;
  const std::uint64_t from_a = low7 + (0x80 - 'A') * ones;
  const std::uint64_t upper = (from_a ^ above_z) & ~x & highs;
  return x | (upper >> 2);  // 0x80 >> 2 == 0x20, 'a' - 'A'
}

inline std::uint64_t load8(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// The last n (1..7) octets of the `size` octets at p, zero-padded. With at
// least eight octets, one load overlapping the previous word, shifted; no
// call to memcpy for a variable length.
inline std::uint64_t load_tail(const char* p, std::size_t size, std::size_t n) noexcept {
  if (size >= 8) return load8(p + size - 8) >> (8 * (8 - n));
  std::uint64_t v = 0;
  for (std::size_t k = 0; k < n; ++k)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[size - n + k])) << (8 * k);
  return v;
}

inline bool iequal_word(std::uint64_t x, std::uint64_t y) noexcept {
  return x == y || lower8(x) == lower8(y);
}

// True when the two wire forms are equal but for the case of ASCII letters.
inline bool iequal_wire(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  if (n < 8) return iequal_word(load_tail(a.data(), n, n), load_tail(b.data(), n, n));
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (!iequal_word(load8(a.data() + i), load8(b.data() + i))) return false;
  }
  // The last word, overlapping the one before: the same octets on both sides.
  return i == n || iequal_word(load8(a.data() + n - 8), load8(b.data() + n - 8));
}

}  // namespace trellis::dns::detail
