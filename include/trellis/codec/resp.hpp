// RESP: the REdis Serialization Protocol, versions 2 and 3, sans-I/O.
//
// Every Redis request and reply is one RESP value: a type byte, a line
// ended by CRLF, and for bulk types a length-prefixed payload that may hold
// any bytes (CRLF and NUL included). Aggregates (arrays, maps, sets, pushes)
// announce their element count and are followed by that many values, so a
// reply is a tree. This file implements the protocol specification
// published by the Redis project ("Redis serialization protocol
// specification", RESP2 and RESP3 sections):
//
//   RESP2  + simple string   - simple error   : integer   $ bulk string
//          * array           ($-1 and *-1 are the RESP2 nulls)
//   RESP3  _ null   # boolean   , double   ( big number   ! bulk error
//          = verbatim string   % map   ~ set   > push   | attribute
//
// Attributes (`|`) are metadata attached to the value that follows; the
// parser reads and drops them, so callers only see the value itself.
// Streamed strings and aggregates (`$?`, `*?`), which Redis itself never
// sends, are refused as bad lengths.
//
// parser is incremental: feed() takes the bytes as they arrive, split
// anywhere (down to one byte at a time), and complete values come out of
// next() in order. Which values come out, and the error that stops the
// stream, never depend on how the input was split: each byte is judged the
// same way whichever call brings it. Partial bulk payloads are appended
// straight into the value under construction, so a 1 MiB reply read in
// 16 KiB pieces is copied once, and nested aggregates are built with an
// explicit stack, never by recursion: a hostile reply nested a million
// levels deep meets max_depth, not the end of the thread's stack.
//
// Strict by default (ARCHITECTURE principle 2): an unknown type byte, a
// length that is not a decimal number, a negative length other than the
// RESP2 null -1, an integer that overflows 64 bits, a bare CR or LF, a bulk
// payload not followed by CRLF, a malformed double, boolean or verbatim
// string, and every limit below is an error; the parser then stays failed
// (the connection it reads must be closed, since where the next value
// starts is unknown).
//
// The serializer writes a command as an array of bulk strings, the only
// form a client sends (binary-safe: arguments may hold any bytes), and
// writes any value back in its RESP3 form, for servers, tests and tools.
//
//   resp::parser p;
//   if (auto ec = p.feed(bytes)) close_connection(ec);
//   while (auto v = p.next()) handle(std::move(*v));
//
//   std::string out;
//   resp::append_command(out, {"SET", key, value});
//
// Thread-safety: values are plain value types; a parser belongs to one
// connection at a time; the serializer functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace trellis::resp {

enum class error {
  bad_type = 1,     // a type byte RESP does not define
  bad_length,       // a length or count that is not -1 or a decimal number (or -1 where no null is)
  bad_integer,      // an integer that is not decimal digits, or overflows 64 bits
  bad_line_ending,  // a bare CR or LF, or a bulk payload not followed by CRLF
  bad_value,        // a malformed null, boolean, double, big number or verbatim string
  line_too_long,    // a line longer than parser_options::max_line
  bulk_too_long,    // a bulk payload longer than parser_options::max_bulk
  too_many_elements,  // an aggregate with more than parser_options::max_elements elements
  too_deep,           // aggregates nested deeper than parser_options::max_depth
};

const std::error_category& resp_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), resp_category()};
}

// The kind of a value. Each RESP type keeps its own kind, so a value
// written back is spelled as it came (a simple string stays simple), but
// callers usually ask the broader questions of value: is_error(),
// is_string(), is_null().
enum class type : std::uint8_t {
  null,             // RESP3 `_`, and the RESP2 null bulk string and null array
  simple_string,    // `+OK`
  simple_error,     // `-ERR unknown command`
  integer,          // `:42`
  bulk_string,      // `$5 hello`
  array,            // `*2 ...`
  boolean,          // `#t`
  double_number,    // `,3.14`
  big_number,       // `(3492890328409238509324850943850943825024385`
  bulk_error,       // `!21 SYNTAX invalid syntax`
  verbatim_string,  // `=15 txt:Some string`
  map,              // `%2 ...` key, value, key, value
  set,              // `~3 ...`
  push,             // `>3 ...` out-of-band data (pub/sub messages, client tracking)
};

// "bulk string", "map"... for messages.
std::string_view type_name(type t) noexcept;

// One RESP value: a kind, a string payload, a number and child elements.
// A flat struct rather than a std::variant: every field is cheap to move
// (a moved string or vector is three pointers), an empty value allocates
// nothing, and reading a field needs no visitor. Maps keep their pairs
// flattened in elements() (key, value, key, value...), in wire order.
class value {
 public:
  // A null.
  value() = default;

  static value simple_string(std::string s);
  static value simple_error(std::string s);
  static value integer(std::int64_t i);
  static value bulk_string(std::string s);
  static value bulk_error(std::string s);
  static value boolean(bool b);
  static value double_number(double d);
  // REQUIRES: `digits` is an optional '-' and one or more decimal digits.
  static value big_number(std::string digits);
  // REQUIRES: format.size() == 3 ("txt", "mkd").
  static value verbatim_string(std::string_view format, std::string_view text);
  // REQUIRES: t is array, set, push or map; a map's elements alternate
  // key, value (an even count).
  static value aggregate(type t, std::vector<value> elements);
  static value array(std::vector<value> elements) {
    return aggregate(type::array, std::move(elements));
  }

