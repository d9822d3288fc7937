#include "trellis/codec/url.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trellis::http {
namespace {

// --- parse_url -------------------------------------------------------------------

TEST(url, parses_every_component_and_lowercases_scheme_and_host) {
  auto u = parse_url("HTTPS://User:Pw@Example.COM:8443/a/B%20c?x=1&Y=2#Frag");
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->userinfo, "User:Pw");
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->host_kind, host_type::name);
  EXPECT_EQ(u->port_text, "8443");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->path, "/a/B%20c");
  EXPECT_EQ(u->query, "x=1&Y=2");
  EXPECT_EQ(u->fragment, "Frag");
  EXPECT_TRUE(u->has_authority);
}

TEST(url, effective_port_falls_back_to_the_schemes_default) {
  EXPECT_EQ(parse_url("http://a/")->effective_port(), 80);
  EXPECT_EQ(parse_url("https://a/")->effective_port(), 443);
  EXPECT_EQ(parse_url("ws://a/")->effective_port(), 80);
  EXPECT_EQ(parse_url("wss://a/")->effective_port(), 443);
  EXPECT_EQ(parse_url("http://a:8080/")->effective_port(), 8080);
  EXPECT_EQ(parse_url("https://a:/")->effective_port(), 443);  // an empty port is no port
  EXPECT_EQ(parse_url("foo://a/")->effective_port(), 0);
  auto explicit_zero = parse_url("http://a:0/");
  ASSERT_TRUE(explicit_zero);
  EXPECT_EQ(explicit_zero->effective_port(), 0);
}

TEST(url, ports_above_65535_or_with_non_digits_are_rejected) {
  EXPECT_TRUE(parse_url("http://a:65535/"));
  EXPECT_EQ(parse_url("http://a:65536/").error(), url_error::bad_port);
  EXPECT_EQ(parse_url("http://a:99999999999999999999/").error(), url_error::bad_port);
  EXPECT_EQ(parse_url("http://a:8o/").error(), url_error::bad_port);
  EXPECT_EQ(parse_url("http://a:-1/").error(), url_error::bad_port);
  auto leading_zeros = parse_url("http://a:0080/");
  ASSERT_TRUE(leading_zeros);
  EXPECT_EQ(leading_zeros->port, 80);
}

TEST(url, origin_always_writes_the_port_so_equal_origins_compare_equal) {
  EXPECT_EQ(parse_url("http://Example.com/x?y")->origin(), "http://example.com:80");
  EXPECT_EQ(parse_url("http://example.com:80")->origin(), "http://example.com:80");
  EXPECT_EQ(parse_url("https://u@example.com:8443/")->origin(), "https://example.com:8443");
  EXPECT_EQ(parse_url("https://[::1]/")->origin(), "https://[::1]:443");
  EXPECT_EQ(parse_url("foo://h/")->origin(), "foo://h");
  EXPECT_EQ(parse_url("mailto:a@example.com")->origin(), "");
}

TEST(url, authority_and_origin_form_are_what_a_client_sends) {
  auto u = parse_url("http://user@[2001:DB8::1]:8080?q=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "2001:db8::1");
  EXPECT_EQ(u->authority(), "[2001:db8::1]:8080");
  EXPECT_EQ(u->origin_form(), "/?q=1");
  EXPECT_EQ(parse_url("http://a/p/q")->origin_form(), "/p/q");
}

TEST(url, accepts_valid_ipv6_literals) {
  for (std::string_view host :
       {"[::1]", "[::]", "[2001:db8::1]", "[1:2:3:4:5:6:7:8]", "[1::]", "[1:2:3:4:5:6:7::]",
        "[::ffff:192.0.2.1]", "[1:2:3:4:5:6:1.2.3.4]", "[FE80::AbCd]"}) {
    auto u = parse_url("http://" + std::string(host) + ":1/");
    ASSERT_TRUE(u) << host;
    EXPECT_EQ(u->host_kind, host_type::ipv6) << host;
    EXPECT_EQ(u->host, parse_url("http://" + std::string(host) + "/")->host);
  }
}

TEST(url, rejects_malformed_ipv6_literals_ipvfuture_and_zone_ids) {
  for (std::string_view host :
       {"[::1", "[]", "[1:2:3:4:5:6:7:8:9]", "[1::2::3]", "[12345::]", "[::g]", "[:1]", "[1:]",
        "[1:2:3:4:5:6:7]", "[1:2:3:4:5:6:7:1.2.3.4]", "[::1.2.3]", "[::1.2.3.04]", "[v1.x]",
        "[fe80::1%25eth0]", "[::1]x"}) {
    auto u = parse_url("http://" + std::string(host) + "/");
    ASSERT_FALSE(u) << host;
    EXPECT_TRUE(u.error() == url_error::bad_ip_literal || u.error() == url_error::bad_host) << host;
  }
}

TEST(url, rejects_numeric_hosts_that_are_not_strict_dotted_quads) {
  // inet_aton() reads all of these as 127.0.0.1: an allow-list on names
  // would be bypassed.
  for (std::string_view host : {"127.1", "0x7f.0.0.1", "0177.0.0.1", "2130706433", "127.0.0.01",
                                "1.2.3.4.", "1.2.3.256", "1.2.3.4.5", "example.0x10"}) {
    EXPECT_EQ(parse_url("http://" + std::string(host) + "/").error(), url_error::bad_host) << host;
  }
  auto v4 = parse_url("http://192.168.0.1:81/");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host_kind, host_type::ipv4);
  auto name = parse_url("http://1.2.3.example./");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->host_kind, host_type::name);
}

