// Tests of the DNS presentation format: rdata, records and questions
// written the way dig prints them, and rdata parsed from zone-file tokens,
// including every error parse_rdata promises.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "trellis/codec/dns/text.hpp"

namespace trellis::dns {
namespace {

name n(std::string_view text) {
  return name::from_text(text).value();
}

// Splits `text` on spaces into unquoted tokens; a token written "..." is
// quoted (no spaces inside, enough for these tests).
result<rdata> parse(rtype t, std::string_view text, std::string_view origin = "example.test.") {
  static std::vector<std::string> storage;
  storage.clear();
  std::vector<rdata_token> tokens;
  std::vector<bool> quoted;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto space = text.find(' ', pos);
    std::string word(text.substr(pos, space == std::string_view::npos ? space : space - pos));
    pos = space == std::string_view::npos ? text.size() : space + 1;
    if (word.empty()) continue;
    const bool q = word.size() >= 2 && word.front() == '"' && word.back() == '"';
    storage.push_back(q ? word.substr(1, word.size() - 2) : word);
    quoted.push_back(q);
  }
  for (std::size_t i = 0; i < storage.size(); ++i) tokens.push_back({storage[i], quoted[i]});
  return parse_rdata(t, tokens, n(origin));
}

TEST(DnsText, WritesEveryTypeAsDigDoes) {
  EXPECT_EQ(to_string(rdata{a_data{{192, 0, 2, 1}}}), "192.0.2.1");
  aaaa_data six{};
  six.address[0] = 0x20;
  six.address[1] = 0x01;
  six.address[2] = 0x0d;
  six.address[3] = 0xb8;
  six.address[15] = 1;
  EXPECT_EQ(to_string(rdata{six}), "2001:db8::1");
  EXPECT_EQ(to_string(rdata{ns_data{n("ns1.example.test.")}}), "ns1.example.test.");
  EXPECT_EQ(to_string(rdata{cname_data{n("www.example.test")}}), "www.example.test.");
  EXPECT_EQ(to_string(rdata{ptr_data{n("host.example.test.")}}), "host.example.test.");
  EXPECT_EQ(to_string(rdata{soa_data{n("ns1.example.test."), n("hostmaster.example.test."), 2024,
                                     7200, 3600, 1209600, 60}}),
            "ns1.example.test. hostmaster.example.test. 2024 7200 3600 1209600 60");
  EXPECT_EQ(to_string(rdata{mx_data{10, n("mail.example.test.")}}), "10 mail.example.test.");
  EXPECT_EQ(to_string(rdata{txt_data{{"v=spf1 -all", "second string"}}}),
            "\"v=spf1 -all\" \"second string\"");
  EXPECT_EQ(to_string(rdata{srv_data{10, 60, 8080, n("www.example.test.")}}),
            "10 60 8080 www.example.test.");
  EXPECT_EQ(to_string(rdata{caa_data{0, "issue", "ca.example.test"}}),
            "0 issue \"ca.example.test\"");
  EXPECT_EQ(to_string(rdata{raw_data{{1, 2, 0xab}}}), "\\# 3 0102AB");
  EXPECT_EQ(to_string(rdata{raw_data{}}), "\\# 0");
}

TEST(DnsText, EscapesQuotesBackslashesAndControlBytesInStrings) {
  EXPECT_EQ(to_string(rdata{txt_data{{"a \"q\" \\ b", std::string("t\tx\x7f\0", 5)}}}),
            "\"a \\\"q\\\" \\\\ b\" \"t\\009x\\127\\000\"");
}

TEST(DnsText, WritesRecordsAndQuestionsWithTabs) {
  record r{n("www.example.test."), rtype::a, rclass::in, 300, a_data{{127, 0, 0, 1}}};
  EXPECT_EQ(to_string(r), "www.example.test.\t300\tIN\tA\t127.0.0.1");
  EXPECT_EQ(to_string(question{n("www.example.test."), rtype::mx, rclass::in}),
            ";www.example.test.\t\tIN\tMX");
}

TEST(DnsText, ParsesEveryTypeAndRoundTrips) {
  const std::pair<rtype, const char*> cases[] = {
      {rtype::a, "192.0.2.1"},
      {rtype::aaaa, "2001:db8::1"},
      {rtype::ns, "ns1.example.test."},
      {rtype::cname, "www.example.test."},
      {rtype::ptr, "host.example.test."},
      {rtype::soa, "ns1.example.test. hostmaster.example.test. 2024 7200 3600 1209600 60"},
      {rtype::mx, "10 mail.example.test."},
      {rtype::txt, "\"v=spf1\" \"two\""},
      {rtype::srv, "10 60 8080 www.example.test."},
      {rtype::caa, "0 issue \"ca.example.test\""},
      {static_cast<rtype>(65), "\\# 3 0102AB"},
  };
  for (const auto& [type, text] : cases) {
    auto d = parse(type, text);
    ASSERT_TRUE(d) << text << ": " << d.error().message();
    EXPECT_EQ(to_string(*d), text);
  }
}

TEST(DnsText, ResolvesRelativeNamesAgainstTheOrigin) {
  auto mx = parse(rtype::mx, "10 mail");
  ASSERT_TRUE(mx);
  EXPECT_EQ(std::get<mx_data>(*mx).exchange, n("mail.example.test."));
  auto at = parse(rtype::cname, "@");
  ASSERT_TRUE(at);
  EXPECT_EQ(std::get<cname_data>(*at).target, n("example.test."));
  auto soa = parse(rtype::soa, "ns1 hostmaster 1 2 3 4 5");
  ASSERT_TRUE(soa);
  EXPECT_EQ(std::get<soa_data>(*soa).rname, n("hostmaster.example.test."));
}

TEST(DnsText, AcceptsBindTimeUnitsInSoaTimers) {
  auto soa = parse(rtype::soa, "ns1 hostmaster 1 2h 30m 1w 1d1h");
  ASSERT_TRUE(soa);
  const auto& d = std::get<soa_data>(*soa);
  EXPECT_EQ(d.refresh, 7200u);
  EXPECT_EQ(d.retry, 1800u);
  EXPECT_EQ(d.expire, 604800u);
  EXPECT_EQ(d.minimum, 90000u);
  EXPECT_FALSE(parse(rtype::soa, "ns1 hostmaster 1h 2 3 4 5"));  // the serial takes no unit
}

TEST(DnsText, UnescapesTxtAndCaaStrings) {
  auto t = parse(rtype::txt, "\"a\\\"b\" \"x\\065\\\\\" plain");
  ASSERT_TRUE(t);
  EXPECT_EQ(std::get<txt_data>(*t).strings, (std::vector<std::string>{"a\"b", "xA\\", "plain"}));
  auto empty = parse(rtype::txt, "\"\"");
  ASSERT_TRUE(empty);
  EXPECT_EQ(std::get<txt_data>(*empty).strings, std::vector<std::string>{""});
}

TEST(DnsText, GenericFormDecodesKnownTypes) {
  auto a = parse(rtype::a, "\\# 4 7F000001");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(std::get<a_data>(*a).address, (std::array<std::uint8_t, 4>{127, 0, 0, 1}));
  auto split = parse(static_cast<rtype>(99), "\\# 4 0102 0304");
  ASSERT_TRUE(split);
  EXPECT_EQ(std::get<raw_data>(*split).bytes, (std::vector<std::uint8_t>{1, 2, 3, 4}));
  EXPECT_FALSE(parse(static_cast<rtype>(99), "\\# 3 0102"));  // length disagrees
  EXPECT_FALSE(parse(static_cast<rtype>(99), "\\# 1 0G"));    // not hex
  EXPECT_FALSE(parse(rtype::a, "\\# 3 7F0000"));              // not an A's layout
}

TEST(DnsText, RefusesMalformedRdata) {
  const std::pair<rtype, const char*> bad[] = {
      {rtype::a, "256.0.0.1"},
      {rtype::a, "1.2.3"},
      {rtype::a, "1.2.3.4.5"},
      {rtype::a, "01.2.3.4"},
      {rtype::a, "1.2.3.4 5.6.7.8"},
      {rtype::a, "\"1.2.3.4\""},
      {rtype::a, ""},
      {rtype::aaaa, "2001:db8::g"},
      {rtype::aaaa, "1.2.3.4"},
      {rtype::mx, "65536 mail"},
      {rtype::mx, "-1 mail"},
      {rtype::mx, "10"},
      {rtype::soa, "ns1 hm 1 2 3 4"},
      {rtype::srv, "1 2 70000 x"},
      {rtype::srv, "1 2 3"},
      {rtype::caa, "256 issue x"},
      {rtype::caa, "0 is-sue x"},
      {rtype::caa, "0 issue"},
      {rtype::txt, ""},
      {rtype::txt, "\"bad\\\""},
      {rtype::txt, "\"\\300\""},
      {static_cast<rtype>(99), "0102"},
  };
  for (const auto& [type, text] : bad) {
    auto d = parse(type, text);
    EXPECT_FALSE(d) << to_string(type) << " '" << text << "' parsed as " << to_string(*d);
    if (!d) {
      EXPECT_EQ(d.error(), error::bad_rdata) << text;
    }
  }
  const std::string long_string(256, 'x');
  EXPECT_EQ(parse(rtype::txt, long_string).error(), error::bad_rdata);
  EXPECT_TRUE(parse(rtype::txt, long_string.substr(1)));
  EXPECT_EQ(parse(rtype::cname, "a..b").error(), error::bad_name_text);
  EXPECT_EQ(parse(rtype::cname, std::string(64, 'a')).error(), error::label_too_long);
}

}  // namespace
}  // namespace trellis::dns
