// Metrics: histogram snapshots and the Prometheus registry. The hot paths
// (counter::add, histogram::record) are inline in the header; what is here
// runs on scrapes and at start-up.
#include "trellis/core/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>
#include <utility>

#include "trellis/core/error.hpp"

namespace trellis::core {

// --- histogram_snapshot ------------------------------------------------------

std::uint64_t histogram_snapshot::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  if (!(p > 0.0)) p = 0.0;  // also catches NaN
  if (p > 100.0) p = 100.0;
  // The rank of the wanted value among the sorted records, 1-based:
  // ceil(p% of count), at least 1. `p * count / 100` rather than
  // `p / 100 * count` keeps common cases exact (99 * 100000 / 100 is 99000;
  // 0.99 * 100000 is not).
  const double exact_rank = std::ceil(p * static_cast<double>(count_) / 100.0);
  const std::uint64_t rank =
      exact_rank < 1.0 ? 1 : std::min(count_, static_cast<std::uint64_t>(exact_rank));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(histogram_layout::upper_bound(i), min_, max_);
  }
  return max_;  // unreachable: the buckets add up to count_
}

std::uint64_t histogram_snapshot::count_at_or_below(std::uint64_t v) const noexcept {
  const std::size_t last = histogram_layout::index_of(v);
  std::uint64_t n = 0;
  for (std::size_t i = 0; i <= last; ++i) n += buckets_[i];
  return n;
}

void histogram_snapshot::merge(const histogram_snapshot& other) noexcept {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

histogram_snapshot histogram_snapshot::since(const histogram_snapshot& earlier) const noexcept {
  histogram_snapshot d;
  std::size_t first = buckets_.size(), last = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    const std::uint64_t n =
        buckets_[i] > earlier.buckets_[i] ? buckets_[i] - earlier.buckets_[i] : 0;
    d.buckets_[i] = n;
    d.count_ += n;
    if (n != 0) {
      first = std::min(first, i);
      last = i;
    }
  }
  if (d.count_ == 0) return histogram_snapshot{};
  d.sum_ = sum_ - earlier.sum_;
  d.min_ = std::clamp(histogram_layout::lower_bound(first), min_, max_);
  d.max_ = std::clamp(histogram_layout::upper_bound(last), min_, max_);
  return d;
}

// --- histogram ---------------------------------------------------------------

void histogram::reset() noexcept {
  for (auto& bucket : buckets_) bucket.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
  min_.store(no_min, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
  count_.store(0, std::memory_order_release);
}

std::uint64_t histogram::min() const noexcept {
  // After an acquire load of count > 0, min_ holds at least the first
  // record's store (see the class comment), never the initial no_min.
  if (count() == 0) return 0;
  return min_.load(std::memory_order_relaxed);
}

std::uint64_t histogram::max() const noexcept {
  if (count() == 0) return 0;
  return max_.load(std::memory_order_relaxed);
}

histogram_snapshot histogram::snapshot() const noexcept {
  histogram_snapshot s;
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    s.buckets_[i] = buckets_[i].load(std::memory_order_relaxed);
    n += s.buckets_[i];
  }
  // count is defined by the buckets we read, so that percentiles and the
  // exposition's "+Inf" bucket agree with it whatever the writer did
  // meanwhile.
  s.count_ = n;
  if (n == 0) return s;
  s.sum_ = sum_.load(std::memory_order_relaxed);

  // min_ and max_ were read at another moment than the buckets: a record in
  // flight may be in one and not the other (min_ may even still be no_min).
  // Clamping them into the first and last non-empty buckets keeps the
  // snapshot consistent; when nothing raced, this changes nothing, since the
  // true min and max lie in exactly those buckets.
  std::size_t first = 0;
  while (s.buckets_[first] == 0) ++first;
  std::size_t last = s.buckets_.size() - 1;
  while (s.buckets_[last] == 0) --last;
  s.min_ = std::clamp(min_.load(std::memory_order_relaxed), histogram_layout::lower_bound(first),
                      histogram_layout::upper_bound(first));
  s.max_ = std::clamp(max_.load(std::memory_order_relaxed), histogram_layout::lower_bound(last),
                      histogram_layout::upper_bound(last));
  return s;
}

// --- names -------------------------------------------------------------------

