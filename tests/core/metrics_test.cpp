#include "trellis/core/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "trellis/core/error.hpp"

namespace trellis::core {
namespace {

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

// The documented definition of percentile p over raw data: the value of rank
// ceil(p * n / 100) (1-based, at least 1) in sorted order.
std::uint64_t true_percentile(const std::vector<std::uint64_t>& sorted, double p) {
  const double exact = std::ceil(p * static_cast<double>(sorted.size()) / 100.0);
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(exact));
  return sorted[std::min<std::size_t>(rank, sorted.size()) - 1];
}

// Checks the documented bound: the estimate is never below the true value
// and exceeds it by less than 1/16 of it.
void expect_within_bucket_error(const histogram& h, std::vector<std::uint64_t> values) {
  std::sort(values.begin(), values.end());
  for (const double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const std::uint64_t truth = true_percentile(values, p);
    const std::uint64_t estimate = h.percentile(p);
    EXPECT_GE(estimate, truth) << "p" << p;
    EXPECT_LE(estimate - truth, truth / 16) << "p" << p << " true " << truth << " got " << estimate;
  }
}

// --- histogram_layout ---------------------------------------------------------

TEST(histogram, bucket_bounds_contain_their_values_and_tile_the_whole_range) {
  // Adjacent buckets touch with no gap and no overlap, from 0 to UINT64_MAX.
  EXPECT_EQ(histogram_layout::lower_bound(0), 0u);
  for (std::size_t i = 1; i < histogram_layout::bucket_count; ++i) {
    ASSERT_EQ(histogram_layout::lower_bound(i), histogram_layout::upper_bound(i - 1) + 1) << i;
  }
  EXPECT_EQ(histogram_layout::upper_bound(histogram_layout::bucket_count - 1), u64_max);

  // Each bound maps back to its own bucket, and no bucket is wider than 1/16
  // of its lower bound.
  for (std::size_t i = 0; i < histogram_layout::bucket_count; ++i) {
    const std::uint64_t lo = histogram_layout::lower_bound(i);
    const std::uint64_t hi = histogram_layout::upper_bound(i);
    ASSERT_EQ(histogram_layout::index_of(lo), i);
    ASSERT_EQ(histogram_layout::index_of(hi), i);
    ASSERT_LE(hi - lo, lo / 16) << "bucket " << i;
  }
}

// --- histogram ----------------------------------------------------------------

TEST(histogram, small_values_are_exact) {
  histogram h;
  for (std::uint64_t v = 0; v < 32; ++v) h.record(v);
  for (std::uint64_t v = 0; v < 32; ++v) {
    EXPECT_EQ(histogram_layout::lower_bound(histogram_layout::index_of(v)), v);
    EXPECT_EQ(histogram_layout::upper_bound(histogram_layout::index_of(v)), v);
    // Rank v + 1 of 32 values is percentile (v + 1) * 100 / 32.
    EXPECT_EQ(h.percentile(static_cast<double>(v + 1) * 100.0 / 32.0), v);
  }
  EXPECT_EQ(h.count(), 32u);
  EXPECT_EQ(h.sum(), 31u * 32u / 2u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 31u);
}

TEST(histogram, empty_histogram_reports_zeros) {
  histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.sum(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  const histogram_snapshot s = h.snapshot();
  EXPECT_EQ(s.count(), 0u);
  EXPECT_EQ(s.min(), 0u);
  EXPECT_EQ(s.max(), 0u);
}

TEST(histogram, percentiles_of_a_uniform_distribution_are_within_bucket_error) {
  histogram h;
  std::vector<std::uint64_t> values;
  for (std::uint64_t v = 1; v <= 100'000; ++v) {
    h.record(v);
    values.push_back(v);
  }
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_EQ(h.sum(), std::uint64_t{100'000} * 100'001 / 2);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100'000u);
  EXPECT_EQ(h.percentile(100), 100'000u);  // clamped to max, not the bucket's bound
  EXPECT_EQ(h.percentile(0), 1u);
  expect_within_bucket_error(h, values);
}

TEST(histogram, percentiles_of_exponential_latencies_are_within_bucket_error) {
  // Latencies in nanoseconds with a 200 us mean, as a fixed-seed stream.
  std::mt19937_64 rng(42);
  std::exponential_distribution<double> latency(1.0 / 200'000.0);
  histogram h;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(latency(rng));
    h.record(v);
    values.push_back(v);
  }
  expect_within_bucket_error(h, values);
}

TEST(histogram, percentiles_of_a_bimodal_distribution_are_within_bucket_error) {
  // 90% cache hits around 50 us, 10% misses around 20 ms.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> hit(50'000.0, 5'000.0);
  std::normal_distribution<double> miss(20'000'000.0, 2'000'000.0);
  std::bernoulli_distribution is_miss(0.1);
  histogram h;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    const double v = std::max(0.0, is_miss(rng) ? miss(rng) : hit(rng));
    h.record(static_cast<std::uint64_t>(v));
    values.push_back(static_cast<std::uint64_t>(v));
  }
  expect_within_bucket_error(h, values);
  EXPECT_LT(h.percentile(50), 100'000u);
  EXPECT_GT(h.percentile(99), 10'000'000u);
}

TEST(histogram, huge_values_land_in_the_last_bucket_without_overflow) {
  histogram h;
  h.record(u64_max);
  h.record(u64_max - 1);
  h.record(std::uint64_t{1} << 63);
  EXPECT_EQ(histogram_layout::index_of(u64_max), histogram_layout::bucket_count - 1);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.max(), u64_max);
  EXPECT_EQ(h.min(), std::uint64_t{1} << 63);
  EXPECT_EQ(h.percentile(100), u64_max);
  // p1 is the smallest value, 2^63, reported as its bucket's upper bound.
  EXPECT_EQ(h.percentile(1),
            histogram_layout::upper_bound(histogram_layout::index_of(std::uint64_t{1} << 63)));
  const histogram_snapshot s = h.snapshot();
  EXPECT_EQ(s.buckets()[histogram_layout::bucket_count - 1], 2u);
  EXPECT_EQ(s.count_at_or_below(u64_max), 3u);
}

TEST(histogram, min_is_right_when_every_value_is_the_maximum) {
  // UINT64_MAX is also the internal "no minimum yet" marker.
  histogram h;
  h.record(u64_max);
  EXPECT_EQ(h.min(), u64_max);
  EXPECT_EQ(h.snapshot().min(), u64_max);
}

TEST(histogram, reset_empties_it) {
  histogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.sum(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.snapshot().count(), 0u);
  h.record(500);
  EXPECT_EQ(h.min(), 500u);
  EXPECT_EQ(h.max(), 500u);
  EXPECT_EQ(h.percentile(50), 500u);
}

TEST(histogram, merged_snapshots_equal_one_histogram_fed_both_streams) {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> dist(10.0, 2.0);
  histogram a;
  histogram b;
  histogram both;
  for (int i = 0; i < 50'000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    (i % 3 == 0 ? a : b).record(v);
    both.record(v);
  }
  histogram_snapshot merged = a.snapshot();
  merged.merge(b.snapshot());
  const histogram_snapshot expected = both.snapshot();
  EXPECT_EQ(merged.buckets(), expected.buckets());
  EXPECT_EQ(merged.count(), expected.count());
  EXPECT_EQ(merged.sum(), expected.sum());
  EXPECT_EQ(merged.min(), expected.min());
  EXPECT_EQ(merged.max(), expected.max());
  for (const double p : {50.0, 90.0, 99.0, 99.9}) {
    EXPECT_EQ(merged.percentile(p), expected.percentile(p)) << "p" << p;
  }
}

TEST(histogram, merging_an_empty_snapshot_changes_nothing) {
  histogram h;
  h.record(40);
  h.record(7000);
  histogram_snapshot s = h.snapshot();
  s.merge(histogram_snapshot{});
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(s.min(), 40u);

  histogram_snapshot empty;
  empty.merge(h.snapshot());
  EXPECT_EQ(empty.min(), 40u);
  EXPECT_EQ(empty.max(), 7000u);
  EXPECT_EQ(empty.sum(), 7040u);
}

TEST(histogram, count_at_or_below_a_bucket_bound_is_exact) {
  histogram h;
  for (std::uint64_t v = 0; v < 5000; ++v) h.record(v);
  const histogram_snapshot s = h.snapshot();
  EXPECT_EQ(s.count_at_or_below(1023), 1024u);
  EXPECT_EQ(s.count_at_or_below(4095), 4096u);
  EXPECT_EQ(s.count_at_or_below(u64_max), 5000u);
}

TEST(histogram, a_reader_sees_monotonic_totals_while_the_writer_records) {
  // One writer, one reader, as in production (a worker and a scrape). With
  // relaxed loads a snapshot is not an instant, so its count need not match
  // the writer's at any moment; what must hold is that nothing ever goes
  // backwards, that each snapshot is self-consistent, and that the final
  // totals are exact.
  constexpr std::uint64_t n = 1'000'000;
  histogram h;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t v = 1; v <= n; ++v) h.record(v % 100'000);
    done.store(true, std::memory_order_release);
  });

  // The reader stops at the first violation (an ASSERT here would return
  // with the writer still running) and reports it after the join.
  std::string violation;
  std::uint64_t last_count = 0;
  std::uint64_t last_sum = 0;
  std::uint64_t last_live_count = 0;
  int snapshots = 0;
  while (violation.empty() && (!done.load(std::memory_order_acquire) || snapshots == 0)) {
    const std::uint64_t live = h.count();
    const histogram_snapshot s = h.snapshot();
    ++snapshots;
    if (live < last_live_count) violation = "count() went backwards";
    if (s.count() < last_count) violation = "snapshot count went backwards";
    if (s.sum() < last_sum) violation = "snapshot sum went backwards";
    if (s.count() > n) violation = "snapshot counted more records than were made";
    if (s.count() > 0 && !(s.min() <= s.percentile(50) && s.percentile(50) <= s.max())) {
      violation = "snapshot min <= p50 <= max does not hold";
    }
    last_live_count = live;
    last_count = s.count();
    last_sum = s.sum();
  }
  writer.join();
  EXPECT_EQ(violation, "") << "after " << snapshots << " snapshots";

  const histogram_snapshot final_snapshot = h.snapshot();
  std::uint64_t expected_sum = 0;
  for (std::uint64_t v = 1; v <= n; ++v) expected_sum += v % 100'000;
  EXPECT_EQ(h.count(), n);
  EXPECT_EQ(final_snapshot.count(), n);
  EXPECT_EQ(final_snapshot.sum(), expected_sum);
  EXPECT_EQ(final_snapshot.min(), 0u);
  EXPECT_EQ(final_snapshot.max(), 99'999u);
  EXPECT_GT(snapshots, 0);
}

// --- counter, gauge ------------------------------------------------------------

TEST(counter, adds_from_several_threads_sum_exactly) {
  counter c;
  constexpr int threads = 4;
  constexpr int adds = 100'000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < adds; ++i) c.add();
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_EQ(c.value(), std::uint64_t{threads} * adds);
  c.add(10);
  EXPECT_EQ(c.value(), std::uint64_t{threads} * adds + 10);
}

TEST(gauge, goes_up_and_down_and_below_zero) {
  gauge g;
  g.set(10);
  g.add(5);
  g.sub(20);
  EXPECT_EQ(g.value(), -5);
  g.add();
  g.sub();
  g.sub();
  EXPECT_EQ(g.value(), -6);
}

// --- registry ------------------------------------------------------------------

TEST(registry, validates_prometheus_names) {
  EXPECT_TRUE(is_valid_metric_name("http_requests_total"));
  EXPECT_TRUE(is_valid_metric_name("job:rate5m"));
  EXPECT_TRUE(is_valid_metric_name("_x9"));
  EXPECT_FALSE(is_valid_metric_name(""));
  EXPECT_FALSE(is_valid_metric_name("9lives"));
  EXPECT_FALSE(is_valid_metric_name("http-requests"));
  EXPECT_FALSE(is_valid_metric_name("caf\xc3\xa9"));

  EXPECT_TRUE(is_valid_label_name("status"));
  EXPECT_TRUE(is_valid_label_name("_a1"));
  EXPECT_FALSE(is_valid_label_name("a:b"));
  EXPECT_FALSE(is_valid_label_name("1a"));
  EXPECT_FALSE(is_valid_label_name(""));
}

TEST(registry, exposition_matches_the_prometheus_text_format) {
  metrics_registry r;
  // Two shards of {status="2xx"}, as two workers would add them.
  auto& ok_worker1 = r.add_counter("http_requests_total", "Requests served.", {{"status", "2xx"}});
  auto& ok_worker2 = r.add_counter("http_requests_total", "Requests served.", {{"status", "2xx"}});
  auto& failed = r.add_counter("http_requests_total", "Requests served.", {{"status", "5xx"}});
  ok_worker1.add(3);
  ok_worker2.add(4);
  failed.add();

  auto& g = r.add_gauge("open_files", "Files open.\nHelp escapes \\ and newline, not \".",
                        {{"path", "C:\\tmp\\\"x\"\nend"}});
  g.set(-2);

  // Latency recorded in microseconds, exposed in seconds, bounds 127..1023 us.
  const histogram_options us{.scale = 1e-6, .expose_from = 100, .expose_to = 1000};
  auto& h1 = r.add_histogram("request_duration_seconds", "Request latency.", {}, us);
  auto& h2 = r.add_histogram("request_duration_seconds", "Request latency.", {}, us);
  h1.record(100);
  h1.record(300);
  h2.record(200);
  h2.record(5000);

  auto& up = r.add_gauge("up", "");
  up.set(1);

  EXPECT_EQ(r.expose(),
            "# HELP http_requests_total Requests served.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{status=\"2xx\"} 7\n"
            "http_requests_total{status=\"5xx\"} 1\n"
            "# HELP open_files Files open.\\nHelp escapes \\\\ and newline, not \".\n"
            "# TYPE open_files gauge\n"
            "open_files{path=\"C:\\\\tmp\\\\\\\"x\\\"\\nend\"} -2\n"
            "# HELP request_duration_seconds Request latency.\n"
            "# TYPE request_duration_seconds histogram\n"
            "request_duration_seconds_bucket{le=\"0.000127\"} 1\n"
            "request_duration_seconds_bucket{le=\"0.000255\"} 2\n"
            "request_duration_seconds_bucket{le=\"0.000511\"} 3\n"
            "request_duration_seconds_bucket{le=\"0.001023\"} 3\n"
            "request_duration_seconds_bucket{le=\"+Inf\"} 4\n"
            "request_duration_seconds_sum 0.0056\n"
            "request_duration_seconds_count 4\n"
            "# TYPE up gauge\n"
            "up 1\n");
}

TEST(registry, histogram_labels_come_before_le_and_inf_equals_count) {
  metrics_registry r;
  const histogram_options opts{.scale = 1.0, .expose_from = 30, .expose_to = 60};
  auto& h = r.add_histogram("size_bytes", "Sizes.", {{"route", "/a"}}, opts);
  for (std::uint64_t v = 0; v < 100; ++v) h.record(v);
  EXPECT_EQ(r.expose(),
            "# HELP size_bytes Sizes.\n"
            "# TYPE size_bytes histogram\n"
            "size_bytes_bucket{route=\"/a\",le=\"31\"} 32\n"
            "size_bytes_bucket{route=\"/a\",le=\"63\"} 64\n"
            "size_bytes_bucket{route=\"/a\",le=\"+Inf\"} 100\n"
            "size_bytes_sum{route=\"/a\"} 4950\n"
            "size_bytes_count{route=\"/a\"} 100\n");
}

TEST(registry, default_histogram_bounds_cover_a_microsecond_to_a_minute_in_nanoseconds) {
  metrics_registry r;
  auto& h = r.add_histogram("latency_seconds", "Latency.", {}, {.scale = 1e-9});
  h.record(1'500);          // 1.5 us
  h.record(2'000'000'000);  // 2 s
  const std::string text = r.expose();
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"1.023e-06\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"2.047e-06\"} 1\n"), std::string::npos) << text;
  // Every bound prints as its shortest decimal, not with float noise
  // (4095 * 1e-9 would print 4.095000000000001e-06).
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"4.095e-06\"}"), std::string::npos) << text;
  EXPECT_EQ(text.find("00000000"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"68.719476735\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("latency_seconds_sum 2.0000015\n"), std::string::npos) << text;
  // 2^10 - 1 .. 2^36 - 1, then +Inf.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2 + 27 + 1 + 2);
}

TEST(registry, label_order_does_not_matter_and_labels_are_sorted) {
  metrics_registry r;
  auto& a = r.add_counter("hits_total", "Hits.", {{"zone", "eu"}, {"method", "GET"}});
  auto& b = r.add_counter("hits_total", "Hits.", {{"method", "GET"}, {"zone", "eu"}});
  a.add(1);
  b.add(2);
  EXPECT_NE(&a, &b);  // two shards of one series
  EXPECT_EQ(r.expose(),
            "# HELP hits_total Hits.\n"
            "# TYPE hits_total counter\n"
            "hits_total{method=\"GET\",zone=\"eu\"} 3\n");
}

TEST(registry, duplicate_registration_returns_a_new_instance_and_exposition_merges) {
  metrics_registry r;
  auto& g1 = r.add_gauge("connections", "Open connections.");
  auto& g2 = r.add_gauge("connections", "Open connections.");
  auto& h1 = r.add_histogram("wait_seconds", "Wait.", {},
                             {.scale = 1.0, .expose_from = 0, .expose_to = 1});
  auto& h2 = r.add_histogram("wait_seconds", "Wait.", {},
                             {.scale = 1.0, .expose_from = 0, .expose_to = 1});
  EXPECT_NE(&g1, &g2);
  EXPECT_NE(&h1, &h2);
  g1.set(5);
  g2.set(7);
  h1.record(0);
  h2.record(1);
  h2.record(9);
  EXPECT_EQ(r.expose(),
            "# HELP connections Open connections.\n"
            "# TYPE connections gauge\n"
            "connections 12\n"
            "# HELP wait_seconds Wait.\n"
            "# TYPE wait_seconds histogram\n"
            "wait_seconds_bucket{le=\"0\"} 1\n"
            "wait_seconds_bucket{le=\"1\"} 2\n"
            "wait_seconds_bucket{le=\"+Inf\"} 3\n"
            "wait_seconds_sum 10\n"
            "wait_seconds_count 3\n");
}

TEST(registry, returned_references_stay_valid_as_more_metrics_are_added) {
  metrics_registry r;
  auto& first = r.add_counter("first_total", "First.");
  std::vector<counter*> others;
  for (int i = 0; i < 200; ++i) {
    others.push_back(&r.add_counter("m" + std::to_string(i) + "_total", "Other."));
  }
  first.add(42);
  for (counter* c : others) c->add();
  const std::string text = r.expose();
  EXPECT_NE(text.find("first_total 42\n"), std::string::npos);
  EXPECT_NE(text.find("m199_total 1\n"), std::string::npos);
}

// Runs `add` and returns the field() of the config_error it must throw.
template <class F>
std::string config_error_field(F add) {
  try {
    add();
  } catch (const config_error& e) {
    return e.field();
  }
  ADD_FAILURE() << "expected config_error";
  return {};
}

TEST(registry, invalid_names_throw_config_error_naming_the_field) {
  metrics_registry r;
  EXPECT_EQ(config_error_field([&] { r.add_counter("9lives", "x"); }), "name");
  EXPECT_EQ(config_error_field([&] { r.add_gauge("", "x"); }), "name");
  EXPECT_EQ(config_error_field([&] { r.add_histogram("a b", "x"); }), "name");
  EXPECT_EQ(config_error_field([&] {
              r.add_counter("ok_total", "x", {{"bad-label", "v"}});
            }),
            "ok_total.labels");
  EXPECT_EQ(config_error_field([&] {
              r.add_counter("ok_total", "x", {{"__reserved", "v"}});
            }),
            "ok_total.labels");
  EXPECT_EQ(config_error_field([&] {
              r.add_counter("ok_total", "x", {{"a", "1"}, {"a", "2"}});
            }),
            "ok_total.labels");
  EXPECT_EQ(config_error_field([&] { r.add_histogram("lat", "x", {{"le", "1"}}); }), "lat.labels");

  try {
    r.add_counter("9lives", "x");
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("9lives"), std::string::npos) << e.what();
  }
  // Nothing half-registered is exposed.
  EXPECT_EQ(r.expose(), "");
}

TEST(registry, the_same_name_with_another_type_help_or_options_throws) {
  metrics_registry r;
  r.add_counter("jobs_total", "Jobs.");
  EXPECT_EQ(config_error_field([&] { r.add_gauge("jobs_total", "Jobs."); }), "jobs_total.type");
  EXPECT_EQ(config_error_field([&] { r.add_counter("jobs_total", "Other."); }), "jobs_total.help");

  r.add_histogram("lat_seconds", "Latency.", {}, {.scale = 1e-9});
  EXPECT_EQ(
      config_error_field([&] { r.add_histogram("lat_seconds", "Latency.", {}, {.scale = 1e-6}); }),
      "lat_seconds.options");
  EXPECT_EQ(config_error_field([&] { r.add_histogram("bad_scale", "x", {}, {.scale = 0.0}); }),
            "bad_scale.options");
  EXPECT_EQ(config_error_field([&] {
              r.add_histogram("bad_range", "x", {},
                              {.scale = 1.0, .expose_from = 10, .expose_to = 1});
            }),
            "bad_range.options");
}

TEST(registry, histogram_line_names_may_not_collide_with_other_metrics) {
  metrics_registry r;
  r.add_histogram("rpc", "RPCs.");
  EXPECT_EQ(config_error_field([&] { r.add_counter("rpc_count", "x"); }), "name");
  r.add_gauge("queue_sum", "x");
  EXPECT_EQ(config_error_field([&] { r.add_histogram("queue", "x"); }), "name");
}

TEST(registry, write_prometheus_appends_to_the_buffer) {
  metrics_registry r;
  r.add_counter("a_total", "A.").add(2);
  std::string out = "previous\n";
  r.write_prometheus(out);
  EXPECT_EQ(out, "previous\n# HELP a_total A.\n# TYPE a_total counter\na_total 2\n");
}

TEST(registry, workers_register_and_record_concurrently_with_scrapes) {
  // Each worker adds its own shards and records alone; a scraper exposes
  // meanwhile. The totals after the join are exact.
  metrics_registry r;
  constexpr int workers = 4;
  constexpr int requests = 20'000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    std::string out;
    while (!done.load(std::memory_order_acquire)) {
      out.clear();
      r.write_prometheus(out);
    }
  });
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      auto& served = r.add_counter("served_total", "Served.", {{"status", "2xx"}});
      auto& latency = r.add_histogram("latency", "Latency.", {},
                                      {.scale = 1.0, .expose_from = 1, .expose_to = 1});
      for (int i = 0; i < requests; ++i) {
        served.add();
        latency.record(1);
      }
    });
  }
  for (auto& t : pool) t.join();
  done.store(true, std::memory_order_release);
  scraper.join();

  const std::string text = r.expose();
  EXPECT_NE(text.find("served_total{status=\"2xx\"} 80000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_bucket{le=\"1\"} 80000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_count 80000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_sum 80000\n"), std::string::npos) << text;
}

