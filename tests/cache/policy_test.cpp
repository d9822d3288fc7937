#include "trellis/cache/policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

namespace trellis::cache {
namespace {

// Distinct, well-spread hashes for the slots of a test, so that the ghost
// queue and the frequency sketch see different keys.
std::uint64_t hash_of(slot s) {
  return (static_cast<std::uint64_t>(s) + 1) * 0x9e3779b97f4a7c15ull;
}

void insert_all(policy& p, std::initializer_list<slot> slots) {
  for (const slot s : slots) p.insert(s, hash_of(s), 1);
}

std::vector<slot> evict_all(policy& p) {
  std::vector<slot> order;
  while (p.size() > 0) order.push_back(p.evict());
  return order;
}

enum : slot { A, B, C, D, E, F, G };

TEST(cache_policy, names_round_trip) {
  for (const eviction e : all_evictions) {
    const auto parsed = parse_eviction(to_string(e));
    ASSERT_TRUE(parsed) << to_string(e);
    EXPECT_EQ(*parsed, e);
    EXPECT_EQ(make_policy(e, 10)->kind(), e);
  }
  EXPECT_EQ(parse_eviction("s3fifo"), eviction::s3fifo);
  EXPECT_EQ(parse_eviction("w_tinylfu"), eviction::w_tinylfu);
  EXPECT_FALSE(parse_eviction("mru"));
}

TEST(cache_policy, lru_evicts_the_least_recently_used) {
  auto p = make_policy(eviction::lru, 3);
  insert_all(*p, {A, B, C});
  p->access(A);  // order of use: B, C, A
  EXPECT_EQ(evict_all(*p), (std::vector<slot>{B, C, A}));
}

TEST(cache_policy, fifo_ignores_hits) {
  auto p = make_policy(eviction::fifo, 3);
  insert_all(*p, {A, B, C});
  p->access(A);
  p->access(A);
  EXPECT_EQ(evict_all(*p), (std::vector<slot>{A, B, C}));
}

TEST(cache_policy, lfu_evicts_the_least_frequent_and_on_a_tie_the_least_recent) {
  auto p = make_policy(eviction::lfu, 4);
  insert_all(*p, {A, B, C});
  p->access(B);  // B reaches 2 hits before A does
  p->access(A);
  p->access(A);  // counts: A 3, B 2, C 1
  EXPECT_EQ(p->evict(), C);
  insert_all(*p, {D});  // count 1: the least frequent, though the newest
  EXPECT_EQ(p->evict(), D);
  p->access(B);  // B: 3, after A got there: A is the less recent of the two
  EXPECT_EQ(p->evict(), A);
  EXPECT_EQ(p->evict(), B);
  EXPECT_EQ(p->size(), 0u);
}

TEST(cache_policy, lfu_erase_keeps_the_buckets_consistent) {
  auto p = make_policy(eviction::lfu, 4);
  insert_all(*p, {A, B, C});
  p->access(B);
  p->erase(B);  // its count-2 bucket empties and goes
  p->access(C);
  p->access(C);
  EXPECT_EQ(evict_all(*p), (std::vector<slot>{A, C}));
}

// The hand, worked by hand. List from oldest to newest: A B C D E; A and C
// visited.
//   evict: hand starts at the tail A: visited -> cleared, on to B: not
//          visited -> B goes; the hand rests on C.
//   insert F (at the head).
//   evict: from C (not from the tail: A, now unvisited, is passed over
//          because the hand is past it): C visited -> cleared; D goes;
//          the hand rests on E.
//   access A again.
//   evict: E goes; the hand rests on F.
//   evict: F goes; it was the newest, so the hand wraps to the tail.
//   evict: A visited -> cleared; C (cleared on the first pass) goes.
TEST(cache_policy, sieve_hand_keeps_its_place_between_evictions) {
  auto p = make_policy(eviction::sieve, 5);
  insert_all(*p, {A, B, C, D, E});
  p->access(A);
  p->access(C);
  EXPECT_EQ(p->evict(), B);
  insert_all(*p, {F});
  EXPECT_EQ(p->evict(), D) << "a hand restarting from the tail would have taken A";
  p->access(A);
  EXPECT_EQ(p->evict(), E);
  EXPECT_EQ(p->evict(), F);
  EXPECT_EQ(p->evict(), C) << "the hand wrapped to the tail and spared visited A once more";
  EXPECT_EQ(p->evict(), A);
}

TEST(cache_policy, sieve_survivors_stay_in_place_while_new_entries_go_first) {
  // A hit entry is not moved to the head (unlike LRU or CLOCK's
  // re-insertion): once the hand is past it, the entries inserted later are
  // examined before it comes round again.
  auto p = make_policy(eviction::sieve, 4);
  insert_all(*p, {A, B});
  p->access(A);
  EXPECT_EQ(p->evict(), B);  // A cleared, B goes, hand wraps (B was the newest)
  insert_all(*p, {C, D});
  p->access(C);
  p->access(D);
  p->access(A);
  // Hand at the tail A: all three visited -> cleared in turn; A goes.
  EXPECT_EQ(p->evict(), A);
}

TEST(cache_policy, sieve_erasing_the_entry_under_the_hand_moves_the_hand_on) {
  auto p = make_policy(eviction::sieve, 4);
  insert_all(*p, {A, B, C, D});
  p->access(A);
  EXPECT_EQ(p->evict(), B);  // hand now on C
  p->erase(C);               // hand moves to D
  p->access(D);
  EXPECT_EQ(p->evict(), A) << "D cleared, wrap to A (cleared on the first pass)";
}

TEST(cache_policy, s3fifo_one_hit_keys_leave_from_the_small_queue) {
  // Capacity 10: small queue 1, main queue 9.
  auto p = make_policy(eviction::s3fifo, 10);
  insert_all(*p, {A, B});
  p->access(A);  // hit while in the small queue: A will move to main
  EXPECT_EQ(p->evict(), B) << "A went to main; B, never hit, is evicted";
  EXPECT_EQ(p->size(), 1u);
  EXPECT_EQ(p->evict(), A) << "main's only entry, its frequency cleared by the move";
}

TEST(cache_policy, s3fifo_a_key_remembered_by_the_ghost_goes_straight_to_main) {
  auto p = make_policy(eviction::s3fifo, 10);
  insert_all(*p, {A, B});
  EXPECT_EQ(p->evict(), A);     // evicted from small: its hash enters the ghost queue
  p->insert(E, hash_of(A), 1);  // key A comes back (in a new slot): to main
  insert_all(*p, {C});
  // Small queue: B, C (oldest first); main: the returned key. A plain FIFO
  // would now evict B, then the returned key, then C.
  EXPECT_EQ(evict_all(*p), (std::vector<slot>{B, C, E}));
}

TEST(cache_policy, s3fifo_main_queue_reinserts_entries_with_frequency) {
  auto p = make_policy(eviction::s3fifo, 10);
  // Three keys reach main (hit while small), then are hit again there.
  insert_all(*p, {A, B, C});
  p->access(A);
  p->access(B);
  p->access(C);
  insert_all(*p, {D});
  EXPECT_EQ(p->evict(), D) << "A, B and C move to main on the way";
  p->access(B);  // B frequency 1 in main
  // Main, oldest first: A B C. A (0) goes; then C (B is re-inserted).
  EXPECT_EQ(p->evict(), A);
  EXPECT_EQ(p->evict(), C);
  EXPECT_EQ(p->evict(), B);
}

TEST(cache_policy, w_tinylfu_turns_away_a_newcomer_less_popular_than_its_victim) {
  // Capacity 100: window 1, main 99.
  auto p = make_policy(eviction::w_tinylfu, 100);
  for (slot s = 0; s < 100; ++s) p->insert(s, hash_of(s), 1);
  for (int round = 0; round < 3; ++round)
    for (slot s = 0; s < 99; ++s) p->access(s);
  p->insert(100, hash_of(100), 1);  // the cache is now over by one
  // The window's oldest (99, seen once) meets probation's oldest (seen 4
  // times): the newcomer loses.
  EXPECT_EQ(p->evict(), 99u);
}

TEST(cache_policy, w_tinylfu_admits_a_newcomer_more_popular_than_its_victim) {
  auto p = make_policy(eviction::w_tinylfu, 100);
  for (slot s = 0; s < 100; ++s) p->insert(s, hash_of(s), 1);
  for (int round = 0; round < 5; ++round) p->access(99);  // in the window, hot
  p->insert(100, hash_of(100), 1);
  // Candidate 99 (6 requests) beats probation's oldest, slot 0 (1 request).
  EXPECT_EQ(p->evict(), 0u);
}

TEST(cache_policy, random_is_repeatable_for_a_seed_and_evicts_each_slot_once) {
  const auto run = [](std::uint64_t seed) {
    auto p = make_policy(eviction::random, 50, seed);
    for (slot s = 0; s < 50; ++s) p->insert(s, hash_of(s), 1);
    p->erase(7);
    return evict_all(*p);
  };
  const auto first = run(42);
  EXPECT_EQ(first, run(42));
  EXPECT_NE(first, run(43));
  ASSERT_EQ(first.size(), 49u);
  std::set<slot> seen(first.begin(), first.end());
  EXPECT_EQ(seen.size(), 49u);
  EXPECT_FALSE(seen.contains(7));
}

TEST(cache_policy, every_policy_evicts_exactly_what_it_tracks) {
  for (const eviction e : all_evictions) {
    auto p = make_policy(e, 8, 3);
    for (slot s = 0; s < 20; ++s) {
      p->insert(s, hash_of(s), 1);
      if (s % 3 == 0) p->access(s);
      if (s % 4 == 1) p->access(s / 2);
    }
    p->erase(5);
    p->erase(19);
    auto order = evict_all(*p);
    std::sort(order.begin(), order.end());
    std::vector<slot> expected;
    for (slot s = 0; s < 20; ++s)
      if (s != 5 && s != 19) expected.push_back(s);
    EXPECT_EQ(order, expected) << to_string(e);
  }
}

TEST(cache_policy, slots_are_reusable_after_eviction) {
  for (const eviction e : all_evictions) {
    auto p = make_policy(e, 4, 1);
    insert_all(*p, {A, B});
    const slot gone = p->evict();
    p->insert(gone, hash_of(gone) + 1, 1);
    p->access(gone);
    EXPECT_EQ(p->size(), 2u) << to_string(e);
    EXPECT_EQ(evict_all(*p).size(), 2u) << to_string(e);
  }
}

}  // namespace
}  // namespace trellis::cache
