#include "trellis/http/static_files.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/date.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"

namespace trellis::http {
namespace {

using codec::iequals;
using codec::trim_ows;

// --- small helpers -------------------------------------------------------------

// An owned file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// --- opening a file beneath the root ---------------------------------------------

// Flags of the final open: read-only, and O_NONBLOCK so that a FIFO placed
// under the root cannot block the worker in open(2) (it is then refused as
// not a regular file). O_NONBLOCK changes nothing for regular files.
constexpr int file_flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

// Set once openat2 has answered ENOSYS or EPERM: the kernel lacks it, or a
// seccomp filter refuses it. Every later open goes straight to the fallback.
std::atomic<bool> openat2_unavailable{false};

// openat2(RESOLVE_BENEATH): the kernel walks `rel` (symlinks included) and
// fails with EXDEV when a step would leave `dirfd`. Returns the descriptor,
// or -1 with errno set.
int open_beneath_openat2(int dirfd, const std::string& rel) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(file_flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
}

// The fallback: one openat(O_NOFOLLOW) per component, each relative to the
// directory opened before it, so no symlink is ever followed and nothing can
// be swapped between a check and the open. `rel` has no "." or ".."
// segments (normalize_path removed them); they are refused anyway.
int open_beneath_nofollow(int dirfd, const std::string& rel) {
  if (rel == ".") return ::openat(dirfd, ".", file_flags | O_NOFOLLOW);
  unique_fd dir;
  int at = dirfd;
  std::string_view rest = rel;
  for (;;) {
    const auto slash = rest.find('/');
    const std::string part(rest.substr(0, slash));
    if (part.empty() || part == "." || part == "..") {
      errno = ENOENT;
      return -1;
    }
    if (slash == std::string_view::npos) return ::openat(at, part.c_str(), file_flags | O_NOFOLLOW);
    // O_PATH|O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR.
    unique_fd next(::openat(at, part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return -1;
    dir = std::move(next);
    at = dir.get();
    rest.remove_prefix(slash + 1);
  }
}

// Opens `rel` (relative, no leading '/'; "." for the root itself) beneath
// `root_fd`. -1 with errno set on failure.
int open_beneath(int root_fd, const std::string& rel, bool try_openat2) {
  if (try_openat2 && !openat2_unavailable.load(std::memory_order_relaxed)) {
    const int fd = open_beneath_openat2(root_fd, rel);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
    openat2_unavailable.store(true, std::memory_order_relaxed);
    core::log::info("openat2 unavailable; static files fall back to O_NOFOLLOW per component",
                    {{"error", std::strerror(errno)}});
  }
  return open_beneath_nofollow(root_fd, rel);
}

// Whether an open failure means "no such file here" (404) rather than a
// server problem (500): missing, not a directory on the way, outside the
// root (EXDEV), a symlink refused (ELOOP), no permission, a name too long.
bool is_not_found(int err) noexcept {
  return err == ENOENT || err == ENOTDIR || err == EXDEV || err == ELOOP || err == EACCES ||
         err == ENAMETOOLONG || err == EPERM || err == ENXIO || err == EISDIR;
}

// --- validators --------------------------------------------------------------

// "<size hex>-<mtime ns hex>", quoted: a strong entity-tag.
std::string make_etag(std::uint64_t size, const timespec& mtime) {
  const auto ns = static_cast<std::uint64_t>(mtime.tv_sec) * 1'000'000'000u +
                  static_cast<std::uint64_t>(mtime.tv_nsec);
  std::array<char, 48> buf{};
  char* p = buf.data();
  *p++ = '"';
  p = std::to_chars(p, buf.data() + buf.size(), size, 16).ptr;
  *p++ = '-';
  p = std::to_chars(p, buf.data() + buf.size(), ns, 16).ptr;
  *p++ = '"';
  return std::string(buf.data(), p);
}

// Whether the entity-tag list `list` (If-Match, If-None-Match) holds "*" or
// a tag equal to `etag` (a strong tag, with its quotes). Strong comparison
// (`weak` false) only matches tags without "W/"; weak comparison ignores the
// prefix (RFC 9110 §8.8.3.2). A malformed element ends the scan.
bool etag_list_matches(std::string_view list, std::string_view etag, bool weak) noexcept {
  std::size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) ++i;
    if (i >= list.size()) break;
    if (list[i] == '*') return true;
    bool is_weak = false;
    if (list.compare(i, 2, "W/") == 0) {
      is_weak = true;
      i += 2;
    }
    if (i >= list.size() || list[i] != '"') return false;
    const auto close = list.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    const std::string_view tag = list.substr(i, close - i + 1);
    if (tag == etag && (weak || !is_weak)) return true;
    i = close + 1;
  }
  return false;
}

// --- ranges -------------------------------------------------------------------

// Parses 1*DIGIT; `overflow` is set when it does not fit in 64 bits.
bool parse_digits(std::string_view s, std::uint64_t& out, bool& overflow) noexcept {
  if (s.empty()) return false;
  out = 0;
  overflow = false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (out > (UINT64_MAX - d) / 10) overflow = true;
    if (!overflow) out = out * 10 + d;
  }
  return true;
}

}  // namespace

