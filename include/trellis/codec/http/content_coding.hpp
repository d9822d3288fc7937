// HTTP content codings: gzip and deflate bodies, decoded and encoded
// incrementally over zlib, sans-I/O.
//
// A content coding (RFC 9110 §8.4) compresses the representation itself,
// unlike a transfer coding (chunked), which only frames it on one hop. A
// client that sent "Accept-Encoding: gzip, deflate" decodes what the
// server's Content-Encoding names; a gateway encodes responses whose media
// type compresses well. This header has the four pieces for that:
//
//   parse_content_encoding()  the Content-Encoding field (§8.4) -> a coding
//   content_decoder           gzip (§8.4.1.3, RFC 1952) and deflate
//                             (§8.4.1.2, RFC 1950, and raw RFC 1951) -> bytes
//   content_encoder           bytes -> gzip or deflate (RFC 1950)
//   is_compressible()         whether a media type is worth compressing
//
// Like the message parser, the decoder and encoder never touch a socket:
// bytes in, bytes out, in pieces of any size down to one byte, and the
// output (or the error) never depends on how the input was split. Each
// owns one zlib stream, allocated when it is constructed and kept by
// reset(), so a connection reuses it for every message; decoding allocates
// nothing per byte and nothing at all in steady state.
//
// Decompression bombs. A few kilobytes of gzip can expand to gigabytes
// (zeros compress about 1000:1; stacked codings, which
// parse_content_encoding() refuses, would multiply that). The decoder
// enforces an absolute limit on decoded bytes, decoder_options::max_output,
// as it goes: it stops with content_coding_error::too_large at the first
// byte beyond the limit, having written at most the limit and without
// reading the rest of the input (zlib reads a few bytes ahead). With the
// absolute limit checked incrementally a ratio limit (output / input) adds
// no protection, so there is none: whatever the ratio, memory is bounded
// by the limit and work by the input read plus the output allowed.
//
// Output is delivered as it is decoded, but a gzip or zlib stream proves
// its integrity only at its end (CRC-32 or Adler-32, RFC 1952 §2.3.1, RFC
// 1950 §2.2), and a cut-off stream looks fine until the input ends. A
// caller must therefore not act on a decoded body (cache it, answer from
// it) until finish() has succeeded; a proxy that streams decoded bytes on
// must abort its own response if finish() fails.
//
// Thread-safety: decoders and encoders are single-threaded objects, one per
// message stream; the free functions are pure; the error category is an
// immutable singleton.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "trellis/core/result.hpp"

