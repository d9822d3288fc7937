// Content codings over zlib: the Content-Encoding parser, the media-type
// test, and the decoder and encoder state machines around inflate() and
// deflate().
//
// zlib does the compression work; what this file adds is HTTP's framing
// rules around it: choosing zlib or raw deflate from the first two bytes,
// gzip members one after another, nothing after the end, the output
// limit checked before each byte is written, and error codes a caller can
// act on. zlib allocates through counting functions so memory_bytes() can
// say what a stream costs.
#include "trellis/codec/http/content_coding.hpp"

// ZLIB_CONST: z_stream::next_in points to const bytes, as the input is.
#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/fields.hpp"
#include "trellis/core/error.hpp"

namespace trellis::http {

namespace detail {

// A z_stream, whether it inflates or deflates, and what zlib allocated.
struct zlib_stream {
  enum class kind : std::uint8_t { none, inflater, deflater };
  z_stream z{};
  std::size_t allocated = 0;  // bytes currently allocated by zlib for this stream
  kind k = kind::none;
};

void zlib_stream_deleter::operator()(zlib_stream* s) const noexcept {
  if (s->k == zlib_stream::kind::inflater) inflateEnd(&s->z);
  if (s->k == zlib_stream::kind::deflater) deflateEnd(&s->z);
  delete s;
}

}  // namespace detail

namespace {

using detail::zlib_stream;
using detail::zlib_stream_ptr;

// --- error category -----------------------------------------------------------

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.http.content_coding"; }
  std::string message(int v) const override {
    switch (static_cast<content_coding_error>(v)) {
      case content_coding_error::unsupported_coding: return "unsupported content coding";
      case content_coding_error::corrupt_data: return "corrupt compressed data";
      case content_coding_error::truncated: return "compressed stream truncated";
      case content_coding_error::too_large: return "decoded body exceeds the size limit";
      case content_coding_error::trailing_data:
        return "data after the end of the compressed stream";
    }
    return "unknown content coding error";
  }
};

// --- zlib plumbing -------------------------------------------------------------

// zlib's allocation hooks. Each block starts with a header recording its
// size, so the free hook can keep zlib_stream::allocated exact.
constexpr std::size_t alloc_header = alignof(std::max_align_t);

void* zlib_alloc(void* opaque, uInt items, uInt size) {
  const std::size_t n = static_cast<std::size_t>(items) * size;
  auto* block = static_cast<unsigned char*>(std::malloc(alloc_header + n));
  if (block == nullptr) return Z_NULL;
  std::memcpy(block, &n, sizeof n);
  static_cast<zlib_stream*>(opaque)->allocated += n;
  return block + alloc_header;
}

void zlib_free(void* opaque, void* address) {
  if (address == nullptr) return;
  auto* block = static_cast<unsigned char*>(address) - alloc_header;
  std::size_t n = 0;
  std::memcpy(&n, block, sizeof n);
  static_cast<zlib_stream*>(opaque)->allocated -= n;
  std::free(block);
}

zlib_stream_ptr new_stream() {
  zlib_stream_ptr s(new zlib_stream);
  s->z.zalloc = zlib_alloc;
  s->z.zfree = zlib_free;
  s->z.opaque = s.get();
  return s;
}

// windowBits for inflateInit2/inflateReset2: 15 + 16 asks for the gzip
// wrapper only, 15 for the zlib wrapper, -15 for raw deflate; 15 means a
// 32 KiB window, the largest any stream may use.
constexpr int gzip_window_bits = 15 + 16;
constexpr int zlib_window_bits = 15;
constexpr int raw_window_bits = -15;

zlib_stream_ptr new_inflater() {
  zlib_stream_ptr s = new_stream();
  const int rc = inflateInit2(&s->z, gzip_window_bits);
  if (rc == Z_MEM_ERROR) throw std::bad_alloc();
  if (rc != Z_OK) throw std::logic_error("inflateInit2 failed: " + std::to_string(rc));
  s->k = zlib_stream::kind::inflater;
  return s;
}

// zlib counts in uInt (32 bits): longer spans go through it in pieces.
constexpr std::size_t max_zlib_chunk = std::size_t{1} << 30;

std::size_t clamp_chunk(std::size_t n) noexcept {
  return std::min(n, max_zlib_chunk);
}

// RFC 1950 §2.2: CMF (method 8 = deflate, CINFO = log2(window) - 8 <= 7)
// and FLG, whose check bits make CMF*256 + FLG a multiple of 31.
bool is_zlib_header(unsigned char cmf, unsigned char flg) noexcept {
  return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
}

constexpr unsigned char gzip_magic[2] = {0x1f, 0x8b};  // RFC 1952 §2.3.1 ID1, ID2

// The string APIs let zlib write into the string's spare capacity, which
// resize() must first fill with zeros: they expose at most this much of it
// at a time, so a caller who reserved a large string does not pay for
// zeroing all of it on every call.
constexpr std::size_t max_string_step = 64 * 1024;

// Gives `s` a capacity of exactly `capacity` bytes (> its size).
// std::string::reserve may round a request up to twice the old capacity
// (libstdc++ does), which would let the decoded body's buffer pass the
// limit; a fresh string's reserve is exact, so the bytes move into one.
void grow_exactly(std::string& s, std::size_t capacity) {
  std::string bigger;
  bigger.reserve(capacity);
  bigger.append(s);
  s.swap(bigger);
}

bool ends_with_ci(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && codec::iequals(s.substr(s.size() - suffix.size()), suffix);
}

}  // namespace

