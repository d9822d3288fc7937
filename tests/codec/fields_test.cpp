#include "trellis/codec/http/fields.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace trellis::http {
namespace {

std::string wire(const fields& f) {
  std::string out;
  f.write_to(out);
  return out;
}

TEST(fields, lookup_ignores_ascii_case) {
  fields f;
  ASSERT_TRUE(f.add("Content-Type", "text/plain"));
  EXPECT_EQ(f.get("content-type"), "text/plain");
  EXPECT_EQ(f.get("CONTENT-TYPE"), "text/plain");
  EXPECT_TRUE(f.contains("cOnTeNt-TyPe"));
  EXPECT_FALSE(f.contains("Content-Typ"));
  EXPECT_FALSE(f.get("Content-Length").has_value());
}

TEST(fields, keeps_insertion_order_and_the_names_spelling) {
  fields f;
  ASSERT_TRUE(f.add("Server", "trellis"));
  ASSERT_TRUE(f.add("date", "Sun, 06 Nov 1994 08:49:37 GMT"));
  ASSERT_TRUE(f.add("X-B", "2"));
  ASSERT_TRUE(f.add("X-A", "1"));
  std::vector<std::string> names;
  for (field line : f) names.emplace_back(line.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Server", "date", "X-B", "X-A"}));
  EXPECT_EQ(f.size(), 4u);
  EXPECT_EQ(f[1].value, "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(fields, holds_several_values_per_name) {
  fields f;
  ASSERT_TRUE(f.add("Set-Cookie", "a=1"));
  ASSERT_TRUE(f.add("Vary", "Accept"));
  ASSERT_TRUE(f.add("set-cookie", "b=2"));
  EXPECT_EQ(f.get("Set-Cookie"), "a=1");
  EXPECT_EQ(f.get_all("SET-COOKIE"), (std::vector<std::string_view>{"a=1", "b=2"}));
  EXPECT_EQ(f.count("set-cookie"), 2u);
  EXPECT_TRUE(f.get_all("Missing").empty());
}

TEST(fields, set_replaces_every_line_at_the_first_ones_place) {
  fields f;
  ASSERT_TRUE(f.add("A", "1"));
  ASSERT_TRUE(f.add("Cache-Control", "no-cache"));
  ASSERT_TRUE(f.add("B", "2"));
  ASSERT_TRUE(f.add("cache-control", "private"));
  ASSERT_TRUE(f.set("Cache-Control", "max-age=60, public"));
  EXPECT_EQ(wire(f), "A: 1\r\nCache-Control: max-age=60, public\r\nB: 2\r\n");
  ASSERT_TRUE(f.set("New", "x"));
  EXPECT_EQ(wire(f), "A: 1\r\nCache-Control: max-age=60, public\r\nB: 2\r\nNew: x\r\n");
}

TEST(fields, set_with_a_value_of_the_same_length_rewrites_in_place) {
  fields f;
  ASSERT_TRUE(f.add("Date", "Sun, 06 Nov 1994 08:49:37 GMT"));
  ASSERT_TRUE(f.add("Server", "t"));
  const std::size_t before = f.wire_size();
  ASSERT_TRUE(f.set("date", "Mon, 07 Nov 1994 08:49:38 GMT"));
  EXPECT_EQ(f.wire_size(), before);
  EXPECT_EQ(wire(f), "date: Mon, 07 Nov 1994 08:49:38 GMT\r\nServer: t\r\n");
}

TEST(fields, erase_removes_every_line_of_a_name) {
  fields f;
  ASSERT_TRUE(f.add("A", "1"));
  ASSERT_TRUE(f.add("X", "1"));
  ASSERT_TRUE(f.add("B", "2"));
  ASSERT_TRUE(f.add("x", "2"));
  EXPECT_EQ(f.erase("X"), 2u);
  EXPECT_EQ(f.erase("X"), 0u);
  EXPECT_EQ(wire(f), "A: 1\r\nB: 2\r\n");
  EXPECT_EQ(f.size(), 2u);
}

TEST(fields, refuses_crlf_and_nul_in_values_so_no_header_can_be_injected) {
  fields f;
  ASSERT_TRUE(f.add("A", "1"));
  for (std::string_view evil :
       {std::string_view("x\r\nSet-Cookie: evil=1"), std::string_view("x\nInjected: 1"),
        std::string_view("x\rInjected: 1"), std::string_view("x\0y", 3), std::string_view("x\x01y"),
        std::string_view("x\x7Fy")}) {
    auto r = f.add("Location", evil);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), field_error::bad_value);
    EXPECT_EQ(f.set("A", evil).error(), field_error::bad_value);
  }
  EXPECT_EQ(wire(f), "A: 1\r\n");  // nothing changed
}

TEST(fields, a_value_is_judged_octet_by_octet_wherever_the_octet_sits) {
  // is_field_value looks at eight octets at a time: every octet value, at
  // every position of values shorter and longer than a word, must get the
  // answer of the rule itself (no control character but tab; no DEL).
  const auto allowed = [](int u) { return (u >= 0x20 || u == '\t') && u != 0x7F; };
  for (std::size_t size = 1; size <= 19; ++size) {
    for (std::size_t at = 0; at < size; ++at) {
      for (int u = 0; u < 256; ++u) {
        std::string v(size, 'a');
        v[at] = static_cast<char>(u);
        ASSERT_EQ(is_field_value(v), allowed(u)) << "octet " << u << " at " << at << " of " << size;
      }
    }
  }
  EXPECT_TRUE(is_field_value(""));
  EXPECT_TRUE(is_field_value("\t\t\t\t\t\t\t\t\t"));
  EXPECT_TRUE(is_field_value("\x80\xff\x7e\x20\x21\x80\xff\x7e\x20"));
}

TEST(fields, refuses_names_that_are_not_tokens) {
  fields f;
  for (std::string_view bad :
       {std::string_view(""), std::string_view("Bad Name"), std::string_view("X:Y"),
        std::string_view("X\r\nY"), std::string_view("caf\xC3\xA9"), std::string_view("(x)")}) {
    EXPECT_EQ(f.add(bad, "v").error(), field_error::bad_name) << bad;
  }
  EXPECT_TRUE(f.add("X-Custom_!#$%&'*+.^`|~1", "ok"));
  EXPECT_EQ(f.size(), 1u);
}

TEST(fields, trims_whitespace_around_values_and_allows_tabs_and_obs_text_inside) {
  fields f;
  ASSERT_TRUE(f.add("A", " \t padded \t "));
  ASSERT_TRUE(f.add("B", "tab\there"));
  ASSERT_TRUE(f.add("C", "caf\xC3\xA9"));
  ASSERT_TRUE(f.add("D", ""));
  EXPECT_EQ(f.get("A"), "padded");
  EXPECT_EQ(wire(f), "A: padded\r\nB: tab\there\r\nC: caf\xC3\xA9\r\nD: \r\n");
}

TEST(fields, write_to_appends_lines_without_the_final_blank_line) {
  fields f;
  ASSERT_TRUE(f.add("Content-Length", "5"));
  ASSERT_TRUE(f.add("Connection", "close"));
  std::string out = "HTTP/1.1 200 OK\r\n";
  f.write_to(out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n");
  EXPECT_EQ(f.wire_size(), out.size() - 17);
}

TEST(fields, clear_empties_and_the_container_is_reusable) {
  fields f;
  f.reserve(8, 256);
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(f.add("A", std::to_string(round)));
    ASSERT_TRUE(f.add("B", "x"));
    EXPECT_EQ(wire(f), "A: " + std::to_string(round) + "\r\nB: x\r\n");
    f.clear();
    EXPECT_TRUE(f.empty());
    EXPECT_EQ(f.wire_size(), 0u);
    EXPECT_EQ(wire(f), "");
  }
}

TEST(fields, has_token_finds_tokens_in_messy_lists) {
  EXPECT_TRUE(has_token("close , Keep-Alive", "keep-alive"));
  EXPECT_TRUE(has_token("close , Keep-Alive", "CLOSE"));
  EXPECT_TRUE(has_token(" ,, \t upgrade\t,", "Upgrade"));
  EXPECT_TRUE(has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_FALSE(has_token("keep-alive-x, xclose", "keep-alive"));
  EXPECT_FALSE(has_token("keep-alive-x, xclose", "close"));
  EXPECT_FALSE(has_token("", "close"));
  EXPECT_FALSE(has_token("close", ""));
  EXPECT_FALSE(has_token("gzip;q=0", "gzip"));
  // Commas inside quoted strings do not split elements.
  EXPECT_FALSE(has_token("private=\"a, close\"", "close"));
  EXPECT_TRUE(has_token("no-cache=\"x, \\\"y\", close", "close"));
  EXPECT_FALSE(has_token("\"unterminated, close", "close"));
}

TEST(fields, has_token_looks_at_every_line_of_the_name) {
  fields f;
  ASSERT_TRUE(f.add("Connection", "keep-alive"));
  ASSERT_TRUE(f.add("Other", "Upgrade"));
  ASSERT_TRUE(f.add("connection", "TE, Upgrade"));
  EXPECT_TRUE(f.has_token("Connection", "upgrade"));
  EXPECT_TRUE(f.has_token("CONNECTION", "te"));
  EXPECT_FALSE(f.has_token("Connection", "close"));
  EXPECT_FALSE(f.has_token("Missing", "upgrade"));
}

// A random mix of add/set/erase/clear against a plain vector model: order,
// values and the serialised head must always agree, including across the
// compactions that reclaim replaced and erased lines.
TEST(fields, stays_consistent_with_a_simple_model_under_random_edits) {
  std::mt19937 rng(12345);
  const std::vector<std::string> names = {"A", "b", "Cc", "dD", "Eee"};
  fields f;
  std::vector<std::pair<std::string, std::string>> model;
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (int step = 0; step < 5000; ++step) {
    const std::string name = names[rng() % names.size()];
    const std::string value(rng() % 12, static_cast<char>('a' + rng() % 26));
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
      case 3: {
        ASSERT_TRUE(f.add(name, value));
        model.emplace_back(name, value);
        break;
      }
      case 4:
      case 5:
      case 6: {
        ASSERT_TRUE(f.set(name, value));
        auto first = std::find_if(model.begin(), model.end(),
                                  [&](auto& p) { return lower(p.first) == lower(name); });
        if (first == model.end()) {
          model.emplace_back(name, value);
        } else {
          *first = {name, value};
          const std::size_t keep = static_cast<std::size_t>(first - model.begin());
          std::vector<std::pair<std::string, std::string>> next;
          for (std::size_t i = 0; i < model.size(); ++i) {
            if (i <= keep || lower(model[i].first) != lower(name)) next.push_back(model[i]);
          }
          model = std::move(next);
        }
        break;
      }
      case 7:
      case 8: {
        const std::size_t before = model.size();
        std::erase_if(model, [&](auto& p) { return lower(p.first) == lower(name); });
        ASSERT_EQ(f.erase(name), before - model.size());
        break;
      }
      default:
        if (rng() % 20 == 0) {
          f.clear();
          model.clear();
        }
    }
    std::string expected;
    for (auto& [n, v] : model) expected += n + ": " + v + "\r\n";
    ASSERT_EQ(wire(f), expected) << "step " << step;
    ASSERT_EQ(f.wire_size(), expected.size());
    ASSERT_EQ(f.size(), model.size());
  }
}

TEST(fields, error_codes_have_a_category_and_messages) {
  std::error_code ec = field_error::bad_value;
  EXPECT_STREQ(ec.category().name(), "trellis.http.fields");
  EXPECT_FALSE(ec.message().empty());
}

}  // namespace
}  // namespace trellis::http
