#include "support/nginx_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace trellis::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::optional<std::string> find_nginx() {
  if (auto p = find_program("nginx")) return p;
  return find_program("/usr/sbin/nginx");
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, std::string_view bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

nginx_server::nginx_server(const cert_and_key* tls) : nginx_server(nginx_options{.tls = tls}) {}

nginx_server::nginx_server(nginx_options options) : options_(std::move(options)) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/trellis-nginx-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    throw std::system_error(errno, std::system_category(), "mkdtemp " + tmpl);
  dir_ = tmpl;
  fs::create_directories(dir_ / "www");
  fs::create_directories(dir_ / "tmp");
  std::string why;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    write_file(dir_ / "nginx.conf", config());
    fs::remove(dir_ / "nginx.pid");
    proc_.emplace(std::vector<std::string>{*find_nginx(), "-p", dir_.string() + "/", "-c",
                                           (dir_ / "nginx.conf").string(), "-e",
                                           (dir_ / "error.log").string()});
    // nginx writes its pid file only once its listening socket is bound
    // (a port taken meanwhile makes it exit instead, after ~2.5 s of
    // retries), so the pid file says the port is nginx's.
    for (int i = 0; i < 200 && proc_->running(); ++i) {
      if (fs::exists(dir_ / "nginx.pid") && accepts_connections(port_)) return;
      std::this_thread::sleep_for(50ms);
    }
    // Exited (the port was taken meanwhile, or a bad configuration) or
    // never listened: try another port.
    proc_->kill();
    why = "nginx did not start: " + proc_->err() + read_file(dir_ / "error.log");
    proc_.reset();
  }
  cleanup();
  throw std::runtime_error(why);
}

nginx_server::~nginx_server() {
  cleanup();
}

std::string nginx_server::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::string nginx_server::url(std::string_view path, std::string_view scheme,
                              std::string_view host) const {
  return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(port_) +
         std::string(path);
}

void nginx_server::put(std::string_view path, std::string_view bytes) const {
  write_file(dir_ / "www" / fs::path(path).relative_path(), bytes);
}

std::string nginx_server::error_log() const {
  return read_file(dir_ / "error.log");
}

std::string nginx_server::access_log() const {
  return read_file(dir_ / "access.log");
}

pid_t nginx_server::pid() {
  return proc_ && proc_->running() ? proc_->pid() : -1;
}

void nginx_server::kill() {
  if (!proc_) return;
  proc_->kill();
  proc_->wait_or_kill(5s);
}

std::string nginx_server::config() const {
  const std::string d = dir_.string();
  const cert_and_key* tls = options_.tls;
  std::string c;
  c += "daemon off;\nmaster_process off;\nworker_processes 1;\n";
  c += "pid " + d + "/nginx.pid;\n";
  c += "error_log " + d + "/error.log info;\n";
  c += "events { worker_connections " + std::to_string(options_.worker_connections) + "; }\n";
  c += "http {\n";
  c += "  access_log " + d + "/access.log;\n";
  for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
    c += std::string("  ") + t + "_temp_path " + d + "/tmp/" + t + ";\n";
  c += "  types { text/plain txt; text/html html; application/octet-stream bin; }\n";
  c += "  default_type application/octet-stream;\n";
  c += "  keepalive_timeout 60s;\n  keepalive_requests 1000;\n";
  c += options_.extra_http;
  c += "  server {\n";
  c += "    listen 127.0.0.1:" + std::to_string(port_) + (tls ? " ssl" : "") + ";\n";
  c += "    server_name localhost;\n";
  c += "    root " + d + "/www;\n";
  if (tls) {
    c += "    ssl_certificate " + tls->cert_file + ";\n";
    c += "    ssl_certificate_key " + tls->key_file + ";\n";
    c += "    ssl_protocols TLSv1.2 TLSv1.3;\n";
  }
  if (!options_.server_body.empty()) {
    c += options_.server_body;
  } else {
    c += "    add_header X-Connection $connection always;\n";
    c += "    add_header X-Connection-Requests $connection_requests always;\n";
    c += "    location /gzip/ { gzip on; gzip_types text/plain; gzip_min_length 0; }\n";
    c += "    location /ssi/ { ssi on; }\n";
    c += "    location /limited/ { keepalive_requests 3; }\n";
    c += "    location /short/ { keepalive_timeout 1s; }\n";
  }
  c += options_.extra_server;
  c += "\n  }\n}\n";
  return c;
}

void nginx_server::cleanup() {
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
