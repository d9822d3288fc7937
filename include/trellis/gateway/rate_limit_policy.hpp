// Rate-limit policies and the two algorithms that enforce them, as pure
// integer arithmetic: GCRA (a token bucket with one stored number per key)
// and the two-counter sliding window.
//
// A policy says "at most `limit` requests per `period`" for one key (a
// client address, an API key...). How other systems say it:
//   - nginx limit_req: `rate=10r/s burst=20` — a leaky bucket; requests
//     beyond the burst are refused (nodelay) or queued;
//   - Envoy's local rate limit filter: a token bucket of `max_tokens`
//     refilled with `tokens_per_fill` every `fill_interval`, kept in
//     process memory;
//   - Kong's rate-limiting plugin: fixed (or sliding) windows per second,
//     minute, hour..., in local memory, a database or Redis;
//   - redis-cell (CL.THROTTLE) and Stripe's limiter: GCRA, the generic cell
//     rate algorithm from ATM networks (ITU-T I.371), which is a token
//     bucket that stores the time instead of the token count.
// trellis offers the last two shapes:
//
// GCRA (rate_limit_algorithm::token_bucket). One emission interval
// T = period / limit passes per token; the bucket holds `burst` tokens, so
// the tolerance is tau = burst * T. The only state is the theoretical
// arrival time (TAT): the time at which the bucket would be full again if
// nothing else arrived. A request of cost n at time `now` is allowed when
//     max(TAT, now) + n*T - tau <= now
// and then TAT becomes max(TAT, now) + n*T. A fresh key (TAT <= now) takes
// `burst` requests at once, then one per T. Refused requests change
// nothing, so a client that keeps knocking while limited gets back in at
// the normal rate (nginx and redis-cell behave the same). Compared with a
// counting token bucket, there is no refill step and no "last refill"
// field: one number per key, one read and one write, which is what makes
// it a five-line Redis script.
//
// Sliding window (rate_limit_algorithm::sliding_window). The two-counter
// approximation popularised by Cloudflare: time is cut into fixed windows
// of length W = period aligned on multiples of W; the state is the start
// of the current window and the counts of the current and the previous
// window. At `elapsed` into the current window the estimate of the last W
// is
//     previous * (W - elapsed) / W + current
// i.e. the previous window is assumed to have been spread evenly, and only
// the part of it still inside the sliding W is counted.
//   Error bound: the estimate is exact for evenly spread traffic. At worst
//   (all of the previous window's requests arriving in its last instant)
//   a span of W may hold up to limit + previous * elapsed / W requests,
//   which is below 2 * limit; it is never more than that, because each
//   fixed window alone stays within `limit`. In the other direction it
//   refuses at most previous * (W - elapsed) / W requests that a true
//   sliding log would allow (when the previous window's requests came
//   early). Cloudflare measured 0.003% of requests wrongly decided on real
//   traffic.
//
// Which to choose. GCRA for rates ("10 per second, bursts of 20"): it
// smooths, states the burst explicitly, and its worst case is exact
// (burst + t/T requests in any span t). The sliding window for quotas
// that people read as counts ("1000 per hour"): remaining counts that
// go down one per request and come back at window edges, matching the
// RateLimit header's quota/window vocabulary, at the price of the
// approximation above and three numbers per key. Both refuse a request
// whose cost can never fit (GCRA: cost > burst; window: cost > limit)
// without touching the state.
//
// Units and exactness. Times are integer microseconds since the clock's
// epoch (int64); every operation is an integer +, -, *, comparison or
// floor division of non-negative numbers, with every intermediate below
// 2^53. That is deliberate: a Redis Lua script (Lua 5.1 numbers are IEEE
// doubles, exact for integers below 2^53) runs the very same steps
// atomically and gets the very same answers, with `now` from Redis's TIME
// (seconds * 1000000 + microseconds, about 1.7e15 today). The sketches
// beside gcra_step and sliding_window_step are that script. GCRA's T is
// period / limit rounded UP to a whole microsecond, so the rate is never
// above the policy; it is exact when limit divides the period in
// microseconds (10/s, 100/min, 1000/h) and otherwise low by less than one
// part in T (3/s: T = 333334 us, 0.0003% low). validate() refuses the
// policies whose numbers would leave that range.
//
// Thread-safety: pure functions and plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace trellis::gateway {

