// HTTP caching semantics: every decision a shared HTTP cache makes, as pure
// functions over header fields and times (RFC 9111, with RFC 9110 for
// conditional requests, RFC 5861 for stale-while-revalidate and
// stale-if-error, RFC 9211 for Cache-Status).
//
// No I/O, no clock, no storage: the caller records when it sent a request
// and received the response (std::chrono::system_clock, since HTTP dates
// are wall-clock times) and passes "now" in, so every decision is
// deterministic and testable to the second. A response store and the proxy
// that fills it only move bytes; what to store, for how long, whether a
// stored response may answer a request, how to revalidate it and what to
// invalidate is decided here. The pieces, in the order a request meets them:
//
//   parse_cache_control  §5.2 directives of a request or response
//   check_storable       §3 (and §3.5, §5.2): may this response be stored?
//   copy_storable_fields §3.1: the header fields that are stored
//   freshness_lifetime   §4.2.1-§4.2.2: explicit or heuristic lifetime
//   corrected_initial_age, current_age, format_age   §4.2.3, §5.1
//   secondary_key        §4.1: the Vary part of the cache key
//   decide_reuse         §4, §4.2.4, §5.2.1, RFC 5861: serve, serve stale,
//                        revalidate or 504
//   may_serve_stale_on_error  §4.2.4, RFC 5861 §4
//   set_validation_fields, select_for_update, update_stored_fields,
//   check_head_update    §4.3.1, §4.3.3-§4.3.5: revalidation and freshening
//   evaluate_conditional, not_modified_fields   §4.3.2, RFC 9110 §13, §15.4.5
//   invalidated_uris     §4.4
//   format_cache_status  RFC 9211
//
// The cache is a shared cache unless cache_options::shared says otherwise.
// Choices the RFCs leave open, and what this module does:
//   - A freshness directive (max-age, s-maxage) that is malformed or given
//     twice with different values makes the response stale (§4.2.1 allows
//     "first occurrence" or "stale"; stale is the more restrictive).
//   - no-cache and private with a field-name list (§5.2.2.4, §5.2.2.7): the
//     listed fields are not stored (copy_storable_fields) and the rest of
//     the response is reused normally, which §5.2.2.4 allows ("MAY use the
//     response ... if the listed header fields are excluded").
//   - Pragma (§5.4) is deprecated and has no effect, except that a request
//     "Pragma: no-cache" without any Cache-Control field is read as
//     "Cache-Control: no-cache" when cache_options::honor_request_pragma is
//     set (RFC 7234's rule).
//   - Responses to POST are not stored (RFC 9110 §9.3.3 permits it only
//     with a matching Content-Location); 206 and 304 are never stored as new
//     entries (ranges are not implemented); HEAD responses are storable but
//     may only answer HEAD requests, while a stored GET response answers
//     both.
//   - Revalidation sends If-None-Match (every stored ETag, §4.3.1 MUST) and
//     If-Modified-Since from Last-Modified only, never from Date (RFC 9110
//     §13.1.3 calls Last-Modified the interoperable choice).
//   - Stale responses are served on an upstream error only when a
//     stale-if-error directive (request or response) or
//     cache_options::stale_if_error_default allows it, and never against
//     must-revalidate, proxy-revalidate, s-maxage or no-cache, which
//     §4.2.4 says prohibit stale responses (the most restrictive directive
//     wins, §4.2.1).
//   - immutable (RFC 8246) is parsed but changes no decision: it is
//     advice to user agents about reloads.
//
// Thread-safety: pure functions over values; safe everywhere. The field
// lists of a cache_control point into the header fields it was parsed from.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/http/fields.hpp"
#include "trellis/codec/http/method.hpp"
#include "trellis/codec/http/parser.hpp"
#include "trellis/codec/url.hpp"

