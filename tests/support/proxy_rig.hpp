// proxy_rig: a reverse proxy on its own one-worker runtime, listening on a
// loopback port, in front of a cluster of `upstreams` — what every reverse
// proxy test starts with. The server's options are the test's (a body
// limit for large uploads, say).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/http_client.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/server.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/proxy/reverse_proxy.hpp"

namespace trellis::test {

class proxy_rig {
 public:
  explicit proxy_rig(const std::vector<std::string>& upstreams,
                     proxy::reverse_proxy_options o = {}, lb::cluster_options co = {},
                     http::server_options so = {})
      : rt_({.workers = 1, .drain_timeout = std::chrono::seconds(3), .handle_signals = false}) {
    if (co.name.empty()) co.name = "test";
    std::vector<lb::endpoint_config> endpoints;
    for (const auto& u : upstreams) {
      lb::endpoint_config e;
      e.address = u;
      endpoints.push_back(e);
    }
    cluster_ = std::make_shared<lb::cluster>(co, endpoints);
    proxy_.emplace(rt_, cluster_, std::move(o));
    server_.emplace(proxy_->handler(), std::move(so));
    auto ep = server_->listen(rt_, {asio::ip::address_v4::loopback(), 0});
    if (!ep) throw std::runtime_error("listen: " + ep.error().message());
    port_ = ep->port();
    thread_ = std::thread([this] { rt_.run(); });
  }
  ~proxy_rig() {
    rt_.drain();
    thread_.join();
  }
  proxy_rig(const proxy_rig&) = delete;
  proxy_rig& operator=(const proxy_rig&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  proxy::reverse_proxy& proxy() { return *proxy_; }
  lb::cluster& cluster() { return *cluster_; }

  // One request on a new connection.
  std::optional<raw_response> get(std::string_view target, std::string_view extra = "") {
    raw_client c(port_, std::chrono::seconds(10));
    if (!c.send("GET " + std::string(target) + " HTTP/1.1\r\nHost: front.example\r\n" +
                std::string(extra) + "\r\n"))
      return std::nullopt;
    return c.read_response();
  }

 private:
  core::runtime rt_;  // first: destroyed last, after everything bound to its workers
  std::shared_ptr<lb::cluster> cluster_;
  std::optional<proxy::reverse_proxy> proxy_;
  std::optional<http::server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace trellis::test
