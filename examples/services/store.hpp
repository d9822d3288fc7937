// store: the in-memory data of the three demo services — users, orders and
// products — and the checks a client's JSON must pass before it is stored.
//
// Each service is a separate process owning its own data (the "database
// per service" rule of a microservice architecture): the users service
// knows nothing of orders, the orders service nothing of users. What ties
// them together is the seed data. seed_users(n), seed_products(n) and
// seed_orders(n) are pure functions of n, so three processes started with
// the same --seed hold data that agree: every seeded order names a user
// the users service has and products the products service has, and its
// total is what those products cost. A demo (or a test) can therefore name
// ids — "user 3's orders" — without a shared database.
//
// The orders service needs prices to compute a total, so it keeps its own
// read-only copy of the product catalogue (the same seed_products(n)). Real
// systems do this too: a service keeps the fields it needs from another
// service's data (denormalised, refreshed by events) rather than calling
// it on every request, and accepts that the copy may lag behind.
//
// Thread-safety: user_store and order_store are shared by every worker
// thread of a service, so each guards its map with one mutex, taken by
// every member function for a lookup, an insert or a copy of a page. That
// is plenty for a demo; a real service leaves this to its database. The
// product catalogue never changes after start-up and is read without a
// lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::examples::services {

// Representations are built as ordered_json so members appear in the
// order written ("id" first); request bodies arrive as nlohmann::json.
using json = nlohmann::ordered_json;
using input = nlohmann::json;

// --- products ----------------------------------------------------------------

struct product {
  std::uint64_t id = 0;
  std::string name;
  std::string category;
  // Money is counted in cents: binary floating point cannot hold 0.10
  // exactly, and sums of prices must come out exact. JSON shows dollars.
  std::int64_t price_cents = 0;
};

json represent(const product& p);

// --- users -------------------------------------------------------------------

struct user {
  std::uint64_t id = 0;
  std::string name;
  std::string email;
  std::string plan;  // "free", "pro" or "team"
};

// What a client supplies to create a user.
struct user_fields {
  std::string name;
  std::string email;
  std::string plan = "free";
};

json represent(const user& u);

// Checks a POST /users body and collects every problem, one
// {"field","message"} entry per field, so a client can fix them all at
// once. Returns the fields when `errors` stays empty.
std::optional<user_fields> validate_user(const input& body, json& errors);

// What user_store::insert did.
enum class insert_outcome { created, duplicate };

class user_store {
 public:
  // Stores a new user with the next id, unless another user has the same
  // email (compared case-insensitively): then `out` is set to that user.
  // Checked and inserted under one lock, so two concurrent POSTs with one
  // email cannot both succeed.
  insert_outcome insert(user_fields f, user& out);
  void insert_seed(user u);  // keeps u.id; REQUIRES: ids ascending, unused

  std::optional<user> find(std::uint64_t id) const;
  // The first `limit` users by id, and how many there are in all.
  std::vector<user> first(std::size_t limit, std::size_t& total) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, user> users_;
  std::map<std::string, std::uint64_t> by_email_;  // lower-cased email -> id
  std::uint64_t next_id_ = 1;
};

// --- orders ------------------------------------------------------------------

struct order_item {
  std::uint64_t product_id = 0;
  std::int64_t quantity = 0;
};

struct order {
  std::uint64_t id = 0;
  std::uint64_t user_id = 0;
  std::vector<order_item> items;
  std::int64_t total_cents = 0;
  std::string status;      // "pending", "paid", "shipped" or "delivered"
  std::string created_at;  // RFC 3339, UTC: "2025-01-01T09:00:00Z"
};

// What a client supplies to create an order; the rest is computed.
struct order_fields {
  std::uint64_t user_id = 0;
  std::vector<order_item> items;
};

json represent(const order& o);

// The product catalogue as the orders service sees it: id -> product.
using catalogue = std::map<std::uint64_t, product>;

// Checks a POST /orders body like validate_user. Every product_id must be
// in `products` (the orders service's copy of the catalogue). The user_id
// is only checked to be a positive integer: the orders service has no
// user data to look it up in (a real one would ask the users service or
// keep a copy of the ids, as it does for prices).
std::optional<order_fields> validate_order(const input& body, const catalogue& products,
                                           json& errors);

// The total of `items` at catalogue prices, in cents.
// REQUIRES: every product_id is in `products`.
std::int64_t total_of(const std::vector<order_item>& items, const catalogue& products);

class order_store {
 public:
  // Stores a new pending order with the next id, created now.
  order insert(order_fields f, std::int64_t total_cents, std::string created_at);
  void insert_seed(order o);  // keeps o.id; REQUIRES: ids ascending, unused

  std::optional<order> find(std::uint64_t id) const;
  // The first `limit` orders by id — of user `user_id` when given — and
  // how many match in all.
  std::vector<order> first(std::optional<std::uint64_t> user_id, std::size_t limit,
                           std::size_t& total) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, order> orders_;
  std::uint64_t next_id_ = 1;
};

// --- seed data -----------------------------------------------------------------
//
// --seed N gives N users, N products and 2N orders. Order i (from 1)
// belongs to user ((i - 1) mod N) + 1, so user u has orders u and u + N;
// it holds one to three distinct products from 1..N. Statuses cycle
// through delivered, shipped, paid, pending; created_at steps from
// 2025-01-01T09:00:00Z by 26 h 17 min an order.

std::vector<user> seed_users(std::size_t n);
std::vector<product> seed_products(std::size_t n);
std::vector<order> seed_orders(std::size_t n);

// `unix_seconds` as RFC 3339 in UTC ("2025-01-01T09:00:00Z").
std::string format_rfc3339(std::int64_t unix_seconds);

// cents as a JSON number of dollars: 1999 -> 19.99.
double dollars(std::int64_t cents);

}  // namespace trellis::examples::services
