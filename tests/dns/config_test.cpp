#include "trellis/dns/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace trellis::dns {
namespace {

using namespace std::chrono_literals;
using asio::ip::make_address;

name n(std::string_view text) {
  return name::from_text(text).value();
}

std::vector<std::string> texts(const std::vector<name>& names) {
  std::vector<std::string> out;
  for (const auto& x : names) out.push_back(x.to_string());
  return out;
}

// A file in the test's temporary directory, removed at the end of the test.
struct temp_file {
  explicit temp_file(std::string_view content) {
    path = ::testing::TempDir() + "trellis_dns_config_" +
           std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".txt";
    std::ofstream(path) << content;
  }
  ~temp_file() { std::remove(path.c_str()); }
  std::string path;
};

TEST(dns_config, reads_nameservers_of_both_families_on_port_53) {
  const auto conf = parse_resolv_conf(
      "# comment\n"
      "nameserver 192.0.2.1\n"
      "nameserver 2001:db8::53\n"
      "nameserver not-an-address\n"
      "nameserver\n"
      "  nameserver   198.51.100.7   # trailing comment\n");
  ASSERT_EQ(conf.nameservers.size(), 3u);
  EXPECT_EQ(conf.nameservers[0], asio::ip::udp::endpoint(make_address("192.0.2.1"), 53));
  EXPECT_EQ(conf.nameservers[1], asio::ip::udp::endpoint(make_address("2001:db8::53"), 53));
  EXPECT_EQ(conf.nameservers[2].address(), make_address("198.51.100.7"));
}

TEST(dns_config, defaults_match_the_c_library) {
  const auto conf = parse_resolv_conf("");
  EXPECT_TRUE(conf.nameservers.empty());
  EXPECT_TRUE(conf.search.empty());
  EXPECT_EQ(conf.ndots, 1u);
  EXPECT_EQ(conf.timeout, 5s);
  EXPECT_EQ(conf.attempts, 2u);
  EXPECT_FALSE(conf.rotate);
}

TEST(dns_config, the_last_search_or_domain_line_wins) {
  auto conf = parse_resolv_conf("domain corp.example\nsearch a.example b.example.\n");
  EXPECT_EQ(texts(conf.search), (std::vector<std::string>{"a.example.", "b.example."}));
  conf = parse_resolv_conf("search a.example b.example\ndomain corp.example extra\n");
  EXPECT_EQ(texts(conf.search), (std::vector<std::string>{"corp.example."}));
}

TEST(dns_config, options_are_parsed_and_clamped) {
  auto conf = parse_resolv_conf("options ndots:3 timeout:2 attempts:4 rotate edns0 debug\n");
  EXPECT_EQ(conf.ndots, 3u);
  EXPECT_EQ(conf.timeout, 2s);
  EXPECT_EQ(conf.attempts, 4u);
  EXPECT_TRUE(conf.rotate);
  EXPECT_TRUE(conf.edns0);
  conf = parse_resolv_conf("options ndots:99 timeout:0 attempts:50 ndots:x\n");
  EXPECT_EQ(conf.ndots, 15u);
  EXPECT_EQ(conf.timeout, 1s);
  EXPECT_EQ(conf.attempts, 5u);
}

TEST(dns_config, res_options_words_override_the_file) {
  auto conf = parse_resolv_conf("options ndots:1\n");
  apply_resolv_options(conf, "ndots:5 rotate");
  EXPECT_EQ(conf.ndots, 5u);
  EXPECT_TRUE(conf.rotate);
}

TEST(dns_config, loads_a_file_and_applies_res_options_from_the_environment) {
  temp_file f("nameserver 127.0.0.1\nsearch example.test\noptions ndots:2\n");
  ::setenv("RES_OPTIONS", "ndots:4 attempts:1", 1);
  auto with_env = load_resolv_conf(f.path, true);
  auto without_env = load_resolv_conf(f.path, false);
  ::unsetenv("RES_OPTIONS");
  ASSERT_TRUE(with_env) << with_env.error().message();
  ASSERT_TRUE(without_env);
  EXPECT_EQ(with_env->ndots, 4u);
  EXPECT_EQ(with_env->attempts, 1u);
  EXPECT_EQ(without_env->ndots, 2u);
  EXPECT_EQ(texts(with_env->search), (std::vector<std::string>{"example.test."}));
}

TEST(dns_config, a_missing_file_is_an_error) {
  auto conf = load_resolv_conf("/nonexistent/trellis/resolv.conf");
  ASSERT_FALSE(conf);
  EXPECT_EQ(conf.error(), std::errc::no_such_file_or_directory);
  EXPECT_FALSE(hosts::load("/nonexistent/trellis/hosts"));
}

TEST(dns_config, hosts_maps_names_and_aliases_case_insensitively) {
  const auto h = hosts::parse(
      "127.0.0.1 localhost\n"
      "# a comment line\n"
      "192.0.2.10  Web.Example  web alias.example # trailing\n"
      "2001:db8::10 web.example\n"
      "bogus-address name.example\n"
      "192.0.2.11\n");
  const auto web = h.addresses(n("WEB.example"));
  ASSERT_EQ(web.size(), 2u);
  EXPECT_EQ(web[0], make_address("192.0.2.10"));
  EXPECT_EQ(web[1], make_address("2001:db8::10"));
  EXPECT_EQ(h.addresses(n("web")).size(), 1u);
  EXPECT_EQ(h.addresses(n("alias.example")).size(), 1u);
  EXPECT_TRUE(h.addresses(n("name.example")).empty());
  EXPECT_TRUE(h.addresses(n("unknown.example")).empty());
  // The first name of a line is the canonical one, for reverse lookups.
  ASSERT_TRUE(h.name_of(make_address("192.0.2.10")));
  EXPECT_EQ(h.name_of(make_address("192.0.2.10"))->to_string(), "Web.Example.");
  EXPECT_FALSE(h.name_of(make_address("192.0.2.99")));
}

TEST(dns_config, hosts_loads_from_a_file_and_accepts_additions) {
  temp_file f("10.0.0.1 db.internal\n");
  auto h = hosts::load(f.path);
  ASSERT_TRUE(h);
  h->add(n("db.internal"), make_address("10.0.0.2"));
  h->add(n("db.internal"), make_address("10.0.0.2"));  // duplicates are kept once
  EXPECT_EQ(h->addresses(n("db.internal")).size(), 2u);
}

TEST(dns_config, names_with_fewer_dots_than_ndots_try_the_search_list_first) {
  resolv_conf conf;
  conf.search = {n("corp.example"), n("example")};
  conf.ndots = 1;
  EXPECT_EQ(texts(search_names("www", conf).value()),
            (std::vector<std::string>{"www.corp.example.", "www.example.", "www."}));
  EXPECT_EQ(texts(search_names("www.test", conf).value()),
            (std::vector<std::string>{"www.test.", "www.test.corp.example.", "www.test.example."}));
  conf.ndots = 2;
  EXPECT_EQ(search_names("www.test", conf).value().front().to_string(), "www.test.corp.example.");
}

TEST(dns_config, a_trailing_dot_makes_a_name_absolute) {
  resolv_conf conf;
  conf.search = {n("corp.example")};
  EXPECT_EQ(texts(search_names("www.", conf).value()), (std::vector<std::string>{"www."}));
}

TEST(dns_config, unaskable_names_are_bad_queries) {
  resolv_conf conf;
  EXPECT_EQ(search_names("", conf).error(), error::bad_query);
  EXPECT_EQ(search_names(".", conf).error(), error::bad_query);
  EXPECT_EQ(search_names("a..b", conf).error(), error::bad_query);
  EXPECT_EQ(search_names(std::string(64, 'x') + ".example", conf).error(), error::bad_query);
}

TEST(dns_config, localhost_and_names_below_it_are_local) {
  EXPECT_TRUE(is_localhost(n("localhost")));
  EXPECT_TRUE(is_localhost(n("LocalHost.")));
  EXPECT_TRUE(is_localhost(n("app.localhost")));
  EXPECT_FALSE(is_localhost(n("localhost.example")));
  EXPECT_FALSE(is_localhost(n("notlocalhost")));
  EXPECT_FALSE(is_localhost(name{}));
}

TEST(dns_config, reverse_names_of_both_families) {
  EXPECT_EQ(reverse_name(make_address("192.0.2.1")).to_string(), "1.2.0.192.in-addr.arpa.");
  EXPECT_EQ(reverse_name(make_address("2001:db8::567:89ab")).to_string(),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.");
}

}  // namespace
}  // namespace trellis::dns
