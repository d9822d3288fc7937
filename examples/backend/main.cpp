// trellis-backend: the upstream service of the load-balancing demos.
//
//   trellis-backend --name a --port 9001 &
//   trellis-backend --name b --port 9002 --latency 50 --jitter 20 &
//   curl -s localhost:9001/                     #
//   {"instance":"a","path":"/","port":9001,"request":1} curl -s -X POST
//   'localhost:9001/admin/health?state=down' curl -s -o /dev/null -w '%{http_code}\n'
//   localhost:9001/health   # 503
//
// Several instances, each with its own --name, stand behind a proxy or a
// balancer; every answer says which instance gave it (the JSON's
// "instance" and an X-Instance header on every response), so a demo shows
// where requests went. The knobs a demo turns — latency, failure rate,
// health — can be changed while the instance runs (POST /admin/...), so a
// slow or failing or unhealthy host can be shown without restarting
// anything. The knobs are atomics shared by every worker.
//
// Routes:
//   ANY  /*             {"instance","path","port","request"} after the latency
//                       (+ jitter); with probability fail-rate the fail status
//   GET  /health        200 "ok", or 503 "down" when told to be unhealthy;
//                       never delayed, never failed
//   POST /admin/health?state=down|up, /admin/latency?ms=N, /admin/fail-rate?p=X
//                       change the knobs; answer the knobs as JSON
//   ANY  /echo          the request body back, streamed in 16 KiB chunks
//   GET  /bytes/N       N bytes of "0123456789..." in 16 KiB chunks
//   GET  /metrics       the server's metrics, Prometheus text format
//   GET  /cached/*      an origin for a caching proxy (after the latency,
//                       never failed): the same JSON plus
//                       "version", with Cache-Control (max-age from
//                       --max-age or ?max-age=N; ?swr=N and ?sie=N add
//                       stale-while-revalidate and stale-if-error), an
//                       ETag and Last-Modified of the current version
//                       (a matching If-None-Match or If-Modified-Since
//                       gets 304) and a Surrogate-Key of the path's first
//                       segment; ?size=N pads the body with N bytes of
//                       text; POST /admin/version?bump makes a new version
// "request" counts the requests this instance answered on /* (failed ones
// included), not health checks or the other routes.
//
// A known limit: http::server starts a streamed response only after the
// handler returns and drops any request body left unread, so /echo reads
// the whole body first (up to 64 MiB, 413 beyond) and then streams it
// back; it is not a full-duplex echo.
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "cli.hpp"
#include "trellis/codec/http/date.hpp"
#include "trellis/codec/http/fields.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/json.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"

