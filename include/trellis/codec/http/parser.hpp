// HTTP/1.1 message parser: incremental, strict, zero-copy and sans-I/O.
//
// request_parser and response_parser turn bytes into a message head (start
// line + field lines, RFC 9112 §2-§5) and then into body bytes framed by
// Content-Length, chunked coding or the end of the stream (RFC 9112 §6-§7).
// They never read a socket, never allocate after construction and never
// copy: field names, values, the target and body data are string_views into
// the caller's bytes. The head is scanned incrementally: when it is
// incomplete the parser remembers its state and where it stopped, so a
// caller that calls again with the same bytes plus more (down to one byte at
// a time) costs linear time overall, and the verdict for a byte sequence
// never depends on how it was split.
//
// Strict by default, because every leniency is a request-smuggling vector
// somewhere (RFC 9112 §11.2): Content-Length with Transfer-Encoding, differing
// or malformed Content-Length, Transfer-Encoding whose final coding is not
// chunked (in a request), chunked twice, Transfer-Encoding in HTTP/1.0,
// obs-fold, bare CR or LF, whitespace before the colon, control characters
// in values, a missing or repeated Host, chunk sizes that overflow, bare LF
// in chunk extensions, framing fields in trailers: each is an error with its
// own code (http::error) and its status (status_for()), and the connection
// must be closed after answering it. The only leniencies are two the RFCs
// ask for: up to `max_leading_empty_lines` CRLFs before a request line are
// skipped (RFC 9112 §2.2), and a status line may omit the SP before an empty
// reason phrase. Limits (parser_limits) are on by default and each gives its
// own error. Transfer codings other than chunked are not decoded: a request
// that uses one is refused with 501 (RFC 9112 §6.1); a response that uses
// one is passed through with its Transfer-Encoding field for the caller.
//
// Typical server loop (buffer: a core::byte_buffer holding the unread bytes):
//
//   switch (parser.parse_head(buffer.view())) {
//     case parse_status::need_more: read more; call again;
//     case parse_status::error: answer status_for(parser.error()); close;
//     case parse_status::done: use parser.head(); buffer.consume(parser.head_size());
//   }
//   while (!parser.body_done()) { n = parser.parse_body(buffer.view(), data);
//                                 deliver data; buffer.consume(*n); read more if n == 0; }
//   parser.reset();  // next pipelined request
//
// The views in head() and `data` point into the buffer: they stay valid as
// long as those bytes stay where they are. consume() only moves the start
// of the readable bytes, but the next prepare() may move or overwrite them,
// so copy what must outlive the next read.
//
// Thread-safety: none; a parser belongs to one connection at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

#include "trellis/codec/http/error.hpp"
#include "trellis/codec/http/method.hpp"
#include "trellis/core/result.hpp"

