#include "trellis/dns/transport.hpp"

#include <openssl/rand.h>
#include <pthread.h>
#include <sys/socket.h>

#include <array>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/error.hpp"

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
    sockaddr_storage from{};
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

namespace detail {

// A query waiting for its answer on a shared socket. It lives in the
// query's coroutine frame; the socket's table points at it while it waits.
struct udp_waiter {
  udp_waiter(const asio::any_io_executor& ex, clock::time_point deadline) : wake(ex, deadline) {}
  const message* query = nullptr;
  // Expires at the query's deadline; cancelled by the reader when the
  // answer (or the socket's error) is in.
  asio::steady_timer wake;
  bool done = false;
  std::error_code error;
  message response;
  std::size_t wire_size = 0;
  clock::time_point answered_at{};
  std::size_t ignored = 0;
  bool malformed = false;
};

struct shared_udp {
  explicit shared_udp(const asio::any_io_executor& ex) : sock(ex) {}
  udp::socket sock;
  udp::endpoint server;
  unsigned started = 0;  // queries sent on it so far
  bool reading = false;  // a readiness wait is pending
  bool broken = false;   // the socket reported an error: replace it
  std::unordered_map<std::uint16_t, udp_waiter*> waiting;  // by query ID
  asio::cancellation_signal stop_reading;
};

class channel_registry;

struct udp_channel_state {
  asio::any_io_executor ex;
  udp::endpoint server;
  unsigned per_socket = 1;
  std::shared_ptr<shared_udp> current;  // the socket new queries go out on
  std::uint64_t opened = 0;
  channel_registry* registry = nullptr;  // null once unregistered or shut down
  bool shut_down = false;
};

// Per execution context: the channels whose idle sockets must be closed
// when the context shuts down (a socket must not outlive its context's
// services, and a channel may outlive the context inside its owner).
class channel_registry final : public asio::execution_context::service {
 public:
  using key_type = channel_registry;
  static asio::execution_context::id id;
  explicit channel_registry(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  void add(udp_channel_state* s) {
    const std::lock_guard lock(mutex_);
    channels_.insert(s);
  }
  void remove(udp_channel_state* s) {
    const std::lock_guard lock(mutex_);
    channels_.erase(s);
  }

 private:
  void shutdown() override {
    const std::lock_guard lock(mutex_);
    for (udp_channel_state* s : channels_) {
      s->current.reset();
      s->registry = nullptr;
      s->shut_down = true;
    }
    channels_.clear();
  }
  std::mutex mutex_;  // channels of one context may live on several of its threads
  std::unordered_set<udp_channel_state*> channels_;
};

asio::execution_context::id channel_registry::id;

}  // namespace detail

namespace {

using detail::shared_udp;
using detail::udp_channel_state;
using detail::udp_waiter;

void finish(udp_waiter& w) {
  w.done = true;
  w.wake.cancel();
}

// The socket failed: every query on it gets the error.
void fail_all(shared_udp& s, std::error_code ec) {
  s.broken = true;
  for (auto& [id, w] : s.waiting) {
    w->error = ec;
    finish(*w);
  }
  s.waiting.clear();
}

// Reads what is queued and hands each datagram to its query. Stops early
// when no query is left (leftovers are read, and ignored, by the next wake:
// each new datagram signals readiness again).
void drain(shared_udp& s) {
  const auto buf = receive_buffer();
  while (!s.waiting.empty()) {
    const received d = receive_now(s.sock.native_handle(), buf);
    if (d.status == received::empty) return;
    if (d.status == received::failed) return fail_all(s, d.error);
    if (d.truncated || d.sender != s.server || d.size < 2) continue;
    const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(buf.data()),
                                              d.size);
    const std::uint16_t id = static_cast<std::uint16_t>(bytes[0] << 8 | bytes[1]);
    const auto it = s.waiting.find(id);
    if (it == s.waiting.end()) continue;  // no query of ours has this ID
    udp_waiter& w = *it->second;
    auto m = accept(*w.query, bytes, w.malformed);
    if (!m) {
      ++w.ignored;
      continue;
    }
    w.response = std::move(*m);
    w.wire_size = d.size;
    w.answered_at = clock::now();
    s.waiting.erase(it);
    finish(w);
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
    read_answers(s);
  };
  s->sock.async_wait(udp::socket::wait_read,
                     asio::bind_cancellation_slot(s->stop_reading.slot(), std::move(on_ready)));
}

// Takes the waiter out of its socket's table however the query ends, and
// stops the reader when it was the last one.
struct waiter_registration {
  std::shared_ptr<shared_udp> socket;
  udp_waiter* waiter = nullptr;
  ~waiter_registration() {
    if (!waiter || waiter->done) return;
    const auto it = socket->waiting.find(waiter->query->id);
    if (it != socket->waiting.end() && it->second == waiter) socket->waiting.erase(it);
    if (socket->waiting.empty() && socket->reading)
      socket->stop_reading.emit(asio::cancellation_type::all);
  }
};

// The socket for the next query: the current one, or a new one (new port)
// when it has carried its queries or failed.
result<std::shared_ptr<shared_udp>> socket_for_query(udp_channel_state& ch) {
  if (ch.shut_down) return unexpected(asio::error::operation_aborted);
  if (!ch.current || ch.current->broken || ch.current->started >= ch.per_socket) {
    auto s = std::make_shared<shared_udp>(ch.ex);
    std::error_code ec;
    s->sock.open(ch.server.protocol(), ec);
    if (!ec) s->sock.connect(ch.server, ec);
    if (ec) return unexpected(ec);
    s->server = ch.server;
    ch.current = std::move(s);
    ++ch.opened;
  }
  ++ch.current->started;
  return ch.current;
}

// An ID no other query in flight on `s` uses, so each answer has one taker.
std::uint16_t unused_id(const shared_udp& s) {
  for (;;) {
    const std::uint16_t id = random_id();
    if (!s.waiting.contains(id)) return id;
  }
}

asio::awaitable<result<attempt_result>> over_shared_udp(udp_channel_state& ch, message& q,
                                                        clock::time_point deadline) {
  auto sock = socket_for_query(ch);
  if (!sock) co_return unexpected(sock.error());
  std::shared_ptr<shared_udp> s = std::move(*sock);
  q.id = unused_id(*s);
  std::vector<std::uint8_t> wire;
  if (!encode(q, wire)) co_return unexpected(error::bad_query);
  udp_waiter w(ch.ex, deadline);
  w.query = &q;
  s->waiting.emplace(q.id, &w);
  waiter_registration reg{s, &w};
  read_answers(s);  // before sending: the answer's readiness must find the wait
  const auto sent_at = clock::now();
  if (auto sec = co_await send_datagram(s->sock, wire, deadline)) co_return unexpected(sec);
  while (!w.done) {
    auto [ec] = co_await w.wake.async_wait(use_nothrow);
    if (!ec && !w.done) co_return unexpected(failure(w.malformed));  // the deadline passed
  }
  if (w.error) co_return unexpected(w.error);
  attempt_result out;
  out.response = std::move(w.response);
  out.wire_size = w.wire_size;
  out.rtt = w.answered_at - sent_at;
  out.ignored = w.ignored;
  co_return out;
}

// IDs from the CSPRNG, drawn in blocks: RAND_bytes costs thousands of
// instructions and a getpid(2) (its fork check) per call, however few
// octets it returns. The block is per thread and discarded in a child
// after fork(2), so parent and child never hand out the same IDs.
struct id_pool {
  std::array<std::uint8_t, 512> bytes{};
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
  static std::once_flag fork_handler;
  std::call_once(fork_handler, [] { ::pthread_atfork(nullptr, nullptr, discard_ids_after_fork); });
  if (ids.used + 2 > ids.bytes.size()) {
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
  return response.qr && response.id == q.id && response.questions.size() == 1 &&
         q.questions.size() == 1 && response.questions[0] == q.questions[0];
}

namespace {

// The exchange of query() (see the header): UDP, then the EDNS fallback
// and TCP as the answers ask. `channel` carries the UDP attempts when its
// sockets are shared; null or one query per socket: a fresh socket each.
asio::awaitable<result<exchange_result>> exchange(const udp::endpoint& server,
                                                  udp_channel_state* channel, message q,
                                                  query_options options) {
  if (q.questions.size() != 1) co_return unexpected(error::bad_query);
  const auto deadline = clock::now() + options.timeout;
  q.rd = options.recursion_desired;
  if (options.edns_udp_size > 0) {
    if (!q.edns) q.edns.emplace();
    q.edns->udp_size = std::max<std::uint16_t>(options.edns_udp_size, 512);
    q.edns->dnssec_ok = options.dnssec_ok;
  } else {
    q.edns.reset();
  }
  const bool shared = channel && channel->per_socket > 1;

  exchange_result out;
  out.server = server;
  bool use_tcp = options.tcp_only;
  std::vector<std::uint8_t> wire;
  for (int round = 0; round < 3; ++round) {  // UDP, EDNS fallback, TCP at most
    // Plain if/else, not `c ? co_await a : co_await b`: g++ 12 destroys
    // the temporaries of a co_await inside a conditional expression twice.
    result<attempt_result> r = unexpected(error::timed_out);
    if (!use_tcp && shared) {
      r = co_await over_shared_udp(*channel, q, deadline);  // picks the ID, encodes
    } else {
      q.id = random_id();
      wire.clear();
      if (!encode(q, wire)) co_return unexpected(error::bad_query);
      if (use_tcp)
        r = co_await over_tcp(server, q, wire, deadline);
      else
        r = co_await over_fresh_udp(server, q, wire, deadline);
    }
    if (!r) co_return unexpected(r.error());
    out.ignored_datagrams += r->ignored;
    message& m = r->response;
    if (q.edns && !m.edns && m.rcode == rcode::formerr && !out.edns_fallback) {
      q.edns.reset();  // RFC 6891 §7: a server without EDNS; ask again plainly
      out.edns_fallback = true;
      continue;
    }
    if (!use_tcp && m.tc && options.tcp_fallback) {
      out.truncated_udp = true;
      use_tcp = true;
      continue;
    }
    out.used_tcp = use_tcp;
    out.rtt = r->rtt;
    out.wire_size = r->wire_size;
    out.response = std::move(m);
    co_return out;
  }
  co_return unexpected(error::malformed);  // a server that keeps answering FORMERR then TC
}

}  // namespace

asio::awaitable<result<exchange_result>> query(const udp::endpoint& server, message q,
                                               query_options options) {
  co_return co_await exchange(server, nullptr, std::move(q), options);
}

asio::awaitable<result<exchange_result>> query(const udp::endpoint& server, const question& q,
                                               query_options options) {
  message m;
  m.questions.push_back(q);
  co_return co_await exchange(server, nullptr, std::move(m), options);
}

udp_channel::udp_channel(const asio::any_io_executor& ex, const udp::endpoint& server,
                         unsigned queries_per_socket)
    : state_(std::make_shared<udp_channel_state>()) {
  state_->ex = ex;
  state_->server = server;
  state_->per_socket = std::max(queries_per_socket, 1u);
  auto& registry = asio::use_service<detail::channel_registry>(
      asio::query(ex, asio::execution::context_as<asio::execution_context&>));
  registry.add(state_.get());
  state_->registry = &registry;
}

udp_channel::~udp_channel() {
  // Queries in flight keep their socket (and the state) until they end.
  if (state_->registry) state_->registry->remove(state_.get());
  state_->registry = nullptr;
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
  // Held for the whole exchange: the channel may be destroyed meanwhile.
  const std::shared_ptr<udp_channel_state> st = channel.state_;
  co_return co_await exchange(st->server, st.get(), std::move(q), options);
}

asio::awaitable<result<exchange_result>> query(udp_channel& channel, const question& q,
                                               query_options options) {
  message m;
  m.questions.push_back(q);
  co_return co_await query(channel, std::move(m), options);
}

}  // namespace trellis::dns
