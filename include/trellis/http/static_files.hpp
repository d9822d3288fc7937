// static_files: a handler that serves the files under one directory over
// GET and HEAD, with validators, conditional requests and byte ranges
// (RFC 9110 §8.8 validators, §13 conditional requests, §14 range requests).
//
//   http::router r;
//   r.get("/static/*", http::serve_directory("./public"));
//   // GET /static/css/site.css  ->  ./public/css/site.css
//
// Which file: the rest of the path captured by the route's trailing "*"
// (req.param("*")), or the whole request path when the route has no "*".
// It is percent-decoded and dot-segments are removed by normalize_path
// (codec/url.hpp, with "%2F" decoded and runs of '/' merged); a path that
// would climb above the root ("..", "%2e%2e", "..%2f"), holds a backslash,
// NUL, CR or LF, or names a hidden entry (a segment starting with '.', see
// static_options::serve_hidden) is answered 404 — never 400 or 403, so a
// probe learns nothing about what exists outside the tree. A directory is
// answered with its index file (static_options::index_file), after a 301 to
// the same path plus '/' when the request lacked the slash, so that
// relative links in the page resolve; there are no directory listings,
// and a file named with a trailing slash ("hello.txt/") is a 404.
// Only regular files are served (a FIFO or device under the root is a 404).
//
// Symlinks: the file is opened relative to a descriptor of the root taken
// at construction, with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
// (Linux 5.6+). The kernel resolves the path, symlinks included, and fails
// the open if any step would leave the root — atomically, with no window
// between a check and the open for a concurrent rename or symlink swap to
// use. Symlinks that stay inside the root work; an absolute symlink or one
// that climbs out is a 404. Where openat2 is missing (older kernels, or a
// seccomp filter that refuses it with ENOSYS or EPERM) the fallback walks
// the path one component at a time with openat(O_NOFOLLOW): equally
// race-free, but it refuses every symlink, even one inside the root. We
// chose this over checking realpath() against the root's canonical path
// because that check and the later open are two steps a concurrent rename
// can get between. The root itself may be a symlink: it is resolved once,
// when serve_directory() opens it.
//
// Headers: Content-Type from the file extension (content_type_for),
// Content-Length, Last-Modified (the file's mtime), a strong ETag built
// from the size and the nanosecond mtime — "<size hex>-<mtime ns hex>", as
// nginx does with seconds — and Accept-Ranges: bytes. Strong, because
// If-Range and If-Match compare strongly (RFC 9110 §8.8.3.2): with a weak
// tag a client could never resume a download by ETag. The price: a file
// rewritten with the same size within the file system's timestamp
// granularity keeps its tag; for the nanosecond mtimes of ext4, xfs and
// btrfs that takes a deliberate utimensat(), not an editor or a deploy.
// X-Content-Type-Options: nosniff stops browsers from second-guessing the
// type (an uploaded "picture" run as a script).
//
// Conditional requests, in RFC 9110 §13.2.2's order: If-Match (412 when no
// strong match), else If-Unmodified-Since (412 when modified since);
// If-None-Match (weak comparison; 304 for GET and HEAD) — which takes
// precedence over If-Modified-Since (304 when not modified since, at one
// second resolution); then If-Range. A 304 carries ETag and Last-Modified
// and no body.
//
// Ranges (GET only; HEAD ignores Range as RFC 9110 §14.2 asks): one range,
// "bytes=a-b", "bytes=a-" or "bytes=-n", gets 206 with Content-Range and
// exactly those bytes; a range that starts past the end (or "-0") gets 416
// with "Content-Range: bytes */<size>". A request for several ranges is
// answered with the whole file and 200 — allowed (a server may ignore
// Range) and far simpler than multipart/byteranges, whose main users
// (PDF viewers) fall back gracefully; it also denies the many-small-ranges
// amplification trick. A malformed Range, or one on an empty file, is
// ignored (200). If-Range holding the current ETag (strong comparison) or
// the current Last-Modified date lets the range through; any other value
// sends the whole file with 200 (RFC 9110 §13.1.5).
//
// Sending: a file up to static_options::stream_threshold is read into the
// response body; a larger one is streamed through response::stream in
// chunks of chunk_size, with Content-Length set so the server sends raw
// bytes rather than chunked framing, and memory stays at one chunk per
// response however large the file. Known trade-offs: the server API takes
// the body as bytes, so there is no sendfile(2) (every byte is copied
// through user space once); and file reads are ordinary blocking pread(2)
// calls on the worker's thread, which is cheap when the file is in the page
// cache and stalls that worker's other connections when the disk is slow.
// If a streamed file shrinks while it is being sent, the stream throws and
// the server closes the connection: the promised Content-Length cannot be
// met, and the client must see an incomplete response, not a short one.
//
// Thread-safety: the returned handler is shared by every worker; it holds
// only the root descriptor and the options, both read-only after
// construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "trellis/http/message.hpp"

