// trellis::lb micro-benchmarks: what one pick costs, per balancing policy,
// over 10 and 100 hosts.
//
//   build/release/bin/bench-lb --benchmark_min_time=0.5
//
// Arguments: the policy (an index into lb::policy_names; its name is the
// label) and the number of hosts. Each host carries a few requests in
// flight and a latency sample, so the load-aware policies compare real
// figures. Consistent-hashing picks use a different key each time (a
// precomputed list, so hashing the key is not measured). The peak_ewma
// pick reads the steady clock once, as it does in production.
//   pick          a plain pick
//   pick_bounded  ring_hash and maglev with bounded load (factor 1.25),
//                 which sums every host's load per pick: O(n)
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "trellis/lb/policy.hpp"

namespace {

using namespace trellis::lb;

host_set_ptr loaded_hosts(int count) {
  std::vector<std::string> addresses;
  for (int i = 0; i < count; ++i) addresses.push_back("10.0.0." + std::to_string(i) + ":8080");
  host_set_ptr set = make_host_set(addresses);
  const time_point now = steady_now();
  for (int i = 0; i < count; ++i) {
    const host& h = (*set)[static_cast<std::size_t>(i)];
    for (int r = 0; r < i % 5; ++r) h.begin_request();
    h.record_latency(std::chrono::microseconds(200 + 37 * i), now, std::chrono::seconds(10));
  }
  return set;
}

std::vector<std::uint64_t> keys() {
  std::vector<std::uint64_t> out;
  for (int i = 0; i < 4096; ++i) out.push_back(hash_key("client-" + std::to_string(i)));
  return out;
}

void run(benchmark::State& state, double balance_factor) {
  const std::string_view name = policy_names[static_cast<std::size_t>(state.range(0))];
  policy_options options;
  options.seed = 1;
  options.ring_hash.bounded_load.balance_factor = balance_factor;
  options.maglev.bounded_load.balance_factor = balance_factor;
  const auto p = make_policy(name, loaded_hosts(static_cast<int>(state.range(1))), options);
  const std::vector<std::uint64_t> hashes = keys();
  std::size_t next = 0;
  request_context context;
  for (auto _ : state) {
    context.hash = hashes[next++ & 4095];
    benchmark::DoNotOptimize(p->pick(context));
  }
  state.SetLabel(std::string(name));
  state.SetItemsProcessed(state.iterations());
}

void pick(benchmark::State& state) {
  run(state, 0);
}
void pick_bounded(benchmark::State& state) {
  run(state, 1.25);
}

void all_policies(benchmark::internal::Benchmark* b) {
  for (std::int64_t p = 0; p < static_cast<std::int64_t>(std::size(policy_names)); ++p)
    for (std::int64_t hosts : {10, 100}) b->Args({p, hosts});
}
void hashing_policies(benchmark::internal::Benchmark* b) {
  for (std::int64_t p : {6, 7})  // ring_hash, maglev
    for (std::int64_t hosts : {10, 100}) b->Args({p, hosts});
}

BENCHMARK(pick)->Apply(all_policies);
BENCHMARK(pick_bounded)->Apply(hashing_policies);

}  // namespace
