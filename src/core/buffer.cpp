#include "trellis/core/buffer.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "trellis/core/error.hpp"

namespace trellis::core {

byte_buffer::byte_buffer(byte_buffer&& o) noexcept
    : storage_(std::move(o.storage_)),
      capacity_(std::exchange(o.capacity_, 0)),
      begin_(std::exchange(o.begin_, 0)),
      end_(std::exchange(o.end_, 0)),
      max_(o.max_) {}

byte_buffer& byte_buffer::operator=(byte_buffer&& o) noexcept {
  storage_ = std::move(o.storage_);
  capacity_ = std::exchange(o.capacity_, 0);
  begin_ = std::exchange(o.begin_, 0);
  end_ = std::exchange(o.end_, 0);
  max_ = o.max_;
  return *this;
}

result<std::span<char>> byte_buffer::prepare(std::size_t n) {
  const std::size_t used = size();
  if (n > max_ - used) return unexpected(errc::buffer_full);
  if (capacity_ - end_ < n) {
    if (capacity_ - used >= n) {
      // Enough room in total: slide the readable bytes to the front.
      std::memmove(storage_.get(), storage_.get() + begin_, used);
    } else {
      // Grow geometrically (amortised O(1) appends), never past the cap.
      const std::size_t want = std::max({used + n, capacity_ * 2, std::size_t{256}});
      const std::size_t cap = std::min(want, max_);
      auto fresh = std::make_unique_for_overwrite<char[]>(cap);
      if (used) std::memcpy(fresh.get(), storage_.get() + begin_, used);
      storage_ = std::move(fresh);
      capacity_ = cap;
    }
    begin_ = 0;
    end_ = used;
  }
  return std::span<char>(storage_.get() + end_, n);
}

void byte_buffer::consume(std::size_t n) noexcept {
  assert(n <= size());
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;  // empty: next write starts at the front
}

result<void> byte_buffer::append(std::string_view bytes) {
  auto space = prepare(bytes.size());
  if (!space) return unexpected(space.error());
  if (!bytes.empty()) std::memcpy(space->data(), bytes.data(), bytes.size());
  commit(bytes.size());
  return {};
}

bool byte_buffer::release() noexcept {
  if (!empty()) return false;
  storage_.reset();
  capacity_ = begin_ = end_ = 0;
  return true;
}

}  // namespace trellis::core
