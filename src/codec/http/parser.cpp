// HTTP/1.1 parser: the head scanner, the field semantics and the body
// framing state machine. See parser.hpp for the contract.
//
// The head scanner is one function per message kind (scan_head<true> for
// requests, <false> for responses) written as a sequence of tight loops
// joined by labels. It reads the caller's bytes left to right exactly once;
// when it runs out of bytes it saves its label, position and the offsets of
// the current line into head_state and returns need_more, and the next call
// jumps straight back to that label. Every verdict is taken at a fixed byte
// position (a limit fails at the first byte beyond it), so the outcome for
// a byte sequence is the same however it is split.
//
// Hot loops: request-target, field values and runs of [0-9A-Za-z.-] in
// methods, field names and hosts are checked 16 bytes at a time with SSE2
// (the x86-64 baseline; other targets use the same 256-entry class table
// as the rare bytes do). A head scanned in one call gets its views at once;
// one that took several calls keeps offsets until it is complete. The field
// names that matter for framing are recognised by length, then compared a
// word at a time, so every other field costs one switch. The chunked body
// decoder keeps its state in locals while it scans and hands out one run of
// data per call, consuming the framing on both sides of it.
#include "trellis/codec/http/parser.hpp"
#include "trellis/codec/ascii.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <limits>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "trellis/core/error.hpp"

namespace trellis::http {
namespace {

using codec::iequals;

// --- character classes --------------------------------------------------------

enum : std::uint8_t {
  k_tchar = 1 << 0,  // token character (RFC 9110 §5.6.2)
  k_value = 1 << 1,  // field-value byte other than HTAB: SP, VCHAR, obs-text (§5.5)
  k_host = 1 << 2,  // uri-host and port bytes (RFC 3986 §3.2.2): unreserved, sub-delims, %, :, [ ]
  k_scheme = 1 << 3,  // URI scheme byte after the first ALPHA (RFC 3986 §3.1)
  k_qdtext = 1 << 4,  // quoted-string text: HTAB, SP, VCHAR except " and \, obs-text (§5.6.4)
  k_reg = 1 << 5,     // reg-name / IPv4 byte: k_host without ':', '[' and ']'
};

constexpr bool in(std::string_view set, int c) {
  return c != 0 && set.find(static_cast<char>(c)) != std::string_view::npos;
}

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    std::uint8_t v = 0;
    if (alpha || digit || in("!#$%&'*+-.^_`|~", c)) v |= k_tchar;
    if (c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80) v |= k_value;
    if (alpha || digit || in("-._~!$&'()*+,;=%:[]", c)) v |= k_host;
    if (alpha || digit || in("+-.", c)) v |= k_scheme;
    if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
        (c >= 0x5d && c <= 0x7e) || c >= 0x80)
      v |= k_qdtext;
    if ((v & k_host) && !in(":[]", c)) v |= k_reg;
    t[static_cast<std::size_t>(c)] = v;
  }
  return t;
}

constexpr std::array<std::uint8_t, 256> classes = make_classes();

inline unsigned char uc(char c) noexcept {
  return static_cast<unsigned char>(c);
}
inline bool is(char c, std::uint8_t cls) noexcept {
  return (classes[uc(c)] & cls) != 0;
}
inline bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}
inline bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

inline int hex_value(unsigned char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  const unsigned char l = c | 0x20;
  if (l >= 'a' && l <= 'f') return l - 'a' + 10;
  return -1;
}

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::uint32_t load32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The `n` bytes at `p` equal the literal `lit` (lower-case letters, digits
// and '-', all of which have bit 0x20 set), ignoring case. OR-ing 0x20
// lower-cases letters and leaves digits and '-' alone. It is exact for the
// bytes the scanner lets into names and values: the only other bytes that
// OR to a letter are letters, to a digit are C0 controls, to '-' is CR.
inline bool lower_equals(const char* p, const char* lit, std::size_t n) noexcept {
  constexpr std::uint64_t m64 = 0x2020202020202020ull;
  constexpr std::uint32_t m32 = 0x20202020u;
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 <= n; i += 8)
      if ((load64(p + i) | m64) != load64(lit + i)) return false;
    return n % 8 == 0 || (load64(p + n - 8) | m64) == load64(lit + n - 8);
  }
  if (n >= 4)
    return (load32(p) | m32) == load32(lit) && (load32(p + n - 4) | m32) == load32(lit + n - 4);
  for (std::size_t i = 0; i < n; ++i)
    if ((uc(p[i]) | 0x20) != uc(lit[i])) return false;
  return true;
}

// A field name of exactly N-1 bytes is `lit`, ignoring case.
template <std::size_t N>
inline bool token_is(const char* name, const char (&lit)[N]) noexcept {
  return lower_equals(name, lit, N - 1);
}

// A scanned value equals `lit`, ignoring case.
template <std::size_t N>
inline bool value_is(std::string_view v, const char (&lit)[N]) noexcept {
  return v.size() == N - 1 && lower_equals(v.data(), lit, N - 1);
}

// --- scanning loops -----------------------------------------------------------

// The first byte in [p, end) that is not SP, VCHAR or obs-text: a CR ending
// the value, or HTAB (allowed; the caller steps over it), or an error.
inline const char* skip_value(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i k31 = _mm_set1_epi8(0x1f);
  const __m128i del = _mm_set1_epi8(0x7f);
  while (end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(x, k31), k31);  // x <= 0x1f
    const int mask = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(x, del)));
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && is(*p, k_value)) ++p;
  return p;
}

// The first byte in [p, end) that is not VCHAR (0x21-0x7e): the SP ending a
// request-target, or an error.
inline const char* skip_target(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i sp = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7f);
  while (end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i low = _mm_cmpeq_epi8(_mm_max_epu8(x, sp), sp);   // x <= 0x20
    const __m128i high = _mm_cmpeq_epi8(_mm_max_epu8(x, del), x);  // x >= 0x7f
    const int mask = _mm_movemask_epi8(_mm_or_si128(low, high));
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && uc(*p) > 0x20 && uc(*p) < 0x7f) ++p;
  return p;
}

