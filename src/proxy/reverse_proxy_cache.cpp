// The caching half of the reverse proxy: what a CDN edge does with each
// request before and after the origin is asked.
//
//   GET/HEAD ──> look up the URL, pick the variant Vary allows
//     fresh, or stale within the request's max-stale  ──> serve it (a hit);
//         the client's own If-None-Match / If-Modified-Since answered 304
//     stale within stale-while-revalidate ──> serve it, refresh it in the
//         background (one refresh per URL at a time)
//     stale otherwise, or no-cache ──> ask the origin conditionally
//         (If-None-Match / If-Modified-Since from the stored validators):
//         304 ──> freshen the stored copy and serve it
//         200 ──> store the new one while relaying it
//         error or 5xx ──> the stale copy if stale-if-error allows it
//     nothing stored ──> one request leads the fill, the others wait for it
//         (collapsed) and then look again; the leader relays the response
//         and stores it as it streams by, when RFC 9111 allows
//   other methods ──> forwarded; a 2xx or 3xx to an unsafe method drops
//       the target URL and the same-origin Location / Content-Location
//
// Every decision is http/caching.hpp's; every byte kept is http_cache's.
// Each response says what happened in Cache-Status (RFC 9211).

#include <asio/co_spawn.hpp>
#include <asio/this_coro.hpp>
#include <charconv>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "relay.hpp"
#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/content_coding.hpp"
#include "trellis/core/log.hpp"
#include "trellis/proxy/reverse_proxy.hpp"

namespace trellis::proxy {

namespace {

using sys_clock = std::chrono::system_clock;

// The primary cache key: the effective request URI (RFC 9110 §7.1), with
// scheme and host lower-cased and a default port left out, so that
// "http://A:80/x" and "http://a/x" share their responses.
std::string cache_key(std::string_view scheme, std::string_view authority, std::string_view path,
                      std::string_view query) {
  const std::string_view default_port = scheme == "https" ? ":443" : ":80";
  if (authority.ends_with(default_port)) authority.remove_suffix(default_port.size());
  std::string key;
  key.reserve(scheme.size() + 3 + authority.size() + path.size() + query.size() + 2);
  key += scheme;
  key += "://";
  for (const char c : authority) key += codec::ascii_lower(c);
  if (path.empty()) key += '/';
  key += path;
  if (!query.empty()) {
    key += '?';
    key += query;
  }
  return key;
}

std::string key_of(const http::request& req) {
  return cache_key(req.secure() ? "https" : "http", req.host(), req.path(), req.query());
}

}  // namespace

std::string cache_key(const http::url& u) {
  std::string authority = u.host_kind == http::host_type::ipv6 ? "[" + u.host + "]" : u.host;
  if (!u.port_text.empty()) authority += ":" + u.port_text;
  return cache_key(u.scheme, authority, u.path, u.query);
}

namespace {

// A request's own copy of itself, for work that outlives its handler (a
// background refresh): the head's bytes copied, an http::request bound to
// them, no body.
struct request_copy {
  explicit request_copy(const http::request& from) {
    std::size_t size = from.method_text().size() + from.target().size() + from.host().size();
    for (const auto& f : from.headers()) size += f.name.size() + f.value.size();
    storage.reserve(size);  // no reallocation below: the views stay valid
    const auto keep = [&](std::string_view s) {
      const std::size_t at = storage.size();
      storage.append(s);
      return std::string_view(storage).substr(at, s.size());
    };
    head.method = from.method();
    head.method_text = keep(from.method_text());
    head.target = keep(from.target());
    head.host = keep(from.host());
    head.version_minor = from.version_minor();
    lines.reserve(from.headers().size());
    for (const auto& f : from.headers()) {
      http::header_field line;
      line.name = keep(f.name);
      line.value = keep(f.value);
      lines.push_back(line);
    }
    head.headers = lines;
    req.bind(head, nullptr, from.remote_endpoint(), from.secure());
  }
  request_copy(const request_copy&) = delete;
  request_copy& operator=(const request_copy&) = delete;

