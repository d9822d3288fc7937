// The reverse proxy as a caching edge (reverse_proxy_cache.cpp), end to
// end on 127.0.0.1: a trellis origin whose answers each test scripts and
// counts, the proxy in front of it with an http_cache, and a raw client
// that sees the proxy's bytes exactly. RFC 9111's arithmetic and every
// directive alone are tested in tests/http/caching_test.cpp; here, that the
// proxy acts on them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.hpp"
#include "support/http_server.hpp"
#include "support/proxy_rig.hpp"
#include "trellis/codec/http/content_coding.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/proxy/http_cache.hpp"
#include "trellis/proxy/reverse_proxy.hpp"

namespace trellis::proxy {
namespace {

using namespace std::chrono_literals;
using test::proxy_rig;
using test::raw_client;
using test::test_server;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// An origin whose answer the test sets: status, fields and body; it counts
// requests and remembers the last one's fields. With an ETag set, a
// matching If-None-Match gets a 304.
class origin {
 public:
  origin()
      : server_([this](http::request& req, http::response& res) -> asio::awaitable<void> {
          return handle(req, res);
        }) {}

  void answer(int status, std::vector<std::pair<std::string, std::string>> fields,
              std::string body) {
    std::lock_guard lock(mutex_);
    status_ = status;
    fields_ = std::move(fields);
    body_ = std::move(body);
  }
  void delay(std::chrono::milliseconds d) { delay_ = d; }
  int hits() const { return hits_.load(); }
  std::string last_field(const std::string& name) {
    std::lock_guard lock(mutex_);
    for (const auto& [k, v] : last_)
      if (raw_response_iequals(k, name)) return v;
    return "";
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_.port()); }

 private:
  static bool raw_response_iequals(std::string_view a, std::string_view b) {
    return test::raw_response::iequals(a, b);
  }
  asio::awaitable<void> handle(http::request& req, http::response& res) {
    ++hits_;
    if (const std::chrono::milliseconds d = delay_.load(); d.count() > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor, d);
      co_await t.async_wait(use_nothrow);
    }
    std::lock_guard lock(mutex_);
    last_.clear();
    for (const auto& f : req.headers())
      last_.emplace_back(std::string(f.name), std::string(f.value));
    std::string etag;
    for (const auto& [k, v] : fields_)
      if (raw_response_iequals(k, "ETag")) etag = v;
    res.status = status_;
    for (const auto& [k, v] : fields_) (void)res.headers.add(k, v);
    if (!etag.empty() && req.header("If-None-Match") == etag) {
      res.status = 304;
      co_return;
    }
    res.body = body_;
  }

  test_server server_;
  std::mutex mutex_;
  int status_ = 200;
  std::vector<std::pair<std::string, std::string>> fields_;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> last_;
  std::atomic<int> hits_{0};
  std::atomic<std::chrono::milliseconds> delay_{0ms};
};

reverse_proxy_options caching(std::shared_ptr<http_cache> store, bool gzip) {
  reverse_proxy_options o;
  o.cache.store = std::move(store);
  o.cache.gzip = gzip;
  return o;
}

struct edge {
  explicit edge(origin& o, http_cache_options co = {}, bool gzip = false)
      : store(std::make_shared<http_cache>(std::move(co))),
        rig({o.address()}, caching(store, gzip)) {}
  std::shared_ptr<http_cache> store;
  proxy_rig rig;
};

TEST(ReverseProxyCache, StoresACacheableResponseAndServesItFromCache) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=60"}, {"Content-Type", "text/plain"}}, "hello");
  edge e(o);
  auto first = e.rig.get("/a");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "hello");
  EXPECT_EQ(first->header("Cache-Status"), "trellis; fwd=uri-miss; fwd-status=200; ttl=60; stored");
  auto second = e.rig.get("/a");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "hello");
  EXPECT_EQ(second->header("Content-Type"), "text/plain");
  EXPECT_THAT(second->header("Cache-Status"), StartsWith("trellis; hit; ttl="));
  EXPECT_FALSE(second->header("Age").empty());
  EXPECT_EQ(o.hits(), 1) << "the second answer came from the cache";
  EXPECT_EQ(e.store->stats().urls, 1u);

  auto other = e.rig.get("/a?x=1");
  ASSERT_TRUE(other);
  EXPECT_EQ(o.hits(), 2) << "another query is another URL";
}

