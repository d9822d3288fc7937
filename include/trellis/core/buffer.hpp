// byte_buffer: a contiguous, growable byte buffer with a hard cap.
//
// The buffer between a socket and a sans-I/O codec. Bytes are appended at
// the back (prepare + commit, or append) and consumed from the front, and
// the readable bytes are always one contiguous span, which is what a parser
// wants: it can hand out string_views into the buffer instead of copying.
//
//   [ consumed | readable: data() | writable: prepare(n) ]
//
// Growth doubles the capacity up to max_size(); past that, prepare() and
// append() report core::errc::buffer_full instead of growing, which is how
// every trellis limit (header size, body chunk, datagram) is enforced. When
// the free space at the back is short, readable bytes are first moved to the
// front (compaction) before any reallocation. release() frees the storage
// of an empty buffer, so an idle connection holds no buffer at all.
//
// Thread-safety: none; a buffer belongs to one connection at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "trellis/core/result.hpp"

namespace trellis::core {

class byte_buffer {
 public:
  // REQUIRES: max_size > 0. Allocates nothing until the first write.
  explicit byte_buffer(std::size_t max_size = 1 << 20) noexcept : max_(max_size) {}

  byte_buffer(byte_buffer&& o) noexcept;
  byte_buffer& operator=(byte_buffer&& o) noexcept;
  byte_buffer(const byte_buffer&) = delete;
  byte_buffer& operator=(const byte_buffer&) = delete;

  // The readable bytes, contiguous. Valid until the next non-const call.
  std::string_view view() const noexcept { return {storage_.get() + begin_, end_ - begin_}; }
  std::span<const char> data() const noexcept { return {storage_.get() + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t max_size() const noexcept { return max_; }

  // A writable span of exactly `n` bytes after the readable ones; the bytes
  // count once commit()ed. Returns errc::buffer_full when size() + n would
  // exceed max_size() (nothing changes then).
  result<std::span<char>> prepare(std::size_t n);
  // REQUIRES: n <= the size of the last prepare().
  void commit(std::size_t n) noexcept { end_ += n; }
  // Drops `n` readable bytes from the front. REQUIRES: n <= size().
  void consume(std::size_t n) noexcept;
  // Copies `bytes` to the back: prepare + copy + commit.
  result<void> append(std::string_view bytes);
  // Forgets every readable byte but keeps the storage for reuse.
  void clear() noexcept { begin_ = end_ = 0; }
  // Frees the storage if the buffer is empty; returns whether it did.
  bool release() noexcept;

 private:
  std::unique_ptr<char[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t max_;
};

}  // namespace trellis::core
