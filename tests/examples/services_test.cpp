// Tests of the trellis-services example as real processes, driven with
// curl on 127.0.0.1: each service's routes and status codes (users,
// orders, products), seed data that agree across the three processes
// (every order's user and products exist, and its total is what those
// products cost), POST validation (422 naming each bad field, 409, 415),
// the products' Cache-Control, ETag and 304, the run-time knobs shared
// with trellis-backend (fail rate, fail status, health, latency), the
// X-Instance header, and start-up errors that name the bad flag or the
// unknown service. Each test starts its own services (--port 0; the bound
// port is read from the "listening" log line) and kills them at the end
// whatever happened.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/process.hpp"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string services_bin = std::string(TRELLIS_BIN_DIR) + "/trellis-services";

using reply = test::curl_reply;
using test::parse_curl;

// One trellis-services process on a port of its choosing.
class service {
 public:
  service(const std::string& name, std::vector<std::string> extra)
      : proc_(argv(name, std::move(extra))) {
    if (!proc_.wait_for_output("listening", 10s, /*from_stderr=*/true))
      throw std::runtime_error("trellis-services " + name + " did not start: " + proc_.err());
    const auto port = test::logged_port(proc_.err());
    if (!port) throw std::runtime_error("no address in: " + proc_.err());
    port_ = *port;
  }
  explicit service(const std::string& name) : service(name, {}) {}
  ~service() { proc_.wait_or_kill(0ms, 2s); }
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  int port() const { return port_; }

  // One request through curl. `headers` are "Name: value" lines.
  reply call(const std::string& method, const std::string& path, const std::string& body = {},
             const std::vector<std::string>& headers = {}) {
    std::vector<std::string> args = {"curl", "-sS",  "-i", "--max-time", "20",
                                     "-X",   method, "-H", "Expect:"};
    for (const auto& h : headers) {
      args.push_back("-H");
      args.push_back(h);
    }
    if (!body.empty()) {
      args.push_back("--data-binary");
      args.push_back(body);
    }
    args.push_back("http://127.0.0.1:" + std::to_string(port_) + path);
    const auto done = test::run(args, {}, 30s);
    EXPECT_TRUE(done.status.success()) << "curl " << method << " " << path << ": " << done.err;
    return parse_curl(done.out);
  }
  reply get(const std::string& path, const std::vector<std::string>& headers = {}) {
    return call("GET", path, {}, headers);
  }
  reply post(const std::string& path) { return call("POST", path); }
  reply post_json(const std::string& path, const json& body) {
    return call("POST", path, body.dump(), {"Content-Type: application/json"});
  }

 private:
  static std::vector<std::string> argv(const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> a = {services_bin, name, "--address", "127.0.0.1",
                                  "--port",     "0",  "--workers", "2"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  test::process proc_;
  int port_ = 0;
};

class ServicesExample : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(services_bin.c_str(), X_OK) != 0)
      GTEST_SKIP() << services_bin << " is not built (configure with TRELLIS_BUILD_EXAMPLES=ON)";
    if (!test::program_exists("curl"))
      GTEST_SKIP() << "needs the `curl` program on PATH (Debian package curl)";
  }
};

void expect_problem(const reply& r, int status, const std::string& title) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  const json p = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(p.is_object()) << r.body;
  EXPECT_EQ(p["type"], "about:blank");
  EXPECT_EQ(p["status"], status);
  EXPECT_EQ(p["title"], title);
  EXPECT_TRUE(p["detail"].is_string() && !p["detail"].get<std::string>().empty()) << r.body;
}

// The "field" of each entry of a 422 problem's "errors".
std::vector<std::string> bad_fields(const reply& r) {
  std::vector<std::string> out;
  const json p = r.parsed();
  if (!p.contains("errors")) return out;
  for (const auto& e : p["errors"]) out.push_back(e["field"].get<std::string>());
  return out;
}

std::vector<std::uint64_t> ids(const json& page) {
  std::vector<std::uint64_t> out;
  for (const auto& item : page["items"]) out.push_back(item["id"].get<std::uint64_t>());
  return out;
}

