#include "trellis/net/connect.hpp"

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <memory>
#include <optional>
#include <vector>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/error.hpp"

namespace trellis::net {
namespace {

using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

// What the racing attempts and the coordinating coroutine share. Everything
// runs on one executor, so plain fields suffice.
struct race {
  explicit race(const asio::any_io_executor& ex) : wake(ex) {}
  std::vector<tcp::socket> sockets;  // one per attempt, reserved up front
  std::optional<tcp::socket> winner;
  std::error_code last_error;
  std::size_t running = 0;
  bool failed_since_start = false;  // an attempt failed since the last one started
  bool timed_out = false;
  asio::steady_timer wake;  // the coordinator sleeps on it; attempts cancel it to wake it

  void close_all_but_winner() {
    std::error_code ignored;
    for (auto& s : sockets) s.close(ignored);
  }
};

asio::awaitable<void> attempt(std::shared_ptr<race> r, std::size_t i, tcp::endpoint ep) {
  auto [ec] = co_await r->sockets[i].async_connect(ep, use_nothrow);
  --r->running;
  if (!ec && !r->winner && !r->timed_out) {
    r->winner.emplace(std::move(r->sockets[i]));
    r->close_all_but_winner();  // the losers' pending connects complete as aborted
  } else if (ec && ec != asio::error::operation_aborted) {
    r->last_error = ec;
    r->failed_since_start = true;
  }
  r->wake.cancel();
}

}  // namespace

std::vector<tcp::endpoint> interleave_families(std::span<const tcp::endpoint> addresses) {
  std::vector<tcp::endpoint> first, second, out;
  if (addresses.empty()) return out;
  const bool first_v6 = addresses.front().address().is_v6();
  for (const auto& a : addresses) (a.address().is_v6() == first_v6 ? first : second).push_back(a);
  out.reserve(addresses.size());
  for (std::size_t i = 0; i < first.size() || i < second.size(); ++i) {
    if (i < first.size()) out.push_back(first[i]);
    if (i < second.size()) out.push_back(second[i]);
  }
  return out;
}

asio::awaitable<result<tcp::socket>> connect(tcp::endpoint address, connect_options options) {
  co_return co_await connect(std::span<const tcp::endpoint>(&address, 1), options);
}

asio::awaitable<result<tcp::socket>> connect(std::span<const tcp::endpoint> addresses,
                                             connect_options options) {
  if (addresses.empty()) co_return unexpected(error::no_addresses);
  const auto ex = co_await asio::this_coro::executor;
  const std::vector<tcp::endpoint> order = interleave_families(addresses);

  auto r = std::make_shared<race>(ex);
  r->sockets.reserve(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) r->sockets.emplace_back(ex);

  deadline dl(ex, [r] {
    r->timed_out = true;
    r->close_all_but_winner();
    r->wake.cancel();
  });
  dl.expires_after(options.timeout);

  std::size_t next = 0;
  clock::time_point next_start = clock::now();
  for (;;) {
    if (r->winner || r->timed_out) break;
    const bool may_start = next < order.size() &&
                           (r->running == 0 || r->failed_since_start || clock::now() >= next_start);
    if (may_start) {
      ++r->running;
      r->failed_since_start = false;
      next_start = clock::now() + options.attempt_delay;
      asio::co_spawn(ex, attempt(r, next, order[next]), [](std::exception_ptr e) {
        if (e) core::log::error("connect attempt failed with an exception");
      });
      ++next;
      continue;
    }
    if (next == order.size() && r->running == 0) break;  // every attempt failed
    r->wake.expires_at(next < order.size() ? next_start : clock::time_point::max());
    co_await r->wake.async_wait(use_nothrow);
  }

  // Cancel the attempts still in flight and wait for them: none outlives us.
  r->close_all_but_winner();
  while (r->running > 0) {
    r->wake.expires_at(clock::time_point::max());
    co_await r->wake.async_wait(use_nothrow);
  }

  if (r->winner) {
    std::error_code ignored;
    if (options.no_delay) r->winner->set_option(tcp::no_delay(true), ignored);
    co_return std::move(*r->winner);
  }
  if (r->timed_out) co_return unexpected(error::timed_out);
  co_return unexpected(r->last_error ? r->last_error : make_error_code(error::timed_out));
}

}  // namespace trellis::net
