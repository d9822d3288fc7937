#include "trellis/dns/transport.hpp"

#include <openssl/rand.h>
#include <pthread.h>
#include <sys/socket.h>

#include <array>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/error.hpp"
#include "udp_try.hpp"
#include "wire_compare.hpp"

namespace trellis::dns {
namespace {

using clock = std::chrono::steady_clock;
using asio::ip::tcp;
using asio::ip::udp;

// The largest datagram there is: a reply bigger than what we advertised
// still arrives whole, so that it can be recognised (and ignored or used)
// rather than reported as cut.
constexpr std::size_t max_datagram = 65535;

// One receive buffer per thread, never zeroed: every datagram is read into
// it and decoded (copied out) before the reading coroutine or handler
// waits again, so no two readers of a thread can interleave on it.
std::span<char> receive_buffer() {
  thread_local std::unique_ptr<char[]> buf(new char[max_datagram]);
  return {buf.get(), max_datagram};
}

std::chrono::milliseconds remaining(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

// What a receive loop ended with when no acceptable answer came.
std::error_code failure(bool saw_malformed) {
  return saw_malformed ? make_error_code(error::malformed) : make_error_code(error::timed_out);
}

struct attempt_result {
  message response;
  std::size_t wire_size = 0;
  std::chrono::nanoseconds rtt{0};
  std::size_t ignored = 0;
};

// Outside the coroutines and the reader's loop: the log fields are an
// initializer_list.
void log_undecodable(std::error_code ec) {
  core::log::debug("dns: undecodable answer ignored", {{"error", ec.message()}});
}

// matches() for a query given by its ID and its one question.
bool answers(std::uint16_t id, const question& a, const message& response) noexcept {
  if (!response.qr || response.id != id || response.questions.size() != 1) return false;
  const question& b = response.questions[0];
  return a.qtype == b.qtype && a.qclass == b.qclass &&
         detail::iequal_wire(a.qname.wire(), b.qname.wire());
}

// Decodes `wire` and returns the message when it answers `q`; nullopt when
// it must be ignored. Sets `malformed` for an answer with our ID that does
// not decode.
std::optional<message> accept(const message& q, std::span<const std::uint8_t> wire,
                              bool& malformed) {
  auto h = peek_header(wire);
  if (!h || !h->qr || h->id != q.id) return std::nullopt;  // not even a candidate
  auto m = decode(wire);
  if (!m) {
    core::log::debug("dns: undecodable answer ignored", {{"error", m.error().message()}});
    malformed = true;
    return std::nullopt;
  }
  if (!matches(q, *m)) return std::nullopt;
  return std::move(*m);
}

// accept() decoding the answer straight into `out`, for the shared
// sockets' reader. `out` is the waiting query's response, which nobody
// reads unless this returns true: a datagram that is ignored may leave
// part of itself there, and the next candidate is decoded over it. `bare`:
// the question is checked on the wire and not kept in `out`, and nothing
// past it is decoded unless it is the one asked (decode_answer).
bool accept_into(std::uint16_t id, const question& q, std::span<const std::uint8_t> wire,
                 bool& malformed, message& out, bool bare) {
  auto h = peek_header(wire);
  if (!h || !h->qr || h->id != id) return false;
  bool matched = true;
  const std::error_code ec = bare ? decode_answer(wire, q, out, matched) : decode(wire, out);
  if (ec) {
    log_undecodable(ec);
    malformed = true;
    return false;
  }
  return bare ? matched : answers(id, q, out);
}

// One datagram read without waiting (recvmsg with MSG_DONTWAIT).
struct received {
  enum kind { datagram, empty, failed } status = empty;
  std::size_t size = 0;
  bool truncated = false;  // larger than the buffer: not a DNS answer of any size
  udp::endpoint sender;
  std::error_code error;  // for `failed`: the socket's error (ECONNREFUSED...)
};

received receive_now(int fd, std::span<char> buffer) {
  received out;
  for (;;) {
    sockaddr_storage from;  // written by the kernel, msg_namelen octets of it
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n >= 0) {
      out.status = received::datagram;
      out.size = static_cast<std::size_t>(n);
      out.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
      if (msg.msg_namelen > 0 && msg.msg_namelen <= sizeof(from)) {
        std::memcpy(out.sender.data(), &from, msg.msg_namelen);
        out.sender.resize(msg.msg_namelen);
      }
      return out;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return out;
    out.status = received::failed;
    out.error.assign(errno, asio::error::get_system_category());
    return out;
  }
}

// Sends one datagram on a connected socket: at once when the socket buffer
// has room (nearly always), else after waiting for room until `deadline`.
asio::awaitable<std::error_code> send_datagram(udp::socket& sock,
                                               std::span<const std::uint8_t> wire,
                                               clock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  for (;;) {
    const ssize_t n = ::send(sock.native_handle(), wire.data(), wire.size(), MSG_DONTWAIT);
    if (n >= 0) co_return std::error_code{};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      co_return std::error_code(errno, asio::error::get_system_category());
    if (clock::now() >= deadline) co_return make_error_code(error::timed_out);
    asio::steady_timer timer(sock.get_executor(), deadline);
    // Named operands: g++ 12 destroys temporaries of a co_await expression twice.
    auto writable = sock.async_wait(udp::socket::wait_write, use_nothrow);
    auto expired = timer.async_wait(use_nothrow);
    auto race = std::move(writable) || std::move(expired);
    const auto which = co_await std::move(race);
    if (which.index() == 1) co_return make_error_code(error::timed_out);
    const auto [ec] = std::get<0>(which);
    if (ec) co_return ec;
  }
}

// --- a fresh socket per query -----------------------------------------------------

asio::awaitable<result<attempt_result>> over_fresh_udp(const udp::endpoint& server,
                                                       const message& q,
                                                       std::span<const std::uint8_t> wire,
                                                       clock::time_point deadline) {
  const auto ex = co_await asio::this_coro::executor;
  udp::socket sock(ex);
  std::error_code ec;
  sock.open(server.protocol(), ec);   // socket(2) with SOCK_CLOEXEC, epoll registration
  if (!ec) sock.connect(server, ec);  // the kernel picks a random ephemeral port
  if (ec) co_return unexpected(ec);
  net::deadline dl(ex, [&sock] {
    std::error_code ignored;
    sock.cancel(ignored);
  });
  dl.expires_at(deadline);
  const auto sent_at = clock::now();
  if (auto sec = co_await send_datagram(sock, wire, deadline)) co_return unexpected(sec);
  const auto buf = receive_buffer();
  attempt_result out;
  bool malformed = false;
  for (;;) {
    // Wait first: the answer cannot be there yet, and a receive that finds
    // nothing costs a system call. Readiness is edge-triggered, so once
    // woken we read until the queue is empty.
    auto [wec] = co_await sock.async_wait(udp::socket::wait_read, use_nothrow);
    if (wec) {
      wec = dl.map(wec);
      if (wec == net::error::timed_out) co_return unexpected(failure(malformed));
      co_return unexpected(wec);
    }
    for (;;) {
      const received d = receive_now(sock.native_handle(), buf);
      if (d.status == received::empty) break;
      if (d.status == received::failed) co_return unexpected(d.error);
      // The kernel filters a connected socket's senders; checking again costs nothing.
      if (d.truncated || d.sender != server) {
        ++out.ignored;
        continue;
      }
      const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(buf.data()),
                                                d.size);
      auto m = accept(q, bytes, malformed);
      if (!m) {
        ++out.ignored;
        continue;
      }
      out.rtt = clock::now() - sent_at;
      out.wire_size = d.size;
      out.response = std::move(*m);
      co_return out;
    }
  }
}

}  // namespace

// --- shared sockets ------------------------------------------------------------------
//
// A query on a shared socket costs no coroutine of its own, no timer and
// no allocation: it waits in an intrusive waiter (udp_try.hpp) kept in the
// frame of the coroutine that awaits it (the exchange's, or the stub
// resolver's question's), found by its ID through a flat table; the socket's
// reader resumes it directly (no trip through the scheduler) once its
// answer is decoded; and its deadline is a link in its channel's list, in
// expiry order, under ONE timer per channel that is moved only when the
// list's head moves ahead of it (and stopped when the list empties, so that
// an io_context with nothing else to do runs out of work).

namespace detail {

// Query ID -> waiter, open addressing with linear probing (IDs are random,
// so the ID is its own hash), at most half full, no tombstones.
class id_table {
 public:
  udp_waiter* find(std::uint16_t id) const noexcept {
    if (slots_.empty()) return nullptr;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = id & mask;; i = (i + 1) & mask) {
      if (!slots_[i].w) return nullptr;
      if (slots_[i].id == id) return slots_[i].w;
    }
  }
  // REQUIRES: id is not in the table.
  void insert(std::uint16_t id, udp_waiter* w) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(id, w);
    ++size_;
  }
  void erase(std::uint16_t id) noexcept {
    if (slots_.empty()) return;
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = id & mask;
    for (;; i = (i + 1) & mask) {
      if (!slots_[i].w) return;
      if (slots_[i].id == id) break;
    }
    for (std::size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
      if (!slots_[j].w) break;
      const std::size_t home = slots_[j].id & mask;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i] = {};
    --size_;
  }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  // Every waiter, emptying the table.
  std::vector<udp_waiter*> take_all() {
    std::vector<udp_waiter*> out;
    for (const slot& s : slots_)
      if (s.w) out.push_back(s.w);
    slots_.assign(slots_.size(), slot{});
    size_ = 0;
    return out;
  }

