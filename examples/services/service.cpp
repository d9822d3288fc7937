// What the demo services share: middleware, /health, /admin/*, error
// helpers (see service.hpp).
#include "service.hpp"

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>

#include "trellis/codec/http/serializer.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"
#include "trellis/http/json.hpp"

namespace trellis::examples::services {

namespace {

std::mt19937_64& random_engine() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

// /health and /admin/* are how operators and health checkers see the
// service; they are never delayed or failed, or a demo of "slow replica"
// would also mark the replica down, which is a different demo.
bool is_api_path(std::string_view path) {
  return path != "/health" && path != "/admin" && !path.starts_with("/admin/");
}

class instance_header final : public http::middleware {
 public:
  explicit instance_header(const knobs& k) : k_(k) {}
  asio::awaitable<void> after(http::request&, http::response& res) override {
    (void)res.headers.set("X-Instance", k_.instance);
    co_return;
  }

 private:
  const knobs& k_;
};

class problem_errors final : public http::middleware {
 public:
  asio::awaitable<void> after(http::request& req, http::response& res) override {
    const auto type = res.headers.get("Content-Type");
    const bool plain = type && type->starts_with("text/plain");
    if (!plain) co_return;
    if (res.status == 404)
      http::set_problem(res, 404, "Not Found", "no resource at " + std::string(req.path()));
    else if (res.status == 405)
      http::set_problem(
          res, 405, "Method Not Allowed",
          std::string(req.method_text()) + " is not supported here; see the Allow header");
    else if (res.status == 500)
      http::set_problem(res, 500, "Internal Server Error", "the request could not be handled");
  }
};

class fault_injection final : public http::middleware {
 public:
  explicit fault_injection(const knobs& k) : k_(k) {}

  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override {
    if (!is_api_path(req.path())) co_return http::filter_status::proceed;
    const long delay = k_.latency_ms.load(std::memory_order_relaxed);
    if (delay > 0) {
      // A timer on this request's own executor: a slow request holds no
      // thread while it waits, so one slow replica can hold thousands.
      asio::steady_timer timer(co_await asio::this_coro::executor,
                               std::chrono::milliseconds(delay));
      co_await timer.async_wait(use_nothrow);
    }
    const double rate = k_.fail_rate.load(std::memory_order_relaxed);
    if (rate > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(random_engine()) < rate) {
      const std::string_view reason = http::reason_phrase(k_.fail_status);
      http::set_problem(res, k_.fail_status, reason.empty() ? "Injected Failure" : reason,
                        "injected failure (fail rate " + json(rate).dump() + ")");
      co_return http::filter_status::respond;
    }
    co_return http::filter_status::proceed;
  }

 private:
  const knobs& k_;
};

json knobs_json(const knobs& k) {
  json j = json::object();
  j["service"] = k.service;
  j["instance"] = k.instance;
  j["healthy"] = k.healthy.load(std::memory_order_relaxed);
  j["latency_ms"] = k.latency_ms.load(std::memory_order_relaxed);
  j["fail_rate"] = k.fail_rate.load(std::memory_order_relaxed);
  j["fail_status"] = k.fail_status;
  return j;
}

}  // namespace

void use_common_middleware(http::router& routes, knobs& k) {
  routes.use(std::make_shared<instance_header>(k));
  routes.use(std::make_shared<problem_errors>());
  routes.use(std::make_shared<fault_injection>(k));
}

void add_common_routes(http::router& routes, knobs& k) {
  routes.get("/health", [&k](http::request&, http::response& res) -> asio::awaitable<void> {
    const bool up = k.healthy.load(std::memory_order_relaxed);
    json j = json::object();
    j["status"] = up ? "ok" : "down";
    j["service"] = k.service;
    j["instance"] = k.instance;
    http::set_json(res, j, up ? 200 : 503);
    co_return;
  });
  routes.post("/admin/health",
              [&k](http::request& req, http::response& res) -> asio::awaitable<void> {
                const auto q = read_query(req, res, {"state"});
                if (!q) co_return;
                const auto state = q->get("state");
                if (state != "down" && state != "up") {
                  bad_request(res, "state: expected down or up");
                  co_return;
                }
                k.healthy.store(*state == "up", std::memory_order_relaxed);
                core::log::info("health set", {{"state", *state}});
                http::set_json(res, knobs_json(k));
              });
  routes.post("/admin/latency",
              [&k](http::request& req, http::response& res) -> asio::awaitable<void> {
                const auto q = read_query(req, res, {"ms"});
                if (!q) co_return;
                if (!q->contains("ms")) {
                  bad_request(res, "ms: expected milliseconds from 0 to 60000");
                  co_return;
                }
                const auto ms = number_param(*q, "ms", 0, 0, max_latency_ms, res);
                if (!ms) co_return;
                k.latency_ms.store(static_cast<long>(*ms), std::memory_order_relaxed);
                core::log::info("latency set", {{"ms", *ms}});
                http::set_json(res, knobs_json(k));
              });
  routes.post("/admin/fail-rate",
              [&k](http::request& req, http::response& res) -> asio::awaitable<void> {
                const auto q = read_query(req, res, {"p"});
                if (!q) co_return;
                const auto p = q->get("p");
                const auto rate = p ? parse_probability(std::string(*p)) : std::nullopt;
                if (!rate) {
                  bad_request(res, "p: expected a probability from 0 to 1");
                  co_return;
                }
                k.fail_rate.store(*rate, std::memory_order_relaxed);
                core::log::info("fail rate set", {{"p", *rate}});
                http::set_json(res, knobs_json(k));
              });
}

std::optional<double> parse_probability(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double p = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !(p >= 0.0 && p <= 1.0)) return std::nullopt;
  return p;
}

std::optional<std::uint64_t> parse_id(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id == 0) return std::nullopt;
  return id;
}

void not_found(http::response& res, std::string_view what) {
  http::set_problem(res, 404, "Not Found", "there is no " + std::string(what));
}

void bad_request(http::response& res, std::string_view detail) {
  http::set_problem(res, 400, "Bad Request", detail);
}

void validation_failed(http::response& res, const json& errors) {
  const std::size_t n = errors.size();
  http::set_problem(res, 422, "Unprocessable Content",
                    n == 1 ? "1 field is invalid" : std::to_string(n) + " fields are invalid",
                    input{{"errors", errors}});
}

std::optional<http::query_params> read_query(const http::request& req, http::response& res,
                                             std::initializer_list<std::string_view> known) {
  auto q = http::query_params::parse(req.query());
  if (!q) {
    bad_request(res, "the query string is malformed: " + q.error().message());
    return std::nullopt;
  }
  for (const auto& [key, value] : *q) {
    bool ok = false;
    for (const auto k : known) ok |= key == k;
    if (ok) continue;
    std::string list;
    for (const auto k : known) {
      if (!list.empty()) list += ", ";
      list += k;
    }
    bad_request(res, "unknown query parameter '" + std::string(key) +
                         "'; known: " + (list.empty() ? std::string("none") : list));
    return std::nullopt;
  }
  return std::move(*q);
}

std::optional<std::int64_t> number_param(const http::query_params& q, std::string_view name,
                                         std::int64_t fallback, std::int64_t lo, std::int64_t hi,
                                         http::response& res) {
  const auto text = q.get(name);
  if (!text) return fallback;
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || n < lo ||
      n > hi) {
    bad_request(res, std::string(name) + " must be an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi));
    return std::nullopt;
  }
  return n;
}

}  // namespace trellis::examples::services
