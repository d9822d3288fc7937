// libFuzzer target for the RESP codec: the incremental parser on arbitrary
// bytes, split three ways. Beyond "no crash, no sanitizer report", it
// checks the invariants callers rely on:
//   - the values and the error do not depend on the split: the input fed
//     whole, one byte at a time, and cut at a point taken from the input
//     give the same values and the same error;
//   - every value that parses, written back with append_value and parsed
//     again, is the same value, and writing it again gives the same bytes;
//   - a parser that failed stays failed, and idle() is true after a
//     complete stream;
//   - a command written with append_command from the strings found parses
//     back to an array of exactly those bulk strings.
// Small limits in a second pass make every limit error reachable.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "trellis/codec/resp.hpp"

namespace {

using namespace trellis::resp;

struct outcome {
  std::vector<value> values;
  std::error_code error;
  bool idle = false;
};

outcome parse(std::string_view in, std::size_t step, const parser_options& o) {
  parser p(o);
  outcome out;
  if (step == 0) step = in.size() + 1;
  for (std::size_t i = 0; i < in.size() && !out.error; i += step)
    out.error = p.feed(in.substr(i, step));
  if (out.error) FUZZ_CHECK(p.feed("+OK\r\n") == out.error);
  out.idle = p.idle();
  while (auto v = p.next()) out.values.push_back(std::move(*v));
  return out;
}

outcome parse_cut(std::string_view in, std::size_t cut, const parser_options& o) {
  parser p(o);
  outcome out;
  out.error = p.feed(in.substr(0, cut));
  if (!out.error) out.error = p.feed(in.substr(cut));
  out.idle = p.idle();
  while (auto v = p.next()) out.values.push_back(std::move(*v));
  return out;
}

void collect_strings(const value& v, std::vector<std::string>& out) {
  if (out.size() >= 64) return;
  if (v.is_string() || v.is_error()) out.emplace_back(v.text());
  for (const value& e : v.elements()) collect_strings(e, out);
}

void check(std::string_view in, std::size_t cut, const parser_options& o) {
  const outcome whole = parse(in, 0, o);
  const outcome bytewise = parse(in, 1, o);
  const outcome split = parse_cut(in, cut, o);
  FUZZ_CHECK(bytewise.error == whole.error);
  FUZZ_CHECK(bytewise.values == whole.values);
  FUZZ_CHECK(split.error == whole.error);
  FUZZ_CHECK(split.values == whole.values);
  FUZZ_CHECK(split.idle == whole.idle);

  for (const value& v : whole.values) {
    std::string wire;
    append_value(wire, v);
    const outcome again = parse(wire, 0, parser_options{});
    FUZZ_CHECK(!again.error);
    FUZZ_CHECK(again.idle);
    FUZZ_CHECK(again.values.size() == 1);
    FUZZ_CHECK(again.values[0] == v);
    std::string wire2;
    append_value(wire2, again.values[0]);
    FUZZ_CHECK(wire2 == wire);
    (void)describe(v);
  }

  std::vector<std::string> strings;
  for (const value& v : whole.values) collect_strings(v, strings);
  if (!strings.empty()) {
    std::string command;
    append_command(command, strings);
    const outcome c = parse(command, 0, parser_options{});
    FUZZ_CHECK(!c.error && c.values.size() == 1);
    const value& a = c.values[0];
    FUZZ_CHECK(a.kind() == type::array && a.elements().size() == strings.size());
    for (std::size_t i = 0; i < strings.size(); ++i) {
      FUZZ_CHECK(a.elements()[i].kind() == type::bulk_string);
      FUZZ_CHECK(a.elements()[i].text() == strings[i]);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string owned(reinterpret_cast<const char*>(data), size);
  const std::string_view in(owned);
  // The cut point comes from the input's length and first byte, so the
  // fuzzer can move it without a separate control byte.
  const std::size_t cut = size == 0 ? 0 : (static_cast<std::size_t>(data[0]) * 7) % (size + 1);
  check(in, cut, parser_options{});
  check(in, cut, parser_options{.max_bulk = 8, .max_elements = 4, .max_depth = 3, .max_line = 16});
  return 0;
}
