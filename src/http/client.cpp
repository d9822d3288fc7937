#include "trellis/http/client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/content_coding.hpp"
#include "trellis/codec/http/error.hpp"
#include "trellis/codec/http/serializer.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/buffer.hpp"
#include "trellis/core/log.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/error.hpp"

namespace trellis::http {

bool is_idempotent(std::string_view method) noexcept {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

namespace detail {
namespace {

using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::microseconds;

// Bytes asked of the kernel per read.
constexpr std::size_t read_chunk = 16 * 1024;

microseconds since(steady::time_point t) {
  return duration_cast<microseconds>(steady::now() - t);
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

// Fields the client writes itself, from the URL and the body.
bool client_owned(std::string_view name) {
  return codec::iequals(name, "Host") || codec::iequals(name, "Content-Length") ||
         codec::iequals(name, "Transfer-Encoding");
}

// The parser's verdict on a response, in the client's terms: every limit
// is "the response was too large"; a message cut short is "the peer
// closed"; the framing errors keep their own codes.
std::error_code map_parse_error(std::error_code ec) {
  if (ec == http::error::body_too_large || ec == http::error::header_too_large ||
      ec == http::error::too_many_headers || ec == http::error::trailer_too_large ||
      ec == http::error::uri_too_long)
    return client_error::response_too_large;
  if (ec == http::error::partial_message) return client_error::connection_closed;
  return ec;
}

}  // namespace

// One connection to an origin (or to a proxy): the transport, the bytes
// read and not yet parsed, and the parser, all reused from one exchange to
// the next.
struct client_connection {
  client_connection(tcp::socket s, const parser_limits& limits)
      : transport(std::move(s)), in(limits.max_header_bytes + 2 * read_chunk), parser(limits) {}

  std::variant<tcp::socket, net::tls::stream> transport;
  core::byte_buffer in;
  response_parser parser;
  std::string head_out;  // the request head being sent: its storage kept for the next one
  tcp::endpoint peer;
  steady::time_point idle_since;

  tcp::socket& socket() {
    if (auto* s = std::get_if<net::tls::stream>(&transport)) return s->next_layer();
    return std::get<tcp::socket>(transport);
  }
  bool secure() const { return std::holds_alternative<net::tls::stream>(transport); }

  // Not coroutines: each returns the transport's own awaitable.
  asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (auto* s = std::get_if<net::tls::stream>(&transport))
      return s->async_read_some(b, use_nothrow);
    return std::get<tcp::socket>(transport).async_read_some(b, use_nothrow);
  }
  template <class Buffers>
  asio::awaitable<std::tuple<std::error_code, std::size_t>> write(const Buffers& b) {
    if (auto* s = std::get_if<net::tls::stream>(&transport)) return asio::async_write(*s, b, use_nothrow);
    return asio::async_write(std::get<tcp::socket>(transport), b, use_nothrow);
  }

  // Whether an idle connection can carry another request: the server has
  // neither closed it nor sent anything unasked (a 408, a TLS close_notify).
  // One non-blocking peek, as curl checks a connection before reuse.
  bool alive() {
    if (!in.empty()) return false;
    char byte;
    const ssize_t n = ::recv(socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void close() {
    std::error_code ignored;
    socket().close(ignored);
  }
};

namespace {

// A request waiting for a connection to its origin: release() hands it a
// connection (conn) or the right to open one (slot), then wakes it.
struct pool_waiter {
  asio::steady_timer* timer = nullptr;
  std::unique_ptr<client_connection> conn;
  bool slot = false;
};

struct origin_pool {
  std::vector<std::unique_ptr<client_connection>> idle;  // the most recently used last
  std::size_t open = 0;                                  // busy + idle + being opened
  std::deque<pool_waiter*> waiters;                      // first come, first served
};

}  // namespace

struct client_state : std::enable_shared_from_this<client_state> {
  client_state(asio::any_io_executor e, dns::resolver& r, client_options o)
      : ex(std::move(e)),
        resolver(&r),
        opt(std::move(o)),
        sweep_timer(ex) {
    // Files named in the options are read now, so a bad path fails at
    // start-up with the field's name. The system CA store alone (tens of
    // milliseconds to load) waits for the first https origin.
    if (!opt.tls.ca_file.empty() || !opt.tls.cert_file.empty() || !opt.tls.key_file.empty())
      tls_ctx.emplace(net::tls::make_client_context(opt.tls));
  }

  asio::ssl::context& tls_context() {
    if (!tls_ctx) tls_ctx.emplace(net::tls::make_client_context(opt.tls));
    return *tls_ctx;
  }

  asio::any_io_executor ex;
  dns::resolver* resolver;
  client_options opt;
  std::optional<asio::ssl::context> tls_ctx;
  std::unordered_map<std::string, origin_pool> pools;
  client_stats counters;
  asio::steady_timer sweep_timer;
  bool sweeping = false;
  bool closed = false;

  // Gives back a connection (or just its slot, when conn is null or not
  // reusable): to the first waiter if any, else to the idle list or away.
  void release(const std::string& key, std::unique_ptr<client_connection> conn, bool reusable) {
    auto it = pools.find(key);
    if (it == pools.end()) return;  // the client was closed meanwhile
    origin_pool& p = it->second;
    if (closed) reusable = false;
    if (reusable && conn) {
      conn->idle_since = steady::now();
      if (!p.waiters.empty()) {
        pool_waiter* w = p.waiters.front();
        p.waiters.pop_front();
        w->conn = std::move(conn);
        w->timer->cancel();
        return;
      }
      p.idle.push_back(std::move(conn));
      start_sweeping();
      return;
    }
    if (conn) conn->close();
    conn.reset();
    if (!p.waiters.empty()) {  // the slot passes to the next in line
      pool_waiter* w = p.waiters.front();
      p.waiters.pop_front();
      w->slot = true;
      w->timer->cancel();
      return;
    }
    if (--p.open == 0) pools.erase(it);
  }

  // Idle connections older than idle_timeout are closed by one timer per
  // client, running only while some connection is idle.
  void start_sweeping() {
    if (sweeping || closed) return;
    sweeping = true;
    asio::co_spawn(ex, sweep(shared_from_this()), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        core::log::error("http client idle sweep failed", {{"error", x.what()}});
      }
    });
  }

  static asio::awaitable<void> sweep(std::shared_ptr<client_state> self) {
    while (!self->closed) {
      steady::time_point oldest = steady::time_point::max();
      for (auto& [key, p] : self->pools)
        for (auto& c : p.idle) oldest = std::min(oldest, c->idle_since);
      if (oldest == steady::time_point::max()) break;
      self->sweep_timer.expires_at(oldest + self->opt.idle_timeout);
      co_await self->sweep_timer.async_wait(use_nothrow);
      if (self->closed) break;
      self->close_idle(steady::now() - self->opt.idle_timeout);
    }
    self->sweeping = false;
  }

  // Closes idle connections that went idle at or before `cutoff`.
  // Closes the idle connections to `key`: after one of them turned out to
  // be closed by the server, the others, opened to the same server, most
  // likely are too (it restarted, or died), so a retry opens a new one.
  void drop_idle(const std::string& key) {
    auto it = pools.find(key);
    if (it == pools.end()) return;
    origin_pool& p = it->second;
    for (auto& c : p.idle) c->close();
    p.open -= p.idle.size();
    p.idle.clear();
  }

  void close_idle(steady::time_point cutoff) {
    for (auto it = pools.begin(); it != pools.end();) {
      origin_pool& p = it->second;
      const auto keep = std::stable_partition(p.idle.begin(), p.idle.end(),
                                              [&](const auto& c) { return c->idle_since > cutoff; });
      const auto closing = static_cast<std::size_t>(p.idle.end() - keep);
      for (auto c = keep; c != p.idle.end(); ++c) (*c)->close();
      p.idle.erase(keep, p.idle.end());
      p.open -= closing;
      if (p.open == 0 && p.waiters.empty())
        it = pools.erase(it);
      else
        ++it;
    }
  }
};

namespace {

// A connection slot held by one call: a pooled connection (reused), or the
// right to open one (conn null until open() fills it). Whatever happens to
// the call, the destructor gives the slot back, closing the connection
// unless give_back() said it may be reused.
class lease {
 public:
  lease(std::shared_ptr<client_state> st, std::string key) : st_(std::move(st)), key_(std::move(key)) {}
  lease(lease&& o) noexcept = default;
  lease& operator=(lease&&) = delete;
  ~lease() {
    if (st_) st_->release(key_, std::move(conn), false);
  }
  void give_back(bool reusable) {
    st_->release(key_, std::move(conn), reusable);
    st_.reset();
  }

  std::unique_ptr<client_connection> conn;
  bool reused = false;

 private:
  std::shared_ptr<client_state> st_;
  std::string key_;
};

// One hop of a call: what goes on the wire.
struct hop {
  std::string method;
  url target;
  fields headers;
  bool has_body = false;
  // Sent as is instead of the URL's path and query (client_request::target);
  // empty on a redirect.
  std::string request_target;
};

// Where the connection for a target comes from.
struct route {
  const url* proxy = nullptr;              // the forward proxy, if any
  bool tunnel = false;                     // https through the proxy: CONNECT first
  std::optional<std::string> proxy_auth;   // Proxy-Authorization, from the proxy URL
  std::string key;                         // the pool key
};

result<route> route_for(const client_options& opt, const url& target) {
  route r;
  r.proxy = proxy_for(opt.proxy, target);
  if (!r.proxy) {
    r.key = target.origin();
    return r;
  }
  auto auth = proxy_authorization(*r.proxy);
  if (!auth) return unexpected(auth.error());
  r.proxy_auth = std::move(*auth);
  r.tunnel = target.scheme == "https";
  // A tunnel leads to one origin; a plain proxy connection carries
  // requests for any http origin.
  r.key = r.tunnel ? "connect " + r.proxy->origin() + " " + target.origin()
                   : "proxy " + r.proxy->origin();
  return r;
}

// The deadline of the phase running now, and the error it means.
struct phase_clock {
  steady::time_point total_end;
  client_error current = client_error::request_timeout;

  // Arms `dl` for a phase of at most `d` that fails with `e`; the total
  // deadline wins when it comes first.
  void arm(net::deadline& dl, std::chrono::milliseconds d, client_error e) {
    auto end = steady::now() + d;
    current = e;
    if (end >= total_end) {
      end = total_end;
      current = client_error::request_timeout;
    }
    dl.expires_at(end);
  }
  steady::time_point end_of(std::chrono::milliseconds d, client_error e, client_error& which) const {
    const auto end = steady::now() + d;
    which = end >= total_end ? client_error::request_timeout : e;
    return std::min(end, total_end);
  }
};

}  // namespace

// Everything one call needs, kept on the call's frame.
struct call_context {
  call_context(std::shared_ptr<client_state> s, call_options& o, const client_request& r)
      : st(std::move(s)), opts(o), req(r), started(steady::now()) {
    clock.total_end = started + st->opt.request_timeout;
  }

  std::shared_ptr<client_state> st;
  call_options& opts;
  const client_request& req;
  phase_clock clock;
  client_timing timing;
  steady::time_point started;

  client_observer* observer() const { return opts.observer; }

  // --- acquiring a connection --------------------------------------------------

  // The usual case without a coroutine frame: an idle connection to reuse.
  // Empty when acquire() must run (no idle connection, or the one found
  // has to be checked or replaced).
  std::optional<lease> take_idle(const std::string& key) {
    client_state& s = *st;
    auto it = s.pools.find(key);
    if (it == s.pools.end() || it->second.idle.empty()) return std::nullopt;
    client_connection& c = *it->second.idle.back();
    const auto idle = steady::now() - c.idle_since;
    if (idle >= s.opt.check_idle_after || idle >= s.opt.idle_timeout) return std::nullopt;
    std::optional<lease> l;
    l.emplace(st, key);
    l->conn = std::move(it->second.idle.back());
    it->second.idle.pop_back();
    l->reused = true;
    return l;
  }

  asio::awaitable<result<lease>> acquire(const std::string& key) {
    client_state& s = *st;
    origin_pool& p = s.pools[key];
    while (!p.idle.empty()) {
      auto c = std::move(p.idle.back());
      p.idle.pop_back();
      lease l(st, key);
      const auto idle = steady::now() - c->idle_since;
      const bool fresh = idle < s.opt.idle_timeout;
      // The liveness check costs a system call; a connection idle for less
      // than check_idle_after is trusted without it.
      if (fresh && (idle < s.opt.check_idle_after || c->alive())) {
        l.conn = std::move(c);
        l.reused = true;
        co_return std::move(l);
      }
      // Closed by the server (or too old): its slot is ours to reopen.
      if (fresh) ++s.counters.stale_closed;
      c->close();
      co_return std::move(l);
    }
    if (p.open < s.opt.max_connections_per_origin) {
      ++p.open;
      co_return lease(st, key);
    }
    asio::steady_timer timer(s.ex);
    pool_waiter w;
    w.timer = &timer;
    client_error which{};
    timer.expires_at(clock.end_of(s.opt.pool_wait_timeout, client_error::pool_wait_timeout, which));
    p.waiters.push_back(&w);
    co_await timer.async_wait(use_nothrow);
    if (w.conn || w.slot) {
      lease l(st, key);
      l.reused = static_cast<bool>(w.conn);
      l.conn = std::move(w.conn);
      co_return std::move(l);
    }
    // Timed out (or the client closed): leave the line.
    auto it = s.pools.find(key);
    if (it != s.pools.end()) std::erase(it->second.waiters, &w);
    co_return unexpected(make_error_code(s.closed ? client_error::connection_closed : which));
  }

  // --- opening a connection ----------------------------------------------------

  asio::awaitable<result<std::vector<tcp::endpoint>>> resolve(const url& dial) {
    const auto t0 = steady::now();
    std::vector<tcp::endpoint> endpoints;
    const std::uint16_t port = dial.effective_port();
    if (dial.host_kind != host_type::name) {
      std::error_code ec;
      const auto a = asio::ip::make_address(dial.host, ec);
      if (ec) co_return unexpected(make_error_code(client_error::bad_url));
      endpoints.emplace_back(a, port);
    } else {
      using namespace asio::experimental::awaitable_operators;
      client_error which{};
      asio::steady_timer timer(st->ex);
      timer.expires_at(clock.end_of(st->opt.resolve_timeout, client_error::resolve_timeout, which));
      auto lookup = st->resolver->resolve(dial.host);
      auto raced = co_await (std::move(lookup) || timer.async_wait(use_nothrow));
      if (raced.index() == 1) co_return unexpected(make_error_code(which));
      auto& addresses = std::get<0>(raced);
      if (!addresses) co_return unexpected(addresses.error());
      if (addresses->empty()) co_return unexpected(make_error_code(client_error::resolve_failed));
      timing.dns = since(t0);
      for (const auto& a : *addresses) endpoints.emplace_back(a, port);
      if (observer()) {
        // The TTL, for people watching: the answer is cached by now, so
        // asking for the records costs no query.
        const auto type = addresses->front().is_v4() ? dns::rtype::a : dns::rtype::aaaa;
        auto records = co_await st->resolver->lookup(dial.host, type);
        observer()->on_resolved(dial.host, *addresses, records ? records->ttl : 0);
      }
    }
    co_return endpoints;
  }

  // Resolves, connects, tunnels through the proxy and handshakes TLS, each
  // within its deadline. Fills l.conn.
  asio::awaitable<std::error_code> open(lease& l, const url& target, const route& r) {
    client_state& s = *st;
    const url& dial = r.proxy ? *r.proxy : target;
    auto endpoints = co_await resolve(dial);
    if (!endpoints) co_return endpoints.error();

    const auto t_connect = steady::now();
    client_error which{};
    const auto connect_end = clock.end_of(s.opt.connect_timeout, client_error::connect_timeout, which);
    net::connect_options co;
    co.timeout = std::max(std::chrono::milliseconds(1),
                          duration_cast<std::chrono::milliseconds>(connect_end - steady::now()));
    auto sock = co_await net::connect(*endpoints, co);
    if (!sock) {
      if (sock.error() == net::error::timed_out) co_return make_error_code(which);
      co_return sock.error();
    }
    timing.connect = since(t_connect);
    ++s.counters.connections_opened;
    std::error_code ignored;
    const auto peer = sock->remote_endpoint(ignored);
    if (observer()) observer()->on_connected(peer);
    auto conn = std::make_unique<client_connection>(std::move(*sock), s.opt.limits);
    conn->peer = peer;

    tcp::socket* watched = &conn->socket();
    net::deadline dl(s.ex, [&watched] {
      std::error_code e;
      watched->close(e);
    });

    if (r.tunnel) {
      if (auto ec = co_await tunnel(*conn, target, r, dl)) co_return ec;
    }
    if (target.scheme == "https") {
      const auto t_tls = steady::now();
      auto plain = std::move(std::get<tcp::socket>(conn->transport));
      conn->transport.emplace<net::tls::stream>(std::move(plain), s.tls_context());
      auto& stream = std::get<net::tls::stream>(conn->transport);
      watched = &stream.next_layer();
      clock.arm(dl, s.opt.tls_timeout, client_error::tls_timeout);
      auto ec = co_await net::tls::client_handshake(stream, target.host);
      if (dl.expired()) co_return make_error_code(clock.current);
      if (ec) {
        if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
          co_return make_error_code(client_error::tls_handshake_failed);
        co_return ec;
      }
      timing.tls = since(t_tls);
      if (observer()) observer()->on_tls(net::tls::describe(stream));
    }
    dl.expires_never();
    l.conn = std::move(conn);
    co_return std::error_code{};
  }

  // CONNECT target through the proxy (RFC 9110 §9.3.6): a 2xx answer turns
  // the connection into a tunnel to the target.
  asio::awaitable<std::error_code> tunnel(client_connection& c, const url& target, const route& r,
                                          net::deadline& dl) {
    std::string authority = target.host_kind == host_type::ipv6 ? "[" + target.host + "]" : target.host;
    authority += ":" + std::to_string(target.effective_port());
    std::string out;
    write_request_line(out, "CONNECT", authority);
    write_field(out, "Host", authority);
    if (r.proxy_auth) write_field(out, "Proxy-Authorization", *r.proxy_auth);
    write_end_of_head(out);
    first_byte_from = steady::now();
    clock.arm(dl, st->opt.first_byte_timeout, client_error::first_byte_timeout);
    if (observer()) observer()->on_request_head(out);
    auto [wec, wn] = co_await c.write(asio::buffer(out));
    if (dl.expired()) co_return make_error_code(clock.current);
    if (wec) co_return make_error_code(client_error::connection_closed);
    c.parser.reset();
    c.parser.expect(method::connect);
    bool any = false;
    if (auto ec = co_await read_head(c, dl, any)) co_return ec;
    const auto& head = c.parser.head();
    if (observer()) observer()->on_response_head(c.in.view().substr(0, c.parser.head_size()));
    if (head.status < 200 || head.status > 299) co_return make_error_code(client_error::proxy_refused);
    c.in.consume(c.parser.head_size());
    // The proxy must not speak after its 2xx: the next bytes are the
    // target's (RFC 9110 §9.3.6).
    if (!c.in.empty()) co_return make_error_code(client_error::proxy_refused);
    co_return std::error_code{};
  }

  // --- one exchange --------------------------------------------------------------

  // Reads until the parser has a complete head. `any` becomes true at the
  // first byte received.
  asio::awaitable<std::error_code> read_head(client_connection& c, net::deadline& dl, bool& any) {
    for (;;) {
      const auto st_head = c.parser.parse_head(c.in.view());
      if (st_head == parse_status::done) co_return std::error_code{};
      if (st_head == parse_status::error) co_return map_parse_error(c.parser.error());
      auto space = c.in.prepare(read_chunk);
      if (!space) co_return make_error_code(client_error::response_too_large);
      auto [ec, n] = co_await c.read_some(asio::buffer(space->data(), space->size()));
      if (dl.expired()) co_return make_error_code(clock.current);
      if (n > 0 && !any) {
        any = true;
        timing.first_byte = since(first_byte_from);
      }
      c.in.commit(n);
      if (ec) {
        if (n > 0) continue;
        if (c.in.empty() || ec == asio::error::eof || ec == net::error::tls_truncated ||
            ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset)
          co_return make_error_code(client_error::connection_closed);
        co_return ec;
      }
    }
  }

  steady::time_point first_byte_from;
  std::string origin_form_scratch;  // the URL's path and query, for build_head

  // Builds the request head for `h` on route `r` into `out`.
  void build_head(std::string& out, const hop& h, const route& r, bool chunked,
                  std::uint64_t length) {
    out.clear();
    const std::string_view path =
        h.request_target.empty() ? std::string_view(origin_form_scratch = h.target.origin_form())
                                 : std::string_view(h.request_target);
    if (r.proxy && !r.tunnel) {
      // Absolute form to a proxy (RFC 9112 §3.2.2); never the userinfo or
      // the fragment.
      std::string absolute = h.target.scheme + "://" + h.target.authority();
      absolute += path;
      write_request_line(out, h.method, absolute);
    } else {
      write_request_line(out, h.method, path);
    }
    // A Host of the caller's replaces the URL's authority (a proxy passing
    // on its client's Host, as curl -H 'Host: ...').
    const auto host = h.headers.get("Host");
    write_field(out, "Host", host ? *host : std::string_view(h.target.authority()));
    for (const auto& f : h.headers)
      if (!client_owned(f.name)) write_field(out, f.name, f.value);
    if (!st->opt.user_agent.empty() && !h.headers.contains("User-Agent"))
      write_field(out, "User-Agent", st->opt.user_agent);
    if (st->opt.decode_content && !h.headers.contains("Accept-Encoding"))
      write_field(out, "Accept-Encoding", accept_encoding_value);
    if (r.proxy_auth && !r.tunnel && !h.headers.contains("Proxy-Authorization"))
      write_field(out, "Proxy-Authorization", *r.proxy_auth);
    if (chunked)
      write_field(out, "Transfer-Encoding", "chunked");
    else if (h.has_body || length > 0 || h.method == "POST" || h.method == "PUT" ||
             h.method == "PATCH")
      write_content_length(out, length);
    write_end_of_head(out);
  }

  // --- the exchange in progress ---------------------------------------------------
  //
  // An exchange is split in two so that open() can hand the body to its
  // caller: exchange_head() sends the request and reads the response head,
  // then next_piece() hands out the body piece by piece. The connection
  // stays leased in `current` meanwhile; finish_hop() gives it back.

  // Closes the watched socket when the phase deadline passes: the pending
  // read or write then fails and the phase reports clock.current.
  tcp::socket* exchange_socket = nullptr;
  std::optional<net::deadline> exchange_deadline;
  std::optional<lease> current;  // declared after the deadline: destroyed before it

  // Reading the body of the current response.
  std::optional<content_decoder> decoder;
  std::string decoded;       // one decoded piece
  std::size_t pending = 0;   // bytes of conn->in the last piece points into
  framing body_framing = framing::none;
  bool keep_alive = false;
  bool request_close = false;  // the request said "Connection: close"
  bool passing = false;        // a redirect about to be followed: body dropped
  bool following = false;      // send() follows redirects (open() does not)

  net::deadline& deadline() {
    if (!exchange_deadline) {
      exchange_deadline.emplace(st->ex, [this] {
        if (exchange_socket == nullptr) return;
        std::error_code e;
        exchange_socket->close(e);
      });
    }
    return *exchange_deadline;
  }

  // Sends the request on `c` and reads the response head; the body is
  // read with next_piece(). `any` says whether a byte of the response
  // arrived (a failure before one may be retried).
  // The head goes into `res` (the caller's, so that it is not carried in
  // this frame and again in the frames above it).
  asio::awaitable<std::error_code> exchange_head(client_connection& c, const hop& h, const route& r,
                                                 bool& any, client_response& res) {
    client_state& s = *st;
    exchange_socket = &c.socket();
    net::deadline& dl = deadline();

    // The body: buffered, or streamed from the caller.
    const bool streamed = h.has_body && static_cast<bool>(req.body_source);
    const std::string_view body = h.has_body && !streamed ? std::string_view(req.body) : "";
    std::optional<std::uint64_t> declared;
    if (streamed) {
      if (auto cl = h.headers.get("Content-Length")) {
        std::uint64_t v = 0;
        const auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
        if (cl->empty() || cl->size() > 18 || !std::all_of(cl->begin(), cl->end(), digit))
          co_return make_error_code(std::errc::invalid_argument);
        for (char ch : *cl) v = v * 10 + static_cast<std::uint64_t>(ch - '0');
        declared = v;
      }
    }
    const bool chunked = streamed && !declared;
    build_head(c.head_out, h, r, chunked, streamed ? declared.value_or(0) : body.size());
    if (observer()) observer()->on_request_head(c.head_out);

    // Sending is bounded by the total deadline only (a large upload may
    // take long); the first-byte deadline starts once the request is out.
    clock.arm(dl, s.opt.request_timeout, client_error::request_timeout);
    const std::array<asio::const_buffer, 2> first = {asio::buffer(c.head_out), asio::buffer(body)};
    auto [wec, wn] = co_await c.write(first);
    if (dl.expired()) co_return make_error_code(clock.current);
    if (wec) co_return make_error_code(client_error::connection_closed);
    if (streamed) {
      if (auto ec = co_await send_stream(c, dl, chunked, declared)) co_return ec;
    }
    first_byte_from = steady::now();
    clock.arm(dl, s.opt.first_byte_timeout, client_error::first_byte_timeout);

    // The response: interim 1xx heads are skipped (RFC 9110 §15.2).
    c.parser.reset();
    const method m = parse_method(h.method);
    c.parser.expect(m);
    for (;;) {
      if (auto ec = co_await read_head(c, dl, any)) co_return ec;
      if (!c.parser.head().interim()) break;
      c.in.consume(c.parser.head_size());
      c.parser.reset();
    }
    const response_head& head = c.parser.head();
    res.status = head.status;
    res.reason = std::string(head.reason);
    res.version_minor = head.version_minor;
    res.remote = c.peer;
    res.headers.clear();  // a retried exchange fills the same response again
    res.headers.reserve(head.headers.size(), c.parser.head_size());
    for (const auto& f : head.headers)
      if (auto added = res.headers.add(f.name, f.value); !added) co_return added.error();
    if (observer()) observer()->on_response_head(c.in.view().substr(0, c.parser.head_size()));
    c.in.consume(c.parser.head_size());
    body_framing = head.framing;
    keep_alive = head.keep_alive;
    request_close = h.headers.has_token("Connection", "close");
    pending = 0;
    decoder.reset();

    // The body is read within the total deadline. A redirect about to be
    // followed has its body read (to keep the connection) and dropped.
    clock.arm(dl, s.opt.request_timeout, client_error::request_timeout);
    passing = following && is_followed_redirect(res.status);
    if (body_framing == framing::tunnel) co_return std::error_code{};  // 101: not ours to speak
    if (!passing && opts.on_head) opts.on_head(res);
    if (s.opt.decode_content && !passing && res.status != 204 && res.status != 304 &&
        m != method::head) {
      if (auto ce = res.headers.get("Content-Encoding")) {
        auto coding = parse_content_encoding(*ce);
        if (!coding) co_return coding.error();
        if (*coding != content_coding::identity) {
          decoder.emplace(*coding, decoder_options{.max_output = s.opt.limits.max_body});
          res.headers.erase("Content-Encoding");
          res.headers.erase("Content-Length");
        }
      }
    }
    co_return std::error_code{};
  }

  // The next piece of the current response's body (decoded if a decoder
  // is set), or an empty view at its end. The view is valid until the
  // next call.
  asio::awaitable<result<std::string_view>> next_piece(client_connection& c) {
    net::deadline& dl = deadline();
    c.in.consume(pending);
    pending = 0;
    if (body_framing == framing::tunnel) co_return std::string_view{};
    while (!c.parser.body_done()) {
      if (!c.in.empty()) {
        std::string_view data;
        auto used = c.parser.parse_body(c.in.view(), data);
        if (!used) co_return unexpected(map_parse_error(used.error()));
        if (!data.empty()) {
          if (!decoder) {
            pending = *used;  // consumed on the next call, once the caller is done
            co_return data;
          }
          decoded.clear();
          auto n = decoder->decode(data, decoded);
          c.in.consume(*used);
          if (!n) {
            if (n.error() == content_coding_error::too_large)
              co_return unexpected(make_error_code(client_error::response_too_large));
            co_return unexpected(n.error());
          }
          if (!decoded.empty()) co_return std::string_view(decoded);
          continue;
        }
        c.in.consume(*used);
        if (*used > 0) continue;
      }
      if (c.parser.body_done()) break;
      // Everything buffered is consumed (or a partial chunk line waits for
      // more): read on. The buffer is empty between chunks, so compaction
      // keeps it small.
      auto space = c.in.prepare(read_chunk);
      if (!space) co_return unexpected(make_error_code(client_error::response_too_large));
      if (st->opt.read_timeout.count() > 0)
        clock.arm(dl, st->opt.read_timeout, client_error::read_timeout);
      auto [ec, n] = co_await c.read_some(asio::buffer(space->data(), space->size()));
      if (dl.expired()) co_return unexpected(make_error_code(clock.current));
      c.in.commit(n);
      if (ec && n == 0) {
        if (ec == asio::error::eof || ec == net::error::tls_truncated ||
            ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset) {
          // The end of the stream: completes an until-close body, or
          // proves a framed one short.
          if (auto fin = c.parser.finish(); !fin) co_return unexpected(map_parse_error(fin.error()));
          break;
        }
        co_return unexpected(ec);
      }
    }
    if (decoder) {
      auto fin = decoder->finish();
      decoder.reset();
      if (!fin) co_return unexpected(fin.error());
    }
    co_return std::string_view{};
  }

  // Whether the connection may carry another request once the body was
  // read to its end.
  bool reusable(const client_connection& c) const {
    return keep_alive && body_framing != framing::until_close &&
           body_framing != framing::tunnel && c.parser.body_done() && c.in.empty() && pending == 0 &&
           !request_close;
  }

  // Gives the current connection back to the pool (or closes it).
  void finish_hop(bool reuse) {
    if (exchange_deadline) exchange_deadline->expires_never();
    exchange_socket = nullptr;
    if (current) {
      current->give_back(reuse);
      current.reset();
    }
  }

  // Sends a streamed body: chunked, or raw against a declared length.
  asio::awaitable<std::error_code> send_stream(client_connection& c, net::deadline& dl,
                                               bool chunked, std::optional<std::uint64_t> declared) {
    std::uint64_t sent = 0;
    std::string frame;
    for (;;) {
      auto piece = co_await req.body_source();
      if (!piece) co_return piece.error();
      if (dl.expired()) co_return make_error_code(clock.current);
      const std::string_view data = *piece;
      if (data.empty()) break;
      sent += data.size();
      if (declared && sent > *declared) co_return make_error_code(std::errc::invalid_argument);
      frame.clear();
      if (chunked) write_chunk_header(frame, data.size());
      const std::array<asio::const_buffer, 3> bufs = {
          asio::buffer(frame), asio::buffer(data),
          asio::buffer(chunked ? std::string_view("\r\n") : std::string_view())};
      auto [ec, n] = co_await c.write(bufs);
      if (dl.expired()) co_return make_error_code(clock.current);
      if (ec) co_return make_error_code(client_error::connection_closed);
    }
    if (declared && sent != *declared) co_return make_error_code(std::errc::invalid_argument);
    if (chunked) {
      static constexpr std::string_view last = "0\r\n\r\n";
      auto [ec, n] = co_await c.write(asio::buffer(last));
      if (dl.expired()) co_return make_error_code(clock.current);
      if (ec) co_return make_error_code(client_error::connection_closed);
    }
    co_return std::error_code{};
  }

  // Starts one hop: a connection from the pool (or a new one), the request
  // and the response head, with the stale-connection retry. On success the
  // connection stays in `current` for the body.
  asio::awaitable<std::error_code> start_hop(const hop& h, client_response& res) {
    auto routed = route_for(st->opt, h.target);
    if (!routed) co_return routed.error();
    const route& r = *routed;
    const bool replayable = !(h.has_body && req.body_source);
    for (unsigned attempt = 0;; ++attempt) {
      if (auto idle = take_idle(r.key)) {
        current.emplace(std::move(*idle));
      } else {
        auto got = co_await acquire(r.key);
        if (!got) co_return got.error();
        current.emplace(std::move(*got));
      }
      lease& l = *current;
      timing.dns = timing.connect = timing.tls = microseconds{0};
      timing.reused = l.reused;
      if (!l.conn) {
        if (auto ec = co_await open(l, h.target, r)) {
          current.reset();
          co_return ec;
        }
      } else {
        ++st->counters.connections_reused;
        if (observer()) observer()->on_reused(l.conn->peer);
      }
      const bool reused = l.reused;
      bool any = false;
      const std::error_code ec = co_await exchange_head(*l.conn, h, r, any, res);
      if (!ec) co_return ec;
      finish_hop(false);  // closes the connection
      const bool timed_out = ec == std::errc::timed_out;
      if (reused && !any && !timed_out && attempt == 0 && replayable && is_idempotent(h.method)) {
        ++st->counters.retries;
        ++timing.retries;
        if (observer()) observer()->on_retry(ec);
        st->drop_idle(r.key);
        continue;
      }
      co_return ec;
    }
  }

  // One whole hop for send(): the head, then the body into the response
  // (or the sink); a followed redirect's body is dropped.
  asio::awaitable<result<client_response>> run_hop(const hop& h) {
    client_response res;
    if (auto ec = co_await start_hop(h, res)) co_return unexpected(ec);
    client_connection& c = *current->conn;
    // A body of known length read into memory gets its whole size at once:
    // one allocation, no copy on growth.
    if (!decoder && !opts.sink && !passing && body_framing == framing::content_length)
      res.body.reserve(c.parser.head().content_length);
    for (;;) {
      auto piece = co_await next_piece(c);
      if (!piece) co_return unexpected(piece.error());
      if (piece->empty()) break;
      if (passing) continue;
      if (!opts.sink) {
        res.body.append(*piece);
        continue;
      }
      if (auto ec = co_await opts.sink(*piece)) co_return unexpected(ec);
      if (exchange_deadline->expired()) co_return unexpected(make_error_code(clock.current));
    }
    finish_hop(reusable(c));
    co_return std::move(res);
  }
};

}  // namespace detail

client::client(asio::any_io_executor ex, dns::resolver& resolver, client_options options)
    : state_(std::make_shared<detail::client_state>(std::move(ex), resolver, std::move(options))) {}

client::~client() {
  state_->closed = true;
  state_->sweep_timer.cancel();
  for (auto& [key, p] : state_->pools) {
    for (auto& c : p.idle) c->close();
    for (auto* w : p.waiters) w->timer->cancel();
  }
  state_->pools.clear();
}

void client::close_idle() {
  state_->close_idle(std::chrono::steady_clock::time_point::max());
  state_->sweep_timer.cancel();  // the sweep finds nothing idle and ends
}

client_stats client::stats() const {
  client_stats s = state_->counters;
  s.idle = s.open = 0;
  for (const auto& [key, p] : state_->pools) {
    s.idle += p.idle.size();
    s.open += p.open;
  }
  return s;
}

const client_options& client::options() const noexcept {
  return state_->opt;
}

asio::awaitable<result<client_response>> client::get(std::string url, call_options opts) {
  client_request req;
  req.url = std::move(url);
  co_return co_await send(std::move(req), std::move(opts));
}

namespace detail {
namespace {

// Checks a request and makes its first hop, taking over its fields (the
// call reads them from the hop only).
result<hop> first_hop(client_request& req) {
  if (!is_token(req.method)) return unexpected(make_error_code(client_error::bad_url));
  if (!req.target.empty() && req.target.front() != '/' && req.target != "*")
    return unexpected(make_error_code(client_error::bad_url));
  auto target = parse_url(req.url);
  if (!target) return unexpected(target.error());
  if (target->scheme != "http" && target->scheme != "https")
    return unexpected(make_error_code(client_error::unsupported_scheme));
  hop h;
  h.method = req.method;
  h.target = std::move(*target);
  h.headers = std::move(req.headers);
  h.has_body = !req.body.empty() || static_cast<bool>(req.body_source);
  h.request_target = req.target;
  return h;
}

}  // namespace

// The connection of a response that switched protocols, as a tunnel.
class client_tunnel final : public tunnel {
 public:
  client_tunnel(call_context& call, client_connection& c) : call_(call), c_(c) {}

  asio::awaitable<result<std::size_t>> read_some(std::span<char> into) override {
    if (!c_.in.empty()) {
      const std::size_t n = std::min(c_.in.size(), into.size());
      std::memcpy(into.data(), c_.in.view().data(), n);
      c_.in.consume(n);
      co_return n;
    }
    net::deadline& dl = call_.deadline();
    const auto limit = call_.st->opt.read_timeout;
    if (limit.count() > 0) dl.expires_after(limit);
    auto [ec, n] = co_await c_.read_some(asio::buffer(into.data(), into.size()));
    if (dl.expired()) co_return unexpected(make_error_code(client_error::read_timeout));
    if (n > 0) co_return n;
    if (ec == asio::error::eof || ec == net::error::tls_truncated ||
        ec == asio::ssl::error::stream_truncated)
      co_return std::size_t{0};
    if (ec) co_return unexpected(ec);
    co_return std::size_t{0};
  }

  asio::awaitable<std::error_code> write(std::string_view data) override {
    auto [ec, n] = co_await c_.write(asio::buffer(data));
    co_return ec;
  }

  void shutdown_send() override {
    if (c_.secure()) return;
    std::error_code ignored;
    c_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }

 private:
  call_context& call_;
  client_connection& c_;
};

// What an open() call keeps alive while its caller reads the body.
struct stream_state {
  stream_state(std::shared_ptr<client_state> s, client_request r, call_options o)
      : req(std::move(r)), opts(std::move(o)), call(std::move(s), opts, req) {}

  client_request req;
  call_options opts;
  call_context call;  // refers to req and opts
  client_response res;
  bool done = false;
  std::optional<client_tunnel> tunnel;  // after a 101 or a 2xx to CONNECT
};

}  // namespace detail

client_stream::client_stream(std::unique_ptr<detail::stream_state> s) : state_(std::move(s)) {}
client_stream::client_stream(client_stream&&) noexcept = default;
client_stream& client_stream::operator=(client_stream&&) noexcept = default;
client_stream::~client_stream() = default;

const client_response& client_stream::response() const noexcept {
  return state_->res;
}

client_response& client_stream::response() noexcept {
  return state_->res;
}

bool client_stream::done() const noexcept {
  return state_->done;
}

tunnel* client_stream::upgraded() noexcept {
  return state_->tunnel ? &*state_->tunnel : nullptr;
}

asio::awaitable<result<std::string_view>> client_stream::read_some() {
  detail::stream_state& s = *state_;
  if (s.done) co_return std::string_view{};
  if (!s.call.current) co_return unexpected(make_error_code(client_error::connection_closed));
  detail::client_connection& c = *s.call.current->conn;
  auto piece = co_await s.call.next_piece(c);
  if (!piece) {
    s.call.finish_hop(false);
    co_return unexpected(piece.error());
  }
  if (piece->empty()) {
    s.done = true;
    s.call.finish_hop(s.call.reusable(c));
  }
  co_return *piece;
}

asio::awaitable<result<client_stream>> client::open(client_request req, call_options opts) {
  auto first = detail::first_hop(req);
  if (!first) co_return unexpected(first.error());
  auto state = std::make_unique<detail::stream_state>(state_, std::move(req), std::move(opts));
  state->call.opts.sink = nullptr;  // the caller reads the body itself
  if (auto ec = co_await state->call.start_hop(*first, state->res)) co_return unexpected(ec);
  state->res.url = first->target.to_string();
  if (state->call.body_framing == framing::tunnel) {
    // No body: the connection is the caller's now, past the total deadline
    // of the exchange; read_timeout (if set) bounds each read.
    state->done = true;
    state->call.deadline().expires_never();
    state->tunnel.emplace(state->call, *state->call.current->conn);
  }
  state->call.timing.total = detail::since(state->call.started);
  state->res.timing = state->call.timing;
  co_return client_stream(std::move(state));
}

asio::awaitable<result<client_response>> client::send(client_request req, call_options opts) {
  auto st = state_;
  detail::call_context call(st, opts, req);
  call.following = st->opt.redirects.follow;

  auto first = detail::first_hop(req);
  if (!first) co_return unexpected(first.error());
  detail::hop& h = *first;

  for (unsigned redirects = 0;; ++redirects) {
    auto res = co_await call.run_hop(h);
    if (!res) co_return unexpected(res.error());
    res->redirects = redirects;
    res->url = h.target.to_string();
    if (!is_followed_redirect(res->status) || !st->opt.redirects.follow) {
      call.timing.total = detail::since(call.started);
      res->timing = call.timing;
      co_return std::move(res);
    }
    redirect_request current;
    current.method = h.method;
    current.target = h.target;
    current.headers = h.headers;
    current.has_body = h.has_body;
    const auto locations = res->headers.count("Location");
    std::optional<std::string_view> location;
    if (locations == 1) location = res->headers.get("Location");
    auto decision = decide_redirect(current, res->status, location, redirects, st->opt.redirects);
    if (!decision) co_return unexpected(decision.error());
    // A streamed body cannot be sent again: a redirect that keeps the body
    // is the caller's to handle.
    if (decision->action == redirect_action::none ||
        (decision->next.has_body && static_cast<bool>(req.body_source))) {
      call.timing.total = detail::since(call.started);
      res->timing = call.timing;
      co_return std::move(res);
    }
    if (call.observer()) call.observer()->on_redirect(res->status, decision->next.target.to_string());
    h.method = std::move(decision->next.method);
    h.target = std::move(decision->next.target);
    h.headers = std::move(decision->next.headers);
    h.has_body = decision->next.has_body;
    h.request_target.clear();
  }
}

}  // namespace trellis::http
