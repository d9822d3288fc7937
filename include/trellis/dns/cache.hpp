// The resolver's answer cache: a pure, bounded map from a question to the
// answer a server gave, with DNS time semantics and no I/O.
//
// - Positive answers live for the smallest TTL of their answer records
//   (RFC 1035 §3.2.1, RFC 2181 §5.2: an RRset shares one TTL), clamped to
//   [min_ttl, max_ttl]. The records of a CNAME chain are stored with the
//   answer that ends it, so a hit needs no second lookup.
// - Negative answers (RFC 2308): NXDOMAIN, and NODATA (NOERROR with no
//   record of the type asked, after any CNAME chain) live for
//   min(SOA TTL, SOA MINIMUM) of the SOA in the authority section (§5),
//   capped by max_negative_ttl. Without an SOA they are not cached (§5:
//   "SHOULD NOT"). SERVFAIL, REFUSED, truncated and malformed answers are
//   never stored.
// - A hit reports the entry's age; answers() returns the records with their
//   TTLs decremented by it (RFC 1035 §7.1), so a client downstream never
//   extends a record's life.
// - Prefetch: a hit in the last `prefetch_fraction` of a positive entry's
//   lifetime says so once (refresh_due), so the resolver can refresh a
//   popular name before it expires and no client ever waits for it.
// - Serve-stale (RFC 8767): with serve_stale on, expired entries are kept
//   for `stale_limit` more; lookup() does not return them, lookup_stale()
//   does, for when every server has failed, with TTL 30 (§4).
// - Size: at most max_entries; when full, the CLOCK (second-chance)
//   approximation of least-recently-used picks the victim: a hit sets the
//   entry's referenced bit, and the hand sweeping the slots evicts the first
//   entry whose bit is clear, clearing the bits it passes. An entry looked up
//   since the hand last passed survives; among the others, the order is
//   that of the slots, not of the last use.
//
// Time is a parameter of every call (a steady_clock time point), so tests
// move it at will and the cache never reads a clock.
//
// Cost of a hit: hashing the name (eight octets at a time, lower-cased with
// word arithmetic), one probe of a flat open-addressing index (8-octet
// slots: a hash tag and the entry's number), one case-insensitive compare
// of the name against the key kept inline in the entry (names up to 64
// octets), setting the referenced bit. No allocation, no reference count,
// no list splice; the stored records are not touched until the caller reads
// them.
//
// Thread-safety: NOT thread-safe; one cache per resolver, per worker
// (lookup sets the referenced bit, and may drop an expired entry, so even
// lookups write). A hit points into the cache: valid until the next call
// that is not const (insert, lookup, lookup_stale, erase, clear).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "trellis/codec/dns/message.hpp"

namespace trellis::dns {

// A 64-bit hash of a question, consistent with its operator== (the name
// case-insensitively, type, class): eight octets of the name at a time.
// Odd, never zero. Shared by the cache and the resolver's in-flight table.
std::uint64_t hash_question(const question& q) noexcept;

class cache {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  struct options {
    // Entries kept at most; past it, CLOCK evicts one not used lately.
    // Each costs a few hundred bytes; a busy host resolves a few thousand
    // names.
    std::size_t max_entries = 10'000;
    // Lower bound on a positive TTL in seconds. Raising it cuts queries for
    // names published with TTL 0 or 1, at the price of following changes
    // (failovers) later than their owner asked.
    std::uint32_t min_ttl = 0;
    // Upper bound on any TTL: no answer is trusted longer than a day, so a
    // mistake published with a week-long TTL heals.
    std::uint32_t max_ttl = 86'400;
    // Upper bound on negative TTLs (RFC 2308 §5 suggests one to three hours).
    std::uint32_t max_negative_ttl = 3'600;
    // Keep expired entries for lookup_stale() (RFC 8767). Off by default:
    // stale data is better than none only when the operator says so.
    bool serve_stale = false;
    // How long past expiry an entry may still be served stale (RFC 8767 §5
    // suggests one to three days).
    std::chrono::seconds stale_limit{86'400};
    // The TTL of a stale answer (RFC 8767 §4 recommends 30 s).
    std::uint32_t stale_ttl = 30;
    // A hit in this last fraction of the lifetime reports refresh_due
    // (0: never). 0.1 refreshes a 300 s name when 30 s are left.
    double prefetch_fraction = 0.1;
    // No prefetch for entries living less than this many seconds: a
    // refresh would cost more than it saves.
    std::uint32_t prefetch_min_ttl = 10;
  };