  std::string storage;
  std::vector<http::header_field> lines;
  http::request_head head;
  http::request req;
};

// Whether a stored response gets a gzip copy (proxy_cache_options::gzip).
bool worth_compressing(const cached_response& r, const proxy_cache_options& co) {
  if (!co.gzip || r.body.size() < co.gzip_min_size || r.body.size() > co.gzip_max_size)
    return false;
  if (r.status == 206 || r.headers.contains("Content-Encoding") ||
      r.headers.contains("Content-Range"))
    return false;
  if (http::parse_cache_control(r.headers).no_transform) return false;  // RFC 9110 §7.7
  const auto type = r.headers.get("Content-Type");
  return type && http::is_compressible(*type);
}

// Makes r.gzip_body when it is worth it: compressed once, here, and served
// to every client that accepts it until the response leaves the cache.
void compress(cached_response& r, const proxy_cache_options& co) {
  if (!worth_compressing(r, co)) return;
  http::content_encoder encoder(http::content_coding::gzip);
  std::string out;
  out.reserve(r.body.size() / 3 + 64);
  encoder.encode(r.body, out);
  encoder.finish(out);
  if (out.size() < r.body.size()) r.gzip_body = std::move(out);
}

// Keeps a copy of a body relayed to the client and stores the response
// when the body has arrived whole; ends the fill either way.
class store_capture final : public detail::body_capture {
 public:
  store_capture(http_cache& cache, std::string key, cached_response r, http_cache::fill fill,
                const proxy_cache_options& co)
      : cache_(cache), key_(std::move(key)), r_(std::move(r)), fill_(std::move(fill)), co_(co) {}

  void append(std::string_view piece) override {
    if (dropped_) return;
    if (r_.body.size() + piece.size() > cache_.options().max_entry_bytes) {
      // Too large to keep: stop copying, and let the waiting requests go.
      dropped_ = true;
      std::string().swap(r_.body);
      fill_.end();
      return;
    }
    r_.body.append(piece);
  }
  void finish() override {
    if (!dropped_) {
      compress(r_, co_);
      (void)cache_.store(key_, std::move(r_));
    }
    dropped_ = true;
    fill_.end();
  }

