// Server-side sessions: state for a stateless protocol, kept on the server
// and named by a cookie.
//
// HTTP is stateless (RFC 9110 §3.3): each request stands alone. An
// application that must remember a client between requests — who logged
// in, what is in the cart — gives the client an opaque, unguessable id in
// a cookie (RFC 6265 §4.1) and keeps the state itself, in a store keyed by
// that id. The id is the client's only credential, so it is 256 bits from
// OpenSSL's CSPRNG (RAND_bytes), written base64url (RFC 4648 §5), never
// chosen by the client (an id the server does not know is never adopted —
// that is what stops session fixation), and sent in a cookie marked
// HttpOnly (invisible to scripts), Secure (HTTPS only) and SameSite=Lax
// (not sent on cross-site sub-requests: the main CSRF defence).
//
//   auto store = std::make_shared<gateway::memory_session_store>();
//   auto sessions = std::make_shared<gateway::session_middleware>(store);
//   r.use(sessions);
//   r.post("/login", [&](http::request& req, http::response& res) -> asio::awaitable<void> {
//     gateway::session& s = sessions->get(req);
//     s.regenerate();                    // new id on privilege change
//     s.set("user", "ada");
//     co_return;
//   });
//
// A session is a small JSON object. It expires when idle for
// idle_timeout (sliding: each request pushes it back) and in any case
// absolute_timeout after it was created; both are checked when it is
// loaded, and an expired session is replaced by a new, empty one.
//
// Where the per-request session lives: the middleware keeps, for each
// request between its before() and after(), a session object in a small
// map keyed by the request's address (sharded, a mutex per shard, held for
// one insert, find or erase). A handler reaches it with get(req). Keying by
// address is safe because a request object serves one request at a time
// and after() removes the entry before the connection binds the next one;
// the session object itself is touched only by that request's coroutine,
// so it needs no lock. (Only if a request's coroutine is destroyed
// mid-flight — the runtime torn down — does its entry stay, until the
// middleware is destroyed or the address serves another request.)
//
// Stores are asynchronous so that a Redis-backed one (principle 9:
// stateless gateways share sessions through Redis) plugs in behind the
// same interface; memory_session_store is the single-process one.
//
// Thread-safety: session_middleware and memory_session_store are shared by
// every worker thread; all their members may be called concurrently. A
// session object belongs to one request.
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>

#include "trellis/codec/cookie.hpp"
#include "trellis/core/result.hpp"
#include "trellis/http/message.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

enum class session_error {
  not_found = 1,  // no session under that id: never was, expired, erased or evicted
  bad_record,     // a stored record that does not decode
  too_large,      // session data larger than session_options::max_data_bytes
  no_randomness,  // the CSPRNG failed to produce an id
};

const std::error_category& session_category() noexcept;

inline std::error_code make_error_code(session_error e) noexcept {
  return {static_cast<int>(e), session_category()};
}

// Session times are wall-clock times, not steady ones: a store shared by
// several gateway processes (Redis) compares times taken on different
// machines, which only the system clock makes comparable.
using wall_time = std::chrono::system_clock::time_point;
using wall_clock_function = std::function<wall_time()>;

// What a store keeps under a session id.
struct session_record {
  nlohmann::json data = nlohmann::json::object();  // always an object
  wall_time created{};                             // absolute expiry counts from here
  wall_time last_seen{};                           // idle expiry counts from here (as last written)
};

// The record as JSON text, for stores that keep bytes (Redis):
// {"created":<ms since epoch>,"seen":<ms>,"data":{...}}. Invalid UTF-8 in
// strings is replaced by U+FFFD rather than throwing.
std::string encode_session_record(const session_record& r);
// The record `text` encodes. Errors: session_error::bad_record for anything
// that encode_session_record would not have written.
result<session_record> decode_session_record(std::string_view text);

// A new session id: 32 bytes from RAND_bytes, base64url without padding
// (43 characters). Error: session_error::no_randomness when the CSPRNG
// fails (it is not seeded, which on Linux does not happen after boot).
result<std::string> make_session_id();
// Whether `s` has the shape make_session_id() gives. Anything else in a
// cookie is ignored without a store lookup.
bool is_session_id(std::string_view s) noexcept;

// Where sessions are kept. Implementations must be safe to call from every
// worker at once. The views and references passed in stay valid until the
// returned awaitable completes (callers co_await at once).
class session_store {
 public:
  virtual ~session_store() = default;
  // The record under `id`. Errors: session_error::not_found (also for a
  // record whose `expires` has passed), or the store's own (a Redis
  // connection failure), which the middleware answers with 503.
  virtual asio::awaitable<result<session_record>> load(std::string_view id) = 0;
  // Stores `record` under `id`, replacing any record there, until
  // `expires` (a Redis store sets it as the key's TTL).
  virtual asio::awaitable<result<void>> save(std::string_view id, const session_record& record,
                                             wall_time expires) = 0;
  // Removes the record under `id`; not an error when there is none.
  virtual asio::awaitable<result<void>> erase(std::string_view id) = 0;
};

