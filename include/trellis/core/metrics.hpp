// Metrics: counters, gauges, log-linear latency histograms, and a registry
// that renders them in the Prometheus text exposition format 0.0.4.
//
// trellis runs one io_context per worker thread and shares nothing between
// workers (ARCHITECTURE, principle 4). Metrics follow the same rule: each
// worker asks the registry for its OWN instance of a series ("shard") and
// updates it without coordination; the registry merges all shards of a
// series when it is scraped. So the hot path never contends, and the cost of
// merging is paid by the rare reader.
//
// Thread-safety, per type — read this before sharing an object:
// - counter, gauge: any number of threads may update and read concurrently
//   (relaxed atomic read-modify-write). A counter shared by all workers is
//   correct but every add bounces a cache line between cores; prefer one
//   shard per worker.
// - histogram: SINGLE WRITER, MANY READERS. Exactly one thread at a time may
//   call record() or reset() (normally the worker that owns it); any thread
//   may read (count(), snapshot(), percentile(), ...). Two threads recording
//   into the same histogram LOSE UPDATES. Give each worker its own histogram
//   and merge snapshots instead. The reason is speed: record() is a handful
//   of plain loads and stores, with no lock-prefixed instruction (see
//   histogram below).
// - histogram_snapshot: a plain value; one writer or many readers.
// - metrics_registry: every member function may be called from any thread
//   (a mutex serialises registration and exposition). The metric objects it
//   returns have the thread-safety of their type, above.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trellis::core {

