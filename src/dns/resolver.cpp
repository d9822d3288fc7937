#include "trellis/dns/resolver.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <limits>
#include <optional>
#include <span>

#include "trellis/core/awaitable.hpp"
#include "trellis/core/log.hpp"
#include "trellis/dns/transport.hpp"
#include "udp_try.hpp"
#include "wire_compare.hpp"

namespace trellis::dns {
namespace detail {

using clock = std::chrono::steady_clock;

// What asking one question produced.
struct asked {
  message response;
  bool from_cache = false;
  bool stale = false;
};

struct flight;

// A lookup waiting for an identical question already in flight (single
// flight). Lives in its coroutine frame, linked into the flight's list.
struct follower {
  explicit follower(const asio::any_io_executor& ex) : done(ex, clock::time_point::max()) {}
  ~follower();
  follower(const follower&) = delete;
  follower& operator=(const follower&) = delete;
  asio::steady_timer done;  // cancelled when `outcome` is set
  std::optional<result<asked>> outcome;
  flight* leader = nullptr;
  follower* prev = nullptr;
  follower* next = nullptr;
};

class flight_table;

// One question on its way to the servers, in the frame of the lookup that
// asks it; identical questions wait on it as followers. Nothing is
// allocated for it.
struct flight {
  flight(flight_table& t, const question& question_asked, std::uint64_t h)
      : table(&t), q(&question_asked), hash(h) {}
  ~flight();
  flight(const flight&) = delete;
  flight& operator=(const flight&) = delete;
  // Hands the outcome (`ec`, else `a`) to every follower and leaves the table.
  void complete(std::error_code ec, const asked& a);

  flight_table* table;
  const question* q;
  std::uint64_t hash;
  bool registered = false;
  follower* head = nullptr;
};

// The flights by question: open addressing on the question's hash, at most
// half full, no tombstones. A question whose hash collides with another's
// in flight is simply not coalesced.
class flight_table {
 public:
  flight* find(std::uint64_t h, const question& q) const noexcept {
    if (slots_.empty()) return nullptr;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const flight* f = slots_[i];
      if (!f) return nullptr;
      if (f->hash == h) return *f->q == q ? slots_[i] : nullptr;
    }
  }
  // False when a flight with the same hash is there already.
  bool insert(flight* f) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = f->hash & mask;
    for (; slots_[i]; i = (i + 1) & mask)
      if (slots_[i]->hash == f->hash) return false;
    slots_[i] = f;
    ++size_;
    return true;
  }
  void erase(const flight* f) noexcept {
    if (slots_.empty()) return;
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = f->hash & mask;
    for (;; i = (i + 1) & mask) {
      if (!slots_[i]) return;
      if (slots_[i] == f) break;
    }
    for (std::size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
      if (!slots_[j]) break;
      const std::size_t home = slots_[j]->hash & mask;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i] = nullptr;
    --size_;
  }

 private:
  void grow() {
    std::vector<flight*> old(slots_.empty() ? 16 : slots_.size() * 2, nullptr);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (flight* f : old) {
      if (!f) continue;
      std::size_t i = f->hash & mask;
      while (slots_[i]) i = (i + 1) & mask;
      slots_[i] = f;
    }
  }
  std::vector<flight*> slots_;
  std::size_t size_ = 0;
};

follower::~follower() {
  if (!leader) return;
  (prev ? prev->next : leader->head) = next;
  if (next) next->prev = prev;
}

void flight::complete(std::error_code ec, const asked& a) {
  if (registered) table->erase(this);
  registered = false;
  while (follower* f = head) {
    head = f->next;
    if (head) head->prev = nullptr;
    f->leader = nullptr;
    f->prev = f->next = nullptr;
    if (ec)
      f->outcome.emplace(unexpected(ec));
    else
      f->outcome.emplace(a);
    f->done.cancel();
  }
}

flight::~flight() {
  // The leader's frame went without an answer (its context is being
  // destroyed): its followers are destroyed with the context too.
  if (registered) table->erase(this);
  for (follower* f = head; f; f = f->next) f->leader = nullptr;
}