struct memory_session_store_options {
  // Most sessions held. Each costs its JSON plus ~200 bytes of bookkeeping,
  // so the default is tens of MiB at worst. When full, expired sessions
  // go first, then the one closest to expiry (Redis's volatile-ttl
  // policy): bounded memory beats refusing logins, but someone who can
  // create sessions faster than they expire evicts real users — a reason
  // to rate-limit session creation (login) in front of a large site.
  std::size_t max_sessions = 100'000;
  // Independent lock domains. More shards, less contention between
  // workers; the bound is split evenly (max_sessions / shards each, so the
  // total never exceeds max_sessions; fewer shards when max_sessions is
  // smaller than this).
  std::size_t shards = 16;
  // Time source for expiries; null means std::chrono::system_clock::now.
  // Tests inject a manual one.
  wall_clock_function clock{};
};

struct memory_session_store_stats {
  std::size_t size = 0;            // sessions held now
  std::uint64_t expired = 0;       // dropped because they expired
  std::uint64_t evicted_live = 0;  // dropped unexpired to make room
};

// An in-memory store, SHARED BY ALL WORKER THREADS: sharded by id, one
// mutex per shard, held for a map operation only (never across an await;
// every operation completes synchronously). Sessions vanish with the
// process and are not seen by other processes: use a Redis store when
// several gateway processes serve the same users.
class memory_session_store final : public session_store {
 public:
  // Throws core::config_error: "session_store.max_sessions" or
  // "session_store.shards" when zero.
  explicit memory_session_store(memory_session_store_options options = {});
  ~memory_session_store() override;

  asio::awaitable<result<session_record>> load(std::string_view id) override;
  asio::awaitable<result<void>> save(std::string_view id, const session_record& record,
                                     wall_time expires) override;
  asio::awaitable<result<void>> erase(std::string_view id) override;

  // The same operations, synchronously (what the coroutines call).
  result<session_record> load_now(std::string_view id);
  void save_now(std::string_view id, const session_record& record, wall_time expires);
  void erase_now(std::string_view id);
  // Drops every expired session now; returns how many. Optional: expired
  // sessions are also dropped when loaded and when a shard is full.
  std::size_t drop_expired();

  memory_session_store_stats stats() const;

 private:
  struct shard;
  shard& shard_for(std::string_view id) const;
  wall_time now() const;

  wall_clock_function clock_;
  std::size_t per_shard_;
  std::size_t shard_count_;
  std::unique_ptr<shard[]> shards_;
};

struct session_options {
  // The cookie's name. "__Host-session" is stricter (browsers then insist
  // on Secure, Path=/ and no Domain) but breaks plain-HTTP demos.
  std::string cookie_name = "trellis_session";
  // Send the cookie over HTTPS only. Leave on in production: a session id
  // seen on plain HTTP is a session stolen. Off for plain-HTTP demos
  // (browsers still accept Secure cookies from http://localhost).
  bool secure = true;
  // lax (default): sent on top-level navigations from other sites, not on
  // their forms' POSTs or sub-requests. strict: never from other sites
  // (a user following a link arrives logged out). none: always — for
  // embedded cross-site use; requires secure (browsers reject it without).
  http::same_site_policy same_site = http::same_site_policy::lax;
  // Domain attribute; empty (default) keeps the cookie to this exact host,
  // the safer choice. "example.com" shares it with every subdomain.
  std::string domain{};
  // Path attribute: "/" so that the whole site sees one session.
  std::string path = "/";
  // A session unused for this long expires (sliding). OWASP suggests 15
  // to 30 minutes for sensitive applications; longer is friendlier.
  std::chrono::seconds idle_timeout{std::chrono::minutes(30)};
  // A session expires this long after it was created, however active: it
  // bounds what a stolen id is worth. Kept through regenerate().
  std::chrono::seconds absolute_timeout{std::chrono::hours(12)};
  // Sliding without a write per request: an unmodified session is written
  // back (to push its idle expiry on) only when this fraction of
  // idle_timeout has passed since its last write. A user is then
  // guaranteed at least (1 - touch_fraction) * idle_timeout of idleness
  // (22.5 of 30 minutes at 0.25) while a busy session costs the store one
  // write per 7.5 minutes instead of one per request. 1 never slides
  // (except on changes); tiny values write on nearly every request.
  double touch_fraction = 0.25;
  // Give the cookie Max-Age (the time left until the absolute expiry) so
  // that it survives a browser restart. Default off: a browser-session
  // cookie, forgotten when the browser closes.
  bool persistent_cookie = false;
  // Largest session data (its JSON text) the middleware saves; a bigger
  // one is not saved and the response becomes a 500. Sessions are for
  // ids and flags, not documents; a store shared over the network pays for
  // every byte on every request.
  std::size_t max_data_bytes = 16 * 1024;
  // Time source; null means std::chrono::system_clock::now.
  wall_clock_function clock{};
};

