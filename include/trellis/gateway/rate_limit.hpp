// rate_limiter: HTTP middleware that limits how often one client may call,
// with the IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-
// headers, structured-field form) and 429 Too Many Requests (RFC 6585 §4)
// with Retry-After (RFC 9110 §10.2.3).
//
//   auto store = std::make_shared<gateway::local_rate_limit_store>();
//   gateway::rate_limit_options o;
//   o.policies = {{.name = "burst", .limit = 10, .period = 1s, .burst = 20},
//                 {.name = "hourly", .algorithm = gateway::rate_limit_algorithm::sliding_window,
//                  .limit = 1000, .period = 1h}};
//   router.use(std::make_shared<gateway::rate_limiter>(std::move(o), store));
//
// Per request: find the key (the client address, the authenticated
// subject, or a header's value), charge it to every policy at once (all
// must allow; none is charged if one refuses — see rate_limit_store.hpp),
// then either let the request through or answer 429:
//   HTTP/1.1 429 Too Many Requests
//   RateLimit-Policy: "burst";q=10;w=1, "hourly";q=1000;w=3600
//   RateLimit: "burst";r=0;t=2
//   Retry-After: 1
//   Content-Type: application/problem+json
//   {"type":"about:blank","title":"Too Many Requests","status":429,
//    "detail":"rate limit exceeded","policy":"burst","retry_after":1}
// RateLimit-Policy lists every policy (q: quota, w: window in seconds);
// RateLimit reports the most restrictive one: on a refusal the refusing
// policy with the longest wait, otherwise the one with the fewest requests
// remaining (r), with t the seconds until its state is back to full.
// Retry-After is delta-seconds rounded up, so a client that waits that
// long is admitted (if nothing else spent the quota meanwhile).
//
// Keys (rate_limit_key):
//   client_ip  the request attribute "client.ip" when an earlier middleware
//              set it (a trusted proxy's X-Forwarded-For), else the peer's
//              address. IPv6 addresses are grouped by prefix (/64 by
//              default: one subscriber usually holds a whole /64, so per-
//              address limits would be trivially dodged); IPv4-mapped IPv6
//              counts as the IPv4 address;
//   subject    the attributes "auth.method" and "auth.subject" set by the
//              authentication middleware (an API key's name, a JWT's sub);
//              the method is part of the key, so a JWT subject and an API
//              key of the same name never share a bucket;
//   header     the value of one request header.
// A request without a key value (no subject, no header, an unknown peer)
// is limited under one shared key (default), refused with 403, or let
// through — missing_key_action. Key values longer than max_key_bytes are
// replaced by their SHA-256, which bounds the store's memory per key.
//
// The store failing (a Redis store that is down): fail open (default; the
// request goes through unlimited and counts as a store error) or fail
// closed (503). Open is what Envoy (failure_mode_deny: false) and Kong
// (fault_tolerant) default to: a limiter is a safety net, and an outage
// of the net should not become an outage of the API.
//
// Metrics, when a registry is given: <prefix>_requests_total{policy,
// result="allowed"|"limited"} counts each policy's decisions on requests
// it was asked about (a refused request counts "limited" for the policies
// that refused it only), and <prefix>_store_errors_total{policy}.
//
// Thread-safety: configure, then share one rate_limiter across every
// worker (it keeps no per-request state of its own; the store is shared
// and thread-safe, the counters are atomic).
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trellis/core/metrics.hpp"
#include "trellis/gateway/rate_limit_policy.hpp"
#include "trellis/gateway/rate_limit_store.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

enum class rate_limit_key : std::uint8_t {
  client_ip,  // "client.ip" attribute, else the peer address
  subject,    // "auth.method" + "auth.subject" attributes
  header,     // the value of rate_limit_options::header
};

enum class missing_key_action : std::uint8_t {
  shared,  // limit all keyless requests together under one key
  refuse,  // answer 403: the route may only be used with a key
  allow,   // let them through unlimited (and uncounted)
};

struct rate_limit_options {
  // Every policy must allow a request. At least one; names distinct.
  std::vector<rate_limit_policy> policies;
  // What identifies a client. Default: its address.
  rate_limit_key key = rate_limit_key::client_ip;
  // The field whose value is the key, for rate_limit_key::header
  // ("X-API-Key"). Required then, ignored otherwise.
  std::string header;
  // IPv6 client addresses are limited per prefix of this length. Default
  // 64 (a subscriber's usual allocation); 128 limits each address, which
  // a client with a /64 dodges by changing addresses; 48 is stricter still
  // and may lump distinct sites together. 1..128.
  unsigned ipv6_prefix = 64;
  // Requests with no key value: see missing_key_action. Default shared:
  // they are limited, together, which is safe without being a lock-out.
  missing_key_action on_missing_key = missing_key_action::shared;
  // The store failing: true lets requests through (default, see above);
  // false answers 503, which protects the upstream at the price of an
  // outage whenever the store is down.
  bool fail_open = true;
  // Add RateLimit-Policy and RateLimit to every response, not only to 429s.
  // Default true, as clients can only pace themselves if they are told
  // before being refused; costs about 80 bytes per response.
  bool headers_on_success = true;
  // Key values longer than this many bytes are hashed (SHA-256) first, so
  // a client cannot make the store hold large keys. >= 16.
  std::size_t max_key_bytes = 128;
  // The cost of a request (its weight in the policies' units); null means
  // 1 each. A negative answer counts as 0 (a peek that never refuses
  // unless the bucket is already over). Runs on the worker, per request.
  std::function<std::int64_t(const http::request&)> cost;
  // Time source, microseconds since its epoch, shared by all users of the
  // store. Null means the steady clock. Tests inject a manual one.
  std::function<std::chrono::microseconds()> clock;
  // Counters go here when set. REQUIRES: outlives the rate_limiter.
  core::metrics_registry* metrics = nullptr;
  // Metric name prefix (see above); must make valid Prometheus names.
  std::string metrics_prefix = "trellis_rate_limit";
};

class rate_limiter final : public http::middleware {
 public:
  // Throws core::config_error naming the field ("rate_limit.policies",
  // "rate_limit.policies[1].limit", "rate_limit.header",
  // "rate_limit.ipv6_prefix", "rate_limit.max_key_bytes",
  // "rate_limit.store") for a bad configuration.
  rate_limiter(rate_limit_options options, std::shared_ptr<rate_limit_store> store);
  ~rate_limiter() override;

  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;
  asio::awaitable<void> after(http::request& req, http::response& res) override;

  // The key this limiter would charge `req` under ("ip:192.0.2.1",
  // "ip:2001:db8::/64", "sub:jwt:alice", "hdr:...", or "" when there is
  // none). Exposed for tests and access logs.
  std::string key_of(const http::request& req) const;

 private:
  struct policy_metrics;

  rate_limit_options options_;
  std::shared_ptr<rate_limit_store> store_;
  std::string policy_header_;   // RateLimit-Policy, the same on every response
  std::string attribute_name_;  // where before() leaves the RateLimit value for after()
  std::vector<policy_metrics> metrics_;
};

}  // namespace trellis::gateway