namespace trellis::http {

// The codings trellis implements. identity means "no coding": the body is
// the representation itself.
enum class content_coding { identity, gzip, deflate };

enum class content_coding_error {
  unsupported_coding = 1,  // Content-Encoding names a coding not implemented, a malformed
                           // element, or more than one coding (stacked codings)
  corrupt_data,            // not a valid gzip/zlib/deflate stream: bad header, bad block, or a
                           // CRC-32 / Adler-32 / length check that fails
  truncated,               // finish() before the stream ended (a cut-off body)
  too_large,               // decoding would produce more than decoder_options::max_output bytes
  trailing_data,           // bytes after the end of the stream (gzip: after the last member)
};

const std::error_category& content_coding_category() noexcept;

inline std::error_code make_error_code(content_coding_error e) noexcept {
  return {static_cast<int>(e), content_coding_category()};
}

// The value of an Accept-Encoding field (RFC 9110 §12.5.3) naming every
// coding content_decoder can decode.
inline constexpr std::string_view accept_encoding_value = "gzip, deflate";

// The token naming `coding` in Content-Encoding and Accept-Encoding:
// "identity", "gzip" or "deflate".
std::string_view to_string(content_coding coding) noexcept;

// Parses a Content-Encoding field value (RFC 9110 §8.4): a comma-separated
// list of codings in the order they were applied, compared without regard
// to case. Empty elements and "identity" are skipped (the latter should not
// appear, §8.4.1, but means nothing if it does); "x-gzip" is gzip
// (§8.4.1.3). Returns identity for an empty or all-identity list, gzip or
// deflate when exactly one of those is listed, and
// content_coding_error::unsupported_coding for an unknown coding ("br",
// "compress", "zstd"), an element that is not a token ("gzip;q=1"), or two
// codings ("gzip, gzip", "deflate, gzip": decoding stacked codings would
// multiply the bomb ratio and no common server sends them). A message with
// several Content-Encoding lines is parsed on their values joined by ", "
// (RFC 9110 §5.3).
result<content_coding> parse_content_encoding(std::string_view field_value) noexcept;

// Whether an Accept-Encoding field value (RFC 9110 §12.5.3) accepts
// `coding`: listed by name (case-insensitive; "x-gzip" counts as gzip) with
// a weight above 0, or covered by "*" with a weight above 0 while not
// listed by name. identity is acceptable unless refused ("identity;q=0",
// or "*;q=0" without identity listed). An absent field (pass nullopt)
// accepts every coding; an empty value only identity. A malformed weight
// counts as 0 for its element, so a damaged field never turns compression
// on.
bool accepts(std::optional<std::string_view> accept_encoding, content_coding coding) noexcept;

// Whether a response of this Content-Type is worth compressing: text and
// the structured text formats (text/* except text/event-stream,
// application/json, application/javascript, application/ecmascript,
// application/xml, image/svg+xml, and any type with a +json or +xml
// suffix), compared without regard to case and ignoring parameters
// ("text/html; charset=utf-8"). False for everything else: images, audio,
// video, fonts, archives and other formats that are already compressed (a
// second compression costs CPU and saves nothing), for an empty or
// malformed value, and for text/event-stream (an event stream must reach
// the client event by event; a compressor buffers it).
bool is_compressible(std::string_view content_type) noexcept;

// What one call of decode()/encode() into a caller's buffer did.
struct coding_step {
  std::size_t consumed = 0;  // input bytes used
  std::size_t produced = 0;  // output bytes written to the front of the buffer
};

struct decoder_options {
  // Decoded bytes allowed for one stream (all gzip members together).
  // Beyond it: content_coding_error::too_large, detected at the first
  // excess byte. Default 8 MiB, as parser_limits::max_body: the decoded
  // body is what the application holds, so it gets the same bound. A
  // client downloading large files raises it (or streams the output
  // through a caller buffer and sets it to what it can store).
  std::uint64_t max_output = 8 * 1024 * 1024;
  // Whether a body of zero bytes is a valid (empty) gzip or deflate body.
  // Strictly it is not, being a stream cut off before its header; but
  // servers label empty bodies (Content-Length: 0) with the coding they use
  // for every response, and browsers and curl accept them. Default true;
  // false makes finish() on no input content_coding_error::truncated.
  bool accept_empty = true;
};

namespace detail {
struct zlib_stream;  // a z_stream and its allocation counter (content_coding.cpp)
struct zlib_stream_deleter {
  void operator()(zlib_stream* z) const noexcept;
};
using zlib_stream_ptr = std::unique_ptr<zlib_stream, zlib_stream_deleter>;
}  // namespace detail

// Decodes one coded body, incrementally. One decoder per connection (or
// per client request slot), reset() for each message.
//
//   http::content_decoder decoder(coding, {.max_output = 1 << 20});
//   std::string body;
//   for each piece of the body:  if (auto r = decoder.decode(piece, body); !r) fail(r.error());
//   if (auto r = decoder.finish(); !r) fail(r.error());  // truncated or corrupt: discard body
//
// gzip: one or more members (RFC 1952 §2.2), as gunzip decodes them; after
// the last member only the end of input may follow: any other byte is
// trailing_data (gunzip only warns; a body with junk after it is suspect).
// deflate: RFC 9110 says the zlib format (RFC 1950), but servers have long
// sent raw deflate (RFC 1951), and browsers and curl accept both; so does
// this decoder. The first two bytes decide: a zlib header (compression
// method 8, window at most 32 KiB, header check a multiple of 31) means
// zlib, anything else raw. The two cannot be confused: a raw stream's
// first byte would need to start a non-final stored block with non-zero
// padding bits, which no encoder writes. A zlib stream that asks for a
// preset dictionary is corrupt_data: HTTP has no way to agree on one.
// identity: bytes are copied, subject to max_output.
class content_decoder {
 public:
  // Allocates the zlib stream for gzip and deflate (about 7 KiB, plus a 32
  // KiB window on the first byte of output); identity allocates nothing.
  // Throws std::bad_alloc if zlib cannot allocate.
  explicit content_decoder(content_coding coding, decoder_options options = {});
  ~content_decoder();
  // A moved-from decoder may only be destroyed or assigned to.
  content_decoder(content_decoder&&) noexcept;
  content_decoder& operator=(content_decoder&&) noexcept;