class session_middleware;

// One request's view of its session. Reading never causes a store write;
// changing the data, regenerate() and destroy() are carried out by the
// middleware's after(), when the handler is done.
class session {
 public:
  // The id the request presented and the store knew; empty for a new
  // session (the id is made when the session is first saved).
  const std::string& id() const noexcept { return stored_id_; }
  // No stored session was found for the request (none, unknown, expired).
  bool is_new() const noexcept { return stored_id_.empty(); }
  // The data: a JSON object.
  const nlohmann::json& data() const noexcept { return record_.data; }
  // The value under `key`, or nullptr.
  const nlohmann::json* find(const std::string& key) const;
  // Sets `key` to `value`; the session will be saved.
  void set(const std::string& key, nlohmann::json value);
  // Removes `key`; returns whether it was there (the session is saved if so).
  bool erase(const std::string& key);
  // The data for arbitrary changes; the session will be saved.
  nlohmann::json& mutable_data();
  // Session-fixation defence: call on login and any change of privilege.
  // The data is kept and moves to a new id; the old id is deleted from
  // the store and the client gets the new cookie. The absolute expiry
  // still counts from the original creation.
  void regenerate() noexcept { rotate_ = true; }
  // Logout: the stored session is deleted and the client's cookie expired.
  // Data set afterwards starts a new session with a new id.
  void destroy();
  // Whether the data changed in this request.
  bool modified() const noexcept { return dirty_; }
  wall_time created() const noexcept { return record_.created; }

 private:
  friend class session_middleware;
  session_record record_;
  std::string stored_id_;
  bool dirty_ = false;
  bool rotate_ = false;
  bool destroyed_ = false;
};

// The middleware: before() loads the session named by the request's
// cookie, after() saves it when needed and sets the cookie when the id is
// new. A request that never changes its session costs one store read (none
// without a cookie) and no write, and gets no Set-Cookie.
class session_middleware final : public http::middleware {
 public:
  // REQUIRES: store is not null. Throws core::config_error naming the
  // field: "session.store" (null), "session.cookie_name" (not a token, or
  // a __Host-/__Secure- prefix the other options break),
  // "session.same_site" (none without secure), "session.domain",
  // "session.path", "session.idle_timeout" / "session.absolute_timeout"
  // (not positive), "session.touch_fraction" (not in (0, 1]),
  // "session.max_data_bytes" (zero).
  explicit session_middleware(std::shared_ptr<session_store> store, session_options options = {});
  ~session_middleware() override;

  // Answers 503 itself when the store fails (other than "not found"):
  // treating an unreachable store as "no session" would log everyone out
  // and hand out new sessions that the store cannot keep either.
  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;
  // A failed save of changed data (or of a new or rotated id), or a failed
  // delete of a destroyed or rotated-away id, replaces the response with
  // 503: the client must not believe a login or logout took effect.
  asio::awaitable<void> after(http::request& req, http::response& res) override;

  // The session of `req`, or nullptr outside this middleware's before() ..
  // after() (a route the middleware does not wrap).
  session* find(const http::request& req) const;
  // The session of `req`. REQUIRES: called between this middleware's
  // before() and after() for `req` (from the handler); throws
  // std::logic_error otherwise (a wiring bug).
  session& get(const http::request& req) const;

  const session_options& options() const noexcept { return options_; }

 private:
  struct shard;
  shard& shard_for(const http::request* req) const;
  std::unique_ptr<session> take(const http::request& req);
  wall_time now() const;
  bool expired(const session_record& r, wall_time t) const;
  std::string cookie_for(const std::string& id, wall_time created, wall_time t) const;
  std::string deletion_cookie() const;

  std::shared_ptr<session_store> store_;
  session_options options_;
  std::chrono::milliseconds touch_after_;
  std::unique_ptr<shard[]> shards_;
};

}  // namespace trellis::gateway

template <>
struct std::is_error_code_enum<trellis::gateway::session_error> : std::true_type {};
