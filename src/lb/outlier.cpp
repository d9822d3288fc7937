// Passive outlier detection; see include/trellis/lb/outlier.hpp.
#include "trellis/lb/outlier.hpp"

#include <algorithm>
#include <cmath>

#include "trellis/core/error.hpp"

namespace trellis::lb {
namespace {

void require(bool ok, std::string_view prefix, const char* field, const char* what) {
  if (!ok) throw core::config_error(std::string(prefix) + "." + field, what);
}

bool is_gateway_failure(int status) noexcept {
  return status == 0 || status == 502 || status == 503 || status == 504;
}

bool is_5xx(int status) noexcept {
  return status == 0 || (status >= 500 && status <= 599);
}

}  // namespace

void validate(const outlier_options& o, std::string_view prefix) {
  require(o.base_ejection_time > duration::zero(), prefix, "base_ejection_time",
          "must be greater than 0");
  require(o.max_ejection_time >= o.base_ejection_time, prefix, "max_ejection_time",
          "must be at least base_ejection_time");
  require(std::isfinite(o.max_ejection_percent) && o.max_ejection_percent >= 0 &&
              o.max_ejection_percent <= 100,
          prefix, "max_ejection_percent", "must be in [0, 100]");
  require(o.interval > duration::zero(), prefix, "interval", "must be greater than 0");
}

std::size_t max_ejected_hosts(std::size_t hosts, const outlier_options& o) noexcept {
  if (!o.enabled || o.max_ejection_percent <= 0 || hosts == 0) return 0;
  // Rounded down, as Envoy compares the ejected percentage to the cap.
  auto n = static_cast<std::size_t>(std::floor(static_cast<double>(hosts) * o.max_ejection_percent /
                                               100.0 + 1e-9));
  if (n == 0 && o.always_eject_one) n = 1;
  return std::min(n, hosts);
}

std::string_view to_string(ejection_reason reason) noexcept {
  switch (reason) {
    case ejection_reason::consecutive_5xx:
      return "consecutive_5xx";
    case ejection_reason::consecutive_gateway_failure:
      return "consecutive_gateway_failure";
  }
  return "unknown";
}

std::optional<ejection_reason> outlier_tracker::record(int status,
                                                       const outlier_options& o) noexcept {
  if (is_5xx(status)) {
    if (is_gateway_failure(status))
      ++consecutive_gateway_;
    else
      consecutive_gateway_ = 0;
    ++consecutive_5xx_;
  } else {
    consecutive_5xx_ = 0;
    consecutive_gateway_ = 0;
  }
  if (!o.enabled || ejected_) return std::nullopt;
  // At or past the threshold: a host kept in by the percentage cap asks
  // again on its next failure, where Envoy's equality test would forget it.
  if (o.consecutive_5xx > 0 && consecutive_5xx_ >= o.consecutive_5xx)
    return pending_ = ejection_reason::consecutive_5xx;
  if (o.consecutive_gateway_failure > 0 && consecutive_gateway_ >= o.consecutive_gateway_failure)
    return pending_ = ejection_reason::consecutive_gateway_failure;
  return std::nullopt;
}

time_point outlier_tracker::eject(time_point now, const outlier_options& o) noexcept {
  // The multiplier grows while the ejection it gives stays under the cap,
  // and one step past it at most, as Envoy's backoff does.
  const auto base = o.base_ejection_time;
  const auto max_multiplier =
      static_cast<std::uint32_t>(std::min<duration::rep>(o.max_ejection_time / base + 1, 1u << 30));
  if (multiplier_ < max_multiplier) ++multiplier_;
  const duration length = std::min<duration>(base * multiplier_, o.max_ejection_time);
  ejected_ = true;
  ++ejections_;
  until_ = now + length;
  last_reason_ = pending_ ? pending_ : std::optional(ejection_reason::consecutive_5xx);
  pending_.reset();
  consecutive_5xx_ = 0;
  consecutive_gateway_ = 0;
  return until_;
}

bool outlier_tracker::tick(time_point now, const outlier_options& o) noexcept {
  bool returned = false;
  if (ejected_) {
    if (now < until_) return false;
    ejected_ = false;
    returned = true;
    decay_from_ = until_;
  }
  if (multiplier_ > 0 && now >= decay_from_ + o.interval) {
    const auto steps = static_cast<std::uint64_t>((now - decay_from_) / o.interval);
    const auto taken = static_cast<std::uint32_t>(std::min<std::uint64_t>(steps, multiplier_));
    multiplier_ -= taken;
    decay_from_ += o.interval * taken;
  }
  return returned;
}

time_point outlier_tracker::next_change(const outlier_options& o) const noexcept {
  if (ejected_) return until_;
  if (multiplier_ > 0) return decay_from_ + o.interval;
  return time_point::max();
}

}  // namespace trellis::lb
