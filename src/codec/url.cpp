#include "trellis/codec/url.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace trellis::http {
namespace {

// --- character classes (RFC 3986 §2, §3) -------------------------------------

enum : std::uint16_t {
  c_alpha = 1 << 0,
  c_digit = 1 << 1,
  c_hex = 1 << 2,
  c_unreserved = 1 << 3,  // ALPHA / DIGIT / "-" / "." / "_" / "~"
  c_sub_delim = 1 << 4,   // "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
  c_pchar = 1 << 5,       // unreserved / sub-delims / ":" / "@" ('%' escapes apart)
  c_path = 1 << 6,        // pchar / "/"
  c_query = 1 << 7,       // pchar / "/" / "?" (also fragment)
  c_userinfo = 1 << 8,    // unreserved / sub-delims / ":"
  c_scheme = 1 << 9,      // ALPHA / DIGIT / "+" / "-" / "."
  c_host = 1 << 10,       // what trellis accepts in a host name: ALPHA / DIGIT / "-" / "." / "_"
};

constexpr std::array<std::uint16_t, 256> make_classes() {
  std::array<std::uint16_t, 256> t{};
  auto add = [&t](std::string_view chars, std::uint16_t bits) {
    for (char c : chars) t[static_cast<unsigned char>(c)] |= bits;
  };
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= c_alpha;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= c_alpha;
  for (int c = '0'; c <= '9'; ++c) t[c] |= c_digit | c_hex;
  add("abcdefABCDEF", c_hex);
  for (int c = 0; c < 256; ++c) {
    if (t[c] & (c_alpha | c_digit)) t[c] |= c_unreserved | c_scheme | c_host;
  }
  add("-._~", c_unreserved);
  add("!$&'()*+,;=", c_sub_delim);
  add("+-.", c_scheme);
  add("-._", c_host);
  for (int c = 0; c < 256; ++c) {
    if (t[c] & (c_unreserved | c_sub_delim)) t[c] |= c_pchar | c_userinfo;
  }
  add(":@", c_pchar);
  add(":", c_userinfo);
  for (int c = 0; c < 256; ++c) {
    if (t[c] & c_pchar) t[c] |= c_path | c_query;
  }
  add("/", c_path | c_query);
  add("?", c_query);
  return t;
}

constexpr auto k_classes = make_classes();

bool is(char c, std::uint16_t mask) noexcept {
  return (k_classes[static_cast<unsigned char>(c)] & mask) != 0;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr char k_upper_hex[] = "0123456789ABCDEF";

bool is_forbidden_byte(unsigned char c) noexcept {
  return c == 0 || c == '\r' || c == '\n';
}

bool has_forbidden_byte(std::string_view s) noexcept {
  for (char c : s) {
    if (is_forbidden_byte(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

char to_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

// Every byte of `s` is in `mask` or starts a well-formed "%XX" escape.
std::error_code check_chars(std::string_view s, std::uint16_t mask, url_error bad) noexcept {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (s.size() - i < 3) return url_error::bad_percent_encoding;
      if (hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
        return url_error::bad_percent_encoding;
      i += 2;
    } else if (!is(c, mask)) {
      return bad;
    }
  }
  return {};
}

bool is_scheme(std::string_view s) noexcept {
  if (s.empty() || !is(s[0], c_alpha)) return false;
  for (char c : s) {
    if (!is(c, c_scheme)) return false;
  }
  return true;
}

// --- hosts --------------------------------------------------------------------

// dec-octet "." dec-octet "." dec-octet "." dec-octet, no leading zeros
// (RFC 3986 §3.2.2): the only numeric host spelling trellis accepts.
bool is_strict_ipv4(std::string_view s) noexcept {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    int value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3) {
      value = value * 10 + (s[i] - '0');
      ++i;
    }
    const std::size_t digits = i - start;
    if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0')) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// A label that inet_aton or a WHATWG URL parser would read as a number:
// decimal digits, or "0x" followed by hex digits (possibly none).
bool is_numeric_label(std::string_view l) noexcept {
  if (l.empty()) return false;
  if (l.size() >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
    for (char c : l.substr(2)) {
      if (!is(c, c_hex)) return false;
    }
    return true;
  }
  for (char c : l) {
    if (!is(c, c_digit)) return false;
  }
  return true;
}

// A DNS-style name or a strict IPv4 address. Empty is the caller's call.
std::error_code check_host_name(std::string_view h, host_type& kind) noexcept {
  kind = host_type::name;
  if (h.empty()) return {};
  for (char c : h) {
    if (!is(c, c_host)) return url_error::bad_host;
  }
  std::string_view labels = h;
  if (labels.back() == '.') labels.remove_suffix(1);  // a fully qualified "example.com."
  if (labels.empty() || labels.size() > 253) return url_error::bad_host;
  std::string_view last;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = labels.find('.', start);
    const std::string_view label =
        labels.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63) return url_error::bad_host;
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (is_numeric_label(last)) {
    if (!is_strict_ipv4(h)) return url_error::bad_host;
    kind = host_type::ipv4;
  }
  return {};
}

// IPv6address of RFC 3986 §3.2.2 (what is inside the brackets).
bool is_ipv6(std::string_view s) noexcept {
  int groups = 0;
  bool compressed = false;
  std::size_t i = 0;
  if (s.starts_with("::")) {
    compressed = true;
    i = 2;
    if (i == s.size()) return true;
  } else if (s.empty() || s[0] == ':') {
    return false;
  }
  while (true) {
    std::size_t j = s.find(':', i);
    if (j == std::string_view::npos) j = s.size();
    const std::string_view piece = s.substr(i, j - i);
    if (piece.find('.') != std::string_view::npos) {
      // An embedded IPv4 address (ls32) is the last 32 bits.
      if (j != s.size() || !is_strict_ipv4(piece)) return false;
      groups += 2;
      break;
    }
    if (piece.empty() || piece.size() > 4) return false;
    for (char c : piece) {
      if (!is(c, c_hex)) return false;
    }
    ++groups;
    if (groups > 8) return false;
    if (j == s.size()) break;
    if (j + 1 < s.size() && s[j + 1] == ':') {
      if (compressed) return false;
      compressed = true;
      i = j + 2;
      if (i == s.size()) break;
    } else {
      i = j + 1;
      if (i == s.size()) return false;  // a trailing single ':'
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

// --- authority ---------------------------------------------------------------

struct authority_view {
  std::string_view userinfo;
  bool has_userinfo = false;
  std::string_view host;  // without brackets
  host_type kind = host_type::name;
  std::string_view port;  // digits; empty when absent or a bare ':'
  bool has_port = false;  // a ':' followed the host
  std::uint16_t port_number = 0;
};

std::error_code parse_port(std::string_view digits, std::uint16_t& port) noexcept {
  std::uint32_t value = 0;
  for (char c : digits) {
    if (!is(c, c_digit)) return url_error::bad_port;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > 65535) return url_error::bad_port;
  }
  port = static_cast<std::uint16_t>(value);
  return {};
}

// authority = [ userinfo "@" ] host [ ":" port ] (RFC 3986 §3.2).
std::error_code parse_authority(std::string_view a, authority_view& out) noexcept {
  const std::size_t at = a.find('@');
  if (at != std::string_view::npos) {
    out.userinfo = a.substr(0, at);
    out.has_userinfo = true;
    if (auto ec = check_chars(out.userinfo, c_userinfo, url_error::bad_userinfo)) return ec;
    a.remove_prefix(at + 1);
  }
  std::string_view rest;
  if (!a.empty() && a[0] == '[') {
    const std::size_t close = a.find(']');
    if (close == std::string_view::npos) return url_error::bad_ip_literal;
    out.host = a.substr(1, close - 1);
    if (!is_ipv6(out.host)) return url_error::bad_ip_literal;
    out.kind = host_type::ipv6;
    rest = a.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return url_error::bad_host;
  } else {
    const std::size_t colon = a.find(':');
    out.host = a.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : a.substr(colon);
    if (auto ec = check_host_name(out.host, out.kind)) return ec;
  }
  if (!rest.empty()) {  // rest starts with ':'
    out.has_port = true;
    out.port = rest.substr(1);
    if (auto ec = parse_port(out.port, out.port_number)) return ec;
  }
  return {};
}

void append_host(std::string& out, std::string_view host, host_type kind) {
  if (kind == host_type::ipv6) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
}

// --- dot segments ------------------------------------------------------------

void pop_segment(std::string& out, bool& escapes) {
  if (out.empty()) {
    escapes = true;
    return;
  }
  const std::size_t slash = out.rfind('/');
  out.resize(slash == std::string::npos ? 0 : slash);
}

// RFC 3986 §5.2.4, step by step; `escapes` records a ".." with nothing
// left to remove.
std::string remove_dots(std::string_view in, bool& escapes) {
  std::string out;
  out.reserve(in.size());
  while (!in.empty()) {
    if (in.starts_with("../")) {  // A
      in.remove_prefix(3);
      escapes = true;
    } else if (in.starts_with("./")) {
      in.remove_prefix(2);
    } else if (in.starts_with("/./")) {  // B
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.starts_with("/../")) {  // C
      in.remove_prefix(3);
      pop_segment(out, escapes);
    } else if (in == "/..") {
      in = "/";
      pop_segment(out, escapes);
    } else if (in == ".") {  // D
      in = {};
    } else if (in == "..") {
      in = {};
      escapes = true;
    } else {  // E: move the first segment, with its leading '/', to the output
      std::size_t next = in.find('/', 1);
      if (next == std::string_view::npos) next = in.size();
      out.append(in.substr(0, next));
      in.remove_prefix(next);
    }
  }
  return out;
}

void collapse_slashes(std::string& p) {
  std::size_t w = 0;
  for (std::size_t r = 0; r < p.size(); ++r) {
    if (p[r] == '/' && w > 0 && p[w - 1] == '/') continue;
    p[w++] = p[r];
  }
  p.resize(w);
}

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.url"; }
  std::string message(int v) const override {
    switch (static_cast<url_error>(v)) {
      case url_error::empty: return "empty URL";
      case url_error::bad_scheme: return "invalid URL scheme";
      case url_error::bad_userinfo: return "invalid URL userinfo";
      case url_error::bad_host: return "invalid URL host";
      case url_error::bad_ip_literal: return "invalid IP literal in URL";
      case url_error::bad_port: return "invalid URL port";
      case url_error::bad_path: return "invalid URL path";
      case url_error::bad_query: return "invalid URL query";
      case url_error::bad_fragment: return "invalid URL fragment";
      case url_error::bad_percent_encoding: return "malformed percent-encoding";
      case url_error::forbidden_byte: return "NUL, CR or LF in URL";
      case url_error::bad_target: return "invalid request-target";
      case url_error::form_not_allowed: return "request-target form not allowed for this method";
      case url_error::too_many_params: return "too many query parameters";
    }
    return "unknown url error";
  }
};

}  // namespace

const std::error_category& url_category() noexcept {
  static const category instance;
  return instance;
}

std::uint16_t default_port(std::string_view scheme) noexcept {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return 0;
}

// --- url -------------------------------------------------------------------------

result<url> parse_url(std::string_view text) {
  if (text.empty()) return unexpected(url_error::empty);
  if (has_forbidden_byte(text)) return unexpected(url_error::forbidden_byte);

  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos || !is_scheme(text.substr(0, colon)))
    return unexpected(url_error::bad_scheme);
  url u;
  u.scheme = lower(text.substr(0, colon));
  std::string_view rest = text.substr(colon + 1);

  std::string_view fragment, query;
  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
    fragment = rest.substr(hash + 1);
    rest = rest.substr(0, hash);
    if (auto ec = check_chars(fragment, c_query, url_error::bad_fragment)) return unexpected(ec);
  }
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    if (auto ec = check_chars(query, c_query, url_error::bad_query)) return unexpected(ec);
  }

  std::string_view path = rest;
  authority_view a;
  if (rest.starts_with("//")) {
    u.has_authority = true;
    const std::size_t slash = rest.find('/', 2);
    const std::string_view authority =
        rest.substr(2, slash == std::string_view::npos ? slash : slash - 2);
    path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (auto ec = parse_authority(authority, a)) return unexpected(ec);
  }
  if (auto ec = check_chars(path, c_path, url_error::bad_path)) return unexpected(ec);
  if (default_port(u.scheme) != 0 && (!u.has_authority || a.host.empty()))
    return unexpected(url_error::bad_host);

  u.userinfo = a.userinfo;
  u.host = lower(a.host);
  u.host_kind = a.kind;
  u.port_text = a.port;
  u.port = a.port_number;
  u.path = path;
  u.query = query;
  u.fragment = fragment;
  return u;
}

std::string url::to_string() const {
  std::string out;
  out.reserve(scheme.size() + userinfo.size() + host.size() + port_text.size() + path.size() +
              query.size() + fragment.size() + 10);
  out += scheme;
  out += ':';
  if (has_authority) {
    out += "//";
    if (!userinfo.empty()) {
      out += userinfo;
      out += '@';
    }
    append_host(out, host, host_kind);
    if (!port_text.empty()) {
      out += ':';
      out += port_text;
    }
    if (!path.empty() && path[0] != '/') out += '/';
  }
  out += path;
  if (!query.empty()) {
    out += '?';
    out += query;
  }
  if (!fragment.empty()) {
    out += '#';
    out += fragment;
  }
  return out;
}

std::string url::origin() const {
  if (!has_authority || host.empty()) return {};
  std::string out;
  out.reserve(scheme.size() + host.size() + 11);
  out += scheme;
  out += "://";
  append_host(out, host, host_kind);
  const std::uint16_t p = effective_port();
  if (!port_text.empty() || p != 0) {
    out += ':';
    out += std::to_string(p);
  }
  return out;
}

std::string url::authority() const {
  std::string out;
  append_host(out, host, host_kind);
  if (!port_text.empty()) {
    out += ':';
    out += port_text;
  }
  return out;
}

std::string url::origin_form() const {
  std::string out = path.empty() ? std::string("/") : path;
  if (!query.empty()) {
    out += '?';
    out += query;
  }
  return out;
}

// --- request-targets -------------------------------------------------------------

result<request_target> parse_target(std::string_view t, bool is_connect, bool is_options) {
  if (t.empty()) return unexpected(url_error::bad_target);
  if (has_forbidden_byte(t)) return unexpected(url_error::forbidden_byte);

  request_target r;
  auto take_authority = [&r](std::string_view text, const authority_view& a) {
    r.authority = text;
    r.host = a.host;
    r.host_kind = a.kind;
    r.port = a.port;
    r.port_number = a.port_number;
  };
  // authority-form = uri-host ":" port (RFC 9112 §3.2.3): no userinfo, and
  // the port is required (RFC 9110 §9.3.6: CONNECT has no default port).
  auto parse_authority_form = [](std::string_view text, authority_view& a) -> std::error_code {
    if (text.find('@') != std::string_view::npos) return url_error::bad_target;
    if (auto ec = parse_authority(text, a)) return ec;
    if (a.host.empty()) return url_error::bad_host;
    if (a.port.empty()) return url_error::bad_port;
    return {};
  };

  if (is_connect) {
    if (t[0] == '/' || t == "*" || t.find("://") != std::string_view::npos)
      return unexpected(url_error::form_not_allowed);
    authority_view a;
    if (auto ec = parse_authority_form(t, a)) return unexpected(ec);
    r.form = target_form::authority;
    take_authority(t, a);
    return r;
  }

  if (t == "*") {
    if (!is_options) return unexpected(url_error::form_not_allowed);
    r.form = target_form::asterisk;
    return r;
  }

  std::string_view rest = t;
  if (t[0] != '/') {
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    const std::size_t colon = t.find(':');
    if (colon == std::string_view::npos || !is_scheme(t.substr(0, colon)) ||
        !t.substr(colon + 1).starts_with("//")) {
      authority_view a;
      const bool is_authority_form = !parse_authority_form(t, a);
      return unexpected(is_authority_form ? url_error::form_not_allowed : url_error::bad_target);
    }
    r.form = target_form::absolute;
    r.scheme = t.substr(0, colon);
    rest = t.substr(colon + 3);
    const std::size_t end = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    authority_view a;
    if (auto ec = parse_authority(authority, a)) return unexpected(ec);
    if (a.has_userinfo) return unexpected(url_error::bad_target);
    if (a.host.empty()) return unexpected(url_error::bad_host);
    if (a.has_port && a.port.empty()) return unexpected(url_error::bad_port);
    take_authority(authority, a);
  }

  // origin-form = absolute-path [ "?" query ]; the same tail for absolute-form.
  const std::size_t q = rest.find('?');
  r.path = rest.substr(0, q);
  if (q != std::string_view::npos) r.query = rest.substr(q + 1);
  if (auto ec = check_chars(r.path, c_path, url_error::bad_path)) return unexpected(ec);
  if (auto ec = check_chars(r.query, c_query, url_error::bad_query)) return unexpected(ec);
  if (r.path.empty()) r.path = "/";  // RFC 9112 §3.2.1: an empty path means "/"
  return r;
}

// --- percent-encoding ----------------------------------------------------------

result<void> percent_decode_append(std::string& out, std::string_view text, decode_mode mode) {
  const std::size_t original = out.size();
  out.reserve(original + text.size());
  auto fail = [&out, original](url_error e) -> result<void> {
    out.resize(original);
    return unexpected(e);
  };
  std::size_t i = 0;
  while (i < text.size()) {
    // Copy the run of bytes that need no decoding in one go.
    std::size_t run = i;
    while (run < text.size() && text[run] != '%' && text[run] != '+' &&
           !is_forbidden_byte(static_cast<unsigned char>(text[run])))
      ++run;
    out.append(text.substr(i, run - i));
    i = run;
    if (i == text.size()) break;

    const char c = text[i];
    if (c == '+') {
      out += mode == decode_mode::query ? ' ' : '+';
      ++i;
      continue;
    }
    if (c != '%') return fail(url_error::forbidden_byte);
    if (text.size() - i < 3) return fail(url_error::bad_percent_encoding);
    const int hi = hex_value(text[i + 1]);
    const int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return fail(url_error::bad_percent_encoding);
    const auto v = static_cast<unsigned char>(hi * 16 + lo);
    if (is_forbidden_byte(v)) return fail(url_error::forbidden_byte);
    if (mode == decode_mode::path && (v == '/' || v == '%')) {
      out += '%';
      out += k_upper_hex[v >> 4];
      out += k_upper_hex[v & 0xF];
    } else {
      out += static_cast<char>(v);
    }
    i += 3;
  }
  return {};
}

result<std::string> percent_decode(std::string_view text, decode_mode mode) {
  std::string out;
  if (auto r = percent_decode_append(out, text, mode); !r) return unexpected(r.error());
  return out;
}

std::string encode_component(std::string_view text, component which) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (is(c, c_unreserved) || (c == '/' && which == component::path)) {
      out += c;
    } else if (c == ' ' && which == component::form) {
      out += '+';
    } else {
      const auto v = static_cast<unsigned char>(c);
      out += '%';
      out += k_upper_hex[v >> 4];
      out += k_upper_hex[v & 0xF];
    }
  }
  return out;
}

