#include "trellis/gateway/circuit_breaker.hpp"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/http/json.hpp"

namespace trellis::gateway {

std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "closed";
}

void validate(const circuit_breaker_options& o, std::string_view prefix) {
  const std::string p(prefix);
  if (o.consecutive_failures == 0 && o.failure_rate == 0)
    throw core::config_error(p + ".consecutive_failures",
                             "both triggers are off (failure_rate is 0 too): the breaker would "
                             "never open");
  if (!(o.failure_rate >= 0 && o.failure_rate <= 100))
    throw core::config_error(p + ".failure_rate", "must be in [0, 100] (0: off)");
  if (o.window <= duration::zero()) throw core::config_error(p + ".window", "must be > 0");
  if (o.window_buckets < 1 || o.window_buckets > 100)
    throw core::config_error(p + ".window_buckets", "must be in [1, 100]");
  if (o.window / o.window_buckets <= duration::zero())
    throw core::config_error(p + ".window_buckets", "more buckets than clock ticks in the window");
  if (o.open_duration <= duration::zero())
    throw core::config_error(p + ".open_duration", "must be > 0");
  if (!(o.backoff >= 1) || !std::isfinite(o.backoff))
    throw core::config_error(p + ".backoff", "must be a finite number >= 1 (1: no growth)");
  if (o.max_open_duration < o.open_duration)
    throw core::config_error(p + ".max_open_duration", "must be >= open_duration");
  if (o.max_probes < 1) throw core::config_error(p + ".max_probes", "must be >= 1");
  if (o.success_threshold < 1) throw core::config_error(p + ".success_threshold", "must be >= 1");
  if (o.max_half_open_time < duration::zero())
    throw core::config_error(p + ".max_half_open_time", "must be >= 0 (0: wait forever)");
}

namespace {

constexpr std::uint64_t pack(breaker_state s, std::uint64_t generation) noexcept {
  return generation << 2 | static_cast<std::uint64_t>(s);
}
constexpr breaker_state state_of(std::uint64_t word) noexcept {
  return static_cast<breaker_state>(word & 3u);
}

const circuit_breaker_options& checked(const circuit_breaker_options& o) {
  validate(o);
  return o;
}

}  // namespace

circuit_breaker::circuit_breaker(circuit_breaker_options options)
    : options_(checked(options)),
      bucket_width_(options_.window / options_.window_buckets),
      buckets_(options_.window_buckets) {}

breaker_permit circuit_breaker::allow(time_point now) {
  // The fast path: closed needs no change of state to say yes, so one
  // acquire load decides. A trip racing with it is harmless: the permit
  // carries the old generation and its outcome will be ignored, just as
  // for a call that was already in flight when the breaker opened.
  const std::uint64_t word = word_.load(std::memory_order_acquire);
  if (state_of(word) == breaker_state::closed) {
    allowed_fast_.fetch_add(1, std::memory_order_relaxed);
    return {breaker_permit::kind::normal, word >> 2, {}};
  }
  std::lock_guard lock(mu_);
  advance(now);
  switch (state_) {
    case breaker_state::closed:  // closed again since the load above
      ++allowed_;
      return {breaker_permit::kind::normal, generation_, {}};
    case breaker_state::open:
      ++refused_;
      return {breaker_permit::kind::refused, generation_, open_until_ - now};
    case breaker_state::half_open:
      if (probes_in_flight_ < options_.max_probes) {
        ++probes_in_flight_;
        ++allowed_;
        return {breaker_permit::kind::probe, generation_, {}};
      }
      ++refused_;
      return {breaker_permit::kind::refused, generation_, duration::zero()};
  }
  return {};
}

