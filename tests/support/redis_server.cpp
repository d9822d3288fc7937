#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "support/nginx_server.hpp"  // free_port(), read_file()

namespace trellis::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool answers_ping(std::uint16_t port, int timeout_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = false;
  constexpr std::string_view ping = "*1\r\n$4\r\nPING\r\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, ping.data(), ping.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(ping.size())) {
    std::string got;
    char buf[64];
    // Bounded: at most a few reads, each within the timeout.
    for (int i = 0; i < 8 && got.size() < 7; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) break;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    // A server with a password answers -NOAUTH: it is up. One still
    // loading its data answers -LOADING: not ready yet.
    ok = got == "+PONG\r\n" || got.starts_with("-NOAUTH");
  }
  ::close(fd);
  return ok;
}

redis_server::redis_server(redis_options options) : options_(std::move(options)) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/trellis-redis-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    throw std::system_error(errno, std::system_category(), "mkdtemp " + tmpl);
  dir_ = tmpl;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (launch()) return;
  }
  const std::string why = "redis-server did not start: " + log();
  cleanup();
  throw std::runtime_error(why);
}

redis_server::~redis_server() {
  cleanup();
}

asio::ip::tcp::endpoint redis_server::endpoint() const {
  return {asio::ip::address_v4::loopback(), port_};
}

std::string redis_server::log() const {
  std::string text = read_file(dir_ / "redis.log");
  if (proc_) text += proc_->out() + proc_->err();
  return text;
}

bool redis_server::launch() {
  std::vector<std::string> argv = {*find_program("redis-server"),
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_.string(),
                                   "--logfile",
                                   (dir_ / "redis.log").string(),
                                   "--daemonize",
                                   "no"};
  // Extra arguments come last, so a test can also override any of these.
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  proc_.emplace(std::move(argv));
  for (int i = 0; i < 200 && proc_->running(); ++i) {
    if (answers_ping(port_, 200)) return true;
    std::this_thread::sleep_for(50ms);
  }
  // Exited (the port was taken meanwhile) or never answered.
  proc_->kill();
  proc_->wait_or_kill(5s);
  return false;
}

void redis_server::kill() {
  if (!proc_) return;
  proc_->kill();
  proc_->wait_or_kill(5s);
}

bool redis_server::start() {
  kill();
  return launch();
}

bool redis_server::running() {
  return proc_ && proc_->running();
}

run_result redis_server::cli(std::vector<std::string> args, bool raw) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (raw) argv.push_back("--raw");
  for (auto& a : args) argv.push_back(std::move(a));
  return run(std::move(argv), {}, 10s);
}

void redis_server::cleanup() {
  if (proc_) {
    proc_->terminate();
    proc_->wait_or_kill(3s);
    proc_.reset();
  }
  std::error_code ignored;
  if (!dir_.empty()) fs::remove_all(dir_, ignored);
  dir_.clear();
}

}  // namespace trellis::test
