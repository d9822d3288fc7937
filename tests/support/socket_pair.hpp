// Test helper: a connected pair of TCP sockets on loopback.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <utility>

namespace trellis::test {

// {client, server}: the client connected, the server side accepted.
inline asio::awaitable<std::pair<asio::ip::tcp::socket, asio::ip::tcp::socket>> socket_pair() {
  using asio::ip::tcp;
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
  tcp::socket client(ex);
  co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  tcp::socket server = co_await acceptor.async_accept(asio::use_awaitable);
  co_return std::pair{std::move(client), std::move(server)};
}

}  // namespace trellis::test
