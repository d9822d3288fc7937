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
// How it is kept: every connection of a worker uses the same few timeout
// lengths (idle, header, body, write...), and deadlines set with the same
// length expire in the order they were set. So the deadlines of one
// execution context (one worker) sit in one FIFO list per length, in
// expiry order, and the context has ONE steady_timer, waiting for the
// earliest of the lists' heads. Setting a deadline unlinks it and links it
// at the tail of its length's list: no allocation, no timer operation, no
// lock. The deadline is the list node (intrusive), so a connection's
// watchdog costs no heap memory of its own, and 10,000 idle connections
// share one timer. The timer is re-armed only when it fires (it then
// waits for the new earliest head, having found the deadlines it woke up
// for moved later) or when a deadline lands ahead of every other; and it
// is cancelled when no deadline of the context is armed, so that a context
// with nothing else to do runs out of work. This is the technique of h2o's
// and nginx's per-worker timer structures, with Asio's timer to wake up.
//
// Lists are keyed by the length rounded down to the millisecond; a
// deadline is inserted in expiry order (walking back from the tail, which
// a steady clock makes a no-op for expires_after()), so an arbitrary
// expires_at() is exact too, only slower to insert.
//
// When the deadline passes, the watchdog calls `on_expire` once, on the
// executor. on_expire should make pending operations complete (cancel or
// close the socket); the code awaiting them sees operation_aborted, and
// map() turns that into net::error::timed_out, so a timeout is a clear
// error, never a hang. expired() stays true until the deadline is set again.
//
// Thread-safety: the deadlines of one execution context share its lists,
// so that context must be run by one thread (trellis's runtime runs each
// worker's io_context on its own thread), and a deadline is used only from
// that thread. Destroying it stops the watchdog; on_expire is never called
// afterwards.
#pragma once

#include <asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <system_error>

namespace trellis::net {

namespace detail {
class deadline_service;
struct deadline_list;
}  // namespace detail

class deadline {
 public:
  using clock = std::chrono::steady_clock;

  // REQUIRES: on_expire is callable on `ex` and does not destroy this
  // deadline. A deadline may outlive ex's execution context (an object that
  // owns a socket and is destroyed after its io_context, say), but then it
  // may only be destroyed: the context's end disarmed it.
  deadline(const asio::any_io_executor& ex, std::function<void()> on_expire);
  ~deadline();
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;

  // Sets the time at which on_expire runs, replacing any earlier setting
  // and clearing expired(). A time already past fires on the executor
  // soon after, never inside this call.
  void expires_at(clock::time_point t);
  void expires_after(clock::duration d);
  // Disarms: on_expire will not run until the deadline is set again.
  void expires_never();

  clock::time_point expiry() const noexcept { return expiry_; }
  // True once on_expire ran for the current setting.
  bool expired() const noexcept { return expired_; }

  // Maps the result of an operation cancelled by this deadline to
  // net::error::timed_out; returns every other code unchanged.
  std::error_code map(std::error_code ec) const noexcept;

  // What the deadlines of one execution context cost (tests, diagnostics).
  struct usage {
    std::size_t armed = 0;          // deadlines set and not yet expired or disarmed
    std::size_t lists = 0;          // one per timeout length (a few empty ones linger)
    std::uint64_t timer_waits = 0;  // waits ever started on the context's one timer
  };
  // REQUIRES: called on the thread that runs ex's execution context.
  static usage usage_of(const asio::any_io_executor& ex);

 private:
  friend class detail::deadline_service;
  friend struct detail::deadline_list;

  void link(clock::time_point t, clock::time_point now);

  detail::deadline_service* service_;
  std::function<void()> on_expire_;
  detail::deadline_list* list_ = nullptr;  // the list this deadline is armed in, if any
  deadline* prev_ = nullptr;
  deadline* next_ = nullptr;
  clock::time_point expiry_ = clock::time_point::max();
  bool expired_ = false;
};

}  // namespace trellis::net
