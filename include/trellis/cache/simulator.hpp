// Hit-ratio simulation: traces, workload generators, replay through the
// policies, and Belady's optimal as the bound no policy can beat.
//
// A trace is a sequence of requests (key, size). Text form: one request a
// line, "key size" (size optional, default 1), blank lines and lines
// starting with '#' ignored:
//
//   # key size
//   17 512
//   4 2048
//
// The generators are deterministic for a seed (their own splitmix64, not
// the standard library's distributions, whose output differs between
// implementations), so a table printed in the docs can be reproduced
// exactly. Object sizes are drawn per key, log-uniform from 64 bytes to
// 16 KiB, for replays that count capacity in bytes.
//
// replay() drives a real memory_cache (get, and put on a miss), so what it
// measures is what the cache does. optimal() is Belady's MIN for a cache
// counted in entries: on a miss with the cache full, it evicts the entry
// whose next request is farthest in the future, or does not store the new
// key when that key's own next request is farther still. No online policy
// can hit more often, so it is the upper bound of every table.
//
// bench/cache/hit_ratio.cpp (trellis-hit-ratio) prints the tables.
//
// Thread-safety: free functions over values; safe everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/cache/policy.hpp"
#include "trellis/core/result.hpp"

namespace trellis::cache::sim {

struct request {
  std::uint64_t key = 0;
  std::uint32_t size = 1;
};
using trace = std::vector<request>;

// Parses the text form. On a malformed line returns
// std::errc::invalid_argument and, when bad_line is given, sets it to the
// line's number (1-based).
result<trace> parse_trace(std::string_view text, std::size_t* bad_line = nullptr);
// The text form, one "key size" line per request.
std::string format_trace(const trace& t);

// The size generated for a key: log-uniform in [64, 16384], fixed per key.
std::uint32_t object_size(std::uint64_t key) noexcept;

// `requests` requests over keys 0..keys-1, key k with probability
// proportional to 1/(k+1)^skew (Zipf). REQUIRES: keys >= 1, skew >= 0.
trace zipf(std::size_t keys, std::size_t requests, double skew, std::uint64_t seed);

// Keys 0, 1, ..., keys-1, 0, 1, ... for `requests` requests: a loop, the
// pattern that gives LRU and FIFO no hits at all when it does not fit.
trace loop(std::size_t keys, std::size_t requests);

// Zipf requests with sequential scans mixed in: a share `scan_share` of
// the requests belong to scans, each `scan_length` keys never seen before
// or after (a batch job or a crawler reading through). REQUIRES:
// 0 <= scan_share < 1, scan_length >= 1.
trace scan_mix(std::size_t keys, std::size_t requests, double skew, double scan_share,
               std::size_t scan_length, std::uint64_t seed);

// Zipf requests where each request is, with probability `one_hit_share`, a
// key requested only this once (one-hit wonders, as at a CDN edge).
trace one_hit_mix(std::size_t keys, std::size_t requests, double skew, double one_hit_share,
                  std::uint64_t seed);

struct outcome {
  std::uint64_t requests = 0;
  std::uint64_t hits = 0;
  double hit_ratio() const noexcept {
    return requests ? static_cast<double>(hits) / static_cast<double>(requests) : 0.0;
  }
  double miss_ratio() const noexcept { return requests ? 1.0 - hit_ratio() : 0.0; }
};

std::size_t distinct_keys(const trace& t);
// Sum of the sizes of the distinct keys (each key's size at its first
// request).
std::uint64_t distinct_bytes(const trace& t);

// Replays t through a memory_cache of `capacity` with policy `kind`;
// capacity counts entries, or bytes (request sizes) when by_size.
outcome replay(const trace& t, eviction kind, std::uint64_t capacity, bool by_size = false,
               std::uint64_t seed = 1);

// Belady's MIN (with bypass) for a cache of `capacity` entries.
outcome optimal(const trace& t, std::size_t capacity);
// The same for several capacities, sharing the pass that finds each
// request's next use.
std::vector<outcome> optimal(const trace& t, const std::vector<std::size_t>& capacities);

// The best fixed set: the `capacity` keys requested most often in the whole
// trace, each stored at its first request and never evicted; every other
// key misses. When requests are independent draws from one popularity
// distribution (the Zipf generators), no online policy does better over a
// long trace, so the distance between this and optimal() is the part of
// the gap no policy can close.
outcome static_optimal(const trace& t, std::size_t capacity);
std::vector<outcome> static_optimal(const trace& t, const std::vector<std::size_t>& capacities);

}  // namespace trellis::cache::sim