namespace {

// ASCII only, independent of the C locale.
bool is_letter(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

}  // namespace

bool is_valid_metric_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  const auto head = [](char c) { return is_letter(c) || c == '_' || c == ':'; };
  if (!head(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(), [&](char c) { return head(c) || is_digit(c); });
}

bool is_valid_label_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  const auto head = [](char c) { return is_letter(c) || c == '_'; };
  if (!head(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(), [&](char c) { return head(c) || is_digit(c); });
}

// --- registry ----------------------------------------------------------------

namespace {

enum class metric_type { counter, gauge, histogram };

const char* type_name(metric_type t) noexcept {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

// One metric instance alone in its cache line(s): workers update their own
// shards, and two shards sharing a line would make them contend anyway
// ("false sharing"). histogram is alignas(64) already; a counter is 8 bytes.
constexpr std::size_t cache_line = 64;
template <class T>
struct alignas(cache_line) own_line {
  T metric;
};

// All instances of one name + label set.
struct series {
  label_set labels;      // sorted by name
  std::string rendered;  // `a="x",b="y"`, escaped; empty when there are no labels
  std::vector<std::unique_ptr<own_line<counter>>> counters;
  std::vector<std::unique_ptr<own_line<gauge>>> gauges;
  std::vector<std::unique_ptr<histogram>> histograms;
};

// A histogram bound printed on exposition: the bucket index it closes and its
// `le` text, computed once at registration.
struct exposed_bound {
  std::size_t last_bucket;
  std::string le;
};

// All series of one name.
struct family {
  std::string name;
  std::string help;
  metric_type type = metric_type::counter;
  histogram_options options;          // histograms only
  std::vector<exposed_bound> bounds;  // histograms only
  std::vector<series> members;        // in order of first registration
};

// The text format's escapes: backslash and newline in HELP text and label
// values, and the double quote in label values only.
void append_escaped(std::string& out, std::string_view text, bool escape_quotes) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

template <class Integer>
void append_integer(std::string& out, Integer v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Shortest text that reads back as the same double ("0.25", "1.023e-06").
void append_double(std::string& out, double v) {
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// `v` in exposed units. Dividing by an integral 1/scale gives the correctly
// rounded quotient (1023 / 1e9 is the double nearest 1.023e-6), where
// multiplying by the inexact 1e-9 can land one ulp off and print 17 digits.
// 1.0 / 1e-9 itself is 999999999.9999999 in doubles, so the inverse is
// rounded to the integer it stands for before use.
double scaled(std::uint64_t v, double scale) noexcept {
  if (scale < 1.0) {
    const double inverse = std::round(1.0 / scale);
    if (std::abs(inverse * scale - 1.0) < 1e-12) return static_cast<double>(v) / inverse;
  }
  return static_cast<double>(v) * scale;
}

// Writes `name<suffix>{labels,extra} ` — everything of a sample line but its
// value.
void append_sample_name(std::string& out, std::string_view name, std::string_view suffix,
                        std::string_view labels, std::string_view extra_label = {}) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra_label.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra_label.empty()) out += ',';
    out += extra_label;
    out += '}';
  }
  out += ' ';
}

std::vector<exposed_bound> make_bounds(const histogram_options& options) {
  // Bound 2^k - 1 is the last value of a power-of-two group, hence the upper
  // bound of a bucket: the cumulative count up to it is exact.
  const auto first_k = static_cast<unsigned>(std::bit_width(options.expose_from));
  const auto last_k = std::min(63u, static_cast<unsigned>(std::bit_width(options.expose_to)));
  std::vector<exposed_bound> bounds;
  for (unsigned k = first_k; k <= last_k; ++k) {
    const std::uint64_t bound = (std::uint64_t{1} << k) - 1;
    std::string le = "le=\"";
    append_double(le, scaled(bound, options.scale));
    le += '"';
    bounds.push_back({histogram_layout::index_of(bound), std::move(le)});
  }
  return bounds;
}

[[noreturn]] void fail(std::string field, const std::string& what) {
  throw config_error(std::move(field), what);
}

void validate_labels(std::string_view name, label_set& labels, metric_type type) {
  const std::string field = std::string(name) + ".labels";
  for (const label& l : labels) {
    if (!is_valid_label_name(l.name)) {
      fail(field,
           "\"" + l.name + "\" is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)");
    }
    if (l.name.starts_with("__")) {
      fail(field, "\"" + l.name + "\": label names starting with \"__\" are reserved");
    }
    if (type == metric_type::histogram && l.name == "le") {
      fail(field, "\"le\" is reserved for the bucket bounds of a histogram");
    }
  }
  std::sort(labels.begin(), labels.end(),
            [](const label& a, const label& b) { return a.name < b.name; });
  const auto repeated =
      std::adjacent_find(labels.begin(), labels.end(),
                         [](const label& a, const label& b) { return a.name == b.name; });
  if (repeated != labels.end()) fail(field, "label \"" + repeated->name + "\" appears twice");
}

bool same_labels(const label_set& a, const label_set& b) noexcept {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const label& x, const label& y) {
    return x.name == y.name && x.value == y.value;
  });
}