namespace trellis::http {

struct static_options {
  // The file served for a request naming a directory ("index.html"). Empty:
  // a directory is a 404. A directory requested without a trailing slash is
  // first redirected (301) to the same path with one.
  std::string index_file = "index.html";
  // Files up to this size are read into the response body in one pread;
  // larger ones are streamed. Default 64 KiB: small enough that a burst of
  // requests for large files cannot pin much memory, large enough that
  // typical pages, styles and icons go out with the head in one write.
  std::size_t stream_threshold = 64 * 1024;
  // Bytes read and written per step of a streamed file. Default 64 KiB:
  // larger chunks mean fewer system calls, smaller ones less memory per
  // connection. REQUIRES: > 0 (serve_directory throws core::config_error,
  // field "chunk_size").
  std::size_t chunk_size = 64 * 1024;
  // Serve entries whose name starts with '.' (".env", ".git/config",
  // ".htpasswd"). Default false: they are a 404, because deployments copy
  // such files into public folders by accident far more often than on
  // purpose.
  bool serve_hidden = false;
  // A Cache-Control value for every file served (for example
  // "public, max-age=3600"); empty sends none, leaving caches to their
  // heuristics. Revalidation with the ETag works either way.
  std::string cache_control;
  // Use openat2(RESOLVE_BENEATH) when the kernel has it. False forces the
  // component-by-component O_NOFOLLOW fallback (which refuses every
  // symlink); for tests and for sandboxes where openat2 misbehaves.
  bool use_openat2 = true;
};

// A handler serving the files under `root` (see the top of this file).
// Throws core::config_error (field "root") when `root` cannot be opened as
// a directory, or (field "chunk_size") when options.chunk_size is 0.
// The handler answers only GET and HEAD (405 with Allow otherwise).
handler serve_directory(std::filesystem::path root, static_options options = {});

// The Content-Type for a file name, from its extension (case-insensitive):
// html, css, js, mjs, json, txt, svg, png, jpg, jpeg, gif, webp, ico, wasm,
// pdf, xml, woff2. Text types carry "; charset=utf-8"; anything else,
// including no extension, is application/octet-stream.
std::string_view content_type_for(std::string_view file_name) noexcept;

// How a Range field applies to a representation of `size` bytes
// (RFC 9110 §14.1.2, §14.2).
struct byte_range_answer {
  enum class kind {
    whole,          // no usable range: send everything with 200
    partial,        // send bytes [first, last] with 206
    unsatisfiable,  // send 416 with "Content-Range: bytes */size"
  };
  kind what = kind::whole;
  std::uint64_t first = 0;  // inclusive, when partial
  std::uint64_t last = 0;   // inclusive, when partial; < size
};

// Interprets a Range field value: one byte range ("bytes=0-99", "bytes=100-",
// "bytes=-100"; unit case-insensitive, whitespace around list elements
// allowed) is partial when it selects something and unsatisfiable when it
// starts at or beyond `size` (or is "-0"). A last position past the end is
// clamped; a suffix longer than the file selects all of it. Several
// ranges, another unit, malformed syntax (including last < first) and
// any range on an empty file give `whole`.
byte_range_answer parse_byte_range(std::string_view value, std::uint64_t size) noexcept;

}  // namespace trellis::http
