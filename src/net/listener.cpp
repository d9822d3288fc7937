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

tcp_listener::seat& tcp_listener::seat::operator=(seat&& o) noexcept {
  if (this != &o) {
    release();
    seats_ = std::move(o.seats_);
  }
  return *this;
}

void tcp_listener::seat::release() noexcept {
  if (!seats_) return;
  --seats_->active;
  // Wakes serve() if it waits for a free seat or for the last connection.
  if (seats_->listener) seats_->listener->wake_.cancel();
  seats_.reset();
}

tcp_listener::tcp_listener(asio::ip::tcp::acceptor acceptor, listener_options options)
    : acceptor_(std::move(acceptor)),
      options_(options),
      seats_(std::make_shared<seats>()),
      wake_(acceptor_.get_executor()) {
  seats_->listener = this;
}

tcp_listener::~tcp_listener() {
  seats_->listener = nullptr;
}

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

asio::awaitable<void> tcp_listener::serve(handler on_connection) {
  // Each connection becomes a coroutine that holds its seat until it ends.
  return serve(adopter([ex = acceptor_.get_executor(), h = std::move(on_connection)](
                           asio::ip::tcp::socket s, seat place) {
    asio::co_spawn(ex, h(std::move(s)), [place = std::move(place)](std::exception_ptr e) mutable {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          core::log::error("connection handler failed", {{"error", x.what()}});
        } catch (...) {
          core::log::error("connection handler failed", {{"error", "unknown exception"}});
        }
      }
      place.release();
    });
  }));
}

asio::awaitable<void> tcp_listener::serve(adopter on_connection) {
  bool logged_shortage = false;
  while (acceptor_.is_open()) {
    if (seats_->active >= options_.max_connections) {
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
    ++seats_->active;
    on_connection(std::move(socket), seat(seats_));
  }
  // Closed: wait for the connections this loop started, so none outlives it.
  while (seats_->active > 0) {
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(use_nothrow);
  }
}

namespace {

// listen_on_all for either kind of connection callback.
template <class OnConnection>
result<asio::ip::tcp::endpoint> open_on_all(
    core::runtime& rt, const asio::ip::tcp::endpoint& address, listener_options options,
    const std::function<OnConnection(core::worker&)>& make) {
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
        [](std::shared_ptr<tcp_listener> l, OnConnection h,
           core::worker& wk) -> asio::awaitable<void> {
          core::drain_hook hook = wk.on_drain([l] { l->close(); });
          co_await l->serve(std::move(h));
        }(listeners[i], make(w), w),
        "tcp listener");
  }
  return bound;
}

}  // namespace

result<asio::ip::tcp::endpoint> listen_on_all(
    core::runtime& rt, const asio::ip::tcp::endpoint& address, listener_options options,
    std::function<tcp_listener::handler(core::worker&)> make_handler) {
  return open_on_all(rt, address, options, make_handler);
}

result<asio::ip::tcp::endpoint> listen_on_all(
    core::runtime& rt, const asio::ip::tcp::endpoint& address, listener_options options,
    std::function<tcp_listener::adopter(core::worker&)> make_adopter) {
  return open_on_all(rt, address, options, make_adopter);
}

}  // namespace trellis::net