const std::error_category& content_coding_category() noexcept {
  static const category instance;
  return instance;
}

// --- field values and media types --------------------------------------------

std::string_view to_string(content_coding coding) noexcept {
  switch (coding) {
    case content_coding::identity: return "identity";
    case content_coding::gzip: return "gzip";
    case content_coding::deflate: return "deflate";
  }
  return "identity";
}

result<content_coding> parse_content_encoding(std::string_view field_value) noexcept {
  content_coding found = content_coding::identity;
  bool have_one = false;
  while (!field_value.empty()) {
    const std::size_t comma = field_value.find(',');
    const std::string_view element = codec::trim_ows(field_value.substr(0, comma));
    field_value.remove_prefix(comma == std::string_view::npos ? field_value.size() : comma + 1);
    if (element.empty()) continue;  // RFC 9110 §5.6.1: empty elements are allowed
    if (!is_field_name(element)) return unexpected(content_coding_error::unsupported_coding);
    content_coding c;
    if (codec::iequals(element, "identity")) continue;
    if (codec::iequals(element, "gzip") || codec::iequals(element, "x-gzip")) {
      c = content_coding::gzip;
    } else if (codec::iequals(element, "deflate")) {
      c = content_coding::deflate;
    } else {
      return unexpected(content_coding_error::unsupported_coding);
    }
    if (have_one) return unexpected(content_coding_error::unsupported_coding);
    found = c;
    have_one = true;
  }
  return found;
}

namespace {

// The weight of an Accept-Encoding element's parameters (";q=0.5"): 1000
// for none, 0..1000 for a valid qvalue (RFC 9110 §12.4.2: "0", "0.xyz",
// "1", "1.000"), 0 for a malformed one.
int weight_of(std::string_view params) noexcept {
  int weight = 1000;
  while (!params.empty()) {
    const auto semi = params.find(';');
    const std::string_view p = codec::trim_ows(params.substr(0, semi));
    params.remove_prefix(semi == std::string_view::npos ? params.size() : semi + 1);
    if (p.size() < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=') continue;
    const std::string_view v = p.substr(2);
    if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1')) return 0;
    if (v.size() > 1 && v[1] != '.') return 0;
    int w = (v[0] - '0') * 1000;
    int scale = 100;
    for (std::size_t i = 2; i < v.size(); ++i, scale /= 10) {
      if (v[i] < '0' || v[i] > '9') return 0;
      w += (v[i] - '0') * scale;
    }
    if (w > 1000) return 0;
    weight = w;
  }
  return weight;
}

}  // namespace

bool accepts(std::optional<std::string_view> accept_encoding, content_coding coding) noexcept {
  if (!accept_encoding) return true;
  const std::string_view name = to_string(coding);
  int named = -1, star = -1;  // -1: not listed
  std::string_view list = *accept_encoding;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view element = list.substr(0, comma);
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    const auto semi = element.find(';');
    const std::string_view token = codec::trim_ows(element.substr(0, semi));
    const int w = weight_of(semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1));
    if (codec::iequals(token, name) ||
        (coding == content_coding::gzip && codec::iequals(token, "x-gzip")))
      named = std::max(named, w);
    else if (token == "*")
      star = std::max(star, w);
  }
  if (named >= 0) return named > 0;
  if (star >= 0) return star > 0;
  return coding == content_coding::identity;
}