  type kind() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == type::null; }
  // A Redis error reply (simple or bulk): a *value*, not a failure to talk.
  bool is_error() const noexcept {
    return kind_ == type::simple_error || kind_ == type::bulk_error;
  }
  // Simple, bulk or verbatim string.
  bool is_string() const noexcept {
    return kind_ == type::simple_string || kind_ == type::bulk_string ||
           kind_ == type::verbatim_string;
  }
  bool is_aggregate() const noexcept {
    return kind_ == type::array || kind_ == type::map || kind_ == type::set || kind_ == type::push;
  }

  // The text of a string, error or big number; a verbatim string's text
  // without its "fmt:" prefix; "" for other kinds.
  std::string_view text() const noexcept;
  // A verbatim string's 3-character format ("txt"); "" for other kinds.
  std::string_view format() const noexcept;
  // For integer; booleans give 0 or 1; 0 for other kinds.
  std::int64_t integer_value() const noexcept { return kind_ == type::double_number ? 0 : int_; }
  bool boolean_value() const noexcept { return kind_ == type::boolean && int_ != 0; }
  double double_value() const noexcept { return kind_ == type::double_number ? double_ : 0.0; }
  // The elements of an aggregate (a map's flattened pairs); empty otherwise.
  const std::vector<value>& elements() const noexcept { return elements_; }
  std::vector<value>& elements() noexcept { return elements_; }

  // Same kind and same payload. Doubles compare by value, except that NaN
  // equals NaN (a round trip must give "the same value").
  friend bool operator==(const value& a, const value& b) noexcept;

 private:
  friend class parser;
  friend void append_value(std::string& out, const value& v);

  type kind_ = type::null;
  union {
    std::int64_t int_ = 0;
    double double_;
  };
  std::string str_;  // strings, errors, big numbers; verbatim: "fmt:text"
  std::vector<value> elements_;
};

// A one-line rendering in the spirit of redis-cli, for logs and test
// messages: "OK", "(error) ERR x", "(integer) 5", "\"a\\r\\n\"", "(nil)",
// "[1, 2]", "{k: v}". Bulk payloads are escaped and cut after 200 bytes.
std::string describe(const value& v);

// Limits on what a parser accepts, each checked at the first byte that
// exceeds it whatever the split.
struct parser_options {
  // Bytes of one bulk payload (bulk string, bulk error, verbatim string).
  // Redis's own proto-max-bulk-len is 512 MiB; a client rarely needs more
  // than a few MiB, and every byte up to this limit is buffered before the
  // value is complete. Default 64 MiB.
  std::size_t max_bulk = 64 * 1024 * 1024;
  // Elements of one aggregate (a map counts its keys and values). Bounds
  // the memory a single count line can make the parser commit to (it
  // never reserves more than a few thousand slots up front anyway).
  // Default 4 Mi: a KEYS or SMEMBERS reply of millions of members fits.
  std::size_t max_elements = 4 * 1024 * 1024;
  // Aggregates nested inside each other (attributes included). Real
  // replies nest two or three levels (EXEC of SCAN results, RESP3 maps of
  // arrays); the stack of partial aggregates grows by one frame per level.
  // Default 32.
  std::size_t max_depth = 32;
  // Bytes of one line: a simple string or error, a number, a big number.
  // Redis writes status lines of a few dozen bytes. Default 64 KiB.
  std::size_t max_line = 64 * 1024;
};

// The incremental parser described above.
class parser {
 public:
  // Throws core::config_error when a limit is 0 (naming it:
  // "resp.max_depth"...).
  explicit parser(parser_options options = {});

  // Parses all of `bytes`: every value it completes becomes available to
  // next(). Returns the error at the first bad byte, or {}; once failed,
  // the parser returns that error for every later call until reset()
  // (values completed before the bad byte stay available).
  std::error_code feed(std::string_view bytes);

  // The oldest completed value not yet taken; nullopt when none is ready.
  std::optional<value> next();
  // Completed values not yet taken.
  std::size_t ready() const noexcept { return ready_.size(); }
  // True when no value is partly parsed: the stream ended cleanly between
  // values. (A connection closed while this is false was cut mid-reply.)
  bool idle() const noexcept;
  std::error_code error() const noexcept { return error_; }

  // Forgets everything: partial values, ready values, the error.
  void reset();

 private:
  enum class state : std::uint8_t { type_byte, line, line_lf, bulk, bulk_cr, bulk_lf };
  struct frame {
    value v;
    std::size_t remaining = 0;  // elements still to come
    bool attribute = false;     // dropped when complete
  };

  std::error_code fail(resp::error e);
  std::error_code end_line();
  std::error_code open_aggregate(std::int64_t count);
  void complete(value v);

  parser_options options_;
  state state_ = state::type_byte;
  char type_ = 0;
  std::string line_;           // the current line, without CRLF
  value bulk_;                 // the bulk value being filled
  std::size_t bulk_left_ = 0;  // payload bytes still to come
  std::vector<frame> stack_;   // open aggregates, innermost last
  std::deque<value> ready_;
  std::error_code error_;
};

// Appends `args` as one command: an array of bulk strings
// ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"). Arguments may hold any bytes.
// REQUIRES: args is not empty.
void append_command(std::string& out, std::span<const std::string_view> args);
void append_command(std::string& out, std::span<const std::string> args);
inline void append_command(std::string& out, std::initializer_list<std::string_view> args) {
  append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
}

// Appends `v` in RESP3 form; every kind is written as its own type (a null
// as `_`). A simple string or error holding CR or LF, which has no simple
// spelling, is written as a bulk string or bulk error instead.
void append_value(std::string& out, const value& v);

}  // namespace trellis::resp

template <>
struct std::is_error_code_enum<trellis::resp::error> : std::true_type {};