TEST(url, rejects_hosts_that_are_not_dns_names) {
  for (std::string_view text : {"http://a b/", "http://a%2eb/", "http://a,b/", "http://a\\b/",
                                "http://a..b/", "http://.a/", "http://a@b@c/", "http://~a/"}) {
    EXPECT_FALSE(parse_url(text)) << text;
  }
  EXPECT_EQ(parse_url("http://" + std::string(64, 'a') + ".com/").error(), url_error::bad_host);
}

TEST(url, http_urls_need_a_host_other_schemes_may_not) {
  EXPECT_EQ(parse_url("http:///x").error(), url_error::bad_host);
  EXPECT_EQ(parse_url("https:x").error(), url_error::bad_host);
  EXPECT_EQ(parse_url("ws://user@/").error(), url_error::bad_host);
  auto file = parse_url("file:///etc/hosts");
  ASSERT_TRUE(file);
  EXPECT_TRUE(file->has_authority);
  EXPECT_EQ(file->host, "");
  EXPECT_EQ(file->path, "/etc/hosts");
  auto mail = parse_url("mailto:someone@example.com");
  ASSERT_TRUE(mail);
  EXPECT_FALSE(mail->has_authority);
  EXPECT_EQ(mail->path, "someone@example.com");
}

TEST(url, rejects_bad_schemes_and_empty_input) {
  EXPECT_EQ(parse_url("").error(), url_error::empty);
  EXPECT_EQ(parse_url("1http://a/").error(), url_error::bad_scheme);
  EXPECT_EQ(parse_url("://a/").error(), url_error::bad_scheme);
  EXPECT_EQ(parse_url("example.com").error(), url_error::bad_scheme);
  EXPECT_EQ(parse_url("ht_tp://a/").error(), url_error::bad_scheme);
}

TEST(url, rejects_control_bytes_spaces_and_malformed_escapes) {
  EXPECT_EQ(parse_url(std::string_view("http://a/\r\nX: y")).error(), url_error::forbidden_byte);
  EXPECT_EQ(parse_url(std::string_view("http://a/\0", 10)).error(), url_error::forbidden_byte);
  EXPECT_EQ(parse_url("http://a/b c").error(), url_error::bad_path);
  EXPECT_EQ(parse_url("http://a/b\\c").error(), url_error::bad_path);
  EXPECT_EQ(parse_url("http://a/%G1").error(), url_error::bad_percent_encoding);
  EXPECT_EQ(parse_url("http://a/%4").error(), url_error::bad_percent_encoding);
  EXPECT_EQ(parse_url("http://a/?q=%").error(), url_error::bad_percent_encoding);
  EXPECT_EQ(parse_url("http://a/?q=a b").error(), url_error::bad_query);
  EXPECT_EQ(parse_url("http://a/#x#y").error(), url_error::bad_fragment);
  EXPECT_EQ(parse_url("http://a[b/").error(), url_error::bad_host);
  EXPECT_EQ(parse_url("http://us er@a/").error(), url_error::bad_userinfo);
}

TEST(url, to_string_writes_back_what_was_parsed_in_normal_form) {
  EXPECT_EQ(parse_url("HTTP://User@EXAMPLE.com:8080/A/b?Q#F")->to_string(),
            "http://User@example.com:8080/A/b?Q#F");
  EXPECT_EQ(parse_url("https://[::1]/")->to_string(), "https://[::1]/");
  EXPECT_EQ(parse_url("http://h/p?")->to_string(), "http://h/p");
  EXPECT_EQ(parse_url("http://h:/")->to_string(), "http://h/");
  EXPECT_EQ(parse_url("file:///etc")->to_string(), "file:///etc");
  EXPECT_EQ(parse_url("urn:isbn:0451450523")->to_string(), "urn:isbn:0451450523");
}

// --- parse_target (RFC 9112 §3.2) ---------------------------------------------------

