#include "trellis/codec/resp.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/core/error.hpp"

namespace trellis::resp {

// GoogleTest prints values in failure messages through this.
inline void PrintTo(const value& v, std::ostream* os) {
  *os << describe(v);
}

namespace {

using namespace std::string_literals;

struct parsed {
  std::vector<value> values;
  std::error_code error;
};

// Feeds `bytes` in pieces of `step` bytes (0: all at once).
parsed parse_all(std::string_view bytes, std::size_t step = 0, parser_options o = {}) {
  parser p(o);
  parsed out;
  if (step == 0) step = bytes.size() + 1;
  for (std::size_t i = 0; i < bytes.size() && !out.error; i += step)
    out.error = p.feed(bytes.substr(i, step));
  while (auto v = p.next()) out.values.push_back(std::move(*v));
  return out;
}

value one(std::string_view bytes) {
  auto r = parse_all(bytes);
  EXPECT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.values.size(), 1u);
  return r.values.empty() ? value() : r.values.front();
}

std::string serialize(const value& v) {
  std::string out;
  append_value(out, v);
  return out;
}

value arr(std::vector<value> e) {
  return value::array(std::move(e));
}
value bulk(std::string s) {
  return value::bulk_string(std::move(s));
}
value num(std::int64_t i) {
  return value::integer(i);
}

// The specification's examples, read field by field.
TEST(resp, parses_the_resp2_types) {
  EXPECT_EQ(one("+OK\r\n"), value::simple_string("OK"));
  EXPECT_EQ(one("-ERR unknown command 'x'\r\n"), value::simple_error("ERR unknown command 'x'"));
  EXPECT_EQ(one(":1000\r\n").integer_value(), 1000);
  EXPECT_EQ(one(":-42\r\n").integer_value(), -42);
  EXPECT_EQ(one(":+7\r\n").integer_value(), 7);  // the spec allows the plus sign
  EXPECT_EQ(one("$5\r\nhello\r\n"), bulk("hello"));
  EXPECT_EQ(one("$0\r\n\r\n"), bulk(""));
  EXPECT_TRUE(one("$-1\r\n").is_null());
  EXPECT_TRUE(one("*-1\r\n").is_null());
  EXPECT_EQ(one("*0\r\n"), arr({}));
  EXPECT_EQ(one("*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n"), arr({bulk("hello"), bulk("world")}));
  EXPECT_EQ(one("*3\r\n:1\r\n:2\r\n:3\r\n"), arr({num(1), num(2), num(3)}));
  EXPECT_EQ(one("*3\r\n$5\r\nhello\r\n$-1\r\n$5\r\nworld\r\n"),
            arr({bulk("hello"), value(), bulk("world")}));
  EXPECT_EQ(one("*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n"),
            arr({arr({num(1), num(2), num(3)}),
                 arr({value::simple_string("Hello"), value::simple_error("World")})}));
}

TEST(resp, parses_the_resp3_types) {
  EXPECT_TRUE(one("_\r\n").is_null());
  EXPECT_TRUE(one("#t\r\n").boolean_value());
  EXPECT_EQ(one("#f\r\n"), value::boolean(false));
  EXPECT_EQ(one(",1.23\r\n").double_value(), 1.23);
  EXPECT_EQ(one(",10\r\n").double_value(), 10.0);
  EXPECT_EQ(one(",-1.5e3\r\n").double_value(), -1500.0);
  EXPECT_EQ(one(",+2E-2\r\n").double_value(), 0.02);
  EXPECT_EQ(one(",inf\r\n").double_value(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(one(",-inf\r\n").double_value(), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(one(",nan\r\n").double_value()));
  const value big = one("(3492890328409238509324850943850943825024385\r\n");
  EXPECT_EQ(big.kind(), type::big_number);
  EXPECT_EQ(big.text(), "3492890328409238509324850943850943825024385");
  const value be = one("!21\r\nSYNTAX invalid syntax\r\n");
  EXPECT_EQ(be.kind(), type::bulk_error);
  EXPECT_TRUE(be.is_error());
  EXPECT_EQ(be.text(), "SYNTAX invalid syntax");
  const value vs = one("=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(vs.kind(), type::verbatim_string);
  EXPECT_TRUE(vs.is_string());
  EXPECT_EQ(vs.format(), "txt");
  EXPECT_EQ(vs.text(), "Some string");
  const value m = one("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n");
  EXPECT_EQ(m.kind(), type::map);
  EXPECT_EQ(m.elements(), (std::vector<value>{value::simple_string("first"), num(1),
                                              value::simple_string("second"), num(2)}));
  const value s = one("~3\r\n+orange\r\n+apple\r\n#t\r\n");
  EXPECT_EQ(s.kind(), type::set);
  EXPECT_EQ(s.elements().size(), 3u);
  const value p = one(">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$2\r\nhi\r\n");
  EXPECT_EQ(p.kind(), type::push);
  EXPECT_EQ(p.elements(), (std::vector<value>{bulk("message"), bulk("chan"), bulk("hi")}));
}

TEST(resp, drops_attributes_and_keeps_the_value_they_describe) {
  // The specification's example: a reply with popularity metadata.
  EXPECT_EQ(one("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
                "*2\r\n:2039123\r\n:9543892\r\n"),
            arr({num(2039123), num(9543892)}));
  // Inside an aggregate, an attribute is not one of its elements.
  EXPECT_EQ(one("*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n"), arr({num(1), num(2), num(3)}));
  // Empty attributes and attributes of attributes.
  EXPECT_EQ(one("|0\r\n|1\r\n|0\r\n+k\r\n+v\r\n+OK\r\n"), value::simple_string("OK"));
}

TEST(resp, integers_cover_the_whole_int64_range_and_refuse_overflow) {
  EXPECT_EQ(one(":9223372036854775807\r\n").integer_value(),
            std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(one(":-9223372036854775808\r\n").integer_value(),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(parse_all(":9223372036854775808\r\n").error, error::bad_integer);
  EXPECT_EQ(parse_all(":-9223372036854775809\r\n").error, error::bad_integer);
  EXPECT_EQ(parse_all(":99999999999999999999999\r\n").error, error::bad_integer);
}

// Every kind written out and read back is the same value.
TEST(resp, round_trips_every_type) {
  const std::string binary = "a\r\nb\0c\xff"s;
  const std::vector<value> values = {
      value(),
      value::simple_string("OK"),
      value::simple_error("ERR wrong type"),
      num(0),
      num(std::numeric_limits<std::int64_t>::min()),
      num(std::numeric_limits<std::int64_t>::max()),
      bulk(""),
      bulk(binary),
      value::bulk_error("SYNTAX " + binary),
      value::verbatim_string("mkd", "# title\r\n"),
      value::boolean(true),
      value::boolean(false),
      value::double_number(3.14159),
      value::double_number(-0.1),
      value::double_number(1e300),
      value::double_number(5e-324),
      value::double_number(std::numeric_limits<double>::infinity()),
      value::double_number(-std::numeric_limits<double>::infinity()),
      value::double_number(std::numeric_limits<double>::quiet_NaN()),
      value::big_number("-123456789012345678901234567890"),
      arr({}),
      arr({num(1), arr({bulk("x"), value()}), value::simple_string("y")}),
      value::aggregate(type::map, {bulk("k1"), num(1), bulk("k2"), arr({value::boolean(true)})}),
      value::aggregate(type::set, {bulk("a"), bulk("b")}),
      value::aggregate(type::push, {bulk("invalidate"), arr({bulk("key")})}),
  };
  for (const value& v : values) {
    const std::string wire = serialize(v);
    auto r = parse_all(wire);
    ASSERT_FALSE(r.error) << describe(v) << ": " << r.error.message();
    ASSERT_EQ(r.values.size(), 1u) << describe(v);
    EXPECT_EQ(r.values[0], v) << describe(v) << " came back as " << describe(r.values[0]);
    EXPECT_EQ(serialize(r.values[0]), wire) << describe(v);
  }
}

TEST(resp, writes_simple_strings_with_line_breaks_as_bulk) {
  EXPECT_EQ(serialize(value::simple_string("a\r\nb")), "$4\r\na\r\nb\r\n");
  EXPECT_EQ(serialize(value::simple_error("E\n")), "!2\r\nE\n\r\n");
}

TEST(resp, writes_commands_as_arrays_of_binary_safe_bulk_strings) {
  std::string out = "prefix";
  const std::string payload = "line\r\nwith\0nul"s;
  append_command(out, {"SET", "key", payload});
  EXPECT_EQ(out, "prefix*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$14\r\nline\r\nwith\0nul\r\n"s);
  const std::vector<std::string> args = {"GET", ""};
  std::string out2;
  append_command(out2, args);
  EXPECT_EQ(out2, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
  EXPECT_EQ(one(out.substr(6)), arr({bulk("SET"), bulk("key"), bulk(payload)}));
}

// A stream of values of every type, split at every pair of points (and
// fed one byte at a time), gives the same values as in one piece.
TEST(resp, output_never_depends_on_how_the_stream_is_split) {
  const std::string stream =
      "+OK\r\n-ERR x\r\n:-12\r\n$6\r\na\r\n\0bc\r\n$-1\r\n*-1\r\n_\r\n#t\r\n,2.5\r\n(99\r\n"
      "!3\r\nE x\r\n=7\r\ntxt:abc\r\n*2\r\n*1\r\n:1\r\n%1\r\n+k\r\n~1\r\n$0\r\n\r\n"
      "|1\r\n+a\r\n+b\r\n>2\r\n+p\r\n:9\r\n*0\r\n"s;
  const parsed whole = parse_all(stream);
  ASSERT_FALSE(whole.error) << whole.error.message();
  ASSERT_EQ(whole.values.size(), 15u);

  const parsed bytewise = parse_all(stream, 1);
  EXPECT_FALSE(bytewise.error);
  EXPECT_EQ(bytewise.values, whole.values);

  for (std::size_t i = 0; i <= stream.size(); ++i) {
    for (std::size_t j = i; j <= stream.size(); ++j) {
      parser p;
      std::error_code ec = p.feed(std::string_view(stream).substr(0, i));
      if (!ec) ec = p.feed(std::string_view(stream).substr(i, j - i));
      if (!ec) ec = p.feed(std::string_view(stream).substr(j));
      ASSERT_FALSE(ec) << "split at " << i << "," << j;
      std::vector<value> got;
      while (auto v = p.next()) got.push_back(std::move(*v));
      ASSERT_EQ(got, whole.values) << "split at " << i << "," << j;
      ASSERT_TRUE(p.idle());
    }
  }
}

TEST(resp, values_come_out_as_soon_as_they_are_complete) {
  parser p;
  EXPECT_FALSE(p.feed("*2\r\n:1\r\n"));
  EXPECT_EQ(p.ready(), 0u);
  EXPECT_FALSE(p.idle());
  EXPECT_FALSE(p.feed(":2\r\n+OK"));
  EXPECT_EQ(p.ready(), 1u);
  EXPECT_FALSE(p.idle());
  EXPECT_FALSE(p.feed("\r\n"));
  EXPECT_EQ(p.next(), arr({num(1), num(2)}));
  EXPECT_EQ(p.next(), value::simple_string("OK"));
  EXPECT_FALSE(p.next().has_value());
  EXPECT_TRUE(p.idle());
}

// Each class of malformed input gives its error, whole and byte by byte,
// after the values that came before it.
TEST(resp, refuses_every_class_of_malformed_input) {
  const std::vector<std::pair<std::string, error>> cases = {
      {"?x\r\n", error::bad_type},
      {"\r\n", error::bad_type},
      {" +OK\r\n", error::bad_type},
      {"$?\r\n", error::bad_length},  // streamed strings are refused
      {"*?\r\n", error::bad_length},
      {"$\r\n", error::bad_length},
      {"$-2\r\n", error::bad_length},  // negative other than -1
      {"*-5\r\n", error::bad_length},
      {"$-0\r\n", error::bad_length},
      {"$+3\r\nabc\r\n", error::bad_length},
      {"$03\r\nabc\r\n", error::bad_length},  // leading zero
      {"$3x\r\nabc\r\n", error::bad_length},
      {"$99999999999999999999\r\n", error::bad_length},
      {"%-1\r\n", error::bad_length},  // -1 is a null only for $ and *
      {"!-1\r\n", error::bad_length},
      {"~-1\r\n", error::bad_length},
      {":\r\n", error::bad_integer},
      {":-\r\n", error::bad_integer},
      {":12a\r\n", error::bad_integer},
      {":1 \r\n", error::bad_integer},
      {":007\r\n", error::bad_integer},
      {":9223372036854775808\r\n", error::bad_integer},
      {"+OK\n", error::bad_line_ending},           // LF without CR
      {"+O\rK\r\n", error::bad_line_ending},       // CR without LF
      {"$3\r\nabcd\r\n", error::bad_line_ending},  // payload longer than announced
      {"$3\r\nab\r\n", error::bad_line_ending},    // shorter (CRLF taken as data, then "\n")
      {"$3\r\nabc\n", error::bad_line_ending},
      {"_x\r\n", error::bad_value},
      {"#x\r\n", error::bad_value},
      {"#\r\n", error::bad_value},
      {",\r\n", error::bad_value},
      {",1.\r\n", error::bad_value},
      {",.5\r\n", error::bad_value},
      {",1e\r\n", error::bad_value},
      {",Inf\r\n", error::bad_value},
      {",0x10\r\n", error::bad_value},
      {",1e400\r\n", error::bad_value},
      {"(\r\n", error::bad_value},
      {"(12a\r\n", error::bad_value},
      {"=3\r\ntxt\r\n", error::bad_value},    // shorter than "fmt:"
      {"=5\r\ntxt-x\r\n", error::bad_value},  // no ':' after the format
  };
  for (const auto& [input, expected] : cases) {
    const std::string stream = ":1\r\n" + input + ":2\r\n";
    for (std::size_t step : {std::size_t{0}, std::size_t{1}}) {
      const parsed r = parse_all(stream, step);
      EXPECT_EQ(r.error, expected)
          << "input " << describe(bulk(input)) << " step " << step << ": got " << r.error.message();
      ASSERT_GE(r.values.size(), 1u) << describe(bulk(input));
      EXPECT_EQ(r.values[0], num(1)) << describe(bulk(input));
      EXPECT_EQ(r.values.size(), 1u) << describe(bulk(input));  // nothing after the error
    }
  }
}

TEST(resp, a_failed_parser_stays_failed_until_reset) {
  parser p;
  EXPECT_EQ(p.feed("+OK\r\n?"), error::bad_type);
  EXPECT_EQ(p.feed("+OK\r\n"), error::bad_type);
  EXPECT_EQ(p.error(), error::bad_type);
  EXPECT_EQ(p.next(), value::simple_string("OK"));  // completed before the bad byte
  EXPECT_FALSE(p.next().has_value());
  p.reset();
  EXPECT_FALSE(p.feed("+OK\r\n"));
  EXPECT_EQ(p.next(), value::simple_string("OK"));
}

TEST(resp, enforces_its_limits_whatever_the_split) {
  const parser_options o{.max_bulk = 4, .max_elements = 3, .max_depth = 2, .max_line = 8};
  const std::vector<std::pair<std::string, std::error_code>> cases = {
      {"$4\r\nabcd\r\n", {}},
      {"$5\r\nabcde\r\n", error::bulk_too_long},
      {"!5\r\nabcde\r\n", error::bulk_too_long},
      {"*3\r\n:1\r\n:2\r\n:3\r\n", {}},
      {"*4\r\n", error::too_many_elements},
      {"~4\r\n", error::too_many_elements},
      {"%2\r\n", error::too_many_elements},  // 2 pairs: 4 elements
      {"|2\r\n", error::too_many_elements},
      {"*1\r\n*1\r\n:1\r\n", {}},
      {"*1\r\n*1\r\n*1\r\n:1\r\n", error::too_deep},
      {"*1\r\n*1\r\n*0\r\n", error::too_deep},
      {"+12345678\r\n", {}},
      {"+123456789\r\n", error::line_too_long},
      {"-123456789\r\n", error::line_too_long},
  };
  for (const auto& [input, expected] : cases) {
    for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
      EXPECT_EQ(parse_all(input, step, o).error, expected) << describe(bulk(input)) << " " << step;
    }
  }
}

TEST(resp, deep_nesting_meets_max_depth_not_the_end_of_the_stack) {
  std::string deep;
  for (int i = 0; i < 1'000'000; ++i) deep += "*1\r\n";
  EXPECT_EQ(parse_all(deep).error, error::too_deep);
  EXPECT_EQ(parse_all(deep, 7).error, error::too_deep);
  // Exactly max_depth levels are fine.
  std::string ok;
  for (int i = 0; i < 32; ++i) ok += "*1\r\n";
  ok += ":1\r\n";
  const parsed r = parse_all(ok);
  EXPECT_FALSE(r.error);
  ASSERT_EQ(r.values.size(), 1u);
}

TEST(resp, a_large_bulk_string_arrives_intact_in_pieces) {
  std::string payload(1 << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31 + 7);
  std::string wire;
  append_command(wire, {payload});
  const parsed r = parse_all(wire, 16 * 1024 + 3);
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.values.size(), 1u);
  ASSERT_EQ(r.values[0].elements().size(), 1u);
  EXPECT_TRUE(r.values[0].elements()[0].text() == payload);
}

TEST(resp, zero_limits_are_configuration_errors_naming_the_field) {
  try {
    parser p({.max_depth = 0});
    FAIL() << "max_depth 0 accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "resp.max_depth");
  }
  EXPECT_THROW(parser({.max_bulk = 0}), core::config_error);
  EXPECT_THROW(parser({.max_elements = 0}), core::config_error);
  EXPECT_THROW(parser({.max_line = 0}), core::config_error);
}

TEST(resp, describes_values_like_redis_cli) {
  EXPECT_EQ(describe(value()), "(nil)");
  EXPECT_EQ(describe(value::simple_string("OK")), "OK");
  EXPECT_EQ(describe(value::simple_error("ERR x")), "(error) ERR x");
  EXPECT_EQ(describe(num(5)), "(integer) 5");
  EXPECT_EQ(describe(bulk("a\r\n\"\x01")), "\"a\\r\\n\\\"\\x01\"");
  EXPECT_EQ(describe(arr({num(1), bulk("b")})), "[(integer) 1, \"b\"]");
  EXPECT_EQ(describe(value::aggregate(type::map, {bulk("k"), num(2)})), "{\"k\": (integer) 2}");
  EXPECT_EQ(describe(value::double_number(1.5)), "(double) 1.5");
  EXPECT_EQ(describe(value::boolean(true)), "(true)");
}

TEST(resp, error_codes_have_a_category_and_messages) {
  const std::error_code ec = error::too_deep;
  EXPECT_STREQ(ec.category().name(), "trellis.resp");
  EXPECT_EQ(ec.message(), "RESP aggregates nested too deeply");
  EXPECT_EQ(type_name(type::verbatim_string), "verbatim string");
}

}  // namespace
}  // namespace trellis::resp