 private:
  struct slot {
    udp_waiter* w = nullptr;
    std::uint16_t id = 0;
  };
  void place(std::uint16_t id, udp_waiter* w) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = id & mask;
    while (slots_[i].w) i = (i + 1) & mask;
    slots_[i] = {w, id};
  }
  void grow() {
    std::vector<slot> old(slots_.empty() ? 16 : slots_.size() * 2);
    old.swap(slots_);
    for (const slot& s : old)
      if (s.w) place(s.id, s.w);
  }
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

struct shared_udp {
  explicit shared_udp(const asio::any_io_executor& ex) : sock(ex) {}
  udp::socket sock;
  udp::endpoint server;
  unsigned started = 0;  // queries sent on it so far
  bool reading = false;  // a readiness wait is pending
  bool broken = false;   // the socket reported an error: replace it
  id_table waiting;      // by query ID
  asio::cancellation_signal stop_reading;
};

class channel_registry;

struct udp_channel_state {
  udp_channel_state(const asio::any_io_executor& e, const udp::endpoint& s, unsigned n)
      : ex(e), server(s), per_socket(std::max(n, 1u)), timer(std::in_place, e) {}
  ~udp_channel_state();

  asio::any_io_executor ex;
  udp::endpoint server;
  unsigned per_socket = 1;
  std::shared_ptr<shared_udp> current;  // the socket new queries go out on
  std::uint64_t opened = 0;
  channel_registry* registry = nullptr;  // null once the context shut down
  bool shut_down = false;                // the channel or its context is gone: no new sockets
  bool context_gone = false;             // its execution context shut down
  // The shared sockets' waiters, in expiry order, and the one timer.
  udp_waiter* head = nullptr;
  udp_waiter* tail = nullptr;
  std::optional<asio::steady_timer> timer;
  clock::time_point armed_for = clock::time_point::max();  // what the pending wait waits for
  std::uint64_t generation = 0;                            // identifies the pending wait
  bool idle_check_posted = false;
  std::weak_ptr<udp_channel_state> self;
};