namespace trellis::http {

using cache_time = std::chrono::system_clock::time_point;

// 2^31 seconds: the value a too-large delta-seconds is read as (§1.2.2) and
// the largest Age a cache sends (§5.1).
inline constexpr std::chrono::seconds max_delta_seconds{2147483648LL};

// A read-only view of header fields, either parsed lines (request_head::
// headers, response_head::headers) or an owning http::fields: the functions
// below accept both without copying. Names compare case-insensitively.
// The viewed lines must outlive the view.
class fields_view {
 public:
  constexpr fields_view() noexcept = default;
  fields_view(std::span<const header_field> lines) noexcept : lines_(lines) {}
  fields_view(const fields& f) noexcept : fields_(&f) {}

  std::size_t size() const noexcept { return fields_ ? fields_->size() : lines_.size(); }
  // REQUIRES: i < size().
  header_field operator[](std::size_t i) const noexcept {
    if (fields_) {
      const field f = (*fields_)[i];
      return {f.name, f.value};
    }
    return lines_[i];
  }
  // The value of the first line named `name`.
  std::optional<std::string_view> first(std::string_view name) const noexcept;
  // The number of lines named `name`.
  std::size_t count(std::string_view name) const noexcept;
  // Whether a line named `name` lists `token` (has_token over every line).
  bool has_token(std::string_view name, std::string_view token) const noexcept;

 private:
  const fields* fields_ = nullptr;
  std::span<const header_field> lines_;
};

// --- Cache-Control (§5.2) ----------------------------------------------------

// The directives of every Cache-Control line of one message, combined.
// Directive names are case-insensitive; arguments may be tokens or
// quoted-strings (§5.2: recipients accept both); unknown directives are
// ignored. delta-seconds above 2^31 read as 2^31 (§1.2.2). Rules for bad
// input, chosen so that a malformed directive never makes the cache serve
// more than a well-formed one would:
//   - max-age, s-maxage: a malformed argument ("a100", "1.5", "'3600'",
//     "max-age =1", "max-age= 1", none) or duplicates that disagree give
//     the value 0 and set *_invalid: the response is stale (§4.2.1).
//   - min-fresh: malformed reads as 2^31, duplicates take the largest.
//   - max-stale, stale-while-revalidate, stale-if-error: a malformed
//     argument drops the directive; duplicates take the smallest. A bare
//     max-stale (any staleness, §5.2.1.2) reads as 2^31.
//   - no-cache, private: a field-name list ("no-cache=\"a, b\"", or the
//     token form "no-cache=a") is kept as a view; an empty or malformed
//     list, a bare occurrence, or two lists that differ make the directive
//     unqualified.
struct cache_control {
  std::optional<std::chrono::seconds> max_age;                 // §5.2.1.1, §5.2.2.1
  std::optional<std::chrono::seconds> s_maxage;                // §5.2.2.10
  std::optional<std::chrono::seconds> max_stale;               // §5.2.1.2 (request)
  std::optional<std::chrono::seconds> min_fresh;               // §5.2.1.3 (request)
  std::optional<std::chrono::seconds> stale_while_revalidate;  // RFC 5861 §3
  std::optional<std::chrono::seconds> stale_if_error;          // RFC 5861 §4
  bool no_cache = false;          // §5.2.1.4, §5.2.2.4: bare or with a field list
  bool no_store = false;          // §5.2.1.5, §5.2.2.5
  bool no_transform = false;      // §5.2.1.6, §5.2.2.6
  bool only_if_cached = false;    // §5.2.1.7 (request)
  bool must_revalidate = false;   // §5.2.2.2
  bool proxy_revalidate = false;  // §5.2.2.8
  bool must_understand = false;   // §5.2.2.3
  bool private_ = false;          // §5.2.2.7: bare or with a field list
  bool public_ = false;           // §5.2.2.9
  bool immutable = false;         // RFC 8246
  bool max_age_invalid = false;   // max-age was malformed or conflicting (max_age is 0)
  bool s_maxage_invalid = false;  // s-maxage was malformed or conflicting (s_maxage is 0)
  // "Pragma: no-cache" in a message without any Cache-Control line (§5.4).
  bool pragma_no_cache = false;
  // The field-name list of a qualified no-cache / private, without quotes
  // ("a, b"): a view into the parsed field value. nullopt when the
  // directive is absent or unqualified.
  std::optional<std::string_view> no_cache_fields;
  std::optional<std::string_view> private_fields;

