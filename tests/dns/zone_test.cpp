// Tests of dns::zone: the master-file and JSON loaders (every feature, and
// every load error with the line or field it names) and the answer logic of
// RFC 1034 §4.3.2 — exact matches, CNAME chains, NODATA and NXDOMAIN with
// the SOA, wildcards, referrals with glue, REFUSED, additional-section
// addresses, round-robin rotation and weighted choice with a fixed random
// source.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "trellis/codec/dns/text.hpp"
#include "trellis/dns/zone.hpp"

namespace trellis::dns {
namespace {

name n(std::string_view text) {
  return name::from_text(text).value();
}

constexpr const char* zone_text = R"(
; a zone using every feature of the master-file subset
$ORIGIN example.test.
$TTL 300
@   3600 IN SOA ns1 hostmaster (   ; parentheses span lines
        2024010101 ; serial
        2h 1h 2w   ; refresh retry expire, in BIND units
        60 )       ; minimum
    3600 IN NS ns1
    IN 3600 NS ns2.example.test.     ; class before TTL, absolute name
    MX 10 mail
    MX 20 mail2
ns1 A 127.0.0.53
ns2 A 127.0.0.54
mail A 127.0.0.25
mail2 A 127.0.0.26
www 60 A 127.0.0.10
    60 AAAA ::1
web CNAME www
alias CNAME web
out CNAME www.elsewhere.test.
dangling CNAME nothing
loop1 CNAME loop2
loop2 CNAME loop1
ptr PTR www.example.test.
txt TXT "hello world" "a \"quoted\" word; not a comment" \065bc
_http._tcp SRV 10 60 8080 www
_http._tcp SRV 20 40 8081 web-2
web-2 A 127.0.0.12
@ CAA 0 issue "ca.example.test"
generic TYPE65 \# 3 010203
rr A 127.0.0.31
   A 127.0.0.32
   A 127.0.0.33
canary 5 IN weight=9 A 127.0.0.41
       5 IN weight=1 A 127.0.0.42
*.apps A 127.0.0.60
sub NS ns.sub
sub NS ns.elsewhere.test.
ns.sub A 127.0.0.70
$ORIGIN deep.example.test.
leaf A 127.0.0.80
)";

zone make_zone(zone_options o = {}) {
  return zone::parse_master(zone_text, "test.zone", o);
}

lookup_result ask(const zone& z, std::string_view qname, rtype t,
                  const random_source& random = {}) {
  return z.lookup(question{n(qname), t, rclass::in}, random);
}

std::vector<std::string> texts(const std::vector<record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(to_string(r));
  return out;
}

// The message of the zone_error `text` fails with, or "" if it loads.
zone_error load_error(std::string_view text, zone_options o = {}) {
  try {
    (void)zone::parse_master(text, "bad.zone", o);
  } catch (const zone_error& e) {
    return e;
  }
  ADD_FAILURE() << "loaded without error:\n" << text;
  return zone_error("", 0, "");
}

const char* soa_line = "@ 300 IN SOA ns1 hostmaster 1 2 3 4 5\n";

// --- loading -------------------------------------------------------------------

TEST(DnsZone, LoadsEveryMasterFileFeature) {
  const zone z = make_zone();
  EXPECT_EQ(z.origin(), n("example.test."));
  EXPECT_EQ(to_string(z.soa()),
            "example.test.\t3600\tIN\tSOA\tns1.example.test. hostmaster.example.test. "
            "2024010101 7200 3600 1209600 60");
  const rrset* ns = z.find(n("example.test."), rtype::ns);
  ASSERT_NE(ns, nullptr);
  EXPECT_EQ(ns->ttl, 3600u);
  EXPECT_EQ(ns->records.size(), 2u);
  const rrset* mx = z.find(n("example.test."), rtype::mx);  // inherited owner, $TTL
  ASSERT_NE(mx, nullptr);
  EXPECT_EQ(mx->ttl, 300u);
  EXPECT_EQ(to_string(mx->records[1]), "20 mail2.example.test.");
  const rrset* aaaa = z.find(n("www.example.test."), rtype::aaaa);
  ASSERT_NE(aaaa, nullptr);
  EXPECT_EQ(aaaa->ttl, 60u);
  const rrset* txt = z.find(n("txt.example.test."), rtype::txt);
  ASSERT_NE(txt, nullptr);
  EXPECT_EQ(std::get<txt_data>(txt->records[0]).strings,
            (std::vector<std::string>{"hello world", "a \"quoted\" word; not a comment", "Abc"}));
  const rrset* generic = z.find(n("generic.example.test."), static_cast<rtype>(65));
  ASSERT_NE(generic, nullptr);
  EXPECT_EQ(std::get<raw_data>(generic->records[0]).bytes, (std::vector<std::uint8_t>{1, 2, 3}));
  const rrset* canary = z.find(n("canary.example.test."), rtype::a);
  ASSERT_NE(canary, nullptr);
  EXPECT_EQ(canary->weights, (std::vector<std::uint32_t>{9, 1}));
  EXPECT_NE(z.find(n("leaf.deep.example.test."), rtype::a), nullptr);  // second $ORIGIN
  EXPECT_NE(z.find(n("WWW.EXAMPLE.TEST."), rtype::a), nullptr);        // case-insensitive
  EXPECT_EQ(z.find(n("www.example.test."), rtype::mx), nullptr);
  EXPECT_EQ(z.size(), 34u);
}

TEST(DnsZone, TakesTheOriginFromTheSoaWhenNoneIsGiven) {
  const zone z = zone::parse_master(
      "other.test. 60 IN SOA ns.other.test. h.other.test. 1 2 3 4 5\n"
      "www.other.test. 60 A 127.0.0.1\n"
      "$ORIGIN other.test.\n"
      "api A 127.0.0.2\n");  // the last TTL written applies
  EXPECT_EQ(z.origin(), n("other.test."));
  const rrset* api = z.find(n("api.other.test."), rtype::a);
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->ttl, 60u);
}

