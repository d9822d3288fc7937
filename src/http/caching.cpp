#include "trellis/http/caching.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/date.hpp"

namespace trellis::http {

namespace {

using codec::ascii_lower;
using codec::iequals;
using codec::is_ows;
using codec::trim_ows;
using std::chrono::seconds;

constexpr std::int64_t k_max_delta = max_delta_seconds.count();

// tchar (RFC 9110 §5.6.2).
constexpr bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

std::int64_t clamp_delta(std::int64_t v) noexcept {
  return std::clamp<std::int64_t>(v, 0, k_max_delta);
}

// Seconds since the epoch, rounded down: time differences computed from
// these cannot overflow, whatever the time points (min() and max() too).
std::int64_t epoch_seconds(cache_time t) noexcept {
  return std::chrono::floor<seconds>(t.time_since_epoch()).count();
}

// a - b in whole seconds, rounded down, without overflow.
std::int64_t seconds_between(cache_time a, cache_time b) noexcept {
  const std::int64_t coarse = epoch_seconds(a) - epoch_seconds(b);
  // Within ~31 years the nanosecond difference cannot overflow; use it for
  // exact rounding.
  if (coarse > -1'000'000'000 && coarse < 1'000'000'000)
    return std::chrono::floor<seconds>(a - b).count();
  return coarse;
}

// The index just past the quoted-string that starts at s[i] == '"'
// (RFC 9110 §5.6.4), or npos when it is not terminated. `escaped` is set
// when it holds a quoted-pair.
std::size_t skip_quoted(std::string_view s, std::size_t i, bool& escaped) noexcept {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      escaped = true;
      if (++i == s.size()) return std::string_view::npos;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Calls f(member) for each member of the comma-separated list `value`,
// trimmed of OWS, empty members skipped; commas inside quoted strings do
// not split.
template <class F>
void for_each_member(std::string_view value, F&& f) {
  std::size_t start = 0;
  std::size_t i = 0;
  while (i <= value.size()) {
    if (i == value.size() || value[i] == ',') {
      const std::string_view m = trim_ows(value.substr(start, i - start));
      if (!m.empty()) f(m);
      start = i + 1;
      ++i;
    } else if (value[i] == '"') {
      bool escaped = false;
      const std::size_t end = skip_quoted(value, i, escaped);
      i = end == std::string_view::npos ? value.size() : end;
    } else {
      ++i;
    }
  }
}

// --- Cache-Control ---------------------------------------------------------------

enum class arg_kind { none, token, quoted, malformed };

struct directive_arg {
  arg_kind kind = arg_kind::none;
  std::string_view text;  // token, or quoted-string content without quotes
  bool escaped = false;   // the quoted-string holds a quoted-pair
};

// delta-seconds = 1*DIGIT (§1.2.2), from a token or a quoted-string
// without escapes; above 2^31 reads as 2^31.
std::optional<seconds> parse_delta(const directive_arg& a) noexcept {
  if (a.kind != arg_kind::token && a.kind != arg_kind::quoted) return std::nullopt;
  if (a.escaped || a.text.empty()) return std::nullopt;
  std::int64_t v = 0;
  for (char c : a.text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v <= k_max_delta) v = v * 10 + (c - '0');
  }
  return seconds{clamp_delta(v)};
}

// A field-name list argument (no-cache, private): a view when it is a
// non-empty list of tokens.
std::optional<std::string_view> parse_field_list(const directive_arg& a) noexcept {
  if (a.kind != arg_kind::token && a.kind != arg_kind::quoted) return std::nullopt;
  if (a.escaped) return std::nullopt;
  bool ok = true;
  std::size_t names = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= a.text.size(); ++i) {
    if (i == a.text.size() || a.text[i] == ',') {
      const std::string_view m = trim_ows(a.text.substr(start, i - start));
      if (!m.empty()) {
        if (!is_token(m)) ok = false;
        ++names;
      }
      start = i + 1;
    }
  }
  if (!ok || names == 0) return std::nullopt;
  return a.text;
}

void set_freshness(std::optional<seconds>& slot, bool& invalid, std::optional<seconds> v) noexcept {
  if (!v) {
    invalid = true;
  } else if (slot && !invalid && *slot != *v) {
    invalid = true;
  }
  slot = invalid ? seconds{0} : *v;
}

void set_min(std::optional<seconds>& slot, seconds v) noexcept {
  slot = slot ? std::min(*slot, v) : v;
}

void set_list(bool& present, std::optional<std::string_view>& list,
              std::optional<std::string_view> v) noexcept {
  if (!present) {
    present = true;
    list = v;
  } else if (!(list && v && *list == *v)) {
    list.reset();
  }
}

void apply_directive(std::string_view name, const directive_arg& a, cache_control& cc) noexcept {
  switch (name.size()) {
    case 6:
      if (iequals(name, "public")) cc.public_ = true;
      return;
    case 7:
      if (iequals(name, "max-age"))
        set_freshness(cc.max_age, cc.max_age_invalid, parse_delta(a));
      else if (iequals(name, "private"))
        set_list(cc.private_, cc.private_fields, parse_field_list(a));
      return;
    case 8:
      if (iequals(name, "no-cache"))
        set_list(cc.no_cache, cc.no_cache_fields, parse_field_list(a));
      else if (iequals(name, "no-store"))
        cc.no_store = true;
      else if (iequals(name, "s-maxage"))
        set_freshness(cc.s_maxage, cc.s_maxage_invalid, parse_delta(a));
      return;
    case 9:
      if (iequals(name, "max-stale")) {
        if (a.kind == arg_kind::none) {
          set_min(cc.max_stale, max_delta_seconds);
        } else if (auto v = parse_delta(a)) {
          set_min(cc.max_stale, *v);
        }
      } else if (iequals(name, "min-fresh")) {
        const seconds v = parse_delta(a).value_or(max_delta_seconds);
        cc.min_fresh = cc.min_fresh ? std::max(*cc.min_fresh, v) : v;
      } else if (iequals(name, "immutable")) {
        cc.immutable = true;
      }
      return;
    case 12:
      if (iequals(name, "no-transform")) cc.no_transform = true;
      return;
    case 14:
      if (iequals(name, "only-if-cached")) {
        cc.only_if_cached = true;
      } else if (iequals(name, "stale-if-error")) {
        if (auto v = parse_delta(a)) set_min(cc.stale_if_error, *v);
      }
      return;
    case 15:
      if (iequals(name, "must-revalidate"))
        cc.must_revalidate = true;
      else if (iequals(name, "must-understand"))
        cc.must_understand = true;
      return;
    case 16:
      if (iequals(name, "proxy-revalidate")) cc.proxy_revalidate = true;
      return;
    case 22:
      if (iequals(name, "stale-while-revalidate"))
        if (auto v = parse_delta(a)) set_min(cc.stale_while_revalidate, *v);
      return;
    default: return;
  }
}

// Skips to the comma ending the current list member (or the end), past
// quoted strings.
std::size_t skip_member(std::string_view s, std::size_t i) noexcept {
  while (i < s.size() && s[i] != ',') {
    if (s[i] == '"') {
      bool escaped = false;
      const std::size_t end = skip_quoted(s, i, escaped);
      if (end == std::string_view::npos) return s.size();
      i = end;
    } else {
      ++i;
    }
  }
  return i;
}

// --- dates ----------------------------------------------------------------------

// Parses an HTTP-date ignoring ASCII case (§4.2): letters are rewritten in
// the case HTTP-date spells them ("Thu", "Aug", "GMT") before the strict
// parser sees them.
std::optional<cache_time> parse_date_ci(std::string_view text, cache_time now) noexcept {
  text = trim_ows(text);
  std::array<char, 64> buf;
  if (text.empty() || text.size() > buf.size()) return std::nullopt;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (!alpha(text[i])) {
      buf[i] = text[i];
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && alpha(text[j])) ++j;
    const bool gmt = iequals(text.substr(i, j - i), "gmt");
    for (std::size_t k = i; k < j; ++k) {
      const char lower = ascii_lower(text[k]);
      buf[k] = (gmt || k == i) ? static_cast<char>(lower - 'a' + 'A') : lower;
    }
    i = j;
  }
  // parse_http_date does not throw (it allocates nothing).
  return parse_http_date(std::string_view(buf.data(), text.size()), now);
}

