// Micro-benchmarks of the HTTP/1.1 request parser, beside Debian's
// http-parser (nodejs/http-parser 2.9, the predecessor of llhttp) in the
// same binary, on the same bytes:
//
//   taskset -c 1 build/h-parser-rel/bin/bench-http_parser
//
// Workloads:
//   browser    five browser requests (Firefox/Chrome/Safari-like: user
//              agents, cookies, sec-fetch-*, ~500-900 bytes each);
//   api        five small API requests (JSON POST with its body, GET with a
//              bearer token, PUT, DELETE, a health check);
//   pipelined  sixteen plaintext requests in one buffer (wrk/TechEmpower
//              style), parsed one after another from the same bytes;
//   chunked    a request whose 16 KiB body comes in 16 chunks with
//              extensions and a trailer: the body state machine.
//
// Both parsers do the work a server needs: method, target, version, every
// field as (name, value) views, framing, body bytes located. http-parser
// reports them through callbacks that store the views in a fixed table;
// trellis returns them in its head. Each parser object lives as long as the
// benchmark (one connection); trellis is reset() and http-parser re-inited
// between messages. bytes/s and items/s (requests) are reported for each;
// `allocs` counts heap allocations per request inside the timed loop (the
// global operator new of this binary is counted).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/http/parser.hpp"

#if defined(TRELLIS_HAVE_HTTP_PARSER)
#include <http_parser.h>
#endif

// --- allocation counting (this binary only) -----------------------------------

namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// Out of line, or g++ sees free() meet operator new after inlining and warns
// (-Wmismatched-new-delete) although the pair is consistent.
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

namespace http = trellis::http;

// --- workloads ----------------------------------------------------------------

const std::vector<std::string> browser_requests = {
    "GET /search?q=trellis&lang=en HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Referer: https://www.example.com/\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; "
    "_ga=GA1.2.1234567890.1700000000\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Priority: u=0, i\r\n"
    "\r\n",

    "GET /static/css/main.4f2a9c1e.css HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\", \"Not-A.Brand\";v=\"8\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36\r\n"
    "sec-ch-ua-platform: \"Windows\"\r\n"
    "Accept: text/css,*/*;q=0.1\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Sec-Fetch-Dest: style\r\n"
    "Referer: https://www.example.com/products/42\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; consent=yes; cart=3\r\n"
    "If-None-Match: W/\"4f2a9c1e-1a2b\"\r\n"
    "If-Modified-Since: Tue, 11 Jun 2024 08:12:31 GMT\r\n"
    "\r\n",

    "GET /images/hero@2x.webp HTTP/1.1\r\n"
    "Host: cdn.example.com\r\n"
    "Accept: image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
    "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5\r\n"
    "Sec-Fetch-Site: same-site\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-Fetch-Dest: image\r\n"
    "User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Safari/605.1.15\r\n"
    "Referer: https://www.example.com/\r\n"
    "Connection: keep-alive\r\n"
    "\r\n",

    "GET /api/notifications?since=1718093551&limit=20 HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "X-Requested-With: XMLHttpRequest\r\n"
    "X-CSRF-Token: 6d1e2b6a0f7c4e9a8b3c2d1e0f9a8b7c\r\n"
    "Connection: keep-alive\r\n"
    "Referer: https://www.example.com/inbox\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: cors\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "\r\n",

    "GET /account/settings HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "Connection: keep-alive\r\n"
    "Cache-Control: max-age=0\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; _ga=GA1.1.1234567890.1700000000; "
    "_ga_ABCDEF1234=GS1.1.1718093551.12.1.1718093600.0.0.0; _gid=GA1.2.987654321.1718000000; "
    "_fbp=fb.1.1700000000000.1234567890; ab_test=variant_b; locale=en_US; tz=Europe%2FBerlin; "
    "recently_viewed=42%2C17%2C99%2C3; csrftoken=Jk8mN2pQ4rS6tU8vW0xY2zA4bC6dE8fG\r\n"
    "\r\n",
};

