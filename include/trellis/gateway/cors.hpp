// cors: the server side of the CORS protocol (Fetch standard, "CORS
// protocol", https://fetch.spec.whatwg.org/#http-cors-protocol), as
// middleware that lets chosen web origins read this server's responses
// from a browser.
//
// A browser sends a script's cross-origin request with an Origin field and
// shows the response to the script only when the response says that origin
// may read it (Access-Control-Allow-Origin). For a request a plain HTML form
// could not have sent — another method than GET/HEAD/POST, a header such as
// Authorization or "Content-Type: application/json" — it first asks
// permission with a preflight: OPTIONS with Origin, Access-Control-Request-
// Method and Access-Control-Request-Headers, and sends the real request only
// if the answer allows exactly that. CORS does not protect the server (curl
// ignores it); it protects users' cookies and intranet data from other
// sites' scripts running in their browsers, so what matters is that the
// answers are exact:
//
//   * Origins are compared as the Fetch standard serialises them (lower-case
//     scheme and host, default port omitted), against exact origins
//     ("https://app.example.com"), subdomain patterns ("https://*.example.com":
//     one or more labels before example.com, never example.com itself;
//     scheme and port exact), "null" only when listed, or "*". An origin
//     that is not allowed is never echoed back.
//   * Preflights are answered here (204, never reaching the handler) with
//     the allowed methods, the requested headers when every one of them is
//     allowed, Max-Age and, when enabled, Allow-Credentials. A preflight the
//     policy refuses gets 403 without any CORS field: the browser fails it
//     (it needs a 2xx and a matching Allow-Origin), and a person reading the
//     exchange in devtools or curl sees a refusal, not a mystery.
//   * Other requests with an allowed Origin get Allow-Origin (and
//     Allow-Credentials, Expose-Headers) in after(), whatever the status, so
//     scripts can read error responses too. CORS fields a handler or an
//     upstream set are replaced or, for an origin not allowed, removed: this
//     middleware is the policy, and two Allow-Origin values make browsers
//     fail the request (a common nginx-in-front-of-an-app bug).
//   * Every response that passes through gets "Vary: Origin" (added to an
//     existing Vary): whether it carries Allow-Origin depends on the Origin
//     field, so a shared cache must not give one origin's answer — or the
//     answer to a request without Origin — to another (Fetch, "CORS
//     protocol and HTTP caches").
//
// Put it early in the chain, before authentication and rate limiting: a
// preflight carries no credentials, and a 401 to it fails the real request
// in the browser with a CORS error that hides the cause.
//
// Modelled on Envoy's CORS filter and the nginx recipes it replaces, with
// the browser's own checks (Fetch, "CORS-preflight fetch" and "CORS
// check") as the specification of what an answer must hold.
//
// Thread-safety: a cors object is immutable after construction and is
// shared by every request on every worker.
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trellis/core/result.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

enum class origin_error {
  malformed = 1,  // not scheme "://" host [":" port]: a path, userinfo, query, empty part...
  bad_scheme,     // not ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
  bad_host,       // empty label, a character outside a-z 0-9 - _, or a bad IPv6 literal
  bad_port,       // not 1 to 65535 in decimal digits
};

const std::error_category& origin_category() noexcept;

inline std::error_code make_error_code(origin_error e) noexcept {
  return {static_cast<int>(e), origin_category()};
}

// A tuple origin (Fetch / HTML "origin"): scheme, host, port.
struct web_origin {
  std::string scheme;      // lower-case
  std::string host;        // lower-case; an IPv6 literal in brackets, compressed
  std::uint16_t port = 0;  // 0: the scheme's default port (omitted when serialised)

  // "scheme://host[:port]", the form browsers send in Origin.
  std::string serialize() const;
  friend bool operator==(const web_origin&, const web_origin&) = default;
};

// Parses a serialised origin, as found in an Origin field or a
// configuration: "https://App.Example.com:443" gives {https,
// app.example.com, 0}. A port equal to the scheme's default (http/ws 80,
// https/wss 443, ftp 21) is dropped, as the Fetch standard's serialisation
// does. "null" is not a tuple origin and is an error here (malformed).
// Errors: origin_error::malformed, bad_scheme, bad_host, bad_port.
result<web_origin> parse_origin(std::string_view text);