std::optional<breaker_state> circuit_breaker::record(const breaker_permit& permit,
                                                     call_outcome outcome, time_point now) {
  if (!permit.allowed()) return std::nullopt;
  std::lock_guard lock(mu_);
  advance(now);
  const breaker_state before = state_;
  if (permit.generation != generation_) {
    ++stale_;
    return std::nullopt;
  }
  const bool failed = outcome == call_outcome::failure;
  ++(failed ? failures_ : successes_);
  if (state_ == breaker_state::closed) {
    count_in_window(failed, now);
    if (!failed) {
      consecutive_failures_ = 0;
    } else {
      ++consecutive_failures_;
      bool open = options_.consecutive_failures > 0 &&
                  consecutive_failures_ >= options_.consecutive_failures;
      if (!open && options_.failure_rate > 0) {
        std::uint64_t requests = 0, failures = 0;
        window_totals(now, requests, failures);
        open = requests >= options_.minimum_requests &&
               static_cast<double>(failures) * 100 >=
                   options_.failure_rate * static_cast<double>(requests);
      }
      if (open) trip(now);
    }
  } else if (state_ == breaker_state::half_open) {
    if (probes_in_flight_ > 0) --probes_in_flight_;
    if (failed) {
      trip(now);  // one failed probe is enough: the upstream is not back
    } else if (++probe_successes_ >= options_.success_threshold) {
      enter(breaker_state::closed, now);
    }
  }
  return state_ != before ? std::optional(state_) : std::nullopt;
}

breaker_state circuit_breaker::state(time_point now) {
  std::lock_guard lock(mu_);
  advance(now);
  return state_;
}

breaker_snapshot circuit_breaker::snapshot(time_point now) {
  std::lock_guard lock(mu_);
  advance(now);
  breaker_snapshot s;
  s.state = state_;
  s.consecutive_failures = consecutive_failures_;
  if (state_ == breaker_state::closed) window_totals(now, s.window_requests, s.window_failures);
  s.probes_in_flight = probes_in_flight_;
  s.probe_successes = probe_successes_;
  if (state_ == breaker_state::open) {
    s.until_half_open = open_until_ - now;
    s.current_open_duration = open_for_;
  }
  s.trips = trips_;
  s.allowed = allowed_ + allowed_fast_.load(std::memory_order_relaxed);
  s.refused = refused_;
  s.successes = successes_;
  s.failures = failures_;
  s.stale = stale_;
  return s;
}

// What time alone changes: the end of an open period, and a half-open
// state that has waited too long for its probes.
void circuit_breaker::advance(time_point now) {
  if (state_ == breaker_state::open && now >= open_until_) {
    enter(breaker_state::half_open, now);
  } else if (state_ == breaker_state::half_open && options_.max_half_open_time > duration::zero() &&
             now - half_open_since_ >= options_.max_half_open_time) {
    trip(now);
  }
}

void circuit_breaker::enter(breaker_state s, time_point now) {
  state_ = s;
  ++generation_;
  consecutive_failures_ = 0;
  probes_in_flight_ = 0;
  probe_successes_ = 0;
  // A fresh window in every state: failures that opened the breaker must
  // not count again after it closes.
  for (auto& b : buckets_) b = bucket{};
  if (s == breaker_state::half_open) half_open_since_ = now;
  if (s == breaker_state::closed) reopen_count_ = 0;
  publish();
}

void circuit_breaker::trip(time_point now) {
  ++trips_;
  ++reopen_count_;
  // open_duration x backoff^(reopens - 1), capped; multiplied step by step
  // so that it stops at the cap instead of overflowing.
  duration d = options_.open_duration;
  if (options_.backoff > 1) {
    for (std::uint32_t k = 1; k < reopen_count_ && d < options_.max_open_duration; ++k) {
      const double next = static_cast<double>(d.count()) * options_.backoff;
      d = next >= static_cast<double>(options_.max_open_duration.count())
              ? options_.max_open_duration
              : duration(static_cast<duration::rep>(next));
    }
  }
  open_for_ = std::min(d, options_.max_open_duration);
  open_until_ = now + open_for_;
  enter(breaker_state::open, now);
}

std::int64_t circuit_breaker::bucket_index(time_point now) const noexcept {
  return static_cast<std::int64_t>(now.time_since_epoch() / bucket_width_);
}

