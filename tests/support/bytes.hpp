// Test helper: deterministic pseudo-random bytes (xorshift32), every value
// 0..255 included, for bodies that must arrive byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace trellis::test {

inline std::string make_bytes(std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 2463534242u;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return s;
}

}  // namespace trellis::test
