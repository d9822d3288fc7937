// cidr: address blocks in CIDR notation (RFC 4632 for IPv4, RFC 4291 §2.3
// for IPv6): "10.0.0.0/8", "fd00::/8", or a bare address meaning exactly
// that one.
//
// What the proxy's list of trusted proxies and the gateway's allow and deny
// lists are made of. An IPv4 block also matches the same address written
// as IPv4-mapped IPv6 (::ffff:10.1.2.3), which is how a dual-stack
// listener reports IPv4 peers; otherwise families never match each other.
// A block must be written in its canonical form: "10.1.0.0/8" has bits set
// past its prefix and is rejected rather than silently widened, since it
// is usually a typo for /16 or /24.
//
// Thread-safety: immutable values; share freely.
#pragma once

#include <array>
#include <asio/ip/address.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/result.hpp"

namespace trellis::net {

class cidr {
 public:
  // Parses "ADDRESS/BITS" or a bare "ADDRESS" (a /32 or /128).
  // Errors: std::errc::invalid_argument for a bad address, a prefix length
  // out of range, or bits set past the prefix.
  static result<cidr> parse(std::string_view text);

  // Whether `a` lies in the block.
  bool contains(const asio::ip::address& a) const noexcept;

  bool is_v4() const noexcept { return v4_; }
  unsigned prefix_length() const noexcept { return bits_; }
  // The canonical text: "10.0.0.0/8", "fd00::/8".
  std::string to_string() const;

 private:
  std::array<std::uint8_t, 16> bytes_{};  // network address, 4 or 16 bytes used
  unsigned bits_ = 0;
  bool v4_ = true;
};

// A list of blocks; an address matches when any block contains it.
class cidr_set {
 public:
  cidr_set() = default;
  // Parses each entry. Throws core::config_error whose field is `field`
  // and the index of the bad entry ("proxy.trusted_proxies[2]").
  cidr_set(const std::vector<std::string>& blocks, std::string_view field);

  void add(cidr block) { blocks_.push_back(block); }
  bool contains(const asio::ip::address& a) const noexcept;
  bool empty() const noexcept { return blocks_.empty(); }
  const std::vector<cidr>& blocks() const noexcept { return blocks_; }

 private:
  std::vector<cidr> blocks_;
};

}  // namespace trellis::net
