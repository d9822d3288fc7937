#include "trellis/net/deadline.hpp"

#include <asio/error.hpp>

#include "trellis/net/error.hpp"

namespace trellis::net {

// The watchdog's state lives on the heap, shared with the pending timer
// handler, so that a handler already queued when the deadline is destroyed
// finds `alive == false` instead of freed memory.
struct deadline::state : std::enable_shared_from_this<state> {
  state(const asio::any_io_executor& ex, std::function<void()> f)
      : timer(ex), on_expire(std::move(f)) {}

  asio::steady_timer timer;
  std::function<void()> on_expire;
  clock::time_point expiry = clock::time_point::max();     // what the owner asked for
  clock::time_point armed_for = clock::time_point::max();  // what the timer waits for
  std::uint64_t generation = 0;                            // identifies the current timer wait
  bool expired = false;
  bool alive = true;

  void arm(clock::time_point t) {
    armed_for = t;
    const std::uint64_t gen = ++generation;
    timer.expires_at(t);  // cancels a wait already pending; its handler sees a stale generation
    timer.async_wait([self = shared_from_this(), gen](std::error_code) { self->fired(gen); });
  }

  void fired(std::uint64_t gen) {
    if (!alive || gen != generation) return;
    armed_for = clock::time_point::max();
    if (expiry == clock::time_point::max() || expired) return;
    if (clock::now() < expiry) {
      arm(expiry);  // the deadline slid later while we slept: sleep again
      return;
    }
    expired = true;
    on_expire();
  }
};

deadline::deadline(const asio::any_io_executor& ex, std::function<void()> on_expire)
    : state_(std::make_shared<state>(ex, std::move(on_expire))) {}

deadline::~deadline() {
  state_->alive = false;
  state_->timer.cancel();
}

void deadline::expires_at(clock::time_point t) {
  state& s = *state_;
  s.expiry = t;
  s.expired = false;
  // Only an earlier deadline needs the timer moved; a later one is noticed
  // when the timer fires.
  if (t < s.armed_for) s.arm(t);
}

void deadline::expires_never() {
  state_->expiry = clock::time_point::max();
  state_->expired = false;
}

deadline::clock::time_point deadline::expiry() const noexcept {
  return state_->expiry;
}

bool deadline::expired() const noexcept {
  return state_->expired;
}

std::error_code deadline::map(std::error_code ec) const noexcept {
  if (state_->expired &&
      (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor))
    return error::timed_out;
  return ec;
}

}  // namespace trellis::net
