// Access log: one JSON object a line for every request (ARCHITECTURE,
// principle 8), the gateway's record of who asked for what and how it
// went.
//
//   {"time":"2026-11-29T06:01:02.345Z","method":"GET","path":"/users/7?x=1",
//    "status":200,"bytes":312,"duration_us":1840,"client":"127.0.0.1",
//    "request_id":"abc-123","user_agent":"curl/7.88.1","subject":"ada",
//    "route":"users"}
//
// The line is built in after(), so it sees the response the client gets
// (a handler's exception already turned into its 500). Fields:
//   time         when the response was ready (after()), RFC 3339 UTC with
//                milliseconds — nginx's $time_iso8601 is also the end;
//   method, path the request line's method and target as sent (query and
//                percent-encoding intact);
//   status       the response status;
//   bytes        the body size; 0 for HEAD, 1xx, 204 and 304, which carry
//                none; for a streamed body, which is written after this
//                line, its Content-Length when the handler set one, else
//                null (the length is not known yet — Envoy logs streams at
//                their end instead, at the price of holding the request's
//                state until then);
//   duration_us  from this middleware's before() to its after(), so place
//                it first in the chain to time the others too;
//   client       the peer's IP address;
//   request_id   the X-Request-Id field of the request, else of the
//                response (a proxy that generated one), else null;
//   user_agent   the User-Agent field, else null;
//   subject      the request attribute "auth.subject" (what an
//                authentication middleware proved), else null;
//   route        the request attribute "route" (route_metrics::wrap sets
//                it), else access_log_options::route, else null.
// Every string goes through nlohmann::json, which escapes quotes,
// backslashes and control characters (\u001b for ESC: a log line cannot
// smuggle terminal escapes or a fake second line) and, with the replace
// error handler, turns invalid UTF-8 into U+FFFD instead of throwing.
//
// Writing (log_writer): a worker appends the finished line to a bounded
// in-memory buffer under a mutex (a memcpy, tens of nanoseconds) and a
// writer thread writes the buffer out with write(2). The alternative, a
// mutex around a write(2) per line, holds the lock for a system call —
// microseconds on a healthy disk, but seconds when stdout is a pipe to a
// reader that stalled or the disk is slow, and then every worker queues
// behind it. Here a stall fills the buffer instead, after which lines are
// dropped and counted (stats().dropped): losing log lines is better than
// stopping traffic, the choice Envoy's access-log flusher also makes.
// Measured (two threads, 300-byte lines, a local file): write_line()
// takes 0.05 us at the median against 1.5-2 us for mutex + write(2); a
// synthetic loop that does nothing but log outruns the writer thread and
// drops, which a real request path, doing real work per line, does not.
// Lines never interleave: each is appended whole, and one thread writes.
//
// Log rotation: rename the file, then call reopen() (from a SIGUSR1
// handler's coroutine — asio::signal_set — not from a raw signal
// handler), like nginx's "kill -USR1".
//
// Thread-safety: log_writer and access_log are shared by every worker;
// all their members may be called concurrently.
#pragma once

#include <asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "trellis/core/result.hpp"
#include "trellis/http/message.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

// One access-log line's content (the fields described above).
struct access_entry {
  std::chrono::system_clock::time_point time;
  std::string_view method;
  std::string_view path;
  int status = 0;
  std::optional<std::uint64_t> bytes;        // nullopt: unknown (a stream)
  std::optional<std::uint64_t> duration_us;  // nullopt: start unknown
  std::string client;
  std::string_view request_id;  // empty: null in the line (likewise below)
  std::string_view user_agent;
  std::string_view subject;
  std::string_view route;
};

// The entry as one JSON object and a '\n'. Keys in the order above.
std::string format_access_line(const access_entry& e);

// "2026-11-29T06:01:02.345Z" (RFC 3339 §5.6, UTC, milliseconds).
std::string format_rfc3339_ms(std::chrono::system_clock::time_point t);

struct log_writer_options {
  // The file to append to, created if missing (mode 0644); "-" (default)
  // is standard output.
  std::string path = "-";
  // Bytes of lines waiting for the writer thread before new lines are
  // dropped. 1 MiB is a few thousand lines: seconds of a busy gateway's
  // log, enough to ride out a slow disk, small enough not to matter.
  // Memory: up to twice this (the buffer being filled and the one being
  // written).
  std::size_t max_buffered_bytes = 1 << 20;
};

struct log_writer_stats {
  std::uint64_t lines = 0;         // accepted (written or waiting)
  std::uint64_t dropped = 0;       // refused because the buffer was full
  std::uint64_t write_errors = 0;  // failed write(2) calls (their bytes are lost)
};

// A line sink with a writer thread; see the file comment.
class log_writer {
 public:
  // Opens the file. Throws core::config_error: field "access_log.path"
  // when it cannot be opened (the message says why), or
  // "access_log.max_buffered_bytes" when zero.
  explicit log_writer(log_writer_options options = {});
  // Writes out what is buffered, then stops the thread.
  ~log_writer();
  log_writer(const log_writer&) = delete;
  log_writer& operator=(const log_writer&) = delete;

  // Queues `line`, which should end with '\n'. Never blocks on I/O.
  // Returns false (and counts it) when the buffer cannot take it.
  bool write_line(std::string_view line);
  // Opens the path again (after the file was renamed away) and switches
  // to it; lines already queued go to the new file. On failure the old
  // file stays in use and the error (errno's) is returned. A no-op for
  // standard output.
  result<void> reopen();
  // Waits until every line accepted so far has been written.
  void flush();

  log_writer_stats stats() const noexcept;

 private:
  void run();

  log_writer_options options_;
  int fd_ = -1;
  bool owns_fd_ = false;

  std::mutex mu_;  // guards pending_, writing_, stop_
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::string pending_;
  bool writing_ = false;
  bool stop_ = false;

  std::mutex io_mu_;  // guards fd_ between the writer thread and reopen()

  std::atomic<std::uint64_t> lines_{0}, dropped_{0}, write_errors_{0};
  std::thread thread_;  // last: started once everything above exists
};

struct access_log_options {
  // The "route" field when the request has no "route" attribute; empty
  // writes null. One access_log per router usually names the service.
  std::string route{};
  // The request-id field looked for in the request, then the response.
  std::string request_id_header = "X-Request-Id";
  // Clocks, injectable for tests; null means the system ones. `clock`
  // measures durations (steady), `wall_clock` gives "time".
  std::function<std::chrono::steady_clock::time_point()> clock{};
  std::function<std::chrono::system_clock::time_point()> wall_clock{};
};

// The middleware. before() notes the start time in the request attribute
// "access_log.start" (per request, so no shared mutable state); after()
// writes the line.
class access_log final : public http::middleware {
 public:
  // REQUIRES: writer is not null (throws core::config_error
  // "access_log.writer" otherwise).
  explicit access_log(std::shared_ptr<log_writer> writer, access_log_options options = {});

  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;
  asio::awaitable<void> after(http::request& req, http::response& res) override;

  // The line after() would write for this request and response (without
  // writing it): what the tests check.
  std::string line_for(const http::request& req, const http::response& res) const;

  log_writer& writer() noexcept { return *writer_; }

 private:
  std::chrono::steady_clock::time_point now() const;

  std::shared_ptr<log_writer> writer_;
  access_log_options options_;
};

}  // namespace trellis::gateway
