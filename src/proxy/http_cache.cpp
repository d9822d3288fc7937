#include "trellis/proxy/http_cache.hpp"

#include <algorithm>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <bit>
#include <utility>

#include "trellis/core/awaitable.hpp"

namespace trellis::proxy {

namespace {

// What a stored response costs beyond its bytes: the object, its
// shared_ptr control block, the headers' index, the store's entry.
constexpr std::uint64_t overhead = 256;

}  // namespace

std::uint64_t cached_response::weight() const noexcept {
  std::uint64_t w = overhead + headers.wire_size() + body.size() + gzip_body.size() + variant.size();
  for (const auto& t : tags) w += t.size() + 32;
  return w;
}

// The variants of one URL, newest first. Replaced whole (copy on write)
// when one is added: readers keep the list they found.
struct http_cache::variants {
  std::vector<cached_ptr> list;
  std::uint64_t weight = 0;
  cache::time_point keep_until{};
};

// A fill in progress: the requests waiting for it, each a timer on its
// own executor that the leader cancels (a cancelled wait is the wake-up).
struct http_cache::fill::state {
  std::mutex mutex;
  bool ended = false;
  struct waiter {
    asio::any_io_executor executor;
    std::shared_ptr<asio::steady_timer> timer;
  };
  std::vector<waiter> waiters;
};

http_cache::http_cache(http_cache_options options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = cache::steady_now;
  if (options_.max_bytes == 0) options_.max_bytes = 1;
  if (options_.max_entry_bytes == 0)
    options_.max_entry_bytes = std::max<std::uint64_t>(options_.max_bytes / 8, 1);
  options_.max_entry_bytes = std::min(options_.max_entry_bytes, options_.max_bytes);
  if (options_.max_variants == 0) options_.max_variants = 1;
  // Each shard evicts within its own share of max_bytes, so the largest
  // response must fit one share: fewer shards rather than a cap below
  // max_entry_bytes.
  std::size_t shards = std::bit_ceil(std::max<std::size_t>(options_.shards, 1));
  while (shards > 1 && options_.max_bytes / shards < options_.max_entry_bytes) shards /= 2;
  options_.shards = shards;
  store_type::options so;
  so.shards = shards;
  so.cache.capacity = options_.max_bytes;
  so.cache.policy = options_.eviction;
  so.cache.clock = options_.clock;
  so.cache.weigher = [](const std::string& key, const std::shared_ptr<const variants>& v) {
    return key.size() + v->weight;
  };
  store_ = std::make_unique<store_type>(std::move(so));
}

http_cache::~http_cache() = default;

bool http_cache::purged(const cached_response& r) const {
  if (r.generation_ < floor_.load(std::memory_order_acquire)) return true;
  if (r.tags.empty() || !any_purged_tag_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(tags_mutex_);
  for (const auto& t : r.tags) {
    const auto it = purged_tags_.find(t);
    if (it != purged_tags_.end() && it->second > r.generation_) return true;
  }
  return false;
}

cached_ptr http_cache::find(const std::string& key,
                            const std::function<bool(const cached_response&)>& usable) {
  const auto found = store_->get(key);
  if (!found) return nullptr;
  const cache::time_point now = options_.clock();
  for (const auto& r : (*found)->list)
    if (r->keep_until > now && !purged(*r) && (!usable || usable(*r))) return r;
  return nullptr;
}

cached_ptr http_cache::find(const std::string& key) {
  return find(key, nullptr);
}

cached_ptr http_cache::store(const std::string& key, cached_response r) {
  const cache::time_point now = options_.clock();
  if (r.keep_until <= now) return nullptr;
  const std::uint64_t w = r.weight();
  if (w + key.size() > options_.max_entry_bytes || w + key.size() > options_.max_bytes) {
    too_large_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  r.generation_ = generation_.fetch_add(1, std::memory_order_acq_rel);
  auto fresh = std::make_shared<const cached_response>(std::move(r));

  auto next = std::make_shared<variants>();
  next->list.push_back(fresh);
  if (const auto old = store_->peek(key)) {
    for (const auto& v : (*old)->list) {
      if (next->list.size() >= options_.max_variants) break;
      if (v->variant == fresh->variant || v->keep_until <= now || purged(*v)) continue;
      next->list.push_back(v);
    }
  }
  for (const auto& v : next->list) {
    next->weight += v->weight();
    next->keep_until = std::max(next->keep_until, v->keep_until);
  }
  // The variants together may outweigh one entry's limit; the newest wins.
  while (next->list.size() > 1 && next->weight + key.size() > options_.max_entry_bytes) {
    next->weight -= next->list.back()->weight();
    next->list.pop_back();
    next->keep_until = {};
    for (const auto& v : next->list) next->keep_until = std::max(next->keep_until, v->keep_until);
  }
  const cache::time_point until = next->keep_until;
  if (!store_->put_until(key, std::move(next), until)) return nullptr;
  stored_.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

bool http_cache::purge(const std::string& key) {
  const bool erased = store_->erase(key);
  if (erased) purges_.fetch_add(1, std::memory_order_relaxed);
  return erased;
}

void http_cache::purge_tag(std::string_view tag) {
  tag_purges_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t g = generation_.fetch_add(1, std::memory_order_acq_rel);
  std::lock_guard lock(tags_mutex_);
  if (purged_tags_.size() >= options_.max_purged_tags) {
    // Remembering one more tag would exceed the bound: invalidate
    // everything stored until now instead, which covers every tag.
    purged_tags_.clear();
    floor_.store(g + 1, std::memory_order_release);
    return;
  }
  purged_tags_[std::string(tag)] = g + 1;
  any_purged_tag_.store(true, std::memory_order_release);
}

void http_cache::clear() {
  store_->clear();
}

http_cache_stats http_cache::stats() const {
  http_cache_stats s;
  s.urls = store_->size();
  s.bytes = store_->weight();
  const cache::stats c = store_->counters();
  s.evictions = c.evictions;
  s.expirations = c.expirations;
  s.stored = stored_.load(std::memory_order_relaxed);
  s.too_large = too_large_.load(std::memory_order_relaxed);
  s.purges = purges_.load(std::memory_order_relaxed);
  s.tag_purges = tag_purges_.load(std::memory_order_relaxed);
  s.collapsed = collapsed_.load(std::memory_order_relaxed);
  s.collapse_timeouts = collapse_timeouts_.load(std::memory_order_relaxed);
  return s;
}

// --- collapsing ------------------------------------------------------------------

http_cache::fill::fill(fill&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)),
      key_(std::move(o.key_)),
      state_(std::move(o.state_)) {}

http_cache::fill& http_cache::fill::operator=(fill&& o) noexcept {
  if (this != &o) {
    end();
    owner_ = std::exchange(o.owner_, nullptr);
    key_ = std::move(o.key_);
    state_ = std::move(o.state_);
  }
  return *this;
}

void http_cache::fill::end() noexcept {
  if (owner_ == nullptr) return;
  owner_->end_fill(key_, state_);
  owner_ = nullptr;
  state_.reset();
}

void http_cache::end_fill(const std::string& key, const std::shared_ptr<fill::state>& s) noexcept {
  {
    std::lock_guard lock(fills_mutex_);
    const auto it = fills_.find(key);
    if (it != fills_.end() && it->second == s) fills_.erase(it);
  }
  std::vector<fill::state::waiter> waiters;
  {
    std::lock_guard lock(s->mutex);
    s->ended = true;
    waiters.swap(s->waiters);
  }
  // Each waiter's timer is cancelled on its own executor (timers are not
  // thread-safe); the handler holds the last reference, so the timer also
  // dies there.
  for (auto& w : waiters) asio::post(w.executor, [t = std::move(w.timer)] { t->cancel(); });
}

asio::awaitable<http_cache::fill_outcome> http_cache::begin_fill(const std::string& key,
                                                                 fill& out) {
  std::shared_ptr<fill::state> s;
  {
    std::lock_guard lock(fills_mutex_);
    auto& slot = fills_[key];
    if (!slot) {
      slot = std::make_shared<fill::state>();
      out = fill(this, key, slot);
      co_return fill_outcome::lead;
    }
    s = slot;
  }
  const auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex, options_.collapse_timeout);
  {
    std::lock_guard lock(s->mutex);
    if (s->ended) co_return fill_outcome::filled;
    fill::state::waiter w;  // (not braced: g++ 12 mishandles that in coroutines)
    w.executor = ex;
    w.timer = timer;
    s->waiters.push_back(std::move(w));
  }
  collapsed_.fetch_add(1, std::memory_order_relaxed);
  // The leader's wake-up is posted to this executor, so it cannot run
  // before this wait has started.
  const auto [ec] = co_await timer->async_wait(use_nothrow);
  if (!ec) {
    collapse_timeouts_.fetch_add(1, std::memory_order_relaxed);
    co_return fill_outcome::timed_out;
  }
  co_return fill_outcome::filled;
}

}  // namespace trellis::proxy
