// libFuzzer target: http::request_parser on arbitrary bytes.
//
// Input: byte 0 chooses a split position, the rest is the stream. The
// stream is parsed the way a server does (contiguous unconsumed bytes, head
// consumed after done, body bytes consumed as reported, reset() between
// pipelined requests, finish() at the end) three ways: whole, split in two
// at the chosen position, and one byte at a time. The three transcripts
// (heads, bodies, verdict) must be identical, and every head must respect
// the limits and point into the caller's bytes; anything else traps.
// Small limits make the limit paths reachable.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/http/parser.hpp"

namespace {

namespace http = trellis::http;

http::parser_limits fuzz_limits() {
  http::parser_limits l;
  l.max_request_line = 200;
  l.max_header_bytes = 1024;
  l.max_header_count = 16;
  l.max_body = 4096;
  l.max_chunk_line = 64;
  l.max_trailer_bytes = 256;
  return l;
}

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

std::string describe(const http::request_head& h, std::string_view buffered,
                     const http::parser_limits& l) {
  check(inside(h.method_text, buffered) && inside(h.target, buffered) && inside(h.host, buffered));
  check(h.headers.size() <= l.max_header_count);
  check(h.framing != http::framing::content_length || h.content_length <= l.max_body);
  std::string s = std::to_string(static_cast<int>(h.method)) + ' ' + std::string(h.method_text) +
                  ' ' + std::string(h.target) + ' ' + std::to_string(h.version_minor) + ' ' +
                  std::string(h.host) + ' ' + std::to_string(static_cast<int>(h.framing)) + ' ' +
                  std::to_string(h.content_length) + ' ' + std::to_string(h.keep_alive) +
                  std::to_string(h.expect_continue) + std::to_string(h.expect_unsupported) +
                  std::to_string(h.upgrade);
  for (const auto& f : h.headers) {
    check(inside(f.name, buffered) && inside(f.value, buffered) && !f.name.empty());
    s += '\n';
    s.append(f.name);
    s += ':';
    s.append(f.value);
  }
  return s;
}

struct transcript {
  std::vector<std::string> heads;
  std::vector<std::string> bodies;
  std::error_code error;
  bool operator==(const transcript&) const = default;
};

transcript run(const std::vector<std::string_view>& pieces) {
  const http::parser_limits limits = fuzz_limits();
  http::request_parser parser(limits);
  transcript t;
  std::string buffered;
  std::string body;
  bool in_body = false;
  bool stopped = false;
  auto pump = [&] {
    for (;;) {
      if (!in_body) {
        const http::parse_status st = parser.parse_head(buffered);
        if (st == http::parse_status::need_more) return;
        if (st == http::parse_status::error) {
          check(static_cast<bool>(parser.error()));
          t.error = parser.error();
          stopped = true;
          return;
        }
        check(parser.head_size() <= limits.max_header_bytes &&
              parser.head_size() <= buffered.size());
        t.heads.push_back(describe(parser.head(), buffered, limits));
        buffered.erase(0, parser.head_size());
        in_body = true;
        body.clear();
        if (parser.head().framing == http::framing::tunnel) {
          stopped = true;
          return;
        }
      }
      while (!parser.body_done()) {
        std::string_view data;
        const auto n = parser.parse_body(buffered, data);
        if (!n) {
          t.error = n.error();
          stopped = true;
          return;
        }
        check(*n <= buffered.size() && inside(data, std::string_view(buffered).substr(0, *n)));
        body.append(data);
        buffered.erase(0, *n);
        if (*n == 0) return;
      }
      check(body.size() <= limits.max_body);
      t.bodies.push_back(body);
      in_body = false;
      parser.reset();
    }
  };
  for (std::string_view piece : pieces) {
    buffered.append(piece);
    if (!stopped) pump();
  }
  if (!stopped) {
    if (const auto r = parser.finish(); !r)
      t.error = r.error();
    else if (in_body)
      t.bodies.push_back(body);
  }
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t split = static_cast<std::size_t>(data[0]) * stream.size() / 255;

  const transcript whole = run({stream});
  check(run({stream.substr(0, split), stream.substr(split)}) == whole);
  if (stream.size() <= 4096) {
    std::vector<std::string_view> singles;
    for (std::size_t i = 0; i < stream.size(); ++i) singles.push_back(stream.substr(i, 1));
    check(run(singles) == whole);
  }
  return 0;
}