  // What is stored for a question: immutable once stored.
  struct entry_data {
    dns::rcode rcode = dns::rcode::noerror;  // noerror or nxdomain
    std::vector<record> answers;             // TTLs as stored (already clamped)
    std::vector<record> authorities;         // the SOA of a negative answer
    std::uint32_t ttl = 0;                   // lifetime in seconds
    bool negative = false;                   // NXDOMAIN or NODATA
  };

  struct hit {
    // The stored answer. Points into the cache: valid until the next call
    // on it that is not const. Copy what must live longer (answers() does).
    const entry_data* data = nullptr;
    std::uint32_t age = 0;       // whole seconds since stored
    std::uint32_t ttl_left = 0;  // data->ttl - age, or stale_ttl for a stale hit
    bool stale = false;          // from lookup_stale(): expired data
    bool refresh_due = false;    // see options::prefetch_fraction; reported once per entry

    dns::rcode rcode() const noexcept { return data->rcode; }
    bool negative() const noexcept { return data->negative; }
    // The answer (authority) records with TTLs decremented by the age, or
    // set to the stale TTL. These copy; a hot path that only reads
    // addresses uses data->answers and ttl_left instead.
    std::vector<record> answers() const;
    std::vector<record> authorities() const;
  };

  struct stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t stale_hits = 0;
    std::uint64_t inserts = 0;
    std::uint64_t evictions = 0;  // removed for room, not for expiry
  };

  cache() : cache(options{}) {}
  explicit cache(options o);

  // Stores `response`, the answer to `q`, received at `now`. Returns the
  // lifetime given in seconds, or nullopt when the response is not
  // cacheable (see the file comment) — then an older entry for q is kept.
  std::optional<std::uint32_t> insert(const question& q, const message& response, time_point now);

  // A fresh entry for q, or nullopt. Expired entries are not returned (and
  // are dropped unless serve_stale keeps them).
  std::optional<hit> lookup(const question& q, time_point now);

  // An entry for q that expired no more than stale_limit ago (or a fresh
  // one), with TTL stale_ttl. nullopt when serve_stale is off.
  std::optional<hit> lookup_stale(const question& q, time_point now);

  void erase(const question& q);
  void clear();
  std::size_t size() const noexcept { return size_; }
  const stats& counters() const noexcept { return stats_; }
  const options& config() const noexcept { return options_; }

 private:
  // An entry: two cache lines, the first holding all a hit reads but the
  // tail of a long name.
  static constexpr std::size_t inline_key = 72;  // name octets kept in the entry itself
  struct alignas(64) node {
    std::uint64_t hash = 0;
    rtype qtype = rtype::a;
    rclass qclass = rclass::in;
    std::uint8_t key_length = 0;  // wire octets of the name (1..255)
    bool used = false;            // false: on the free list
    bool referenced = false;      // CLOCK: looked up since the hand last passed
    bool prefetch_reported = false;
    bool negative = false;
    std::uint32_t ttl = 0;
    time_point stored;
    time_point expires;
    char key[inline_key];              // the name's wire form, as given, when it fits
    std::unique_ptr<char[]> long_key;  // otherwise here
    std::unique_ptr<const entry_data> data;

    std::string_view name_wire() const noexcept {
      return {long_key ? long_key.get() : key, key_length};
    }
  };
  // One index slot: the low 32 bits of the hash (0 never occurs: hashes
  // are forced odd) and the entry's position in nodes_.
  struct slot {
    std::uint32_t tag = 0;  // 0: empty
    std::uint32_t node = 0;
  };

  // The index slot holding q, or npos.
  std::size_t find_slot(const question& q, std::uint64_t h) const noexcept;
  std::optional<hit> find(const question& q, time_point now, bool stale);
  std::uint32_t take_node();            // a free entry, or a new one
  void unlink(std::size_t slot_index);  // removes the slot and frees its entry
  void insert_slot(std::uint64_t h, std::uint32_t node_index);
  void grow();
  void evict_one();

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  options options_;
  std::vector<slot> index_;  // power-of-two size, linear probing, at most half full
  std::vector<node> nodes_;  // entries, in no order; freed ones listed in free_
  std::vector<std::uint32_t> free_;
  std::size_t size_ = 0;
  std::size_t hand_ = 0;  // CLOCK hand over nodes_
  stats stats_;
};

}  // namespace trellis::dns