TEST(DnsZone, KeepsIdenticalRecordsOnce) {
  const zone z = zone::parse_master(std::string("$ORIGIN t.\n") + soa_line +
                                    "a 60 A 127.0.0.1\n"
                                    "a 60 A 127.0.0.1\n"
                                    "a 60 A 127.0.0.2\n");
  EXPECT_EQ(z.find(n("a.t."), rtype::a)->records.size(), 2u);
  EXPECT_EQ(z.size(), 3u);
}

TEST(DnsZone, LoadErrorsNameTheLineAndTheProblem) {
  const std::string head = std::string("$ORIGIN t.\n") + soa_line;  // lines 1-2
  struct bad_case {
    std::string text;
    std::size_t line;
    const char* says;
  };
  const bad_case cases[] = {
      {"$ORIGIN t.\n$TTL 60\na A 127.0.0.1\n", 0, "no SOA"},
      {head + "@ SOA ns1 h 1 2 3 4 5\n", 3, "second SOA"},
      {head + "www.other. 60 A 127.0.0.1\n", 3, "outside the zone"},
      {"$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n", 2, "no $ORIGIN"},
      {"$TTL 60\nt. SOA ns1 h 1 2 3 4 5\n", 2, "no $ORIGIN"},
      {head + "a 1x A 127.0.0.1\n", 3, "bad TTL"},
      {head + "a 2147483648 A 127.0.0.1\n", 3, "bad TTL"},
      {head + "a 60 FOO 127.0.0.1\n", 3, "unknown type"},
      {head + "a 60 CH A 127.0.0.1\n", 3, "only IN"},
      {head + "a 60 ANY 127.0.0.1\n", 3, "cannot be stored"},
      {head + "a 60 A 127.0.0.300\n", 3, "bad A data"},
      {head + "a 60\n", 3, "missing record type"},
      {head + "\n\na 60 TXT ( \"x\"\n\n", 5, "'(' not closed"},
      {head + "a 60 A 127.0.0.1 )\n", 3, "')' without '('"},
      {head + "a 60 TXT \"open\n", 3, "quoted string not closed"},
      {head + "a 60 A 127.0.0.1\na 60 CNAME b\n", 4, "CNAME cannot share"},
      {head + "a 60 CNAME b\na 60 CNAME c\n", 4, "more than one CNAME"},
      {head + "a 60 A 127.0.0.1\na 61 A 127.0.0.2\n", 4, "differs from the TTL"},
      {head + "$INCLUDE other.zone\n", 3, "$INCLUDE is not supported"},
      {head + "$FOO bar\n", 3, "unknown directive"},
      {"$ORIGIN t.\n@ IN SOA ns1 h 1 2 3 4 5\n", 2, "no TTL"},
      {head + "a 60 weight=3 MX 10 b\n", 3, "only A and AAAA"},
      {head + "a 60 weight=70000 A 127.0.0.1\n", 3, "bad weight"},
      {head + "a 60 weight=1 A 127.0.0.1\na 60 A 127.0.0.2\n", 4, "must have a weight"},
      {" 60 A 127.0.0.1\n" + head, 1, "no owner name"},
      {head + "a 60 A 127.0.0.1 ; fine\nb 60 A\x01 127.0.0.1\n", 4, "control character"},
      {head + "a..b 60 A 127.0.0.1\n", 3, "bad owner name"},
  };
  for (const auto& c : cases) {
    const zone_error e = load_error(c.text);
    EXPECT_EQ(e.source(), "bad.zone") << c.text;
    EXPECT_EQ(e.line(), c.line) << c.text << "\n-> " << e.what();
    EXPECT_NE(e.problem().find(c.says), std::string::npos) << c.text << "\n-> " << e.what();
  }
  const zone_error e = load_error(head + "a 1x A 127.0.0.1\n");
  EXPECT_EQ(std::string(e.what()), "bad.zone:3: bad TTL '1x' (seconds up to 2147483647, or 1h30m)");
  EXPECT_EQ(e.field(), "bad.zone:3");
}