const std::vector<std::string> api_requests = {
    "POST /v1/orders HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: orders-client/2.3.1\r\n"
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl\r\n"
    "Content-Type: application/json\r\n"
    "Accept: application/json\r\n"
    "Content-Length: 59\r\n"
    "\r\n"
    "{\"customer\":1234,\"items\":[{\"sku\":\"A-17\",\"qty\":2}],\"rush\":0}",

    "GET /v1/users/42 HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: application/json\r\n"
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl\r\n"
    "\r\n",

    "PUT /kv/config/feature-flags HTTP/1.1\r\n"
    "Host: 10.0.0.7:8500\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 11\r\n"
    "\r\n"
    "beta=on;x=1",

    "DELETE /v1/sessions/5f1c2a HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl\r\n"
    "\r\n",

    "GET /healthz HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
};

std::string pipelined_batch() {
  std::string s;
  for (int i = 0; i < 16; ++i)
    s += "GET /plaintext HTTP/1.1\r\n"
         "Host: localhost:8080\r\n"
         "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,"
         "*/*;q=0.7\r\n"
         "Connection: keep-alive\r\n"
         "\r\n";
  return s;
}

std::string chunked_request() {
  std::string s =
      "POST /upload HTTP/1.1\r\n"
      "Host: storage.example.com\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Transfer-Encoding: chunked\r\n"
      "Trailer: X-Checksum\r\n"
      "\r\n";
  const std::string data(1024, 'd');
  for (int i = 0; i < 16; ++i) s += "400;seq=" + std::to_string(i) + "\r\n" + data + "\r\n";
  s += "0\r\nX-Checksum: 9a0364b9e99bb480dd25e1f0284c8555\r\n\r\n";
  return s;
}

std::uint64_t total_size(const std::vector<std::string>& v) {
  std::uint64_t n = 0;
  for (const auto& s : v) n += s.size();
  return n;
}

// --- trellis --------------------------------------------------------------------

// Parses every request in `stream` (head, then body), returns how many.
std::size_t trellis_parse(http::request_parser& p, std::string_view stream) {
  std::size_t n = 0;
  while (!stream.empty()) {
    if (p.parse_head(stream) != http::parse_status::done) std::abort();
    benchmark::DoNotOptimize(p.head().headers.data());
    stream.remove_prefix(p.head_size());
    while (!p.body_done()) {
      std::string_view data;
      const auto r = p.parse_body(stream, data);
      if (!r || *r == 0) std::abort();
      benchmark::DoNotOptimize(data.data());
      stream.remove_prefix(*r);
    }
    p.reset();
    ++n;
  }
  return n;
}

void run_trellis(benchmark::State& state, const std::vector<std::string>& messages) {
  http::parser_limits limits;
  http::request_parser p(limits);
  std::uint64_t requests = 0;
  const std::uint64_t before = allocations.load();
  for (auto _ : state)
    for (const std::string& m : messages) requests += trellis_parse(p, m);
  const std::uint64_t allocs = allocations.load() - before;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * total_size(messages)));
  state.SetItemsProcessed(static_cast<std::int64_t>(requests));
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(allocs) /
                                                static_cast<double>(requests ? requests : 1));
}

void BM_trellis_browser(benchmark::State& state) {
  run_trellis(state, browser_requests);
}
void BM_trellis_api(benchmark::State& state) {
  run_trellis(state, api_requests);
}
void BM_trellis_pipelined(benchmark::State& state) {
  run_trellis(state, {pipelined_batch()});
}
void BM_trellis_chunked(benchmark::State& state) {
  run_trellis(state, {chunked_request()});
}
BENCHMARK(BM_trellis_browser);
BENCHMARK(BM_trellis_api);
BENCHMARK(BM_trellis_pipelined);
BENCHMARK(BM_trellis_chunked);

// --- http-parser -------------------------------------------------------------------

#if defined(TRELLIS_HAVE_HTTP_PARSER)

