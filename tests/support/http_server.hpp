// http_server: a trellis HTTP server on its own one-worker runtime, run
// on a background thread, for tests that talk to it with blocking or
// coroutine clients. Destruction (or stop()) drains the runtime and joins
// the thread, even when an assertion failed.
//
//   test::test_server s([](http::request&, http::response& res) -> asio::awaitable<void> {
//     res.set_text("hi");
//     co_return;
//   });
//   curl(s.url("/"));
//
// Thread-safety: construct, use and destroy on one thread; the handler
// runs on the server's thread.
#pragma once

#include <asio/ip/address_v4.hpp>
#include <asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "trellis/core/runtime.hpp"
#include "trellis/http/server.hpp"

namespace trellis::test {

// A server on its own one-worker runtime, run on a background thread.
// Destruction (or stop()) drains the runtime and joins the thread.
class test_server {
 public:
  explicit test_server(http::handler h, http::server_options o = {},
                       asio::ssl::context* tls = nullptr)
      : rt_({.workers = 1, .drain_timeout = std::chrono::seconds(3), .handle_signals = false}),
        srv_(std::move(h), std::move(o)) {
    auto ep = srv_.listen(rt_, {asio::ip::address_v4::loopback(), 0}, tls);
    if (!ep) throw std::runtime_error("listen failed: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~test_server() { stop(); }
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  std::string url(std::string_view path, std::string_view scheme = "http") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  http::server& srv() noexcept { return srv_; }
  // Starts a graceful drain and returns at once.
  void drain() { rt_.drain(); }
  // Drains and waits for the runtime to finish.
  void stop() {
    rt_.drain();
    if (thread_.joinable()) thread_.join();
  }

 private:
  core::runtime rt_;  // declared first: the server's drain hooks live in its workers
  http::server srv_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace trellis::test
