// http_client: a tiny blocking HTTP/1.1 client over a raw socket, for tests.
//
// Server tests need to send exact bytes (pipelined bursts, malformed heads,
// a head trickled one byte at a time) and to see exactly what comes back,
// framing included, and whether the server then closes. raw_client does
// only that: connect to 127.0.0.1:port, send bytes, read one response at a
// time (Content-Length, chunked, no body, or until close), and tell whether
// the peer closed. Its response parsing is independent of trellis's codec
// on purpose, so a codec bug cannot hide a server bug. Every read waits at
// most the client's timeout (poll), every send ignores SIGPIPE.
//
//   test::raw_client c(port);
//   ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) << c.error();
//   auto r = c.read_response();
//   ASSERT_TRUE(r) << c.error();
//   EXPECT_EQ(r->status, 200);
//
// Thread-safety: one thread per client.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trellis::test {

struct raw_response {
  int status = 0;
  std::string head;  // status line and field lines, with the final empty line
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;       // decoded: chunk framing removed
  std::string wire_body;  // the body bytes as they were on the wire
  bool chunked = false;

  // The first value of field `name` (case-insensitive), or "".
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : fields)
      if (iequals(k, name)) return v;
    return {};
  }
  bool has_header(std::string_view name) const {
    for (const auto& f : fields)
      if (iequals(f.first, name)) return true;
    return false;
  }
  static bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i])))
        return false;
    return true;
  }
};

class raw_client {
 public:
  using clock = std::chrono::steady_clock;

