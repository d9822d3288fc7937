#include "trellis/net/udp.hpp"

#include <sys/socket.h>

#include <asio/error.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

#include "trellis/core/awaitable.hpp"
#include "trellis/net/error.hpp"

namespace trellis::net {
namespace {

using udp = asio::ip::udp;

std::error_code apply_options(udp::socket& s, const udp_options& o) {
  std::error_code ec;
  if (o.reuse_port) {
    s.set_option(asio::socket_base::reuse_address(true), ec);
    const int one = 1;
    if (!ec && ::setsockopt(s.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec.assign(errno, asio::error::get_system_category());
  }
  if (!ec && o.receive_buffer > 0)
    s.set_option(asio::socket_base::receive_buffer_size(o.receive_buffer), ec);
  if (!ec && o.send_buffer > 0)
    s.set_option(asio::socket_base::send_buffer_size(o.send_buffer), ec);
  return ec;
}

}  // namespace

udp_socket::udp_socket(udp::socket s) : socket_(std::make_unique<udp::socket>(std::move(s))) {
  udp::socket* raw = socket_.get();
  deadline_ = std::make_unique<deadline>(raw->get_executor(), [raw] {
    std::error_code ignored;
    raw->cancel(ignored);
  });
}

udp_socket::~udp_socket() = default;

result<udp_socket> udp_socket::bind(const asio::any_io_executor& ex, const udp::endpoint& local,
                                    udp_options options) {
  udp::socket s(ex);
  std::error_code ec;
  s.open(local.protocol(), ec);
  if (!ec) ec = apply_options(s, options);
  if (!ec && local.address().is_v6()) s.set_option(asio::ip::v6_only(true), ec);
  if (!ec) s.bind(local, ec);
  if (ec) return unexpected(ec);
  return udp_socket(std::move(s));
}

result<udp_socket> udp_socket::connect(const asio::any_io_executor& ex, const udp::endpoint& peer,
                                       udp_options options) {
  udp::socket s(ex);
  std::error_code ec;
  s.open(peer.protocol(), ec);
  if (!ec) ec = apply_options(s, options);
  if (!ec) s.connect(peer, ec);
  if (ec) return unexpected(ec);
  return udp_socket(std::move(s));
}

udp::endpoint udp_socket::local_endpoint() const {
  std::error_code ec;
  return socket_->local_endpoint(ec);
}

void udp_socket::close() {
  std::error_code ignored;
  socket_->close(ignored);
}

asio::awaitable<result<datagram>> udp_socket::receive_impl(std::span<char> buffer,
                                                           duration timeout) {
  deadline_->expires_after(timeout);
  for (;;) {
    // Try first: on a busy socket a datagram is often already queued. Only
    // when the queue is empty do we wait for readability.
    sockaddr_storage from{};
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(socket_->native_handle(), &msg, MSG_DONTWAIT);
    if (n >= 0) {
      deadline_->expires_never();
      if (msg.msg_flags & MSG_TRUNC) co_return unexpected(error::message_too_long);
      datagram d;
      d.size = static_cast<std::size_t>(n);
      if (msg.msg_namelen > 0 && msg.msg_namelen <= sizeof(from)) {
        std::memcpy(d.sender.data(), &from, msg.msg_namelen);
        d.sender.resize(msg.msg_namelen);
      }
      co_return d;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      const std::error_code ec(errno, asio::error::get_system_category());
      deadline_->expires_never();
      co_return unexpected(ec);
    }
    auto [ec] = co_await socket_->async_wait(udp::socket::wait_read, use_nothrow);
    if (ec) {
      ec = deadline_->map(ec);
      deadline_->expires_never();
      co_return unexpected(ec);
    }
  }
}

asio::awaitable<result<datagram>> udp_socket::receive_from(std::span<char> buffer,
                                                           duration timeout) {
  co_return co_await receive_impl(buffer, timeout);
}

asio::awaitable<result<std::size_t>> udp_socket::receive(std::span<char> buffer, duration timeout) {
  auto r = co_await receive_impl(buffer, timeout);
  if (!r) co_return unexpected(r.error());
  co_return r->size;
}

asio::awaitable<std::error_code> udp_socket::send_to(std::span<const char> bytes,
                                                     const udp::endpoint& to, duration timeout) {
  deadline_->expires_after(timeout);
  auto [ec, n] =
      co_await socket_->async_send_to(asio::buffer(bytes.data(), bytes.size()), to, use_nothrow);
  ec = deadline_->map(ec);
  deadline_->expires_never();
  co_return ec;
}

asio::awaitable<std::error_code> udp_socket::send(std::span<const char> bytes, duration timeout) {
  deadline_->expires_after(timeout);
  auto [ec, n] =
      co_await socket_->async_send(asio::buffer(bytes.data(), bytes.size()), use_nothrow);
  ec = deadline_->map(ec);
  deadline_->expires_never();
  co_return ec;
}

}  // namespace trellis::net
