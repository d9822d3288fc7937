// Upstream clusters and per-worker balancers; see include/trellis/lb/cluster.hpp.
//
// Layout: cluster_state holds everything a cluster shares — configuration,
// the per-host records (health, outlier state) under one mutex, the
// published snapshot, the version — and is held by shared_ptr, so that the
// background coroutines of start() keep it alive after the cluster object
// is gone. The coroutines themselves are tracked by a runner that lives on
// start()'s executor: each sleeps on a timer of its own task, and stop()
// posts the cancellation of every task to that executor.
#include "trellis/lb/cluster.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <cctype>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <unordered_map>

#include "detail.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/dns/resolver.hpp"

namespace trellis::lb {

// --- endpoint parsing ----------------------------------------------------

namespace {

bool parse_port(std::string_view text, std::uint16_t& port) noexcept {
  if (text.empty() || text.size() > 5) return false;
  std::uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

bool plausible_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 253) return false;
  for (unsigned char c : name)
    if (!(std::isalnum(c) || c == '-' || c == '.' || c == '_')) return false;
  return true;
}

std::string format_endpoint(const asio::ip::address& ip, std::uint16_t port) {
  return ip.is_v6() ? "[" + ip.to_string() + "]:" + std::to_string(port)
                    : ip.to_string() + ":" + std::to_string(port);
}

}  // namespace

result<endpoint_address> parse_endpoint(std::string_view address) {
  endpoint_address out;
  std::string_view host, port;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':')
      return unexpected(core::errc::invalid_argument);
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    std::error_code ec;
    auto v6 = asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return unexpected(core::errc::invalid_argument);
    out.host = v6.to_string();
    out.is_ip = true;
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return unexpected(core::errc::invalid_argument);
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.empty() || host.find(':') != std::string_view::npos)
      return unexpected(core::errc::invalid_argument);  // unbracketed IPv6, or nothing
    std::error_code ec;
    auto v4 = asio::ip::make_address_v4(std::string(host), ec);
    if (!ec) {
      out.host = v4.to_string();
      out.is_ip = true;
    } else if (plausible_name(host)) {
      out.host = std::string(host);
    } else {
      return unexpected(core::errc::invalid_argument);
    }
  }
  if (!parse_port(port, out.port)) return unexpected(core::errc::invalid_argument);
  return out;
}

namespace detail {

// --- background work -----------------------------------------------------

// One background loop: it sleeps on `timer`; cancel() wakes it for good.
struct task {
  explicit task(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool cancelled = false;
  void cancel() {
    cancelled = true;
    timer.cancel();
  }
};

// The background work of one start(). Touched only on `ex`, but for
// `stopped`, which stop() sets from any thread.
struct runner {
  runner(asio::any_io_executor e, dns::resolver* r, std::uint64_t seed)
      : ex(std::move(e)), resolver(r), random(seed) {}
  asio::any_io_executor ex;
  dns::resolver* resolver;
  std::shared_ptr<std::atomic<bool>> context_alive;
  std::atomic<bool> stopped{false};
  std::map<const host*, std::shared_ptr<task>> checkers;
  std::vector<std::shared_ptr<task>> others;  // DNS loops and the sweeper
  lb::detail::rng random;

  bool running(const task& t) const noexcept { return !t.cancelled && !stopped.load(); }
};

// Tells whether an execution context still exists. Its shutdown (when the
// context is destroyed) clears the flag, so that stop() never posts to a
// dead context, and drops the runners' timers while the context's services
// still exist: a cluster may outlive the context it was started on.
class lifetime_service : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;
  explicit lifetime_service(asio::execution_context& ctx)
      : asio::execution_context::service(ctx), alive_(std::make_shared<std::atomic<bool>>(true)) {}
  std::shared_ptr<std::atomic<bool>> alive() const { return alive_; }
  void add(const std::shared_ptr<runner>& r) {
    std::lock_guard lock(mutex_);
    std::erase_if(runners_, [](const std::weak_ptr<runner>& w) { return w.expired(); });
    runners_.push_back(r);
  }

