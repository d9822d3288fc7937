#include "trellis/gateway/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"

namespace trellis::gateway {
namespace {

constexpr std::string_view k_start_attribute = "access_log.start";

// nlohmann's null for an absent value keeps every line's keys the same,
// which is what log pipelines (jq, Loki, Elasticsearch mappings) prefer.
nlohmann::ordered_json text_or_null(std::string_view s) {
  if (s.empty()) return nullptr;
  return std::string(s);
}

int open_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

// Writes all of `data`, retrying partial writes and EINTR. The file is
// opened O_APPEND, so each write(2) lands at the end even when another
// process (a second gateway) appends to the same file.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::string format_rfc3339_ms(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  // Floor division, so that times before 1970 still print correctly.
  std::int64_t secs = ms / 1000;
  std::int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(frac));
  return std::string(buf, static_cast<std::size_t>(n > 0 ? n : 0));
}

std::string format_access_line(const access_entry& e) {
  // ordered_json keeps the keys in insertion order, so lines read the
  // same way every time (plain json would sort them).
  nlohmann::ordered_json j;
  j["time"] = format_rfc3339_ms(e.time);
  j["method"] = std::string(e.method);
  j["path"] = std::string(e.path);
  j["status"] = e.status;
  j["bytes"] = e.bytes ? nlohmann::ordered_json(*e.bytes) : nlohmann::ordered_json(nullptr);
  j["duration_us"] =
      e.duration_us ? nlohmann::ordered_json(*e.duration_us) : nlohmann::ordered_json(nullptr);
  j["client"] = text_or_null(e.client);
  j["request_id"] = text_or_null(e.request_id);
  j["user_agent"] = text_or_null(e.user_agent);
  j["subject"] = text_or_null(e.subject);
  j["route"] = text_or_null(e.route);
  // replace: invalid UTF-8 (a User-Agent's obs-text) becomes U+FFFD;
  // the default handler would throw from the middle of after().
  std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  line += '\n';
  return line;
}

// ---------------------------------------------------------------------------
// log_writer

log_writer::log_writer(log_writer_options options) : options_(std::move(options)) {
  if (options_.max_buffered_bytes == 0)
    throw core::config_error("access_log.max_buffered_bytes", "must be at least 1");
  if (options_.path == "-") {
    fd_ = STDOUT_FILENO;
  } else {
    if (options_.path.empty()) throw core::config_error("access_log.path", "empty file name");
    fd_ = open_append(options_.path);
    if (fd_ < 0) {
      throw core::config_error("access_log.path",
                               "cannot open '" + options_.path + "': " + std::strerror(errno));
    }
    owns_fd_ = true;
  }
  // Both buffers at their full size up front (pages are only touched as
  // used): growing a string past glibc's mmap threshold maps fresh pages
  // and copies on every doubling, which measured several times slower than
  // the write(2) calls the buffer saves.
  pending_.reserve(options_.max_buffered_bytes);
  thread_ = std::thread([this] { run(); });
}

log_writer::~log_writer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
  if (owns_fd_) ::close(fd_);
}

bool log_writer::write_line(std::string_view line) {
  bool was_empty = false;
  {
    std::lock_guard lock(mu_);
    if (pending_.size() + line.size() > options_.max_buffered_bytes) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    was_empty = pending_.empty();
    pending_.append(line);
  }
  lines_.fetch_add(1, std::memory_order_relaxed);
  // Only the first line of a batch needs to wake the writer: it takes
  // everything queued when it wakes, and looks again before sleeping.
  if (was_empty) wake_.notify_one();
  return true;
}

void log_writer::run() {
  std::string batch;
  batch.reserve(pending_.capacity());
  bool failing = false;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stop_ || !pending_.empty(); });
      if (pending_.empty()) break;  // stopping, and all written
      batch.swap(pending_);         // the buffers trade capacities: no allocation
      writing_ = true;
    }
    bool ok = false;
    int err = 0;
    {
      std::lock_guard io(io_mu_);
      ok = write_all(fd_, batch);
      if (!ok) err = errno;
    }
    if (!ok) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      // Once per failing spell, not once per batch: a full disk would
      // otherwise flood the error log as well.
      if (!failing)
        core::log::error("access log write failed",
                         {{"path", options_.path}, {"error", std::strerror(err)}});
      failing = true;
    } else {
      failing = false;
    }
    batch.clear();
    {
      std::lock_guard lock(mu_);
      writing_ = false;
    }
    idle_.notify_all();
  }
  {
    std::lock_guard lock(mu_);
    writing_ = false;
  }
  idle_.notify_all();
}

void log_writer::flush() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return pending_.empty() && !writing_; });
}

result<void> log_writer::reopen() {
  if (!owns_fd_) return {};
  const int fd = open_append(options_.path);
  if (fd < 0) return unexpected(std::error_code(errno, std::system_category()));
  int old = -1;
  {
    std::lock_guard io(io_mu_);
    old = std::exchange(fd_, fd);
  }
  ::close(old);
  return {};
}

log_writer_stats log_writer::stats() const noexcept {
  return {lines_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed),
          write_errors_.load(std::memory_order_relaxed)};
}

// ---------------------------------------------------------------------------
// access_log

access_log::access_log(std::shared_ptr<log_writer> writer, access_log_options options)
    : writer_(std::move(writer)), options_(std::move(options)) {
  if (!writer_) throw core::config_error("access_log.writer", "a log writer is required");
}

std::chrono::steady_clock::time_point access_log::now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

asio::awaitable<http::filter_status> access_log::before(http::request& req, http::response&) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch());
  req.set_attribute(k_start_attribute, std::to_string(ns.count()));
  co_return http::filter_status::proceed;
}

std::string access_log::line_for(const http::request& req, const http::response& res) const {
  access_entry e;
  e.time = options_.wall_clock ? options_.wall_clock() : std::chrono::system_clock::now();
  e.method = req.method_text();
  e.path = req.target();
  e.status = res.status;

  const bool no_body = req.method() == http::method::head ||
                       (res.status >= 100 && res.status < 200) || res.status == 204 ||
                       res.status == 304;
  if (no_body) {
    e.bytes = 0;
  } else if (!res.stream) {
    e.bytes = res.body.size();
  } else if (const auto cl = res.headers.get("Content-Length")) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec == std::errc() && end == cl->data() + cl->size()) e.bytes = n;
  }

  const std::string_view start = req.attribute(k_start_attribute);
  std::int64_t start_ns = 0;
  if (const auto [end, ec] = std::from_chars(start.data(), start.data() + start.size(), start_ns);
      !start.empty() && ec == std::errc() && end == start.data() + start.size()) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch());
    const std::int64_t d = ns.count() - start_ns;
    e.duration_us = static_cast<std::uint64_t>(d > 0 ? d / 1000 : 0);
  }

  const auto& remote = req.remote_endpoint();
  if (remote.port() != 0 || !remote.address().is_unspecified())
    e.client = remote.address().to_string();

  e.request_id = req.header(options_.request_id_header);
  if (e.request_id.empty()) e.request_id = res.headers.get(options_.request_id_header).value_or("");
  e.user_agent = req.header("User-Agent");
  e.subject = req.attribute("auth.subject");
  e.route = req.has_attribute("route") ? req.attribute("route") : std::string_view(options_.route);
  return format_access_line(e);
}

asio::awaitable<void> access_log::after(http::request& req, http::response& res) {
  const std::string line = line_for(req, res);
  writer_->write_line(line);  // a dropped line is counted by the writer
  co_return;
}

}  // namespace trellis::gateway
