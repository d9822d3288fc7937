// URLs and request-targets: parsing (RFC 3986, RFC 9112 §3.2), safe
// percent-decoding, path normalisation and query parameters.
//
// Everything here is a pure function over bytes (sans-I/O): no sockets, no
// clocks, no locale, no allocation per byte. The pieces and who uses them:
//
//   parse_url       an owning `url` (RFC 3986 §3) for clients and connection
//                   pools: lower-cased scheme and host, checked IP literals and
//                   ports, effective_port() and origin() for pool keys.
//   parse_target    the request-target of a request line (RFC 9112 §3.2):
//                   origin-, absolute-, authority- (CONNECT only) and
//                   asterisk-form (OPTIONS only), as views into the input.
//   percent_decode  RFC 3986 §2.1 decoding that refuses malformed escapes and
//                   refuses to produce NUL, CR or LF, so a decoded value can
//                   never split a header or a log line.
//   normalize_path  decoding + RFC 3986 §5.2.4 remove_dot_segments, with an
//                   `escapes_root` answer that routers and the static file
//                   server use to refuse traversal ("/a/../../etc/passwd",
//                   "/%2e%2e/etc/passwd").
//   query_params    `a=1&b=&c&a=2` as an order-preserving multi-map of decoded
//                   keys and values, with a cap on the parameter count.
//   resolve_reference
//                   RFC 3986 §5.2 reference resolution ("../x?q" against a
//                   base URL), for following a Location header.
//
// Deliberately stricter than RFC 3986 where leniency has bitten servers:
// a host is a DNS name (letters, digits, '-', '.', '_'), an IPv4 address in
// strict dotted-decimal, or a bracketed IPv6 address. RFC 3986 also allows
// percent-encoding, sub-delims and '~' in reg-names and IPvFuture literals;
// no DNS name holds them, so they are rejected. A host whose last label is a
// number ("127.1", "0x7f.0.0.1", "2130706433") is rejected unless it is a
// strict dotted-quad: inet_aton() and browsers read such names as IPv4
// addresses, the classic way to slip an internal address past an allow-list.
// IPv6 zone identifiers (RFC 6874) are not supported.
//
// Thread-safety: free functions are reentrant; `url` and `query_params` are
// values (one writer or many readers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trellis/core/result.hpp"

namespace trellis::http {

enum class url_error {
  empty = 1,             // nothing to parse
  bad_scheme,            // missing scheme, or a character a scheme cannot hold
  bad_userinfo,          // a character userinfo cannot hold
  bad_host,              // empty where required, a character a host cannot hold, numeric non-IPv4
  bad_ip_literal,        // a malformed "[...]" IPv6 address, IPvFuture or a zone id
  bad_port,              // not digits, or above 65535
  bad_path,              // a character a path cannot hold, or not the shape the caller needs
  bad_query,             // a character a query cannot hold
  bad_fragment,          // a character a fragment cannot hold
  bad_percent_encoding,  // '%' not followed by two hex digits ("%G1", a truncated "%4")
  forbidden_byte,        // NUL, CR or LF, raw or percent-encoded
  bad_target,            // a request-target in none of the four forms of RFC 9112 §3.2
  form_not_allowed,      // a valid form this method may not use (authority-form without CONNECT...)
  too_many_params,       // more query parameters than query_options::max_params
};

const std::error_category& url_category() noexcept;

inline std::error_code make_error_code(url_error e) noexcept {
  return {static_cast<int>(e), url_category()};
}

// What a URL's host is. Decides how it is written back: IPv6 in brackets.
enum class host_type { name, ipv4, ipv6 };

// The default port of http (80), https (443), ws (80) and wss (443); 0 for
// any other scheme. REQUIRES: `scheme` lower-case (parse_url lower-cases).
std::uint16_t default_port(std::string_view scheme) noexcept;

// An absolute URI (RFC 3986 §4.3: scheme ":" hier-part ["?" query]
// ["#" fragment]), owning its parts. Components other than scheme and host
// are kept exactly as written, still percent-encoded; decode them with
// percent_decode when needed. An empty query or fragment is the same as an
// absent one ("http://h/p?" writes back as "http://h/p").
struct url {
  std::string scheme;      // lower-cased: "https"
  std::string userinfo;    // before '@', still encoded; RFC 9110 §4.2.4 deprecates it for http
  std::string host;        // lower-cased; an IPv6 address without its brackets: "::1"
  std::string port_text;   // digits as written, "" when absent (or written as a bare ':')
  std::uint16_t port = 0;  // the value of port_text; 0 when port_text is empty
  std::string path;        // "/a%20b"; may be empty ("http://h")
  std::string query;       // without '?'
  std::string fragment;    // without '#'
  host_type host_kind = host_type::name;
  bool has_authority = false;  // "//" followed: "file:///x" has one (empty host), "mailto:x" none

