// loading_cache: a sharded cache that fills itself. get(key) returns the
// cached value or calls the loader, once per key however many threads miss
// at the same moment, and keeps what it returns for `ttl`.
//
// Two defences against a stampede on the backing store:
//
// - Single flight (single_flight.hpp): concurrent misses on one key make
//   one loader call; the others wait for it and share its value, its error
//   or its exception. Errors are returned, never cached: the next get()
//   calls the loader again.
// - Early refresh, probabilistic ("Optimal Probabilistic Cache Stampede
//   Prevention", VLDB 2015, which calls it XFetch). Each value remembers how long its load took
//   (delta). A hit refreshes it ahead of expiry when
//
//       now - delta * beta * ln(r)  >=  expiry,     r uniform in (0, 1]
//
//   -ln(r) is 0 most of the time and occasionally large, so a refresh is
//   almost never attempted early in a value's life and becomes more likely
//   the closer expiry is and the slower the load: usually one lucky request
//   reloads the value shortly before it would expire, and nobody ever sees
//   it missing. beta > 1 refreshes earlier, beta = 0 turns it off. The
//   refreshing caller loads and returns the new value; others keep getting
//   the old one meanwhile (try_run: nobody waits for a refresh). A failed
//   refresh (an error or an exception) returns the old value, still valid,
//   and counts a failure.
//
// Loader calls are counted with their durations (stats.hpp).
//
// A known race, shared by every read-through cache: a load that read the
// store before a concurrent write can store its older value after that
// write's; it lives at most `ttl`. erase() after a write narrows, but does
// not close, the window.
//
// Thread-safety: every member function may be called from any thread. The
// loader is called without any lock held, from the thread whose get()
// missed (or won the refresh draw).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <utility>

#include "trellis/cache/error.hpp"
#include "trellis/cache/sharded_cache.hpp"
#include "trellis/cache/single_flight.hpp"
#include "trellis/core/result.hpp"

