#include "trellis/dns/cache.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace trellis::dns {
namespace {

using namespace std::chrono_literals;
using time_point = cache::time_point;

const time_point t0 = time_point{} + 1000h;

name n(std::string_view text) {
  return name::from_text(text).value();
}

question q(std::string_view qname, rtype type = rtype::a) {
  return {n(qname), type, rclass::in};
}

record a_record(std::string_view owner, std::uint32_t ttl, std::uint8_t last = 1) {
  return {n(owner), rtype::a, rclass::in, ttl, a_data{{192, 0, 2, last}}};
}

record cname_record(std::string_view owner, std::string_view target, std::uint32_t ttl) {
  return {n(owner), rtype::cname, rclass::in, ttl, cname_data{n(target)}};
}

record soa_record(std::uint32_t ttl, std::uint32_t minimum) {
  soa_data soa{n("ns.example"), n("admin.example"), 1, 3600, 600, 86400, minimum};
  return {n("example"), rtype::soa, rclass::in, ttl, soa};
}

message response(const question& question, rcode rc, std::vector<record> answers,
                 std::vector<record> authorities = {}) {
  message m;
  m.qr = true;
  m.rcode = rc;
  m.questions.push_back(question);
  m.answers = std::move(answers);
  m.authorities = std::move(authorities);
  return m;
}

TEST(dns_cache, a_positive_answer_lives_for_its_smallest_ttl) {
  cache c;
  const auto www = q("www.example");
  auto ttl = c.insert(www,
                      response(www, rcode::noerror,
                               {a_record("www.example", 300), a_record("www.example", 200, 2)}),
                      t0);
  ASSERT_TRUE(ttl);
  EXPECT_EQ(*ttl, 200u);
  auto hit = c.lookup(www, t0 + 50s);
  ASSERT_TRUE(hit);
  EXPECT_FALSE(hit->negative());
  EXPECT_EQ(hit->age, 50u);
  EXPECT_EQ(hit->ttl_left, 150u);
  const auto records = hit->answers();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].ttl, 250u) << "each TTL is decremented by the age";
  EXPECT_EQ(records[1].ttl, 150u);
  EXPECT_TRUE(c.lookup(www, t0 + 199s));
  EXPECT_FALSE(c.lookup(www, t0 + 200s)) << "gone at expiry";
  EXPECT_EQ(c.size(), 0u) << "expired entries are dropped when serve-stale is off";
}

TEST(dns_cache, lookups_ignore_the_case_of_the_name) {
  cache c;
  const auto www = q("www.example");
  ASSERT_TRUE(c.insert(www, response(www, rcode::noerror, {a_record("www.example", 60)}), t0));
  EXPECT_TRUE(c.lookup(q("WWW.Example."), t0));
  EXPECT_FALSE(c.lookup(q("www.example", rtype::aaaa), t0)) << "the type is part of the key";
}

TEST(dns_cache, ttls_are_clamped_to_the_configured_bounds) {
  cache c({.min_ttl = 30, .max_ttl = 600});
  const auto low = q("low.example");
  const auto high = q("high.example");
  EXPECT_EQ(c.insert(low, response(low, rcode::noerror, {a_record("low.example", 5)}), t0), 30u);
  EXPECT_EQ(c.insert(high, response(high, rcode::noerror, {a_record("high.example", 99999)}), t0),
            600u);
  EXPECT_EQ(c.lookup(high, t0)->answers()[0].ttl, 600u);
}

TEST(dns_cache, ttl_zero_answers_are_not_stored) {
  cache c;
  const auto z = q("zero.example");
  EXPECT_FALSE(c.insert(z, response(z, rcode::noerror, {a_record("zero.example", 0)}), t0));
  EXPECT_FALSE(c.lookup(z, t0));
}

