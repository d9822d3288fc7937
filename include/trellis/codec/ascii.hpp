// ASCII helpers shared by the codecs.
//
// HTTP's field names, tokens and media types are ASCII and compare without
// regard to case (RFC 9110 §5.1, §8.3.1); whitespace around field values
// and list elements is "optional whitespace", SP or HTAB (§5.6.3). These
// are the byte-level operations behind those rules, locale-free.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace trellis::codec {

constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
}

// ASCII case-insensitive equality.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// OWS = *( SP / HTAB ).
constexpr bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

// `s` without leading and trailing OWS.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace trellis::codec