// --- paths -------------------------------------------------------------------------

std::string remove_dot_segments(std::string_view path) {
  bool escapes = false;
  return remove_dots(path, escapes);
}

result<normalized_path> normalize_path(std::string_view raw_path,
                                       const normalize_options& options) {
  if (raw_path.empty()) return normalized_path{"/", false};
  if (has_forbidden_byte(raw_path)) return unexpected(url_error::forbidden_byte);
  if (raw_path[0] != '/') return unexpected(url_error::bad_path);
  if (auto ec = check_chars(raw_path, c_path, url_error::bad_path)) return unexpected(ec);

  // check_chars guarantees every '%' starts a complete escape.
  if (options.encoded_slash == slash_policy::reject) {
    for (std::size_t i = raw_path.find('%'); i != std::string_view::npos;
         i = raw_path.find('%', i + 1)) {
      if (raw_path[i + 1] == '2' && (raw_path[i + 2] == 'F' || raw_path[i + 2] == 'f'))
        return unexpected(url_error::bad_path);
    }
  }
  const decode_mode mode = options.encoded_slash == slash_policy::decode
                               ? decode_mode::path_decode_slash
                               : decode_mode::path;
  auto decoded = percent_decode(raw_path, mode);
  if (!decoded) return unexpected(decoded.error());
  if (options.reject_backslash && decoded->find('\\') != std::string::npos)
    return unexpected(url_error::bad_path);
  if (options.collapse_slashes) collapse_slashes(*decoded);

  normalized_path out;
  out.path = remove_dots(*decoded, out.escapes_root);
  return out;
}