  // Decodes from `in` into `out`. Returns what it consumed and produced, or
  // the error (sticky: every later call returns it; the bytes this call
  // wrote before finding it are total_out() minus its value before the
  // call, as decoding stopped there). Stops when the input is
  // used up or `out` is full; when `out` was filled (produced == out.size())
  // more output may be pending, so call again, with the input not yet
  // consumed (possibly none), until it is not. Fails with too_large as soon
  // as one byte beyond max_output is due, even with an empty `out`.
  // REQUIRES: finish() not called since construction or reset().
  result<coding_step> decode(std::string_view in, std::span<char> out);
  // Decodes all of `in` and appends the output to `out`; returns how many
  // bytes it appended. Grows `out` in steps (doubling its capacity, at least
  // 16 KiB) but never to a capacity above max_output bytes beyond the size
  // it had when the stream began. On error `out` keeps what was decoded
  // before the error (for too_large: exactly the limit).
  // REQUIRES: as above.
  result<std::size_t> decode(std::string_view in, std::string& out);
  // The input has ended. Success when the stream is complete (or was empty
  // and accept_empty); content_coding_error::truncated when it stopped
  // inside a stream or gzip member; the sticky error if decoding failed.
  // REQUIRES: the last decode() into a caller buffer did not fill it (no
  // output pending); otherwise the pending output makes this truncated.
  result<void> finish();
  // True once the stream has ended: a zlib/raw stream's final block and
  // check value, or a complete gzip member (another one may follow). For
  // identity, never true (only finish() ends it).
  bool done() const noexcept;

  // Prepares for the next body with the same coding and options: keeps the
  // zlib stream and its window, so it allocates nothing.
  void reset() noexcept;
  // The same, for a body in `coding`. Allocates the zlib stream the first
  // time a decoder constructed for identity needs one (may throw
  // std::bad_alloc); otherwise allocates nothing.
  void reset(content_coding coding);

  content_coding coding() const noexcept { return coding_; }
  const decoder_options& options() const noexcept { return options_; }
  // The error that stopped decoding, or an empty code.
  std::error_code error() const noexcept;
  // Bytes consumed and produced since construction or reset().
  std::uint64_t total_in() const noexcept { return total_in_; }
  std::uint64_t total_out() const noexcept { return total_out_; }
  // Bytes zlib holds for this decoder (state and window): what one idle
  // connection costs. Constant once the first body has been decoded.
  std::size_t memory_bytes() const noexcept;

 private:
  enum class phase : std::uint8_t {
    start,         // no byte yet
    sniff,         // deflate: one byte held in first_, deciding zlib or raw
    body,          // inside a zlib/raw stream or a gzip member
    member_gap,    // gzip: a member ended; the next byte must be 0x1f or the input must end
    member_magic,  // gzip: 0x1f seen after a member; 0x8b must follow
    done,          // zlib/raw: the stream ended; the input must end
    failed,
  };
  result<coding_step> decode_identity(std::string_view in, std::span<char> out);
  // Feeds bytes that were consumed in an earlier state (the held first
  // byte, a gzip magic number) to zlib. They never produce output.
  bool feed_header(const unsigned char* bytes, std::size_t n) noexcept;
  unexpected fail(content_coding_error e) noexcept;