struct server_health {
  asio::ip::udp::endpoint endpoint;
  unsigned failures = 0;
  clock::time_point retry_at{};
};

struct resolver_state {
  resolver_state(asio::any_io_executor e, resolver_options o)
      : ex(std::move(e)), options(std::move(o)), answers(options.cache_options) {
    for (const auto& ep : options.conf.nameservers) {
      servers.push_back({ep});
      channels.push_back(std::make_unique<udp_channel>(ex, ep, options.queries_per_socket));
    }
    options.conf.attempts = std::max(options.conf.attempts, 1u);
  }
  asio::any_io_executor ex;
  resolver_options options;
  dns::cache answers;
  std::vector<server_health> servers;
  std::vector<std::unique_ptr<udp_channel>> channels;  // one per server, same order
  std::size_t rotate_next = 0;
  // The flights live in the coroutines that lead them, so that they go
  // with them if their io_context is destroyed.
  flight_table flights;
  resolver_stats stats;
};

}  // namespace detail

namespace {

using detail::asked;
using detail::clock;
using detail::resolver_state;
using state_ptr = std::shared_ptr<resolver_state>;
using asio::ip::address;

bool is_negative(std::error_code ec) {
  return ec == error::nxdomain || ec == error::nodata;
}

std::error_code rcode_error(rcode rc) {
  switch (rc) {
    case rcode::nxdomain: return error::nxdomain;
    case rcode::refused: return error::refused;
    case rcode::notimp: return error::not_implemented;
    case rcode::formerr: return error::format_error;
    default: return error::servfail;
  }
}

// A transport failure as the resolver reports it: its own dns::error codes,
// everything else (a refused port, an unreachable network) as servfail.
std::error_code transport_error(std::error_code ec) {
  if (ec.category() == dns_category()) return ec;
  return error::servfail;
}

message from_hit(const question& q, const cache::hit& h) {
  message m;
  m.qr = true;
  m.rd = true;
  m.ra = true;
  m.rcode = h.rcode();
  m.questions.push_back(q);
  m.answers = h.answers();
  m.authorities = h.authorities();
  return m;
}

bool healthy(const detail::server_health& s, const resolver_options& o, clock::time_point now) {
  return s.failures < o.failure_threshold || now >= s.retry_at;
}

void server_failed(resolver_state& s, std::size_t i) {
  auto& h = s.servers[i];
  ++s.stats.server_failures;
  ++h.failures;
  if (h.failures >= s.options.failure_threshold) {
    const unsigned doublings = std::min(h.failures - s.options.failure_threshold, 16u);
    const auto penalty = std::min(s.options.penalty * (1u << doublings), s.options.max_penalty);
    h.retry_at = clock::now() + penalty;
  }
}

// Outside the coroutines: GCC 12 mishandles std::initializer_list
// temporaries (log fields) inside a coroutine body.
void log_failure(const asio::ip::udp::endpoint& server, std::error_code ec) {
  core::log::debug("dns: server failed",
                   {{"server", server.address().to_string()}, {"error", ec.message()}});
}

void log_prefetch_failure(std::error_code ec) {
  core::log::debug("dns: prefetch failed", {{"error", ec.message()}});
}

bool stale_eligible(std::error_code ec) {
  return ec == error::timed_out || ec == error::servfail || ec == error::refused ||
         ec == error::malformed;
}

asio::awaitable<std::error_code> ask(state_ptr s, const question& q, bool refresh,
                                     asked& out);

void start_prefetch(const state_ptr& s, const question& q) {
  if (s->flights.find(hash_question(q), q)) return;  // already being fetched
  ++s->stats.prefetches;
  asio::co_spawn(
      s->ex,
      [](state_ptr st, question qq) -> asio::awaitable<void> {
        asked a;
        const std::error_code ec = co_await ask(st, qq, true, a);
        if (ec) log_prefetch_failure(ec);
      }(s, q),
      [](std::exception_ptr e) {
        if (e) core::log::error("dns: prefetch ended with an exception");
      });
}

// The tries' order: servers in their penalty period last. `order` holds
// the first max_inline of them without allocating.
struct server_order_buf {
  static constexpr std::size_t max_inline = 8;
  std::array<std::size_t, max_inline> inline_{};
  std::vector<std::size_t> more;
  std::span<const std::size_t> order;
};

void order_servers(resolver_state& s, server_order_buf& out) {
  const std::size_t n = s.servers.size();
  std::span<std::size_t> order;
  if (n <= server_order_buf::max_inline) {
    order = {out.inline_.data(), n};
  } else {
    out.more.resize(n);
    order = out.more;
  }
  const std::size_t start = s.options.conf.rotate ? s.rotate_next++ % n : 0;
  for (std::size_t i = 0; i < n; ++i) order[i] = (start + i) % n;
  if (n > 1) {
    const auto now = clock::now();  // one server needs no clock
    std::stable_partition(order.begin(), order.end(),
                          [&](std::size_t i) { return healthy(s.servers[i], s.options, now); });
  }
  out.order = order;
}

// Waits for the outcome of the identical question `leader` asks (single
// flight). A coroutine of its own, so that the follower's timer and
// outcome stay out of ask()'s frame: every query pays for the size of
// that frame, and few of them follow another.
asio::awaitable<std::error_code> follow(const asio::any_io_executor& ex, detail::flight& leader,
                                        asked& out) {
  detail::follower me(ex);
  me.leader = &leader;
  me.next = leader.head;
  if (me.next) me.next->prev = &me;
  leader.head = &me;
  // The leader sets the outcome, then cancels the timer: one wake.
  while (!me.outcome) co_await me.done.async_wait(use_nothrow);
  if (!*me.outcome) co_return me.outcome->error();
  out = std::move(**me.outcome);
  co_return std::error_code{};
}

// One question: the cache, single flight, then the servers (attempts ×
// servers tries, see the header), then a stale entry. `refresh` skips the
// cache (prefetch). The lookup that asks first leads the flight; identical
// questions meanwhile wait for its outcome. `q` and `out` belong to the
// caller, which awaits this at once; the answer is decoded straight into
// `out.response` (a message moved costs its five containers each time),
// which is unspecified when an error is returned.
asio::awaitable<std::error_code> ask(state_ptr s, const question& q, bool refresh,
                                     asked& out) {
  ++s->stats.lookups;
  out.from_cache = false;
  out.stale = false;
  if (s->options.use_cache && !refresh) {
    if (auto h = s->answers.lookup(q, clock::now())) {
      ++s->stats.cache_hits;
      if (h->refresh_due && s->options.prefetch) start_prefetch(s, q);
      out.response = from_hit(q, *h);
      out.from_cache = true;
      co_return std::error_code{};
    }
  }
  const std::uint64_t hash = hash_question(q);
  if (detail::flight* leader = s->flights.find(hash, q)) {
    ++s->stats.coalesced;
    co_return co_await follow(s->ex, *leader, out);
  }
  detail::flight f(s->flights, q, hash);
  f.registered = s->flights.insert(&f);

  std::error_code ec;
  if (s->servers.empty()) ec = error::no_servers;
  if (!s->servers.empty()) {
    server_order_buf order;
    order_servers(*s, order);
    std::error_code last = error::timed_out;
    bool answered = false;
    for (unsigned round = 0; round < s->options.conf.attempts && !answered; ++round) {
      const auto timeout = s->options.conf.timeout * (1u << std::min(round, 4u));
      for (const std::size_t i : order.order) {
        ++s->stats.queries_sent;
        query_options qo;
        qo.timeout = timeout;
        qo.edns_udp_size = s->options.conf.edns0 ? 1232 : 0;
        // One UDP try waited on here (udp_try.hpp): no coroutine of its
        // own unless the answer asks for more (EDNS fallback, TCP).
        std::error_code qec;
        {
          detail::udp_try t;
          qec = detail::start_try(*s->channels[i], q, qo, out.response, t);
          if (!qec && detail::waiting(t)) co_await detail::wait_try(t);
          bool more = false;
          query_options next;
          if (!qec) qec = detail::end_try(t, qo, out.response, more, next);
          if (!qec && more)
            qec = co_await detail::query_into(*s->channels[i], q, next, out.response);
        }
        if (qec) {
          log_failure(s->servers[i].endpoint, qec);
          server_failed(*s, i);
          last = transport_error(qec);
          continue;
        }
        const rcode rc = out.response.rcode;
        if (rc == rcode::noerror || rc == rcode::nxdomain) {
          s->servers[i].failures = 0;
          if (s->options.use_cache) s->answers.insert(q, out.response, clock::now());
          answered = true;
          break;
        }
        server_failed(*s, i);
        last = rcode_error(rc);
      }
    }
    if (!answered) ec = last;
  }
  if (ec && s->options.use_cache && stale_eligible(ec)) {
    if (auto h = s->answers.lookup_stale(q, clock::now())) {
      ++s->stats.stale_answers;
      out.response = from_hit(q, *h);
      out.from_cache = true;
      out.stale = h->stale;
      ec = {};
    }
  }
  if (f.head || f.registered) f.complete(ec, out);
  co_return ec;
}

record address_record(const name& owner, const address& a) {
  record r;
  r.owner = owner;
  r.ttl = 0;
  if (a.is_v4()) {
    r.type = rtype::a;
    r.data = a_data{a.to_v4().to_bytes()};
  } else {
    r.type = rtype::aaaa;
    r.data = aaaa_data{a.to_v6().to_bytes()};
  }
  return r;
}

bool family_matches(const address& a, rtype type) {
  return type == rtype::a ? a.is_v4() : a.is_v6();
}

// Hosts file and localhost, for A and AAAA of the name as typed.
std::optional<result<answer>> local_answer(resolver_state& s, const name& typed, rtype type) {
  const bool address_type = type == rtype::a || type == rtype::aaaa;
  if (!address_type && !is_localhost(typed)) return std::nullopt;
  std::vector<record> records;
  if (address_type) {
    for (const address& a : s.options.hosts.addresses(typed)) {
      if (family_matches(a, type)) records.push_back(address_record(typed, a));
    }
  }
  if (records.empty() && is_localhost(typed)) {
    if (type == rtype::a) {
      records.push_back(address_record(typed, asio::ip::address_v4::loopback()));
    } else if (type == rtype::aaaa) {
      records.push_back(address_record(typed, asio::ip::address_v6::loopback()));
    } else {
      ++s.stats.hosts_answers;
      return result<answer>(unexpected(error::nodata));
    }
  }
  if (records.empty()) return std::nullopt;
  ++s.stats.hosts_answers;
  answer out;
  out.qname = typed;
  out.canonical = typed;
  out.type = type;
  out.records = std::move(records);
  return result<answer>(std::move(out));
}

// One absolute name, following CNAME chains (see the header). The records
// are moved out of the response, which belongs to this lookup.
asio::awaitable<result<answer>> resolve_name(state_ptr s, name n, rtype type) {
  answer out;
  out.type = type;
  out.from_cache = true;
  // The question asked; its name moves down the CNAME chain.
  question q;
  q.qname = n;
  q.qtype = type;
  out.qname = std::move(n);
  const name& current = q.qname;
  std::vector<name> seen;  // the chain's names, once there is a chain
  unsigned links = 0;
  const unsigned max_links = s->options.max_cname_chain;
  asked a;  // the answer to each question of the chain, decoded here
  for (unsigned queries = 0; queries <= max_links; ++queries) {
    const std::error_code ec = co_await ask(s, q, false, a);
    if (ec) co_return unexpected(ec);
    out.from_cache = out.from_cache && a.from_cache;
    out.stale = out.stale || a.stale;
    message& m = a.response;
    if (m.rcode != rcode::noerror && m.rcode != rcode::nxdomain)
      co_return unexpected(rcode_error(m.rcode));
    const unsigned links_before = links;
    const auto wanted = [&](const record& r) {
      return r.klass == rclass::in &&
             (r.type == type || (type == rtype::any && r.type != rtype::cname)) &&
             detail::iequal_wire(r.owner.wire(), current.wire());
    };
    for (;;) {
      if (std::any_of(m.answers.begin(), m.answers.end(), wanted)) {
        // The response is this lookup's own: its answer section becomes
        // the answer's records, less those of other names and types.
        out.records = std::move(m.answers);
        std::erase_if(out.records, [&](const record& r) { return !wanted(r); });
        out.ttl = std::numeric_limits<std::uint32_t>::max();
        for (const record& r : out.records) out.ttl = std::min(out.ttl, r.ttl);
        out.canonical = std::move(q.qname);
        co_return std::move(out);
      }
      if (type == rtype::cname) break;
      const name* target = nullptr;
      for (const record& r : m.answers) {
        if (r.type == rtype::cname && r.owner == current) {
          target = &std::get<cname_data>(r.data).target;
          break;
        }
      }
      if (!target) break;
      if (seen.empty()) seen.push_back(out.qname);
      if (++links > max_links || std::find(seen.begin(), seen.end(), *target) != seen.end())
        co_return unexpected(error::cname_loop);
      seen.push_back(*target);
      q.qname = *target;
    }
    if (m.rcode == rcode::nxdomain) co_return unexpected(error::nxdomain);
    if (links == links_before) co_return unexpected(error::nodata);  // no new link followed
    // The chain ended at a name the answer says nothing more about: ask it.
  }
  co_return unexpected(error::cname_loop);
}

// The search list's names in turn (see the header).
asio::awaitable<result<answer>> resolve_names(state_ptr s, std::vector<name> names, rtype type) {
  std::error_code negative = error::nxdomain;
  for (name& n : names) {
    auto r = co_await resolve_name(s, std::move(n), type);
    if (r) co_return r;
    if (!is_negative(r.error())) co_return r;
    if (r.error() == error::nodata) negative = r.error();
  }
  co_return unexpected(negative);
}

asio::awaitable<result<answer>> ready(result<answer> r) {
  co_return r;
}

// Not a coroutine: picks the coroutine that does the work (one name, the
// search list, or nothing left to do).
asio::awaitable<result<answer>> lookup_impl(const state_ptr& s, std::string_view host, rtype type) {
  auto typed = name::from_text(host);
  if (host.empty() || !typed || typed->is_root()) return ready(unexpected(error::bad_query));
  if (auto local = local_answer(*s, *typed, type)) return ready(std::move(*local));
  if (host.back() == '.') return resolve_name(s, std::move(*typed), type);  // absolute: as is
  auto names = search_names(host, s->options.conf);
  if (!names) return ready(unexpected(names.error()));
  return resolve_names(s, std::move(*names), type);
}

void append_addresses(const result<answer>& r, std::vector<address>& out) {
  if (!r) return;
  for (const record& rec : r->records) {
    if (const auto* a = std::get_if<a_data>(&rec.data))
      out.push_back(asio::ip::address_v4(a->address));
    if (const auto* a6 = std::get_if<aaaa_data>(&rec.data))
      out.push_back(asio::ip::address_v6(a6->address));
  }
}

// The error of a resolve() whose families both failed: a failure says more
// than "no such record", and NODATA ("the name exists") more than NXDOMAIN.
std::error_code combined_error(std::error_code a, std::error_code b) {
  if (a && !is_negative(a)) return a;
  if (b && !is_negative(b)) return b;
  if (a == error::nodata || b == error::nodata) return error::nodata;
  return a ? a : b;
}

// RFC 6724 §2.1 default policy table precedence.
int precedence(const address& a) {
  if (a.is_v4()) return 35;
  const auto b = a.to_v6().to_bytes();
  const auto v6 = a.to_v6();
  if (v6.is_loopback()) return 50;
  if (v6.is_v4_mapped()) return 35;
  if (b[0] == 0x20 && b[1] == 0x02) return 30;                           // 2002::/16 6to4
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) return 5;  // 2001::/32 Teredo
  if ((b[0] & 0xfe) == 0xfc) return 3;                                   // fc00::/7 ULA
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return 1;                   // fec0::/10
  if (b[0] == 0x3f && b[1] == 0xfe) return 1;                            // 3ffe::/16
  if (std::all_of(b.begin(), b.begin() + 12, [](auto x) { return x == 0; })) return 1;  // ::/96
  return 40;
}