TEST(histogram_snapshot, since_is_what_was_recorded_in_between) {
  histogram h;
  for (std::uint64_t v : {5u, 7u, 1'000u}) h.record(v);
  const histogram_snapshot before = h.snapshot();
  for (std::uint64_t v : {20u, 30u, 40u, 50'000u}) h.record(v);
  const histogram_snapshot d = h.snapshot().since(before);
  EXPECT_EQ(d.count(), 4u);
  EXPECT_EQ(d.sum(), 20u + 30u + 40u + 50'000u);
  EXPECT_EQ(d.min(), 20u) << "below 32 every bucket holds one value";
  // 50'000's bucket upper bound, which the later snapshot's max clamps.
  EXPECT_EQ(d.max(), 50'000u);
  EXPECT_EQ(d.percentile(50), 30u) << "the values recorded before do not count";
  EXPECT_GE(d.percentile(99), 50'000u);
  EXPECT_EQ(h.snapshot().since(h.snapshot()).count(), 0u);
  EXPECT_EQ(h.snapshot().since(h.snapshot()).percentile(99), 0u);
}

TEST(histogram_snapshot, since_a_snapshot_taken_before_a_reset_counts_only_what_grew) {
  histogram h;
  for (int i = 0; i < 10; ++i) h.record(100);
  const histogram_snapshot before = h.snapshot();
  h.reset();
  h.record(100);
  h.record(3);
  const histogram_snapshot d = h.snapshot().since(before);
  EXPECT_EQ(d.count(), 1u) << "the bucket of 100 shrank: empty, not negative";
  EXPECT_EQ(d.min(), 3u);
  EXPECT_EQ(d.max(), 3u);
}

TEST(registry, values_are_read_in_process_summed_over_instances) {
  metrics_registry r;
  r.add_counter("hits_total", "Hits", {{"route", "a"}}).add(2);
  r.add_counter("hits_total", "Hits", {{"route", "a"}}).add(3);  // a second worker's shard
  r.add_counter("hits_total", "Hits", {{"route", "b"}}).add(7);
  r.add_gauge("in_flight", "In flight").add(4);
  r.add_gauge("in_flight", "In flight").sub(1);
  r.add_histogram("latency", "Latency", {{"route", "a"}}).record(10);
  r.add_histogram("latency", "Latency", {{"route", "a"}}).record(20);

  const auto hits = r.counter_values("hits_total");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(label_value(hits[0].first, "route"), "a");
  EXPECT_EQ(hits[0].second, 5u);
  EXPECT_EQ(label_value(hits[1].first, "route"), "b");
  EXPECT_EQ(hits[1].second, 7u);
  EXPECT_EQ(label_value(hits[1].first, "status"), "") << "a label the series does not have";

  const auto in_flight = r.gauge_values("in_flight");
  ASSERT_EQ(in_flight.size(), 1u);
  EXPECT_EQ(in_flight[0].second, 3);

  const auto latency = r.histogram_values("latency");
  ASSERT_EQ(latency.size(), 1u);
  EXPECT_EQ(latency[0].second.count(), 2u);
  EXPECT_EQ(latency[0].second.max(), 20u);

  EXPECT_TRUE(r.counter_values("no_such_metric").empty());
  EXPECT_TRUE(r.counter_values("in_flight").empty()) << "a gauge is not read as a counter";
  EXPECT_TRUE(r.histogram_values("hits_total").empty());
}

}  // namespace
}  // namespace trellis::core
