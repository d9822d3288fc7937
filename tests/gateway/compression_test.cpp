// Tests of gateway::compression_middleware: the decision matrix (a pure
// function), buffered and streamed bodies decoded back with
// http::content_decoder (whole and byte by byte), the fields it fixes
// (Content-Encoding, Vary, ETag, Content-Length), and one end-to-end run
// with `curl --compressed` against a real http::server on 127.0.0.1.
#include "trellis/gateway/compression.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/process.hpp"
#include "support/routed.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using v = compression_verdict;

// Text that compresses well, `n` bytes of it.
std::string text_of(std::size_t n) {
  std::string s;
  while (s.size() < n) s += "{\"id\":" + std::to_string(s.size()) + ",\"name\":\"widget\"},";
  s.resize(n);
  return s;
}

std::string gunzip(std::string_view coded) {
  http::content_decoder d(http::content_coding::gzip);
  std::string out;
  auto r = d.decode(coded, out);
  EXPECT_TRUE(r) << r.error().message();
  auto f = d.finish();
  EXPECT_TRUE(f) << f.error().message();
  return out;
}

// The same, one byte at a time: the output may not depend on the split.
std::string gunzip_bytewise(std::string_view coded) {
  http::content_decoder d(http::content_coding::gzip);
  std::string out;
  for (const char c : coded) {
    auto r = d.decode(std::string_view(&c, 1), out);
    EXPECT_TRUE(r) << r.error().message();
    if (!r) break;
  }
  auto f = d.finish();
  EXPECT_TRUE(f) << f.error().message();
  return out;
}

http::response response_of(std::string_view type, std::size_t size, int status = 200) {
  http::response res;
  res.status = status;
  res.body = text_of(size);
  if (!type.empty()) (void)res.headers.set("Content-Type", type);
  return res;
}

// ---------------------------------------------------------------------------
// The decision.

TEST(compression_decision, follows_the_matrix) {
  const compression_options o;  // min_size 1024, is_compressible
  const auto get = http::method::get;
  const std::optional<std::string_view> gzip = "gzip";
  struct row {
    const char* what;
    http::method m;
    std::optional<std::string_view> accept;
    http::response res;
    v expected;
  };
  std::vector<row> rows;
  rows.push_back(
      {"json, large, gzip", get, gzip, response_of("application/json", 2000), v::compress});
  rows.push_back({"at exactly min_size", get, gzip, response_of("text/html", 1024), v::compress});
  rows.push_back({"one byte short", get, gzip, response_of("text/html", 1023), v::too_small});
  rows.push_back({"HEAD", http::method::head, gzip, response_of("text/html", 2000), v::no_body});
  rows.push_back({"204", get, gzip, response_of("text/html", 2000, 204), v::no_body});
  rows.push_back({"304", get, gzip, response_of("text/html", 2000, 304), v::no_body});
  rows.push_back({"1xx", get, gzip, response_of("text/html", 2000, 103), v::no_body});
  rows.push_back({"206", get, gzip, response_of("text/html", 2000, 206), v::partial});
  rows.push_back({"image", get, gzip, response_of("image/png", 2000), v::not_compressible});
  rows.push_back(
      {"event stream", get, gzip, response_of("text/event-stream", 2000), v::not_compressible});
  rows.push_back({"no type", get, gzip, response_of("", 2000), v::not_compressible});
  rows.push_back(
      {"no Accept-Encoding", get, std::nullopt, response_of("text/html", 2000), v::not_accepted});
  rows.push_back({"404 page", get, gzip, response_of("text/html", 2000, 404), v::compress});
  {
    auto r = response_of("text/html", 2000);
    (void)r.headers.set("Content-Encoding", "br");
    rows.push_back({"already encoded", get, gzip, std::move(r), v::already_encoded});
  }
  {
    auto r = response_of("text/html", 2000);
    (void)r.headers.set("Cache-Control", "public, no-transform");
    rows.push_back({"no-transform", get, gzip, std::move(r), v::no_transform});
  }
  {
    auto r = response_of("text/html", 2000);
    (void)r.headers.set("Content-Range", "bytes 0-1999/5000");
    rows.push_back({"Content-Range", get, gzip, std::move(r), v::partial});
  }
  {
    auto r = response_of("text/html", 10);
    r.stream = [](http::body_writer&) -> asio::awaitable<void> { co_return; };
    rows.push_back({"stream of unknown length", get, gzip, std::move(r), v::compress});
  }
  {
    auto r = response_of("text/html", 10);
    r.stream = [](http::body_writer&) -> asio::awaitable<void> { co_return; };
    (void)r.headers.set("Content-Length", "100");
    rows.push_back({"stream declared short", get, gzip, std::move(r), v::too_small});
  }
  for (const auto& r : rows)
    EXPECT_EQ(to_string(decide_compression(r.m, r.accept, r.res, o)), to_string(r.expected))
        << r.what;
}

