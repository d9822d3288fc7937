// zone: the data of one DNS zone and the authoritative answer to a query
// (RFC 1034 §4.3.2, RFC 1035 §5, RFC 2308, RFC 4592).
//
// A zone is the part of the name tree one server is the authority for: an
// origin ("example.test."), exactly one SOA record at that apex, and records
// at the origin and below it, indexed by owner name, then type, into RRsets.
// NS records below the apex are zone cuts: the names under them belong to a
// child zone, and the records the zone holds there are only glue.
//
// Loading. From an RFC 1035 §5 master file:
//
//   $ORIGIN example.test.        ; relative names below are relative to this
//   $TTL 300                     ; TTL of records that give none
//   @      IN SOA ns1 hostmaster (  ; '@' is the current origin
//                 2024010101 7200 3600 1209600 300 )  ; parentheses span lines
//   @         NS    ns1
//   ns1    60 A     127.0.0.53     ; TTL and class (IN) are optional, either order
//          60 AAAA  ::1            ; a line starting with blanks keeps the owner
//   www       A     127.0.0.10
//   txt       TXT   "quoted \"strings\"" "with \\ and \065 escapes"
//
// Supported: $ORIGIN, $TTL, '@', relative names, owner inheritance, ';'
// comments, '(' ')' continuation, quoted strings with \X and \DDD escapes,
// TTLs in seconds or with BIND units ("1h30m"), class IN optional, and
// every type the codec knows plus RFC 3597's "TYPEnn \# len hex" generic
// form. Not supported, and an error when met: $INCLUDE (a zone names no
// other files), $GENERATE, classes other than IN. Without an origin given
// to the loader, the zone's origin is the owner of its SOA record, and a
// relative name before the first $ORIGIN is an error. A record without a
// TTL takes $TTL, else the last TTL written on a record, else it is an
// error.
//
// From JSON (the same data, for programs that generate zones):
//
//   {
//     "origin": "example.test.",             required
//     "ttl": 300,                             default TTL; optional
//     "records": [                            required
//       {"name": "@", "type": "SOA", "ttl": 3600,
//        "data": "ns1 hostmaster 1 7200 3600 1209600 300"},
//       {"name": "www", "type": "A", "data": "127.0.0.10", "weight": 3},
//       {"name": "txt", "type": "TXT", "data": ["literal string", "no escapes"]}
//     ]
//   }
//
// "name" is relative to "origin" unless it ends in '.'; "ttl" and "class"
// ("IN") are optional; "data" is either one string of rdata in master-file
// syntax, or an array of the rdata fields (strings or numbers): TXT and CAA
// strings in it are taken literally, so they need no quoting or escaping,
// and the other fields read as in a master file. Unknown members are
// errors, to catch typos. JSON errors name the member ("records[3].data").
//
// Weights (an extension of trellis). An A or AAAA record may carry a weight,
// in JSON as "weight": N, and in a master file as a `weight=N` word among
// the TTL and class, before the type:
//
//   api    300 IN weight=3 A 127.0.0.21
//   api    300 IN weight=1 A 127.0.0.22
//
// N is 0..65535. A weighted RRset answers with `weighted_answers` records
// (default one) drawn at random in proportion to their weights, without
// repeats; weight 0 takes a record out of rotation (unless every weight is
// 0, when all are equally likely). Within an RRset every record is weighted
// or none is. This is how DNS-based weighted routing works (a canary getting
// 10% of resolutions), with the caveat that resolvers cache the answer for
// its TTL, so the split is over resolutions, not over requests.
//
// Rules checked at load, each failing with zone_error (the source, the line
// and the problem): exactly one SOA, at the apex; every owner at or below the
// origin; no CNAME beside other data or at the apex (RFC 1034 §3.6.2); one TTL
// per RRset (RFC 2181 §5.2); identical records are kept once. Meta types
// (OPT, ANY, AXFR, IXFR) cannot be stored.
//
// Answering (lookup, RFC 1034 §4.3.2 with the RFC 2308 negative answers):
//   - a name below a zone cut (or at it): a referral — not authoritative, the
//     cut's NS RRset in authority, their in-zone A/AAAA (glue) in additional;
//   - the name with records of the type: the RRset, AA set;
//   - a CNAME at the name: the CNAME, then the chain followed inside the zone
//     (at most max_cname_chain links, loops stopped), the rcode being that of
//     the chain's last name (RFC 6604);
//   - the name exists without that type (or is an empty non-terminal): NODATA,
//     NOERROR with the SOA in authority;
//   - no such name, no wildcard: NXDOMAIN with the SOA in authority; the SOA's
//     TTL there is min(SOA TTL, SOA minimum) (RFC 2308 §3);
//   - a wildcard "*.closest-encloser" (RFC 4592): records synthesised with
//     the query name as owner;
//   - a name outside the zone: REFUSED.
// MX, SRV and NS answers get the A/AAAA records the zone holds for their
// targets in the additional section. Multi-record A/AAAA RRsets are rotated:
// each answer starts one record further on (a per-zone counter), which is
// DNS round-robin load balancing.
//
// Thread-safety: a zone is immutable after loading except for its rotation
// counter, an atomic; lookup() may be called from any number of threads at
// once. The random source passed to lookup() must be safe for the caller's
// thread (the default one is thread-local).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/dns/message.hpp"
#include "trellis/codec/dns/name.hpp"
#include "trellis/core/error.hpp"

