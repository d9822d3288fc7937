#include "trellis/codec/http/date.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <string>

namespace trellis::http {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

// RFC 9110 §5.6.7's example instant: Sun, 06 Nov 1994 08:49:37 GMT.
const system_clock::time_point k_example{784111777s};

system_clock::time_point at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  return sys_days{year{y} / month{m} / day{d}} + hours{hh} + minutes{mm} + seconds{ss};
}

TEST(http_date, formats_imf_fixdate) {
  EXPECT_EQ(format_http_date(k_example), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_http_date(system_clock::time_point{}), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_http_date(at(2000, 2, 29, 23, 59, 59)), "Tue, 29 Feb 2000 23:59:59 GMT");
  EXPECT_EQ(format_http_date(at(1969, 12, 31, 23, 59, 59)), "Wed, 31 Dec 1969 23:59:59 GMT");
}

TEST(http_date, formatting_truncates_to_the_second) {
  EXPECT_EQ(format_http_date(k_example + 999ms), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_http_date(system_clock::time_point{} - 1ns), "Wed, 31 Dec 1969 23:59:59 GMT");
}

TEST(http_date, formats_the_clocks_extremes) {
  EXPECT_EQ(format_http_date(system_clock::time_point::max()), "Fri, 11 Apr 2262 23:47:16 GMT");
  EXPECT_EQ(format_http_date(system_clock::time_point::min()), "Tue, 21 Sep 1677 00:12:43 GMT");
}

TEST(http_date, formats_into_a_fixed_buffer_without_allocating) {
  std::array<char, http_date_size> buf{};
  format_http_date(k_example, buf);
  EXPECT_EQ(std::string(buf.data(), buf.size()), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(http_date, parses_all_three_forms_of_the_same_instant) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), k_example);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), k_example);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), k_example);
  EXPECT_EQ(parse_http_date("Sun Nov 06 08:49:37 1994"), k_example);
  EXPECT_EQ(parse_http_date("Wed Nov 16 08:49:37 1994"), k_example + days{10});
}

TEST(http_date, round_trips_across_centuries_and_leap_days) {
  for (auto t = at(1700, 1, 1, 3, 4, 5); t < at(2260, 1, 1); t += hours{24 * 37 + 7} + 13s) {
    const auto parsed = parse_http_date(format_http_date(t));
    ASSERT_TRUE(parsed) << format_http_date(t);
    EXPECT_EQ(*parsed, floor<seconds>(t));
  }
  for (int y : {1904, 2000, 2024, 2096}) {
    const auto leap = at(y, 2, 29, 12);
    EXPECT_EQ(parse_http_date(format_http_date(leap)), leap);
  }
}

TEST(http_date, rejects_anything_that_is_not_exactly_one_of_the_forms) {
  for (std::string_view bad : {"",
                               "Sun, 06 Nov 1994 08:49:37 gmt",
                               "Sun, 06 Nov 1994 08:49:37 UTC",
                               "sun, 06 Nov 1994 08:49:37 GMT",
                               "Sun, 06 nov 1994 08:49:37 GMT",
                               "Sun, 6 Nov 1994 08:49:37 GMT",
                               "Sun, 06 Nov 94 08:49:37 GMT",
                               "Sun,  06 Nov 1994 08:49:37 GMT",
                               " Sun, 06 Nov 1994 08:49:37 GMT",
                               "Sun, 06 Nov 1994 08:49:37 GMT ",
                               "Sun, 06 Nov 1994 08:49 GMT",
                               "Sun, 06 Nov 1994 8:49:37 GMT",
                               "Xyz, 06 Nov 1994 08:49:37 GMT",
                               "Sun, 06 Foo 1994 08:49:37 GMT",
                               "Sun, 30 Feb 1994 08:49:37 GMT",
                               "Sun, 29 Feb 1900 08:49:37 GMT",
                               "Sun, 00 Nov 1994 08:49:37 GMT",
                               "Sun, 06 Nov 1994 24:00:00 GMT",
                               "Sun, 06 Nov 1994 08:60:00 GMT",
                               "Sun, 06 Nov 1994 08:49:61 GMT",
                               "Sun, 06 Nov 199a 08:49:37 GMT",
                               "Sun, 06 Nov 1994 08:49:37 +0000",
                               "Sunday, 06-Nov-1994 08:49:37 GMT",
                               "Sun, 06-Nov-94 08:49:37 GMT",
                               "Sunday, 06 Nov 94 08:49:37 GMT",
                               "Sun Nov  6 08:49:37 94",
                               "Sun Nov 6 08:49:37 1994",
                               "Sun Nov  6 08:49:37 1994 GMT",
                               "1994-11-06T08:49:37Z"}) {
    EXPECT_FALSE(parse_http_date(bad).has_value()) << '"' << bad << '"';
  }
}

TEST(http_date, does_not_cross_check_the_day_name) {
  // 1994-11-06 was a Sunday; like Go, the name is checked for spelling only.
  EXPECT_EQ(parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"), k_example);
}

TEST(http_date, reads_a_leap_second_as_the_next_minute) {
  EXPECT_EQ(parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"), at(2017, 1, 1));
}

TEST(http_date, clamps_dates_beyond_the_clocks_range) {
  EXPECT_EQ(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"), system_clock::time_point::max());
  EXPECT_EQ(parse_http_date("Mon, 01 Jan 0001 00:00:00 GMT"), system_clock::time_point::min());
}

TEST(http_date, rfc850_two_digit_years_are_never_more_than_50_years_ahead) {
  const auto now = at(2025, 6, 1);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now), k_example);
  EXPECT_EQ(parse_http_date("Friday, 01-Jan-75 00:00:00 GMT", now), at(2075, 1, 1));
  EXPECT_EQ(parse_http_date("Thursday, 01-Jan-76 00:00:00 GMT", now), at(1976, 1, 1));
  EXPECT_EQ(parse_http_date("Thursday, 01-Jan-26 00:00:00 GMT", now), at(2026, 1, 1));
  const auto later = at(2090, 1, 1);
  EXPECT_EQ(parse_http_date("Monday, 01-Jan-01 00:00:00 GMT", later), at(2101, 1, 1));
  EXPECT_EQ(parse_http_date("Tuesday, 01-Jan-41 00:00:00 GMT", later), at(2041, 1, 1));
  EXPECT_EQ(parse_http_date("Sunday, 01-Jan-40 00:00:00 GMT", later), at(2140, 1, 1));
  // Without a clock: the POSIX pivot.
  EXPECT_EQ(parse_http_date("Sunday, 01-Jan-68 00:00:00 GMT"), at(2068, 1, 1));
  EXPECT_EQ(parse_http_date("Wednesday, 01-Jan-69 00:00:00 GMT"), at(1969, 1, 1));
}

}  // namespace
}  // namespace trellis::http
