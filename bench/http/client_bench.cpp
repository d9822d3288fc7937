// bench-http_client: HTTP/1.1 keep-alive GETs from one client core, trellis's
// http::client beside libcurl's multi interface, one implementation per run.
//
// What is measured is the CLIENT: how much of its own core one request
// costs. Both implementations run single-threaded, keep `--concurrency`
// requests in flight over as many keep-alive connections to one origin,
// and issue `--requests` GETs in total. The figures printed are
//
//   requests/s     completed requests over wall time (the server, or the
//                  client's core, whichever saturates first, sets it);
//   CPU µs/request this process's user+sys time (getrusage RUSAGE_SELF,
//                  every thread included) over the requests completed:
//                  the deciding figure, because it does not depend on
//                  which side of the loopback ran out of CPU first.
//
// Both sides first send one request per connection (not counted) so that
// the measured part is keep-alive reuse only, not connection set-up.
//
//   trellis  one io_context on the main thread, one http::client
//            (max_connections_per_origin = concurrency), `concurrency`
//            coroutines each looping sequential client.get(url).
//   curl     libcurl's multi interface driven by curl_multi_perform and
//            curl_multi_poll, `concurrency` easy handles reused (so their
//            connections stay open in the multi handle's cache), each
//            re-added as soon as its transfer completes. TCP_NODELAY, no
//            signals, HTTP/1.1, CURLMOPT_MAX_HOST_CONNECTIONS = concurrency.
//   curl-epoll  the same handles driven by curl_multi_socket_action over
//            an epoll set: libcurl's event-driven API, which avoids
//            handing every socket to poll(2) on every turn.
//
// Each side does what its ordinary use does with the body: trellis's get()
// keeps it in client_response::body, libcurl hands it to a write callback
// that only counts it. For large bodies trellis therefore pays a copy (and
// an allocation) that libcurl does not; that is part of what is measured.
//
// Every response must be 200 with the expected body length (--expect-bytes,
// or the length of the first response); anything else counts as a failure
// and a non-zero failure count makes the exit status 1. The run is bounded
// by count and by time (--duration: no new request starts after it), and
// only loopback URLs are accepted: this is a load generator.
//
//   bench-http_client --impl trellis|curl|curl-epoll --url http://127.0.0.1:PORT/
//                     --concurrency C --requests N [--duration S] [--expect-bytes B]
//
// bench/http/client-vs-curl runs it against nginx, pinned, in interleaved
// rounds.
#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/url.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/dns/resolver.hpp"
#include "trellis/http/client.hpp"

namespace {

using steady = std::chrono::steady_clock;

struct settings {
  std::string impl;
  std::string url;
  std::size_t concurrency = 64;
  std::uint64_t requests = 100'000;
  double duration_s = 60;          // no new request starts after this
  std::int64_t expect_bytes = -1;  // -1: the length of the first response
};

// The counts of one phase (warm-up or measured).
struct tally {
  std::uint64_t target = 0;  // requests to issue
  std::uint64_t issued = 0;
  std::uint64_t ok = 0;
  std::uint64_t failures = 0;
  steady::time_point stop_at;  // no new request after this
  std::string first_error;

  bool more() const { return issued < target && steady::now() < stop_at; }
  void fail(std::string why) {
    ++failures;
    if (first_error.empty()) first_error = std::move(why);
  }
};

// Checks one response against the expected length, adopting the first
// length seen when none was given.
bool body_ok(std::int64_t& expect, std::size_t got) {
  if (expect < 0) expect = static_cast<std::int64_t>(got);
  return static_cast<std::int64_t>(got) == expect;
}

struct cpu_clock {
  double user_s = 0, sys_s = 0;
  steady::time_point wall;
  static cpu_clock now() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    cpu_clock c;
    c.user_s =
        static_cast<double>(u.ru_utime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec) * 1e-6;
    c.sys_s =
        static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) * 1e-6;
    c.wall = steady::now();
    return c;
  }
};