 private:
  void shutdown() override {
    alive_->store(false);
    std::vector<std::weak_ptr<runner>> runners;
    {
      std::lock_guard lock(mutex_);
      runners.swap(runners_);
    }
    for (const auto& w : runners)
      if (auto r = w.lock()) {
        r->stopped.store(true);
        r->checkers.clear();
        r->others.clear();
      }
  }
  std::shared_ptr<std::atomic<bool>> alive_;
  std::mutex mutex_;
  std::vector<std::weak_ptr<runner>> runners_;
};

asio::execution_context::id lifetime_service::id;

// The per-host state the cluster keeps beside the host itself.
struct host_record {
  std::shared_ptr<const host> h;
  asio::ip::tcp::endpoint target;  // what health checks connect to
  std::size_t endpoint = 0;        // index of the configured endpoint
  health_state health;
  outlier_tracker outlier;
  std::string last_check;

  host_record(std::shared_ptr<const host> host_ptr, asio::ip::tcp::endpoint t, std::size_t e,
              const health_state& hs)
      : h(std::move(host_ptr)), target(t), endpoint(e), health(hs) {}
  bool eligible() const noexcept { return health.healthy() && !outlier.ejected(); }
};

// A log line decided under the mutex, written after it is released.
struct pending_log {
  core::log::level level;
  std::string msg;
  std::string address;
  std::string detail;
};

struct cluster_state {
  cluster_options options;
  std::vector<endpoint_config> endpoints;
  std::vector<endpoint_address> parsed;  // one per endpoint
  clock_function clock;

  mutable std::mutex mutex;
  std::vector<std::unique_ptr<host_record>> records;                  // by endpoint, then age
  std::unordered_map<const host*, host_record*> index;                // into records
  std::vector<std::shared_ptr<const host>> retired;                   // removed, maybe still in use
  std::vector<bool> resolved_once;                                    // per endpoint
  host_set_ptr eligible = std::make_shared<const host_set>(std::vector<std::shared_ptr<const host>>{});
  host_set_ptr all = eligible;
  std::atomic<std::uint64_t> version{1};
  std::atomic<bool> panic{false};
  std::atomic<duration::rep> next_change{std::numeric_limits<duration::rep>::max()};
  std::atomic<bool> retired_empty_hint{true};  // lets refresh() skip the lock
  std::atomic<std::size_t> counting_hosts{0};  // records with a failure counted: report()'s fast path

  std::mutex run_mutex;
  std::shared_ptr<runner> run;

  health_state initial_health() const noexcept {
    const bool checked = options.health.type != health_check_type::none;
    return health_state(options.health.rise, options.health.fall,
                        checked ? options.health.start_healthy : true);
  }

  // --- under `mutex` -----------------------------------------------------

  void rebuild_all_locked() {
    std::vector<std::shared_ptr<const host>> hosts;
    hosts.reserve(records.size());
    for (const auto& r : records) hosts.push_back(r->h);
    all = std::make_shared<const host_set>(std::move(hosts));
  }