// The first byte in [p, end) outside [0-9A-Za-z.-], 16 bytes at a time:
// the bytes of almost every method, field name and host name. Every byte
// of that set is a token character and a reg-name character.
inline const char* skip_common(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i k20 = _mm_set1_epi8(0x20);
  const __m128i ka = _mm_set1_epi8('a');
  const __m128i k25 = _mm_set1_epi8('z' - 'a');
  const __m128i kdash = _mm_set1_epi8('-');
  const __m128i k12 = _mm_set1_epi8('9' - '-');
  const __m128i kslash = _mm_set1_epi8('/');
  while (end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i l = _mm_sub_epi8(_mm_or_si128(x, k20), ka);
    const __m128i alpha = _mm_cmpeq_epi8(_mm_max_epu8(l, k25), k25);  // (x|0x20)-'a' <= 25
    const __m128i d = _mm_sub_epi8(x, kdash);
    const __m128i run = _mm_cmpeq_epi8(_mm_max_epu8(d, k12), k12);  // '-' <= x <= '9'
    const __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(x, kslash), _mm_or_si128(alpha, run));
    const unsigned mask = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffu;
    if (mask != 0) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  return p;
}

// The first byte in [p, end) that is not a token character: the SP after a
// method, the ':' after a field name, or an error. SSE2 skips runs of the
// common token bytes; the table decides the rest.
inline const char* skip_token(const char* p, const char* end) noexcept {
  for (;;) {
    p = skip_common(p, end);
    if (end - p < 16 || !is(*p, k_tchar)) break;
    ++p;  // a rarer token character ('_', '!'...): keep going
  }
  while (p < end && is(*p, k_tchar)) ++p;
  return p;
}

// `from + n`, or `lim` when that is nearer (no pointer past the buffer).
inline const char* clamp(const char* from, std::size_t n, const char* lim) noexcept {
  return static_cast<std::size_t>(lim - from) > n ? from + n : lim;
}

// --- field values -------------------------------------------------------------

std::size_t skip_ows(std::string_view v, std::size_t i) noexcept {
  while (i < v.size() && is_ows(v[i])) ++i;
  return i;
}

// Content-Length = 1*DIGIT, or a list of identical values (RFC 9110 §8.6).
// Strict: no sign, no inner space, no empty element, no overflow.
error parse_content_length(std::string_view v, std::uint64_t& out) noexcept {
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  std::size_t i = 0;
  bool first = true;
  bool same = true;
  std::uint64_t value = 0;
  for (;;) {
    if (i == v.size() || !is_digit(v[i])) return error::bad_content_length;
    std::uint64_t x = 0;
    do {
      const unsigned d = static_cast<unsigned>(v[i] - '0');
      if (x > (max - d) / 10) return error::bad_content_length;
      x = x * 10 + d;
    } while (++i < v.size() && is_digit(v[i]));
    if (!first && x != value) same = false;
    value = x;
    first = false;
    i = skip_ows(v, i);
    if (i == v.size()) break;
    if (v[i] != ',') return error::bad_content_length;
    i = skip_ows(v, i + 1);
  }
  if (!same) return error::conflicting_content_length;
  out = value;
  return {};
}

// quoted-string (RFC 9110 §5.6.4) starting at v[i] == '"'; advances i past
// the closing quote. False when malformed.
bool skip_quoted(std::string_view v, std::size_t& i) noexcept {
  ++i;
  while (i < v.size()) {
    const char c = v[i++];
    if (c == '"') return true;
    if (c == '\\') {
      if (i == v.size()) return false;
      const unsigned char q = uc(v[i++]);
      if (!(q == '\t' || (q >= 0x20 && q != 0x7f))) return false;
    } else if (!is(c, k_qdtext)) {
      return false;
    }
  }
  return false;
}

// Transfer-Encoding = #transfer-coding; transfer-coding = token *( OWS ";"
// OWS token BWS "=" BWS ( token / quoted-string ) ) (RFC 9112 §6.1, RFC
// 9110 §10.1.4). Several field lines form one list. Records what the
// resolution needs; problems are resolved when the head ends.
void parse_transfer_encoding(std::string_view v, detail::field_facts& f) noexcept {
  f.has_transfer_encoding = true;
  bool any = false;
  std::size_t i = 0;
  for (;;) {
    i = skip_ows(v, i);
    if (i == v.size()) break;
    if (v[i] == ',') {  // empty list element (RFC 9110 §5.6.1)
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < v.size() && is(v[i], k_tchar)) ++i;
    if (i == start) {
      f.te_malformed = true;
      return;
    }
    const bool chunked = value_is(v.substr(start, i - start), "chunked");
    bool params = false;
    i = skip_ows(v, i);
    while (i < v.size() && v[i] == ';') {
      params = true;
      i = skip_ows(v, i + 1);
      const std::size_t name = i;
      while (i < v.size() && is(v[i], k_tchar)) ++i;
      if (i == name) {
        f.te_malformed = true;
        return;
      }
      i = skip_ows(v, i);
      if (i == v.size() || v[i] != '=') {
        f.te_malformed = true;
        return;
      }
      i = skip_ows(v, i + 1);
      if (i < v.size() && v[i] == '"') {
        if (!skip_quoted(v, i)) {
          f.te_malformed = true;
          return;
        }
      } else {
        const std::size_t val = i;
        while (i < v.size() && is(v[i], k_tchar)) ++i;
        if (i == val) {
          f.te_malformed = true;
          return;
        }
      }
      i = skip_ows(v, i);
    }
    if (i < v.size() && v[i] != ',') {
      f.te_malformed = true;
      return;
    }
    // chunked MUST NOT be applied twice, and takes no parameters.
    if ((chunked && f.te_chunked_seen) || (chunked && params)) f.te_malformed = true;
    f.te_chunked_seen = f.te_chunked_seen || chunked;
    f.te_chunked_last = chunked;
    if (!chunked) f.te_other = true;
    any = true;
  }
  if (!any) f.te_malformed = true;
}