  // Connects to 127.0.0.1:port (blocking, bounded by `timeout`, which also
  // bounds every later read). On failure connected() is false, error() says why.
  // `rcvbuf` > 0 fixes the socket's receive buffer (SO_RCVBUF, which also
  // turns off the kernel's autotuning), to make a slow reader felt sooner.
  explicit raw_client(std::uint16_t port,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5), int rcvbuf = 0)
      : timeout_(timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      fail("socket");
      return;
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // bounds connect() and send()
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      fail("connect");
      close();
    }
  }
  ~raw_client() { close(); }
  raw_client(raw_client&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)),
        timeout_(o.timeout_),
        buf_(std::move(o.buf_)),
        error_(std::move(o.error_)) {}
  raw_client& operator=(raw_client&&) = delete;
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool connected() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }
  // Why the last call failed.
  const std::string& error() const noexcept { return error_; }
  // The local port, to match against what the server saw.
  std::uint16_t local_port() const {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
    return ntohs(sa.sin_port);
  }

  // Sends every byte of `data`. False (error() says why) if the peer is gone
  // or the send timed out; never raises SIGPIPE.
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail("send");
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads the next response (an interim 1xx is a response of its own).
  // `head_request`: the response answers HEAD, so it has no body. nullopt
  // on time-out, on a close before the response is complete, or when it is
  // malformed; error() says which.
  std::optional<raw_response> read_response(bool head_request = false) {
    const auto until = clock::now() + timeout_;
    std::size_t end = 0;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (buf_.size() > 64 * 1024) return fail_none("response head over 64 KiB");
      if (fill(until) <= 0)
        return fail_none("no complete response head: " + error_ + "; got: " + buf_);
    }
    raw_response r;
    r.head = buf_.substr(0, end + 4);
    if (!parse_head(r)) return fail_none("malformed response head: " + r.head);
    std::size_t pos = end + 4;

    const std::string te = r.header("Transfer-Encoding");
    const std::string cl = r.header("Content-Length");
    if (head_request || r.status < 200 || r.status == 204 || r.status == 304) {
      // no body
    } else if (!te.empty()) {
      if (te != "chunked") return fail_none("unexpected Transfer-Encoding: " + te);
      r.chunked = true;
      const std::size_t start = pos;
      for (;;) {  // chunk-size line, data, CRLF; a zero size ends the chunks
        std::size_t eol;
        while ((eol = buf_.find("\r\n", pos)) == std::string::npos)
          if (fill(until) <= 0) return fail_none("truncated chunk size line: " + error_);
        const std::string line = buf_.substr(pos, eol - pos);
        std::size_t size = 0, used = 0;
        try {
          size = std::stoul(line, &used, 16);
        } catch (...) {
          return fail_none("bad chunk size line: " + line);
        }
        if (used == 0 || (used != line.size() && line[used] != ';'))
          return fail_none("bad chunk size line: " + line);
        pos = eol + 2;
        if (size == 0) break;
        while (buf_.size() < pos + size + 2)
          if (fill(until) <= 0) return fail_none("truncated chunk: " + error_);
        if (buf_.compare(pos + size, 2, "\r\n") != 0)
          return fail_none("chunk data not followed by CRLF");
        r.body.append(buf_, pos, size);
        pos += size + 2;
      }
      for (;;) {  // trailer fields, then the empty line
        std::size_t eol;
        while ((eol = buf_.find("\r\n", pos)) == std::string::npos)
          if (fill(until) <= 0) return fail_none("truncated trailer section: " + error_);
        const bool last = eol == pos;
        pos = eol + 2;
        if (last) break;
      }
      r.wire_body = buf_.substr(start, pos - start);
    } else if (!cl.empty()) {
      const std::size_t n = std::stoul(cl);
      while (buf_.size() < pos + n)
        if (fill(until) <= 0) return fail_none("truncated body: " + error_);
      r.body = buf_.substr(pos, n);
      r.wire_body = r.body;
      pos += n;
    } else {
      int got;
      while ((got = fill(until)) > 0) {
      }
      if (got < 0) return fail_none("close-delimited body did not end: " + error_);
      r.body = buf_.substr(pos);
      r.wire_body = r.body;
      pos = buf_.size();
    }
    buf_.erase(0, pos);
    return r;
  }

  // Waits up to `timeout` for the peer to close (EOF or reset): true if it
  // did. Bytes that arrive meanwhile are kept in buffered().
  bool wait_closed(std::chrono::milliseconds timeout) {
    const auto until = clock::now() + timeout;
    for (;;) {
      const int got = fill(until);
      if (got == 0) return true;
      if (got < 0) return error_.find("timed out") == std::string::npos;  // reset: closed too
    }
  }

  // Whether bytes (or EOF) can be read within `timeout`, without reading.
  bool readable_within(std::chrono::milliseconds timeout) {
    if (!buf_.empty()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
  }

  // Received and not yet consumed by read_response().
  std::string& buffered() noexcept { return buf_; }

  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  // Reads what is there into buf_, waiting until `until`: 1 got bytes,
  // 0 end of stream, -1 error or time-out (error() says which).
  int fill(clock::time_point until) {
    if (fd_ < 0) {
      error_ = "not connected";
      return -1;
    }
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()).count();
      if (left <= 0) {
        error_ = "timed out";
        return -1;
      }
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {
        fail("poll");
        return -1;
      }
      if (ready == 0) continue;  // re-check the clock
      char tmp[64 * 1024];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        fail("recv");
        return -1;
      }
      if (n == 0) {
        error_ = "connection closed";
        return 0;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
      return 1;
    }
  }

  static bool parse_head(raw_response& r) {
    std::string_view h = r.head;
    auto eol = h.find("\r\n");
    const std::string_view status_line = h.substr(0, eol);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ')
      return false;
    for (int i = 9; i < 12; ++i)
      if (!std::isdigit(static_cast<unsigned char>(status_line[i]))) return false;
    r.status = std::stoi(std::string(status_line.substr(9, 3)));
    h.remove_prefix(eol + 2);
    while (!h.empty() && h.substr(0, 2) != "\r\n") {
      eol = h.find("\r\n");
      const std::string_view line = h.substr(0, eol);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) return false;
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      r.fields.emplace_back(std::string(line.substr(0, colon)), std::string(value));
      h.remove_prefix(eol + 2);
    }
    return true;
  }

  bool fail(const char* what) {
    error_ = std::string(what) + ": " + std::strerror(errno);
    return false;
  }
  std::optional<raw_response> fail_none(std::string why) {
    error_ = std::move(why);
    return std::nullopt;
  }

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buf_;
  std::string error_;
};

}  // namespace trellis::test
