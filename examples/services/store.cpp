// The data of the demo services: representations, validation, the stores
// and the seed data (see store.hpp).
#include "store.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>

namespace trellis::examples::services {

namespace {

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Appends one {"field","message"} entry to `errors`.
void problem(json& errors, std::string_view field, std::string_view message) {
  json e = json::object();
  e["field"] = field;
  e["message"] = message;
  errors.push_back(std::move(e));
}

// A JSON integer from lo to hi (an unsigned or signed number without a
// fraction; 3.0 is not an integer here).
std::optional<std::int64_t> integer_in(const input& j, std::int64_t lo, std::int64_t hi) {
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(hi)) return std::nullopt;
    const auto s = static_cast<std::int64_t>(v);
    return s >= lo ? std::optional(s) : std::nullopt;
  }
  if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    return v >= lo && v <= hi ? std::optional(v) : std::nullopt;
  }
  return std::nullopt;
}

// A plausible email address: one '@' with something on each side, a dot
// in the domain, no spaces or control characters, at most 254 bytes (RFC
// 5321 §4.5.3.1.3). Deliberately loose: the only real check of an address
// is to send it a message.
bool plausible_email(std::string_view s) {
  if (s.size() < 3 || s.size() > 254) return false;
  const auto at = s.find('@');
  if (at == 0 || at == std::string_view::npos || s.find('@', at + 1) != std::string_view::npos)
    return false;
  const std::string_view domain = s.substr(at + 1);
  const auto dot = domain.find('.');
  if (dot == std::string_view::npos || dot == 0 || domain.back() == '.') return false;
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; });
}

bool non_empty_string(const input& j, std::size_t max) {
  return j.is_string() && !j.get_ref<const std::string&>().empty() &&
         j.get_ref<const std::string&>().size() <= max;
}

}  // namespace

double dollars(std::int64_t cents) {
  return static_cast<double>(cents) / 100.0;
}

std::string format_rfc3339(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[32];
  const auto n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(text, n);
}

// --- representations ------------------------------------------------------------

json represent(const product& p) {
  json j = json::object();
  j["id"] = p.id;
  j["name"] = p.name;
  j["category"] = p.category;
  j["price"] = dollars(p.price_cents);
  j["currency"] = "USD";
  return j;
}

json represent(const user& u) {
  json j = json::object();
  j["id"] = u.id;
  j["name"] = u.name;
  j["email"] = u.email;
  j["plan"] = u.plan;
  return j;
}

json represent(const order& o) {
  json j = json::object();
  j["id"] = o.id;
  j["user_id"] = o.user_id;
  json items = json::array();
  for (const auto& item : o.items) {
    json i = json::object();
    i["product_id"] = item.product_id;
    i["quantity"] = item.quantity;
    items.push_back(std::move(i));
  }
  j["items"] = std::move(items);
  j["total"] = dollars(o.total_cents);
  j["currency"] = "USD";
  j["status"] = o.status;
  j["created_at"] = o.created_at;
  return j;
}

// --- validation -------------------------------------------------------------------

std::optional<user_fields> validate_user(const input& body, json& errors) {
  errors = json::array();
  if (!body.is_object()) {
    problem(errors, "", "the body must be a JSON object");
    return std::nullopt;
  }
  user_fields f;
  if (!body.contains("name"))
    problem(errors, "name", "is required");
  else if (!non_empty_string(body["name"], 100))
    problem(errors, "name", "must be a string of 1 to 100 bytes");
  else
    f.name = body["name"].get<std::string>();

  if (!body.contains("email"))
    problem(errors, "email", "is required");
  else if (!body["email"].is_string() || !plausible_email(body["email"].get<std::string>()))
    problem(errors, "email", "must be an email address like name@example.com");
  else
    f.email = body["email"].get<std::string>();

  // The plan is optional: a new user starts on the free plan.
  if (body.contains("plan")) {
    const input& p = body["plan"];
    if (p != "free" && p != "pro" && p != "team")
      problem(errors, "plan", "must be one of free, pro, team");
    else
      f.plan = p.get<std::string>();
  }

  for (const auto& [key, value] : body.items()) {
    if (key == "id")
      problem(errors, "id", "is assigned by the server");
    else if (key != "name" && key != "email" && key != "plan")
      problem(errors, key, "unknown field; known: name, email, plan");
  }
  if (!errors.empty()) return std::nullopt;
  return f;
}