  // Publishes the eligible set; bumps the version when it (or the panic
  // state) differs from the published one. Returns whether it did.
  bool publish_locked(std::vector<pending_log>& logs) {
    std::vector<std::shared_ptr<const host>> ok, known;
    ok.reserve(records.size());
    for (const auto& r : records) {
      if (r->eligible()) ok.push_back(r->h);
      // A host awaiting its first check (start_healthy = false) is left out
      // of panic's count and set: panic spreads load over hosts known to
      // have worked, not over ones never checked.
      if (r->health.healthy() || r->health.checked()) known.push_back(r->h);
    }
    const double threshold = options.panic_threshold;
    const bool now_panic = threshold > 0 && !known.empty() &&
                           static_cast<double>(ok.size()) <
                               threshold * static_cast<double>(known.size());
    const bool everyone = known.size() == records.size();
    const std::span<const std::shared_ptr<const host>> chosen =
        now_panic ? (everyone ? all->hosts() : std::span<const std::shared_ptr<const host>>(known))
                  : std::span<const std::shared_ptr<const host>>(ok);
    const auto current = eligible->hosts();
    bool same = now_panic == panic.load(std::memory_order_relaxed) &&
                current.size() == chosen.size();
    for (std::size_t i = 0; same && i < chosen.size(); ++i) same = current[i] == chosen[i];
    if (same) return false;
    if (now_panic != panic.load(std::memory_order_relaxed))
      logs.push_back({now_panic ? core::log::level::warn : core::log::level::info,
                      now_panic ? "lb cluster in panic: serving from every host"
                                : "lb cluster out of panic",
                      "", std::to_string(ok.size()) + "/" + std::to_string(records.size()) +
                              " hosts eligible"});
    eligible = now_panic && everyone
                   ? all
                   : std::make_shared<const host_set>(
                         std::vector<std::shared_ptr<const host>>(chosen.begin(), chosen.end()));
    panic.store(now_panic, std::memory_order_relaxed);
    version.fetch_add(1, std::memory_order_release);
    return true;
  }

  void update_next_change_locked() {
    time_point next = time_point::max();
    for (const auto& r : records) next = std::min(next, r->outlier.next_change(options.outlier));
    next_change.store(next.time_since_epoch().count(), std::memory_order_relaxed);
  }

  // Ends due ejections, decays multipliers, frees retired hosts no longer
  // in use; publishes. Returns whether the eligible set changed.
  bool tick_locked(time_point now, std::vector<pending_log>& logs) {
    bool returned = false;
    for (auto& r : records) {
      if (!r->outlier.tick(now, options.outlier)) continue;
      returned = true;
      if (r->health.healthy()) r->h->mark_healthy(now);
      logs.push_back({core::log::level::info, "lb host returns from ejection", r->h->address(),
                      ""});
    }
    // A retired host may be freed once no snapshot holds it and no request
    // runs on it (a proxy holds a plain pointer while a request is active).
    std::erase_if(retired, [](const std::shared_ptr<const host>& h) {
      return h.use_count() == 1 && h->active_requests() == 0;
    });
    update_next_change_locked();
    return returned && publish_locked(logs);
  }

  static bool counting(const host_record& r) noexcept {
    return r.outlier.consecutive_5xx() > 0 || r.outlier.consecutive_gateway_failures() > 0;
  }

  std::size_t ejected_locked() const noexcept {
    std::size_t n = 0;
    for (const auto& r : records) n += r->outlier.ejected() ? 1 : 0;
    return n;
  }

  // --- entry points (take the mutex) -------------------------------------

  void flush(const std::vector<pending_log>& logs) const {
    for (const auto& l : logs)
      core::log::write(l.level, l.msg,
                       {{"cluster", options.name}, {"host", l.address}, {"detail", l.detail}});
  }

  bool refresh() {
    const time_point now = clock();
    if (now.time_since_epoch().count() < next_change.load(std::memory_order_relaxed) &&
        retired_empty_hint.load(std::memory_order_relaxed))
      return false;
    std::vector<pending_log> logs;
    bool changed;
    {
      std::lock_guard lock(mutex);
      changed = tick_locked(now, logs);
      retired_empty_hint.store(retired.empty(), std::memory_order_relaxed);
    }
    flush(logs);
    return changed;
  }

