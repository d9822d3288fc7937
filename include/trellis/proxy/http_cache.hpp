// http_cache: the storage of a caching reverse proxy — stored responses,
// bounded in bytes, shared by every worker, with purge by URL and by tag,
// and the collapsing of concurrent misses into one upstream request.
//
// What it stores and when it may serve it are RFC 9111's questions,
// answered by the decisions of http/caching.hpp; this class only keeps
// what it is given, the way Varnish's object store and nginx's
// proxy_cache zone do:
//
// - Key and variants. A response is stored under a primary key (the
//   proxy uses the effective request URI) and, within it, under its
//   variant key: the normalised values of the request fields its Vary
//   names (RFC 9111 §4.1). A URL holds up to max_variants variants; a
//   new variant with the key of an old one replaces it. find() takes a
//   predicate that says which variant the request may use.
// - Bytes. Every stored response weighs its head and body plus a fixed
//   overhead; the total stays under max_bytes, a cache/ eviction policy
//   choosing what leaves (W-TinyLFU by default: the best hit ratios of the
//   policies measured in docs/caching.md). A response heavier than
//   max_entry_bytes is not stored.
// - Lifetime. Each response says until when it is worth keeping
//   (keep_until: fresh, then stale but still useful for revalidation or
//   stale-if-error). The cache drops a URL when its last variant's
//   keep_until passes, reclaiming memory with the cache's timing wheel.
// - Purge. purge(key) drops a URL with all its variants. purge_tag(tag)
//   invalidates every response stored with that tag (a Surrogate-Key, as
//   CDNs call them) without a scan: the tag is stamped with a generation,
//   and a response stored before its tag's stamp is never returned again
//   (Varnish's bans, with tags instead of expressions). The stamps live in
//   a table bounded by max_purged_tags; when full, everything stored
//   before is invalidated at once and the table starts over.
// - Collapsing. When many requests miss on one URL at once, only the
//   first (the leader) should go upstream; begin_fill() makes the others
//   wait for the leader's fill to end (nginx's proxy_cache_lock, across
//   workers), then look again. A waiter gives up after collapse_timeout
//   and goes upstream on its own. A leader that learns its response will
//   not be stored (not cacheable, too large) ends its fill at once, so
//   waiters are not held behind a response they cannot share.
//
// Thread-safety: shared across workers (ARCHITECTURE, principle 4). Every
// member function may be called from any thread; the store is a
// sharded_cache (one mutex per shard), tag stamps and fills have a mutex
// each. A waiter is woken on its own executor. Stored responses are
// immutable and shared by pointer, so a reader never holds a lock while
// it sends one.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "trellis/cache/clock.hpp"
#include "trellis/cache/policy.hpp"
#include "trellis/cache/sharded_cache.hpp"
#include "trellis/codec/http/fields.hpp"

namespace trellis::proxy {

// One stored response. Immutable once stored: every reader shares it.
struct cached_response {
  int status = 200;
  http::fields headers;  // as the cache serves them: hop-by-hop fields removed
  std::string body;
  // The body gzip-compressed, made once when stored, for clients that
  // accept gzip (empty: none; see proxy_cache_options::gzip).
  std::string gzip_body;
  // When the request that fetched it was sent and when its response
  // arrived: RFC 9111 §4.2.3's request_time and response_time.
  std::chrono::system_clock::time_point request_time;
  std::chrono::system_clock::time_point response_time;
  // The variant key: what the request's fields named by Vary normalise to
  // (empty without Vary). Replaces a stored variant with the same key.
  std::string variant;
  // Tags (surrogate keys) that purge_tag() finds it by.
  std::vector<std::string> tags;
  // Until when it is worth keeping, on the cache's clock.
  cache::time_point keep_until{};
  // Its age when it arrived and how long it stays fresh (RFC 9111
  // §4.2.3's corrected_initial_age, §4.2.1's freshness_lifetime), worked
  // out once when it is stored rather than on every hit.
  std::chrono::seconds initial_age{0};
  std::chrono::seconds lifetime{0};

  // What it counts for against max_bytes.
  std::uint64_t weight() const noexcept;

