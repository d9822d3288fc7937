#include "trellis/http/server.hpp"

#include <asio/bind_allocator.hpp>
#include <asio/co_spawn.hpp>
#include <asio/ssl/error.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/date.hpp"
#include "trellis/codec/http/error.hpp"
#include "trellis/codec/http/serializer.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/buffer.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/error.hpp"
#include "trellis/net/readiness.hpp"
#include "trellis/net/tls.hpp"

namespace trellis::http {
namespace {

using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

// Bytes asked of the kernel per read. 16 KiB holds a typical head many
// times over and a pipelined burst of small requests.
constexpr std::size_t read_chunk = 16 * 1024;
// Responses are written out once this much is batched, pipelined or not.
constexpr std::size_t flush_threshold = 64 * 1024;
// A pooled response buffer larger than this is freed rather than kept.
constexpr std::size_t max_pooled_out = 256 * 1024;
// A plain-TCP connection idle for this long gives up its coroutine and
// waits for its next request as a bare completion handler: ~1 KiB less
// per idle connection, for the price of starting a coroutine again (about
// a microsecond) when the next request comes. Keep-alive traffic whose
// requests follow each other more closely never pays it.
constexpr std::chrono::milliseconds park_after{100};

// Whether a field may travel in a trailer section: not the ones that frame
// or route the message (RFC 9110 §6.5.1), which a recipient must already
// have acted on when the trailer arrives.
bool allowed_in_trailer(std::string_view name) {
  for (std::string_view banned :
       {"Content-Length", "Transfer-Encoding", "Host", "Connection", "Trailer", "Content-Type",
        "Content-Encoding", "Content-Range", "TE", "Upgrade", "Keep-Alive"})
    if (codec::iequals(name, banned)) return false;
  return true;
}
// Spare resource sets a worker keeps (each ~20 KiB with its read buffer):
// enough for the connections that are busy at the same moment on one core.
constexpr std::size_t max_pooled_resources = 64;

// The Date field value, formatted once per second per thread.
std::string_view http_date_now() {
  thread_local std::int64_t cached_second = -1;
  thread_local char text[http_date_size];
  const auto now = std::chrono::system_clock::now();
  const auto second =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (second != cached_second) {
    format_http_date(now, std::span<char, http_date_size>(text));
    cached_second = second;
  }
  return {text, http_date_size};
}

std::string to_string(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// What a connection holds while it has a request in progress. Pooled per
// worker: an idle connection gives its set back.
struct resources {
  explicit resources(const server_options& o)
      : in(o.limits.max_header_bytes + read_chunk), spill(4 * read_chunk), parser(o.limits) {}

  void reset() noexcept {
    in.clear();
    spill.clear();
    parser.reset();
    out.clear();
    res.clear();
  }

  core::byte_buffer in;     // bytes read and not yet consumed; heads are parsed in place
  core::byte_buffer spill;  // body bytes read while a handler holds views into `in`
  request_parser parser;
  std::string out;  // responses not yet written
  request req;
  response res;
};

class connection_base {
 public:
  virtual void drain() = 0;  // close now if idle; otherwise after the current request

  // The worker's open connections: an intrusive list, no node to allocate.
  connection_base* prev = nullptr;
  connection_base* next = nullptr;

 protected:
  ~connection_base() = default;
};

// Allocates with operator new, at the size asked. For the idle wait, which
// lasts as long as the connection is idle: Asio's per-thread recycling
// would hand it the block freed last, typically the accept operation's,
// about twice the size.
template <class T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() = default;
  template <class U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
  template <class U>
  bool operator==(const exact_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace

// Per-worker state: touched only on that worker's thread (metric instances
// are this worker's own; the registry merges them on exposition).
struct server::worker_state {
  worker_state(server& s, core::worker& w) : srv(s), wk(w), on_request(s.handler_) {
    auto& m = *s.metrics_;
    static constexpr const char* classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 0; i < 5; ++i)
      responses[i] =
          &m.add_counter("trellis_http_responses_total", "HTTP responses sent, by status class",
                         {{"class", classes[i]}});
    received = &m.add_counter("trellis_http_received_bytes_total", "Bytes read from HTTP clients");
    sent = &m.add_counter("trellis_http_sent_bytes_total", "Bytes written to HTTP clients");
    active = &m.add_gauge("trellis_http_connections", "Open HTTP connections");
    latency = &m.add_histogram("trellis_http_request_duration_seconds",
                               "Time from a complete request head to its response being queued", {},
                               {.scale = 1e-9});
    hook = w.on_drain([this] {
      draining = true;
      // Copy: a connection may leave the list while being told to drain.
      std::vector<connection_base*> all;
      for (connection_base* c = connections; c; c = c->next) all.push_back(c);
      for (auto* c : all) c->drain();
    });
  }

  std::unique_ptr<resources> acquire() {
    if (pool.empty()) return std::make_unique<resources>(srv.options_);
    auto r = std::move(pool.back());
    pool.pop_back();
    return r;
  }
  // Takes back a connection's set. The pool keeps the buffers' storage so
  // that the next request allocates nothing; it keeps at most
  // max_pooled_resources sets, so a burst of busy connections does not pin
  // its peak memory for ever.
  void release(std::unique_ptr<resources> r) {
    if (pool.size() >= max_pooled_resources) return;  // freed here
    r->reset();
    if (r->out.capacity() > max_pooled_out) std::string().swap(r->out);
    pool.push_back(std::move(r));
  }

  server& srv;
  core::worker& wk;
  const handler& on_request;
  std::vector<std::unique_ptr<resources>> pool;
  connection_base* connections = nullptr;  // the first open connection
  bool draining = false;
  core::counter* responses[5] = {};
  core::counter* received = nullptr;
  core::counter* sent = nullptr;
  core::gauge* active = nullptr;
  core::histogram* latency = nullptr;
  core::drain_hook hook;
};

namespace {

// A TLS connection reads through OpenSSL and Asio's waits.
struct no_readiness {
  no_readiness(const asio::any_io_executor&, int) noexcept {}
  void cancel() noexcept {}
  void reset() noexcept {}
};

// One HTTP/1.1 connection over Stream (tcp::socket or tls::stream).
template <class Stream>
class connection final : public body_source, public body_writer, public connection_base {
  static constexpr bool is_tls = !std::is_same_v<Stream, tcp::socket>;

 public:
  connection(Stream s, server::worker_state& ws, tcp::endpoint remote, net::tcp_listener::seat seat)
      : stream_(std::move(s)),
        ws_(ws),
        opt_(ws.srv.options()),
        remote_(std::move(remote)),
        seat_(std::move(seat)),
        dl_(stream_.get_executor(), [this] { on_deadline(); }),
        ready_(stream_.get_executor(), socket().native_handle()) {
    std::error_code ignored;
    socket().non_blocking(true, ignored);
    next = ws_.connections;
    if (next) next->prev = this;
    ws_.connections = this;
    ws_.active->add(1);
  }

  ~connection() {
    if (r_) ws_.release(std::move(r_));
    (prev ? prev->next : ws_.connections) = next;
    if (next) next->prev = prev;
    ws_.active->sub(1);
  }

  // Serves a new connection until it closes. A TLS connection runs one
  // coroutine for its whole life; a plain one waits for its first request
  // parked (see park()).
  static void start(std::unique_ptr<connection> self) {
    if constexpr (is_tls) {
      spawn(std::move(self));
    } else {
      const auto idle = self->opt_.idle_timeout;
      park(std::move(self), idle);
    }
  }

  void drain() override {
    if (phase_ == phase::idle || phase_ == phase::lingering) cancel_io();
  }

 private:
  // Parked keep-alive (plain TCP): waits up to `idle` for readability
  // holding no buffer and no coroutine, only this object and the pending
  // wait, whose handler owns it; the request loop starts again when bytes
  // arrive. A wait that ends in error (idle timeout, drain, the peer went
  // away) closes the connection.
  static void park(std::unique_ptr<connection> self, std::chrono::milliseconds idle) {
    connection& c = *self;
    if (c.ws_.draining) return;  // closed here
    c.phase_ = phase::idle;
    c.dl_.expires_after(idle);
    c.ready_.async_wait(asio::bind_allocator(exact_allocator<void>(),
                                             [self = std::move(self)](std::error_code ec) mutable {
                                               if (!ec) spawn(std::move(self));
                                             }));
  }

  // Runs the request loop as a coroutine that owns the connection; its
  // exception, if any, is logged.
  static void spawn(std::unique_ptr<connection> self) {
    connection& c = *self;
    asio::co_spawn(c.stream_.get_executor(), c.run(std::move(self)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        core::log::error("connection failed", {{"error", x.what()}});
      } catch (...) {
        core::log::error("connection failed", {{"error", "unknown exception"}});
      }
    });
  }

  // Serves requests until the connection closes or (plain TCP) has been
  // idle for park_after, when it hands itself to park(). The connection
  // and its request loop live in one coroutine frame plus one object: the
  // common keep-alive request costs no frame beyond the handler's (waits
  // are awaited here directly, reads and writes are tried synchronously
  // first, and only the rare paths call helpers).
  // REQUIRES: self.get() == this.
  asio::awaitable<void> run(std::unique_ptr<connection> self) {
    if constexpr (is_tls) {
      dl_.expires_after(opt_.header_timeout);
      phase_ = phase::head;
      if (auto ec = co_await net::tls::server_handshake(stream_)) {
        core::log::debug("tls handshake failed",
                         {{"remote", to_string(remote_)}, {"error", dl_.map(ec).message()}});
        co_return;
      }
    }
    // Plain TCP starts (from park()) with the socket readable; TLS reads at once.
    bool readable = true;
    bool need_read = true;
    bool head_unarmed = false;  // a head started, its deadline not yet set
    for (;;) {
      if (!r_) {
        if (ws_.draining) break;
        if constexpr (is_tls) {
          phase_ = phase::idle;
          dl_.expires_after(opt_.idle_timeout);
        } else if (!readable) {
          // Idle keep-alive: wait for readability holding no buffer; after
          // park_after, on_deadline() makes the wait end and the connection
          // parks without its coroutine.
          const bool may_park = opt_.idle_timeout > park_after;
          phase_ = may_park ? phase::lingering : phase::idle;
          dl_.expires_after(may_park ? park_after : opt_.idle_timeout);
          auto [ec] = co_await ready_.async_wait(use_nothrow);
          if (std::exchange(park_, false) && ec) {
            park(std::move(self), opt_.idle_timeout - park_after);
            co_return;
          }
          if (ec) break;  // idle timeout, drain, or the peer went away
        }
        readable = false;
        r_ = ws_.acquire();
        need_read = true;
      }
      if (need_read) {
        if (r_->in.empty() && is_tls) {
          phase_ = phase::idle;
          dl_.expires_after(opt_.idle_timeout);
        }
        const bool had_bytes = !r_->in.empty();
        if (had_bytes && phase_ != phase::head) {
          phase_ = phase::head;  // this head's first bytes came with the previous request
          dl_.expires_after(opt_.header_timeout);
        }
        std::error_code ec;
        if constexpr (!is_tls) {
          ec = try_read(r_->in);
          if (ec == asio::error::would_block && !had_bytes) {
            ws_.release(std::move(r_));  // readable, yet nothing there: idle again
            continue;
          }
        }
        if (is_tls || ec == asio::error::would_block) ec = co_await read_more(r_->in);
        if (ec) {
          if (had_bytes && timed_out_phase_ == phase::head && ec == net::error::timed_out) {
            co_await send_error(408, ec);  // slowloris: the head never completed
          } else if (had_bytes && ec != net::error::timed_out) {
            core::log::debug("client closed mid-request",
                             {{"remote", to_string(remote_)}, {"error", ec.message()}});
          }
          break;
        }
        need_read = false;
        if (!had_bytes) {
          // First bytes of a request: the head must now complete in time.
          // Usually it is all there, and the handler's deadline comes next;
          // the header deadline is armed only when more must be read.
          phase_ = phase::head;
          head_unarmed = true;
        }
      }

      const parse_status st = r_->parser.parse_head(r_->in.view());
      if (st == parse_status::need_more) {
        if (std::exchange(head_unarmed, false)) dl_.expires_after(opt_.header_timeout);
        // Never wait for input with answers still queued.
        if (pending_ > 0 && !co_await flush_now()) break;
        if (r_->in.empty() && !is_tls) {
          ws_.release(std::move(r_));  // idle again: hold nothing while waiting
          continue;
        }
        need_read = true;
        continue;
      }
      if (st == parse_status::error) {
        co_await send_error(status_for(r_->parser.error()), r_->parser.error());
        break;
      }

      head_unarmed = false;
      start_request();
      if (r_->parser.head().expect_unsupported) {
        r_->res.status = 417;  // an expectation we cannot meet (RFC 9110 §10.1.1)
        r_->res.set_text("unsupported expectation\n");
      } else {
        phase_ = phase::handler;
        dl_.expires_after(opt_.request_timeout);
        try {
          co_await ws_.on_request(r_->req, r_->res);
        } catch (const std::exception& e) {
          core::log::error("handler failed", {{"remote", to_string(remote_)},
                                              {"target", r_->parser.head().target},
                                              {"error", e.what()}});
          r_->res.clear();
          r_->res.status = 500;
          r_->res.set_text("internal server error\n");
        }
        if (broken_) break;  // request_timeout passed and the socket is closed
      }
      if (r_->res.upgrade) {
        if (may_take_over()) {
          co_await take_over();
          break;
        }
        r_->res.upgrade = nullptr;
      }
      if (!body_finished_ || r_->res.stream) {
        if (!co_await finish_slow()) break;
      } else {
        queue_response();
      }
      end_request();
      if (close_) break;
      if (pending_ >= opt_.max_pipelined || r_->out.size() >= flush_threshold) {
        if (!co_await flush_now()) break;
      }
    }
    co_await flush();
    if constexpr (is_tls) {
      if (!broken_) {
        dl_.expires_after(std::chrono::seconds(1));
        (void)co_await net::tls::shutdown(stream_);
      }
    }
    std::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    close_socket();
  }

  // lingering: plain TCP, idle in run() for at most park_after.
  enum class phase : std::uint8_t { idle, lingering, head, body, handler, write };

  tcp::socket& socket() {
    if constexpr (is_tls)
      return stream_.next_layer();
    else
      return stream_;
  }

  // Pending reads and waits complete as aborted.
  void cancel_io() {
    std::error_code ignored;
    socket().cancel(ignored);
    ready_.cancel();
  }

  void close_socket() {
    ready_.reset();  // leaves the epoll set while the descriptor is still ours
    std::error_code ignored;
    socket().close(ignored);
  }

  void on_deadline() {
    if (phase_ == phase::lingering) {
      park_ = true;  // idle for park_after: run() parks the connection
      phase_ = phase::idle;
      cancel_io();
      return;
    }
    timed_out_phase_ = phase_;
    if (phase_ == phase::handler || phase_ == phase::write) {
      // The handler overran, or the client stopped reading: nothing more
      // can be said on this connection.
      broken_ = true;
      close_socket();
    } else {
      cancel_io();
    }
  }

  // Reads what the socket has into `b` without suspending: the fast path.
  // Returns would_block when nothing is there yet. Plain TCP only.
  std::error_code try_read(core::byte_buffer& b) {
    auto space = b.prepare(read_chunk);
    if (!space) return space.error();
    std::error_code ec;
    const std::size_t n = socket().read_some(asio::buffer(space->data(), space->size()), ec);
    if (ec == asio::error::would_block || (!ec && n < space->size())) ready_.drained();
    if (ec) return ec;
    b.commit(n);
    ws_.received->add(n);
    return {};
  }

  // Reads what the socket has into `b`, waiting for it if need be.
  asio::awaitable<std::error_code> read_more(core::byte_buffer& b) {
    if constexpr (is_tls) {
      auto space = b.prepare(read_chunk);
      if (!space) co_return space.error();
      auto [ec, n] =
          co_await stream_.async_read_some(asio::buffer(space->data(), space->size()), use_nothrow);
      if (ec) co_return dl_.map(net::tls::classify_read_error(ec));
      b.commit(n);
      ws_.received->add(n);
      co_return std::error_code{};
    } else {
      for (;;) {
        std::error_code ec = try_read(b);
        if (ec != asio::error::would_block) co_return dl_.map(ec);
        std::tie(ec) = co_await ready_.async_wait(use_nothrow);
        if (ec) co_return dl_.map(ec);
      }
    }
  }

  // Writes as much of out_ as the socket takes now; true when all of it
  // went (the usual case: a response fits the socket buffer). Plain TCP.
  bool try_flush(std::error_code& ec) {
    std::string& out = r_->out;
    while (flushed_ < out.size()) {
      const std::size_t n =
          socket().write_some(asio::buffer(out.data() + flushed_, out.size() - flushed_), ec);
      if (n > 0 && phase_ == phase::write) dl_.expires_after(opt_.write_timeout);  // progress
      flushed_ += n;
      if (ec) return false;
    }
    ws_.sent->add(out.size());
    out.clear();
    flushed_ = 0;
    pending_ = 0;
    return true;
  }

  // Writes every byte of out_, waiting for the client if need be.
  asio::awaitable<std::error_code> flush() {
    if (!r_ || r_->out.empty() || broken_) co_return std::error_code{};
    phase_ = phase::write;
    dl_.expires_after(opt_.write_timeout);
    std::error_code ec;
    if constexpr (is_tls) {
      std::size_t n = 0;
      std::tie(ec, n) = co_await asio::async_write(stream_, asio::buffer(r_->out), use_nothrow);
      if (!ec) {
        ws_.sent->add(r_->out.size());
        r_->out.clear();
        pending_ = 0;
      }
    } else {
      while (!try_flush(ec) && ec == asio::error::would_block) {
        std::tie(ec) = co_await socket().async_wait(tcp::socket::wait_write, use_nothrow);
        if (ec) break;
      }
    }
    if (ec) broken_ = true;
    co_return dl_.map(ec);
  }

  // Flushes out_: synchronously when the socket takes it all, else waits.
  // Returns false when the connection is unusable.
  asio::awaitable<bool> flush_now() {
    if constexpr (!is_tls) {
      std::error_code ec;
      if (try_flush(ec)) co_return true;
      if (ec != asio::error::would_block) {
        broken_ = true;
        co_return false;
      }
    }
    co_return !co_await flush();
  }

  // Binds the request and decides, before the handler runs, whether the
  // connection can continue after it.
  void start_request() {
    resources& r = *r_;
    const request_head& head = r.parser.head();
    started_ = steady::now();
    in_used_ = r.parser.head_size();
    body_finished_ = head.framing == framing::none || head.framing == framing::tunnel ||
                     (head.framing == framing::content_length && head.content_length == 0);
    continue_sent_ = false;
    body_error_ = {};
    r.req.bind(head, this, remote_, is_tls);
    r.res.clear();
    close_ = !head.keep_alive || ws_.draining || head.framing == framing::tunnel;
    if (head.expect_unsupported) close_ = true;
  }

  // The rare endings: a request body the handler left unread, or a
  // streamed response.
  asio::awaitable<bool> finish_slow() {
    const request_head& head = r_->parser.head();
    if (body_error_ == net::error::timed_out) {
      r_->res.clear();
      r_->res.status = 408;
      r_->res.set_text("request timeout\n");
      close_ = true;
    } else if (body_error_) {
      close_ = true;
    } else if (!body_finished_) {
      if (head.expect_continue && !continue_sent_) {
        close_ = true;  // the client waits for our 100 and has not sent the body
      } else if (!co_await discard_body()) {
        close_ = true;
      }
    }
    if (!r_->res.stream) {
      queue_response();
      co_return true;
    }
    if (r_->res.close || ws_.draining) close_ = true;
    bool close = close_;
    const bool ok = co_await send_streamed(head, close);
    close_ = close || !ok;
    co_return ok;
  }

  // Whether the handler's upgrade function may take the connection: a 101
  // to a request that asked to Upgrade, or a 2xx to CONNECT, with the
  // request body (if any) read to its end.
  bool may_take_over() {
    const request_head& head = r_->parser.head();
    const int status = r_->res.status;
    const bool is_connect = head.method == method::connect;
    const bool ok = body_finished_ && !body_error_ && !ws_.draining &&
                    (is_connect ? status >= 200 && status <= 299 : status == 101 && head.upgrade);
    if (!ok)
      core::log::error("response::upgrade ignored: needs a 101 to an Upgrade request or a 2xx "
                       "to CONNECT",
                       {{"remote", to_string(remote_)}, {"status", status}});
    return ok;
  }

  // Sends the head of a 101 or a 2xx to CONNECT and hands the connection
  // to the upgrade function; the connection closes after it.
  asio::awaitable<void> take_over() {
    response& res = r_->res;
    const request_head& head = r_->parser.head();
    std::string& out = r_->out;
    write_status_line(out, res.status, 1);
    if (!opt_.server_name.empty() && !res.headers.contains("Server"))
      write_field(out, "Server", opt_.server_name);
    if (!res.headers.contains("Date")) write_field(out, "Date", http_date_now());
    // No body framing after a 101 or a 2xx to CONNECT (RFC 9110 §9.3.6).
    res.headers.erase("Content-Length");
    res.headers.erase("Transfer-Encoding");
    res.headers.erase("Connection");
    res.headers.write_to(out);
    if (head.method != method::connect) out += "Connection: upgrade\r\n";
    write_end_of_head(out);
    count(res.status, started_);
    dl_.expires_after(opt_.write_timeout);
    if (co_await flush()) co_return;
    connection_tunnel t(*this);
    try {
      co_await res.upgrade(t);
    } catch (const std::exception& e) {
      core::log::error("upgrade failed", {{"remote", to_string(remote_)}, {"error", e.what()}});
    }
  }

  // The connection as a raw byte stream once it has been taken over. The
  // bytes the client sent after its request head come first.
  class connection_tunnel final : public tunnel {
   public:
    explicit connection_tunnel(connection& c) : c_(c) {}

    asio::awaitable<result<std::size_t>> read_some(std::span<char> into) override {
      resources& r = *c_.r_;
      for (;;) {
        if (c_.in_used_ < r.in.size()) {
          const std::string_view rest = r.in.view().substr(c_.in_used_);
          const std::size_t n = std::min(rest.size(), into.size());
          std::memcpy(into.data(), rest.data(), n);
          c_.in_used_ += n;
          co_return n;
        }
        if (!r.spill.empty()) {
          const std::string_view rest = r.spill.view();
          const std::size_t n = std::min(rest.size(), into.size());
          std::memcpy(into.data(), rest.data(), n);
          r.spill.consume(n);
          co_return n;
        }
        if (into.empty()) co_return std::size_t{0};
        c_.dl_.expires_after(c_.opt_.tunnel_timeout);
        const auto ec = co_await c_.read_more(r.spill);
        if (ec == asio::error::eof || ec == net::error::tls_truncated) co_return std::size_t{0};
        if (ec) co_return unexpected(ec);
      }
    }

    asio::awaitable<std::error_code> write(std::string_view data) override {
      if (c_.broken_) co_return make_error_code(asio::error::broken_pipe);
      c_.r_->out.append(data);
      c_.dl_.expires_after(c_.opt_.tunnel_timeout);
      co_return co_await c_.flush();
    }

    void shutdown_send() override {
      if constexpr (!is_tls) {
        std::error_code ignored;
        c_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      }
    }

   private:
    connection& c_;
  };

  // Serialises a buffered response into out_.
  void queue_response() {
    response& res = r_->res;
    if (res.close || ws_.draining) close_ = true;
    const request_head& head = r_->parser.head();
    write_head(head, res, close_);
    if (response_has_body(res.status, head.method)) r_->out += res.body;
    ++pending_;
  }

  // Accounts for the request and drops its bytes; pipelined bytes read
  // into the spill buffer while reading the body move back in front.
  void end_request() {
    resources& r = *r_;
    count(r.res.status, started_);
    r.in.consume(std::min(in_used_, r.in.size()));
    if (!r.spill.empty()) {
      (void)r.in.append(r.spill.view());
      r.spill.clear();
    }
    r.parser.reset();
  }

  void count(int status, steady::time_point started) {
    const int cls = status / 100 - 1;
    if (cls >= 0 && cls < 5) ws_.responses[cls]->add();
    ws_.latency->record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - started).count()));
  }