std::optional<order_fields> validate_order(const input& body, const catalogue& products,
                                           json& errors) {
  errors = json::array();
  if (!body.is_object()) {
    problem(errors, "", "the body must be a JSON object");
    return std::nullopt;
  }
  order_fields f;
  if (!body.contains("user_id")) {
    problem(errors, "user_id", "is required");
  } else if (const auto id = integer_in(body["user_id"], 1, INT64_MAX)) {
    f.user_id = static_cast<std::uint64_t>(*id);
  } else {
    problem(errors, "user_id", "must be a positive integer");
  }

  constexpr std::size_t max_items = 20;
  constexpr std::int64_t max_quantity = 100;
  if (!body.contains("items")) {
    problem(errors, "items", "is required");
  } else if (const input& items = body["items"];
             !items.is_array() || items.empty() || items.size() > max_items) {
    problem(errors, "items", "must be an array of 1 to 20 {\"product_id\",\"quantity\"} objects");
  } else {
    std::set<std::uint64_t> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const input& item = items[i];
      const std::string at = "items[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        problem(errors, at, "must be an object with product_id and quantity");
        continue;
      }
      order_item out;
      bool ok = true;
      const auto product_id =
          item.contains("product_id") ? integer_in(item["product_id"], 1, INT64_MAX) : std::nullopt;
      if (!item.contains("product_id")) {
        problem(errors, at + ".product_id", "is required");
        ok = false;
      } else if (!product_id) {
        problem(errors, at + ".product_id", "must be a positive integer");
        ok = false;
      } else if (!products.contains(static_cast<std::uint64_t>(*product_id))) {
        problem(errors, at + ".product_id",
                "there is no product " + std::to_string(*product_id) + " in the catalogue");
        ok = false;
      } else if (!seen.insert(static_cast<std::uint64_t>(*product_id)).second) {
        problem(errors, at + ".product_id",
                "repeats an earlier item; raise that item's quantity instead");
        ok = false;
      } else {
        out.product_id = static_cast<std::uint64_t>(*product_id);
      }
      const auto quantity =
          item.contains("quantity") ? integer_in(item["quantity"], 1, max_quantity) : std::nullopt;
      if (!item.contains("quantity")) {
        problem(errors, at + ".quantity", "is required");
        ok = false;
      } else if (!quantity) {
        problem(errors, at + ".quantity", "must be an integer from 1 to 100");
        ok = false;
      } else {
        out.quantity = *quantity;
      }
      for (const auto& [key, value] : item.items())
        if (key != "product_id" && key != "quantity")
          problem(errors, at + "." + key, "unknown field; known: product_id, quantity");
      if (ok) f.items.push_back(out);
    }
  }

  for (const auto& [key, value] : body.items()) {
    if (key == "id" || key == "total" || key == "currency" || key == "status" ||
        key == "created_at")
      problem(errors, key, "is set by the server");
    else if (key != "user_id" && key != "items")
      problem(errors, key, "unknown field; known: user_id, items");
  }
  if (!errors.empty()) return std::nullopt;
  return f;
}

std::int64_t total_of(const std::vector<order_item>& items, const catalogue& products) {
  std::int64_t total = 0;
  for (const auto& item : items) total += products.at(item.product_id).price_cents * item.quantity;
  return total;
}

// --- stores ---------------------------------------------------------------------------

insert_outcome user_store::insert(user_fields f, user& out) {
  std::lock_guard lock(mutex_);
  std::string key = lowercase(f.email);
  if (const auto it = by_email_.find(key); it != by_email_.end()) {
    out = users_.at(it->second);
    return insert_outcome::duplicate;
  }
  user u;
  u.id = next_id_++;
  u.name = std::move(f.name);
  u.email = std::move(f.email);
  u.plan = std::move(f.plan);
  by_email_.emplace(std::move(key), u.id);
  users_.emplace(u.id, u);
  out = std::move(u);
  return insert_outcome::created;
}

void user_store::insert_seed(user u) {
  std::lock_guard lock(mutex_);
  next_id_ = std::max(next_id_, u.id + 1);
  by_email_.emplace(lowercase(u.email), u.id);
  users_.emplace(u.id, std::move(u));
}