// --- query parameters ----------------------------------------------------------------

result<query_params> query_params::parse(std::string_view query, const query_options& options) {
  query_params p;
  p.arena_.reserve(query.size());
  std::size_t pos = 0;
  while (pos < query.size()) {
    std::size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view piece = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (piece.empty()) continue;
    if (p.entries_.size() >= options.max_params) return unexpected(url_error::too_many_params);

    const std::size_t eq = piece.find('=');
    const std::string_view key = piece.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : piece.substr(eq + 1);
    entry e{p.arena_.size(), 0, 0};
    if (auto r = percent_decode_append(p.arena_, key, decode_mode::query); !r)
      return unexpected(r.error());
    e.key_size = p.arena_.size() - e.offset;
    if (auto r = percent_decode_append(p.arena_, value, decode_mode::query); !r)
      return unexpected(r.error());
    e.value_size = p.arena_.size() - e.offset - e.key_size;
    p.entries_.push_back(e);
  }
  return p;
}

query_param query_params::operator[](std::size_t i) const noexcept {
  const entry& e = entries_[i];
  const std::string_view all(arena_);
  return {all.substr(e.offset, e.key_size), all.substr(e.offset + e.key_size, e.value_size)};
}

std::optional<std::string_view> query_params::get(std::string_view key) const noexcept {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const query_param p = (*this)[i];
    if (p.key == key) return p.value;
  }
  return std::nullopt;
}

