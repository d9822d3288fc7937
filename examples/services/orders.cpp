// The orders service: what the customers bought.
//
//   GET  /orders?user_id=ID&limit=N   orders by id, of one user when
//                         user_id is given (default limit 20, 1 to 100):
//                         {"items":[...],"total":T,"instance":NAME}, where
//                         "total" counts the matching orders
//   GET  /orders/{id}     one order: {"id","user_id","items":[{"product_id",
//                         "quantity"}],"total","currency","status",
//                         "created_at","instance"}
//   POST /orders          create from {"user_id","items"}: 201 with
//                         Location, status "pending", the total priced from
//                         the catalogue; 422 listing every bad field
//
// An unknown user_id gives an empty list, not a 404: this service has no
// user data to tell "no such user" from "a user without orders" (see
// store.hpp on what each service owns).
// service.hpp first: it includes Asio before any standard header (why: there).
#include "service.hpp"

#include <chrono>

#include "trellis/http/json.hpp"

namespace trellis::examples::services {

namespace {

json with_instance(json j, const knobs& k) {
  j["instance"] = k.instance;
  return j;
}

asio::awaitable<void> list_orders(const order_store& store, const knobs& k, http::request& req,
                                  http::response& res) {
  const auto q = read_query(req, res, {"user_id", "limit"});
  if (!q) co_return;
  std::optional<std::uint64_t> user_id;
  if (const auto text = q->get("user_id")) {
    user_id = parse_id(*text);
    if (!user_id) {
      bad_request(res, "user_id must be a positive integer");
      co_return;
    }
  }
  const auto limit = number_param(*q, "limit", 20, 1, 100, res);
  if (!limit) co_return;
  std::size_t total = 0;
  const auto orders = store.first(user_id, static_cast<std::size_t>(*limit), total);
  json items = json::array();
  for (const auto& o : orders) items.push_back(represent(o));
  json page = json::object();
  page["items"] = std::move(items);
  page["total"] = total;
  page["instance"] = k.instance;
  http::set_json(res, page);
}

asio::awaitable<void> get_order(const order_store& store, const knobs& k, http::request& req,
                                http::response& res) {
  const auto id = parse_id(req.param("id"));
  const auto o = id ? store.find(*id) : std::nullopt;
  if (!o) {
    not_found(res, "order /orders/" + std::string(req.param("id")));
    co_return;
  }
  http::set_json(res, with_instance(represent(*o), k));
}

asio::awaitable<void> create_order(order_store& store, const catalogue& products, const knobs& k,
                                   http::request& req, http::response& res) {
  auto body = co_await http::read_json(req, res);
  if (!body) co_return;
  json errors;
  auto fields = validate_order(*body, products, errors);
  if (!fields) {
    validation_failed(res, errors);
    co_return;
  }
  const std::int64_t total = total_of(fields->items, products);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const order o = store.insert(std::move(*fields), total, format_rfc3339(now));
  http::set_json(res, with_instance(represent(o), k), 201);
  (void)res.headers.set("Location", "/orders/" + std::to_string(o.id));
}

}  // namespace

void add_order_routes(http::router& routes, order_store& store, const catalogue& products,
                      const knobs& k) {
  routes.get("/orders", [&store, &k](http::request& req, http::response& res) {
    return list_orders(store, k, req, res);
  });
  routes.get("/orders/{id}", [&store, &k](http::request& req, http::response& res) {
    return get_order(store, k, req, res);
  });
  routes.post("/orders", [&store, &products, &k](http::request& req, http::response& res) {
    return create_order(store, products, k, req, res);
  });
}

}  // namespace trellis::examples::services
