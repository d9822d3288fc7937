// Micro-benchmarks of core/metrics: what a worker pays per record on the hot
// path, and what a Prometheus scrape pays to merge and render.
//
//   build/h-metrics/bin/bench-metrics
//
// The histogram record benchmarks feed a varied, latency-like value stream so
// that bucket indexes, cache lines touched and the min/max branches behave as
// they do under real traffic; a constant stream is there for contrast. A
// fetch_add ("any thread may write") histogram is measured beside the
// single-writer one, to show what the single-writer rule buys.
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "trellis/core/metrics.hpp"

namespace {

using namespace trellis::core;

// 4096 log-normal "latencies" in nanoseconds: median ~60 us, from ~200 ns to
// ~20 ms, so records spread over 18 power-of-two groups and ~200 buckets.
const std::vector<std::uint64_t>& latency_stream() {
  static const std::vector<std::uint64_t> values = [] {
    std::mt19937_64 rng(2024);
    std::lognormal_distribution<double> dist(11.0, 1.5);
    std::vector<std::uint64_t> v(4096);
    for (auto& x : v) x = static_cast<std::uint64_t>(dist(rng));
    return v;
  }();
  return values;
}

void BM_histogram_record(benchmark::State& state) {
  const auto& values = latency_stream();
  const std::size_t mask = values.size() - 1;
  histogram h;
  std::size_t i = 0;
  for (auto _ : state) {
    h.record(values[i++ & mask]);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_histogram_record);

void BM_histogram_record_constant_value(benchmark::State& state) {
  histogram h;
  std::uint64_t v = 123'456;
  for (auto _ : state) {
    benchmark::DoNotOptimize(v);
    h.record(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_histogram_record_constant_value);

// The same layout updated with read-modify-write atomics, as a histogram that
// any thread may write would have to be. Measured uncontended: the gap to
// BM_histogram_record is the price of the lock-prefixed instructions alone.
class fetch_add_histogram {
 public:
  void record(std::uint64_t v) noexcept {
    buckets_[histogram_layout::index_of(v)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
    std::uint64_t seen = max_.load(std::memory_order_relaxed);
    while (v > seen && !max_.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
    count_.fetch_add(1, std::memory_order_release);
  }
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> max_{0};
  std::array<std::atomic<std::uint64_t>, histogram_layout::bucket_count> buckets_{};
};

void BM_histogram_record_with_fetch_add_for_comparison(benchmark::State& state) {
  const auto& values = latency_stream();
  const std::size_t mask = values.size() - 1;
  fetch_add_histogram h;
  std::size_t i = 0;
  for (auto _ : state) {
    h.record(values[i++ & mask]);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_histogram_record_with_fetch_add_for_comparison);

void BM_counter_add(benchmark::State& state) {
  counter c;
  for (auto _ : state) {
    c.add();
  }
  benchmark::DoNotOptimize(c.value());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_counter_add);

// Every thread adds to ONE counter: each add fights for the same cache line.
void BM_counter_add_one_shared_counter(benchmark::State& state) {
  static counter shared;
  for (auto _ : state) {
    shared.add();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_counter_add_one_shared_counter)->Threads(1)->Threads(2)->UseRealTime();

// Every thread adds to its own shard from a registry, as trellis workers do.
void BM_counter_add_one_shard_per_thread(benchmark::State& state) {
  static metrics_registry registry;
  counter& mine = registry.add_counter("bench_adds_total", "Adds.");
  for (auto _ : state) {
    mine.add();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_counter_add_one_shard_per_thread)->Threads(1)->Threads(2)->UseRealTime();

void fill(histogram& h) {
  for (const std::uint64_t v : latency_stream()) h.record(v);
}

void BM_histogram_snapshot(benchmark::State& state) {
  histogram h;
  fill(h);
  for (auto _ : state) {
    histogram_snapshot s = h.snapshot();
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_histogram_snapshot);

// What a scrape does per shard: snapshot it and merge into the series total.
void BM_histogram_snapshot_and_merge(benchmark::State& state) {
  histogram h;
  fill(h);
  histogram_snapshot total;
  for (auto _ : state) {
    total.merge(h.snapshot());
    benchmark::DoNotOptimize(total);
  }
}
BENCHMARK(BM_histogram_snapshot_and_merge);

void BM_snapshot_percentile(benchmark::State& state) {
  histogram h;
  fill(h);
  const histogram_snapshot s = h.snapshot();
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.percentile(99.9));
  }
}
BENCHMARK(BM_snapshot_percentile);

// A gateway-like registry: 50 series, each added by 2 workers (100 shards).
//   8 request counters, 8 byte counters, 8 latency histograms
//   ({method} x {status}), 10 upstream counters, 10 upstream gauges,
//   5 queue-depth gauges, 1 connection gauge.
void BM_registry_expose_50_series(benchmark::State& state) {
  constexpr int workers = 2;
  metrics_registry registry;
  const auto& values = latency_stream();
  std::size_t next_value = 0;
  int series = 0;
  for (int w = 0; w < workers; ++w) {
    series = 0;
    for (const char* method : {"GET", "POST"}) {
      for (const char* status : {"2xx", "3xx", "4xx", "5xx"}) {
        const label_set labels{{"method", method}, {"status", status}};
        registry.add_counter("http_requests_total", "Requests served.", labels).add(1000);
        registry.add_counter("http_response_bytes_total", "Body bytes sent.", labels).add(1 << 20);
        histogram& h = registry.add_histogram("http_request_duration_seconds",
                                              "Time from first byte in to last byte out.", labels,
                                              {.scale = 1e-9});
        for (int i = 0; i < 500; ++i) h.record(values[next_value++ % values.size()]);
        series += 3;
      }
    }
    for (int u = 0; u < 10; ++u) {
      const label_set labels{{"upstream", "backend-" + std::to_string(u)}};
      registry.add_counter("upstream_requests_total", "Requests sent upstream.", labels).add(500);
      registry.add_gauge("upstream_healthy", "1 if the upstream passes health checks.", labels)
          .set(1);
      series += 2;
    }
    for (int q = 0; q < 5; ++q) {
      registry.add_gauge("queue_depth", "Jobs waiting.", {{"queue", "q" + std::to_string(q)}})
          .set(q);
      ++series;
    }
    registry.add_gauge("connections_open", "Open client connections.").set(100);
    ++series;
  }

  std::string out;
  for (auto _ : state) {
    out.clear();
    registry.write_prometheus(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["series"] = series;
  state.counters["bytes_per_scrape"] = static_cast<double>(out.size());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_registry_expose_50_series);

}  // namespace
