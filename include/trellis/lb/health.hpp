// Active health checking: probing each upstream host on a timer and taking
// it out of rotation after `fall` failed checks in a row, back in after
// `rise` passed ones.
//
// Two parts, kept apart so that the logic is tested without sockets:
//   * health_state — the pure hysteresis of HAProxy's `check inter rise
//     fall` and Envoy's healthy/unhealthy thresholds: feed it check
//     results, it says when the host changes state. A host that is up
//     goes down after `fall` consecutive failures; one that is down comes
//     up after `rise` consecutive passes. A host that starts unhealthy
//     (start_healthy = false) and has never been checked comes up on its
//     first pass, as Envoy does for newly added hosts: the threshold is
//     there to resist flapping, and a host with no history cannot flap.
//   * run_check() — one bounded probe over the network: `tcp` passes when
//     a connection is made within the timeout; `http` connects, sends
//     `GET <path> HTTP/1.1` with Host and `Connection: close`, and passes
//     when the status line (read with the codec's response parser) has a
//     status in [expected_status_min, expected_status_max] (HAProxy's
//     `http-check expect status`), all within the same timeout. The body is
//     not read. lb::cluster runs one such probe loop per host (cluster.hpp).
// Checks are spaced by interval + a random jitter (a fraction of the
// interval), so that the checks of many hosts — and of many proxies — do
// not fall in step and hit an upstream at the same instant.
//
// Thread-safety: health_check_options is a value; health_state is plain
// state, guarded by its owner (the cluster's mutex); run_check() is a
// coroutine that must run on an executor driven by one thread (it uses
// net::deadline), as every trellis worker is.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace trellis::lb {

enum class health_check_type : std::uint8_t {
  none,  // no active checks: hosts are healthy unless ejected
  tcp,   // a TCP connect within the timeout
  http,  // an HTTP/1.1 GET whose status is in the expected range
};

std::string_view to_string(health_check_type type) noexcept;

struct health_check_options {
  // Default none: active checks cost each upstream a connection per
  // interval per proxy; passive outlier detection is on anyway.
  health_check_type type = health_check_type::none;
  // Time between two checks of a host. > 0; default 5 s (Envoy's usual;
  // HAProxy's `inter` is 2 s). Shorter finds a dead host sooner and costs
  // the upstream more probes.
  std::chrono::milliseconds interval{5'000};
  // Bound of one whole check (connect, request, status line). > 0 and at
  // most `interval`; default 1 s. A check that takes longer fails.
  std::chrono::milliseconds timeout{1'000};
  // Random extra wait added to each interval, as a fraction of it: the
  // wait is interval x (1 + U[0, jitter)). [0, 1]; default 0.1. The first
  // check of a host waits interval x U[0, jitter) only, so hosts are
  // checked soon after start() but not all at once.
  double jitter = 0.1;
  // Consecutive passes that bring an unhealthy host back. >= 1; default 2
  // (HAProxy's). Higher keeps a flapping host out longer.
  std::uint32_t rise = 2;
  // Consecutive failures that take a healthy host out. >= 1; default 3
  // (HAProxy's). Lower reacts faster and trips on a single slow check more.
  std::uint32_t fall = 3;
  // http: the request target. Must start with '/'; default "/".
  std::string path = "/";
  // http: the Host header. Empty (the default): the host's address as
  // configured ("10.0.0.7:8080").
  std::string host_header;
  // http: the statuses that pass, inclusive. Default 200-399, HAProxy's
  // default for `option httpchk`. 100 <= min <= max <= 599.
  int expected_status_min = 200;
  int expected_status_max = 399;
  // The state of a host before its first check. Default true: a new
  // cluster serves at once (HAProxy's behaviour); false holds every host
  // out until it has passed a check (Envoy's, when asked), which makes a
  // cold start wait one interval.
  bool start_healthy = true;
};

// Throws core::config_error naming the field ("<prefix>.rise", ...) when
// an option is out of range.
void validate(const health_check_options& options, std::string_view prefix = "cluster.health");

enum class health_transition : std::uint8_t { none, became_healthy, became_unhealthy };

// rise/fall hysteresis over a sequence of check results.
class health_state {
 public:
  // REQUIRES: rise >= 1, fall >= 1.
  health_state(std::uint32_t rise, std::uint32_t fall, bool healthy) noexcept;
  explicit health_state(const health_check_options& options) noexcept
      : health_state(options.rise, options.fall, options.start_healthy) {}

  // One check result; returns the transition it caused, if any.
  health_transition record(bool passed) noexcept;

  bool healthy() const noexcept { return healthy_; }
  // At least one result was recorded.
  bool checked() const noexcept { return checked_; }
  std::uint32_t consecutive_passes() const noexcept { return passes_; }
  std::uint32_t consecutive_failures() const noexcept { return failures_; }

 private:
  std::uint32_t rise_;
  std::uint32_t fall_;
  std::uint32_t passes_ = 0;
  std::uint32_t failures_ = 0;
  bool healthy_;
  bool checked_ = false;
};

// The outcome of one probe.
struct check_result {
  bool passed = false;
  // Why it failed when no status was judged: net::error::timed_out, a
  // connect or read error, an http::error for a malformed status line,
  // asio::error::eof when the host closed before answering. Empty when it
  // passed or failed on its status.
  std::error_code error;
  // The HTTP status received (http checks), else 0.
  int status = 0;

  // "passed", "passed: status 200", "failed: status 500",
  // "failed: Connection refused"...: for logs and the admin page.
  std::string describe() const;
};

// One probe of `target` as `options` say (type tcp or http), bounded by
// options.timeout. `host_header` is the Host sent by http checks when
// options.host_header is empty. Never throws for network failures: they
// are failed results.
// REQUIRES: options.type != none; the calling coroutine's executor is run
// by one thread.
asio::awaitable<check_result> run_check(asio::ip::tcp::endpoint target,
                                        const health_check_options& options,
                                        std::string host_header);

}  // namespace trellis::lb
