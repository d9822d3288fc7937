#include "trellis/http/redirect.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/http/client_error.hpp"

namespace trellis::http {
namespace {

constexpr redirect_options k_follow{.follow = true};

fields make_fields(std::initializer_list<std::pair<std::string_view, std::string_view>> lines) {
  fields f;
  for (const auto& [name, value] : lines) EXPECT_TRUE(f.add(name, value));
  return f;
}

redirect_request make_request(std::string_view method, std::string_view target, bool has_body,
                              fields headers = {}) {
  redirect_request r;
  r.method = method;
  r.target = parse_url(target).value();
  r.headers = std::move(headers);
  r.has_body = has_body;
  return r;
}

// A POST with a body and the fields that describe it.
redirect_request post_with_body(std::string_view target = "https://a.example/form") {
  return make_request("POST", target, true,
                      make_fields({{"Content-Type", "application/json"},
                                   {"Content-Length", "2"},
                                   {"Accept", "*/*"},
                                   {"X-Request-Id", "7"}}));
}

// --- what is and is not followed ------------------------------------------------------

TEST(redirect, only_301_302_303_307_308_are_followed) {
  const redirect_request get = make_request("GET", "http://a/x", false);
  for (int status : {200, 204, 300, 304, 305, 306, 309, 399, 404}) {
    auto d = decide_redirect(get, status, "/elsewhere", 0, k_follow);
    ASSERT_TRUE(d) << status;
    EXPECT_EQ(d->action, redirect_action::none) << status;
  }
  for (int status : {301, 302, 303, 307, 308}) {
    auto d = decide_redirect(get, status, "/elsewhere", 0, k_follow);
    ASSERT_TRUE(d) << status;
    EXPECT_EQ(d->action, redirect_action::follow) << status;
    EXPECT_EQ(d->next.target.to_string(), "http://a/elsewhere") << status;
  }
}

TEST(redirect, nothing_is_followed_when_following_is_off_not_even_a_bad_location) {
  redirect_options off;  // the default
  EXPECT_FALSE(off.follow);
  const redirect_request get = make_request("GET", "https://a/x", false);
  for (std::optional<std::string_view> location :
       {std::optional<std::string_view>("/y"), std::optional<std::string_view>("http://b/"),
        std::optional<std::string_view>(), std::optional<std::string_view>("http://127.1/")}) {
    auto d = decide_redirect(get, 302, location, 0, off);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, redirect_action::none);
  }
}

// --- methods and bodies ------------------------------------------------------------------

TEST(redirect, rewrites_methods_as_browsers_do) {
  struct row {
    int status;
    std::string_view method;
    std::string_view next_method;
    bool keeps_body;
  };
  const std::vector<row> rows = {
      // 301/302: only POST becomes GET.
      {301, "POST", "GET", false},
      {302, "POST", "GET", false},
      {301, "PUT", "PUT", true},
      {302, "DELETE", "DELETE", true},
      {302, "PATCH", "PATCH", true},
      {301, "GET", "GET", true},
      {302, "HEAD", "HEAD", true},
      {301, "post", "post", true},  // methods are case-sensitive: "post" is not POST
      // 303: everything but HEAD becomes GET.
      {303, "POST", "GET", false},
      {303, "PUT", "GET", false},
      {303, "DELETE", "GET", false},
      {303, "GET", "GET", false},
      {303, "HEAD", "HEAD", true},
      // 307/308: nothing changes.
      {307, "POST", "POST", true},
      {308, "POST", "POST", true},
      {307, "PUT", "PUT", true},
      {308, "DELETE", "DELETE", true},
  };
  for (const row& r : rows) {
    const redirect_request current = make_request(r.method, "http://a/x", true);
    auto d = decide_redirect(current, r.status, "/y", 0, k_follow);
    ASSERT_TRUE(d) << r.status << ' ' << r.method;
    ASSERT_EQ(d->action, redirect_action::follow);
    EXPECT_EQ(d->next.method, r.next_method) << r.status << ' ' << r.method;
    EXPECT_EQ(d->next.has_body, r.keeps_body) << r.status << ' ' << r.method;
  }
}

TEST(redirect, dropping_the_body_drops_the_fields_that_describe_it) {
  redirect_request post = post_with_body();
  ASSERT_TRUE(post.headers.add("Transfer-Encoding", "chunked"));
  ASSERT_TRUE(post.headers.add("Content-Encoding", "gzip"));
  for (int status : {301, 302, 303}) {
    auto d = decide_redirect(post, status, "/done", 0, k_follow);
    ASSERT_TRUE(d) << status;
    const fields& h = d->next.headers;
    EXPECT_FALSE(h.contains("Content-Type")) << status;
    EXPECT_FALSE(h.contains("Content-Length")) << status;
    EXPECT_FALSE(h.contains("Transfer-Encoding")) << status;
    EXPECT_FALSE(h.contains("Content-Encoding")) << status;
    EXPECT_EQ(h.get("Accept"), "*/*") << status;
    EXPECT_EQ(h.get("X-Request-Id"), "7") << status;
  }
}

TEST(redirect, keeping_the_body_keeps_its_fields) {
  const redirect_request post = post_with_body();
  for (int status : {307, 308}) {
    auto d = decide_redirect(post, status, "/again", 0, k_follow);
    ASSERT_TRUE(d) << status;
    EXPECT_TRUE(d->next.has_body);
    EXPECT_EQ(d->next.headers.get("Content-Type"), "application/json") << status;
    EXPECT_EQ(d->next.headers.get("Content-Length"), "2") << status;
  }
}

// --- where the next request goes -------------------------------------------------------------

TEST(redirect, resolves_the_location_against_the_current_url_and_keeps_its_fragment) {
  const redirect_request get = make_request("GET", "https://a.example/app/page?x=1#top", false);
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"/login?next=%2Fapp", "https://a.example/login?next=%2Fapp#top"},
      {"../other", "https://a.example/other#top"},
      {"?x=2", "https://a.example/app/page?x=2#top"},
      {"//cdn.example/p", "https://cdn.example/p#top"},
      {"https://b.example/#sec", "https://b.example/#sec"},
  };
  for (const auto& [location, want] : cases) {
    auto d = decide_redirect(get, 302, location, 0, k_follow);
    ASSERT_TRUE(d) << location;
    EXPECT_EQ(d->next.target.to_string(), want) << location;
  }
}

