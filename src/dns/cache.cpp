#include "trellis/dns/cache.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "wire_compare.hpp"

namespace trellis::dns {
namespace {

// The end of the CNAME chain that starts at `qname` inside `answers`, and
// whether records of `type` exist there. A chain longer than the answer
// section loops; it then ends where the count runs out (nothing found).
struct chain_end {
  name target;
  bool found = false;
};

chain_end follow(const question& q, const std::vector<record>& answers) {
  chain_end out{q.qname, false};
  for (std::size_t hops = 0; hops <= answers.size(); ++hops) {
    const name* next = nullptr;
    for (const record& r : answers) {
      if (!(r.owner == out.target) || r.klass != q.qclass) continue;
      if (r.type == q.qtype || q.qtype == rtype::any) {
        out.found = true;
        return out;
      }
      if (r.type == rtype::cname && !next) next = &std::get<cname_data>(r.data).target;
    }
    if (!next || q.qtype == rtype::cname) return out;
    out.target = *next;
  }
  return out;
}

std::uint32_t seconds_between(cache::time_point from, cache::time_point to) {
  if (to <= from) return 0;
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
  return s > std::numeric_limits<std::uint32_t>::max() ? std::numeric_limits<std::uint32_t>::max()
                                                       : static_cast<std::uint32_t>(s);
}

std::vector<record> aged(const std::vector<record>& records, const cache::hit& h,
                         std::uint32_t stale_ttl) {
  std::vector<record> out = records;
  for (record& r : out) r.ttl = h.stale ? stale_ttl : (r.ttl > h.age ? r.ttl - h.age : 0);
  return out;
}

}  // namespace

std::vector<record> cache::hit::answers() const {
  return aged(data->answers, *this, ttl_left);
}

std::vector<record> cache::hit::authorities() const {
  return aged(data->authorities, *this, ttl_left);
}

namespace {

using detail::iequal_wire;
using detail::load8;
using detail::load_tail;
using detail::lower8;

std::uint64_t mix(std::uint64_t h) noexcept {
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  h ^= h >> 32;
  return h;
}

}  // namespace

std::uint64_t hash_question(const question& q) noexcept {
  const std::string_view w = q.qname.wire();
  std::uint64_t h = w.size() * 0x9e3779b97f4a7c15ull ^ (static_cast<std::uint64_t>(q.qtype) << 16 |
                                                        static_cast<std::uint64_t>(q.qclass));
  std::size_t i = 0;
  for (; i + 8 <= w.size(); i += 8) h = (h ^ lower8(load8(w.data() + i))) * 0x9e3779b97f4a7c15ull;
  if (i < w.size())
    h = (h ^ lower8(load_tail(w.data(), w.size(), w.size() - i))) * 0x9e3779b97f4a7c15ull;
  return mix(h) | 1;  // never 0 in the low 32 bits: tag 0 marks an empty slot
}

cache::cache(options o) : options_(o) {
  options_.max_entries = std::max<std::size_t>(options_.max_entries, 1);
  options_.max_ttl = std::max(options_.max_ttl, options_.min_ttl);
  index_.resize(16);
}

std::size_t cache::find_slot(const question& q, std::uint64_t h) const noexcept {
  const std::size_t mask = index_.size() - 1;
  const auto tag = static_cast<std::uint32_t>(h);
  const std::string_view w = q.qname.wire();
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const slot& s = index_[i];
    if (s.tag == 0) return npos;
    if (s.tag != tag) continue;
    const node& n = nodes_[s.node];
    if (n.qtype == q.qtype && n.qclass == q.qclass && iequal_wire(n.name_wire(), w)) return i;
  }
}

void cache::insert_slot(std::uint64_t h, std::uint32_t node_index) {
  const std::size_t mask = index_.size() - 1;
  std::size_t i = h & mask;
  while (index_[i].tag != 0) i = (i + 1) & mask;
  index_[i] = {static_cast<std::uint32_t>(h), node_index};
}

void cache::grow() {
  std::vector<slot> old(index_.size() * 2);
  old.swap(index_);
  for (const slot& s : old) {
    if (s.tag != 0) insert_slot(nodes_[s.node].hash, s.node);
  }
}

// Backward-shift deletion (linear probing without tombstones): later
// entries of the probe run move up into the hole when their home slot
// allows it.
void cache::unlink(std::size_t i) {
  const std::size_t mask = index_.size() - 1;
  const std::uint32_t freed = index_[i].node;
  for (std::size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    const slot s = index_[j];
    if (s.tag == 0) break;
    const std::size_t home = s.tag & mask;
    // s may fill the hole at i when its home is not in (i, j] (cyclically).
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    index_[i] = s;
    i = j;
  }
  index_[i] = {};
  node& n = nodes_[freed];
  n.used = false;
  n.long_key.reset();
  n.data.reset();
  free_.push_back(freed);
  --size_;
}

std::uint32_t cache::take_node() {
  if (!free_.empty()) {
    const std::uint32_t i = free_.back();
    free_.pop_back();
    return i;
  }
  nodes_.emplace_back();
  return static_cast<std::uint32_t>(nodes_.size() - 1);
}