TEST(DnsZone, SoaMustBeAtTheGivenOrigin) {
  zone_options o;
  o.origin = n("t.");
  const zone_error e = load_error("$ORIGIN t.\nsub 60 SOA ns1 h 1 2 3 4 5\n", o);
  EXPECT_EQ(e.line(), 2u);
  EXPECT_NE(e.problem().find("zone apex t."), std::string::npos) << e.what();
  // With the origin given, relative names need no $ORIGIN.
  const zone z = zone::parse_master("@ 60 SOA ns1 h 1 2 3 4 5\nwww A 127.0.0.1\n", "z", o);
  EXPECT_NE(z.find(n("www.t."), rtype::a), nullptr);
}

TEST(DnsZone, CapsTheNumberOfRecords) {
  zone_options o;
  o.max_records = 2;
  const zone_error e = load_error(
      std::string("$ORIGIN t.\n") + soa_line + "a 60 A 127.0.0.1\nb 60 A 127.0.0.2\n", o);
  EXPECT_EQ(e.line(), 4u);
  EXPECT_NE(e.problem().find("more than 2 records"), std::string::npos);
}

TEST(DnsZone, LoadsTheJsonForm) {
  const zone z = zone::parse_json(R"({
    "origin": "example.test.",
    "ttl": "5m",
    "records": [
      {"name": "@", "type": "SOA", "ttl": 3600, "data": "ns1 hostmaster 1 7200 3600 1209600 60"},
      {"name": "@", "type": "NS", "data": "ns1"},
      {"name": "ns1", "type": "A", "class": "IN", "data": "127.0.0.53"},
      {"name": "api", "type": "A", "data": "127.0.0.21", "weight": 3},
      {"name": "api", "type": "A", "data": "127.0.0.22", "weight": 1},
      {"name": "txt", "type": "TXT", "data": ["say \"hi\"", "back\\slash"]},
      {"name": "@", "type": "MX", "data": [10, "mail.example.test."]},
      {"name": "full.example.test.", "type": "TXT", "ttl": 60, "data": "\"one\" \"two\""}
    ]
  })",
                                  "z.json");
  EXPECT_EQ(z.origin(), n("example.test."));
  EXPECT_EQ(z.find(n("ns1.example.test."), rtype::a)->ttl, 300u);
  EXPECT_EQ(z.find(n("api.example.test."), rtype::a)->weights, (std::vector<std::uint32_t>{3, 1}));
  EXPECT_EQ(std::get<txt_data>(z.find(n("txt.example.test."), rtype::txt)->records[0]).strings,
            (std::vector<std::string>{"say \"hi\"", "back\\slash"}));
  EXPECT_EQ(to_string(z.find(n("example.test."), rtype::mx)->records[0]), "10 mail.example.test.");
  EXPECT_EQ(std::get<txt_data>(z.find(n("full.example.test."), rtype::txt)->records[0]).strings,
            (std::vector<std::string>{"one", "two"}));
}

