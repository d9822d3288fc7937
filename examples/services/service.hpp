// service: what the three demo services share — the run-time knobs, the
// middleware every response passes through, /health and /admin/*, and the
// helpers their handlers use to answer errors in one shape.
//
// Middleware, in order (after() runs in reverse):
//   instance_header   X-Instance: NAME on every response, including the
//                     router's own 404/405 and injected failures, so a demo
//                     behind a gateway shows which replica answered;
//   problem_errors    turns the router's plain-text 404, 405 and 500 into
//                     RFC 9457 problem+json, so every error has one shape;
//   fault_injection   on API routes (everything but /health and /admin/*):
//                     waits the latency, then fails with the fail status at
//                     the fail rate — what a gateway's timeouts, retries and
//                     circuit breaker are demonstrated against.
//
// Thread-safety: one knobs object is shared by every worker; what a demo
// changes at run time is atomic, the rest is set before the server starts.
#pragma once

// Asio before any standard header, as in the library's own sources. Asio
// decides whether to allocate with aligned_alloc from libstdc++'s
// configuration macros, which exist only once a standard header has been
// included; a file that includes a standard header first compiles
// asio::aligned_new/aligned_delete differently from the library (free
// against operator new), and ASan reports the mismatch.
#include <asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "store.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/http/message.hpp"
#include "trellis/http/router.hpp"

namespace trellis::examples::services {

constexpr long max_latency_ms = 60'000;

struct knobs {
  std::string service;   // "users", "orders" or "products"
  std::string instance;  // --instance, default SERVICE-PORT; set before serving
  int fail_status = 500;
  long max_age = 30;  // products: Cache-Control max-age, seconds
  std::atomic<long> latency_ms{0};
  std::atomic<double> fail_rate{0.0};
  std::atomic<bool> healthy{true};
};

// Adds the three middleware above to `routes`. REQUIRES: `k` outlives it.
void use_common_middleware(http::router& routes, knobs& k);

// GET /health and POST /admin/health|latency|fail-rate.
void add_common_routes(http::router& routes, knobs& k);

// Each service's API routes.
void add_user_routes(http::router& routes, user_store& store, const knobs& k);
void add_order_routes(http::router& routes, order_store& store, const catalogue& products,
                      const knobs& k);
void add_product_routes(http::router& routes, const catalogue& products, const knobs& k);

// A probability: a decimal number from 0 to 1.
std::optional<double> parse_probability(const std::string& text);

// --- helpers for handlers -------------------------------------------------------

// The {id} of a path as a number; nullopt for anything else ("abc", "01",
// "-1", too large), which is then simply a resource that is not there.
std::optional<std::uint64_t> parse_id(std::string_view text);

// 404 problem: "there is no WHAT".
void not_found(http::response& res, std::string_view what);
// 400 problem with `detail`.
void bad_request(http::response& res, std::string_view detail);
// 422 problem with an "errors" extension listing each bad field.
void validation_failed(http::response& res, const json& errors);

// The request's query, decoded; every key must be one of `known`. On a
// malformed query or an unknown key, answers 400 and returns nullopt.
std::optional<http::query_params> read_query(const http::request& req, http::response& res,
                                             std::initializer_list<std::string_view> known);

// The integer value of `name` in `q`, from lo to hi; `fallback` when
// absent. Otherwise answers 400 and returns nullopt.
std::optional<std::int64_t> number_param(const http::query_params& q, std::string_view name,
                                         std::int64_t fallback, std::int64_t lo, std::int64_t hi,
                                         http::response& res);

}  // namespace trellis::examples::services
