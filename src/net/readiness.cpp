#include "trellis/net/readiness.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <asio/error.hpp>
#include <asio/execution/context_as.hpp>
#include <asio/execution_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/query.hpp>
#include <optional>

namespace trellis::net {
namespace detail {

// Per execution context: the epoll set, and the one Asio wait on it.
// Touched only on the thread that runs the context.
class readiness_service final : public asio::execution_context::service {
 public:
  using key_type = readiness_service;
  static asio::execution_context::id id;

  explicit readiness_service(asio::execution_context& ctx)
      : asio::execution_context::service(ctx) {}

  ~readiness_service() override {
    if (epfd_ >= 0) ::close(epfd_);
  }

  void add(readiness& r, const asio::any_io_executor& ex) {
    if (shut_down_) throw std::system_error(asio::error::shut_down, "readiness");
    if (epfd_ < 0) {
      epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
      if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
      // Asio gets its own duplicate: it closes what it owns, and the set
      // must stay open until this service goes.
      const int dup = ::fcntl(epfd_, F_DUPFD_CLOEXEC, 0);
      if (dup < 0) throw std::system_error(errno, std::system_category(), "fcntl");
      descriptor_.emplace(ex, dup);
      executor_ = ex;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &r;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, r.fd_, &ev) != 0)
      throw std::system_error(errno, std::system_category(), "epoll_ctl");
    r.next_ = first_;
    if (first_) first_->prev_ = &r;
    first_ = &r;
  }

  void remove(readiness& r) noexcept {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, r.fd_, nullptr);
    (r.prev_ ? r.prev_->next_ : first_) = r.next_;
    if (r.next_) r.next_->prev_ = r.prev_;
    r.prev_ = r.next_ = nullptr;
  }

  // A readiness started waiting, or stopped.
  void wait_started() {
    if (++waiting_ == 1 && !polling_) poll();
  }
  void wait_ended() noexcept {
    // The Asio wait stays until its next wake-up, which finds nothing to
    // do; cancelling it here would only cost a re-arm when the next wait
    // starts. But with no readiness left at all, nothing could wake it and
    // it would keep the context from running out of work.
    if (--waiting_ == 0 && polling_ && !first_) cancel_poll();
  }
  void unregistered() noexcept {
    if (!first_ && polling_) cancel_poll();
  }

  std::uint64_t polls() const noexcept { return polls_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }

 private:
  void poll() {
    polling_ = true;
    ++polls_;
    const std::uint64_t gen = ++generation_;
    descriptor_->async_wait(asio::posix::stream_descriptor::wait_read,
                            [this, gen](std::error_code ec) { ready(gen, ec); });
  }

  void cancel_poll() noexcept {
    polling_ = false;
    ++generation_;
    std::error_code ignored;
    descriptor_->cancel(ignored);
  }

  void ready(std::uint64_t gen, std::error_code ec) {
    if (gen != generation_) return;  // a cancelled wait
    polling_ = false;
    if (ec) return;
    // Collects one batch; more than a batch leaves the set readable, and
    // the wait started below reports it at once.
    const int n = ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), 0);
    // First take the handlers to run out of their readinesses, then run
    // them: a handler may destroy any readiness (its connection's or, by
    // closing it, another's), so none is touched once the first has run.
    std::size_t woken = 0;
    for (int i = 0; i < n; ++i) {
      auto& r = *static_cast<readiness*>(events_[i].data.ptr);
      r.readable_ = true;
      if (events_[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) r.peer_closed_ = true;
      if (r.waiting_) {
        r.waiting_ = false;
        --waiting_;
        r.waiter_.ops->relocate(r.waiter_, woken_[woken++]);
      }
    }
    if (waiting_ > 0) poll();
    // Run here, as Asio runs the first handler a reactor event completes:
    // no trip through the scheduler's queue. (ready() is never re-entered:
    // only the scheduler calls it.) A handler that throws leaves the rest
    // posted, not lost.
    std::size_t i = 0;
    try {
      for (; i < woken; ++i) woken_[i].ops->invoke(woken_[i], {});
    } catch (...) {
      for (++i; i < woken; ++i) woken_[i].ops->post(woken_[i], executor_, {});
      throw;
    }
  }

  // The context is going away: pending handlers are destroyed without
  // running (they may own the very connections that hold readinesses), and
  // the readinesses destroyed from now on find themselves unregistered.
  void shutdown() override {
    shut_down_ = true;
    while (readiness* r = first_) {
      first_ = r->next_;
      r->prev_ = r->next_ = nullptr;
      r->registered_ = false;
      if (r->waiting_) {
        r->waiting_ = false;
        r->abandon();
      }
    }
    waiting_ = 0;
    polling_ = false;
    ++generation_;
    descriptor_.reset();  // before the reactor it is registered with is destroyed
  }

  int epfd_ = -1;
  std::optional<asio::posix::stream_descriptor> descriptor_;
  asio::any_io_executor executor_;  // where handlers run
  std::array<epoll_event, 256> events_{};
  std::array<readiness::waiter, 256> woken_{};  // handlers of one batch, about to run
  readiness* first_ = nullptr;
  std::size_t waiting_ = 0;
  std::uint64_t generation_ = 0;
  std::uint64_t polls_ = 0;
  bool polling_ = false;
  bool shut_down_ = false;
};

asio::execution_context::id readiness_service::id;

namespace {

readiness_service& service_of(const asio::any_io_executor& ex) {
  return asio::use_service<readiness_service>(
      asio::query(ex, asio::execution::context_as<asio::execution_context&>));
}

}  // namespace
}  // namespace detail

readiness::readiness(const asio::any_io_executor& ex, int fd)
    : service_(&detail::service_of(ex)), fd_(fd) {
  service_->add(*this, ex);
  registered_ = true;
}

readiness::~readiness() {
  reset();
}

void readiness::arm() {
  if (!registered_) {
    complete(asio::error::operation_aborted);
    return;
  }
  if (readable_) {
    complete({});
    return;
  }
  waiting_ = true;
  service_->wait_started();
}

void readiness::complete(std::error_code ec) {
  waiter_.ops->post(waiter_, service_->executor(), ec);
}

void readiness::abandon() noexcept {
  waiter_.ops->destroy(waiter_);
}

void readiness::cancel() {
  if (!waiting_) return;
  waiting_ = false;
  service_->wait_ended();
  complete(asio::error::operation_aborted);
}

void readiness::reset() {
  if (!registered_) return;
  cancel();
  registered_ = false;
  service_->remove(*this);
  service_->unregistered();
}

std::uint64_t readiness::polls_of(const asio::any_io_executor& ex) {
  return detail::service_of(ex).polls();
}

}  // namespace trellis::net
