#include "trellis/gateway/redis_rate_limit_store.hpp"

#include <asio/this_coro.hpp>
#include <string_view>

#include "trellis/core/log.hpp"

namespace trellis::gateway {

namespace {

// The steps of gcra_step and sliding_window_step (rate_limit_policy.hpp),
// line for line, over every charge of one request; writes only when all
// allowed. Numbers are written with %d: Lua 5.1 would print 1.7e15 as
// "1.7e+15", losing digits. KEYS: one per charge. ARGV[1]: the cost; then
// per charge: "g", T, tau (token bucket) or "w", limit, W (window), all in
// microseconds. Reply: per charge allowed, over_capacity, remaining, reset,
// retry_after; then 1 if the request was charged.
constexpr std::string_view lua = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local res, new, all = {}, {}, 1
for i = 1, #KEYS do
  local kind, a, b = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local allowed, over, remaining, reset, retry = 0, 0, 0, 0, 0
  if kind == 'g' then
    local T, tau = a, b
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then tat = now end
    local burst = math.floor(tau / T)
    local slack = tau - (tat - now)
    local avail = 0
    if slack > 0 then avail = math.floor(slack / T) end
    if cost > burst then
      over, remaining, reset, retry = 1, avail, tat - now, -1
    else
      local new_tat = tat + cost * T
      if new_tat - tau > now then
        remaining, reset, retry = avail, tat - now, new_tat - tau - now
      else
        allowed = 1
        remaining = math.floor((tau - (new_tat - now)) / T)
        reset = new_tat - now
        new[i] = {'g', new_tat, reset}
      end
    end
  else
    local limit, W = a, b
    local v = redis.call('HMGET', KEYS[i], 's', 'c', 'p')
    local s, c, p = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
    local at = now
    if at < s then at = s end
    local win = at - at % W
    if s ~= win then
      if s + W == win then p = c else p = 0 end
      c = 0
    end
    local e = at - win
    local weighted = p * (W - e)
    local function left()
      local l = limit * W - c * W - weighted
      if l > 0 then return math.floor(l / W) end
      return 0
    end
    local function full_in()
      if c > 0 then return win + 2 * W - at end
      if p > 0 then return win + W - at end
      return 0
    end
    if cost > limit then
      over, remaining, reset, retry = 1, left(), full_in(), -1
    elseif c + cost <= limit and weighted <= (limit - c - cost) * W then
      c = c + cost
      allowed, remaining, reset = 1, left(), full_in()
      new[i] = {'w', win, c, p, reset}
    else
      remaining, reset = left(), full_in()
      if c + cost <= limit then
        retry = W - math.floor((limit - c - cost) * W / p) - e
      else
        local e2 = W - math.floor((limit - cost) * W / c)
        if e2 < 0 then e2 = 0 end
        retry = W - e + e2
      end
    end
  end
  if allowed == 0 then all = 0 end
  local n = #res
  res[n + 1], res[n + 2], res[n + 3], res[n + 4], res[n + 5] = allowed, over, remaining, reset, retry
end
if all == 1 then
  for i = 1, #KEYS do
    local w = new[i]
    local ms = math.ceil(w[#w] / 1000)
    if ms < 1 then ms = 1 end
    if w[1] == 'g' then
      redis.call('SET', KEYS[i], string.format('%d', w[2]), 'PX', string.format('%d', ms))
    else
      redis.call('HSET', KEYS[i], 's', string.format('%d', w[2]), 'c', string.format('%d', w[3]),
                 'p', string.format('%d', w[4]))
      redis.call('PEXPIRE', KEYS[i], string.format('%d', ms))
    end
  end
end
res[#res + 1] = all
return res
)lua";

}  // namespace

redis_rate_limit_store::redis_rate_limit_store(core::runtime& rt, asio::ip::tcp::endpoint server,
                                               redis_rate_limit_store_options options)
    : script_(std::string(lua)),
      prefix_(std::move(options.key_prefix)),
      clients_(rt, server, options.client, "redis_rate_limit_store") {}

redis_rate_limit_store::~redis_rate_limit_store() = default;

const std::string& redis_rate_limit_store::script_source() {
  static const std::string source(lua);
  return source;
}

asio::awaitable<result<bool>> redis_rate_limit_store::acquire(
    std::span<const rate_limit_charge> charges, std::int64_t cost, std::chrono::microseconds,
    std::span<rate_limit_decision> out) {
  if (charges.empty() || out.size() != charges.size() || cost < 0)
    co_return make_error_code(rate_limit_error::bad_charge);
  redis::client* client = &clients_.here(co_await asio::this_coro::executor);

  std::vector<std::string> keys;
  std::vector<std::string> args;
  keys.reserve(charges.size());
  args.reserve(1 + 3 * charges.size());
  args.push_back(std::to_string(cost));
  for (std::size_t i = 0; i < charges.size(); ++i) {
    const rate_limit_policy* p = charges[i].policy;
    if (p == nullptr) co_return make_error_code(rate_limit_error::bad_charge);
    std::string key = prefix_;
    key += p->name;
    key += ':';
    key += charges[i].key;
    for (std::size_t k = 0; k < keys.size(); ++k)
      if (keys[k] == key) co_return make_error_code(rate_limit_error::bad_charge);
    keys.push_back(std::move(key));
    if (p->algorithm == rate_limit_algorithm::token_bucket) {
      const gcra_params g = gcra_params_of(*p);
      args.emplace_back("g");
      args.push_back(std::to_string(g.emission_interval));
      args.push_back(std::to_string(g.tolerance));
    } else {
      args.emplace_back("w");
      args.push_back(std::to_string(p->limit));
      args.push_back(std::to_string(p->period.count()));
    }
  }

  const std::span<const std::string> key_span(keys);
  const std::span<const std::string> arg_span(args);
  auto reply = co_await client->eval(script_, key_span, arg_span);
  if (!reply) {
    core::log::debug("rate limit store unavailable", {{"error", reply.error().message()}});
    co_return make_error_code(rate_limit_error::store_unavailable);
  }
  const resp::value& v = *reply;
  const std::size_t expected = 5 * charges.size() + 1;
  const auto& e = v.elements();
  bool well_formed = v.kind() == resp::type::array && e.size() == expected;
  for (std::size_t i = 0; well_formed && i < e.size(); ++i)
    well_formed = e[i].kind() == resp::type::integer;
  if (!well_formed) {
    // A script error (a Redis without Lua, a read-only replica) or a reply
    // of another shape: the store cannot decide.
    core::log::warn("rate limit store: unexpected reply", {{"reply", resp::describe(v)}});
    co_return make_error_code(rate_limit_error::store_unavailable);
  }
  for (std::size_t i = 0; i < charges.size(); ++i) {
    const resp::value* r = &e[5 * i];
    rate_limit_decision& d = out[i];
    d.allowed = r[0].integer_value() == 1;
    d.over_capacity = r[1].integer_value() == 1;
    d.remaining = r[2].integer_value();
    d.reset = std::chrono::microseconds(r[3].integer_value());
    const std::int64_t retry = r[4].integer_value();
    d.retry_after = std::chrono::microseconds(retry > 0 ? retry : 0);
  }
  co_return e.back().integer_value() == 1;
}

}  // namespace trellis::gateway