TEST(target, origin_form_splits_path_and_query_as_views_into_the_input) {
  const std::string text = "/where/is%20it?q=now&x";
  auto t = parse_target(text, false, false);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->form, target_form::origin);
  EXPECT_EQ(t->path, "/where/is%20it");
  EXPECT_EQ(t->query, "q=now&x");
  EXPECT_EQ(t->path.data(), text.data());
  EXPECT_TRUE(parse_target("//double", false, false));  // empty first segment is legal
  EXPECT_TRUE(parse_target("/", false, true));
}

TEST(target, absolute_form_exposes_scheme_host_and_port) {
  auto t = parse_target("http://Example.com:8080/p/q?x=1", false, false);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, target_form::absolute);
  EXPECT_EQ(t->scheme, "http");
  EXPECT_EQ(t->authority, "Example.com:8080");
  EXPECT_EQ(t->host, "Example.com");
  EXPECT_EQ(t->port, "8080");
  EXPECT_EQ(t->port_number, 8080);
  EXPECT_EQ(t->path, "/p/q");
  EXPECT_EQ(t->query, "x=1");

  auto bare = parse_target("https://[::1]?x", false, true);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->host, "::1");
  EXPECT_EQ(bare->host_kind, host_type::ipv6);
  EXPECT_EQ(bare->port, "");
  EXPECT_EQ(bare->path, "/");  // RFC 9112 §3.2.1: an empty path is "/"
  EXPECT_EQ(bare->query, "x");
}

TEST(target, absolute_form_refuses_userinfo_empty_hosts_and_bare_colons) {
  EXPECT_EQ(parse_target("http://user:pw@a/", false, false).error(), url_error::bad_target);
  EXPECT_EQ(parse_target("http:///x", false, false).error(), url_error::bad_host);
  EXPECT_EQ(parse_target("http://a:/x", false, false).error(), url_error::bad_port);
  EXPECT_EQ(parse_target("http:/a/x", false, false).error(), url_error::bad_target);
}

TEST(target, authority_form_is_for_connect_only_and_needs_a_port) {
  auto t = parse_target("Example.com:443", true, false);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, target_form::authority);
  EXPECT_EQ(t->host, "Example.com");
  EXPECT_EQ(t->port_number, 443);
  EXPECT_EQ(t->authority, "Example.com:443");

  auto v6 = parse_target("[2001:db8::1]:8443", true, false);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port_number, 8443);

  EXPECT_EQ(parse_target("example.com", true, false).error(), url_error::bad_port);
  EXPECT_EQ(parse_target("example.com:", true, false).error(), url_error::bad_port);
  EXPECT_EQ(parse_target(":443", true, false).error(), url_error::bad_host);
  EXPECT_EQ(parse_target("u@example.com:443", true, false).error(), url_error::bad_target);
  EXPECT_EQ(parse_target("example.com:443", false, false).error(), url_error::form_not_allowed);
  EXPECT_EQ(parse_target("example.com:443", false, true).error(), url_error::form_not_allowed);
}

TEST(target, connect_accepts_no_other_form) {
  EXPECT_EQ(parse_target("/", true, false).error(), url_error::form_not_allowed);
  EXPECT_EQ(parse_target("*", true, false).error(), url_error::form_not_allowed);
  EXPECT_EQ(parse_target("http://a:80/", true, false).error(), url_error::form_not_allowed);
}

TEST(target, asterisk_form_is_for_options_only) {
  auto t = parse_target("*", false, true);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, target_form::asterisk);
  EXPECT_EQ(parse_target("*", false, false).error(), url_error::form_not_allowed);
  EXPECT_EQ(parse_target("*/x", false, true).error(), url_error::bad_target);
}

TEST(target, anything_else_is_an_error) {
  EXPECT_EQ(parse_target("", false, false).error(), url_error::bad_target);
  EXPECT_EQ(parse_target("index.html", false, false).error(), url_error::bad_target);
  EXPECT_EQ(parse_target("/a b", false, false).error(), url_error::bad_path);
  EXPECT_EQ(parse_target("/a#frag", false, false).error(), url_error::bad_path);
  EXPECT_EQ(parse_target("/a?b#frag", false, false).error(), url_error::bad_query);
  EXPECT_EQ(parse_target("/a\\..\\b", false, false).error(), url_error::bad_path);
  EXPECT_EQ(parse_target("/a%zz", false, false).error(), url_error::bad_percent_encoding);
  EXPECT_EQ(parse_target(std::string_view("/a\r\nHost: evil"), false, false).error(),
            url_error::forbidden_byte);
  EXPECT_EQ(parse_target(std::string_view("/a\0b", 4), false, false).error(),
            url_error::forbidden_byte);
  EXPECT_EQ(parse_target("/\xC3\xA9", false, false).error(), url_error::bad_path);
}

// --- percent-decoding --------------------------------------------------------------

