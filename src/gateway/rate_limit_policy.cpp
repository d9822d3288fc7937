#include "trellis/gateway/rate_limit_policy.hpp"

#include <string>

#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

bool is_policy_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

void validate(const rate_limit_policy& policy, std::string_view field) {
  const std::string f(field);
  if (policy.name.empty() || policy.name.size() > 64)
    throw core::config_error(f + ".name", "must be 1 to 64 characters");
  for (char c : policy.name)
    if (!is_policy_name_char(c))
      throw core::config_error(f + ".name", "'" + policy.name + "' may hold only [A-Za-z0-9_.-]");
  if (policy.limit < 1) throw core::config_error(f + ".limit", "must be at least 1");
  const std::int64_t period = policy.period.count();
  if (period < 1) throw core::config_error(f + ".period", "must be at least 1 microsecond");
  if (period >= rate_limit_max_exact)
    throw core::config_error(f + ".period", "must be below 2^53 microseconds");

  if (policy.algorithm == rate_limit_algorithm::sliding_window) {
    // previous * (W - elapsed) + (current + cost) * W <= limit * W: every
    // product is at most limit * W.
    if (policy.limit > (rate_limit_max_exact - 1) / period)
      throw core::config_error(f + ".limit",
                               "limit x period in microseconds must stay below 2^53 (the exact "
                               "range of a Redis Lua number); shorten the window or use a token "
                               "bucket");
    return;
  }
  if (policy.burst < 0) throw core::config_error(f + ".burst", "must not be negative");
  if (period < policy.limit)
    throw core::config_error(f + ".limit",
                             "more than one request per microsecond cannot be expressed in "
                             "microseconds");
  const std::int64_t burst = policy.burst == 0 ? policy.limit : policy.burst;
  const std::int64_t t = (period + policy.limit - 1) / policy.limit;
  // tau = burst * T, and a TAT is at most now + tau: keep tau well inside
  // 2^53 (below 2^52) so that now (about 2^51 in Unix microseconds) plus
  // tau stays exact too.
  if (burst > ((rate_limit_max_exact >> 1) - 1) / t)
    throw core::config_error(f + ".burst", "burst x emission interval must stay below 2^52 us");
}

gcra_params gcra_params_of(const rate_limit_policy& policy) noexcept {
  gcra_params p;
  const std::int64_t period = policy.period.count();
  p.emission_interval = (period + policy.limit - 1) / policy.limit;
  const std::int64_t burst = policy.burst == 0 ? policy.limit : policy.burst;
  p.tolerance = burst * p.emission_interval;
  return p;
}

sliding_window_outcome sliding_window_step(sliding_window_state s, std::int64_t now,
                                           std::int64_t cost, std::int64_t limit,
                                           std::int64_t window) noexcept {
  sliding_window_outcome o;
  // A `now` behind the stored window (another thread's clock read a moment
  // later and stored first) is taken as the window's start.
  if (now < s.window_start) now = s.window_start;
  const std::int64_t win = now - now % window;
  if (s.window_start != win) {
    // Roll: the current window becomes the previous one if it is the one
    // just before; anything older no longer counts at all.
    s.previous = s.window_start + window == win ? s.current : 0;
    s.current = 0;
    s.window_start = win;
  }
  const std::int64_t elapsed = now - win;
  const std::int64_t weighted = s.previous * (window - elapsed);  // previous's share, times W
  const std::int64_t capacity = limit * window;

  auto remaining = [&] {
    const std::int64_t left = capacity - s.current * window - weighted;
    return left > 0 ? left / window : 0;
  };
  auto reset = [&]() -> std::int64_t {
    if (s.current > 0) return win + 2 * window - now;  // current weighs until the next window ends
    if (s.previous > 0) return win + window - now;     // previous weighs until this one ends
    return 0;
  };

  if (cost > limit) {
    o.state = s;
    o.remaining = remaining();
    o.reset = reset();
    o.retry_after = -1;
    return o;
  }
  // Written so that no intermediate exceeds limit * W (< 2^53): the
  // estimate plus the cost fits iff the previous window's share fits in
  // the room the current count and the cost leave.
  if (s.current + cost <= limit && weighted <= (limit - s.current - cost) * window) {
    s.current += cost;
    o.allowed = true;
    o.state = s;
    o.remaining = remaining();
    o.reset = reset();
    return o;
  }

  o.state = s;
  o.remaining = remaining();
  o.reset = reset();
  if (s.current + cost <= limit) {
    // It fits later in this window, once enough of the previous window
    // has slid out: the smallest e with previous * (W - e) <= room, where
    // room = (limit - current - cost) * W. previous > 0 here, or it
    // would have fitted. e == W means the start of the next window, where
    // previous' = current and current' = 0, and current + cost <= limit
    // fits.
    const std::int64_t room = (limit - s.current - cost) * window;
    const std::int64_t e = window - room / s.previous;
    o.retry_after = e - elapsed;
  } else {
    // Not in this window; in the next one previous' = current (> 0 here)
    // and current' = 0: the smallest e2 with current * (W - e2) <= (limit -
    // cost) * W. e2 == W is the window after, where nothing weighs.
    const std::int64_t room = (limit - cost) * window;
    std::int64_t e2 = window - room / s.current;
    if (e2 < 0) e2 = 0;
    o.retry_after = window - elapsed + e2;
  }
  return o;
}

}  // namespace trellis::gateway
