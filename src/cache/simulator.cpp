#include "trellis/cache/simulator.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "slot_list.hpp"
#include "trellis/cache/memory_cache.hpp"

namespace trellis::cache::sim {
namespace {

// Uniform in [0, 1) from 53 random bits.
double uniform(detail::rng& r) {
  return static_cast<double>(r.next() >> 11) * 0x1.0p-53;
}

// Inverse-CDF sampling of a Zipf distribution: the cumulative weights once,
// then a binary search per draw.
class zipf_sampler {
 public:
  zipf_sampler(std::size_t keys, double skew) : cdf_(std::max<std::size_t>(keys, 1)) {
    double sum = 0;
    for (std::size_t k = 0; k < cdf_.size(); ++k) {
      sum += 1.0 / std::pow(static_cast<double>(k + 1), skew);
      cdf_[k] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }
  std::uint64_t draw(detail::rng& r) const {
    const double u = uniform(r);
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<std::uint64_t>(
        std::min<std::ptrdiff_t>(it - cdf_.begin(), static_cast<std::ptrdiff_t>(cdf_.size()) - 1));
  }

 private:
  std::vector<double> cdf_;
};

request at(std::uint64_t key) {
  return {key, object_size(key)};
}

}  // namespace

std::uint32_t object_size(std::uint64_t key) noexcept {
  const double u = static_cast<double>(detail::mix(key ^ 0x243f6a8885a308d3ull) >> 11) * 0x1.0p-53;
  return static_cast<std::uint32_t>(64.0 * std::pow(256.0, u));
}

result<trace> parse_trace(std::string_view text, std::size_t* bad_line) {
  trace out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto skip_space = [&] {
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    };
    skip_space();
    if (line.empty() || line.front() == '#') continue;
    const auto fail = [&]() -> result<trace> {
      if (bad_line) *bad_line = line_no;
      return unexpected(std::make_error_code(std::errc::invalid_argument));
    };
    request r;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), r.key);
    if (ec != std::errc{}) return fail();
    line.remove_prefix(static_cast<std::size_t>(p - line.data()));
    skip_space();
    if (!line.empty()) {
      auto [q, ec2] = std::from_chars(line.data(), line.data() + line.size(), r.size);
      if (ec2 != std::errc{} || r.size == 0) return fail();
      line.remove_prefix(static_cast<std::size_t>(q - line.data()));
      skip_space();
      if (!line.empty()) return fail();
    }
    out.push_back(r);
  }
  return out;
}

std::string format_trace(const trace& t) {
  std::string out;
  out.reserve(t.size() * 12);
  for (const request& r : t) {
    out += std::to_string(r.key);
    out += ' ';
    out += std::to_string(r.size);
    out += '\n';
  }
  return out;
}

trace zipf(std::size_t keys, std::size_t requests, double skew, std::uint64_t seed) {
  const zipf_sampler z(keys, skew);
  detail::rng r(seed);
  trace out;
  out.reserve(requests);
  for (std::size_t i = 0; i < requests; ++i) out.push_back(at(z.draw(r)));
  return out;
}

trace loop(std::size_t keys, std::size_t requests) {
  trace out;
  out.reserve(requests);
  keys = std::max<std::size_t>(keys, 1);
  for (std::size_t i = 0; i < requests; ++i) out.push_back(at(i % keys));
  return out;
}

trace scan_mix(std::size_t keys, std::size_t requests, double skew, double scan_share,
               std::size_t scan_length, std::uint64_t seed) {
  const zipf_sampler z(keys, skew);
  detail::rng r(seed);
  scan_length = std::max<std::size_t>(scan_length, 1);
  // A scan starts before a Zipf request with probability p, so that scans
  // make up scan_share of all requests on average:
  // p * L / (p * L + 1) = share  =>  p = share / (L * (1 - share)).
  const double p = scan_share / (static_cast<double>(scan_length) * (1.0 - scan_share));
  std::uint64_t next_new = keys;  // scan keys lie above the Zipf keys
  trace out;
  out.reserve(requests);
  while (out.size() < requests) {
    if (uniform(r) < p) {
      for (std::size_t i = 0; i < scan_length && out.size() < requests; ++i)
        out.push_back(at(next_new++));
    } else {
      out.push_back(at(z.draw(r)));
    }
  }
  return out;
}

trace one_hit_mix(std::size_t keys, std::size_t requests, double skew, double one_hit_share,
                  std::uint64_t seed) {
  const zipf_sampler z(keys, skew);
  detail::rng r(seed);
  std::uint64_t next_new = keys;
  trace out;
  out.reserve(requests);
  for (std::size_t i = 0; i < requests; ++i)
    out.push_back(uniform(r) < one_hit_share ? at(next_new++) : at(z.draw(r)));
  return out;
}