void circuit_breaker::count_in_window(bool failure, time_point now) {
  const std::int64_t index = bucket_index(now);
  bucket& b = buckets_[static_cast<std::size_t>(index) % buckets_.size()];
  if (b.index != index) b = bucket{index, 0, 0};  // a slice of time that has passed: reuse
  ++b.requests;
  if (failure) ++b.failures;
}

void circuit_breaker::window_totals(time_point now, std::uint64_t& requests,
                                    std::uint64_t& failures) const {
  const std::int64_t index = bucket_index(now);
  const auto n = static_cast<std::int64_t>(buckets_.size());
  for (const auto& b : buckets_) {
    if (b.index > index - n && b.index <= index) {
      requests += b.requests;
      failures += b.failures;
    }
  }
}

void circuit_breaker::publish() noexcept {
  word_.store(pack(state_, generation_), std::memory_order_release);
}

// ---------------------------------------------------------------------------

namespace {

// The permit as a request attribute: "n<generation>" or "p<generation>".
std::string encode_permit(const breaker_permit& p) {
  return (p.type == breaker_permit::kind::probe ? "p" : "n") + std::to_string(p.generation);
}

std::optional<breaker_permit> decode_permit(std::string_view s) {
  if (s.size() < 2 || (s[0] != 'n' && s[0] != 'p')) return std::nullopt;
  breaker_permit p;
  p.type = s[0] == 'p' ? breaker_permit::kind::probe : breaker_permit::kind::normal;
  const auto [end, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), p.generation);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return p;
}

}  // namespace

circuit_breaker_middleware::circuit_breaker_middleware(std::shared_ptr<circuit_breaker> breaker,
                                                       circuit_breaker_middleware_options options)
    : breaker_(std::move(breaker)),
      options_(std::move(options)),
      attribute_("circuit_breaker:" + options_.name) {
  for (const int s : options_.failure_statuses) {
    if (s < 100 || s > 599)
      throw core::config_error("circuit_breaker.failure_statuses",
                               "status " + std::to_string(s) + " is not in [100, 599]");
    failure_[static_cast<std::size_t>(s)] = true;
  }
  if (options_.failure_statuses.empty())
    for (std::size_t s = 500; s < 600; ++s) failure_[s] = true;
}

bool circuit_breaker_middleware::is_failure(int status) const noexcept {
  return status >= 0 && status < 600 && failure_[static_cast<std::size_t>(status)];
}

time_point circuit_breaker_middleware::now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

asio::awaitable<http::filter_status> circuit_breaker_middleware::before(http::request& req,
                                                                        http::response& res) {
  const breaker_permit permit = breaker_->allow(now());
  if (permit) {
    req.set_attribute(attribute_, encode_permit(permit));
    co_return http::filter_status::proceed;
  }
  // Whole seconds, rounded up (RFC 9110 §10.2.3 has no fractions), and at
  // least 1: "0" would invite an immediate retry storm, and while half-open
  // with every probe slot taken the wait is unknown but short.
  const auto secs = std::chrono::ceil<std::chrono::seconds>(permit.retry_after).count();
  const long long retry = secs < 1 ? 1 : secs;
  const nlohmann::json extensions = {{"upstream", options_.name}, {"retry_after", retry}};
  http::set_problem(res, 503, "Service Unavailable",
                    "the circuit breaker for this upstream is open", extensions);
  (void)res.headers.set("Retry-After", std::to_string(retry));
  co_return http::filter_status::respond;
}

asio::awaitable<void> circuit_breaker_middleware::after(http::request& req, http::response& res) {
  // No attribute: before() refused (its own 503 is not an upstream outcome).
  const auto permit = decode_permit(req.attribute(attribute_));
  if (!permit) co_return;
  req.set_attribute(attribute_, "");  // recorded once, whatever happens next
  const call_outcome outcome =
      is_failure(res.status) ? call_outcome::failure : call_outcome::success;
  if (const auto changed = breaker_->record(*permit, outcome, now())) {
    core::log::warn("circuit breaker changed state",
                    {{"upstream", options_.name}, {"state", to_string(*changed)}});
  }
}

}  // namespace trellis::gateway
