// Redirect policy for the HTTP client: given a request and the 3xx response
// it got, whether to follow and what the next request looks like
// (RFC 9110 §15.4, §10.2.2; the method rewriting of the Fetch standard
// that browsers follow).
//
// A pure function, no I/O: the client calls it after every response and
// either returns the response to its caller (redirect_action::none), sends
// the next request it describes (redirect_action::follow), or fails with
// the client_error it gives. The rules:
//
//   301, 302  POST becomes GET without a body (what browsers do, and what
//             RFC 9110 §15.4.2-3 notes user agents may do); other methods
//             are kept with their body.
//   303       any method but HEAD becomes GET without a body (§15.4.4).
//   307, 308  method and body are kept (§15.4.8-9): the caller must be able
//             to send the body again.
//   other 3xx (300, 304, 305, 306) are not redirects: 304 answers a
//             conditional request, 300 asks the user to choose, 305 is
//             deprecated for security reasons (§15.4.6).
//
// The Location value is resolved against the current URL with
// resolve_reference (RFC 3986 §5.2; a Location without a fragment keeps
// the current one, RFC 9110 §10.2.2). Only http and https targets are
// followed; an https -> http hop is refused unless the options allow it
// (it would send the request, and what it carries, in clear text). When a
// hop leaves the origin (scheme, host and port: url::origin()),
// credentials stay behind: Authorization, Cookie and Proxy-Authorization
// are removed and so is the userinfo of the new URL, as curl and browsers
// do, so a redirect cannot make the client hand a token to another host.
// A Cookie the client's cookie jar (if any) computes for the new URL is the
// caller's to add. The Host header is always removed: the caller sets it
// from next.target.authority() as it does for any request.
//
// Thread-safety: pure functions over values; safe everywhere.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "trellis/codec/http/fields.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/core/result.hpp"
#include "trellis/http/client_error.hpp"

namespace trellis::http {

struct redirect_options {
  // Follow redirects at all. Default off, as curl does: a reverse proxy or
  // gateway built on the client must pass a 3xx back to its own client
  // untouched, and following is something an application opts into.
  bool follow = false;
  // Redirects followed for one request before client_error::
  // too_many_redirects. Default 10 (Go's; browsers allow 20). Loops
  // ("/a" -> "/b" -> "/a") end here. 0 with follow on makes every redirect
  // an error.
  std::size_t max_redirects = 10;
  // Follow an https -> http redirect. Default off: the next request, its
  // body and its headers would travel unencrypted, and an attacker who can
  // forge one response could downgrade the rest of the exchange.
  bool allow_https_to_http = false;
};

// A request as the redirect policy sees it: what a redirect may change.
struct redirect_request {
  std::string method = "GET";  // as sent on the wire; case-sensitive (RFC 9110 §9.1)
  url target;                  // the URL requested; the base Location is resolved against
  fields headers;              // the fields the client sends, framing fields included
  bool has_body = false;       // whether a body is sent with it
};

enum class redirect_action {
  none,    // not a redirect, or redirects are off: the response is the answer
  follow,  // send `next`
};

struct redirect_decision {
  redirect_action action = redirect_action::none;
  // For redirect_action::follow: the next request. Its headers are the
  // current ones minus those the rules above remove (body fields when the
  // body is dropped, credentials across origins, Host always). has_body
  // true means "send the same body again".
  redirect_request next;
  // For redirect_action::follow: whether the hop left the origin, so that a
  // caller that adds headers of its own (credentials from its
  // configuration) knows to leave them out.
  bool cross_origin = false;
};

// Whether `status` is one of the redirects this policy follows: 301, 302,
// 303, 307, 308.
constexpr bool is_followed_redirect(int status) noexcept {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Decides what to do with the response `status` (carrying `location`, the
// value of its Location field, nullopt when it has none) to `current`,
// after `redirects_followed` redirects have already been followed for it.
// Returns redirect_action::none when the status is not a followed redirect
// or options.follow is off. Otherwise the checks, in this order, give:
//   client_error::bad_location        no Location, an empty one, or one
//                                     resolve_reference refuses (call it
//                                     yourself for the url_error detail);
//   client_error::unsupported_scheme  the target is not http or https;
//   client_error::insecure_redirect   https -> http without
//                                     allow_https_to_http;
//   client_error::too_many_redirects  redirects_followed >= max_redirects.
// REQUIRES: `current.target` is a parse_url result. When the response has
// more than one Location field line, the caller passes nullopt (the
// redirect is then malformed) rather than picking one.
result<redirect_decision> decide_redirect(const redirect_request& current, int status,
                                          std::optional<std::string_view> location,
                                          std::size_t redirects_followed,
                                          const redirect_options& options);

}  // namespace trellis::http
