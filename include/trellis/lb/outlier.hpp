// Passive outlier detection: taking a host out of rotation because of how
// its real responses turned out, with no probe traffic of its own.
//
// This follows Envoy's outlier detection (consecutive_5xx and
// consecutive_gateway_failure, base/max ejection time, max ejection
// percent) with its default numbers:
//   * every finished upstream attempt is reported with its status; status
//     0 means no response at all (connect failure, reset, timeout);
//   * a 5xx or a 0 adds one to the host's consecutive-5xx count; a 502,
//     503, 504 or 0 adds one to its consecutive-gateway-failure count (any
//     other 5xx resets that one, as Envoy does); any other status — 429
//     included, which is the host protecting itself, not failing — resets
//     both. Status 0 counts in both, as Envoy's non-split mode maps local
//     connection failures to 5xx;
//   * when a count reaches its threshold the host is ejected, if the
//     cluster may lose one more host (max_ejection_percent), for
//     base_ejection_time x the number of times it has been ejected, capped
//     at max_ejection_time; ejection resets both counts;
//   * a host that stays in rotation for a whole `interval` has its
//     ejection multiplier decremented by one (Envoy's backoff decay), so a
//     host that misbehaved once last week is not punished 10x today;
//   * an ejected host returns when its time ends. Nothing here watches a
//     clock: the owner calls tick(now) (the cluster does on each report,
//     each eligible() and from a timer), so a manual clock drives it all.
// Left out: Envoy's success-rate and failure-percentage detectors
// and its enforcing_* percentages (ejection here is always enforced; note
// Envoy detects gateway failures but enforces them at 0% by default).
//
// Thread-safety: outlier_options is a value; an outlier_tracker is plain
// state with no locking — its owner (lb::cluster) guards it with its mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "trellis/lb/host.hpp"

namespace trellis::lb {

struct outlier_options {
  // Passive detection on or off. Default on: it costs one short lock per
  // response and catches a dead host after a handful of failed requests,
  // long before an active check would.
  bool enabled = true;
  // Consecutive 5xx (or no-response) results that eject a host. 0 turns
  // this detector off. Default 5 (Envoy's). Lower ejects a host that had
  // a short bad patch; higher lets more requests fail first.
  std::uint32_t consecutive_5xx = 5;
  // Consecutive 502/503/504 (or no-response) results that eject a host.
  // 0 turns this detector off. Default 5. Catches a host whose gateway or
  // connection fails while its application errors (500) are the app's own.
  std::uint32_t consecutive_gateway_failure = 5;
  // Ejection time per time ejected: the n-th ejection in a row lasts
  // n x base. > 0; default 30 s (Envoy's).
  duration base_ejection_time = std::chrono::seconds(30);
  // Upper bound of one ejection. >= base_ejection_time; default 300 s
  // (Envoy's). It bounds how long a recovered host stays unused.
  duration max_ejection_time = std::chrono::seconds(300);
  // At most this percentage of the cluster's hosts is ejected at once;
  // further hosts that reach a threshold stay in until one returns.
  // [0, 100]; default 10. 0 turns ejection off.
  double max_ejection_percent = 10;
  // With max_ejection_percent > 0, one host may always be ejected, even
  // when the percentage of a small cluster rounds down to zero (10% of 4
  // hosts). Default true, which is what recent Envoy does: without it a
  // cluster of fewer than 10 hosts would never eject anything by default.
  bool always_eject_one = true;
  // How long a host must stay in rotation for its ejection multiplier to
  // drop by one (Envoy's `interval`, which also paces its sweeps).
  // > 0; default 10 s. Shorter forgives repeat offenders faster.
  duration interval = std::chrono::seconds(10);
};

// Throws core::config_error naming the field ("<prefix>.base_ejection_time",
// ...) when an option is out of range.
void validate(const outlier_options& options, std::string_view prefix = "cluster.outlier");

// How many of `hosts` hosts may be ejected at once under `options`.
std::size_t max_ejected_hosts(std::size_t hosts, const outlier_options& options) noexcept;

// Which detector asked for an ejection.
enum class ejection_reason : std::uint8_t { consecutive_5xx, consecutive_gateway_failure };

std::string_view to_string(ejection_reason reason) noexcept;

// The passive-detection state of one host.
class outlier_tracker {
 public:
  // One finished attempt with HTTP status `status` (0: no response). Returns
  // the detector whose threshold the host has now reached or passed — the
  // caller then calls eject() if the cluster may lose the host (a host kept
  // in by the percentage cap asks again on its next failure) — or nullopt.
  // An ejected host's results are counted but never ask for ejection.
  std::optional<ejection_reason> record(int status, const outlier_options& options) noexcept;

  // Takes the host out until now + min(base x multiplier, max), the
  // multiplier first growing by one (it stops growing once the cap is
  // reached, so decay brings it back down in reasonable time). Resets the
  // consecutive counts. Returns the time it will return.
  // REQUIRES: !ejected().
  time_point eject(time_point now, const outlier_options& options) noexcept;

  // Applies the passage of time: ends an ejection whose time is up (the
  // host returns; the multiplier's decay starts counting then) and decays
  // the multiplier by one per whole `interval` spent in rotation. Returns
  // true when the host returned.
  bool tick(time_point now, const outlier_options& options) noexcept;

  // The next time tick() would change something (an ejection ending, a
  // decay step), or time_point::max().
  time_point next_change(const outlier_options& options) const noexcept;

  bool ejected() const noexcept { return ejected_; }
  // When the current ejection ends (meaningful while ejected()).
  time_point ejected_until() const noexcept { return until_; }
  // Times ejected since the tracker was made (for the admin page).
  std::uint32_t ejections() const noexcept { return ejections_; }
  // The current ejection multiplier: the next ejection lasts
  // (multiplier + 1) x base, capped.
  std::uint32_t multiplier() const noexcept { return multiplier_; }
  std::uint32_t consecutive_5xx() const noexcept { return consecutive_5xx_; }
  std::uint32_t consecutive_gateway_failures() const noexcept { return consecutive_gateway_; }
  // The detector behind the current or last ejection.
  std::optional<ejection_reason> last_reason() const noexcept { return last_reason_; }

 private:
  std::uint32_t consecutive_5xx_ = 0;
  std::uint32_t consecutive_gateway_ = 0;
  std::uint32_t multiplier_ = 0;
  std::uint32_t ejections_ = 0;
  bool ejected_ = false;
  std::optional<ejection_reason> pending_;  // what asked for the ejection to come
  std::optional<ejection_reason> last_reason_;
  time_point until_{};
  time_point decay_from_{};  // start of the current decay period (valid when multiplier_ > 0)
};

}  // namespace trellis::lb