// Per execution context: the channels whose sockets, timers and waiting
// queries must be let go when the context shuts down (a socket or timer
// must not outlive its context's services, and a waiting query's
// coroutine belongs to nobody but its waiter).
class channel_registry final : public asio::execution_context::service {
 public:
  using key_type = channel_registry;
  static asio::execution_context::id id;
  explicit channel_registry(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  void add(const std::shared_ptr<udp_channel_state>& s) {
    const std::lock_guard lock(mutex_);
    channels_.emplace(s.get(), s);
  }
  void remove(udp_channel_state* s) {
    const std::lock_guard lock(mutex_);
    channels_.erase(s);
  }

 private:
  void shutdown() override;
  std::mutex mutex_;  // channels of one context may live on several of its threads
  std::unordered_map<udp_channel_state*, std::weak_ptr<udp_channel_state>> channels_;
};

asio::execution_context::id channel_registry::id;

udp_channel_state::~udp_channel_state() {
  if (registry) registry->remove(this);
}

}  // namespace detail

namespace {

using detail::shared_udp;
using detail::udp_channel_state;
using detail::udp_waiter;
using outcome = detail::udp_waiter::outcome;

void arm_timer(udp_channel_state& ch, clock::time_point t);

void link_deadline(udp_channel_state& ch, udp_waiter& w) {
  udp_waiter* after = ch.tail;
  while (after && after->deadline > w.deadline) after = after->prev;
  w.prev = after;
  w.next = after ? after->next : ch.head;
  (w.next ? w.next->prev : ch.tail) = &w;
  (after ? after->next : ch.head) = &w;
  if (w.deadline < ch.armed_for) arm_timer(ch, w.deadline);
}

// The channel's timer is waiting with no query left: stop it, so that an
// io_context with nothing else to do runs out of work.
void stop_timer_if_idle(udp_channel_state& ch) {
  if (ch.head || ch.armed_for == clock::time_point::max() || !ch.timer) return;
  ch.armed_for = clock::time_point::max();
  ++ch.generation;
  ch.timer->cancel();
}

// The same, not at once: a query resumed by the answer of the last one
// usually sends the next at once, and the timer may then keep waiting for
// the old, earlier deadline (it re-arms for the head when it fires)
// instead of being stopped and re-armed (a timerfd_settime(2) per query at
// one query in flight). The socket's reader checks after the query it
// resumed has run (finish); the other ways out check through the executor.
void stop_timer_when_idle(udp_channel_state& ch) {
  if (ch.idle_check_posted || ch.armed_for == clock::time_point::max() || !ch.timer) return;
  ch.idle_check_posted = true;
  asio::post(ch.ex, [weak = ch.self] {
    auto st = weak.lock();
    if (!st) return;
    st->idle_check_posted = false;
    stop_timer_if_idle(*st);
  });
}

// Takes `w` out of its socket's table and its channel's list. Stops the
// channel's timer (soon) when no query is left waiting, unless the caller
// checks that itself (`check_idle` false).
void unlink(udp_waiter& w, bool check_idle = true) {
  if (!w.linked) return;
  w.linked = false;
  udp_channel_state& ch = *w.channel;
  (w.prev ? w.prev->next : ch.head) = w.next;
  (w.next ? w.next->prev : ch.tail) = w.prev;
  w.prev = w.next = nullptr;
  if (check_idle && !ch.head && !ch.context_gone) stop_timer_when_idle(ch);
  shared_udp& s = *w.socket;
  s.waiting.erase(w.id);
  if (w.cancel_slot.is_connected()) w.cancel_slot.clear();
}

// The waiter's query is over: unlinks it and resumes its coroutine
// through the executor.
void finish(udp_waiter& w, outcome o) {
  unlink(w);
  w.state = o;
  w.wake.post();
}

// The same from the socket's reader, resuming the coroutine at once: it
// runs on until it waits again, usually having sent its next query, and
// only then is it known whether the channel has any query left.
void finish_inline(udp_waiter& w, outcome o) {
  // Held across the resumption, which may end the last query that kept
  // the channel's state alive.
  const std::shared_ptr<udp_channel_state> ch = w.channel->self.lock();
  unlink(w, false);
  w.state = o;
  w.wake.complete();  // may destroy w
  if (ch && !ch->context_gone) stop_timer_if_idle(*ch);
}

void stop_reader_if_idle(shared_udp& s) {
  if (s.waiting.empty() && s.reading) s.stop_reading.emit(asio::cancellation_type::all);
}

void timer_fired(udp_channel_state& ch, std::uint64_t generation) {
  if (generation != ch.generation) return;
  ch.armed_for = clock::time_point::max();
  const auto now = clock::now();
  while (ch.head && ch.head->deadline <= now) {
    udp_waiter& w = *ch.head;
    std::shared_ptr<shared_udp> s = w.socket;
    finish(w, outcome::timed_out);
    stop_reader_if_idle(*s);
  }
  if (ch.head && ch.head->deadline < ch.armed_for) arm_timer(ch, ch.head->deadline);
}

void arm_timer(udp_channel_state& ch, clock::time_point t) {
  if (!ch.timer) return;
  ch.armed_for = t;
  const std::uint64_t generation = ++ch.generation;
  ch.timer->expires_at(t);
  ch.timer->async_wait([weak = ch.self, generation](std::error_code) {
    if (auto st = weak.lock()) timer_fired(*st, generation);
  });
}

// The socket failed: every query on it gets the error.
void fail_all(shared_udp& s, std::error_code ec) {
  s.broken = true;
  for (udp_waiter* w : s.waiting.take_all()) {
    w->error = ec;
    // Already out of the table: unlink() erasing its ID again is harmless.
    finish(*w, outcome::failed);
  }
}

// Reads what is queued and hands each datagram to its query, resuming it
// on the spot. Reads at most one datagram per query that was waiting when
// the socket became readable: a query sent since (a resumed query sends
// its next one from here) cannot have its answer yet, and looking for it
// would cost a receive that finds nothing. Whatever is left (an answer
// that came meanwhile, a stray datagram) is found by the next wait, which
// reports a socket that is still readable at once.
void drain(shared_udp& s) {
  const auto buf = receive_buffer();
  for (std::size_t budget = s.waiting.size(); budget > 0 && !s.waiting.empty(); --budget) {
    const received d = receive_now(s.sock.native_handle(), buf);
    if (d.status == received::empty) return;
    if (d.status == received::failed) return fail_all(s, d.error);
    if (d.truncated || d.sender != s.server || d.size < 2) continue;
    const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(buf.data()),
                                              d.size);
    const std::uint16_t id = static_cast<std::uint16_t>(bytes[0] << 8 | bytes[1]);
    udp_waiter* w = s.waiting.find(id);
    if (!w) continue;  // no query of ours has this ID
    if (!accept_into(w->id, *w->asked, bytes, w->malformed, *w->into, w->bare)) {
      ++w->ignored;
      continue;
    }
    w->wire_size = d.size;
    if (w->timed) w->answered_at = clock::now();
    // The datagram is decoded, so the shared buffer is free for the
    // resumed query.
    finish_inline(*w, outcome::answered);
  }
}

