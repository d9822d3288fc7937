// Hash policies: what consistent hashing keys a request on.
#include "trellis/lb/hash_policy.hpp"

#include <gtest/gtest.h>

#include "trellis/core/error.hpp"
#include "trellis/lb/policy.hpp"

namespace trellis::lb {
namespace {

TEST(lb_hash_policy, parses_every_source) {
  EXPECT_EQ(parse_hash_policy("client_ip").source, hash_source::client_ip);
  EXPECT_EQ(parse_hash_policy("path").source, hash_source::path);
  const hash_policy header = parse_hash_policy("header:X-User-Id");
  EXPECT_EQ(header.source, hash_source::header);
  EXPECT_EQ(header.name, "X-User-Id");
  EXPECT_EQ(header.header_needed(), "X-User-Id");
  const hash_policy cookie = parse_hash_policy("cookie:session");
  EXPECT_EQ(cookie.source, hash_source::cookie);
  EXPECT_EQ(cookie.header_needed(), "Cookie");
  EXPECT_EQ(parse_hash_policy("path").header_needed(), "");
}

TEST(lb_hash_policy, rejects_unknown_sources_and_empty_names_naming_the_field) {
  for (std::string_view bad : {"uri", "header:", "cookie:", "", "Client_IP"}) {
    try {
      parse_hash_policy(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const core::config_error& e) {
      EXPECT_EQ(e.field(), "lb.hash_on");
    }
  }
}

TEST(lb_hash_policy, keys_on_the_chosen_part_of_the_request) {
  EXPECT_EQ(parse_hash_policy("client_ip").key("10.0.0.9", "/a", ""), hash_key("10.0.0.9"));
  EXPECT_EQ(parse_hash_policy("path").key("10.0.0.9", "/a/b", ""), hash_key("/a/b"));
  EXPECT_EQ(parse_hash_policy("header:X-User").key("10.0.0.9", "/a", "u-17"), hash_key("u-17"));
  EXPECT_EQ(parse_hash_policy("cookie:sid").key("10.0.0.9", "/", "theme=dark; sid=abc123"),
            hash_key("abc123"));
}

TEST(lb_hash_policy, a_request_without_the_header_or_cookie_has_no_key) {
  EXPECT_EQ(parse_hash_policy("header:X-User").key("10.0.0.9", "/", ""), std::nullopt);
  EXPECT_EQ(parse_hash_policy("cookie:sid").key("10.0.0.9", "/", "theme=dark"), std::nullopt);
  EXPECT_EQ(parse_hash_policy("cookie:sid").key("10.0.0.9", "/", ""), std::nullopt);
}

}  // namespace
}  // namespace trellis::lb
