// Stub-resolver configuration: /etc/resolv.conf (resolv.conf(5)), the
// RES_OPTIONS environment variable, /etc/hosts (hosts(5)), the search-list
// rule that turns what a user typed into the names to ask, and the special
// name `localhost` (RFC 6761 §6.3).
//
// Parsers take text and are pure, so every rule is tested on strings; the
// loaders read the files and call them. Like the C library, the resolv.conf
// parser is lenient: a line it does not understand, or a nameserver that is
// not an IP address, is skipped rather than fatal, because a resolver that
// refuses to start over one bad line takes the whole host's DNS down with
// it. Everything parsed is a plain value the caller may edit before handing
// it to a resolver (tests point `nameservers` at loopback ports; resolv.conf
// itself has no syntax for a port).
//
// Search-list expansion (resolv.conf(5) "ndots"): a name with a trailing
// dot is absolute and asked as is. Otherwise, a name with at least `ndots`
// dots is asked as is first and then with each search domain appended; a
// name with fewer dots gets the search domains first and itself last.
//
// Thread-safety: values and pure functions; one writer or many readers.
#pragma once

#include <asio/ip/address.hpp>
#include <asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "trellis/codec/dns/name.hpp"
#include "trellis/core/result.hpp"

namespace trellis::dns {

inline constexpr std::uint16_t default_port = 53;

// What resolv.conf says, with the C library's defaults and limits.
struct resolv_conf {
  // `nameserver` lines in order (IPv4 or IPv6, an IPv6 zone as in
  // "fe80::1%eth0" accepted), port 53. Empty when none is configured: a
  // resolver then fails with dns::error::no_servers rather than guessing
  // that something listens on 127.0.0.1.
  std::vector<asio::ip::udp::endpoint> nameservers;
  // `search` domains (or the single `domain`; the last of the two lines wins).
  std::vector<name> search;
  // `options ndots:n` (0..15, default 1): names with fewer dots try the
  // search list first. Higher values (Kubernetes uses 5) cost extra queries
  // for every external name.
  unsigned ndots = 1;
  // `options timeout:n` seconds (1..30, default 5): how long one try waits
  // for one server. Kept in milliseconds so tests may go lower.
  std::chrono::milliseconds timeout{5000};
  // `options attempts:n` (1..5, default 2): rounds over the server list.
  unsigned attempts = 2;
  // `options rotate`: spread queries over the servers round-robin instead
  // of always asking the first one first.
  bool rotate = false;
  // EDNS0 (RFC 6891) with a 1232-octet UDP buffer. The C library needs
  // `options edns0` to turn it on; trellis sends it by default (DNS Flag Day
  // 2020) and `options no-edns0` is not a resolv.conf word, so turn it off
  // here in code for a server that mishandles OPT (the transport also falls
  // back by itself when a server answers FORMERR without OPT).
  bool edns0 = true;
};

// Parses resolv.conf text. Unknown keywords and options, comments ('#' or
// ';' at the start of a line or after a value) and malformed nameserver
// addresses are skipped.
resolv_conf parse_resolv_conf(std::string_view text);

// Applies an `options` line's words ("ndots:2 rotate timeout:1") to `conf`;
// this is what the RES_OPTIONS environment variable holds.
void apply_resolv_options(resolv_conf& conf, std::string_view words);

// Reads and parses `path`, then applies $RES_OPTIONS when `use_env`.
// Errors: the file's open error (std::errc::no_such_file_or_directory...).
result<resolv_conf> load_resolv_conf(const std::string& path = "/etc/resolv.conf",
                                     bool use_env = true);

// The static host table. Names are matched case-insensitively; an address
// may have several names (the canonical one first, then aliases) and a name
// several addresses (in file order, v4 and v6 mixed).
class hosts {
 public:
  // Parses hosts(5) text: "address name [alias...]" a line, '#' comments.
  // Lines whose address is not an IP address, or whose names are not valid
  // DNS names, are skipped.
  static hosts parse(std::string_view text);
  // Reads and parses `path`. Errors: the file's open error.
  static result<hosts> load(const std::string& path = "/etc/hosts");

  // Adds a mapping (as one more line of the file would).
  void add(const name& n, const asio::ip::address& address);

  // Every address of `n`, in file order; empty when unknown.
  std::span<const asio::ip::address> addresses(const name& n) const;
  // The first name given for `address` (for reverse lookups); nullopt when
  // unknown.
  std::optional<name> name_of(const asio::ip::address& address) const;

  bool empty() const noexcept { return by_name_.empty(); }

 private:
  std::unordered_map<name, std::vector<asio::ip::address>, name_hash> by_name_;
  std::map<asio::ip::address, name> by_address_;
};

// True for "localhost." and every name below it (RFC 6761 §6.3): these are
// answered with the loopback addresses and never sent to a server.
bool is_localhost(const name& n) noexcept;

// The names to ask for `host`, in order (see the file comment). `host` is
// presentation text; a trailing dot makes it absolute. Errors: bad_query
// for text that is not a valid name (empty, an empty label, too long).
result<std::vector<name>> search_names(std::string_view host, const resolv_conf& conf);

// The reverse-lookup name of an address (RFC 1035 §3.5, RFC 3596 §2.5):
// "4.3.2.1.in-addr.arpa." for 1.2.3.4, nibbles under "ip6.arpa." for IPv6.
name reverse_name(const asio::ip::address& address);

}  // namespace trellis::dns