std::string render_labels(const label_set& labels) {
  std::string out;
  for (const label& l : labels) {
    if (!out.empty()) out += ',';
    out += l.name;
    out += "=\"";
    append_escaped(out, l.value, /*escape_quotes=*/true);
    out += '"';
  }
  return out;
}

}  // namespace

struct metrics_registry::impl {
  mutable std::mutex mutex;
  std::vector<family> families;  // in order of first registration

  family* find(std::string_view name) {
    const auto it = std::find_if(families.begin(), families.end(),
                                 [&](const family& f) { return f.name == name; });
    return it == families.end() ? nullptr : &*it;
  }
  const family* find(std::string_view name) const { return const_cast<impl*>(this)->find(name); }

  // A histogram `h` also writes lines named h_bucket, h_sum and h_count; no
  // other metric may own one of those names.
  void check_name_collisions(std::string_view name, metric_type type) {
    for (const family& f : families) {
      if (f.type != metric_type::histogram) continue;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (f.name + suffix == name) {
          fail("name", "\"" + std::string(name) + "\" collides with the " + suffix +
                           " lines of histogram \"" + f.name + "\"");
        }
      }
    }
    if (type != metric_type::histogram) return;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (find(std::string(name) + suffix) != nullptr) {
        fail("name", "histogram \"" + std::string(name) + "\" would write " + std::string(name) +
                         suffix + " lines, which is the name of another metric");
      }
    }
  }

  // Validates, finds or creates the family and the series; the caller adds
  // the instance. Runs under `mutex`.
  series& series_for(std::string_view name, std::string_view help, metric_type type,
                     label_set& labels, const histogram_options& options) {
    if (!is_valid_metric_name(name)) {
      fail("name", "\"" + std::string(name) +
                       "\" is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
    }
    validate_labels(name, labels, type);
    const std::string prefix(name);
    if (type == metric_type::histogram) {
      if (!(options.scale > 0.0) || !std::isfinite(options.scale)) {
        fail(prefix + ".options", "scale must be finite and greater than 0");
      }
      if (options.expose_from > options.expose_to) {
        fail(prefix + ".options", "expose_from must not exceed expose_to");
      }
    }

    family* f = find(name);
    if (f == nullptr) {
      check_name_collisions(name, type);
      family created;
      created.name = prefix;
      created.help = std::string(help);
      created.type = type;
      if (type == metric_type::histogram) {
        created.options = options;
        created.bounds = make_bounds(options);
      }
      f = &families.emplace_back(std::move(created));
    } else {
      if (f->type != type) {
        fail(prefix + ".type", std::string("already added as a ") + type_name(f->type) +
                                   ", cannot add it as a " + type_name(type));
      }
      if (f->help != help) {
        fail(prefix + ".help",
             "every instance must have the same help text; first was \"" + f->help + "\"");
      }
      if (type == metric_type::histogram && !(f->options == options)) {
        fail(prefix + ".options",
             "every instance of a histogram must have the same histogram_options");
      }
    }

    for (series& s : f->members) {
      if (same_labels(s.labels, labels)) return s;
    }
    series& s = f->members.emplace_back();
    s.rendered = render_labels(labels);
    s.labels = std::move(labels);
    return s;
  }
};

metrics_registry::metrics_registry() : impl_(std::make_unique<impl>()) {}
metrics_registry::~metrics_registry() = default;

counter& metrics_registry::add_counter(std::string_view name, std::string_view help,
                                       label_set labels) {
  std::lock_guard lock(impl_->mutex);
  series& s = impl_->series_for(name, help, metric_type::counter, labels, {});
  return s.counters.emplace_back(std::make_unique<own_line<counter>>())->metric;
}

gauge& metrics_registry::add_gauge(std::string_view name, std::string_view help, label_set labels) {
  std::lock_guard lock(impl_->mutex);
  series& s = impl_->series_for(name, help, metric_type::gauge, labels, {});
  return s.gauges.emplace_back(std::make_unique<own_line<gauge>>())->metric;
}