// Connection = #connection-option: records close, keep-alive and upgrade.
void parse_connection(std::string_view v, detail::field_facts& f) noexcept {
  if (value_is(v, "keep-alive")) {  // the usual values: one option
    f.connection_keep_alive = true;
    return;
  }
  if (value_is(v, "close")) {
    f.connection_close = true;
    return;
  }
  const char* p = v.data();
  const char* const e = p + v.size();
  while (p < e) {
    while (p < e && (*p == ',' || is_ows(*p))) ++p;
    const char* const t = p;
    while (p < e && *p != ',' && !is_ows(*p)) ++p;
    const std::size_t n = static_cast<std::size_t>(p - t);
    if (n == 10 && lower_equals(t, "keep-alive", 10))
      f.connection_keep_alive = true;
    else if (n == 5 && lower_equals(t, "close", 5))
      f.connection_close = true;
    else if (n == 7 && lower_equals(t, "upgrade", 7))
      f.connection_upgrade = true;
  }
}

// Host = uri-host [ ":" port ] (RFC 9110 §7.2); uri-host is an IP-literal
// in brackets or a reg-name / IPv4 address. Empty is valid (RFC 9112 §3.2).
// `readable` is the end of the caller's buffer: bytes up to it may be read
// (16 at a time) although only `v` is judged.
bool valid_host(std::string_view v, bool port_required, const char* readable) noexcept {
  std::size_t i = 0;
  if (!v.empty() && v[0] == '[') {
    const std::size_t close = v.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (i = 1; i < close; ++i)
      if (!is(v[i], k_host) || v[i] == '[') return false;
    i = close + 1;
  } else {
    const char* const run = skip_common(v.data(), readable);
    i = std::min(static_cast<std::size_t>(run - v.data()), v.size());
    while (i < v.size() && is(v[i], k_reg)) ++i;
    if (port_required && i == 0) return false;
  }
  if (i == v.size()) return !port_required;
  if (v[i] != ':') return false;
  ++i;
  if (port_required && i == v.size()) return false;
  for (; i < v.size(); ++i)
    if (!is_digit(v[i])) return false;
  return true;
}

