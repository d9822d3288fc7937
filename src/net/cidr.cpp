#include "trellis/net/cidr.hpp"

#include <charconv>

#include "trellis/core/error.hpp"

namespace trellis::net {

namespace {

std::error_code invalid() {
  return std::make_error_code(std::errc::invalid_argument);
}

}  // namespace

result<cidr> cidr::parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string address_text(text.substr(0, slash));
  std::error_code ec;
  const auto address = asio::ip::make_address(address_text, ec);
  // make_address accepts "fe80::1%eth0": a scope has no place in a block.
  if (ec || address_text.find('%') != std::string::npos) return unexpected(invalid());

  cidr c;
  c.v4_ = address.is_v4();
  const unsigned max_bits = c.v4_ ? 32 : 128;
  c.bits_ = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    unsigned bits = 0;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (digits.empty() || digits.size() > 3 || err != std::errc{} ||
        end != digits.data() + digits.size() || bits > max_bits)
      return unexpected(invalid());
    c.bits_ = bits;
  }
  if (c.v4_) {
    const auto b = address.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), c.bytes_.begin());
  } else {
    c.bytes_ = address.to_v6().to_bytes();
  }
  // No bits set past the prefix.
  const unsigned size = c.v4_ ? 4 : 16;
  for (unsigned i = 0; i < size; ++i) {
    const unsigned first_bit = i * 8;
    std::uint8_t host_mask = 0xff;
    if (first_bit + 8 <= c.bits_)
      host_mask = 0;
    else if (first_bit < c.bits_)
      host_mask = static_cast<std::uint8_t>(0xff >> (c.bits_ - first_bit));
    if ((c.bytes_[i] & host_mask) != 0) return unexpected(invalid());
  }
  return c;
}

bool cidr::contains(const asio::ip::address& a) const noexcept {
  std::array<std::uint8_t, 16> bytes{};
  if (v4_) {
    if (a.is_v4()) {
      const auto b = a.to_v4().to_bytes();
      std::copy(b.begin(), b.end(), bytes.begin());
    } else if (a.to_v6().is_v4_mapped()) {
      const auto b = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_bytes();
      std::copy(b.begin(), b.end(), bytes.begin());
    } else {
      return false;
    }
  } else {
    if (!a.is_v6()) return false;
    bytes = a.to_v6().to_bytes();
  }
  const unsigned whole = bits_ / 8;
  for (unsigned i = 0; i < whole; ++i)
    if (bytes[i] != bytes_[i]) return false;
  const unsigned rest = bits_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (bytes[whole] & mask) == bytes_[whole];
}

std::string cidr::to_string() const {
  std::string out;
  if (v4_) {
    asio::ip::address_v4::bytes_type b{};
    std::copy(bytes_.begin(), bytes_.begin() + 4, b.begin());
    out = asio::ip::address_v4(b).to_string();
  } else {
    out = asio::ip::address_v6(bytes_).to_string();
  }
  return out + "/" + std::to_string(bits_);
}

cidr_set::cidr_set(const std::vector<std::string>& blocks, std::string_view field) {
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    auto c = cidr::parse(blocks[i]);
    if (!c)
      throw core::config_error(std::string(field) + "[" + std::to_string(i) + "]",
                               "'" + blocks[i] +
                                   "' is not an address or CIDR block (e.g. 10.0.0.0/8, fd00::/8)");
    blocks_.push_back(*c);
  }
}

bool cidr_set::contains(const asio::ip::address& a) const noexcept {
  for (const auto& b : blocks_)
    if (b.contains(a)) return true;
  return false;
}

}  // namespace trellis::net
