// fields: an owning, order-preserving, multi-valued HTTP header container
// for building messages (responses, client requests) — RFC 9110 §5.
//
// Names compare case-insensitively (ASCII only, RFC 9110 §5.1); field lines
// keep their insertion order and their names' spelling; a name may appear
// on several lines (add) or be replaced wholesale (set). Every line is
// validated on the way in, which is what stops header injection and
// response splitting: a name must be a token (§5.1), a value may not hold
// CR, LF, NUL or another control character except HTAB (§5.5). Leading and
// trailing SP/HTAB of a value are trimmed, as §5.5 says they are not part
// of it.
//
// Storage: the lines live, already serialised as "Name: value\r\n", in one
// contiguous std::string, indexed by a small vector of offsets. Building a
// response head costs a couple of allocations, clear() keeps both
// capacities for the next message (none in steady state), and write_to()
// of a head that never had a line erased or replaced is one append. Erased
// and replaced lines leave dead bytes behind, reclaimed by compaction once
// they are the larger half.
//
// Views returned by get/get_all/iteration point into the container: valid
// until its next non-const call.
//
// Thread-safety: a value type; one writer or many readers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trellis/core/result.hpp"

namespace trellis::http {

enum class field_error {
  bad_name = 1,  // empty, or a character outside RFC 9110's tchar
  bad_value,     // CR, LF, NUL or another control character (HTAB aside)
  too_large,     // the lines would exceed 4 GiB (offsets are 32-bit)
};

const std::error_category& field_category() noexcept;

inline std::error_code make_error_code(field_error e) noexcept {
  return {static_cast<int>(e), field_category()};
}

// token = 1*tchar (RFC 9110 §5.6.2): what a field name must be.
bool is_field_name(std::string_view name) noexcept;

// Whether `value` may be a field value (RFC 9110 §5.5): no control
// character but HTAB (so no CR, LF, NUL or DEL); obs-text (>= 0x80) allowed.
bool is_field_value(std::string_view value) noexcept;

// Whether the comma-separated list `list` (RFC 9110 §5.6.1) has an element
// equal to `token`, ignoring ASCII case and the whitespace around elements:
// has_token("close , Keep-Alive", "keep-alive") is true. Empty elements
// (", ,close") are skipped; commas inside quoted strings do not split. An
// element with parameters ("gzip;q=0") does not equal its bare token.
bool has_token(std::string_view list, std::string_view token) noexcept;

// One field line: views into the container.
struct field {
  std::string_view name;
  std::string_view value;
};

class fields {
 public:
  fields() = default;

  // Adds a line after the others. Errors: field_error::bad_name,
  // bad_value, too_large; nothing changes on error.
  result<void> add(std::string_view name, std::string_view value);
  // Replaces every line named `name` with one line holding `value`, at the
  // position of the first (or at the end if there was none). Same errors.
  result<void> set(std::string_view name, std::string_view value);
  // Removes every line named `name`; returns how many.
  std::size_t erase(std::string_view name);

  // The value of the first line named `name`.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  // The values of every line named `name`, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  std::size_t count(std::string_view name) const noexcept;
  // has_token over every line named `name` (a list may span lines):
  // fields.has_token("Connection", "upgrade").
  bool has_token(std::string_view name, std::string_view token) const noexcept;

  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  field operator[](std::size_t i) const noexcept;  // REQUIRES: i < size()

  // Drops every line; keeps the storage for the next message.
  void clear() noexcept;
  // Reserves room for `lines` lines totalling `bytes` bytes of names and values.
  void reserve(std::size_t lines, std::size_t bytes);

  // Appends "Name: value\r\n" for every line, in order (not the blank line
  // that ends a head).
  void write_to(std::string& out) const;
  // The number of bytes write_to appends.
  std::size_t wire_size() const noexcept { return arena_.size() - dead_bytes_; }

  class const_iterator {
   public:
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;  // operator* returns a value
    using value_type = field;
    using difference_type = std::ptrdiff_t;
    using reference = field;

    const_iterator() = default;
    field operator*() const noexcept { return (*owner_)[index_]; }
    const_iterator& operator++() noexcept {
      ++index_;
      return *this;
    }
    const_iterator operator++(int) noexcept {
      auto t = *this;
      ++index_;
      return t;
    }
    bool operator==(const const_iterator& o) const noexcept { return index_ == o.index_; }

   private:
    friend class fields;
    const_iterator(const fields* owner, std::size_t index) : owner_(owner), index_(index) {}
    const fields* owner_ = nullptr;
    std::size_t index_ = 0;
  };

  const_iterator begin() const noexcept { return {this, 0}; }
  const_iterator end() const noexcept { return {this, entries_.size()}; }

 private:
  // A line "name: value\r\n" at arena_[offset].
  struct entry {
    std::uint32_t offset;
    std::uint32_t name_size;
    std::uint32_t value_size;
    std::uint32_t line_size() const noexcept { return name_size + value_size + 4; }
  };

  result<void> check(std::string_view name, std::string_view& value) const;
  void append_line(std::string_view name, std::string_view value);
  bool matches(const entry& e, std::string_view name) const noexcept;
  void compact_if_worth_it();

  std::string arena_;
  std::vector<entry> entries_;
  // Bytes of arena_ no entry points at (erased or replaced lines). While 0,
  // arena_ is exactly the lines in order.
  std::size_t dead_bytes_ = 0;
};

}  // namespace trellis::http

template <>
struct std::is_error_code_enum<trellis::http::field_error> : std::true_type {};
