// HTTP request methods (RFC 9110 §9).
//
// The eight methods RFC 9110 defines plus PATCH (RFC 5789) get an enum
// value; any other token is method::other, and the request keeps its text
// (request_head::method_text). Method names are case-sensitive (RFC 9110
// §9.1): "get" is not GET, it is some other method. is_safe() and
// is_idempotent() give the properties of RFC 9110 §9.2.1 and §9.2.2, which
// decide what a client may retry and what a cache or prefetcher may send on
// its own; method::other is neither, because nothing is known about it.
//
// Thread-safety: pure functions over values; safe everywhere.
#pragma once

#include <string_view>

namespace trellis::http {

enum class method {
  get,
  head,
  post,
  put,
  delete_,
  connect,
  options,
  trace,
  patch,
  other,  // a valid token that is none of the above
};

// The method named by `token`, compared case-sensitively; method::other for
// any other text. REQUIRES: nothing (whether `token` is a valid token is the
// parser's business, not this lookup's).
constexpr method parse_method(std::string_view token) noexcept {
  switch (token.size()) {
    case 3:
      if (token == "GET") return method::get;
      if (token == "PUT") return method::put;
      break;
    case 4:
      if (token == "POST") return method::post;
      if (token == "HEAD") return method::head;
      break;
    case 5:
      if (token == "PATCH") return method::patch;
      if (token == "TRACE") return method::trace;
      break;
    case 6:
      if (token == "DELETE") return method::delete_;
      break;
    case 7:
      if (token == "OPTIONS") return method::options;
      if (token == "CONNECT") return method::connect;
      break;
    default: break;
  }
  return method::other;
}

// The method's name as sent on the wire ("DELETE" for method::delete_);
// an empty view for method::other, whose text only the request knows.
constexpr std::string_view to_string(method m) noexcept {
  switch (m) {
    case method::get: return "GET";
    case method::head: return "HEAD";
    case method::post: return "POST";
    case method::put: return "PUT";
    case method::delete_: return "DELETE";
    case method::connect: return "CONNECT";
    case method::options: return "OPTIONS";
    case method::trace: return "TRACE";
    case method::patch: return "PATCH";
    case method::other: return {};
  }
  return {};
}

// RFC 9110 §9.2.1: read-only by definition (GET, HEAD, OPTIONS, TRACE).
constexpr bool is_safe(method m) noexcept {
  return m == method::get || m == method::head || m == method::options || m == method::trace;
}

// RFC 9110 §9.2.2: the safe methods plus PUT and DELETE. A client may retry
// these automatically after a connection failure.
constexpr bool is_idempotent(method m) noexcept {
  return is_safe(m) || m == method::put || m == method::delete_;
}

}  // namespace trellis::http