// Money compared in cents, exactly: 19.99 and 2 * 9.995 round alike.
std::int64_t cents(const json& dollars) {
  return std::llround(dollars.get<double>() * 100.0);
}

// --- users ------------------------------------------------------------------

TEST_F(ServicesExample, users_lists_and_reads_the_seeded_users) {
  service users("users");
  const auto all = users.get("/users");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.header("content-type"), "application/json");
  const json page = all.parsed();
  EXPECT_EQ(ids(page), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}))
      << "--seed defaults to 10 users";
  EXPECT_EQ(page["total"], 10);
  EXPECT_EQ(page["instance"], "users-" + std::to_string(users.port()));

  const auto three = users.get("/users?limit=3");
  ASSERT_EQ(three.status, 200) << three.body;
  EXPECT_EQ(ids(three.parsed()), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(three.parsed()["total"], 10) << "total counts all users, not the page";

  const auto one = users.get("/users/1");
  ASSERT_EQ(one.status, 200) << one.body;
  const json alice = one.parsed();
  EXPECT_EQ(alice["id"], 1);
  EXPECT_EQ(alice["name"], "Alice");
  EXPECT_EQ(alice["email"], "alice@example.com");
  EXPECT_EQ(alice["plan"], "pro");
  EXPECT_EQ(alice["instance"], "users-" + std::to_string(users.port()));

  expect_problem(users.get("/users/999"), 404, "Not Found");
  expect_problem(users.get("/users/abc"), 404, "Not Found");
  expect_problem(users.get("/users?limit=0"), 400, "Bad Request");
  expect_problem(users.get("/users?limit=101"), 400, "Bad Request");
  expect_problem(users.get("/users?colour=red"), 400, "Bad Request");
  expect_problem(users.call("DELETE", "/users/1"), 405, "Method Not Allowed");
  // Each service has only its own routes.
  expect_problem(users.get("/orders"), 404, "Not Found");
}

TEST_F(ServicesExample, seed_sets_how_many_records_each_service_holds) {
  service users("users", {"--seed", "3"});
  EXPECT_EQ(ids(users.get("/users").parsed()), (std::vector<std::uint64_t>{1, 2, 3}));
  service products("products", {"--seed", "0"});
  const auto none = products.get("/products");
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_TRUE(none.parsed()["items"].empty());
}

