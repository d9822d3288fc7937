// composition: one request in, several upstream calls out at once, one
// JSON document back — the API composition pattern (a "backend for
// frontend"): a client that wants a user's profile page asks once, and
// the gateway asks the users, orders and products services concurrently
// and merges their answers.
//
//   GET /profile/7  ->  GET users:/users/7            ┐ all at once,
//                       GET orders:/orders?user_id=7  ┘ each with its deadline
//                   <-  {"user": {...}, "orders": [...]}
//
// Why at the gateway: the client pays one round trip over its (slow,
// mobile) network instead of one per service, and the calls overlap, so
// the answer takes as long as the slowest call rather than their sum.
// The cost: the composed endpoint is only as available as the calls it
// needs, and its latency is the worst of theirs — so each call has its
// own deadline, and a call that is not `required` degrades the answer
// instead of failing it:
//
//   {"user": {...}, "orders": null,
//    "partial": true,
//    "errors": {"orders": {"status": 504, "error": "upstream timed out"}}}
//
// A required call that fails fails the whole answer (502, or 504 when it
// timed out), since there is nothing useful to show without it.
//
// Each call goes through a proxy::reverse_proxy of its own over the call's
// cluster, so it gets everything forwarding does — the cluster's balancing
// policy, health checks and outlier detection, pooled keep-alive
// connections per worker, forwarding fields, the request id — and the
// call's timeout as the proxy's total deadline. Path templates take the
// route's parameters: "/orders?user_id={id}" with the route "/profile/{id}".
// Parameters are substituted as the client sent them (still
// percent-encoded), and one holding '/', '?' or '#' is refused (400) rather
// than let it change which resource the call names.
//
// Thread-safety: configured at construction, then shared by every worker;
// handle() runs on the request's worker.
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "trellis/core/runtime.hpp"
#include "trellis/http/message.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/proxy/reverse_proxy.hpp"

namespace trellis::gateway {

struct composition_call {
  // The member of the merged document that holds this call's answer.
  std::string name;
  std::shared_ptr<lb::cluster> cluster;
  // Origin-form target with {param} placeholders: "/users/{id}".
  std::string path;
  // The call's whole deadline: connect, send, the service's thinking time
  // and the body. Short: a composed answer is as slow as its slowest call.
  std::chrono::milliseconds timeout{2'000};
  // Whether the answer is worth anything without this call.
  bool required = false;
};

struct composition_options {
  // Client request fields passed on to every call (besides the proxy's own
  // forwarding fields and the request id): the caller's identity and
  // preferences, not its framing or conditionals.
  std::vector<std::string> forward_headers{"Authorization", "Accept-Language"};
  // The largest answer taken from one call; a bigger one counts as failed.
  std::size_t max_body = 1 << 20;
  // Base options of each call's proxy (pools, retries, forwarding); each
  // call's timeout is set as its total and first-byte deadline.
  proxy::reverse_proxy_options proxy;
};

class composition {
 public:
  // Throws core::config_error: no calls ("calls"), a call without name,
  // cluster or path, two calls with one name ("calls[1].name"), a path
  // naming a parameter twice or not starting with '/' ("calls[0].path").
  composition(core::runtime& rt, std::vector<composition_call> calls,
              composition_options options = {});
  ~composition();
  composition(const composition&) = delete;
  composition& operator=(const composition&) = delete;

  // The handler for a router route; it refers to this object.
  http::handler handler();
  // Runs every call at once and answers the merged document (200), or
  // 502/504 when a required call failed, 400 for a parameter that would
  // change a call's path. REQUIRES: runs on a worker of the runtime.
  asio::awaitable<void> handle(http::request& req, http::response& res);

  // The target of `call` for a request with these route parameters, or
  // nullopt when a parameter is missing or holds '/', '?' or '#'.
  static std::optional<std::string> expand(std::string_view path, const http::request& req);

 private:
  struct call_state;
  std::vector<std::unique_ptr<call_state>> calls_;
  composition_options options_;
};

}  // namespace trellis::gateway
