// redis::client: an asynchronous Redis client, one multiplexed connection.
//
// The gateway keeps rate-limit counters and sessions in Redis so that
// several gateway instances share them (ARCHITECTURE principle 9). Each
// request it serves costs a Redis command or two, so the client must add
// almost nothing to a round trip and must never need one connection per
// request. It speaks RESP (codec/resp.hpp) over one TCP connection to one
// server.
//
// Multiplexing (the idea of redis-rs's MultiplexedConnection, hiredis's
// async API and Lettuce): any number of coroutines call command() on the
// same client at once. Each call appends its command's bytes to one output
// buffer *and* its reply slot to one FIFO queue, in the same step, so the
// order of commands on the wire is the order of the queue. Redis executes
// the commands of a connection one after another and answers them in that
// order, so the n-th reply read belongs to the n-th slot: no request ids
// are needed. One writer coroutine sends everything that was queued since
// its previous write in a single write; under load that is hundreds of
// commands per system call and per network round trip (pipelining), with
// no caller having to batch by hand. One reader coroutine parses replies
// and wakes the callers in order.
//
// What follows from sharing one ordered stream:
//   - head-of-line blocking: a slow command (KEYS on a large database, a
//     long Lua script) delays every reply behind it. Blocking commands
//     (BLPOP, XREAD BLOCK) and SUBSCRIBE, which turn the connection into a
//     message stream, need a client of their own;
//   - a command timeout closes the connection. A reply that is late still
//     comes before every reply behind it, so waiting for it or skipping it
//     is not possible without stalling all of them; a server that does not
//     answer within command_timeout is treated as gone: every command
//     pending on that connection fails with error::timed_out, and the next
//     command connects again;
//   - commands are never sent twice. When a connection breaks, the commands
//     that were queued or sent on it fail (error::closed): INCR is not
//     idempotent, and whether Redis executed it cannot be known. The next
//     command opens a new connection; after a failed connect attempt,
//     commands fail fast with error::not_connected for a backoff period
//     (doubling from reconnect_backoff_min up to reconnect_backoff_max) so a
//     dead server is not hammered and callers (a rate limiter failing
//     open, say) get an answer at once instead of a connect timeout each.
//
// A Redis error reply ("-ERR ...", "-NOSCRIPT ...", "-WRONGTYPE ...") is a
// *value*: command() succeeds and returns a resp::value whose is_error() is
// true. A failed result means the transport failed (redis::error below).
//
//   const redis::client_options options{.command_timeout = 200ms};
//   auto c = co_await redis::connect(ex, endpoint, options);
//   if (!c) return fail_open(c.error());
//   auto n = co_await c->command("INCR", key);
//   if (!n) ...                     // transport: closed, timed_out, not_connected...
//   else if (n->is_error()) ...     // Redis said no: n->text() == "WRONGTYPE ..."
//   else use(n->integer_value());
//
// Thread-safety: a client belongs to one executor (one worker) and is used
// only from coroutines running on it: its queue and buffers have no lock.
// A multi-worker server (one io_context per core, ARCHITECTURE principle 4)
// gives each worker its own client to the same Redis: N connections for N
// workers, each multiplexing that worker's requests. That is also what
// keeps Redis itself busy: it runs commands on one thread but reads many
// connections at once.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trellis/codec/resp.hpp"
#include "trellis/core/result.hpp"

namespace trellis::redis {

// Transport failures. A Redis error reply is not one of these: it is a
// resp::value with is_error().
enum class error {
  not_connected = 1,  // no connection, and the last connect attempt failed within the backoff
  connect_failed,     // the TCP connect failed or timed out (client::last_connect_error() says why)
  handshake_failed,   // the server answered AUTH, HELLO, SELECT or CLIENT SETNAME with an error
  closed,             // the connection broke, or the client was closed, before the reply came
  timed_out,          // no reply within command_timeout; the connection was closed
  protocol_error,     // the server sent bytes that are not RESP, or a reply nobody asked for
  too_many_pending,   // max_pending requests are already waiting on the connection
};

const std::error_category& redis_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), redis_category()};
}