TEST(ReverseProxyCache, DoesNotStoreWhatRfc9111Forbids) {
  origin o;
  edge e(o);
  for (const char* cc : {"no-store", "private", "max-age=60, no-store"}) {
    o.answer(200, {{"Cache-Control", cc}}, "secret");
    const int before = o.hits();
    auto r1 = e.rig.get(std::string("/p-") + cc[0] + cc[1]);
    auto r2 = e.rig.get(std::string("/p-") + cc[0] + cc[1]);
    ASSERT_TRUE(r1 && r2);
    EXPECT_EQ(o.hits(), before + 2) << cc;
    EXPECT_THAT(r1->header("Cache-Status"), HasSubstr("detail=")) << cc;
    EXPECT_THAT(r1->header("Cache-Status"), ::testing::Not(HasSubstr("stored"))) << cc;
  }
  // A request with Authorization, for a response that does not say public.
  o.answer(200, {{"Cache-Control", "max-age=60"}}, "yours");
  (void)e.rig.get("/auth", "Authorization: Basic dTpw\r\n");
  (void)e.rig.get("/auth", "Authorization: Basic dTpw\r\n");
  EXPECT_EQ(e.store->stats().urls, 0u);
}

TEST(ReverseProxyCache, KeepsOneVariantPerVaryValue) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=60"}, {"Vary", "Accept-Language"}}, "body");
  edge e(o);
  (void)e.rig.get("/v", "Accept-Language: en\r\n");
  (void)e.rig.get("/v", "Accept-Language: fr\r\n");
  EXPECT_EQ(o.hits(), 2);
  auto en = e.rig.get("/v", "Accept-Language: en\r\n");
  auto fr = e.rig.get("/v", "Accept-Language: fr\r\n");
  ASSERT_TRUE(en && fr);
  EXPECT_THAT(en->header("Cache-Status"), StartsWith("trellis; hit"));
  EXPECT_THAT(fr->header("Cache-Status"), StartsWith("trellis; hit"));
  auto de = e.rig.get("/v", "Accept-Language: de\r\n");
  ASSERT_TRUE(de);
  EXPECT_THAT(de->header("Cache-Status"), HasSubstr("fwd=vary-miss"));
  EXPECT_EQ(o.hits(), 3);
}

TEST(ReverseProxyCache, RevalidatesAStaleResponseAndServesItOnA304) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"v1\""}}, "version 1");
  edge e(o);
  auto first = e.rig.get("/r");
  ASSERT_TRUE(first);
  EXPECT_THAT(first->header("Cache-Status"), HasSubstr("stored"));
  auto second = e.rig.get("/r");
  ASSERT_TRUE(second);
  EXPECT_EQ(o.hits(), 2);
  EXPECT_EQ(o.last_field("If-None-Match"), "\"v1\"") << "the stored validator was sent";
  EXPECT_EQ(second->status, 200) << "the client asked unconditionally";
  EXPECT_EQ(second->body, "version 1");
  EXPECT_THAT(second->header("Cache-Status"), HasSubstr("fwd=stale; fwd-status=304"));
  EXPECT_EQ(e.store->stats().stored, 2u) << "the freshened copy replaced the stale one";

  // A changed resource: the origin's 200 replaces the stored copy.
  o.answer(200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"v2\""}}, "version 2");
  auto third = e.rig.get("/r");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->body, "version 2");
  EXPECT_THAT(third->header("Cache-Status"), HasSubstr("fwd=stale; fwd-status=200"));
}

TEST(ReverseProxyCache, AnswersTheClientsConditionalRequestFromCache) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=60"}, {"ETag", "\"abc\""}}, "payload");
  edge e(o);
  (void)e.rig.get("/c");
  auto r = e.rig.get("/c", "If-None-Match: \"abc\"\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 304);
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(r->header("ETag"), "\"abc\"");
  EXPECT_THAT(r->header("Cache-Status"), StartsWith("trellis; hit"));
  auto changed = e.rig.get("/c", "If-None-Match: \"other\"\r\n");
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->status, 200);
  EXPECT_EQ(changed->body, "payload");
  EXPECT_EQ(o.hits(), 1);
}

TEST(ReverseProxyCache, HonoursRequestDirectives) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=60"}, {"ETag", "\"e\""}}, "x");
  edge e(o);
  auto only = e.rig.get("/d", "Cache-Control: only-if-cached\r\n");
  ASSERT_TRUE(only);
  EXPECT_EQ(only->status, 504) << "nothing stored and the client forbids going on";
  EXPECT_EQ(o.hits(), 0);
  (void)e.rig.get("/d");
  EXPECT_EQ(o.hits(), 1);
  auto cached = e.rig.get("/d", "Cache-Control: only-if-cached\r\n");
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->status, 200);
  auto no_cache = e.rig.get("/d", "Cache-Control: no-cache\r\n");
  ASSERT_TRUE(no_cache);
  EXPECT_EQ(o.hits(), 2) << "no-cache: validated with the origin first";
  EXPECT_EQ(o.last_field("If-None-Match"), "\"e\"");
  EXPECT_THAT(no_cache->header("Cache-Status"), HasSubstr("fwd=request"));
}