TEST_F(ServicesExample, post_user_answers_201_with_location_and_the_user) {
  service users("users", {"--instance", "users-a"});
  const auto r =
      users.post_json("/users", {{"name", "Eve"}, {"email", "eve@example.com"}, {"plan", "team"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("location"), "/users/11");
  EXPECT_EQ(r.body,
            "{\"id\":11,\"name\":\"Eve\",\"email\":\"eve@example.com\",\"plan\":\"team\","
            "\"instance\":\"users-a\"}\n");
  const auto again = users.get(r.header("location"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, r.body);

  const auto defaulted =
      users.post_json("/users", {{"name", "Faythe"}, {"email", "f@example.org"}});
  ASSERT_EQ(defaulted.status, 201) << defaulted.body;
  EXPECT_EQ(defaulted.parsed()["plan"], "free") << "a new user starts on the free plan";
  EXPECT_EQ(defaulted.header("location"), "/users/12");
  EXPECT_EQ(users.get("/users?limit=100").parsed()["total"], 12);
}

TEST_F(ServicesExample, post_user_with_bad_fields_is_a_422_listing_each_one) {
  service users("users");
  const auto r = users.post_json(
      "/users",
      {{"id", 5}, {"name", ""}, {"email", "not-an-address"}, {"plan", "gold"}, {"colour", "red"}});
  expect_problem(r, 422, "Unprocessable Content");
  EXPECT_THAT(bad_fields(r),
              ::testing::UnorderedElementsAre("id", "name", "email", "plan", "colour"));
  EXPECT_EQ(r.parsed()["detail"], "5 fields are invalid");

  const auto missing = users.post_json("/users", json::object());
  expect_problem(missing, 422, "Unprocessable Content");
  EXPECT_THAT(bad_fields(missing), ::testing::UnorderedElementsAre("name", "email"));

  const auto not_object = users.post_json("/users", json::array({1, 2}));
  expect_problem(not_object, 422, "Unprocessable Content");

  expect_problem(users.call("POST", "/users", "{\"name\":", {"Content-Type: application/json"}),
                 400, "Bad Request");
  expect_problem(users.call("POST", "/users", "name=x", {"Content-Type: text/plain"}), 415,
                 "Unsupported Media Type");
  EXPECT_EQ(users.get("/users").parsed()["total"], 10) << "nothing was created";
}

TEST_F(ServicesExample, post_user_with_a_taken_email_is_a_409) {
  service users("users");
  const auto r = users.post_json("/users", {{"name", "Another"}, {"email", "ALICE@example.com"}});
  expect_problem(r, 409, "Conflict");
  EXPECT_THAT(r.parsed()["detail"].get<std::string>(), HasSubstr("/users/1"));
  EXPECT_EQ(users.get("/users").parsed()["total"], 10);
}

// --- orders -----------------------------------------------------------------

TEST_F(ServicesExample, orders_lists_by_user_and_reads_one) {
  service orders("orders");
  const auto all = orders.get("/orders?limit=100");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.parsed()["total"], 20) << "--seed 10 gives 2 orders a user";
  EXPECT_EQ(ids(orders.get("/orders").parsed()).size(), 20u);

  const auto mine = orders.get("/orders?user_id=3");
  ASSERT_EQ(mine.status, 200) << mine.body;
  const json page = mine.parsed();
  EXPECT_EQ(ids(page), (std::vector<std::uint64_t>{3, 13}));
  EXPECT_EQ(page["total"], 2);
  for (const auto& o : page["items"]) EXPECT_EQ(o["user_id"], 3);
  EXPECT_TRUE(orders.get("/orders?user_id=999").parsed()["items"].empty())
      << "an unknown user has no orders; the orders service cannot tell more";
  EXPECT_EQ(ids(orders.get("/orders?user_id=3&limit=1").parsed()), (std::vector<std::uint64_t>{3}));

  const auto one = orders.get("/orders/3");
  ASSERT_EQ(one.status, 200) << one.body;
  const json o = one.parsed();
  EXPECT_EQ(o["id"], 3);
  EXPECT_EQ(o["user_id"], 3);
  ASSERT_TRUE(o["items"].is_array());
  EXPECT_FALSE(o["items"].empty());
  for (const auto& item : o["items"]) {
    EXPECT_TRUE(item["product_id"].is_number_unsigned()) << item;
    EXPECT_GE(item["quantity"].get<int>(), 1) << item;
  }
  EXPECT_TRUE(o["total"].is_number()) << o;
  EXPECT_TRUE(o["status"].is_string()) << o;
  EXPECT_EQ(o["created_at"].get<std::string>().size(), 20u) << "RFC 3339: " << o["created_at"];
  EXPECT_EQ(o["instance"], "orders-" + std::to_string(orders.port()));

  expect_problem(orders.get("/orders/21"), 404, "Not Found");
  expect_problem(orders.get("/orders?user_id=abc"), 400, "Bad Request");
  expect_problem(orders.get("/orders?user=3"), 400, "Bad Request");
}

TEST_F(ServicesExample, post_order_prices_the_items_from_the_catalogue) {
  service orders("orders");
  service products("products");
  const auto two = products.get("/products/2").parsed();
  const auto five = products.get("/products/5").parsed();

  const json body = {{"user_id", 4},
                     {"items", json::array({{{"product_id", 2}, {"quantity", 3}},
                                            {{"product_id", 5}, {"quantity", 1}}})}};
  const auto r = orders.post_json("/orders", body);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("location"), "/orders/21");
  const json o = r.parsed();
  EXPECT_EQ(o["id"], 21);
  EXPECT_EQ(o["user_id"], 4);
  EXPECT_EQ(o["items"], body["items"]);
  EXPECT_EQ(o["status"], "pending");
  EXPECT_EQ(cents(o["total"]), 3 * cents(two["price"]) + cents(five["price"]));
  const auto again = orders.get("/orders/21");
  EXPECT_EQ(again.body, r.body);
  EXPECT_EQ(ids(orders.get("/orders?user_id=4").parsed()), (std::vector<std::uint64_t>{4, 14, 21}));
}

TEST_F(ServicesExample, post_order_with_bad_fields_is_a_422_listing_each_one) {
  service orders("orders");
  const json body = {{"user_id", -1},
                     {"total", 0},
                     {"items", json::array({{{"product_id", 999}, {"quantity", 1}},
                                            {{"product_id", 1}, {"quantity", 0}},
                                            {{"product_id", 2}, {"quantity", 1}, {"gift", true}},
                                            {{"product_id", 2}, {"quantity", 1}},
                                            "three"})}};
  const auto r = orders.post_json("/orders", body);
  expect_problem(r, 422, "Unprocessable Content");
  EXPECT_THAT(bad_fields(r), ::testing::UnorderedElementsAre(
                                 "user_id", "total", "items[0].product_id", "items[1].quantity",
                                 "items[2].gift", "items[3].product_id", "items[4]"));

  const auto empty = orders.post_json("/orders", {{"user_id", 1}, {"items", json::array()}});
  expect_problem(empty, 422, "Unprocessable Content");
  EXPECT_THAT(bad_fields(empty), ::testing::ElementsAre("items"));
  EXPECT_EQ(orders.get("/orders?limit=100").parsed()["total"], 20) << "nothing was created";
}

// --- the three together -------------------------------------------------------

TEST_F(ServicesExample, seed_data_agree_across_the_three_services) {
  service users("users");
  service orders("orders");
  service products("products");
  std::map<std::uint64_t, std::int64_t> price;  // product id -> cents
  const auto catalogue = products.get("/products");
  ASSERT_EQ(catalogue.status, 200) << catalogue.body;
  const json items = catalogue.parsed()["items"];
  for (const auto& p : items) price[p["id"].get<std::uint64_t>()] = cents(p["price"]);
  ASSERT_EQ(price.size(), 10u);

  const auto all = orders.get("/orders?limit=100");
  ASSERT_EQ(all.status, 200) << all.body;
  const json list = all.parsed()["items"];
  ASSERT_EQ(list.size(), 20u);
  std::map<std::uint64_t, int> orders_of;
  for (const auto& o : list) {
    const auto user_id = o["user_id"].get<std::uint64_t>();
    ++orders_of[user_id];
    std::int64_t total = 0;
    for (const auto& item : o["items"]) {
      const auto product_id = item["product_id"].get<std::uint64_t>();
      ASSERT_TRUE(price.contains(product_id)) << "order " << o["id"] << " names " << product_id;
      total += price[product_id] * item["quantity"].get<std::int64_t>();
    }
    EXPECT_EQ(cents(o["total"]), total) << "order " << o["id"];
  }
  for (const auto& [user_id, n] : orders_of) {
    const auto u = users.get("/users/" + std::to_string(user_id));
    EXPECT_EQ(u.status, 200) << "user " << user_id << " of an order exists";
    EXPECT_EQ(n, 2) << "user " << user_id;
  }
  EXPECT_EQ(orders_of.size(), 10u) << "every seeded user has orders";
}

// --- products -----------------------------------------------------------------

TEST_F(ServicesExample, products_are_cacheable_with_an_etag_and_304) {
  service products("products");
  const auto r = products.get("/products/4");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("cache-control"), "public, max-age=30");
  const std::string etag = r.header("etag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(etag.front(), '"') << etag;
  const json p = r.parsed();
  EXPECT_EQ(p["id"], 4);
  EXPECT_TRUE(p["name"].is_string());
  EXPECT_GT(cents(p["price"]), 0);
  EXPECT_FALSE(p.contains("instance")) << "a cacheable body is the same from every replica";
  EXPECT_EQ(r.header("x-instance"), "products-" + std::to_string(products.port()));

  const auto same = products.get("/products/4");
  EXPECT_EQ(same.header("etag"), etag) << "an unchanged product keeps its validator";
  EXPECT_NE(products.get("/products/5").header("etag"), etag);

  const auto not_modified = products.get("/products/4", {"If-None-Match: " + etag});
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_EQ(not_modified.body, "");
  EXPECT_EQ(not_modified.header("etag"), etag);
  EXPECT_EQ(not_modified.header("cache-control"), "public, max-age=30");
  EXPECT_EQ(products.get("/products/4", {"If-None-Match: \"other\", W/" + etag}).status, 304)
      << "If-None-Match compares weakly";
  EXPECT_EQ(products.get("/products/4", {"If-None-Match: *"}).status, 304);
  EXPECT_EQ(products.get("/products/4", {"If-None-Match: \"other\""}).status, 200);

  const auto list = products.get("/products");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.header("cache-control"), "public, max-age=30");
  EXPECT_EQ(list.parsed()["total"], 10);
  EXPECT_EQ(products.get("/products", {"If-None-Match: " + list.header("etag")}).status, 304);

  const auto audio = products.get("/products?category=audio");
  ASSERT_EQ(audio.status, 200) << audio.body;
  const json audio_items = audio.parsed()["items"];
  ASSERT_FALSE(audio_items.empty());
  for (const auto& item : audio_items) EXPECT_EQ(item["category"], "audio");
  EXPECT_NE(audio.header("etag"), list.header("etag"));

  expect_problem(products.get("/products/11"), 404, "Not Found");
  EXPECT_EQ(products.get("/products/11").header("cache-control"), "");
  expect_problem(products.call("POST", "/products"), 405, "Method Not Allowed");
}

