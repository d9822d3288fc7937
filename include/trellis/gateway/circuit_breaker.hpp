// Circuit breaker: stop calling an upstream that is failing, so that it
// gets room to recover and callers get a fast 503 instead of a slow
// timeout.
//
// The state machine of Hystrix and resilience4j:
//
//   closed ──(N consecutive failures, or a failure rate at or above R% over
//   │         the last `window`, once it saw `minimum_requests`)──> open
//   open ──(open_duration elapsed)──> half-open
//   half-open ──(success_threshold probe successes)──> closed
//   half-open ──(one probe failure, or no verdict within max_half_open_time)──> open
//
// While open every request is refused at once, with the time left until
// a probe may be tried (what Retry-After says). Half-open lets at most
// `max_probes` requests through at a time; the rest are refused. Each
// time the breaker opens again without having closed in between, the
// open duration is multiplied by `backoff` (capped at max_open_duration):
// an upstream that stays down is probed less and less often. Closing
// resets it.
//
// How this differs from Envoy, which uses both words: Envoy's "circuit
// breaking" is a set of concurrency thresholds (max connections, pending
// and active requests; see gateway/concurrency_limit.hpp), and the
// breaker described here is closer to its outlier detection
// (lb/outlier.hpp), which ejects one host of a cluster. This breaker
// guards a whole upstream (a cluster, an external API) as seen from one
// route, which is where a gateway wants it.
//
// The class is a pure policy (ARCHITECTURE.md principle 7): it never reads
// a clock; every call takes `now`, so tests drive it to the tick with a
// manual clock. Transitions happen lazily inside those calls.
//
// Thread-safety: one breaker guards one upstream for the whole process, so
// every worker thread shares it, and every member function is safe to call
// concurrently. The hot path — allow() while closed — is lock-free: the
// state and its generation live in one atomic word read with acquire
// ordering. Everything else (recording an outcome, the open and half-open
// states) takes one mutex held for a few dozen instructions and never
// across I/O. A lock-free design would need several words (counters, the
// rolling buckets, the state) to change together, which means either a
// lock anyway or a snapshot-and-CAS scheme far harder to get right; at
// request rates an uncontended mutex costs tens of nanoseconds, next to
// the upstream call it guards.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/http/router.hpp"

