// The users service: who the customers are.
//
//   GET  /users?limit=N   the first N users by id (default 20, 1 to 100),
//                         {"items":[...],"total":T,"instance":NAME}
//   GET  /users/{id}      one user: {"id","name","email","plan","instance"}
//   POST /users           create from {"name","email","plan"?}: 201 with
//                         Location; 422 listing every bad field; 409 when
//                         the email is taken
//
// "instance" in a body is not part of the user: it says which replica
// answered, so the gateway's composed profile shows where each piece came
// from. (Problem bodies do not carry it: RFC 9457 gives "instance" its own
// meaning there, a URI for the occurrence. X-Instance is on every answer.)
// service.hpp first: it includes Asio before any standard header (why: there).
#include "service.hpp"
#include "trellis/http/json.hpp"

namespace trellis::examples::services {

namespace {

json with_instance(json j, const knobs& k) {
  j["instance"] = k.instance;
  return j;
}

asio::awaitable<void> list_users(const user_store& store, const knobs& k, http::request& req,
                                 http::response& res) {
  const auto q = read_query(req, res, {"limit"});
  if (!q) co_return;
  const auto limit = number_param(*q, "limit", 20, 1, 100, res);
  if (!limit) co_return;
  std::size_t total = 0;
  const auto users = store.first(static_cast<std::size_t>(*limit), total);
  json items = json::array();
  for (const auto& u : users) items.push_back(represent(u));
  json page = json::object();
  page["items"] = std::move(items);
  page["total"] = total;
  page["instance"] = k.instance;
  http::set_json(res, page);
}

asio::awaitable<void> get_user(const user_store& store, const knobs& k, http::request& req,
                               http::response& res) {
  const auto id = parse_id(req.param("id"));
  const auto u = id ? store.find(*id) : std::nullopt;
  if (!u) {
    not_found(res, "user /users/" + std::string(req.param("id")));
    co_return;
  }
  http::set_json(res, with_instance(represent(*u), k));
}

asio::awaitable<void> create_user(user_store& store, const knobs& k, http::request& req,
                                  http::response& res) {
  auto body = co_await http::read_json(req, res);
  if (!body) co_return;
  json errors;
  auto fields = validate_user(*body, errors);
  if (!fields) {
    validation_failed(res, errors);
    co_return;
  }
  user u;
  if (store.insert(std::move(*fields), u) == insert_outcome::duplicate) {
    http::set_problem(
        res, 409, "Conflict",
        "the email " + u.email + " is already used by /users/" + std::to_string(u.id));
    co_return;
  }
  http::set_json(res, with_instance(represent(u), k), 201);
  (void)res.headers.set("Location", "/users/" + std::to_string(u.id));
}

}  // namespace

void add_user_routes(http::router& routes, user_store& store, const knobs& k) {
  routes.get("/users", [&store, &k](http::request& req, http::response& res) {
    return list_users(store, k, req, res);
  });
  routes.get("/users/{id}", [&store, &k](http::request& req, http::response& res) {
    return get_user(store, k, req, res);
  });
  routes.post("/users", [&store, &k](http::request& req, http::response& res) {
    return create_user(store, k, req, res);
  });
}

}  // namespace trellis::examples::services