TEST_F(ServicesExample, products_max_age_comes_from_the_flag) {
  service products("products", {"--max-age", "45"});
  EXPECT_EQ(products.get("/products/1").header("cache-control"), "public, max-age=45");
  EXPECT_EQ(products.get("/products").header("cache-control"), "public, max-age=45");
}

// --- knobs ----------------------------------------------------------------------

TEST_F(ServicesExample, fail_rate_one_fails_api_routes_but_not_health) {
  service users("users", {"--fail-rate", "1", "--instance", "flaky"});
  for (int i = 0; i < 3; ++i) {
    const auto r = users.get("/users/1");
    expect_problem(r, 500, "Internal Server Error");
    EXPECT_EQ(r.header("x-instance"), "flaky");
  }
  const auto h = users.get("/health");
  EXPECT_EQ(h.status, 200) << "health is never failed";
  EXPECT_EQ(h.parsed()["status"], "ok");

  service orders("orders", {"--fail-rate", "1", "--fail-status", "503"});
  expect_problem(orders.get("/orders/1"), 503, "Service Unavailable");
  expect_problem(orders.post_json("/orders", json::object()), 503, "Service Unavailable");
}

TEST_F(ServicesExample, fail_rate_and_latency_change_at_run_time) {
  service products("products");
  EXPECT_EQ(products.get("/products/1").status, 200);
  auto set = products.post("/admin/fail-rate?p=1");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.parsed()["fail_rate"], 1.0);
  EXPECT_EQ(set.parsed()["service"], "products");
  expect_problem(products.get("/products/1"), 500, "Internal Server Error");
  EXPECT_EQ(products.get("/health").status, 200);
  EXPECT_EQ(products.post("/admin/fail-rate?p=0").status, 200);
  EXPECT_EQ(products.get("/products/1").status, 200);

  set = products.post("/admin/latency?ms=20");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.parsed()["latency_ms"], 20);
  EXPECT_EQ(products.get("/products/1").status, 200) << "a delayed answer is still an answer";
  EXPECT_EQ(products.post("/admin/latency?ms=0").parsed()["latency_ms"], 0);

  expect_problem(products.post("/admin/fail-rate?p=1.5"), 400, "Bad Request");
  expect_problem(products.post("/admin/fail-rate"), 400, "Bad Request");
  expect_problem(products.post("/admin/latency?ms=-1"), 400, "Bad Request");
  expect_problem(products.post("/admin/latency?ms=999999"), 400, "Bad Request");
  expect_problem(products.post("/admin/latency"), 400, "Bad Request");
}

