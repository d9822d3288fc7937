// trellis::cache micro-benchmarks: what a lookup and an insert cost, per
// eviction policy, and what sharing a cache between threads costs.
//
//   build/release/bin/bench-cache --benchmark_min_time=0.5
//
// Each benchmark's argument is the policy (its name is the label): 0 lru,
// 1 lfu, 2 fifo, 3 random, 4 sieve, 5 s3-fifo, 6 w-tinylfu. The caches hold
// 100,000 entries of 8-byte keys and values, far more than fits in L2, so
// the figures include the cache misses a real hash lookup pays.
//   get_hit      a lookup that finds its key (the policy records the hit)
//   get_miss     a lookup that does not
//   put_evict    an insert into a full cache: one eviction each
//   zipf_mixed   get, and put on a miss, over a Zipf(0.9) key stream: the
//                policy's hit ratio decides how often the costlier path runs
// The sharded_* benchmarks run the same through sharded_cache (16 shards),
// on 1 and 2 threads: the lock's cost, and how little the threads contend
// (items_per_second is the total over the threads).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "trellis/cache/memory_cache.hpp"
#include "trellis/cache/sharded_cache.hpp"
#include "trellis/cache/simulator.hpp"

namespace {

using namespace trellis::cache;

constexpr std::uint64_t entries = 100'000;

eviction policy_of(const benchmark::State& state) {
  return all_evictions[static_cast<std::size_t>(state.range(0))];
}

// A fixed pseudo-random visiting order over [0, n), so every policy sees
// the same keys in the same order and no random-number cost is measured.
std::vector<std::uint64_t> shuffled(std::uint64_t n, std::uint64_t offset = 0) {
  std::vector<std::uint64_t> keys(n);
  std::uint64_t x = 12345;
  for (std::uint64_t i = 0; i < n; ++i) keys[i] = i + offset;
  for (std::uint64_t i = n - 1; i > 0; --i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(keys[i], keys[(x >> 33) % (i + 1)]);
  }
  return keys;
}

using bench_cache = memory_cache<std::uint64_t, std::uint64_t>;

void BM_get_hit(benchmark::State& state) {
  bench_cache c({.capacity = entries, .policy = policy_of(state)});
  for (std::uint64_t k = 0; k < entries; ++k) c.put(k, k);
  const auto keys = shuffled(entries);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(c.get(keys[i]));
    if (++i == keys.size()) i = 0;
  }
  state.SetLabel(std::string(to_string(policy_of(state))));
}
BENCHMARK(BM_get_hit)->DenseRange(0, 6);

void BM_get_miss(benchmark::State& state) {
  bench_cache c({.capacity = entries, .policy = policy_of(state)});
  for (std::uint64_t k = 0; k < entries; ++k) c.put(k, k);
  const auto keys = shuffled(entries, entries);  // none of them stored
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(c.get(keys[i]));
    if (++i == keys.size()) i = 0;
  }
  state.SetLabel(std::string(to_string(policy_of(state))));
}
BENCHMARK(BM_get_miss)->DenseRange(0, 6);

void BM_put_evict(benchmark::State& state) {
  bench_cache c({.capacity = entries, .policy = policy_of(state)});
  for (std::uint64_t k = 0; k < entries; ++k) c.put(k, k);
  std::uint64_t next = entries;
  for (auto _ : state) benchmark::DoNotOptimize(c.put(next++, 1));
  state.SetLabel(std::string(to_string(policy_of(state))));
}
BENCHMARK(BM_put_evict)->DenseRange(0, 6);

void BM_zipf_mixed(benchmark::State& state) {
  bench_cache c({.capacity = entries / 10, .policy = policy_of(state)});
  static const sim::trace t = sim::zipf(entries, 1'000'000, 0.9, 1);
  std::size_t i = 0;
  std::uint64_t hits = 0, requests = 0;
  for (auto _ : state) {
    const std::uint64_t k = t[i].key;
    if (c.get(k))
      ++hits;
    else
      c.put(k, k);
    ++requests;
    if (++i == t.size()) i = 0;
  }
  state.counters["hit%"] =
      requests ? 100.0 * static_cast<double>(hits) / static_cast<double>(requests) : 0;
  state.SetLabel(std::string(to_string(policy_of(state))));
}
BENCHMARK(BM_zipf_mixed)->DenseRange(0, 6);

// One sharded cache shared by the benchmark's threads.
sharded_cache<std::uint64_t, std::uint64_t>* shared = nullptr;

void BM_sharded_get_hit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared = new sharded_cache<std::uint64_t, std::uint64_t>(
        {.cache = {.capacity = entries, .policy = policy_of(state)}, .shards = 16});
    for (std::uint64_t k = 0; k < entries; ++k) shared->put(k, k);
  }
  const auto keys = shuffled(entries);
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    benchmark::DoNotOptimize(shared->get(keys[i % keys.size()]));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete shared;
    shared = nullptr;
  }
  state.SetLabel(std::string(to_string(policy_of(state))));
}
BENCHMARK(BM_sharded_get_hit)
    ->Arg(0)
    ->Arg(4)
    ->Arg(5)
    ->Arg(6)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_sharded_put_evict(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared = new sharded_cache<std::uint64_t, std::uint64_t>(
        {.cache = {.capacity = entries, .policy = policy_of(state)}, .shards = 16});
    for (std::uint64_t k = 0; k < entries; ++k) shared->put(k, k);
  }
  // Each thread inserts its own fresh keys.
  std::uint64_t next = entries * (2 + static_cast<std::uint64_t>(state.thread_index())) * 1000;
  for (auto _ : state) benchmark::DoNotOptimize(shared->put(next++, 1));
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete shared;
    shared = nullptr;
  }
  state.SetLabel(std::string(to_string(policy_of(state))));
}
BENCHMARK(BM_sharded_put_evict)
    ->Arg(0)
    ->Arg(4)
    ->Arg(5)
    ->Arg(6)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

}  // namespace
