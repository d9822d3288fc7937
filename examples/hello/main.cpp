// trellis-hello: the HTTP server the benchmarks and the first HTTP chapters use.
//
//   trellis-hello --port 8080                   # GET / -> "Hello, World!"
//   curl -s localhost:8080/                     # Hello, World!
//   curl -s --data-binary @file localhost:8080/echo
//   curl -s localhost:8080/metrics              # Prometheus text
//
// Routes: GET / answers the 13 bytes "Hello, World!" as text/plain; /echo
// (any method) returns the request body; GET /delay/MS answers after MS
// milliseconds (a slow backend); GET /metrics exposes the server's
// metrics; --static DIR serves the files under DIR at /static/. --catch-all
// answers every method on every path with the hello response after reading
// the whole request body, for conformance harnesses and load tools.
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "cli.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"
#include "trellis/http/static_files.hpp"
#include "trellis/net/tls.hpp"

namespace {

using namespace trellis;
using namespace std::chrono_literals;

constexpr const char* usage = R"(trellis-hello — a small HTTP/1.1 server

usage:
  trellis-hello [--address A] [--port P] [--workers N] [--catch-all]
                [--static DIR] [--tls-cert FILE --tls-key FILE] [--log-level L]

routes  GET /          "Hello, World!" (13 bytes, text/plain)
        ANY /echo      the request body, as received
        GET /delay/MS  "Hello, World!" after MS milliseconds (at most 10000):
                       a slow backend, for timeouts and concurrency demos
        GET /metrics   the server's metrics, Prometheus text format
        GET /static/*  the files under DIR, with --static DIR
options --address A    address to bind (default 127.0.0.1; :: for IPv6)
        --port P       port (default 8080; 0 picks a free one)
        --workers N    worker threads (default: one per core)
        --catch-all    answer every method and path with the hello response,
                       after reading the request body
        --static DIR   serve DIR at /static/ (ETag, ranges, index.html)
        --tls-cert F   serve HTTPS with this certificate chain (PEM) ...
        --tls-key F    ... and this key
        --log-level L  trace, debug, info (default), warn, error, off
)";

constexpr std::string_view hello = "Hello, World!";

asio::awaitable<void> say_hello(http::request&, http::response& res) {
  res.body.assign(hello);
  (void)res.headers.set("Content-Type", "text/plain");
  co_return;
}

// GET /delay/MS: the hello answer, MS milliseconds late. The wait is a
// timer, not a sleep: the worker serves other requests meanwhile.
asio::awaitable<void> say_hello_later(http::request& req, http::response& res) {
  const std::string_view text = req.param("ms");
  long ms = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || ms > 10'000) {
      ms = -1;
      break;
    }
    ms = ms * 10 + (c - '0');
  }
  if (text.empty() || ms < 0 || ms > 10'000) {
    res.status = 400;
    res.set_text("delay: expected 0 to 10000 milliseconds\n");
    co_return;
  }
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  co_await timer.async_wait(use_nothrow);
  co_await say_hello(req, res);
}

}  // namespace

int main(int argc, char** argv) {
  const examples::args a("trellis-hello", argc, argv, usage, {"catch-all"});
  a.allow(
      {"address", "port", "workers", "catch-all", "static", "tls-cert", "tls-key", "log-level"});
  if (!a.positional().empty())
    a.fail("unexpected argument '" + a.positional()[0] + "' (see --help)");
  if (a.has("static") && a.has("catch-all")) a.fail("--static and --catch-all do not go together");
  a.apply_log_level();
  const auto address = a.address();
  const auto port = static_cast<unsigned short>(a.number("port", 8080, 0, 65535));
  const auto workers = static_cast<std::size_t>(a.number("workers", 0, 0, 1024));

  std::optional<asio::ssl::context> tls;
  const auto cert = a.get("tls-cert"), key = a.get("tls-key");
  if (cert.has_value() != key.has_value()) a.fail("--tls-cert and --tls-key go together");
  try {
    if (cert)
      tls.emplace(net::tls::make_server_context(
          {.cert_file = *cert, .key_file = *key, .alpn = {"http/1.1"}}));
  } catch (const core::config_error& e) {
    a.fail(e.what());
  }

  http::router routes;
  std::optional<http::server> srv;
  if (a.has("catch-all")) {
    srv.emplace([](http::request& req, http::response& res) -> asio::awaitable<void> {
      // Read (and drop) the whole body so the connection stays usable.
      for (;;) {
        auto piece = co_await req.read_some();
        if (!piece) {
          res.status = http::status_for(piece.error());
          res.close = true;
          co_return;
        }
        if (piece->empty()) break;
      }
      co_await say_hello(req, res);
    });
  } else {
    routes.get("/", say_hello);
    routes.get("/delay/{ms}", say_hello_later);
    for (auto m : {http::method::get, http::method::post, http::method::put, http::method::patch,
                   http::method::delete_}) {
      routes.add(m, "/echo", [](http::request& req, http::response& res) -> asio::awaitable<void> {
        auto body = co_await req.read_body();
        if (!body) {
          res.status = http::status_for(body.error());
          res.set_text(body.error().message() + "\n");
          res.close = true;
          co_return;
        }
        res.body = std::move(*body);
        const auto type = req.header("Content-Type");
        (void)res.headers.set("Content-Type", type.empty() ? "application/octet-stream" : type);
      });
    }
    if (auto dir = a.get("static")) {
      try {
        routes.get("/static/*", http::serve_directory(*dir));
      } catch (const core::config_error& e) {
        a.fail("--static: " + std::string(e.what()));
      }
    }
    srv.emplace(routes.to_handler());
    routes.get("/metrics", [&srv](http::request&, http::response& res) -> asio::awaitable<void> {
      res.set_text(srv->metrics().expose(), "text/plain; version=0.0.4");
      co_return;
    });
  }

  core::runtime rt({.workers = workers});
  auto bound = srv->listen(rt, {address, port}, tls ? &*tls : nullptr);
  if (!bound)
    a.fail("cannot listen on " + examples::to_string({address, port}) + ": " +
           bound.error().message());
  core::log::info("listening", {{"address", examples::to_string(*bound)},
                                {"scheme", tls ? "https" : "http"},
                                {"workers", rt.size()}});
  rt.run();
  core::log::info("stopped");
  return 0;
}
