// Tests of proxy::reverse_proxy with real peers on 127.0.0.1: nginx
// backends that say what they received, curl as the client, wrk as the
// load, and the trellis-proxy program itself for the memory bound of
// large bodies.
//
// The nginx backends answer every request with the fields a proxy must
// remove or replace, as nginx saw them, and with $connection_requests, so
// the upstream side of the proxy is checked by an independent HTTP
// implementation rather than by trellis's own parser. Without nginx, curl,
// wrk or the trellis-proxy binary the tests that need them skip visibly.
// Every load run and every transfer is bounded in count and in time.
#include "trellis/proxy/reverse_proxy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "support/bytes.hpp"
#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/nginx_server.hpp"
#include "support/process.hpp"
#include "support/proxy_rig.hpp"
#include "support/wrk.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/http/server.hpp"

#define REQUIRE_PROGRAM(program, package)                                                     \
  do {                                                                                        \
    if (!::trellis::test::program_exists(program))                                            \
      GTEST_SKIP() << "needs the `" program "` program on PATH (Debian package " package ")"; \
  } while (0)

namespace trellis::proxy {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::nginx_server;
using ::testing::HasSubstr;
using ::testing::Not;

// Sanitizers keep freed memory in quarantine and add shadow memory of
// their own: peak-memory figures then measure them, not the proxy.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

using test::proxy_rig;

// An nginx backend whose every response says, in its body, what nginx
// received: each field a proxy must remove (hop-by-hop, and X-Foo, which
// the client's Connection names) or replace (forwarding fields), the Host
// and target, and which connection carried the request and how many
// requests that connection has carried. Values are in brackets, so an
// absent field reads "[]". It names itself in X-Backend, and adds
// hop-by-hop fields of its own to each response: Keep-Alive (from the
// second keepalive_timeout value) and a Connection that names X-Private.
test::nginx_options echo_backend(const std::string& name) {
  test::nginx_options o;
  o.server_body =
      "    default_type text/plain;\n"
      "    keepalive_timeout 60s 60s;\n"
      // Connections stay open however long a load run is, so that a
      // connection closing means something went wrong.
      "    keepalive_requests 1000000;\n"
      "    location / {\n";
  o.server_body += "      add_header X-Backend " + name + " always;\n";
  o.server_body +=
      "      add_header X-Private secret always;\n"
      "      add_header Connection X-Private always;\n"
      "      return 200 \"xff=[$http_x_forwarded_for] fwd=[$http_forwarded] "
      "xfp=[$http_x_forwarded_proto] xfh=[$http_x_forwarded_host] via=[$http_via] "
      "conn=[$http_connection] te=[$http_te] keepalive=[$http_keep_alive] "
      "upgrade=[$http_upgrade] pc=[$http_proxy_connection] foo=[$http_x_foo] "
      "host=[$host] uri=[$request_uri] cid=[$connection] reqs=[$connection_requests]\\n\";\n"
      "    }\n";
  o.worker_connections = 256;
  return o;
}

// The value between "key=[" and "]" in an echo_backend body; nullopt when
// the key is missing.
std::optional<std::string> echoed(const std::string& body, const std::string& key) {
  const std::string open = key + "=[";
  const auto at = body.find(open);
  if (at == std::string::npos) return std::nullopt;
  const auto from = at + open.size();
  const auto to = body.find(']', from);
  if (to == std::string::npos) return std::nullopt;
  return body.substr(from, to - from);
}

// Every field line of what `curl -i` printed, name lower-cased, in order
// (curl_reply keeps only the last line of each name).
std::vector<std::pair<std::string, std::string>> head_fields(const std::string& out) {
  std::vector<std::pair<std::string, std::string>> fields;
  const auto end = out.find("\r\n\r\n");
  if (end == std::string::npos) return fields;
  std::size_t pos = out.find("\r\n") + 2;
  while (pos < end) {
    const auto eol = out.find("\r\n", pos);
    const std::string line = out.substr(pos, eol - pos);
    pos = eol + 2;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    fields.emplace_back(std::move(name), std::move(value));
  }
  return fields;
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// One request with curl: `extra` goes before the URL. The raw output is
// kept for the tests that look at every field line.
struct curl_result {
  test::curl_reply reply;
  std::string raw;
};

curl_result curl(const std::string& url, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"curl", "-sS", "-i", "--max-time", "10"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  const auto done = test::run(args, {}, 20s);
  EXPECT_TRUE(done.status.success()) << "curl " << url << ": " << done.err;
  return {test::parse_curl(done.out), done.out};
}

std::size_t lines_in(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// A value in kB from /proc/<pid>/status ("VmHWM", "VmRSS"); -1 when it
// cannot be read.
long status_kib(pid_t pid, std::string_view key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    try {
      return std::stol(line.substr(prefix.size()));
    } catch (...) {
      return -1;
    }
  }
  return -1;
}

// Makes this process's VmHWM start again from its current resident size
// (Linux >= 4.0), so that a later VmHWM measures one transfer only.
bool reset_peak_memory() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

// A temporary directory, removed with everything in it.
class scratch_dir {
 public:
  scratch_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/trellis-peers-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw std::system_error(errno, std::system_category(), "mkdtemp " + tmpl);
    path_ = tmpl;
  }
  ~scratch_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A file of `size` bytes that takes no disk space (a hole, read as zeros).
fs::path sparse_file(const fs::path& p, std::uintmax_t size) {
  fs::create_directories(p.parent_path());
  { std::ofstream create(p, std::ios::binary | std::ios::trunc); }
  fs::resize_file(p, size);
  return p;
}

// FNV-1a, 64 bits: a checksum of a body that arrives in pieces.
struct fnv1a {
  std::uint64_t h = 14695981039346656037ull;
  void add(std::string_view bytes) {
    for (unsigned char ch : bytes) {
      h ^= ch;
      h *= 1099511628211ull;
    }
  }
  std::string hex() const {
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
    return out;
  }
};

// An upload sink: reads the request body piece by piece, never whole, and
// answers "bytes=<n> fnv=<checksum>" (the checksum only when `checksum`:
// hashing hundreds of MiB in a debug build would take longer than the
// transfer).
http::handler counting_sink(bool checksum) {
  return [checksum](http::request& req, http::response& res) -> asio::awaitable<void> {
    std::uint64_t n = 0;
    fnv1a sum;
    for (;;) {
      auto piece = co_await req.read_some();
      if (!piece) {
        res.status = 400;
        res.set_text("body read failed: " + piece.error().message() + "\n");
        co_return;
      }
      if (piece->empty()) break;
      n += piece->size();
      if (checksum) sum.add(*piece);
    }
    res.set_text("bytes=" + std::to_string(n) + " fnv=" + (checksum ? sum.hex() : "-") + "\n");
  };
}

// Server options for a peer that takes bodies of any size.
http::server_options unlimited_bodies() {
  http::server_options so;
  so.limits.max_body = std::uint64_t{1} << 40;
  return so;
}

// ---------------------------------------------------------------------------
// Header hygiene, seen by nginx and by curl

TEST(ReverseProxyPeers, NginxSeesNoHopByHopFieldsAndOnlyTheProxysForwardingFields) {
  REQUIRE_NGINX();
  REQUIRE_PROGRAM("curl", "curl");
  nginx_server backend(echo_backend("a"));
  proxy_rig rig({backend.address()});
  const std::string front = "127.0.0.1:" + std::to_string(rig.port());
  // Hop-by-hop fields, a field the client's Connection names as its own,
  // and forwarding fields a client has no business setting.
  const auto r = curl(rig.url("/echo/path?q=1&r=2"), {"-H", "Connection: close, X-Foo",
                                                      "-H", "X-Foo: secret",
                                                      "-H", "Keep-Alive: 300",
                                                      "-H", "TE: trailers",
                                                      "-H", "Proxy-Connection: keep-alive",
                                                      "-H", "Upgrade: h2c",
                                                      "-H", "X-Forwarded-For: 10.1.2.3",
                                                      "-H", "Forwarded: for=10.1.2.3",
                                                      "-H", "X-Forwarded-Proto: https",
                                                      "-H", "X-Forwarded-Host: spoofed.example",
                                                      "-H", "Via: 1.0 spoofer"});
  ASSERT_EQ(r.reply.status, 200) << r.raw << backend.error_log();
  ASSERT_EQ(r.reply.header("x-backend"), "a");
  const std::string& seen = r.reply.body;

  // The client's hop-by-hop fields stop at the proxy, X-Foo included.
  EXPECT_EQ(echoed(seen, "conn"), "") << seen;
  EXPECT_EQ(echoed(seen, "te"), "") << seen;
  EXPECT_EQ(echoed(seen, "keepalive"), "") << seen;
  EXPECT_EQ(echoed(seen, "upgrade"), "") << seen;
  EXPECT_EQ(echoed(seen, "pc"), "") << seen;
  EXPECT_EQ(echoed(seen, "foo"), "") << seen;
  EXPECT_THAT(seen, Not(HasSubstr("secret")));

  // Forwarding fields describe what the proxy saw, not what the client
  // claimed: the client is untrusted, so its values are dropped.
  EXPECT_EQ(echoed(seen, "xff"), "127.0.0.1") << seen;
  EXPECT_EQ(echoed(seen, "fwd"), "for=127.0.0.1;host=\"" + front + "\";proto=http") << seen;
  EXPECT_EQ(echoed(seen, "xfp"), "http") << seen;
  EXPECT_EQ(echoed(seen, "xfh"), front) << seen;
  EXPECT_THAT(seen, Not(HasSubstr("10.1.2.3")));
  EXPECT_THAT(seen, Not(HasSubstr("spoofed.example")));
  // Via is a list every hop appends to: the client's element stays.
  EXPECT_EQ(echoed(seen, "via"), "1.0 spoofer, 1.1 trellis") << seen;

  // Host and target arrive as the client sent them.
  EXPECT_EQ(echoed(seen, "host"), "127.0.0.1") << seen;
  EXPECT_EQ(echoed(seen, "uri"), "/echo/path?q=1&r=2") << seen;
}

TEST(ReverseProxyPeers, NginxsHopByHopResponseFieldsDoNotReachCurl) {
  REQUIRE_NGINX();
  REQUIRE_PROGRAM("curl", "curl");
  nginx_server backend(echo_backend("a"));

  // Asked directly, nginx does send them: the check below is not vacuous.
  const auto direct = curl(backend.url("/"));
  ASSERT_EQ(direct.reply.status, 200) << direct.raw;
  const auto direct_fields = head_fields(direct.raw);
  auto has = [](const std::vector<std::pair<std::string, std::string>>& fields,
                const std::string& name, const std::string& value) {
    return std::find(fields.begin(), fields.end(), std::make_pair(name, value)) != fields.end();
  };
  ASSERT_TRUE(has(direct_fields, "keep-alive", "timeout=60")) << direct.raw;
  ASSERT_TRUE(has(direct_fields, "x-private", "secret")) << direct.raw;
  ASSERT_TRUE(has(direct_fields, "connection", "X-Private")) << direct.raw;

  proxy_rig rig({backend.address()});
  const auto r = curl(rig.url("/"));
  ASSERT_EQ(r.reply.status, 200) << r.raw;
  EXPECT_EQ(r.reply.header("x-backend"), "a");
  EXPECT_EQ(r.reply.header("via"), "1.1 trellis");
  for (const auto& [name, value] : head_fields(r.raw)) {
    EXPECT_NE(name, "keep-alive") << r.raw;
    EXPECT_NE(name, "x-private") << r.raw;
    EXPECT_NE(name, "transfer-encoding") << r.raw;
    // A Connection field, if any, is the proxy's own about its connection
    // with curl, never nginx's.
    if (name == "connection") {
      EXPECT_THAT(lower(value), Not(HasSubstr("x-private"))) << r.raw;
      EXPECT_THAT(lower(value), Not(HasSubstr("keep-alive"))) << r.raw;
    }
  }
  EXPECT_THAT(lower(r.raw), Not(HasSubstr("secret")));
}

// ---------------------------------------------------------------------------
// Balancing and upstream keep-alive

TEST(ReverseProxyPeers, SpreadsRequestsOverNginxBackendsOnKeptAliveConnections) {
  REQUIRE_NGINX();
  REQUIRE_PROGRAM("curl", "curl");
  nginx_server a(echo_backend("a")), b(echo_backend("b")), c(echo_backend("c"));
  proxy_rig rig({a.address(), b.address(), c.address()});
  // Each backend's view, in the order it got its requests: (connection
  // serial, requests that connection has carried).
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> seen;
  constexpr int rounds = 3;
  for (int i = 0; i < 3 * rounds; ++i) {
    // Each curl is a new client connection, closed after one request:
    // what stays open is the proxy's own connection to each backend.
    const auto r = curl(rig.url("/n/" + std::to_string(i)));
    ASSERT_EQ(r.reply.status, 200) << r.raw;
    const std::string name = r.reply.header("x-backend");
    ASSERT_FALSE(name.empty()) << r.raw;
    EXPECT_EQ(echoed(r.reply.body, "uri"), "/n/" + std::to_string(i));
    seen[name].emplace_back(echoed(r.reply.body, "cid").value_or("?"),
                            echoed(r.reply.body, "reqs").value_or("?"));
  }
  // Round robin: every backend got its share.
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& [name, requests] : seen) {
    ASSERT_EQ(requests.size(), static_cast<std::size_t>(rounds)) << name;
    // One connection carried all of them: nginx counted 1, 2, 3 on it.
    for (int k = 0; k < rounds; ++k) {
      EXPECT_EQ(requests[static_cast<std::size_t>(k)].first, requests[0].first)
          << name << " request " << k;
      EXPECT_EQ(requests[static_cast<std::size_t>(k)].second, std::to_string(k + 1))
          << name << " request " << k;
    }
  }
  EXPECT_EQ(rig.proxy().stats().requests, static_cast<std::uint64_t>(3 * rounds));
  EXPECT_EQ(rig.proxy().stats().retries, 0u);
}

// ---------------------------------------------------------------------------
// A backend dying under load

TEST(ReverseProxyPeers, AnNginxKilledUnderLoadCostsNoRequestAndIsEjected) {
  REQUIRE_NGINX();
  REQUIRE_PROGRAM("wrk", "wrk");
  nginx_server a(echo_backend("a")), victim(echo_backend("victim")), c(echo_backend("c"));
  reverse_proxy_options o;
  // Retries are capped by a budget: at most 20% of the requests in flight,
  // but never fewer than min_retry_concurrency at once (3 by default).
  // When a backend dies, every request in flight on it fails at the same
  // moment, and with wrk's 8 connections more than 3 may need a retry at
  // once; the budget would then answer some with 502, as designed. The
  // floor is raised to wrk's connection count so that this test checks
  // that every request CAN be retried, not the budget's arithmetic.
  o.min_retry_concurrency = 8;
  proxy_rig rig({a.address(), victim.address(), c.address()}, o);

  // GET / through the proxy, 8 connections for 4 s (bounded by wrk itself;
  // the wait below bounds it again).
  test::process wrk({"wrk", "-t1", "-c8", "-d4s", "--latency", rig.url("/")});
  std::this_thread::sleep_for(1s);
  const std::size_t victim_served = lines_in(victim.access_log());
  const std::size_t a_before = lines_in(a.access_log());
  const std::size_t c_before = lines_in(c.access_log());
  victim.kill();
  const auto done = wrk.wait_for(20s);
  ASSERT_TRUE(done) << "wrk did not finish: " << wrk.out();
  EXPECT_TRUE(done->success()) << done->describe() << "\n" << wrk.err();

  const std::string report = wrk.out();
  const auto stats = rig.proxy().stats();
  const std::string why = report + "\nproxy: requests=" + std::to_string(stats.requests) +
                          " retries=" + std::to_string(stats.retries) +
                          " connect_errors=" + std::to_string(stats.connect_errors) +
                          " bad_responses=" + std::to_string(stats.bad_responses) +
                          " timeouts=" + std::to_string(stats.timeouts) +
                          " budget_exhausted=" + std::to_string(stats.retry_budget_exhausted);
  const test::wrk_summary s = test::parse_wrk(report);
  EXPECT_GT(s.requests, 0) << why;
  EXPECT_FALSE(s.socket_errors) << why;
  EXPECT_FALSE(s.non_2xx) << why;
  // The proxy's side of the same facts: nothing failed towards wrk.
  EXPECT_EQ(stats.connect_errors, 0u) << why;
  EXPECT_EQ(stats.bad_responses, 0u) << why;
  EXPECT_EQ(stats.timeouts, 0u) << why;
  EXPECT_EQ(stats.retry_budget_exhausted, 0u) << why;
  // The victim was in rotation before it died, and the failures it caused
  // were retried elsewhere.
  EXPECT_GT(victim_served, 0u) << why;
  EXPECT_GE(stats.retries, 1u) << why;
  // The survivors carried on after the kill.
  EXPECT_GT(lines_in(a.access_log()), a_before) << why;
  EXPECT_GT(lines_in(c.access_log()), c_before) << why;

  // Passive outlier detection took the dead host out; the others stay in.
  for (const auto& h : rig.cluster().status()) {
    if (h.address == victim.address()) {
      EXPECT_TRUE(h.ejected) << h.address << "\n" << why;
      EXPECT_FALSE(h.eligible) << h.address;
      EXPECT_GE(h.ejections, 1u) << h.address;
    } else {
      EXPECT_FALSE(h.ejected) << h.address << "\n" << why;
      EXPECT_TRUE(h.eligible) << h.address;
    }
  }
  EXPECT_EQ(rig.cluster().eligible()->size(), 2u);
  EXPECT_FALSE(rig.cluster().in_panic());
}

// Once part of a response has been relayed, the request cannot be retried
// elsewhere: the client already has a status and some of the body. What it
// must get then is a response that is visibly incomplete, never one that
// looks whole but is short.
TEST(ReverseProxyPeers, AnNginxKilledMidResponseLeavesCurlWithAnIncompleteBody) {
  REQUIRE_NGINX();
  REQUIRE_PROGRAM("curl", "curl");
  // 256 KiB/s: the 2 MiB body would take 8 s, so nginx is surely still
  // sending when it is killed.
  nginx_server origin({.server_body = "    location / { limit_rate 256k; }\n"});
  const std::string file = test::make_bytes(2u << 20);
  origin.put("/slow.bin", file);
  proxy_rig rig({origin.address()});

  const fs::path out = origin.dir() / "partial.bin";
  test::process client({"curl", "-sS", "--max-time", "20", "-o", out.string(), "-w",
                        "%{http_code} %{size_download}", rig.url("/slow.bin")});
  // Wait (at most 5 s) until curl has more than the proxy's 64 KiB
  // buffer: the response head has gone out and the body is streaming.
  for (int i = 0; i < 100; ++i) {
    std::error_code ec;
    const auto size = fs::file_size(out, ec);
    if (!ec && size > 128u * 1024) break;
    std::this_thread::sleep_for(50ms);
  }
  origin.kill();
  const auto done = client.wait_for(20s);
  ASSERT_TRUE(done) << "curl did not finish";
  // curl's exit code 18: "partial file", fewer body bytes than the
  // Content-Length said.
  EXPECT_EQ(done->code, 18) << done->describe() << ": " << client.err();
  const std::string reported = client.out();  // "<status> <bytes>"
  ASSERT_EQ(reported.substr(0, 4), "200 ") << reported;
  const auto received = std::stoull(reported.substr(4));
  EXPECT_GT(received, 128u * 1024) << reported;
  EXPECT_LT(received, file.size()) << reported;
  // What did arrive is the start of the file, unchanged.
  const std::string partial = test::read_file(out);
  EXPECT_EQ(partial.size(), received);
  EXPECT_TRUE(file.compare(0, partial.size(), partial) == 0) << "the bytes received differ";
  EXPECT_EQ(rig.proxy().stats().bad_responses, 1u);
  EXPECT_EQ(rig.proxy().stats().retries, 0u);
}

// ---------------------------------------------------------------------------
// Large bodies in bounded memory

// 256 MiB: far more than any buffer the proxy has, small enough for a
// debug build to move in a few seconds.
constexpr std::uintmax_t large_body = 256u << 20;
// The most the proxy's peak memory may grow by while moving large_body:
// an eighth of it. Streaming needs a few buffers of 64 KiB; holding the
// body, or a good part of it, would not fit.
constexpr long memory_bound_kib = 32 * 1024;

TEST(ReverseProxyPeers, StreamsALargeUploadToTheBackendInBoundedMemory) {
  REQUIRE_PROGRAM("curl", "curl");
  scratch_dir dir;
  const fs::path upload = sparse_file(dir.path() / "upload.bin", large_body);
  test::test_server sink(counting_sink(false), unlimited_bodies());
  // The proxy's own server takes bodies of any size too (its default limit
  // is 8 MiB, as an origin server's would be).
  proxy_rig rig({"127.0.0.1:" + std::to_string(sink.port())}, {}, {}, unlimited_bodies());

  // The proxy, the sink and this test share the process: its peak memory
  // from here on is what the transfer cost them.
  const bool measured = reset_peak_memory();
  const long before = status_kib(::getpid(), "VmHWM");
  // PUT the file; "Expect:" stops curl from waiting for a 100 Continue.
  const auto done = test::run({"curl", "-sS", "--max-time", "60", "-H", "Expect:", "-T",
                               upload.string(), rig.url("/upload")},
                              {}, 90s);
  const long after = status_kib(::getpid(), "VmHWM");
  ASSERT_TRUE(done.status.success()) << done.err;
  EXPECT_EQ(done.out, "bytes=" + std::to_string(large_body) + " fnv=-\n");

  if (sanitized) GTEST_SKIP() << "peak memory under a sanitizer measures the sanitizer";
  if (!measured || before < 0 || after < 0)
    GTEST_SKIP() << "cannot reset or read this process's VmHWM (/proc/self/clear_refs)";
  EXPECT_LT(after - before, memory_bound_kib)
      << "peak memory grew from " << before << " KiB to " << after << " KiB";
}

// ---------------------------------------------------------------------------
// The trellis-proxy program

const std::string proxy_bin = std::string(TRELLIS_BIN_DIR) + "/trellis-proxy";

// One trellis-proxy process in quick mode, one worker, on a free port
// (it takes no port 0; a port taken meanwhile makes it exit, and another
// is tried).
class proxy_process {
 public:
  // `extra`: more command-line arguments ("--cache", "64MiB").
  explicit proxy_process(const std::vector<std::string>& upstreams,
                         const std::vector<std::string>& extra = {}) {
    std::string why;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = test::free_port();
      std::vector<std::string> argv = {proxy_bin, "--listen", "127.0.0.1:" + std::to_string(port_),
                                       "--workers", "1"};
      for (const auto& u : upstreams) {
        argv.push_back("--upstream");
        argv.push_back(u);
      }
      argv.insert(argv.end(), extra.begin(), extra.end());
      proc_.emplace(argv);
      if (proc_->wait_for_output("listening", 10s, /*from_stderr=*/true)) return;
      why = proc_->err();
      proc_.reset();
    }
    throw std::runtime_error("trellis-proxy did not start: " + why);
  }
  ~proxy_process() { proc_->wait_or_kill(0ms, 2s); }
  proxy_process(const proxy_process&) = delete;
  proxy_process& operator=(const proxy_process&) = delete;

  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  // The process's peak resident memory so far, in KiB; -1 if unknown.
  long peak_kib() const { return status_kib(proc_->pid(), "VmHWM"); }
  test::process& proc() { return *proc_; }

