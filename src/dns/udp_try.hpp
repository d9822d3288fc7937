// The stub resolver's UDP try on a channel, waited on from the resolver's
// own coroutine (internal to the DNS layer; see transport.hpp).
//
// A query on a channel's socket waits in a udp_waiter: an intrusive record
// in the frame of the coroutine that awaits the answer, found by its ID
// through the socket's table and by its deadline through the channel's
// list, and resumed by the socket's reader as soon as its answer is
// decoded. transport.cpp's exchange() keeps one in its frame; the
// resolver, whose tries are nearly always one UDP datagram and its answer,
// keeps one (a udp_try) in the frame of the coroutine that asks the
// question, so that a try costs no coroutine of its own: start_try()
// sends, the caller awaits wait_try(), and end_try() says whether the
// answer is final or the exchange must go on (EDNS fallback, TCP after
// TC, a socket buffer too full to send at once), which query_into() then
// does.
//
// Thread-safety: as the channel's (one executor).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "trellis/codec/dns/message.hpp"
#include "trellis/dns/transport.hpp"

namespace trellis::dns::detail {

struct shared_udp;
struct udp_channel_state;

// A one-shot void() completion handler kept in place (no allocation). The
// handler owns the suspended coroutine, whose frame may own this object:
// every way out moves the handler onto the stack before calling or
// dropping it.
class wake_handler {
 public:
  wake_handler() = default;
  wake_handler(const wake_handler&) = delete;
  wake_handler& operator=(const wake_handler&) = delete;
  ~wake_handler() { reset(); }

  template <typename Handler>
  void emplace(Handler&& h) {
    using H = std::decay_t<Handler>;
    static_assert(sizeof(H) <= sizeof(storage_) && alignof(H) <= alignof(std::max_align_t),
                  "the completion handler does not fit");
    reset();
    ::new (static_cast<void*>(storage_)) H(std::forward<Handler>(h));
    ops_ = &ops_for<H>;
  }
  bool armed() const noexcept { return ops_ != nullptr; }
  // Calls the handler now, resuming its coroutine inline; *this may be
  // destroyed by the time this returns.
  void complete() {
    if (const ops* o = std::exchange(ops_, nullptr)) o->complete(storage_);
  }
  // Queues the handler on its executor.
  void post() {
    if (const ops* o = std::exchange(ops_, nullptr)) o->post(storage_);
  }
  // Drops the handler uncalled (the context is shutting down).
  void reset() noexcept {
    if (const ops* o = std::exchange(ops_, nullptr)) o->destroy(storage_);
  }

 private:
  struct ops {
    void (*complete)(void*);
    void (*post)(void*);
    void (*destroy)(void*) noexcept;
  };
  template <typename H>
  static void complete_fn(void* p) {
    H* stored = static_cast<H*>(p);
    H h(std::move(*stored));
    stored->~H();
    std::move(h)();
  }
  template <typename H>
  static void post_fn(void* p) {
    H* stored = static_cast<H*>(p);
    H h(std::move(*stored));
    stored->~H();
    asio::post(std::move(h));
  }
  template <typename H>
  static void destroy_fn(void* p) noexcept {
    H* stored = static_cast<H*>(p);
    H h(std::move(*stored));
    stored->~H();
  }
  template <typename H>
  static constexpr ops ops_for{&complete_fn<H>, &post_fn<H>, &destroy_fn<H>};

  alignas(std::max_align_t) unsigned char storage_[64];
  const ops* ops_ = nullptr;
};

// A query waiting for its answer on a channel's socket, in the frame of
// the coroutine that awaits it. Linked, while it waits, in its socket's ID
// table and in its channel's deadline list.
struct udp_waiter {
  using clock = std::chrono::steady_clock;
  enum class outcome : std::uint8_t { waiting, answered, failed, timed_out, cancelled };

  udp_waiter(udp_channel_state& ch, std::shared_ptr<shared_udp> s, std::uint16_t query_id,
             const question& q, clock::time_point at)
      : channel(&ch), socket(std::move(s)), id(query_id), asked(&q), deadline(at) {}
  ~udp_waiter();
  udp_waiter(const udp_waiter&) = delete;
  udp_waiter& operator=(const udp_waiter&) = delete;

  udp_channel_state* channel;
  std::shared_ptr<shared_udp> socket;
  std::uint16_t id;       // the query's
  const question* asked;  // the query's one question
  clock::time_point deadline;
  udp_waiter* prev = nullptr;
  udp_waiter* next = nullptr;
  bool linked = false;
  outcome state = outcome::waiting;
  wake_handler wake;
  asio::cancellation_slot cancel_slot;

  std::error_code error;
  message* into = nullptr;  // where the accepted answer goes
  // The answer's question section is not wanted (the resolver has the
  // question): it is checked on the wire and not kept (decode_answer).
  bool bare = false;
  std::size_t wire_size = 0;
  bool timed = true;  // answered_at is wanted (the round trip is reported)
  clock::time_point answered_at{};
  std::size_t ignored = 0;
  bool malformed = false;
};

// One UDP try of the stub resolver's question through its channel.
struct udp_try {
  std::optional<udp_waiter> waiter;
  udp_waiter::clock::time_point deadline{};
  bool slow = false;  // the send must wait for room: query_into() does the try
};

// Sends `q` (a plain query: RD and EDNS from `options`, a fresh ID) on
// `channel`'s socket for it and registers the wait for the answer, which
// is decoded into `response` (question section left empty). An error:
// nothing is waiting. Otherwise await wait_try(t) while t.waiter is
// waiting, then call end_try().
// REQUIRES: runs on the channel's executor; `channel`, `q` and `response`
// outlive the try (the resolver's frame holds them all).
std::error_code start_try(udp_channel& channel, const question& q, const query_options& options,
                          message& response, udp_try& t);

// Suspends the caller until its answer, an error, its deadline or a
// cancellation ends the wait.
asio::awaitable<void> wait_try(udp_try& t);

// True while the try waits (wait_try() is to be awaited).
inline bool waiting(const udp_try& t) noexcept {
  return t.waiter && t.waiter->state == udp_waiter::outcome::waiting;
}

// The try's outcome. `more` is set when the exchange must go on through
// query_into() with `next` (the EDNS fallback, TCP after a truncated
// answer, or the whole try when the send had to wait), within what is left
// of the deadline.
std::error_code end_try(udp_try& t, const query_options& options, const message& response,
                        bool& more, query_options& next);

}  // namespace trellis::dns::detail