// The socket's reader: one readiness wait at a time while queries wait.
// It is a completion handler rather than a coroutine so that the wait is
// queued before the query's datagram leaves (nothing can consume the
// readiness edge in between), without a first receive to find out.
void read_answers(const std::shared_ptr<shared_udp>& s) {
  if (s->reading || s->waiting.empty() || s->broken) return;
  s->reading = true;
  auto on_ready = [s](std::error_code ec) {
    s->reading = false;
    if (ec == asio::error::operation_aborted) {
      // Stopped because its last query left; one may have come since, and
      // the readiness of its answer may have passed while nobody waited.
      if (s->waiting.empty()) return;
      drain(*s);
    } else if (ec) {
      fail_all(*s, ec);
      return;
    } else {
      drain(*s);
    }
    if (s->reading) {
      // A query resumed by drain() sent another and started the next wait;
      // if that one was answered in the same drain, nobody is left to wait for.
      stop_reader_if_idle(*s);
      return;
    }
    read_answers(s);
  };
  s->sock.async_wait(udp::socket::wait_read,
                     asio::bind_cancellation_slot(s->stop_reading.slot(), std::move(on_ready)));
}

// Resumes a waiter's query when the parallel group (or whoever bound a
// cancellation slot) asks for it.
struct waiter_canceller {
  udp_waiter* w;
  void operator()(asio::cancellation_type type) const {
    if (type == asio::cancellation_type::none || w->state != outcome::waiting) return;
    std::shared_ptr<shared_udp> s = w->socket;
    w->cancel_slot = {};  // being invoked from it: do not clear it from inside
    finish(*w, outcome::cancelled);
    stop_reader_if_idle(*s);
  }
};

// Suspends the query until its waiter is finished.
auto wait_for(udp_waiter& w) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&w](auto handler) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
          w.cancel_slot = slot;
          slot.template emplace<waiter_canceller>(waiter_canceller{&w});
        }
        w.wake.emplace(std::move(handler));
      },
      asio::use_awaitable);
}

// The socket for the next query: the current one, or a new one (new port)
// when it has carried its queries or failed. With one query per socket,
// always a new one, kept by nobody but the query and its reader: it closes
// when the query ends.
// A new socket on a fresh port, connected to the channel's server.
result<std::shared_ptr<shared_udp>> open_socket(const udp_channel_state& ch) {
  auto s = std::make_shared<shared_udp>(ch.ex);
  std::error_code ec;
  s->sock.open(ch.server.protocol(), ec);
  if (!ec) s->sock.connect(ch.server, ec);
  if (ec) return unexpected(ec);
  s->server = ch.server;
  return s;
}

