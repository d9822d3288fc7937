#include "trellis/cache/policy.hpp"

#include <algorithm>

#include "policies.hpp"

namespace trellis::cache {

std::string_view to_string(eviction e) noexcept {
  switch (e) {
    case eviction::lru: return "lru";
    case eviction::lfu: return "lfu";
    case eviction::fifo: return "fifo";
    case eviction::random: return "random";
    case eviction::sieve: return "sieve";
    case eviction::s3fifo: return "s3-fifo";
    case eviction::w_tinylfu: return "w-tinylfu";
  }
  return "unknown";
}

std::optional<eviction> parse_eviction(std::string_view text) noexcept {
  if (text == "s3fifo") return eviction::s3fifo;
  if (text == "w_tinylfu" || text == "wtinylfu") return eviction::w_tinylfu;
  for (const eviction e : all_evictions)
    if (text == to_string(e)) return e;
  return std::nullopt;
}

std::unique_ptr<policy> make_policy(eviction kind, std::uint64_t capacity, std::uint64_t seed) {
  capacity = std::max<std::uint64_t>(capacity, 1);
  switch (kind) {
    case eviction::lru: return detail::make_lru();
    case eviction::lfu: return detail::make_lfu();
    case eviction::fifo: return detail::make_fifo();
    case eviction::random: return detail::make_random(seed);
    case eviction::sieve: return detail::make_sieve();
    case eviction::s3fifo: return detail::make_s3fifo(capacity);
    case eviction::w_tinylfu: return detail::make_w_tinylfu(capacity, seed);
  }
  return detail::make_lru();
}

}  // namespace trellis::cache
