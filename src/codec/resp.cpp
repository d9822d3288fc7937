#include "trellis/codec/resp.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "trellis/core/error.hpp"

namespace trellis::resp {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.resp"; }
  std::string message(int v) const override {
    switch (static_cast<error>(v)) {
      case error::bad_type: return "unknown RESP type byte";
      case error::bad_length: return "malformed RESP length";
      case error::bad_integer: return "malformed or overflowing RESP integer";
      case error::bad_line_ending: return "RESP line or payload not ended by CRLF";
      case error::bad_value: return "malformed RESP null, boolean, double, big number or verbatim";
      case error::line_too_long: return "RESP line too long";
      case error::bulk_too_long: return "RESP bulk payload too long";
      case error::too_many_elements: return "RESP aggregate has too many elements";
      case error::too_deep: return "RESP aggregates nested too deeply";
    }
    return "unknown RESP error";
  }
};

constexpr std::size_t k_max_reserve = 1024;              // aggregate slots reserved up front
constexpr std::size_t k_max_bulk_reserve = 1024 * 1024;  // payload bytes reserved up front

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A canonical decimal integer: an optional sign (when `sign_ok`), then "0"
// or digits without a leading zero, fitting in int64. Redis's own
// string2ll is as strict about leading zeros; refusing them keeps one
// spelling per number.
bool parse_int(std::string_view s, bool sign_ok, std::int64_t& out) {
  bool negative = false;
  if (sign_ok && !s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || (s[0] == '0' && s.size() > 1)) return false;
  // Accumulate as a negative number: its range is one larger, so
  // INT64_MIN parses without overflow.
  std::int64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    const int d = c - '0';
    if (v < (std::numeric_limits<std::int64_t>::min() + d) / 10) return false;
    v = v * 10 - d;
  }
  if (!negative) {
    if (v == std::numeric_limits<std::int64_t>::min()) return false;
    v = -v;
  }
  out = v;
  return true;
}

// A length or count: "-1" (null, where `null_ok`) or a canonical
// non-negative number. Returns false for anything else.
bool parse_length(std::string_view s, bool null_ok, std::int64_t& out) {
  if (s == "-1") {
    out = -1;
    return null_ok;
  }
  if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  return parse_int(s, false, out);
}

// RESP3 double: [+|-]digits[.digits][(e|E)[+|-]digits], or inf, -inf, nan.
bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  if (s == "inf") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "-inf") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "nan") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::size_t number = s[0] == '+' ? 1 : 0;  // from_chars takes '-' but not '+'
  auto digits = [&] {
    const std::size_t from = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    return i > from;
  };
  if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  if (i != s.size()) return false;
  const char* first = s.data() + number;
  auto [end, ec] = std::from_chars(first, s.data() + s.size(), out);
  // Out of range (1e400, 1e-400) is refused rather than rounded: Redis
  // never writes such a number, and a rounded one would not round-trip.
  return ec == std::errc() && end == s.data() + s.size();
}

bool valid_big_number(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

bool is_known_type(char c) {
  return std::strchr("+-:$*_#,(!=%~>|", c) != nullptr && c != '\0';
}

void append_decimal(std::string& out, std::int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  out.append(buf, end);
}

void append_header(std::string& out, char t, std::int64_t n) {
  out += t;
  append_decimal(out, n);
  out += "\r\n";
}

void append_bulk(std::string& out, char t, std::string_view s) {
  append_header(out, t, static_cast<std::int64_t>(s.size()));
  out += s;
  out += "\r\n";
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

void describe_to(std::string& out, const value& v) {
  auto quoted = [&out](std::string_view s) {
    static constexpr char k_hex[] = "0123456789abcdef";
    out += '"';
    const std::size_t shown = std::min<std::size_t>(s.size(), 200);
    for (std::size_t i = 0; i < shown; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\n') {
        out += "\\n";
      } else if (c < 0x20 || c >= 0x7f) {
        out += "\\x";
        out += k_hex[c >> 4];
        out += k_hex[c & 15];
      } else {
        out += static_cast<char>(c);
      }
    }
    out += '"';
    if (shown < s.size()) out += "...(" + std::to_string(s.size()) + " bytes)";
  };
  switch (v.kind()) {
    case type::null: out += "(nil)"; return;
    case type::simple_string: out += v.text(); return;
    case type::simple_error:
    case type::bulk_error:
      out += "(error) ";
      out += v.text();
      return;
    case type::integer: out += "(integer) " + std::to_string(v.integer_value()); return;
    case type::bulk_string: quoted(v.text()); return;
    case type::verbatim_string:
      out += v.format();
      out += ':';
      quoted(v.text());
      return;
    case type::boolean: out += v.boolean_value() ? "(true)" : "(false)"; return;
    case type::double_number: {
      std::string text;
      append_value(text, v);  // ",<number>\r\n"
      out += "(double) " + text.substr(1, text.size() - 3);
      return;
    }
    case type::big_number:
      out += "(big number) ";
      out += v.text();
      return;
    case type::array:
    case type::set:
    case type::push:
    case type::map: {
      const bool is_map = v.kind() == type::map;
      out += v.kind() == type::push ? ">[" : (is_map ? "{" : (v.kind() == type::set ? "~[" : "["));
      const auto& e = v.elements();
      for (std::size_t i = 0; i < e.size(); ++i) {
        if (i > 0) out += (is_map && i % 2 == 1) ? ": " : ", ";
        describe_to(out, e[i]);
      }
      out += is_map ? "}" : "]";
      return;
    }
  }
}

}  // namespace