  void write_head(const request_head& head, response& res, bool close) {
    std::string& out = r_->out;
    write_status_line(out, res.status, 1);
    if (!opt_.server_name.empty() && !res.headers.contains("Server"))
      write_field(out, "Server", opt_.server_name);
    if (!res.headers.contains("Date")) write_field(out, "Date", http_date_now());
    if (!res.headers.empty()) {
      // Framing is the server's business.
      res.headers.erase("Content-Length");
      res.headers.erase("Transfer-Encoding");
      res.headers.erase("Connection");
      res.headers.write_to(out);
    }
    if (close)
      out += "Connection: close\r\n";
    else if (head.version_minor == 0)
      out += "Connection: keep-alive\r\n";
    if (res.status >= 200 && res.status != 204 && res.status != 304)
      write_content_length(out, res.body.size());
    write_end_of_head(out);
  }

  // Sends the head now, then lets the handler's stream function write the
  // body: chunked for HTTP/1.1 unless the handler fixed a Content-Length;
  // delimited by closing the connection for HTTP/1.0.
  asio::awaitable<bool> send_streamed(const request_head& head, bool& close) {
    response& res = r_->res;
    std::string& out = r_->out;
    // A Content-Length the handler set must be one number; the body
    // written must then match it exactly (checked below).
    std::optional<std::uint64_t> declared;
    if (auto cl = res.headers.get("Content-Length")) {
      std::uint64_t v = 0;
      const auto [end, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), v);
      if (ec == std::errc{} && end == cl->data() + cl->size() && !cl->empty())
        declared = v;
      else
        res.headers.erase("Content-Length");
    }
    const bool has_body = response_has_body(res.status, head.method);
    chunked_ = has_body && !declared && head.version_minor == 1;
    if (has_body && !declared && head.version_minor == 0) close = true;
    streamed_bytes_ = 0;
    write_status_line(out, res.status, 1);
    if (!opt_.server_name.empty() && !res.headers.contains("Server"))
      write_field(out, "Server", opt_.server_name);
    if (!res.headers.contains("Date")) write_field(out, "Date", http_date_now());
    res.headers.erase("Transfer-Encoding");
    res.headers.erase("Connection");
    res.headers.write_to(out);
    if (chunked_) out += "Transfer-Encoding: chunked\r\n";
    if (close) out += "Connection: close\r\n";
    write_end_of_head(out);
    if (co_await flush()) co_return false;
    if (!has_body) co_return !close;
    try {
      co_await res.stream(*this);
    } catch (const std::exception& e) {
      // The head is gone; all we can do is cut the body short, which the
      // client sees as an incomplete message.
      core::log::error("response stream failed",
                       {{"remote", to_string(remote_)}, {"error", e.what()}});
      broken_ = true;
      co_return false;
    }
    if (broken_) co_return false;
    if (declared && streamed_bytes_ != *declared) {
      // Fewer bytes than announced: the client would wait for the rest.
      core::log::error("response stream shorter than its Content-Length",
                       {{"remote", to_string(remote_)},
                        {"declared", *declared},
                        {"written", streamed_bytes_}});
      broken_ = true;
      co_return false;
    }
    if (chunked_) {
      write_last_chunk(out);
      for (const auto& f : res.trailers)
        if (allowed_in_trailer(f.name)) write_field(out, f.name, f.value);
      write_end_of_head(out);
      if (co_await flush()) co_return false;
    }
    co_return !close;
  }

  // body_writer: one chunk per call, written before returning.
  asio::awaitable<std::error_code> write(std::string_view data) override {
    if (broken_) co_return make_error_code(net::error::timed_out);
    if (data.empty()) co_return std::error_code{};
    std::string& out = r_->out;
    streamed_bytes_ += data.size();
    if (!chunked_) {
      if (auto cl = r_->res.headers.get("Content-Length")) {
        std::uint64_t declared = 0;
        std::from_chars(cl->data(), cl->data() + cl->size(), declared);
        if (streamed_bytes_ > declared) {  // more than announced: refuse, and close
          core::log::error("response stream longer than its Content-Length",
                           {{"remote", to_string(remote_)}, {"declared", declared}});
          broken_ = true;
          co_return make_error_code(std::errc::message_size);
        }
      }
    }
    if (chunked_) {
      write_chunk_header(out, data.size());
      out += data;
      write_chunk_end(out);
    } else {
      out += data;
    }
    co_return co_await flush();
  }

  void abort() override { broken_ = true; }

  // body_source: the request body, piece by piece.
  asio::awaitable<result<std::string_view>> read_some() override {
    resources& r = *r_;
    if (body_finished_) co_return std::string_view{};
    if (r.parser.head().expect_continue && !continue_sent_) {
      continue_sent_ = true;
      r.out += "HTTP/1.1 100 Continue\r\n\r\n";
      if (auto ec = co_await flush()) co_return unexpected(ec);
    }
    for (;;) {
      const bool from_in = in_used_ < r.in.size();
      const std::string_view src = from_in ? r.in.view().substr(in_used_) : r.spill.view();
      if (!src.empty()) {
        std::string_view data;
        auto n = r.parser.parse_body(src, data);
        if (!n) co_return unexpected(n.error());
        if (from_in)
          in_used_ += *n;
        else
          r.spill.consume(*n);  // the bytes stay in place until the next read
        if (r.parser.body_done()) body_finished_ = true;
        if (!data.empty() || body_finished_) co_return data;
        continue;  // only framing (a chunk-size line) was consumed
      }
      phase_ = phase::body;
      dl_.expires_after(opt_.body_timeout);
      auto ec = co_await read_more(r.spill);
      phase_ = phase::handler;
      dl_.expires_after(opt_.request_timeout);
      if (ec) {
        if (ec == asio::error::eof || ec == net::error::tls_truncated) ec = error::partial_message;
        body_error_ = ec;
        co_return unexpected(ec);
      }
    }
  }

  // Reads and drops what is left of the request body, up to the limit.
  asio::awaitable<bool> discard_body() {
    std::size_t dropped = 0;
    while (!body_finished_) {
      auto piece = co_await read_some();
      if (!piece) co_return false;
      dropped += piece->size();
      if (dropped > opt_.discard_body_limit) co_return false;
    }
    co_return true;
  }

  // Answers a request that cannot be served (malformed, over a limit, too
  // slow) and lets the connection close.
  asio::awaitable<void> send_error(int status, std::error_code why) {
    core::log::info("bad request",
                    {{"remote", to_string(remote_)}, {"status", status}, {"error", why.message()}});
    if (!r_) r_ = ws_.acquire();
    std::string& out = r_->out;
    const std::string body =
        std::to_string(status) + " " + std::string(reason_phrase(status)) + "\n";
    write_status_line(out, status, 1);
    if (!opt_.server_name.empty()) write_field(out, "Server", opt_.server_name);
    write_field(out, "Date", http_date_now());
    out += "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n";
    write_content_length(out, body.size());
    write_end_of_head(out);
    out += body;
    const int cls = status / 100 - 1;
    if (cls >= 0 && cls < 5) ws_.responses[cls]->add();
    (void)co_await flush();
  }

  Stream stream_;
  server::worker_state& ws_;
  const server_options& opt_;
  tcp::endpoint remote_;
  net::tcp_listener::seat seat_;  // counts this connection in its listener until destroyed
  net::deadline dl_;
  // Plain TCP: readability without a system call per wait (see readiness.hpp).
  [[no_unique_address]] std::conditional_t<is_tls, no_readiness, net::readiness> ready_;
  std::unique_ptr<resources> r_;
  steady::time_point started_;
  std::size_t in_used_ = 0;  // bytes of r_->in taken by the current request
  std::size_t flushed_ = 0;  // bytes of r_->out already written
  std::size_t pending_ = 0;  // responses queued in r_->out
  phase phase_ = phase::idle;
  phase timed_out_phase_ = phase::idle;
  bool body_finished_ = true;
  bool continue_sent_ = false;
  bool chunked_ = false;
  bool close_ = false;  // close after the current request
  std::error_code body_error_;
  bool broken_ = false;  // the socket is closed or unusable: write nothing more
  std::uint64_t streamed_bytes_ = 0;  // body bytes written by a stream function
  bool park_ = false;    // the lingering wait was ended to park
};

}  // namespace

