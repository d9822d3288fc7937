// Response compression: gzip the answers of any handler on the way out,
// for the clients that accept it (RFC 9110 §8.4 content codings, §12.5.3
// Accept-Encoding, §12.5.5 Vary; gzip is RFC 1952).
//
// What nginx's gzip module and Envoy's compressor filter do, with their
// rules. after() compresses the response when all of these hold:
//   * the request was not HEAD, and the status is not 1xx, 204 or 304
//     (no body to compress), nor 206 or a response with Content-Range (a
//     range of the uncompressed representation);
//   * the response has no Content-Encoding yet (never stack codings) and no
//     `Cache-Control: no-transform` (RFC 9110 §7.7: an intermediary must not
//     transform such content);
//   * its Content-Type is worth compressing: http::is_compressible() (text,
//     JSON, XML, JavaScript, SVG; not images, archives or event streams),
//     or the configured list;
//   * its body is at least min_size bytes (a streamed body counts by its
//     Content-Length when the handler set one, else as large enough);
//   * the client accepts gzip (http::accepts: "gzip;q=0" refuses it, "*"
//     covers it). A request without Accept-Encoding gets no compression,
//     although RFC 9110 §12.5.3 lets a server pick any coding then: like
//     nginx and Envoy we only compress for clients that asked, since tools
//     that send no Accept-Encoding usually cannot decode gzip.
// A compressed response gets Content-Encoding: gzip, loses its
// Content-Length (the server writes the new one, or chunked framing for a
// stream), and has a strong ETag made weak (W/"x"): the gzip bytes are a
// different representation, so a strong validator of the identity bytes
// would be a lie (RFC 9110 §8.8.1), while a weak one still lets the
// handler's If-None-Match logic (weak comparison, §13.1.2) answer 304.
// Every response that could have been compressed for some client — all
// the rules above but the last — gets `Vary: Accept-Encoding` (merged into
// an existing Vary, not added next to "*"), whether or not this client got
// gzip: a shared cache must not hand the gzip bytes to a client that did
// not ask, nor the identity bytes to every client forever.
//
// A buffered body is compressed in one go, and kept uncompressed when gzip
// does not make it smaller. A streamed body (response::stream) is wrapped:
// each write() of the handler is compressed and flushed (a zlib sync
// flush) into one write below, so a streaming response stays streaming —
// a client sees each piece when the handler sends it — at a cost in ratio
// for small writes. Only gzip is produced: deflate's history (servers
// sending raw deflate, clients expecting zlib, and the reverse) makes it
// the riskier choice, and every client that takes deflate takes gzip.
//
// Thread-safety: the middleware is shared by every worker; its state is
// its immutable options. Buffered bodies are compressed with one encoder
// per worker thread (thread_local, reset between uses, so no allocation
// per response; it costs about 256 KiB per worker at the default options);
// a streamed body gets its own encoder for the life of the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/http/content_coding.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

struct compression_options {
  // Bodies smaller than this are sent as they are. Default 1024 bytes: a
  // smaller body fits in one TCP segment either way, so gzip's CPU buys no
  // saved round trip (nginx's gzip_min_length is 20 and Envoy's
  // min_content_length 30, which compress more; raise it to save CPU).
  std::size_t min_size = 1024;
  // Media types to compress ("type/subtype", or "type/*" for a whole
  // top-level type), compared case-insensitively against the
  // Content-Type's media type without parameters. Empty (the default):
  // http::is_compressible() decides.
  std::vector<std::string> content_types;
  // zlib settings (see http::encoder_options). The default level 6 is
  // zlib's; nginx defaults to 1, which costs 10-20% in size on text and
  // saves CPU on a busy gateway.
  http::encoder_options encoder;
};

// Throws core::config_error naming the field ("<prefix>.content_types[2]",
// "<prefix>.encoder.level", ...) for a media type that is not
// "type/subtype" or "type/*", or an encoder option out of range (level 1
// to 9: 0 stores without compressing, which only adds bytes).
void validate(const compression_options& options, std::string_view prefix = "compression");

// What the middleware does with one response.
enum class compression_verdict : std::uint8_t {
  compress,          // gzip it (and Vary: Accept-Encoding)
  not_accepted,      // could be compressed, but not for this client (Vary only)
  no_body,           // HEAD, 1xx, 204, 304, an upgrade
  partial,           // 206 or Content-Range
  already_encoded,   // Content-Encoding present
  no_transform,      // Cache-Control: no-transform
  not_compressible,  // Content-Type absent or not in the list
  too_small,         // body (or declared Content-Length) below min_size
  incompressible,    // apply() only: gzip was not smaller, sent as it was (Vary kept)
};

std::string_view to_string(compression_verdict v) noexcept;

// Whether a response with this verdict carries Vary: Accept-Encoding.
constexpr bool varies(compression_verdict v) noexcept {
  return v == compression_verdict::compress || v == compression_verdict::not_accepted ||
         v == compression_verdict::incompressible;
}

// The decision, as a pure function of the request method, the client's
// Accept-Encoding (all its lines joined with ", "; nullopt when absent)
// and the response. REQUIRES: options valid.
compression_verdict decide_compression(http::method method,
                                       std::optional<std::string_view> accept_encoding,
                                       const http::response& res,
                                       const compression_options& options);

class compression_middleware final : public http::middleware {
 public:
  // Throws core::config_error (see validate()).
  explicit compression_middleware(compression_options options = {});

  asio::awaitable<void> after(http::request& req, http::response& res) override;

  // What after() does to `res`, without the coroutine: decides, then
  // compresses or wraps the stream and fixes the fields. Returns the
  // verdict.
  compression_verdict apply(const http::request& req, http::response& res) const;

 private:
  compression_options options_;
};

}  // namespace trellis::gateway
