// DNS messages on the wire (RFC 1035 §4, RFC 3596, RFC 2782, RFC 6891,
// RFC 8659): decode a datagram into a `message`, encode a `message` into
// bytes, and frame messages on a TCP stream.
//
// A message is a header, one question (in practice; the codec accepts any
// count) and three sections of resource records: answers, authority and
// additional. Record data is a std::variant with one struct per type trellis
// understands — A, AAAA, NS, CNAME, SOA, PTR, MX, TXT, SRV, CAA — and
// `raw_data` keeping the bytes of any other type, so an unknown type passes
// through unchanged (RFC 3597). The OPT pseudo-record of EDNS0 is not kept
// among the additionals: decode lifts it into `message::edns`, and encode
// writes it back as the last additional record; its extended RCODE bits are
// merged into `message::rcode` (12 bits).
//
// Decoding is strict and bounded: every read is checked against the end of
// the input, compression pointers must point strictly backwards to the start
// of a label and may chain at most a fixed number of times (so a loop or a
// "pointer bomb" fails fast), a name is at most 255 octets, rdata must fill
// exactly its RDLENGTH, and bytes after the last record are an error. Each
// failure is a dns::error naming the broken rule. Names inside rdata of the
// RFC 1035 types (NS, CNAME, SOA, PTR, MX) may be compressed on decode; SRV
// targets may too, as servers do it in the wild, but the encoder never
// compresses them (RFC 3597 §4).
//
// Encoding compresses owner names and the RFC 1035 rdata names against
// every name already written (RFC 1035 §4.1.4). With `max_size` set (a UDP
// answer limited to 512 octets or to the client's EDNS size) the encoder
// drops whole RRsets from the end — additional, then authority, then answer —
// until the message fits, and sets TC when an answer or authority record had
// to go (RFC 2181 §9): a client seeing TC retries over TCP.
//
// Thread-safety: pure functions over values; reentrant.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "trellis/codec/dns/error.hpp"
#include "trellis/codec/dns/name.hpp"
#include "trellis/core/result.hpp"

namespace trellis::dns {

// Resource record types (RFC 1035 §3.2.2 and later). Any 16-bit value is a
// valid rtype; the enumerators name the ones trellis decodes into structs.
enum class rtype : std::uint16_t {
  a = 1,
  ns = 2,
  cname = 5,
  soa = 6,
  ptr = 12,
  mx = 15,
  txt = 16,
  aaaa = 28,
  srv = 33,
  opt = 41,
  ixfr = 251,
  axfr = 252,
  any = 255,
  caa = 257,
};

enum class rclass : std::uint16_t { in = 1, ch = 3, hs = 4, none = 254, any = 255 };

enum class opcode : std::uint8_t { query = 0, iquery = 1, status = 2, notify = 4, update = 5 };

// RCODEs (RFC 1035 §4.1.1, RFC 6891 §6.1.3). 12 bits with EDNS.
enum class rcode : std::uint16_t {
  noerror = 0,
  formerr = 1,
  servfail = 2,
  nxdomain = 3,
  notimp = 4,
  refused = 5,
  badvers = 16,
};

// "A", "AAAA", ... and "TYPE65" for the rest (RFC 3597 §5); the inverse
// accepts both spellings, case-insensitively.
std::string to_string(rtype t);
std::optional<rtype> parse_rtype(std::string_view text);
std::string to_string(rclass c);
std::optional<rclass> parse_rclass(std::string_view text);
// "NOERROR", "NXDOMAIN", ... and "RCODE23" for the rest.
std::string to_string(rcode r);

// --- record data --------------------------------------------------------------
struct a_data {
  std::array<std::uint8_t, 4> address{};
  friend bool operator==(const a_data&, const a_data&) = default;
};
struct aaaa_data {
  std::array<std::uint8_t, 16> address{};
  friend bool operator==(const aaaa_data&, const aaaa_data&) = default;
};
struct ns_data {
  name host;
  friend bool operator==(const ns_data&, const ns_data&) = default;
};
struct cname_data {
  name target;
  friend bool operator==(const cname_data&, const cname_data&) = default;
};
struct ptr_data {
  name target;
  friend bool operator==(const ptr_data&, const ptr_data&) = default;
};
struct soa_data {
  name mname;  // primary server
  name rname;  // mailbox of the person responsible, '@' written as the first '.'
  std::uint32_t serial = 0;
  std::uint32_t refresh = 0;
  std::uint32_t retry = 0;
  std::uint32_t expire = 0;
  std::uint32_t minimum = 0;  // the negative-caching TTL (RFC 2308 §4)
  friend bool operator==(const soa_data&, const soa_data&) = default;
};
struct mx_data {
  std::uint16_t preference = 0;
  name exchange;
  friend bool operator==(const mx_data&, const mx_data&) = default;
};
struct txt_data {
  std::vector<std::string> strings;  // each at most 255 octets; at least one
  friend bool operator==(const txt_data&, const txt_data&) = default;
};
struct srv_data {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::uint16_t port = 0;
  name target;
  friend bool operator==(const srv_data&, const srv_data&) = default;
};
struct caa_data {
  std::uint8_t flags = 0;  // bit 128: issuer critical
  std::string tag;         // 1..15 ASCII letters and digits ("issue", "iodef")
  std::string value;
  friend bool operator==(const caa_data&, const caa_data&) = default;
};
// Any other type: the rdata octets as they were on the wire.
struct raw_data {
  std::vector<std::uint8_t> bytes;
  friend bool operator==(const raw_data&, const raw_data&) = default;
};

using rdata = std::variant<raw_data, a_data, aaaa_data, ns_data, cname_data, soa_data, ptr_data,
                           mx_data, txt_data, srv_data, caa_data>;

struct record {
  name owner;
  rtype type = rtype::a;
  rclass klass = rclass::in;
  std::uint32_t ttl = 0;
  rdata data;  // its alternative matches `type` (raw_data for unknown types)
  friend bool operator==(const record&, const record&) = default;
};

struct question {
  name qname;
  rtype qtype = rtype::a;
  rclass qclass = rclass::in;
  friend bool operator==(const question&, const question&) = default;
};

struct edns_option {
  std::uint16_t code = 0;
  std::vector<std::uint8_t> data;
  friend bool operator==(const edns_option&, const edns_option&) = default;
};

// EDNS0 (RFC 6891 §6): present when the message carries an OPT record.
struct edns {
  std::uint16_t udp_size = 1232;  // the sender's UDP payload size (DNS Flag Day 2020)
  std::uint8_t version = 0;
  bool dnssec_ok = false;
  std::vector<edns_option> options;
  friend bool operator==(const edns&, const edns&) = default;
};

struct message {
  std::uint16_t id = 0;
  bool qr = false;  // response
  dns::opcode opcode = dns::opcode::query;
  bool aa = false;                         // authoritative answer
  bool tc = false;                         // truncated
  bool rd = false;                         // recursion desired
  bool ra = false;                         // recursion available
  bool ad = false;                         // authentic data
  bool cd = false;                         // checking disabled
  dns::rcode rcode = dns::rcode::noerror;  // 12 bits when edns is set, else 4