bool is_compressible(std::string_view content_type) noexcept {
  const std::string_view media = codec::trim_ows(content_type.substr(0, content_type.find(';')));
  const std::size_t slash = media.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view type = media.substr(0, slash);
  const std::string_view subtype = media.substr(slash + 1);
  if (!is_field_name(type) || !is_field_name(subtype)) return false;  // RFC 9110 §8.3.1

  if (codec::iequals(type, "text")) return !codec::iequals(subtype, "event-stream");
  // Structured syntax suffixes (RFC 6839): application/problem+json,
  // image/svg+xml, application/atom+xml...
  if (ends_with_ci(subtype, "+json") || ends_with_ci(subtype, "+xml")) return true;
  if (codec::iequals(type, "application")) {
    for (std::string_view s : {"json", "javascript", "x-javascript", "ecmascript", "xml"})
      if (codec::iequals(subtype, s)) return true;
  }
  return false;
}

// --- content_decoder -----------------------------------------------------------

content_decoder::content_decoder(content_coding coding, decoder_options options)
    : options_(options), coding_(coding) {
  if (coding != content_coding::identity) z_ = new_inflater();
}

content_decoder::~content_decoder() = default;
content_decoder::content_decoder(content_decoder&&) noexcept = default;
content_decoder& content_decoder::operator=(content_decoder&&) noexcept = default;

void content_decoder::reset() noexcept {
  if (z_)
    inflateReset2(&z_->z, coding_ == content_coding::gzip ? gzip_window_bits : zlib_window_bits);
  total_in_ = 0;
  total_out_ = 0;
  phase_ = phase::start;
  error_ = {};
  first_ = 0;
}

void content_decoder::reset(content_coding coding) {
  if (coding != content_coding::identity && !z_) z_ = new_inflater();
  coding_ = coding;
  reset();
}

std::error_code content_decoder::error() const noexcept {
  return phase_ == phase::failed ? make_error_code(error_) : std::error_code{};
}

std::size_t content_decoder::memory_bytes() const noexcept {
  return z_ ? z_->allocated : 0;
}

bool content_decoder::done() const noexcept {
  return phase_ == phase::done || phase_ == phase::member_gap;
}

unexpected content_decoder::fail(content_coding_error e) noexcept {
  phase_ = phase::failed;
  error_ = e;
  return unexpected(e);
}

bool content_decoder::feed_header(const unsigned char* bytes, std::size_t n) noexcept {
  z_stream& z = z_->z;
  z.next_in = bytes;
  z.avail_in = static_cast<uInt>(n);
  z.next_out = &probe_;
  z.avail_out = 0;  // header bytes produce no output; zlib still parses them
  const int rc = inflate(&z, Z_NO_FLUSH);
  return (rc == Z_OK || rc == Z_BUF_ERROR) && z.avail_in == 0;
}

result<coding_step> content_decoder::decode_identity(std::string_view in, std::span<char> out) {
  const std::uint64_t allowed = options_.max_output - std::min(options_.max_output, total_out_);
  std::size_t n = std::min(in.size(), out.size());
  if (n > allowed) n = static_cast<std::size_t>(allowed);
  if (n > 0) std::memcpy(out.data(), in.data(), n);
  total_in_ += n;
  total_out_ += n;
  // Every input byte is an output byte: one left over once the limit is
  // reached is one too many.
  if (n < in.size() && n == allowed) return fail(content_coding_error::too_large);
  return coding_step{n, n};
}

