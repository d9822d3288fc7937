#include "trellis/gateway/session.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/base64.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"

namespace trellis::gateway {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.session"; }
  std::string message(int v) const override {
    switch (static_cast<session_error>(v)) {
      case session_error::not_found: return "no such session";
      case session_error::bad_record: return "stored session record does not decode";
      case session_error::too_large: return "session data over the size limit";
      case session_error::no_randomness: return "the CSPRNG could not produce a session id";
    }
    return "unknown session error";
  }
};

constexpr std::size_t k_id_bytes = 32;  // 256 bits; RFC 6749-style tokens use 128+
constexpr std::size_t k_id_chars = 43;  // base64url of 32 bytes, unpadded

constexpr codec::base64_options k_url_unpadded{.alphabet = codec::base64_alphabet::url,
                                               .padding = false};

std::int64_t to_ms(wall_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

wall_time from_ms(std::int64_t ms) {
  return wall_time(std::chrono::duration_cast<wall_time::duration>(std::chrono::milliseconds(ms)));
}

wall_time system_now() {
  return std::chrono::system_clock::now();
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

const std::error_category& session_category() noexcept {
  static const category instance;
  return instance;
}

// ---------------------------------------------------------------------------
// Records and ids.

std::string encode_session_record(const session_record& r) {
  nlohmann::json j = nlohmann::json::object();
  j["created"] = to_ms(r.created);
  j["seen"] = to_ms(r.last_seen);
  j["data"] = r.data;
  return dump(j);
}

result<session_record> decode_session_record(std::string_view text) {
  // Exceptions off: a corrupt record is an expected failure, not a bug.
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.size() != 3) {
    return unexpected(session_error::bad_record);
  }
  const auto created = j.find("created");
  const auto seen = j.find("seen");
  const auto data = j.find("data");
  if (created == j.end() || seen == j.end() || data == j.end() || !created->is_number_integer() ||
      !seen->is_number_integer() || !data->is_object()) {
    return unexpected(session_error::bad_record);
  }
  // Times are milliseconds since 1970, up to what wall_time can hold
  // (system_clock counts nanoseconds in 64 bits: until the year 2262). A
  // record holding anything else was not written by encode_session_record,
  // and converting it would overflow.
  constexpr std::int64_t max_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(wall_time::duration::max()).count();
  const auto in_range = [](const nlohmann::json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>() <= static_cast<std::uint64_t>(max_ms);
    const auto ms = v.get<std::int64_t>();
    return ms >= 0 && ms <= max_ms;
  };
  if (!in_range(*created) || !in_range(*seen)) return unexpected(session_error::bad_record);
  session_record r;
  r.created = from_ms(created->get<std::int64_t>());
  r.last_seen = from_ms(seen->get<std::int64_t>());
  r.data = std::move(*data);
  return r;
}

result<std::string> make_session_id() {
  std::array<unsigned char, k_id_bytes> bytes{};
  // RAND_bytes draws from OpenSSL's CSPRNG (seeded from getrandom(2));
  // std::random_device / mt19937 are not fit for credentials: mt19937's
  // state can be recovered from 624 outputs.
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return unexpected(session_error::no_randomness);
  }
  const std::string_view raw(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return codec::base64_encode(raw, k_url_unpadded);
}

bool is_session_id(std::string_view s) noexcept {
  if (s.size() != k_id_chars) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  // The last character carries 4 unused bits, which must be zero.
  return codec::base64_decode(s, k_url_unpadded).has_value();
}

// ---------------------------------------------------------------------------
// memory_session_store

// One lock domain. by_expiry orders the same sessions by expiry time, so
// that dropping expired ones and picking the next to evict cost O(log n)
// each, never a scan of the shard.
struct memory_session_store::shard {
  struct entry {
    session_record record;
    wall_time expires;
  };
  mutable std::mutex mu;
  std::unordered_map<std::string, entry> by_id;
  std::set<std::pair<wall_time, std::string>> by_expiry;
  std::uint64_t expired = 0;
  std::uint64_t evicted_live = 0;

  // REQUIRES: mu held.
  void remove(std::unordered_map<std::string, entry>::iterator it) {
    by_expiry.erase({it->second.expires, it->first});
    by_id.erase(it);
  }
  // REQUIRES: mu held. Drops sessions whose expiry is <= now.
  std::size_t drop_expired(wall_time now) {
    std::size_t n = 0;
    while (!by_expiry.empty() && by_expiry.begin()->first <= now) {
      by_id.erase(by_expiry.begin()->second);
      by_expiry.erase(by_expiry.begin());
      ++n;
    }
    expired += n;
    return n;
  }
};

memory_session_store::memory_session_store(memory_session_store_options options)
    : clock_(std::move(options.clock)) {
  if (options.max_sessions == 0)
    throw core::config_error("session_store.max_sessions", "must be at least 1");
  if (options.shards == 0) throw core::config_error("session_store.shards", "must be at least 1");
  shard_count_ = std::min(options.shards, options.max_sessions);
  per_shard_ = options.max_sessions / shard_count_;
  shards_ = std::make_unique<shard[]>(shard_count_);
}

memory_session_store::~memory_session_store() = default;

wall_time memory_session_store::now() const {
  return clock_ ? clock_() : system_now();
}

memory_session_store::shard& memory_session_store::shard_for(std::string_view id) const {
  return shards_[std::hash<std::string_view>{}(id) % shard_count_];
}

result<session_record> memory_session_store::load_now(std::string_view id) {
  const wall_time t = now();
  shard& s = shard_for(id);
  std::lock_guard lock(s.mu);
  auto it = s.by_id.find(std::string(id));
  if (it == s.by_id.end()) return unexpected(session_error::not_found);
  if (it->second.expires <= t) {
    s.remove(it);
    ++s.expired;
    return unexpected(session_error::not_found);
  }
  return it->second.record;  // a copy: the caller changes it without the lock
}

void memory_session_store::save_now(std::string_view id, const session_record& record,
                                    wall_time expires) {
  const wall_time t = now();
  shard& s = shard_for(id);
  std::lock_guard lock(s.mu);
  std::string key(id);
  if (auto it = s.by_id.find(key); it != s.by_id.end()) {
    s.by_expiry.erase({it->second.expires, key});
    it->second.record = record;
    it->second.expires = expires;
    s.by_expiry.emplace(expires, std::move(key));
    return;
  }
  if (s.by_id.size() >= per_shard_) {
    s.drop_expired(t);
    if (s.by_id.size() >= per_shard_) {
      // Still full of live sessions: the one closest to expiry goes.
      s.remove(s.by_id.find(s.by_expiry.begin()->second));
      ++s.evicted_live;
    }
  }
  s.by_id.emplace(key, shard::entry{record, expires});
  s.by_expiry.emplace(expires, std::move(key));
}

void memory_session_store::erase_now(std::string_view id) {
  shard& s = shard_for(id);
  std::lock_guard lock(s.mu);
  if (auto it = s.by_id.find(std::string(id)); it != s.by_id.end()) s.remove(it);
}

std::size_t memory_session_store::drop_expired() {
  const wall_time t = now();
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].drop_expired(t);
  }
  return n;
}

