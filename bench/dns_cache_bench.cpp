// dns::cache micro-benchmarks: what a resolver pays for a cached lookup.
//
//   build/release/bin/bench-dns_cache --benchmark_min_time=0.5
//
// The target is a cached lookup under 200 ns at 10,000 entries: the hash of
// a case-insensitive name (eight octets at a time), one probe of the flat
// index, one compare against the key kept in the entry, and its CLOCK bit
// set — no list splice, no reference count. answers() (the records with
// decremented TTLs) is measured apart: it copies, and a caller that only
// wants addresses reads hit.data instead. On a loaded machine read the CPU
// column: the wall-clock one includes the time other processes held the core.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "trellis/dns/cache.hpp"

namespace {

using namespace trellis::dns;
using namespace std::chrono_literals;

const cache::time_point t0 = cache::time_point{} + 1000h;

question make_question(std::size_t i) {
  return {name::from_text("host" + std::to_string(i) + ".example.com").value(), rtype::a,
          rclass::in};
}

message make_answer(const question& q, std::size_t i) {
  message m;
  m.qr = true;
  m.questions.push_back(q);
  for (std::uint8_t k = 0; k < 2; ++k) {
    m.answers.push_back(
        {q.qname, rtype::a, rclass::in, 300,
         a_data{{10, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i), k}}});
  }
  return m;
}

// A cache holding `entries` names, and their questions.
struct filled {
  explicit filled(std::size_t entries) : c({.max_entries = entries * 2}) {
    for (std::size_t i = 0; i < entries; ++i) {
      questions.push_back(make_question(i));
      c.insert(questions.back(), make_answer(questions.back(), i), t0);
    }
  }
  cache c;
  std::vector<question> questions;
};

void BM_cached_lookup(benchmark::State& state) {
  filled f(static_cast<std::size_t>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    auto hit = f.c.lookup(f.questions[i], t0 + 10s);
    benchmark::DoNotOptimize(hit);
    if (++i == f.questions.size()) i = 0;
  }
}
BENCHMARK(BM_cached_lookup)->Arg(1'000)->Arg(10'000);

void BM_cached_lookup_with_answers(benchmark::State& state) {
  filled f(static_cast<std::size_t>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    auto hit = f.c.lookup(f.questions[i], t0 + 10s);
    auto records = hit->answers();
    benchmark::DoNotOptimize(records);
    if (++i == f.questions.size()) i = 0;
  }
}
BENCHMARK(BM_cached_lookup_with_answers)->Arg(10'000);

void BM_cache_miss(benchmark::State& state) {
  filled f(10'000);
  const question absent = make_question(999'999);
  for (auto _ : state) {
    auto hit = f.c.lookup(absent, t0);
    benchmark::DoNotOptimize(hit);
  }
}
BENCHMARK(BM_cache_miss);

// Hashing a name the codec's way (FNV-1a over the lower-cased wire form, an
// octet at a time): what the resolver's tables paid per lookup before they
// hashed eight octets at a time (hash_question, BM_question_hash).
void BM_name_hash(benchmark::State& state) {
  const question q = make_question(4'242);
  for (auto _ : state) benchmark::DoNotOptimize(q.qname.hash());
}
BENCHMARK(BM_name_hash);

void BM_question_hash(benchmark::State& state) {
  const question q = make_question(4'242);
  for (auto _ : state) benchmark::DoNotOptimize(hash_question(q));
}
BENCHMARK(BM_question_hash);

void BM_cache_insert_evicting(benchmark::State& state) {
  cache c({.max_entries = 1'000});
  std::vector<question> questions;
  std::vector<message> answers;
  for (std::size_t i = 0; i < 4'096; ++i) {
    questions.push_back(make_question(i));
    answers.push_back(make_answer(questions.back(), i));
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(c.insert(questions[i], answers[i], t0));
    i = (i + 1) & 4'095;
  }
}
BENCHMARK(BM_cache_insert_evicting);

}  // namespace
