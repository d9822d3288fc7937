#include "trellis/redis/client.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <cassert>
#include <deque>
#include <exception>
#include <utility>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"

namespace trellis::redis {
namespace {

using steady = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.redis"; }
  std::string message(int v) const override {
    switch (static_cast<error>(v)) {
      case error::not_connected:
        return "not connected to redis (backing off after a failed connect)";
      case error::connect_failed: return "cannot connect to redis";
      case error::handshake_failed: return "redis refused the connection handshake";
      case error::closed: return "redis connection closed before the reply";
      case error::timed_out: return "redis command timed out";
      case error::protocol_error: return "redis sent an invalid reply";
      case error::too_many_pending: return "too many redis commands pending";
    }
    return "unknown redis error";
  }
};

void validate(const client_options& o) {
  if (o.protocol != 2 && o.protocol != 3)
    throw core::config_error("redis.protocol", "must be 2 or 3");
  if (o.database < 0) throw core::config_error("redis.database", "must not be negative");
  if (o.connect_timeout.count() <= 0)
    throw core::config_error("redis.connect_timeout", "must be positive");
  if (o.command_timeout.count() < 0)
    throw core::config_error("redis.command_timeout", "must not be negative (0 disables it)");
  if (o.reconnect_backoff_min.count() <= 0)
    throw core::config_error("redis.reconnect_backoff_min", "must be positive");
  if (o.reconnect_backoff_max < o.reconnect_backoff_min)
    throw core::config_error("redis.reconnect_backoff_max", "must not be below the minimum");
  if (o.max_pending == 0) throw core::config_error("redis.max_pending", "must be at least 1");
  if (o.read_buffer_size < 512)
    throw core::config_error("redis.read_buffer_size", "must be at least 512 bytes");
  if (!o.username.empty() && o.password.empty())
    throw core::config_error("redis.username", "a username needs a password");
  resp::parser check(o.reply_limits);  // throws config_error naming the limit
}

// Logs the exception that ended a background coroutine (there should be
// none: every await in them uses use_nothrow).
auto log_exception(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      core::log::error(what, {{"error", x.what()}});
    }
  };
}

}  // namespace

const std::error_category& redis_category() noexcept {
  static const category instance;
  return instance;
}

namespace detail {

// A request waiting for its replies: one command, or a pipeline of
// `expected` commands. Its coroutine sleeps on `wake` (a timer that never
// expires by itself) and is woken by cancelling it.
struct pending {
  pending(const asio::any_io_executor& ex, std::size_t n)
      : wake(ex, steady::time_point::max()), expected(n) {}

  void finish(std::error_code ec) {
    if (done) return;
    error = ec;
    done = true;
    wake.cancel();
  }

  asio::steady_timer wake;
  std::size_t expected;
  std::vector<resp::value> replies;
  std::error_code error;
  steady::time_point deadline = steady::time_point::max();
  bool done = false;
};

struct client_state;

// One TCP connection and what is in flight on it. Owned jointly by the
// client state (while it is the current connection) and by its reader and
// writer coroutines, which end once it is broken.
struct connection {
  connection(tcp::socket s, client_state& owner);

  tcp::socket socket;
  resp::parser parser;
  std::string out;      // queued commands the writer has not taken yet
  std::string sending;  // the bytes of the write in progress
  asio::steady_timer writer_wake;
  std::deque<std::shared_ptr<pending>> waiting;  // in the order their commands were queued
  // Watches the oldest waiting request: commands are queued in deadline
  // order and answered in queue order, so the head's deadline is the
  // first to pass. One watchdog per connection, re-armed as replies come.
  net::deadline watchdog;
  bool broken = false;
};

// An attempt to connect in progress: commands that arrive meanwhile wait
// for its outcome instead of starting attempts of their own.
struct connect_attempt {
  explicit connect_attempt(const asio::any_io_executor& ex) : wake(ex, steady::time_point::max()) {}
  asio::steady_timer wake;
  std::error_code error;
  bool done = false;
};

struct client_state {
  client_state(asio::any_io_executor e, tcp::endpoint s, client_options o)
      : ex(std::move(e)),
        server(s),
        options(std::move(o)),
        backoff(options.reconnect_backoff_min) {}