  detail::zlib_stream_ptr z_;
  decoder_options options_;
  std::uint64_t total_in_ = 0;
  std::uint64_t total_out_ = 0;
  content_coding coding_;
  phase phase_ = phase::start;
  content_coding_error error_ = {};
  unsigned char first_ = 0;  // deflate: the first byte, held until the second arrives
  unsigned char probe_ = 0;  // where zlib writes the byte that proves max_output exceeded
};

struct encoder_options {
  // zlib compression level: 1 (fastest) to 9 (smallest), 0 stores without
  // compressing. Default 6, zlib's and gzip's default: close to level 9's
  // size for a fraction of its CPU. A gateway short of CPU uses 1 (nginx's
  // default), which typically costs 10-20% in size on text.
  int level = 6;
  // log2 of the history window, 9 to 15. Default 15 (32 KiB), the most
  // zlib allows. Memory per encoder is about 2^(window_bits + 2) +
  // 2^(mem_level + 9) bytes: 256 KiB at the defaults, so 10,000
  // concurrent compressed responses need 2.5 GiB. For bodies known to be
  // small, a window no larger than the body loses nothing (nginx does so).
  int window_bits = 15;
  // zlib's memLevel, 1 to 9: the size of its match index. Default 8
  // (zlib's default); lower saves memory and compresses slightly worse.
  int mem_level = 8;
};

// Encodes one body in gzip (RFC 1952, one member) or deflate (zlib format,
// RFC 1950, as RFC 9110 §8.4.1.2 specifies), incrementally. Output comes as
// zlib completes blocks; flush() forces out what is buffered (for streamed
// responses where the client must see each piece now) at a small cost in
// ratio; finish() writes the end of the stream and its check value.
//
//   http::content_encoder encoder(http::content_coding::gzip);
//   std::string out;
//   for each piece of the body: encoder.encode(piece, out);   // send `out` when large enough
//   encoder.finish(out);                                        // send the rest
class content_encoder {
 public:
  // Allocates the zlib stream (see encoder_options for its size).
  // REQUIRES: coding is gzip or deflate.
  // Throws core::config_error naming the option if one is out of range,
  // std::invalid_argument for identity, std::bad_alloc if zlib cannot
  // allocate.
  explicit content_encoder(content_coding coding, encoder_options options = {});
  ~content_encoder();
  content_encoder(content_encoder&&) noexcept;  // moved-from: destroy or assign only
  content_encoder& operator=(content_encoder&&) noexcept;

  // How much an encode() call into a caller buffer must flush.
  enum class flush_mode {
    none,   // buffer as zlib sees fit (best ratio)
    sync,   // all input so far becomes decodable output (Z_SYNC_FLUSH)
    finish  // all input, then the end of the stream and its check value
  };
  // Encodes from `in` into `out`. The call is complete when all of `in`
  // is consumed and `out` was not filled (produced < out.size()); until
  // then call again with the rest of the input and the same mode. With
  // mode finish, finished() becomes true once it is complete.
  // REQUIRES: !finished(); out.size() >= 8 (with a smaller buffer zlib may
  // repeat flush markers).
  coding_step encode(std::string_view in, std::span<char> out, flush_mode mode = flush_mode::none);

  // Encodes all of `in`, appending whatever output is ready to `out`.
  // REQUIRES: !finished().
  void encode(std::string_view in, std::string& out);
  // Appends everything buffered so far as decodable output (sync flush).
  // REQUIRES: !finished().
  void flush(std::string& out);
  // Appends the rest of the stream: buffered data, the final block and the
  // check value. Then finished() is true.
  // REQUIRES: !finished().
  void finish(std::string& out);
  bool finished() const noexcept { return finished_; }

  // Prepares for the next body with the same coding and options; keeps the
  // zlib stream and allocates nothing.
  void reset() noexcept;

  content_coding coding() const noexcept { return coding_; }
  const encoder_options& options() const noexcept { return options_; }
  std::uint64_t total_in() const noexcept;
  std::uint64_t total_out() const noexcept;
  // Bytes zlib holds for this encoder (see encoder_options).
  std::size_t memory_bytes() const noexcept;

 private:
  void encode_all(std::string_view in, std::string& out, flush_mode mode);

  detail::zlib_stream_ptr z_;
  encoder_options options_;
  content_coding coding_;
  bool finished_ = false;
};

}  // namespace trellis::http

template <>
struct std::is_error_code_enum<trellis::http::content_coding_error> : std::true_type {};