// --- entity tags (RFC 9110 §8.8.3) ----------------------------------------------------

struct entity_tag {
  bool weak = false;
  std::string_view opaque;  // between the quotes
};

constexpr bool is_etagc(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u <= 0x7E) || u >= 0x80;
}

// Parses an entity-tag at s[i]; on success advances i past it.
std::optional<entity_tag> parse_etag_at(std::string_view s, std::size_t& i) noexcept {
  entity_tag t;
  std::size_t p = i;
  if (s.substr(p, 2) == "W/") {
    t.weak = true;
    p += 2;
  }
  if (p >= s.size() || s[p] != '"') return std::nullopt;
  const std::size_t open = ++p;
  while (p < s.size() && is_etagc(s[p])) ++p;
  if (p >= s.size() || s[p] != '"') return std::nullopt;
  t.opaque = s.substr(open, p - open);
  i = p + 1;
  return t;
}

std::optional<entity_tag> parse_etag(std::string_view s) noexcept {
  s = trim_ows(s);
  std::size_t i = 0;
  auto t = parse_etag_at(s, i);
  if (!t || i != s.size()) return std::nullopt;
  return t;
}

std::optional<entity_tag> stored_etag(fields_view h) noexcept {
  const auto v = h.first("ETag");
  if (!v) return std::nullopt;
  return parse_etag(*v);
}