TEST(percent_decode, decodes_escapes_in_either_case) {
  EXPECT_EQ(*percent_decode("%41%62c%7e%7E", decode_mode::component), "Abc~~");
  EXPECT_EQ(*percent_decode("caf%C3%A9", decode_mode::component), "caf\xC3\xA9");
  EXPECT_EQ(*percent_decode("", decode_mode::query), "");
}

TEST(percent_decode, rejects_malformed_escapes) {
  for (std::string_view bad : {"%G1", "%1G", "%4", "%", "abc%", "%%41", "a%2"}) {
    EXPECT_EQ(percent_decode(bad, decode_mode::component).error(), url_error::bad_percent_encoding)
        << bad;
  }
}

TEST(percent_decode, never_produces_nul_cr_or_lf) {
  for (auto mode : {decode_mode::path, decode_mode::path_decode_slash, decode_mode::query,
                    decode_mode::component}) {
    for (std::string_view bad : {"a%0Db", "a%0ab", "%00", "x%0D%0ASet-Cookie:%20evil"}) {
      EXPECT_EQ(percent_decode(bad, mode).error(), url_error::forbidden_byte) << bad;
    }
    EXPECT_EQ(percent_decode(std::string_view("a\rb"), mode).error(), url_error::forbidden_byte);
    EXPECT_EQ(percent_decode(std::string_view("a\nb"), mode).error(), url_error::forbidden_byte);
    EXPECT_EQ(percent_decode(std::string_view("a\0b", 3), mode).error(), url_error::forbidden_byte);
  }
  // Other control characters are data (a tab in a form field).
  EXPECT_EQ(*percent_decode("a%09b", decode_mode::query), "a\tb");
}

TEST(percent_decode, path_mode_keeps_encoded_slash_and_percent) {
  EXPECT_EQ(*percent_decode("/a%2fb%2Fc", decode_mode::path), "/a%2Fb%2Fc");
  EXPECT_EQ(*percent_decode("/a%252Fb", decode_mode::path), "/a%252Fb");
  EXPECT_EQ(*percent_decode("/%7euser/a%20b", decode_mode::path), "/~user/a b");
  EXPECT_EQ(*percent_decode("/a%2fb", decode_mode::path_decode_slash), "/a/b");
  EXPECT_EQ(*percent_decode("/a%252Fb", decode_mode::path_decode_slash), "/a%2Fb");
}

TEST(percent_decode, plus_is_a_space_only_in_query_mode) {
  EXPECT_EQ(*percent_decode("a+b%2B", decode_mode::query), "a b+");
  EXPECT_EQ(*percent_decode("a+b", decode_mode::component), "a+b");
  EXPECT_EQ(*percent_decode("/a+b", decode_mode::path), "/a+b");
}

TEST(percent_decode, append_leaves_the_output_alone_on_error) {
  std::string out = "kept:";
  ASSERT_TRUE(percent_decode_append(out, "a%20b", decode_mode::component));
  EXPECT_EQ(out, "kept:a b");
  EXPECT_FALSE(percent_decode_append(out, "xyz%0d", decode_mode::component));
  EXPECT_EQ(out, "kept:a b");
}

TEST(percent_encode, keeps_only_the_unreserved_set) {
  EXPECT_EQ(encode_component("AZaz09-._~", component::path_segment), "AZaz09-._~");
  EXPECT_EQ(encode_component("a b/c?d&e=f+g#h%", component::path_segment),
            "a%20b%2Fc%3Fd%26e%3Df%2Bg%23h%25");
  EXPECT_EQ(encode_component("/a b/c", component::path), "/a%20b/c");
  EXPECT_EQ(encode_component("a b&c", component::query), "a%20b%26c");
  EXPECT_EQ(encode_component("a b&c+", component::form), "a+b%26c%2B");
  EXPECT_EQ(encode_component("\xC3\xA9\r\n", component::query), "%C3%A9%0D%0A");
}

TEST(percent_encode, round_trips_through_decode) {
  std::string all;
  for (int c = 1; c < 256; ++c) {
    if (c != '\r' && c != '\n') all += static_cast<char>(c);
  }
  EXPECT_EQ(*percent_decode(encode_component(all, component::path_segment), decode_mode::component),
            all);
  EXPECT_EQ(*percent_decode(encode_component(all, component::form), decode_mode::query), all);
  EXPECT_EQ(*percent_decode(encode_component(all, component::query), decode_mode::query), all);
}

// --- remove_dot_segments and normalize_path ------------------------------------------

// Resolves a path-only reference against the base "http://a/b/c/d;p?q"
// (RFC 3986 §5.2.2-5.2.3) and keeps the path.
std::string resolve_path(std::string_view ref) {
  if (ref.starts_with("/")) return remove_dot_segments(ref);
  return remove_dot_segments("/b/c/" + std::string(ref));
}

