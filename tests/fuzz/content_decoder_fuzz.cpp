// libFuzzer target: http::content_decoder on arbitrary bytes.
//
// Input: byte 0 chooses the coding (gzip, deflate or identity) and whether
// an empty body is accepted, byte 1 seeds the split pattern, byte 2 the
// caller buffer size; the rest is the coded body. It is decoded three ways
// with a small output limit — whole into a string, one byte at a time into
// a string, and in pseudo-random pieces through a small caller buffer —
// and they must agree: the same error or success, and the same output
// (on error, what was decoded before it). Output never exceeds the limit, a success means the stream
// ended, and a successful body survives a round trip through the encoder.
// Anything else traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "trellis/codec/http/content_coding.hpp"

namespace {

namespace http = trellis::http;

constexpr std::uint64_t limit = 64 * 1024;

struct outcome {
  std::string out;
  std::error_code error;
};

outcome finish(http::content_decoder& d, outcome o) {
  if (!o.error) {
    if (auto r = d.finish(); !r) {
      o.error = r.error();
    } else {
      FUZZ_CHECK(d.done() || d.coding() == http::content_coding::identity || d.total_in() == 0);
    }
  }
  FUZZ_CHECK(o.out.size() <= limit);
  FUZZ_CHECK(d.total_out() == o.out.size());
  FUZZ_CHECK(!o.error || o.error.category() == http::content_coding_category());
  FUZZ_CHECK(d.error() == o.error);
  return o;
}

outcome into_string(http::content_coding c, http::decoder_options opts, std::string_view in,
                    std::size_t piece) {
  http::content_decoder d(c, opts);
  outcome o;
  while (!in.empty() && !o.error) {
    const std::string_view p = in.substr(0, piece);
    const std::size_t before = o.out.size();
    if (auto r = d.decode(p, o.out); !r) {
      o.error = r.error();
    } else {
      FUZZ_CHECK(*r == o.out.size() - before);
    }
    in.remove_prefix(p.size());
  }
  return finish(d, std::move(o));
}

outcome through_buffer(http::content_coding c, http::decoder_options opts, std::string_view in,
                       std::uint32_t seed, std::size_t buffer_size) {
  http::content_decoder d(c, opts);
  outcome o;
  std::vector<char> buf(buffer_size);
  while (!o.error) {
    seed = seed * 1103515245u + 12345u;
    const std::string_view p = in.substr(0, (seed >> 16) % 64);
    const std::uint64_t before = d.total_out();
    const auto r = d.decode(p, buf);
    if (!r) {
      o.error = r.error();
      // What the failing call wrote before it found the error.
      FUZZ_CHECK(d.total_out() - before <= buf.size());
      o.out.append(buf.data(), static_cast<std::size_t>(d.total_out() - before));
      break;
    }
    FUZZ_CHECK(r->consumed <= p.size() && r->produced <= buf.size());
    o.out.append(buf.data(), r->produced);
    in.remove_prefix(r->consumed);
    if (in.empty() && r->produced < buf.size()) break;
  }
  return finish(d, std::move(o));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  static constexpr http::content_coding codings[] = {
      http::content_coding::gzip, http::content_coding::deflate, http::content_coding::gzip,
      http::content_coding::identity};
  const http::content_coding c = codings[data[0] & 3];
  const http::decoder_options opts{.max_output = limit, .accept_empty = (data[0] & 4) != 0};
  const std::uint32_t seed = data[1];
  const std::size_t buffer_size = 1 + data[2] % 32;
  const std::string_view body(reinterpret_cast<const char*>(data) + 3, size - 3);

  const outcome whole = into_string(c, opts, body, body.size() + 1);
  const outcome bytewise = into_string(c, opts, body, 1);
  const outcome buffered = through_buffer(c, opts, body, seed, buffer_size);
  // The same verdict and the same output (on error: what was decoded
  // before it) whatever the split.
  FUZZ_CHECK(bytewise.error == whole.error);
  FUZZ_CHECK(buffered.error == whole.error);
  FUZZ_CHECK(bytewise.out == whole.out);
  FUZZ_CHECK(buffered.out == whole.out);
  if (!whole.error) {
    if (c != http::content_coding::identity) {
      http::content_encoder e(c, {.level = 1, .window_bits = 9, .mem_level = 1});
      std::string coded;
      e.encode(whole.out, coded);
      e.finish(coded);
      FUZZ_CHECK(into_string(c, opts, coded, coded.size() + 1).out == whole.out);
    }
  }
  return 0;
}
