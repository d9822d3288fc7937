// Domain names (RFC 1035 §2.3, §3.1, RFC 4343).
//
// A `name` holds its uncompressed wire form: length-prefixed labels ending
// with the empty root label, e.g. "\3www\7example\3com\0". That is the form
// the encoder copies and compresses, and it makes the limits structural: a
// label is at most 63 octets, a whole name at most 255. The root name is a
// single zero octet. Names are always absolute; "relative" is a property of
// text (zone files, the resolver's search list), resolved by from_text's
// `origin`.
//
// Those octets are kept inside the object when they fit (up to
// inline_capacity, which covers the names most lookups carry) and on the
// heap otherwise, so that decoding, copying and comparing the usual names
// allocates nothing — the same trade std::string makes at 15 characters,
// made at a size that fits host names.
//
// Comparison and hashing are ASCII case-insensitive (RFC 4343): "WWW.Example"
// equals "www.example". The original case is kept, because a resolver must
// match the question's case in an answer but a display shows what came. Label
// bytes are arbitrary octets; presentation text escapes a '.', '\\', '"',
// '(', ')', ';', '@', '$', space and every non-printable byte as \DDD, so
// to_string / from_text round-trip every name.
//
// Thread-safety: a value type; one writer or many readers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "trellis/codec/dns/error.hpp"
#include "trellis/core/result.hpp"

namespace trellis::dns {

inline constexpr std::size_t max_label_length = 63;
inline constexpr std::size_t max_name_length = 255;  // wire octets, root label included

class name {
 public:
  // Wire octets kept inside the object; longer names go to the heap.
  static constexpr std::size_t inline_capacity = 48;

  // The root name ".".
  name() noexcept : size_(1) { inline_[0] = '\0'; }
  name(const name& other) : size_(0) { assign(other.wire()); }
  name(name&& other) noexcept;
  name& operator=(const name& other);
  name& operator=(name&& other) noexcept;
  ~name() { release(); }

  // Presentation text to a name. "example.com." is absolute. A name without
  // the trailing dot is relative to `origin` (the root by default, so
  // "example.com" == "example.com."); "@" is the origin itself. Escapes: \X
  // for any character X, \DDD for a decimal octet. Errors: bad_name_text
  // (empty label such as "a..b", bad escape), label_too_long, name_too_long.
  static result<name> from_text(std::string_view text, const name& origin = name{});

  // REQUIRES: `wire` is a valid uncompressed wire-form name (as produced by
  // wire()); used by the decoder and by tests. Returns an error otherwise.
  static result<name> from_wire(std::string_view wire);
  // from_wire() into *this, which is left unchanged on an error: for a
  // decoder that has the name's home at hand (nothing moved afterwards).
  std::error_code assign_wire(std::string_view wire);

  // Presentation text, always absolute ("www.example.com.", "." for root).
  std::string to_string() const;

  // The uncompressed wire form, root label included.
  std::string_view wire() const noexcept { return {data(), size_}; }

  bool is_root() const noexcept { return size_ == 1; }
  // Number of labels, not counting the root ("www.example.com." has 3).
  std::size_t label_count() const noexcept;
  // The i-th label from the left, without its length octet.
  // REQUIRES: i < label_count().
  std::string_view label(std::size_t i) const noexcept;

  // The name with its leftmost label removed ("example.com." for
  // "www.example.com."). REQUIRES: !is_root().
  name parent() const;
  // `label` + "." + *this. Errors: label_too_long, name_too_long,
  // bad_name_text (empty label).
  result<name> prepend(std::string_view label) const;
  // *this followed by `suffix` ("www" + "example.com." for search lists);
  // *this's root label is dropped. Errors: name_too_long.
  result<name> concat(const name& suffix) const;

  // True when *this equals `zone` or lies below it ("a.b.example." is in
  // "example."; "badexample." is not). Case-insensitive.
  bool is_subdomain_of(const name& zone) const noexcept;

  // Case-insensitive equality and the canonical DNS order of RFC 4034 §6.1
  // (by labels from the right, each compared as lower-cased octets).
  friend bool operator==(const name& a, const name& b) noexcept;
  friend bool operator<(const name& a, const name& b) noexcept;

  // A hash consistent with operator== (case-insensitive).
  std::size_t hash() const noexcept;

 private:
  // REQUIRES: `wire` is a valid wire-form name.
  explicit name(std::string_view wire) : size_(0) { assign(wire); }
  const char* data() const noexcept { return on_heap() ? heap_ : inline_; }
  bool on_heap() const noexcept { return size_ > inline_capacity; }
  // Replaces the octets with `wire` (which may not point into *this).
  void assign(std::string_view wire);
  // Takes other's octets, leaving it the root. REQUIRES: *this holds none.
  void take(name& other) noexcept;
  // Frees a heap block; *this then holds nothing (size 0) until refilled.
  void release() noexcept;

  union {
    char inline_[inline_capacity];
    char* heap_;
  };
  std::uint8_t size_;  // octets of the wire form (1..255), root label included
};

struct name_hash {
  std::size_t operator()(const name& n) const noexcept { return n.hash(); }
};

}  // namespace trellis::dns

template <>
struct std::hash<trellis::dns::name> {
  std::size_t operator()(const trellis::dns::name& n) const noexcept { return n.hash(); }
};