  steady::time_point now() const { return options.clock ? options.clock() : steady::now(); }

  // Queues a request on `c`: its bytes for the writer, its slot for the
  // reader, in the same step, so that wire order is queue order.
  void enqueue(connection& c, const std::shared_ptr<pending>& p, std::string_view payload) {
    if (options.command_timeout.count() > 0) p->deadline = steady::now() + options.command_timeout;
    const bool was_idle = c.waiting.empty();
    c.waiting.push_back(p);
    c.out += payload;
    stats.commands += p->expected;
    if (was_idle && options.command_timeout.count() > 0) c.watchdog.expires_at(p->deadline);
    c.writer_wake.cancel();  // wakes the writer if it sleeps; a no-op while it writes
  }

  // A reply arrived on `c`. Returns false when the connection broke.
  bool deliver(connection& c, resp::value v) {
    if (v.kind() == resp::type::push) {  // RESP3 out-of-band data: not a reply
      ++stats.pushes;
      return true;
    }
    if (c.waiting.empty()) {
      core::log::warn("redis reply nobody asked for", {{"reply", resp::describe(v)}});
      fail(c, error::protocol_error);
      return false;
    }
    pending& head = *c.waiting.front();
    head.replies.push_back(std::move(v));
    if (head.replies.size() < head.expected) return true;
    head.finish({});
    c.waiting.pop_front();
    if (c.waiting.empty() && close_when_idle && conn.get() == &c) {
      retire(c);
      return false;
    }
    if (c.waiting.empty()) {
      c.watchdog.expires_never();
    } else if (options.command_timeout.count() > 0) {
      c.watchdog.expires_at(c.waiting.front()->deadline);
    }
    return true;
  }

  // Breaks `c`: closes the socket, fails everything queued or sent on it
  // with `ec`, and forgets it if it is the current connection. Never
  // resends: whether Redis ran those commands cannot be known.
  void fail(connection& c, std::error_code ec) {
    if (c.broken) return;
    c.broken = true;
    std::error_code ignored;
    c.socket.close(ignored);
    c.writer_wake.cancel();
    c.watchdog.expires_never();
    auto waiting = std::move(c.waiting);
    c.waiting.clear();
    for (auto& p : waiting) p->finish(ec);
    if (conn.get() == &c) {
      ++stats.disconnects;
      if (!closed)
        core::log::warn("redis connection lost", {{"server", server.address().to_string()},
                                                  {"port", server.port()},
                                                  {"error", ec.message()},
                                                  {"failed_requests", waiting.size()}});
      conn.reset();
    }
  }

  // Closes `c`, on which nothing waits, without an error: close_idle().
  void retire(connection& c) {
    c.broken = true;
    std::error_code ignored;
    c.socket.close(ignored);
    c.writer_wake.cancel();
    c.watchdog.expires_never();
    if (conn.get() == &c) conn.reset();
  }

  asio::any_io_executor ex;
  tcp::endpoint server;
  client_options options;
  std::shared_ptr<connection> conn;
  std::shared_ptr<connect_attempt> attempt;
  steady::time_point retry_at = steady::time_point::min();
  std::chrono::milliseconds backoff;
  std::error_code last_connect_error;
  client_stats stats;
  bool closed = false;
  bool close_when_idle = false;  // close_idle() was called
};

connection::connection(tcp::socket s, client_state& owner)
    : socket(std::move(s)),
      parser(owner.options.reply_limits),
      writer_wake(owner.ex, steady::time_point::max()),
      // The reader coroutine holds the connection and the state until the
      // connection is broken, and the watchdog is armed only before that,
      // so both are alive whenever it fires.
      watchdog(owner.ex, [st = &owner, this] { st->fail(*this, error::timed_out); }) {}

}  // namespace detail

