// The Redis session store: GET, SET PX and DEL on one key per session, on
// the calling worker's own connection (see redis_session_store.hpp for the
// key layout, TTLs, consistency and failure behaviour).
#include "trellis/gateway/redis_session_store.hpp"

#include <asio/this_coro.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "trellis/core/log.hpp"

namespace trellis::gateway {

namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.redis_session"; }
  std::string message(int v) const override {
    switch (static_cast<redis_session_error>(v)) {
      case redis_session_error::unavailable: return "session store unavailable (Redis)";
    }
    return "unknown redis session store error";
  }
};

// A transport failure: the client could not ask, or got no answer. Logged
// at debug only: during an outage every request fails this way, and the
// middleware already logs each one.
std::error_code unavailable(std::string_view op, std::error_code transport) {
  core::log::debug("session store unavailable", {{"op", op}, {"error", transport.message()}});
  return make_error_code(redis_session_error::unavailable);
}

// Redis answered, but not what the command answers when it works (an error
// reply such as OOM or READONLY): a configuration or capacity problem an
// operator must see.
std::error_code refused(std::string_view op, const resp::value& reply) {
  core::log::warn("session store: unexpected reply",
                  {{"op", op}, {"reply", resp::describe(reply)}});
  return make_error_code(redis_session_error::unavailable);
}

// Milliseconds from `from` to `to`, rounded up: a TTL shorter than asked
// would end a session early, a fraction of a millisecond longer costs
// nothing.
std::int64_t ceil_ms(wall_time from, wall_time to) {
  return std::chrono::ceil<std::chrono::milliseconds>(to - from).count();
}

}  // namespace

const std::error_category& redis_session_category() noexcept {
  static const category instance;
  return instance;
}

redis_session_store::redis_session_store(core::runtime& rt, asio::ip::tcp::endpoint server,
                                         redis_session_store_options options)
    : prefix_(std::move(options.key_prefix)),
      clock_(std::move(options.clock)),
      clients_(rt, server, options.client, "redis_session_store") {}

redis_session_store::~redis_session_store() = default;

std::string redis_session_store::key_for(std::string_view id) const {
  std::string key;
  key.reserve(prefix_.size() + id.size());
  key += prefix_;
  key += id;
  return key;
}

wall_time redis_session_store::now() const {
  return clock_ ? clock_() : std::chrono::system_clock::now();
}

asio::awaitable<result<session_record>> redis_session_store::load(std::string_view id) {
  redis::client& client = clients_.here(co_await asio::this_coro::executor);
  const std::string key = key_for(id);
  auto reply = co_await client.command("GET", key);
  if (!reply) co_return unexpected(unavailable("load", reply.error()));
  const resp::value& v = *reply;
  if (v.is_null()) co_return unexpected(session_error::not_found);
  if (v.is_error()) {
    // Something other than a string under the key (a hash, a list): not a
    // record, whoever put it there. A save() replaces it.
    if (v.text().starts_with("WRONGTYPE")) co_return unexpected(session_error::bad_record);
    co_return unexpected(refused("load", v));
  }
  if (v.kind() != resp::type::bulk_string) co_return unexpected(refused("load", v));
  co_return decode_session_record(v.text());
}

asio::awaitable<result<void>> redis_session_store::save(std::string_view id,
                                                        const session_record& record,
                                                        wall_time expires) {
  redis::client& client = clients_.here(co_await asio::this_coro::executor);
  // What decode_session_record refuses must not be written: every later
  // load would fail until the key expired.
  if (!record.data.is_object() || record.created.time_since_epoch().count() < 0 ||
      record.last_seen.time_since_epoch().count() < 0)
    co_return unexpected(session_error::bad_record);
  const wall_time t = now();
  if (expires <= t) {
    auto gone = co_await erase(id);
    co_return gone;
  }
  const std::string key = key_for(id);
  const std::string value = encode_session_record(record);
  const std::string ttl = std::to_string(ceil_ms(t, expires));
  auto reply = co_await client.command("SET", key, value, "PX", ttl);
  if (!reply) co_return unexpected(unavailable("save", reply.error()));
  if (!(reply->kind() == resp::type::simple_string && reply->text() == "OK"))
    co_return unexpected(refused("save", *reply));
  co_return result<void>{};
}

asio::awaitable<result<void>> redis_session_store::erase(std::string_view id) {
  redis::client& client = clients_.here(co_await asio::this_coro::executor);
  const std::string key = key_for(id);
  auto reply = co_await client.command("DEL", key);
  if (!reply) co_return unexpected(unavailable("erase", reply.error()));
  // DEL answers how many keys it removed: 0 (there was none) is success.
  if (reply->kind() != resp::type::integer) co_return unexpected(refused("erase", *reply));
  co_return result<void>{};
}

}  // namespace trellis::gateway