struct client_options {
  // Deadline for the TCP connect. The handshake (AUTH, HELLO, SELECT) that
  // follows is bounded by command_timeout. A Redis on the same network
  // answers a SYN in well under a millisecond; a short timeout makes a
  // dead server fail fast (callers then see not_connected during the
  // backoff). Default 1 s.
  std::chrono::milliseconds connect_timeout{1000};
  // Deadline for each command's reply, counted from when the command is
  // queued on a connection. Past it the connection is closed and every
  // command on it fails with error::timed_out (see above). 0 disables it,
  // for a client dedicated to blocking commands. Default 1 s: a rate-limit
  // check that takes longer should fail and let the caller decide.
  std::chrono::milliseconds command_timeout{1000};
  // AUTH (Redis 6 ACL form "AUTH username password" when a username is
  // set; the legacy requirepass form otherwise). Empty: no AUTH.
  // A username requires a password.
  std::string username;
  std::string password;
  // SELECT this database after connecting, when not 0. Cluster mode only
  // has database 0.
  int database = 0;
  // RESP protocol version: 2 (the default, every Redis speaks it) or 3,
  // negotiated with HELLO 3 (Redis 6+). RESP3 replies carry richer types
  // (maps, doubles, booleans, nulls) and may interleave push messages,
  // which this client counts and drops.
  int protocol = 2;
  // CLIENT SETNAME after connecting, when not empty: CLIENT LIST on the
  // server then shows which gateway instance a connection belongs to.
  std::string client_name;
  // Backoff after a failed connect attempt: commands fail with
  // not_connected until it has passed. It starts at min and doubles with
  // each consecutive failure up to max; a successful connect resets it.
  // Lower recovers sooner after a server restart; higher sends fewer SYNs
  // to a dead server. Defaults 100 ms and 2 s.
  std::chrono::milliseconds reconnect_backoff_min{100};
  std::chrono::milliseconds reconnect_backoff_max{2000};
  // Requests (single commands or pipelines) queued or awaiting replies on
  // the connection at once; past it, command() fails with
  // too_many_pending instead of growing the queue without bound when
  // Redis falls behind. Default 65536.
  std::size_t max_pending = 65536;
  // Bytes read from the socket at a time. Larger means fewer system calls
  // for large replies, at this much memory per client. Default 16 KiB.
  std::size_t read_buffer_size = 16 * 1024;
  // Limits on replies (resp::parser_options): a reply over a limit is a
  // protocol_error and closes the connection.
  resp::parser_options reply_limits;
  // The clock the reconnect backoff is measured with; steady_clock::now
  // when empty. Tests inject a manual clock to step through the backoff.
  // (Command and connect deadlines run on the executor's real timers.)
  std::function<std::chrono::steady_clock::time_point()> clock;
};

namespace detail {
struct client_state;
// What command() and pipeline::add() take as arguments: std::string,
// std::string_view, string literals.
template <class T>
concept argument = std::convertible_to<const T&, std::string_view>;
}  // namespace detail

// Counters since the client was created, for metrics and tests.
struct client_stats {
  std::uint64_t commands = 0;          // commands queued on a connection (a pipeline counts each)
  std::uint64_t writes = 0;            // socket writes: commands / writes is the batching achieved
  std::uint64_t connects = 0;          // connections established, handshake included
  std::uint64_t connect_failures = 0;  // attempts that failed (connect or handshake)
  std::uint64_t disconnects = 0;       // established connections that broke or timed out
  std::uint64_t script_fallbacks = 0;  // EVALSHA answered NOSCRIPT, so EVAL was sent
  std::uint64_t pushes = 0;            // RESP3 push messages received and dropped
};

// Several commands sent together, their replies returned together, in
// order. (Every command is pipelined anyway; a pipeline guarantees that
// its commands are written back to back and lets a caller wait once for
// all replies. Wrap them in MULTI/EXEC to make them atomic.)
class pipeline {
 public:
  // Adds a command: p.add("INCR", key).add("EXPIRE", key, "60").
  // REQUIRES: at least one argument.
  template <detail::argument First, detail::argument... Rest>
  pipeline& add(const First& first, const Rest&... rest) {
    const std::string_view list[] = {std::string_view(first), std::string_view(rest)...};
    return add(std::span<const std::string_view>(list));
  }
  pipeline& add(std::span<const std::string_view> args);
  pipeline& add(std::span<const std::string> args);

  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  // The commands as RESP, ready to write.
  const std::string& payload() const noexcept { return payload_; }
  void clear() noexcept {
    payload_.clear();
    count_ = 0;
  }

 private:
  std::string payload_;
  std::size_t count_ = 0;
};

