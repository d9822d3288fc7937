#include "trellis/codec/dns/name.hpp"

#include <algorithm>
#include <array>
#include <cstring>

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

name::name(name&& other) noexcept : size_(0) {
  take(other);
}

name& name::operator=(const name& other) {
  if (this != &other) assign(other.wire());
  return *this;
}

name& name::operator=(name&& other) noexcept {
  if (this != &other) {
    release();
    take(other);
  }
  return *this;
}

void name::take(name& other) noexcept {
  // The whole buffer, whichever member is in use: a copy of fixed size
  // is cheaper than one of size_ octets.
  std::memcpy(inline_, other.inline_, sizeof inline_);
  size_ = other.size_;
  other.size_ = 1;  // the moved-from name is the root
  other.inline_[0] = '\0';
}

void name::assign(std::string_view wire) {
  release();
  if (wire.size() <= inline_capacity) {
    std::memcpy(inline_, wire.data(), wire.size());
  } else {
    heap_ = new char[wire.size()];
    std::memcpy(heap_, wire.data(), wire.size());
  }
  size_ = static_cast<std::uint8_t>(wire.size());
}

void name::release() noexcept {
  if (on_heap()) delete[] heap_;
  size_ = 0;
}

result<name> name::from_text(std::string_view text, const name& origin) {
  if (text.empty()) return unexpected(error::bad_name_text);
  if (text == "@") return origin;
  if (text == ".") return name{};

  // Built in place: each label's octets follow a length octet written when
  // the label closes. Room for a name that is too long by one label, so
  // that the limits below are checked in the order they are met.
  std::array<char, max_name_length + 1 + max_label_length + 1> wire;
  std::size_t size = 0;        // octets of closed labels
  std::size_t label_size = 0;  // octets of the label being read
  bool absolute = false;
  auto label_octet = [&](char c) { wire[size + 1 + label_size++] = c; };
  auto close_label = [&]() -> std::error_code {
    if (label_size == 0) return error::bad_name_text;
    if (label_size > max_label_length) return error::label_too_long;
    wire[size] = static_cast<char>(label_size);
    size += 1 + label_size;
    label_size = 0;
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
        label_octet(static_cast<char>(v));
        i += 3;
      } else {
        label_octet(text[i + 1]);
        i += 1;
      }
    } else if (c == '.') {
      if (auto ec = close_label()) return unexpected(ec);
      if (i + 1 == text.size()) absolute = true;
    } else {
      label_octet(c);
    }
    if (size + label_size + 2 > max_name_length + 1 + max_label_length)
      return unexpected(error::name_too_long);  // early stop on absurd input
  }
  if (!absolute) {
    if (auto ec = close_label()) return unexpected(ec);
    const std::string_view labels = origin.wire().substr(0, origin.size_ - 1);  // not its root
    if (size + labels.size() + 1 > max_name_length) return unexpected(error::name_too_long);
    std::memcpy(wire.data() + size, labels.data(), labels.size());
    size += labels.size();
  }
  wire[size++] = '\0';
  if (size > max_name_length) return unexpected(error::name_too_long);
  return name(std::string_view(wire.data(), size));
}

namespace {

// Whether `wire` is a valid uncompressed wire-form name, and if not, why.
std::error_code check_wire(std::string_view wire) noexcept {
  std::size_t i = 0;
  while (true) {
    if (i >= wire.size()) return error::truncated_message;
    const auto len = static_cast<unsigned char>(wire[i]);
    if (len == 0) break;
    if (len > max_label_length) return error::bad_label_type;
    i += 1 + len;
  }
  if (i + 1 != wire.size()) return error::trailing_data;
  if (wire.size() > max_name_length) return error::name_too_long;
  return {};
}

}  // namespace

result<name> name::from_wire(std::string_view wire) {
  if (auto ec = check_wire(wire)) return unexpected(ec);
  return name(wire);
}

std::error_code name::assign_wire(std::string_view wire) {
  if (auto ec = check_wire(wire)) return ec;
  const std::less<const char*> before;
  const bool inside = !before(wire.data(), data()) && before(wire.data(), data() + size_);
  if (inside) {
    *this = name(wire);  // a part of this name itself (a parent): copied first
  } else {
    assign(wire);
  }
  return {};
}

std::string name::to_string() const {
  if (is_root()) return ".";
  const std::string_view w = wire();
  std::string out;
  out.reserve(w.size() + 8);
  std::size_t i = 0;
  while (w[i] != 0) {
    const auto len = static_cast<unsigned char>(w[i]);
    for (std::size_t k = i + 1; k <= i + len; ++k) {
      const auto c = static_cast<unsigned char>(w[k]);
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
  return offsets_of(wire()).count;
}

std::string_view name::label(std::size_t i) const noexcept {
  const std::string_view w = wire();
  const std::size_t at = offsets_of(w).at[i];
  return w.substr(at + 1, static_cast<unsigned char>(w[at]));
}

name name::parent() const {
  const std::string_view w = wire();
  return name(w.substr(1 + static_cast<unsigned char>(w[0])));
}

result<name> name::prepend(std::string_view lbl) const {
  if (lbl.empty()) return unexpected(error::bad_name_text);
  if (lbl.size() > max_label_length) return unexpected(error::label_too_long);
  if (size_ + 1 + lbl.size() > max_name_length) return unexpected(error::name_too_long);
  std::array<char, max_name_length> w;
  w[0] = static_cast<char>(lbl.size());
  std::memcpy(w.data() + 1, lbl.data(), lbl.size());
  std::memcpy(w.data() + 1 + lbl.size(), data(), size_);
  return name(std::string_view(w.data(), 1 + lbl.size() + size_));
}

result<name> name::concat(const name& suffix) const {
  if (size_ - 1u + suffix.size_ > max_name_length) return unexpected(error::name_too_long);
  std::array<char, max_name_length> w;
  std::memcpy(w.data(), data(), size_ - 1u);
  std::memcpy(w.data() + size_ - 1, suffix.data(), suffix.size_);
  return name(std::string_view(w.data(), size_ - 1u + suffix.size_));
}

bool name::is_subdomain_of(const name& zone) const noexcept {
  const std::string_view w = wire();
  if (zone.size_ > size_) return false;
  const std::size_t start = size_ - zone.size_;
  // `start` must fall on a label boundary of *this.
  std::size_t i = 0;
  while (i < start) i += 1 + static_cast<unsigned char>(w[i]);
  if (i != start) return false;
  return iequal(w.substr(start), zone.wire());
}

bool operator==(const name& a, const name& b) noexcept {
  return iequal(a.wire(), b.wire());
}

bool operator<(const name& a, const name& b) noexcept {
  const std::string_view wa = a.wire(), wb = b.wire();
  const auto oa = offsets_of(wa);
  const auto ob = offsets_of(wb);
  std::size_t ia = oa.count, ib = ob.count;
  while (ia > 0 && ib > 0) {
    --ia, --ib;
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
  for (const char c : wire()) {
    h ^= lower(static_cast<unsigned char>(c));
    h *= 1099511628211ull;
  }
  return static_cast<std::size_t>(h);
}

}  // namespace trellis::dns
