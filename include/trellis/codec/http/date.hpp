// HTTP-date (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
//
// format_http_date writes the IMF-fixdate form, the only one a sender may
// generate, with plain arithmetic: no locale, no strftime, no time zone
// database, no allocation in the span overload. A server formats one per
// second and caches it for its Date headers. parse_http_date accepts the
// IMF-fixdate and, as RFC 9110 requires of recipients, the two obsolete
// forms: rfc850-date ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime-date
// ("Sun Nov  6 08:49:37 1994"). HTTP-date is case-sensitive and has no
// optional whitespace, so parsing is exact; the day name must be a real day
// name but is not checked against the date (Go's net/http does the same).
//
// Thread-safety: pure functions; reentrant.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace trellis::http {

// Length of an IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
inline constexpr std::size_t http_date_size = 29;

// Writes `t` (rounded down to the second) as an IMF-fixdate into `out`.
// Every system_clock time point (years 1677 to 2262 with libstdc++'s
// nanosecond clock) has a four-digit year, so this cannot fail.
void format_http_date(std::chrono::system_clock::time_point t,
                      std::span<char, http_date_size> out) noexcept;

// The same, as a string.
std::string format_http_date(std::chrono::system_clock::time_point t);

// Parses any of the three HTTP-date forms; nullopt when `text` is none of
// them or names an impossible date or time (Feb 30, 24:00:00). A second of
// 60 (a leap second, allowed by RFC 5322) reads as the next minute's first.
// Dates beyond what system_clock holds (the common "Fri, 31 Dec 9999
// 23:59:59 GMT" of never-expiring cookies and caches) are clamped to
// time_point::max() (or min()), not rejected.
//
// `now` resolves rfc850-date's two-digit year: per RFC 9110, a year that
// would be more than 50 years in the future is the most recent past year
// with those two digits. The codec reads no clock; pass the current time.
std::optional<std::chrono::system_clock::time_point> parse_http_date(
    std::string_view text, std::chrono::system_clock::time_point now);

// As above, with rfc850-date's two-digit years read by the fixed POSIX
// strptime rule (00-68 -> 2000-2068, 69-99 -> 1969-1999) instead of
// RFC 9110's sliding window; for callers without a clock at hand. The
// other two forms carry four-digit years and parse the same either way.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

}  // namespace trellis::http
