// udp_socket: datagrams with deadlines, connected or not.
//
// UDP has no connection: each datagram stands alone, may be lost,
// duplicated or reordered, and is delivered whole or not at all. A socket
// can still be "connected" (connect(2)): the kernel then fixes the peer,
// drops datagrams from anyone else, and reports ICMP port-unreachable as
// connection_refused on the next receive — which is how a DNS client notices
// a dead server at once instead of at its timeout.
//
// Receives wait for readability first and then read with recvmsg(2), so a
// datagram larger than the buffer is reported as net::error::message_too_long
// (MSG_TRUNC) instead of being silently cut — a DNS reply cut short must not
// be parsed as if whole. Every wait has a deadline (net::deadline) and ends in
// net::error::timed_out.
//
// Thread-safety: a socket belongs to one executor; one receive and one send
// may be outstanding at a time.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/udp.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>

#include "trellis/core/result.hpp"
#include "trellis/net/deadline.hpp"

namespace trellis::net {

struct udp_options {
  // Share the port between sockets of this process (one per worker); the
  // kernel then spreads incoming datagrams across them by flow hash.
  bool reuse_port = false;
  // SO_RCVBUF / SO_SNDBUF in bytes, 0 for the kernel default. A busy server
  // raises the receive buffer so bursts are queued instead of dropped.
  int receive_buffer = 0;
  int send_buffer = 0;
};

struct datagram {
  std::size_t size = 0;            // bytes received into the buffer
  asio::ip::udp::endpoint sender;  // who sent it
};

class udp_socket {
 public:
  using duration = std::chrono::steady_clock::duration;

  // A socket bound to `local` (port 0: the kernel picks), able to talk to anyone.
  static result<udp_socket> bind(const asio::any_io_executor& ex,
                                 const asio::ip::udp::endpoint& local, udp_options options = {});
  // A socket connected to `peer`, bound to an ephemeral port chosen by the
  // kernel (random, which is what DNS clients want against spoofing).
  static result<udp_socket> connect(const asio::any_io_executor& ex,
                                    const asio::ip::udp::endpoint& peer, udp_options options = {});

  udp_socket(udp_socket&&) noexcept = default;
  udp_socket& operator=(udp_socket&&) noexcept = default;
  ~udp_socket();

  // Receives one datagram from anyone (unconnected) within `timeout`.
  asio::awaitable<result<datagram>> receive_from(std::span<char> buffer, duration timeout);
  // Receives one datagram from the connected peer within `timeout`.
  asio::awaitable<result<std::size_t>> receive(std::span<char> buffer, duration timeout);
  // Sends one datagram to `to`.
  asio::awaitable<std::error_code> send_to(std::span<const char> bytes,
                                           const asio::ip::udp::endpoint& to, duration timeout);
  // Sends one datagram to the connected peer.
  asio::awaitable<std::error_code> send(std::span<const char> bytes, duration timeout);

  asio::ip::udp::endpoint local_endpoint() const;
  asio::ip::udp::socket& native() noexcept { return *socket_; }
  void close();

 private:
  explicit udp_socket(asio::ip::udp::socket s);
  asio::awaitable<result<datagram>> receive_impl(std::span<char> buffer, duration timeout);

  // Behind pointers so that the deadline's expiry action (cancel this
  // socket) keeps pointing at the right object when a udp_socket is moved.
  std::unique_ptr<asio::ip::udp::socket> socket_;
  std::unique_ptr<deadline> deadline_;
};

}  // namespace trellis::net
