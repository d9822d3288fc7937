#include "trellis/codec/http/fields.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>

#include "trellis/codec/ascii.hpp"

namespace trellis::http {
namespace {

using codec::iequals;
using codec::trim_ows;

constexpr std::array<bool, 256> make_tchar() {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}

constexpr auto k_tchar = make_tchar();

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.http.fields"; }
  std::string message(int v) const override {
    switch (static_cast<field_error>(v)) {
      case field_error::bad_name: return "invalid header field name";
      case field_error::bad_value: return "invalid header field value (control character)";
      case field_error::too_large: return "header fields too large";
    }
    return "unknown fields error";
  }
};

}  // namespace

const std::error_category& field_category() noexcept {
  static const category instance;
  return instance;
}

bool is_field_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (char c : name) {
    if (!k_tchar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

bool is_field_value(std::string_view value) noexcept {
  const auto bad = [](unsigned char u) { return (u < 0x20 && u != '\t') || u == 0x7F; };
  // Eight octets at a time (every field a proxy passes on comes through
  // here): a word with no octet below 0x20 and none equal to 0x7F is good
  // as a whole; only a word that has one (a tab, usually) is looked at
  // octet by octet. The two tests are the exact "has a byte less than n"
  // and "has a zero byte" word tricks; octets of 0x80 and above (obs-text)
  // pass both.
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  constexpr std::uint64_t highs = 0x8080808080808080ull;
  std::size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, value.data() + i, 8);
    const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
    const std::uint64_t del = w ^ (ones * 0x7F);
    const std::uint64_t is_del = (del - ones) & ~del & highs;
    if ((below_space | is_del) == 0) continue;
    for (std::size_t j = i; j < i + 8; ++j)
      if (bad(static_cast<unsigned char>(value[j]))) return false;
  }
  for (; i < value.size(); ++i)
    if (bad(static_cast<unsigned char>(value[i]))) return false;
  return true;
}

