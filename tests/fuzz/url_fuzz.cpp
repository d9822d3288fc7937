// libFuzzer target for the URL codec: parse_url, parse_target,
// percent_decode, encode_component, normalize_path, remove_dot_segments and
// query_params on arbitrary bytes. Beyond "no crash, no sanitizer report",
// it checks the invariants callers rely on:
//   - a parsed URL written back parses to the same URL;
//   - request-target views lie inside the input, forms match the method;
//   - decoding never yields NUL, CR or LF, and path mode leaves '%' only
//     in "%2F" / "%25";
//   - a successful normalisation starts with '/', has no "." or ".."
//     segment (so never "/../"), is stable under remove_dot_segments and
//     honours its options;
//   - decode(encode(x)) == x;
//   - a resolved reference is a URL parse_url accepts as written back; its
//     path has no dot segment when the base's has none; it keeps the
//     base's fragment exactly when the reference has no '#'; an absolute
//     reference resolves to itself once its dots are removed (and the
//     base's fragment added when it has none); resolving "" gives the base
//     back.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "trellis/codec/url.hpp"

namespace {

using namespace trellis::http;

bool has_forbidden(std::string_view s) {
  return s.find('\0') != std::string_view::npos || s.find('\r') != std::string_view::npos ||
         s.find('\n') != std::string_view::npos;
}

bool within(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// Every '%' of `s` starts "%2F" or "%25".
bool only_kept_escapes(std::string_view s) {
  for (std::size_t i = s.find('%'); i != std::string_view::npos; i = s.find('%', i + 1)) {
    const std::string_view esc = s.substr(i, 3);
    if (esc != "%2F" && esc != "%25") return false;
  }
  return true;
}

bool has_dot_segment(std::string_view p) {
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = p.find('/', start);
    const std::string_view seg =
        p.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (seg == "." || seg == "..") return true;
    if (slash == std::string_view::npos) return false;
    start = slash + 1;
  }
}

void check_url(std::string_view in) {
  auto u = parse_url(in);
  if (!u) return;
  const std::string text = u->to_string();
  FUZZ_CHECK(!has_forbidden(text));
  auto again = parse_url(text);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->scheme == u->scheme && again->userinfo == u->userinfo &&
             again->host == u->host && again->port_text == u->port_text && again->port == u->port &&
             again->path == u->path && again->query == u->query && again->fragment == u->fragment &&
             again->host_kind == u->host_kind && again->has_authority == u->has_authority);
  FUZZ_CHECK(again->to_string() == text);
  if (u->has_authority && !u->host.empty()) {
    FUZZ_CHECK(u->origin().starts_with(u->scheme + "://"));
  } else {
    FUZZ_CHECK(u->origin().empty());
  }
  if (!u->port_text.empty()) FUZZ_CHECK(u->effective_port() == u->port);
  if (u->has_authority) FUZZ_CHECK(u->origin_form().starts_with("/"));
}

void check_normalize(std::string_view in) {
  for (int bits = 0; bits < 12; ++bits) {
    normalize_options o;
    o.collapse_slashes = (bits & 1) != 0;
    o.reject_backslash = (bits & 2) != 0;
    o.encoded_slash = static_cast<slash_policy>(bits >> 2);
    auto n = normalize_path(in, o);
    if (!n) continue;
    const std::string& p = n->path;
    FUZZ_CHECK(p.starts_with("/"));
    FUZZ_CHECK(!has_dot_segment(p));
    FUZZ_CHECK(p.find("/../") == std::string::npos);
    FUZZ_CHECK(!has_forbidden(p));
    FUZZ_CHECK(remove_dot_segments(p) == p);
    if (o.collapse_slashes) FUZZ_CHECK(p.find("//") == std::string::npos);
    if (o.reject_backslash) FUZZ_CHECK(p.find('\\') == std::string::npos);
    if (o.encoded_slash == slash_policy::keep) FUZZ_CHECK(only_kept_escapes(p));
    if (o.encoded_slash == slash_policy::reject) FUZZ_CHECK(p.find("%2F") == std::string::npos);
  }
}