std::vector<std::string_view> query_params::get_all(std::string_view key) const {
  std::vector<std::string_view> values;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const query_param p = (*this)[i];
    if (p.key == key) values.push_back(p.value);
  }
  return values;
}

// --- reference resolution --------------------------------------------------------

namespace {

// A URI reference split by the regular expression of RFC 3986 Appendix B,
//   ^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?
// written out by hand. "Defined" and "empty" differ for every component
// but the path, so each has its flag.
struct reference_parts {
  std::string_view scheme;
  std::string_view authority;
  std::string_view path;
  std::string_view query;
  std::string_view fragment;
  bool has_scheme = false;
  bool has_authority = false;
  bool has_query = false;
  bool has_fragment = false;
};

reference_parts split_reference(std::string_view r) noexcept {
  reference_parts p;
  if (const std::size_t hash = r.find('#'); hash != std::string_view::npos) {
    p.fragment = r.substr(hash + 1);
    p.has_fragment = true;
    r = r.substr(0, hash);
  }
  if (const std::size_t q = r.find('?'); q != std::string_view::npos) {
    p.query = r.substr(q + 1);
    p.has_query = true;
    r = r.substr(0, q);
  }
  // A scheme is a non-empty run before the first ':' that precedes any '/'.
  if (const std::size_t colon = r.find_first_of(":/");
      colon != std::string_view::npos && colon > 0 && r[colon] == ':') {
    p.scheme = r.substr(0, colon);
    p.has_scheme = true;
    r = r.substr(colon + 1);
  }
  if (r.starts_with("//")) {
    const std::size_t slash = r.find('/', 2);
    p.authority = r.substr(2, slash == std::string_view::npos ? slash : slash - 2);
    p.has_authority = true;
    r = slash == std::string_view::npos ? std::string_view{} : r.substr(slash);
  }
  p.path = r;
  return p;
}

// Checks every component of a reference against its RFC 3986 production.
std::error_code check_reference(const reference_parts& r) noexcept {
  if (r.has_scheme && !is_scheme(r.scheme)) return url_error::bad_scheme;
  // A relative-path reference may not have a ':' in its first segment
  // (RFC 3986 §4.2, path-noscheme): ":x" would be a scheme-less scheme.
  if (!r.has_scheme && !r.has_authority && r.path.starts_with(':')) return url_error::bad_scheme;
  if (r.has_authority) {
    authority_view a;
    if (auto ec = parse_authority(r.authority, a)) return ec;
  }
  if (auto ec = check_chars(r.path, c_path, url_error::bad_path)) return ec;
  if (auto ec = check_chars(r.query, c_query, url_error::bad_query)) return ec;
  return check_chars(r.fragment, c_query, url_error::bad_fragment);
}

// RFC 3986 §5.2.3: the base path up to and including its last '/', then
// the reference's path; "/" + path when the base has an authority and an
// empty path.
std::string merge_paths(const url& base, std::string_view reference_path) {
  std::string out;
  if (base.has_authority && base.path.empty()) {
    out = "/";
  } else if (const std::size_t slash = base.path.rfind('/'); slash != std::string::npos) {
    out = base.path.substr(0, slash + 1);
  }
  out += reference_path;
  return out;
}

}  // namespace