TEST(compression_decision, reads_accept_encoding_q_values) {
  const compression_options o;
  const auto res = response_of("text/plain", 4096);
  const auto verdict = [&](std::string_view accept) {
    return decide_compression(http::method::get, accept, res, o);
  };
  EXPECT_EQ(verdict("gzip"), v::compress);
  EXPECT_EQ(verdict("GZip"), v::compress) << "codings compare case-insensitively";
  EXPECT_EQ(verdict("x-gzip"), v::compress);
  EXPECT_EQ(verdict("br;q=1.0, gzip;q=0.5"), v::compress);
  EXPECT_EQ(verdict("*"), v::compress) << "'*' covers gzip";
  EXPECT_EQ(verdict("gzip;q=0"), v::not_accepted) << "q=0 refuses";
  EXPECT_EQ(verdict("gzip;q=0.000, *"), v::not_accepted) << "named refusal beats '*'";
  EXPECT_EQ(verdict("*;q=0"), v::not_accepted);
  EXPECT_EQ(verdict("deflate, br"), v::not_accepted);
  EXPECT_EQ(verdict("identity"), v::not_accepted);
  EXPECT_EQ(verdict(""), v::not_accepted);
  EXPECT_EQ(verdict("gzip;q=bogus"), v::not_accepted) << "a damaged weight never turns it on";
}

TEST(compression_decision, a_configured_type_list_replaces_the_default) {
  compression_options o;
  o.content_types = {"application/vnd.custom", "text/*"};
  const auto verdict = [&](std::string_view type) {
    return decide_compression(http::method::get, "gzip", response_of(type, 4096), o);
  };
  EXPECT_EQ(verdict("Application/VND.custom; charset=utf-8"), v::compress);
  EXPECT_EQ(verdict("text/csv"), v::compress);
  EXPECT_EQ(verdict("application/json"), v::not_compressible) << "not in the list";
  EXPECT_EQ(verdict("textual/plain"), v::not_compressible);
}

TEST(compression_options, bad_values_throw_config_error_naming_the_field) {
  const auto field_of = [](compression_options o) -> std::string {
    try {
      compression_middleware m(o);
    } catch (const core::config_error& e) {
      return e.field();
    }
    return "";
  };
  compression_options o;
  o.content_types = {"text/html", "json"};
  EXPECT_EQ(field_of(o), "compression.content_types[1]");
  o = {};
  o.content_types = {"text/html; charset=utf-8"};
  EXPECT_EQ(field_of(o), "compression.content_types[0]");
  o = {};
  o.encoder.level = 0;
  EXPECT_EQ(field_of(o), "compression.encoder.level");
  o = {};
  o.encoder.window_bits = 16;
  EXPECT_EQ(field_of(o), "compression.encoder.window_bits");
  EXPECT_EQ(field_of({}), "");
}

// ---------------------------------------------------------------------------
// Through a router, in-process.

using test::routed;

std::unique_ptr<routed> route(const http::router& r, std::string_view target,
                              std::vector<std::pair<std::string, std::string>> fields,
                              http::method m = http::method::get) {
  return test::route(r, {.method = m, .target = std::string(target), .headers = std::move(fields)},
                     2s);
}

// A router with the middleware and routes answering fixed bodies.
struct rig {
  http::router router;
  std::string json = text_of(20000);

  rig() {
    router.use(std::make_shared<compression_middleware>());
    router.get("/json", [this](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(json, "application/json");
      (void)res.headers.set("ETag", "\"v1\"");
      (void)res.headers.set("Vary", "Origin");
      co_return;
    });
    router.get("/small", [](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text("tiny\n");
      co_return;
    });
    router.get("/random", [](http::request&, http::response& res) -> asio::awaitable<void> {
      std::mt19937 gen(7);
      std::string noise(4096, '\0');
      for (auto& c : noise) c = static_cast<char>(gen());
      res.set_text(noise, "text/plain");  // mislabelled: gzip cannot shrink it
      co_return;
    });
    router.get("/vary-star", [this](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(json, "application/json");
      (void)res.headers.set("Vary", "*");
      co_return;
    });
  }
};