TEST(DnsZone, JsonErrorsNameTheField) {
  const std::string soa = R"({"name": "@", "type": "SOA", "ttl": 60, "data": "ns1 h 1 2 3 4 5"})";
  const std::pair<std::string, const char*> cases[] = {
      {R"({"records": []})", "origin: required"},
      {R"({"origin": "t.", "records": [)" + soa + R"(], "extra": 1})", "extra: unknown member"},
      {R"({"origin": "t.", "records": [)" + soa +
           R"(, {"name": "a", "type": "A", "data": "127.0.0.1"}]})",
       "records[1].ttl: required"},
      {R"({"origin": "t.", "records": [)" + soa +
           R"(, {"name": "a", "type": "AX", "ttl": 1, "data": "x"}]})",
       "records[1].type: unknown type"},
      {R"({"origin": "t.", "records": [)" + soa +
           R"(, {"name": "a", "type": "A", "ttl": 1, "data": "1.2.3"}]})",
       "records[1].data: bad A data"},
      {R"({"origin": "t.", "records": [)" + soa +
           R"(, {"name": "a", "type": "MX", "ttl": 1, "data": "1 a", "weight": 1}]})",
       "records[1].weight: only A and AAAA"},
      {R"({"origin": "t.", "records": [)" + soa +
           R"(, {"name": "a", "type": "A", "ttl": 1, "data": "127.0.0.1", "wieght": 1}]})",
       "records[1].wieght: unknown member"},
      {R"({"origin": "t.", "records": [)" + soa +
           R"(, {"name": "a", "type": "A", "ttl": -1, "data": "127.0.0.1"}]})",
       "records[1].ttl: a TTL"},
      {R"({"origin": "t.", "records": [)" + soa + "," + soa + "]}", "records[1]: a second SOA"},
      {R"({"origin": "t.", "records": []})", "no SOA"},
      // A number the JSON library cannot hold is a load error, not a crash
      // (found by fuzz-dns_zone).
      {R"({"origin": "t.", "ttl": 55E5555555, "records": []})", "malformed JSON"},
  };
  for (const auto& [text, says] : cases) {
    try {
      (void)zone::parse_json(text, "z.json");
      ADD_FAILURE() << "loaded: " << text;
    } catch (const zone_error& e) {
      EXPECT_EQ(e.source(), "z.json");
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << text << "\n-> " << e.what();
    }
  }
  try {
    (void)zone::parse_json("{\n  \"origin\": \"t.\",\n  \"records\": [,]\n}", "z.json");
    ADD_FAILURE() << "malformed JSON loaded";
  } catch (const zone_error& e) {
    EXPECT_EQ(e.line(), 3u) << e.what();
    EXPECT_NE(e.problem().find("malformed JSON"), std::string::npos) << e.what();
  }
}

