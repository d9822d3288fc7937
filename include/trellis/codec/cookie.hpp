// Cookies (RFC 6265): reading the Cookie request header (§4.2) and
// building Set-Cookie response values (§4.1).
//
// parse_cookie_header splits "a=1; b=2" into name/value views. It follows
// §4.2.1's grammar where browsers do and tolerates what they vary on: a
// missing space after ';', whitespace around '=', a trailing ';'. Quoted
// values have their DQUOTEs stripped. Control characters are always an
// error (the whole header is refused). A pair that breaks the grammar
// otherwise (no '=', a name that is not a token, a value with a space,
// comma, backslash or non-ASCII byte) is skipped by default: one malformed
// cookie set by another application on the same site must not lock users
// out of this one, which is also what Go's net/http and most frameworks do.
// Names are case-sensitive; duplicates are kept in order (browsers list the
// most specific path first, §5.4).
//
// set_cookie is a plain struct: fill it, then to_string() validates and
// writes the field value. It refuses what would produce a cookie browsers
// silently drop or, worse, a second header: a name that is not a token, a
// value outside cookie-octet (no CR, LF, ';', ',', space, '"' or '\'),
// attributes holding ';' or control characters, SameSite=None without
// Secure, and the "__Secure-" / "__Host-" prefix rules (RFC 6265bis §4.1.3).
//
// Thread-safety: pure functions and value types.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trellis/core/result.hpp"

namespace trellis::http {

enum class cookie_error {
  control_character = 1,    // a control character in a Cookie header
  bad_name,                 // not a token (or empty)
  bad_value,                // a byte outside cookie-octet
  too_many_cookies,         // more cookies than cookie_options::max_cookies
  too_long,                 // name + value longer than browsers store (4096 bytes)
  bad_domain,               // Domain is not a host name
  bad_path,                 // Path does not start with '/', or holds ';' or a control character
  same_site_none_insecure,  // SameSite=None without Secure: browsers reject it
  prefix_violation,         // a "__Secure-" or "__Host-" name without what the prefix requires
};

const std::error_category& cookie_category() noexcept;

inline std::error_code make_error_code(cookie_error e) noexcept {
  return {static_cast<int>(e), cookie_category()};
}

// One cookie of a Cookie header: views into that header.
struct cookie {
  std::string_view name;
  std::string_view value;  // without surrounding DQUOTEs
};

struct cookie_options {
  // Cookies accepted from one request before parsing fails with
  // cookie_error::too_many_cookies. Browsers keep at most 150-180 per site,
  // so only a forged header goes past the default; the header's size is
  // already capped by the HTTP parser.
  std::size_t max_cookies = 200;
  // Skip pairs that break RFC 6265's grammar (default) or fail with
  // bad_name / bad_value. Control characters fail either way.
  bool skip_invalid = true;
};

// Appends the cookies of one Cookie header value to `out` (several headers,
// e.g. from HTTP/2, may be parsed into the same vector; max_cookies counts
// the ones this call adds). On error `out` is left as it was.
result<void> parse_cookie_header(std::string_view header, std::vector<cookie>& out,
                                 const cookie_options& options = {});

// The same, into a new vector.
result<std::vector<cookie>> parse_cookie_header(std::string_view header,
                                                const cookie_options& options = {});

// The value of the first cookie named `name` (exact, case-sensitive).
std::optional<std::string_view> find_cookie(std::span<const cookie> cookies,
                                            std::string_view name) noexcept;

enum class same_site_policy { unset, strict, lax, none };

// A Set-Cookie field value to build (RFC 6265 §4.1).
struct set_cookie {
  std::string name;   // a token
  std::string value;  // cookie-octets, optionally wrapped in DQUOTEs
  // Expires=<IMF-fixdate>, when set. Max-Age wins in browsers that see both.
  std::optional<std::chrono::system_clock::time_point> expires;
  // Max-Age=<seconds>, when set; zero or negative writes "Max-Age=0",
  // which deletes the cookie.
  std::optional<std::chrono::seconds> max_age;
  std::string domain;      // Domain=, when not empty: a host name ("example.com")
  std::string path;        // Path=, when not empty: starts with '/'
  bool secure = false;     // Secure: sent over HTTPS only
  bool http_only = false;  // HttpOnly: hidden from JavaScript
  // SameSite=Strict|Lax|None; unset writes no attribute (browsers then
  // default to Lax). None requires secure.
  same_site_policy same_site = same_site_policy::unset;

  // The field value, "name=value; Path=/; Secure; HttpOnly; SameSite=Lax"
  // (without "Set-Cookie: "). Errors: bad_name, bad_value, too_long,
  // bad_domain, bad_path, same_site_none_insecure, prefix_violation.
  result<std::string> to_string() const;
};

}  // namespace trellis::http

template <>
struct std::is_error_code_enum<trellis::http::cookie_error> : std::true_type {};
