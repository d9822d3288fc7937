// Error codes of the cache layer (cache::error).
//
// Loaders and backing stores report their own failures with their own
// codes, which the cache passes through untouched; this category adds what
// the cache layer itself decides: a write-behind queue is full, a cache was
// shut down, and a conventional "no such key" for stores to return.
//
// Thread-safety: immutable singleton; safe everywhere.
#pragma once

#include <system_error>

namespace trellis::cache {

enum class error {
  not_found = 1,  // the backing store has no value for the key
  queue_full,     // a write-behind queue refused a write (overflow::reject)
  shut_down,      // the cache or its writer was shut down
};

const std::error_category& cache_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), cache_category()};
}

}  // namespace trellis::cache

template <>
struct std::is_error_code_enum<trellis::cache::error> : std::true_type {};