// A Lua script run with EVALSHA: Redis caches scripts by the SHA-1 of
// their source, so after the first run only the 40-character digest
// travels, not the source. When the server does not know the script (it
// restarted, or SCRIPT FLUSH ran) it answers NOSCRIPT, and client::eval
// sends the source once with EVAL, which also caches it for the next
// EVALSHA. A script runs atomically, which is what a rate limiter needs
// for a read-modify-write step (GCRA: read the theoretical arrival time,
// compare, write it back) that no other client can interleave with.
class script {
 public:
  // Computes the SHA-1 of `source` (OpenSSL).
  explicit script(std::string source);
  const std::string& source() const noexcept { return source_; }
  // 40 lowercase hexadecimal digits, as SCRIPT LOAD returns.
  const std::string& sha1() const noexcept { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

class client {
 public:
  // A client for `server`, not yet connected: the first command connects.
  // Throws core::config_error for invalid options, naming the field
  // ("redis.protocol", "redis.max_pending", "resp.max_depth"...).
  client(asio::any_io_executor ex, asio::ip::tcp::endpoint server, client_options options = {});
  // Closes the connection; commands still pending fail with error::closed.
  ~client();
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends one command and returns its reply (a Redis error reply is a
  // value with is_error()). Arguments are anything convertible to
  // std::string_view, binary-safe, and copied before this returns:
  //   co_await c.command("SET", key, value);
  // (A variadic call rather than a braced list: g++ 12 cannot compile a
  // braced list inside a co_await expression.)
  // REQUIRES: at least one argument; awaited on the client's executor.
  template <detail::argument First, detail::argument... Rest>
  asio::awaitable<result<resp::value>> command(const First& first, const Rest&... rest) {
    const std::string_view list[] = {std::string_view(first), std::string_view(rest)...};
    return command(std::span<const std::string_view>(list));
  }
  asio::awaitable<result<resp::value>> command(std::span<const std::string_view> args);
  asio::awaitable<result<resp::value>> command(std::span<const std::string> args);

  // Sends the pipeline's commands back to back; returns one reply per
  // command, in order. All or nothing: a transport failure fails the whole
  // pipeline (some of its commands may have run).
  // REQUIRES: p is not empty; awaited on the client's executor.
  asio::awaitable<result<std::vector<resp::value>>> execute(const pipeline& p);

  // EVALSHA s.sha1() numkeys keys... args...; on a NOSCRIPT error reply,
  // EVAL s.source() with the same keys and args, once. Returns the
  // script's reply (an error reply when the script failed).
  asio::awaitable<result<resp::value>> eval(const script& s, std::span<const std::string_view> keys,
                                            std::span<const std::string_view> args);
  asio::awaitable<result<resp::value>> eval(const script& s, std::span<const std::string> keys,
                                            std::span<const std::string> args);

  // Connects now if not connected (what the first command would do).
  // Returns {} when connected, else the error a command would get.
  asio::awaitable<std::error_code> ensure_connected();

  // Closes the connection at once: pending commands fail with
  // error::closed, later ones too. Idempotent.
  void close();

  // From now on the connection closes whenever no command waits on it: at
  // once if none does, else after the last reply. Commands still work, each
  // opening a connection that closes again once it is idle. For a worker
  // that drains: requests in flight keep their Redis, and an idle
  // connection no longer keeps the worker alive.
  void close_idle();

  // A connection is established (it may still turn out to be broken).
  bool connected() const noexcept;
  // Why the last connect attempt failed (the OS error, net::error::timed_out
  // or the handshake's error); {} after a success.
  std::error_code last_connect_error() const noexcept;
  client_stats stats() const noexcept;
  const asio::ip::tcp::endpoint& server() const noexcept;
  const asio::any_io_executor& get_executor() const noexcept;

 private:
  std::shared_ptr<detail::client_state> state_;
};

// Creates a client and connects it (TCP, then AUTH, HELLO 3, SELECT and
// CLIENT SETNAME as the options ask). Returns the connected client, or the
// error of the attempt. Throws core::config_error for invalid options.
// Options are taken by reference and copied before the first await: pass
// a named variable, since g++ 12 mishandles temporaries with destructors
// inside a co_await expression (`co_await connect(ex, ep, {...})`).
asio::awaitable<result<client>> connect(const asio::any_io_executor& ex,
                                        const asio::ip::tcp::endpoint& server);
asio::awaitable<result<client>> connect(const asio::any_io_executor& ex,
                                        const asio::ip::tcp::endpoint& server,
                                        const client_options& options);

}  // namespace trellis::redis

template <>
struct std::is_error_code_enum<trellis::redis::error> : std::true_type {};
