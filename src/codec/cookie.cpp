#include "trellis/codec/cookie.hpp"

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/date.hpp"
#include "trellis/codec/http/fields.hpp"

namespace trellis::http {
namespace {

using codec::trim_ows;

// cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E (RFC 6265 §4.1.1):
// US-ASCII without controls, whitespace, DQUOTE, comma, semicolon, backslash.
bool is_cookie_octet(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
         (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

bool is_control(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return (c < 0x20 && c != '\t') || c == 0x7F;
}

// A cookie-value: *cookie-octet, or the same in DQUOTEs. Returns the
// value without quotes, or nullopt.
std::optional<std::string_view> unquote_value(std::string_view v) noexcept {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  for (char c : v) {
    if (!is_cookie_octet(c)) return std::nullopt;
  }
  return v;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    char p = prefix[i];
    if (p >= 'A' && p <= 'Z') p = static_cast<char>(p + 32);
    if (c != p) return false;
  }
  return true;
}

// domain-value = <subdomain> (RFC 1034 §3.5 as relaxed by RFC 1123 §2.1):
// labels of letters, digits and '-', not starting or ending with '-'. A
// leading '.' is tolerated; browsers ignore it (RFC 6265 §4.1.2.3).
bool is_domain(std::string_view d) noexcept {
  if (!d.empty() && d.front() == '.') d.remove_prefix(1);
  if (d.empty() || d.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = d.find('.', start);
    if (dot == std::string_view::npos) dot = d.size();
    const std::string_view label = d.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label) {
      const bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    if (dot == d.size()) return true;
    start = dot + 1;
  }
}

// path-value = *av-octet, av-octet = %x20-3A / %x3C-7E: no controls, no ';'.
bool is_path(std::string_view p) noexcept {
  if (p.empty() || p.front() != '/') return false;
  for (char ch : p) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E || c == ';') return false;
  }
  return true;
}

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.http.cookie"; }
  std::string message(int v) const override {
    switch (static_cast<cookie_error>(v)) {
      case cookie_error::control_character: return "control character in Cookie header";
      case cookie_error::bad_name: return "invalid cookie name";
      case cookie_error::bad_value: return "invalid cookie value";
      case cookie_error::too_many_cookies: return "too many cookies";
      case cookie_error::too_long: return "cookie longer than 4096 bytes";
      case cookie_error::bad_domain: return "invalid cookie Domain";
      case cookie_error::bad_path: return "invalid cookie Path";
      case cookie_error::same_site_none_insecure: return "SameSite=None requires Secure";
      case cookie_error::prefix_violation: return "cookie name prefix requirements not met";
    }
    return "unknown cookie error";
  }
};

}  // namespace

const std::error_category& cookie_category() noexcept {
  static const category instance;
  return instance;
}

result<void> parse_cookie_header(std::string_view header, std::vector<cookie>& out,
                                 const cookie_options& options) {
  for (char c : header) {
    if (is_control(c)) return unexpected(cookie_error::control_character);
  }
  const std::size_t original = out.size();
  auto fail = [&out, original](cookie_error e) -> result<void> {
    out.resize(original);
    return unexpected(e);
  };
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t semi = header.find(';', pos);
    if (semi == std::string_view::npos) semi = header.size();
    const std::string_view pair = trim_ows(header.substr(pos, semi - pos));
    pos = semi + 1;
    if (pair.empty()) continue;  // "a=1;; b=2", a trailing ';'

    const std::size_t eq = pair.find('=');
    const std::string_view name =
        eq == std::string_view::npos ? pair : trim_ows(pair.substr(0, eq));
    std::optional<std::string_view> value;
    if (eq != std::string_view::npos) value = unquote_value(trim_ows(pair.substr(eq + 1)));
    if (eq == std::string_view::npos || !is_field_name(name)) {
      if (options.skip_invalid) continue;
      return fail(cookie_error::bad_name);
    }
    if (!value) {
      if (options.skip_invalid) continue;
      return fail(cookie_error::bad_value);
    }
    if (out.size() - original >= options.max_cookies) return fail(cookie_error::too_many_cookies);
    out.push_back(cookie{name, *value});
  }
  return {};
}

result<std::vector<cookie>> parse_cookie_header(std::string_view header,
                                                const cookie_options& options) {
  std::vector<cookie> out;
  if (auto r = parse_cookie_header(header, out, options); !r) return unexpected(r.error());
  return out;
}

std::optional<std::string_view> find_cookie(std::span<const cookie> cookies,
                                            std::string_view name) noexcept {
  for (const cookie& c : cookies) {
    if (c.name == name) return c.value;
  }
  return std::nullopt;
}

result<std::string> set_cookie::to_string() const {
  if (!is_field_name(name)) return unexpected(cookie_error::bad_name);
  if (!unquote_value(value)) return unexpected(cookie_error::bad_value);
  // RFC 6265 §6.1: browsers store at least 4096 bytes per cookie; Chrome
  // and Firefox measure name + value and drop larger ones without a word.
  if (name.size() + value.size() > 4096) return unexpected(cookie_error::too_long);
  if (!domain.empty() && !is_domain(domain)) return unexpected(cookie_error::bad_domain);
  if (!path.empty() && !is_path(path)) return unexpected(cookie_error::bad_path);
  if (same_site == same_site_policy::none && !secure)
    return unexpected(cookie_error::same_site_none_insecure);
  if (starts_with_icase(name, "__Secure-") && !secure)
    return unexpected(cookie_error::prefix_violation);
  if (starts_with_icase(name, "__Host-") && (!secure || path != "/" || !domain.empty()))
    return unexpected(cookie_error::prefix_violation);

  std::string out;
  out.reserve(name.size() + value.size() + domain.size() + path.size() + 96);
  out += name;
  out += '=';
  out += value;
  if (expires) {
    char date[http_date_size];
    format_http_date(*expires, date);
    out += "; Expires=";
    out.append(date, http_date_size);
  }
  if (max_age) {
    out += "; Max-Age=";
    out += std::to_string(max_age->count() > 0 ? max_age->count() : 0);
  }
  if (!domain.empty()) {
    out += "; Domain=";
    out += domain;
  }
  if (!path.empty()) {
    out += "; Path=";
    out += path;
  }
  if (secure) out += "; Secure";
  if (http_only) out += "; HttpOnly";
  switch (same_site) {
    case same_site_policy::unset: break;
    case same_site_policy::strict: out += "; SameSite=Strict"; break;
    case same_site_policy::lax: out += "; SameSite=Lax"; break;
    case same_site_policy::none: out += "; SameSite=None"; break;
  }
  return out;
}

}  // namespace trellis::http