enum class rate_limit_algorithm : std::uint8_t {
  token_bucket,    // GCRA: a rate with an explicit burst
  sliding_window,  // two-counter approximation of a sliding window count
};

// The largest integer every intermediate stays below (2^53): what a Lua
// (double) mirror of the arithmetic computes exactly.
inline constexpr std::int64_t rate_limit_max_exact = std::int64_t{1} << 53;

struct rate_limit_policy {
  // Names the policy in headers ("RateLimit: "name";r=..."), metrics and
  // store keys: the state of a key under a policy is found by this name, so
  // policies sharing one store need distinct names. 1 to 64 characters of
  // [A-Za-z0-9_.-] (safe in a structured-field string, a metric label and a
  // Redis key without escaping).
  std::string name = "default";
  rate_limit_algorithm algorithm = rate_limit_algorithm::token_bucket;
  // Requests (cost units) per period. >= 1; no default that would suit
  // everyone, so 0 is refused by validate().
  std::int64_t limit = 0;
  // The period, and for the sliding window its window length. >= 1 us.
  // Whole seconds read best in RateLimit-Policy's w parameter (seconds).
  std::chrono::microseconds period = std::chrono::seconds(1);
  // Token bucket only: how many requests a full bucket admits at once.
  // 0 means `limit` (a period's worth, Envoy's usual max_tokens). 1 gives
  // strict spacing (one request per T, like nginx without burst); larger
  // tolerates clients that send in bursts — and lets a burst through.
  std::int64_t burst = 0;
};

// Throws core::config_error naming "<field>.name", "<field>.limit",
// "<field>.period" or "<field>.burst" when the policy is unusable: a bad
// name, limit < 1, period < 1 us, burst < 0, T = period / limit below
// 1 us, or numbers whose arithmetic would reach 2^53 (token bucket:
// burst * T; sliding window: limit * period in us, e.g. at most ~2.5
// million per hour).
void validate(const rate_limit_policy& policy, std::string_view field = "rate_limit.policy");

// ---------------------------------------------------------------------------
// GCRA

// A token-bucket policy in GCRA terms, in microseconds.
struct gcra_params {
  std::int64_t emission_interval = 1;  // T: ceil(period / limit)
  std::int64_t tolerance = 1;          // tau: burst * T
};

// REQUIRES: validate(policy) passes and policy is a token bucket.
gcra_params gcra_params_of(const rate_limit_policy& policy) noexcept;

struct gcra_outcome {
  bool allowed = false;
  // The TAT to store: the new one when allowed, `stored_tat` unchanged when
  // refused (so refusal writes nothing).
  std::int64_t tat = 0;
  // Whole requests of cost 1 the bucket would still admit now, after this
  // one when allowed.
  std::int64_t remaining = 0;
  // Microseconds until the bucket is full again (0: it is full). Also the
  // time-to-live of the key in a store: after it, the key carries nothing.
  std::int64_t reset = 0;
  // Refused: microseconds until this same cost would be allowed; -1 when it
  // never would (cost > burst). 0 when allowed.
  std::int64_t retry_after = 0;
};