  void report(const host& h, const response_outcome& outcome) {
    const time_point now = clock();
    // The common case takes no lock: a success while no host has a failure
    // counted and no ejection is due changes nothing.
    const bool failure = outcome.status == 0 || (outcome.status >= 500 && outcome.status <= 599);
    if (!failure && counting_hosts.load(std::memory_order_relaxed) == 0 &&
        now.time_since_epoch().count() < next_change.load(std::memory_order_relaxed))
      return;
    std::vector<pending_log> logs;
    {
      std::lock_guard lock(mutex);
      if (now.time_since_epoch().count() >= next_change.load(std::memory_order_relaxed))
        tick_locked(now, logs);
      const auto it = index.find(&h);
      if (it != index.end()) {
        host_record& r = *it->second;
        const bool was_counting = counting(r);
        const auto reason = r.outlier.record(outcome.status, options.outlier);
        if (reason && ejected_locked() < max_ejected_hosts(records.size(), options.outlier)) {
          const time_point until = r.outlier.eject(now, options.outlier);
          logs.push_back(
              {core::log::level::warn, "lb host ejected", h.address(),
               std::string(to_string(*reason)) + " for " +
                   std::to_string(
                       std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()) +
                   " ms"});
          update_next_change_locked();
          publish_locked(logs);
        }
        if (counting(r) != was_counting)
          counting_hosts.fetch_add(was_counting ? std::size_t(-1) : 1, std::memory_order_relaxed);
      }
    }
    flush(logs);
  }

  void report_check(const host& h, const check_result& result) {
    const time_point now = clock();
    std::vector<pending_log> logs;
    {
      std::lock_guard lock(mutex);
      const auto it = index.find(&h);
      if (it == index.end()) return;
      host_record& r = *it->second;
      r.last_check = result.describe();
      const health_transition t = r.health.record(result.passed);
      if (t == health_transition::none) return;
      if (t == health_transition::became_healthy) {
        if (!r.outlier.ejected()) r.h->mark_healthy(now);
        logs.push_back({core::log::level::info, "lb host healthy", h.address(), r.last_check});
      } else {
        logs.push_back({core::log::level::warn, "lb host unhealthy", h.address(), r.last_check});
      }
      publish_locked(logs);
    }
    flush(logs);
  }

  struct membership_change {
    std::vector<std::shared_ptr<const host>> removed;
    std::vector<std::pair<std::shared_ptr<const host>, asio::ip::tcp::endpoint>> added_targets;
  };

