#include "trellis/core/config.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "trellis/core/error.hpp"

namespace trellis::core::config {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// The field a config_error names, or "(no error)".
std::string field_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const config_error& e) {
    return e.field();
  }
  return "(no error)";
}

TEST(CoreConfig, BuildsJsonPaths) {
  EXPECT_EQ(member("", "proxy"), "proxy");
  EXPECT_EQ(member("proxy", "retries"), "proxy.retries");
  EXPECT_EQ(index("listeners", 2), "listeners[2]");
  EXPECT_EQ(member(index("listeners", 2), "routes"), "listeners[2].routes");
}

TEST(CoreConfig, RefusesUnknownKeysNamingThem) {
  const json j = json::parse(R"({"interval": "1s", "helth": 1})");
  EXPECT_EQ(field_of([&] { only(j, "clusters[0]", {"interval", "health"}); }), "clusters[0].helth");
  EXPECT_EQ(field_of([&] { only(j, "", {"interval", "helth"}); }), "(no error)");
  try {
    only(j, "", {"interval", "health"});
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("interval, health"), std::string::npos) << e.what();
  }
}

TEST(CoreConfig, TypedGettersCheckTypeAndRange) {
  EXPECT_EQ(get_string(json("x"), "f"), "x");
  EXPECT_EQ(field_of([] { get_string(json(1), "a.b"); }), "a.b");
  EXPECT_EQ(get_uint(json(5), "f", 1, 10), 5u);
  EXPECT_EQ(field_of([] { get_uint(json(11), "n", 1, 10); }), "n");
  EXPECT_EQ(field_of([] { get_uint(json(-1), "n", 0, 10); }), "n");
  EXPECT_EQ(field_of([] { get_uint(json(1.5), "n", 0, 10); }), "n");
  EXPECT_EQ(field_of([] { get_uint(json("1"), "n", 0, 10); }), "n");
  EXPECT_DOUBLE_EQ(get_double(json(0.25), "f", 0, 1), 0.25);
  EXPECT_EQ(field_of([] { get_double(json(1.5), "d", 0, 1); }), "d");
  EXPECT_TRUE(get_bool(json(true), "f"));
  EXPECT_EQ(field_of([] { get_bool(json("true"), "b"); }), "b");
  EXPECT_EQ(get_duration(json("250ms"), "f"), 250ms);
  EXPECT_EQ(field_of([] { get_duration(json(250), "t"); }), "t");
  EXPECT_EQ(get_size(json("4KiB"), "f"), 4096u);
  EXPECT_EQ(get_size(json(512), "f"), 512u);
  EXPECT_EQ(field_of([] { get_size(json(true), "s"); }), "s");
  EXPECT_EQ(get_strings(json::parse(R"(["a","b"])"), "f"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(field_of([] { get_strings(json::parse(R"(["a",2])"), "l"); }), "l[1]");
  EXPECT_EQ(field_of([] { expect_object(json::array(), ""); }), "config");
  const json obj = json::parse(R"({"a": 1})");
  ASSERT_NE(find(obj, "a"), nullptr);
  EXPECT_EQ(find(obj, "b"), nullptr);
}

TEST(CoreConfig, Sizes) {
  EXPECT_EQ(parse_size("0", "f"), 0u);
  EXPECT_EQ(parse_size("512", "f"), 512u);
  EXPECT_EQ(parse_size("512B", "f"), 512u);
  EXPECT_EQ(parse_size("4KiB", "f"), 4096u);
  EXPECT_EQ(parse_size("256MiB", "f"), 256ull << 20);
  EXPECT_EQ(parse_size("2GiB", "f"), 2ull << 30);
  EXPECT_EQ(parse_size("3KB", "f"), 3000u);
  EXPECT_EQ(parse_size("5MB", "f"), 5'000'000u);
  EXPECT_EQ(parse_size("1GB", "f"), 1'000'000'000u);
  for (const char* bad : {"", "MiB", "1 MiB", "1mib", "1TiB", "-1", "1.5MiB", "99999999GiB"})
    EXPECT_THROW(parse_size(bad, "f"), config_error) << bad;
}

TEST(CoreConfig, Durations) {
  EXPECT_EQ(parse_duration("250ms", "f"), 250ms);
  EXPECT_EQ(parse_duration("5s", "f"), 5s);
  EXPECT_EQ(parse_duration("2m", "f"), 2min);
  EXPECT_EQ(parse_duration("1h", "f"), 1h);
  for (const char* bad : {"", "5", "s", "-1s", "1.5s", "5 s", "5sec", "10d"})
    EXPECT_THROW(parse_duration(bad, "f"), config_error) << bad;
}

}  // namespace
}  // namespace trellis::core::config