// Calls f(tag) for each entity-tag of an If-None-Match value, or f(nullopt)
// for "*". Malformed members are skipped.
template <class F>
void for_each_etag(std::string_view s, F&& f) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (is_ows(s[i]) || s[i] == ',')) ++i;
    if (i >= s.size()) return;
    if (s[i] == '*') {
      ++i;
      std::size_t j = i;
      while (j < s.size() && is_ows(s[j])) ++j;
      if (j == s.size() || s[j] == ',') f(std::optional<entity_tag>{});
      i = skip_member(s, j);
      continue;
    }
    const std::size_t start = i;
    auto t = parse_etag_at(s, i);
    std::size_t j = i;
    while (j < s.size() && is_ows(s[j])) ++j;
    if (t && (j == s.size() || s[j] == ',')) f(t);
    i = skip_member(s, t ? j : start);
  }
}

// Case-insensitive field-name equality against a list of names.
bool name_in(std::string_view name, std::initializer_list<std::string_view> names) noexcept {
  for (std::string_view n : names)
    if (iequals(name, n)) return true;
  return false;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

// Vary's field names, lower-cased, sorted and unique; nullopt for "*" or a
// member that is not a field name.
std::optional<std::vector<std::string>> vary_names(fields_view response) {
  std::vector<std::string> names;
  bool ok = true;
  for (std::size_t i = 0; i < response.size(); ++i) {
    const header_field f = response[i];
    if (!iequals(f.name, "Vary")) continue;
    for_each_member(f.value, [&](std::string_view m) {
      if (m == "*" || !is_token(m))
        ok = false;
      else
        names.push_back(lower(m));
    });
  }
  if (!ok) return std::nullopt;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

// --- fields_view --------------------------------------------------------------------

std::optional<std::string_view> fields_view::first(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < size(); ++i) {
    const header_field f = (*this)[i];
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

std::size_t fields_view::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < size(); ++i)
    if (iequals((*this)[i].name, name)) ++n;
  return n;
}

bool fields_view::has_token(std::string_view name, std::string_view token) const noexcept {
  for (std::size_t i = 0; i < size(); ++i) {
    const header_field f = (*this)[i];
    if (iequals(f.name, name) && http::has_token(f.value, token)) return true;
  }
  return false;
}

// --- Cache-Control --------------------------------------------------------------------

void parse_cache_control_value(std::string_view v, cache_control& cc) noexcept {
  std::size_t i = 0;
  const std::size_t n = v.size();
  while (i < n) {
    while (i < n && (is_ows(v[i]) || v[i] == ',')) ++i;
    if (i >= n) break;
    const std::size_t name_start = i;
    while (i < n && is_tchar(v[i])) ++i;
    const std::string_view name = v.substr(name_start, i - name_start);
    if (name.empty()) {
      i = skip_member(v, i);
      continue;
    }
    directive_arg arg;
    if (i < n && v[i] == '=') {
      ++i;
      if (i < n && v[i] == '"') {
        const std::size_t end = skip_quoted(v, i, arg.escaped);
        if (end == std::string_view::npos) {
          arg.kind = arg_kind::malformed;
          i = n;
        } else {
          arg.kind = arg_kind::quoted;
          arg.text = v.substr(i + 1, end - i - 2);
          i = end;
        }
      } else {
        const std::size_t start = i;
        while (i < n && is_tchar(v[i])) ++i;
        arg.kind = i == start ? arg_kind::malformed : arg_kind::token;
        arg.text = v.substr(start, i - start);
      }
    }
    while (i < n && is_ows(v[i])) ++i;
    if (i < n && v[i] != ',') {
      // Trailing bytes ("max-age =1", "max-age= 1", "a=b c"): the
      // directive is there, its argument is not usable.
      arg = directive_arg{arg_kind::malformed, {}, false};
      i = skip_member(v, i);
    }
    apply_directive(name, arg, cc);
  }
}

cache_control parse_cache_control(fields_view headers) noexcept {
  cache_control cc;
  bool any = false;
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const header_field f = headers[i];
    if (!iequals(f.name, "Cache-Control")) continue;
    any = true;
    parse_cache_control_value(f.value, cc);
  }
  if (!any) cc.pragma_no_cache = headers.has_token("Pragma", "no-cache");
  return cc;
}