 private:
  std::uint16_t port_ = 0;
  std::optional<test::process> proc_;
};

class TrellisProxyPeers : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(proxy_bin.c_str(), X_OK) != 0)
      GTEST_SKIP() << proxy_bin << " is not built (configure with TRELLIS_BUILD_EXAMPLES=ON)";
    if (!test::find_nginx())
      GTEST_SKIP() << "needs the `nginx` program (Debian package nginx-light) on PATH or in "
                      "/usr/sbin";
    if (!test::program_exists("curl"))
      GTEST_SKIP() << "needs the `curl` program on PATH (Debian package curl)";
  }
};

TEST_F(TrellisProxyPeers, StreamsALargeDownloadFromNginxInBoundedMemory) {
  nginx_server origin({.server_body = "    sendfile on;\n    location / { }\n"});
  sparse_file(origin.dir() / "www" / "large.bin", large_body);
  proxy_process proxy({origin.address()});

  const long before = proxy.peak_kib();
  // The body goes to /dev/null: curl only counts it.
  const auto done = test::run({"curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w",
                               "%{http_code} %{size_download}", proxy.url("/large.bin")},
                              {}, 90s);
  const long after = proxy.peak_kib();
  ASSERT_TRUE(done.status.success()) << done.err << proxy.proc().err();
  EXPECT_EQ(done.out, "200 " + std::to_string(large_body));

  if (sanitized) GTEST_SKIP() << "peak memory under a sanitizer measures the sanitizer";
  ASSERT_GT(before, 0) << "cannot read VmHWM of trellis-proxy";
  EXPECT_LT(after - before, memory_bound_kib)
      << "trellis-proxy's peak memory grew from " << before << " KiB to " << after << " KiB";
}

