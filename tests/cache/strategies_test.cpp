#include "trellis/cache/strategies.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace trellis::cache {
namespace {

using namespace std::chrono_literals;

// The system of record: a map, counting what is asked of it. save() can be
// held at a gate, to keep the write-behind writer busy while a test looks.
class fake_store {
 public:
  backing_store<std::string, std::string> store() {
    return {[this](const std::string& k) { return load(k); },
            [this](const std::string& k, const std::string& v) { return save(k, v); }};
  }

  result<std::string> load(const std::string& key) {
    std::lock_guard lock(mutex_);
    ++loads_;
    const auto it = data_.find(key);
    if (it == data_.end()) return unexpected(error::not_found);
    return it->second;
  }

  result<void> save(const std::string& key, const std::string& value) {
    {
      std::unique_lock lock(mutex_);
      ++saves_started_;
      started_.notify_all();
      opened_.wait(lock, [&] { return !held_; });
      if (fail_saves_) return unexpected(std::make_error_code(std::errc::io_error));
      data_[key] = value;
      ++saves_;
    }
    return {};
  }

  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    opened_.notify_all();
  }
  // Waits until `n` saves have started (bounded by a generous deadline, so
  // a broken writer fails the test instead of hanging it).
  bool wait_saves_started(int n) {
    std::unique_lock lock(mutex_);
    return started_.wait_for(lock, 30s, [&] { return saves_started_ >= n; });
  }
  void fail_saves() {
    std::lock_guard lock(mutex_);
    fail_saves_ = true;
  }
  void put(const std::string& key, const std::string& value) {
    std::lock_guard lock(mutex_);
    data_[key] = value;
  }
  std::map<std::string, std::string> data() {
    std::lock_guard lock(mutex_);
    return data_;
  }
  int loads() {
    std::lock_guard lock(mutex_);
    return loads_;
  }
  int saves() {
    std::lock_guard lock(mutex_);
    return saves_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable started_;
  std::condition_variable opened_;
  std::map<std::string, std::string> data_;
  int loads_ = 0;
  int saves_ = 0;
  int saves_started_ = 0;
  bool held_ = false;
  bool fail_saves_ = false;
};

TEST(cache_strategies, cache_aside_fills_on_a_miss_and_invalidates_on_a_write) {
  fake_store db;
  db.put("user:1", "ada");
  sharded_cache<std::string, std::string> cache;
  cache_aside<std::string, std::string> app(cache, db.store());
  EXPECT_EQ(app.get("user:1").value_or(""), "ada");
  EXPECT_EQ(app.get("user:1").value_or(""), "ada");
  EXPECT_EQ(db.loads(), 1);
  EXPECT_EQ(cache.get("user:1"), "ada") << "the application's own cache was filled";

  ASSERT_TRUE(app.set("user:1", "grace"));
  EXPECT_FALSE(cache.peek("user:1")) << "invalidated, not updated";
  EXPECT_EQ(app.get("user:1").value_or(""), "grace");
  EXPECT_EQ(db.loads(), 2);

  EXPECT_EQ(app.get("user:2").error(), error::not_found);
  EXPECT_FALSE(cache.peek("user:2")) << "a failed load leaves nothing behind";
}

TEST(cache_strategies, read_through_loads_through_the_cache) {
  fake_store db;
  db.put("k", "v1");
  read_through<std::string, std::string> rt({}, db.store());
  EXPECT_EQ(rt.get("k").value_or(""), "v1");
  EXPECT_EQ(rt.get("k").value_or(""), "v1");
  EXPECT_EQ(db.loads(), 1);
  ASSERT_TRUE(rt.set("k", "v2"));
  EXPECT_EQ(rt.get("k").value_or(""), "v2");
  EXPECT_EQ(db.loads(), 2);
  EXPECT_EQ(rt.cache().counters().loads, 2u);
}

TEST(cache_strategies, write_through_caches_what_the_store_accepted) {
  fake_store db;
  write_through<std::string, std::string> wt({}, db.store());
  ASSERT_TRUE(wt.set("k", "v"));
  EXPECT_EQ(db.data().at("k"), "v");
  EXPECT_EQ(wt.get("k").value_or(""), "v");
  EXPECT_EQ(db.loads(), 0) << "a read after a write hits";

  db.fail_saves();
  auto r = wt.set("k", "w");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::io_error);
  EXPECT_EQ(wt.get("k").value_or(""), "v") << "the refused value was not cached";
  EXPECT_EQ(db.loads(), 1) << "and the old one was dropped, then read back";
}

TEST(cache_strategies, write_behind_flushes_everything_on_destruction) {
  fake_store db;
  {
    write_behind<std::string, std::string> wb({.queue_capacity = 1000}, db.store());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(wb.set("k" + std::to_string(i), std::to_string(i)));
    ASSERT_TRUE(wb.set("k7", "seven"));
    EXPECT_EQ(wb.get("k7").value_or(""), "seven") << "reads see the write at once";
  }
  const auto data = db.data();
  ASSERT_EQ(data.size(), 100u);
  EXPECT_EQ(data.at("k0"), "0");
  EXPECT_EQ(data.at("k99"), "99");
  EXPECT_EQ(data.at("k7"), "seven");
}