// What the callbacks collect: the same views trellis hands out. Callbacks
// may deliver one element in several pieces (never here: every message is
// whole in one buffer), so a piece that continues the previous one extends it.
struct field_view {
  const char* name = nullptr;
  std::size_t name_len = 0;
  const char* value = nullptr;
  std::size_t value_len = 0;
};

struct sink {
  const char* url = nullptr;
  std::size_t url_len = 0;
  field_view fields[100];
  std::size_t count = 0;
  bool in_value = false;
  std::uint64_t body = 0;
  std::size_t complete = 0;
};

int on_message_begin(http_parser* p) {
  sink& s = *static_cast<sink*>(p->data);
  s.url_len = 0;
  s.count = 0;
  s.in_value = false;
  s.body = 0;
  return 0;
}
int on_url(http_parser* p, const char* at, std::size_t n) {
  sink& s = *static_cast<sink*>(p->data);
  if (s.url_len == 0) s.url = at;
  s.url_len += n;
  return 0;
}
int on_header_field(http_parser* p, const char* at, std::size_t n) {
  sink& s = *static_cast<sink*>(p->data);
  if (s.in_value || s.count == 0) {
    if (s.count == 100) return 1;
    s.fields[s.count++] = {at, n, nullptr, 0};
    s.in_value = false;
  } else {
    s.fields[s.count - 1].name_len += n;
  }
  return 0;
}
int on_header_value(http_parser* p, const char* at, std::size_t n) {
  sink& s = *static_cast<sink*>(p->data);
  field_view& f = s.fields[s.count - 1];
  if (!s.in_value) f.value = at;
  f.value_len += n;
  s.in_value = true;
  return 0;
}
int on_headers_complete(http_parser* p) {
  benchmark::DoNotOptimize(static_cast<sink*>(p->data)->fields);
  return 0;
}
int on_body(http_parser* p, const char* at, std::size_t n) {
  benchmark::DoNotOptimize(at);
  static_cast<sink*>(p->data)->body += n;
  return 0;
}
int on_message_complete(http_parser* p) {
  ++static_cast<sink*>(p->data)->complete;
  return 0;
}

http_parser_settings settings() {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_message_begin = on_message_begin;
  s.on_url = on_url;
  s.on_header_field = on_header_field;
  s.on_header_value = on_header_value;
  s.on_headers_complete = on_headers_complete;
  s.on_body = on_body;
  s.on_message_complete = on_message_complete;
  return s;
}

void run_http_parser(benchmark::State& state, const std::vector<std::string>& messages) {
  const http_parser_settings cb = settings();
  http_parser p;
  sink s;
  const std::uint64_t before = allocations.load();
  for (auto _ : state) {
    for (const std::string& m : messages) {
      http_parser_init(&p, HTTP_REQUEST);
      p.data = &s;
      const std::size_t n = http_parser_execute(&p, &cb, m.data(), m.size());
      if (n != m.size() || p.http_errno != HPE_OK) std::abort();
    }
  }
  const std::uint64_t allocs = allocations.load() - before;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * total_size(messages)));
  state.SetItemsProcessed(static_cast<std::int64_t>(s.complete));
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(allocs) /
                                                static_cast<double>(s.complete ? s.complete : 1));
}

void BM_http_parser_browser(benchmark::State& state) {
  run_http_parser(state, browser_requests);
}
void BM_http_parser_api(benchmark::State& state) {
  run_http_parser(state, api_requests);
}
void BM_http_parser_pipelined(benchmark::State& state) {
  run_http_parser(state, {pipelined_batch()});
}
void BM_http_parser_chunked(benchmark::State& state) {
  run_http_parser(state, {chunked_request()});
}
BENCHMARK(BM_http_parser_browser);
BENCHMARK(BM_http_parser_api);
BENCHMARK(BM_http_parser_pipelined);
BENCHMARK(BM_http_parser_chunked);

#endif  // TRELLIS_HAVE_HTTP_PARSER

}  // namespace