TEST(redirect, crossing_origins_drops_credentials_and_staying_keeps_them) {
  const fields with_credentials = make_fields({{"Authorization", "Bearer secret"},
                                               {"Cookie", "session=1"},
                                               {"Proxy-Authorization", "Basic eDp5"},
                                               {"Accept", "text/html"}});
  const redirect_request get = make_request("GET", "https://a.example/x", false, with_credentials);
  // Same origin: the same scheme, host and port, however spelled.
  for (std::string_view location :
       {"/y", "https://A.EXAMPLE/y", "https://a.example:443/y", "//a.example/y"}) {
    auto d = decide_redirect(get, 302, location, 0, k_follow);
    ASSERT_TRUE(d) << location;
    EXPECT_FALSE(d->cross_origin) << location;
    EXPECT_EQ(d->next.headers.get("Authorization"), "Bearer secret") << location;
    EXPECT_EQ(d->next.headers.get("Cookie"), "session=1") << location;
    EXPECT_EQ(d->next.headers.get("Proxy-Authorization"), "Basic eDp5") << location;
  }
  // Another host, a subdomain, another port: all other origins.
  for (std::string_view location : {"https://b.example/y", "https://sub.a.example/y",
                                    "https://a.example:8443/y", "//[::1]/y"}) {
    auto d = decide_redirect(get, 302, location, 0, k_follow);
    ASSERT_TRUE(d) << location;
    EXPECT_TRUE(d->cross_origin) << location;
    EXPECT_FALSE(d->next.headers.contains("Authorization")) << location;
    EXPECT_FALSE(d->next.headers.contains("Cookie")) << location;
    EXPECT_FALSE(d->next.headers.contains("Proxy-Authorization")) << location;
    EXPECT_EQ(d->next.headers.get("Accept"), "text/html") << location;
  }
}

TEST(redirect, an_http_to_https_upgrade_on_the_same_host_is_another_origin) {
  const redirect_request get = make_request("GET", "http://a.example/x", false,
                                            make_fields({{"Authorization", "Bearer t"}}));
  auto d = decide_redirect(get, 301, "https://a.example/x", 0, k_follow);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->cross_origin);
  EXPECT_FALSE(d->next.headers.contains("Authorization"));
}

TEST(redirect, userinfo_never_crosses_origins) {
  const redirect_request get = make_request("GET", "https://user:pw@a.example/x", false);
  auto same = decide_redirect(get, 302, "/y", 0, k_follow);
  ASSERT_TRUE(same);
  EXPECT_EQ(same->next.target.userinfo, "user:pw");  // a relative reference inherits it
  auto other = decide_redirect(get, 302, "https://b.example/y", 0, k_follow);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->next.target.userinfo, "");
  // Not even credentials the Location itself names for the other origin.
  auto named = decide_redirect(get, 302, "https://evil:pw@b.example/y", 0, k_follow);
  ASSERT_TRUE(named);
  EXPECT_EQ(named->next.target.userinfo, "");
  EXPECT_EQ(named->next.target.to_string(), "https://b.example/y");
}

TEST(redirect, host_is_always_removed_for_the_caller_to_recompute) {
  const redirect_request get =
      make_request("GET", "http://a.example/x", false, make_fields({{"Host", "a.example"}}));
  for (std::string_view location : {"/same-origin", "http://b.example:8080/"}) {
    auto d = decide_redirect(get, 302, location, 0, k_follow);
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->next.headers.contains("Host")) << location;
  }
  auto d = decide_redirect(get, 302, "http://b.example:8080/", 0, k_follow);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->next.target.authority(), "b.example:8080");
}

// --- refusals ---------------------------------------------------------------------------------