namespace trellis::dns {

// A zone that failed to load: where, and why. what() reads
// "example.zone:12: bad TTL 'x1'" (or "zone.json: records[3].type: ...").
// field() (from core::config_error) is "example.zone:12".
class zone_error : public core::config_error {
 public:
  zone_error(std::string source, std::size_t line, const std::string& problem)
      : core::config_error(source + (line ? ":" + std::to_string(line) : std::string()), problem),
        source_(std::move(source)),
        line_(line),
        problem_(problem) {}
  const std::string& source() const noexcept { return source_; }
  // 1-based line of the problem; 0 when the source has no lines to point at.
  std::size_t line() const noexcept { return line_; }
  const std::string& problem() const noexcept { return problem_; }

 private:
  std::string source_;
  std::size_t line_;
  std::string problem_;
};

struct zone_options {
  // The zone's origin. Unset: the owner of the SOA record is the origin,
  // and a relative name needs a $ORIGIN before it.
  std::optional<name> origin;
  // Links of an in-zone CNAME chain followed in one answer. Bounds the work
  // of a query against a zone with long or looping chains.
  std::size_t max_cname_chain = 8;
  // Records returned from a weighted RRset. One is the usual weighted
  // routing; more gives a client fallbacks, still chosen by weight.
  std::size_t weighted_answers = 1;
  // Rotate multi-record A/AAAA RRsets on every answer (round-robin). Off:
  // answers keep the order of the zone file.
  bool rotate = true;
  // Records a zone may hold. Bounds memory for an accidental (or hostile)
  // giant file; a million records is a large TLD-sized zone.
  std::size_t max_records = 1'000'000;
};

// Returns a value uniformly distributed in [0, bound). REQUIRES: bound > 0.
using random_source = std::function<std::uint64_t(std::uint64_t bound)>;

// What a zone says in answer to one question.
struct lookup_result {
  dns::rcode rcode = dns::rcode::noerror;
  bool authoritative = true;  // AA: false for referrals and REFUSED
  std::vector<record> answers;
  std::vector<record> authorities;
  std::vector<record> additionals;
  // True when a rotated or weighted RRset went into the answer, so that
  // asking again may give another one; false when the answer is fixed by
  // the zone's data (a server may then keep and reuse its encoding).
  bool varies = false;

  // Moves rcode, AA and the three sections into a response skeleton
  // (make_response), the one way a lookup becomes a message.
  void move_into(message& m) && {
    m.rcode = rcode;
    m.aa = authoritative;
    m.answers = std::move(answers);
    m.authorities = std::move(authorities);
    m.additionals = std::move(additionals);
  }
};

// One RRset as stored: all the records of one owner and type.
struct rrset {
  rtype type = rtype::a;
  std::uint32_t ttl = 0;
  std::vector<rdata> records;
  // Empty: unweighted. Otherwise one weight per record (A/AAAA only).
  std::vector<std::uint32_t> weights;
};

class zone {
 public:
  // Parses master-file text. `source` names it in errors (a file name).
  // Throws zone_error.
  static zone parse_master(std::string_view text, std::string_view source = "zone",
                           zone_options options = {});
  // Parses the JSON form (see the top of this file). Throws zone_error.
  static zone parse_json(std::string_view text, std::string_view source = "zone",
                         zone_options options = {});
  // Reads `path` and parses it: JSON when the name ends in ".json", a
  // master file otherwise. Throws zone_error (a file that cannot be read
  // is one too, at line 0).
  static zone load(const std::string& path, zone_options options = {});

  zone(zone&&) noexcept;
  zone& operator=(zone&&) noexcept;
  ~zone();

  const name& origin() const noexcept;
  const record& soa() const noexcept;
  // Number of records loaded (each record of every RRset).
  std::size_t size() const noexcept;
  // The RRset of `owner` and `type` as loaded, or null.
  const rrset* find(const name& owner, rtype type) const noexcept;

  // The answer to `q` (see the top of this file). The weighted choice draws
  // from `random` (default: a thread-local generator), so a test can make
  // it deterministic. Advances the rotation counter when it rotates.
  lookup_result lookup(const question& q, const random_source& random = {}) const;

  // The full response to `query` for this zone: make_response(query) with
  // the rcode, AA and sections of lookup(query.questions[0]).
  // REQUIRES: query.questions.size() == 1.
  message answer(const message& query, const random_source& random = {}) const;

  struct impl;  // the loaded data; internal to zone.cpp

 private:
  explicit zone(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// The zone whose origin is the longest suffix of `qname` (the most specific
// authority), or null when none contains it.
const zone* find_zone(std::span<const zone> zones, const name& qname) noexcept;

}  // namespace trellis::dns
