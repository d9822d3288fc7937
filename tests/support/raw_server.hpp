// raw_server: a listening socket on 127.0.0.1 that runs a script on a
// thread per accepted connection, for tests whose peer must misbehave on
// purpose (never answer, stall mid-body, close a kept-alive connection,
// send broken framing) in ways no real server will. Every wait a script
// makes through the helpers below is bounded.
//
//   test::raw_server s([](int fd, int index) {
//     test::raw_server::read_head(fd);
//     test::raw_server::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
//   });
//
// Thread-safety: construct and destroy on one thread; scripts run on their
// own threads, one per connection.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/loopback_listener.hpp"

namespace trellis::test {

class raw_server {
 public:
  // `script(fd, index)` runs for the index-th accepted connection.
  explicit raw_server(std::function<void(int, int)> script) : script_(std::move(script)) {
    fd_ = test::listen_on_loopback(port_);
    if (fd_ < 0) throw std::runtime_error("cannot listen on 127.0.0.1");
    thread_ = std::thread([this] { serve(); });
  }
  ~raw_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  int accepted() const { return accepted_; }

  // Reads until the end of a request head (or 2 s): what a script does
  // before answering.
  static std::string read_head(int fd) {
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) break;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  static void send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // Waits (at most 5 s, or until the server stops) for the peer to close.
  void wait_for_close(int fd) {
    char buf[256];
    for (int i = 0; i < 50 && !stop_; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0 && ::recv(fd, buf, sizeof buf, 0) <= 0) return;
    }
  }

 private:
  void serve() {
    std::vector<std::thread> conns;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      const int index = accepted_++;
      conns.emplace_back([this, c, index] {
        script_(c, index);
        ::close(c);
      });
    }
    for (auto& t : conns) t.join();
  }

  std::function<void(int, int)> script_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace trellis::test