TEST(ReverseProxyCache, UnsafeMethodsInvalidateTheTargetAndSameOriginLocation) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=60"}}, "list");
  edge e(o);
  (void)e.rig.get("/items");
  (void)e.rig.get("/items/7");
  (void)e.rig.get("/elsewhere");
  EXPECT_EQ(e.store->stats().urls, 3u);
  o.answer(201, {{"Location", "/items/7"}, {"Content-Location", "http://other.example/elsewhere"}},
           "created");
  raw_client c(e.rig.port());
  ASSERT_TRUE(c.send("POST /items HTTP/1.1\r\nHost: front.example\r\nContent-Length: 2\r\n\r\nhi"));
  auto posted = c.read_response();
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->status, 201);
  EXPECT_THAT(posted->header("Cache-Status"), HasSubstr("fwd=method"));
  EXPECT_EQ(e.store->stats().urls, 1u) << "the target and the same-origin Location went; "
                                          "the other origin's Content-Location did not";
  o.answer(200, {{"Cache-Control", "max-age=60"}}, "list");
  auto again = e.rig.get("/elsewhere");
  ASSERT_TRUE(again);
  EXPECT_THAT(again->header("Cache-Status"), StartsWith("trellis; hit"));
}

TEST(ReverseProxyCache, PurgesByUrlAndByTag) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=60"}, {"Surrogate-Key", "product-1 catalog"}}, "p1");
  edge e(o);
  (void)e.rig.get("/p/1");
  o.answer(200, {{"Cache-Control", "max-age=60"}, {"Surrogate-Key", "product-2 catalog"}}, "p2");
  (void)e.rig.get("/p/2");
  EXPECT_EQ(o.hits(), 2);
  e.store->purge_tag("product-1");
  auto p1 = e.rig.get("/p/1");
  auto p2 = e.rig.get("/p/2");
  ASSERT_TRUE(p1 && p2);
  EXPECT_THAT(p1->header("Cache-Status"), HasSubstr("fwd=uri-miss"));
  EXPECT_THAT(p2->header("Cache-Status"), StartsWith("trellis; hit"));
  EXPECT_TRUE(e.store->purge("http://front.example/p/2"));
  auto p2_again = e.rig.get("/p/2");
  ASSERT_TRUE(p2_again);
  EXPECT_THAT(p2_again->header("Cache-Status"), HasSubstr("fwd=uri-miss"));
}

TEST(ReverseProxyCache, CollapsesConcurrentMissesIntoOneUpstreamRequest) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=60"}}, "popular");
  o.delay(300ms);
  edge e(o);
  constexpr int clients = 100;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&] {
      raw_client c(e.rig.port(), 10s);
      if (!c.send("GET /hot HTTP/1.1\r\nHost: front.example\r\n\r\n")) return;
      auto r = c.read_response();
      if (r && r->status == 200 && r->body == "popular") ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), clients);
  EXPECT_EQ(o.hits(), 1) << "one upstream request for " << clients << " concurrent misses";
  EXPECT_GT(e.store->stats().collapsed, 0u);
}

TEST(ReverseProxyCache, ServesStaleWhenTheOriginFailsAndStaleIfErrorAllows) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=0, stale-if-error=600"}, {"ETag", "\"s\""}},
           "stale ok");
  edge e(o);
  (void)e.rig.get("/s");
  o.answer(503, {}, "down");
  auto r = e.rig.get("/s");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "stale ok");
  EXPECT_THAT(r->header("Cache-Status"), HasSubstr("fwd=stale; fwd-status=503"));
  EXPECT_THAT(r->header("Cache-Status"), HasSubstr("detail=stale-if-error"));

  // Without stale-if-error the origin's error is relayed.
  o.answer(200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"n\""}}, "fresh once");
  (void)e.rig.get("/n");
  o.answer(503, {}, "down");
  auto n = e.rig.get("/n");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->status, 503);
}

TEST(ReverseProxyCache, ServesStaleWhileRevalidatingInTheBackground) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=0, stale-while-revalidate=600"}, {"ETag", "\"w1\""}},
           "old");
  edge e(o);
  (void)e.rig.get("/w");
  EXPECT_EQ(o.hits(), 1);
  o.answer(200, {{"Cache-Control", "max-age=600"}, {"ETag", "\"w2\""}}, "new");
  auto stale = e.rig.get("/w");
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->body, "old") << "served at once, stale";
  EXPECT_THAT(stale->header("Cache-Status"), HasSubstr("detail=stale-while-revalidate"));
  for (int i = 0; i < 500 && e.store->stats().stored < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(o.hits(), 2) << "refreshed in the background";
  auto fresh = e.rig.get("/w");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->body, "new");
  EXPECT_THAT(fresh->header("Cache-Status"), StartsWith("trellis; hit"));
}