struct cors_options {
  // Who may read responses: exact origins ("https://app.example.com",
  // "http://localhost:3000"), subdomain patterns ("https://*.example.com"),
  // "null", or "*" (every origin but "null"). No default: an empty list is
  // a configuration error, since a CORS policy that allows nobody is almost
  // certainly a mistake. "null" is what sandboxed iframes, file: pages and
  // some redirects send, so anyone can produce it: list it only for
  // responses every page may read anyway. "*" is for public data; it
  // cannot be combined with credentials.
  std::vector<std::string> allow_origins;
  // Methods a preflight may ask for, compared case-sensitively as browsers
  // compare them ("PATCH" does not allow "patch": a browser sends
  // fetch(url, {method: "patch"}) as "patch" and would reject "PATCH" in
  // the answer itself). "*" allows any method (the requested one is echoed,
  // which works with credentials too). Default: the methods a browser sends
  // without a preflight anyway.
  std::vector<std::string> allow_methods = {"GET", "HEAD", "POST"};
  // Request headers a preflight may ask for, compared case-insensitively
  // ("Authorization", "Content-Type", "X-Request-Id"). Default none: only
  // CORS-safelisted headers, which browsers never ask about. "*" allows any
  // header (the requested names are echoed, which also covers
  // Authorization, unlike a literal "*" in the answer). Allowing more than
  // the API reads only widens what other sites' scripts can send.
  std::vector<std::string> allow_headers;
  // Response headers scripts may read beyond the CORS-safelisted ones
  // (Cache-Control, Content-Language, Content-Length, Content-Type, Expires,
  // Last-Modified, Pragma): "ETag", "Location", "X-RateLimit-Remaining".
  // "*" exposes every header, which browsers honour only without
  // credentials (so it is refused with them).
  std::vector<std::string> expose_headers;
  // Let requests with cookies, HTTP authentication or client certificates
  // ("credentials: include") read responses: adds
  // "Access-Control-Allow-Credentials: true" and answers the exact origin.
  // Default off. With it on, every allowed origin can act as the logged-in
  // user, so list only origins you trust like your own; "*" is refused.
  bool allow_credentials = false;
  // How long a browser may cache a preflight's answer
  // (Access-Control-Max-Age). Default 10 minutes; longer saves a round
  // trip per request, shorter makes a policy change take effect sooner.
  // Browsers cap it (Chromium at 2 hours, Firefox at 24). 0 disables
  // caching.
  std::chrono::seconds max_age{600};
};

class cors final : public http::middleware {
 public:
  // Checks and compiles the options. Throws core::config_error naming the
  // field under "cors.", as the gateway's configuration spells it:
  // "cors.allow_origins" (empty), "cors.allow_origins[i]" (malformed
  // origin or pattern), "cors.allow_credentials" (with a "*" origin),
  // "cors.allow_methods[i]", "cors.allow_headers[i]",
  // "cors.expose_headers[i]" (not a token; "*" in expose_headers with
  // credentials), "cors.max_age" (negative).
  explicit cors(const cors_options& options);
  ~cors() override;

  // Answers preflights (filter_status::respond); lets everything else
  // proceed.
  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;
  // Adds (or removes) the CORS fields of a non-preflight response, and Vary.
  asio::awaitable<void> after(http::request& req, http::response& res) override;

  // Whether the Origin field value `origin` is allowed. The policy, without
  // any request around it.
  bool origin_allowed(std::string_view origin) const;

  // Whether `req` is a CORS preflight: OPTIONS with Origin and
  // Access-Control-Request-Method. A plain OPTIONS is not one.
  static bool is_preflight(const http::request& req) noexcept;

  // Adds the comma-separated `tokens` to the Vary field of `headers`: each
  // one not yet listed (case-insensitively) is appended to the existing
  // value, whose lines are joined into one. Vary "*" is left alone — it
  // already means "never reuse a stored response".
  static void add_vary(http::fields& headers, std::string_view tokens);

 private:
  struct policy;
  std::unique_ptr<const policy> policy_;
};

}  // namespace trellis::gateway

template <>
struct std::is_error_code_enum<trellis::gateway::origin_error> : std::true_type {};
