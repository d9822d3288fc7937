// A separate project built against the installed trellis: it links
// trellis::trellis found with find_package and does one real round trip on
// loopback, so the install carries headers, the library and its
// dependencies (Asio's compiled part, OpenSSL, threads).
#include <trellis/core/awaitable.hpp>
#include <trellis/core/result.hpp>
#include <trellis/net/connect.hpp>
#include <trellis/net/listener.hpp>
#include <trellis/net/tls.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <cstdio>

int main() {
  asio::io_context ctx;
  auto listener =
      trellis::net::tcp_listener::open(ctx.get_executor(), {asio::ip::address_v4::loopback(), 0});
  if (!listener) return 1;
  auto& l = **listener;
  asio::co_spawn(ctx, l.serve([](asio::ip::tcp::socket s) -> asio::awaitable<void> {
    char c[2];
    co_await asio::async_read(s, asio::buffer(c), trellis::use_nothrow);
    co_await asio::async_write(s, asio::buffer(c), trellis::use_nothrow);
  }),
                 [](std::exception_ptr) {});
  bool ok = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto s = co_await trellis::net::connect(l.local_endpoint());
        if (s) {
          co_await asio::async_write(*s, asio::buffer("ok", 2), trellis::use_nothrow);
          char c[2];
          auto [ec, n] = co_await asio::async_read(*s, asio::buffer(c), trellis::use_nothrow);
          ok = !ec && n == 2 && c[0] == 'o';
        }
        l.close();
      },
      [](std::exception_ptr) {});
  ctx.run();
  // A TLS client context loads the system store: OpenSSL is linked.
  auto tls = trellis::net::tls::make_client_context({});
  (void)tls;
  std::puts(ok ? "consumer: ok" : "consumer: round trip failed");
  return ok ? 0 : 1;
}