memory_session_store_stats memory_session_store::stats() const {
  memory_session_store_stats st;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    st.size += shards_[i].by_id.size();
    st.expired += shards_[i].expired;
    st.evicted_live += shards_[i].evicted_live;
  }
  return st;
}

// The coroutines complete without suspending; the lock is never held
// across a suspension point because there is none.
asio::awaitable<result<session_record>> memory_session_store::load(std::string_view id) {
  co_return load_now(id);
}

asio::awaitable<result<void>> memory_session_store::save(std::string_view id,
                                                         const session_record& record,
                                                         wall_time expires) {
  save_now(id, record, expires);
  co_return result<void>{};
}

asio::awaitable<result<void>> memory_session_store::erase(std::string_view id) {
  erase_now(id);
  co_return result<void>{};
}

// ---------------------------------------------------------------------------
// session

const nlohmann::json* session::find(const std::string& key) const {
  const auto it = record_.data.find(key);
  return it == record_.data.end() ? nullptr : &*it;
}

void session::set(const std::string& key, nlohmann::json value) {
  record_.data[key] = std::move(value);
  dirty_ = true;
}

bool session::erase(const std::string& key) {
  const bool had = record_.data.erase(key) > 0;
  dirty_ = dirty_ || had;
  return had;
}

nlohmann::json& session::mutable_data() {
  dirty_ = true;
  return record_.data;
}

void session::destroy() {
  destroyed_ = true;
  dirty_ = false;
  rotate_ = false;
  record_.data = nlohmann::json::object();
}

// ---------------------------------------------------------------------------
// session_middleware

// Requests in flight, keyed by address. 16 shards: with a lock held for a
// hash-map operation (tens of nanoseconds), two workers rarely meet.
struct session_middleware::shard {
  std::mutex mu;
  std::unordered_map<const http::request*, std::unique_ptr<session>> live;
};

namespace {
constexpr std::size_t k_request_shards = 16;
}