// What a run reports: the measured phase's counts, its clocks, and the
// connections the implementation opened over the whole run.
struct outcome {
  tally measured;
  cpu_clock before, after;
  std::uint64_t connections = 0;
  std::int64_t body_bytes = -1;
  std::uint64_t warmup_failures = 0;
  std::string warmup_error;
};

// --- trellis -----------------------------------------------------------------

namespace http = trellis::http;

asio::awaitable<void> trellis_worker(http::client& c, const std::string& url, tally& t,
                                     std::int64_t& expect) {
  while (t.more()) {
    ++t.issued;
    auto r = co_await c.get(url);
    if (!r)
      t.fail(r.error().message());
    else if (r->status != 200)
      t.fail("status " + std::to_string(r->status));
    else if (!body_ok(expect, r->body.size()))
      t.fail("body of " + std::to_string(r->body.size()) + " bytes");
    else
      ++t.ok;
  }
}

// Runs `concurrency` workers until `t` is done; returns when all have ended.
asio::awaitable<void> trellis_phase(http::client& c, const settings& s, tally& t,
                                    std::int64_t& expect) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer latch(ex, steady::time_point::max());
  std::size_t active = s.concurrency;
  for (std::size_t i = 0; i < s.concurrency; ++i)
    asio::co_spawn(ex, trellis_worker(c, s.url, t, expect), [&](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          t.fail(std::string("exception: ") + x.what());
        }
      }
      if (--active == 0) latch.cancel();
    });
  while (active > 0) co_await latch.async_wait(trellis::use_nothrow);
}

asio::awaitable<void> trellis_run(std::optional<http::client>& c, const settings& s, outcome& o) {
  tally warm;
  warm.target = s.concurrency;  // one request per connection
  warm.stop_at = steady::now() + std::chrono::seconds(10);
  co_await trellis_phase(*c, s, warm, o.body_bytes);
  o.warmup_failures = warm.failures;
  o.warmup_error = warm.first_error;

  o.measured.target = s.requests;
  o.measured.stop_at = steady::now() + std::chrono::duration_cast<steady::duration>(
                                           std::chrono::duration<double>(s.duration_s));
  o.before = cpu_clock::now();
  co_await trellis_phase(*c, s, o.measured, o.body_bytes);
  o.after = cpu_clock::now();
  o.connections = c->stats().connections_opened;
  c.reset();  // closes the pool, so that the io_context runs out of work
}

outcome run_trellis(const settings& s) {
  asio::io_context io(1);
  trellis::dns::resolver resolver(io.get_executor(), trellis::dns::resolver_options{});
  http::client_options opt;
  opt.max_connections_per_origin = s.concurrency;
  // Bounded: a stuck request ends within seconds, not the default minutes.
  opt.first_byte_timeout = std::chrono::seconds(10);
  opt.request_timeout = std::chrono::seconds(10);
  std::optional<http::client> c;
  c.emplace(io.get_executor(), resolver, opt);
  outcome o;
  o.body_bytes = s.expect_bytes;
  std::exception_ptr failed;
  asio::co_spawn(io, trellis_run(c, s, o), [&](std::exception_ptr e) { failed = e; });
  io.run();
  if (failed) std::rethrow_exception(failed);
  return o;
}

// --- libcurl -----------------------------------------------------------------

// One easy handle, reused for every request it carries.
struct curl_slot {
  CURL* easy = nullptr;
  std::size_t body = 0;  // bytes of the current response
};

std::size_t discard_body(char* /*data*/, std::size_t size, std::size_t n, void* user) {
  static_cast<curl_slot*>(user)->body += size * n;
  return size * n;
}

void check(CURLcode c, const char* what) {
  if (c != CURLE_OK) {
    std::fprintf(stderr, "%s: %s\n", what, curl_easy_strerror(c));
    std::exit(2);
  }
}
void check(CURLMcode c, const char* what) {
  if (c != CURLM_OK) {
    std::fprintf(stderr, "%s: %s\n", what, curl_multi_strerror(c));
    std::exit(2);
  }
}