TEST(compression_middleware, compresses_a_buffered_body_that_decodes_back_exactly) {
  rig r;
  auto a = route(r.router, "/json", {{"Accept-Encoding", "gzip, br"}});
  EXPECT_EQ(a->res.headers.get("Content-Encoding"), "gzip");
  EXPECT_LT(a->res.body.size(), r.json.size() / 4) << "repetitive JSON compresses well";
  EXPECT_EQ(gunzip(a->res.body), r.json);
  EXPECT_EQ(gunzip_bytewise(a->res.body), r.json);
  EXPECT_EQ(a->res.headers.get("ETag"), "W/\"v1\"") << "a strong ETag is made weak";
  EXPECT_EQ(a->res.headers.get("Vary"), "Origin, Accept-Encoding") << "merged into Vary";
  EXPECT_FALSE(a->res.headers.contains("Content-Length"));
}

TEST(compression_middleware, sends_identity_with_vary_to_a_client_that_does_not_take_gzip) {
  rig r;
  for (const char* accept : {"gzip;q=0", "deflate"}) {
    auto a = route(r.router, "/json", {{"Accept-Encoding", accept}});
    EXPECT_FALSE(a->res.headers.contains("Content-Encoding")) << accept;
    EXPECT_EQ(a->res.body, r.json) << accept;
    EXPECT_EQ(a->res.headers.get("ETag"), "\"v1\"") << "untouched: " << accept;
    EXPECT_EQ(a->res.headers.get("Vary"), "Origin, Accept-Encoding")
        << "another client would get gzip: " << accept;
  }
  auto none = route(r.router, "/json", {});
  EXPECT_FALSE(none->res.headers.contains("Content-Encoding"));
  EXPECT_EQ(none->res.headers.get("Vary"), "Origin, Accept-Encoding");
}

TEST(compression_middleware, joins_accept_encoding_lines) {
  rig r;
  auto a = route(r.router, "/json", {{"Accept-Encoding", "identity"}, {"accept-encoding", "gzip"}});
  EXPECT_EQ(a->res.headers.get("Content-Encoding"), "gzip");
}