 private:
  http_cache& cache_;
  std::string key_;
  cached_response r_;
  http_cache::fill fill_;
  const proxy_cache_options& co_;
  bool dropped_ = false;
};

// Tags a response is stored with: the space-separated keys of its
// Surrogate-Key field (the convention of Fastly and Varnish's xkey).
std::vector<std::string> tags_of(http::fields_view headers) {
  std::vector<std::string> tags;
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto f = headers[i];
    if (!codec::iequals(f.name, "Surrogate-Key")) continue;
    std::string_view v = f.value;
    while (!v.empty()) {
      const auto start = v.find_first_not_of(" \t");
      if (start == std::string_view::npos) break;
      v.remove_prefix(start);
      const auto end = v.find_first_of(" \t");
      tags.emplace_back(v.substr(0, end));
      v.remove_prefix(end == std::string_view::npos ? v.size() : end);
    }
  }
  return tags;
}

// Adds this cache's member to Cache-Status (after any the origin's
// caches added, RFC 9211 §2).
void add_cache_status(http::fields& headers, const std::string& name, const http::cache_status& s) {
  std::string value = http::format_cache_status(name, s);
  if (const auto old = headers.get("Cache-Status"); old && !old->empty())
    value = std::string(*old) + ", " + value;
  (void)headers.set("Cache-Status", value);
}

// The Content-Length of a response, 0 without one (the body's size is
// then found as it arrives).
std::uint64_t declared_length(const http::fields& headers) {
  const auto v = headers.get("Content-Length");
  std::uint64_t n = 0;
  if (v) std::from_chars(v->data(), v->data() + v->size(), n);
  return n;
}

bool has_validator(http::fields_view headers) {
  return headers.first("ETag").has_value() || headers.first("Last-Modified").has_value();
}

// How long to keep a response: while fresh, then as long as something
// may still use it stale — stale-while-revalidate, stale-if-error, or a
// revalidation (worth keeping for only with a validator). Zero or less:
// not worth storing.
std::chrono::seconds keep_for(const cached_response& r, const http::cache_control& cc,
                              const proxy_cache_options& co) {
  std::chrono::seconds extra = co.rules.stale_if_error_default;
  if (cc.stale_while_revalidate) extra = std::max(extra, *cc.stale_while_revalidate);
  if (cc.stale_if_error) extra = std::max(extra, *cc.stale_if_error);
  if (has_validator(r.headers)) extra = std::max(extra, co.keep_stale);
  const std::chrono::seconds fresh_for =
      std::max(r.lifetime - r.initial_age, std::chrono::seconds(0));
  return std::min<std::chrono::seconds>(fresh_for + extra, std::chrono::hours(24 * 365));
}

// What a fetched response becomes in the cache, when it may be stored at
// all: the verdict, and for a storable one its stored form (without body).
struct entry_plan {
  http::store_verdict verdict = http::store_verdict::storable;
  std::optional<cached_response> entry;
};

entry_plan plan_entry(const proxy_cache_options& co, const http::request& req,
                      const http::cache_request& creq, const http::client_response& head,
                      const detail::upstream_call& call) {
  entry_plan plan;
  const http::cache_response cres = http::cache_response::from(head.status, head.headers);
  // Only GET responses are kept (a stored GET response also answers HEAD).
  plan.verdict = req.method() == http::method::get ? http::check_storable(creq, cres, co.rules)
                                                   : http::store_verdict::method;
  if (plan.verdict != http::store_verdict::storable) return plan;
  auto variant = http::secondary_key(head.headers, req.headers());
  if (!variant) {  // Vary: * — never reusable
    plan.verdict = http::store_verdict::not_reusable;
    return plan;
  }
  cached_response r;
  r.status = head.status;
  http::copy_storable_fields(head.headers, cres.cc, call.response_time, r.headers, co.rules);
  r.request_time = call.request_time;
  r.response_time = call.response_time;
  r.variant = std::move(*variant);
  r.tags = tags_of(head.headers);
  r.initial_age = http::corrected_initial_age(head.headers, call.request_time, call.response_time);
  r.lifetime = http::freshness_lifetime(cres, call.response_time, co.rules).lifetime;
  const std::chrono::seconds keep = keep_for(r, cres.cc, co);
  if (keep.count() <= 0 || declared_length(head.headers) > co.store->options().max_entry_bytes) {
    plan.verdict = http::store_verdict::not_reusable;
    return plan;
  }
  r.keep_until = co.store->now() + keep;
  plan.entry = std::move(r);
  return plan;
}

// The stored response `stored`, freshened by a 304 that selected it
// (RFC 9111 §4.3.4): its fields updated, its age and lifetime those of the
// new exchange.
cached_response freshen(const cached_response& stored, const http::client_response& not_modified,
                        const detail::upstream_call& call, const proxy_cache_options& co) {
  cached_response fresh = stored;
  http::update_stored_fields(fresh.headers, not_modified.headers, call.response_time, co.rules);
  fresh.request_time = call.request_time;
  fresh.response_time = call.response_time;
  fresh.initial_age =
      http::corrected_initial_age(fresh.headers, call.request_time, call.response_time);
  const http::cache_response cres = http::cache_response::from(fresh.status, fresh.headers);
  fresh.lifetime = http::freshness_lifetime(cres, call.response_time, co.rules).lifetime;
  fresh.keep_until =
      co.store->now() + std::max(keep_for(fresh, cres.cc, co), std::chrono::seconds(1));
  return fresh;
}

// Answers from a stored response: the client's own conditional request
// with a 304, a HEAD with the head alone, a GET with head and body.
void serve_stored(const reverse_proxy_options& o, const cached_ptr& stored, http::request& req,
                  http::response& res, std::chrono::seconds age, const http::cache_status& status,
                  std::string_view request_id) {
  res.headers.clear();
  if (http::evaluate_conditional(req.method(), req.headers(), stored->headers, sys_clock::now()) ==
      http::conditional_result::not_modified) {
    res.status = 304;
    http::not_modified_fields(stored->headers, res.headers);
  } else {
    res.status = stored->status;
    res.headers = stored->headers;
  }
  // With a gzip copy, the answer depends on Accept-Encoding; a client that
  // sent one taking gzip gets the copy, under a weak ETag.
  bool gzipped = false;
  if (!stored->gzip_body.empty()) {
    if (!res.headers.has_token("Vary", "accept-encoding") && !res.headers.has_token("Vary", "*"))
      (void)res.headers.add("Vary", "Accept-Encoding");
    const std::string_view accept = req.header("Accept-Encoding");
    gzipped = !accept.empty() && http::accepts(accept, http::content_coding::gzip);
    if (gzipped) {
      if (res.status != 304) (void)res.headers.set("Content-Encoding", "gzip");
      if (const auto etag = res.headers.get("ETag"); etag && etag->starts_with('"'))
        (void)res.headers.set("ETag", "W/" + std::string(*etag));
    }
  }
  const std::string& body = gzipped ? stored->gzip_body : stored->body;
  (void)res.headers.set("Age", http::format_age(age));
  append_via(res.headers, 1, o.forwarding.via);
  if (!request_id.empty()) (void)res.headers.set(o.request_id_header, request_id);
  add_cache_status(res.headers, o.cache.name, status);
  res.body.clear();
  if (res.status == 304 || res.status == 204 || res.status < 200) {
    res.headers.erase("Content-Length");
    return;
  }
  if (req.method() == http::method::head) {
    // The body a GET would get, described but not sent.
    (void)res.headers.set("Content-Length", std::to_string(body.size()));
    res.stream = [](http::body_writer&) -> asio::awaitable<void> { co_return; };
    return;
  }
  if (body.size() <= o.buffer_size) {
    res.headers.erase("Content-Length");  // the server writes the body's own
    res.body = body;
    return;
  }
  // A large body: written from the shared copy, a slice at a time, at the
  // client's pace, without copying it.
  (void)res.headers.set("Content-Length", std::to_string(body.size()));
  res.stream = [stored, gzipped](http::body_writer& w) -> asio::awaitable<void> {
    constexpr std::size_t slice = 256 * 1024;
    const std::string_view all = gzipped ? stored->gzip_body : stored->body;
    for (std::size_t at = 0; at < all.size(); at += slice)
      if (auto ec = co_await w.write(all.substr(at, slice))) co_return;
  };
}

}  // namespace