session_middleware::session_middleware(std::shared_ptr<session_store> store,
                                       session_options options)
    : store_(std::move(store)), options_(std::move(options)) {
  if (!store_) throw core::config_error("session.store", "a session store is required");
  if (options_.idle_timeout.count() <= 0)
    throw core::config_error("session.idle_timeout", "must be positive");
  if (options_.absolute_timeout.count() <= 0)
    throw core::config_error("session.absolute_timeout", "must be positive");
  if (!(options_.touch_fraction > 0.0 && options_.touch_fraction <= 1.0))
    throw core::config_error("session.touch_fraction", "must be in (0, 1]");
  if (options_.max_data_bytes == 0)
    throw core::config_error("session.max_data_bytes", "must be at least 1");
  // Build a cookie now so that every cookie built later is known to be
  // valid: the codec checks exactly what a browser would silently drop.
  http::set_cookie probe;
  probe.name = options_.cookie_name;
  probe.value = "x";
  probe.domain = options_.domain;
  probe.path = options_.path;
  probe.secure = options_.secure;
  probe.http_only = true;
  probe.same_site = options_.same_site;
  if (auto text = probe.to_string(); !text) {
    const std::error_code ec = text.error();
    std::string field = "session.cookie_name";
    if (ec == http::cookie_error::same_site_none_insecure) field = "session.same_site";
    if (ec == http::cookie_error::bad_domain) field = "session.domain";
    if (ec == http::cookie_error::bad_path) field = "session.path";
    throw core::config_error(field, ec.message());
  }
  touch_after_ = std::chrono::milliseconds(static_cast<std::int64_t>(
      std::llround(std::chrono::duration<double, std::milli>(options_.idle_timeout).count() *
                   options_.touch_fraction)));
  shards_ = std::make_unique<shard[]>(k_request_shards);
}

session_middleware::~session_middleware() = default;

wall_time session_middleware::now() const {
  return options_.clock ? options_.clock() : system_now();
}

bool session_middleware::expired(const session_record& r, wall_time t) const {
  return t - r.last_seen >= options_.idle_timeout || t - r.created >= options_.absolute_timeout;
}

session_middleware::shard& session_middleware::shard_for(const http::request* req) const {
  return shards_[std::hash<const http::request*>{}(req) % k_request_shards];
}

session* session_middleware::find(const http::request& req) const {
  shard& s = shard_for(&req);
  std::lock_guard lock(s.mu);
  const auto it = s.live.find(&req);
  return it == s.live.end() ? nullptr : it->second.get();
}

session& session_middleware::get(const http::request& req) const {
  session* s = find(req);
  if (!s)
    throw std::logic_error("session_middleware::get: the middleware does not wrap this request");
  return *s;
}

std::unique_ptr<session> session_middleware::take(const http::request& req) {
  shard& s = shard_for(&req);
  std::lock_guard lock(s.mu);
  const auto it = s.live.find(&req);
  if (it == s.live.end()) return nullptr;
  auto out = std::move(it->second);
  s.live.erase(it);
  return out;
}

std::string session_middleware::cookie_for(const std::string& id, wall_time created,
                                           wall_time t) const {
  http::set_cookie c;
  c.name = options_.cookie_name;
  c.value = id;
  c.domain = options_.domain;
  c.path = options_.path;
  c.secure = options_.secure;
  c.http_only = true;
  c.same_site = options_.same_site;
  if (options_.persistent_cookie) {
    const auto left =
        std::chrono::duration_cast<std::chrono::seconds>(created + options_.absolute_timeout - t);
    c.max_age = std::max(left, std::chrono::seconds(1));
  }
  // Validated by the constructor's probe; the id is base64url, which is
  // all cookie-octets.
  return c.to_string().value();
}

std::string session_middleware::deletion_cookie() const {
  http::set_cookie c;
  c.name = options_.cookie_name;
  c.domain = options_.domain;
  c.path = options_.path;
  c.secure = options_.secure;
  c.http_only = true;
  c.same_site = options_.same_site;
  c.max_age = std::chrono::seconds(0);  // RFC 6265 §5.2.2: expire now
  return c.to_string().value();
}