std::optional<user> user_store::find(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  const auto it = users_.find(id);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

std::vector<user> user_store::first(std::size_t limit, std::size_t& total) const {
  std::lock_guard lock(mutex_);
  total = users_.size();
  std::vector<user> out;
  for (auto it = users_.begin(); it != users_.end() && out.size() < limit; ++it)
    out.push_back(it->second);
  return out;
}

order order_store::insert(order_fields f, std::int64_t total_cents, std::string created_at) {
  std::lock_guard lock(mutex_);
  order o;
  o.id = next_id_++;
  o.user_id = f.user_id;
  o.items = std::move(f.items);
  o.total_cents = total_cents;
  o.status = "pending";
  o.created_at = std::move(created_at);
  orders_.emplace(o.id, o);
  return o;
}

void order_store::insert_seed(order o) {
  std::lock_guard lock(mutex_);
  next_id_ = std::max(next_id_, o.id + 1);
  orders_.emplace(o.id, std::move(o));
}

std::optional<order> order_store::find(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  const auto it = orders_.find(id);
  if (it == orders_.end()) return std::nullopt;
  return it->second;
}

std::vector<order> order_store::first(std::optional<std::uint64_t> user_id, std::size_t limit,
                                      std::size_t& total) const {
  std::lock_guard lock(mutex_);
  // A scan of every order: fine for a demo's few thousand. A database
  // would answer "orders of user X" from an index on user_id.
  total = 0;
  std::vector<order> out;
  for (const auto& [id, o] : orders_) {
    if (user_id && o.user_id != *user_id) continue;
    ++total;
    if (out.size() < limit) out.push_back(o);
  }
  return out;
}

// --- seed data -----------------------------------------------------------------------

std::vector<user> seed_users(std::size_t n) {
  // The placeholder names of cryptography texts, then numbered users.
  static constexpr const char* names[] = {
      "Alice",   "Bob",  "Carol",  "Dave",  "Erin",   "Frank", "Grace", "Heidi",  "Ivan",   "Judy",
      "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoe"};
  static constexpr const char* plans[] = {"pro", "free", "team"};
  std::vector<user> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    user u;
    u.id = i + 1;
    if (i < std::size(names)) {
      u.name = names[i];
      u.email = lowercase(names[i]) + "@example.com";
    } else {
      u.name = "User " + std::to_string(u.id);
      u.email = "user" + std::to_string(u.id) + "@example.com";
    }
    u.plan = plans[i % std::size(plans)];
    out.push_back(std::move(u));
  }
  return out;
}

std::vector<product> seed_products(std::size_t n) {
  struct sample {
    const char* name;
    const char* category;
    std::int64_t price_cents;
  };
  static constexpr sample samples[] = {
      {"Mechanical keyboard", "peripherals", 8999},
      {"Wireless mouse", "peripherals", 2499},
      {"27-inch monitor", "displays", 27900},
      {"USB-C hub", "accessories", 3950},
      {"Laptop stand", "accessories", 4500},
      {"Noise-cancelling headphones", "audio", 19999},
      {"Webcam", "peripherals", 5999},
      {"Desk lamp", "furniture", 3299},
      {"Ergonomic chair", "furniture", 34900},
      {"Standing desk", "furniture", 49900},
      {"USB microphone", "audio", 10950},
      {"Cable organiser", "accessories", 1299},
  };
  std::vector<product> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    product p;
    p.id = i + 1;
    if (i < std::size(samples)) {
      p.name = samples[i].name;
      p.category = samples[i].category;
      p.price_cents = samples[i].price_cents;
    } else {
      p.name = "Product " + std::to_string(p.id);
      p.category = "misc";
      p.price_cents = 499 + static_cast<std::int64_t>(i * 137 % 50) * 100;
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<order> seed_orders(std::size_t n) {
  static constexpr const char* statuses[] = {"delivered", "shipped", "paid", "pending"};
  catalogue products;
  for (auto& p : seed_products(n)) products.emplace(p.id, std::move(p));
  constexpr std::int64_t first_created = 1'735'722'000;  // 2025-01-01T09:00:00Z
  constexpr std::int64_t step = 26 * 3600 + 17 * 60;
  std::vector<order> out;
  if (n == 0) return out;
  out.reserve(2 * n);
  for (std::size_t i = 1; i <= 2 * n; ++i) {
    order o;
    o.id = i;
    o.user_id = (i - 1) % n + 1;
    // One to three distinct products, consecutive ids from a start that
    // moves by 7 an order, so the orders spread over the catalogue.
    const std::size_t count = std::min<std::size_t>(1 + i % 3, n);
    const std::size_t start = i * 7 % n;
    for (std::size_t j = 0; j < count; ++j) {
      order_item item;
      item.product_id = (start + j) % n + 1;
      item.quantity = static_cast<std::int64_t>(1 + (i + j) % 3);
      o.items.push_back(item);
    }
    o.total_cents = total_of(o.items, products);
    o.status = statuses[(i - 1) % std::size(statuses)];
    o.created_at = format_rfc3339(first_created + static_cast<std::int64_t>(i - 1) * step);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace trellis::examples::services