  // Makes endpoint `e`'s hosts exactly `addresses` (deduplicated). Hosts
  // that stay keep their record; new ones are stamped healthy now (slow
  // start) unless this is the endpoint's first resolution.
  membership_change apply_resolution(std::size_t e, const std::vector<asio::ip::address>& addresses) {
    const time_point now = clock();
    const std::uint16_t port = parsed[e].port;
    membership_change change;
    std::vector<pending_log> logs;
    {
      std::lock_guard lock(mutex);
      const bool first = !resolved_once[e];
      resolved_once[e] = true;
      std::vector<std::pair<std::string, asio::ip::address>> wanted;  // name, address
      auto is_wanted = [&](const std::string& name) {
        return std::any_of(wanted.begin(), wanted.end(),
                           [&](const auto& w) { return w.first == name; });
      };
      for (const auto& a : addresses) {
        std::string text = format_endpoint(a, port);
        if (!is_wanted(text)) wanted.emplace_back(std::move(text), a);
      }
      // Remove the records of `e` whose address is gone.
      for (auto it = records.begin(); it != records.end();) {
        host_record& r = **it;
        if (r.endpoint == e && !is_wanted(r.h->address())) {
          logs.push_back({core::log::level::info, "lb host removed by DNS", r.h->address(),
                          parsed[e].host});
          index.erase(r.h.get());
          if (counting(r)) counting_hosts.fetch_sub(1, std::memory_order_relaxed);
          change.removed.push_back(r.h);
          retired.push_back(r.h);
          it = records.erase(it);
        } else {
          ++it;
        }
      }
      // Add the new ones after the last record of an endpoint <= e.
      for (const auto& want : wanted) {
        // (Named, not a structured binding: clang 14 cannot capture those.)
        const auto& text = want.first;
        const auto& ip = want.second;
        const bool known = std::any_of(records.begin(), records.end(), [&](const auto& r) {
          return r->endpoint == e && r->h->address() == text;
        });
        if (known) continue;
        auto h = std::make_shared<const host>(text, endpoints[e].weight,
                                              first ? time_point::min() : now);
        auto rec = std::make_unique<host_record>(h, asio::ip::tcp::endpoint(ip, port), e,
                                                 initial_health());
        index[h.get()] = rec.get();
        change.added_targets.emplace_back(h, rec->target);
        const auto pos = std::find_if(records.begin(), records.end(),
                                      [&](const auto& r) { return r->endpoint > e; });
        records.insert(pos, std::move(rec));
        if (!first)
          logs.push_back({core::log::level::info, "lb host added by DNS", text, parsed[e].host});
      }
      if (!change.removed.empty() || !change.added_targets.empty()) {
        rebuild_all_locked();
        update_next_change_locked();
        publish_locked(logs);
      }
      retired_empty_hint.store(retired.empty(), std::memory_order_relaxed);
    }
    flush(logs);
    return change;
  }
};

namespace {

void spawn(const std::shared_ptr<runner>& r, std::string what, asio::awaitable<void> work) {
  asio::co_spawn(r->ex, std::move(work), [what = std::move(what)](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      core::log::error("lb cluster task failed", {{"task", what}, {"error", x.what()}});
    } catch (...) {
      core::log::error("lb cluster task failed", {{"task", what}, {"error", "unknown exception"}});
    }
  });
}

// Sleeps on the task's timer; false when the task was cancelled.
asio::awaitable<bool> sleep_for(const runner& r, task& t, duration d) {
  if (!r.running(t)) co_return false;
  t.timer.expires_after(d);
  auto [ec] = co_await t.timer.async_wait(use_nothrow);
  (void)ec;
  co_return r.running(t);
}

duration jittered(runner& r, std::chrono::milliseconds base, double jitter, bool first) {
  const double extra = jitter * r.random.unit();
  const double factor = first ? extra : 1.0 + extra;
  return std::chrono::duration_cast<duration>(
      std::chrono::duration<double, std::milli>(static_cast<double>(base.count()) * factor));
}

asio::awaitable<void> check_loop(std::shared_ptr<cluster_state> st, std::shared_ptr<runner> r,
                                 std::shared_ptr<task> t, std::shared_ptr<const host> h,
                                 asio::ip::tcp::endpoint target) {
  const health_check_options& o = st->options.health;
  bool more = co_await sleep_for(*r, *t, jittered(*r, o.interval, o.jitter, true));
  while (more) {
    check_result res = co_await run_check(target, o, h->address());
    if (!r->running(*t)) co_return;
    st->report_check(*h, res);
    more = co_await sleep_for(*r, *t, jittered(*r, o.interval, o.jitter, false));
  }
}

void start_checker(const std::shared_ptr<cluster_state>& st, const std::shared_ptr<runner>& r,
                   std::shared_ptr<const host> h, asio::ip::tcp::endpoint target) {
  if (st->options.health.type == health_check_type::none || r->stopped.load()) return;
  auto t = std::make_shared<task>(r->ex);
  r->checkers[h.get()] = t;
  std::string what = "health check " + h->address();
  spawn(r, std::move(what), check_loop(st, r, std::move(t), std::move(h), target));
}

asio::awaitable<void> dns_loop(std::shared_ptr<cluster_state> st, std::shared_ptr<runner> r,
                               std::shared_ptr<task> t, std::size_t e) {
  const std::string name = st->parsed[e].host;
  const duration floor = st->options.dns_refresh_min;
  bool failing = false;
  for (;;) {
    if (!r->running(*t)) co_return;
    duration wait = floor;
    auto addresses = co_await r->resolver->resolve(name);
    if (!r->running(*t)) co_return;
    if (addresses && !addresses->empty()) {
      // resolve() gives no TTL; the A (else AAAA) answer, now in the
      // resolver's cache, does: its TTL as left now.
      std::uint32_t ttl = 0;
      auto a = co_await r->resolver->lookup(name, dns::rtype::a);
      if (!r->running(*t)) co_return;
      if (a && !a->records.empty()) {
        ttl = a->ttl;
      } else {
        auto aaaa = co_await r->resolver->lookup(name, dns::rtype::aaaa);
        if (!r->running(*t)) co_return;
        if (aaaa && !aaaa->records.empty()) ttl = aaaa->ttl;
      }
      wait = std::max<duration>(floor, std::chrono::seconds(ttl));
      if (failing)
        core::log::info("lb DNS resolution recovered",
                        {{"cluster", st->options.name}, {"name", name}});
      failing = false;
      auto change = st->apply_resolution(e, *addresses);
      for (const auto& gone : change.removed) {
        const auto it = r->checkers.find(gone.get());
        if (it == r->checkers.end()) continue;
        it->second->cancel();
        r->checkers.erase(it);
      }
      for (auto& [h, target] : change.added_targets) start_checker(st, r, h, target);
    } else {
      // Logged once per run of failures: retries come every floor interval.
      const std::error_code ec = addresses ? std::error_code(core::errc::not_found)
                                           : addresses.error();
      core::log::write(failing ? core::log::level::debug : core::log::level::warn,
                       "lb DNS resolution failed; keeping the last hosts",
                       {{"cluster", st->options.name}, {"name", name}, {"error", ec.message()}});
      failing = true;
    }
    if (!co_await sleep_for(*r, *t, wait)) co_return;
  }
}

// Calls refresh() when an ejection should end or a multiplier decay, for
// clusters that see no traffic to do it.
asio::awaitable<void> sweep_loop(std::shared_ptr<cluster_state> st, std::shared_ptr<runner> r,
                                 std::shared_ptr<task> t) {
  const duration longest = std::min(st->options.outlier.interval,
                                    st->options.outlier.base_ejection_time);
  for (;;) {
    duration wait = longest;
    const auto next = st->next_change.load(std::memory_order_relaxed);
    const auto now = st->clock().time_since_epoch().count();
    if (next != std::numeric_limits<duration::rep>::max())
      wait = std::clamp(duration{next - now}, duration{std::chrono::milliseconds(1)}, longest);
    if (!co_await sleep_for(*r, *t, wait)) co_return;
    st->refresh();
  }
}

}  // namespace
}  // namespace detail

