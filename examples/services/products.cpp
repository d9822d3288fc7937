// The products service: the catalogue, read-only and cacheable — the
// origin of the gateway's caching demo (a first GET is a MISS that reaches
// this service, the next ones are HITs answered by the gateway).
//
//   GET /products?category=C   every product (of one category):
//                              {"items":[...],"total":T}
//   GET /products/{id}         one product: {"id","name","category",
//                              "price","currency"}
//
// Both carry Cache-Control: public, max-age=N (--max-age, default 30):
// "public" lets shared caches (a gateway, a CDN) keep the answer, max-age
// says for how long it stays fresh (RFC 9111 §5.2.2). They carry an ETag,
// a hash of the body, so a cache holding a stale copy revalidates with
// If-None-Match and gets 304 Not Modified, no body, when nothing changed
// (RFC 9110 §13.1.2, §15.4.5) — the catalogue never changes while the
// service runs, so after the first fetch every revalidation is a 304.
//
// Unlike users and orders, these bodies do not say which instance answered
// (X-Instance still does). A cacheable representation should be the same
// bytes whichever replica serves it: then the ETag one replica gave
// validates at any other, and a cache behind a load balancer keeps its
// copy instead of refetching it each time the balancer picks another
// replica.
// service.hpp first: it includes Asio before any standard header (why: there).
#include "service.hpp"

#include <cstdint>
#include <cstdio>

#include "trellis/http/json.hpp"

namespace trellis::examples::services {

namespace {

// FNV-1a, 64 bits: not cryptographic, but any change of the body changes
// it with overwhelming probability, which is all a validator needs here.
std::string etag_of(std::string_view body) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : body) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  char text[24];
  std::snprintf(text, sizeof text, "\"%016llx\"", static_cast<unsigned long long>(h));
  return text;
}

// Whether an If-None-Match value matches `etag` (RFC 9110 §13.1.2): "*",
// or a list of entity-tags one of which equals it under the weak
// comparison (W/"x" matches "x": for a GET, a semantically equivalent
// copy is as good as a byte-identical one).
bool none_match_hits(std::string_view if_none_match, std::string_view etag) {
  std::size_t i = 0;
  while (i < if_none_match.size()) {
    const char c = if_none_match[i];
    if (c == ' ' || c == '\t' || c == ',') {
      ++i;
      continue;
    }
    if (c == '*') return true;
    if (if_none_match.compare(i, 2, "W/") == 0) i += 2;
    if (i >= if_none_match.size() || if_none_match[i] != '"') return false;  // malformed
    const auto close = if_none_match.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    if (if_none_match.substr(i, close - i + 1) == etag) return true;
    i = close + 1;
  }
  return false;
}

// Answers `body` as a cacheable 200, or 304 when the client's copy is
// current. A 304 repeats the ETag and Cache-Control a 200 would have had
// (RFC 9110 §15.4.5), so a cache can refresh the copy it holds.
void send_cacheable(const json& body, const knobs& k, http::request& req, http::response& res) {
  http::set_json(res, body);
  const std::string etag = etag_of(res.body);
  (void)res.headers.set("Cache-Control", "public, max-age=" + std::to_string(k.max_age));
  (void)res.headers.set("ETag", etag);
  const std::string_view inm = req.header("If-None-Match");
  if (!inm.empty() && none_match_hits(inm, etag)) {
    res.status = 304;
    res.body.clear();
    (void)res.headers.erase("Content-Type");
  }
}

asio::awaitable<void> list_products(const catalogue& products, const knobs& k, http::request& req,
                                    http::response& res) {
  const auto q = read_query(req, res, {"category"});
  if (!q) co_return;
  const auto category = q->get("category");
  json items = json::array();
  for (const auto& [id, p] : products)
    if (!category || p.category == *category) items.push_back(represent(p));
  const std::size_t total = items.size();
  json page = json::object();
  page["items"] = std::move(items);
  page["total"] = total;
  send_cacheable(page, k, req, res);
}

asio::awaitable<void> get_product(const catalogue& products, const knobs& k, http::request& req,
                                  http::response& res) {
  const auto id = parse_id(req.param("id"));
  const auto it = id ? products.find(*id) : products.end();
  if (it == products.end()) {
    not_found(res, "product /products/" + std::string(req.param("id")));
    co_return;
  }
  send_cacheable(represent(it->second), k, req, res);
}

}  // namespace

void add_product_routes(http::router& routes, const catalogue& products, const knobs& k) {
  routes.get("/products", [&products, &k](http::request& req, http::response& res) {
    return list_products(products, k, req, res);
  });
  routes.get("/products/{id}", [&products, &k](http::request& req, http::response& res) {
    return get_product(products, k, req, res);
  });
}

}  // namespace trellis::examples::services