const std::error_category& resp_category() noexcept {
  static const category instance;
  return instance;
}

std::string_view type_name(type t) noexcept {
  switch (t) {
    case type::null: return "null";
    case type::simple_string: return "simple string";
    case type::simple_error: return "simple error";
    case type::integer: return "integer";
    case type::bulk_string: return "bulk string";
    case type::array: return "array";
    case type::boolean: return "boolean";
    case type::double_number: return "double";
    case type::big_number: return "big number";
    case type::bulk_error: return "bulk error";
    case type::verbatim_string: return "verbatim string";
    case type::map: return "map";
    case type::set: return "set";
    case type::push: return "push";
  }
  return "unknown";
}

// --- value --------------------------------------------------------------------

value value::simple_string(std::string s) {
  value v;
  v.kind_ = type::simple_string;
  v.str_ = std::move(s);
  return v;
}

value value::simple_error(std::string s) {
  value v;
  v.kind_ = type::simple_error;
  v.str_ = std::move(s);
  return v;
}

value value::integer(std::int64_t i) {
  value v;
  v.kind_ = type::integer;
  v.int_ = i;
  return v;
}

value value::bulk_string(std::string s) {
  value v;
  v.kind_ = type::bulk_string;
  v.str_ = std::move(s);
  return v;
}

value value::bulk_error(std::string s) {
  value v;
  v.kind_ = type::bulk_error;
  v.str_ = std::move(s);
  return v;
}

value value::boolean(bool b) {
  value v;
  v.kind_ = type::boolean;
  v.int_ = b ? 1 : 0;
  return v;
}

value value::double_number(double d) {
  value v;
  v.kind_ = type::double_number;
  v.double_ = d;
  return v;
}

value value::big_number(std::string digits) {
  assert(valid_big_number(digits));
  value v;
  v.kind_ = type::big_number;
  v.str_ = std::move(digits);
  return v;
}

value value::verbatim_string(std::string_view format, std::string_view text) {
  assert(format.size() == 3);
  value v;
  v.kind_ = type::verbatim_string;
  v.str_.reserve(4 + text.size());
  v.str_ += format;
  v.str_ += ':';
  v.str_ += text;
  return v;
}

value value::aggregate(type t, std::vector<value> elements) {
  assert(t == type::array || t == type::set || t == type::push || t == type::map);
  assert(t != type::map || elements.size() % 2 == 0);
  value v;
  v.kind_ = t;
  v.elements_ = std::move(elements);
  return v;
}

std::string_view value::text() const noexcept {
  switch (kind_) {
    case type::simple_string:
    case type::simple_error:
    case type::bulk_string:
    case type::bulk_error:
    case type::big_number: return str_;
    case type::verbatim_string: return std::string_view(str_).substr(4);
    default: return {};
  }
}

std::string_view value::format() const noexcept {
  if (kind_ != type::verbatim_string) return {};
  return std::string_view(str_).substr(0, 3);
}

bool operator==(const value& a, const value& b) noexcept {
  if (a.kind_ != b.kind_) return false;
  if (a.kind_ == type::double_number) {
    const bool both_nan = std::isnan(a.double_) && std::isnan(b.double_);
    if (!both_nan && a.double_ != b.double_) return false;
  } else if (a.int_ != b.int_) {
    return false;
  }
  return a.str_ == b.str_ && a.elements_ == b.elements_;
}

std::string describe(const value& v) {
  std::string out;
  describe_to(out, v);
  return out;
}

// --- parser -------------------------------------------------------------------

parser::parser(parser_options options) : options_(options) {
  if (options_.max_bulk == 0) throw core::config_error("resp.max_bulk", "must be at least 1");
  if (options_.max_elements == 0)
    throw core::config_error("resp.max_elements", "must be at least 1");
  if (options_.max_depth == 0) throw core::config_error("resp.max_depth", "must be at least 1");
  if (options_.max_line == 0) throw core::config_error("resp.max_line", "must be at least 1");
}

