// Tests of the content codings (trellis/codec/http/content_coding.hpp).
//
// The decoder is checked against streams written by other implementations
// (vectors checked in below, and live ones from the system's gzip and
// Python's zlib when they are installed), and the encoder's output is
// checked by the same peers decoding it. Every stream is decoded several
// ways — whole, one byte at a time, split in two at every position, into a
// one-byte output buffer — and all must agree, because a socket may hand
// the body over in any pieces. Broken streams (cut short, bad check values,
// junk after the end) and decompression bombs must fail with their own
// error, never succeed quietly.
#include "trellis/codec/http/content_coding.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "support/bytes.hpp"
#include "support/process.hpp"
#include "trellis/core/error.hpp"

namespace {

namespace http = trellis::http;
using http::content_coding;
using http::content_coding_error;
using http::content_decoder;
using http::content_encoder;

// --- helpers --------------------------------------------------------------------

std::string bytes(std::initializer_list<unsigned char> list) {
  return std::string(list.begin(), list.end());
}

// Text that compresses well but not trivially: words in varying order.
std::string compressible_text(std::size_t n) {
  static constexpr std::string_view words[] = {"trellis ", "gateway ", "cache ",   "queue ",
                                               "deflate ", "gzip ",    "header\n", "body "};
  std::string s;
  std::uint32_t x = 12345;
  while (s.size() < n) {
    x = x * 1103515245u + 12345u;
    s += words[(x >> 16) % 8];
  }
  s.resize(n);
  return s;
}

// What decoding a whole stream gave: the output, and the first error from
// decode() or finish() (empty on success).
struct outcome {
  std::string out;
  std::error_code error;
  bool operator==(const outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const outcome& o) {
  return os << "{" << o.out.size() << " bytes, error \"" << o.error.message() << "\"}";
}

// Decodes `pieces` one after another (appending to a string), then finish().
outcome decode_pieces(content_coding c, const std::vector<std::string_view>& pieces,
                      http::decoder_options opts = {}) {
  content_decoder d(c, opts);
  outcome o;
  for (std::string_view p : pieces) {
    if (auto r = d.decode(p, o.out); !r) {
      o.error = r.error();
      return o;
    }
  }
  if (auto r = d.finish(); !r) o.error = r.error();
  return o;
}

outcome decode_whole(content_coding c, std::string_view s, http::decoder_options opts = {}) {
  return decode_pieces(c, {s}, opts);
}

outcome decode_bytewise(content_coding c, std::string_view s, http::decoder_options opts = {}) {
  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < s.size(); ++i) pieces.push_back(s.substr(i, 1));
  return decode_pieces(c, pieces, opts);
}

// Decodes through a caller buffer of `out_size` bytes, feeding `in_size`
// input bytes at a time: the span API as a proxy with fixed buffers uses it.
outcome decode_buffered(content_coding c, std::string_view s, std::size_t in_size,
                        std::size_t out_size, http::decoder_options opts = {}) {
  content_decoder d(c, opts);
  outcome o;
  std::vector<char> buf(out_size);
  std::size_t pos = 0;
  for (;;) {
    const std::string_view piece = s.substr(pos, in_size);
    auto r = d.decode(piece, buf);
    if (!r) {
      o.error = r.error();
      return o;
    }
    o.out.append(buf.data(), r->produced);
    pos += r->consumed;
    if (pos == s.size() && r->produced < buf.size()) break;
  }
  if (auto r = d.finish(); !r) o.error = r.error();
  return o;
}

std::string encode(content_coding c, std::string_view data, http::encoder_options opts = {}) {
  content_encoder e(c, opts);
  std::string out;
  e.encode(data, out);
  e.finish(out);
  return out;
}

// Every way of decoding `stream` gives `expected`.
void expect_all_splits(content_coding c, std::string_view stream, const outcome& expected) {
  EXPECT_EQ(decode_whole(c, stream), expected) << "whole";
  EXPECT_EQ(decode_bytewise(c, stream), expected) << "byte at a time";
  EXPECT_EQ(decode_buffered(c, stream, 1, 1), expected) << "1-byte input, 1-byte output";
  EXPECT_EQ(decode_buffered(c, stream, 7, 5), expected) << "7-byte input, 5-byte output";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut)
    EXPECT_EQ(decode_pieces(c, {stream.substr(0, cut), stream.substr(cut)}), expected)
        << "split at " << cut;
}

outcome ok(std::string s) {
  return {std::move(s), {}};
}