void reverse_proxy::count_cache(cache_result r) {
  cache_counters_[static_cast<int>(r)]->add();
}

asio::awaitable<void> reverse_proxy::handle_cached(http::request& req, http::response& res,
                                                   worker_state& ws, std::string_view request_id) {
  const proxy_cache_options& co = options_.cache;
  http_cache& cache = *co.store;
  detail::upstream_call call;

  // --- unsafe and other methods: forwarded, then invalidating -----------------
  if (req.method() != http::method::get && req.method() != http::method::head) {
    count_cache(cache_result::bypass);
    co_await call_upstream(req, ws, request_id, nullptr, call);
    if (!call.stream) {
      answer_failure(call, ws, request_id, res);
      co_return;
    }
    const auto& head = call.stream->response();
    if (!http::is_safe(req.method())) {
      const std::string base = std::string(req.secure() ? "https://" : "http://") +
                               std::string(req.host()) + std::string(req.path()) +
                               (req.query().empty() ? "" : "?" + std::string(req.query()));
      if (auto target = http::parse_url(base))
        for (const http::url& u :
             http::invalidated_uris(req.method(), head.status, *target, head.headers))
          (void)cache.purge(cache_key(u));
    }
    http::cache_status status;
    status.fwd = http::cache_fwd::method;
    status.fwd_status = head.status;
    co_await relay(req, res, ws, call, request_id, nullptr);
    add_cache_status(res.headers, co.name, status);
    co_return;
  }

  // --- GET and HEAD: look up, collapsing concurrent misses ---------------------
  const http::cache_request creq = http::cache_request::from(req.method(), req.headers());
  const std::string key = key_of(req);
  http::cache_status status;
  status.fwd = http::cache_fwd::uri_miss;
  http_cache::fill fill;
  cached_ptr stored;
  for (int look = 0; look < 2; ++look) {
    bool url_found = false;
    stored = cache.find(key, [&](const cached_response& r) {
      url_found = true;
      const auto k = http::secondary_key(r.headers, req.headers());
      return k && *k == r.variant;
    });
    if (stored) break;
    status.fwd = url_found ? http::cache_fwd::vary_miss : http::cache_fwd::uri_miss;
    // HEAD responses are not stored, so a HEAD has no fill to lead or wait for.
    if (creq.cc.only_if_cached || req.method() == http::method::head) break;
    const auto outcome = co_await cache.begin_fill(key, fill);
    if (outcome != http_cache::fill_outcome::filled) break;  // lead, or waited long enough
    status.collapsed = true;
  }

  const sys_clock::time_point now = sys_clock::now();
  std::chrono::seconds age{0};
  http::cache_control stored_cc;
  if (stored) {
    stored_cc = http::parse_cache_control(stored->headers);
    age = http::current_age(stored->initial_age, stored->response_time, now);
    const http::reuse_decision d =
        http::decide_reuse(creq.cc, stored_cc, age, stored->lifetime, co.rules);
    status.ttl = d.ttl;
    switch (d.action) {
      case http::reuse_action::serve_fresh:
      case http::reuse_action::serve_stale:
        status.hit = true;
        count_cache(d.action == http::reuse_action::serve_fresh ? cache_result::hit
                                                                : cache_result::stale);
        serve_stored(options_, stored, req, res, age, status, request_id);
        co_return;
      case http::reuse_action::serve_stale_revalidate: {
        status.hit = true;
        status.detail = "stale-while-revalidate";
        count_cache(cache_result::stale);
        serve_stored(options_, stored, req, res, age, status, request_id);
        // The refresh outlives this handler: it works on its own copy of
        // the request, kept with its other state in the function object,
        // which co_spawn keeps until the refresh ends. (Everything named:
        // g++ 12 mishandles temporaries in an expression with co_await.)
        auto copy = std::make_shared<request_copy>(req);
        auto refresh = [this, &ws, copy, key, stored,
                        id = std::string(request_id)]() -> asio::awaitable<void> {
          co_await refresh_in_background(copy->req, ws, key, stored, id);
        };
        auto logged = [key](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            core::log::error("background cache refresh failed",
                             {{"key", key}, {"error", ex.what()}});
          } catch (...) {
            core::log::error("background cache refresh failed", {{"key", key}});
          }
        };
        const auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(ex, std::move(refresh), std::move(logged));
        co_return;
      }
      case http::reuse_action::gateway_timeout: break;  // answered below
      case http::reuse_action::revalidate:
        status.fwd = d.fwd;
        status.detail = d.reason;
        break;
    }
    if (d.action == http::reuse_action::gateway_timeout) stored = nullptr;
  }
  if (creq.cc.only_if_cached && !stored) {
    // RFC 9111 §5.2.1.7: nothing usable and the client forbids going on.
    count_cache(cache_result::miss);
    res.status = 504;
    res.headers.clear();
    res.set_text("not in cache (only-if-cached)\n");
    if (!request_id.empty()) (void)res.headers.set(options_.request_id_header, request_id);
    http::cache_status s;
    s.detail = "only-if-cached";
    add_cache_status(res.headers, co.name, s);
    co_return;
  }

  // --- the origin: revalidating what is stored, or fetching anew ---------------
  bool validating = false;
  const fields_adjuster add_validators = [&](http::fields& f) {
    validating = http::set_validation_fields(stored->headers, f);
  };
  co_await call_upstream(req, ws, request_id, stored ? &add_validators : nullptr, call);
  const int upstream_status = call.stream ? call.stream->response().status : 0;
  if (stored && (!call.stream || http::is_stale_if_error_status(upstream_status)) &&
      http::may_serve_stale_on_error(creq.cc, stored_cc, age, stored->lifetime, co.rules)) {
    // The origin failed; the stale copy is allowed to stand in for it.
    count_cache(cache_result::stale);
    status.fwd = http::cache_fwd::stale;
    if (call.stream) status.fwd_status = upstream_status;
    status.detail = "stale-if-error";
    serve_stored(options_, stored, req, res, age, status, request_id);
    co_return;
  }
  if (!call.stream) {
    count_cache(cache_result::miss);
    answer_failure(call, ws, request_id, res);
    add_cache_status(res.headers, co.name, status);
    co_return;
  }
  status.fwd_status = upstream_status;
  if (stored && validating && upstream_status == 304) {
    const auto& head = call.stream->response();
    if (http::select_for_update(stored->headers, head.headers) != http::update_match::none) {
      // Still valid: the stored copy, freshened by the 304's fields.
      cached_response fresh = freshen(*stored, head, call, co);
      auto end = co_await call.stream->read_some();  // gives the connection back
      (void)end;
      cached_ptr kept = cache.store(key, std::move(fresh));
      if (!kept) kept = stored;  // could not be kept: serve it all the same
      count_cache(cache_result::revalidated);
      status.ttl = kept->lifetime - kept->initial_age;
      serve_stored(options_, kept, req, res, kept->initial_age, status, request_id);
      co_return;
    }
  }

  // A full response (or a 304 the client asked for itself): relayed, and
  // stored on its way when it may be.
  count_cache(cache_result::miss);
  std::shared_ptr<store_capture> capture;
  const auto& head = call.stream->response();
  entry_plan plan = plan_entry(co, req, creq, head, call);
  if (plan.entry) {
    status.stored = true;
    status.ttl = plan.entry->lifetime - plan.entry->initial_age;
    // (Without a claimed fill — a revalidation, or after waiting long
    // enough — the response is stored all the same; `fill` is then empty.)
    capture =
        std::make_shared<store_capture>(cache, key, std::move(*plan.entry), std::move(fill), co);
  } else {
    fill.end();  // nothing to wait for
    if (plan.verdict != http::store_verdict::storable)
      status.detail = http::to_string(plan.verdict);
  }
  co_await relay(req, res, ws, call, request_id, capture);
  add_cache_status(res.headers, co.name, status);
}