std::string format_cache_control(const cache_control& cc) {
  std::string out;
  const auto add = [&](std::string_view d) {
    if (!out.empty()) out += ", ";
    out += d;
  };
  const auto add_delta = [&](std::string_view d, const std::optional<seconds>& v) {
    if (!v) return;
    add(d);
    out += '=';
    out += std::to_string(v->count());
  };
  const auto add_list = [&](std::string_view d, bool present,
                            const std::optional<std::string_view>& list) {
    if (!present) return;
    add(d);
    if (list) {
      out += "=\"";
      out += *list;
      out += '"';
    }
  };
  add_delta("max-age", cc.max_age);
  add_delta("s-maxage", cc.s_maxage);
  if (cc.max_stale && *cc.max_stale == max_delta_seconds)
    add("max-stale");
  else
    add_delta("max-stale", cc.max_stale);
  add_delta("min-fresh", cc.min_fresh);
  add_delta("stale-while-revalidate", cc.stale_while_revalidate);
  add_delta("stale-if-error", cc.stale_if_error);
  add_list("no-cache", cc.no_cache, cc.no_cache_fields);
  if (cc.no_store) add("no-store");
  if (cc.no_transform) add("no-transform");
  if (cc.only_if_cached) add("only-if-cached");
  if (cc.must_revalidate) add("must-revalidate");
  if (cc.proxy_revalidate) add("proxy-revalidate");
  if (cc.must_understand) add("must-understand");
  add_list("private", cc.private_, cc.private_fields);
  if (cc.public_) add("public");
  if (cc.immutable) add("immutable");
  return out;
}

// --- storability ------------------------------------------------------------------------

std::string_view to_string(store_verdict v) noexcept {
  switch (v) {
    case store_verdict::storable: return "storable";
    case store_verdict::method: return "method";
    case store_verdict::status: return "status";
    case store_verdict::no_store: return "no-store";
    case store_verdict::private_: return "private";
    case store_verdict::authorization: return "authorization";
    case store_verdict::no_freshness: return "no-freshness";
    case store_verdict::not_reusable: return "not-reusable";
  }
  return "";
}

bool is_heuristically_cacheable(int status) noexcept {
  constexpr std::array<int, 12> heuristic = {200, 203, 204, 206, 300, 301,
                                             308, 404, 405, 410, 414, 501};
  return std::find(heuristic.begin(), heuristic.end(), status) != heuristic.end();
}

bool understands_status(int status) noexcept {
  if (status >= 200 && status <= 205) return true;
  if (status >= 300 && status <= 308) return status != 304 && status != 306;
  if (status >= 400 && status <= 417) return true;
  if (status == 421 || status == 422 || status == 426) return true;
  return status >= 500 && status <= 505;
}

bool allows_authorized_reuse(const cache_control& cc) noexcept {
  return cc.public_ || cc.must_revalidate || cc.s_maxage.has_value();
}