// "Hello, trellis! " three times and a newline, as written by other
// implementations at level 9.
const std::string hello = "Hello, trellis! Hello, trellis! Hello, trellis!\n";
// Python: zlib.compress(hello, 9) — RFC 1950, what RFC 9110 calls deflate.
const std::string hello_zlib =
    bytes({0x78, 0xda, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0xd7, 0x51, 0x28, 0x29, 0x02, 0xd2,
           0x99, 0xc5, 0x8a, 0x0a, 0x1e, 0xf8, 0xf9, 0x5c, 0x00, 0x99, 0xdc, 0x10, 0x6b});
// Python: zlib.compressobj(9, wbits=-15) — raw RFC 1951, what many servers send.
const std::string hello_raw = bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0xd7, 0x51, 0x28, 0x29, 0x02,
                                     0xd2, 0x99, 0xc5, 0x8a, 0x0a, 0x1e, 0xf8, 0xf9, 0x5c, 0x00});
// gzip -9 hello.txt (mtime 1700000000): FNAME set, so the header carries
// "hello.txt\0" before the data.
const std::string hello_gzip_named =
    bytes({0x1f, 0x8b, 0x08, 0x08, 0x00, 0xf1, 0x53, 0x65, 0x02, 0x03, 0x68, 0x65,
           0x6c, 0x6c, 0x6f, 0x2e, 0x74, 0x78, 0x74, 0x00, 0xf3, 0x48, 0xcd, 0xc9,
           0xc9, 0xd7, 0x51, 0x28, 0x29, 0x02, 0xd2, 0x99, 0xc5, 0x8a, 0x0a, 0x1e,
           0xf8, 0xf9, 0x5c, 0x00, 0x1b, 0xb6, 0x62, 0xb0, 0x30, 0x00, 0x00, 0x00});
// Python: zlib.compressobj(9, wbits=15, zdict=b"Hello, trellis!"): FDICT set.
const std::string hello_zlib_with_dictionary =
    bytes({0x78, 0xf9, 0x2b, 0x20, 0x05, 0x61, 0xf3, 0x40, 0xe5, 0x2a, 0x10, 0xe0, 0x73, 0x01, 0x00,
           0x99, 0xdc, 0x10, 0x6b});

// --- Content-Encoding -------------------------------------------------------------

TEST(content_encoding, parses_the_field_value_table) {
  struct row {
    std::string_view value;
    content_coding coding;
  };
  const row good[] = {
      {"", content_coding::identity},
      {"identity", content_coding::identity},
      {" , ,identity, ", content_coding::identity},
      {"gzip", content_coding::gzip},
      {"GZip", content_coding::gzip},
      {"x-gzip", content_coding::gzip},
      {"X-GZIP", content_coding::gzip},
      {"deflate", content_coding::deflate},
      {"\tDeflate ", content_coding::deflate},
      {"identity, gzip", content_coding::gzip},
      {"gzip, identity", content_coding::gzip},
      {"gzip,", content_coding::gzip},
      {",,deflate,,", content_coding::deflate},
  };
  for (const row& r : good) {
    const auto parsed = http::parse_content_encoding(r.value);
    ASSERT_TRUE(parsed) << '"' << r.value << "\": " << parsed.error().message();
    EXPECT_EQ(*parsed, r.coding) << '"' << r.value << '"';
  }
  const std::string_view unsupported[] = {
      "br",           "compress",      "x-compress", "zstd",         "gzip, gzip",
      "gzip, x-gzip", "deflate, gzip", "gzip, br",   "gzip;q=1",     "gzip deflate",
      "gzip/1",       "\"gzip\"",      "gzi p",      "identity, br",
  };
  for (std::string_view v : unsupported) {
    const auto parsed = http::parse_content_encoding(v);
    ASSERT_FALSE(parsed) << '"' << v << "\" parsed";
    EXPECT_EQ(parsed.error(), content_coding_error::unsupported_coding) << '"' << v << '"';
  }
}

TEST(content_encoding, names_codings_by_their_tokens) {
  EXPECT_EQ(http::to_string(content_coding::identity), "identity");
  EXPECT_EQ(http::to_string(content_coding::gzip), "gzip");
  EXPECT_EQ(http::to_string(content_coding::deflate), "deflate");
  // What a client advertises is exactly what it can parse back.
  EXPECT_EQ(http::accept_encoding_value, "gzip, deflate");
  for (content_coding c : {content_coding::gzip, content_coding::deflate})
    EXPECT_EQ(*http::parse_content_encoding(http::to_string(c)), c);
}

TEST(content_encoding, errors_have_their_own_category_and_messages) {
  const std::error_code ec = content_coding_error::too_large;
  EXPECT_STREQ(ec.category().name(), "trellis.http.content_coding");
  std::vector<std::string> messages;
  for (int v = 1; v <= 5; ++v) {
    const std::string m = std::error_code(v, http::content_coding_category()).message();
    EXPECT_EQ(m.find("unknown"), std::string::npos) << v;
    for (const auto& other : messages) EXPECT_NE(m, other);
    messages.push_back(m);
  }
}