TEST_F(TrellisProxyPeers, RelaysADownloadAndAnUploadByteForByte) {
  nginx_server origin({.server_body = "    location / { }\n"});
  // Bytes of every value, so that a byte changed or lost anywhere shows.
  const std::string file = test::make_bytes((16u << 20) + 7);
  origin.put("/random.bin", file);
  test::test_server sink(counting_sink(true), unlimited_bodies());
  proxy_process to_origin({origin.address()});
  proxy_process to_sink({"127.0.0.1:" + std::to_string(sink.port())});

  const fs::path downloaded = origin.dir() / "downloaded.bin";
  const auto got = test::run({"curl", "-sS", "--max-time", "30", "-o", downloaded.string(), "-w",
                              "%{http_code}", to_origin.url("/random.bin")},
                             {}, 60s);
  ASSERT_TRUE(got.status.success()) << got.err;
  EXPECT_EQ(got.out, "200");
  const std::string body = test::read_file(downloaded);
  EXPECT_EQ(body.size(), file.size());
  EXPECT_TRUE(body == file) << "the downloaded body differs from the file";

  // Above the 8 MiB a plain trellis server takes by default: trellis-proxy
  // streams request bodies on and sets no limit unless configured to.
  const std::string upload = test::make_bytes((12u << 20) + 3);
  const fs::path upload_file = origin.dir() / "upload.bin";
  test::write_file(upload_file, upload);
  fnv1a expected;
  expected.add(upload);
  const auto sent = test::run({"curl", "-sS", "--max-time", "30", "-H", "Expect:", "-T",
                               upload_file.string(), to_sink.url("/upload")},
                              {}, 60s);
  ASSERT_TRUE(sent.status.success()) << sent.err;
  EXPECT_EQ(sent.out, "bytes=" + std::to_string(upload.size()) + " fnv=" + expected.hex() + "\n");
}

