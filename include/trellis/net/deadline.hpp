// deadline: a sliding watchdog that cancels a connection's I/O when time is up.
//
// Asio 1.22 has no cancel_after, and racing every read against its own timer
// (`read || timer`) costs a timer-queue operation per I/O plus a parallel
// group per await. trellis instead gives each connection one watchdog:
//
//   net::deadline dl(sock.get_executor(), [&] { sock.cancel(); });
//   dl.expires_after(5s);                        // e.g. header read timeout
//   auto [ec, n] = co_await sock.async_read_some(buf, as_tuple(use_awaitable));
//   ec = dl.map(ec);                             // operation_aborted -> timed_out
//
// Moving the deadline later only stores a time point; the underlying timer
// is re-armed when it fires early (the deadline slid) or when the deadline
// moves earlier than the timer's. So a keep-alive connection that handles
// thousands of requests does almost no timer work, the technique of servers
// that keep "last activity" stamps (h2o, nginx's timer tree per event).
//
// When the deadline passes, the watchdog calls `on_expire` once, on the
// executor. on_expire should make pending operations complete (cancel or
// close the socket); the code awaiting them sees operation_aborted, and
// map() turns that into net::error::timed_out, so a timeout is a clear
// error, never a hang. expired() stays true until the deadline is set again.
//
// Thread-safety: a deadline belongs to one executor (one worker thread);
// call it only from there. Destroying it stops the watchdog; on_expire is
// never called afterwards.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <system_error>

namespace trellis::net {

class deadline {
 public:
  using clock = std::chrono::steady_clock;

  // REQUIRES: on_expire is callable on `ex` and does not destroy this deadline.
  deadline(const asio::any_io_executor& ex, std::function<void()> on_expire);
  ~deadline();
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;

  // Sets the time at which on_expire runs, replacing any earlier setting
  // and clearing expired().
  void expires_at(clock::time_point t);
  void expires_after(clock::duration d) { expires_at(clock::now() + d); }
  // Disarms: on_expire will not run until the deadline is set again.
  void expires_never();

  clock::time_point expiry() const noexcept;
  // True once on_expire ran for the current setting.
  bool expired() const noexcept;

  // Maps the result of an operation cancelled by this deadline to
  // net::error::timed_out; returns every other code unchanged.
  std::error_code map(std::error_code ec) const noexcept;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace trellis::net