namespace trellis::cache {

template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class loading_cache {
 public:
  using loader_type = std::function<result<V>(const K&)>;
  using weigher_type = std::function<std::uint64_t(const K&, const V&)>;

  struct options {
    // Entries (or, with a weigher, total weight) held at most.
    std::uint64_t capacity = 10'000;
    eviction policy = eviction::w_tinylfu;  // see memory_cache::options::policy
    weigher_type weigher;
    std::size_t shards = 16;
    // How long a loaded value is kept; zero: until evicted (and then never
    // refreshed early either).
    duration ttl = std::chrono::minutes(5);
    // XFetch's beta: 0 disables early refresh, 1 is the paper's optimum
    // for a single cache, more refreshes earlier (more loads, fewer
    // expiries seen by callers).
    double beta = 1.0;
    // Uniform random numbers in (0, 1] for the early-refresh draw; empty: a
    // per-thread generator. Tests pass a fixed value.
    std::function<double()> random;
    duration resolution = std::chrono::milliseconds(100);
    clock_function clock;
    std::uint64_t seed = 1;
  };

  // REQUIRES: loader is callable; it may be called from several threads at
  // once (for different keys).
  loading_cache(options o, loader_type loader)
      : options_(std::move(o)),
        clock_(options_.clock ? options_.clock : clock_function(steady_now)),
        cache_(make_cache_options(options_, clock_)),
        loader_(std::move(loader)) {
    if (!options_.random) options_.random = thread_random;
  }

  // The value for key: from the cache, or loaded (once for all concurrent
  // callers) and stored. The loader's error, or exception, when it fails.
  result<V> get(const K& key) {
    if (std::optional<loaded> hit = cache_.get(key)) {
      if (refresh_due(*hit)) {
        try {
          if (auto fresh = flights_.try_run(key, [&] { return load(key, true); })) {
            if (*fresh) return std::move(*fresh);
          }
        } catch (...) {
          // A refresh that threw is a failed refresh (load() counted it):
          // the value in hand is still valid.
        }
      }
      return std::move(hit->value);
    }
    return flights_.run(key, [&]() -> result<V> {
      // A leader that just finished may have stored the value between our
      // miss and our becoming leader: look again before loading.
      if (std::optional<loaded> again = cache_.peek(key)) return std::move(again->value);
      return load(key, false);
    });
  }

  // The cached value, without loading (counts a hit or a miss).
  std::optional<V> get_if_present(const K& key) {
    if (auto hit = cache_.get(key)) return std::move(hit->value);
    return std::nullopt;
  }

  // Stores a value the caller already has (write-through does), for ttl.
  // It has no load time, so it is not refreshed early.
  bool put(const K& key, V value) {
    loaded l{std::move(value), duration::zero(), time_point::max()};
    if (options_.ttl <= duration::zero()) return cache_.put(key, std::move(l));
    l.expires = clock_() + options_.ttl;
    const time_point expires = l.expires;
    return cache_.put_until(key, std::move(l), expires);
  }

  // Invalidates key: the next get() loads it.
  bool erase(const K& key) { return cache_.erase(key); }
  void clear() { cache_.clear(); }
  std::size_t purge_expired() { return cache_.purge_expired(); }
  std::size_t size() const { return cache_.size(); }

  // The cache's counters plus the loader's.
  stats counters() const {
    stats s = cache_.counters();
    std::lock_guard lock(load_mutex_);
    s.loads = load_stats_.loads;
    s.load_failures = load_stats_.load_failures;
    s.refreshes = load_stats_.refreshes;
    s.total_load_time = load_stats_.total_load_time;
    s.last_load_time = load_stats_.last_load_time;
    return s;
  }

  // Loader calls running now.
  std::size_t loads_in_flight() const { return flights_.in_flight(); }
  // Callers waiting for the load of key now running.
  std::size_t waiters(const K& key) const { return flights_.waiters(key); }

 private:
  struct loaded {
    V value;
    duration delta;      // how long the load took
    time_point expires;  // time_point::max(): never
  };

  using inner_cache = sharded_cache<K, loaded, Hash, KeyEqual>;

  static typename inner_cache::options make_cache_options(const options& o,
                                                          const clock_function& clock) {
    typename inner_cache::options c;
    c.cache.capacity = o.capacity;
    c.cache.policy = o.policy;
    if (o.weigher)
      c.cache.weigher = [w = o.weigher](const K& k, const loaded& l) { return w(k, l.value); };
    c.cache.resolution = o.resolution;
    c.cache.clock = clock;
    c.cache.seed = o.seed;
    c.shards = o.shards;
    return c;
  }

  static double thread_random() {
    thread_local std::mt19937_64 engine{std::random_device{}()};
    // 53 random bits, plus one so that 0 never comes out: (0, 1].
    return static_cast<double>((engine() >> 11) + 1) * 0x1.0p-53;
  }

  bool refresh_due(const loaded& l) const {
    if (options_.beta <= 0 || l.delta <= duration::zero() || l.expires == time_point::max())
      return false;
    const double r = options_.random();
    if (!(r > 0)) return true;
    const double gap = static_cast<double>(l.delta.count()) * options_.beta * -std::log(r);
    const time_point now = clock_();
    // Compared in doubles: a tiny r makes the gap exceed any duration.
    return gap >= static_cast<double>((l.expires - now).count());
  }

  result<V> load(const K& key, bool early) {
    const time_point start = clock_();
    result<V> r = unexpected(error::not_found);
    try {
      r = loader_(key);
    } catch (...) {
      record(clock_() - start, false, early);
      throw;
    }
    const time_point end = clock_();
    record(end - start, r.has_value(), early);
    if (!r) return r;
    loaded l{*r, end - start, time_point::max()};
    if (options_.ttl > duration::zero()) {
      l.expires = end + options_.ttl;
      const time_point expires = l.expires;
      cache_.put_until(key, std::move(l), expires);
    } else {
      cache_.put(key, std::move(l));
    }
    return r;
  }

  void record(duration took, bool ok, bool early) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took);
    std::lock_guard lock(load_mutex_);
    ++(ok ? load_stats_.loads : load_stats_.load_failures);
    if (early) ++load_stats_.refreshes;
    load_stats_.total_load_time += ns;
    load_stats_.last_load_time = ns;
  }

  options options_;
  clock_function clock_;
  inner_cache cache_;
  loader_type loader_;
  single_flight<K, V, Hash, KeyEqual> flights_;
  mutable std::mutex load_mutex_;
  stats load_stats_;
};

}  // namespace trellis::cache