histogram& metrics_registry::add_histogram(std::string_view name, std::string_view help,
                                           label_set labels, histogram_options options) {
  std::lock_guard lock(impl_->mutex);
  series& s = impl_->series_for(name, help, metric_type::histogram, labels, options);
  return *s.histograms.emplace_back(std::make_unique<histogram>());
}

void metrics_registry::write_prometheus(std::string& out) const {
  std::lock_guard lock(impl_->mutex);
  histogram_snapshot merged;  // reused by every histogram series
  for (const family& f : impl_->families) {
    if (!f.help.empty()) {
      out += "# HELP ";
      out += f.name;
      out += ' ';
      append_escaped(out, f.help, /*escape_quotes=*/false);
      out += '\n';
    }
    out += "# TYPE ";
    out += f.name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';

    for (const series& s : f.members) {
      switch (f.type) {
        case metric_type::counter: {
          std::uint64_t total = 0;
          for (const auto& c : s.counters) total += c->metric.value();
          append_sample_name(out, f.name, "", s.rendered);
          append_integer(out, total);
          out += '\n';
          break;
        }
        case metric_type::gauge: {
          // Summed in unsigned arithmetic: wraps instead of overflowing.
          std::uint64_t total = 0;
          for (const auto& g : s.gauges) total += static_cast<std::uint64_t>(g->metric.value());
          append_sample_name(out, f.name, "", s.rendered);
          append_integer(out, static_cast<std::int64_t>(total));
          out += '\n';
          break;
        }
        case metric_type::histogram: {
          merged = histogram_snapshot{};
          for (const auto& h : s.histograms) merged.merge(h->snapshot());
          // Cumulative counts: each bound adds the buckets it closes.
          const auto& buckets = merged.buckets();
          std::uint64_t cumulative = 0;
          std::size_t next = 0;
          for (const exposed_bound& b : f.bounds) {
            for (; next <= b.last_bucket; ++next) cumulative += buckets[next];
            append_sample_name(out, f.name, "_bucket", s.rendered, b.le);
            append_integer(out, cumulative);
            out += '\n';
          }
          append_sample_name(out, f.name, "_bucket", s.rendered, "le=\"+Inf\"");
          append_integer(out, merged.count());
          out += '\n';
          append_sample_name(out, f.name, "_sum", s.rendered);
          append_double(out, scaled(merged.sum(), f.options.scale));
          out += '\n';
          append_sample_name(out, f.name, "_count", s.rendered);
          append_integer(out, merged.count());
          out += '\n';
          break;
        }
      }
    }
  }
}

std::string metrics_registry::expose() const {
  std::string out;
  write_prometheus(out);
  return out;
}

std::vector<std::pair<label_set, std::uint64_t>> metrics_registry::counter_values(
    std::string_view name) const {
  std::vector<std::pair<label_set, std::uint64_t>> out;
  std::lock_guard lock(impl_->mutex);
  const family* f = impl_->find(name);
  if (f == nullptr || f->type != metric_type::counter) return out;
  for (const series& s : f->members) {
    std::uint64_t total = 0;
    for (const auto& c : s.counters) total += c->metric.value();
    out.emplace_back(s.labels, total);
  }
  return out;
}

std::vector<std::pair<label_set, std::int64_t>> metrics_registry::gauge_values(
    std::string_view name) const {
  std::vector<std::pair<label_set, std::int64_t>> out;
  std::lock_guard lock(impl_->mutex);
  const family* f = impl_->find(name);
  if (f == nullptr || f->type != metric_type::gauge) return out;
  for (const series& s : f->members) {
    std::uint64_t total = 0;  // wraps rather than overflowing, as on exposition
    for (const auto& g : s.gauges) total += static_cast<std::uint64_t>(g->metric.value());
    out.emplace_back(s.labels, static_cast<std::int64_t>(total));
  }
  return out;
}

std::vector<std::pair<label_set, histogram_snapshot>> metrics_registry::histogram_values(
    std::string_view name) const {
  std::vector<std::pair<label_set, histogram_snapshot>> out;
  std::lock_guard lock(impl_->mutex);
  const family* f = impl_->find(name);
  if (f == nullptr || f->type != metric_type::histogram) return out;
  for (const series& s : f->members) {
    histogram_snapshot merged;
    for (const auto& h : s.histograms) merged.merge(h->snapshot());
    out.emplace_back(s.labels, merged);
  }
  return out;
}

std::string_view label_value(const label_set& labels, std::string_view name) noexcept {
  for (const label& l : labels)
    if (l.name == name) return l.value;
  return {};
}

}  // namespace trellis::core