namespace trellis::gateway {

using time_point = std::chrono::steady_clock::time_point;
using duration = std::chrono::steady_clock::duration;

enum class breaker_state : std::uint8_t { closed, open, half_open };

// "closed", "open", "half_open".
std::string_view to_string(breaker_state s) noexcept;

struct circuit_breaker_options {
  // Failures in a row, while closed, that open the breaker. 0 turns this
  // trigger off. Default 5 (Envoy's consecutive_5xx). Lower reacts to a
  // short bad patch; higher lets more requests fail first. It catches a
  // dead upstream quickly even at low traffic, where a rate needs
  // minimum_requests first.
  std::uint32_t consecutive_failures = 5;
  // Failure rate, in percent, over the rolling window that opens the
  // breaker when reached. (0, 100], or 0 to turn this trigger off. Default
  // 50 (resilience4j's failureRateThreshold). It catches an upstream that
  // fails often but not consecutively (one bad host of three).
  double failure_rate = 50;
  // Outcomes the window must hold before its rate counts. Default 20
  // (Hystrix's requestVolumeThreshold): with fewer, 1 failure in 2 would
  // be 50%.
  std::uint32_t minimum_requests = 20;
  // Length of the rolling window. > 0; default 10 s (Hystrix's). Longer
  // remembers old failures; shorter is jumpier.
  duration window = std::chrono::seconds(10);
  // The window is kept as this many buckets, each window/buckets long;
  // the oldest bucket drops out whole as time moves. [1, 100]; default 10.
  // More buckets slide more smoothly; each costs 16 bytes and one add per
  // rate check.
  std::uint32_t window_buckets = 10;
  // How long the breaker stays open the first time. > 0; default 5 s
  // (Hystrix's sleepWindow). This is the time the upstream gets to
  // recover, and the latency of noticing that it did.
  duration open_duration = std::chrono::seconds(5);
  // Factor applied to the open duration each time the breaker reopens
  // without having closed. >= 1; 1 disables growth. Default 2.
  double backoff = 2;
  // Upper bound of one open period. >= open_duration; default 60 s. It
  // bounds how long a recovered upstream goes unused.
  duration max_open_duration = std::chrono::seconds(60);
  // Requests let through at a time while half-open. >= 1; default 1. More
  // probes decide faster but send more load at a maybe-still-sick
  // upstream.
  std::uint32_t max_probes = 1;
  // Probe successes that close the breaker. >= 1; default 2. One lucky
  // request should not reopen the floodgates.
  std::uint32_t success_threshold = 2;
  // If half-open lasts this long without reaching a verdict, the breaker
  // reopens (as if a probe had failed). 0 waits forever. Default 60 s.
  // Without it a probe whose outcome is never recorded (its caller lost
  // the permit) would hold the breaker half-open, refusing everything,
  // for good; with it a probe slower than this counts as a failure, which
  // a probe that slow deserves.
  duration max_half_open_time = std::chrono::seconds(60);
};

// Throws core::config_error naming the field ("<prefix>.failure_rate",
// ...) when an option is out of range, or when both triggers are off
// (field "<prefix>.consecutive_failures": a breaker that can never open).
void validate(const circuit_breaker_options& options, std::string_view prefix = "circuit_breaker");

// What allow() answered. A permit that was granted must be handed back to
// record() exactly once, with the outcome of the call it allowed.
struct breaker_permit {
  enum class kind : std::uint8_t { refused, normal, probe };
  kind type = kind::refused;
  // The breaker state's generation when the permit was granted; an outcome
  // from an earlier generation (a call allowed before the breaker opened,
  // finishing after) changes nothing.
  std::uint64_t generation = 0;
  // For a refusal: the time until the breaker turns half-open. Zero when
  // it already is and every probe slot is taken: a slot frees up when a
  // probe finishes, which cannot be predicted.
  duration retry_after{};

  bool allowed() const noexcept { return type != kind::refused; }
  explicit operator bool() const noexcept { return allowed(); }
};

enum class call_outcome : std::uint8_t { success, failure };

// The breaker as an admin page shows it.
struct breaker_snapshot {
  breaker_state state = breaker_state::closed;
  std::uint32_t consecutive_failures = 0;  // closed: failures in a row
  std::uint64_t window_requests = 0;       // closed: outcomes in the rolling window
  std::uint64_t window_failures = 0;       // closed: failures among them
  std::uint32_t probes_in_flight = 0;      // half-open
  std::uint32_t probe_successes = 0;       // half-open: towards success_threshold
  duration until_half_open{};              // open: time left
  duration current_open_duration{};        // open: the length of this open period
  std::uint64_t trips = 0;                 // times opened, since construction
  std::uint64_t allowed = 0;               // permits granted (normal and probe)
  std::uint64_t refused = 0;               // permits refused
  std::uint64_t successes = 0;             // outcomes recorded, by kind
  std::uint64_t failures = 0;
  std::uint64_t stale = 0;  // outcomes ignored: their permit predates the current state
};

class circuit_breaker {
 public:
  // Throws core::config_error (see validate()).
  explicit circuit_breaker(circuit_breaker_options options = {});
  circuit_breaker(const circuit_breaker&) = delete;
  circuit_breaker& operator=(const circuit_breaker&) = delete;

  // May a call go to the upstream now? Closed: yes (lock-free). Open: no,
  // until open_duration has passed, when the breaker turns half-open.
  // Half-open: yes while fewer than max_probes probes are in flight.
  breaker_permit allow(time_point now);

  // The outcome of a call allowed by `permit`. Returns the new state when
  // this outcome changed it (the breaker opened or closed), for the
  // caller to log. A refused permit, or one from an earlier generation,
  // changes nothing.
  std::optional<breaker_state> record(const breaker_permit& permit, call_outcome outcome,
                                      time_point now);

