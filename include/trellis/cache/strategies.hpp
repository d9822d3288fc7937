// Caching strategies: the four ways an application puts a cache in front
// of its system of record (a database, another service), as small classes
// with one shape: get(key) -> result<V>, set(key, value) -> result<void>.
//
//   cache_aside    the application looks in the cache, and on a miss reads
//                  the store and fills the cache itself; a write goes to
//                  the store and invalidates the cached copy. The cache
//                  knows nothing of the store. Simple and resilient (the
//                  cache down = slower, not broken), but every miss is two
//                  trips, and concurrent misses on one key all hit the
//                  store (no single flight: each caller is on its own).
//   read_through   the cache loads on a miss, through the store's load
//                  function, once per key for all concurrent callers
//                  (loading_cache). Callers never talk to the store for
//                  reads. Writes as cache_aside: store, then invalidate.
//   write_through  reads as read_through; a write goes to the store first
//                  and, once the store has it, into the cache, so a read
//                  right after a write hits. Writes pay the store's latency;
//                  the cache never holds what the store refused.
//   write_behind   a write goes into the cache and a bounded queue and
//                  returns; a writer thread saves queued writes to the store
//                  in order. Writes cost a cache put; repeated writes of one
//                  key while it waits are coalesced into one save. The
//                  price: a write the store refuses is known only later
//                  (on_error), and writes still queued when the process
//                  dies are lost. The destructor (or shutdown()) writes
//                  everything queued before returning. When the queue is
//                  full, `when_full` says what set() does: block until the
//                  writer makes room, or reject with error::queue_full.
//
// docs/caching.md compares them. Each strategy's cache is thread-safe and
// so is each strategy; the store's functions are called from the callers'
// threads (and, for write_behind's saves, from its writer thread) and must
// be safe to call concurrently.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "trellis/cache/error.hpp"
#include "trellis/cache/loading_cache.hpp"
#include "trellis/cache/sharded_cache.hpp"
#include "trellis/core/result.hpp"