namespace trellis::http {

// Size limits, each enforced at the first byte that exceeds it whatever way
// the input is split. Values above 1 GiB (max_body excepted) are refused by
// the parser constructors with core::config_error.
struct parser_limits {
  // Request line (method SP target SP version, without CRLF). Beyond it:
  // error::uri_too_long (414). Default 8 KiB, as nginx; long signed URLs
  // and GraphQL GETs want more, scanners probing for overflows want less.
  std::size_t max_request_line = 8 * 1024;
  // The whole head: leading empty lines, start line, field lines and the
  // empty line ending them. Beyond it: error::header_too_large (431).
  // Default 16 KiB: room for large cookies; each connection may hold this
  // much unparsed, so a server with many connections trades memory here.
  std::size_t max_header_bytes = 16 * 1024;
  // Field lines in a head. Beyond it: error::too_many_headers (431). The
  // parser reserves this many entries at construction (48 bytes each).
  // Default 100, as Apache httpd.
  std::size_t max_header_count = 100;
  // Body bytes: the Content-Length value (checked on the head, so a server
  // answers 413 before reading), the sum of chunk sizes, or the bytes of an
  // until-close response. Beyond it: error::body_too_large (413). Default
  // 8 MiB; uploads and proxies streaming large files raise it. The parser
  // never buffers the body, so the limit protects the application, not the
  // parser.
  std::uint64_t max_body = 8 * 1024 * 1024;
  // A chunk-size line including its extensions, without CRLF. Beyond it:
  // error::bad_chunk. Default 4 KiB; extensions are rarely used and are
  // ignored, so this only bounds work spent on them.
  std::size_t max_chunk_line = 4 * 1024;
  // The trailer section after the last chunk, including its final CRLF.
  // Beyond it: error::trailer_too_large (431). Default 8 KiB.
  std::size_t max_trailer_bytes = 8 * 1024;
};

// Leading CRLFs ignored before a request line (RFC 9112 §2.2 asks for at
// least one: some clients send CRLF after a POST body). One more is
// error::bad_request_line.
inline constexpr int max_leading_empty_lines = 2;

// One field line: views into the caller's bytes. The value has its leading
// and trailing whitespace (OWS) removed; the name keeps its case.
struct header_field {
  std::string_view name;
  std::string_view value;
};

// How the body of a message is delimited (RFC 9112 §6.3).
enum class framing {
  none,            // no body (GET without framing fields, 204, 304, HEAD response, 1xx)
  content_length,  // exactly content_length bytes
  chunked,         // chunked transfer coding, then a trailer section
  until_close,     // response only: the body ends when the server closes the connection
  tunnel,          // not HTTP after the head: CONNECT, or a 101/2xx-to-CONNECT response
};

// A parsed request head. Every view points into the bytes given to
// parse_head(); they are valid while those bytes stay where they are.
struct request_head {
  http::method method = http::method::other;
  std::string_view method_text;  // the method token as received
  std::string_view target;  // origin-, absolute-, authority- (CONNECT) or asterisk-form (OPTIONS)
  int version_minor = 1;    // 1 for HTTP/1.1, 0 for HTTP/1.0
  std::span<const header_field> headers;  // in order of arrival
  std::string_view host;  // the Host value; empty if absent (allowed only in HTTP/1.0)
  http::framing framing = http::framing::none;
  std::uint64_t content_length = 0;  // the declared length; 0 without Content-Length
  bool keep_alive = true;            // 1.1 unless "Connection: close"; 1.0 only with "keep-alive"
  bool expect_continue = false;  // "Expect: 100-continue" (ignored in HTTP/1.0, RFC 9110 §10.1.1)
  bool expect_unsupported = false;  // any other Expect value: the server answers 417
  bool upgrade = false;             // HTTP/1.1, Connection lists "upgrade" and Upgrade is present

  // The value of the first field named `name` (case-insensitive), or an
  // empty view when there is none.
  std::string_view find(std::string_view name) const noexcept;
};

// A parsed response head; views as in request_head.
struct response_head {
  int status = 0;
  std::string_view reason;
  int version_minor = 1;
  std::span<const header_field> headers;
  http::framing framing = http::framing::none;
  std::uint64_t content_length = 0;  // the declared length (also for HEAD/304); 0 without one
  bool keep_alive = true;            // false also for until_close and tunnel framing

