// libFuzzer target for the HTTP caching semantics (http/caching.hpp): the
// Cache-Control parser, the Vary secondary key builder and the decisions
// built on them, on arbitrary bytes. Beyond "no crash, no sanitizer
// report", it checks the invariants callers rely on:
//   - parsed delta-seconds lie in 0..2^31; an invalid max-age/s-maxage is 0;
//     field-name lists are views into the input holding only tokens;
//   - format_cache_control is a fixed point: parse(format(cc)) formats the
//     same and carries the same values;
//   - a secondary key, when there is one, is "name[:value]\n" lines with
//     lower-case, sorted, distinct names; whitespace added after commas of
//     a request's values does not change it; a request always matches
//     itself unless Vary is unmatchable;
//   - lifetimes and ages stay in range; decide_reuse serves fresh only what
//     is fresh, and stale only what no directive forbids;
//   - a Cache-Status member is printable ASCII.
//
// Input: the bytes are read as field lines "name:value" separated by '\n'
// (used both as a response and as a request), and the whole input is also
// one Cache-Control value and one cache name.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "trellis/http/caching.hpp"

namespace {

using namespace trellis::http;
using std::chrono::seconds;

bool within(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

bool in_range(const std::optional<seconds>& v) {
  return !v || (*v >= seconds{0} && *v <= max_delta_seconds);
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void check_field_list(const std::optional<std::string_view>& list, std::string_view input) {
  if (!list) return;
  FUZZ_CHECK(within(*list, input));
  bool any = false;
  for (char c : *list) {
    if (c == ',' || c == ' ' || c == '\t') continue;
    FUZZ_CHECK(is_token_char(c));
    any = true;
  }
  FUZZ_CHECK(any);
}

void check_cc(const cache_control& cc, std::string_view input) {
  FUZZ_CHECK(in_range(cc.max_age) && in_range(cc.s_maxage) && in_range(cc.max_stale) &&
             in_range(cc.min_fresh) && in_range(cc.stale_while_revalidate) &&
             in_range(cc.stale_if_error));
  if (cc.max_age_invalid) FUZZ_CHECK(cc.max_age == seconds{0});
  if (cc.s_maxage_invalid) FUZZ_CHECK(cc.s_maxage == seconds{0});
  if (cc.no_cache_fields) FUZZ_CHECK(cc.no_cache);
  if (cc.private_fields) FUZZ_CHECK(cc.private_);
  check_field_list(cc.no_cache_fields, input);
  check_field_list(cc.private_fields, input);
}

bool same_values(const cache_control& a, const cache_control& b) {
  return a.max_age == b.max_age && a.s_maxage == b.s_maxage && a.max_stale == b.max_stale &&
         a.min_fresh == b.min_fresh && a.stale_while_revalidate == b.stale_while_revalidate &&
         a.stale_if_error == b.stale_if_error && a.no_cache == b.no_cache &&
         a.no_store == b.no_store && a.no_transform == b.no_transform &&
         a.only_if_cached == b.only_if_cached && a.must_revalidate == b.must_revalidate &&
         a.proxy_revalidate == b.proxy_revalidate && a.must_understand == b.must_understand &&
         a.private_ == b.private_ && a.public_ == b.public_ && a.immutable == b.immutable &&
         a.no_cache_fields == b.no_cache_fields && a.private_fields == b.private_fields;
}

void check_cache_control(std::string_view input) {
  cache_control cc;
  parse_cache_control_value(input, cc);
  check_cc(cc, input);
  const std::string text = format_cache_control(cc);
  cache_control again;
  parse_cache_control_value(text, again);
  check_cc(again, text);
  FUZZ_CHECK(same_values(cc, again));
  FUZZ_CHECK(!again.max_age_invalid && !again.s_maxage_invalid);
  FUZZ_CHECK(format_cache_control(again) == text);
}

std::vector<header_field> split_lines(std::string_view input) {
  std::vector<header_field> lines;
  std::size_t start = 0;
  while (start <= input.size() && lines.size() < 64) {
    std::size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view line = input.substr(start, end - start);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos)
      lines.push_back({line.substr(0, colon), line.substr(colon + 1)});
    start = end + 1;
  }
  return lines;
}

// `v` with a space after every comma: the same list (values without
// quotes only, where a comma always separates members).
std::string spaced(std::string_view v) {
  std::string out;
  for (char c : v) {
    out += c;
    if (c == ',') out += ' ';
  }
  return out;
}

void check_vary(std::span<const header_field> lines) {
  const fields_view view(lines);
  const auto key = secondary_key(view, view);
  FUZZ_CHECK(vary_matches(view, view, view) == key.has_value());
  if (!key) return;
  std::string previous;
  bool first = true;
  std::size_t start = 0;
  while (start < key->size()) {
    const std::size_t end = key->find('\n', start);
    FUZZ_CHECK(end != std::string::npos);
    const std::string_view line = std::string_view(*key).substr(start, end - start);
    const std::string_view name = line.substr(0, line.find(':'));
    FUZZ_CHECK(!name.empty());
    for (char c : name) FUZZ_CHECK(is_token_char(c) && !(c >= 'A' && c <= 'Z'));
    FUZZ_CHECK(first || std::string(name) > previous);
    previous = std::string(name);
    first = false;
    start = end + 1;
  }
  // Whitespace after commas is not part of the selecting value.
  std::vector<std::string> values;
  values.reserve(lines.size());
  for (const header_field& f : lines)
    values.push_back(f.value.find('"') == std::string_view::npos ? spaced(f.value)
                                                                 : std::string(f.value));
  std::vector<header_field> respaced;
  for (std::size_t i = 0; i < lines.size(); ++i) respaced.push_back({lines[i].name, values[i]});
  FUZZ_CHECK(secondary_key(view, fields_view(respaced)) == key);
}

void check_decisions(std::span<const header_field> lines, std::string_view input) {
  const fields_view view(lines);
  const cache_control cc = parse_cache_control(view);
  check_cc(cc, input);
  const cache_time t = cache_time{} + std::chrono::hours(24 * 365 * 50);
  const cache_response res = cache_response::from(200, view);
  const freshness f = freshness_lifetime(res, t);
  FUZZ_CHECK(f.lifetime >= seconds{0} && f.lifetime <= max_delta_seconds);
  const auto age_value = parse_age(view);
  FUZZ_CHECK(in_range(age_value));
  const seconds initial = corrected_initial_age(view, t - std::chrono::seconds(2), t);
  FUZZ_CHECK(initial >= seconds{0} && initial <= 2 * max_delta_seconds);
  const seconds age = current_age(initial, t, t + std::chrono::seconds(input.size()));
  FUZZ_CHECK(age >= initial);
  const std::string age_text = format_age(age);
  FUZZ_CHECK(!age_text.empty() && age_text.size() <= 10);
  for (bool shared : {true, false}) {
    const cache_options o{.shared = shared};
    const reuse_decision d = decide_reuse(cc, cc, age, f.lifetime, o);
    const bool fresh = f.lifetime > age;
    if (d.action == reuse_action::serve_fresh) FUZZ_CHECK(fresh && !cc.no_cache_unqualified());
    if (d.action == reuse_action::serve_stale || d.action == reuse_action::serve_stale_revalidate) {
      FUZZ_CHECK(!fresh && !cc.must_revalidate && !cc.no_cache);
      if (shared) FUZZ_CHECK(!cc.proxy_revalidate && !cc.s_maxage);
    }
    if (d.action == reuse_action::gateway_timeout) FUZZ_CHECK(cc.only_if_cached);
    FUZZ_CHECK(d.ttl == f.lifetime - age);
    if (may_serve_stale_on_error(cc, cc, age, f.lifetime, o))
      FUZZ_CHECK(!cc.no_cache_unqualified());
    (void)check_storable(cache_request::from(trellis::http::method::get, view), res, o);
  }
  (void)evaluate_conditional(trellis::http::method::get, view, view, t);
  (void)select_for_update(view, view);
  fields stored;
  copy_storable_fields(view, cc, t, stored);
  FUZZ_CHECK(stored.contains("Date"));
  for (field x : stored) FUZZ_CHECK(!is_unstored_field(x.name));
}

void check_cache_status(std::string_view input) {
  cache_status s;
  s.hit = !input.empty() && (input[0] & 1) != 0;
  s.fwd = static_cast<cache_fwd>(input.size() % 9);
  s.ttl = seconds{static_cast<std::int64_t>(input.size()) - 100};
  s.stored = true;
  s.key = input;
  s.detail = input;
  const std::string text = format_cache_status(input, s);
  for (char c : text) FUZZ_CHECK(c >= 0x20 && c <= 0x7E);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_cache_control(input);
  const std::vector<header_field> lines = split_lines(input);
  check_vary(lines);
  check_decisions(lines, input);
  check_cache_status(input);
  return 0;
}
