// Uncached name resolution against a live DNS server: trellis's stub
// resolver beside c-ares (libc-ares-dev) in the same binary, the same
// names, the same number of queries in flight, on the same core.
//
//   bench/dns/vs-cares BIN_DIR      # starts dnsmasq, pins, runs this
//
// or by hand, with a server that answers A for every *.bench.test name:
//
//   TRELLIS_BENCH_DNS_SERVER=127.0.0.1:5399 taskset -c 1 build/release/bin/bench-dns_resolve
//
// Each benchmark iteration resolves a batch of 2,000 distinct names
// (q<N>.bench.test., never repeated, so no answer can come from a cache)
// keeping `inflight` queries outstanding. Both sides run on the calling
// thread: trellis on an io_context configured as core::runtime configures
// its workers' (ASIO_CONCURRENCY_HINT_UNSAFE_IO), c-ares with poll() and
// ares_process_fd(). The CPU column is this thread's CPU time, so
// `cpu_us_per_query` is the client's cost per lookup — the figure that
// decides when the server or the load saturates first — and `queries/s`
// is the wall-clock rate. trellis runs with its cache off (c-ares 1.18
// has none) and search lists off on both sides (absolute names).
//
// trellis runs twice: with its default, a fresh socket (new random port)
// per query — BM_trellis_resolve/<inflight>/1 — and with
// queries_per_socket=100 — BM_trellis_resolve/<inflight>/100 —, the
// trade c-ares 1.18 makes without a bound (one port for every query). Each
// row's label says which port mode it ran in; the like-for-like comparison
// with c-ares is the shared-port rows.
#include <benchmark/benchmark.h>

#include <time.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <cstdlib>
#include <string>

#include "trellis/dns/resolver.hpp"

#if defined(TRELLIS_HAVE_CARES)
#include <ares.h>
#include <arpa/nameser.h>
#include <poll.h>
#endif