result<std::shared_ptr<shared_udp>> socket_for_query(udp_channel_state& ch) {
  if (ch.shut_down) return unexpected(asio::error::operation_aborted);
  if (ch.per_socket == 1) {
    auto s = open_socket(ch);
    if (s) (*s)->started = 1;
    return s;
  }
  if (!ch.current || ch.current->broken || ch.current->started >= ch.per_socket) {
    auto s = open_socket(ch);
    if (!s) return unexpected(s.error());
    ch.current = std::move(*s);
    ++ch.opened;
  }
  ++ch.current->started;
  return ch.current;
}

// An ID no other query in flight on `s` uses, so each answer has one taker.
std::uint16_t unused_id(const shared_udp& s) {
  for (;;) {
    const std::uint16_t id = random_id();
    if (!s.waiting.find(id)) return id;
  }
}

}  // namespace

namespace detail {

udp_waiter::~udp_waiter() {
  // The query ended another way (an exception, its frame destroyed with
  // its context): leave the tables; stop the reader if it was the last.
  if (!linked) return;
  std::shared_ptr<shared_udp> s = socket;
  unlink(*this);
  if (!channel->context_gone) stop_reader_if_idle(*s);
}

void channel_registry::shutdown() {
  std::vector<std::shared_ptr<udp_channel_state>> live;
  {
    const std::lock_guard lock(mutex_);
    for (auto& [ptr, weak] : channels_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    channels_.clear();
  }
  for (const auto& s : live) {
    s->registry = nullptr;
    s->shut_down = true;
    s->context_gone = true;
  }
  for (const auto& s : live) {
    s->current.reset();
    // Queries still waiting never get an answer: their coroutines are
    // dropped (Asio unwinds them through the executor, which is closing).
    while (udp_waiter* w = s->head) {
      std::shared_ptr<shared_udp> keep = w->socket;
      unlink(*w);
      w->state = outcome::cancelled;
      w->wake.reset();
    }
    s->armed_for = clock::time_point::max();
    s->timer.reset();  // before the timer's own service is destroyed
  }
}

}  // namespace detail

namespace {

// IDs from the CSPRNG, drawn in blocks: RAND_bytes costs thousands of
// instructions and a getpid(2) (its fork check) per call, however few
// octets it returns (on the benchmark machine about 8 ns per octet in
// calls of 512 octets, 1.3 ns in calls of 4,096), so a block serves 2,048
// queries. The block is per thread and discarded in a child after
// fork(2), so parent and child never hand out the same IDs.
struct id_pool {
  std::array<std::uint8_t, 4096> bytes{};
  std::size_t used = bytes.size();
};

thread_local id_pool ids;

void discard_ids_after_fork() {
  ids.used = ids.bytes.size();
}

asio::awaitable<result<attempt_result>> over_tcp(const udp::endpoint& server, const message& q,
                                                 std::span<const std::uint8_t> wire,
                                                 clock::time_point deadline) {
  const auto sent_at = clock::now();
  auto left = remaining(deadline);
  if (left.count() == 0) co_return unexpected(error::timed_out);
  auto sock = co_await net::connect(tcp::endpoint(server.address(), server.port()),
                                    net::connect_options{.timeout = left});
  if (!sock) {
    co_return unexpected(sock.error() == net::error::timed_out ? make_error_code(error::timed_out)
                                                               : sock.error());
  }
  tcp::socket& s = *sock;
  const auto ex = s.get_executor();
  net::deadline dl(ex, [&s] {
    std::error_code ignored;
    s.cancel(ignored);
  });
  dl.expires_at(deadline);

  std::vector<std::uint8_t> framed;
  frame_for_tcp(wire, framed);
  auto [wec, wn] = co_await asio::async_write(s, asio::buffer(framed), use_nothrow);
  if (wec) {
    wec = dl.map(wec);
    co_return unexpected(wec == net::error::timed_out ? make_error_code(error::timed_out) : wec);
  }

  tcp_framer framer;
  std::vector<std::uint8_t> buf(16384);
  attempt_result out;
  bool malformed = false;
  for (;;) {
    while (auto frame = framer.next()) {
      auto m = accept(q, *frame, malformed);
      if (!m) {
        ++out.ignored;
        continue;
      }
      out.rtt = clock::now() - sent_at;
      out.wire_size = frame->size();
      out.response = std::move(*m);
      co_return out;
    }
    // A server sends at most one 65535-octet message plus its framing for
    // our one query; more than a few of them unanswered is not a DNS server.
    if (framer.buffered() > 4 * (max_datagram + 2)) co_return unexpected(error::malformed);
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_nothrow);
    if (ec) {
      ec = dl.map(ec);
      if (ec == net::error::timed_out) co_return unexpected(failure(malformed));
      co_return unexpected(malformed ? make_error_code(error::malformed) : ec);
    }
    framer.feed({buf.data(), n});
  }
}

}  // namespace

std::uint16_t random_id() {
  if (ids.used + 2 > ids.bytes.size()) {
    // Registered once per process, before the first block is handed out.
    static const bool fork_handler =
        ::pthread_atfork(nullptr, nullptr, discard_ids_after_fork) == 0;
    (void)fork_handler;
    if (RAND_bytes(ids.bytes.data(), static_cast<int>(ids.bytes.size())) != 1) {
      // OpenSSL's generator failed (no entropy source): fall back to the
      // kernel's, through random_device, rather than to a predictable value.
      static thread_local std::random_device rd;
      return static_cast<std::uint16_t>(rd());
    }
    ids.used = 0;
  }
  const auto id = static_cast<std::uint16_t>(ids.bytes[ids.used] << 8 | ids.bytes[ids.used + 1]);
  ids.used += 2;
  return id;
}