store_verdict check_storable(const cache_request& request, const cache_response& response,
                             const cache_options& options) {
  if (request.method != method::get && request.method != method::head) return store_verdict::method;
  const int status = response.status;
  const cache_control& cc = response.cc;
  if (status < 200 || status > 599 || status == 206 || status == 304) return store_verdict::status;
  if (cc.must_understand && !understands_status(status)) return store_verdict::status;
  if (request.cc.no_store) return store_verdict::no_store;
  // must-understand with an understood status overrides no-store (§5.2.2.3).
  if (cc.no_store && !cc.must_understand) return store_verdict::no_store;
  if (options.shared && cc.private_unqualified()) return store_verdict::private_;
  if (options.shared && request.headers.count("Authorization") != 0 && !allows_authorized_reuse(cc))
    return store_verdict::authorization;
  const bool explicit_freshness =
      response.headers.count("Expires") != 0 || cc.max_age || (options.shared && cc.s_maxage);
  if (!explicit_freshness && !cc.public_ && !(!options.shared && cc.private_) &&
      !is_heuristically_cacheable(status))
    return store_verdict::no_freshness;
  if (!options.store_unreusable) {
    if (!vary_names(response.headers)) return store_verdict::not_reusable;
    const bool validator =
        response.headers.count("ETag") != 0 || response.headers.count("Last-Modified") != 0;
    if (!explicit_freshness && !validator && !cc.stale_if_error) return store_verdict::not_reusable;
  }
  return store_verdict::storable;
}

// --- stored fields ---------------------------------------------------------------------

bool is_unstored_field(std::string_view name) noexcept {
  return name_in(
      name, {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade",
             "Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization"});
}

void copy_storable_fields(fields_view response, const cache_control& cc, cache_time response_time,
                          fields& out, const cache_options& options) {
  bool has_date = false;
  for (std::size_t i = 0; i < response.size(); ++i) {
    const header_field f = response[i];
    if (is_unstored_field(f.name) || response.has_token("Connection", f.name)) continue;
    if (cc.no_cache_fields && has_token(*cc.no_cache_fields, f.name)) continue;
    if (options.shared && cc.private_fields && has_token(*cc.private_fields, f.name)) continue;
    // A line http::fields refuses (a control character in the value) is
    // dropped; parsed heads never hold one.
    if (out.add(f.name, f.value) && iequals(f.name, "Date")) has_date = true;
  }
  if (!has_date) (void)out.add("Date", format_http_date(response_time));
}

// --- freshness and age ------------------------------------------------------------------

std::optional<cache_time> parse_date_field(fields_view headers, std::string_view name,
                                           cache_time now) noexcept {
  const auto v = headers.first(name);
  if (!v) return std::nullopt;
  return parse_date_ci(*v, now);
}

freshness freshness_lifetime(const cache_response& response, cache_time response_time,
                             const cache_options& options) {
  const cache_control& cc = response.cc;
  if (options.shared && cc.s_maxage) return {*cc.s_maxage, false};
  if (cc.max_age) return {*cc.max_age, false};
  const fields_view h = response.headers;
  const std::int64_t date =
      epoch_seconds(parse_date_field(h, "Date", response_time).value_or(response_time));
  if (h.count("Expires") != 0) {
    // Several Expires lines that disagree: stale (§4.2.1).
    const std::string_view first = trim_ows(*h.first("Expires"));
    for (std::size_t i = 0; i < h.size(); ++i)
      if (iequals(h[i].name, "Expires") && trim_ows(h[i].value) != first) return {};
    const auto expires = parse_date_ci(first, response_time);
    if (!expires) return {};  // invalid dates, "0" among them, are in the past (§5.3)
    return {seconds{clamp_delta(epoch_seconds(*expires) - date)}, false};
  }
  const unsigned percent = std::min(options.heuristic_percent, 100u);
  if (percent == 0) return {};
  if (!is_heuristically_cacheable(response.status) && !cc.public_) return {};
  const auto last_modified = parse_date_field(h, "Last-Modified", response_time);
  if (!last_modified) return {};
  const std::int64_t since = date - epoch_seconds(*last_modified);
  if (since <= 0) return {};
  const std::int64_t lifetime = since / 100 * percent + since % 100 * percent / 100;
  const std::int64_t cap = clamp_delta(options.max_heuristic_lifetime.count());
  return {seconds{std::min(lifetime, cap)}, true};
}

std::optional<seconds> parse_age(fields_view headers) noexcept {
  const auto v = headers.first("Age");
  if (!v) return std::nullopt;
  std::string_view s = *v;
  if (const auto comma = s.find(','); comma != std::string_view::npos) s = s.substr(0, comma);
  s = trim_ows(s);
  if (s.empty()) return std::nullopt;
  std::int64_t age = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (age <= k_max_delta) age = age * 10 + (c - '0');
  }
  return seconds{clamp_delta(age)};
}