TEST(url_remove_dot_segments, matches_rfc3986_section_5_4_examples) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      // §5.4.1 normal examples (path-only references)
      {"g", "/b/c/g"},
      {"./g", "/b/c/g"},
      {"g/", "/b/c/g/"},
      {"/g", "/g"},
      {";x", "/b/c/;x"},
      {"g;x", "/b/c/g;x"},
      {".", "/b/c/"},
      {"./", "/b/c/"},
      {"..", "/b/"},
      {"../", "/b/"},
      {"../g", "/b/g"},
      {"../..", "/"},
      {"../../", "/"},
      {"../../g", "/g"},
      // §5.4.2 abnormal examples
      {"../../../g", "/g"},
      {"../../../../g", "/g"},
      {"/./g", "/g"},
      {"/../g", "/g"},
      {"g.", "/b/c/g."},
      {".g", "/b/c/.g"},
      {"g..", "/b/c/g.."},
      {"..g", "/b/c/..g"},
      {"./../g", "/b/g"},
      {"./g/.", "/b/c/g/"},
      {"g/./h", "/b/c/g/h"},
      {"g/../h", "/b/c/h"},
      {"g;x=1/./y", "/b/c/g;x=1/y"},
      {"g;x=1/../y", "/b/c/y"}};
  for (const auto& [ref, want] : cases) EXPECT_EQ(resolve_path(ref), want) << ref;
}

TEST(url_remove_dot_segments, matches_rfc3986_section_5_2_4_walkthroughs) {
  EXPECT_EQ(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
  EXPECT_EQ(remove_dot_segments("mid/content=5/../6"), "mid/6");
  EXPECT_EQ(remove_dot_segments(""), "");
}

TEST(url_normalize_path, flags_plain_traversal_and_clamps_at_the_root) {
  auto n = normalize_path("/a/../../etc/passwd");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->escapes_root);
  EXPECT_EQ(n->path, "/etc/passwd");
  for (std::string_view p : {"/..", "/../", "/a/b/../../..", "/./../x", "//../..", "/a/../../"}) {
    auto r = normalize_path(p);
    ASSERT_TRUE(r) << p;
    EXPECT_TRUE(r->escapes_root) << p;
  }
}

TEST(url_normalize_path, resolves_dots_inside_the_root_without_flagging) {
  auto n = normalize_path("/a/./b/../c/");
  ASSERT_TRUE(n);
  EXPECT_FALSE(n->escapes_root);
  EXPECT_EQ(n->path, "/a/c/");
  EXPECT_EQ(normalize_path("/a/b/..")->path, "/a/");
  EXPECT_EQ(normalize_path("/a/..")->path, "/");
  EXPECT_FALSE(normalize_path("/a/..")->escapes_root);
  EXPECT_EQ(normalize_path("")->path, "/");
  EXPECT_EQ(normalize_path("/...")->path, "/...");
  EXPECT_EQ(normalize_path("/..a/b..")->path, "/..a/b..");
}

TEST(url_normalize_path, decodes_before_removing_dots_so_encoded_traversal_is_caught) {
  for (std::string_view p : {"/%2e%2e/etc/passwd", "/%2E%2E/etc/passwd", "/.%2e/etc/passwd",
                             "/%2e./etc/passwd", "/a/%2e%2e/%2e%2e/etc/passwd"}) {
    auto n = normalize_path(p);
    ASSERT_TRUE(n) << p;
    EXPECT_TRUE(n->escapes_root) << p;
    EXPECT_EQ(n->path, "/etc/passwd") << p;
  }
  EXPECT_EQ(normalize_path("/a/%2e/b")->path, "/a/b");
}

TEST(url_normalize_path, double_encoded_dots_stay_literal) {
  auto n = normalize_path("/%252e%252e/%252e%252e/etc/passwd");
  ASSERT_TRUE(n);
  EXPECT_FALSE(n->escapes_root);
  EXPECT_EQ(n->path, "/%252e%252e/%252e%252e/etc/passwd");
  auto full = normalize_path("/%252e%252e/etc", {.encoded_slash = slash_policy::decode});
  ASSERT_TRUE(full);
  EXPECT_FALSE(full->escapes_root);
  EXPECT_EQ(full->path, "/%2e%2e/etc");  // one decoding only: never becomes ".."
}

TEST(url_normalize_path, rejects_backslashes_raw_or_encoded) {
  EXPECT_EQ(normalize_path("/a\\..\\..\\etc").error(), url_error::bad_path);
  EXPECT_EQ(normalize_path("/..%5C..%5Cetc/passwd").error(), url_error::bad_path);
  EXPECT_EQ(normalize_path("/..%5c..%5cetc/passwd").error(), url_error::bad_path);
  // Allowed on request, a backslash is just a byte of a segment.
  auto kept = normalize_path("/..%5C..%5Cetc", {.reject_backslash = false});
  ASSERT_TRUE(kept);
  EXPECT_FALSE(kept->escapes_root);
  EXPECT_EQ(kept->path, "/..\\..\\etc");
  // A raw backslash is never a path character.
  EXPECT_EQ(normalize_path("/a\\b", {.reject_backslash = false}).error(), url_error::bad_path);
}