namespace {

using namespace trellis;

constexpr int batch = 2000;
std::uint64_t next_name = 0;  // names are never reused across runs

std::string fresh_name() {
  return "q" + std::to_string(next_name++) + ".bench.test.";
}

const char* server_env() {
  return std::getenv("TRELLIS_BENCH_DNS_SERVER");
}

asio::ip::udp::endpoint server_endpoint() {
  const std::string s = server_env();
  const auto colon = s.rfind(':');
  return {asio::ip::make_address(s.substr(0, colon)),
          static_cast<std::uint16_t>(std::stoi(s.substr(colon + 1)))};
}

double thread_cpu_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

void report(benchmark::State& state, std::int64_t queries, std::int64_t failures, double cpu_us) {
  state.SetItemsProcessed(queries);
  state.counters["queries/s"] =
      benchmark::Counter(static_cast<double>(queries), benchmark::Counter::kIsRate);
  state.counters["cpu_us_per_query"] = cpu_us / static_cast<double>(queries);
  state.counters["failures"] = static_cast<double>(failures);
}

void BM_trellis_resolve(benchmark::State& state) {
  if (!server_env()) return state.SkipWithError("set TRELLIS_BENCH_DNS_SERVER=addr:port");
  const int inflight = static_cast<int>(state.range(0));
  // As core::runtime builds its workers' contexts: one thread runs the
  // loop and owns the sockets, so the reactor's per-socket locks are off.
  asio::io_context ctx(ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  dns::resolver_options o;
  o.queries_per_socket = static_cast<unsigned>(state.range(1));
  o.conf.nameservers = {server_endpoint()};
  o.conf.search.clear();
  o.conf.timeout = std::chrono::milliseconds(2000);
  o.use_cache = false;
  dns::resolver r(ctx.get_executor(), o);
  std::int64_t done = 0, failed = 0;
  const double cpu0 = thread_cpu_us();
  for (auto _ : state) {
    int issued = 0;
    for (int w = 0; w < inflight; ++w) {
      asio::co_spawn(
          ctx,
          [&]() -> asio::awaitable<void> {
            while (issued < batch) {
              ++issued;
              const std::string host = fresh_name();
              auto a = co_await r.lookup(host, dns::rtype::a);
              if (!a) ++failed;
            }
          },
          asio::detached);
    }
    ctx.run();
    ctx.restart();
    done += batch;
  }
  report(state, done, failed, thread_cpu_us() - cpu0);
  state.SetLabel(o.queries_per_socket == 1
                     ? "fresh port per query (default)"
                     : "shared port, " + std::to_string(o.queries_per_socket) +
                           " queries per port");
}
BENCHMARK(BM_trellis_resolve)
    ->ArgNames({"inflight", "per_socket"})
    ->ArgsProduct({{1, 16, 64}, {1, 100}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

#if defined(TRELLIS_HAVE_CARES)
struct cares_run {
  ares_channel channel = nullptr;
  int issued = 0, completed = 0, failed = 0;
};

void cares_issue(cares_run& run);

void cares_done(void* arg, int status, int, unsigned char*, int) {
  auto& run = *static_cast<cares_run*>(arg);
  ++run.completed;
  if (status != ARES_SUCCESS) ++run.failed;
  cares_issue(run);
}

void cares_issue(cares_run& run) {
  if (run.issued >= batch) return;
  ++run.issued;
  const std::string host = fresh_name();
  ares_query(run.channel, host.c_str(), ns_c_in, ns_t_a, cares_done, &run);
}

void BM_cares_resolve(benchmark::State& state) {
  if (!server_env()) return state.SkipWithError("set TRELLIS_BENCH_DNS_SERVER=addr:port");
  const int inflight = static_cast<int>(state.range(0));
  ares_library_init(ARES_LIB_INIT_ALL);
  ares_options opts{};
  opts.flags = ARES_FLAG_NOSEARCH;
  opts.timeout = 2000;
  opts.tries = 2;
  cares_run run;
  if (ares_init_options(&run.channel, &opts,
                        ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS)
    return state.SkipWithError("ares_init_options failed");
  if (ares_set_servers_ports_csv(run.channel, server_env()) != ARES_SUCCESS)
    return state.SkipWithError("ares_set_servers_ports_csv failed");
  std::int64_t done = 0, failed = 0;
  const double cpu0 = thread_cpu_us();
  for (auto _ : state) {
    run.issued = run.completed = run.failed = 0;
    for (int w = 0; w < inflight; ++w) cares_issue(run);
    while (run.completed < batch) {
      ares_socket_t socks[ARES_GETSOCK_MAXNUM];
      const int bits = ares_getsock(run.channel, socks, ARES_GETSOCK_MAXNUM);
      pollfd fds[ARES_GETSOCK_MAXNUM];
      int n = 0;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        const bool rd = ARES_GETSOCK_READABLE(bits, i), wr = ARES_GETSOCK_WRITABLE(bits, i);
        if (!rd && !wr) continue;
        fds[n++] = {socks[i], static_cast<short>((rd ? POLLIN : 0) | (wr ? POLLOUT : 0)), 0};
      }
      timeval tv{}, max{1, 0};
      const timeval* t = ares_timeout(run.channel, &max, &tv);
      const int ms = static_cast<int>(t->tv_sec * 1000 + t->tv_usec / 1000);
      ::poll(fds, static_cast<nfds_t>(n), ms);
      if (n == 0) ares_process_fd(run.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      for (int i = 0; i < n; ++i)
        ares_process_fd(
            run.channel,
            (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD,
            (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD);
    }
    done += batch;
    failed += run.failed;
  }
  const double cpu = thread_cpu_us() - cpu0;
  ares_destroy(run.channel);
  ares_library_cleanup();
  report(state, done, failed, cpu);
  state.SetLabel("one port for every query");
}
BENCHMARK(BM_cares_resolve)
    ->ArgName("inflight")
    ->Arg(1)
    ->Arg(16)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

}  // namespace