TEST(dns_cache, nxdomain_is_cached_for_the_soa_minimum) {
  cache c;
  const auto missing = q("missing.example");
  auto ttl = c.insert(missing, response(missing, rcode::nxdomain, {}, {soa_record(3600, 60)}), t0);
  ASSERT_TRUE(ttl);
  EXPECT_EQ(*ttl, 60u) << "min(SOA TTL, SOA MINIMUM)";
  auto hit = c.lookup(missing, t0 + 59s);
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->negative());
  EXPECT_EQ(hit->rcode(), rcode::nxdomain);
  ASSERT_EQ(hit->authorities().size(), 1u);
  EXPECT_EQ(hit->authorities()[0].ttl, 1u);
  EXPECT_FALSE(c.lookup(missing, t0 + 60s));
}

TEST(dns_cache, nodata_is_cached_for_the_soa_ttl_when_it_is_smaller) {
  cache c;
  const auto mx = q("www.example", rtype::mx);
  auto ttl = c.insert(mx, response(mx, rcode::noerror, {}, {soa_record(20, 300)}), t0);
  ASSERT_TRUE(ttl);
  EXPECT_EQ(*ttl, 20u);
  auto hit = c.lookup(mx, t0 + 10s);
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->negative());
  EXPECT_EQ(hit->rcode(), rcode::noerror);
}

TEST(dns_cache, negative_ttls_are_capped) {
  cache c({.max_negative_ttl = 100});
  const auto missing = q("missing.example");
  EXPECT_EQ(c.insert(missing, response(missing, rcode::nxdomain, {}, {soa_record(9000, 9000)}), t0),
            100u);
}

TEST(dns_cache, negative_answers_without_an_soa_are_not_cached) {
  cache c;
  const auto missing = q("missing.example");
  EXPECT_FALSE(c.insert(missing, response(missing, rcode::nxdomain, {}), t0));
  const auto mx = q("www.example", rtype::mx);
  EXPECT_FALSE(c.insert(mx, response(mx, rcode::noerror, {}), t0));
  EXPECT_EQ(c.size(), 0u);
}

TEST(dns_cache, failures_and_truncated_answers_are_never_cached) {
  cache c;
  const auto www = q("www.example");
  EXPECT_FALSE(c.insert(www, response(www, rcode::servfail, {}, {soa_record(60, 60)}), t0));
  EXPECT_FALSE(c.insert(www, response(www, rcode::refused, {}), t0));
  auto truncated = response(www, rcode::noerror, {a_record("www.example", 60)});
  truncated.tc = true;
  EXPECT_FALSE(c.insert(www, truncated, t0));
  EXPECT_EQ(c.size(), 0u);
}

TEST(dns_cache, a_cname_chain_is_stored_with_its_answer) {
  cache c;
  const auto alias = q("alias.example");
  auto ttl = c.insert(
      alias,
      response(alias, rcode::noerror,
               {cname_record("alias.example", "www.example", 100), a_record("www.example", 300)}),
      t0);
  ASSERT_TRUE(ttl);
  EXPECT_EQ(*ttl, 100u);
  auto hit = c.lookup(alias, t0);
  ASSERT_TRUE(hit);
  EXPECT_FALSE(hit->negative());
  EXPECT_EQ(hit->answers().size(), 2u);
}

TEST(dns_cache, a_chain_ending_without_data_is_nodata) {
  cache c;
  const auto alias = q("alias.example");
  auto ttl =
      c.insert(alias,
               response(alias, rcode::noerror, {cname_record("alias.example", "www.example", 100)},
                        {soa_record(60, 60)}),
               t0);
  ASSERT_TRUE(ttl);
  EXPECT_EQ(*ttl, 60u);
  EXPECT_TRUE(c.lookup(alias, t0)->negative());
}

TEST(dns_cache, the_least_recently_used_entry_is_evicted_first) {
  cache c({.max_entries = 2});
  const auto a = q("a.example"), b = q("b.example"), d = q("d.example");
  ASSERT_TRUE(c.insert(a, response(a, rcode::noerror, {a_record("a.example", 60)}), t0));
  ASSERT_TRUE(c.insert(b, response(b, rcode::noerror, {a_record("b.example", 60)}), t0));
  ASSERT_TRUE(c.lookup(a, t0));  // a is now more recent than b
  ASSERT_TRUE(c.insert(d, response(d, rcode::noerror, {a_record("d.example", 60)}), t0));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.lookup(a, t0));
  EXPECT_FALSE(c.lookup(b, t0));
  EXPECT_TRUE(c.lookup(d, t0));
  EXPECT_EQ(c.counters().evictions, 1u);
}