  // 1xx other than 101: the final response follows on the same connection.
  bool interim() const noexcept { return status >= 100 && status < 200 && status != 101; }
  std::string_view find(std::string_view name) const noexcept;
};

enum class parse_status {
  need_more,  // the head is incomplete: call again with the same bytes and more
  done,       // the head is complete: head() and head_size() are valid
  error,      // the message is malformed or over a limit: see error(); close after answering
};

namespace detail {

// Where one field line lies in the caller's bytes. Offsets, not pointers:
// the caller may move its bytes (grow or compact its buffer) between two
// parse_head() calls, so a head that takes several calls gets its views
// only once it is complete.
struct field_offsets {
  std::uint32_t name;
  std::uint32_t name_len;
  std::uint32_t value;
  std::uint32_t value_len;
};

// What the field lines said about framing, Host and the connection,
// gathered line by line and resolved when the head ends.
struct field_facts {
  std::uint64_t content_length = 0;
  bool has_content_length = false;
  bool has_transfer_encoding = false;
  bool te_chunked_seen = false;  // some coding so far was chunked
  bool te_chunked_last = false;  // the last coding so far is chunked
  bool te_other = false;         // a coding other than chunked
  bool te_malformed = false;     // list syntax, chunked twice, parameters on chunked
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool connection_upgrade = false;
  bool has_upgrade = false;
  bool expect_continue = false;
  bool expect_other = false;
  std::uint32_t host_count = 0;
  std::uint32_t host = 0;
  std::uint32_t host_len = 0;
};

// Everything about the message being scanned; reset() assigns a fresh one.
struct head_progress {
  std::uint32_t count = 0;                    // field lines so far
  std::uint32_t pos = 0;                      // offset where scanning resumes
  std::uint32_t mark[4] = {};                 // offsets inside the current line
  std::uint32_t start[4] = {};                // start line parts: method/target or reason
  int status = 0;                             // response status code
  http::method method = http::method::other;  // request method
  std::uint8_t state = 0;                     // where scanning resumes (parser.cpp)
  std::uint8_t step = 0;                      // sub-step: version byte, empty lines
  std::uint8_t major = 0;                     // HTTP-version digits
  std::uint8_t minor = 0;
  bool resumed = false;  // a call has returned need_more: fields are offsets
  http::error err = {};  // why parsing stopped; {} while it has not
  field_facts facts;
};

// The resumable head scanner shared by both parsers: its state between two
// parse_head() calls, the field offsets and the views handed out.
struct head_state : head_progress {
  explicit head_state(const parser_limits& limits);
  void reset() noexcept { static_cast<head_progress&>(*this) = head_progress{}; }
  std::error_code error() const noexcept {
    return err == http::error{} ? std::error_code{} : make_error_code(err);
  }

  parser_limits limits;
  std::unique_ptr<field_offsets[]> offsets;  // max_header_count entries
  std::unique_ptr<header_field[]> fields;    // max_header_count entries
};

// The body framing state machine shared by both parsers (RFC 9112 §6, §7).
class body_decoder {
 public:
  void start(framing f, std::uint64_t length) noexcept;
  // Consumes from `in`; sets `data` to at most one run of body bytes, and
  // consumes the chunk framing after it as far as `in` goes.
  result<std::size_t> decode(std::string_view in, std::string_view& data,
                             const parser_limits& limits) noexcept;
  bool done() const noexcept { return state_ == s_done; }
  bool failed() const noexcept { return state_ == s_error; }
  std::error_code error() const noexcept {
    return err_ == http::error{} ? std::error_code{} : make_error_code(err_);
  }
  // End of stream: completes an until_close body, fails a truncated one.
  http::error finish() noexcept;
  void reset() noexcept { *this = body_decoder{}; }

 private:
  enum state : std::uint8_t {
    s_idle,
    s_length,
    s_until_close,
    s_size_first,
    s_size,
    s_ext_ws,       // BWS after the size or a value: only ';' may follow
    s_ext_name_ws,  // BWS after ';'
    s_ext_name,
    s_ext_after_name_ws,  // BWS after a name: '=' or ';'
    s_ext_value_ws,       // BWS after '='
    s_ext_token,
    s_ext_quoted,
    s_ext_quoted_pair,
    s_ext_after_quoted,
    s_size_lf,
    s_data,
    s_data_cr,
    s_data_lf,
    s_trailer_start,
    s_trailer_name,
    s_trailer_value,
    s_trailer_lf,
    s_final_lf,
    s_done,
    s_error,
  };
  http::error fail(http::error e) noexcept;

  std::uint64_t remaining_ = 0;  // content_length: bytes left; chunked: bytes left in the chunk
  std::uint64_t total_ = 0;      // body bytes declared or received so far
  std::uint64_t size_ = 0;       // the chunk size being read
  std::size_t line_ = 0;         // bytes of the current chunk-size line / of the trailer section
  std::size_t name_len_ = 0;     // length of the trailer field name being read
  char name_[20] = {};           // its first bytes, lower-cased
  state state_ = s_idle;
  http::error err_ = {};
};

}  // namespace detail

// Parses requests (server side). One parser per connection, reused with
// reset() for each request; construction allocates the field table once.
class request_parser {
 public:
  // Throws core::config_error if a limit is above 1 GiB (max_body excepted).
  explicit request_parser(parser_limits limits = {});