bool matches(const message& q, const message& response) noexcept {
  return q.questions.size() == 1 && answers(q.id, q.questions[0], response);
}

namespace {

// The wire form of a query for the one question `qq`, with an OPT record
// without options when `opt` (its UDP size, version and DO bit), written
// straight into `out`; 0 when it does not fit.
struct opt_fields {
  std::uint16_t udp_size = 0;
  std::uint8_t version = 0;
  bool dnssec_ok = false;
};

std::size_t write_query(std::uint16_t id, unsigned flags, const question& qq,
                        const opt_fields* opt, std::span<std::uint8_t> out) noexcept {
  const std::string_view name = qq.qname.wire();
  if (12 + name.size() + 4 + 11 > out.size()) return 0;
  std::uint8_t* p = out.data();
  auto put16 = [&p](unsigned v) {
    *p++ = static_cast<std::uint8_t>(v >> 8);
    *p++ = static_cast<std::uint8_t>(v);
  };
  put16(id);
  put16(flags);
  put16(1);
  put16(0);
  put16(0);
  put16(opt ? 1 : 0);
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  put16(static_cast<unsigned>(qq.qtype));
  put16(static_cast<unsigned>(qq.qclass));
  if (opt) {
    *p++ = 0;  // root owner
    put16(static_cast<unsigned>(rtype::opt));
    put16(opt->udp_size);
    put16(opt->version);  // extended RCODE 0, version
    put16(opt->dnssec_ok ? 0x8000u : 0u);
    put16(0);  // no options
  }
  return static_cast<std::size_t>(p - out.data());
}

// The wire form of a plain query (one question, no records, EDNS without
// options) written straight into `out`, as encode() would write it; 0 when
// the message is not that simple (encode() then does the work). The
// question is `qq`, which is q's one question or, when q has none, the one
// it stands for (the resolver's: no message is built for it).
std::size_t encode_plain_query(const message& q, const question& qq,
                               std::span<std::uint8_t> out) noexcept {
  if (q.questions.size() > 1 || !q.answers.empty() || !q.authorities.empty() ||
      !q.additionals.empty() || static_cast<unsigned>(q.rcode) > 0xF ||
      (q.edns && !q.edns->options.empty()))
    return 0;
  const unsigned flags = (q.qr ? 0x8000u : 0u) | (static_cast<unsigned>(q.opcode) & 0xF) << 11 |
                         (q.aa ? 0x0400u : 0u) | (q.tc ? 0x0200u : 0u) | (q.rd ? 0x0100u : 0u) |
                         (q.ra ? 0x0080u : 0u) | (q.ad ? 0x0020u : 0u) | (q.cd ? 0x0010u : 0u) |
                         (static_cast<unsigned>(q.rcode) & 0xF);
  opt_fields opt;
  if (q.edns) {
    opt.udp_size = q.edns->udp_size;
    opt.version = q.edns->version;
    opt.dnssec_ok = q.edns->dnssec_ok;
  }
  return write_query(q.id, flags, qq, q.edns ? &opt : nullptr, out);
}

// The socket for a try on a shared socket, and a fresh ID for it there.
std::error_code start_shared(udp_channel_state& ch, std::uint16_t& id,
                             std::shared_ptr<shared_udp>& s) {
  auto sock = socket_for_query(ch);
  if (!sock) return sock.error();
  s = std::move(*sock);
  id = unused_id(*s);
  return {};
}

// Sends on a connected socket at once. would_block: the caller must wait
// for room (send_datagram).
std::error_code send_now(int fd, std::span<const std::uint8_t> bytes) noexcept {
  for (;;) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT);
    if (n >= 0) return {};
    if (errno == EINTR) continue;
    return std::error_code(errno, asio::error::get_system_category());
  }
}

bool would_block(std::error_code ec) noexcept {
  return ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block;
}

// What one try of an exchange reports besides the response.
struct exchange_try {
  std::size_t wire_size = 0;
  std::size_t ignored = 0;
  std::chrono::nanoseconds rtt{0};
};

std::span<std::uint8_t> small_query_buffer() {
  thread_local std::array<std::uint8_t, 512> buf;
  return buf;
}

// One try over a fresh UDP socket or over TCP; the answer goes into `response`.
asio::awaitable<std::error_code> unshared_try(const udp::endpoint& server, message& q,
                                              std::vector<std::uint8_t>& wire,
                                              clock::time_point deadline, bool use_tcp,
                                              message& response, exchange_try& t) {
  // Plain if/else, not `c ? co_await a : co_await b`: g++ 12 destroys
  // the temporaries of a co_await inside a conditional expression twice.
  result<attempt_result> r = unexpected(error::timed_out);
  q.id = random_id();
  wire.clear();
  if (!encode(q, wire)) co_return make_error_code(error::bad_query);
  if (use_tcp)
    r = co_await over_tcp(server, q, wire, deadline);
  else
    r = co_await over_fresh_udp(server, q, wire, deadline);
  if (!r) co_return r.error();
  response = std::move(r->response);
  t.wire_size = r->wire_size;
  t.rtt = r->rtt;
  t.ignored = r->ignored;
  co_return std::error_code{};
}