TEST(DnsZone, LoadsTheExampleZoneFileAndReportsMissingFiles) {
  const zone z = zone::load(std::string(TRELLIS_SOURCE_DIR) + "/examples/dns/example.zone");
  EXPECT_EQ(z.origin(), n("example.test."));
  EXPECT_NE(z.find(n("www.example.test."), rtype::a), nullptr);
  const auto dir = std::filesystem::temp_directory_path();
  const std::string json =
      (dir / ("trellis-zone-" + std::to_string(::getpid()) + ".json")).string();
  {
    std::ofstream(json) << R"({"origin": "j.test.", "ttl": 60, "records": [
      {"name": "@", "type": "SOA", "data": "ns h 1 2 3 4 5"}]})";
  }
  EXPECT_EQ(zone::load(json).origin(), n("j.test."));  // .json: the JSON form
  std::filesystem::remove(json);
  try {
    (void)zone::load("/nonexistent/zone.file");
    ADD_FAILURE() << "a missing file loaded";
  } catch (const zone_error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/zone.file: cannot open the zone file");
  }
}

// --- answering -----------------------------------------------------------------

TEST(DnsZone, AnswersAnExactMatchAuthoritatively) {
  const zone z = make_zone();
  auto r = ask(z, "WWW.example.test.", rtype::aaaa);
  EXPECT_EQ(r.rcode, rcode::noerror);
  EXPECT_TRUE(r.authoritative);
  EXPECT_EQ(texts(r.answers), std::vector<std::string>{"WWW.example.test.\t60\tIN\tAAAA\t::1"});
  EXPECT_TRUE(r.authorities.empty());
}

TEST(DnsZone, FollowsCnameChainsInsideTheZone) {
  const zone z = make_zone();
  auto r = ask(z, "alias.example.test.", rtype::a);
  EXPECT_EQ(r.rcode, rcode::noerror);
  EXPECT_EQ(texts(r.answers),
            (std::vector<std::string>{"alias.example.test.\t300\tIN\tCNAME\tweb.example.test.",
                                      "web.example.test.\t300\tIN\tCNAME\twww.example.test.",
                                      "www.example.test.\t60\tIN\tA\t127.0.0.10"}));
  // Asking for the CNAME itself gives only it.
  EXPECT_EQ(ask(z, "alias.example.test.", rtype::cname).answers.size(), 1u);
  // Out of the zone: the chain stops, the resolver goes on.
  auto out = ask(z, "out.example.test.", rtype::a);
  EXPECT_EQ(out.rcode, rcode::noerror);
  EXPECT_EQ(out.answers.size(), 1u);
  EXPECT_TRUE(out.authorities.empty());
  // To a name that does not exist: NXDOMAIN for the last name (RFC 6604).
  auto dangling = ask(z, "dangling.example.test.", rtype::a);
  EXPECT_EQ(dangling.rcode, rcode::nxdomain);
  EXPECT_EQ(dangling.answers.size(), 1u);
  ASSERT_EQ(dangling.authorities.size(), 1u);
  EXPECT_EQ(dangling.authorities[0].type, rtype::soa);
  // A loop ends instead of spinning.
  auto loop = ask(z, "loop1.example.test.", rtype::a);
  EXPECT_EQ(loop.rcode, rcode::noerror);
  EXPECT_EQ(texts(loop.answers),
            (std::vector<std::string>{"loop1.example.test.\t300\tIN\tCNAME\tloop2.example.test.",
                                      "loop2.example.test.\t300\tIN\tCNAME\tloop1.example.test."}));
}

