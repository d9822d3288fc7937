// json: JSON request bodies in, JSON and problem-details responses out,
// for handlers of JSON APIs (RFC 8259 JSON, RFC 6838 §4.2.8 "+json"
// media types, RFC 9457 problem details).
//
//   r.post("/v1/books", [](http::request& req, http::response& res) -> asio::awaitable<void> {
//     auto body = co_await http::read_json(req, res);   // answers 400/413/415 itself
//     if (!body) co_return;
//     ...
//     http::set_json(res, book, 201);
//   });
//
// Reading: the body must be declared JSON — Content-Type application/json
// or any type with the "+json" suffix (application/merge-patch+json,
// application/problem+json), parameters ignored — else 415 Unsupported
// Media Type. A body that is not declared JSON is refused rather than
// sniffed, because a JSON API that parses text/plain bodies can be posted
// to cross-site from an HTML form without a CORS preflight. The body is
// read up to a size limit (413 beyond), then parsed by nlohmann/json with
// exceptions off. Malformed input is answered 400 with a problem body that
// says where parsing stopped and what was expected there:
//
//   {"type":"about:blank","title":"Bad Request","status":400,
//    "detail":"malformed JSON at byte 7 (line 1, column 8): syntax error while
//              parsing object key - unexpected '}'; expected string literal",
//    "offset":7,"line":1,"column":8}                       (for {"a":1,})
//
// The message after the place is nlohmann's own; we drop its prefix and
// cap its length (it quotes the offending token). Nesting deeper than
// max_json_depth is also a 400, found by a linear pre-scan: nlohmann's
// dump() and merge_patch() recurse, so an attacker's "[[[[..." a megabyte
// deep would otherwise exhaust the stack of whatever code walks the value
// later.
//
// Writing: set_json serialises compactly (invalid UTF-8 in strings is
// replaced by U+FFFD rather than throwing) with a final newline, as
// application/json. set_problem writes an RFC 9457 body as
// application/problem+json: "type", "title", "status", "detail", plus any
// extension members. The type is always "about:blank" (RFC 9457 §4.2.1:
// the status code is the problem type), so pass the status's reason phrase
// as the title and put the specifics in the detail and extensions.
//
// Thread-safety: free functions; each call touches only its arguments.
#pragma once

#include <asio/awaitable.hpp>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "trellis/core/result.hpp"
#include "trellis/http/message.hpp"

namespace trellis::http {

enum class json_error {
  unsupported_media_type = 1,  // Content-Type is missing or not JSON (415)
  syntax,                      // not well-formed JSON (400)
  too_deep,                    // nested deeper than max_json_depth (400)
};

const std::error_category& json_category() noexcept;

inline std::error_code make_error_code(json_error e) noexcept {
  return {static_cast<int>(e), json_category()};
}

// The body size parse_json_body accepts by default: 1 MiB. Enough for any
// API document a person writes; bulk imports raise it.
inline constexpr std::size_t default_max_json_body = 1024 * 1024;

// Arrays and objects nested deeper than this are refused (json_error::too_deep).
inline constexpr std::size_t max_json_depth = 128;

// Why a body could not be read as JSON, ready to be sent as a problem.
struct json_failure {
  std::error_code code;  // json_error, http::error::body_too_large, or the body read error
  int status = 400;      // 400, 413, 415, or the status of a body read error (status_for)
  std::string title;     // the status's reason phrase: "Bad Request", "Unsupported Media Type", ...
  std::string detail;    // one sentence; for syntax errors where and what was expected
  // For json_error::syntax: the byte offset (from 0) where parsing stopped
  // — the last byte of the token the parser could not accept, or the end of
  // the input — and the same place as line and column (from 1). For
  // json_error::too_deep: the bracket that went too deep.
  std::size_t offset = 0;
  std::size_t line = 0;
  std::size_t column = 0;
};

// Whether `content_type` (a Content-Type value) is a JSON media type:
// application/json or type/subtype+json, case-insensitive, parameters ignored.
bool is_json_media_type(std::string_view content_type) noexcept;

// Parses `text` as one JSON value (surrounding whitespace allowed, nothing
// else after it). Errors: json_error::syntax, json_error::too_deep; when
// `why` is given it is filled in on failure.
result<nlohmann::json> parse_json(std::string_view text, json_failure* why = nullptr);

// Reads the request body (at most `max` bytes) and parses it. Errors:
// json_error::unsupported_media_type (checked before any body byte is
// read), http::error::body_too_large, the errors of request::read_body and
// of parse_json; when `why` is given it is filled in on failure.
asio::awaitable<result<nlohmann::json>> parse_json_body(request& req,
                                                        std::size_t max = default_max_json_body,
                                                        json_failure* why = nullptr);

// parse_json_body for handlers: on failure, fills `res` with the problem
// (set_problem(res, failure)) and returns nullopt. Hints such as
// Accept-Patch (RFC 5789 §3.1) on a 415 are the caller's to add. When the
// body could not be read to its end (too large, broken framing, too slow)
// res.close is set: what is left of it on the connection is unknown.
asio::awaitable<std::optional<nlohmann::json>> read_json(request& req, response& res,
                                                         std::size_t max = default_max_json_body);

// Sets `res` to `value` serialised as application/json with `status`.
// nlohmann::json writes object members sorted by name; ordered_json keeps
// the order they were added in ("id" first reads better).
void set_json(response& res, const nlohmann::json& value, int status = 200);
void set_json(response& res, const nlohmann::ordered_json& value, int status = 200);

// Sets `res` to an RFC 9457 problem: status, Content-Type
// application/problem+json, and {"type":"about:blank","title":...,
// "status":...,"detail":...} in that order; `detail` is left out when empty.
void set_problem(response& res, int status, std::string_view title, std::string_view detail);
// The same with extension members (REQUIRES: `extensions` is an object or
// null); they may not replace type, title, status or detail.
void set_problem(response& res, int status, std::string_view title, std::string_view detail,
                 const nlohmann::json& extensions);
// The problem for a failed read: its status, title and detail, plus
// "offset", "line" and "column" for a syntax error.
void set_problem(response& res, const json_failure& failure);

}  // namespace trellis::http

template <>
struct std::is_error_code_enum<trellis::http::json_error> : std::true_type {};