// The exchange of query() (see the header): UDP, then the EDNS fallback
// and TCP as the answers ask. `channel` carries the UDP attempts when its
// sockets are shared; null or one query per socket: a fresh socket each.
// A query on a channel's socket waits on a waiter in this frame, resumed
// by the socket's reader. The accepted answer is decoded straight into
// `response`, which belongs to the caller (who awaits this at once): a
// message moved costs its five containers each time. After a failure
// `response` holds whatever the last datagram left there. `plain`, when
// given (the caller's, like `response`), is the question asked, and `q` is
// then an empty message: the query is written from the question itself, a
// message with it is built only if a try needs one (a fresh socket of its
// own, TCP), and an answer on a channel's socket is decoded without its
// question section. `info`, when given, gets the rest of the outcome (its
// `response` is `response`, its `server` is left to the caller).
asio::awaitable<std::error_code> exchange(udp::endpoint server,
                                          std::shared_ptr<udp_channel_state> channel, message q,
                                          const question* plain, query_options options,
                                          message& response, exchange_result* info) {
  if (!plain && q.questions.size() != 1) co_return make_error_code(error::bad_query);
  const auto deadline = clock::now() + options.timeout;
  q.rd = options.recursion_desired;
  if (options.edns_udp_size > 0) {
    if (!q.edns) q.edns.emplace();
    q.edns->udp_size = std::max<std::uint16_t>(options.edns_udp_size, 512);
    q.edns->dnssec_ok = options.dnssec_ok;
  } else {
    q.edns.reset();
  }
  // Through a channel, UDP tries wait on its sockets' readers (a socket of
  // their own with queries_per_socket 1); without one, on a fresh socket
  // of their own coroutine.
  const bool shared = channel != nullptr;
  const bool bare = plain != nullptr;

  bool use_tcp = options.tcp_only;
  bool edns_fallback = false;
  bool truncated_udp = false;
  std::size_t ignored = 0;
  std::vector<std::uint8_t> wire;
  exchange_try t;
  for (int round = 0; round < 3; ++round) {  // UDP, EDNS fallback, TCP at most
    t = {};
    if (!use_tcp && shared) {
      std::shared_ptr<shared_udp> s;
      if (auto ec = start_shared(*channel, q.id, s)) co_return ec;
      const question& asked = plain ? *plain : q.questions[0];
      // Encoded into a per-thread buffer and sent before this coroutine
      // waits (copied into `wire` first when it must wait to send).
      std::span<const std::uint8_t> bytes;
      if (const std::size_t n = encode_plain_query(q, asked, small_query_buffer())) {
        bytes = {small_query_buffer().data(), n};
      } else {
        if (plain) q.questions.push_back(*plain);  // too long for the buffer
        plain = nullptr;
        wire.clear();
        if (!encode(q, wire)) co_return make_error_code(error::bad_query);
        bytes = wire;
      }
      udp_waiter w(*channel, s, q.id, asked, deadline);
      w.into = &response;
      w.bare = bare;
      s->waiting.insert(q.id, &w);
      w.linked = true;
      link_deadline(*channel, w);
      read_answers(s);  // before sending: the answer's readiness must find the wait
      // The round trip is measured only for a caller that is told it.
      w.timed = info != nullptr;
      clock::time_point sent_at{};
      if (w.timed) sent_at = clock::now();
      std::error_code sec = send_now(s->sock.native_handle(), bytes);
      if (would_block(sec)) {
        if (bytes.data() != wire.data()) wire.assign(bytes.begin(), bytes.end());
        sec = co_await send_datagram(s->sock, wire, deadline);
      }
      if (sec) co_return sec;
      if (w.state == outcome::waiting) co_await wait_for(w);
      switch (w.state) {
        case outcome::answered:
          t.wire_size = w.wire_size;
          t.rtt = w.answered_at - sent_at;
          t.ignored = w.ignored;
          break;
        case outcome::failed: co_return w.error;
        case outcome::cancelled: co_return make_error_code(asio::error::operation_aborted);
        default: co_return failure(w.malformed);  // the deadline passed
      }
    } else {
      if (plain) q.questions.push_back(*plain);  // these tries need the whole message
      plain = nullptr;
      // A coroutine of its own: its locals stay out of this frame.
      if (auto ec = co_await unshared_try(server, q, wire, deadline, use_tcp, response, t))
        co_return ec;
    }
    ignored += t.ignored;
    const message& m = response;
    if (q.edns && !m.edns && m.rcode == rcode::formerr && !edns_fallback) {
      q.edns.reset();  // RFC 6891 §7: a server without EDNS; ask again plainly
      edns_fallback = true;
      continue;
    }
    if (!use_tcp && m.tc && options.tcp_fallback) {
      truncated_udp = true;
      use_tcp = true;
      continue;
    }
    if (info) {
      info->rtt = t.rtt;
      info->used_tcp = use_tcp;
      info->truncated_udp = truncated_udp;
      info->edns_fallback = edns_fallback;
      info->wire_size = t.wire_size;
      info->ignored_datagrams = ignored;
    }
    co_return std::error_code{};
  }
  co_return make_error_code(error::malformed);  // a server that keeps answering FORMERR then TC
}

// exchange() for query()'s callers: the response and the rest in one result.
asio::awaitable<result<exchange_result>> owned_exchange(udp::endpoint server,
                                                        std::shared_ptr<udp_channel_state> channel,
                                                        message q, query_options options) {
  result<exchange_result> ret;  // built in place and returned as is
  exchange_result& out = *ret;
  const std::error_code ec = co_await exchange(server, std::move(channel), std::move(q), nullptr,
                                               options, out.response, &out);
  if (ec) co_return unexpected(ec);
  out.server = server;
  co_return std::move(ret);
}