// ---------------------------------------------------------------------------
// trellis-proxy --cache in front of nginx: a CDN edge and its origin

// The lines of nginx's access log that asked for `path`.
int origin_requests(const nginx_server& origin, std::string_view path) {
  const std::string log = origin.access_log();
  int n = 0;
  for (std::size_t at = 0; (at = log.find(std::string(" ") + std::string(path) + " ", at)) !=
                           std::string::npos;
       ++at)
    ++n;
  return n;
}

TEST_F(TrellisProxyPeers, CachesNginxsResponsesAndCollapsesMissesAtTheEdge) {
  nginx_server origin({.server_body = "    location / { add_header Cache-Control \"max-age=60\"; }\n"
                                      "    location /slow/ { limit_rate 256k;\n"
                                      "      add_header Cache-Control \"max-age=60\"; }\n"});
  origin.put("/page.txt", "the page\n");
  const std::string slow = test::make_bytes(256 * 1024);
  origin.put("/slow/big.bin", slow);
  const std::uint16_t admin_port = test::free_port();
  const std::string admin = "127.0.0.1:" + std::to_string(admin_port);
  proxy_process edge({origin.address()}, {"--cache", "64MiB", "--admin", admin});

  // A miss, stored; then a hit nginx never sees.
  const auto first = curl(edge.url("/page.txt"));
  EXPECT_EQ(first.reply.status, 200);
  EXPECT_EQ(first.reply.body, "the page\n");
  EXPECT_THAT(first.reply.header("cache-status"), HasSubstr("fwd=uri-miss"));
  EXPECT_THAT(first.reply.header("cache-status"), HasSubstr("stored"));
  const auto second = curl(edge.url("/page.txt"));
  EXPECT_EQ(second.reply.body, "the page\n");
  EXPECT_THAT(second.reply.header("cache-status"), HasSubstr("trellis; hit"));
  EXPECT_FALSE(second.reply.header("age").empty());
  EXPECT_EQ(origin_requests(origin, "/page.txt"), 1) << origin.access_log();

  // curl's conditional request, answered 304 by the edge from nginx's ETag.
  const std::string etag = first.reply.header("etag");
  ASSERT_FALSE(etag.empty());
  const auto conditional = curl(edge.url("/page.txt"), {"-H", "If-None-Match: " + etag});
  EXPECT_EQ(conditional.reply.status, 304);
  EXPECT_EQ(origin_requests(origin, "/page.txt"), 1);

  // 100 clients at once for a body nginx sends slowly (a second): one
  // request reaches nginx, every client gets the whole body.
  std::vector<std::string> args = {"curl", "-sS", "--max-time", "30", "--parallel",
                                   "--parallel-immediate", "--parallel-max", "100",
                                   "-w", "%{http_code} %{size_download}\\n"};
  for (int i = 0; i < 100; ++i) {
    args.push_back("-o");
    args.push_back("/dev/null");
    args.push_back(edge.url("/slow/big.bin"));
  }
  const auto many = test::run(args, {}, 60s);
  ASSERT_TRUE(many.status.success()) << many.err;
  int whole = 0;
  for (std::size_t at = 0; (at = many.out.find("200 " + std::to_string(slow.size()), at)) !=
                           std::string::npos;
       ++at)
    ++whole;
  EXPECT_EQ(whole, 100) << many.out;
  EXPECT_EQ(origin_requests(origin, "/slow/big.bin"), 1) << origin.access_log();

  // Purged through the admin listener: the next request goes to nginx.
  const auto purged = test::run({"curl", "-sS", "-X", "POST",
                                 "http://" + admin + "/cache/purge?url=" + edge.url("/page.txt")},
                                {}, 10s);
  EXPECT_THAT(purged.out, HasSubstr("purged"));
  const auto after = curl(edge.url("/page.txt"));
  EXPECT_THAT(after.reply.header("cache-status"), HasSubstr("fwd=uri-miss"));
  EXPECT_EQ(origin_requests(origin, "/page.txt"), 2);
}

}  // namespace
}  // namespace trellis::proxy
