// Tests of http::serve_directory through a real server on 127.0.0.1:
// raw requests (exact targets that curl would normalise away: "..",
// "%2e%2e", "..%2f") and curl (ranges, a 5 MB download). Each test builds a
// fresh directory tree in a temporary folder, with a "secret" file next to
// the served root that no request may reach. Plus the pure parts:
// parse_byte_range and content_type_for.
#include "trellis/http/static_files.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/bytes.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "trellis/codec/http/date.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"

namespace trellis::http {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

#define REQUIRE_CURL()                                                          \
  do {                                                                          \
    if (!test::program_exists("curl"))                                          \
      GTEST_SKIP() << "needs the `curl` program on PATH (Debian package curl)"; \
  } while (0)

constexpr std::string_view secret_text = "TOP-SECRET-CONTENT";

using test::make_bytes;

void write_file(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

// Sets a file's mtime to `seconds` since the epoch (and no nanoseconds).
void set_mtime(const fs::path& p, std::time_t seconds) {
  const timespec times[2] = {{seconds, 0}, {seconds, 0}};
  if (::utimensat(AT_FDCWD, p.c_str(), times, 0) != 0)
    throw std::runtime_error("utimensat " + p.string());
}

// A temporary tree:
//   <tmp>/secret.txt             outside the root: must never be served
//   <tmp>/public/hello.txt       "hello, static world\n"
//   <tmp>/public/page.html, style.css, app.js, data.json, logo.svg,
//                 icon.png, noext, font.woff2
//   <tmp>/public/docs/index.html
//   <tmp>/public/empty/          a directory without an index
//   <tmp>/public/.env            hidden
//   <tmp>/public/escape          symlink to ../secret.txt
//   <tmp>/public/escape-abs      symlink to <tmp>/secret.txt
//   <tmp>/public/escape-dir      symlink to ..
//   <tmp>/public/alias.txt       symlink to hello.txt (inside the root)
class temp_tree {
 public:
  temp_tree() {
    std::string templ = (fs::temp_directory_path() / "trellis-static-XXXXXX").string();
    if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = templ;
    write_file(dir_ / "secret.txt", secret_text);
    write_file(root() / "hello.txt", "hello, static world\n");
    write_file(root() / "page.html", "<!doctype html><title>t</title>\n");
    write_file(root() / "style.css", "body{}\n");
    write_file(root() / "app.js", "console.log(1)\n");
    write_file(root() / "data.json", "{}\n");
    write_file(root() / "logo.svg", "<svg/>\n");
    write_file(root() / "icon.png", "\x89PNG");
    write_file(root() / "noext", "x");
    write_file(root() / "font.woff2", "wOF2");
    write_file(root() / "docs" / "index.html", "<h1>docs</h1>\n");
    write_file(root() / ".env", "PASSWORD=hunter2\n");
    fs::create_directories(root() / "empty");
    fs::create_symlink("../secret.txt", root() / "escape");
    fs::create_symlink(dir_ / "secret.txt", root() / "escape-abs");
    fs::create_symlink("..", root() / "escape-dir");
    fs::create_symlink("hello.txt", root() / "alias.txt");
    set_mtime(root() / "hello.txt", 1'700'000'000);  // Tue, 14 Nov 2023 22:13:20 GMT
  }
  ~temp_tree() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  temp_tree(const temp_tree&) = delete;
  temp_tree& operator=(const temp_tree&) = delete;

  fs::path root() const { return dir_ / "public"; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

// A server on its own one-worker runtime, on a background thread, routing
// GET /static/* to serve_directory(root, options). Destruction drains the
// runtime and joins the thread.
class static_server {
 public:
  explicit static_server(const fs::path& root, static_options o = {})
      : rt_({.workers = 1, .drain_timeout = 3s, .handle_signals = false}) {
    router_.get("/static/*", serve_directory(root, std::move(o)));
    srv_ = std::make_unique<server>(router_.to_handler());
    auto ep = srv_->listen(rt_, {asio::ip::address_v4::loopback(), 0});
    if (!ep) throw std::runtime_error("listen failed: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~static_server() {
    rt_.drain();
    if (thread_.joinable()) thread_.join();
  }
  static_server(const static_server&) = delete;
  static_server& operator=(const static_server&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  // One request on a fresh connection; fails the test when no response comes.
  test::raw_response request(std::string_view method, std::string_view target,
                             std::string_view extra = {}) {
    test::raw_client c(port_);
    EXPECT_TRUE(c.connected()) << c.error();
    const std::string req = std::string(method) + " " + std::string(target) +
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra) + "\r\n";
    EXPECT_TRUE(c.send(req)) << c.error();
    auto r = c.read_response(method == "HEAD");
    EXPECT_TRUE(r.has_value()) << c.error();
    return r.value_or(test::raw_response{});
  }
  test::raw_response get(std::string_view target, std::string_view extra = {}) {
    return request("GET", target, extra);
  }

 private:
  core::runtime rt_;  // first: the server's drain hooks live in its workers
  router router_;
  std::unique_ptr<server> srv_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// --- pure parts ----------------------------------------------------------------

TEST(static_files, content_type_comes_from_the_extension) {
  EXPECT_EQ(content_type_for("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a/b/site.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("mod.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("data.json"), "application/json");
  EXPECT_EQ(content_type_for("notes.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for("logo.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("p.png"), "image/png");
  EXPECT_EQ(content_type_for("p.jpg"), "image/jpeg");
  EXPECT_EQ(content_type_for("p.JPEG"), "image/jpeg");
  EXPECT_EQ(content_type_for("p.gif"), "image/gif");
  EXPECT_EQ(content_type_for("p.webp"), "image/webp");
  EXPECT_EQ(content_type_for("favicon.ico"), "image/vnd.microsoft.icon");
  EXPECT_EQ(content_type_for("m.wasm"), "application/wasm");
  EXPECT_EQ(content_type_for("d.pdf"), "application/pdf");
  EXPECT_EQ(content_type_for("feed.xml"), "application/xml");
  EXPECT_EQ(content_type_for("f.woff2"), "font/woff2");
  EXPECT_EQ(content_type_for("archive.tar.gz"), "application/octet-stream");
  EXPECT_EQ(content_type_for("README"), "application/octet-stream");
  EXPECT_EQ(content_type_for("dir.html/README"), "application/octet-stream");
  EXPECT_EQ(content_type_for(".html"), "application/octet-stream")
      << "a dotfile's name is not an extension";
}

TEST(static_files, parses_single_byte_ranges) {
  using k = byte_range_answer::kind;
  auto r = parse_byte_range("bytes=0-4", 10);
  EXPECT_EQ(r.what, k::partial);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 4u);
  r = parse_byte_range("bytes=5-", 10);
  EXPECT_EQ(r.what, k::partial);
  EXPECT_EQ(r.first, 5u);
  EXPECT_EQ(r.last, 9u);
  r = parse_byte_range("bytes=-3", 10);
  EXPECT_EQ(r.what, k::partial);
  EXPECT_EQ(r.first, 7u);
  EXPECT_EQ(r.last, 9u);
  r = parse_byte_range("bytes=-30", 10);  // longer than the file: all of it
  EXPECT_EQ(r.what, k::partial);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  r = parse_byte_range("bytes=8-100", 10);  // last clamped
  EXPECT_EQ(r.what, k::partial);
  EXPECT_EQ(r.first, 8u);
  EXPECT_EQ(r.last, 9u);
  r = parse_byte_range("Bytes = 2-2 ", 10);
  EXPECT_EQ(r.what, k::partial);
  EXPECT_EQ(r.first, 2u);
  EXPECT_EQ(r.last, 2u);
  r = parse_byte_range("bytes=3-99999999999999999999999", 10);  // overflowing last: clamped
  EXPECT_EQ(r.what, k::partial);
  EXPECT_EQ(r.last, 9u);
  r = parse_byte_range("bytes=, 1-2 ,", 10);  // empty list elements do not count
  EXPECT_EQ(r.what, k::partial);
  EXPECT_EQ(r.first, 1u);
}

TEST(static_files, unsatisfiable_and_ignored_ranges) {
  using k = byte_range_answer::kind;
  EXPECT_EQ(parse_byte_range("bytes=10-", 10).what, k::unsatisfiable);
  EXPECT_EQ(parse_byte_range("bytes=10-20", 10).what, k::unsatisfiable);
  EXPECT_EQ(parse_byte_range("bytes=-0", 10).what, k::unsatisfiable);
  EXPECT_EQ(parse_byte_range("bytes=99999999999999999999999-", 10).what, k::unsatisfiable);
  // Ignored: the whole file is sent.
  EXPECT_EQ(parse_byte_range("bytes=0-1,3-4", 10).what, k::whole) << "several ranges: whole file";
  EXPECT_EQ(parse_byte_range("bytes=5-2", 10).what, k::whole) << "last < first is invalid";
  EXPECT_EQ(parse_byte_range("items=0-1", 10).what, k::whole);
  EXPECT_EQ(parse_byte_range("bytes=a-b", 10).what, k::whole);
  EXPECT_EQ(parse_byte_range("bytes=-", 10).what, k::whole);
  EXPECT_EQ(parse_byte_range("bytes=1", 10).what, k::whole);
  EXPECT_EQ(parse_byte_range("bytes=+1-2", 10).what, k::whole);
  EXPECT_EQ(parse_byte_range("bytes=", 10).what, k::whole);
  EXPECT_EQ(parse_byte_range("", 10).what, k::whole);
  EXPECT_EQ(parse_byte_range("bytes=0-0", 0).what, k::whole) << "an empty file has no ranges";
}

TEST(static_files, refuses_a_missing_root_and_a_zero_chunk_size) {
  temp_tree t;
  try {
    (void)serve_directory(t.dir() / "does-not-exist");
    ADD_FAILURE() << "a missing root was accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "root");
  }
  try {
    (void)serve_directory(t.root() / "hello.txt");
    ADD_FAILURE() << "a regular file was accepted as the root";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "root");
  }
  try {
    (void)serve_directory(t.root(), {.chunk_size = 0});
    ADD_FAILURE() << "chunk_size 0 was accepted";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "chunk_size");
  }
}

// --- serving ----------------------------------------------------------------------

TEST(static_files, serves_a_file_with_its_type_validators_and_length) {
  temp_tree t;
  static_server s(t.root());
  const auto r = s.get("/static/hello.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello, static world\n");
  EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.header("Content-Length"), "20");
  EXPECT_EQ(r.header("Last-Modified"), "Tue, 14 Nov 2023 22:13:20 GMT");
  // Strong tag: "<size hex>-<mtime ns hex>"; 20 bytes, mtime 1.7e9 s.
  char expected[64];
  std::snprintf(expected, sizeof expected, "\"14-%llx\"", 1'700'000'000'000'000'000ull);
  EXPECT_EQ(r.header("ETag"), expected);
  EXPECT_EQ(r.header("Accept-Ranges"), "bytes");
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  EXPECT_FALSE(r.chunked);
}

TEST(static_files, content_types_on_the_wire) {
  temp_tree t;
  static_server s(t.root());
  const std::pair<const char*, const char*> cases[] = {
      {"/static/page.html", "text/html; charset=utf-8"},
      {"/static/style.css", "text/css; charset=utf-8"},
      {"/static/app.js", "text/javascript; charset=utf-8"},
      {"/static/data.json", "application/json"},
      {"/static/logo.svg", "image/svg+xml"},
      {"/static/icon.png", "image/png"},
      {"/static/font.woff2", "font/woff2"},
      {"/static/noext", "application/octet-stream"},
  };
  for (const auto& [path, type] : cases) {
    const auto r = s.get(path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.header("Content-Type"), type) << path;
  }
}

TEST(static_files, traversal_attempts_are_404_and_reveal_nothing) {
  temp_tree t;
  static_server s(t.root());
  // Each names <tmp>/secret.txt, one level above the root.
  for (const char* target : {
           "/static/../secret.txt",
           "/static/%2e%2e/secret.txt",
           "/static/%2E%2E/secret.txt",
           "/static/..%2fsecret.txt",
           "/static/..%2Fsecret.txt",
           "/static/%2e%2e%2fsecret.txt",
           "/static/docs/../../secret.txt",
           "/static/docs/%2e%2e/%2e%2e/secret.txt",
           "/static/./../secret.txt",
           "/static/..%5csecret.txt",
           "/static/%5c..%5csecret.txt",
           "/static/hello.txt%00.png",
           "/static/..",
           "/static/%2e%2e",
       }) {
    const auto r = s.get(target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.body.find(secret_text), std::string::npos) << target << " leaked the secret";
    EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8") << target;
  }
  // A raw backslash is not a valid request-target character: the server's
  // parser may refuse it (400) before the handler sees it; either way,
  // nothing is served.
  const auto r = s.get("/static/..\\secret.txt");
  EXPECT_TRUE(r.status == 400 || r.status == 404) << r.status;
  EXPECT_EQ(r.body.find(secret_text), std::string::npos);
}

TEST(static_files, traversal_through_curl_path_as_is_is_404) {
  REQUIRE_CURL();
  temp_tree t;
  static_server s(t.root());
  for (const char* path :
       {"/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt"}) {
    auto r = test::run(
        {"curl", "-sS", "--max-time", "10", "--path-as-is", "-w", "\n%{http_code}", s.url(path)});
    ASSERT_TRUE(r.status.success()) << r.err;
    EXPECT_EQ(r.out, "not found\n\n404") << path;
  }
}

TEST(static_files, symlinks_leaving_the_root_are_404) {
  temp_tree t;
  for (bool openat2 : {true, false}) {
    static_server s(t.root(), {.use_openat2 = openat2});
    for (const char* target :
         {"/static/escape", "/static/escape-abs", "/static/escape-dir/secret.txt"}) {
      const auto r = s.get(target);
      EXPECT_EQ(r.status, 404) << target << (openat2 ? " (openat2)" : " (O_NOFOLLOW walk)");
      EXPECT_EQ(r.body.find(secret_text), std::string::npos) << target << " leaked the secret";
    }
  }
}

TEST(static_files, a_symlink_inside_the_root_is_followed_by_openat2_and_refused_by_the_fallback) {
  temp_tree t;
  {
    static_server s(t.root(), {.use_openat2 = true});
    const auto r = s.get("/static/alias.txt");
    // Without openat2 in this kernel the fallback runs and refuses it.
    if (r.status == 200) {
      EXPECT_EQ(r.body, "hello, static world\n");
      EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
    } else {
      EXPECT_EQ(r.status, 404);
    }
  }
  static_server s(t.root(), {.use_openat2 = false});
  EXPECT_EQ(s.get("/static/alias.txt").status, 404);
  EXPECT_EQ(s.get("/static/hello.txt").status, 200) << "the fallback still serves plain files";
  EXPECT_EQ(s.get("/static/docs/").status, 200) << "and walks directories";
}

TEST(static_files, hidden_files_are_404_unless_allowed) {
  temp_tree t;
  {
    static_server s(t.root());
    const auto r = s.get("/static/.env");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body.find("hunter2"), std::string::npos);
    EXPECT_EQ(s.get("/static/%2eenv").status, 404) << "an encoded dot is still a dot";
  }
  static_server s(t.root(), {.serve_hidden = true});
  EXPECT_EQ(s.get("/static/.env").body, "PASSWORD=hunter2\n");
}

TEST(static_files, a_directory_redirects_to_its_slash_then_serves_its_index) {
  temp_tree t;
  static_server s(t.root());
  auto r = s.get("/static/docs?x=1");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.header("Location"), "/static/docs/?x=1");
  r = s.get("/static/docs/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<h1>docs</h1>\n");
  EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(s.get("/static/empty/").status, 404) << "no index, no listing";
  EXPECT_EQ(s.get("/static/hello.txt/").status, 404) << "a file is not a directory";
  EXPECT_EQ(s.get("/static/docs/index.html").status, 200);
  EXPECT_EQ(s.get("/static/").status, 404) << "the root has no index.html";
}

TEST(static_files, without_an_index_file_directories_are_404) {
  temp_tree t;
  static_server s(t.root(), {.index_file = ""});
  EXPECT_EQ(s.get("/static/docs/").status, 404);
  EXPECT_EQ(s.get("/static/docs").status, 404);
}

TEST(static_files, without_a_wildcard_route_the_whole_path_names_the_file) {
  temp_tree t;
  core::runtime runtime({.workers = 1, .drain_timeout = 3s, .handle_signals = false});
  server srv(serve_directory(t.root()));  // no router: no "*" parameter
  auto ep = srv.listen(runtime, {asio::ip::address_v4::loopback(), 0});
  ASSERT_TRUE(ep);
  std::thread th([&] { runtime.run(); });
  test::raw_client c(ep->port());
  ASSERT_TRUE(c.send(
      "GET /docs/ HTTP/1.1\r\nHost: x\r\n\r\nGET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto index = c.read_response();
  auto secret = c.read_response();
  runtime.drain();
  th.join();
  ASSERT_TRUE(index && secret) << c.error();
  EXPECT_EQ(index->body, "<h1>docs</h1>\n");
  EXPECT_EQ(secret->status, 404);
}

TEST(static_files, only_get_and_head_are_served) {
  temp_tree t;
  static_server s(t.root());
  const auto r = s.request("POST", "/static/hello.txt", "Content-Length: 0\r\n");
  EXPECT_EQ(r.status, 405) << "the router refuses methods it has no route for";
  EXPECT_EQ(r.header("Allow"), "GET, HEAD, OPTIONS");

  // The handler itself refuses other methods when routed for them.
  router rt;
  rt.add(method::post, "/f/*", serve_directory(t.root()));
  core::runtime runtime({.workers = 1, .drain_timeout = 3s, .handle_signals = false});
  server srv(rt.to_handler());
  auto ep = srv.listen(runtime, {asio::ip::address_v4::loopback(), 0});
  ASSERT_TRUE(ep);
  std::thread th([&] { runtime.run(); });
  test::raw_client c(ep->port());
  ASSERT_TRUE(c.send("POST /f/hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
      << c.error();
  auto resp = c.read_response();
  runtime.drain();
  th.join();
  ASSERT_TRUE(resp) << c.error();
  EXPECT_EQ(resp->status, 405);
  EXPECT_EQ(resp->header("Allow"), "GET, HEAD");
}

// --- conditional requests -------------------------------------------------------------

TEST(static_files, if_none_match_with_the_etag_gives_304_without_a_body) {
  temp_tree t;
  static_server s(t.root());
  const auto first = s.get("/static/hello.txt");
  const std::string etag = first.header("ETag");
  ASSERT_FALSE(etag.empty());

  test::raw_client c(s.port());
  ASSERT_TRUE(
      c.send("GET /static/hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag + "\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 304);
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(r->header("ETag"), etag);
  EXPECT_EQ(r->header("Last-Modified"), "Tue, 14 Nov 2023 22:13:20 GMT");
  // Nothing follows the 304 on the connection: the next response is clean.
  ASSERT_TRUE(c.send("GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello, static world\n");

  EXPECT_EQ(s.get("/static/hello.txt", "If-None-Match: W/" + etag + "\r\n").status, 304)
      << "weak comparison";
  EXPECT_EQ(s.get("/static/hello.txt", "If-None-Match: \"x\", " + etag + "\r\n").status, 304)
      << "a list";
  EXPECT_EQ(s.get("/static/hello.txt", "If-None-Match: *\r\n").status, 304);
  EXPECT_EQ(s.get("/static/hello.txt", "If-None-Match: \"other\"\r\n").status, 200);
  EXPECT_EQ(s.request("HEAD", "/static/hello.txt", "If-None-Match: " + etag + "\r\n").status, 304);
}

TEST(static_files, if_modified_since_gives_304_unless_modified_later) {
  temp_tree t;
  static_server s(t.root());
  EXPECT_EQ(
      s.get("/static/hello.txt", "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT\r\n").status,
      304);
  EXPECT_EQ(
      s.get("/static/hello.txt", "If-Modified-Since: Wed, 15 Nov 2023 00:00:00 GMT\r\n").status,
      304);
  EXPECT_EQ(
      s.get("/static/hello.txt", "If-Modified-Since: Tue, 14 Nov 2023 22:13:19 GMT\r\n").status,
      200);
  EXPECT_EQ(s.get("/static/hello.txt", "If-Modified-Since: not a date\r\n").status, 200)
      << "an invalid date is ignored";
  // If-None-Match takes precedence: a non-matching tag means 200 even when
  // the date alone would say 304 (RFC 9110 §13.2.2).
  EXPECT_EQ(
      s.get("/static/hello.txt",
            "If-None-Match: \"other\"\r\nIf-Modified-Since: Wed, 15 Nov 2023 00:00:00 GMT\r\n")
          .status,
      200);
}

TEST(static_files, if_match_and_if_unmodified_since_fail_with_412) {
  temp_tree t;
  static_server s(t.root());
  const std::string etag = s.get("/static/hello.txt").header("ETag");
  EXPECT_EQ(s.get("/static/hello.txt", "If-Match: " + etag + "\r\n").status, 200);
  EXPECT_EQ(s.get("/static/hello.txt", "If-Match: \"stale\"\r\n").status, 412);
  EXPECT_EQ(s.get("/static/hello.txt", "If-Match: W/" + etag + "\r\n").status, 412)
      << "If-Match compares strongly";
  EXPECT_EQ(
      s.get("/static/hello.txt", "If-Unmodified-Since: Mon, 13 Nov 2023 00:00:00 GMT\r\n").status,
      412);
  EXPECT_EQ(
      s.get("/static/hello.txt", "If-Unmodified-Since: Wed, 15 Nov 2023 00:00:00 GMT\r\n").status,
      200);
}

// --- ranges -------------------------------------------------------------------------------

TEST(static_files, a_byte_range_gives_206_with_exactly_those_bytes) {
  temp_tree t;
  static_server s(t.root());
  auto r = s.get("/static/hello.txt", "Range: bytes=0-4\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.header("Content-Range"), "bytes 0-4/20");
  EXPECT_EQ(r.header("Content-Length"), "5");
  EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");

  r = s.get("/static/hello.txt", "Range: bytes=-6\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "world\n");
  EXPECT_EQ(r.header("Content-Range"), "bytes 14-19/20");

  r = s.get("/static/hello.txt", "Range: bytes=7-\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "static world\n");
  EXPECT_EQ(r.header("Content-Range"), "bytes 7-19/20");
}

TEST(static_files, an_unsatisfiable_range_gives_416_with_the_size) {
  temp_tree t;
  static_server s(t.root());
  const auto r = s.get("/static/hello.txt", "Range: bytes=20-\r\n");
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.header("Content-Range"), "bytes */20");
  EXPECT_EQ(r.body.find("hello"), std::string::npos);
}

TEST(static_files, several_ranges_or_a_stale_if_range_send_the_whole_file) {
  temp_tree t;
  static_server s(t.root());
  auto r = s.get("/static/hello.txt", "Range: bytes=0-1,5-6\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello, static world\n");
  EXPECT_FALSE(r.has_header("Content-Range"));

  const std::string etag = r.header("ETag");
  r = s.get("/static/hello.txt", "Range: bytes=0-4\r\nIf-Range: " + etag + "\r\n");
  EXPECT_EQ(r.status, 206) << "If-Range with the current ETag";
  EXPECT_EQ(r.body, "hello");
  r = s.get("/static/hello.txt", "Range: bytes=0-4\r\nIf-Range: \"stale\"\r\n");
  EXPECT_EQ(r.status, 200) << "If-Range with another ETag";
  EXPECT_EQ(r.body, "hello, static world\n");
  r = s.get("/static/hello.txt", "Range: bytes=0-4\r\nIf-Range: W/" + etag + "\r\n");
  EXPECT_EQ(r.status, 200) << "a weak tag never matches If-Range";
  r = s.get("/static/hello.txt", "Range: bytes=0-4\r\nIf-Range: Tue, 14 Nov 2023 22:13:20 GMT\r\n");
  EXPECT_EQ(r.status, 206) << "If-Range with the Last-Modified date";
  r = s.get("/static/hello.txt", "Range: bytes=0-4\r\nIf-Range: Tue, 14 Nov 2023 22:00:00 GMT\r\n");
  EXPECT_EQ(r.status, 200) << "If-Range with another date";
}

TEST(static_files, curl_fetches_ranges) {
  REQUIRE_CURL();
  temp_tree t;
  static_server s(t.root());
  auto r = test::run({"curl", "-sS", "--max-time", "10", "-r", "7-12", "-w", "|%{http_code}",
                      s.url("/static/hello.txt")});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_EQ(r.out, "static|206");
  r = test::run({"curl", "-sS", "--max-time", "10", "-r", "100-", "-o", "/dev/null", "-w",
                 "%{http_code}", s.url("/static/hello.txt")});
  EXPECT_EQ(r.out, "416");
}

// --- HEAD and large files ---------------------------------------------------------------

TEST(static_files, head_sends_the_headers_without_the_body) {
  temp_tree t;
  write_file(t.root() / "big.bin", make_bytes(200 * 1024));
  static_server s(t.root());
  test::raw_client c(s.port());
  for (const char* path : {"/static/hello.txt", "/static/big.bin"}) {
    ASSERT_TRUE(c.send(std::string("HEAD ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n")) << c.error();
    auto r = c.read_response(/*head_request=*/true);
    ASSERT_TRUE(r) << c.error();
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->header("Content-Length"), std::string(path).ends_with("big.bin") ? "204800" : "20")
        << path;
    EXPECT_FALSE(r->has_header("Transfer-Encoding")) << path;
    EXPECT_FALSE(r->header("ETag").empty()) << path;
  }
  // No body bytes followed either head: the connection is clean.
  ASSERT_TRUE(c.send("GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->body, "hello, static world\n");
  // HEAD ignores Range (RFC 9110 §14.2).
  ASSERT_TRUE(c.send("HEAD /static/big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n"));
  r = c.read_response(true);
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Length"), "204800");
}

TEST(static_files, streams_a_5mb_file_with_content_length_and_exact_bytes) {
  temp_tree t;
  const std::string data = make_bytes(5 * 1024 * 1024 + 123);
  write_file(t.root() / "large.bin", data);
  static_server s(t.root());
  test::raw_client c(s.port(), 20s);
  ASSERT_TRUE(c.send("GET /static/large.bin HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->chunked) << "a file of known size is sent raw, not chunked";
  EXPECT_EQ(r->header("Content-Length"), std::to_string(data.size()));
  EXPECT_EQ(r->header("Content-Type"), "application/octet-stream");
  ASSERT_EQ(r->body.size(), data.size());
  EXPECT_TRUE(r->body == data) << "the streamed bytes differ from the file";

  // A range in the middle of the streamed file, crossing chunk boundaries.
  ASSERT_TRUE(
      c.send("GET /static/large.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100000-3000000\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r) << c.error();
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->header("Content-Range"), "bytes 100000-3000000/" + std::to_string(data.size()));
  EXPECT_TRUE(r->body == data.substr(100000, 2900001));
}

TEST(static_files, a_file_that_shrinks_while_streamed_cuts_the_connection) {
  temp_tree t;
  const std::string data = make_bytes(16 * 1024 * 1024);
  write_file(t.root() / "shrinks.bin", data);
  static_server s(t.root(), {.chunk_size = 16 * 1024});
  // A small receive buffer: the server blocks with most of the file unsent.
  test::raw_client c(s.port(), 10s, 16 * 1024);
  ASSERT_TRUE(c.send("GET /static/shrinks.bin HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(200ms);
  fs::resize_file(t.root() / "shrinks.bin", 0);
  auto r = c.read_response();
  ASSERT_FALSE(r) << "a complete response came although the file shrank";
  EXPECT_NE(c.error().find("truncated body"), std::string::npos) << c.error();
}

TEST(static_files, curl_downloads_the_5mb_file_intact) {
  REQUIRE_CURL();
  temp_tree t;
  const std::string data = make_bytes(5 * 1024 * 1024);
  write_file(t.root() / "large.bin", data);
  static_server s(t.root(), {.chunk_size = 16 * 1024});
  const auto out = t.dir() / "download.bin";
  auto r = test::run({"curl", "-sS", "--max-time", "30", "-o", out.string(), "-w",
                      "%{http_code} %{size_download}", s.url("/static/large.bin")});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_EQ(r.out, "200 " + std::to_string(data.size()));
  std::ifstream in(out, std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == data) << "curl's copy differs from the file";
}

}  // namespace
}  // namespace trellis::http