seconds corrected_initial_age(fields_view response, cache_time request_time,
                              cache_time response_time) noexcept {
  const auto date = parse_date_field(response, "Date", response_time).value_or(response_time);
  const std::int64_t apparent = clamp_delta(seconds_between(response_time, date));
  const std::int64_t delay = clamp_delta(seconds_between(response_time, request_time));
  const std::int64_t corrected_age_value = parse_age(response).value_or(seconds{0}).count() + delay;
  return seconds{std::max(apparent, corrected_age_value)};
}

seconds current_age(seconds corrected_initial_age, cache_time response_time,
                    cache_time now) noexcept {
  const std::int64_t resident = std::max<std::int64_t>(0, seconds_between(now, response_time));
  const std::int64_t initial = std::max<std::int64_t>(0, corrected_initial_age.count());
  // Both are bounded far below overflow (resident by the clock's range).
  return seconds{initial + resident};
}

std::string format_age(seconds age) {
  return std::to_string(clamp_delta(age.count()));
}

// --- Vary ---------------------------------------------------------------------------------

std::optional<std::string> secondary_key(fields_view response, fields_view request) {
  const auto names = vary_names(response);
  if (!names) return std::nullopt;
  std::string key;
  for (const std::string& name : *names) {
    key += name;
    bool present = false;
    bool first_member = true;
    for (std::size_t i = 0; i < request.size(); ++i) {
      const header_field f = request[i];
      if (!iequals(f.name, name)) continue;
      if (!present) key += ':';
      present = true;
      for_each_member(f.value, [&](std::string_view m) {
        if (!first_member) key += ',';
        first_member = false;
        key += m;
      });
    }
    key += '\n';
  }
  return key;
}

bool vary_matches(fields_view response, fields_view stored_request, fields_view request) {
  const auto a = secondary_key(response, stored_request);
  if (!a) return false;
  const auto b = secondary_key(response, request);
  return b && *a == *b;
}

// --- reuse ----------------------------------------------------------------------------------

reuse_decision decide_reuse(const cache_control& req, const cache_control& res, seconds age,
                            seconds lifetime, const cache_options& options) noexcept {
  const bool fresh = lifetime > age;
  const seconds ttl = lifetime - age;
  const auto refuse = [&](cache_fwd fwd, std::string_view reason) {
    return reuse_decision{
        req.only_if_cached ? reuse_action::gateway_timeout : reuse_action::revalidate, fwd, ttl,
        reason};
  };
  const cache_fwd by_request = fresh ? cache_fwd::request : cache_fwd::stale;
  if (res.no_cache_unqualified()) return refuse(cache_fwd::stale, "no-cache");
  if (req.no_cache) return refuse(by_request, "request-no-cache");
  if (options.honor_request_pragma && req.pragma_no_cache)
    return refuse(by_request, "request-pragma");
  if (req.max_age && age > *req.max_age) return refuse(by_request, "request-max-age");
  if (fresh) {
    if (req.min_fresh && ttl < *req.min_fresh)
      return refuse(cache_fwd::request, "request-min-fresh");
    return {reuse_action::serve_fresh, cache_fwd::none, ttl, "fresh"};
  }
  if (res.must_revalidate || (options.shared && (res.proxy_revalidate || res.s_maxage)))
    return refuse(cache_fwd::stale, "must-revalidate");
  const seconds staleness = age - lifetime;
  if (req.max_stale && staleness <= *req.max_stale)
    return {reuse_action::serve_stale, cache_fwd::none, ttl, "max-stale"};
  if (res.stale_while_revalidate && staleness <= *res.stale_while_revalidate)
    return {reuse_action::serve_stale_revalidate, cache_fwd::none, ttl, "stale-while-revalidate"};
  return refuse(cache_fwd::stale, "stale");
}

bool may_serve_stale_on_error(const cache_control& req, const cache_control& res, seconds age,
                              seconds lifetime, const cache_options& options) noexcept {
  if (res.no_cache_unqualified()) return false;
  if (lifetime > age) return true;
  if (res.must_revalidate || (options.shared && (res.proxy_revalidate || res.s_maxage)))
    return false;
  const seconds staleness = age - lifetime;
  const auto within = [&](const std::optional<seconds>& w) { return w && staleness <= *w; };
  return within(res.stale_if_error) || within(req.stale_if_error) || within(req.max_stale) ||
         (options.stale_if_error_default > seconds{0} &&
          staleness <= options.stale_if_error_default);
}