// The event loop on top of the multi handle: poll(2) through
// curl_multi_poll, or epoll through curl_multi_socket_action.
class curl_driver {
 public:
  curl_driver(const settings& s, bool use_epoll) : s_(s), epoll_(use_epoll) {
    check(curl_global_init(CURL_GLOBAL_DEFAULT), "curl_global_init");
    multi_ = curl_multi_init();
    check(
        curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(s.concurrency)),
        "CURLMOPT_MAX_HOST_CONNECTIONS");
    check(curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(s.concurrency)),
          "CURLMOPT_MAXCONNECTS");
    if (epoll_) {
      ep_ = epoll_create1(EPOLL_CLOEXEC);
      if (ep_ < 0) {
        std::perror("epoll_create1");
        std::exit(2);
      }
      check(curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &curl_driver::on_socket),
            "CURLMOPT_SOCKETFUNCTION");
      check(curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this), "CURLMOPT_SOCKETDATA");
      check(curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &curl_driver::on_timer),
            "CURLMOPT_TIMERFUNCTION");
      check(curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this), "CURLMOPT_TIMERDATA");
    }
    slots_.resize(s.concurrency);
    for (auto& slot : slots_) {
      slot.easy = curl_easy_init();
      CURL* e = slot.easy;
      check(curl_easy_setopt(e, CURLOPT_URL, s.url.c_str()), "CURLOPT_URL");
      check(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard_body), "CURLOPT_WRITEFUNCTION");
      check(curl_easy_setopt(e, CURLOPT_WRITEDATA, &slot), "CURLOPT_WRITEDATA");
      check(curl_easy_setopt(e, CURLOPT_PRIVATE, &slot), "CURLOPT_PRIVATE");
      check(curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L), "CURLOPT_TCP_NODELAY");
      check(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L), "CURLOPT_NOSIGNAL");
      check(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1)),
            "CURLOPT_HTTP_VERSION");
      check(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10'000L), "CURLOPT_TIMEOUT_MS");
    }
  }
  ~curl_driver() {
    for (auto& slot : slots_) {
      curl_multi_remove_handle(multi_, slot.easy);
      curl_easy_cleanup(slot.easy);
    }
    curl_multi_cleanup(multi_);
    if (ep_ >= 0) ::close(ep_);
    curl_global_cleanup();
  }
  curl_driver(const curl_driver&) = delete;
  curl_driver& operator=(const curl_driver&) = delete;

  // Runs `t` to its end with every slot busy while requests remain.
  void phase(tally& t, std::int64_t& expect) {
    std::size_t running = 0;
    for (auto& slot : slots_) {
      if (!t.more()) break;
      start(slot, t);
      ++running;
    }
    while (running > 0) {
      wait_and_act();
      int queued = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_, &queued)) {
        if (m->msg != CURLMSG_DONE) continue;
        curl_slot* slot = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &slot);
        const CURLcode result = m->data.result;  // m is invalid after remove_handle
        long status = 0;
        curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
        long connects = 0;
        curl_easy_getinfo(slot->easy, CURLINFO_NUM_CONNECTS, &connects);
        connections_ += static_cast<std::uint64_t>(connects);
        curl_multi_remove_handle(multi_, slot->easy);
        if (result != CURLE_OK)
          t.fail(curl_easy_strerror(result));
        else if (status != 200)
          t.fail("status " + std::to_string(status));
        else if (!body_ok(expect, slot->body))
          t.fail("body of " + std::to_string(slot->body) + " bytes");
        else
          ++t.ok;
        if (t.more())
          start(*slot, t);
        else
          --running;
      }
    }
  }

  std::uint64_t connections() const { return connections_; }

 private:
  void start(curl_slot& slot, tally& t) {
    ++t.issued;
    slot.body = 0;
    check(curl_multi_add_handle(multi_, slot.easy), "curl_multi_add_handle");
  }

  // One turn of the event loop: wait for readiness (or libcurl's timer) and
  // let libcurl act on it.
  void wait_and_act() {
    int still = 0;
    if (!epoll_) {
      check(curl_multi_perform(multi_, &still), "curl_multi_perform");
      check(curl_multi_poll(multi_, nullptr, 0, 1000, nullptr), "curl_multi_poll");
      check(curl_multi_perform(multi_, &still), "curl_multi_perform");
      return;
    }
    int wait_ms = 1000;
    if (timer_armed_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(timer_at_ - steady::now());
      wait_ms = static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1000));
    }
    std::array<epoll_event, 64> ev{};
    const int n = epoll_wait(ep_, ev.data(), static_cast<int>(ev.size()), wait_ms);
    if (n < 0 && errno != EINTR) {
      std::perror("epoll_wait");
      std::exit(2);
    }
    for (int i = 0; i < n; ++i) {
      int flags = 0;
      if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) flags |= CURL_CSELECT_IN;
      if (ev[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (ev[i].events & EPOLLERR) flags |= CURL_CSELECT_ERR;
      check(curl_multi_socket_action(multi_, ev[i].data.fd, flags, &still),
            "curl_multi_socket_action");
    }
    if (timer_armed_ && steady::now() >= timer_at_) {
      timer_armed_ = false;
      check(curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &still),
            "curl_multi_socket_action");
    }
  }

  // Registers libcurl's interest in a socket with epoll. socketp (set with
  // curl_multi_assign) says whether the socket is in the epoll set already,
  // so each change costs one epoll_ctl. libcurl forgets it on REMOVE, which
  // it also sends when a finished transfer parks its connection.
  static int on_socket(CURL* /*easy*/, curl_socket_t fd, int what, void* self_p, void* socketp) {
    auto* self = static_cast<curl_driver*>(self_p);
    if (what == CURL_POLL_REMOVE) {
      if (socketp) epoll_ctl(self->ep_, EPOLL_CTL_DEL, fd, nullptr);
      return 0;
    }
    epoll_event e{};
    e.data.fd = fd;
    if (what & CURL_POLL_IN) e.events |= EPOLLIN;
    if (what & CURL_POLL_OUT) e.events |= EPOLLOUT;
    if (socketp) {
      epoll_ctl(self->ep_, EPOLL_CTL_MOD, fd, &e);
    } else {
      epoll_ctl(self->ep_, EPOLL_CTL_ADD, fd, &e);
      curl_multi_assign(self->multi_, fd, self);  // any non-null marker
    }
    return 0;
  }

  static int on_timer(CURLM* /*multi*/, long timeout_ms, void* self_p) {
    auto* self = static_cast<curl_driver*>(self_p);
    self->timer_armed_ = timeout_ms >= 0;
    if (self->timer_armed_) self->timer_at_ = steady::now() + std::chrono::milliseconds(timeout_ms);
    return 0;
  }

  const settings& s_;
  bool epoll_;
  CURLM* multi_ = nullptr;
  int ep_ = -1;
  bool timer_armed_ = false;
  steady::time_point timer_at_;
  std::vector<curl_slot> slots_;
  std::uint64_t connections_ = 0;
};