TEST(is_compressible, compresses_text_and_structured_text_only) {
  const std::string_view yes[] = {
      "text/html",
      "text/plain; charset=utf-8",
      "TEXT/CSS",
      "text/csv",
      "application/json",
      "Application/JSON ; charset=UTF-8",
      "application/javascript",
      "application/x-javascript",
      "application/ecmascript",
      "application/xml",
      "image/svg+xml",
      "application/problem+json",
      "application/vnd.api+json",
      "application/atom+xml",
      "application/xhtml+xml",
  };
  for (std::string_view t : yes) EXPECT_TRUE(http::is_compressible(t)) << t;
  const std::string_view no[] = {
      "",
      "text",
      "/html",
      "text/",
      "text /html",
      "image/png",
      "image/jpeg",
      "image/webp",
      "video/mp4",
      "audio/mpeg",
      "font/woff2",
      "application/octet-stream",
      "application/zip",
      "application/gzip",
      "application/pdf",
      "application/jsonx",
      "text/event-stream",
      "multipart/form-data; boundary=x",
  };
  for (std::string_view t : no) EXPECT_FALSE(http::is_compressible(t)) << '"' << t << '"';
}

// --- known vectors ------------------------------------------------------------------

TEST(content_decoder, decodes_zlib_wrapped_deflate_from_python) {
  expect_all_splits(content_coding::deflate, hello_zlib, ok(hello));
}

TEST(content_decoder, decodes_raw_deflate_as_servers_send_it) {
  expect_all_splits(content_coding::deflate, hello_raw, ok(hello));
  // A raw stream that starts with a stored block: first byte 0x01.
  expect_all_splits(content_coding::deflate,
                    bytes({0x01, 0x03, 0x00, 0xfc, 0xff, 0x61, 0x62, 0x63}), ok("abc"));
}

TEST(content_decoder, decodes_gzip_with_a_file_name_in_its_header) {
  expect_all_splits(content_coding::gzip, hello_gzip_named, ok(hello));
}

TEST(content_decoder, refuses_a_preset_dictionary) {
  EXPECT_EQ(decode_whole(content_coding::deflate, hello_zlib_with_dictionary).error,
            content_coding_error::corrupt_data);
}

TEST(content_decoder, refuses_a_zlib_stream_as_gzip_and_gzip_as_deflate) {
  EXPECT_EQ(decode_whole(content_coding::gzip, hello_zlib).error,
            content_coding_error::corrupt_data);
  EXPECT_EQ(decode_whole(content_coding::deflate, hello_gzip_named).error,
            content_coding_error::corrupt_data);
}

// --- real peers -----------------------------------------------------------------------

TEST(content_decoder, decodes_what_the_gzip_command_writes) {
  if (!trellis::test::program_exists("gzip")) GTEST_SKIP() << "gzip not installed";
  for (const std::string& data :
       {compressible_text(300'000), trellis::test::make_bytes(100'000), std::string()}) {
    for (const char* level : {"-1", "-6", "-9"}) {
      const auto r = trellis::test::run({"gzip", "-c", "-n", level}, data);
      ASSERT_TRUE(r.status.success()) << r.err;
      EXPECT_EQ(decode_whole(content_coding::gzip, r.out), ok(data)) << level;
      EXPECT_EQ(decode_buffered(content_coding::gzip, r.out, 1000, 4096), ok(data)) << level;
    }
  }
}