byte_range_answer parse_byte_range(std::string_view value, std::uint64_t size) noexcept {
  using kind = byte_range_answer::kind;
  const byte_range_answer whole{};
  value = trim_ows(value);
  const auto eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(trim_ows(value.substr(0, eq)), "bytes"))
    return whole;
  std::string_view set = value.substr(eq + 1);

  // The one non-empty element of the list; several mean "whole file".
  std::string_view spec;
  std::size_t elements = 0;
  while (!set.empty()) {
    const auto comma = set.find(',');
    const std::string_view element = trim_ows(set.substr(0, comma));
    if (!element.empty()) {
      spec = element;
      ++elements;
    }
    if (comma == std::string_view::npos) break;
    set.remove_prefix(comma + 1);
  }
  if (elements != 1 || size == 0) return whole;

  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  const std::string_view first_text = spec.substr(0, dash), last_text = spec.substr(dash + 1);
  std::uint64_t first = 0, last = 0;
  bool first_overflow = false, last_overflow = false;
  if (first_text.empty()) {  // suffix-range "-n": the last n bytes
    if (!parse_digits(last_text, last, last_overflow)) return whole;
    if (!last_overflow && last == 0) return {kind::unsatisfiable, 0, 0};
    const std::uint64_t n = last_overflow ? size : std::min(last, size);
    return {kind::partial, size - n, size - 1};
  }
  if (!parse_digits(first_text, first, first_overflow)) return whole;
  if (last_text.empty()) {
    last = size - 1;
  } else {
    if (!parse_digits(last_text, last, last_overflow)) return whole;
    if (!first_overflow && !last_overflow && last < first) return whole;  // invalid: ignored
    if (first_overflow && !last_overflow) return whole;                   // last < first
    if (last_overflow || last >= size) last = size - 1;
  }
  if (first_overflow || first >= size) return {kind::unsatisfiable, 0, 0};
  return {kind::partial, first, last};
}