  // port when one was written, else default_port(scheme) (0 if unknown).
  std::uint16_t effective_port() const noexcept {
    return port_text.empty() ? default_port(scheme) : port;
  }

  // The URI written back: lower-case scheme and host, the other parts as
  // parsed. REQUIRES (for hand-built values): the parts hold valid URI
  // characters; with has_authority false, path does not start with "//".
  std::string to_string() const;

  // "scheme://host:port" with the effective port always written (so
  // "http://a" and "http://a:80" give the same key) and IPv6 hosts in
  // brackets: the key of a connection pool. Not RFC 6454's serialisation,
  // which omits default ports. The port is left out only when the scheme
  // has no default and none was written. "" when there is no host.
  std::string origin() const;

  // host[:port] as written (brackets around IPv6, no userinfo): the value
  // of the Host header for a request to this URL (RFC 9110 §7.2).
  std::string authority() const;

  // path (or "/" when empty) plus "?query": the origin-form request-target
  // for a request to this URL (RFC 9112 §3.2.1).
  std::string origin_form() const;
};

// Parses an absolute URI. For http, https, ws and wss an authority with a
// non-empty host is required (RFC 9110 §4.2.1: such a URI "MUST be
// rejected as invalid" otherwise). Relative references are not accepted.
// Returns a url_error naming the first part that is wrong.
result<url> parse_url(std::string_view text);

// --- request-targets (RFC 9112 §3.2) ---------------------------------------

enum class target_form {
  origin,     // "/path?query"              — every method but CONNECT
  absolute,   // "http://host:port/path?q"  — sent to proxies; servers must accept it
  authority,  // "host:port"                — CONNECT only, and CONNECT only uses it
  asterisk,   // "*"                        — OPTIONS only
};

// A parsed request-target. Views point into the string given to
// parse_target and live as long as it does (the single exception: path is
// the static "/" when an absolute-form elides it). Nothing is decoded or
// case-folded: compare scheme and host case-insensitively.
struct request_target {
  target_form form = target_form::origin;
  std::string_view scheme;        // absolute-form: "http"
  std::string_view authority;     // absolute, authority: host[:port] as written
  std::string_view host;          // absolute, authority: without IPv6 brackets
  std::string_view port;          // absolute, authority: digits; "" when absent (absolute only)
  std::uint16_t port_number = 0;  // the value of `port`; 0 when absent
  host_type host_kind = host_type::name;
  std::string_view path;   // origin, absolute: raw, still percent-encoded; starts with '/'
  std::string_view query;  // origin, absolute: without '?'
};

// Classifies and validates a request-target. is_connect / is_options say
// whether the request's method is CONNECT / OPTIONS: authority-form is
// accepted only (and then required) for CONNECT, asterisk-form only for
// OPTIONS. A fragment, userinfo, a bare ':' port, whitespace, '\' or any
// byte outside RFC 3986's character set is an error. The absolute-form must
// be "scheme://host..." with a non-empty host.
// Returns url_error::form_not_allowed for a well-formed target in a form
// the method may not use, another url_error for a malformed one.
result<request_target> parse_target(std::string_view target, bool is_connect, bool is_options);

// --- percent-encoding (RFC 3986 §2.1) ---------------------------------------

enum class decode_mode {
  // A path. "%2F" and "%25" stay encoded (hex upper-cased): decoding '/'
  // would change the segment structure, and keeping '%' encoded keeps the
  // result unambiguous (a '%' in it always starts "%2F" or "%25", so
  // "/a%252Fb" and "/a%2Fb" stay different). '+' is a plus.
  path,
  // A path whose caller asked for "%2F" to become '/' (and "%25" '%'),
  // knowing that "/a%2Fb" then reads as two segments. '+' is a plus.
  path_decode_slash,
  // A query key or value as application/x-www-form-urlencoded: '+' is a
  // space, everything decoded.
  query,
  // Any other single component (a path segment, userinfo): everything
  // decoded, '+' is a plus.
  component,
};

// Decodes `text`. Errors: url_error::bad_percent_encoding for a '%' not
// followed by two hex digits; url_error::forbidden_byte when the input or
// the result would hold NUL, CR or LF (so "%0D%0A" never reaches a header
// or a log line). No other validation: bytes >= 0x80 and invalid UTF-8
// pass through.
result<std::string> percent_decode(std::string_view text, decode_mode mode);

// As percent_decode, appending to `out` (reusing its capacity). On error
// `out` is left as it was.
result<void> percent_decode_append(std::string& out, std::string_view text, decode_mode mode);

enum class component {
  path_segment,  // one segment: everything but RFC 3986 unreserved is encoded, '/' too
  path,          // a whole path: as path_segment, but '/' is kept
  query,         // a query key or value: everything but unreserved; space -> "%20"
  form,          // application/x-www-form-urlencoded key or value: as query, space -> '+'
};

// Percent-encodes every byte outside RFC 3986's unreserved set
// (ALPHA / DIGIT / "-" / "." / "_" / "~"), with the exceptions above, using
// upper-case hex. decode_mode::component (query for `form`) reverses it.
std::string encode_component(std::string_view text, component which);

// --- paths -------------------------------------------------------------------

// RFC 3986 §5.2.4 exactly: removes "." and ".." segments from `path`,
// without decoding or validating anything ("/a/b/c/./../../g" -> "/a/g",
// "mid/content=5/../6" -> "mid/6"). A ".." above the root is dropped.
std::string remove_dot_segments(std::string_view path);

// What normalize_path does with an encoded slash ("%2F").
enum class slash_policy {
  keep,    // stays "%2F": "/a%2Fb" is one segment "a%2Fb" (the default)
  decode,  // becomes '/' before dot-segments are removed: "/a%2F..%2Fb" -> "/b"
  reject,  // the path is an error (url_error::bad_path)
};

struct normalize_options {
  // Merge runs of '/' ("/a//b" -> "/a/b"). Default off: RFC 3986 says the
  // two are different resources and a proxy must pass both through
  // unchanged; a static file server or a router that maps to files turns
  // it on.
  bool collapse_slashes = false;
  // "%2F" handling; see slash_policy. Default keep.
  slash_policy encoded_slash = slash_policy::keep;
  // Refuse '\' (raw, which RFC 3986 never allows in a path, or as "%5C"):
  // some backends and file systems treat it as a separator, so
  // "/..%5C..%5Cetc" would traverse there. Default on.
  bool reject_backslash = true;
};

struct normalized_path {
  // Starts with '/'; holds no "." or ".." segment. Percent-decoded as by
  // decode_mode::path (or path_decode_slash when encoded_slash is decode),
  // so it is for matching routes and finding files, not a wire URI: encode
  // it again (encode_component, per segment) to send it. Without
  // collapse_slashes it may start with "//", which a browser reads as
  // another host: never echo it into a Location header as is.
  std::string path;
  // True when a ".." tried to climb above the root ("/a/../../etc",
  // "/%2e%2e/x"). `path` is then clamped at the root, but a server should
  // refuse the request (400/403) rather than serve the clamped path.
  bool escapes_root = false;
};

// Normalises a raw request path (the `path` of a request_target): checks
// its characters, percent-decodes it (rejecting NUL, CR, LF), then removes
// dot segments. "" gives "/". Errors: url_error::bad_path when it does not
// start with '/', holds a character a path cannot hold, a backslash
// (reject_backslash) or "%2F" (slash_policy::reject); the errors of
// percent_decode.
result<normalized_path> normalize_path(std::string_view raw_path,
                                       const normalize_options& options = {});

// --- query parameters ----------------------------------------------------------

struct query_options {
  // Parameters accepted before parsing fails with url_error::too_many_params.
  // Bounds the work and memory a single request line can cause (hash-flood
  // style attacks on frameworks that put parameters in a hash map); raise it
  // for forms with many fields.
  std::size_t max_params = 256;
};

// One parameter: views into its query_params.
struct query_param {
  std::string_view key;
  std::string_view value;
};

// The parameters of a query ("a=1&b=&c&a=2"), decoded as
// application/x-www-form-urlencoded ('+' is a space), in their order, with
// repeated keys kept. "c" (no '=') has an empty value; empty pieces
// ("a=1&&b=2") are skipped. Keys compare exactly (case-sensitive). All keys
// and values live in one buffer: a handful of allocations per query.
// Views returned by get/get_all/iteration are valid until the object is
// destroyed, assigned or moved.
class query_params {
 public:
  query_params() = default;

