// Error codes of the HTTP client (http::client_error): what went wrong
// between "send this request" and "here is the response", at the step
// where it went wrong.
//
// The client reports the failures it decides itself with these codes —
// which phase ran out of time, which redirect it refused, a proxy that
// answered CONNECT with an error — so that a log line or a retry policy
// can tell "the name did not resolve" from "the server was slow to
// answer". Errors of the layers below (an OS connect error, a TLS alert,
// http::error for a malformed response, url_error for a bad URL) are
// reported with their own categories where the detail matters; these codes
// name the phase when it is all a caller needs. Every *_timeout code
// compares equal to std::errc::timed_out, so `ec == std::errc::timed_out`
// catches all of them.
//
// Thread-safety: the category is an immutable singleton; safe everywhere.
#pragma once

#include <system_error>

namespace trellis::http {

enum class client_error {
  // --- connecting ---------------------------------------------------------------
  resolve_failed = 1,    // the host name did not resolve to any address
  connect_failed,        // no address of the host accepted a TCP connection
  tls_handshake_failed,  // the TLS handshake failed (certificate, protocol, alert)
  // --- deadlines (each compares equal to std::errc::timed_out) ------------------
  resolve_timeout,     // name resolution took longer than its deadline
  connect_timeout,     // the TCP connect took longer than its deadline
  tls_timeout,         // the TLS handshake took longer than its deadline
  first_byte_timeout,  // the request was sent but no response byte came in time
  request_timeout,     // the whole exchange took longer than its total deadline
  pool_wait_timeout,   // every pooled connection to the origin stayed busy too long
  read_timeout,        // the response body stopped arriving for longer than its deadline
  // --- the response -------------------------------------------------------------
  connection_closed,   // the peer closed before a full response arrived
  response_too_large,  // the response head or body exceeded the client's limit
  // --- redirects (see http/redirect.hpp) ----------------------------------------
  too_many_redirects,  // more redirects in a row than redirect_options::max_redirects
  bad_location,        // a redirect without a Location, or one that does not resolve to a URL
  insecure_redirect,   // a redirect from https to http, not allowed by the options
  unsupported_scheme,  // a URL (or redirect target) whose scheme is not http or https
  // --- proxies and requests -----------------------------------------------------
  proxy_refused,  // the proxy answered CONNECT with a non-2xx status
  bad_url,        // the request URL is not an absolute http or https URL
};

const std::error_category& client_category() noexcept;

inline std::error_code make_error_code(client_error e) noexcept {
  return {static_cast<int>(e), client_category()};
}

}  // namespace trellis::http

template <>
struct std::is_error_code_enum<trellis::http::client_error> : std::true_type {};