TEST(redirect, a_missing_empty_or_malformed_location_is_bad_location) {
  const redirect_request get = make_request("GET", "http://a/x", false);
  for (std::optional<std::string_view> location :
       {std::optional<std::string_view>(), std::optional<std::string_view>(""),
        std::optional<std::string_view>("http://127.1/"), std::optional<std::string_view>("/a b"),
        std::optional<std::string_view>("http:g"), std::optional<std::string_view>("//"),
        std::optional<std::string_view>("/x\r\nSet-Cookie: a=b"),
        std::optional<std::string_view>("/\\evil.example")}) {
    auto d = decide_redirect(get, 302, location, 0, k_follow);
    ASSERT_FALSE(d) << location.value_or("(none)");
    EXPECT_EQ(d.error(), client_error::bad_location) << location.value_or("(none)");
  }
}

TEST(redirect, only_http_and_https_targets_are_followed) {
  const redirect_request get = make_request("GET", "http://a/x", false);
  for (std::string_view location : {"ftp://a/file", "file:///etc/passwd", "javascript:alert(1)",
                                    "ws://a/socket", "mailto:x@a.example", "g:h"}) {
    auto d = decide_redirect(get, 302, location, 0, k_follow);
    ASSERT_FALSE(d) << location;
    EXPECT_EQ(d.error(), client_error::unsupported_scheme) << location;
  }
}

TEST(redirect, https_to_http_is_refused_unless_allowed) {
  const redirect_request get = make_request("GET", "https://a.example/x", false);
  auto refused = decide_redirect(get, 301, "http://a.example/x", 0, k_follow);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), client_error::insecure_redirect);

  auto allowed = decide_redirect(get, 301, "http://a.example/x", 0,
                                 {.follow = true, .allow_https_to_http = true});
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->next.target.to_string(), "http://a.example/x");

  // http -> http and http -> https need no permission.
  const redirect_request plain = make_request("GET", "http://a.example/x", false);
  EXPECT_TRUE(decide_redirect(plain, 301, "http://b.example/", 0, k_follow));
  EXPECT_TRUE(decide_redirect(plain, 301, "https://b.example/", 0, k_follow));
}

TEST(redirect, stops_after_max_redirects) {
  const redirect_request get = make_request("GET", "http://a/x", false);
  const redirect_options three{.follow = true, .max_redirects = 3};
  for (std::size_t followed = 0; followed < 3; ++followed)
    EXPECT_TRUE(decide_redirect(get, 302, "/x", followed, three)) << followed;
  auto fourth = decide_redirect(get, 302, "/x", 3, three);
  ASSERT_FALSE(fourth);
  EXPECT_EQ(fourth.error(), client_error::too_many_redirects);

  auto none_allowed = decide_redirect(get, 302, "/x", 0, {.follow = true, .max_redirects = 0});
  ASSERT_FALSE(none_allowed);
  EXPECT_EQ(none_allowed.error(), client_error::too_many_redirects);
  EXPECT_EQ(redirect_options{}.max_redirects, 10u);
}

TEST(redirect, a_bad_location_is_reported_before_the_hop_limit) {
  const redirect_request get = make_request("GET", "https://a/x", false);
  const redirect_options none_left{.follow = true, .max_redirects = 1};
  EXPECT_EQ(decide_redirect(get, 302, std::nullopt, 1, none_left).error(),
            client_error::bad_location);
  EXPECT_EQ(decide_redirect(get, 302, "ftp://a/", 1, none_left).error(),
            client_error::unsupported_scheme);
  EXPECT_EQ(decide_redirect(get, 302, "http://a/", 1, none_left).error(),
            client_error::insecure_redirect);
}

// --- client_error ------------------------------------------------------------------------------

TEST(client_error, codes_have_a_category_and_distinct_messages) {
  std::error_code ec = client_error::too_many_redirects;
  EXPECT_STREQ(ec.category().name(), "trellis.http.client");
  EXPECT_EQ(ec.message(), "too many redirects");
  std::vector<std::string> messages;
  for (int v = static_cast<int>(client_error::resolve_failed);
       v <= static_cast<int>(client_error::bad_url); ++v) {
    const std::string m = make_error_code(static_cast<client_error>(v)).message();
    EXPECT_NE(m, "unknown http client error") << v;
    for (const std::string& earlier : messages) EXPECT_NE(m, earlier) << v;
    messages.push_back(m);
  }
  EXPECT_EQ(messages.size(), 18u);
}

TEST(client_error, every_deadline_code_and_only_those_compare_equal_to_timed_out) {
  for (client_error e : {client_error::resolve_timeout, client_error::connect_timeout,
                         client_error::tls_timeout, client_error::first_byte_timeout,
                         client_error::request_timeout, client_error::pool_wait_timeout,
                         client_error::read_timeout}) {
    EXPECT_TRUE(make_error_code(e) == std::errc::timed_out) << make_error_code(e).message();
  }
  for (client_error e :
       {client_error::resolve_failed, client_error::connect_failed, client_error::connection_closed,
        client_error::too_many_redirects, client_error::proxy_refused}) {
    EXPECT_FALSE(make_error_code(e) == std::errc::timed_out) << make_error_code(e).message();
  }
}

}  // namespace
}  // namespace trellis::http