// Whether the kernel has a route to `a`: connect(2) on a UDP socket picks a
// source address without sending anything.
bool reachable(const address& a) {
  const asio::ip::udp::endpoint ep(a, 53);
  const int fd = ::socket(ep.protocol().family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = ::connect(fd, ep.data(), static_cast<socklen_t>(ep.size())) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::vector<address> sort_addresses(std::vector<address> addresses, address_order order) {
  if (order == address_order::none || addresses.size() < 2) return addresses;
  struct keyed {
    address a;
    int family_rank;
    bool usable;
    int precedence;
  };
  std::vector<keyed> k;
  k.reserve(addresses.size());
  for (const address& a : addresses) {
    int family_rank = 0;
    if (order == address_order::ipv4_first) family_rank = a.is_v4() ? 0 : 1;
    if (order == address_order::ipv6_first) family_rank = a.is_v6() ? 0 : 1;
    k.push_back({a, family_rank, reachable(a), precedence(a)});
  }
  std::stable_sort(k.begin(), k.end(), [](const keyed& x, const keyed& y) {
    if (x.family_rank != y.family_rank) return x.family_rank < y.family_rank;
    if (x.usable != y.usable) return x.usable;
    return x.precedence > y.precedence;
  });
  for (std::size_t i = 0; i < k.size(); ++i) addresses[i] = k[i].a;
  return addresses;
}

resolver_options resolver_options::system() {
  resolver_options o;
  if (auto conf = load_resolv_conf()) o.conf = std::move(*conf);
  if (auto h = hosts::load()) o.hosts = std::move(*h);
  return o;
}

resolver::resolver(asio::any_io_executor ex, resolver_options options)
    : state_(std::make_shared<detail::resolver_state>(std::move(ex), std::move(options))) {}
resolver::~resolver() = default;
resolver::resolver(resolver&&) noexcept = default;
resolver& resolver::operator=(resolver&&) noexcept = default;

asio::awaitable<result<std::vector<address>>> resolver::resolve(std::string_view host,
                                                                address_family family) {
  using namespace asio::experimental::awaitable_operators;
  const state_ptr s = state_;
  const std::string text(host);
  std::error_code ec;
  const address literal = asio::ip::make_address(text, ec);
  if (!ec) {
    const bool ok =
        family == address_family::any || (family == address_family::v4) == literal.is_v4();
    if (!ok) co_return unexpected(error::nodata);
    std::vector<address> one;
    one.push_back(literal);
    co_return one;
  }
  // The hosts file answers for the name as a whole: no DNS for the other family.
  if (auto typed = name::from_text(text); typed && !typed->is_root()) {
    std::vector<address> local;
    for (const address& a : s->options.hosts.addresses(*typed)) {
      if (family == address_family::any || (family == address_family::v4) == a.is_v4())
        local.push_back(a);
    }
    if (local.empty() && is_localhost(*typed)) {
      if (family != address_family::v6) local.push_back(asio::ip::address_v4::loopback());
      if (family != address_family::v4) local.push_back(asio::ip::address_v6::loopback());
    }
    if (!local.empty()) {
      ++s->stats.hosts_answers;
      co_return sort_addresses(std::move(local), s->options.order);
    }
  }
  std::vector<address> out;
  if (family != address_family::any) {
    auto r = co_await lookup_impl(s, text, family == address_family::v4 ? rtype::a : rtype::aaaa);
    if (!r) co_return unexpected(r.error());
    append_addresses(r, out);
    co_return sort_addresses(std::move(out), s->options.order);
  }
  auto [r4, r6] = co_await (lookup_impl(s, text, rtype::a) && lookup_impl(s, text, rtype::aaaa));
  append_addresses(r4, out);
  append_addresses(r6, out);
  if (out.empty()) co_return unexpected(combined_error(r4.error(), r6.error()));
  co_return sort_addresses(std::move(out), s->options.order);
}

asio::awaitable<result<answer>> resolver::lookup(std::string_view host, rtype type) {
  return lookup_impl(state_, host, type);
}

asio::awaitable<result<std::vector<mx_data>>> resolver::lookup_mx(std::string_view host) {
  auto r = co_await lookup_impl(state_, host, rtype::mx);
  if (!r) co_return unexpected(r.error());
  std::vector<mx_data> out;
  for (const record& rec : r->records) {
    if (const auto* mx = std::get_if<mx_data>(&rec.data)) out.push_back(*mx);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const mx_data& a, const mx_data& b) { return a.preference < b.preference; });
  co_return out;
}

asio::awaitable<result<std::vector<std::string>>> resolver::lookup_txt(std::string_view host) {
  auto r = co_await lookup_impl(state_, host, rtype::txt);
  if (!r) co_return unexpected(r.error());
  std::vector<std::string> out;
  for (const record& rec : r->records) {
    if (const auto* txt = std::get_if<txt_data>(&rec.data)) {
      std::string joined;
      for (const auto& part : txt->strings) joined += part;
      out.push_back(std::move(joined));
    }
  }
  co_return out;
}

asio::awaitable<result<std::vector<srv_data>>> resolver::lookup_srv(std::string_view service) {
  auto r = co_await lookup_impl(state_, service, rtype::srv);
  if (!r) co_return unexpected(r.error());
  std::vector<srv_data> out;
  for (const record& rec : r->records) {
    if (const auto* srv = std::get_if<srv_data>(&rec.data)) out.push_back(*srv);
  }
  std::stable_sort(out.begin(), out.end(), [](const srv_data& a, const srv_data& b) {
    if (a.priority != b.priority) return a.priority < b.priority;
    return a.weight > b.weight;
  });
  co_return out;
}

asio::awaitable<result<std::vector<name>>> resolver::reverse(const address& a) {
  const state_ptr s = state_;
  if (auto n = s->options.hosts.name_of(a)) {
    ++s->stats.hosts_answers;
    std::vector<name> one;
    one.push_back(std::move(*n));
    co_return one;
  }
  auto r = co_await resolve_name(s, reverse_name(a), rtype::ptr);
  if (!r) co_return unexpected(r.error());
  std::vector<name> out;
  for (const record& rec : r->records) {
    if (const auto* p = std::get_if<ptr_data>(&rec.data)) out.push_back(p->target);
  }
  co_return out;
}

asio::awaitable<result<message>> resolver::query(const question& q) {
  detail::asked a;
  const std::error_code ec = co_await ask(state_, q, false, a);
  if (ec) co_return unexpected(ec);
  // An answer from the network comes without its question section (checked
  // on the wire, then left out): the caller gets it back whole.
  if (a.response.questions.empty()) a.response.questions.push_back(q);
  co_return std::move(a.response);
}

const resolver_stats& resolver::stats() const noexcept {
  return state_->stats;
}

std::vector<server_status> resolver::servers() const {
  std::vector<server_status> out;
  const auto now = clock::now();
  for (const auto& h : state_->servers) {
    out.push_back({h.endpoint, h.failures, !healthy(h, state_->options, now)});
  }
  return out;
}

dns::cache& resolver::answer_cache() noexcept {
  return state_->answers;
}

const resolver_options& resolver::options() const noexcept {
  return state_->options;
}

}  // namespace trellis::dns