message one_question(const question& q) {
  message m;
  m.questions.push_back(q);
  return m;
}

}  // namespace

// Plain functions, not coroutines: each returns the one exchange coroutine
// with its arguments copied in.
asio::awaitable<result<exchange_result>> query(const udp::endpoint& server, message q,
                                               query_options options) {
  return owned_exchange(server, nullptr, std::move(q), options);
}

asio::awaitable<result<exchange_result>> query(const udp::endpoint& server, const question& q,
                                               query_options options) {
  return owned_exchange(server, nullptr, one_question(q), options);
}

namespace detail {

asio::awaitable<std::error_code> query_into(udp_channel& channel, const question& q,
                                            const query_options& options, message& response) {
  return exchange(channel.state_->server, channel.state_, message(), &q, options, response,
                  nullptr);
}

udp_channel_state& state_of(udp_channel& channel) noexcept {
  return *channel.state_;
}

// The first round of exchange() for the resolver, its waiter in the
// caller's frame (see udp_try.hpp).
std::error_code start_try(udp_channel& channel, const question& q, const query_options& options,
                          message& response, udp_try& t) {
  udp_channel_state& ch = state_of(channel);
  t.deadline = clock::now() + options.timeout;
  if (options.tcp_only) {
    t.slow = true;  // no UDP try: query_into() does it all
    return {};
  }
  std::uint16_t id = 0;
  std::shared_ptr<shared_udp> s;
  if (auto ec = start_shared(ch, id, s)) return ec;
  opt_fields opt;
  opt.udp_size = std::max<std::uint16_t>(options.edns_udp_size, 512);
  opt.dnssec_ok = options.dnssec_ok;
  const unsigned flags = options.recursion_desired ? 0x0100u : 0u;
  const std::size_t n = write_query(id, flags, q, options.edns_udp_size > 0 ? &opt : nullptr,
                                    small_query_buffer());
  if (n == 0) return make_error_code(error::bad_query);  // a name is at most 255 octets: never
  shared_udp& sock = *s;
  udp_waiter& w = t.waiter.emplace(ch, std::move(s), id, q, t.deadline);
  w.into = &response;
  w.bare = true;
  w.timed = false;
  sock.waiting.insert(id, &w);
  w.linked = true;
  link_deadline(ch, w);
  read_answers(w.socket);  // before sending: the answer's readiness must find the wait
  const std::error_code sec = send_now(sock.sock.native_handle(), {small_query_buffer().data(), n});
  if (!sec) return {};
  t.waiter.reset();  // not sent: nothing waits (the waiter leaves its tables)
  if (!would_block(sec)) return sec;
  t.slow = true;  // query_into() waits for room
  return {};
}

asio::awaitable<void> wait_try(udp_try& t) {
  return wait_for(*t.waiter);
}

std::error_code end_try(udp_try& t, const query_options& options, const message& response,
                        bool& more, query_options& next) {
  more = false;
  if (!t.slow) {
    const udp_waiter& w = *t.waiter;
    switch (w.state) {
      case outcome::answered: break;
      case outcome::failed: return w.error;
      case outcome::cancelled: return make_error_code(asio::error::operation_aborted);
      default: return failure(w.malformed);  // the deadline passed
    }
  }
  next = options;
  if (!t.slow) {
    // As exchange()'s first round decides.
    if (options.edns_udp_size > 0 && !response.edns && response.rcode == rcode::formerr) {
      next.edns_udp_size = 0;  // RFC 6891 §7: a server without EDNS; ask again plainly
    } else if (response.tc && options.tcp_fallback) {
      next.tcp_only = true;
    } else {
      return {};
    }
  }
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(t.deadline - clock::now());
  if (left.count() <= 0) return make_error_code(error::timed_out);
  next.timeout = left;
  more = true;
  return {};
}

}  // namespace detail

udp_channel::udp_channel(const asio::any_io_executor& ex, const udp::endpoint& server,
                         unsigned queries_per_socket)
    : state_(std::make_shared<udp_channel_state>(ex, server, queries_per_socket)) {
  state_->self = state_;
  auto& registry = asio::use_service<detail::channel_registry>(
      asio::query(ex, asio::execution::context_as<asio::execution_context&>));
  registry.add(state_);
  state_->registry = &registry;
}

udp_channel::~udp_channel() {
  // Queries in flight keep their socket (and the state) until they end.
  state_->shut_down = true;
  state_->current.reset();
}

const udp::endpoint& udp_channel::server() const noexcept {
  return state_->server;
}

unsigned udp_channel::queries_per_socket() const noexcept {
  return state_->per_socket;
}

std::uint64_t udp_channel::sockets_opened() const noexcept {
  return state_->opened;
}

asio::awaitable<result<exchange_result>> query(udp_channel& channel, message q,
                                               query_options options) {
  // The state is held for the whole exchange: the channel may be destroyed meanwhile.
  return owned_exchange(channel.state_->server, channel.state_, std::move(q),
                        options);
}

asio::awaitable<result<exchange_result>> query(udp_channel& channel, const question& q,
                                               query_options options) {
  return query(channel, one_question(q), options);
}

}  // namespace trellis::dns