// --- cluster -------------------------------------------------------------

namespace {

void rethrow_policy_error(const core::config_error& e) {
  std::string field = e.field();
  if (field.rfind("lb.", 0) == 0) field = "cluster.policy_config." + field.substr(3);
  std::string what = e.what();
  const auto colon = what.find(": ");
  throw core::config_error(field, colon == std::string::npos ? what : what.substr(colon + 2));
}

}  // namespace

cluster::cluster(cluster_options options, std::vector<endpoint_config> endpoints)
    : state_(std::make_shared<detail::cluster_state>()) {
  auto& st = *state_;
  if (options.name.empty()) throw core::config_error("cluster.name", "must not be empty");
  if (std::find(std::begin(policy_names), std::end(policy_names), options.policy) ==
      std::end(policy_names))
    throw core::config_error("cluster.policy", "unknown policy \"" + options.policy +
                                                   "\" (round_robin, weighted_round_robin, "
                                                   "least_connections, least_request, "
                                                   "peak_ewma, random, ring_hash, maglev)");
  try {
    validate(options.policy_config);
  } catch (const core::config_error& e) {
    rethrow_policy_error(e);
  }
  validate(options.health, "cluster.health");
  validate(options.outlier, "cluster.outlier");
  if (!std::isfinite(options.panic_threshold) || options.panic_threshold < 0 ||
      options.panic_threshold > 1)
    throw core::config_error("cluster.panic_threshold", "must be in [0, 1]");
  if (options.dns_refresh_min.count() <= 0)
    throw core::config_error("cluster.dns_refresh_min", "must be greater than 0");
  if (endpoints.empty()) throw core::config_error("cluster.endpoints", "must not be empty");
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    const std::string field = "cluster.endpoints[" + std::to_string(i) + "]";
    auto parsed = parse_endpoint(endpoints[i].address);
    if (!parsed)
      throw core::config_error(field + ".address",
                               "\"" + endpoints[i].address +
                                   "\" is not ip:port, [ipv6]:port or name:port (port 1-65535)");
    if (endpoints[i].weight == 0) throw core::config_error(field + ".weight", "must be at least 1");
    st.parsed.push_back(std::move(*parsed));
  }
  if (!options.clock) options.clock = &steady_now;
  if (!options.policy_config.clock) options.policy_config.clock = options.clock;
  st.clock = options.clock;
  st.options = std::move(options);
  st.endpoints = std::move(endpoints);
  st.resolved_once.assign(st.endpoints.size(), false);

  for (std::size_t i = 0; i < st.endpoints.size(); ++i) {
    const auto& p = st.parsed[i];
    if (!p.is_ip) continue;
    const auto ip = asio::ip::make_address(p.host);
    auto h = std::make_shared<const host>(format_endpoint(ip, p.port), st.endpoints[i].weight);
    auto rec = std::make_unique<detail::host_record>(h, asio::ip::tcp::endpoint(ip, p.port), i,
                                                     st.initial_health());
    st.index[h.get()] = rec.get();
    st.records.push_back(std::move(rec));
    st.resolved_once[i] = true;
  }
  std::vector<detail::pending_log> logs;
  std::lock_guard lock(st.mutex);
  st.rebuild_all_locked();
  st.publish_locked(logs);
  st.version.store(1, std::memory_order_relaxed);  // the first published set is version 1
}

