// The constructors of the policies, one per file; make_policy (policy.cpp)
// chooses among them. Private to src/cache.
#pragma once

#include <cstdint>
#include <memory>

#include "trellis/cache/policy.hpp"

namespace trellis::cache::detail {

std::unique_ptr<policy> make_lru();
std::unique_ptr<policy> make_lfu();
std::unique_ptr<policy> make_fifo();
std::unique_ptr<policy> make_random(std::uint64_t seed);
std::unique_ptr<policy> make_sieve();
std::unique_ptr<policy> make_s3fifo(std::uint64_t capacity);
std::unique_ptr<policy> make_w_tinylfu(std::uint64_t capacity, std::uint64_t seed);

}  // namespace trellis::cache::detail
