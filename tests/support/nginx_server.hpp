// nginx_server: a real nginx on 127.0.0.1, started and stopped by a test.
//
// Each nginx_server is one nginx process with its own configuration in a
// fresh temporary directory: `daemon off` and `master_process off` (one
// process, which the test can stop with SIGTERM or kill with SIGKILL to
// play a crash), logs in that directory, a free port on 127.0.0.1. Only
// modules built into Debian's nginx-light are used by the default
// configuration (core, ssl, gzip, ssi, headers).
//
//   REQUIRE_NGINX();                      // skips visibly without nginx
//   test::nginx_server ngx;               // the default locations below
//   ngx.put("/a.txt", "hello");
//   get(ngx.url("/a.txt"));
//
//   test::nginx_server echo({.server_body = "location / { return 200 \"$host\\n\"; }\n"});
//
// Thread-safety: construct, use and destroy on one thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "support/certs.hpp"
#include "support/process.hpp"

// Skips the test (visibly) when nginx is missing.
#define REQUIRE_NGINX()                                                                    \
  do {                                                                                     \
    if (!::trellis::test::find_nginx())                                                    \
      GTEST_SKIP() << "needs the `nginx` program (Debian package nginx-light) on PATH or " \
                      "in /usr/sbin";                                                      \
  } while (0)

namespace trellis::test {

// The nginx program: on PATH, or in /usr/sbin, which a non-root PATH may
// lack; nullopt when there is none.
std::optional<std::string> find_nginx();

// A port nobody listens on right now (the kernel's pick for port 0).
// Another process may take it before the caller binds it: callers that
// start a server on it retry with another port when that happens.
std::uint16_t free_port();

// Whether something accepts TCP connections on 127.0.0.1:port.
bool accepts_connections(std::uint16_t port);

// The whole file ("" when it cannot be read).
std::string read_file(const std::filesystem::path& p);
// Writes `bytes` to `p`, creating its directories. Throws std::runtime_error.
void write_file(const std::filesystem::path& p, std::string_view bytes);

struct nginx_options {
  // Serve HTTPS with this certificate instead of plain HTTP.
  const cert_and_key* tls = nullptr;
  // Directives added inside the server block, after the default locations
  // (an extra `location`, say).
  std::string extra_server;
  // When not empty, the server block's body in place of the default
  // headers and locations. The listen line (on the port the helper picks),
  // `root <dir>/www` and the TLS lines are written before it either way.
  std::string server_body;
  // Directives added at the http level (a log_format, a map).
  std::string extra_http;
  // nginx's worker_connections: client and upstream connections at once.
  int worker_connections = 64;
};

// One nginx process serving <dir>/www on 127.0.0.1:<port> (TLS when given
// a certificate). Without a server_body, with these locations:
//   /            static files; every response (404 included) carries
//                X-Connection: $connection and X-Connection-Requests:
//                $connection_requests, so a test sees which TCP connection
//                answered and how many requests it has carried;
//   /gzip/       gzip on for text/plain, even for the smallest file;
//   /ssi/        SSI on (.html): the filter drops Content-Length, so the
//                response is chunked;
//   /limited/    keepalive_requests 3: nginx closes after the 3rd request
//                (saying Connection: close in its response);
//   /short/      keepalive_timeout 1s: nginx closes an idle connection
//                after a second.
// Every configuration has keepalive_timeout 60s and keepalive_requests
// 1000 at the http level, and text/plain, text/html and
// application/octet-stream types (the default).
// The destructor stops nginx (SIGTERM, then SIGKILL) and removes the
// directory.
class nginx_server {
 public:
  // Throws std::runtime_error (with nginx's error output) when nginx does
  // not start, after trying five ports.
  // REQUIRES: find_nginx() has a value.
  explicit nginx_server(const cert_and_key* tls = nullptr);
  explicit nginx_server(nginx_options options);
  ~nginx_server();
  nginx_server(const nginx_server&) = delete;
  nginx_server& operator=(const nginx_server&) = delete;

  std::uint16_t port() const { return port_; }
  // "127.0.0.1:<port>", as an upstream address.
  std::string address() const;
  std::string url(std::string_view path, std::string_view scheme = "http",
                  std::string_view host = "127.0.0.1") const;
  // The temporary directory (the document root is its www/).
  const std::filesystem::path& dir() const { return dir_; }
  // Writes `bytes` under the document root, at `path` ("/gzip/a.txt").
  void put(std::string_view path, std::string_view bytes) const;
  // The error log and the access log so far, for assertions and messages.
  std::string error_log() const;
  std::string access_log() const;

  // The nginx process, while it runs; -1 once stopped or killed.
  pid_t pid();
  // Kills nginx at once (SIGKILL), as a crash would: its sockets close
  // with nothing more written. Waits until it is gone. Idempotent.
  void kill();

 private:
  std::string config() const;
  void cleanup();

  nginx_options options_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  std::optional<process> proc_;
};

}  // namespace trellis::test
