#include "trellis/http/proxy_config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/codec/base64.hpp"

namespace trellis::http {
namespace {

// A fake environment: the variables in `vars`, nothing else.
env_lookup fake_env(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    if (auto it = vars.find(name); it != vars.end()) return it->second;
    return std::nullopt;
  };
}

url u(std::string_view text) {
  return parse_url(text).value();
}

// --- reading the environment -------------------------------------------------------------

TEST(proxy_config, reads_the_three_variables) {
  const proxy_config c = proxy_config_from_env(fake_env({
      {"http_proxy", "http://proxy.corp:3128"},
      {"https_proxy", "http://secure-proxy.corp:3129/"},
      {"no_proxy", "localhost, .internal.corp,10.0.0.0/8"},
  }));
  ASSERT_TRUE(c.http_proxy);
  EXPECT_EQ(c.http_proxy->to_string(), "http://proxy.corp:3128");
  ASSERT_TRUE(c.https_proxy);
  EXPECT_EQ(c.https_proxy->authority(), "secure-proxy.corp:3129");
  EXPECT_EQ(c.no_proxy, (std::vector<std::string>{"localhost", ".internal.corp", "10.0.0.0/8"}));
  EXPECT_TRUE(c.warnings.empty());
}

TEST(proxy_config, nothing_set_means_no_proxy) {
  const proxy_config c = proxy_config_from_env(fake_env({}));
  EXPECT_FALSE(c.http_proxy);
  EXPECT_FALSE(c.https_proxy);
  EXPECT_TRUE(c.no_proxy.empty());
  EXPECT_EQ(proxy_for(c, u("http://example.com/")), nullptr);
}

TEST(proxy_config, lower_case_wins_over_upper_case_and_empty_counts_as_unset) {
  const proxy_config both = proxy_config_from_env(fake_env({
      {"https_proxy", "http://lower:1"},
      {"HTTPS_PROXY", "http://upper:2"},
      {"no_proxy", "lower.example"},
      {"NO_PROXY", "upper.example"},
  }));
  ASSERT_TRUE(both.https_proxy);
  EXPECT_EQ(both.https_proxy->host, "lower");
  EXPECT_EQ(both.no_proxy, std::vector<std::string>{"lower.example"});

  const proxy_config upper_only = proxy_config_from_env(fake_env({
      {"https_proxy", ""},  // set but empty: as if unset, so upper case applies
      {"HTTPS_PROXY", "http://upper:2"},
      {"HTTP_PROXY", "http://upper-http:3"},
      {"NO_PROXY", "Upper.Example"},
  }));
  ASSERT_TRUE(upper_only.https_proxy);
  EXPECT_EQ(upper_only.https_proxy->host, "upper");
  ASSERT_TRUE(upper_only.http_proxy);
  EXPECT_EQ(upper_only.http_proxy->host, "upper-http");
  EXPECT_EQ(upper_only.no_proxy, std::vector<std::string>{"upper.example"});
}

TEST(proxy_config, upper_case_http_proxy_is_ignored_under_cgi) {
  // httpoxy: a CGI program sees a request's "Proxy:" header as HTTP_PROXY.
  const proxy_config cgi = proxy_config_from_env(fake_env({
      {"REQUEST_METHOD", "GET"},
      {"HTTP_PROXY", "http://attacker.example:8080"},
      {"HTTPS_PROXY", "http://corp-proxy:3128"},
  }));
  EXPECT_FALSE(cgi.http_proxy);
  ASSERT_EQ(cgi.warnings.size(), 1u);
  EXPECT_NE(cgi.warnings[0].find("HTTP_PROXY ignored"), std::string::npos);
  // Only HTTP_PROXY: no header can produce HTTPS_PROXY or a lower-case name.
  ASSERT_TRUE(cgi.https_proxy);
  EXPECT_EQ(cgi.https_proxy->host, "corp-proxy");

  const proxy_config cgi_lower = proxy_config_from_env(fake_env({
      {"REQUEST_METHOD", "POST"},
      {"http_proxy", "http://corp-proxy:3128"},
      {"HTTP_PROXY", "http://attacker.example:8080"},
  }));
  ASSERT_TRUE(cgi_lower.http_proxy);
  EXPECT_EQ(cgi_lower.http_proxy->host, "corp-proxy");

  const proxy_config not_cgi =
      proxy_config_from_env(fake_env({{"HTTP_PROXY", "http://corp-proxy:3128"}}));
  ASSERT_TRUE(not_cgi.http_proxy);
  EXPECT_EQ(not_cgi.http_proxy->host, "corp-proxy");
}

TEST(proxy_config, a_value_without_a_scheme_is_an_http_proxy) {
  const proxy_config c = proxy_config_from_env(fake_env({
      {"http_proxy", " proxy.corp:3128 "},
      {"https_proxy", "proxy.corp"},
  }));
  ASSERT_TRUE(c.http_proxy);
  EXPECT_EQ(c.http_proxy->to_string(), "http://proxy.corp:3128");
  ASSERT_TRUE(c.https_proxy);
  EXPECT_EQ(c.https_proxy->scheme, "http");
  EXPECT_EQ(c.https_proxy->effective_port(), 80);
}

TEST(proxy_config,
     malformed_or_unsupported_proxies_are_dropped_with_a_warning_that_hides_the_value) {
  const proxy_config c = proxy_config_from_env(fake_env({
      {"http_proxy", "http://user:s3cret@127.1:8080"},  // numeric host: refused by parse_url
      {"https_proxy", "socks5://user:s3cret@proxy:1080"},
  }));
  EXPECT_FALSE(c.http_proxy);
  EXPECT_FALSE(c.https_proxy);
  ASSERT_EQ(c.warnings.size(), 2u);
  EXPECT_TRUE(c.warnings[0].starts_with("http_proxy ignored")) << c.warnings[0];
  EXPECT_TRUE(c.warnings[1].starts_with("https_proxy ignored")) << c.warnings[1];
  for (const std::string& w : c.warnings) EXPECT_EQ(w.find("s3cret"), std::string::npos) << w;
}

TEST(proxy_config, no_proxy_splits_on_commas_and_blanks_and_lower_cases) {
  const proxy_config c = proxy_config_from_env(
      fake_env({{"no_proxy", " ,A.Example ,, b.example\tC.example:8080,[::1]:80 "}}));
  EXPECT_EQ(c.no_proxy,
            (std::vector<std::string>{"a.example", "b.example", "c.example:8080", "[::1]:80"}));
}

// --- choosing the proxy --------------------------------------------------------------------

TEST(proxy_for, picks_the_proxy_by_the_targets_scheme) {
  proxy_config c;
  c.http_proxy = u("http://plain-proxy:3128");
  c.https_proxy = u("http://tls-proxy:3128");
  EXPECT_EQ(proxy_for(c, u("http://a.example/")), &*c.http_proxy);
  EXPECT_EQ(proxy_for(c, u("ws://a.example/")), &*c.http_proxy);
  EXPECT_EQ(proxy_for(c, u("https://a.example/")), &*c.https_proxy);
  EXPECT_EQ(proxy_for(c, u("wss://a.example/")), &*c.https_proxy);
  EXPECT_EQ(proxy_for(c, u("ftp://a.example/")), nullptr);

  proxy_config only_http;
  only_http.http_proxy = u("http://plain-proxy:3128");
  EXPECT_EQ(proxy_for(only_http, u("https://a.example/")), nullptr);  // no fallback across schemes
}

// NO_PROXY as a table: entry, target, whether the target goes direct.
struct no_proxy_case {
  std::string_view entry;
  std::string_view target;
  bool direct;
};

TEST(proxy_for, no_proxy_follows_curls_rules) {
  const std::vector<no_proxy_case> cases = {
      // "*" matches everything.
      {"*", "http://anything.example/", true},
      {"*", "http://10.1.2.3/", true},
      // A bare domain: itself and its subdomains, never a longer name.
      {"example.com", "http://example.com/", true},
      {"example.com", "http://www.example.com/", true},
      {"example.com", "http://a.b.example.com/", true},
      {"example.com", "http://badexample.com/", false},
      {"example.com", "http://example.com.evil.net/", false},
      {"example.com", "http://com/", false},
      // A leading '.' (or "*.") changes nothing.
      {".example.com", "http://example.com/", true},
      {".example.com", "http://www.example.com/", true},
      {".example.com", "http://badexample.com/", false},
      {"*.example.com", "http://www.example.com/", true},
      // Case and a trailing dot do not matter.
      {"Example.COM", "http://WWW.example.com/", true},
      {"example.com.", "http://www.example.com/", true},
      {"example.com", "http://www.example.com./", true},
      // host:port entries match that port only (the effective port).
      {"example.com:8080", "http://example.com:8080/", true},
      {"example.com:8080", "http://www.example.com:8080/", true},
      {"example.com:8080", "http://example.com/", false},
      {"example.com:443", "https://example.com/", true},
      {"example.com:80x", "http://example.com/", false},  // a bad port matches nothing
      // IPv4 literals: exact, any port unless one is given.
      {"192.168.1.10", "http://192.168.1.10:8080/", true},
      {"192.168.1.10", "http://192.168.1.100/", false},
      {"192.168.1.10:8080", "http://192.168.1.10:8080/", true},
      {"192.168.1.10:8080", "http://192.168.1.10/", false},
      {"192.168.1", "http://192.168.1.10/", false},  // not a suffix rule for addresses
      // IPv6 literals, bracketed or not, compared as addresses.
      {"::1", "http://[::1]/", true},
      {"[::1]", "http://[::1]:8080/", true},
      {"0:0:0:0:0:0:0:1", "http://[::1]/", true},
      {"[::1]:8080", "http://[::1]:8080/", true},
      {"[::1]:8080", "http://[::1]/", false},
      {"::1", "http://[::2]/", false},
      // CIDR blocks.
      {"10.0.0.0/8", "http://10.200.3.4/", true},
      {"10.0.0.0/8", "http://11.0.0.1/", false},
      {"192.168.0.0/23", "http://192.168.1.255/", true},
      {"192.168.0.0/23", "http://192.168.2.0/", false},
      {"0.0.0.0/0", "http://203.0.113.9/", true},
      {"127.0.0.1/32", "http://127.0.0.1/", true},
      {"fd00::/8", "http://[fd12:3456::1]/", true},
      {"fd00::/8", "http://[fe80::1]/", false},
      {"2001:db8::/33", "http://[2001:db8:7fff::1]/", true},
      {"2001:db8::/33", "http://[2001:db8:8000::1]/", false},
      {"10.0.0.0/33", "http://10.0.0.1/", false},  // an impossible prefix matches nothing
      {"10.0.0.0/x", "http://10.0.0.1/", false},
      // Names never match addresses and the reverse; families never mix.
      {"localhost", "http://127.0.0.1/", false},
      {"127.0.0.1", "http://localhost/", false},
      {"10.0.0.0/8", "http://[::ffff:10.0.0.1]/", false},
      {"::/0", "http://10.0.0.1/", false},
      {"10.0.0.0/8", "http://ten.example/", false},
  };
  proxy_config c;
  c.http_proxy = u("http://proxy:3128");
  c.https_proxy = u("http://proxy:3128");
  for (const no_proxy_case& k : cases) {
    c.no_proxy = {std::string(k.entry)};
    const url target = u(k.target);
    EXPECT_EQ(bypasses_proxy(c.no_proxy, target), k.direct) << k.entry << " vs " << k.target;
    EXPECT_EQ(proxy_for(c, target) == nullptr, k.direct) << k.entry << " vs " << k.target;
  }
}

TEST(proxy_for, any_matching_entry_of_the_list_sends_the_request_direct) {
  const proxy_config c = proxy_config_from_env(fake_env({
      {"http_proxy", "http://proxy:3128"},
      {"no_proxy", "localhost,.corp.example,10.0.0.0/8,[::1]"},
  }));
  EXPECT_EQ(proxy_for(c, u("http://localhost:8080/")), nullptr);
  EXPECT_EQ(proxy_for(c, u("http://git.corp.example/")), nullptr);
  EXPECT_EQ(proxy_for(c, u("http://10.9.8.7/")), nullptr);
  EXPECT_EQ(proxy_for(c, u("http://[::1]/")), nullptr);
  const url* p = proxy_for(c, u("http://public.example/"));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->host, "proxy");
}