TEST(url_normalize_path, rejects_nul_cr_lf_raw_or_encoded) {
  EXPECT_EQ(normalize_path("/etc/passwd%00.png").error(), url_error::forbidden_byte);
  EXPECT_EQ(normalize_path(std::string_view("/etc/passwd\0.png", 16)).error(),
            url_error::forbidden_byte);
  EXPECT_EQ(normalize_path("/a%0d%0aX:%20y").error(), url_error::forbidden_byte);
}

TEST(url_normalize_path, encoded_slashes_follow_the_policy) {
  auto kept = normalize_path("/a/..%2F..%2Fetc/passwd");
  ASSERT_TRUE(kept);
  EXPECT_FALSE(kept->escapes_root);
  EXPECT_EQ(kept->path, "/a/..%2F..%2Fetc/passwd");

  auto decoded = normalize_path("/a/..%2F..%2Fetc/passwd", {.encoded_slash = slash_policy::decode});
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(decoded->escapes_root);
  EXPECT_EQ(decoded->path, "/etc/passwd");

  EXPECT_EQ(normalize_path("/a%2fb", {.encoded_slash = slash_policy::reject}).error(),
            url_error::bad_path);
  EXPECT_TRUE(normalize_path("/a%252fb", {.encoded_slash = slash_policy::reject}));
}

TEST(url_normalize_path, collapses_duplicate_slashes_only_when_asked) {
  EXPECT_EQ(normalize_path("/a//b///c")->path, "/a//b///c");
  EXPECT_EQ(normalize_path("/a//b///c", {.collapse_slashes = true})->path, "/a/b/c");
  // "//" would otherwise hide a segment from "..": "/a//.." is "/a/".
  EXPECT_EQ(normalize_path("/a//..")->path, "/a/");
  auto collapsed = normalize_path("//..//etc", {.collapse_slashes = true});
  ASSERT_TRUE(collapsed);
  EXPECT_TRUE(collapsed->escapes_root);
  EXPECT_EQ(collapsed->path, "/etc");
}

TEST(url_normalize_path, rejects_relative_paths_and_invalid_characters) {
  EXPECT_EQ(normalize_path("a/b").error(), url_error::bad_path);
  EXPECT_EQ(normalize_path("../etc").error(), url_error::bad_path);
  EXPECT_EQ(normalize_path("/a b").error(), url_error::bad_path);
  EXPECT_EQ(normalize_path("/a%2").error(), url_error::bad_percent_encoding);
}

// --- query parameters ---------------------------------------------------------------

TEST(url_query_params, keeps_repeated_keys_empty_values_and_order) {
  auto q = query_params::parse("a=1&b=&c&a=2");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ(q->get("a"), "1");
  EXPECT_EQ(q->get_all("a"), (std::vector<std::string_view>{"1", "2"}));
  EXPECT_EQ(q->get("b"), "");
  EXPECT_EQ(q->get("c"), "");
  EXPECT_TRUE(q->contains("c"));
  EXPECT_FALSE(q->contains("d"));
  EXPECT_FALSE(q->contains("A"));  // keys are case-sensitive
  std::vector<std::string> seen;
  for (query_param p : *q) seen.push_back(std::string(p.key) + "=" + std::string(p.value));
  EXPECT_EQ(seen, (std::vector<std::string>{"a=1", "b=", "c=", "a=2"}));
}

TEST(url_query_params, decodes_plus_and_escapes_in_keys_and_values) {
  auto q = query_params::parse("full+name=Ada+Lovelace&x%20y=1%2B1%3D2&eq=a=b");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->get("full name"), "Ada Lovelace");
  EXPECT_EQ(q->get("x y"), "1+1=2");
  EXPECT_EQ(q->get("eq"), "a=b");
}

TEST(url_query_params, skips_empty_pieces) {
  auto q = query_params::parse("&&a=1&&&b=2&");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->size(), 2u);
  auto empty = query_params::parse("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto blank_key = query_params::parse("=x");
  ASSERT_TRUE(blank_key);
  EXPECT_EQ(blank_key->get(""), "x");
}

TEST(url_query_params, refuses_more_parameters_than_the_limit) {
  std::string q;
  for (int i = 0; i < 256; ++i) q += "k" + std::to_string(i) + "=v&";
  EXPECT_TRUE(query_params::parse(q));
  q += "one=too-many";
  EXPECT_EQ(query_params::parse(q).error(), url_error::too_many_params);
  EXPECT_EQ(query_params::parse("a&b&c", {.max_params = 2}).error(), url_error::too_many_params);
  EXPECT_TRUE(query_params::parse("a&b", {.max_params = 2}));
}