cluster::~cluster() {
  stop();
}

const std::string& cluster::name() const noexcept {
  return state_->options.name;
}
const cluster_options& cluster::options() const noexcept {
  return state_->options;
}
const std::vector<endpoint_config>& cluster::endpoints() const noexcept {
  return state_->endpoints;
}
std::uint64_t cluster::version() const noexcept {
  return state_->version.load(std::memory_order_acquire);
}
bool cluster::in_panic() const noexcept {
  return state_->panic.load(std::memory_order_relaxed);
}

host_set_ptr cluster::eligible() const {
  return eligible_snapshot().hosts;
}

cluster::snapshot cluster::eligible_snapshot() const {
  state_->refresh();
  std::lock_guard lock(state_->mutex);
  snapshot s;
  s.hosts = state_->eligible;
  s.version = state_->version.load(std::memory_order_relaxed);
  s.panic = state_->panic.load(std::memory_order_relaxed);
  return s;
}

host_set_ptr cluster::all_hosts() const {
  std::lock_guard lock(state_->mutex);
  return state_->all;
}

void cluster::report(const host& h, const response_outcome& outcome) {
  state_->report(h, outcome);
}

void cluster::report_check(const host& h, const check_result& result) {
  state_->report_check(h, result);
}

bool cluster::refresh() {
  return state_->refresh();
}

std::vector<cluster::host_status> cluster::status() const {
  state_->refresh();
  std::lock_guard lock(state_->mutex);
  std::vector<host_status> out;
  out.reserve(state_->records.size());
  for (const auto& r : state_->records) {
    host_status s;
    s.address = r->h->address();
    s.endpoint = state_->endpoints[r->endpoint].address;
    s.weight = r->h->weight();
    s.healthy = r->health.healthy();
    s.ejected = r->outlier.ejected();
    s.eligible = r->eligible();
    s.ejections = r->outlier.ejections();
    s.ejection_multiplier = r->outlier.multiplier();
    s.active_requests = r->h->active_requests();
    s.consecutive_failures = r->outlier.consecutive_5xx();
    s.consecutive_gateway_failures = r->outlier.consecutive_gateway_failures();
    if (s.ejected) s.ejected_until = r->outlier.ejected_until();
    s.last_check = r->last_check;
    out.push_back(std::move(s));
  }
  return out;
}