// ---------------------------------------------------------------------------
// counter: a monotonically increasing total (requests served, bytes sent).
class counter {
 public:
  // Adds `n`. Wraps modulo 2^64, which Prometheus treats as a counter reset.
  void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// ---------------------------------------------------------------------------
// gauge: a value that goes up and down (open connections, queue depth).
class gauge {
 public:
  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  void sub(std::int64_t n = 1) noexcept { value_.fetch_sub(n, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// ---------------------------------------------------------------------------
// histogram_layout: how a uint64 value maps to a bucket, HdrHistogram style.
//
// Buckets are grouped by powers of two, and each group is cut into
// `sub_bucket_count` (16) equal-width linear sub-buckets:
//
//   values          bucket width   bucket indexes
//   [0, 32)         1 (exact)      0..31
//   [32, 64)        2              32..47
//   [64, 128)       4              48..63
//   ...
//   [2^k, 2^(k+1))  2^(k-4)        16*(k-3) .. 16*(k-2) - 1
//   [2^63, 2^64)    2^59           960..975
//
// A bucket starting at `lower` is at most lower/16 wide, so any value in it
// is known to within a relative error of 1/16 (6.25%), at every magnitude,
// with 976 buckets covering all of uint64. Values below 32 are exact.
//
// The index is computed without a loop or a table: `shift` is the number of
// low bits a bucket ignores (0 below 32, then one more per doubling), and
// `v >> shift` is a number in [16, 32) — the leading 1 bit plus the four
// bits that pick the sub-bucket — or v itself below 32. Each doubling moves
// the index on by 16 (`shift * 16`), which makes the ranges contiguous.
struct histogram_layout {
  static constexpr unsigned sub_bucket_bits = 4;
  static constexpr std::size_t sub_bucket_count = std::size_t{1} << sub_bucket_bits;  // 16
  // shift runs 0..59 (64 - sub_bucket_bits - 1); shift 0 covers 32 indexes,
  // every other shift 16.
  static constexpr std::size_t bucket_count = (64 - sub_bucket_bits + 1) * sub_bucket_count;

  // The bucket that holds `v`. Any v is valid, UINT64_MAX included.
  static constexpr std::size_t index_of(std::uint64_t v) noexcept {
    // `| 1` makes v < 32 come out as shift 0 instead of bit_width(0) - 1.
    const unsigned shift = static_cast<unsigned>(std::bit_width((v >> sub_bucket_bits) | 1)) - 1;
    return std::size_t{shift} * sub_bucket_count + static_cast<std::size_t>(v >> shift);
  }

  // REQUIRES: i < bucket_count. The smallest value that lands in bucket i.
  static constexpr std::uint64_t lower_bound(std::size_t i) noexcept {
    if (i < sub_bucket_count) return i;
    const std::size_t shift = i / sub_bucket_count - 1;
    return (sub_bucket_count + i % sub_bucket_count) << shift;
  }

  // REQUIRES: i < bucket_count. The largest value that lands in bucket i
  // (inclusive). upper_bound(bucket_count - 1) == UINT64_MAX.
  static constexpr std::uint64_t upper_bound(std::size_t i) noexcept {
    const std::size_t shift = i < 2 * sub_bucket_count ? 0 : i / sub_bucket_count - 1;
    return lower_bound(i) + ((std::uint64_t{1} << shift) - 1);
  }
};

static_assert(histogram_layout::bucket_count == 976);
static_assert(histogram_layout::index_of(0) == 0);
static_assert(histogram_layout::index_of(31) == 31);
static_assert(histogram_layout::index_of(32) == 32 && histogram_layout::index_of(33) == 32);
static_assert(histogram_layout::index_of(std::numeric_limits<std::uint64_t>::max()) ==
              histogram_layout::bucket_count - 1);
static_assert(histogram_layout::lower_bound(32) == 32 && histogram_layout::upper_bound(32) == 33);
static_assert(histogram_layout::upper_bound(histogram_layout::bucket_count - 1) ==
              std::numeric_limits<std::uint64_t>::max());

// ---------------------------------------------------------------------------
// histogram_snapshot: a plain (non-atomic) copy of a histogram's state.
//
// Snapshots of several workers' histograms merge() into one, and answer the
// same questions as a histogram. A snapshot is self-consistent by
// construction: count() is the sum of its buckets, and when it is non-empty
// min() and max() lie in its first and last non-empty buckets. Its size is
// fixed (about 8 KiB: one uint64 per bucket), so taking one never allocates.
class histogram_snapshot {
 public:
  using bucket_array = std::array<std::uint64_t, histogram_layout::bucket_count>;

  // An empty snapshot, the identity of merge().
  histogram_snapshot() = default;

  // Number of recorded values.
  std::uint64_t count() const noexcept { return count_; }
  // Sum of recorded values, modulo 2^64 (it wraps after ~584 years of
  // nanoseconds, or at once if you record values near UINT64_MAX).
  std::uint64_t sum() const noexcept { return sum_; }
  // Smallest and largest recorded value, exact; both 0 when empty.
  std::uint64_t min() const noexcept { return min_; }
  std::uint64_t max() const noexcept { return max_; }

  // The value at percentile `p` (0..100: percentile(99.9) is p999), i.e. an
  // estimate of the smallest recorded value v such that at least p% of the
  // recorded values are <= v. Returns the UPPER bound of the bucket holding
  // that value, clamped to [min(), max()]: it never under-reports, and over-
  // reports by less than 1/16 (6.25%) of the true value; values below 32 are
  // exact. Returns 0 when empty. `p` outside [0, 100] is clamped. O(buckets).
  std::uint64_t percentile(double p) const noexcept;

  // Number of recorded values <= v. Exact when v is a bucket upper bound
  // (histogram_layout::upper_bound), otherwise it counts the whole bucket
  // holding v. O(buckets).
  std::uint64_t count_at_or_below(std::uint64_t v) const noexcept;

  // Count per bucket index; see histogram_layout for each bucket's range.
  const bucket_array& buckets() const noexcept { return buckets_; }

  // Adds `other` into this snapshot, as if one histogram had recorded both
  // streams.
  void merge(const histogram_snapshot& other) noexcept;

  // What was recorded between `earlier` and this snapshot, both of the same
  // histogram(s): bucket counts and sum subtracted (a bucket that shrank,
  // after a reset, counts as empty). The interval's exact min and max are
  // unknown; they become its first non-empty bucket's lower bound and its
  // last one's upper bound, clamped to this snapshot's [min, max], so
  // percentile() keeps its error bound. This is how a dashboard gets "p99
  // over the last second" from counters that only ever grow.
  histogram_snapshot since(const histogram_snapshot& earlier) const noexcept;

 private:
  friend class histogram;

  bucket_array buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
};

// ---------------------------------------------------------------------------
// histogram: distribution of non-negative integers (latencies, sizes), in
// log-linear buckets with a relative error under 1/16 (see histogram_layout).
// The unit is the caller's: trellis records latencies in nanoseconds or
// microseconds and lets the registry scale them to seconds on exposition.
//
// SINGLE WRITER, MANY READERS. Only one thread at a time may call record()
// and reset(); ownership may pass to another thread through anything that
// synchronises (a mutex, a channel, a thread join). Why: if any thread could
// record, every field would need an atomic read-modify-write (`lock xadd`,
// `lock cmpxchg` on x86), each costing several nanoseconds even when no
// other core touches the line — bench-metrics measures such a record() at
// 3 to 6 times the cost of this one. With one writer, an update can be a plain
// load and a plain store of an atomic: nobody else writes, so nothing can be
// lost, and the atomic type still makes concurrent reads well-defined (no
// torn values, no data race). The price is that a reader sees each field at a slightly
// different moment: count, sum and the buckets may disagree by the records
// in flight. snapshot() repairs what matters (see histogram_snapshot).
//
// One guarantee is kept cheaply: record() stores count last, with release
// order (a plain `mov` on x86, `stlr` on ARM — still no read-modify-write).
// A reader that loads count with acquire, as count(), min() and max() do,
// therefore sees every field at least as new as the records that count
// includes: min() never returns the "empty" sentinel once count() > 0.
// Independently of that, each field moves one way between resets (counts,
// sum and max up, min down), and a reader never sees a field step back
// (per-location coherence of atomics), so successive reads are monotonic.
//
// No allocation anywhere: the buckets are a fixed array (~8 KiB).
class alignas(64) histogram {
 public:
  histogram() = default;
  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  // REQUIRES: called by the single writer thread only.
  // Records one value. A few nanoseconds; never allocates, never blocks.
  void record(std::uint64_t v) noexcept {
    // Every load below reads this thread's own last store: only the writer
    // writes, so a load + store pair is an increment that cannot race.
    auto& bucket = buckets_[histogram_layout::index_of(v)];
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    if (v < min_.load(std::memory_order_relaxed)) min_.store(v, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
    // Last, with release: publishes the stores above to acquire readers.
    count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  // REQUIRES: called by the single writer thread only. Empties the
  // histogram. A reader racing with reset() may see a mix of old and new
  // fields; a registry scrape sees the totals drop, which Prometheus reads as
  // a counter reset.
  void reset() noexcept;

  // Any thread. Number of recorded values.
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_acquire); }
  // Any thread. Sum of recorded values, modulo 2^64.
  std::uint64_t sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
  // Any thread. Smallest / largest recorded value; 0 when empty.
  std::uint64_t min() const noexcept;
  std::uint64_t max() const noexcept;
  // Any thread. Same as snapshot().percentile(p): the bucket upper bound,
  // clamped to [min, max], less than 6.25% above the true value. O(buckets).
  std::uint64_t percentile(double p) const noexcept { return snapshot().percentile(p); }

  // Any thread. A self-consistent copy: count is the sum of the buckets
  // read, and min/max are made to agree with them. It is not an instant: the
  // buckets are read one after another while the writer goes on recording,
  // so records made during the copy may be partly included, and sum may
  // count a few records more or fewer than the buckets do. Reads every
  // bucket; meant for scrapes and reports, not for the hot path.
  histogram_snapshot snapshot() const noexcept;

 private:
  // "No minimum yet": any recorded value is <= this. Also what min_ holds
  // after recording UINT64_MAX, which is why min() checks count, not min_.
  static constexpr std::uint64_t no_min = std::numeric_limits<std::uint64_t>::max();

  // The fields record() always touches share the first cache line.
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> min_{no_min};
  std::atomic<std::uint64_t> max_{0};
  std::array<std::atomic<std::uint64_t>, histogram_layout::bucket_count> buckets_{};
};

// ---------------------------------------------------------------------------
// Prometheus names. A metric name matches [a-zA-Z_:][a-zA-Z0-9_:]*, a label
// name [a-zA-Z_][a-zA-Z0-9_]* (names starting with "__" are reserved by
// Prometheus; the registry rejects them).
bool is_valid_metric_name(std::string_view name) noexcept;
bool is_valid_label_name(std::string_view name) noexcept;

// One label of a series, e.g. {"status", "2xx"}. The value may be any UTF-8
// text; exposition escapes it.
struct label {
  std::string name;
  std::string value;
};
// A series' labels: {{"method", "GET"}, {"status", "2xx"}}. Order does not
// matter: the registry sorts them by name, so {{"status", "2xx"}, {"method",
// "GET"}} names the same series.
using label_set = std::vector<label>;

// The value of label `name` in `labels`; empty when it has none.
std::string_view label_value(const label_set& labels, std::string_view name) noexcept;

// How a histogram is rendered on exposition. Recording is unaffected.
struct histogram_options {
  // Multiplier from recorded units to exposed units, applied to the `le`
  // bounds and to `_sum`. Default 1 (expose as recorded). Prometheus wants
  // base units, so a histogram recording nanoseconds and named `*_seconds`
  // uses 1e-9; microseconds use 1e-6. Bounds print exactly when 1/scale is an
  // integer (1023 ns prints as 1.023e-06, not 1.0230000000000001e-06).
  double scale = 1.0;

  // Exposition prints one cumulative bucket per power-of-two group, whose
  // bound `le` is 2^k - 1 (in recorded units, before scaling): the last value
  // of a group, so every count is exact. Only the bounds needed to cover
  // [expose_from, expose_to] are printed, plus "+Inf" — the same set on every
  // scrape, as Prometheus requires. Each bound adds one line per series; the
  // defaults (1 us to ~69 s when recording nanoseconds) give 27 + 1 lines.
  // Values outside the range still count in `_count`, `_sum` and "+Inf".
  // The first bound printed is the smallest 2^k - 1 >= expose_from.
  std::uint64_t expose_from = 1'000;
  // The last bound printed is the smallest 2^k - 1 >= expose_to, at most
  // 2^63 - 1. REQUIRES: expose_from <= expose_to.
  std::uint64_t expose_to = 60'000'000'000;

  bool operator==(const histogram_options&) const = default;
};

// ---------------------------------------------------------------------------
// metrics_registry: owns named metrics and renders them for Prometheus.
//
// A series is a metric name plus a label set. Every add_*() call creates a
// NEW instance of its series and returns a reference that stays valid for
// the registry's lifetime (instances are never moved or removed). Calling it
// once per worker is how each worker gets a shard it updates alone;
// exposition sums the counters and gauges of a series and merges its
// histograms. (A gauge that is not a sum of parts, such as a temperature,
// must be added once.) Each instance sits in its own cache lines, so two
// workers' shards never falsely share one.
//
// Registration is the start-up path: it takes a mutex, allocates, and throws
// core::config_error, whose field() names what to fix, when:
//   - the name is not a valid metric name ........................ "name"
//   - a histogram's _bucket/_sum/_count lines would collide with
//     another metric's name ...................................... "name"
//   - a label name is invalid, repeated, starts with "__", or is
//     "le" on a histogram ................................ "<name>.labels"
//   - the name was added before with another type .......... "<name>.type"
//   - ... or with another help text ......................... "<name>.help"
//   - ... or with other histogram_options ................ "<name>.options"
//   - histogram_options are invalid (scale not finite and > 0,
//     expose_from > expose_to) ........................... "<name>.options"
//
// Thread-safety: all members may be called concurrently. Exposition takes
// the same mutex and reads the metrics with relaxed loads while workers keep
// updating them.
class metrics_registry {
 public:
  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  // Each returns a new instance of the series `name{labels}`; see above for
  // what throws. `help` is one line of documentation for `# HELP`.
  counter& add_counter(std::string_view name, std::string_view help, label_set labels = {});
  gauge& add_gauge(std::string_view name, std::string_view help, label_set labels = {});
  histogram& add_histogram(std::string_view name, std::string_view help, label_set labels = {},
                           histogram_options options = {});

  // Appends every metric to `out` in the Prometheus text exposition format
  // 0.0.4 (Content-Type: text/plain; version=0.0.4). Metrics appear in the
  // order their names were first added, series in the order their label sets
  // were first added, labels sorted by name. Reuse `out` between scrapes to
  // keep its capacity.
  void write_prometheus(std::string& out) const;
  // The same, as a new string.
  std::string expose() const;

  // In-process reads (a dashboard, a test): every series of metric `name`
  // with its labels, its instances summed (counters, gauges) or merged
  // (histograms), in the order of exposition. Empty when no metric has that
  // name or it has another type. Each histogram series copies ~8 KiB.
  std::vector<std::pair<label_set, std::uint64_t>> counter_values(std::string_view name) const;
  std::vector<std::pair<label_set, std::int64_t>> gauge_values(std::string_view name) const;
  std::vector<std::pair<label_set, histogram_snapshot>> histogram_values(
      std::string_view name) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace trellis::core