void parser::reset() {
  state_ = state::type_byte;
  type_ = 0;
  line_.clear();
  bulk_ = value();
  bulk_left_ = 0;
  stack_.clear();
  ready_.clear();
  error_.clear();
}

bool parser::idle() const noexcept {
  return state_ == state::type_byte && stack_.empty();
}

std::optional<value> parser::next() {
  if (ready_.empty()) return std::nullopt;
  std::optional<value> v(std::move(ready_.front()));
  ready_.pop_front();
  return v;
}

std::error_code parser::fail(resp::error e) {
  error_ = make_error_code(e);
  return error_;
}

std::error_code parser::feed(std::string_view bytes) {
  if (error_) return error_;
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  while (p < end) {
    switch (state_) {
      case state::type_byte:
        type_ = *p++;
        if (!is_known_type(type_)) return fail(error::bad_type);
        line_.clear();
        state_ = state::line;
        break;

      case state::line: {
        // Take the run of line bytes in this piece at once: a long status
        // line fed in one piece is one append, not one per byte.
        const char* q = p;
        while (q < end && *q != '\r' && *q != '\n') ++q;
        const auto n = static_cast<std::size_t>(q - p);
        if (n > options_.max_line - line_.size()) return fail(error::line_too_long);
        line_.append(p, n);
        p = q;
        if (p == end) break;
        if (*p == '\n') return fail(error::bad_line_ending);  // LF without CR
        ++p;
        state_ = state::line_lf;
        break;
      }

      case state::line_lf:
        if (*p++ != '\n') return fail(error::bad_line_ending);  // CR without LF
        if (auto ec = end_line()) return ec;
        break;

      case state::bulk: {
        const std::size_t n = std::min(bulk_left_, static_cast<std::size_t>(end - p));
        bulk_.str_.append(p, n);
        p += n;
        bulk_left_ -= n;
        if (bulk_left_ == 0) state_ = state::bulk_cr;
        break;
      }

      case state::bulk_cr:
        if (*p++ != '\r') return fail(error::bad_line_ending);
        state_ = state::bulk_lf;
        break;

      case state::bulk_lf: {
        if (*p++ != '\n') return fail(error::bad_line_ending);
        if (bulk_.kind_ == type::verbatim_string && bulk_.str_[3] != ':')
          return fail(error::bad_value);
        state_ = state::type_byte;
        value v = std::move(bulk_);
        bulk_ = value();
        complete(std::move(v));
        break;
      }
    }
  }
  return {};
}

// A line is complete (in line_, without CRLF): a scalar is done, a bulk
// header starts its payload, an aggregate header opens a frame.
std::error_code parser::end_line() {
  state_ = state::type_byte;
  std::int64_t n = 0;
  switch (type_) {
    case '+': complete(value::simple_string(line_)); return {};
    case '-': complete(value::simple_error(line_)); return {};
    case ':':
      if (!parse_int(line_, true, n)) return fail(error::bad_integer);
      complete(value::integer(n));
      return {};
    case '_':
      if (!line_.empty()) return fail(error::bad_value);
      complete(value());
      return {};
    case '#':
      if (line_ != "t" && line_ != "f") return fail(error::bad_value);
      complete(value::boolean(line_ == "t"));
      return {};
    case ',': {
      double d = 0;
      if (!parse_double(line_, d)) return fail(error::bad_value);
      complete(value::double_number(d));
      return {};
    }
    case '(': {
      if (!valid_big_number(line_)) return fail(error::bad_value);
      value v;
      v.kind_ = type::big_number;
      v.str_ = line_;
      complete(std::move(v));
      return {};
    }
    case '$':
    case '!':
    case '=': {
      if (!parse_length(line_, type_ == '$', n)) return fail(error::bad_length);
      if (n == -1) {  // RESP2 null bulk string
        complete(value());
        return {};
      }
      const auto len = static_cast<std::uint64_t>(n);
      if (len > options_.max_bulk) return fail(error::bulk_too_long);
      if (type_ == '=' && len < 4) return fail(error::bad_value);  // "fmt:" at least
      bulk_ = value();
      bulk_.kind_ = type_ == '$'   ? type::bulk_string
                    : type_ == '!' ? type::bulk_error
                                   : type::verbatim_string;
      // Reserve what is announced, up to a cap: a hostile length cannot
      // make the parser commit memory for bytes that never come.
      bulk_.str_.reserve(std::min<std::size_t>(len, k_max_bulk_reserve));
      bulk_left_ = len;
      state_ = len == 0 ? state::bulk_cr : state::bulk;
      return {};
    }
    default: {  // '*', '%', '~', '>', '|' (is_known_type let nothing else through)
      if (!parse_length(line_, type_ == '*', n)) return fail(error::bad_length);
      if (n == -1) {  // RESP2 null array
        complete(value());
        return {};
      }
      return open_aggregate(n);
    }
  }
}

