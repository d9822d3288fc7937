#include "trellis/net/listener.hpp"

#include <sys/socket.h>

#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <string>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"

namespace trellis::net {
namespace {

// Accept errors that mean "out of a resource, try again later", not "this
// listener is broken". (Asio reports errno values in its own category,
// which does not map them to std::errc conditions, so compare raw values.)
bool is_resource_shortage(const std::error_code& ec) {
  if (ec.category() != asio::error::get_system_category()) return false;
  const int v = ec.value();
  return v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM;
}

std::string to_string(const asio::ip::tcp::endpoint& ep) {
  std::string s =
      ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
  return s + ":" + std::to_string(ep.port());
}

}  // namespace

tcp_listener::tcp_listener(asio::ip::tcp::acceptor acceptor, listener_options options)
    : acceptor_(std::move(acceptor)), options_(options), wake_(acceptor_.get_executor()) {}

result<std::unique_ptr<tcp_listener>> tcp_listener::open(const asio::any_io_executor& ex,
                                                         const asio::ip::tcp::endpoint& address,
                                                         listener_options options) {
  asio::ip::tcp::acceptor acceptor(ex);
  std::error_code ec;
  acceptor.open(address.protocol(), ec);
  if (ec) return unexpected(ec);
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && options.reuse_port) {
    const int one = 1;
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec.assign(errno, asio::error::get_system_category());
  }
  if (!ec && address.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor.bind(address, ec);
  if (!ec) acceptor.listen(options.backlog, ec);
  if (ec) return unexpected(ec);
  return std::unique_ptr<tcp_listener>(new tcp_listener(std::move(acceptor), options));
}

asio::ip::tcp::endpoint tcp_listener::local_endpoint() const {
  std::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void tcp_listener::close() {
  std::error_code ec;
  acceptor_.close(ec);
  wake_.cancel();
}

void tcp_listener::connection_done() {
  --active_;
  wake_.cancel();  // wakes serve() if it waits for a free slot or for the last child
}

asio::awaitable<void> tcp_listener::serve(handler on_connection) {
  const auto ex = acceptor_.get_executor();
  bool logged_shortage = false;
  while (acceptor_.is_open()) {
    if (active_ >= options_.max_connections) {
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(use_nothrow);
      continue;
    }
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
    if (ec) {
      if (!acceptor_.is_open() || ec == asio::error::operation_aborted) break;
      if (is_resource_shortage(ec)) {
        // Log the first of a run of failures, not one line per retry.
        if (!logged_shortage)
          core::log::warn("accept failed; backing off",
                          {{"address", to_string(local_endpoint())},
                           {"error", ec.message()},
                           {"backoff_ms", options_.accept_backoff.count()}});
        logged_shortage = true;
        wake_.expires_after(options_.accept_backoff);
        co_await wake_.async_wait(use_nothrow);
      }
      // Anything else (ECONNABORTED: the client gave up in the backlog) only
      // concerns that one connection.
      continue;
    }
    if (logged_shortage)
      core::log::info("accepting again", {{"address", to_string(local_endpoint())}});
    logged_shortage = false;
    if (options_.no_delay) socket.set_option(asio::ip::tcp::no_delay(true), ec);
    ++active_;
    asio::co_spawn(ex, on_connection(std::move(socket)), [this](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          core::log::error("connection handler failed", {{"error", x.what()}});
        } catch (...) {
          core::log::error("connection handler failed", {{"error", "unknown exception"}});
        }
      }
      connection_done();
    });
  }
  // Closed: wait for the connections this loop started, so none outlives it.
  while (active_ > 0) {
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(use_nothrow);
  }
}

result<asio::ip::tcp::endpoint> listen_on_all(
    core::runtime& rt, const asio::ip::tcp::endpoint& address, listener_options options,
    std::function<tcp_listener::handler(core::worker&)> make_handler) {
  std::vector<std::shared_ptr<tcp_listener>> listeners;
  asio::ip::tcp::endpoint bound = address;
  for (std::size_t i = 0; i < rt.size(); ++i) {
    auto l = tcp_listener::open(rt[i].executor(), bound, options);
    if (!l) return unexpected(l.error());  // the ones opened so far close here
    bound = (*l)->local_endpoint();        // port 0: the others join the chosen port
    listeners.push_back(std::move(*l));
  }
  for (std::size_t i = 0; i < rt.size(); ++i) {
    core::worker& w = rt[i];
    w.spawn(
        [](std::shared_ptr<tcp_listener> l, tcp_listener::handler h,
           core::worker& wk) -> asio::awaitable<void> {
          core::drain_hook hook = wk.on_drain([l] { l->close(); });
          co_await l->serve(std::move(h));
        }(listeners[i], make_handler(w), w),
        "tcp listener");
  }
  return bound;
}

}  // namespace trellis::net
