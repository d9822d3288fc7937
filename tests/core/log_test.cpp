#include "trellis/core/log.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace trellis::core {
namespace {

// Captures log lines for the duration of a test and restores defaults.
class captured_log : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_sink([this](std::string_view line) { lines.emplace_back(line); });
    log::set_level(log::level::info);
  }
  void TearDown() override {
    log::set_sink({});
    log::set_format(log::format::text);
    log::set_level(log::level::info);
  }
  std::vector<std::string> lines;
};

TEST_F(captured_log, drops_lines_below_the_level) {
  log::debug("hidden");
  log::info("shown");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" info shown"), std::string::npos) << lines[0];
  log::set_level(log::level::off);
  log::error("also hidden");
  EXPECT_EQ(lines.size(), 1u);
}

TEST_F(captured_log, text_lines_carry_fields_and_quote_when_needed) {
  log::warn("accept failed",
            {{"error", "Too many open files"}, {"backoff_ms", 100}, {"retry", true}});
  ASSERT_EQ(lines.size(), 1u);
  const std::string& l = lines[0];
  EXPECT_NE(l.find(" warn accept failed error=\"Too many open files\" backoff_ms=100 retry=true\n"),
            std::string::npos)
      << l;
  // RFC 3339 UTC timestamp first.
  EXPECT_EQ(l[4], '-');
  EXPECT_EQ(l[10], 'T');
  EXPECT_EQ(l[23], 'Z');
}

TEST_F(captured_log, json_lines_are_valid_json_with_escaping) {
  log::set_format(log::format::json);
  log::info("request", {{"path", "/a\"b\n"}, {"status", 200u}, {"ms", 1.5}, {"delta", -3}});
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_EQ(lines[0].back(), '\n');
  const auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "request");
  EXPECT_EQ(j["path"], "/a\"b\n");
  EXPECT_EQ(j["status"], 200);
  EXPECT_DOUBLE_EQ(j["ms"].get<double>(), 1.5);
  EXPECT_EQ(j["delta"], -3);
  EXPECT_TRUE(j["ts"].is_string());
}

TEST(log_level, parses_names) {
  log::level l = log::level::info;
  EXPECT_TRUE(log::parse_level("debug", l));
  EXPECT_EQ(l, log::level::debug);
  EXPECT_FALSE(log::parse_level("verbose", l));
  EXPECT_EQ(l, log::level::debug);
}

}  // namespace
}  // namespace trellis::core