result<url> resolve_reference(const url& base, std::string_view reference) {
  if (has_forbidden_byte(reference)) return unexpected(url_error::forbidden_byte);
  const reference_parts r = split_reference(reference);
  if (auto ec = check_reference(r)) return unexpected(ec);

  // RFC 3986 §5.2.2, with T the target written out as text (scheme ":"
  // ["//" authority] path ["?" query] ["#" fragment]) for parse_url to
  // check as it checks any URL.
  std::string text;
  text.reserve(base.scheme.size() + base.userinfo.size() + base.host.size() + base.path.size() +
               base.query.size() + base.fragment.size() + reference.size() + 16);
  bool has_authority = false;
  std::string path;
  std::string_view query;
  bool has_query = false;
  if (r.has_scheme) {
    text.append(r.scheme);
    text += ':';
    if (r.has_authority) {
      has_authority = true;
      text += "//";
      text.append(r.authority);
    }
    path = remove_dot_segments(r.path);
    query = r.query;
    has_query = r.has_query;
  } else {
    text += base.scheme;
    text += ':';
    if (r.has_authority) {
      has_authority = true;
      text += "//";
      text.append(r.authority);
      path = remove_dot_segments(r.path);
      query = r.query;
      has_query = r.has_query;
    } else {
      if (base.has_authority) {
        has_authority = true;
        text += "//";
        if (!base.userinfo.empty()) {
          text += base.userinfo;
          text += '@';
        }
        append_host(text, base.host, base.host_kind);
        if (!base.port_text.empty()) {
          text += ':';
          text += base.port_text;
        }
      }
      if (r.path.empty()) {
        path = base.path;
        query = r.has_query ? r.query : std::string_view(base.query);
        has_query = r.has_query || !base.query.empty();
      } else {
        path = remove_dot_segments(r.path.starts_with('/') ? std::string(r.path)
                                                           : merge_paths(base, r.path));
        query = r.query;
        has_query = r.has_query;
      }
    }
  }
  // Without an authority, "//x" would read back as the host "x".
  if (!has_authority && path.starts_with("//")) return unexpected(url_error::bad_path);
  text += path;
  if (has_query) {
    text += '?';
    text.append(query);
  }
  // RFC 9110 §10.2.2: a Location without a fragment keeps the base's.
  const std::string_view fragment = r.has_fragment ? r.fragment : std::string_view(base.fragment);
  if (r.has_fragment || !fragment.empty()) {
    text += '#';
    text.append(fragment);
  }
  return parse_url(text);
}

}  // namespace trellis::http