result<coding_step> content_decoder::decode(std::string_view in, std::span<char> out) {
  if (phase_ == phase::failed) return unexpected(error_);
  if (coding_ == content_coding::identity) return decode_identity(in, out);

  z_stream& z = z_->z;
  auto* next = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t left = in.size();
  coding_step step;
  auto take = [&](std::size_t n) {
    next += n;
    left -= n;
    step.consumed += n;
    total_in_ += n;
  };

  for (;;) {
    switch (phase_) {
      case phase::start:
        if (left == 0) return step;
        if (coding_ == content_coding::gzip) {
          phase_ = phase::body;
        } else {
          first_ = *next;
          take(1);
          phase_ = phase::sniff;
        }
        continue;

      case phase::sniff:
        if (left == 0) return step;
        inflateReset2(&z, is_zlib_header(first_, *next) ? zlib_window_bits : raw_window_bits);
        phase_ = phase::body;
        if (!feed_header(&first_, 1)) return fail(content_coding_error::corrupt_data);
        continue;

      case phase::member_gap:
        if (left == 0) return step;
        if (*next != gzip_magic[0]) return fail(content_coding_error::trailing_data);
        take(1);
        phase_ = phase::member_magic;
        continue;

      case phase::member_magic:
        if (left == 0) return step;
        if (*next != gzip_magic[1]) return fail(content_coding_error::trailing_data);
        take(1);
        // Another member (RFC 1952 §2.2): a fresh gzip stream whose magic
        // number has already been read. inflateReset keeps the window.
        inflateReset(&z);
        phase_ = phase::body;
        if (!feed_header(gzip_magic, 2)) return fail(content_coding_error::corrupt_data);
        continue;

      case phase::done:
        if (left == 0) return step;
        return fail(content_coding_error::trailing_data);

      case phase::failed: return unexpected(error_);

      case phase::body: break;
    }

    // Inside a stream: inflate into the caller's buffer, but never past the
    // limit. Once the limit is reached, zlib gets a one-byte scratch buffer
    // instead: if it writes there, the stream has more output than allowed.
    const std::uint64_t allowed = options_.max_output - std::min(options_.max_output, total_out_);
    const std::size_t room = out.size() - step.produced;
    const bool probing = allowed == 0;
    unsigned char* dst;
    std::size_t cap;
    if (probing) {
      dst = &probe_;
      cap = 1;
    } else {
      if (room == 0) return step;  // the caller's buffer is full: output may be pending
      dst = reinterpret_cast<unsigned char*>(out.data() + step.produced);
      cap = clamp_chunk(static_cast<std::size_t>(std::min<std::uint64_t>(room, allowed)));
    }
    const std::size_t in_chunk = clamp_chunk(left);
    z.next_in = next;
    z.avail_in = static_cast<uInt>(in_chunk);
    z.next_out = dst;
    z.avail_out = static_cast<uInt>(cap);
    const int rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t used = in_chunk - z.avail_in;
    const std::size_t made = cap - z.avail_out;
    take(used);
    if (probing && made > 0) return fail(content_coding_error::too_large);
    if (!probing) {
      step.produced += made;
      total_out_ += made;
    }

    switch (rc) {
      case Z_STREAM_END:
        phase_ = coding_ == content_coding::gzip ? phase::member_gap : phase::done;
        continue;
      case Z_OK:
      case Z_BUF_ERROR:  // no progress possible: needs input (or output space)
        if (used == 0 && made == 0) return step;
        // inflate stops when the input is used up or the output space is;
        // with space left it has nothing more to give until more input.
        if (z.avail_out != 0 && left == 0) return step;
        continue;
      case Z_MEM_ERROR: throw std::bad_alloc();  // the window, on the first output
      default:  // Z_DATA_ERROR, Z_NEED_DICT (preset dictionaries have no place in HTTP)
        return fail(content_coding_error::corrupt_data);
    }
  }
}

result<std::size_t> content_decoder::decode(std::string_view in, std::string& out) {
  std::size_t appended = 0;
  for (;;) {
    const std::size_t size = out.size();
    if (out.capacity() == size) {
      // Grow geometrically (at least 16 KiB), but not beyond what the
      // limit allows: with nothing allowed the span stays empty and the
      // decoder probes for an excess byte on its own.
      const std::uint64_t allowed = options_.max_output - std::min(options_.max_output, total_out_);
      const std::size_t want = std::max(size, std::size_t{16 * 1024});
      const std::size_t grow = static_cast<std::size_t>(std::min<std::uint64_t>(want, allowed));
      if (grow > 0) grow_exactly(out, size + grow);
    }
    out.resize(size + std::min(out.capacity() - size, max_string_step));
    const std::span<char> space(out.data() + size, out.size() - size);
    const std::uint64_t before = total_out_;
    const auto step = decode(in, space);
    if (!step) {
      out.resize(size + static_cast<std::size_t>(total_out_ - before));
      return unexpected(step.error());
    }
    out.resize(size + step->produced);
    appended += step->produced;
    in.remove_prefix(step->consumed);
    // A buffer that was not filled means all input is consumed and no
    // output is pending.
    if (step->produced < space.size() || space.empty()) {
      assert(in.empty());
      return appended;
    }
  }
}

result<void> content_decoder::finish() {
  switch (phase_) {
    case phase::failed: return unexpected(error_);
    case phase::done:
    case phase::member_gap: return {};
    case phase::start:
      if (coding_ == content_coding::identity || options_.accept_empty) return {};
      return fail(content_coding_error::truncated);
    case phase::body:
      if (coding_ == content_coding::identity) return {};
      return fail(content_coding_error::truncated);
    case phase::sniff:
    case phase::member_magic: return fail(content_coding_error::truncated);
  }
  return fail(content_coding_error::truncated);
}

