// Test helper: a loopback address:port that never answers a connect.
//
// A listener whose accept queue is full drops new SYNs (Linux counts them
// as ListenOverflows), so a connect to it hangs in SYN retries exactly like
// a connect to a dead host — without sending anything off this machine.
// The helper listens with a backlog of 0, never accepts, and fills the
// queue with connections of its own until a probe connect stalls.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/this_coro.hpp>
#include <memory>
#include <vector>

#include "trellis/core/awaitable.hpp"
#include "trellis/net/deadline.hpp"

namespace trellis::test {

class blackhole {
 public:
  static asio::awaitable<std::unique_ptr<blackhole>> make() {
    auto ex = co_await asio::this_coro::executor;
    auto b = std::unique_ptr<blackhole>(new blackhole(ex));
    for (int i = 0; i < 16; ++i) {
      asio::ip::tcp::socket s(ex);
      net::deadline dl(ex, [&s] { s.close(); });
      dl.expires_after(std::chrono::milliseconds(100));
      auto [ec] = co_await s.async_connect(b->endpoint(), use_nothrow);
      if (dl.expired()) {
        b->filled_ = true;  // this probe stalled: the queue is full
        break;
      }
      if (!ec) b->fillers_.push_back(std::move(s));
    }
    co_return b;
  }
  asio::ip::tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
  bool filled() const { return filled_; }

 private:
  explicit blackhole(const asio::any_io_executor& ex) : acceptor_(ex) {
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind({asio::ip::address_v4::loopback(), 0});
    acceptor_.listen(0);
  }
  asio::ip::tcp::acceptor acceptor_;
  std::vector<asio::ip::tcp::socket> fillers_;
  bool filled_ = false;
};

}  // namespace trellis::test