namespace {

using namespace trellis;

constexpr const char* usage = R"(trellis-backend — a demo upstream for proxies and load balancers

usage:
  trellis-backend --name NAME [--address A] [--port P] [--workers N]
                  [--latency MS] [--jitter MS] [--fail-rate P]
                  [--fail-status S] [--max-age S] [--log-level L]

routes  ANY  /*            {"instance":NAME,"path":PATH,"port":P,"request":N}
                           with an X-Instance header, after the latency;
                           with probability fail-rate the fail status instead
        GET  /health       200 "ok"; 503 "down" once told to be unhealthy
        POST /admin/health?state=down|up    fail (or pass) health checks
        POST /admin/latency?ms=N            change the latency (0 to 60000)
        POST /admin/fail-rate?p=X           change the failure rate (0 to 1)
        ANY  /echo         the request body back (up to 64 MiB), chunked
        GET  /bytes/N      N bytes of repeating "0123456789", chunked
        GET  /metrics      the server's metrics, Prometheus text format
        GET  /cached/*     a cacheable answer, after the latency:
                           Cache-Control max-age=--max-age (or ?max-age=N;
                           ?swr=N, ?sie=N add stale-while-revalidate,
                           stale-if-error), ETag and Last-Modified of the
                           current version (304 to a matching conditional
                           request), Surrogate-Key "cached SEG"; ?size=N
                           pads the body with N bytes of text
        POST /admin/version?bump           start a new version (new ETag)
options --name NAME        this instance's name (letters, digits, . _ -)
        --address A        address to bind (default 127.0.0.1; :: for IPv6)
        --port P           port (default 9001; 0 picks a free one)
        --workers N        worker threads (default: one per core)
        --latency MS       delay before each /* answer (default 0)
        --jitter MS        plus a uniform random 0..MS (default 0)
        --fail-rate P      share of /* requests that fail, 0 to 1 (default 0)
        --fail-status S    the status of a failed request (default 500)
        --max-age S        max-age of /cached/* answers (default 30)
        --log-level L      trace, debug, info (default), warn, error, off
)";

constexpr long max_latency_ms = 60'000;
// Largest /echo body: the body is held in memory before it goes back.
constexpr std::size_t max_echo_body = 64 * 1024 * 1024;
// Largest /bytes/N: 64 GiB, more than any test moves and less than forever.
constexpr std::uint64_t max_bytes = std::uint64_t{64} * 1024 * 1024 * 1024;
// Streamed bodies go out in pieces of this size.
constexpr std::size_t piece_size = 16 * 1024;

// What a demo changes at run time; shared by every worker.
struct knobs {
  std::string name;
  std::uint16_t port = 0;
  int fail_status = 500;
  std::atomic<long> latency_ms{0};
  std::atomic<long> jitter_ms{0};
  std::atomic<double> fail_rate{0.0};
  std::atomic<bool> healthy{true};
  std::atomic<std::uint64_t> served{0};
  // /cached/*: the document's version, and when it began (Last-Modified).
  long max_age = 30;
  std::atomic<std::uint64_t> version{1};
  std::atomic<std::int64_t> version_since{0};  // seconds since the epoch
};

std::mt19937_64& random_engine() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

// The value of `name` in a query string ("state=down&x=1"), undecoded.
std::optional<std::string_view> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// A decimal number from 0 to hi, or nullopt.
std::optional<std::uint64_t> parse_count(std::string_view text, std::uint64_t hi) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (n > (hi - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
  }
  return n;
}

// A probability: a decimal number from 0 to 1.
std::optional<double> parse_probability(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double p = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !(p >= 0.0 && p <= 1.0)) return std::nullopt;
  return p;
}

nlohmann::json knobs_json(const knobs& k) {
  nlohmann::json j;
  j["instance"] = k.name;
  j["healthy"] = k.healthy.load(std::memory_order_relaxed);
  j["latency_ms"] = k.latency_ms.load(std::memory_order_relaxed);
  j["jitter_ms"] = k.jitter_ms.load(std::memory_order_relaxed);
  j["fail_rate"] = k.fail_rate.load(std::memory_order_relaxed);
  j["fail_status"] = k.fail_status;
  return j;
}

// Adds X-Instance to every response, whichever route (or the router
// itself) answered.
class instance_header final : public http::middleware {
 public:
  explicit instance_header(std::string name) : name_(std::move(name)) {}
  asio::awaitable<void> after(http::request&, http::response& res) override {
    (void)res.headers.set("X-Instance", name_);
    co_return;
  }

 private:
  std::string name_;
};

// Waits the configured latency (plus jitter).
asio::awaitable<void> pause(const knobs& k) {
  long delay = k.latency_ms.load(std::memory_order_relaxed);
  const long jitter = k.jitter_ms.load(std::memory_order_relaxed);
  if (jitter > 0) delay += std::uniform_int_distribution<long>(0, jitter)(random_engine());
  if (delay > 0) {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(delay));
    co_await timer.async_wait(use_nothrow);
  }
}

// ANY /*: who answered, after the configured latency; sometimes a failure.
asio::awaitable<void> answer_instance(knobs& k, http::request& req, http::response& res) {
  const auto n = k.served.fetch_add(1, std::memory_order_relaxed) + 1;
  co_await pause(k);
  nlohmann::json j;
  j["instance"] = k.name;
  j["port"] = k.port;
  j["request"] = n;
  j["path"] = std::string(req.path());
  const double rate = k.fail_rate.load(std::memory_order_relaxed);
  if (rate > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(random_engine()) < rate) {
    j["error"] = "injected failure";
    http::set_json(res, j, k.fail_status);
    co_return;
  }
  http::set_json(res, j);
}

// GET /cached/*: a document a cache may keep (see the routes above).
asio::awaitable<void> answer_cached(knobs& k, http::request& req, http::response& res) {
  const auto n = k.served.fetch_add(1, std::memory_order_relaxed) + 1;
  co_await pause(k);
  const std::uint64_t version = k.version.load(std::memory_order_relaxed);
  const auto since = std::chrono::system_clock::time_point(
      std::chrono::seconds(k.version_since.load(std::memory_order_relaxed)));
  std::string cc = "max-age=";
  const auto max_age = query_param(req.query(), "max-age");
  cc += max_age && parse_count(*max_age, 1u << 30) ? std::string(*max_age) : std::to_string(k.max_age);
  for (const auto& [param, directive] : {std::pair{"swr", "stale-while-revalidate"},
                                         std::pair{"sie", "stale-if-error"}})
    if (const auto v = query_param(req.query(), param); v && parse_count(*v, 1u << 30))
      cc += ", " + std::string(directive) + "=" + std::string(*v);
  const std::string etag = "\"v" + std::to_string(version) + "\"";
  const std::string_view rest = req.path().substr(std::string_view("/cached/").size());
  (void)res.headers.set("Cache-Control", cc);
  (void)res.headers.set("ETag", etag);
  (void)res.headers.set("Last-Modified", http::format_http_date(since));
  (void)res.headers.set("Surrogate-Key", "cached " + std::string(rest.substr(0, rest.find('/'))));
  const std::string_view inm = req.header("If-None-Match");
  const auto ims = http::parse_http_date(req.header("If-Modified-Since"));
  if ((!inm.empty() && http::has_token(inm, etag)) || (inm.empty() && ims && *ims >= since)) {
    res.status = 304;
    co_return;
  }
  nlohmann::json j;
  j["instance"] = k.name;
  j["path"] = std::string(req.path());
  j["version"] = version;
  j["request"] = n;
  // ?size=N: a "text" member making the body about N bytes longer, to
  // give a compressing cache something to compress.
  if (const auto size = query_param(req.query(), "size")) {
    if (const auto bytes = parse_count(*size, 1u << 20)) {
      static constexpr std::string_view words = "the quick brown fox jumps over the lazy dog ";
      std::string text;
      while (text.size() < *bytes) text += words;
      text.resize(*bytes);
      j["text"] = std::move(text);
    }
  }
  http::set_json(res, j);
}

void bad_param(http::response& res, const std::string& message) {
  res.status = 400;
  res.set_text(message + "\n");
}

// POST /admin/health?state=down|up, /admin/latency?ms=N, /admin/fail-rate?p=X.
void add_admin_routes(http::router& routes, knobs& k) {
  routes.post("/admin/health",
              [&k](http::request& req, http::response& res) -> asio::awaitable<void> {
                const auto state = query_param(req.query(), "state");
                if (state == "down" || state == "up") {
                  k.healthy.store(*state == "up", std::memory_order_relaxed);
                  core::log::info("health set", {{"state", *state}});
                  http::set_json(res, knobs_json(k));
                } else {
                  bad_param(res, "state: expected down or up");
                }
                co_return;
              });
  routes.post(
      "/admin/latency", [&k](http::request& req, http::response& res) -> asio::awaitable<void> {
        const auto ms = query_param(req.query(), "ms");
        const auto n = ms ? parse_count(*ms, max_latency_ms) : std::nullopt;
        if (n) {
          k.latency_ms.store(static_cast<long>(*n), std::memory_order_relaxed);
          core::log::info("latency set", {{"ms", *n}});
          http::set_json(res, knobs_json(k));
        } else {
          bad_param(res, "ms: expected milliseconds from 0 to " + std::to_string(max_latency_ms));
        }
        co_return;
      });
  routes.post("/admin/fail-rate",
              [&k](http::request& req, http::response& res) -> asio::awaitable<void> {
                const auto p = query_param(req.query(), "p");
                const auto rate = p ? parse_probability(std::string(*p)) : std::nullopt;
                if (rate) {
                  k.fail_rate.store(*rate, std::memory_order_relaxed);
                  core::log::info("fail rate set", {{"p", *rate}});
                  http::set_json(res, knobs_json(k));
                } else {
                  bad_param(res, "p: expected a probability from 0 to 1");
                }
                co_return;
              });
  routes.post("/admin/version", [&k](http::request&, http::response& res) -> asio::awaitable<void> {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now().time_since_epoch());
    k.version_since.store(now.count(), std::memory_order_relaxed);
    const auto v = k.version.fetch_add(1, std::memory_order_relaxed) + 1;
    core::log::info("version bumped", {{"version", v}});
    nlohmann::json j = knobs_json(k);
    j["version"] = v;
    http::set_json(res, j);
    co_return;
  });
}

// Writes `body` in piece_size chunks.
asio::awaitable<void> send_back(std::shared_ptr<const std::string> body, http::body_writer& w) {
  for (std::size_t at = 0; at < body->size(); at += piece_size) {
    const std::string_view piece = std::string_view(*body).substr(at, piece_size);
    const auto ec = co_await w.write(piece);
    if (ec) co_return;
  }
}

// ANY /echo: reads the body piece by piece, then streams it back.
asio::awaitable<void> echo(http::request& req, http::response& res) {
  auto body = std::make_shared<std::string>();
  for (;;) {
    auto piece = co_await req.read_some();
    if (!piece) {
      res.status = http::status_for(piece.error());
      res.set_text(piece.error().message() + "\n");
      res.close = true;
      co_return;
    }
    if (piece->empty()) break;
    if (body->size() + piece->size() > max_echo_body) {
      res.status = 413;
      res.set_text("echo: body over " + std::to_string(max_echo_body) + " bytes\n");
      res.close = true;
      co_return;
    }
    body->append(*piece);
  }
  const auto type = req.header("Content-Type");
  (void)res.headers.set("Content-Type", type.empty() ? "application/octet-stream" : type);
  res.stream = [body](http::body_writer& w) { return send_back(body, w); };
}

// Writes `total` bytes of the pattern, byte i being '0' + i % 10.
asio::awaitable<void> send_pattern(std::uint64_t total, http::body_writer& w) {
  // piece_size + 10 bytes of the pattern: a piece at any position starts
  // at (position % 10) in it.
  static const std::string pattern = [] {
    std::string s(piece_size + 10, '0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('0' + i % 10);
    return s;
  }();
  for (std::uint64_t at = 0; at < total;) {
    const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(piece_size, total - at));
    const std::string_view piece = std::string_view(pattern).substr(at % 10, len);
    const auto ec = co_await w.write(piece);
    if (ec) co_return;
    at += len;
  }
}

// GET /bytes/N: N bytes of "0123456789" repeated (byte i is '0' + i % 10),
// in 16 KiB chunks.
asio::awaitable<void> bytes(http::request& req, http::response& res) {
  const auto n = parse_count(req.param("n"), max_bytes);
  if (!n) {
    bad_param(res, "bytes: expected a count from 0 to " + std::to_string(max_bytes));
    co_return;
  }
  (void)res.headers.set("Content-Type", "application/octet-stream");
  const std::uint64_t total = *n;
  res.stream = [total](http::body_writer& w) { return send_pattern(total, w); };
}

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
  const examples::args a("trellis-backend", argc, argv, usage);
  a.allow({"name", "address", "port", "workers", "latency", "jitter", "fail-rate", "fail-status",
           "max-age", "log-level"});
  if (!a.positional().empty())
    a.fail("unexpected argument '" + a.positional()[0] + "' (see --help)");
  a.apply_log_level();
  const auto name = a.get("name");
  if (!name) a.fail("--name is required (see --help)");
  if (!valid_name(*name))
    a.fail("--name: expected 1 to 64 letters, digits, '.', '_' or '-', got '" + *name + "'");
  const auto address = a.address();
  const auto port = static_cast<unsigned short>(a.number("port", 9001, 0, 65535));
  const auto workers = static_cast<std::size_t>(a.number("workers", 0, 0, 1024));
  knobs k;
  k.name = *name;
  k.latency_ms = a.number("latency", 0, 0, max_latency_ms);
  k.jitter_ms = a.number("jitter", 0, 0, max_latency_ms);
  k.fail_status = static_cast<int>(a.number("fail-status", 500, 200, 599));
  k.max_age = a.number("max-age", 30, 0, 1 << 30);
  // The first version dates from start-up.
  k.version_since = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  if (auto p = a.get("fail-rate")) {
    const auto rate = parse_probability(*p);
    if (!rate) a.fail("--fail-rate: expected a probability from 0 to 1, got '" + *p + "'");
    k.fail_rate = *rate;
  }

  http::router routes;
  routes.use(std::make_shared<instance_header>(k.name));
  for (auto m : {http::method::get, http::method::post, http::method::put, http::method::patch,
                 http::method::delete_}) {
    routes.add(m, "/*", [&k](http::request& req, http::response& res) {
      return answer_instance(k, req, res);
    });
    routes.add(m, "/echo", echo);
  }
  routes.get("/health", [&k](http::request&, http::response& res) -> asio::awaitable<void> {
    if (k.healthy.load(std::memory_order_relaxed)) {
      res.set_text("ok", "text/plain");
    } else {
      res.status = 503;
      res.set_text("down", "text/plain");
    }
    co_return;
  });
  routes.get("/bytes/{n}", bytes);
  routes.get("/cached/*", [&k](http::request& req, http::response& res) {
    return answer_cached(k, req, res);
  });
  add_admin_routes(routes, k);

  // The runtime before the server: the server's drain hooks live in the
  // runtime's workers and are removed when the server goes.
  core::runtime rt({.workers = workers});
  http::server srv(routes.to_handler());
  routes.get("/metrics", [&srv](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text(srv.metrics().expose(), "text/plain; version=0.0.4");
    co_return;
  });
  auto bound = srv.listen(rt, {address, port});
  if (!bound)
    a.fail("cannot listen on " + examples::to_string({address, port}) + ": " +
           bound.error().message());
  k.port = bound->port();
  core::log::info(
      "listening",
      {{"address", examples::to_string(*bound)}, {"instance", k.name}, {"workers", rt.size()}});
  rt.run();
  core::log::info("stopped");
  return 0;
}
