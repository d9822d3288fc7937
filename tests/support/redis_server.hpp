// redis_server: a real redis-server on 127.0.0.1, started and stopped by a test.
//
// Each redis_server is one redis-server process in a fresh temporary
// directory (its working directory and log), on a free port of 127.0.0.1,
// with persistence off (`--save "" --appendonly no`): nothing is written
// to disk and a restarted server starts empty. The constructor returns once
// the server answers PING; the destructor stops it (SIGTERM, then SIGKILL)
// and removes the directory. kill() plays a crash and start() brings it
// back on the same port, for reconnect tests.
//
//   REQUIRE_REDIS();                       // skips visibly without redis-server
//   test::redis_server redis;
//   auto ep = redis.endpoint();            // 127.0.0.1:<port>
//   auto got = redis.cli({"GET", "k"});    // redis-cli, for cross-checks
//
//   test::redis_server locked({.extra_args = {"--requirepass", "secret"}});
//
// Thread-safety: construct, use and destroy on one thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"

// Skips the test (visibly) when redis-server is missing.
#define REQUIRE_REDIS()                                                                         \
  do {                                                                                          \
    if (!::trellis::test::program_exists("redis-server"))                                       \
      GTEST_SKIP() << "needs the `redis-server` program (Debian package redis-server) on PATH"; \
  } while (0)

namespace trellis::test {

struct redis_options {
  // Arguments added to the command line ("--requirepass", "secret").
  std::vector<std::string> extra_args;
};

class redis_server {
 public:
  // Starts redis-server and waits (up to 10 s) until it answers PING.
  // Throws std::runtime_error with its log when it does not start, after
  // trying five ports.
  // REQUIRES: program_exists("redis-server").
  explicit redis_server(redis_options options = {});
  ~redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::uint16_t port() const { return port_; }
  asio::ip::tcp::endpoint endpoint() const;
  const std::filesystem::path& dir() const { return dir_; }
  // The server's log so far, for assertion messages.
  std::string log() const;

  // Kills the server at once (SIGKILL), as a crash would: its connections
  // are reset, nothing more is written. Waits until it is gone. Idempotent.
  void kill();
  // Starts it again on the same port and waits until it answers PING.
  // Returns false (with the reason in log()) when it does not come up.
  bool start();
  bool running();

  // Runs `redis-cli -h 127.0.0.1 -p <port> args...` (with `--raw` output
  // unless raw is false); redis_cli_exists() says whether it can.
  run_result cli(std::vector<std::string> args, bool raw = true) const;

 private:
  bool launch();
  void cleanup();

  redis_options options_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  std::optional<process> proc_;
};

// Whether something on 127.0.0.1:port answers a RESP PING with +PONG, or
// with -NOAUTH (a server with a password), within `timeout_ms`.
bool answers_ping(std::uint16_t port, int timeout_ms = 500);

}  // namespace trellis::test