TEST(ReverseProxyCache, StoresALargeBodyWhileStreamingItAndServesItWhole) {
  origin o;
  std::string big(3 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  o.answer(200, {{"Cache-Control", "max-age=60"}}, big);
  edge e(o);
  auto first = e.rig.get("/big");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body.size(), big.size());
  EXPECT_TRUE(first->body == big);
  auto second = e.rig.get("/big");
  ASSERT_TRUE(second);
  EXPECT_THAT(second->header("Cache-Status"), StartsWith("trellis; hit"));
  EXPECT_EQ(second->header("Content-Length"), std::to_string(big.size()));
  EXPECT_TRUE(second->body == big);
  EXPECT_EQ(o.hits(), 1);

  raw_client c(e.rig.port());
  ASSERT_TRUE(c.send("HEAD /big HTTP/1.1\r\nHost: front.example\r\n\r\n"));
  auto head = c.read_response(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), std::to_string(big.size()));
  EXPECT_EQ(o.hits(), 1) << "HEAD answered from the stored GET response";
}

TEST(ReverseProxyCache, DoesNotStoreABodyLargerThanTheEntryLimit) {
  origin o;
  o.answer(200, {{"Cache-Control", "max-age=60"}}, std::string(300 * 1024, 'z'));
  edge e(o, {.max_bytes = 1 << 20, .max_entry_bytes = 256 * 1024});
  auto r1 = e.rig.get("/huge");
  auto r2 = e.rig.get("/huge");
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(r2->body.size(), 300u * 1024);
  EXPECT_EQ(o.hits(), 2);
  EXPECT_EQ(e.store->stats().urls, 0u);
}

TEST(ReverseProxyCache, CompressesOnceWhenStoringAndServesGzipToClientsThatTakeIt) {
  origin o;
  std::string text;
  for (int i = 0; text.size() < 8192; ++i)
    text += "line " + std::to_string(i % 50) + " of a page\n";
  o.answer(200,
           {{"Cache-Control", "max-age=60"}, {"Content-Type", "text/plain"}, {"ETag", "\"t1\""}},
           text);
  edge e(o, {}, /*gzip=*/true);
  auto first = e.rig.get("/text", "Accept-Encoding: gzip\r\n");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, text) << "the miss is relayed as the origin sent it";
  auto zipped = e.rig.get("/text", "Accept-Encoding: br, gzip;q=0.5\r\n");
  ASSERT_TRUE(zipped);
  EXPECT_EQ(zipped->header("Content-Encoding"), "gzip");
  EXPECT_EQ(zipped->header("Vary"), "Accept-Encoding");
  EXPECT_EQ(zipped->header("ETag"), "W/\"t1\"") << "other bytes, same content: a weak tag";
  EXPECT_LT(zipped->body.size(), text.size() / 4);
  http::content_decoder decoder(http::content_coding::gzip);
  std::string plain;
  ASSERT_TRUE(decoder.decode(zipped->body, plain));
  ASSERT_TRUE(decoder.finish());
  EXPECT_EQ(plain, text);
  auto identity = e.rig.get("/text");
  ASSERT_TRUE(identity);
  EXPECT_EQ(identity->header("Content-Encoding"), "");
  EXPECT_EQ(identity->header("Vary"), "Accept-Encoding");
  EXPECT_EQ(identity->body, text);
  auto refused = e.rig.get("/text", "Accept-Encoding: gzip;q=0\r\n");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->body, text);
  EXPECT_EQ(o.hits(), 1);

  // Already compressed formats, no-transform and small bodies stay as they are.
  o.answer(200, {{"Cache-Control", "max-age=60"}, {"Content-Type", "image/png"}}, text);
  (void)e.rig.get("/png");
  o.answer(200, {{"Cache-Control", "max-age=60, no-transform"}, {"Content-Type", "text/plain"}},
           text);
  (void)e.rig.get("/raw");
  o.answer(200, {{"Cache-Control", "max-age=60"}, {"Content-Type", "text/plain"}}, "tiny");
  (void)e.rig.get("/tiny");
  for (const char* path : {"/png", "/raw", "/tiny"}) {
    auto r = e.rig.get(path, "Accept-Encoding: gzip\r\n");
    ASSERT_TRUE(r) << path;
    EXPECT_THAT(r->header("Cache-Status"), StartsWith("trellis; hit")) << path;
    EXPECT_EQ(r->header("Content-Encoding"), "") << path;
  }
}

}  // namespace
}  // namespace trellis::proxy