  // no-cache without a field list: nothing may be reused unvalidated.
  bool no_cache_unqualified() const noexcept { return no_cache && !no_cache_fields; }
  // private without a field list: a shared cache may not store the response.
  bool private_unqualified() const noexcept { return private_ && !private_fields; }
};

// Parses every Cache-Control line of `headers` (and Pragma, see
// cache_control::pragma_no_cache). Never fails: bad input is handled as
// described above. No allocation.
cache_control parse_cache_control(fields_view headers) noexcept;

// Parses one Cache-Control field value into `cc`, combining with what is
// already there (as a second line would). For tests and fuzzing.
void parse_cache_control_value(std::string_view value, cache_control& cc) noexcept;

// The canonical text of `cc` ("max-age=60, no-cache=\"a\", private"), in a
// fixed directive order; parse_cache_control_value of it gives `cc` back
// (the *_invalid flags aside, which it writes as their value 0).
std::string format_cache_control(const cache_control& cc);

// --- options -------------------------------------------------------------------

struct cache_options {
  // A shared cache (proxy, CDN) rather than a private one (a user agent):
  // honours s-maxage, proxy-revalidate, private and Authorization (§3, §3.5).
  // Default true: trellis caches sit in front of many users.
  bool shared = true;
  // Heuristic freshness (§4.2.2) is this percentage of the time between
  // Last-Modified and Date. Default 10, the "typical setting" of §4.2.2.
  // 0 turns heuristics off: only explicitly fresh responses are reused.
  unsigned heuristic_percent = 10;
  // Upper bound of a heuristic lifetime. Default one day: a file last
  // changed a year ago would otherwise stay fresh for over a month,
  // unrevalidated, after it changes.
  std::chrono::seconds max_heuristic_lifetime = std::chrono::hours(24);
  // Read a request's "Pragma: no-cache" as "Cache-Control: no-cache" when
  // the request has no Cache-Control field (RFC 7234 §5.4; RFC 9111
  // deprecates Pragma and drops the rule). Default off: the clients that
  // still send it also send Cache-Control.
  bool honor_request_pragma = false;
  // How long past its freshness a response may be served when the origin
  // fails (5xx or no answer) and no stale-if-error directive says more
  // (§4.2.4 allows a disconnected cache to serve stale). Default 0: only
  // what the directives allow. An edge cache protecting users from origin
  // outages raises it (nginx's proxy_cache_use_stale, Varnish's grace).
  std::chrono::seconds stale_if_error_default{0};
  // Store responses that could never be reused without a full fetch: no
  // explicit or heuristic freshness, no validator (ETag, Last-Modified),
  // no stale-if-error, or "Vary: *". RFC 9111 permits storing them; they
  // only take memory. Default off.
  bool store_unreusable = false;
};

// --- storability (§3) ------------------------------------------------------------

// A request as the cache sees it: the method, the fields and their parsed
// Cache-Control (parse once, use for every decision).
struct cache_request {
  http::method method = http::method::get;
  fields_view headers;
  cache_control cc;

  static cache_request from(http::method m, fields_view headers) noexcept {
    return {m, headers, parse_cache_control(headers)};
  }
};

// A response as the cache sees it (received, or stored).
struct cache_response {
  int status = 200;
  fields_view headers;
  cache_control cc;