  // Parses the head from `buffered`: every byte received and not yet
  // consumed. REQUIRES: after need_more, `buffered` starts with the bytes
  // given last time (it may live elsewhere now). Returns need_more (nothing
  // consumed, nothing to do but read), done (head() and head_size() valid;
  // done again if called again) or error (error() says which; sticky).
  parse_status parse_head(std::string_view buffered);
  // REQUIRES: the last parse_head() returned done.
  const request_head& head() const noexcept { return head_; }
  // Bytes of the head, leading empty lines and final CRLF included.
  // REQUIRES: the last parse_head() returned done.
  std::size_t head_size() const noexcept { return head_size_; }
  // The error that stopped parsing, or an empty code.
  std::error_code error() const noexcept { return body_.failed() ? body_.error() : state_.error(); }

  // Parses body bytes from `input` (bytes after the head). Returns how many
  // bytes it consumed and sets `data` to the body bytes among them (a view
  // into `input`; empty when only chunk framing was consumed). One call
  // yields at most one run of data: for chunked bodies it consumes the
  // framing around one chunk's data, so call again with the rest. Returns 0
  // when it needs more input, or when body_done(). On error the parser is
  // in error (error()); close after answering status_for(error()).
  // REQUIRES: parse_head() returned done.
  result<std::size_t> parse_body(std::string_view input, std::string_view& data);
  // The body (and trailer section) is complete; true at once for framing
  // none and tunnel.
  bool body_done() const noexcept { return body_.done(); }
  // The peer closed its side. Success when no message was started or the
  // current one is complete; error::partial_message otherwise.
  result<void> finish();
  // Forgets the message and prepares for the next one on the connection.
  // Keeps the storage: no allocation.
  void reset() noexcept;

  const parser_limits& limits() const noexcept { return state_.limits; }

 private:
  detail::head_state state_;
  detail::body_decoder body_;
  request_head head_;
  std::size_t head_size_ = 0;
};

// Parses responses (client and proxy side). expect() tells it the method of
// the request being answered, which decides the framing (HEAD, CONNECT).
class response_parser {
 public:
  explicit response_parser(parser_limits limits = {});

  // The request method the next response answers (default GET). Kept
  // across reset(), so the final response after an interim 1xx needs no
  // second call. Call it before parsing each response.
  void expect(http::method request_method) noexcept { request_method_ = request_method; }

  // As request_parser::parse_head. Framing: none for 1xx, 204, 304 and any
  // response to HEAD; tunnel for 101 and for 2xx to CONNECT; chunked when
  // Transfer-Encoding ends with chunked; until_close when it ends with
  // another coding or when neither Content-Length nor Transfer-Encoding is
  // present; content_length otherwise. An interim response (head().interim())
  // is followed by reset() and parse_head() for the next one.
  parse_status parse_head(std::string_view buffered);
  const response_head& head() const noexcept { return head_; }
  std::size_t head_size() const noexcept { return head_size_; }
  std::error_code error() const noexcept { return body_.failed() ? body_.error() : state_.error(); }

  // As request_parser::parse_body; an until_close body ends with finish().
  result<std::size_t> parse_body(std::string_view input, std::string_view& data);
  bool body_done() const noexcept { return body_.done(); }
  // The server closed the connection: completes an until_close body;
  // error::partial_message if a head or a Content-Length or chunked body
  // was cut short.
  result<void> finish();
  void reset() noexcept;

  const parser_limits& limits() const noexcept { return state_.limits; }

 private:
  detail::head_state state_;
  detail::body_decoder body_;
  response_head head_;
  std::size_t head_size_ = 0;
  http::method request_method_ = http::method::get;
};

}  // namespace trellis::http