 private:
  friend class http_cache;
  std::uint64_t generation_ = 0;  // when it was stored, in purge_tag()'s order
};

using cached_ptr = std::shared_ptr<const cached_response>;

struct http_cache_options {
  // The bytes the stored responses (heads, bodies, overhead) may total.
  std::uint64_t max_bytes = 64ull << 20;
  // The largest response stored (at most max_bytes); 0: max_bytes / 8. A
  // larger one is still relayed, just not kept.
  std::uint64_t max_entry_bytes = 0;
  // Which URL leaves when the cache is full (cache/policy.hpp).
  cache::eviction eviction = cache::eviction::w_tinylfu;
  // Lock shards of the store: 16 keeps contention rare on a few cores.
  // Each shard holds max_bytes / shards and evicts within it, so the
  // constructor lowers the count until max_entry_bytes fits one shard
  // (options() tells the count used).
  std::size_t shards = 16;
  // Variants kept per URL; the oldest goes when a new one would exceed it.
  std::size_t max_variants = 16;
  // How long a request waits for another's fill of the same URL before it
  // goes upstream itself (nginx's proxy_cache_lock_timeout).
  std::chrono::milliseconds collapse_timeout{5'000};
  // Purged tags remembered before everything older is invalidated at once.
  std::size_t max_purged_tags = 65'536;
  // Time for keep_until and expiry; empty: the steady clock.
  cache::clock_function clock;
};

struct http_cache_stats {
  std::size_t urls = 0;         // primary keys held
  std::uint64_t bytes = 0;      // their total weight
  std::uint64_t stored = 0;     // responses stored
  std::uint64_t too_large = 0;  // responses refused by max_entry_bytes (or max_bytes)
  std::uint64_t evictions = 0;  // URLs dropped to make room
  std::uint64_t expirations = 0;
  std::uint64_t purges = 0;      // purge() calls that dropped a URL
  std::uint64_t tag_purges = 0;  // purge_tag() calls
  std::uint64_t collapsed = 0;   // requests that waited for another's fill
  std::uint64_t collapse_timeouts = 0;
};

class http_cache {
 public:
  explicit http_cache(http_cache_options options = {});
  ~http_cache();
  http_cache(const http_cache&) = delete;
  http_cache& operator=(const http_cache&) = delete;

  // The newest stored variant of `key` that `usable` accepts, skipping
  // those purged by tag or past keep_until; null when there is none. Counts a hit or a miss
  // on the eviction policy's behalf (a URL found is a hit even if no
  // variant suits).
  cached_ptr find(const std::string& key,
                  const std::function<bool(const cached_response&)>& usable);
  // find() accepting any variant.
  cached_ptr find(const std::string& key);

  // Stores `r` under `key`, replacing the variant with the same variant
  // key, and returns it as stored. Null (and nothing changes) when it
  // weighs more than max_entry_bytes or when its keep_until has passed.
  // Two workers storing different variants of one URL at the same moment
  // may leave only one of them: the other is fetched and stored again when
  // next asked for.
  cached_ptr store(const std::string& key, cached_response r);

  // Drops `key` with every variant; false when it was not stored.
  bool purge(const std::string& key);
  // Invalidates every response stored so far with `tag`.
  void purge_tag(std::string_view tag);
  // Drops everything.
  void clear();

  // The leader's claim on filling a URL: ending it (end(), or destroying
  // it) wakes the requests waiting for that fill. Move-only.
  class fill {
   public:
    fill() = default;
    fill(fill&& o) noexcept;
    fill& operator=(fill&& o) noexcept;
    ~fill() { end(); }
    // Whether this is a claim (false: default-constructed, moved from, or
    // ended).
    explicit operator bool() const noexcept { return owner_ != nullptr; }
    // Wakes the waiters; they look again. Idempotent.
    void end() noexcept;

   private:
    friend class http_cache;
    struct state;
    fill(http_cache* owner, std::string key, std::shared_ptr<state> s)
        : owner_(owner), key_(std::move(key)), state_(std::move(s)) {}
    http_cache* owner_ = nullptr;
    std::string key_;
    std::shared_ptr<state> state_;
  };

  enum class fill_outcome {
    lead,       // `out` is the claim: fetch, store (or not), end it
    filled,     // another request's fill of the key ended: find() again
    timed_out,  // waited collapse_timeout: go upstream without waiting again
  };
  // Claims the fill of `key` when nobody has, or waits (on the caller's
  // executor, up to collapse_timeout) for the fill in progress to end.
  asio::awaitable<fill_outcome> begin_fill(const std::string& key, fill& out);

  http_cache_stats stats() const;
  const http_cache_options& options() const noexcept { return options_; }
  cache::time_point now() const { return options_.clock(); }

 private:
  struct variants;  // the stored variants of one URL
  using store_type = cache::sharded_cache<std::string, std::shared_ptr<const variants>>;

  bool purged(const cached_response& r) const;
  void end_fill(const std::string& key, const std::shared_ptr<fill::state>& s) noexcept;

  http_cache_options options_;
  std::unique_ptr<store_type> store_;
  std::atomic<std::uint64_t> generation_{1};

  mutable std::mutex tags_mutex_;
  std::unordered_map<std::string, std::uint64_t> purged_tags_;  // tag -> generation of its purge
  std::atomic<std::uint64_t> floor_{0};  // responses stored before this are invalid
  std::atomic<bool> any_purged_tag_{false};

  std::mutex fills_mutex_;
  std::unordered_map<std::string, std::shared_ptr<fill::state>> fills_;

  std::atomic<std::uint64_t> stored_{0}, too_large_{0}, purges_{0}, tag_purges_{0}, collapsed_{0},
      collapse_timeouts_{0};
};

}  // namespace trellis::proxy