// --- validation -------------------------------------------------------------------------------

bool set_validation_fields(fields_view stored, fields& out) {
  const auto etag = stored.first("ETag");
  const auto last_modified = stored.first("Last-Modified");
  if (!etag && !last_modified) return false;
  for (std::string_view n :
       {"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"})
    out.erase(n);
  if (etag) {
    const std::string_view v = trim_ows(*etag);
    if (!parse_etag(v) && !v.empty() && std::all_of(v.begin(), v.end(), is_etagc)) {
      // An origin that forgot the quotes: send the entity-tag it meant.
      (void)out.set("If-None-Match", "\"" + std::string(v) + "\"");
    } else {
      (void)out.set("If-None-Match", v);
    }
  }
  if (last_modified) (void)out.set("If-Modified-Since", trim_ows(*last_modified));
  return true;
}

update_match select_for_update(fields_view stored, fields_view not_modified) noexcept {
  if (const auto v = not_modified.first("ETag")) {
    const auto tag = parse_etag(*v);
    const auto mine = stored_etag(stored);
    if (!tag || !mine || tag->opaque != mine->opaque) return update_match::none;
    if (!tag->weak && !mine->weak) return update_match::strong;
    return update_match::weak;
  }
  if (const auto v = not_modified.first("Last-Modified")) {
    const auto mine = stored.first("Last-Modified");
    if (!mine) return update_match::none;
    const auto a = parse_date_ci(*v, cache_time{});
    const auto b = parse_date_ci(*mine, cache_time{});
    const bool equal = (a && b) ? *a == *b : trim_ows(*v) == trim_ows(*mine);
    return equal ? update_match::weak : update_match::none;
  }
  if (stored.count("ETag") != 0 || stored.count("Last-Modified") != 0) return update_match::none;
  return update_match::no_validator;
}

void update_stored_fields(fields& stored, fields_view update, cache_time response_time,
                          const cache_options& options) {
  for (std::size_t i = 0; i < update.size(); ++i) {
    const std::string_view name = update[i].name;
    if (is_unstored_field(name) || iequals(name, "Content-Length") ||
        update.has_token("Connection", name))
      continue;
    bool seen = false;
    for (std::size_t j = 0; j < i && !seen; ++j) seen = iequals(update[j].name, name);
    if (seen) continue;
    stored.erase(name);
    for (std::size_t j = i; j < update.size(); ++j)
      if (iequals(update[j].name, name)) (void)stored.add(name, update[j].value);
  }
  if (update.count("Age") == 0) stored.erase("Age");
  if (update.count("Date") == 0) (void)stored.set("Date", format_http_date(response_time));
  // Fields the (possibly new) Cache-Control says not to store.
  const cache_control cc = parse_cache_control(stored);
  std::string unstorable;
  if (cc.no_cache_fields) unstorable += *cc.no_cache_fields;
  if (options.shared && cc.private_fields) {
    unstorable += ',';
    unstorable += *cc.private_fields;
  }
  std::vector<std::string> names;
  for_each_member(unstorable, [&](std::string_view m) { names.emplace_back(m); });
  for (const std::string& n : names) stored.erase(n);
}

head_update check_head_update(fields_view stored, fields_view head_response,
                              std::uint64_t stored_content_length) noexcept {
  for (std::string_view name : {"ETag", "Last-Modified"}) {
    const auto theirs = head_response.first(name);
    if (!theirs) continue;
    const auto mine = stored.first(name);
    if (!mine || trim_ows(*mine) != trim_ows(*theirs)) return head_update::mark_stale;
  }
  if (const auto cl = head_response.first("Content-Length")) {
    const std::string_view s = trim_ows(*cl);
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || end != s.data() + s.size() || n != stored_content_length)
      return head_update::mark_stale;
  }
  return head_update::update;
}