std::string_view content_type_for(std::string_view file_name) noexcept {
  struct entry {
    std::string_view ext;
    std::string_view type;
  };
  static constexpr std::array<entry, 17> table = {{
      {"html", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/vnd.microsoft.icon"},
      {"wasm", "application/wasm"},
      {"pdf", "application/pdf"},
      {"xml", "application/xml"},
      {"woff2", "font/woff2"},
  }};
  constexpr std::string_view fallback = "application/octet-stream";
  const auto slash = file_name.rfind('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  const auto dot = file_name.rfind('.');
  if (dot == std::string_view::npos || dot == 0)
    return fallback;  // none, or a dotfile's whole name
  const std::string_view ext = file_name.substr(dot + 1);
  for (const auto& e : table)
    if (iequals(e.ext, ext)) return e.type;
  return fallback;
}

namespace {

// What the handler holds: the root, opened once, and the options.
struct directory {
  unique_fd root;
  std::string root_text;  // for log lines
  static_options options;
};

// An open file shared by a streaming body and its handler.
struct open_file {
  unique_fd fd;
};

// Reads [offset, offset + length) into `out` with pread, stopping early at
// the end of the file. False on a read error.
bool read_range(int fd, std::uint64_t offset, std::uint64_t length, std::string& out) {
  out.resize(static_cast<std::size_t>(length));
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n =
        ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;  // the file shrank: send what there is, the server frames it
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return true;
}

// The streamed body: `length` bytes from `offset`, chunk by chunk. Throws
// when the file ends early or cannot be read: the head promised
// Content-Length bytes, so the connection must be cut (the server closes it
// when a stream throws).
asio::awaitable<void> stream_file(std::shared_ptr<open_file> file, std::uint64_t offset,
                                  std::uint64_t length, std::size_t chunk, body_writer& out) {
  std::string buf(static_cast<std::size_t>(std::min<std::uint64_t>(chunk, length)), '\0');
  while (length > 0) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length));
    const ssize_t n = ::pread(file->fd.get(), buf.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw std::runtime_error(std::string("static file read failed: ") + std::strerror(errno));
    if (n == 0) throw std::runtime_error("static file shrank while being sent");
    if (auto ec = co_await out.write(std::string_view(buf.data(), static_cast<std::size_t>(n))))
      co_return;
    offset += static_cast<std::uint64_t>(n);
    length -= static_cast<std::uint64_t>(n);
  }
}

asio::awaitable<void> no_body(body_writer&) {
  co_return;
}

void not_found(response& res) {
  res.status = 404;
  res.set_text("not found\n");
}

// The file path asked for, relative to the root and without leading '/'
// ("." for the root itself), or nullopt when it must be refused (404).
std::optional<std::string> relative_path(std::string_view raw, const static_options& o) {
  std::string with_slash;
  with_slash.reserve(raw.size() + 1);
  with_slash += '/';
  with_slash += raw;
  auto norm = normalize_path(
      with_slash,
      {.collapse_slashes = true, .encoded_slash = slash_policy::decode, .reject_backslash = true});
  if (!norm || norm->escapes_root) return std::nullopt;
  std::string_view p = norm->path;
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  if (p.empty()) return std::string(".");
  if (!o.serve_hidden) {
    // A segment starting with '.': the first, or one after a '/'.
    if (p.front() == '.' || p.find("/.") != std::string_view::npos) return std::nullopt;
  }
  return std::string(p);
}

// Opens `rel` beneath the root into `fd` and stats it: 0, or the errno of
// the step that failed (`fd` then closed).
int open_and_stat(const directory& dir, const std::string& rel, unique_fd& fd, struct stat& st) {
  fd = unique_fd(open_beneath(dir.root.get(), rel, dir.options.use_openat2));
  if (!fd) return errno;
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    fd.reset();
    return err;
  }
  return 0;
}