// request-target forms (RFC 9112 §3.2): origin-form "/...", absolute-form
// "scheme:...", authority-form "host:port" for CONNECT only, asterisk-form
// "*" for OPTIONS only. Characters were checked by the scanner (VCHAR).
bool valid_target(method m, std::string_view t, const char* readable) noexcept {
  if (m == method::connect) return t[0] != '/' && valid_host(t, true, readable);
  if (t[0] == '/') return true;
  if (t[0] == '*') return t.size() == 1 && m == method::options;
  if (!((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z'))) return false;
  std::size_t i = 1;
  while (i < t.size() && is(t[i], k_scheme)) ++i;
  return i < t.size() && t[i] == ':';
}

// Semantics of one field line, in arrival order. Returns an error that is
// certain from this line alone; cross-field rules wait for the end of the
// head (resolve_*).
template <bool Request>
error on_field(detail::head_state& s, const char* base, const char* end, const char* name,
               std::size_t name_len, const char* value, std::size_t value_len) noexcept {
  detail::field_facts& f = s.facts;
  const std::string_view v(value, value_len);
  switch (name_len) {
    case 4:
      if (Request && token_is(name, "host")) {
        if (++f.host_count > 1) return error::duplicate_host;
        if (!valid_host(v, false, end)) return error::bad_host;
        f.host = static_cast<std::uint32_t>(value - base);
        f.host_len = static_cast<std::uint32_t>(value_len);
      }
      break;
    case 6:
      if (Request && token_is(name, "expect")) {
        if (value_is(v, "100-continue"))
          f.expect_continue = true;
        else if (!v.empty())
          f.expect_other = true;
      }
      break;
    case 7:
      if (token_is(name, "upgrade")) f.has_upgrade = true;
      break;
    case 10:
      if (token_is(name, "connection")) parse_connection(v, f);
      break;
    case 14:
      if (token_is(name, "content-length")) {
        std::uint64_t n = 0;
        if (const error e = parse_content_length(v, n); e != error{}) return e;
        if (f.has_content_length && n != f.content_length) return error::conflicting_content_length;
        f.has_content_length = true;
        f.content_length = n;
      }
      break;
    case 17:
      if (token_is(name, "transfer-encoding")) parse_transfer_encoding(v, f);
      break;
    default: break;
  }
  return {};
}

// --- the head scanner ---------------------------------------------------------

enum head_step : std::uint8_t {
  h_start,     // before the request line: skipping empty lines
  h_start_lf,  // CR of an empty line seen
  h_method,
  h_target,
  h_version,         // request HTTP-version and CRLF; `step` counts its bytes
  h_status_version,  // response HTTP-version and SP; `step` counts its bytes
  h_status_code,     // `step` counts digits
  h_reason,
  h_reason_lf,
  h_line,  // start of a field line, or the CRLF ending the head
  h_name,
  h_ows,
  h_value,
  h_value_lf,
  h_final_lf,
  h_done,
  h_error,
};

constexpr char version_prefix[] = "HTTP/";

// Byte `step` (0..7) of HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112
// §2.3; case-sensitive). Stores the digits.
inline bool version_byte(unsigned step, unsigned char c, unsigned& major,
                         unsigned& minor) noexcept {
  if (step < 5) return c == uc(version_prefix[step]);
  if (step == 6) return c == '.';
  if (c < '0' || c > '9') return false;
  (step == 5 ? major : minor) = c - '0';
  return true;
}

// Scans the head in `in`. On done, s.pos is the head size and s.offsets /
// s.start describe it; on error, s.err says why.
template <bool Request>
parse_status scan_head(detail::head_state& s, std::string_view in) noexcept {
  const char* const base = in.data();
  const char* const end = base + in.size();
  // No byte at or beyond `stop` may be part of the head.
  const char* const stop = clamp(base, s.limits.max_header_bytes, end);
  const char* p = base + s.pos;
  const char* m0 = base + s.mark[0];
  const char* m1 = base + s.mark[1];
  const char* m2 = base + s.mark[2];
  const char* m3 = base + s.mark[3];
  const char* rl_stop = nullptr;  // request line: min(stop, line start + max_request_line)
  unsigned step = s.step;
  unsigned major = s.major;
  unsigned minor = s.minor;
  int status = s.status;
  // Locals, not s.count / s.limits: stores into s.offsets could alias them.
  std::uint32_t count = s.count;
  const std::size_t max_count = s.limits.max_header_count;
  detail::field_offsets* const offsets = s.offsets.get();
  header_field* const fields = s.fields.get();
  // A head scanned in one call (the usual case) gets its views directly;
  // once a call has suspended, field lines are kept as offsets instead.
  const bool direct = !s.resumed;
  head_step resume = h_start;
  error e = error{};
  unsigned char c = 0;

  switch (static_cast<head_step>(s.state)) {
    case h_start: goto start;
    case h_start_lf: goto start_lf;
    case h_method: goto method;
    case h_target: goto target;
    case h_version: goto version;
    case h_status_version: goto status_version;
    case h_status_code: goto status_code;
    case h_reason: goto reason;
    case h_reason_lf: goto reason_lf;
    case h_line: goto line;
    case h_name: goto name;
    case h_ows: goto ows;
    case h_value: goto value;
    case h_value_lf: goto value_lf;
    case h_final_lf: goto final_lf;
    case h_done: return parse_status::done;
    case h_error: return parse_status::error;
  }

start:
  if constexpr (!Request) {
    step = 0;
    goto status_version;
  }
  if (p == stop) {
    resume = h_start;
    goto at_stop;
  }
  if (*p == '\r') {
    ++p;
    goto start_lf;
  }
  if (*p == '\n') {
    e = error::bare_lf;
    goto fail;
  }
  m0 = p;  // the request line starts here
  goto method;

start_lf:
  if (p == stop) {
    resume = h_start_lf;
    goto at_stop;
  }
  if (*p != '\n') {
    e = error::bare_cr;
    goto fail;
  }
  ++p;
  if (++step > static_cast<unsigned>(max_leading_empty_lines)) {
    e = error::bad_request_line;
    goto fail;
  }
  goto start;

  // --- request line: method SP request-target SP HTTP-version CRLF ---------
method:
  rl_stop = clamp(m0, s.limits.max_request_line, stop);
  p = skip_token(p, rl_stop);
  if (p == rl_stop) {
    resume = h_method;
    goto at_rl_stop;
  }
  if (*p != ' ') {
    e = *p == '\n' ? error::bare_lf : *p == '\r' ? error::bad_request_line : error::bad_method;
    goto fail;
  }
  if (p == m0) {
    e = error::bad_method;
    goto fail;
  }
  m1 = p;    // method end
  m2 = ++p;  // target start

target:
  rl_stop = clamp(m0, s.limits.max_request_line, stop);
  p = skip_target(p, rl_stop);
  if (p == rl_stop) {
    resume = h_target;
    goto at_rl_stop;
  }
  if (*p != ' ') {
    e = *p == '\n' ? error::bare_lf : *p == '\r' ? error::bad_request_line : error::bad_target;
    goto fail;
  }
  if (p == m2) {
    e = error::bad_target;
    goto fail;
  }
  m3 = p++;  // target end
  step = 0;
  // Fast path: the whole "HTTP/1.x\r\n" is here and within the limits.
  if (end - p >= 10 && stop - p >= 10 &&
      static_cast<std::size_t>(p + 8 - m0) <= s.limits.max_request_line &&
      std::memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0') && p[8] == '\r' &&
      p[9] == '\n') {
    major = 1;
    minor = static_cast<unsigned>(p[7] - '0');
    p += 10;
    goto request_line_done;
  }

version:
  for (;;) {
    if (p == end) {
      resume = h_version;
      goto suspend;
    }
    if (p == stop) {
      e = error::header_too_large;
      goto fail;
    }
    if (step < 8 && static_cast<std::size_t>(p - m0) >= s.limits.max_request_line) {
      e = error::uri_too_long;
      goto fail;
    }
    c = uc(*p);
    if (step == 9 && c != '\n') {
      e = error::bare_cr;
      goto fail;
    }
    if (step < 8 ? !version_byte(step, c, major, minor) : step == 8 && c != '\r') {
      e = c == '\n' ? error::bare_lf : error::bad_version;
      goto fail;
    }
    ++p;
    if (++step == 10) break;
  }

request_line_done:
  if (major != 1 || minor > 1) {
    e = error::unsupported_version;
    goto fail;
  }
  s.method = parse_method(std::string_view(m0, static_cast<std::size_t>(m1 - m0)));
  if (!valid_target(s.method, std::string_view(m2, static_cast<std::size_t>(m3 - m2)), end)) {
    e = error::bad_target;
    goto fail;
  }
  s.start[0] = static_cast<std::uint32_t>(m0 - base);
  s.start[1] = static_cast<std::uint32_t>(m1 - m0);
  s.start[2] = static_cast<std::uint32_t>(m2 - base);
  s.start[3] = static_cast<std::uint32_t>(m3 - m2);
  goto line;

  // --- status line: HTTP-version SP 3DIGIT SP reason-phrase CRLF -----------
status_version:
  if (step == 0 && stop - p >= 9 && std::memcmp(p, "HTTP/1.", 7) == 0 &&
      (p[7] == '1' || p[7] == '0') && p[8] == ' ') {
    major = 1;
    minor = static_cast<unsigned>(p[7] - '0');
    p += 9;
    step = 9;
  }
  while (step < 9) {
    if (p == stop) {
      resume = h_status_version;
      goto at_stop;
    }
    c = uc(*p);
    if (step < 8 ? !version_byte(step, c, major, minor) : c != ' ') {
      e = c == '\n'                ? error::bare_lf
          : step == 8 && c == '\r' ? error::bad_status_line
                                   : error::bad_version;
      goto fail;
    }
    ++p;
    ++step;
  }
  if (major != 1 || minor > 1) {
    e = error::unsupported_version;
    goto fail;
  }
  step = 0;
  status = 0;

status_code:
  while (step < 3) {
    if (p == stop) {
      resume = h_status_code;
      goto at_stop;
    }
    if (!is_digit(*p)) {
      e = *p == '\n' ? error::bare_lf : error::bad_status_line;
      goto fail;
    }
    status = status * 10 + (*p++ - '0');
    ++step;
  }
  if (p == stop) {
    resume = h_status_code;
    goto at_stop;
  }
  if (status < 100 || status > 599) {
    e = error::bad_status_line;
    goto fail;
  }
  if (*p == '\r') {  // "HTTP/1.1 204\r\n": no SP, empty reason
    m0 = m1 = p++;
    goto reason_lf;
  }
  if (*p != ' ') {
    e = *p == '\n' ? error::bare_lf : error::bad_status_line;
    goto fail;
  }
  m0 = ++p;  // reason start

reason:
  for (;;) {
    p = skip_value(p, stop);
    if (p == stop) {
      resume = h_reason;
      goto at_stop;
    }
    if (*p != '\t') break;
    ++p;
  }
  if (*p != '\r') {
    e = *p == '\n' ? error::bare_lf : error::bad_status_line;
    goto fail;
  }
  m1 = p++;  // reason end

reason_lf:
  if (p == stop) {
    resume = h_reason_lf;
    goto at_stop;
  }
  if (*p != '\n') {
    e = error::bare_cr;
    goto fail;
  }
  ++p;
  s.status = status;
  s.start[0] = static_cast<std::uint32_t>(m0 - base);
  s.start[1] = static_cast<std::uint32_t>(m1 - m0);
  goto line;

  // --- field lines: field-name ":" OWS field-value OWS CRLF ----------------
line:
  if (p == stop) {
    resume = h_line;
    goto at_stop;
  }
  if (*p == '\r') {
    ++p;
    goto final_lf;
  }
  if (!is(*p, k_tchar)) {
    e = is_ows(*p) ? error::obs_fold : *p == '\n' ? error::bare_lf : error::bad_field_name;
    goto fail;
  }
  if (count == max_count) {
    e = error::too_many_headers;
    goto fail;
  }
  m0 = p++;  // name start

name:
  p = skip_token(p, stop);
  if (p == stop) {
    resume = h_name;
    goto at_stop;
  }
  if (*p != ':') {
    e = is_ows(*p)   ? error::whitespace_before_colon
        : *p == '\n' ? error::bare_lf
                     : error::bad_field_name;
    goto fail;
  }
  m1 = p++;  // name end

ows:
  while (p < stop && is_ows(*p)) ++p;
  if (p == stop) {
    resume = h_ows;
    goto at_stop;
  }
  m2 = p;  // value start

value:
  for (;;) {
    p = skip_value(p, stop);
    if (p == stop) {
      resume = h_value;
      goto at_stop;
    }
    if (*p != '\t') break;
    ++p;
  }
  if (*p != '\r') {
    e = *p == '\n' ? error::bare_lf : error::bad_field_value;
    goto fail;
  }
  m3 = p++;  // value end (before trimming)

value_lf:
  if (p == stop) {
    resume = h_value_lf;
    goto at_stop;
  }
  if (*p != '\n') {
    e = error::bare_cr;
    goto fail;
  }
  ++p;
  while (m3 > m2 && is_ows(m3[-1])) --m3;
  if (direct) {
    fields[count] = {std::string_view(m0, static_cast<std::size_t>(m1 - m0)),
                     std::string_view(m2, static_cast<std::size_t>(m3 - m2))};
  } else {
    offsets[count] = {static_cast<std::uint32_t>(m0 - base), static_cast<std::uint32_t>(m1 - m0),
                      static_cast<std::uint32_t>(m2 - base), static_cast<std::uint32_t>(m3 - m2)};
  }
  ++count;
  e = on_field<Request>(s, base, end, m0, static_cast<std::size_t>(m1 - m0), m2,
                        static_cast<std::size_t>(m3 - m2));
  if (e != error{}) goto fail;
  goto line;

final_lf:
  if (p == stop) {
    resume = h_final_lf;
    goto at_stop;
  }
  if (*p != '\n') {
    e = error::bare_cr;
    goto fail;
  }
  ++p;
  s.count = count;
  s.pos = static_cast<std::uint32_t>(p - base);
  s.major = static_cast<std::uint8_t>(major);
  s.minor = static_cast<std::uint8_t>(minor);
  s.state = h_done;
  return parse_status::done;

  // --- running out of bytes, or into a limit -------------------------------
at_rl_stop:  // p == rl_stop inside the request line, before the version
  if (p == end) goto suspend;
  if (p == stop) {
    e = error::header_too_large;
    goto fail;
  }
  // The byte at offset max_request_line may only be the CR ending the line.
  e = *p == '\r' ? error::bad_request_line : *p == '\n' ? error::bare_lf : error::uri_too_long;
  goto fail;

at_stop:  // p == stop
  if (p != end) {
    e = error::header_too_large;
    goto fail;
  }

suspend:
  if (direct) {
    for (std::uint32_t i = 0; i < count; ++i)
      offsets[i] = {static_cast<std::uint32_t>(fields[i].name.data() - base),
                    static_cast<std::uint32_t>(fields[i].name.size()),
                    static_cast<std::uint32_t>(fields[i].value.data() - base),
                    static_cast<std::uint32_t>(fields[i].value.size())};
    s.resumed = true;
  }
  s.count = count;
  s.pos = static_cast<std::uint32_t>(p - base);
  s.mark[0] = static_cast<std::uint32_t>(m0 - base);
  s.mark[1] = static_cast<std::uint32_t>(m1 - base);
  s.mark[2] = static_cast<std::uint32_t>(m2 - base);
  s.mark[3] = static_cast<std::uint32_t>(m3 - base);
  s.step = static_cast<std::uint8_t>(step);
  s.major = static_cast<std::uint8_t>(major);
  s.minor = static_cast<std::uint8_t>(minor);
  s.status = status;
  s.state = resume;
  return parse_status::need_more;

fail:
  s.count = count;
  s.err = e;
  s.state = h_error;
  return parse_status::error;
}

// Views for the field lines, now that the bytes are complete (made during
// the scan when it took one call).
std::span<const header_field> make_fields(detail::head_state& s, const char* base) noexcept {
  if (!s.resumed) return {s.fields.get(), s.count};
  for (std::uint32_t i = 0; i < s.count; ++i) {
    const detail::field_offsets& o = s.offsets[i];
    s.fields[i] = {std::string_view(base + o.name, o.name_len),
                   std::string_view(base + o.value, o.value_len)};
  }
  return {s.fields.get(), s.count};
}

std::string_view find_field(std::span<const header_field> fields, std::string_view name) noexcept {
  for (const header_field& f : fields)
    if (iequals(f.name, name)) return f.value;
  return {};
}

// Cross-field rules for a request (RFC 9112 §3.2, §6.1, §6.3).
error resolve_request(const detail::head_state& s, request_head& h) noexcept {
  const detail::field_facts& f = s.facts;
  h.framing = framing::none;
  h.content_length = f.content_length;
  if (f.has_transfer_encoding) {
    if (f.has_content_length) return error::content_length_with_transfer_encoding;
    if (s.minor == 0) return error::bad_transfer_encoding;  // §6.1: faulty framing in 1.0
    if (f.te_malformed || !f.te_chunked_last) return error::bad_transfer_encoding;  // §6.3 item 4
    if (f.te_other) return error::unsupported_transfer_encoding;                    // §6.1: 501
    h.framing = framing::chunked;
  } else if (f.has_content_length) {
    h.framing = framing::content_length;
  }
  if (s.method == method::connect) h.framing = framing::tunnel;
  if (s.minor == 1 && f.host_count == 0) return error::missing_host;
  if (h.framing == framing::content_length && f.content_length > s.limits.max_body)
    return error::body_too_large;
  h.keep_alive = !f.connection_close && (s.minor == 1 || f.connection_keep_alive);
  h.expect_continue = s.minor == 1 && f.expect_continue;
  h.expect_unsupported = f.expect_other;
  h.upgrade = s.minor == 1 && f.connection_upgrade && f.has_upgrade;
  return {};
}

// Cross-field rules for a response (RFC 9112 §6.3) answering `req`.
error resolve_response(const detail::head_state& s, method req, response_head& h) noexcept {
  const detail::field_facts& f = s.facts;
  const int st = s.status;
  h.content_length = f.content_length;
  if (f.has_transfer_encoding) {
    if (f.has_content_length) return error::content_length_with_transfer_encoding;
    if (s.minor == 0 || f.te_malformed) return error::bad_transfer_encoding;
  }
  if (req == method::head || (st >= 100 && st < 200 && st != 101) || st == 204 || st == 304) {
    h.framing = framing::none;
  } else if (st == 101 || (req == method::connect && st >= 200 && st < 300)) {
    h.framing = framing::tunnel;
  } else if (f.has_transfer_encoding) {
    h.framing = f.te_chunked_last ? framing::chunked : framing::until_close;
  } else if (f.has_content_length) {
    h.framing = framing::content_length;
    if (f.content_length > s.limits.max_body) return error::body_too_large;
  } else {
    h.framing = framing::until_close;
  }
  h.keep_alive = !f.connection_close && (s.minor == 1 || f.connection_keep_alive) &&
                 h.framing != framing::until_close && h.framing != framing::tunnel;
  return {};
}

constexpr std::size_t max_limit = std::size_t{1} << 30;

parser_limits checked(parser_limits l) {
  const auto check = [](std::size_t v, const char* field) {
    if (v > max_limit) throw core::config_error(field, "must be at most 1 GiB");
  };
  check(l.max_request_line, "http.parser_limits.max_request_line");
  check(l.max_header_bytes, "http.parser_limits.max_header_bytes");
  check(l.max_header_count, "http.parser_limits.max_header_count");
  check(l.max_chunk_line, "http.parser_limits.max_chunk_line");
  check(l.max_trailer_bytes, "http.parser_limits.max_trailer_bytes");
  return l;
}

// Trailer fields that must not appear after the body (RFC 9110 §6.5.1):
// framing, routing and connection control.
bool forbidden_trailer(std::string_view lowered) noexcept {
  switch (lowered.size()) {
    case 2: return lowered == "te";
    case 4: return lowered == "host";
    case 7: return lowered == "trailer" || lowered == "upgrade";
    case 10: return lowered == "connection" || lowered == "keep-alive";
    case 14: return lowered == "content-length";
    case 17: return lowered == "transfer-encoding";
    default: return false;
  }
}

}  // namespace

// --- head_state, body_decoder --------------------------------------------------

namespace detail {

head_state::head_state(const parser_limits& l)
    : limits(checked(l)),
      offsets(new field_offsets[l.max_header_count]),
      fields(new header_field[l.max_header_count]) {}

void body_decoder::start(framing f, std::uint64_t length) noexcept {
  reset();
  switch (f) {
    case framing::none:
    case framing::tunnel: state_ = s_done; break;
    case framing::content_length:
      remaining_ = length;
      state_ = length != 0 ? s_length : s_done;
      break;
    case framing::chunked: state_ = s_size_first; break;
    case framing::until_close: state_ = s_until_close; break;
  }
}

http::error body_decoder::fail(http::error e) noexcept {
  state_ = s_error;
  err_ = e;
  return e;
}

http::error body_decoder::finish() noexcept {
  switch (state_) {
    case s_idle:
    case s_done: return {};
    case s_error: return err_;
    case s_until_close: state_ = s_done; return {};
    default: return fail(error::partial_message);
  }
}

result<std::size_t> body_decoder::decode(std::string_view in, std::string_view& data,
                                         const parser_limits& limits) noexcept {
  data = {};
  switch (state_) {
    case s_idle:
    case s_done: return std::size_t{0};
    case s_error: return unexpected(err_);
    case s_length: {
      const std::size_t n =
          remaining_ < in.size() ? static_cast<std::size_t>(remaining_) : in.size();
      data = in.substr(0, n);
      remaining_ -= n;
      if (remaining_ == 0) state_ = s_done;
      return n;
    }
    case s_until_close:
      if (in.size() > limits.max_body - total_) return unexpected(fail(error::body_too_large));
      total_ += in.size();
      data = in;
      return in.size();
    default: break;
  }

  // Chunked (RFC 9112 §7.1). Framing bytes are consumed as they come (the
  // caller never keeps a partial chunk line); one run of data is handed out
  // per call, with the framing before and after it. The state lives in
  // locals while scanning: `data` could alias the members as far as the
  // compiler knows, which would reload them on every byte.
  const char* const begin = in.data();
  const char* const end = begin + in.size();
  const char* p = begin;
  const char* out = nullptr;  // the run of data found
  std::size_t out_len = 0;
  const std::size_t max_line = limits.max_chunk_line;
  const std::size_t max_trailer = limits.max_trailer_bytes;
  state st = state_;
  std::uint64_t remaining = remaining_;
  std::uint64_t size = size_;
  std::size_t line = line_;
  const auto save = [&] {
    state_ = st;
    remaining_ = remaining;
    size_ = size;
    line_ = line;
    if (out != nullptr) data = std::string_view(out, out_len);
  };
  const auto bad = [&](http::error e) {
    save();
    data = {};
    return unexpected(fail(e));
  };
  while (p < end) {
    const unsigned char c = uc(*p);
    switch (st) {
      case s_data: {
        if (out != nullptr) goto done;  // one run per call
        const std::size_t avail = static_cast<std::size_t>(end - p);
        out_len = remaining < avail ? static_cast<std::size_t>(remaining) : avail;
        out = p;
        p += out_len;
        remaining -= out_len;
        if (remaining == 0) st = s_data_cr;
        continue;
      }
      case s_data_cr:
        if (c != '\r') return bad(error::bad_chunk);
        if (end - p >= 2 && p[1] == '\n') {  // the usual case: the whole CRLF is here
          st = s_size_first;
          p += 2;
          continue;
        }
        st = s_data_lf;
        ++p;
        continue;
      case s_data_lf:
        if (c != '\n') return bad(error::bad_chunk);
        st = s_size_first;
        ++p;
        continue;
      case s_size_first: {
        const int h = hex_value(c);
        if (h < 0) return bad(error::bad_chunk);
        line = 1;
        if (line > max_line) return bad(error::bad_chunk);
        size = static_cast<std::uint64_t>(h);
        st = s_size;
        if (++p == end) goto done;
        [[fallthrough]];
      }
      case s_size: {
        int h = 0;
        while ((h = hex_value(uc(*p))) >= 0) {
          if (++line > max_line || (size >> 60) != 0)  // too long, or would overflow
            return bad(error::bad_chunk);
          size = size << 4 | static_cast<std::uint64_t>(h);
          if (++p == end) goto done;
        }
        const unsigned char d = uc(*p);
        if (d != '\r' && ++line > max_line) return bad(error::bad_chunk);
        if (size > limits.max_body - total_) return bad(error::body_too_large);
        total_ += size;
        if (d == '\r')
          st = s_size_lf;
        else if (d == ';')
          st = s_ext_name_ws;
        else if (d == ' ' || d == '\t')
          st = s_ext_ws;
        else
          return bad(error::bad_chunk);
        ++p;
        continue;
      }
      case s_size_lf:
        if (c != '\n') return bad(error::bad_chunk);
        ++p;
        line = 0;
        if (size == 0) {
          st = s_trailer_start;
        } else {
          remaining = size;
          st = s_data;
        }
        continue;
      default: break;
    }

    if (st <= s_ext_after_quoted) {
      // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ),
      // byte by byte except for runs of token characters. Extensions are
      // ignored. The CR ending the line does not count towards max_chunk_line.
      if ((st == s_ext_name || st == s_ext_token) && is(static_cast<char>(c), k_tchar)) {
        const char* q = skip_token(p + 1, end);
        line += static_cast<std::size_t>(q - p);
        if (line > max_line) return bad(error::bad_chunk);
        p = q;
        continue;
      }
      if (c != '\r' && ++line > max_line) return bad(error::bad_chunk);
      const bool ws = c == ' ' || c == '\t';
      switch (st) {
        case s_ext_ws:  // BWS is allowed only before ';'
          if (c == ';')
            st = s_ext_name_ws;
          else if (!ws)
            return bad(error::bad_chunk_extension);
          break;
        case s_ext_name_ws:
          if (is(static_cast<char>(c), k_tchar))
            st = s_ext_name;
          else if (!ws)
            return bad(error::bad_chunk_extension);
          break;
        case s_ext_name:
          if (c == '=')
            st = s_ext_value_ws;
          else if (c == ';')
            st = s_ext_name_ws;
          else if (ws)
            st = s_ext_after_name_ws;
          else if (c == '\r')
            st = s_size_lf;
          else
            return bad(error::bad_chunk_extension);
          break;
        case s_ext_after_name_ws:
          if (c == '=')
            st = s_ext_value_ws;
          else if (c == ';')
            st = s_ext_name_ws;
          else if (!ws)
            return bad(error::bad_chunk_extension);
          break;
        case s_ext_value_ws:
          if (c == '"')
            st = s_ext_quoted;
          else if (is(static_cast<char>(c), k_tchar))
            st = s_ext_token;
          else if (!ws)
            return bad(error::bad_chunk_extension);
          break;
        case s_ext_token:
          if (c == ';')
            st = s_ext_name_ws;
          else if (ws)
            st = s_ext_ws;
          else if (c == '\r')
            st = s_size_lf;
          else
            return bad(error::bad_chunk_extension);
          break;
        case s_ext_quoted:
          if (c == '"')
            st = s_ext_after_quoted;
          else if (c == '\\')
            st = s_ext_quoted_pair;
          else if (!is(static_cast<char>(c), k_qdtext))
            return bad(error::bad_chunk_extension);
          break;
        case s_ext_quoted_pair:
          if (!(c == '\t' || (c >= 0x20 && c != 0x7f))) return bad(error::bad_chunk_extension);
          st = s_ext_quoted;
          break;
        case s_ext_after_quoted:
          if (c == ';')
            st = s_ext_name_ws;
          else if (ws)
            st = s_ext_ws;
          else if (c == '\r')
            st = s_size_lf;
          else
            return bad(error::bad_chunk_extension);
          break;
        default: return bad(error::bad_chunk);
      }
      ++p;
      continue;
    }

    // trailer-section = *( field-line CRLF ) CRLF, validated like the head's
    // field lines and counted against max_trailer_bytes; byte by byte except
    // for runs of name and value bytes.
    if (st == s_trailer_value && c != '\r') {
      const char* q = p;
      for (;;) {
        q = skip_value(q, end);
        if (q == end || *q != '\t') break;
        ++q;
      }
      if (q != p) {
        line += static_cast<std::size_t>(q - p);
        if (line > max_trailer) return bad(error::trailer_too_large);
        p = q;
        continue;
      }
    } else if (st == s_trailer_name && is(static_cast<char>(c), k_tchar)) {
      const char* q = skip_token(p, end);
      line += static_cast<std::size_t>(q - p);
      if (line > max_trailer) return bad(error::trailer_too_large);
      for (; p < q; ++p, ++name_len_)
        if (name_len_ < sizeof name_) name_[name_len_] = codec::ascii_lower(*p);
      continue;
    }
    if (++line > max_trailer) return bad(error::trailer_too_large);
    switch (st) {
      case s_trailer_start:
        if (c == '\r') {
          st = s_final_lf;
        } else if (is(static_cast<char>(c), k_tchar)) {
          name_[0] = codec::ascii_lower(static_cast<char>(c));
          name_len_ = 1;
          st = s_trailer_name;
        } else {
          return bad(error::bad_trailer);  // obs-fold, bare LF, junk
        }
        break;
      case s_trailer_name:  // the first byte that is not a token character
        if (c != ':' ||
            (name_len_ <= sizeof name_ && forbidden_trailer(std::string_view(name_, name_len_))))
          return bad(error::bad_trailer);
        st = s_trailer_value;
        break;
      case s_trailer_value:
        if (c != '\r') return bad(error::bad_trailer);
        st = s_trailer_lf;
        break;
      case s_trailer_lf:
        if (c != '\n') return bad(error::bad_trailer);
        st = s_trailer_start;
        break;
      case s_final_lf:
        if (c != '\n') return bad(error::bad_trailer);
        st = s_done;
        ++p;
        goto done;
      default: return bad(error::bad_chunk);
    }
    ++p;
  }
done:
  save();
  return static_cast<std::size_t>(p - begin);
}

}  // namespace detail

// --- heads -------------------------------------------------------------------

std::string_view request_head::find(std::string_view name) const noexcept {
  return find_field(headers, name);
}

std::string_view response_head::find(std::string_view name) const noexcept {
  return find_field(headers, name);
}

namespace {

// What parse_body() shares between the two parsers. A body error stays in
// the decoder; error() and finish() look there too.
inline result<std::size_t> body_step(detail::head_state& s, detail::body_decoder& body,
                                     std::string_view input, std::string_view& data) {
  if (s.state == h_error) [[unlikely]] {
    data = {};
    return unexpected(s.error());
  }
  return body.decode(input, data, s.limits);
}

result<void> finish_step(detail::head_state& s, detail::body_decoder& body) {
  if (s.state == h_error) return unexpected(s.error());
  if (body.failed()) return unexpected(body.error());
  if (s.state != h_done) {
    if (s.pos == 0 && (s.state == h_start || s.state == h_status_version)) return {};
    s.err = error::partial_message;
    s.state = h_error;
    return unexpected(s.error());
  }
  if (const http::error e = body.finish(); e != http::error{}) {
    s.err = e;
    s.state = h_error;
    return unexpected(s.error());
  }
  return {};
}

parse_status failed(detail::head_state& s, http::error e) {
  s.err = e;
  s.state = h_error;
  return parse_status::error;
}

}  // namespace

// --- request_parser ------------------------------------------------------------

request_parser::request_parser(parser_limits limits) : state_(limits) {}

parse_status request_parser::parse_head(std::string_view buffered) {
  if (state_.state == h_done) return parse_status::done;
  if (state_.state == h_error) return parse_status::error;
  assert(buffered.size() >= state_.pos && "parse_head: bytes given last time are missing");
  if (buffered.size() < state_.pos) return parse_status::need_more;
  const parse_status st = scan_head<true>(state_, buffered);
  if (st != parse_status::done) return st;

  const char* base = buffered.data();
  request_head& h = head_;
  h.method = state_.method;
  h.method_text = std::string_view(base + state_.start[0], state_.start[1]);
  h.target = std::string_view(base + state_.start[2], state_.start[3]);
  h.version_minor = state_.minor;
  h.headers = make_fields(state_, base);
  h.host = std::string_view(base + state_.facts.host, state_.facts.host_len);
  if (const http::error e = resolve_request(state_, h); e != http::error{})
    return failed(state_, e);
  head_size_ = state_.pos;
  body_.start(h.framing, h.content_length);
  return parse_status::done;
}

result<std::size_t> request_parser::parse_body(std::string_view input, std::string_view& data) {
  return body_step(state_, body_, input, data);
}

result<void> request_parser::finish() {
  return finish_step(state_, body_);
}

void request_parser::reset() noexcept {
  state_.reset();
  body_.reset();
  head_.headers = {};
  head_size_ = 0;
}

// --- response_parser -------------------------------------------------------------

response_parser::response_parser(parser_limits limits) : state_(limits) {}

parse_status response_parser::parse_head(std::string_view buffered) {
  if (state_.state == h_done) return parse_status::done;
  if (state_.state == h_error) return parse_status::error;
  assert(buffered.size() >= state_.pos && "parse_head: bytes given last time are missing");
  if (buffered.size() < state_.pos) return parse_status::need_more;
  const parse_status st = scan_head<false>(state_, buffered);
  if (st != parse_status::done) return st;

  const char* base = buffered.data();
  response_head& h = head_;
  h.status = state_.status;
  h.reason = std::string_view(base + state_.start[0], state_.start[1]);
  h.version_minor = state_.minor;
  h.headers = make_fields(state_, base);
  if (const http::error e = resolve_response(state_, request_method_, h); e != http::error{})
    return failed(state_, e);
  head_size_ = state_.pos;
  body_.start(h.framing, h.content_length);
  return parse_status::done;
}

result<std::size_t> response_parser::parse_body(std::string_view input, std::string_view& data) {
  return body_step(state_, body_, input, data);
}

result<void> response_parser::finish() {
  return finish_step(state_, body_);
}

void response_parser::reset() noexcept {
  state_.reset();
  body_.reset();
  head_.headers = {};
  head_size_ = 0;
}

}  // namespace trellis::http