TEST(dns_cache, a_new_answer_replaces_the_old_one) {
  cache c;
  const auto www = q("www.example");
  ASSERT_TRUE(c.insert(www, response(www, rcode::noerror, {a_record("www.example", 60, 1)}), t0));
  ASSERT_TRUE(
      c.insert(www, response(www, rcode::noerror, {a_record("www.example", 60, 9)}), t0 + 30s));
  auto hit = c.lookup(www, t0 + 80s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(std::get<a_data>(hit->answers()[0].data).address[3], 9);
  EXPECT_EQ(c.size(), 1u);
}

TEST(dns_cache, serve_stale_returns_expired_data_with_ttl_30_until_the_limit) {
  cache c({.serve_stale = true, .stale_limit = 3600s});
  const auto www = q("www.example");
  ASSERT_TRUE(c.insert(www, response(www, rcode::noerror, {a_record("www.example", 60)}), t0));
  EXPECT_FALSE(c.lookup(www, t0 + 61s)) << "a normal lookup never returns stale data";
  auto stale = c.lookup_stale(www, t0 + 61s);
  ASSERT_TRUE(stale);
  EXPECT_TRUE(stale->stale);
  EXPECT_EQ(stale->ttl_left, 30u);
  EXPECT_EQ(stale->answers()[0].ttl, 30u);
  EXPECT_FALSE(c.lookup_stale(www, t0 + 60s + 3600s)) << "past the stale limit";
  EXPECT_EQ(c.size(), 0u);
}

TEST(dns_cache, lookup_stale_is_off_unless_configured) {
  cache c;
  const auto www = q("www.example");
  ASSERT_TRUE(c.insert(www, response(www, rcode::noerror, {a_record("www.example", 60)}), t0));
  EXPECT_FALSE(c.lookup_stale(www, t0 + 61s));
}

TEST(dns_cache, a_hit_late_in_the_ttl_asks_for_a_refresh_once) {
  cache c({.prefetch_fraction = 0.1});
  const auto www = q("www.example");
  ASSERT_TRUE(c.insert(www, response(www, rcode::noerror, {a_record("www.example", 100)}), t0));
  EXPECT_FALSE(c.lookup(www, t0 + 89s)->refresh_due);
  EXPECT_TRUE(c.lookup(www, t0 + 90s)->refresh_due);
  EXPECT_FALSE(c.lookup(www, t0 + 91s)->refresh_due) << "reported once per entry";
  // A fresh answer re-arms it.
  ASSERT_TRUE(
      c.insert(www, response(www, rcode::noerror, {a_record("www.example", 100)}), t0 + 95s));
  EXPECT_TRUE(c.lookup(www, t0 + 95s + 95s)->refresh_due);
}

TEST(dns_cache, short_lived_entries_are_not_prefetched) {
  cache c({.prefetch_fraction = 0.5, .prefetch_min_ttl = 10});
  const auto www = q("www.example");
  ASSERT_TRUE(c.insert(www, response(www, rcode::noerror, {a_record("www.example", 5)}), t0));
  EXPECT_FALSE(c.lookup(www, t0 + 4s)->refresh_due);
}

TEST(dns_cache, counters_count_hits_and_misses) {
  cache c;
  const auto www = q("www.example");
  EXPECT_FALSE(c.lookup(www, t0));
  ASSERT_TRUE(c.insert(www, response(www, rcode::noerror, {a_record("www.example", 60)}), t0));
  EXPECT_TRUE(c.lookup(www, t0));
  EXPECT_EQ(c.counters().hits, 1u);
  EXPECT_EQ(c.counters().misses, 1u);
  EXPECT_EQ(c.counters().inserts, 1u);
  c.erase(www);
  EXPECT_FALSE(c.lookup(www, t0));
}

TEST(dns_cache, every_entry_stays_findable_through_growth_erasures_and_reuse) {
  cache c({.max_entries = 5'000});
  std::vector<question> qs;
  for (int i = 0; i < 3'000; ++i) qs.push_back(q("h" + std::to_string(i) + ".example"));
  for (const auto& x : qs)
    ASSERT_TRUE(c.insert(x, response(x, rcode::noerror, {a_record(x.qname.to_string(), 60)}), t0));
  // Erase every third: later entries of a probe run must move up, not get lost.
  for (std::size_t i = 0; i < qs.size(); i += 3) c.erase(qs[i]);
  for (std::size_t i = 0; i < qs.size(); ++i)
    EXPECT_EQ(c.lookup(qs[i], t0).has_value(), i % 3 != 0) << i;
  // Freed entries are reused by new names.
  for (std::size_t i = 0; i < qs.size(); i += 3)
    ASSERT_TRUE(c.insert(
        qs[i], response(qs[i], rcode::noerror, {a_record(qs[i].qname.to_string(), 60)}), t0));
  EXPECT_EQ(c.size(), qs.size());
  for (const auto& x : qs) EXPECT_TRUE(c.lookup(x, t0)) << x.qname.to_string();
}

TEST(dns_cache, names_longer_than_the_inline_key_are_keys_too) {
  cache c;
  const std::string label(60, 'x');
  const auto a = q(label + "." + label + ".a.example");
  const auto b = q(label + "." + label + ".b.example");
  ASSERT_TRUE(c.insert(a, response(a, rcode::noerror, {a_record(a.qname.to_string(), 60)}), t0));
  EXPECT_TRUE(c.lookup(q(label + "." + label + ".A.EXAMPLE"), t0)) << "case-insensitive";
  EXPECT_FALSE(c.lookup(b, t0)) << "differs only past the inline part";
}

TEST(dns_cache, names_differing_only_in_case_or_one_octet_are_told_apart) {
  cache c;
  const auto www = q("www.example");
  ASSERT_TRUE(c.insert(www, response(www, rcode::noerror, {a_record("www.example", 60)}), t0));
  EXPECT_TRUE(c.lookup(q("WwW.ExAmPlE"), t0));
  EXPECT_FALSE(c.lookup(q("wwx.example"), t0));
  EXPECT_FALSE(c.lookup(q("ww.example"), t0));
  // '@' and '`' sit next to 'A' and 'Z'...'a' and 'z': not letters, no case.
  const auto at = q("a@.example");
  ASSERT_TRUE(c.insert(at, response(at, rcode::noerror, {a_record("a@.example", 60)}), t0));
  EXPECT_FALSE(c.lookup(q("a`.example"), t0));
  EXPECT_TRUE(c.lookup(q("A@.example"), t0));
}

TEST(dns_cache, eviction_spares_entries_looked_up_since_the_hand_passed) {
  cache c({.max_entries = 4});
  std::vector<question> qs;
  for (int i = 0; i < 4; ++i) {
    qs.push_back(q("n" + std::to_string(i) + ".example"));
    ASSERT_TRUE(c.insert(
        qs.back(), response(qs.back(), rcode::noerror, {a_record(qs.back().qname.to_string(), 60)}),
        t0));
  }
  // n0 and n2 are used; n1 and n3 are not.
  ASSERT_TRUE(c.lookup(qs[0], t0));
  ASSERT_TRUE(c.lookup(qs[2], t0));
  const auto e1 = q("e1.example"), e2 = q("e2.example");
  ASSERT_TRUE(c.insert(e1, response(e1, rcode::noerror, {a_record("e1.example", 60)}), t0));
  ASSERT_TRUE(c.insert(e2, response(e2, rcode::noerror, {a_record("e2.example", 60)}), t0));
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(c.counters().evictions, 2u);
  EXPECT_TRUE(c.lookup(qs[0], t0));
  EXPECT_TRUE(c.lookup(qs[2], t0));
  EXPECT_FALSE(c.lookup(qs[1], t0));
  EXPECT_FALSE(c.lookup(qs[3], t0));
  EXPECT_TRUE(c.lookup(e1, t0));
  EXPECT_TRUE(c.lookup(e2, t0));
}

}  // namespace
}  // namespace trellis::dns
