// Presentation format of resource records (RFC 1035 §5.1, RFC 3597 §5):
// what `dig` prints and what zone files contain.
//
//   www.example.com.  300  IN  A      192.0.2.1
//   example.com.      3600 IN  MX     10 mail.example.com.
//   example.com.      3600 IN  TXT    "v=spf1 -all" "second string"
//   example.com.      3600 IN  TYPE65 \# 3 010203
//
// to_string writes rdata the way dig does (names absolute, TXT strings
// quoted with \" and \DDD escapes, unknown types in the generic \# form);
// parse_rdata reads the rdata fields of one record from tokens already split
// by a zone-file lexer (quoted strings arrive without their quotes but with
// their escapes), resolving relative names against `origin`.
//
// Thread-safety: pure functions; reentrant.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "trellis/codec/dns/message.hpp"
#include "trellis/core/result.hpp"

namespace trellis::dns {

// The rdata alone ("192.0.2.1", "10 mail.example.com.").
std::string to_string(const rdata& data);
// A whole record: owner, TTL, class, type, rdata, separated by tabs as dig does.
std::string to_string(const record& r);
// ";www.example.com.\t\tIN\tA"
std::string to_string(const question& q);

// One token of rdata text: `quoted` tells a TXT/CAA string that was written
// in quotes (so "" is an empty string, not a missing field).
struct rdata_token {
  std::string_view text;
  bool quoted = false;
};

// A TTL or SOA timer: seconds ("3600"), or BIND's units, any combination in
// any order ("1h30m", "2d", "1w"), case-insensitive. nullopt for anything
// else or a total above `max`.
std::optional<std::uint32_t> parse_duration(std::string_view text, std::uint32_t max = 0xFFFFFFFF);

// Rdata fields of type `type` to rdata. Errors: bad_rdata (wrong field count,
// a number out of range, a bad address, a TXT string over 255 octets after
// unescaping) and the name errors for names.
result<rdata> parse_rdata(rtype type, std::span<const rdata_token> fields, const name& origin);

}  // namespace trellis::dns
