// The local rate-limit store: shared by every worker thread of the
// process, sharded with a mutex per shard (see rate_limit_store.hpp for the
// why of each choice).
#include "trellis/gateway/rate_limit_store.hpp"

#include <algorithm>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.rate_limit"; }
  std::string message(int v) const override {
    switch (static_cast<rate_limit_error>(v)) {
      case rate_limit_error::store_unavailable: return "rate-limit store unavailable";
      case rate_limit_error::bad_charge: return "invalid rate-limit charge";
    }
    return "unknown rate-limit error";
  }
};

// One key's state. The three numbers are the TAT (token bucket) or the
// window start, current and previous counts (sliding window): whichever the
// policy named in the key uses.
struct entry {
  std::string key;  // "<policy name>:<client key>"; ':' cannot occur in a policy name
  // From this time on the state is "full" and the entry can be dropped
  // without changing any decision: what a Redis store sets as the TTL.
  std::int64_t idle_at = 0;
  std::int64_t a = 0;
  std::int64_t b = 0;
  std::int64_t c = 0;
};

// What one charge computed in the first phase, applied in the second.
struct pending {
  std::string key;
  std::size_t shard = 0;
  bool existed = false;
  std::int64_t idle_at = 0;
  std::int64_t a = 0, b = 0, c = 0;
};

}  // namespace

const std::error_category& rate_limit_category() noexcept {
  static const category instance;
  return instance;
}

// A shard: an LRU list (front: most recently used) indexed by key. The
// index's keys are views of the list nodes' strings, which never move.
struct alignas(64) local_rate_limit_store::shard {
  std::mutex mutex;
  std::list<entry> lru;
  std::unordered_map<std::string_view, std::list<entry>::iterator> index;
  std::size_t capacity = 0;
  std::uint64_t dropped_full = 0;
  std::uint64_t evicted = 0;

  std::list<entry>::iterator find(std::string_view key) {
    const auto it = index.find(key);
    return it == index.end() ? lru.end() : it->second;
  }
  void erase(std::list<entry>::iterator it) {
    index.erase(std::string_view(it->key));  // first: the index's key views the node
    lru.erase(it);
  }
  void touch(std::list<entry>::iterator it) { lru.splice(lru.begin(), lru, it); }

  // Drops up to `n` full entries from the cold end, stopping at the first
  // live one (what lies beyond it was used more recently still).
  void sweep(std::size_t n, std::int64_t now) {
    while (n-- > 0 && !lru.empty() && lru.back().idle_at <= now) {
      erase(std::prev(lru.end()));
      ++dropped_full;
    }
  }

  // Makes room for one more entry: a full entry among the `scan` coldest
  // if there is one (no information lost), else the least recently used.
  void make_room(std::size_t scan, std::int64_t now) {
    if (index.size() < capacity || lru.empty()) return;
    auto it = std::prev(lru.end());
    for (std::size_t i = 0; i < scan; ++i) {
      if (it->idle_at <= now) {
        erase(it);
        ++dropped_full;
        return;
      }
      if (it == lru.begin()) break;
      --it;
    }
    erase(std::prev(lru.end()));
    ++evicted;
  }
};

struct local_rate_limit_store::impl {
  local_rate_limit_store_options options;
  std::unique_ptr<shard[]> shards;
};

local_rate_limit_store::local_rate_limit_store(local_rate_limit_store_options options)
    : impl_(std::make_unique<impl>()) {
  if (options.shards == 0)
    throw core::config_error("rate_limit.store.shards", "must be at least 1");
  if (options.max_keys < options.shards)
    throw core::config_error("rate_limit.store.max_keys",
                             "must be at least the number of shards (one key each)");
  impl_->options = options;
  impl_->shards = std::make_unique<shard[]>(options.shards);
  // Split max_keys evenly; the first shards take the remainder, so the
  // total is exactly max_keys.
  for (std::size_t i = 0; i < options.shards; ++i)
    impl_->shards[i].capacity =
        options.max_keys / options.shards + (i < options.max_keys % options.shards ? 1 : 0);
}

local_rate_limit_store::~local_rate_limit_store() = default;

asio::awaitable<result<bool>> local_rate_limit_store::acquire(
    std::span<const rate_limit_charge> charges, std::int64_t cost, std::chrono::microseconds now,
    std::span<rate_limit_decision> out) {
  co_return try_acquire(charges, cost, now, out);
}

