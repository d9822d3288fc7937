#include "trellis/codec/dns/name.hpp"

#include <algorithm>
#include <array>

namespace trellis::dns {
namespace {

constexpr unsigned char lower(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + ('a' - 'A')) : c;
}

bool iequal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// Offsets of each label's length octet, leftmost first (at most 127 labels
// fit in 255 octets).
struct label_offsets {
  std::array<std::uint8_t, 128> at{};
  std::size_t count = 0;
};

label_offsets offsets_of(std::string_view wire) noexcept {
  label_offsets out;
  std::size_t i = 0;
  while (i < wire.size() && wire[i] != 0) {
    out.at[out.count++] = static_cast<std::uint8_t>(i);
    i += 1 + static_cast<unsigned char>(wire[i]);
  }
  return out;
}

// Characters that presentation text escapes as \X (RFC 1035 §5.1 and what
// zone parsers treat specially).
bool needs_backslash(unsigned char c) noexcept {
  switch (c) {
    case '.':
    case '\\':
    case '"':
    case '(':
    case ')':
    case ';':
    case '@':
    case '$': return true;
    default: return false;
  }
}

}  // namespace

result<name> name::from_text(std::string_view text, const name& origin) {
  if (text.empty()) return unexpected(error::bad_name_text);
  if (text == "@") return origin;
  if (text == ".") return name{};

  std::string wire;
  wire.reserve(text.size() + 2);
  std::string label;
  bool absolute = false;
  auto close_label = [&]() -> std::error_code {
    if (label.empty()) return error::bad_name_text;
    if (label.size() > max_label_length) return error::label_too_long;
    wire.push_back(static_cast<char>(label.size()));
    wire += label;
    label.clear();
    return {};
  };

  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      if (i + 1 >= text.size()) return unexpected(error::bad_name_text);
      const auto d = [&](std::size_t k) { return text[k] >= '0' && text[k] <= '9'; };
      if (d(i + 1)) {
        if (i + 3 >= text.size() || !d(i + 2) || !d(i + 3)) return unexpected(error::bad_name_text);
        const int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) return unexpected(error::bad_name_text);
        label.push_back(static_cast<char>(v));
        i += 3;
      } else {
        label.push_back(text[i + 1]);
        i += 1;
      }
    } else if (c == '.') {
      if (auto ec = close_label()) return unexpected(ec);
      if (i + 1 == text.size()) absolute = true;
    } else {
      label.push_back(c);
    }
    if (wire.size() + label.size() + 2 > max_name_length + 1 + max_label_length)
      return unexpected(error::name_too_long);  // early stop on absurd input
  }
  if (!absolute) {
    if (auto ec = close_label()) return unexpected(ec);
    wire.append(origin.wire_.data(), origin.wire_.size() - 1);  // origin's labels, not its root
  }
  wire.push_back('\0');
  if (wire.size() > max_name_length) return unexpected(error::name_too_long);
  return name(std::move(wire));
}

result<name> name::from_wire(std::string_view wire) {
  return from_wire(std::string(wire));
}

result<name> name::from_wire(std::string&& wire) {
  std::size_t i = 0;
  while (true) {
    if (i >= wire.size()) return unexpected(error::truncated_message);
    const auto len = static_cast<unsigned char>(wire[i]);
    if (len == 0) break;
    if (len > max_label_length) return unexpected(error::bad_label_type);
    i += 1 + len;
  }
  if (i + 1 != wire.size()) return unexpected(error::trailing_data);
  if (wire.size() > max_name_length) return unexpected(error::name_too_long);
  return name(std::move(wire));
}

std::string name::to_string() const {
  if (is_root()) return ".";
  std::string out;
  out.reserve(wire_.size() + 8);
  std::size_t i = 0;
  while (wire_[i] != 0) {
    const auto len = static_cast<unsigned char>(wire_[i]);
    for (std::size_t k = i + 1; k <= i + len; ++k) {
      const auto c = static_cast<unsigned char>(wire_[k]);
      if (c < 0x21 || c >= 0x7F) {
        out.push_back('\\');
        out.push_back(static_cast<char>('0' + c / 100));
        out.push_back(static_cast<char>('0' + c / 10 % 10));
        out.push_back(static_cast<char>('0' + c % 10));
      } else {
        if (needs_backslash(c)) out.push_back('\\');
        out.push_back(static_cast<char>(c));
      }
    }
    out.push_back('.');
    i += 1 + len;
  }
  return out;
}

std::size_t name::label_count() const noexcept {
  return offsets_of(wire_).count;
}

std::string_view name::label(std::size_t i) const noexcept {
  const auto offs = offsets_of(wire_);
  const std::size_t at = offs.at[i];
  return std::string_view(wire_).substr(at + 1, static_cast<unsigned char>(wire_[at]));
}

name name::parent() const {
  const auto len = static_cast<unsigned char>(wire_[0]);
  return name(wire_.substr(1 + len));
}

result<name> name::prepend(std::string_view lbl) const {
  if (lbl.empty()) return unexpected(error::bad_name_text);
  if (lbl.size() > max_label_length) return unexpected(error::label_too_long);
  if (wire_.size() + 1 + lbl.size() > max_name_length) return unexpected(error::name_too_long);
  std::string w;
  w.reserve(wire_.size() + 1 + lbl.size());
  w.push_back(static_cast<char>(lbl.size()));
  w += lbl;
  w += wire_;
  return name(std::move(w));
}

result<name> name::concat(const name& suffix) const {
  if (wire_.size() - 1 + suffix.wire_.size() > max_name_length)
    return unexpected(error::name_too_long);
  std::string w = wire_.substr(0, wire_.size() - 1);
  w += suffix.wire_;
  return name(std::move(w));
}

bool name::is_subdomain_of(const name& zone) const noexcept {
  if (zone.wire_.size() > wire_.size()) return false;
  const std::size_t start = wire_.size() - zone.wire_.size();
  // `start` must fall on a label boundary of *this.
  std::size_t i = 0;
  while (i < start) i += 1 + static_cast<unsigned char>(wire_[i]);
  if (i != start) return false;
  return iequal(std::string_view(wire_).substr(start), zone.wire_);
}

bool operator==(const name& a, const name& b) noexcept {
  return iequal(a.wire_, b.wire_);
}

bool operator<(const name& a, const name& b) noexcept {
  const auto oa = offsets_of(a.wire_);
  const auto ob = offsets_of(b.wire_);
  std::size_t ia = oa.count, ib = ob.count;
  while (ia > 0 && ib > 0) {
    --ia, --ib;
    const std::string_view wa = a.wire_, wb = b.wire_;
    const auto la = wa.substr(oa.at[ia] + 1, static_cast<unsigned char>(wa[oa.at[ia]]));
    const auto lb = wb.substr(ob.at[ib] + 1, static_cast<unsigned char>(wb[ob.at[ib]]));
    const std::size_t n = std::min(la.size(), lb.size());
    for (std::size_t k = 0; k < n; ++k) {
      const auto ca = lower(static_cast<unsigned char>(la[k]));
      const auto cb = lower(static_cast<unsigned char>(lb[k]));
      if (ca != cb) return ca < cb;
    }
    if (la.size() != lb.size()) return la.size() < lb.size();
  }
  return ia == 0 && ib > 0;  // fewer labels (an ancestor) sorts first
}

std::size_t name::hash() const noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : wire_) {
    h ^= lower(static_cast<unsigned char>(c));
    h *= 1099511628211ull;
  }
  return static_cast<std::size_t>(h);
}

}  // namespace trellis::dns