TEST_F(ServicesExample, health_flips_down_and_up) {
  service orders("orders", {"--instance", "orders-b"});
  const auto up = orders.get("/health");
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(up.parsed()["instance"], "orders-b");
  EXPECT_EQ(up.parsed()["service"], "orders");
  auto set = orders.post("/admin/health?state=down");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.parsed()["healthy"], false);
  const auto down = orders.get("/health");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.parsed()["status"], "down");
  EXPECT_EQ(down.header("x-instance"), "orders-b");
  EXPECT_EQ(orders.get("/orders/1").status, 200) << "an unhealthy instance still serves";
  EXPECT_EQ(orders.post("/admin/health?state=up").status, 200);
  EXPECT_EQ(orders.get("/health").status, 200);
  expect_problem(orders.post("/admin/health?state=sideways"), 400, "Bad Request");
  expect_problem(orders.get("/admin/health"), 405, "Method Not Allowed");
}

TEST_F(ServicesExample, every_response_names_the_instance) {
  service users("users");
  const std::string name = "users-" + std::to_string(users.port());
  EXPECT_EQ(users.get("/users").header("x-instance"), name) << "default: SERVICE-PORT";
  EXPECT_EQ(users.get("/users/999").header("x-instance"), name);
  EXPECT_EQ(users.get("/nowhere").header("x-instance"), name);
  EXPECT_EQ(users.call("PUT", "/users/1").header("x-instance"), name);
  EXPECT_EQ(users.post_json("/users", json::object()).header("x-instance"), name);
  EXPECT_EQ(users.post("/admin/latency?ms=0").header("x-instance"), name);

  service named("products", {"--instance", "products-eu.1"});
  EXPECT_EQ(named.get("/products/1").header("x-instance"), "products-eu.1");
  EXPECT_EQ(named.get("/health").header("x-instance"), "products-eu.1");
}