  // REQUIRES: `query` without its leading '?'. Errors: those of
  // percent_decode (decode_mode::query), url_error::too_many_params.
  static result<query_params> parse(std::string_view query, const query_options& options = {});

  // The first value of `key`, if any.
  std::optional<std::string_view> get(std::string_view key) const noexcept;
  // Every value of `key`, in order.
  std::vector<std::string_view> get_all(std::string_view key) const;
  bool contains(std::string_view key) const noexcept { return get(key).has_value(); }

  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  query_param operator[](std::size_t i) const noexcept;  // REQUIRES: i < size()

  class const_iterator {
   public:
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;  // operator* returns a value
    using value_type = query_param;
    using difference_type = std::ptrdiff_t;
    using reference = query_param;

    const_iterator() = default;
    query_param operator*() const noexcept { return (*owner_)[index_]; }
    const_iterator& operator++() noexcept {
      ++index_;
      return *this;
    }
    const_iterator operator++(int) noexcept {
      auto t = *this;
      ++index_;
      return t;
    }
    bool operator==(const const_iterator& o) const noexcept { return index_ == o.index_; }

   private:
    friend class query_params;
    const_iterator(const query_params* owner, std::size_t index) : owner_(owner), index_(index) {}
    const query_params* owner_ = nullptr;
    std::size_t index_ = 0;
  };