TEST(DnsZone, BoundsLongCnameChains) {
  std::string text = std::string("$ORIGIN t.\n") + soa_line;
  for (int i = 0; i < 20; ++i)
    text += "c" + std::to_string(i) + " 60 CNAME c" + std::to_string(i + 1) + "\n";
  text += "c20 60 A 127.0.0.1\n";
  zone_options o;
  o.max_cname_chain = 5;
  const zone z = zone::parse_master(text, "t", o);
  auto r = ask(z, "c0.t.", rtype::a);
  EXPECT_EQ(r.answers.size(), 6u);  // the first CNAME plus five links followed
  EXPECT_EQ(r.answers.back().type, rtype::cname);
  EXPECT_EQ(ask(z, "c15.t.", rtype::a).answers.size(), 6u);  // c15..c19 CNAMEs, then c20's A
}

TEST(DnsZone, NodataAndNxdomainCarryTheSoaWithTheNegativeTtl) {
  const zone z = make_zone();
  auto nodata = ask(z, "www.example.test.", rtype::mx);
  EXPECT_EQ(nodata.rcode, rcode::noerror);
  EXPECT_TRUE(nodata.authoritative);
  EXPECT_TRUE(nodata.answers.empty());
  ASSERT_EQ(nodata.authorities.size(), 1u);
  EXPECT_EQ(nodata.authorities[0].type, rtype::soa);
  EXPECT_EQ(nodata.authorities[0].owner, n("example.test."));
  EXPECT_EQ(nodata.authorities[0].ttl, 60u);  // min(3600, minimum 60)

  auto nx = ask(z, "nope.example.test.", rtype::a);
  EXPECT_EQ(nx.rcode, rcode::nxdomain);
  EXPECT_TRUE(nx.authoritative);
  EXPECT_TRUE(nx.answers.empty());
  ASSERT_EQ(nx.authorities.size(), 1u);
  EXPECT_EQ(nx.authorities[0].ttl, 60u);

  // An empty non-terminal exists: NODATA, not NXDOMAIN (RFC 8020).
  auto ent = ask(z, "_tcp.example.test.", rtype::srv);
  EXPECT_EQ(ent.rcode, rcode::noerror);
  EXPECT_EQ(ent.authorities.size(), 1u);
  EXPECT_EQ(ask(z, "deep.example.test.", rtype::a).rcode, rcode::noerror);
}

TEST(DnsZone, SynthesisesWildcardAnswers) {
  const zone z = make_zone();
  auto r = ask(z, "anything.apps.example.test.", rtype::a);
  EXPECT_EQ(r.rcode, rcode::noerror);
  EXPECT_EQ(texts(r.answers),
            std::vector<std::string>{"anything.apps.example.test.\t300\tIN\tA\t127.0.0.60"});
  EXPECT_EQ(ask(z, "a.b.apps.example.test.", rtype::a).answers.size(), 1u);
  auto nodata = ask(z, "x.apps.example.test.", rtype::mx);
  EXPECT_EQ(nodata.rcode, rcode::noerror);
  EXPECT_TRUE(nodata.answers.empty());
  // The wildcard's parent exists as an empty non-terminal, so it is NODATA;
  // a sibling of it is not covered by the wildcard.
  EXPECT_EQ(ask(z, "apps.example.test.", rtype::a).answers.size(), 0u);
  EXPECT_EQ(ask(z, "apps.example.test.", rtype::a).rcode, rcode::noerror);
  EXPECT_EQ(ask(z, "other.example.test.", rtype::a).rcode, rcode::nxdomain);
}