asio::awaitable<http::filter_status> session_middleware::before(http::request& req,
                                                                http::response& res) {
  auto s = std::make_unique<session>();

  // The first cookie of our name that has the shape of an id. Several
  // Cookie fields are allowed (RFC 6265 §5.4 says one, HTTP/2 splits it);
  // a malformed header counts as no cookie at all.
  std::string id;
  std::vector<http::cookie> cookies;
  for (const auto& f : req.headers()) {
    if (!codec::iequals(f.name, "Cookie")) continue;
    auto parsed = http::parse_cookie_header(f.value, cookies);
    (void)parsed;  // on error `cookies` is left as it was: that header is ignored
  }
  for (const auto& c : cookies) {
    if (c.name == options_.cookie_name && is_session_id(c.value)) {
      id.assign(c.value);
      break;
    }
  }

  if (!id.empty()) {
    auto loaded = co_await store_->load(id);
    if (loaded) {
      if (expired(*loaded, now())) {
        // The store keeps it no longer than its expiry, but clocks differ
        // between processes; the middleware's own check is the one that
        // counts. Deleting is housekeeping: a failure changes nothing.
        auto gone = co_await store_->erase(id);
        (void)gone;
      } else {
        s->record_ = std::move(*loaded);
        s->stored_id_ = std::move(id);
      }
    } else if (loaded.error() == session_error::bad_record) {
      // A record this gateway cannot read (corrupted, or written by a
      // newer version during a rolling upgrade) is no session here: the
      // user starts a new one rather than being locked out with 503s
      // until it expires. It is left in place for whoever can read it.
      core::log::warn("session record does not decode; starting a new session",
                      {{"target", req.target()}});
    } else if (loaded.error() != session_error::not_found) {
      core::log::error("session store failed to load",
                       {{"target", req.target()}, {"error", loaded.error().message()}});
      res.clear();
      res.status = 503;
      res.set_text("session store unavailable\n");
      co_return http::filter_status::respond;
    }
  }

  shard& sh = shard_for(&req);
  {
    std::lock_guard lock(sh.mu);
    sh.live[&req] = std::move(s);
  }
  co_return http::filter_status::proceed;
}

asio::awaitable<void> session_middleware::after(http::request& req, http::response& res) {
  std::unique_ptr<session> owned = take(req);
  if (!owned) co_return;  // before() answered 503
  session& s = *owned;
  const wall_time t = now();

  if (s.destroyed_) {
    if (!s.stored_id_.empty()) {
      // Logout is the server forgetting the session: a stolen copy of the
      // cookie must stop working. Expiring the browser's cookie while the
      // record lives on would only look like a logout, so a failed erase
      // fails the request.
      auto gone = co_await store_->erase(s.stored_id_);
      if (!gone) {
        core::log::error("session store failed to erase",
                         {{"target", req.target()}, {"error", gone.error().message()}});
        res.clear();
        res.status = 503;
        res.set_text("session store unavailable\n");
        co_return;
      }
      s.stored_id_.clear();
    }
    if (!s.dirty_) {
      (void)res.headers.add("Set-Cookie", deletion_cookie());
      co_return;
    }
    // Data set after destroy(): a new session, under a new id, follows.
    s.record_.created = wall_time{};
  }

  const bool is_new = s.stored_id_.empty();
  if (is_new && !s.dirty_) co_return;  // never written to: no store write, no cookie
  const bool touch_due = !is_new && t - s.record_.last_seen >= touch_after_;
  if (!s.dirty_ && !s.rotate_ && !touch_due) co_return;

  const bool new_id = is_new || s.rotate_;
  // What failing to save means depends on what was at stake: losing
  // changed data or a new id must not pass silently (the client would
  // believe it is logged in); a missed touch only shortens the idle window.
  const bool must_save = s.dirty_ || new_id;
  const auto fail = [&](std::string_view what, std::error_code ec) {
    core::log::error("session not saved",
                     {{"target", req.target()}, {"what", what}, {"error", ec.message()}});
    if (!must_save) return;
    // The handler's mistakes are a 500; the store's trouble a 503.
    const bool handler_bug = ec == session_error::too_large || ec == session_error::bad_record;
    res.clear();
    res.status = handler_bug ? 500 : 503;
    res.set_text(handler_bug ? "internal server error\n" : "session store unavailable\n");
  };

  if (!s.record_.data.is_object()) {  // mutable_data() replaced by an array, a string...
    fail("data is not a JSON object", session_error::bad_record);
    co_return;
  }
  if (dump(s.record_.data).size() > options_.max_data_bytes) {
    fail("data over max_data_bytes", session_error::too_large);
    co_return;
  }
  std::string id = s.stored_id_;
  if (new_id) {
    auto made = make_session_id();
    if (!made) {
      fail("id", made.error());
      co_return;
    }
    id = std::move(*made);
  }
  if (is_new) s.record_.created = t;
  s.record_.last_seen = t;
  const wall_time expires =
      std::min(t + options_.idle_timeout, s.record_.created + options_.absolute_timeout);
  auto saved = co_await store_->save(id, s.record_, expires);
  if (!saved) {
    fail("save", saved.error());
    co_return;
  }
  if (new_id && !is_new) {
    // Rotation: the old id must stop working, or a fixated id planted
    // before login would still open the logged-in session.
    // So a failure here fails the request, and the client keeps its old
    // cookie (the new record is left to expire unused).
    auto gone = co_await store_->erase(s.stored_id_);
    if (!gone) {
      fail("erase of the rotated id", gone.error());
      co_return;
    }
  }
  if (new_id) (void)res.headers.add("Set-Cookie", cookie_for(id, s.record_.created, t));
}

}  // namespace trellis::gateway