void cache::evict_one() {
  for (;;) {
    if (hand_ >= nodes_.size()) hand_ = 0;
    node& n = nodes_[hand_++];
    if (!n.used) continue;
    if (n.referenced) {
      n.referenced = false;
      continue;
    }
    const std::size_t mask = index_.size() - 1;
    const auto me = static_cast<std::uint32_t>(hand_ - 1);
    for (std::size_t i = n.hash & mask;; i = (i + 1) & mask) {
      if (index_[i].tag != 0 && index_[i].node == me) {
        unlink(i);
        break;
      }
    }
    ++stats_.evictions;
    return;
  }
}

std::optional<std::uint32_t> cache::insert(const question& q, const message& response,
                                           time_point now) {
  if (response.tc || response.opcode != opcode::query) return std::nullopt;
  if (response.rcode != rcode::noerror && response.rcode != rcode::nxdomain) return std::nullopt;

  auto data = std::make_unique<entry_data>();
  data->rcode = response.rcode;
  const chain_end end = follow(q, response.answers);
  data->negative = response.rcode == rcode::nxdomain || !end.found;

  // Only the records that belong to the answer: the chain and the final RRset.
  for (const record& r : response.answers) {
    if (r.klass != q.qclass) continue;
    data->answers.push_back(r);
  }

  std::uint32_t ttl = std::numeric_limits<std::uint32_t>::max();
  if (data->negative) {
    const record* soa = nullptr;
    for (const record& r : response.authorities) {
      if (r.type == rtype::soa && std::holds_alternative<soa_data>(r.data)) {
        soa = &r;
        break;
      }
    }
    if (!soa) return std::nullopt;  // RFC 2308 §5
    const auto& sd = std::get<soa_data>(soa->data);
    ttl = std::min({soa->ttl, sd.minimum, options_.max_negative_ttl});
    for (const record& r : data->answers) ttl = std::min(ttl, r.ttl);
    record stored = *soa;
    stored.ttl = ttl;
    data->authorities.push_back(std::move(stored));
    for (record& r : data->answers) r.ttl = std::min(r.ttl, options_.max_negative_ttl);
  } else {
    for (record& r : data->answers) {
      r.ttl = std::clamp(r.ttl, options_.min_ttl, options_.max_ttl);
      ttl = std::min(ttl, r.ttl);
    }
  }
  if (ttl == 0) return std::nullopt;  // TTL 0: use once, never store (RFC 1035 §3.2.1)
  data->ttl = ttl;

  const std::uint64_t h = hash_question(q);
  const std::size_t at = find_slot(q, h);
  std::uint32_t ni = 0;
  if (at != npos) {
    ni = index_[at].node;
  } else {
    if (size_ >= options_.max_entries) evict_one();
    if ((size_ + 1) * 2 > index_.size()) grow();
    ni = take_node();
    node& n = nodes_[ni];
    const std::string_view w = q.qname.wire();
    n.hash = h;
    n.qtype = q.qtype;
    n.qclass = q.qclass;
    n.key_length = static_cast<std::uint8_t>(w.size());
    if (w.size() <= inline_key) {
      std::memcpy(n.key, w.data(), w.size());
    } else {
      n.long_key = std::make_unique<char[]>(w.size());
      std::memcpy(n.long_key.get(), w.data(), w.size());
    }
    n.used = true;
    n.referenced = false;
    insert_slot(h, ni);
    ++size_;
  }
  node& n = nodes_[ni];
  n.ttl = ttl;
  n.negative = data->negative;
  n.data = std::move(data);
  n.stored = now;
  n.expires = now + std::chrono::seconds(ttl);
  n.prefetch_reported = false;
  ++stats_.inserts;
  return ttl;
}

std::optional<cache::hit> cache::find(const question& q, time_point now, bool stale) {
  const std::size_t at = find_slot(q, hash_question(q));
  if (at == npos) return std::nullopt;
  node& n = nodes_[index_[at].node];
  const bool expired = now >= n.expires;
  if (expired) {
    const bool keep = options_.serve_stale && now < n.expires + options_.stale_limit;
    if (!keep) {
      unlink(at);
      return std::nullopt;
    }
    if (!stale) return std::nullopt;
  }
  n.referenced = true;
  hit h;
  h.data = n.data.get();
  h.age = seconds_between(n.stored, now);
  if (expired) {
    h.stale = true;
    h.ttl_left = options_.stale_ttl;
    return h;
  }
  h.ttl_left = n.ttl > h.age ? n.ttl - h.age : 0;
  if (options_.prefetch_fraction > 0 && !n.prefetch_reported && !n.negative &&
      n.ttl >= options_.prefetch_min_ttl &&
      static_cast<double>(h.ttl_left) <= static_cast<double>(n.ttl) * options_.prefetch_fraction) {
    n.prefetch_reported = true;
    h.refresh_due = true;
  }
  return h;
}

std::optional<cache::hit> cache::lookup(const question& q, time_point now) {
  auto h = find(q, now, false);
  ++(h ? stats_.hits : stats_.misses);
  return h;
}

std::optional<cache::hit> cache::lookup_stale(const question& q, time_point now) {
  if (!options_.serve_stale) return std::nullopt;
  auto h = find(q, now, true);
  if (h && h->stale) ++stats_.stale_hits;
  return h;
}

void cache::erase(const question& q) {
  const std::size_t at = find_slot(q, hash_question(q));
  if (at != npos) unlink(at);
}

void cache::clear() {
  index_.assign(16, slot{});
  nodes_.clear();
  free_.clear();
  size_ = 0;
  hand_ = 0;
}

}  // namespace trellis::dns