result<bool> local_rate_limit_store::try_acquire(std::span<const rate_limit_charge> charges,
                                                 std::int64_t cost, std::chrono::microseconds now,
                                                 std::span<rate_limit_decision> out) {
  if (out.size() != charges.size() || cost < 0 || now.count() < 0)
    return unexpected(rate_limit_error::bad_charge);
  for (const auto& ch : charges)
    if (ch.policy == nullptr) return unexpected(rate_limit_error::bad_charge);

  const std::int64_t t = now.count();
  const auto& opt = impl_->options;

  // Everything that allocates happens before any lock is taken.
  std::vector<pending> work(charges.size());
  for (std::size_t i = 0; i < charges.size(); ++i) {
    auto& w = work[i];
    w.key.reserve(charges[i].policy->name.size() + 1 + charges[i].key.size());
    w.key.append(charges[i].policy->name).append(1, ':').append(charges[i].key);
    w.shard = std::hash<std::string_view>{}(w.key) % opt.shards;
  }
  std::vector<std::size_t> order;
  order.reserve(work.size());
  for (const auto& w : work) order.push_back(w.shard);
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());

  // Lock every shard involved, in index order: two multi-shard charges
  // then never wait for each other in a cycle.
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(order.size());
  for (std::size_t s : order) locks.emplace_back(impl_->shards[s].mutex);

  // Phase 1: every policy decides on the current state; nothing changes.
  bool all = true;
  for (std::size_t i = 0; i < charges.size(); ++i) {
    auto& w = work[i];
    auto& sh = impl_->shards[w.shard];
    const auto it = sh.find(w.key);
    w.existed = it != sh.lru.end();
    const rate_limit_policy& p = *charges[i].policy;
    rate_limit_decision& d = out[i];
    if (p.algorithm == rate_limit_algorithm::token_bucket) {
      const std::int64_t tat = w.existed ? it->a : t;
      const gcra_outcome o = gcra_step(tat, t, cost, gcra_params_of(p));
      d.allowed = o.allowed;
      d.over_capacity = o.retry_after < 0;
      d.remaining = o.remaining;
      d.reset = std::chrono::microseconds(o.reset);
      d.retry_after = std::chrono::microseconds(o.retry_after > 0 ? o.retry_after : 0);
      w.a = o.tat;
      w.idle_at = o.tat;
    } else {
      sliding_window_state s;
      if (w.existed) s = {it->a, it->b, it->c};
      const sliding_window_outcome o = sliding_window_step(s, t, cost, p.limit, p.period.count());
      d.allowed = o.allowed;
      d.over_capacity = o.retry_after < 0;
      d.remaining = o.remaining;
      d.reset = std::chrono::microseconds(o.reset);
      d.retry_after = std::chrono::microseconds(o.retry_after > 0 ? o.retry_after : 0);
      w.a = o.state.window_start;
      w.b = o.state.current;
      w.c = o.state.previous;
      w.idle_at = (t > o.state.window_start ? t : o.state.window_start) + o.reset;
    }
    all = all && d.allowed;
  }

  // Phase 2: all allowed, so every state is written; otherwise none is,
  // but the keys that exist are marked as used: a client being refused is
  // active, and evicting it would forgive it.
  for (auto& w : work) {
    auto& sh = impl_->shards[w.shard];
    auto it = sh.find(w.key);  // again: an earlier insertion may have evicted it
    if (!all) {
      if (it != sh.lru.end()) sh.touch(it);
      continue;
    }
    if (it == sh.lru.end()) {
      sh.make_room(opt.eviction_scan, t);
      sh.lru.push_front(entry{std::move(w.key), 0, 0, 0, 0});
      it = sh.lru.begin();
      sh.index.emplace(std::string_view(it->key), it);
    } else {
      sh.touch(it);
    }
    it->idle_at = w.idle_at;
    it->a = w.a;
    it->b = w.b;
    it->c = w.c;
  }

  for (std::size_t s : order) impl_->shards[s].sweep(opt.sweep_per_access, t);
  return all;
}

local_rate_limit_store::statistics local_rate_limit_store::stats() const {
  statistics st;
  for (std::size_t i = 0; i < impl_->options.shards; ++i) {
    auto& sh = impl_->shards[i];
    std::lock_guard lock(sh.mutex);
    st.keys += sh.index.size();
    st.dropped_full += sh.dropped_full;
    st.evicted += sh.evicted;
  }
  return st;
}

}  // namespace trellis::gateway