  std::vector<question> questions;
  std::vector<record> answers;
  std::vector<record> authorities;
  std::vector<record> additionals;  // without the OPT record
  std::optional<dns::edns> edns;

  friend bool operator==(const message&, const message&) = default;
};

// The 12-octet header alone, for a receiver that checks ID and flags before
// paying for a full decode. Errors: truncated_message.
struct header_view {
  std::uint16_t id;
  bool qr;
  bool tc;
  std::uint16_t qdcount, ancount, nscount, arcount;
};
result<header_view> peek_header(std::span<const std::uint8_t> wire) noexcept;

// Wire bytes to a message. Errors: every codec error of dns::error.
result<message> decode(std::span<const std::uint8_t> wire);

// The same, decoded into `out` (every field replaced), for a receiver that
// has the message's home at hand: nothing is moved afterwards, and `out`'s
// vectors keep their capacity. On an error `out` holds an unspecified part
// of the message.
std::error_code decode(std::span<const std::uint8_t> wire, message& out);

// decode(wire, out) for a receiver that knows the one question it asked (a
// stub resolver): the question section is checked on the wire first —
// exactly one question, `asked`'s name (case-insensitively), type and
// class — and is not kept: `out.questions` is left empty, since the caller
// has the question already. `matched` says whether it was `asked`; when it
// is not, nothing more is decoded and no error is returned. Records that
// point to the question's name get the name as the answer spells it, as
// with decode(). Errors, and `out` after one: as decode().
std::error_code decode_answer(std::span<const std::uint8_t> wire, const question& asked,
                              message& out, bool& matched);

struct encode_options {
  bool compress = true;
  // 0: no limit (TCP, up to 65535). Otherwise truncate to fit, setting TC
  // (see the file comment). A limit below the header + question is ignored
  // for those: they are always written.
  std::size_t max_size = 0;
};

// A message to wire bytes, appended to `out`. Errors: label/name limits of
// names built by hand, bad_rdata (a TXT string over 255 octets, a CAA tag
// that is empty or too long), bad_opt (rcode above 15 without edns),
// too_large (over 65535 octets).
result<std::size_t> encode(const message& m, std::vector<std::uint8_t>& out,
                           const encode_options& options = {});
result<std::vector<std::uint8_t>> encode(const message& m, const encode_options& options = {});

// A query for one question with a fresh id, RD set, and EDNS0 advertising
// `udp_size` (0: no OPT record).
message make_query(std::uint16_t id, const question& q, std::uint16_t udp_size = 1232,
                   bool recursion_desired = true);

// A response skeleton for `query`: same id, opcode, RD and question, QR set,
// EDNS echoed (RFC 6891 §6.1.1) when the query had it.
message make_response(const message& query);

// DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message is preceded by its
// length in two octets. Feed bytes in any split; take complete messages.
class tcp_framer {
 public:
  // Appends bytes to the frame in progress.
  void feed(std::span<const std::uint8_t> bytes);
  // The next complete message's bytes, or an empty optional when more are
  // needed. The returned span is valid until the next feed() or next().
  std::optional<std::span<const std::uint8_t>> next();
  // Octets held that do not yet form a complete message.
  std::size_t buffered() const noexcept { return buf_.size() - pos_; }

 private:
  std::vector<std::uint8_t> buf_;
  std::size_t pos_ = 0;
};

// Prefixes `wire` with its two-octet length, appended to `out`.
// REQUIRES: wire.size() <= 65535.
void frame_for_tcp(std::span<const std::uint8_t> wire, std::vector<std::uint8_t>& out);

}  // namespace trellis::dns