std::size_t distinct_keys(const trace& t) {
  std::unordered_set<std::uint64_t> seen;
  seen.reserve(t.size() / 4);
  for (const request& r : t) seen.insert(r.key);
  return seen.size();
}

std::uint64_t distinct_bytes(const trace& t) {
  std::unordered_set<std::uint64_t> seen;
  seen.reserve(t.size() / 4);
  std::uint64_t bytes = 0;
  for (const request& r : t)
    if (seen.insert(r.key).second) bytes += r.size;
  return bytes;
}

outcome replay(const trace& t, eviction kind, std::uint64_t capacity, bool by_size,
               std::uint64_t seed) {
  using sim_cache = memory_cache<std::uint64_t, std::uint32_t>;
  sim_cache::options o;
  o.capacity = capacity;
  o.policy = kind;
  o.seed = seed;
  if (by_size) o.weigher = [](const std::uint64_t&, const std::uint32_t& size) { return size; };
  sim_cache c(std::move(o));
  outcome out;
  out.requests = t.size();
  for (const request& r : t) {
    if (c.get(r.key)) {
      ++out.hits;
    } else {
      c.put(r.key, r.size);
    }
  }
  return out;
}

namespace {

// Each request's key as a dense id, and the index of the key's next
// request (t.size() for never).
struct future {
  std::vector<std::uint32_t> id;
  std::vector<std::size_t> next;
  std::size_t keys = 0;
};

future look_ahead(const trace& t) {
  future f;
  std::unordered_map<std::uint64_t, std::uint32_t> ids;
  ids.reserve(t.size() / 4);
  f.id.resize(t.size());
  for (std::size_t i = 0; i < t.size(); ++i)
    f.id[i] = ids.try_emplace(t[i].key, static_cast<std::uint32_t>(ids.size())).first->second;
  f.keys = ids.size();
  f.next.resize(t.size());
  std::vector<std::size_t> seen(f.keys, t.size());
  for (std::size_t i = t.size(); i-- > 0;) {
    f.next[i] = seen[f.id[i]];
    seen[f.id[i]] = i;
  }
  return f;
}

outcome min_pass(const future& f, std::size_t capacity) {
  outcome out;
  out.requests = f.id.size();
  if (capacity == 0) return out;
  std::vector<std::uint8_t> resident(f.keys, 0);
  std::vector<std::size_t> next_of(f.keys, 0);
  // Max-heap on next use; entries made stale by a later hit are skipped
  // when they surface.
  std::priority_queue<std::pair<std::size_t, std::uint32_t>> farthest;
  std::size_t held = 0;
  for (std::size_t i = 0; i < f.id.size(); ++i) {
    const std::uint32_t k = f.id[i];
    if (resident[k]) {
      ++out.hits;
      next_of[k] = f.next[i];
      farthest.emplace(f.next[i], k);
      continue;
    }
    if (held == capacity) {
      while (!resident[farthest.top().second] ||
             next_of[farthest.top().second] != farthest.top().first)
        farthest.pop();
      const auto [victim_next, victim] = farthest.top();
      if (f.next[i] >= victim_next) continue;  // the new key is needed last: do not store it
      farthest.pop();
      resident[victim] = 0;
      --held;
    }
    resident[k] = 1;
    next_of[k] = f.next[i];
    farthest.emplace(f.next[i], k);
    ++held;
  }
  return out;
}

}  // namespace

outcome optimal(const trace& t, std::size_t capacity) {
  return min_pass(look_ahead(t), capacity);
}

std::vector<outcome> optimal(const trace& t, const std::vector<std::size_t>& capacities) {
  const future f = look_ahead(t);
  std::vector<outcome> out;
  for (const std::size_t c : capacities) out.push_back(min_pass(f, c));
  return out;
}

outcome static_optimal(const trace& t, std::size_t capacity) {
  return static_optimal(t, std::vector<std::size_t>{capacity}).front();
}

std::vector<outcome> static_optimal(const trace& t, const std::vector<std::size_t>& capacities) {
  std::unordered_map<std::uint64_t, std::uint64_t> counts;
  counts.reserve(t.size() / 4);
  for (const request& r : t) ++counts[r.key];
  std::vector<std::uint64_t> by_count;
  by_count.reserve(counts.size());
  for (const auto& [key, n] : counts) by_count.push_back(n);
  std::sort(by_count.begin(), by_count.end(), std::greater<>());
  // hits_of_top[n]: hits of the n most requested keys, each missing once.
  std::vector<std::uint64_t> hits_of_top(by_count.size() + 1, 0);
  for (std::size_t i = 0; i < by_count.size(); ++i)
    hits_of_top[i + 1] = hits_of_top[i] + by_count[i] - 1;
  std::vector<outcome> out;
  for (const std::size_t c : capacities)
    out.push_back({t.size(), hits_of_top[std::min(c, by_count.size())]});
  return out;
}

}  // namespace trellis::cache::sim