// --- start-up errors ----------------------------------------------------------

TEST_F(ServicesExample, bad_flags_fail_at_start_naming_the_flag) {
  struct bad_case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<bad_case> cases = {
      {{"users"}, "--port"},
      {{"users", "--port", "70000"}, "--port"},
      {{"users", "--port", "0", "--latency", "soon"}, "--latency"},
      {{"users", "--port", "0", "--fail-rate", "2"}, "--fail-rate"},
      {{"orders", "--port", "0", "--fail-status", "42"}, "--fail-status"},
      {{"orders", "--port", "0", "--seed", "-1"}, "--seed"},
      {{"orders", "--port", "0", "--workers", "many"}, "--workers"},
      {{"products", "--port", "0", "--instance", "two words"}, "--instance"},
      {{"products", "--port", "0", "--address", "localhost"}, "--address"},
      {{"products", "--port", "0", "--max-age", "soon"}, "--max-age"},
      {{"users", "--port", "0", "--max-age", "5"}, "--max-age"},
      {{"users", "--port", "0", "--colour", "red"}, "--colour"},
      {{"users", "--port"}, "--port"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {services_bin};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto done = test::run(argv, {}, 10s);
    EXPECT_FALSE(done.timed_out) << c.names;
    EXPECT_EQ(done.status.code, 2) << c.names << ": " << done.status.describe();
    EXPECT_THAT(done.err, HasSubstr(c.names));
  }
}

TEST_F(ServicesExample, an_unknown_or_missing_service_is_refused) {
  const auto unknown = test::run({services_bin, "billing", "--port", "0"}, {}, 10s);
  EXPECT_FALSE(unknown.timed_out);
  EXPECT_EQ(unknown.status.code, 2) << unknown.status.describe();
  EXPECT_THAT(unknown.err, HasSubstr("'billing'"));
  EXPECT_THAT(unknown.err, HasSubstr("users, orders or products"));

  const auto missing = test::run({services_bin, "--port", "0"}, {}, 10s);
  EXPECT_EQ(missing.status.code, 2) << missing.status.describe();
  EXPECT_THAT(missing.err, HasSubstr("users, orders or products"));

  const auto two = test::run({services_bin, "users", "orders", "--port", "0"}, {}, 10s);
  EXPECT_EQ(two.status.code, 2) << two.status.describe();
  EXPECT_THAT(two.err, HasSubstr("'orders'"));

  const auto help = test::run({services_bin, "--help"}, {}, 10s);
  EXPECT_EQ(help.status.code, 0);
  EXPECT_THAT(help.out, HasSubstr("trellis-services SERVICE"));
}

}  // namespace
}  // namespace trellis