void cluster::start(asio::any_io_executor ex, dns::resolver* resolver) {
  auto& st = *state_;
  const bool has_names =
      std::any_of(st.parsed.begin(), st.parsed.end(), [](const auto& p) { return !p.is_ip; });
  if (has_names && resolver == nullptr)
    throw core::config_error("cluster.resolver",
                             "endpoints with names need a resolver (cluster \"" + name() + "\")");
  std::shared_ptr<detail::runner> r;
  {
    std::lock_guard lock(st.run_mutex);
    if (st.run) return;
    r = std::make_shared<detail::runner>(ex, resolver, st.options.policy_config.seed);
    if (st.options.policy_config.seed == 0) r->random = lb::detail::rng::seeded(0);
    auto& lifetime =
        asio::use_service<detail::lifetime_service>(asio::query(ex, asio::execution::context));
    r->context_alive = lifetime.alive();
    lifetime.add(r);
    st.run = r;
  }
  asio::dispatch(ex, [s = state_, r, has_names] {
    if (r->stopped.load()) return;
    if (s->options.outlier.enabled) {
      auto t = std::make_shared<detail::task>(r->ex);
      r->others.push_back(t);
      detail::spawn(r, "outlier sweep", detail::sweep_loop(s, r, t));
    }
    if (s->options.health.type != health_check_type::none) {
      std::vector<std::pair<std::shared_ptr<const host>, asio::ip::tcp::endpoint>> targets;
      {
        std::lock_guard lock(s->mutex);
        for (const auto& rec : s->records) targets.emplace_back(rec->h, rec->target);
      }
      for (auto& [h, target] : targets) detail::start_checker(s, r, h, target);
    }
    if (has_names) {
      for (std::size_t e = 0; e < s->parsed.size(); ++e) {
        if (s->parsed[e].is_ip) continue;
        auto t = std::make_shared<detail::task>(r->ex);
        r->others.push_back(t);
        detail::spawn(r, "dns " + s->parsed[e].host, detail::dns_loop(s, r, t, e));
      }
    }
  });
}

void cluster::stop() {
  std::shared_ptr<detail::runner> r;
  {
    std::lock_guard lock(state_->run_mutex);
    r = std::move(state_->run);
  }
  if (!r) return;
  r->stopped.store(true);
  if (!r->context_alive->load()) return;  // the context is gone, and its coroutines with it
  asio::post(r->ex, [r] {
    for (auto& [h, t] : r->checkers) t->cancel();
    for (auto& t : r->others) t->cancel();
    r->checkers.clear();
    r->others.clear();
  });
}

// --- balancer ------------------------------------------------------------

balancer::balancer(std::shared_ptr<cluster> c, std::uint64_t seed) : cluster_(std::move(c)) {
  if (!cluster_) throw core::config_error("lb.balancer", "no cluster");
  options_ = cluster_->options().policy_config;
  if (seed != 0) options_.seed = seed;
}

void balancer::rebuild() {
  cluster::snapshot s = cluster_->eligible_snapshot();
  policy_ = make_policy(cluster_->options().policy, std::move(s.hosts), options_);
  version_ = s.version;
  ++rebuilds_;
}

const host* balancer::pick(const request_context& ctx) {
  if (!policy_ || cluster_->version() != version_) rebuild();
  const host* h = policy_->pick(ctx);
  // Nothing to pick: perhaps an ejection ended and nobody noticed yet.
  if (h == nullptr && cluster_->refresh()) {
    rebuild();
    h = policy_->pick(ctx);
  }
  return h;
}

void balancer::observe(const host& h, const response_outcome& o) {
  if (policy_) policy_->observe(h, o);
  cluster_->report(h, o);
}

}  // namespace trellis::lb
