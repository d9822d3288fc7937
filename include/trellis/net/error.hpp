// Error codes of the transport layer (net::error).
//
// Operating-system failures (connection refused, reset, EMFILE...) keep
// their std::system_category / asio::error codes; this category adds what
// the transport layer itself decides: a deadline passed, a TLS peer closed
// without close_notify, a connection limit was reached.
//
// Thread-safety: immutable singleton; safe everywhere.
#pragma once

#include <system_error>

namespace trellis::net {

enum class error {
  timed_out = 1,         // a deadline (connect, read, write, handshake...) passed
  tls_truncated,         // TLS peer closed the TCP stream without close_notify
  too_many_connections,  // a max-connections limit refused a new connection
  no_addresses,          // a connect was given an empty address list
  message_too_long,      // a datagram did not fit the receive buffer
};

const std::error_category& net_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), net_category()};
}

}  // namespace trellis::net

template <>
struct std::is_error_code_enum<trellis::net::error> : std::true_type {};