  const_iterator begin() const noexcept { return {this, 0}; }
  const_iterator end() const noexcept { return {this, entries_.size()}; }

 private:
  struct entry {
    std::size_t offset;  // key, then value, in arena_
    std::size_t key_size;
    std::size_t value_size;
  };
  std::string arena_;
  std::vector<entry> entries_;
};

// --- reference resolution (RFC 3986 §5.2) -------------------------------------------

// Resolves `reference` — a URI reference as found in a Location header:
// absolute ("https://a/b"), network-path ("//host/p"), absolute-path ("/x"),
// relative-path ("../y?q"), query-only ("?q"), fragment-only ("#f") or
// empty — against `base`, following RFC 3986 §5.2.2 with its strict
// parser reading (a reference with a scheme is always absolute, so
// "http:g" stays "http:g" and is then rejected for having no host) and
// §5.2.4 remove_dot_segments on the merged path.
//
// Fragments follow RFC 9110 §10.2.2: a reference without a fragment
// component inherits the fragment of `base`; one with a fragment, even an
// empty one ("/x#"), replaces it.
//
// Strictness is parse_url's, plus checks on the reference itself: its
// components must hold only characters their RFC 3986 production allows,
// before dot segments are removed (so a NUL, space or '\' cannot hide in
// a segment that "../" later drops); the result is serialised and parsed
// again by parse_url, so an http or https result without a host, a
// numeric non-IPv4 host and the rest are refused exactly as parse_url
// refuses them. A result with no authority whose path would start with
// "//" (it would read back as a host) is url_error::bad_path.
//
// REQUIRES: `base` is a parse_url result (or holds only what parse_url
// would accept). Returns the resolved URL, or the url_error of the first
// part that is wrong: bad_scheme when the text before the first ':' is not
// a scheme ("1a:b"), bad_path / bad_query / bad_fragment / forbidden_byte /
// bad_percent_encoding for characters, and parse_url's errors for the
// result.
result<url> resolve_reference(const url& base, std::string_view reference);

}  // namespace trellis::http

template <>
struct std::is_error_code_enum<trellis::http::url_error> : std::true_type {};