TEST(DnsZone, RefersQueriesAtAndBelowAZoneCut) {
  const zone z = make_zone();
  for (const char* q : {"sub.example.test.", "ns.sub.example.test.", "a.b.sub.example.test."}) {
    auto r = ask(z, q, rtype::a);
    EXPECT_EQ(r.rcode, rcode::noerror) << q;
    EXPECT_FALSE(r.authoritative) << q;
    EXPECT_TRUE(r.answers.empty()) << q;
    EXPECT_EQ(texts(r.authorities),
              (std::vector<std::string>{"sub.example.test.\t300\tIN\tNS\tns.sub.example.test.",
                                        "sub.example.test.\t300\tIN\tNS\tns.elsewhere.test."}))
        << q;
    EXPECT_EQ(texts(r.additionals),
              std::vector<std::string>{"ns.sub.example.test.\t300\tIN\tA\t127.0.0.70"})
        << q;
  }
  // The NS RRset at the cut belongs to the child: asked for, it is a referral too.
  EXPECT_FALSE(ask(z, "sub.example.test.", rtype::ns).authoritative);
}

TEST(DnsZone, RefusesNamesOutsideTheZone) {
  const zone z = make_zone();
  auto r = ask(z, "www.example.org.", rtype::a);
  EXPECT_EQ(r.rcode, rcode::refused);
  EXPECT_FALSE(r.authoritative);
  EXPECT_TRUE(r.answers.empty() && r.authorities.empty());
  EXPECT_EQ(ask(z, "test.", rtype::a).rcode, rcode::refused);
}

TEST(DnsZone, AddsTargetAddressesForMxSrvAndNs) {
  const zone z = make_zone();
  EXPECT_EQ(texts(ask(z, "example.test.", rtype::mx).additionals),
            (std::vector<std::string>{"mail.example.test.\t300\tIN\tA\t127.0.0.25",
                                      "mail2.example.test.\t300\tIN\tA\t127.0.0.26"}));
  EXPECT_EQ(texts(ask(z, "_http._tcp.example.test.", rtype::srv).additionals),
            (std::vector<std::string>{"www.example.test.\t60\tIN\tA\t127.0.0.10",
                                      "www.example.test.\t60\tIN\tAAAA\t::1",
                                      "web-2.example.test.\t300\tIN\tA\t127.0.0.12"}));
  EXPECT_EQ(texts(ask(z, "example.test.", rtype::ns).additionals),
            (std::vector<std::string>{"ns1.example.test.\t300\tIN\tA\t127.0.0.53",
                                      "ns2.example.test.\t300\tIN\tA\t127.0.0.54"}));
}

TEST(DnsZone, AnyReturnsEveryRrsetAtTheName) {
  const zone z = make_zone();
  auto r = ask(z, "www.example.test.", rtype::any);
  EXPECT_EQ(texts(r.answers), (std::vector<std::string>{"www.example.test.\t60\tIN\tA\t127.0.0.10",
                                                        "www.example.test.\t60\tIN\tAAAA\t::1"}));
}

TEST(DnsZone, RotatesMultiAddressRrsetsOnEveryAnswer) {
  const zone z = make_zone();
  const std::vector<std::string> order = {"127.0.0.31", "127.0.0.32", "127.0.0.33"};
  std::vector<std::string> firsts;
  for (int i = 0; i < 4; ++i) {
    auto r = ask(z, "rr.example.test.", rtype::a);
    ASSERT_EQ(r.answers.size(), 3u);
    // The whole set each time, in cyclic order from a moving start.
    const auto start = std::find(order.begin(), order.end(), to_string(r.answers[0].data));
    ASSERT_NE(start, order.end());
    for (std::size_t k = 0; k < 3; ++k)
      EXPECT_EQ(to_string(r.answers[k].data), order[(start - order.begin() + k) % 3]);
    firsts.push_back(to_string(r.answers[0].data));
  }
  EXPECT_EQ(firsts,
            (std::vector<std::string>{"127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.31"}));

  zone_options o;
  o.rotate = false;
  const zone fixed = make_zone(o);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(to_string(ask(fixed, "rr.example.test.", rtype::a).answers[0].data), "127.0.0.31");
}