bool has_token(std::string_view list, std::string_view token) noexcept {
  if (token.empty()) return false;
  std::size_t i = 0;
  while (i < list.size()) {
    const std::size_t start = i;
    bool quoted = false;
    for (; i < list.size(); ++i) {
      const char c = list[i];
      if (quoted) {
        if (c == '\\') {
          ++i;  // quoted-pair: the next byte is literal
        } else if (c == '"') {
          quoted = false;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        break;
      }
    }
    const std::size_t end = std::min(i, list.size());
    if (iequals(trim_ows(list.substr(start, end - start)), token)) return true;
    i = end + 1;  // past the ','
  }
  return false;
}

// --- fields ------------------------------------------------------------------------

result<void> fields::check(std::string_view name, std::string_view& value) const {
  if (!is_field_name(name)) return unexpected(field_error::bad_name);
  value = trim_ows(value);
  if (!is_field_value(value)) return unexpected(field_error::bad_value);
  const std::size_t line = name.size() + value.size() + 4;
  if (line > std::numeric_limits<std::uint32_t>::max() - arena_.size())
    return unexpected(field_error::too_large);
  return {};
}

void fields::append_line(std::string_view name, std::string_view value) {
  const entry e{static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(name.size()),
                static_cast<std::uint32_t>(value.size())};
  entries_.push_back(e);
  arena_.append(name);
  arena_.append(": ");
  arena_.append(value);
  arena_.append("\r\n");
}

bool fields::matches(const entry& e, std::string_view name) const noexcept {
  return e.name_size == name.size() &&
         iequals(std::string_view(arena_).substr(e.offset, e.name_size), name);
}

field fields::operator[](std::size_t i) const noexcept {
  const entry& e = entries_[i];
  const std::string_view all(arena_);
  return {all.substr(e.offset, e.name_size), all.substr(e.offset + e.name_size + 2, e.value_size)};
}

result<void> fields::add(std::string_view name, std::string_view value) {
  if (auto r = check(name, value); !r) return r;
  append_line(name, value);
  return {};
}

result<void> fields::set(std::string_view name, std::string_view value) {
  if (auto r = check(name, value); !r) return r;
  auto first = std::find_if(entries_.begin(), entries_.end(),
                            [&](const entry& e) { return matches(e, name); });
  if (first == entries_.end()) {
    append_line(name, value);
    return {};
  }
  // Drop the later lines of that name.
  auto later = std::remove_if(first + 1, entries_.end(), [&](const entry& e) {
    if (!matches(e, name)) return false;
    dead_bytes_ += e.line_size();
    return true;
  });
  entries_.erase(later, entries_.end());

  entry& e = *first;
  if (e.value_size == value.size()) {
    // Same length (a Date header, a Content-Length of as many digits):
    // overwrite the line where it is.
    std::memcpy(arena_.data() + e.offset, name.data(), name.size());
    std::memcpy(arena_.data() + e.offset + e.name_size + 2, value.data(), value.size());
  } else {
    dead_bytes_ += e.line_size();
    e = entry{static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(name.size()),
              static_cast<std::uint32_t>(value.size())};
    arena_.append(name);
    arena_.append(": ");
    arena_.append(value);
    arena_.append("\r\n");
  }
  compact_if_worth_it();
  return {};
}

std::size_t fields::erase(std::string_view name) {
  auto gone = std::remove_if(entries_.begin(), entries_.end(), [&](const entry& e) {
    if (!matches(e, name)) return false;
    dead_bytes_ += e.line_size();
    return true;
  });
  const auto n = static_cast<std::size_t>(entries_.end() - gone);
  entries_.erase(gone, entries_.end());
  if (entries_.empty()) {
    clear();
  } else {
    compact_if_worth_it();
  }
  return n;
}

void fields::compact_if_worth_it() {
  if (dead_bytes_ == 0 || dead_bytes_ * 2 < arena_.size()) return;
  bool ordered = true;
  for (std::size_t i = 1; i < entries_.size() && ordered; ++i)
    ordered = entries_[i - 1].offset < entries_[i].offset;
  if (ordered) {
    // Slide the lines to the front, keeping the storage: no allocation.
    std::size_t w = 0;
    for (entry& e : entries_) {
      const std::uint32_t size = e.line_size();
      std::memmove(arena_.data() + w, arena_.data() + e.offset, size);
      e.offset = static_cast<std::uint32_t>(w);
      w += size;
    }
    arena_.resize(w);
  } else {
    // A set() moved a line to the back: rebuild in list order.
    std::string fresh;
    fresh.reserve(arena_.capacity());
    for (entry& e : entries_) {
      const auto offset = static_cast<std::uint32_t>(fresh.size());
      fresh.append(arena_, e.offset, e.line_size());
      e.offset = offset;
    }
    arena_.swap(fresh);
  }
  dead_bytes_ = 0;
}

std::optional<std::string_view> fields::get(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (matches(entries_[i], name)) return (*this)[i].value;
  }
  return std::nullopt;
}

std::vector<std::string_view> fields::get_all(std::string_view name) const {
  std::vector<std::string_view> values;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (matches(entries_[i], name)) values.push_back((*this)[i].value);
  }
  return values;
}

std::size_t fields::count(std::string_view name) const noexcept {
  return static_cast<std::size_t>(std::count_if(entries_.begin(), entries_.end(),
                                                [&](const entry& e) { return matches(e, name); }));
}

bool fields::has_token(std::string_view name, std::string_view token) const noexcept {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (matches(entries_[i], name) && http::has_token((*this)[i].value, token)) return true;
  }
  return false;
}

void fields::clear() noexcept {
  arena_.clear();
  entries_.clear();
  dead_bytes_ = 0;
}

void fields::reserve(std::size_t lines, std::size_t bytes) {
  entries_.reserve(lines);
  arena_.reserve(bytes + 4 * lines);
}

void fields::write_to(std::string& out) const {
  if (dead_bytes_ == 0) {
    out.append(arena_);
    return;
  }
  out.reserve(out.size() + wire_size());
  for (const entry& e : entries_) out.append(arena_, e.offset, e.line_size());
}

}  // namespace trellis::http