outcome run_curl(const settings& s, bool use_epoll) {
  curl_driver d(s, use_epoll);
  outcome o;
  o.body_bytes = s.expect_bytes;
  tally warm;
  warm.target = s.concurrency;
  warm.stop_at = steady::now() + std::chrono::seconds(10);
  d.phase(warm, o.body_bytes);
  o.warmup_failures = warm.failures;
  o.warmup_error = warm.first_error;

  o.measured.target = s.requests;
  o.measured.stop_at = steady::now() + std::chrono::duration_cast<steady::duration>(
                                           std::chrono::duration<double>(s.duration_s));
  o.before = cpu_clock::now();
  d.phase(o.measured, o.body_bytes);
  o.after = cpu_clock::now();
  o.connections = d.connections();
  return o;
}

// --- the command line ----------------------------------------------------------

[[noreturn]] void usage(const char* why) {
  std::fprintf(
      stderr,
      "bench-http_client: %s\n"
      "usage: bench-http_client --impl trellis|curl|curl-epoll --url http://127.0.0.1:PORT/PATH\n"
      "                         --concurrency C --requests N [--duration SECONDS]\n"
      "                         [--expect-bytes BODY_LENGTH]\n",
      why);
  std::exit(2);
}

template <class T>
T number(std::string_view flag, std::string_view text) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size())
    usage((std::string(flag) + ": not a number: " + std::string(text)).c_str());
  return v;
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) usage((std::string(flag) + " needs a value").c_str());
    const std::string_view value = argv[++i];
    if (flag == "--impl")
      s.impl = value;
    else if (flag == "--url")
      s.url = value;
    else if (flag == "--concurrency")
      s.concurrency = number<std::size_t>(flag, value);
    else if (flag == "--requests")
      s.requests = number<std::uint64_t>(flag, value);
    else if (flag == "--duration")
      s.duration_s = number<double>(flag, value);
    else if (flag == "--expect-bytes")
      s.expect_bytes = number<std::int64_t>(flag, value);
    else
      usage(("unknown flag " + std::string(flag)).c_str());
  }
  if (s.impl != "trellis" && s.impl != "curl" && s.impl != "curl-epoll")
    usage("--impl is required");
  if (s.concurrency < 1 || s.concurrency > 10'000) usage("--concurrency must be 1..10000");
  if (s.requests < 1) usage("--requests must be at least 1");
  if (!(s.duration_s > 0 && s.duration_s <= 3600)) usage("--duration must be in (0, 3600]");
  // A load generator: loopback only.
  auto u = http::parse_url(s.url);
  if (!u || u->scheme != "http") usage("--url must be an http:// URL");
  if (u->host != "127.0.0.1" && u->host != "::1" && u->host != "localhost")
    usage("--url must point at loopback (127.0.0.1, ::1 or localhost)");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  outcome o;
  try {
    o = s.impl == "trellis" ? run_trellis(s) : run_curl(s, s.impl == "curl-epoll");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-http_client: %s\n", e.what());
    return 2;
  }
  const tally& t = o.measured;
  const std::uint64_t done = t.ok + t.failures;
  const double wall = std::chrono::duration<double>(o.after.wall - o.before.wall).count();
  const double user = o.after.user_s - o.before.user_s;
  const double sys = o.after.sys_s - o.before.sys_s;
  const double per = done > 0 ? 1e6 / static_cast<double>(done) : 0;
  std::printf(
      "impl=%s concurrency=%zu requests=%llu failures=%llu seconds=%.3f rps=%.0f "
      "cpu_us_per_request=%.3f user_us=%.3f sys_us=%.3f cpu_share=%.2f connections=%llu "
      "body_bytes=%lld\n",
      s.impl.c_str(), s.concurrency, static_cast<unsigned long long>(done),
      static_cast<unsigned long long>(t.failures), wall,
      wall > 0 ? static_cast<double>(done) / wall : 0, (user + sys) * per, user * per, sys * per,
      wall > 0 ? (user + sys) / wall : 0, static_cast<unsigned long long>(o.connections),
      static_cast<long long>(o.body_bytes));
  if (o.warmup_failures > 0)
    std::fprintf(stderr, "warm-up failures: %llu (first: %s)\n",
                 static_cast<unsigned long long>(o.warmup_failures), o.warmup_error.c_str());
  if (t.failures > 0)
    std::fprintf(stderr, "failures: %llu (first: %s)\n",
                 static_cast<unsigned long long>(t.failures), t.first_error.c_str());
  if (done < s.requests)
    std::fprintf(stderr, "stopped by --duration after %llu of %llu requests\n",
                 static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(s.requests));
  return t.failures > 0 || o.warmup_failures > 0 ? 1 : 0;
}