TEST(DnsZone, ChoosesWeightedRecordsInProportionToTheirWeights) {
  const zone z = make_zone();
  // The random source sees the total weight (10) and picks a point in it:
  // 0..8 fall on .41 (weight 9), 9 on .42 (weight 1).
  std::vector<std::uint64_t> bounds;
  auto at = [&bounds](std::uint64_t v) {
    return [&bounds, v](std::uint64_t bound) {
      bounds.push_back(bound);
      return v;
    };
  };
  auto first = ask(z, "canary.example.test.", rtype::a, at(0));
  ASSERT_EQ(first.answers.size(), 1u);
  EXPECT_EQ(to_string(first.answers[0].data), "127.0.0.41");
  EXPECT_EQ(to_string(ask(z, "canary.example.test.", rtype::a, at(8)).answers[0].data),
            "127.0.0.41");
  EXPECT_EQ(to_string(ask(z, "canary.example.test.", rtype::a, at(9)).answers[0].data),
            "127.0.0.42");
  EXPECT_EQ(bounds, (std::vector<std::uint64_t>{10, 10, 10}));

  // Over many draws with the default generator, the split follows the weights.
  int low = 0;
  for (int i = 0; i < 2000; ++i)
    low += to_string(ask(z, "canary.example.test.", rtype::a).answers[0].data) == "127.0.0.42";
  EXPECT_GT(low, 100);  // expected 200; the bounds are many deviations away
  EXPECT_LT(low, 320);

  // Several answers: drawn without repeats.
  zone_options o;
  o.weighted_answers = 2;
  const zone two = make_zone(o);
  auto both = ask(two, "canary.example.test.", rtype::a, at(9));
  EXPECT_EQ(texts(both.answers),
            (std::vector<std::string>{"canary.example.test.\t5\tIN\tA\t127.0.0.42",
                                      "canary.example.test.\t5\tIN\tA\t127.0.0.41"}));
}

TEST(DnsZone, WeightZeroTakesARecordOutOfRotation) {
  const std::string head = std::string("$ORIGIN t.\n") + soa_line;
  const zone z = zone::parse_master(head +
                                    "a 60 weight=0 A 127.0.0.1\n"
                                    "a 60 weight=5 A 127.0.0.2\n"
                                    "b 60 weight=0 A 127.0.0.3\n"
                                    "b 60 weight=0 A 127.0.0.4\n");
  for (std::uint64_t v = 0; v < 5; ++v)
    EXPECT_EQ(to_string(ask(z, "a.t.", rtype::a, [v](std::uint64_t) { return v; }).answers[0].data),
              "127.0.0.2");
  // All zero: all equally likely.
  EXPECT_EQ(to_string(ask(z, "b.t.", rtype::a, [](std::uint64_t) { return 1; }).answers[0].data),
            "127.0.0.4");
}

TEST(DnsZone, AnswerBuildsTheWholeResponse) {
  const zone z = make_zone();
  message q = make_query(4242, question{n("www.example.test."), rtype::a, rclass::in}, 1232, false);
  const message m = z.answer(q);
  EXPECT_EQ(m.id, 4242);
  EXPECT_TRUE(m.qr);
  EXPECT_TRUE(m.aa);
  EXPECT_EQ(m.rcode, rcode::noerror);
  EXPECT_EQ(m.questions, q.questions);
  EXPECT_EQ(m.answers.size(), 1u);
}

TEST(DnsZone, FindZonePicksTheLongestOrigin) {
  std::vector<zone> zones;
  zones.push_back(make_zone());
  zones.push_back(zone::parse_master(
      "sub.example.test. 60 SOA ns.sub.example.test. h.example.test. 1 2 3 4 5\n"));
  EXPECT_EQ(find_zone(zones, n("a.sub.example.test."))->origin(), n("sub.example.test."));
  EXPECT_EQ(find_zone(zones, n("www.example.test."))->origin(), n("example.test."));
  EXPECT_EQ(find_zone(zones, n("example.org.")), nullptr);
}

}  // namespace
}  // namespace trellis::dns
