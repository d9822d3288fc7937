// redis_session_store: server-side sessions kept in Redis, so that several
// gateway processes share them and any instance can serve any user
// (ARCHITECTURE.md principle 9: stateless HTTP, stateful apps). A gateway
// restarted or added behind the balancer finds every user still logged in.
//
// What is stored where: one Redis string per session, under the key
// "<key_prefix><id>" (default prefix "trellis:session:"), whose value is
// encode_session_record(record) — the JSON text of session.hpp,
// {"created":<ms>,"data":{...},"seen":<ms>}, the same encoding
// decode_session_record (and its fuzz target) reads back. Nothing else is
// kept: no index of sessions, no per-user set.
//
// Key layout: the id is appended to the prefix byte for byte, unescaped.
// Redis keys and RESP bulk strings are binary safe (length-prefixed), so
// any id works, even one holding spaces, CR LF or NUL, and two different
// ids never share a key. The middleware only ever passes the 43-character
// base64url ids of make_session_id(), so in practice keys are printable and
// contain no glob characters: `redis-cli --scan --pattern 'trellis:session:*'`
// lists exactly the sessions. A prefix lets several applications (or
// several environments) share one Redis without seeing each other's
// sessions.
//
// TTL: save() writes with `SET key value PX <ms>`, the time left until
// `expires` measured on this store's clock, so Redis forgets a session by
// itself when it expires and holds only live ones. PX rather than PXAT
// (an absolute Unix time, Redis >= 6.2) on purpose, although the Redis here
// would accept both: PXAT makes Redis compare the gateway's wall-clock
// time against its own, so a Redis host whose clock runs ahead logs users
// out early; PX carries a duration, which is immune to clock offsets
// between the machines and only errs by the time the command spends in
// flight — keeping the session a few milliseconds longer, the harmless
// direction, since the middleware checks idle and absolute expiry itself
// on every load (session.hpp). PX also works on every Redis since 2.6.12,
// and it honours the injected clock in tests. An `expires` that is not in
// the future erases the key instead: the caller wants no session there, and
// an older record must not outlive that intent. The TTL is rounded up to
// whole milliseconds (at least 1).
//
// Consistency: every save() replaces the whole record, so the last write
// wins: two requests of one user that change its session at the same time
// each write their own copy and one change is lost — as with the memory
// store, and acceptable for sessions, which hold ids and flags, not
// counters (keep counters in their own keys with INCR). All gateways talk
// to one Redis server, which executes commands one at a time, so a write
// acknowledged to one gateway is seen by the next load on any other.
// Rotation (session::regenerate) is the middleware's save of the new id
// followed by erase of the old one, in that order: if the save fails the
// old session still works and the client keeps its old cookie (the request
// gets a 503, no one is logged out); if the erase fails the request fails
// and the new record expires unused. The reverse order would destroy the
// session when the save then failed. The price is a window of one round
// trip in which both ids open the session — the same user's data, gone as
// soon as the DEL lands. (The store interface has no rotate operation; a
// MULTI/EXEC of SET and DEL would close that window at the cost of a
// pipeline per login.)
//
// When Redis is down or slow: every operation fails with
// redis_session_error::unavailable (logged at debug with the transport's
// reason; the middleware logs each failed request), which the middleware
// answers with 503 — a request without a session cookie that does not
// touch its session never asks the store and keeps working. The client's
// command timeout bounds how long a request waits, and after a failed
// connect its reconnect backoff makes further calls fail at once rather
// than each waiting for a connect timeout. Redis error replies that mean
// "cannot do it now" (OOM under maxmemory with noeviction, READONLY on a
// replica, NOAUTH, LOADING) are the same error, logged as warnings. What
// Redis does not keep is gone: without persistence (RDB/AOF) a Redis
// restart logs every user out, and with asynchronous replication a
// failover may lose the last writes (a fresh login, or the DEL of a
// rotated-away id). Under maxmemory, volatile-ttl evicts the sessions
// closest to expiry first, as memory_session_store does.
//
// Memory: about 250 bytes per session in Redis 7.0 for a small one (a
// 59-byte key, a 70-byte value such as {"user":"ada"} plus the times, and
// ~120 bytes of Redis's own: dictionary and expiry entries, object
// headers, allocator rounding) — measured as 25 MB per 100 000 sessions.
// The session data counts once more, byte for byte.
//
// Thread-safety: shared by every worker; each worker uses its own Redis
// client (a client belongs to one executor), chosen by the executor the
// call runs on, so calls need no lock. When a worker drains, its client
// closes its connection once no call waits on it, so an idle connection
// does not hold the drain open.
#pragma once

#include <asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "trellis/core/runtime.hpp"
#include "trellis/gateway/session.hpp"
#include "trellis/redis/client.hpp"
#include "trellis/redis/worker_clients.hpp"

namespace trellis::gateway {

enum class redis_session_error {
  // Redis could not be asked (no connection, timed out, connection broke)
  // or refused the command (OOM, READONLY, NOAUTH...): the middleware
  // answers 503.
  unavailable = 1,
};

const std::error_category& redis_session_category() noexcept;

inline std::error_code make_error_code(redis_session_error e) noexcept {
  return {static_cast<int>(e), redis_session_category()};
}

struct redis_session_store_options {
  // Each worker's connection. The command timeout is the longest a request
  // waits for its session before it is answered with 503: keep it short
  // (a Redis on the same network answers in well under a millisecond).
  // Default 1 s.
  redis::client_options client;
  // Put before every id to make the key, so several applications can
  // share one Redis. May be empty (keys are then the bare ids).
  std::string key_prefix = "trellis:session:";
  // Time source for TTLs (the time left until `expires`); null means
  // std::chrono::system_clock::now. Give it the middleware's clock
  // (session_options::clock) so that both agree; tests inject a manual one.
  wall_clock_function clock{};
};

class redis_session_store final : public session_store {
 public:
  // One client per worker of `rt`, connecting on first use. Throws
  // core::config_error for bad client options. REQUIRES: `rt` outlives
  // the store (its clients' sockets belong to rt's io_contexts).
  redis_session_store(core::runtime& rt, asio::ip::tcp::endpoint server,
                      redis_session_store_options options = {});
  ~redis_session_store() override;
  redis_session_store(const redis_session_store&) = delete;
  redis_session_store& operator=(const redis_session_store&) = delete;

  // GET. Errors: session_error::not_found when there is no key (never
  // saved, erased, or expired in Redis); session_error::bad_record when the
  // value does not decode or the key holds something other than a string
  // (WRONGTYPE); redis_session_error::unavailable.
  // REQUIRES (all three): runs on a worker of the runtime given to the
  // constructor; throws std::logic_error otherwise (a wiring bug).
  asio::awaitable<result<session_record>> load(std::string_view id) override;
  // SET key value PX <ms until expires>; DEL when `expires` has passed.
  // Errors: session_error::bad_record when the record would not decode
  // again (data not a JSON object, a time before 1970): nothing is
  // written; redis_session_error::unavailable.
  asio::awaitable<result<void>> save(std::string_view id, const session_record& record,
                                     wall_time expires) override;
  // DEL; not an error when there is no key. Error:
  // redis_session_error::unavailable.
  asio::awaitable<result<void>> erase(std::string_view id) override;

  // The Redis key of the session `id`: key_prefix followed by id's bytes.
  std::string key_for(std::string_view id) const;

 private:
  wall_time now() const;

  std::string prefix_;
  wall_clock_function clock_;
  redis::worker_clients clients_;
};

}  // namespace trellis::gateway

template <>
struct std::is_error_code_enum<trellis::gateway::redis_session_error> : std::true_type {};