// --- content_encoder -----------------------------------------------------------

content_encoder::content_encoder(content_coding coding, encoder_options options)
    : options_(options), coding_(coding) {
  if (coding == content_coding::identity)
    throw std::invalid_argument("content_encoder: identity is not a compression coding");
  if (options.level < 0 || options.level > 9)
    throw core::config_error("level", "must be 0 to 9, not " + std::to_string(options.level));
  if (options.window_bits < 9 || options.window_bits > 15)
    throw core::config_error("window_bits",
                             "must be 9 to 15, not " + std::to_string(options.window_bits));
  if (options.mem_level < 1 || options.mem_level > 9)
    throw core::config_error("mem_level",
                             "must be 1 to 9, not " + std::to_string(options.mem_level));
  z_ = new_stream();
  // +16 asks zlib for the gzip wrapper (header, CRC-32, ISIZE) instead of
  // the zlib one (header, Adler-32).
  const int bits = coding == content_coding::gzip ? options.window_bits + 16 : options.window_bits;
  const int rc =
      deflateInit2(&z_->z, options.level, Z_DEFLATED, bits, options.mem_level, Z_DEFAULT_STRATEGY);
  if (rc == Z_MEM_ERROR) throw std::bad_alloc();
  if (rc != Z_OK) throw std::logic_error("deflateInit2 failed: " + std::to_string(rc));
  z_->k = zlib_stream::kind::deflater;
}

content_encoder::~content_encoder() = default;
content_encoder::content_encoder(content_encoder&&) noexcept = default;
content_encoder& content_encoder::operator=(content_encoder&&) noexcept = default;

void content_encoder::reset() noexcept {
  deflateReset(&z_->z);
  finished_ = false;
}

std::uint64_t content_encoder::total_in() const noexcept {
  return z_->z.total_in;
}
std::uint64_t content_encoder::total_out() const noexcept {
  return z_->z.total_out;
}
std::size_t content_encoder::memory_bytes() const noexcept {
  return z_->allocated;
}

coding_step content_encoder::encode(std::string_view in, std::span<char> out, flush_mode mode) {
  assert(!finished_);
  z_stream& z = z_->z;
  coding_step step;
  for (;;) {
    const std::size_t in_chunk = clamp_chunk(in.size() - step.consumed);
    const std::size_t out_chunk = clamp_chunk(out.size() - step.produced);
    // The flush applies once the last of the input is in zlib's hands.
    const bool last_in = in_chunk == in.size() - step.consumed;
    int flush = Z_NO_FLUSH;
    if (last_in && mode == flush_mode::sync) flush = Z_SYNC_FLUSH;
    if (last_in && mode == flush_mode::finish) flush = Z_FINISH;
    z.next_in = reinterpret_cast<const unsigned char*>(in.data() + step.consumed);
    z.avail_in = static_cast<uInt>(in_chunk);
    z.next_out = reinterpret_cast<unsigned char*>(out.data() + step.produced);
    z.avail_out = static_cast<uInt>(out_chunk);
    const int rc = deflate(&z, flush);
    step.consumed += in_chunk - z.avail_in;
    step.produced += out_chunk - z.avail_out;
    if (rc == Z_STREAM_END) {
      finished_ = true;
      return step;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw std::logic_error("deflate failed: " + std::to_string(rc));
    if (step.produced == out.size()) return step;  // out is full: call again
    if (last_in && z.avail_in == 0) return step;   // everything in, flush complete
  }
}

void content_encoder::encode_all(std::string_view in, std::string& out, flush_mode mode) {
  for (;;) {
    const std::size_t size = out.size();
    // Leave zlib room to finish a flush in one go (it wants more than 6
    // bytes), growing geometrically.
    if (out.capacity() - size < 64) out.reserve(size + std::max(size, std::size_t{16 * 1024}));
    out.resize(size + std::min(out.capacity() - size, max_string_step));
    const std::span<char> space(out.data() + size, out.size() - size);
    const coding_step step = encode(in, space, mode);
    out.resize(size + step.produced);
    in.remove_prefix(step.consumed);
    if (mode == flush_mode::finish ? finished_ : (in.empty() && step.produced < space.size()))
      return;
  }
}

void content_encoder::encode(std::string_view in, std::string& out) {
  encode_all(in, out, flush_mode::none);
}

void content_encoder::flush(std::string& out) {
  encode_all({}, out, flush_mode::sync);
}

void content_encoder::finish(std::string& out) {
  encode_all({}, out, flush_mode::finish);
}

}  // namespace trellis::http