conditional_result evaluate_conditional(http::method m, fields_view request, fields_view stored,
                                        cache_time now) noexcept {
  if (m != method::get && m != method::head) return conditional_result::full;
  if (request.count("If-None-Match") != 0) {
    const auto mine = stored_etag(stored);
    bool match = false;
    for (std::size_t i = 0; i < request.size(); ++i) {
      const header_field f = request[i];
      if (!iequals(f.name, "If-None-Match")) continue;
      for_each_etag(f.value, [&](const std::optional<entity_tag>& t) {
        if (!t || (mine && t->opaque == mine->opaque)) match = true;  // "*" or weak-equal
      });
    }
    return match ? conditional_result::not_modified : conditional_result::full;
  }
  if (request.count("If-Modified-Since") != 1) return conditional_result::full;
  const auto since = parse_date_field(request, "If-Modified-Since", now);
  if (!since) return conditional_result::full;
  auto modified = parse_date_field(stored, "Last-Modified", now);
  if (!modified) modified = parse_date_field(stored, "Date", now);
  if (!modified) return conditional_result::full;
  return *modified <= *since ? conditional_result::not_modified : conditional_result::full;
}

void not_modified_fields(fields_view stored, fields& out) {
  const bool has_etag = stored.count("ETag") != 0;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const header_field f = stored[i];
    if (name_in(f.name, {"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary"}) ||
        (!has_etag && iequals(f.name, "Last-Modified")))
      (void)out.add(f.name, f.value);
  }
}

// --- invalidation ---------------------------------------------------------------------------

std::vector<url> invalidated_uris(http::method m, int status, const url& target,
                                  fields_view response) {
  std::vector<url> out;
  if (is_safe(m) || status < 200 || status > 399) return out;
  url t = target;
  t.fragment.clear();
  const std::string origin = t.origin();
  out.push_back(std::move(t));
  for (std::string_view name : {"Location", "Content-Location"}) {
    const auto v = response.first(name);
    if (!v) continue;
    auto resolved = resolve_reference(target, trim_ows(*v));
    if (!resolved || origin.empty() || resolved->origin() != origin) continue;
    resolved->fragment.clear();
    const std::string text = resolved->to_string();
    const bool dup =
        std::any_of(out.begin(), out.end(), [&](const url& u) { return u.to_string() == text; });
    if (!dup) out.push_back(std::move(*resolved));
  }
  return out;
}

// --- Cache-Status ----------------------------------------------------------------------------

std::string_view to_string(cache_fwd fwd) noexcept {
  switch (fwd) {
    case cache_fwd::none: return "";
    case cache_fwd::bypass: return "bypass";
    case cache_fwd::method: return "method";
    case cache_fwd::uri_miss: return "uri-miss";
    case cache_fwd::vary_miss: return "vary-miss";
    case cache_fwd::miss: return "miss";
    case cache_fwd::request: return "request";
    case cache_fwd::stale: return "stale";
    case cache_fwd::partial: return "partial";
  }
  return "";
}

namespace {

// sf-token (RFC 8941 §3.3.4): ( ALPHA / "*" ) *( tchar / ":" / "/" ).
bool is_sf_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  const char c0 = s[0];
  if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 == '*')) return false;
  for (char c : s.substr(1))
    if (!is_tchar(c) && c != ':' && c != '/') return false;
  return true;
}

// sf-string (RFC 8941 §3.3.3): printable ASCII, '"' and '\' escaped.
void append_sf_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u > 0x7E) {
      out += '?';
    } else {
      out += c;
    }
  }
  out += '"';
}

void append_token_or_string(std::string& out, std::string_view s) {
  if (is_sf_token(s))
    out += s;
  else
    append_sf_string(out, s);
}

}  // namespace

std::string format_cache_status(std::string_view cache_name, const cache_status& s) {
  std::string out;
  append_token_or_string(out, cache_name);
  const bool forwarded = !s.hit && s.fwd != cache_fwd::none;
  if (s.hit) out += "; hit";
  if (forwarded) {
    out += "; fwd=";
    out += to_string(s.fwd);
    if (s.fwd_status) {
      out += "; fwd-status=";
      out += std::to_string(*s.fwd_status);
    }
  }
  if (s.ttl) {
    out += "; ttl=";
    out += std::to_string(s.ttl->count());
  }
  if (forwarded && s.stored) out += "; stored";
  if (forwarded && s.collapsed) out += "; collapsed";
  if (!s.key.empty()) {
    out += "; key=";
    append_sf_string(out, s.key);
  }
  if (!s.detail.empty()) {
    out += "; detail=";
    append_token_or_string(out, s.detail);
  }
  return out;
}

}  // namespace trellis::http
