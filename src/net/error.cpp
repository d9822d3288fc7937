#include "trellis/net/error.hpp"

#include <string>

namespace trellis::net {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.net"; }
  std::string message(int v) const override {
    switch (static_cast<error>(v)) {
      case error::timed_out: return "timed out";
      case error::tls_truncated: return "TLS stream truncated (peer closed without close_notify)";
      case error::too_many_connections: return "too many connections";
      case error::no_addresses: return "no addresses to connect to";
      case error::message_too_long: return "datagram larger than the receive buffer";
    }
    return "unknown net error";
  }
  // timed_out compares equal to std::errc::timed_out, so generic code that
  // checks for the portable condition also recognises trellis deadlines.
  bool equivalent(int code, const std::error_condition& cond) const noexcept override {
    if (static_cast<error>(code) == error::timed_out) return cond == std::errc::timed_out;
    if (static_cast<error>(code) == error::message_too_long) return cond == std::errc::message_size;
    return default_error_condition(code) == cond;
  }
};

}  // namespace

const std::error_category& net_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace trellis::net
