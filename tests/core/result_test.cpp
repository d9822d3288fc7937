#include "trellis/core/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "trellis/core/error.hpp"

namespace trellis {
namespace {

result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return unexpected(core::errc::invalid_argument);
  return c - '0';
}

TEST(result, holds_a_value_or_an_error) {
  auto ok = parse_digit('7');
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 7);
  EXPECT_FALSE(ok.error());

  auto bad = parse_digit('x');
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), core::errc::invalid_argument);
  EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(result, value_of_an_error_throws_that_error) {
  auto bad = parse_digit('x');
  try {
    (void)bad.value();
    FAIL() << "value() of an error must throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), core::errc::invalid_argument);
  }
}

TEST(result, moves_out_move_only_values) {
  result<std::unique_ptr<std::string>> r(std::make_unique<std::string>("kept"));
  std::unique_ptr<std::string> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, "kept");
}

TEST(result, void_result_reports_success_or_error) {
  result<void> ok;
  EXPECT_TRUE(ok);
  EXPECT_NO_THROW(ok.value());
  result<void> bad = unexpected(std::make_error_code(std::errc::connection_refused));
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error(), std::errc::connection_refused);
  EXPECT_THROW(bad.value(), std::system_error);
}

TEST(core_error, codes_have_a_category_and_messages) {
  std::error_code ec = core::errc::buffer_full;
  EXPECT_STREQ(ec.category().name(), "trellis.core");
  EXPECT_EQ(ec.message(), "buffer is full");
  EXPECT_NE(ec, std::error_code{});
}

TEST(core_error, config_error_names_the_field) {
  core::config_error e("tls.cert_file", "cannot read /nope.pem");
  EXPECT_EQ(e.field(), "tls.cert_file");
  EXPECT_STREQ(e.what(), "tls.cert_file: cannot read /nope.pem");
}

}  // namespace
}  // namespace trellis
