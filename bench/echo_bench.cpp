// TCP echo round trips over one loopback connection.
//
// The server is trellis: a tcp_listener on its own thread and io_context,
// echoing with the same read-some/write-back loop as trellis-echo. The
// client is a plain blocking socket in the benchmark loop, so the figure is
// the full round trip: client write, server wake-up, read, write, client
// read. Pin it to see the cost without migrations, e.g.
//   taskset -c 0 build/release/bin/bench-echo
// (both sides then share one core, which is what one worker serving one
// client costs), or run unpinned for the two-core figure.
#include <benchmark/benchmark.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <thread>

#include "trellis/core/awaitable.hpp"
#include "trellis/net/listener.hpp"

namespace {

using asio::ip::tcp;

asio::awaitable<void> echo(tcp::socket s) {
  char buf[16 * 1024];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), trellis::use_nothrow);
    if (ec) co_return;
    auto [wec, w] = co_await asio::async_write(s, asio::buffer(buf, n), trellis::use_nothrow);
    if (wec) co_return;
  }
}

void tcp_echo_round_trip(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  asio::io_context server_ctx(1);
  auto listener = trellis::net::tcp_listener::open(server_ctx.get_executor(),
                                                   {asio::ip::address_v4::loopback(), 0});
  if (!listener) {
    state.SkipWithError(listener.error().message().c_str());
    return;
  }
  auto& l = **listener;
  asio::co_spawn(server_ctx, l.serve(echo), [](std::exception_ptr) {});
  std::thread server([&] { server_ctx.run(); });

  asio::io_context client_ctx;
  tcp::socket client(client_ctx);
  client.connect(l.local_endpoint());
  client.set_option(tcp::no_delay(true));
  std::string msg(size, 'x'), reply(size, '\0');
  for (auto _ : state) {
    asio::write(client, asio::buffer(msg));
    asio::read(client, asio::buffer(reply));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size) * 2);
  state.counters["round_trips_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);

  client.close();
  asio::post(server_ctx, [&] { l.close(); });
  server.join();
}
BENCHMARK(tcp_echo_round_trip)->Arg(16)->Arg(1024)->Arg(16 * 1024)->UseRealTime();

}  // namespace