  // The current state (applying any transition that time brought).
  breaker_state state(time_point now);
  breaker_snapshot snapshot(time_point now);
  const circuit_breaker_options& options() const noexcept { return options_; }

 private:
  struct bucket {
    std::int64_t index = -1;  // which bucket-width slice of time it counts
    std::uint32_t requests = 0;
    std::uint32_t failures = 0;
  };

  // All private helpers REQUIRE mu_ held.
  void advance(time_point now);
  void enter(breaker_state s, time_point now);
  void trip(time_point now);
  void count_in_window(bool failure, time_point now);
  void window_totals(time_point now, std::uint64_t& requests, std::uint64_t& failures) const;
  std::int64_t bucket_index(time_point now) const noexcept;
  void publish() noexcept;

  const circuit_breaker_options options_;
  const duration bucket_width_;

  // state_ and generation_, packed as generation << 2 | state, for the
  // lock-free closed path. Written under mu_ only.
  std::atomic<std::uint64_t> word_{0};
  std::atomic<std::uint64_t> allowed_fast_{0};  // permits granted without the lock

  mutable std::mutex mu_;
  breaker_state state_ = breaker_state::closed;
  std::uint64_t generation_ = 0;
  std::uint32_t consecutive_failures_ = 0;
  std::vector<bucket> buckets_;
  time_point open_until_{};
  duration open_for_{};
  std::uint32_t reopen_count_ = 0;  // opens since the last close
  time_point half_open_since_{};
  std::uint32_t probes_in_flight_ = 0;
  std::uint32_t probe_successes_ = 0;
  std::uint64_t trips_ = 0, allowed_ = 0, refused_ = 0, successes_ = 0, failures_ = 0, stale_ = 0;
};

// ---------------------------------------------------------------------------
// Middleware: a breaker in front of the handlers of a router (use it on a
// router, or on one whose routes all reach the same upstream).
//
// before(): asks the breaker; refused -> 503 with Retry-After (whole
// seconds, rounded up, at least 1) and a small JSON body, and the handler
// (the upstream call) is skipped. after(): records the outcome from the
// final status — by default every 5xx is a failure, everything else a
// success (a 4xx is the client's fault, not the upstream's). A handler
// that throws has become a 500 by then, so it counts as a failure.
//
// Put it last in the chain, next to the handler: middleware after it
// that answers by itself (an auth 401, a rate-limit 429) would be counted
// as an upstream success.
struct circuit_breaker_middleware_options {
  // Names the upstream in the 503 body and in log lines. Also keys the
  // request attribute ("circuit_breaker:<name>") that carries the permit
  // from before() to after(), so breakers of different names can be
  // stacked on one router.
  std::string name = "upstream";
  // Statuses counted as failures. Empty (the default): every 5xx. Set
  // {502, 503, 504} to count only what gateways answer for an upstream
  // that is down or slow, not an application's own 500s. Each in
  // [100, 599].
  std::vector<int> failure_statuses;
  // The clock (tests inject a manual one). Default: the steady clock.
  std::function<time_point()> clock;
};

class circuit_breaker_middleware final : public http::middleware {
 public:
  // REQUIRES: breaker is not null. Throws core::config_error
  // ("circuit_breaker.failure_statuses") for a status outside [100, 599].
  explicit circuit_breaker_middleware(std::shared_ptr<circuit_breaker> breaker,
                                      circuit_breaker_middleware_options options = {});

  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;
  asio::awaitable<void> after(http::request& req, http::response& res) override;

  // Whether `status` counts as a failure under these options.
  bool is_failure(int status) const noexcept;
  circuit_breaker& breaker() const noexcept { return *breaker_; }

 private:
  time_point now() const;

  std::shared_ptr<circuit_breaker> breaker_;
  circuit_breaker_middleware_options options_;
  std::string attribute_;
  std::array<bool, 600> failure_{};  // by status
};

}  // namespace trellis::gateway