TEST(compression_middleware, leaves_small_and_incompressible_bodies_alone) {
  rig r;
  auto small = route(r.router, "/small", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(small->res.body, "tiny\n");
  EXPECT_FALSE(small->res.headers.contains("Content-Encoding"));
  EXPECT_FALSE(small->res.headers.contains("Vary")) << "no client would get gzip";

  auto noise = route(r.router, "/random", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(noise->res.body.size(), 4096u);
  EXPECT_FALSE(noise->res.headers.contains("Content-Encoding")) << "gzip would be larger";
}

TEST(compression_middleware, does_not_add_to_vary_star_or_compress_head) {
  rig r;
  auto star = route(r.router, "/vary-star", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(star->res.headers.get("Content-Encoding"), "gzip");
  EXPECT_EQ(star->res.headers.get_all("Vary"), std::vector<std::string_view>{"*"});

  auto head = route(r.router, "/json", {{"Accept-Encoding", "gzip"}}, http::method::head);
  EXPECT_FALSE(head->res.headers.contains("Content-Encoding"));
  EXPECT_EQ(head->res.body, r.json) << "the server drops a HEAD body; we leave it";
}

// A body_writer that keeps every write() it is given.
class capture_writer final : public http::body_writer {
 public:
  std::vector<std::string> writes;
  bool aborted = false;
  asio::awaitable<std::error_code> write(std::string_view data) override {
    writes.emplace_back(data);
    co_return std::error_code{};
  }
  void abort() override { aborted = true; }
  std::string all() const {
    std::string s;
    for (const auto& w : writes) s += w;
    return s;
  }
};

void run_stream(const http::response& res, capture_writer& w) {
  asio::io_context ctx;
  bool done = false;
  asio::co_spawn(ctx, res.stream(w), [&](std::exception_ptr e) {
    done = true;
    if (e) ADD_FAILURE() << "stream threw";
  });
  ctx.run_for(2s);
  EXPECT_TRUE(done);
}

TEST(compression_middleware, compresses_a_stream_chunk_by_chunk_with_a_flush_per_write) {
  const std::vector<std::string> pieces = {text_of(3000), "second piece\n", text_of(50000)};
  http::router router;
  router.use(std::make_shared<compression_middleware>());
  router.get("/stream", [&pieces](http::request&, http::response& res) -> asio::awaitable<void> {
    (void)res.headers.set("Content-Type", "text/plain");
    res.stream = [&pieces](http::body_writer& w) -> asio::awaitable<void> {
      for (const auto& p : pieces) {
        const std::string_view piece = p;
        if (co_await w.write(piece)) co_return;
      }
    };
    co_return;
  });
  auto a = route(router, "/stream", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(a->res.stream);
  EXPECT_EQ(a->res.headers.get("Content-Encoding"), "gzip");
  EXPECT_EQ(a->res.headers.get("Vary"), "Accept-Encoding");

  capture_writer w;
  run_stream(a->res, w);
  ASSERT_EQ(w.writes.size(), pieces.size() + 1) << "one write per piece, then the gzip trailer";
  // After each write the client can decode everything sent so far: that
  // is what the flush buys.
  http::content_decoder d(http::content_coding::gzip);
  std::string decoded, expected;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    ASSERT_TRUE(d.decode(w.writes[i], decoded));
    expected += pieces[i];
    EXPECT_EQ(decoded, expected) << "after write " << i;
  }
  ASSERT_TRUE(d.decode(w.writes.back(), decoded));
  EXPECT_TRUE(d.finish()) << "the stream ends with a complete gzip member";
  EXPECT_EQ(gunzip_bytewise(w.all()), expected);
  EXPECT_FALSE(w.aborted);
}

TEST(compression_middleware, an_aborted_stream_gets_no_gzip_trailer) {
  http::router router;
  router.use(std::make_shared<compression_middleware>());
  router.get("/broken", [](http::request&, http::response& res) -> asio::awaitable<void> {
    (void)res.headers.set("Content-Type", "application/json");
    (void)res.headers.set("Content-Length", "100000");
    res.stream = [](http::body_writer& w) -> asio::awaitable<void> {
      const std::string first = text_of(5000);
      const std::string_view piece = first;
      (void)co_await w.write(piece);
      w.abort();  // the source failed midway
    };
    co_return;
  });
  auto a = route(router, "/broken", {{"Accept-Encoding", "gzip"}});
  EXPECT_FALSE(a->res.headers.contains("Content-Length")) << "the compressed length is unknown";
  capture_writer w;
  run_stream(a->res, w);
  EXPECT_TRUE(w.aborted) << "the abort reaches the connection";
  ASSERT_EQ(w.writes.size(), 1u) << "nothing written after the abort";
  http::content_decoder d(http::content_coding::gzip);
  std::string out;
  ASSERT_TRUE(d.decode(w.writes[0], out));
  EXPECT_EQ(out, text_of(5000));
  EXPECT_EQ(d.finish().error(), http::content_coding_error::truncated)
      << "the client sees a cut-off body, not a clean short one";
}

// ---------------------------------------------------------------------------
// End to end: a real server on loopback, curl as the client.

TEST(compression_middleware, curl_compressed_decodes_what_a_real_server_sends) {
  if (!test::program_exists("curl"))
    GTEST_SKIP() << "needs the `curl` program on PATH (Debian package curl)";
  const std::string json = text_of(30000);
  http::router router;
  router.use(std::make_shared<compression_middleware>());
  router.get("/json", [&json](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text(json, "application/json");
    co_return;
  });
  router.get("/stream", [&json](http::request&, http::response& res) -> asio::awaitable<void> {
    (void)res.headers.set("Content-Type", "text/plain");
    res.stream = [&json](http::body_writer& w) -> asio::awaitable<void> {
      for (std::size_t at = 0; at < json.size(); at += 7000) {
        const std::string_view piece = std::string_view(json).substr(at, 7000);
        if (co_await w.write(piece)) co_return;
      }
    };
    co_return;
  });
  test::test_server srv(router.to_handler());

  for (const char* path : {"/json", "/stream"}) {
    const auto gz = test::run({"curl", "-sS", "-i", "--compressed", srv.url(path)}, {}, 20s);
    ASSERT_TRUE(gz.status.success()) << path << ": " << gz.err;
    const auto r = test::parse_curl(gz.out);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.header("content-encoding"), "gzip") << path;
    EXPECT_EQ(r.header("vary"), "Accept-Encoding") << path;
    EXPECT_EQ(r.body, json) << path << ": curl decoded it back";

    const auto plain = test::run({"curl", "-sS", "-i", srv.url(path)}, {}, 20s);
    ASSERT_TRUE(plain.status.success()) << path << ": " << plain.err;
    const auto p = test::parse_curl(plain.out);
    EXPECT_EQ(p.header("content-encoding"), "") << path << ": curl sent no Accept-Encoding";
    EXPECT_EQ(p.header("vary"), "Accept-Encoding") << path;
    EXPECT_EQ(p.body, json) << path;
  }
}

}  // namespace
}  // namespace trellis::gateway