// --- Proxy-Authorization ----------------------------------------------------------------------

TEST(proxy_authorization, is_basic_base64_of_the_decoded_userinfo) {
  auto a = proxy_authorization(u("http://Aladdin:open%20sesame@proxy:3128"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(*a);
  EXPECT_EQ(**a, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");  // RFC 7617 §2's example

  // A password may hold ':' (only the first one splits) and encoded '@'.
  auto colon = proxy_authorization(u("http://u%40corp:p%3Aw:d@proxy"));
  ASSERT_TRUE(colon);
  ASSERT_TRUE(*colon);
  EXPECT_EQ(codec::base64_decode(std::string_view(**colon).substr(6)).value(), "u@corp:p:w:d");

  // A user alone has an empty password.
  auto user_only = proxy_authorization(u("http://alice@proxy"));
  ASSERT_TRUE(user_only);
  ASSERT_TRUE(*user_only);
  EXPECT_EQ(codec::base64_decode(std::string_view(**user_only).substr(6)).value(), "alice:");
}

TEST(proxy_authorization, is_absent_without_userinfo) {
  auto a = proxy_authorization(u("http://proxy:3128"));
  ASSERT_TRUE(a);
  EXPECT_FALSE(*a);
}

TEST(proxy_authorization, refuses_credentials_basic_cannot_carry) {
  // An encoded ':' in the user would move the split on the other side.
  EXPECT_EQ(proxy_authorization(u("http://a%3Ab:pw@proxy")).error(), url_error::bad_userinfo);
  // Control characters (RFC 7617 §2), and line breaks above all.
  EXPECT_EQ(proxy_authorization(u("http://a:p%01w@proxy")).error(), url_error::bad_userinfo);
  EXPECT_EQ(proxy_authorization(u("http://a:p%7Fw@proxy")).error(), url_error::bad_userinfo);
  EXPECT_EQ(proxy_authorization(u("http://a:p%0D%0Aw@proxy")).error(), url_error::forbidden_byte);
}

}  // namespace
}  // namespace trellis::http