namespace trellis::cache {

// The system of record behind a cache.
template <class K, class V>
struct backing_store {
  // The value for key; error::not_found (or the store's own error) when
  // there is none.
  std::function<result<V>(const K&)> load;
  // Makes value the value for key.
  std::function<result<void>(const K&, const V&)> save;
};

// Cache-aside over a cache the application owns and may use directly.
template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class cache_aside {
 public:
  // `ttl` is the lifetime of values filled on a miss; zero: the cache's
  // default TTL. REQUIRES: `cache` outlives this object.
  cache_aside(sharded_cache<K, V, Hash, KeyEqual>& cache, backing_store<K, V> store,
              duration ttl = duration::zero())
      : cache_(cache), store_(std::move(store)), ttl_(ttl) {}

  result<V> get(const K& key) {
    if (std::optional<V> v = cache_.get(key)) return std::move(*v);
    result<V> r = store_.load(key);
    if (r) {
      if (ttl_ > duration::zero())
        cache_.put(key, *r, ttl_);
      else
        cache_.put(key, *r);
    }
    return r;
  }

  // Writes to the store, then drops the cached copy, whether or not the
  // store accepted the write: after a failure, what the store holds is not
  // known, and the next read will ask it. Deleting rather than updating
  // the cached value means two concurrent writers cannot leave the cache
  // holding the loser's value.
  result<void> set(const K& key, const V& value) {
    result<void> r = store_.save(key, value);
    cache_.erase(key);
    return r;
  }

 private:
  sharded_cache<K, V, Hash, KeyEqual>& cache_;
  backing_store<K, V> store_;
  duration ttl_;
};

template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class read_through {
 public:
  using cache_type = loading_cache<K, V, Hash, KeyEqual>;

  read_through(typename cache_type::options o, backing_store<K, V> store)
      : save_(std::move(store.save)), cache_(std::move(o), std::move(store.load)) {}

  result<V> get(const K& key) { return cache_.get(key); }

  // Writes to the store, then invalidates (as cache_aside::set).
  result<void> set(const K& key, const V& value) {
    result<void> r = save_(key, value);
    cache_.erase(key);
    return r;
  }

  cache_type& cache() noexcept { return cache_; }

 private:
  std::function<result<void>(const K&, const V&)> save_;
  cache_type cache_;
};

template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class write_through {
 public:
  using cache_type = loading_cache<K, V, Hash, KeyEqual>;

  write_through(typename cache_type::options o, backing_store<K, V> store)
      : save_(std::move(store.save)), cache_(std::move(o), std::move(store.load)) {}

  result<V> get(const K& key) { return cache_.get(key); }

  // Writes to the store; on success caches the value, on failure drops the
  // cached copy (the store's state is then unknown) and returns the error.
  result<void> set(const K& key, const V& value) {
    result<void> r = save_(key, value);
    if (r)
      cache_.put(key, value);
    else
      cache_.erase(key);
    return r;
  }

  cache_type& cache() noexcept { return cache_; }

 private:
  std::function<result<void>(const K&, const V&)> save_;
  cache_type cache_;
};

enum class overflow : std::uint8_t {
  block,   // set() waits until the writer has made room
  reject,  // set() fails at once with error::queue_full
};

template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class write_behind {
 public:
  using cache_type = loading_cache<K, V, Hash, KeyEqual>;

  struct options {
    typename cache_type::options cache;
    // Keys waiting to be written, at most. The queue absorbs bursts; its
    // size is also how much is lost if the process dies.
    std::size_t queue_capacity = 1024;
    // What set() does when the queue is full. Blocking slows writers to the
    // store's pace (back-pressure); rejecting keeps them fast and makes
    // them deal with the refusal.
    overflow when_full = overflow::block;
    // Called on the writer thread for each save that failed (or threw,
    // reported as std::errc::io_error). The write is then dropped: the
    // cache keeps the value until evicted, the store does not have it. It
    // must not call set() when when_full is block: the writer would wait
    // for room only it can make.
    std::function<void(const K&, std::error_code)> on_error;
  };

  struct write_stats {
    std::uint64_t queued = 0;     // writes that took a queue place
    std::uint64_t coalesced = 0;  // writes merged into one still queued for the same key
    std::uint64_t written = 0;    // saves the store accepted
    std::uint64_t failed = 0;     // saves the store refused (or that threw)
    std::uint64_t rejected = 0;   // set() calls refused: queue full, or shut down
  };

  write_behind(options o, backing_store<K, V> store)
      : options_(std::move(o)),
        store_(std::move(store)),
        cache_(options_.cache, [this](const K& key) { return load(key); }) {
    if (options_.queue_capacity == 0) options_.queue_capacity = 1;
    writer_ = std::thread([this] { write_loop(); });
  }

  write_behind(const write_behind&) = delete;
  write_behind& operator=(const write_behind&) = delete;

  // Writes everything queued, then stops the writer.
  ~write_behind() { shutdown(); }

  // From the cache; on a miss, a write still queued for key, else the
  // store (so a value evicted before it was written is never read back
  // older from the store).
  result<V> get(const K& key) { return cache_.get(key); }

  // Caches value and queues it for the store. error::queue_full (reject
  // mode) or error::shut_down when it was not accepted; then neither the
  // cache nor the queue changed.
  result<void> set(const K& key, V value) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (stopping_) {
        ++stats_.rejected;
        return unexpected(error::shut_down);
      }
      const auto it = pending_.find(key);
      if (it != pending_.end() && it->second.queued) {
        it->second.value = value;
        ++it->second.version;
        ++stats_.coalesced;
        break;
      }
      if (order_.size() < options_.queue_capacity) {
        if (it != pending_.end()) {  // being written now: queue the newer value again
          it->second.value = value;
          ++it->second.version;
          it->second.queued = true;
        } else {
          pending_.emplace(key, pending_write{value, 1, true});
        }
        order_.push_back(key);
        ++stats_.queued;
        break;
      }
      if (options_.when_full == overflow::reject) {
        ++stats_.rejected;
        return unexpected(error::queue_full);
      }
      space_.wait(lock);
    }
    // Under the queue's lock, so that the cache and the queue agree on
    // which of two concurrent writes to one key came last.
    cache_.put(key, std::move(value));
    work_.notify_one();
    return {};
  }

  // Blocks until every write accepted so far has been saved (or failed).
  void flush() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return order_.empty() && writing_ == 0; });
  }

  // Refuses further writes, saves what is queued, and stops the writer.
  // Idempotent; called by the destructor.
  void shutdown() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    space_.notify_all();
    if (writer_.joinable()) writer_.join();
  }

  // Keys queued and not yet being written.
  std::size_t queued() const {
    std::lock_guard lock(mutex_);
    return order_.size();
  }

  write_stats counters() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

  cache_type& cache() noexcept { return cache_; }

 private:
  struct pending_write {
    V value;
    std::uint64_t version = 0;  // bumped by each set(); tells a finished save if it is stale
    bool queued = false;        // in order_ (false while the writer saves it)
  };

  result<V> load(const K& key) {
    {
      std::lock_guard lock(mutex_);
      const auto it = pending_.find(key);
      if (it != pending_.end()) return it->second.value;
    }
    return store_.load(key);
  }

  void write_loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      work_.wait(lock, [&] { return !order_.empty() || stopping_; });
      if (order_.empty()) return;  // stopping, and everything written
      K key = std::move(order_.front());
      order_.pop_front();
      space_.notify_one();
      auto it = pending_.find(key);
      it->second.queued = false;
      const V value = it->second.value;
      const std::uint64_t version = it->second.version;
      ++writing_;
      lock.unlock();

      std::error_code ec;
      try {
        ec = store_.save(key, value).error();
      } catch (...) {
        ec = std::make_error_code(std::errc::io_error);
      }
      if (ec && options_.on_error) {
        try {
          options_.on_error(key, ec);
        } catch (...) {
          // A failing error handler must not stop the writer.
        }
      }

      lock.lock();
      --writing_;
      ++(ec ? stats_.failed : stats_.written);
      // Forget the write unless a newer value arrived meanwhile.
      it = pending_.find(key);
      if (it != pending_.end() && it->second.version == version && !it->second.queued)
        pending_.erase(it);
      if (order_.empty() && writing_ == 0) idle_.notify_all();
    }
  }

  options options_;
  backing_store<K, V> store_;
  mutable std::mutex mutex_;
  std::condition_variable work_;   // the writer waits for writes
  std::condition_variable space_;  // blocked set() calls wait for room
  std::condition_variable idle_;   // flush() waits for an empty queue
  std::deque<K> order_;            // keys in the order their writes were queued
  std::unordered_map<K, pending_write, Hash, KeyEqual> pending_;
  std::size_t writing_ = 0;
  bool stopping_ = false;
  write_stats stats_;
  cache_type cache_;
  std::thread writer_;
};

}  // namespace trellis::cache