namespace {

using detail::client_state;
using detail::connection;
using detail::pending;

// The one writer of a connection: sends everything queued since its last
// write in one write (the batching that pipelining gets for free).
asio::awaitable<void> write_loop(std::shared_ptr<client_state> st, std::shared_ptr<connection> c) {
  while (!c->broken) {
    if (c->out.empty()) {
      co_await c->writer_wake.async_wait(use_nothrow);  // cancelled by enqueue() or fail()
      continue;
    }
    std::swap(c->out, c->sending);
    ++st->stats.writes;
    auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(c->sending), use_nothrow);
    (void)n;
    c->sending.clear();
    if (ec) st->fail(*c, error::closed);  // no-op when a timeout or close() caused it
  }
}

// The one reader of a connection: parses replies and hands each to the
// oldest waiting request.
asio::awaitable<void> read_loop(std::shared_ptr<client_state> st, std::shared_ptr<connection> c) {
  std::vector<char> buf(st->options.read_buffer_size);
  while (!c->broken) {
    auto [ec, n] = co_await c->socket.async_read_some(asio::buffer(buf), use_nothrow);
    if (c->broken) break;
    if (ec) {
      st->fail(*c, error::closed);
      break;
    }
    const std::error_code bad = c->parser.feed(std::string_view(buf.data(), n));
    while (auto v = c->parser.next()) {
      if (!st->deliver(*c, std::move(*v))) break;
    }
    if (bad && !c->broken) {
      core::log::warn("redis sent an invalid reply", {{"error", bad.message()}});
      st->fail(*c, error::protocol_error);
    }
  }
}

// Waits for a request's replies. Returns its error, or core::errc::cancelled
// when the awaiting coroutine was cancelled first (the request stays
// queued, and its replies are consumed and dropped when they come).
asio::awaitable<std::error_code> wait_for(std::shared_ptr<pending> p) {
  if (!p->done) co_await p->wake.async_wait(use_nothrow);
  if (!p->done) co_return core::errc::cancelled;
  co_return p->error;
}

// The handshake commands the options ask for (empty when none).
pipeline handshake(const client_options& o) {
  pipeline hs;
  const std::string user = o.username.empty() ? std::string("default") : o.username;
  if (o.protocol == 3) {
    // HELLO negotiates RESP3 and authenticates in one round trip.
    if (o.password.empty()) {
      hs.add("HELLO", "3");
    } else {
      hs.add("HELLO", "3", "AUTH", user, o.password);
    }
  } else if (!o.password.empty()) {
    if (o.username.empty()) {
      hs.add("AUTH", o.password);
    } else {
      hs.add("AUTH", o.username, o.password);
    }
  }
  if (o.database != 0) {
    const std::string db = std::to_string(o.database);
    hs.add("SELECT", db);
  }
  if (!o.client_name.empty()) hs.add("CLIENT", "SETNAME", o.client_name);
  return hs;
}

// TCP connect, then the handshake; on success the connection becomes the
// state's current one.
asio::awaitable<std::error_code> open_connection(std::shared_ptr<client_state> st) {
  net::connect_options co;
  co.timeout = st->options.connect_timeout;
  auto sock = co_await net::connect(st->server, co);
  if (!sock) {
    st->last_connect_error = sock.error();
    core::log::warn("redis connect failed", {{"server", st->server.address().to_string()},
                                             {"port", st->server.port()},
                                             {"error", sock.error().message()}});
    co_return error::connect_failed;
  }
  auto c = std::make_shared<connection>(std::move(*sock), *st);
  asio::co_spawn(st->ex, read_loop(st, c), log_exception("redis reader failed"));
  asio::co_spawn(st->ex, write_loop(st, c), log_exception("redis writer failed"));

  const pipeline hs = handshake(st->options);
  if (!hs.empty()) {
    auto p = std::make_shared<pending>(st->ex, hs.size());
    st->enqueue(*c, p, hs.payload());
    const std::error_code ec = co_await wait_for(p);
    if (ec) {
      core::log::warn("redis handshake failed", {{"server", st->server.address().to_string()},
                                                 {"port", st->server.port()},
                                                 {"error", ec.message()}});
      st->fail(*c, error::closed);
      st->last_connect_error = ec;
      co_return error::connect_failed;
    }
    for (const resp::value& r : p->replies) {
      if (!r.is_error()) continue;
      // The reply names the reason ("WRONGPASS invalid username-password
      // pair"); the password itself is never logged.
      core::log::warn("redis handshake refused", {{"reply", r.text()}});
      st->fail(*c, error::closed);
      st->last_connect_error = error::handshake_failed;
      co_return error::handshake_failed;
    }
  }
  if (st->closed || c->broken) {
    st->fail(*c, error::closed);
    co_return error::closed;
  }
  st->conn = c;
  st->last_connect_error.clear();
  co_return std::error_code{};
}

