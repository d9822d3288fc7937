// single_flight: one call per key at a time; everyone else who asks for the
// same key meanwhile waits for that call's result.
//
// When a popular entry expires, every request for it misses at once, and
// without coordination each of them asks the database: a cache stampede
// (or "thundering herd"), which can take the database down exactly when
// the cache is no longer shielding it. With run(), the first caller for a
// key (the leader) runs the function; callers arriving while it runs block
// on the leader's shared result and get it too — a value, an error, or the
// exception the function threw, rethrown in every waiter. Nothing is
// remembered once the call ends: the next run() for the key calls again,
// so an error is never cached.
//
// This is the blocking, thread-based form (std::shared_future); it belongs
// to the pure layer and knows nothing of Asio. The name and the idea come
// from Go's golang.org/x/sync/singleflight.
//
// Thread-safety: every member function may be called from any thread. The
// function runs on the leader's thread, without any lock held.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "trellis/core/result.hpp"

namespace trellis::cache {

template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class single_flight {
 public:
  // Runs fn() (which returns result<V>) unless a call for key is running;
  // then waits for that call and returns its result. If the call threw,
  // rethrows its exception (in the leader and in every waiter).
  template <class F>
  result<V> run(const K& key, F&& fn) {
    std::unique_lock lock(mutex_);
    if (auto it = flights_.find(key); it != flights_.end()) {
      std::shared_ptr<flight> f = it->second;
      ++f->waiters;
      lock.unlock();
      return f->outcome.get();
    }
    auto f = std::make_shared<flight>();
    flights_.emplace(key, f);
    lock.unlock();
    return lead(key, *f, std::forward<F>(fn));
  }

  // Like run(), but when a call for key is already running returns nullopt
  // at once instead of waiting: for work that is worth doing once and not
  // worth waiting for (an early refresh while a fresh value is at hand).
  template <class F>
  std::optional<result<V>> try_run(const K& key, F&& fn) {
    std::unique_lock lock(mutex_);
    if (flights_.contains(key)) return std::nullopt;
    auto f = std::make_shared<flight>();
    flights_.emplace(key, f);
    lock.unlock();
    return lead(key, *f, std::forward<F>(fn));
  }

  // Calls running now.
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return flights_.size();
  }

  // Callers waiting for the running call for key (0 when none runs).
  std::size_t waiters(const K& key) const {
    std::lock_guard lock(mutex_);
    const auto it = flights_.find(key);
    return it == flights_.end() ? 0 : it->second->waiters;
  }

 private:
  struct flight {
    flight() : outcome(done.get_future().share()) {}
    std::promise<result<V>> done;
    std::shared_future<result<V>> outcome;
    std::size_t waiters = 0;  // guarded by mutex_
  };

  // Runs fn as the leader. The flight is removed before its result is
  // published: a caller arriving after that starts a new call rather than
  // reading a finished one, and the waiters already holding the flight get
  // the result.
  template <class F>
  result<V> lead(const K& key, flight& f, F&& fn) {
    try {
      result<V> r = std::forward<F>(fn)();
      finish(key);
      f.done.set_value(r);
      return r;
    } catch (...) {
      finish(key);
      f.done.set_exception(std::current_exception());
      throw;
    }
  }

  void finish(const K& key) {
    std::lock_guard lock(mutex_);
    flights_.erase(key);
  }

  mutable std::mutex mutex_;
  std::unordered_map<K, std::shared_ptr<flight>, Hash, KeyEqual> flights_;
};

}  // namespace trellis::cache
