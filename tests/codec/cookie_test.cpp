#include "trellis/codec/cookie.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace trellis::http {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> pairs(const std::vector<cookie>& cookies) {
  std::vector<std::string> out;
  for (const cookie& c : cookies) out.push_back(std::string(c.name) + "=" + std::string(c.value));
  return out;
}

// --- Cookie header -----------------------------------------------------------------

TEST(cookie_header, parses_name_value_pairs_as_views) {
  const std::string header = "sid=abc123; theme=dark";
  auto c = parse_cookie_header(header);
  ASSERT_TRUE(c);
  EXPECT_EQ(pairs(*c), (std::vector<std::string>{"sid=abc123", "theme=dark"}));
  EXPECT_EQ((*c)[0].name.data(), header.data());
}

TEST(cookie_header, tolerates_missing_or_extra_whitespace_and_stray_semicolons) {
  for (std::string_view h :
       {"a=1;b=2", "a=1; b=2", "  a=1 ;\tb=2 ; ", "a = 1; b= 2", ";a=1;;b=2;"}) {
    auto c = parse_cookie_header(h);
    ASSERT_TRUE(c) << h;
    EXPECT_EQ(pairs(*c), (std::vector<std::string>{"a=1", "b=2"})) << h;
  }
  EXPECT_TRUE(parse_cookie_header("")->empty());
}

TEST(cookie_header, strips_dquotes_and_keeps_equals_signs_in_values) {
  auto c = parse_cookie_header("q=\"quoted\"; tok=YWJj==; empty=; eq=\"\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(pairs(*c), (std::vector<std::string>{"q=quoted", "tok=YWJj==", "empty=", "eq="}));
}

TEST(cookie_header, refuses_control_characters_outright) {
  EXPECT_EQ(parse_cookie_header("a=1\r\nSet-Cookie: b=2").error(), cookie_error::control_character);
  EXPECT_EQ(parse_cookie_header(std::string_view("a=1\0b", 5)).error(),
            cookie_error::control_character);
  EXPECT_EQ(parse_cookie_header("a=\x01").error(), cookie_error::control_character);
  EXPECT_EQ(parse_cookie_header("a=\x7F").error(), cookie_error::control_character);
  EXPECT_EQ(parse_cookie_header("a=1; b=\x1B[31m", {.skip_invalid = true}).error(),
            cookie_error::control_character);
}

TEST(cookie_header, skips_pairs_that_break_the_grammar_by_default) {
  auto c = parse_cookie_header(
      "a=1; noequals; bad name=2; sp=x y; comma=1,2; bs=a\\b; q=\"open; utf=\xC3\xA9; "
      "(x)=1; =anon; ok=yes");
  ASSERT_TRUE(c);
  EXPECT_EQ(pairs(*c), (std::vector<std::string>{"a=1", "ok=yes"}));
}

TEST(cookie_header, reports_grammar_errors_when_strict) {
  const cookie_options strict{.skip_invalid = false};
  EXPECT_EQ(parse_cookie_header("a=1; noequals", strict).error(), cookie_error::bad_name);
  EXPECT_EQ(parse_cookie_header("a b=1", strict).error(), cookie_error::bad_name);
  EXPECT_EQ(parse_cookie_header("a=x y", strict).error(), cookie_error::bad_value);
  EXPECT_EQ(parse_cookie_header("a=\"x", strict).error(), cookie_error::bad_value);
  EXPECT_EQ(parse_cookie_header("a=1,2", strict).error(), cookie_error::bad_value);
  EXPECT_TRUE(parse_cookie_header("a=1;b=\"2\"", strict));
}

TEST(cookie_header, keeps_duplicate_names_in_order_and_finds_the_first) {
  auto c = parse_cookie_header("sid=specific; other=1; sid=general");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->size(), 3u);
  EXPECT_EQ(find_cookie(*c, "sid"), "specific");
  EXPECT_EQ(find_cookie(*c, "other"), "1");
  EXPECT_FALSE(find_cookie(*c, "SID").has_value());  // names are case-sensitive
}

