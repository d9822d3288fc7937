// Error codes of the HTTP/1.1 codec (http::error), and the status a server
// answers each one with.
//
// Every way a message can be malformed, ambiguous or too large for the
// limits has its own code, so a log line or a test says exactly what was
// wrong ("content_length_with_transfer_encoding", not "bad request"). After
// any of them the connection must be closed: the framing of what follows is
// unknown (RFC 9112 §6.3, §11.2). status_for() maps a code to the status a
// server sends before closing: 400 for malformed requests (RFC 9112 §3, §5,
// §6.3), 413, 414 and 431 for limits (RFC 9110 §15.5.14, §15.5.15, RFC 6585
// §5), 501 for a transfer coding trellis does not implement (RFC 9112 §6.1),
// 505 for an HTTP version other than 1.0 and 1.1 (RFC 9110 §15.6.6).
//
// Thread-safety: the category is an immutable singleton; safe everywhere.
#pragma once

#include <system_error>

namespace trellis::http {

enum class error {
  // --- start line -----------------------------------------------------------
  bad_request_line = 1,  // request line lacks a part, ends early, or follows too many empty lines
  bad_method,            // method is empty or not a token (RFC 9110 §9.1)
  bad_target,   // request-target empty, has SP/CTL/non-ASCII, or the wrong form for the method
  bad_version,  // HTTP-version is malformed ("HTTP/1.x", "http/1.1", "HTTP/1.1 ")
  unsupported_version,  // well-formed but neither HTTP/1.0 nor HTTP/1.1 ("HTTP/2.0", "HTTP/1.2")
  bad_status_line,      // response status line malformed, or status outside 100..599
  uri_too_long,         // request line longer than parser_limits::max_request_line
  // --- field lines ----------------------------------------------------------
  bare_cr,                  // CR not followed by LF
  bare_lf,                  // LF not preceded by CR (lines end with CRLF only)
  obs_fold,                 // a field line starts with SP or HTAB (obsolete line folding)
  bad_field_name,           // field name empty, not a token, or no colon on the line
  whitespace_before_colon,  // "Name : value" (RFC 9112 §5.1 MUST reject)
  bad_field_value,          // a control character (other than HTAB) or DEL in a field value
  header_too_large,         // head longer than parser_limits::max_header_bytes
  too_many_headers,         // more than parser_limits::max_header_count field lines
  missing_host,             // HTTP/1.1 request without Host (RFC 9112 §3.2)
  duplicate_host,           // more than one Host field line
  bad_host,                 // Host value is not uri-host [":" port]
  // --- framing --------------------------------------------------------------
  bad_content_length,          // not 1*DIGIT (sign, inner space, letters), overflow, bad list
  conflicting_content_length,  // Content-Length values that differ ("5, 6", or two lines)
  content_length_with_transfer_encoding,  // both present: the classic smuggling vector
  bad_transfer_encoding,          // chunked not final (request), chunked twice, in HTTP/1.0, syntax
  unsupported_transfer_encoding,  // a coding other than chunked (gzip, identity...): not decoded
  body_too_large,                 // declared or chunked total above parser_limits::max_body
  // --- chunked body ---------------------------------------------------------
  bad_chunk,            // chunk size not hex, overflows, line too long, or no CRLF after the data
  bad_chunk_extension,  // chunk-ext not ;name[=token|quoted-string] (RFC 9112 §7.1.1)
  bad_trailer,        // trailer field malformed, or one that must not be a trailer (framing, Host)
  trailer_too_large,  // trailer section longer than parser_limits::max_trailer_bytes
  partial_message,    // the stream ended inside a message (truncated head or body)
};

const std::error_category& http_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), http_category()};
}

// The status a server answers with before closing the connection after `ec`:
// 400, 413, 414, 431, 501, 505 as listed above; 502 for bad_status_line (only
// a response can cause it, and a proxy answers its client 502 then). Codes of
// other categories (and an empty code) give 500.
int status_for(std::error_code ec) noexcept;

}  // namespace trellis::http

template <>
struct std::is_error_code_enum<trellis::http::error> : std::true_type {};