  static cache_response from(int status, fields_view headers) noexcept {
    return {status, headers, parse_cache_control(headers)};
  }
};

enum class store_verdict {
  storable,
  method,         // not GET or HEAD
  status,         // not final, 206/304, or must-understand with a status not understood
  no_store,       // no-store in the request or the response (§5.2.1.5, §5.2.2.5)
  private_,       // unqualified private in a shared cache (§5.2.2.7)
  authorization,  // Authorization in the request, no public/must-revalidate/s-maxage (§3.5)
  no_freshness,   // no explicit freshness, no public, status not heuristically cacheable
  not_reusable,   // see cache_options::store_unreusable
};

// A short token naming the verdict, for Cache-Status "detail" and logs:
// "storable", "method", "status", "no-store", "private", "authorization",
// "no-freshness", "not-reusable".
std::string_view to_string(store_verdict v) noexcept;

// Whether `status` may get heuristic freshness (RFC 9110 §15.1: 200, 203,
// 204, 206, 300, 301, 308, 404, 405, 410, 414, 501).
bool is_heuristically_cacheable(int status) noexcept;

// Whether this cache implements the caching rules of `status` (what
// must-understand asks, §5.2.2.3): the final statuses of RFC 9110 except
// 206 and 304.
bool understands_status(int status) noexcept;

// Whether `response`, received for `request`, may be stored (§3): method
// GET or HEAD; final status; 206/304, or must-understand with a status not
// understood, refused (must-understand with an understood status overrides
// no-store, §5.2.2.3); no no-store in request or response; for a shared
// cache no unqualified private, and Authorization only with public,
// must-revalidate or s-maxage; and explicit freshness (Expires, max-age,
// s-maxage when shared), public, or a heuristically cacheable status.
// Returns the first reason found, or store_verdict::storable.
store_verdict check_storable(const cache_request& request, const cache_response& response,
                             const cache_options& options = {});

// The Authorization rule on its own (§3.5): whether a shared cache may
// reuse a response to a request that carried Authorization.
bool allows_authorized_reuse(const cache_control& response_cc) noexcept;

// --- stored fields (§3.1, §3.2) -----------------------------------------------------

// Fields that are never stored or updated from a response, whatever it
// says: the hop-by-hop fields of RFC 9110 §7.6.1 (Connection, Keep-Alive,
// Proxy-Connection, TE, Transfer-Encoding, Upgrade) and the proxy's own
// (Proxy-Authenticate, Proxy-Authentication-Info, Proxy-Authorization;
// §3.1). Case-insensitive.
bool is_unstored_field(std::string_view name) noexcept;

// Appends to `out` the fields of `response` that a cache stores (§3.1):
// all, in order, except is_unstored_field, the fields named by Connection,
// the fields listed by a qualified no-cache and (shared cache) by a
// qualified private. Adds a Date field from `response_time` when the
// response has none (RFC 9110 §6.6.1: a recipient with a clock MUST, when
// it caches the message). `cc` is the response's parsed Cache-Control.
void copy_storable_fields(fields_view response, const cache_control& cc, cache_time response_time,
                          fields& out, const cache_options& options = {});

// --- freshness (§4.2.1, §4.2.2) ----------------------------------------------------

struct freshness {
  std::chrono::seconds lifetime{0};  // 0..2^31
  bool heuristic = false;            // computed by §4.2.2, not given by the origin
};

// The freshness lifetime of `response` (§4.2.1): s-maxage (shared cache),
// else max-age, else Expires minus Date (Date, or `response_time` when
// Date is absent or invalid; an invalid Expires, such as "0", or several
// Expires that disagree, give 0), else heuristic_percent of Date minus
// Last-Modified, capped by max_heuristic_lifetime, when the status is
// heuristically cacheable or the response is public (§4.2.2, §5.2.2.9),
// else 0. Dates are matched case-insensitively (§4.2).
freshness freshness_lifetime(const cache_response& response, cache_time response_time,
                             const cache_options& options = {});

// The Age field of `headers` (§5.1): the first member of the first Age
// line; nullopt when absent or invalid (not a non-negative integer),
// which a cache ignores. Values above 2^31 read as 2^31.
std::optional<std::chrono::seconds> parse_age(fields_view headers) noexcept;

// An HTTP-date field of `headers` (Date, Expires, Last-Modified...):
// the first line, parsed case-insensitively (§4.2). nullopt when absent
// or invalid. `now` resolves two-digit years (parse_http_date).
std::optional<cache_time> parse_date_field(fields_view headers, std::string_view name,
                                           cache_time now) noexcept;

// §4.2.3: corrected_initial_age = max(apparent_age, corrected_age_value),
// where apparent_age = max(0, response_time - date_value) and
// corrected_age_value = age_value + (response_time - request_time).
// date_value is the Date field (response_time when absent), age_value the
// Age field (0 when absent). The caller records request_time (when it
// sent the request) and response_time (when the response arrived).
// Whole seconds, rounded down; at most 2^32.
std::chrono::seconds corrected_initial_age(fields_view response, cache_time request_time,
                                           cache_time response_time) noexcept;

// §4.2.3: current_age = corrected_initial_age + (now - response_time),
// never negative.
std::chrono::seconds current_age(std::chrono::seconds corrected_initial_age,
                                 cache_time response_time, cache_time now) noexcept;

// The Age field value for a response served from cache (§5.1): the age in
// decimal, 0 for a negative age, "2147483648" at and beyond 2^31.
std::string format_age(std::chrono::seconds age);

// --- Vary (§4.1) ---------------------------------------------------------------------

// The secondary cache key of a stored response: for each field name its
// Vary lists (lower-cased, sorted, duplicates removed), "name:value\n"
// when the request has the field and "name\n" when it has none (an absent
// field only matches an absent one, §4.1). The value is every line of the
// field joined with ",", each list member trimmed of the whitespace around
// it and empty members dropped, so "a,b", " a , b" and two lines "a", "b"
// give the same key; nothing else is normalised (values may be
// case-sensitive). Equal keys match. "" for a response without Vary.
// nullopt when Vary lists "*" or something that is not a field name: such
// a response never matches (§4.1).
std::optional<std::string> secondary_key(fields_view response, fields_view request);

// Whether a response stored for `stored_request` may be selected for
// `request` (§4.1): their secondary keys under `response`'s Vary are equal.
bool vary_matches(fields_view response, fields_view stored_request, fields_view request);

// --- reuse (§4, §4.2.4, §5.2.1, RFC 5861) ----------------------------------------------

enum class reuse_action {
  serve_fresh,             // fresh and acceptable to the request: a hit
  serve_stale,             // stale, and the request's max-stale accepts it: a hit
  serve_stale_revalidate,  // stale within stale-while-revalidate: a hit; revalidate in background
  revalidate,              // send a conditional request (set_validation_fields) first
  gateway_timeout,         // only-if-cached and the response can't be used: answer 504 (§5.2.1.7)
};

// Why a request was forwarded (RFC 9211 §2.2 "fwd").
enum class cache_fwd {
  none,       // not forwarded
  bypass,     // the cache was configured not to handle this request
  method,     // the method must be forwarded
  uri_miss,   // nothing stored for the URI
  vary_miss,  // stored responses for the URI, none selected by Vary
  miss,       // nothing usable (when uri-miss and vary-miss can't be told apart)
  request,    // a fresh response was found, but the request's directives refused it
  stale,      // the response found was stale (or needed validation)
  partial,    // the response found was partial
};

struct reuse_decision {
  reuse_action action = reuse_action::revalidate;
  // For revalidate (and gateway_timeout): cache_fwd::request when the
  // stored response was fresh but the request refused it, else
  // cache_fwd::stale. cache_fwd::none when served.
  cache_fwd fwd = cache_fwd::none;
  // Remaining freshness, lifetime - age: negative when stale (RFC 9211 ttl).
  std::chrono::seconds ttl{0};
  // What decided it, a token for Cache-Status "detail" and logs: "fresh",
  // "max-stale", "stale-while-revalidate", "stale", "no-cache" (response),
  // "request-no-cache", "request-pragma", "request-max-age",
  // "request-min-fresh", "must-revalidate" (also proxy-revalidate and
  // s-maxage). A gateway_timeout keeps the reason revalidation was needed.
  std::string_view reason;
};

// Whether a stored response of age `age` and freshness lifetime
// `lifetime` may answer `request` (§4): never without validation when the
// response has unqualified no-cache, the request has no-cache (or Pragma,
// see cache_options::honor_request_pragma), or the age exceeds the
// request's max-age; fresh (lifetime > age) and leaving the request's
// min-fresh → serve_fresh; stale → serve_stale when the request's
// max-stale covers the staleness, else serve_stale_revalidate within the
// response's stale-while-revalidate, unless must-revalidate (or, shared,
// proxy-revalidate or s-maxage) forbids serving it stale (§4.2.4); else
// revalidate. A request with only-if-cached gets gateway_timeout instead
// of revalidate. REQUIRES: the response was selected for the request
// (primary key, vary_matches) and its stored fields were filtered by
// copy_storable_fields (qualified no-cache/private fields removed).
reuse_decision decide_reuse(const cache_control& request_cc, const cache_control& response_cc,
                            std::chrono::seconds age, std::chrono::seconds lifetime,
                            const cache_options& options = {}) noexcept;

// Whether `status` from upstream is an "error" for stale-if-error: 500,
// 502, 503, 504 (RFC 5861 §4). A failed connection or timeout is one too.
constexpr bool is_stale_if_error_status(int status) noexcept {
  return status == 500 || status == 502 || status == 503 || status == 504;
}

// Whether the stored response may be served stale because forwarding or
// revalidating failed (RFC 5861 §4, §4.2.4): staleness (age - lifetime)
// within the response's stale-if-error, the request's, or
// stale_if_error_default, and no must-revalidate, unqualified no-cache
// or (shared) proxy-revalidate/s-maxage. A fresh response may always be
// served. The caller decides what an error is (is_stale_if_error_status).
bool may_serve_stale_on_error(const cache_control& request_cc, const cache_control& response_cc,
                              std::chrono::seconds age, std::chrono::seconds lifetime,
                              const cache_options& options = {}) noexcept;

// --- validation (§4.3) -------------------------------------------------------------------

// Sets the validators of a conditional request revalidating `stored`
// (§4.3.1) on the outgoing request fields `out`: If-None-Match with the
// stored ETag (quoted if the origin sent it unquoted), If-Modified-Since
// with the stored Last-Modified. Replaces any the client sent (the client's
// own conditionals are answered from cache, evaluate_conditional). Removes
// If-Match, If-Unmodified-Since, If-Range. Returns false (and sets
// nothing) when the stored response has no validator: the request must
// then be unconditional.
bool set_validation_fields(fields_view stored, fields& out);

enum class update_match {
  strong,        // a strong ETag matched: update this response
  weak,          // a weak ETag or Last-Modified matched: update the most recent such response
  no_validator,  // neither has a validator: update it if it is the only stored response
  none,          // no match: the 304 must not update this response (§4.3.4)
};

// Whether a 304 `not_modified` selects the stored response `stored` for
// update (§4.3.4): by strong ETag comparison when the 304 has a strong
// ETag, by weak comparison when it has a weak one, else by equal
// Last-Modified; no_validator when neither carries ETag or Last-Modified.
// When a 304 selects no response, the caller forwards the request again
// without conditionals.
update_match select_for_update(fields_view stored, fields_view not_modified) noexcept;

// Freshens the stored fields with a 304 or HEAD response (§3.2, §4.3.4):
// every field of `update` replaces the stored lines of the same name,
// except is_unstored_field, the fields its Connection names, and
// Content-Length. The stored Age is dropped when `update` has none, and
// Date set from `response_time` when `update` has none (the old ones
// describe the old exchange). Fields listed by a qualified no-cache or
// (shared) private of the resulting Cache-Control are removed. The caller
// then recomputes the entry's age from the updated fields and the
// validation's request and response times, and its secondary key if Vary
// changed. REQUIRES: `update` does not view `stored`.
void update_stored_fields(fields& stored, fields_view update, cache_time response_time,
                          const cache_options& options = {});

enum class head_update {
  update,      // update the stored GET response with update_stored_fields
  mark_stale,  // validators or Content-Length differ: consider it stale
};

// What a 200 response to HEAD does to a stored GET response (§4.3.5):
// update when every validator the HEAD response carries (ETag,
// Last-Modified) equals the stored one and, if it has Content-Length, it
// equals `stored_content_length` (the stored content's size).
head_update check_head_update(fields_view stored, fields_view head_response,
                              std::uint64_t stored_content_length) noexcept;

enum class conditional_result {
  full,          // no applicable condition, or the condition holds: send the stored response
  not_modified,  // answer 304 (not_modified_fields)
};

// Evaluates a client's If-None-Match or If-Modified-Since against a stored
// response chosen for it (§4.3.2, RFC 9110 §13.1.2, §13.1.3, §13.2.2):
// only for GET and HEAD. If-None-Match: "*" or any listed entity-tag
// equal by weak comparison to the stored ETag → not_modified. Without
// If-None-Match, If-Modified-Since (a single valid HTTP-date) at or after
// the stored Last-Modified (or its Date when it has none) →
// not_modified. If-Match and If-Unmodified-Since are for the origin and
// ignored. `now` resolves two-digit years.
conditional_result evaluate_conditional(http::method m, fields_view request, fields_view stored,
                                        cache_time now) noexcept;

// Appends to `out` the fields of a 304 answering from `stored` (RFC 9110
// §15.4.5): Cache-Control, Content-Location, Date, ETag, Expires, Vary,
// and Last-Modified when there is no ETag. The caller adds Age.
void not_modified_fields(fields_view stored, fields& out);

// --- invalidation (§4.4) ---------------------------------------------------------------

// The URIs whose stored responses a cache invalidates after `status`
// answered a request with method `m` to `target` (§4.4): none unless the
// method is unsafe (or unknown) and the status is 2xx or 3xx; then the
// target, and the Location and Content-Location values resolved against
// it (RFC 3986 §5.2) when they have the target's origin (scheme, host and
// port; another origin is ignored to prevent denial of service).
// Fragments are removed; duplicates are listed once.
std::vector<url> invalidated_uris(http::method m, int status, const url& target,
                                  fields_view response);

// --- Cache-Status (RFC 9211) -------------------------------------------------------------

struct cache_status {
  bool hit = false;                           // answered from cache, not forwarded
  cache_fwd fwd = cache_fwd::none;            // why it was forwarded (ignored on a hit)
  std::optional<int> fwd_status{};            // the status the next hop sent (with fwd)
  std::optional<std::chrono::seconds> ttl{};  // remaining freshness; negative when stale
  bool stored = false;                        // the forwarded response was stored (with fwd)
  bool collapsed = false;                     // collapsed with other requests (with fwd)
  std::string_view key{};                     // the cache key, for debugging (may be empty)
  std::string_view detail{};                  // implementation detail (may be empty)
};

// The RFC 9211 token of `fwd`: "bypass", "method", "uri-miss",
// "vary-miss", "miss", "request", "stale", "partial"; "" for none.
std::string_view to_string(cache_fwd fwd) noexcept;

// One Cache-Status list member for the cache named `cache_name` (RFC 9211
// §2): the name as an sf-token when it is one, else an sf-string; then the
// parameters in the order of §2.1-§2.8: "; hit", or "; fwd=<token>" with
// "; fwd-status=N", then "; ttl=N", then "; stored" and "; collapsed" when
// forwarded, "; key=<string>", "; detail=<token or string>". Bytes an
// sf-string can't hold (controls, non-ASCII) are replaced by '?'. A cache
// adds its member at the end of the field's existing value (after ", ").
std::string format_cache_status(std::string_view cache_name, const cache_status& status);

}  // namespace trellis::http