asio::awaitable<void> reverse_proxy::refresh_in_background(http::request& req, worker_state& ws,
                                                           const std::string& key,
                                                           const cached_ptr& stored,
                                                           const std::string& request_id) {
  const proxy_cache_options& co = options_.cache;
  http_cache& cache = *co.store;
  http_cache::fill fill;
  if (co_await cache.begin_fill(key, fill) != http_cache::fill_outcome::lead) co_return;
  const http::cache_request creq = http::cache_request::from(req.method(), req.headers());
  bool validating = false;
  const fields_adjuster add_validators = [&](http::fields& f) {
    validating = http::set_validation_fields(stored->headers, f);
  };
  detail::upstream_call call;
  co_await call_upstream(req, ws, request_id, &add_validators, call);
  if (!call.stream) co_return;  // the stale copy stays until its time is up
  const auto& head = call.stream->response();
  if (validating && head.status == 304) {
    if (http::select_for_update(stored->headers, head.headers) == http::update_match::none)
      co_return;
    cached_response fresh = freshen(*stored, head, call, co);
    auto end = co_await call.stream->read_some();
    (void)end;
    (void)cache.store(key, std::move(fresh));
    co_return;
  }
  entry_plan plan = plan_entry(co, req, creq, head, call);
  if (!plan.entry) co_return;
  store_capture capture(cache, key, std::move(*plan.entry), std::move(fill), co);
  for (;;) {
    auto piece = co_await call.stream->read_some();
    if (!piece) co_return;  // broke off: nothing stored
    if (piece->empty()) break;
    capture.append(*piece);
  }
  capture.finish();
}

}  // namespace trellis::proxy