void check_target(std::string_view in) {
  for (int bits = 0; bits < 4; ++bits) {
    const bool is_connect = (bits & 1) != 0;
    const bool is_options = (bits & 2) != 0;
    auto t = parse_target(in, is_connect, is_options);
    if (!t) continue;
    FUZZ_CHECK((t->form == target_form::authority) == is_connect);
    if (t->form == target_form::asterisk) FUZZ_CHECK(is_options && in == "*");
    FUZZ_CHECK(within(t->scheme, in) && within(t->authority, in) && within(t->host, in) &&
               within(t->port, in) && within(t->query, in));
    if (t->form == target_form::origin || t->form == target_form::absolute) {
      FUZZ_CHECK(t->path.starts_with("/"));
      FUZZ_CHECK(within(t->path, in) || t->path == "/");
      check_normalize(t->path);
    }
    if (t->form == target_form::authority || t->form == target_form::absolute)
      FUZZ_CHECK(!t->host.empty());
    if (t->form == target_form::authority) FUZZ_CHECK(!t->port.empty());
    FUZZ_CHECK(!has_forbidden(in));
  }
}

void check_decode(std::string_view in) {
  for (auto mode : {decode_mode::path, decode_mode::path_decode_slash, decode_mode::query,
                    decode_mode::component}) {
    auto d = percent_decode(in, mode);
    if (!d) {
      FUZZ_CHECK(d.error() == url_error::bad_percent_encoding ||
                 d.error() == url_error::forbidden_byte);
      continue;
    }
    FUZZ_CHECK(!has_forbidden(*d));
    FUZZ_CHECK(d->size() <= in.size());
    if (mode == decode_mode::path) FUZZ_CHECK(only_kept_escapes(*d));
  }
}

void check_encode(std::string_view in) {
  if (has_forbidden(in)) return;
  for (auto which : {component::path_segment, component::path, component::query, component::form}) {
    const std::string e = encode_component(in, which);
    for (char c : e) {
      const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                              c == '~';
      FUZZ_CHECK(unreserved || c == '%' || (c == '/' && which == component::path) ||
                 (c == '+' && which == component::form));
    }
    auto d =
        percent_decode(e, which == component::form ? decode_mode::query : decode_mode::component);
    FUZZ_CHECK(d.has_value() && *d == in);
  }
}

void check_query(std::string_view in) {
  auto q = query_params::parse(in, {.max_params = 8});
  if (!q) return;
  FUZZ_CHECK(q->size() <= 8);
  for (query_param p : *q) {
    FUZZ_CHECK(!has_forbidden(p.key) && !has_forbidden(p.value));
    FUZZ_CHECK(q->get(p.key).has_value());
  }
}

// Bases that exercise each branch of RFC 3986 §5.2.2: a path, query and
// fragment to inherit; an empty path; an IPv6 host with userinfo and a
// port; an empty host; no authority at all.
constexpr std::string_view k_bases[] = {
    "http://a/b/c/d;p?q#f", "https://h", "http://u:p@[::1]:8080/x/y/", "file:///etc/x", "foo:a/b",
};

void check_resolved(const url& base, std::string_view ref) {
  auto r = resolve_reference(base, ref);
  if (!r) return;
  const std::string text = r->to_string();
  FUZZ_CHECK(!has_forbidden(text));
  auto again = parse_url(text);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->to_string() == text);
  if (!has_dot_segment(base.path)) FUZZ_CHECK(!has_dot_segment(r->path));
  const std::size_t hash = ref.find('#');
  if (hash == std::string_view::npos) {
    FUZZ_CHECK(r->fragment == base.fragment);
  } else {
    FUZZ_CHECK(r->fragment == ref.substr(hash + 1));
  }
  if (auto absolute = parse_url(ref)) {
    absolute->path = remove_dot_segments(absolute->path);
    if (hash == std::string_view::npos) absolute->fragment = base.fragment;
    FUZZ_CHECK(absolute->to_string() == text);
  }
}

void check_resolve(std::string_view in) {
  for (std::string_view b : k_bases) check_resolved(parse_url(b).value(), in);
  // "base reference": both sides arbitrary (a space ends any URL).
  const std::size_t space = in.find(' ');
  if (space == std::string_view::npos) return;
  auto base = parse_url(in.substr(0, space));
  if (!base) return;
  check_resolved(*base, in.substr(space + 1));
  auto same = resolve_reference(*base, "");
  FUZZ_CHECK(same.has_value() && same->to_string() == base->to_string());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string owned(reinterpret_cast<const char*>(data), size);
  const std::string_view in(owned);
  check_url(in);
  check_target(in);
  check_decode(in);
  check_normalize(in);
  check_encode(in);
  check_query(in);
  check_resolve(in);
  const std::string dots = remove_dot_segments(in);
  FUZZ_CHECK(!has_dot_segment(dots));
  return 0;
}
