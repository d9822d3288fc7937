// Micro-benchmarks of the DNS wire codec, beside c-ares's parser
// (libc-ares-dev) in the same binary on the same bytes when it is present:
//
//   taskset -c 1 build/release/bin/bench-dns_codec
//
// Workloads:
//   decode_a        a typical A answer: one question, a CNAME and two A
//                   records with compressed names, an OPT record;
//   decode_mixed    an answer with MX, TXT, SRV, SOA and AAAA records;
//   encode_a        the A answer encoded with compression into a reused buffer
//                   (what an authoritative server does per query);
//   encode_query    a one-question query with EDNS0 (what a resolver sends);
//   name_from_text  "www.example.test" parsed to wire form.
//   c-ares          ares_parse_a_reply on the same A answer: c-ares turns it
//                   into a hostent + addrttls, trellis into a full message.
#include <benchmark/benchmark.h>

#include <vector>

#include "trellis/codec/dns/message.hpp"

#if defined(TRELLIS_HAVE_CARES)
#include <ares.h>
#include <netdb.h>
#endif

namespace {

using namespace trellis::dns;

name N(std::string_view t) {
  return name::from_text(t).value();
}

message a_answer() {
  auto m = make_response(make_query(0x2a2a, {N("www.example.test."), rtype::a}));
  m.ra = true;
  m.answers = {
      {N("www.example.test."), rtype::cname, rclass::in, 300, cname_data{N("web.example.test.")}},
      {N("web.example.test."), rtype::a, rclass::in, 300, a_data{{192, 0, 2, 10}}},
      {N("web.example.test."), rtype::a, rclass::in, 300, a_data{{192, 0, 2, 11}}},
  };
  return m;
}

message mixed_answer() {
  auto m = make_response(make_query(7, {N("example.test."), rtype::any}));
  m.answers = {
      {N("example.test."), rtype::mx, rclass::in, 60, mx_data{10, N("mail.example.test.")}},
      {N("example.test."), rtype::txt, rclass::in, 60,
       txt_data{{"v=spf1 include:_spf.example.test -all"}}},
      {N("_sip._udp.example.test."), rtype::srv, rclass::in, 60,
       srv_data{10, 60, 5060, N("sip.example.test.")}},
      {N("example.test."), rtype::soa, rclass::in, 60,
       soa_data{N("ns1.example.test."), N("hostmaster.example.test."), 1, 7200, 900, 1209600, 60}},
      {N("example.test."), rtype::aaaa, rclass::in, 60,
       aaaa_data{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}},
  };
  return m;
}

void BM_decode_a(benchmark::State& state) {
  const auto wire = encode(a_answer()).value();
  for (auto _ : state) {
    auto m = decode(wire);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_decode_a);

void BM_decode_mixed(benchmark::State& state) {
  const auto wire = encode(mixed_answer()).value();
  for (auto _ : state) {
    auto m = decode(wire);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_decode_mixed);

void BM_encode_a(benchmark::State& state) {
  const auto m = a_answer();
  std::vector<std::uint8_t> out;
  out.reserve(512);
  for (auto _ : state) {
    out.clear();
    auto n = encode(m, out, {.max_size = 1232});
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_encode_a);

void BM_encode_query(benchmark::State& state) {
  const auto m = make_query(1, {N("www.example.test."), rtype::aaaa});
  std::vector<std::uint8_t> out;
  out.reserve(512);
  for (auto _ : state) {
    out.clear();
    auto n = encode(m, out);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_encode_query);

void BM_name_from_text(benchmark::State& state) {
  for (auto _ : state) {
    auto n = name::from_text("www.example.test");
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_name_from_text);

#if defined(TRELLIS_HAVE_CARES)
void BM_cares_parse_a_reply(benchmark::State& state) {
  const auto wire = encode(a_answer()).value();
  for (auto _ : state) {
    hostent* host = nullptr;
    ares_addrttl ttls[8];
    int nttls = 8;
    const int rc =
        ares_parse_a_reply(wire.data(), static_cast<int>(wire.size()), &host, ttls, &nttls);
    if (rc != ARES_SUCCESS) state.SkipWithError("ares_parse_a_reply failed");
    ares_free_hostent(host);
    benchmark::DoNotOptimize(nttls);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_cares_parse_a_reply);
#endif

}  // namespace