// Makes sure there is a connection: joins the attempt in progress, fails
// fast during the backoff, or makes an attempt.
asio::awaitable<std::error_code> ensure(std::shared_ptr<client_state> st) {
  if (!st || st->closed) co_return error::closed;  // a moved-from or closed client
  if (st->conn) co_return std::error_code{};
  if (auto a = st->attempt) {
    if (!a->done) co_await a->wake.async_wait(use_nothrow);
    if (!a->done) co_return core::errc::cancelled;
    co_return a->error;
  }
  if (st->now() < st->retry_at) co_return error::not_connected;

  auto a = std::make_shared<detail::connect_attempt>(st->ex);
  st->attempt = a;
  const std::error_code ec = co_await open_connection(st);
  st->attempt.reset();
  if (ec) {
    ++st->stats.connect_failures;
    st->retry_at = st->now() + st->backoff;
    st->backoff = std::min(st->backoff * 2, st->options.reconnect_backoff_max);
  } else {
    ++st->stats.connects;
    st->backoff = st->options.reconnect_backoff_min;
  }
  a->error = ec;
  a->done = true;
  a->wake.cancel();
  co_return ec;
}

// Sends one request and waits for its replies.
asio::awaitable<std::error_code> run(std::shared_ptr<client_state> st, std::shared_ptr<pending> p,
                                     std::string payload) {
  if (!st) co_return error::closed;  // a moved-from client
  if (!st->conn) {
    if (auto ec = co_await ensure(st)) co_return ec;
  }
  const std::shared_ptr<connection> c = st->conn;
  if (!c) co_return error::closed;  // it broke again before this coroutine resumed
  if (c->waiting.size() >= st->options.max_pending) co_return error::too_many_pending;
  st->enqueue(*c, p, payload);
  co_return co_await wait_for(p);
}

asio::awaitable<result<resp::value>> single(std::shared_ptr<client_state> st, std::string payload) {
  if (!st) co_return unexpected(error::closed);
  auto p = std::make_shared<pending>(st->ex, 1);
  const std::error_code ec = co_await run(st, p, std::move(payload));
  if (ec) co_return unexpected(ec);
  resp::value reply = std::move(p->replies.front());
  co_return std::move(reply);
}

asio::awaitable<result<std::vector<resp::value>>> several(std::shared_ptr<client_state> st,
                                                          std::string payload, std::size_t n) {
  if (!st) co_return unexpected(error::closed);
  auto p = std::make_shared<pending>(st->ex, n);
  const std::error_code ec = co_await run(st, p, std::move(payload));
  if (ec) co_return unexpected(ec);
  std::vector<resp::value> replies = std::move(p->replies);
  co_return std::move(replies);
}

asio::awaitable<result<resp::value>> eval_with_fallback(std::shared_ptr<client_state> st,
                                                        std::string evalsha, std::string eval) {
  auto r = co_await single(st, std::move(evalsha));
  if (!r || !r->is_error() || !r->text().starts_with("NOSCRIPT")) co_return std::move(r);
  ++st->stats.script_fallbacks;
  auto again = co_await single(st, std::move(eval));
  co_return std::move(again);
}

template <class Keys, class Args>
void append_eval(std::string& out, std::string_view verb, std::string_view body, const Keys& keys,
                 const Args& args) {
  const std::string numkeys = std::to_string(keys.size());
  std::vector<std::string_view> all;
  all.reserve(3 + keys.size() + args.size());
  all.push_back(verb);
  all.push_back(body);
  all.push_back(numkeys);
  for (const auto& k : keys) all.emplace_back(k);
  for (const auto& a : args) all.emplace_back(a);
  resp::append_command(out, all);
}