TEST(cache_strategies, write_behind_coalesces_writes_waiting_for_the_same_key) {
  fake_store db;
  db.hold();
  write_behind<std::string, std::string> wb({}, db.store());
  ASSERT_TRUE(wb.set("a", "1"));
  ASSERT_TRUE(db.wait_saves_started(1));  // the writer holds "a" at the gate
  ASSERT_TRUE(wb.set("b", "1"));
  ASSERT_TRUE(wb.set("b", "2"));
  ASSERT_TRUE(wb.set("b", "3"));
  EXPECT_EQ(wb.queued(), 1u);
  db.release();
  wb.flush();
  EXPECT_EQ(db.data().at("b"), "3");
  EXPECT_EQ(db.saves(), 2);
  const auto s = wb.counters();
  EXPECT_EQ(s.queued, 2u);
  EXPECT_EQ(s.coalesced, 2u);
  EXPECT_EQ(s.written, 2u);
}

TEST(cache_strategies, write_behind_rejects_when_full_in_reject_mode) {
  fake_store db;
  db.hold();
  write_behind<std::string, std::string> wb({.queue_capacity = 1, .when_full = overflow::reject},
                                            db.store());
  ASSERT_TRUE(wb.set("a", "1"));
  ASSERT_TRUE(db.wait_saves_started(1));  // "a" left the queue for the gate
  ASSERT_TRUE(wb.set("b", "1"));          // takes the one place
  auto r = wb.set("c", "1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), error::queue_full);
  EXPECT_EQ(r.error(), std::errc::resource_unavailable_try_again);
  EXPECT_FALSE(wb.cache().get_if_present("c")) << "a refused write changes nothing";
  EXPECT_TRUE(wb.set("b", "2")) << "a write to a queued key needs no new place";
  db.release();
  wb.flush();
  EXPECT_EQ(db.data().size(), 2u);
  EXPECT_EQ(db.data().at("b"), "2");
  EXPECT_EQ(wb.counters().rejected, 1u);
}

TEST(cache_strategies, write_behind_blocks_when_full_in_block_mode) {
  fake_store db;
  db.hold();
  write_behind<std::string, std::string> wb({.queue_capacity = 1, .when_full = overflow::block},
                                            db.store());
  ASSERT_TRUE(wb.set("a", "1"));
  ASSERT_TRUE(db.wait_saves_started(1));
  ASSERT_TRUE(wb.set("b", "1"));
  std::atomic<bool> returned{false};
  auto blocked = std::async(std::launch::async, [&] {
    auto r = wb.set("c", "1");
    returned = true;
    return r.has_value();
  });
  // While the store holds "a", the queue stays full and the third write
  // cannot have returned.
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(returned.load());
  db.release();
  EXPECT_TRUE(blocked.get());
  wb.flush();
  EXPECT_EQ(db.data().size(), 3u);
}

TEST(cache_strategies, write_behind_reads_a_queued_value_even_after_eviction) {
  fake_store db;
  db.put("a", "old");
  db.hold();
  write_behind<std::string, std::string> wb(
      {.cache = {.capacity = 1, .policy = eviction::lru, .shards = 1}}, db.store());
  ASSERT_TRUE(wb.set("a", "new"));
  ASSERT_TRUE(db.wait_saves_started(1));  // "a" is being written, not yet stored
  ASSERT_TRUE(wb.set("b", "x"));          // capacity 1: "a" is evicted from the cache
  EXPECT_FALSE(wb.cache().get_if_present("a"));
  EXPECT_EQ(wb.get("a").value_or(""), "new") << "not the store's older value";
  db.release();
}

TEST(cache_strategies, write_behind_reports_failed_writes_and_refuses_after_shutdown) {
  fake_store db;
  db.fail_saves();
  std::mutex m;
  std::vector<std::string> failed;
  write_behind<std::string, std::string> wb({.on_error =
                                                 [&](const std::string& key, std::error_code ec) {
                                                   std::lock_guard lock(m);
                                                   if (ec == std::errc::io_error)
                                                     failed.push_back(key);
                                                 }},
                                            db.store());
  ASSERT_TRUE(wb.set("a", "1"));
  wb.flush();
  {
    std::lock_guard lock(m);
    EXPECT_EQ(failed, std::vector<std::string>{"a"});
  }
  EXPECT_EQ(wb.counters().failed, 1u);
  wb.shutdown();
  EXPECT_EQ(wb.set("b", "1").error(), error::shut_down);
  wb.shutdown();  // idempotent
}

}  // namespace
}  // namespace trellis::cache