asio::awaitable<void> serve(const directory& dir, request& req, response& res) {
  const static_options& opt = dir.options;
  const method m = req.method();
  if (m != method::get && m != method::head) {
    res.status = 405;
    (void)res.headers.set("Allow", "GET, HEAD");
    res.set_text("method not allowed\n");
    co_return;
  }

  // Under "/static/*" the file is the "*" capture (possibly empty: the
  // directory itself); on a route without one, the whole path.
  const std::string_view raw = req.has_param("*") ? req.param("*") : req.path();
  auto rel = relative_path(raw, opt);
  if (!rel) {
    not_found(res);
    co_return;
  }

  auto file = std::make_shared<open_file>();
  struct stat st {};
  int err = open_and_stat(dir, *rel, file->fd, st);
  bool via_index = false;
  if (err == 0 && S_ISDIR(st.st_mode)) {
    if (opt.index_file.empty()) {
      not_found(res);
      co_return;
    }
    if (req.path().empty() || req.path().back() != '/') {
      // Relative links in the index page resolve against the URL, so the
      // URL of a directory ends with '/'. A leading "//" would read as
      // another host in Location: collapse it.
      std::string_view p = req.path();
      while (p.size() > 1 && p[0] == '/' && p[1] == '/') p.remove_prefix(1);
      std::string location(p);
      location += '/';
      if (!req.query().empty()) {
        location += '?';
        location += req.query();
      }
      res.status = 301;
      (void)res.headers.set("Location", location);
      res.set_text("moved permanently\n");
      co_return;
    }
    *rel = *rel == "." ? opt.index_file : *rel + "/" + opt.index_file;
    err = open_and_stat(dir, *rel, file->fd, st);
    via_index = true;
  }
  if (err != 0) {
    if (is_not_found(err)) {
      not_found(res);
    } else {
      core::log::error("static file open failed",
                       {{"root", dir.root_text}, {"path", *rel}, {"error", std::strerror(err)}});
      res.status = 500;
      res.set_text("internal server error\n");
    }
    co_return;
  }
  // Only regular files; and "file.txt/" names a directory that is not there.
  const bool named_directory = !raw.empty() && raw.back() == '/';
  if (!S_ISREG(st.st_mode) || (named_directory && !via_index)) {
    not_found(res);
    co_return;
  }

  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::int64_t mtime_sec = st.st_mtim.tv_sec;
  const std::string etag = make_etag(size, st.st_mtim);
  const auto modified = std::chrono::system_clock::time_point(std::chrono::seconds(mtime_sec));
  const std::string last_modified = format_http_date(modified);
  (void)res.headers.set("ETag", etag);
  (void)res.headers.set("Last-Modified", last_modified);
  if (!opt.cache_control.empty()) (void)res.headers.set("Cache-Control", opt.cache_control);

  // Preconditions, RFC 9110 §13.2.2.
  const auto now = std::chrono::system_clock::now();
  const auto not_after = [&](std::string_view date_text) {
    // True when the file was not modified after `date_text` (an invalid
    // date gives nullopt: the field is ignored).
    const auto t = parse_http_date(date_text, now);
    return t ? std::optional<bool>(modified <= *t) : std::nullopt;
  };
  if (const auto if_match = req.header("If-Match"); !if_match.empty()) {
    if (!etag_list_matches(if_match, etag, false)) {
      res.status = 412;
      res.set_text("precondition failed\n");
      co_return;
    }
  } else if (const auto ius = req.header("If-Unmodified-Since"); !ius.empty()) {
    if (const auto ok = not_after(ius); ok && !*ok) {
      res.status = 412;
      res.set_text("precondition failed\n");
      co_return;
    }
  }
  bool not_modified = false;
  if (const auto inm = req.header("If-None-Match"); !inm.empty()) {
    not_modified = etag_list_matches(inm, etag, true);
  } else if (const auto ims = req.header("If-Modified-Since"); !ims.empty()) {
    const auto ok = not_after(ims);
    not_modified = ok && *ok;
  }
  if (not_modified) {
    res.status = 304;
    co_return;
  }

  (void)res.headers.set("Accept-Ranges", "bytes");
  (void)res.headers.set("X-Content-Type-Options", "nosniff");
  std::uint64_t offset = 0, length = size;
  res.status = 200;
  if (const auto range = req.header("Range"); !range.empty() && m == method::get) {
    bool use_range = true;
    if (const auto if_range = trim_ows(req.header("If-Range")); !if_range.empty()) {
      if (if_range.front() == '"' || if_range.starts_with("W/"))
        use_range = if_range == etag;  // strong comparison: a weak tag never matches
      else
        use_range = parse_http_date(if_range, now) == std::optional(modified);
    }
    if (use_range) {
      const byte_range_answer r = parse_byte_range(range, size);
      if (r.what == byte_range_answer::kind::unsatisfiable) {
        res.status = 416;
        (void)res.headers.set("Content-Range", "bytes */" + std::to_string(size));
        res.set_text("range not satisfiable\n");
        co_return;
      }
      if (r.what == byte_range_answer::kind::partial) {
        res.status = 206;
        offset = r.first;
        length = r.last - r.first + 1;
        (void)res.headers.set("Content-Range", "bytes " + std::to_string(r.first) + "-" +
                                                   std::to_string(r.last) + "/" +
                                                   std::to_string(size));
      }
    }
  }
  (void)res.headers.set("Content-Type", content_type_for(*rel));

  if (m == method::head) {
    // A streamed response keeps the Content-Length set here; for HEAD the
    // server sends the head only and never calls the stream.
    (void)res.headers.set("Content-Length", std::to_string(length));
    res.stream = no_body;
    co_return;
  }
  if (length <= opt.stream_threshold) {
    if (!read_range(file->fd.get(), offset, length, res.body)) {
      core::log::error("static file read failed",
                       {{"root", dir.root_text}, {"path", *rel}, {"error", std::strerror(errno)}});
      res.clear();
      res.status = 500;
      res.set_text("internal server error\n");
    }
    co_return;
  }
  (void)res.headers.set("Content-Length", std::to_string(length));
  res.stream = [file = std::move(file), offset, length, chunk = opt.chunk_size](body_writer& w) {
    return stream_file(file, offset, length, chunk, w);
  };
}

}  // namespace

handler serve_directory(std::filesystem::path root, static_options options) {
  if (options.chunk_size == 0) throw core::config_error("chunk_size", "must be greater than 0");
  auto dir = std::make_shared<directory>();
  dir->root_text = root.string();
  dir->root = unique_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir->root)
    throw core::config_error(
        "root", "cannot open directory '" + dir->root_text + "': " + std::strerror(errno));
  dir->options = std::move(options);
  return [dir = std::shared_ptr<const directory>(std::move(dir))](request& req, response& res) {
    return serve(*dir, req, res);
  };
}

}  // namespace trellis::http