template <class Keys, class Args>
asio::awaitable<result<resp::value>> start_eval(const std::shared_ptr<client_state>& st,
                                                const script& s, const Keys& keys,
                                                const Args& args) {
  std::string evalsha, eval;
  append_eval(evalsha, "EVALSHA", s.sha1(), keys, args);
  append_eval(eval, "EVAL", s.source(), keys, args);
  return eval_with_fallback(st, std::move(evalsha), std::move(eval));
}

}  // namespace

// --- pipeline -----------------------------------------------------------------

pipeline& pipeline::add(std::span<const std::string_view> args) {
  resp::append_command(payload_, args);
  ++count_;
  return *this;
}

pipeline& pipeline::add(std::span<const std::string> args) {
  resp::append_command(payload_, args);
  ++count_;
  return *this;
}

// --- script -------------------------------------------------------------------

script::script(std::string source) : source_(std::move(source)) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(source_.data(), source_.size(), md, &len, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("OpenSSL SHA-1 failed");
  static constexpr char k_hex[] = "0123456789abcdef";
  sha1_.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    sha1_ += k_hex[md[i] >> 4];
    sha1_ += k_hex[md[i] & 15];
  }
}

// --- client -------------------------------------------------------------------

client::client(asio::any_io_executor ex, tcp::endpoint server, client_options options) {
  validate(options);
  state_ = std::make_shared<client_state>(std::move(ex), server, std::move(options));
}

client::~client() {
  close();
}

client::client(client&&) noexcept = default;

client& client::operator=(client&& other) noexcept {
  if (this != &other) {
    close();
    state_ = std::move(other.state_);
  }
  return *this;
}

asio::awaitable<result<resp::value>> client::command(std::span<const std::string_view> args) {
  assert(args.size() > 0);
  std::string payload;
  resp::append_command(payload, args);
  return single(state_, std::move(payload));
}

asio::awaitable<result<resp::value>> client::command(std::span<const std::string> args) {
  assert(!args.empty());
  std::string payload;
  resp::append_command(payload, args);
  return single(state_, std::move(payload));
}

asio::awaitable<result<std::vector<resp::value>>> client::execute(const pipeline& p) {
  assert(!p.empty());
  return several(state_, p.payload(), p.size());
}

asio::awaitable<result<resp::value>> client::eval(const script& s,
                                                  std::span<const std::string_view> keys,
                                                  std::span<const std::string_view> args) {
  return start_eval(state_, s, keys, args);
}

asio::awaitable<result<resp::value>> client::eval(const script& s,
                                                  std::span<const std::string> keys,
                                                  std::span<const std::string> args) {
  return start_eval(state_, s, keys, args);
}

asio::awaitable<std::error_code> client::ensure_connected() {
  return ensure(state_);
}

void client::close() {
  if (!state_) return;
  state_->closed = true;
  if (state_->conn) state_->fail(*state_->conn, error::closed);
}

void client::close_idle() {
  if (!state_) return;
  state_->close_when_idle = true;
  if (state_->conn && state_->conn->waiting.empty()) state_->retire(*state_->conn);
}

bool client::connected() const noexcept {
  return state_ && state_->conn && !state_->conn->broken;
}

std::error_code client::last_connect_error() const noexcept {
  return state_ ? state_->last_connect_error : std::error_code{};
}

client_stats client::stats() const noexcept {
  return state_ ? state_->stats : client_stats{};
}

const tcp::endpoint& client::server() const noexcept {
  return state_->server;
}

const asio::any_io_executor& client::get_executor() const noexcept {
  return state_->ex;
}

namespace {

asio::awaitable<result<client>> connect_client(client c) {
  const std::error_code ec = co_await c.ensure_connected();
  if (ec) co_return unexpected(ec);
  co_return std::move(c);
}

}  // namespace

asio::awaitable<result<client>> connect(const asio::any_io_executor& ex,
                                        const tcp::endpoint& server) {
  client c(ex, server);
  return connect_client(std::move(c));
}

asio::awaitable<result<client>> connect(const asio::any_io_executor& ex,
                                        const tcp::endpoint& server,
                                        const client_options& options) {
  client c(ex, server, options);  // validates before any await
  return connect_client(std::move(c));
}

}  // namespace trellis::redis