TEST(url_query_params, rejects_malformed_escapes_and_decoded_line_breaks) {
  EXPECT_EQ(query_params::parse("a=%zz").error(), url_error::bad_percent_encoding);
  EXPECT_EQ(query_params::parse("a=1%0D%0ASet-Cookie:x").error(), url_error::forbidden_byte);
  EXPECT_EQ(query_params::parse("a%00=1").error(), url_error::forbidden_byte);
}

TEST(url_error, codes_have_a_category_and_messages) {
  std::error_code ec = url_error::forbidden_byte;
  EXPECT_STREQ(ec.category().name(), "trellis.url");
  EXPECT_EQ(ec.message(), "NUL, CR or LF in URL");
}

// --- resolve_reference (RFC 3986 §5.2) -------------------------------------------------

// The base URI of RFC 3986 §5.4.
url rfc3986_base() {
  return parse_url("http://a/b/c/d;p?q").value();
}

// The reference resolved against `base`, written back; the error's message
// when it fails, so a failing table row shows why.
std::string resolved(const url& base, std::string_view ref) {
  auto r = resolve_reference(base, ref);
  return r ? r->to_string() : "error: " + r.error().message();
}

TEST(url_resolve_reference, matches_every_rfc3986_section_5_4_1_normal_example) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"g:h", "g:h"},
      {"g", "http://a/b/c/g"},
      {"./g", "http://a/b/c/g"},
      {"g/", "http://a/b/c/g/"},
      {"/g", "http://a/g"},
      {"//g", "http://g"},
      {"?y", "http://a/b/c/d;p?y"},
      {"g?y", "http://a/b/c/g?y"},
      {"#s", "http://a/b/c/d;p?q#s"},
      {"g#s", "http://a/b/c/g#s"},
      {"g?y#s", "http://a/b/c/g?y#s"},
      {";x", "http://a/b/c/;x"},
      {"g;x", "http://a/b/c/g;x"},
      {"g;x?y#s", "http://a/b/c/g;x?y#s"},
      {"", "http://a/b/c/d;p?q"},
      {".", "http://a/b/c/"},
      {"./", "http://a/b/c/"},
      {"..", "http://a/b/"},
      {"../", "http://a/b/"},
      {"../g", "http://a/b/g"},
      {"../..", "http://a/"},
      {"../../", "http://a/"},
      {"../../g", "http://a/g"}};
  const url base = rfc3986_base();
  for (const auto& [ref, want] : cases) EXPECT_EQ(resolved(base, ref), want) << '"' << ref << '"';
}

TEST(url_resolve_reference, matches_every_rfc3986_section_5_4_2_abnormal_example) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      // More ".." than the base path has segments: clamped at the root.
      {"../../../g", "http://a/g"},
      {"../../../../g", "http://a/g"},
      // Dot segments in an absolute path are removed too.
      {"/./g", "http://a/g"},
      {"/../g", "http://a/g"},
      // Segments that only look like dot segments are kept.
      {"g.", "http://a/b/c/g."},
      {".g", "http://a/b/c/.g"},
      {"g..", "http://a/b/c/g.."},
      {"..g", "http://a/b/c/..g"},
      // Unnecessary or nonsensical dot segments.
      {"./../g", "http://a/b/g"},
      {"./g/.", "http://a/b/c/g/"},
      {"g/./h", "http://a/b/c/g/h"},
      {"g/../h", "http://a/b/c/h"},
      {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
      {"g;x=1/../y", "http://a/b/c/y"},
      // Dots in the query or fragment are data, not segments.
      {"g?y/./x", "http://a/b/c/g?y/./x"},
      {"g?y/../x", "http://a/b/c/g?y/../x"},
      {"g#s/./x", "http://a/b/c/g#s/./x"},
      {"g#s/../x", "http://a/b/c/g#s/../x"}};
  const url base = rfc3986_base();
  for (const auto& [ref, want] : cases) EXPECT_EQ(resolved(base, ref), want) << '"' << ref << '"';
}

TEST(url_resolve_reference, reads_http_colon_g_strictly_and_then_refuses_it_for_lacking_a_host) {
  // RFC 3986 §5.4.2: a strict parser resolves "http:g" to "http:g" (the
  // scheme makes it absolute); only "backward compatible" parsers treat it
  // as the relative "g". An http URL without a host is invalid (RFC 9110
  // §4.2.1), as parse_url says.
  auto r = resolve_reference(rfc3986_base(), "http:g");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), url_error::bad_host);
  EXPECT_EQ(r.error(), parse_url("http:g").error());
}