TEST(cookie_header, refuses_more_cookies_than_the_limit_and_leaves_output_alone) {
  std::string header;
  for (int i = 0; i < 200; ++i) header += "c" + std::to_string(i) + "=v; ";
  EXPECT_EQ(parse_cookie_header(header)->size(), 200u);
  header += "one=more";
  EXPECT_EQ(parse_cookie_header(header).error(), cookie_error::too_many_cookies);

  std::vector<cookie> out;
  ASSERT_TRUE(parse_cookie_header("a=1", out));
  auto r = parse_cookie_header("b=2; c=3; d=4", out, {.max_cookies = 2});
  EXPECT_EQ(r.error(), cookie_error::too_many_cookies);
  EXPECT_EQ(pairs(out), (std::vector<std::string>{"a=1"}));
}

TEST(cookie_header, appends_several_headers_into_one_list) {
  std::vector<cookie> out;
  ASSERT_TRUE(parse_cookie_header("a=1; b=2", out));
  ASSERT_TRUE(parse_cookie_header("c=3", out));
  EXPECT_EQ(pairs(out), (std::vector<std::string>{"a=1", "b=2", "c=3"}));
}

// --- Set-Cookie ---------------------------------------------------------------------

TEST(cookie_builder, writes_every_attribute_in_a_fixed_order) {
  set_cookie c{.name = "sid",
               .value = "abc123",
               .expires = std::chrono::system_clock::time_point(784111777s),
               .max_age = 3600s,
               .domain = "example.com",
               .path = "/app",
               .secure = true,
               .http_only = true,
               .same_site = same_site_policy::lax};
  auto s = c.to_string();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(*s,
            "sid=abc123; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Max-Age=3600; "
            "Domain=example.com; Path=/app; Secure; HttpOnly; SameSite=Lax");
}

TEST(cookie_builder, writes_only_what_was_set) {
  EXPECT_EQ((*set_cookie{.name = "a", .value = "1"}.to_string()), "a=1");
  EXPECT_EQ((*set_cookie{.name = "a", .value = ""}.to_string()), "a=");
  EXPECT_EQ((*set_cookie{.name = "a", .value = "\"q\""}.to_string()), "a=\"q\"");
  EXPECT_EQ(
      (*set_cookie{.name = "a", .value = "1", .same_site = same_site_policy::strict}.to_string()),
      "a=1; SameSite=Strict");
}

TEST(cookie_builder, non_positive_max_age_writes_zero_to_delete) {
  EXPECT_EQ((*set_cookie{.name = "a", .value = "", .max_age = 0s}.to_string()), "a=; Max-Age=0");
  EXPECT_EQ((*set_cookie{.name = "a", .value = "", .max_age = -5s}.to_string()), "a=; Max-Age=0");
}

TEST(cookie_builder, refuses_header_injection_through_any_field) {
  EXPECT_EQ((set_cookie{.name = "a", .value = "v\r\nSet-Cookie: evil=1"}.to_string().error()),
            cookie_error::bad_value);
  EXPECT_EQ((set_cookie{.name = "a", .value = "v; Domain=evil.com"}.to_string().error()),
            cookie_error::bad_value);
  EXPECT_EQ((set_cookie{.name = "a\r\nX", .value = "v"}.to_string().error()),
            cookie_error::bad_name);
  EXPECT_EQ((set_cookie{.name = "a=b", .value = "v"}.to_string().error()), cookie_error::bad_name);
  EXPECT_EQ((set_cookie{.name = "", .value = "v"}.to_string().error()), cookie_error::bad_name);
  EXPECT_EQ((set_cookie{.name = "a", .value = "v", .path = "/\r\nX: y"}.to_string().error()),
            cookie_error::bad_path);
  EXPECT_EQ((set_cookie{.name = "a", .value = "v", .path = "/; Domain=evil"}.to_string().error()),
            cookie_error::bad_path);
  EXPECT_EQ(
      (set_cookie{.name = "a", .value = "v", .domain = "evil.com\r\nX: y"}.to_string().error()),
      cookie_error::bad_domain);
  EXPECT_EQ((set_cookie{.name = "a", .value = "v", .domain = "a.com; Secure"}.to_string().error()),
            cookie_error::bad_domain);
}