// One GCRA step: a request of `cost` at `now` against the stored TAT (pass
// `now`, or anything earlier, for a key with no state). Cost 0 is a peek.
// REQUIRES: cost >= 0; p from gcra_params_of.
//
// The same step in Redis Lua (KEYS[1] the key; ARGV: T, tau, cost):
//   local t = redis.call('TIME'); local now = t[1] * 1000000 + t[2]
//   local T, tau, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
//   local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
//   local burst = tau / T                     -- exact: tau = burst * T
//   if cost > burst then return {0, -1} end   -- never fits; nothing written
//   local new_tat = tat + cost * T
//   if new_tat - tau > now then return {0, new_tat - tau - now} end
//   redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
//   return {1, 0}   -- remaining = math.floor((tau - (new_tat - now)) / T)
constexpr gcra_outcome gcra_step(std::int64_t stored_tat, std::int64_t now, std::int64_t cost,
                                 gcra_params p) noexcept {
  gcra_outcome o;
  const std::int64_t tat = stored_tat > now ? stored_tat : now;
  const std::int64_t burst = p.tolerance / p.emission_interval;
  // Tokens available now: how far TAT is from "now + tau", in whole T.
  // Clamped at 0 for a TAT stored by a clock running ahead of ours.
  const std::int64_t slack = p.tolerance - (tat - now);
  const std::int64_t available = slack > 0 ? slack / p.emission_interval : 0;
  o.tat = stored_tat;
  if (cost > burst) {  // compared before multiplying, so cost * T stays small
    o.remaining = available;
    o.reset = tat - now;
    o.retry_after = -1;
    return o;
  }
  const std::int64_t new_tat = tat + cost * p.emission_interval;
  const std::int64_t allow_at = new_tat - p.tolerance;
  if (allow_at > now) {
    o.remaining = available;
    o.reset = tat - now;
    o.retry_after = allow_at - now;
    return o;
  }
  o.allowed = true;
  o.tat = new_tat;
  o.remaining = (p.tolerance - (new_tat - now)) / p.emission_interval;
  o.reset = new_tat - now;
  return o;
}

// ---------------------------------------------------------------------------
// Sliding window (two counters)

// The stored state; all zero for a key with none.
struct sliding_window_state {
  std::int64_t window_start = 0;  // start of the current window, a multiple of W
  std::int64_t current = 0;       // cost admitted in the current window
  std::int64_t previous = 0;      // cost admitted in the window before it

  bool operator==(const sliding_window_state&) const = default;
};

struct sliding_window_outcome {
  bool allowed = false;
  // The state to store (the input, rolled to now's window, plus the cost
  // when allowed). Writing it back on refusal is harmless but not needed.
  sliding_window_state state;
  // Whole requests of cost 1 the estimate would still admit now.
  std::int64_t remaining = 0;
  // Microseconds until the window counts nothing of what it holds (0: it is
  // empty); the key's time-to-live in a store.
  std::int64_t reset = 0;
  // Refused: microseconds until this cost would be allowed, if nothing else
  // arrives; -1 when it never would (cost > limit). 0 when allowed.
  std::int64_t retry_after = 0;
};

// One sliding-window step: a request of `cost` at `now` against state `s`,
// under `limit` per window of `window` microseconds. The comparison
//     previous * (W - elapsed) <= (limit - current - cost) * W
// is "estimate + cost <= limit" multiplied through by W: exact, no
// division, no intermediate above limit * W.
// REQUIRES: now >= 0, cost >= 0, limit >= 1, window >= 1,
// limit * window < 2^53 (validate() checks it).
//
// In Redis Lua (KEYS[1] a hash with fields s, c, p; ARGV: limit, W, cost):
//   local now = <TIME as above>; local W = tonumber(ARGV[2]) ...
//   local s, c, p = <HMGET, 0 for missing>; if now < s then now = s end
//   local win = now - now % W
//   if s ~= win then if s + W == win then p = c else p = 0 end c = 0 end
//   local e = now - win
//   if c + cost <= limit and p * (W - e) <= (limit - c - cost) * W then
//     c = c + cost; HSET s win c c p p; PEXPIRE ceil((win + 2W - now) / 1000)
//   end
sliding_window_outcome sliding_window_step(sliding_window_state s, std::int64_t now,
                                           std::int64_t cost, std::int64_t limit,
                                           std::int64_t window) noexcept;

}  // namespace trellis::gateway
