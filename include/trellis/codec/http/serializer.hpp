// serializer: the bytes of HTTP/1.1 start lines, field lines and chunk
// framing (RFC 9112 §3, §4, §5, §7.1), appended to a caller's buffer.
//
// Sans-I/O and allocation-free beyond the caller's std::string growing:
// the server and the client build each message head into one reused
// buffer and send it with one write. Field values are not checked here;
// http::fields validates them when they are set, which is where header
// injection is stopped.
//
// What a message may carry follows RFC 9110 §6.4.1 and RFC 9112 §6.3:
// 1xx, 204 and 304 responses and responses to HEAD have no body, so
// framing_for() tells the caller whether to send Content-Length, chunked
// framing, or nothing.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "trellis/codec/http/method.hpp"

namespace trellis::http {

// The reason phrase registered for `status` (RFC 9110 §15), or "" for an
// unregistered code (the phrase is optional; the line stays valid).
std::string_view reason_phrase(int status) noexcept;

// Whether a response with `status` to a request with `method` carries a
// body on the wire (RFC 9110 §6.4.1): not for 1xx, 204, 304, nor for a
// HEAD request, nor for a 2xx answer to CONNECT (a tunnel follows).
bool response_has_body(int status, method request_method) noexcept;

// "HTTP/1.1 200 OK\r\n". REQUIRES: 100 <= status <= 999.
void write_status_line(std::string& out, int status, int version_minor = 1);
// "GET /path HTTP/1.1\r\n". REQUIRES: target holds no SP, CR or LF.
void write_request_line(std::string& out, std::string_view method, std::string_view target);
// "Name: value\r\n". REQUIRES: a token name and a valid value (http::fields checks).
void write_field(std::string& out, std::string_view name, std::string_view value);
// "Content-Length: n\r\n".
void write_content_length(std::string& out, std::uint64_t n);
// The size line of a chunk of `size` bytes (> 0): "1a2b\r\n". The data and
// its closing CRLF follow (write_chunk_end).
void write_chunk_header(std::string& out, std::size_t size);
// The CRLF that closes a chunk's data.
inline void write_chunk_end(std::string& out) {
  out += "\r\n";
}
// The last chunk "0\r\n"; the caller then writes trailer fields (if any)
// with write_field and ends the message with write_end_of_head().
inline void write_last_chunk(std::string& out) {
  out += "0\r\n";
}
// The empty line that ends a head or a trailer section.
inline void write_end_of_head(std::string& out) {
  out += "\r\n";
}

}  // namespace trellis::http
