// trellis-services: the small services an API gateway's demo routes to —
// users, orders and products, each its own process with its own
// in-memory data.
//
//   trellis-services users    --port 9101 &
//   trellis-services orders   --port 9102 &
//   trellis-services products --port 9103 &
//   curl -s localhost:9101/users/1                   # Alice
//   curl -s 'localhost:9102/orders?user_id=1'        # her orders 1 and 11
//   curl -s localhost:9103/products/4                # a product in them
//   curl -si localhost:9101/users -H 'Content-Type: application/json'
//        -d '{"name":"Eve","email":"eve@example.com"}'             (one line)
//
// The study guide's microservices chapter puts a gateway in front of them:
// it routes /api/users/... to one, /api/orders/... to another, and composes
// a user's profile from the user, their orders and the products in them —
// three services, one answer. Each service is stateless towards the
// others; what makes the composed answer consistent is the seed data, a
// pure function of --seed (see store.hpp), so start all three with the
// same --seed.
//
// Every service has the knobs of trellis-backend, so a demo can make one
// replica slow, failing or unhealthy while it runs: GET /health,
// POST /admin/health?state=down|up, /admin/latency?ms=N,
// /admin/fail-rate?p=X (see service.hpp). Errors are RFC 9457
// problem+json bodies, as in trellis-rest.
// service.hpp first: it includes Asio before any standard header (why: there).
#include "service.hpp"

#include <memory>
#include <string>

#include "cli.hpp"
#include "store.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"

namespace {

using namespace trellis;
using namespace trellis::examples::services;

constexpr const char* usage =
    R"(trellis-services — the users, orders and products services of the gateway demo

usage:
  trellis-services SERVICE --port P [--address A] [--instance NAME] [--workers N]
                   [--latency MS] [--fail-rate X] [--fail-status S] [--seed N]
                   [--max-age S] [--log-level L]

SERVICE users     GET  /users?limit=N          list (default 20, at most 100)
                  GET  /users/{id}             {"id","name","email","plan"}
                  POST /users                  create from {"name","email","plan"?}
        orders    GET  /orders?user_id=ID&limit=N
                  GET  /orders/{id}            {"id","user_id","items":[{"product_id",
                                               "quantity"}],"total","status","created_at"}
                  POST /orders                 create from {"user_id","items"}
        products  GET  /products?category=C    the catalogue, cacheable
                  GET  /products/{id}          one product; Cache-Control, ETag, 304
every   GET  /health                        200 {"status":"ok"}; 503 once told down
        POST /admin/health?state=down|up    fail (or pass) health checks
        POST /admin/latency?ms=N            delay API answers (0 to 60000)
        POST /admin/fail-rate?p=X           fail API answers with probability X
        every answer has X-Instance: NAME; errors are application/problem+json
options --port P          port (0 picks a free one)
        --address A       address to bind (default 127.0.0.1; :: for IPv6)
        --instance NAME   this replica's name (default SERVICE-PORT)
        --workers N       worker threads (default: one per core)
        --latency MS      delay before each API answer (default 0)
        --fail-rate X     share of API requests that fail, 0 to 1 (default 0)
        --fail-status S   the status of a failed request, 400 to 599 (default 500)
        --seed N          N users, N products, 2N orders (default 10); give
                          every service the same N so their data agree
        --max-age S       products: Cache-Control max-age (default 30)
        --log-level L     trace, debug, info (default), warn, error, off
)";

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::args a("trellis-services", argc, argv, usage);
  a.allow({"port", "address", "instance", "workers", "latency", "fail-rate", "fail-status", "seed",
           "max-age", "log-level"});
  if (a.positional().empty())
    a.fail("which service? expected users, orders or products (see --help)");
  if (a.positional().size() > 1)
    a.fail("unexpected argument '" + a.positional()[1] + "' (see --help)");
  const std::string service = a.positional()[0];
  if (service != "users" && service != "orders" && service != "products")
    a.fail("unknown service '" + service + "': expected users, orders or products");
  a.apply_log_level();
  if (!a.has("port")) a.fail("--port is required (0 picks a free one; see --help)");
  const auto address = a.address();
  const auto port = static_cast<unsigned short>(a.number("port", 0, 0, 65535));
  const auto workers = static_cast<std::size_t>(a.number("workers", 0, 0, 1024));
  const auto seed = static_cast<std::size_t>(a.number("seed", 10, 0, 100'000));
  const auto instance = a.get("instance");
  if (instance && !valid_name(*instance))
    a.fail("--instance: expected 1 to 64 letters, digits, '.', '_' or '-', got '" + *instance +
           "'");
  if (a.has("max-age") && service != "products")
    a.fail("--max-age: only the products service sends cacheable answers");

  knobs k;
  k.service = service;
  k.latency_ms = a.number("latency", 0, 0, max_latency_ms);
  k.fail_status = static_cast<int>(a.number("fail-status", 500, 400, 599));
  k.max_age = a.number("max-age", 30, 0, 1 << 30);
  if (auto p = a.get("fail-rate")) {
    const auto rate = parse_probability(*p);
    if (!rate) a.fail("--fail-rate: expected a probability from 0 to 1, got '" + *p + "'");
    k.fail_rate = *rate;
  }

  // Only the data this service owns is loaded — plus, for orders, its
  // copy of the catalogue to price new orders with.
  user_store users;
  order_store orders;
  catalogue products;
  http::router routes;
  use_common_middleware(routes, k);
  add_common_routes(routes, k);
  if (service == "users") {
    for (auto& u : seed_users(seed)) users.insert_seed(std::move(u));
    add_user_routes(routes, users, k);
  } else {
    for (auto& p : seed_products(seed)) products.emplace(p.id, std::move(p));
    if (service == "orders") {
      for (auto& o : seed_orders(seed)) orders.insert_seed(std::move(o));
      add_order_routes(routes, orders, products, k);
    } else {
      add_product_routes(routes, products, k);
    }
  }

  // The runtime before the server: the server's drain hooks live in the
  // runtime's workers and are removed when the server goes.
  core::runtime rt({.workers = workers});
  http::server srv(routes.to_handler());
  auto bound = srv.listen(rt, {address, port});
  if (!bound)
    a.fail("cannot listen on " + examples::to_string({address, port}) + ": " +
           bound.error().message());
  // Set before rt.run() starts the workers, so they read it without a lock.
  k.instance = instance ? *instance : service + "-" + std::to_string(bound->port());
  core::log::info("listening", {{"address", examples::to_string(*bound)},
                                {"service", service},
                                {"instance", k.instance},
                                {"workers", rt.size()},
                                {"seed", static_cast<std::uint64_t>(seed)}});
  rt.run();
  core::log::info("stopped");
  return 0;
}
