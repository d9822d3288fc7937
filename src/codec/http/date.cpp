#include "trellis/codec/http/date.hpp"

#include <array>
#include <cstdint>

namespace trellis::http {
namespace {

using std::chrono::system_clock;

constexpr std::array<std::string_view, 7> k_day_names = {"Sun", "Mon", "Tue", "Wed",
                                                         "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> k_long_day_names = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> k_month_names = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void put2(char* p, unsigned v) noexcept {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

void put3(char* p, std::string_view name) noexcept {
  p[0] = name[0];
  p[1] = name[1];
  p[2] = name[2];
}

// n decimal digits at s[pos...]; -1 if any is not a digit.
int digits(std::string_view s, std::size_t pos, std::size_t n) noexcept {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

bool is_day_name(std::string_view s) noexcept {
  for (auto n : k_day_names) {
    if (s == n) return true;
  }
  return false;
}

bool is_long_day_name(std::string_view s) noexcept {
  for (auto n : k_long_day_names) {
    if (s == n) return true;
  }
  return false;
}

// 1-12, or 0 when `s` is not a month name (case-sensitive, RFC 9110).
unsigned month_number(std::string_view s) noexcept {
  for (unsigned i = 0; i < k_month_names.size(); ++i) {
    if (s == k_month_names[i]) return i + 1;
  }
  return 0;
}

struct fields_read {
  int year = -1;
  unsigned month = 0;
  int day = -1;
  int hour = -1;
  int minute = -1;
  int second = -1;
};

// "HH:MM:SS" at s[pos...].
bool read_time(std::string_view s, std::size_t pos, fields_read& f) noexcept {
  if (s[pos + 2] != ':' || s[pos + 5] != ':') return false;
  f.hour = digits(s, pos, 2);
  f.minute = digits(s, pos + 3, 2);
  f.second = digits(s, pos + 6, 2);
  return f.hour >= 0 && f.hour <= 23 && f.minute >= 0 && f.minute <= 59 && f.second >= 0 &&
         f.second <= 60;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
bool read_imf_fixdate(std::string_view s, fields_read& f) noexcept {
  if (s.size() != 29 || !is_day_name(s.substr(0, 3)) || s.substr(3, 2) != ", " || s[7] != ' ' ||
      s[11] != ' ' || s[16] != ' ' || s.substr(25) != " GMT")
    return false;
  f.day = digits(s, 5, 2);
  f.month = month_number(s.substr(8, 3));
  f.year = digits(s, 12, 4);
  return read_time(s, 17, f);
}

// asctime-date: "Sun Nov  6 08:49:37 1994" (the day is 2DIGIT or SP DIGIT)
bool read_asctime(std::string_view s, fields_read& f) noexcept {
  if (s.size() != 24 || !is_day_name(s.substr(0, 3)) || s[3] != ' ' || s[7] != ' ' ||
      s[10] != ' ' || s[19] != ' ')
    return false;
  f.month = month_number(s.substr(4, 3));
  f.day = s[8] == ' ' ? digits(s, 9, 1) : digits(s, 8, 2);
  f.year = digits(s, 20, 4);
  return read_time(s, 11, f);
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"; the year comes back as
// its two digits, for the caller to place in a century.
bool read_rfc850(std::string_view s, fields_read& f) noexcept {
  const std::size_t comma = s.find(',');
  if (comma == std::string_view::npos || !is_long_day_name(s.substr(0, comma))) return false;
  const std::string_view r = s.substr(comma);  // ", 06-Nov-94 08:49:37 GMT"
  if (r.size() != 24 || r[1] != ' ' || r[4] != '-' || r[8] != '-' || r[11] != ' ' ||
      r.substr(20) != " GMT")
    return false;
  f.day = digits(r, 2, 2);
  f.month = month_number(r.substr(5, 3));
  f.year = digits(r, 9, 2);
  return read_time(r, 12, f);
}

std::optional<system_clock::time_point> to_time_point(const fields_read& f) noexcept {
  using namespace std::chrono;
  if (f.year < 0 || f.month == 0 || f.day < 1) return std::nullopt;
  const year_month_day ymd{year{f.year}, month{f.month}, day{static_cast<unsigned>(f.day)}};
  if (!ymd.ok()) return std::nullopt;
  const sys_seconds t = sys_days{ymd} + hours{f.hour} + minutes{f.minute} + seconds{f.second};
  // system_clock counts nanoseconds in 64 bits on libstdc++: years 1677 to
  // 2262. Converting a date outside that range would overflow; clamp.
  if (t > floor<seconds>(system_clock::time_point::max())) return system_clock::time_point::max();
  if (t < ceil<seconds>(system_clock::time_point::min())) return system_clock::time_point::min();
  return time_point_cast<system_clock::duration>(t);
}

// The four-digit year of an rfc850-date's two digits. With `now_year`: the
// year ending in those digits within (now - 50, now + 50], so never more
// than 50 years in the future (RFC 9110 §5.6.7). Without: the POSIX rule.
int full_year(int two_digits, std::optional<int> now_year) noexcept {
  if (!now_year) return two_digits < 69 ? 2000 + two_digits : 1900 + two_digits;
  const int now = *now_year;
  int y = now - ((now % 100) + 100) % 100 + two_digits;
  if (y > now + 50) y -= 100;
  if (y <= now - 50) y += 100;
  return y;
}

std::optional<system_clock::time_point> parse(std::string_view text, std::optional<int> now_year) {
  fields_read f;
  if (read_imf_fixdate(text, f) || read_asctime(text, f)) return to_time_point(f);
  if (read_rfc850(text, f)) {
    f.year = full_year(f.year, now_year);
    return to_time_point(f);
  }
  return std::nullopt;
}

}  // namespace

void format_http_date(system_clock::time_point t, std::span<char, http_date_size> out) noexcept {
  using namespace std::chrono;
  const auto secs = floor<seconds>(t);
  const auto day_point = floor<days>(secs);
  const year_month_day ymd{day_point};
  const hh_mm_ss hms{secs - day_point};
  char* p = out.data();
  put3(p, k_day_names[weekday{day_point}.c_encoding()]);
  p[3] = ',';
  p[4] = ' ';
  put2(p + 5, static_cast<unsigned>(ymd.day()));
  p[7] = ' ';
  put3(p + 8, k_month_names[static_cast<unsigned>(ymd.month()) - 1]);
  p[11] = ' ';
  const auto y = static_cast<unsigned>(static_cast<int>(ymd.year()));
  put2(p + 12, (y / 100) % 100);
  put2(p + 14, y % 100);
  p[16] = ' ';
  put2(p + 17, static_cast<unsigned>(hms.hours().count()));
  p[19] = ':';
  put2(p + 20, static_cast<unsigned>(hms.minutes().count()));
  p[22] = ':';
  put2(p + 23, static_cast<unsigned>(hms.seconds().count()));
  p[25] = ' ';
  p[26] = 'G';
  p[27] = 'M';
  p[28] = 'T';
}

std::string format_http_date(system_clock::time_point t) {
  std::string s(http_date_size, '\0');
  format_http_date(t, std::span<char, http_date_size>(s.data(), http_date_size));
  return s;
}

std::optional<system_clock::time_point> parse_http_date(std::string_view text,
                                                        system_clock::time_point now) {
  using namespace std::chrono;
  return parse(text, static_cast<int>(year_month_day{floor<days>(now)}.year()));
}

std::optional<system_clock::time_point> parse_http_date(std::string_view text) {
  return parse(text, std::nullopt);
}

}  // namespace trellis::http