TEST(cookie_builder, refuses_values_outside_cookie_octets) {
  for (std::string_view v : {"a b", "a,b", "a\\b", "a\"b", "\"ab", "caf\xC3\xA9", "a\tb"}) {
    EXPECT_EQ((set_cookie{.name = "a", .value = std::string(v)}.to_string().error()),
              cookie_error::bad_value)
        << v;
  }
}

TEST(cookie_builder, validates_domain_and_path_shapes) {
  EXPECT_TRUE((set_cookie{.name = "a", .value = "1", .domain = ".Example.com"}.to_string()));
  EXPECT_TRUE((set_cookie{.name = "a", .value = "1", .domain = "a-b.example"}.to_string()));
  for (std::string_view d : {"-a.com", "a-.com", "a..com", "a_b.com", "."}) {
    EXPECT_EQ((set_cookie{.name = "a", .value = "1", .domain = std::string(d)}.to_string().error()),
              cookie_error::bad_domain)
        << d;
  }
  EXPECT_EQ((set_cookie{.name = "a", .value = "1", .path = "relative"}.to_string().error()),
            cookie_error::bad_path);
  EXPECT_TRUE((set_cookie{.name = "a", .value = "1", .path = "/with space"}.to_string()));
}

TEST(cookie_builder, same_site_none_requires_secure) {
  set_cookie c{.name = "a", .value = "1", .same_site = same_site_policy::none};
  EXPECT_EQ(c.to_string().error(), cookie_error::same_site_none_insecure);
  c.secure = true;
  EXPECT_EQ(*c.to_string(), "a=1; Secure; SameSite=None");
}

TEST(cookie_builder, enforces_secure_and_host_prefix_rules) {
  EXPECT_EQ((set_cookie{.name = "__Secure-id", .value = "1"}.to_string().error()),
            cookie_error::prefix_violation);
  EXPECT_TRUE((set_cookie{.name = "__Secure-id", .value = "1", .secure = true}.to_string()));
  EXPECT_EQ((set_cookie{.name = "__Host-id", .value = "1", .secure = true}.to_string().error()),
            cookie_error::prefix_violation);  // needs Path=/
  EXPECT_EQ(
      (set_cookie{.name = "__Host-id", .value = "1", .domain = "a.com", .path = "/", .secure = true}
           .to_string()
           .error()),
      cookie_error::prefix_violation);  // must not name a Domain
  EXPECT_EQ(
      (*set_cookie{.name = "__Host-id", .value = "1", .path = "/", .secure = true}.to_string()),
      "__Host-id=1; Path=/; Secure");
  EXPECT_EQ((set_cookie{.name = "__host-id", .value = "1"}.to_string().error()),
            cookie_error::prefix_violation);
}

TEST(cookie_builder, refuses_cookies_browsers_would_drop_for_size) {
  EXPECT_TRUE((set_cookie{.name = "a", .value = std::string(4095, 'x')}.to_string()));
  EXPECT_EQ((set_cookie{.name = "ab", .value = std::string(4095, 'x')}.to_string().error()),
            cookie_error::too_long);
}

TEST(cookie_error, codes_have_a_category_and_messages) {
  std::error_code ec = cookie_error::same_site_none_insecure;
  EXPECT_STREQ(ec.category().name(), "trellis.http.cookie");
  EXPECT_EQ(ec.message(), "SameSite=None requires Secure");
}

}  // namespace
}  // namespace trellis::http
