#include "trellis/net/deadline.hpp"

#include <asio/error.hpp>
#include <asio/execution/context_as.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>
#include <asio/steady_timer.hpp>
#include <array>
#include <map>
#include <optional>

#include "trellis/net/error.hpp"

namespace trellis::net {
namespace detail {

using clock = deadline::clock;

// The armed deadlines of one timeout length, in expiry order.
struct deadline_list {
  deadline* head = nullptr;
  deadline* tail = nullptr;

  // Links `d` (already carrying its expiry) in expiry order.
  void insert(deadline& d) noexcept {
    deadline* after = tail;
    while (after && after->expiry_ > d.expiry_) after = after->prev_;
    d.list_ = this;
    d.prev_ = after;
    d.next_ = after ? after->next_ : head;
    (d.next_ ? d.next_->prev_ : tail) = &d;
    (after ? after->next_ : head) = &d;
  }

  void remove(deadline& d) noexcept {
    (d.prev_ ? d.prev_->next_ : head) = d.next_;
    (d.next_ ? d.next_->prev_ : tail) = d.prev_;
    d.list_ = nullptr;
    d.prev_ = d.next_ = nullptr;
  }
};

// Per execution context: the lists, by length in milliseconds, and the one
// timer. Touched only on the thread that runs the context.
class deadline_service final : public asio::execution_context::service {
 public:
  using key_type = deadline_service;
  static asio::execution_context::id id;

  explicit deadline_service(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  void bind(const asio::any_io_executor& ex) {
    if (!timer_ && !shut_down_) timer_.emplace(ex);
  }

  void link(deadline& d, clock::duration length) {
    if (shut_down_) return;
    const std::int64_t ms =
        length <= clock::duration::zero()
            ? 0
            : std::chrono::duration_cast<std::chrono::milliseconds>(length).count();
    list_for(ms).insert(d);
    ++armed_;
    // Only a deadline ahead of the timer's moves it; a later one is noticed
    // when the timer fires.
    if (d.expiry_ < armed_for_) arm(d.expiry_);
  }

  // `moving`: the deadline is about to be linked again.
  void unlink(deadline& d, bool moving) noexcept {
    if (!d.list_) return;
    d.list_->remove(d);
    if (--armed_ == 0 && !moving && !firing_) idle();
  }

  deadline::usage usage() const noexcept { return {armed_, lists_.size(), waits_}; }

 private:
  // The list for a length: a connection moves its deadline between a few
  // lengths many times a second, so the last list seen for each length is
  // remembered in a small direct-mapped table in front of the map.
  deadline_list& list_for(std::int64_t ms) {
    recent& slot = recent_[(static_cast<std::uint64_t>(ms) * 0x9E3779B97F4A7C15ull) >> 61];
    if (slot.list && slot.ms == ms) return *slot.list;
    deadline_list& l = lists_[ms];
    slot = {ms, &l};
    return l;
  }

  void forget_recent() noexcept { recent_.fill({}); }

  // Makes the timer wait for `t`; a wait already pending is cancelled and
  // its handler finds a stale generation.
  void arm(clock::time_point t) {
    armed_for_ = t;
    const std::uint64_t gen = ++generation_;
    ++waits_;
    timer_->expires_at(t);
    timer_->async_wait([this, gen](std::error_code) { fired(gen); });
  }

  void fired(std::uint64_t gen) {
    if (gen != generation_) return;
    armed_for_ = clock::time_point::max();
    const auto now = clock::now();
    firing_ = true;
    // on_expire may link or unlink any deadline, which adds lists (the map
    // keeps iterators valid) but never removes one.
    for (auto& [ms, l] : lists_) {
      while (l.head && l.head->expiry_ <= now) {
        deadline& d = *l.head;
        l.remove(d);
        --armed_;
        d.expired_ = true;
        d.on_expire_();
      }
    }
    firing_ = false;
    // Drop the lists left empty, and wait for the earliest head.
    clock::time_point earliest = clock::time_point::max();
    for (auto it = lists_.begin(); it != lists_.end();) {
      if (!it->second.head) {
        forget_recent();
        it = lists_.erase(it);
        continue;
      }
      earliest = std::min(earliest, it->second.head->expiry_);
      ++it;
    }
    if (earliest < armed_for_) arm(earliest);
  }

  // Nothing is armed: stop waiting, so that a context with no other work
  // runs out of work.
  void idle() noexcept {
    forget_recent();
    lists_.clear();
    if (armed_for_ == clock::time_point::max()) return;
    armed_for_ = clock::time_point::max();
    ++generation_;
    timer_->cancel();
  }

  // The context is going away: the pending wait is destroyed without
  // running, and the deadlines destroyed from now on (with the coroutine
  // frames that hold them) find themselves unlinked.
  void shutdown() override {
    shut_down_ = true;
    for (auto& [ms, l] : lists_) {
      while (l.head) l.remove(*l.head);
    }
    forget_recent();
    lists_.clear();
    armed_ = 0;
    timer_.reset();  // before the timer's own service is destroyed
  }

  std::optional<asio::steady_timer> timer_;
  std::map<std::int64_t, deadline_list> lists_;
  struct recent {
    std::int64_t ms = 0;
    deadline_list* list = nullptr;
  };
  std::array<recent, 8> recent_{};
  clock::time_point armed_for_ = clock::time_point::max();  // what the pending wait waits for
  std::uint64_t generation_ = 0;                            // identifies the current wait
  std::uint64_t waits_ = 0;
  std::size_t armed_ = 0;
  bool firing_ = false;
  bool shut_down_ = false;
};

asio::execution_context::id deadline_service::id;

namespace {

deadline_service& service_of(const asio::any_io_executor& ex) {
  return asio::use_service<deadline_service>(
      asio::query(ex, asio::execution::context_as<asio::execution_context&>));
}

}  // namespace
}  // namespace detail

deadline::deadline(const asio::any_io_executor& ex, std::function<void()> on_expire)
    : service_(&detail::service_of(ex)), on_expire_(std::move(on_expire)) {
  service_->bind(ex);
}

deadline::~deadline() {
  // Only an armed deadline touches the service. The context's shutdown
  // unlinks every deadline, so one destroyed after its context (and its
  // service) never reaches the freed service.
  if (list_) service_->unlink(*this, false);
}

void deadline::link(clock::time_point t, clock::time_point now) {
  const bool armed = t != clock::time_point::max();
  service_->unlink(*this, armed);
  expiry_ = t;
  expired_ = false;
  if (armed) service_->link(*this, t - now);
}

void deadline::expires_at(clock::time_point t) {
  link(t, clock::now());
}

void deadline::expires_after(clock::duration d) {
  const auto now = clock::now();
  link(d >= clock::time_point::max() - now ? clock::time_point::max() : now + d, now);
}

void deadline::expires_never() {
  link(clock::time_point::max(), clock::time_point::max());
}

std::error_code deadline::map(std::error_code ec) const noexcept {
  if (expired_ && (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor))
    return error::timed_out;
  return ec;
}

deadline::usage deadline::usage_of(const asio::any_io_executor& ex) {
  return detail::service_of(ex).usage();
}

}  // namespace trellis::net
