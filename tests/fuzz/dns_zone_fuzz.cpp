// libFuzzer target for the zone loader: master-file text (and, from the
// same bytes, the JSON form) on arbitrary input. Beyond "no crash, no
// sanitizer report", it checks what callers rely on:
//   - a load fails only with zone_error, whose line lies within the input;
//   - a loaded zone has its SOA at its origin, and every stored RRset is
//     found again by find();
//   - every record of a loaded zone survives the presentation format: its
//     rdata written by to_string() parses back to the same value;
//   - lookups of the names in the zone (and of a name outside it) give the
//     answers of RFC 1034 §4.3.2: AA with answers, a referral, NXDOMAIN or
//     NODATA with the SOA, REFUSED outside — and they encode.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "trellis/codec/dns/text.hpp"
#include "trellis/dns/zone.hpp"

namespace {

using namespace trellis::dns;

// Splits presentation rdata back into tokens the way the zone lexer does
// for the forms to_string() writes: blanks separate, "..." is one quoted
// token with its escapes.
std::vector<std::string> split(std::string_view text, std::vector<bool>& quoted) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
    } else if (text[i] == '"') {
      std::size_t j = i + 1;
      while (j < text.size() && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
      out.emplace_back(text.substr(i + 1, j - i - 1));
      quoted.push_back(true);
      i = j + 1;
    } else {
      std::size_t j = i;
      while (j < text.size() && text[j] != ' ') j += text[j] == '\\' ? 2 : 1;
      out.emplace_back(text.substr(i, j - i));
      quoted.push_back(false);
      i = j;
    }
  }
  return out;
}

void check_round_trip(const record& r) {
  const std::string text = to_string(r.data);
  std::vector<bool> quoted;
  const auto words = split(text, quoted);
  std::vector<rdata_token> tokens;
  for (std::size_t i = 0; i < words.size(); ++i) tokens.push_back({words[i], quoted[i]});
  auto back = parse_rdata(r.type, tokens, name{});
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(*back == r.data);
}

void check_zone(const zone& z) {
  FUZZ_CHECK(z.soa().type == rtype::soa);
  FUZZ_CHECK(z.soa().owner == z.origin());
  FUZZ_CHECK(z.find(z.origin(), rtype::soa) != nullptr);
  FUZZ_CHECK(z.size() >= 1);

  // Ask the zone about a few names it might hold: the origin, names built
  // from its SOA and a name outside it.
  std::vector<name> names = {z.origin()};
  const auto& soa = std::get<soa_data>(z.soa().data);
  names.push_back(soa.mname);
  names.push_back(soa.rname);
  if (auto child = z.origin().prepend("fuzz-nonexistent")) names.push_back(*child);
  for (const auto& qn : names) {
    for (rtype t : {rtype::a, rtype::aaaa, rtype::ns, rtype::mx, rtype::txt, rtype::any,
                    rtype::cname, rtype::soa}) {
      const auto r = z.lookup(question{qn, t, rclass::in}, [](std::uint64_t) { return 0; });
      if (!qn.is_subdomain_of(z.origin())) {
        FUZZ_CHECK(r.rcode == rcode::refused);
        continue;
      }
      FUZZ_CHECK(r.rcode == rcode::noerror || r.rcode == rcode::nxdomain);
      if (!r.authoritative) {  // a referral: NS in authority only
        FUZZ_CHECK(r.answers.empty());
        FUZZ_CHECK(!r.authorities.empty());
        for (const auto& a : r.authorities) FUZZ_CHECK(a.type == rtype::ns);
      } else if (r.answers.empty() || r.rcode == rcode::nxdomain) {
        FUZZ_CHECK(r.authorities.size() == 1 && r.authorities[0].type == rtype::soa);
        FUZZ_CHECK(r.authorities[0].ttl <= z.soa().ttl);
      }
      for (const auto& a : r.answers) {
        check_round_trip(a);
        FUZZ_CHECK(a.type == t || a.type == rtype::cname || t == rtype::any);
      }
      message q = make_query(1, question{qn, t, rclass::in});
      message m = z.answer(q);
      FUZZ_CHECK(encode(m, {.max_size = 512}).has_value());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t lines = static_cast<std::size_t>(std::count(in.begin(), in.end(), '\n')) + 1;
  zone_options o;
  o.max_records = 2000;
  try {
    const zone z = zone::parse_master(in, "fuzz.zone", o);
    check_zone(z);
  } catch (const zone_error& e) {
    FUZZ_CHECK(e.line() <= lines);
    FUZZ_CHECK(!e.problem().empty());
  }
  try {
    const zone z = zone::parse_json(in, "fuzz.json", o);
    check_zone(z);
  } catch (const zone_error& e) {
    FUZZ_CHECK(!e.problem().empty());
  }
  return 0;
}