TEST(url_resolve_reference, inherits_the_base_fragment_only_when_the_reference_has_none) {
  // RFC 9110 §10.2.2: Location "/x" after a request for ".../page#frag"
  // lands on "/x#frag".
  const url base = parse_url("http://a/page?q#frag").value();
  EXPECT_EQ(resolved(base, "/x"), "http://a/x#frag");
  EXPECT_EQ(resolved(base, "?y"), "http://a/page?y#frag");
  EXPECT_EQ(resolved(base, ""), "http://a/page?q#frag");
  EXPECT_EQ(resolved(base, "https://b/"), "https://b/#frag");
  EXPECT_EQ(resolved(base, "/x#new"), "http://a/x#new");
  // An empty fragment is still a fragment component: it replaces the base's.
  EXPECT_EQ(resolved(base, "/x#"), "http://a/x");
}

TEST(url_resolve_reference, absolute_and_network_path_references_replace_the_authority) {
  const url base = parse_url("https://user:pw@a.example:8443/dir/page?q").value();
  EXPECT_EQ(resolved(base, "HTTP://Other.Example/p/./x/../y"), "http://other.example/p/y");
  EXPECT_EQ(resolved(base, "//other.host/p"), "https://other.host/p");
  EXPECT_EQ(resolved(base, "//[::1]:9000"), "https://[::1]:9000");
  // A relative reference keeps the base's whole authority, userinfo and port too.
  EXPECT_EQ(resolved(base, "../x?z"), "https://user:pw@a.example:8443/x?z");
  auto r = resolve_reference(base, "//other.host/p");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->userinfo, "");
  EXPECT_EQ(r->host, "other.host");
  EXPECT_EQ(r->effective_port(), 443);
}

TEST(url_resolve_reference, merges_against_an_empty_base_path_and_ipv6_hosts) {
  EXPECT_EQ(resolved(parse_url("http://a").value(), "g"), "http://a/g");
  EXPECT_EQ(resolved(parse_url("http://a?q").value(), ""), "http://a?q");
  EXPECT_EQ(resolved(parse_url("http://[::1]:8080/a/b").value(), "c"), "http://[::1]:8080/a/c");
  EXPECT_EQ(resolved(parse_url("http://a/b/").value(), "../../../x"), "http://a/x");
}

TEST(url_resolve_reference, the_result_is_a_url_parse_url_agrees_with) {
  const url base = rfc3986_base();
  for (std::string_view ref : {"../g?y#s", "//g:81/x", "g:h", "HTTPS://B/c", "#s"}) {
    auto r = resolve_reference(base, ref);
    ASSERT_TRUE(r) << ref;
    auto again = parse_url(r->to_string());
    ASSERT_TRUE(again) << ref;
    EXPECT_EQ(again->to_string(), r->to_string()) << ref;
    EXPECT_EQ(again->origin(), r->origin()) << ref;
  }
}

TEST(url_resolve_reference, malformed_references_give_the_url_error_of_the_bad_part) {
  const std::vector<std::pair<std::string_view, url_error>> cases = {
      {"1a:b", url_error::bad_scheme},           // not a scheme before the ':'
      {":x", url_error::bad_scheme},             // a first segment with ':' needs "./"
      {"/a b", url_error::bad_path},             // raw space
      {"/a b/../c", url_error::bad_path},        // even in a segment that ".." drops
      {"/\\evil.example", url_error::bad_path},  // browsers read '\' as '/': refused
      {"\\\\evil.example", url_error::bad_path},
      {"/%zz", url_error::bad_percent_encoding},
      {"/%4", url_error::bad_percent_encoding},
      {"?a b", url_error::bad_query},
      {"#a b", url_error::bad_fragment},
      {"#a#b", url_error::bad_fragment},
      {"/x\r\nSet-Cookie: a=b", url_error::forbidden_byte},
      {std::string_view("/x\0y", 4), url_error::forbidden_byte},
      {"//", url_error::bad_host},  // an http URL needs a host
      {"https:///x", url_error::bad_host},
      {"//127.1/", url_error::bad_host},  // numeric, not a dotted quad
      {"//a..b/", url_error::bad_host},
      {"//[::1/", url_error::bad_ip_literal},
      {"//a:99999/", url_error::bad_port},
      {"//evil.example\\@good.example/", url_error::bad_userinfo},
      {"//a b/", url_error::bad_host},
      // Without an authority a path "//x" would read back as a host.
      {"foo:/.//x", url_error::bad_path}};
  const url base = rfc3986_base();
  for (const auto& [ref, want] : cases) {
    auto r = resolve_reference(base, ref);
    ASSERT_FALSE(r) << ref << " -> " << r->to_string();
    EXPECT_EQ(r.error(), want) << ref << ": " << r.error().message();
  }
}

}  // namespace
}  // namespace trellis::http
