#include "trellis/dns/cache.hpp"

#include <algorithm>
#include <limits>

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

std::size_t cache::question_hash::operator()(const question& q) const {
  const std::size_t h = q.qname.hash();
  const std::size_t t =
      static_cast<std::size_t>(q.qtype) << 16 | static_cast<std::size_t>(q.qclass);
  return h ^ (t * 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
}

cache::cache(options o) : options_(o) {
  options_.max_entries = std::max<std::size_t>(options_.max_entries, 1);
  options_.max_ttl = std::max(options_.max_ttl, options_.min_ttl);
}

std::optional<std::uint32_t> cache::insert(const question& q, const message& response,
                                           time_point now) {
  if (response.tc || response.opcode != opcode::query) return std::nullopt;
  if (response.rcode != rcode::noerror && response.rcode != rcode::nxdomain) return std::nullopt;

  auto data = std::make_shared<entry_data>();
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

  const time_point expires = now + std::chrono::seconds(ttl);
  auto it = map_.find(q);
  if (it != map_.end()) {
    node& n = *it->second;
    n.data = std::move(data);
    n.stored = now;
    n.expires = expires;
    n.prefetch_reported = false;
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    lru_.push_front(node{q, std::move(data), now, expires, false});
    map_.emplace(q, lru_.begin());
    while (map_.size() > options_.max_entries) {
      remove(std::prev(lru_.end()));
      ++stats_.evictions;
    }
  }
  ++stats_.inserts;
  return ttl;
}

void cache::remove(list::iterator it) {
  map_.erase(it->k);
  lru_.erase(it);
}

std::optional<cache::hit> cache::find(const question& q, time_point now, bool stale) {
  auto it = map_.find(q);
  if (it == map_.end()) return std::nullopt;
  node& n = *it->second;
  const bool expired = now >= n.expires;
  if (expired) {
    const bool keep = options_.serve_stale && now < n.expires + options_.stale_limit;
    if (!keep) {
      remove(it->second);
      return std::nullopt;
    }
    if (!stale) return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  hit h;
  h.data = n.data;
  if (expired) {
    h.stale = true;
    h.age = seconds_between(n.stored, now);
    h.ttl_left = options_.stale_ttl;
    return h;
  }
  h.age = seconds_between(n.stored, now);
  h.ttl_left = n.data->ttl > h.age ? n.data->ttl - h.age : 0;
  if (options_.prefetch_fraction > 0 && !n.prefetch_reported && !n.data->negative &&
      n.data->ttl >= options_.prefetch_min_ttl &&
      static_cast<double>(h.ttl_left) <=
          static_cast<double>(n.data->ttl) * options_.prefetch_fraction) {
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
  auto it = map_.find(q);
  if (it != map_.end()) remove(it->second);
}

void cache::clear() {
  map_.clear();
  lru_.clear();
}

}  // namespace trellis::dns