server::server(handler h, server_options options)
    : handler_(std::move(h)), options_(std::move(options)) {
  if (options_.metrics) {
    metrics_ = options_.metrics;
  } else {
    own_metrics_ = std::make_unique<core::metrics_registry>();
    metrics_ = own_metrics_.get();
  }
}

server::~server() = default;

result<tcp::endpoint> server::listen(core::runtime& rt, const tcp::endpoint& address,
                                     asio::ssl::context* tls) {
  if (workers_.empty()) {
    for (std::size_t i = 0; i < rt.size(); ++i)
      workers_.push_back(std::make_unique<worker_state>(*this, rt[i]));
  }
  return net::listen_on_all(
      rt, address, options_.listener, [this, tls](core::worker& w) -> net::tcp_listener::adopter {
        worker_state& ws = *workers_[w.index()];
        if (tls) {
          return [&ws, tls](tcp::socket s, net::tcp_listener::seat seat) {
            std::error_code ec;
            const auto remote = s.remote_endpoint(ec);
            connection<net::tls::stream>::start(std::make_unique<connection<net::tls::stream>>(
                net::tls::stream(std::move(s), *tls), ws, remote, std::move(seat)));
          };
        }
        return [&ws](tcp::socket s, net::tcp_listener::seat seat) {
          std::error_code ec;
          const auto remote = s.remote_endpoint(ec);
          std::unique_ptr<connection<tcp::socket>> c;
          try {
            c = std::make_unique<connection<tcp::socket>>(std::move(s), ws, remote, std::move(seat));
          } catch (const std::exception& e) {
            // The kernel refused to watch one more socket (epoll's
            // max_user_watches, memory): this connection closes, the
            // listener goes on.
            core::log::warn("connection refused", {{"remote", to_string(remote)}, {"error", e.what()}});
            return;
          }
          connection<tcp::socket>::start(std::move(c));
        };
      });
}

}  // namespace trellis::http
