// readiness: waits for a socket to become readable without a system call
// per wait, the way nginx does.
//
// Asio's reactor pays for every wait it starts. A read it starts tries the
// socket first (one recv that usually says EAGAIN on an idle keep-alive
// connection), and a plain wait re-arms the descriptor with epoll_ctl, so
// that an edge it might have missed is reported again. Either way, a
// keep-alive request costs three system calls (the request's recv, the
// response's send and that one) where nginx needs two, and in a sandbox
// where a system call costs microseconds that third call is a tenth of a
// request's CPU time.
//
// nginx avoids it by registering each connection once, edge-triggered, and
// keeping a `ready` flag per connection: an edge sets it, and a read that
// comes back short or with EAGAIN clears it. A wait on a connection whose
// flag is clear needs no system call at all; the edge that ends it will be
// reported by the next epoll_wait.
//
// trellis does the same beside Asio: each execution context (one worker)
// has its own epoll set, into which a readiness registers its socket once
// (EPOLLIN | EPOLLRDHUP, edge-triggered). The set's descriptor sits in
// Asio's reactor like any other, so one Asio wait on it — re-armed once per
// batch of ready sockets, not once per request — wakes the context, and one
// epoll_wait collects every socket that became readable:
//
//   net::readiness ready(sock.get_executor(), sock.native_handle());
//   for (;;) {
//     std::size_t n = sock.read_some(buf, ec);        // non-blocking socket
//     if (ec == asio::error::would_block || n < buf.size()) ready.drained();
//     if (ec == asio::error::would_block) co_await ready.async_wait(use_awaitable);
//     ...
//   }
//
// The flag is only ever cleared by the owner's own short read, and the
// kernel queues an edge for any byte that arrives after that read, so a
// wait never misses data: at worst a wait ends and the next read finds
// nothing (EAGAIN), which clears the flag again. The one thing a short
// read does not consume is the end of the stream: a FIN that came with the
// last bytes is reported by the read after them, and no new edge comes for
// it, so once an edge has said the peer closed, the flag stays set.
//
// Only readability: writes that find the socket full are rare (a response
// larger than the send buffer) and keep using Asio's wait.
//
// Thread-safety: as net::deadline — the readinesses of one execution context
// are used only on the one thread that runs it. A readiness may outlive its
// context only to be destroyed.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <cstddef>
#include <cstdint>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

namespace trellis::net {

namespace detail {
class readiness_service;
}

class readiness {
 public:
  // Registers `fd`, a non-blocking stream socket, with the epoll set of ex's
  // execution context. Throws std::system_error if the kernel refuses.
  // REQUIRES: fd stays open until reset() or destruction: closing a
  // registered descriptor first could let a new socket reuse its number.
  readiness(const asio::any_io_executor& ex, int fd);
  ~readiness();
  readiness(const readiness&) = delete;
  readiness& operator=(const readiness&) = delete;

  // True when an edge came since the last drained(): bytes (or the end of
  // the stream) may be waiting. False at first: registering reports bytes
  // that were already there as an edge of their own.
  bool readable() const noexcept { return readable_; }
  // The owner's last read returned fewer bytes than it asked for, or EAGAIN:
  // the socket is empty, and the next wait waits for new bytes. Except once
  // the peer has closed its side: its FIN may have come with the last bytes,
  // in the same edge, and the read that reports it (0 bytes) is still to
  // come, so the socket stays readable (nginx's `pending_eof`).
  void drained() noexcept { readable_ = peer_closed_; }

  // Completes with success once the socket may be read: soon (posted, never
  // inside this call) when readable(), else when bytes, the end of the
  // stream or an error arrive. Completes with asio::error::operation_aborted
  // after cancel() or reset(). One wait at a time.
  template <class Token>
  auto async_wait(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [](auto handler, readiness* self) { self->start(std::move(handler)); }, token, this);
  }

  // Ends the pending wait, if any, with operation_aborted.
  void cancel();
  // Cancels and leaves the epoll set; call it before closing the socket.
  void reset();

  // Waits ever started on the context's one Asio wait (tests, diagnostics).
  // REQUIRES: called on the thread that runs ex's execution context.
  static std::uint64_t polls_of(const asio::any_io_executor& ex);

 private:
  friend class detail::readiness_service;

  // The pending wait's completion handler, type-erased in place: a wait
  // allocates nothing. A coroutine's handler is one pointer; a callback
  // owning its connection, another.
  struct waiter {
    struct operations {
      void (*invoke)(waiter&, std::error_code);  // runs the handler here and now
      void (*post)(waiter&, const asio::any_io_executor&, std::error_code);
      void (*relocate)(waiter& from, waiter& to) noexcept;
      void (*destroy)(waiter&) noexcept;
    };
    alignas(std::max_align_t) unsigned char storage[16];
    const operations* ops = nullptr;
  };

  template <class Handler>
  static Handler& stored(waiter& w) noexcept {
    return *std::launder(reinterpret_cast<Handler*>(w.storage));
  }

  template <class Handler>
  void start(Handler handler) {
    static_assert(sizeof(Handler) <= sizeof(waiter::storage) &&
                      alignof(Handler) <= alignof(std::max_align_t),
                  "completion handler too large for readiness");
    static constexpr waiter::operations ops{
        [](waiter& w, std::error_code ec) {
          Handler h(std::move(stored<Handler>(w)));
          stored<Handler>(w).~Handler();
          std::move(h)(ec);
        },
        [](waiter& w, const asio::any_io_executor& ex, std::error_code ec) {
          Handler h(std::move(stored<Handler>(w)));
          stored<Handler>(w).~Handler();
          asio::post(ex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
        },
        [](waiter& from, waiter& to) noexcept {
          ::new (static_cast<void*>(to.storage)) Handler(std::move(stored<Handler>(from)));
          stored<Handler>(from).~Handler();
          to.ops = from.ops;
        },
        [](waiter& w) noexcept { stored<Handler>(w).~Handler(); },
    };
    ::new (static_cast<void*>(waiter_.storage)) Handler(std::move(handler));
    waiter_.ops = &ops;
    arm();
  }

  void arm();
  // Hands the waiting handler its result, posted to the context: never
  // inside the call that started or cancelled the wait.
  void complete(std::error_code ec);
  // Destroys the waiting handler without running it (the context is going away).
  void abandon() noexcept;

  detail::readiness_service* service_;
  int fd_;
  bool registered_ = false;
  bool readable_ = false;     // set by edges, cleared by drained()
  bool peer_closed_ = false;  // an edge said EPOLLRDHUP, EPOLLHUP or EPOLLERR
  bool waiting_ = false;
  waiter waiter_;
  readiness* prev_ = nullptr;  // the context's registered readinesses
  readiness* next_ = nullptr;
};

}  // namespace trellis::net