std::error_code parser::open_aggregate(std::int64_t count) {
  const bool pairs = type_ == '%' || type_ == '|';
  const auto announced = static_cast<std::uint64_t>(count);
  if (announced > options_.max_elements || (pairs && announced > options_.max_elements / 2))
    return fail(error::too_many_elements);
  if (stack_.size() >= options_.max_depth) return fail(error::too_deep);
  const std::size_t elements = pairs ? 2 * announced : announced;
  frame f;
  f.attribute = type_ == '|';
  f.v.kind_ = type_ == '*'   ? type::array
              : type_ == '~' ? type::set
              : type_ == '>' ? type::push
                             : type::map;  // attributes are maps, dropped when complete
  f.remaining = elements;
  if (elements == 0) {
    if (!f.attribute) complete(std::move(f.v));
    return {};
  }
  f.v.elements_.reserve(std::min(elements, k_max_reserve));
  stack_.push_back(std::move(f));
  return {};
}

// A value is complete: it goes into the innermost open aggregate, which
// may complete in turn, and so on outwards; a value with no aggregate
// around it is ready. A loop, not recursion, however deep the nesting.
void parser::complete(value v) {
  while (true) {
    if (stack_.empty()) {
      ready_.push_back(std::move(v));
      return;
    }
    frame& f = stack_.back();
    f.v.elements_.push_back(std::move(v));
    if (--f.remaining > 0) return;
    const bool attribute = f.attribute;
    v = std::move(f.v);
    stack_.pop_back();
    // An attribute describes the value that follows it and is not an
    // element of its parent: drop it and wait for that value.
    if (attribute) return;
  }
}

// --- serializer ---------------------------------------------------------------

namespace {

template <class Args>
void append_command_impl(std::string& out, const Args& args) {
  assert(!args.empty());
  std::size_t size = 16;
  for (const auto& a : args) size += a.size() + 16;
  out.reserve(out.size() + size);
  append_header(out, '*', static_cast<std::int64_t>(args.size()));
  for (const auto& a : args) append_bulk(out, '$', a);
}

}  // namespace

void append_command(std::string& out, std::span<const std::string_view> args) {
  append_command_impl(out, args);
}

void append_command(std::string& out, std::span<const std::string> args) {
  append_command_impl(out, args);
}

void append_value(std::string& out, const value& v) {
  switch (v.kind_) {
    case type::null: out += "_\r\n"; return;
    case type::simple_string:
    case type::simple_error: {
      const bool is_error = v.kind_ == type::simple_error;
      if (has_line_break(v.str_)) {
        append_bulk(out, is_error ? '!' : '$', v.str_);
      } else {
        out += is_error ? '-' : '+';
        out += v.str_;
        out += "\r\n";
      }
      return;
    }
    case type::integer: append_header(out, ':', v.int_); return;
    case type::bulk_string: append_bulk(out, '$', v.str_); return;
    case type::bulk_error: append_bulk(out, '!', v.str_); return;
    case type::verbatim_string: append_bulk(out, '=', v.str_); return;
    case type::boolean: out += v.int_ != 0 ? "#t\r\n" : "#f\r\n"; return;
    case type::double_number: {
      out += ',';
      if (std::isnan(v.double_)) {
        out += "nan";
      } else if (std::isinf(v.double_)) {
        out += v.double_ < 0 ? "-inf" : "inf";
      } else {
        // The shortest text that reads back as the same double.
        char buf[32];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.double_);
        (void)ec;
        out.append(buf, end);
      }
      out += "\r\n";
      return;
    }
    case type::big_number:
      out += '(';
      out += v.str_;
      out += "\r\n";
      return;
    case type::array:
    case type::set:
    case type::push:
    case type::map: {
      const char t = v.kind_ == type::array  ? '*'
                     : v.kind_ == type::set  ? '~'
                     : v.kind_ == type::push ? '>'
                                             : '%';
      const std::size_t n = v.kind_ == type::map ? v.elements_.size() / 2 : v.elements_.size();
      append_header(out, t, static_cast<std::int64_t>(n));
      // Recursion: a value from the parser is at most max_depth deep.
      for (const value& e : v.elements_) append_value(out, e);
      return;
    }
  }
}

}  // namespace trellis::resp