TEST(content_decoder, decodes_concatenated_gzip_members_as_gunzip_does) {
  if (!trellis::test::program_exists("gzip")) GTEST_SKIP() << "gzip not installed";
  const std::string a = compressible_text(50'000);
  const std::string b = trellis::test::make_bytes(20'000);
  const auto ga = trellis::test::run({"gzip", "-c", "-n"}, a);
  const auto gb = trellis::test::run({"gzip", "-c", "-n"}, b);
  const auto ge = trellis::test::run({"gzip", "-c", "-n"}, "");
  ASSERT_TRUE(ga.status.success() && gb.status.success() && ge.status.success());
  const std::string stream = ga.out + ge.out + gb.out + ga.out;
  // gunzip is the reference for what the concatenation means.
  const auto gunzip = trellis::test::run({"gzip", "-d", "-c"}, stream);
  ASSERT_TRUE(gunzip.status.success()) << gunzip.err;
  EXPECT_EQ(gunzip.out, a + b + a);

  EXPECT_EQ(decode_whole(content_coding::gzip, stream), ok(a + b + a));
  EXPECT_EQ(decode_bytewise(content_coding::gzip, stream), ok(a + b + a));
  EXPECT_EQ(decode_buffered(content_coding::gzip, stream, 3, 1000), ok(a + b + a));
  // Split right after the end of a member, and inside the next magic number.
  const std::size_t end_a = ga.out.size();
  for (std::size_t cut : {end_a - 1, end_a, end_a + 1, end_a + 2})
    EXPECT_EQ(decode_pieces(content_coding::gzip, {std::string_view(stream).substr(0, cut),
                                                   std::string_view(stream).substr(cut)}),
              ok(a + b + a))
        << cut;
}

// Python's zlib writes both flavours of deflate; the data comes on stdin.
std::string python_deflate(std::string_view data, int wbits) {
  const std::string script =
      "import sys, zlib\n"
      "c = zlib.compressobj(6, zlib.DEFLATED, " +
      std::to_string(wbits) +
      ")\n"
      "sys.stdout.buffer.write(c.compress(sys.stdin.buffer.read()) + c.flush())\n";
  const auto r = trellis::test::run({"python3", "-c", script}, data);
  EXPECT_TRUE(r.status.success()) << r.err;
  return r.out;
}

TEST(content_decoder, decodes_both_deflate_flavours_from_python_zlib) {
  if (!trellis::test::program_exists("python3")) GTEST_SKIP() << "python3 not installed";
  for (const std::string& data :
       {compressible_text(200'000), trellis::test::make_bytes(70'000), std::string("x")}) {
    const std::string wrapped = python_deflate(data, 15);
    const std::string raw = python_deflate(data, -15);
    ASSERT_FALSE(wrapped.empty());
    EXPECT_EQ(decode_whole(content_coding::deflate, wrapped), ok(data));
    EXPECT_EQ(decode_whole(content_coding::deflate, raw), ok(data));
    EXPECT_EQ(decode_bytewise(content_coding::deflate, raw), ok(data));
  }
}

TEST(content_encoder, writes_gzip_that_the_gzip_command_decodes) {
  if (!trellis::test::program_exists("gzip")) GTEST_SKIP() << "gzip not installed";
  for (const std::string& data :
       {compressible_text(300'000), trellis::test::make_bytes(50'000), std::string()}) {
    for (int level : {0, 1, 6, 9}) {
      const std::string gz = encode(content_coding::gzip, data, {.level = level});
      const auto r = trellis::test::run({"gzip", "-d", "-c"}, gz);
      ASSERT_TRUE(r.status.success()) << "level " << level << ": " << r.err;
      EXPECT_EQ(r.out, data) << "level " << level;
    }
  }
}

TEST(content_encoder, writes_deflate_in_the_zlib_format_python_decodes) {
  if (!trellis::test::program_exists("python3")) GTEST_SKIP() << "python3 not installed";
  const std::string data = compressible_text(100'000);
  const std::string z = encode(content_coding::deflate, data);
  // RFC 9110 §8.4.1.2: deflate is the zlib format, header first.
  ASSERT_GE(z.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(z[0]) & 0x0f, 8);
  // zlib.decompress with the default wbits accepts the zlib format only.
  const auto r = trellis::test::run(
      {"python3", "-c",
       "import sys, zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read()))"},
      z);
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_EQ(r.out, data);
}

// --- round trips ---------------------------------------------------------------------

TEST(content_coding_round_trip, restores_random_and_compressible_data) {
  const std::string inputs[] = {
      std::string(),
      std::string("a"),
      trellis::test::make_bytes(1'000),
      trellis::test::make_bytes(300'000),
      compressible_text(1'000'000),
      std::string(100'000, '\0'),
  };
  for (content_coding c : {content_coding::gzip, content_coding::deflate}) {
    for (const std::string& data : inputs) {
      for (int level : {0, 1, 6, 9}) {
        const std::string coded = encode(c, data, {.level = level});
        EXPECT_EQ(decode_whole(c, coded), ok(data))
            << http::to_string(c) << " level " << level << " size " << data.size();
        if (level == 6) {
          EXPECT_EQ(decode_buffered(c, coded, 4096, 1000), ok(data));
          if (data.size() <= 300'000) {
            EXPECT_EQ(decode_bytewise(c, coded), ok(data));
          }
        }
      }
    }
  }
  const std::string text = compressible_text(1'000'000);
  EXPECT_LT(encode(content_coding::gzip, text).size(), text.size() / 4)
      << "text should compress well at the default level";
}

TEST(content_coding_round_trip, byte_at_a_time_decoding_equals_one_shot_at_every_split) {
  const std::string data = compressible_text(3'000) + trellis::test::make_bytes(500);
  for (content_coding c : {content_coding::gzip, content_coding::deflate})
    expect_all_splits(c, encode(c, data), ok(data));
}

TEST(content_encoder, encodes_piece_by_piece_into_small_buffers) {
  const std::string data = compressible_text(200'000);
  for (content_coding c : {content_coding::gzip, content_coding::deflate}) {
    content_encoder e(c);
    std::string coded;
    char buf[8];  // the smallest buffer the span API allows
    std::string_view rest = data;
    while (!rest.empty()) {
      const std::string_view piece = rest.substr(0, 777);
      std::string_view left = piece;
      for (;;) {
        const auto step = e.encode(left, buf);
        coded.append(buf, step.produced);
        left.remove_prefix(step.consumed);
        if (left.empty() && step.produced < sizeof buf) break;
      }
      rest.remove_prefix(piece.size());
    }
    while (!e.finished()) {
      const auto step = e.encode({}, buf, content_encoder::flush_mode::finish);
      coded.append(buf, step.produced);
    }
    EXPECT_EQ(e.total_in(), data.size());
    EXPECT_EQ(e.total_out(), coded.size());
    EXPECT_EQ(decode_whole(c, coded), ok(data)) << http::to_string(c);
  }
}

TEST(content_encoder, flush_makes_everything_so_far_decodable) {
  // A streamed response (server-sent events, a long poll) must reach the
  // client piece by piece even when compressed.
  content_encoder e(content_coding::gzip);
  std::string out;
  e.encode("event one\n", out);
  e.flush(out);
  content_decoder d(content_coding::gzip);
  std::string decoded;
  ASSERT_TRUE(d.decode(out, decoded));
  EXPECT_EQ(decoded, "event one\n");
  EXPECT_FALSE(d.done()) << "the stream has not ended";

  const std::size_t sent = out.size();
  e.encode("event two\n", out);
  e.flush(out);
  e.finish(out);
  ASSERT_TRUE(d.decode(std::string_view(out).substr(sent), decoded));
  EXPECT_TRUE(d.finish());
  EXPECT_EQ(decoded, "event one\nevent two\n");
}

TEST(content_encoder, rejects_bad_options_naming_them) {
  auto field_of = [](http::encoder_options o) -> std::string {
    try {
      content_encoder e(content_coding::gzip, o);
    } catch (const trellis::core::config_error& err) {
      return err.field();
    }
    return "";
  };
  EXPECT_EQ(field_of({.level = 10}), "level");
  EXPECT_EQ(field_of({.level = -1}), "level");
  EXPECT_EQ(field_of({.window_bits = 8}), "window_bits");
  EXPECT_EQ(field_of({.window_bits = 16}), "window_bits");
  EXPECT_EQ(field_of({.mem_level = 0}), "mem_level");
  EXPECT_EQ(field_of({.level = 1, .window_bits = 9, .mem_level = 1}), "");
  EXPECT_THROW(content_encoder{content_coding::identity}, std::invalid_argument);
}

TEST(content_encoder, small_window_and_mem_level_cost_less_memory_and_still_round_trip) {
  const std::string data = compressible_text(100'000);
  content_encoder big(content_coding::gzip);
  content_encoder small(content_coding::gzip, {.window_bits = 10, .mem_level = 2});
  EXPECT_GT(big.memory_bytes(), 200'000u);
  EXPECT_LT(small.memory_bytes(), big.memory_bytes() / 8);
  EXPECT_EQ(decode_whole(content_coding::gzip,
                         encode(content_coding::gzip, data, {.window_bits = 10, .mem_level = 2})),
            ok(data));
}

// --- broken streams ----------------------------------------------------------------------

TEST(content_decoder, every_truncation_is_an_error_at_finish) {
  const std::string data = compressible_text(2'000);
  struct stream {
    content_coding coding;
    std::string bytes;
  };
  const stream streams[] = {
      {content_coding::gzip, encode(content_coding::gzip, data)},
      {content_coding::deflate, encode(content_coding::deflate, data)},
      {content_coding::deflate, hello_raw},
      {content_coding::gzip, hello_gzip_named},
  };
  for (const stream& s : streams) {
    for (std::size_t len = 1; len < s.bytes.size(); ++len) {
      const std::string_view prefix = std::string_view(s.bytes).substr(0, len);
      EXPECT_EQ(decode_whole(s.coding, prefix).error, content_coding_error::truncated)
          << http::to_string(s.coding) << " cut to " << len << " of " << s.bytes.size();
    }
    // The decoder saw no error until the end of input; only finish() knows.
    content_decoder d(s.coding);
    std::string out;
    EXPECT_TRUE(d.decode(std::string_view(s.bytes).substr(0, s.bytes.size() - 1), out));
    EXPECT_FALSE(d.done());
    EXPECT_EQ(d.finish().error(), content_coding_error::truncated);
    EXPECT_EQ(d.error(), content_coding_error::truncated) << "the error is kept";
  }
}

TEST(content_decoder, an_empty_body_is_empty_unless_configured_strict) {
  for (content_coding c : {content_coding::gzip, content_coding::deflate}) {
    EXPECT_EQ(decode_whole(c, ""), ok(""));
    EXPECT_EQ(decode_whole(c, "", {.accept_empty = false}).error, content_coding_error::truncated);
  }
}

TEST(content_decoder, bad_check_values_are_corrupt_data) {
  const std::string data = compressible_text(5'000);
  // gzip ends with CRC-32 then ISIZE, 4 bytes each (RFC 1952 §2.3.1).
  const std::string gz = encode(content_coding::gzip, data);
  std::string bad_crc = gz;
  bad_crc[gz.size() - 8] ^= 0x01;
  std::string bad_size = gz;
  bad_size[gz.size() - 4] ^= 0x01;
  // zlib ends with Adler-32 (RFC 1950 §2.2).
  const std::string z = encode(content_coding::deflate, data);
  std::string bad_adler = z;
  bad_adler[z.size() - 1] ^= 0x80;
  std::string bad_header = z;
  bad_header[1] ^= 0x01;  // FCHECK no longer makes a multiple of 31: read as raw, which fails
  std::string bad_magic = gz;
  bad_magic[1] = 0x00;

  for (const auto& [coding, stream, what] :
       {std::tuple{content_coding::gzip, bad_crc, "CRC-32"},
        std::tuple{content_coding::gzip, bad_size, "ISIZE"},
        std::tuple{content_coding::gzip, bad_magic, "magic"},
        std::tuple{content_coding::deflate, bad_adler, "Adler-32"},
        std::tuple{content_coding::deflate, bad_header, "zlib header"}}) {
    EXPECT_EQ(decode_whole(coding, stream).error, content_coding_error::corrupt_data) << what;
    EXPECT_EQ(decode_bytewise(coding, stream).error, content_coding_error::corrupt_data) << what;
  }
  // Garbage from the first byte.
  EXPECT_EQ(decode_whole(content_coding::gzip, "hello world").error,
            content_coding_error::corrupt_data);
  EXPECT_EQ(decode_whole(content_coding::deflate, "\xff\xff\xff\xff").error,
            content_coding_error::corrupt_data);
}

TEST(content_decoder, errors_are_sticky) {
  content_decoder d(content_coding::gzip);
  std::string out;
  EXPECT_EQ(d.decode("not gzip", out).error(), content_coding_error::corrupt_data);
  EXPECT_EQ(d.decode(hello_gzip_named, out).error(), content_coding_error::corrupt_data);
  EXPECT_EQ(d.finish().error(), content_coding_error::corrupt_data);
  EXPECT_EQ(d.error(), content_coding_error::corrupt_data);
  d.reset();
  EXPECT_FALSE(d.error());
  out.clear();
  EXPECT_TRUE(d.decode(hello_gzip_named, out));
  EXPECT_TRUE(d.finish());
  EXPECT_EQ(out, hello);
}

TEST(content_decoder, bytes_after_the_end_are_trailing_data) {
  const std::string gz = hello_gzip_named;
  struct row {
    content_coding coding;
    std::string stream;
    const char* what;
  };
  const row rows[] = {
      {content_coding::gzip, gz + "x", "junk after a gzip member"},
      {content_coding::gzip, gz + '\0', "a NUL after a gzip member"},
      {content_coding::gzip, gz + "\x1f" + "x", "half a magic number, then junk"},
      {content_coding::gzip, gz + gz + "\n", "junk after two members"},
      {content_coding::deflate, hello_zlib + "x", "junk after a zlib stream"},
      {content_coding::deflate, hello_zlib + hello_zlib, "a second zlib stream"},
      {content_coding::deflate, hello_raw + std::string(2, '\0'), "junk after a raw stream"},
  };
  for (const row& r : rows) {
    EXPECT_EQ(decode_whole(r.coding, r.stream).error, content_coding_error::trailing_data)
        << r.what;
    EXPECT_EQ(decode_bytewise(r.coding, r.stream).error, content_coding_error::trailing_data)
        << r.what;
  }
  // The start of another member that never comes is a truncation.
  EXPECT_EQ(decode_whole(content_coding::gzip, gz + "\x1f").error, content_coding_error::truncated);
  EXPECT_EQ(decode_whole(content_coding::gzip, gz + "\x1f\x8b").error,
            content_coding_error::truncated);
}

// --- limits and memory ------------------------------------------------------------------

// 64 MiB of zeros, gzip level 9: about 64 KiB, a ratio near 1000:1. Built
// piece by piece so the test itself never holds the 64 MiB.
std::string zero_bomb(content_coding c) {
  content_encoder e(c, {.level = 9});
  const std::string zeros(1 << 20, '\0');
  std::string out;
  for (int i = 0; i < 64; ++i) e.encode(zeros, out);
  e.finish(out);
  return out;
}

TEST(content_decoder, stops_a_decompression_bomb_at_the_limit_with_bounded_memory) {
  for (content_coding c : {content_coding::gzip, content_coding::deflate}) {
    const std::string bomb = zero_bomb(c);
    ASSERT_LT(bomb.size(), 128u * 1024) << "the bomb should be small";
    constexpr std::uint64_t limit = 1 << 20;

    content_decoder d(c, {.max_output = limit});
    std::string out;
    const auto r = d.decode(bomb, out);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), content_coding_error::too_large);
    EXPECT_EQ(out.size(), limit) << "everything up to the limit was delivered";
    EXPECT_LE(out.capacity(), limit) << "no allocation beyond the limit";
    EXPECT_EQ(out.find_first_not_of('\0'), std::string::npos);
    EXPECT_EQ(d.total_out(), limit);
    // It stopped reading early: 1 MiB of zeros needs about 1 KiB of input.
    EXPECT_LT(d.total_in(), bomb.size() / 16);
    EXPECT_LT(d.memory_bytes(), 64u * 1024) << "zlib state and window only";
    EXPECT_EQ(d.finish().error(), content_coding_error::too_large);

    // The same through a fixed caller buffer, one input byte at a time.
    content_decoder small(c, {.max_output = limit});
    std::vector<char> buf(4096);
    std::uint64_t produced = 0;
    std::error_code error;
    for (std::size_t i = 0; i < bomb.size() && !error; ++i) {
      std::string_view piece = std::string_view(bomb).substr(i, 1);
      for (;;) {
        const std::uint64_t before = small.total_out();
        const auto step = small.decode(piece, buf);
        if (!step) {
          error = step.error();
          produced += small.total_out() - before;  // written before the excess byte was found
          break;
        }
        produced += step->produced;
        piece.remove_prefix(step->consumed);
        if (piece.empty() && step->produced < buf.size()) break;
      }
    }
    EXPECT_EQ(error, content_coding_error::too_large);
    EXPECT_EQ(produced, limit);
  }
}

TEST(content_decoder, the_limit_is_exact) {
  const std::string data = compressible_text(10'000);
  for (content_coding c : {content_coding::gzip, content_coding::deflate}) {
    const std::string coded = encode(c, data);
    EXPECT_EQ(decode_whole(c, coded, {.max_output = data.size()}), ok(data));
    EXPECT_EQ(decode_bytewise(c, coded, {.max_output = data.size()}), ok(data));
    EXPECT_EQ(decode_whole(c, coded, {.max_output = data.size() - 1}).error,
              content_coding_error::too_large);
    EXPECT_EQ(decode_bytewise(c, coded, {.max_output = data.size() - 1}).error,
              content_coding_error::too_large);
    EXPECT_EQ(decode_whole(c, coded, {.max_output = 0}).error, content_coding_error::too_large);
  }
  // Across gzip members the limit counts the total.
  const std::string two = hello_gzip_named + hello_gzip_named;
  EXPECT_EQ(decode_whole(content_coding::gzip, two, {.max_output = 2 * hello.size()}),
            ok(hello + hello));
  EXPECT_EQ(decode_whole(content_coding::gzip, two, {.max_output = 2 * hello.size() - 1}).error,
            content_coding_error::too_large);
}

TEST(content_decoder, identity_copies_bytes_within_the_limit) {
  EXPECT_EQ(decode_whole(content_coding::identity, "plain body"), ok("plain body"));
  EXPECT_EQ(decode_bytewise(content_coding::identity, "plain body"), ok("plain body"));
  EXPECT_EQ(decode_buffered(content_coding::identity, "plain body", 3, 2), ok("plain body"));
  EXPECT_EQ(decode_whole(content_coding::identity, "plain body", {.max_output = 10}),
            ok("plain body"));
  EXPECT_EQ(decode_whole(content_coding::identity, "plain body", {.max_output = 9}).error,
            content_coding_error::too_large);
  content_decoder d(content_coding::identity);
  EXPECT_EQ(d.memory_bytes(), 0u) << "identity needs no zlib state";
}

TEST(content_decoder, reuses_its_zlib_state_across_bodies_without_allocating) {
  const std::string data = compressible_text(100'000);
  const std::string gz = encode(content_coding::gzip, data);
  const std::string z = encode(content_coding::deflate, data);
  content_decoder d(content_coding::gzip);
  std::string out;
  ASSERT_TRUE(d.decode(gz, out));
  ASSERT_TRUE(d.finish());
  const std::size_t memory = d.memory_bytes();
  EXPECT_GT(memory, 32u * 1024) << "state and 32 KiB window";
  for (int i = 0; i < 20; ++i) {
    d.reset(i % 2 == 0 ? content_coding::deflate : content_coding::gzip);
    out.clear();
    const std::string& stream = i % 2 == 0 ? z : gz;
    if (i % 4 == 0) {
      for (char ch : stream) ASSERT_TRUE(d.decode(std::string_view(&ch, 1), out));
    } else {
      ASSERT_TRUE(d.decode(stream, out));
    }
    ASSERT_TRUE(d.finish());
    EXPECT_EQ(out, data);
    EXPECT_EQ(d.total_in(), stream.size());
    EXPECT_EQ(d.total_out(), data.size());
    EXPECT_EQ(d.memory_bytes(), memory) << "body " << i;
  }
  // An identity decoder switched to gzip allocates once, then decodes.
  content_decoder later(content_coding::identity);
  later.reset(content_coding::gzip);
  out.clear();
  ASSERT_TRUE(later.decode(gz, out));
  EXPECT_TRUE(later.finish());
  EXPECT_EQ(out, data);
}

TEST(content_encoder, reuses_its_zlib_state_across_bodies_without_allocating) {
  content_encoder e(content_coding::deflate);
  const std::size_t memory = e.memory_bytes();
  for (int i = 0; i < 5; ++i) {
    const std::string data = compressible_text(50'000 + i);
    std::string out;
    e.encode(data, out);
    e.finish(out);
    EXPECT_TRUE(e.finished());
    EXPECT_EQ(decode_whole(content_coding::deflate, out), ok(data));
    EXPECT_EQ(e.memory_bytes(), memory);
    e.reset();
    EXPECT_FALSE(e.finished());
  }
}

TEST(content_decoder, can_be_moved) {
  content_decoder a(content_coding::gzip);
  std::string out;
  ASSERT_TRUE(a.decode(std::string_view(hello_gzip_named).substr(0, 20), out));
  content_decoder b = std::move(a);
  ASSERT_TRUE(b.decode(std::string_view(hello_gzip_named).substr(20), out));
  EXPECT_TRUE(b.finish());
  EXPECT_EQ(out, hello);
}

TEST(content_encoding, accept_encoding_is_read_with_its_weights) {
  using http::accepts;
  using http::content_coding;
  EXPECT_TRUE(accepts(std::nullopt, content_coding::gzip)) << "no field: anything goes";
  EXPECT_FALSE(accepts("", content_coding::gzip)) << "an empty field: identity only";
  EXPECT_TRUE(accepts("", content_coding::identity));
  EXPECT_TRUE(accepts("gzip, deflate, br", content_coding::gzip));
  EXPECT_TRUE(accepts("GZIP", content_coding::gzip));
  EXPECT_TRUE(accepts("x-gzip", content_coding::gzip));
  EXPECT_TRUE(accepts("br;q=1.0, gzip;q=0.8, *;q=0.1", content_coding::gzip));
  EXPECT_FALSE(accepts("gzip;q=0", content_coding::gzip));
  EXPECT_FALSE(accepts("gzip;q=0.000", content_coding::gzip));
  EXPECT_TRUE(accepts("gzip;q=0.001", content_coding::gzip));
  EXPECT_FALSE(accepts("br", content_coding::gzip));
  EXPECT_TRUE(accepts("*", content_coding::gzip));
  EXPECT_FALSE(accepts("*;q=0", content_coding::gzip));
  EXPECT_TRUE(accepts("gzip;q=0.5, *;q=0", content_coding::gzip)) << "named beats *";
  EXPECT_FALSE(accepts("*, gzip;q=0", content_coding::gzip));
  EXPECT_TRUE(accepts("br", content_coding::identity)) << "identity unless refused";
  EXPECT_FALSE(accepts("identity;q=0", content_coding::identity));
  EXPECT_FALSE(accepts("*;q=0", content_coding::identity));
  EXPECT_TRUE(accepts("*;q=0, identity", content_coding::identity));
  for (const char* bad : {"gzip;q=2", "gzip;q=1.5", "gzip;q=abc", "gzip;q=", "gzip;q=0.1234",
                          "gzip;q=.5", "gzip;q=-1"})
    EXPECT_FALSE(accepts(bad, content_coding::gzip)) << bad << ": a bad weight counts as 0";
  EXPECT_TRUE(accepts("gzip ; q=1 ; level=9", content_coding::gzip));
}

}  // namespace
