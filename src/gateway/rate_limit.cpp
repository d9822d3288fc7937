#include "trellis/gateway/rate_limit.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <asio/ip/address.hpp>
#include <atomic>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>

#include "trellis/codec/http/fields.hpp"
#include "trellis/core/error.hpp"
#include "trellis/http/json.hpp"

namespace trellis::gateway {
namespace {

constexpr std::int64_t k_us_per_s = 1'000'000;

// The key that requests without one share (missing_key_action::shared).
// Real keys always start with "ip:", "sub:" or "hdr:", so it collides with
// none.
constexpr std::string_view k_shared_key = "none";

// Whole seconds, rounded up: a client told to wait this long is not early.
std::int64_t ceil_seconds(std::chrono::microseconds d) noexcept {
  const std::int64_t us = d.count();
  return us <= 0 ? 0 : (us + k_us_per_s - 1) / k_us_per_s;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += k_hex[digest[i] >> 4];
    out += k_hex[digest[i] & 15];
  }
  return out;
}

// RateLimit-Policy's item for one policy: q requests per w seconds. The
// draft's w is whole seconds; a period that is not is rounded up and q
// scaled to match (10 per 500 ms reads "q=20;w=1").
// 128-bit intermediates (a GCC/Clang extension; __extension__ keeps
// -Wpedantic quiet about it).
__extension__ typedef unsigned __int128 u128;

std::string policy_item(const rate_limit_policy& p) {
  const std::int64_t period = p.period.count();
  const std::int64_t w = (period + k_us_per_s - 1) / k_us_per_s;
  std::int64_t q = p.limit;
  if (w * k_us_per_s != period)
    q = static_cast<std::int64_t>(static_cast<u128>(p.limit) *
                                  static_cast<u128>(w * k_us_per_s) / static_cast<u128>(period));
  // Policy names are [A-Za-z0-9_.-] (validate), so the sf-string needs no
  // escaping.
  return "\"" + p.name + "\";q=" + std::to_string(q) + ";w=" + std::to_string(w);
}

std::string address_key(asio::ip::address a, unsigned ipv6_prefix) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v4()) return "ip:" + a.to_string();
  if (ipv6_prefix >= 128) return "ip:" + a.to_string();
  auto bytes = a.to_v6().to_bytes();
  for (unsigned i = 0; i < bytes.size(); ++i) {
    const unsigned first_bit = i * 8;
    if (first_bit >= ipv6_prefix) {
      bytes[i] = 0;
    } else if (first_bit + 8 > ipv6_prefix) {
      bytes[i] &= static_cast<unsigned char>(0xFF << (8 - (ipv6_prefix - first_bit)));
    }
  }
  return "ip:" + asio::ip::address_v6(bytes).to_string() + "/" + std::to_string(ipv6_prefix);
}

// Which decision the RateLimit field reports: on a refusal the refusing
// policy that makes the client wait longest (over capacity: forever);
// otherwise the one with the fewest requests left, then the longest reset.
std::size_t most_restrictive(std::span<const rate_limit_decision> d, bool allowed) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < d.size(); ++i) {
    const auto& a = d[i];
    const auto& b = d[best];
    bool better;
    if (allowed) {
      better = a.remaining < b.remaining || (a.remaining == b.remaining && a.reset > b.reset);
    } else if (a.allowed != b.allowed) {
      better = !a.allowed;
    } else if (a.over_capacity != b.over_capacity) {
      better = a.over_capacity;
    } else {
      better = a.retry_after > b.retry_after;
    }
    if (better) best = i;
  }
  return best;
}

std::string ratelimit_item(const rate_limit_policy& p, const rate_limit_decision& d) {
  return "\"" + p.name + "\";r=" + std::to_string(d.remaining) +
         ";t=" + std::to_string(ceil_seconds(d.reset));
}

std::atomic<std::uint64_t> instance_counter{0};

}  // namespace

struct rate_limiter::policy_metrics {
  core::counter* allowed = nullptr;
  core::counter* limited = nullptr;
  core::counter* store_errors = nullptr;
};

rate_limiter::rate_limiter(rate_limit_options options, std::shared_ptr<rate_limit_store> store)
    : options_(std::move(options)), store_(std::move(store)) {
  if (!store_) throw core::config_error("rate_limit.store", "a store is required");
  if (options_.policies.empty())
    throw core::config_error("rate_limit.policies", "at least one policy is required");
  std::unordered_set<std::string> names;
  for (std::size_t i = 0; i < options_.policies.size(); ++i) {
    const std::string field = "rate_limit.policies[" + std::to_string(i) + "]";
    validate(options_.policies[i], field);
    if (!names.insert(options_.policies[i].name).second)
      throw core::config_error(field + ".name",
                               "'" + options_.policies[i].name + "' is used by another policy");
  }
  if (options_.key == rate_limit_key::header && !http::is_field_name(options_.header))
    throw core::config_error("rate_limit.header", "a field name is required for a header key");
  if (options_.ipv6_prefix < 1 || options_.ipv6_prefix > 128)
    throw core::config_error("rate_limit.ipv6_prefix", "must be 1 to 128");
  if (options_.max_key_bytes < 16)
    throw core::config_error("rate_limit.max_key_bytes", "must be at least 16");

  for (const auto& p : options_.policies) {
    if (!policy_header_.empty()) policy_header_ += ", ";
    policy_header_ += policy_item(p);
  }
  attribute_name_ = "rate_limit.header." + std::to_string(instance_counter.fetch_add(1));

  metrics_.resize(options_.policies.size());
  if (options_.metrics != nullptr) {
    const std::string requests = options_.metrics_prefix + "_requests_total";
    const std::string errors = options_.metrics_prefix + "_store_errors_total";
    for (std::size_t i = 0; i < options_.policies.size(); ++i) {
      const std::string& name = options_.policies[i].name;
      auto& m = metrics_[i];
      m.allowed = &options_.metrics->add_counter(
          requests, "Requests a rate-limit policy decided on, by result.",
          {{"policy", name}, {"result", "allowed"}});
      m.limited = &options_.metrics->add_counter(
          requests, "Requests a rate-limit policy decided on, by result.",
          {{"policy", name}, {"result", "limited"}});
      m.store_errors = &options_.metrics->add_counter(
          errors, "Rate-limit decisions the store failed to make.", {{"policy", name}});
    }
  }
}

rate_limiter::~rate_limiter() = default;

std::string rate_limiter::key_of(const http::request& req) const {
  auto bounded = [this](std::string_view prefix, std::string_view value) {
    if (value.size() > options_.max_key_bytes)
      return std::string(prefix) + "sha256:" + sha256_hex(value);
    return std::string(prefix).append(value);
  };
  switch (options_.key) {
    case rate_limit_key::client_ip: {
      const std::string_view reported = req.attribute("client.ip");
      asio::ip::address a = req.remote_endpoint().address();
      if (!reported.empty()) {
        std::error_code ec;
        a = asio::ip::make_address(std::string(reported), ec);
        // Not an address (a proxy reported something odd): still a key,
        // just not a normalised one.
        if (ec) return bounded("ip:", reported);
      }
      if (a.is_unspecified()) return {};  // no peer address known
      return address_key(a, options_.ipv6_prefix);
    }
    case rate_limit_key::subject: {
      const std::string_view subject = req.attribute("auth.subject");
      if (subject.empty()) return {};
      std::string value(req.attribute("auth.method"));
      value.append(1, ':').append(subject);
      return bounded("sub:", value);
    }
    case rate_limit_key::header: {
      const std::string_view value = req.header(options_.header);
      if (value.empty()) return {};
      return bounded("hdr:", value);
    }
  }
  return {};
}

asio::awaitable<http::filter_status> rate_limiter::before(http::request& req, http::response& res) {
  std::string key = key_of(req);
  if (key.empty()) {
    if (options_.on_missing_key == missing_key_action::allow)
      co_return http::filter_status::proceed;
    if (options_.on_missing_key == missing_key_action::refuse) {
      http::set_problem(res, 403, "Forbidden", "the request carries no rate-limit key");
      co_return http::filter_status::respond;
    }
    key = k_shared_key;
  }

  std::int64_t cost = 1;
  if (options_.cost) cost = std::max<std::int64_t>(0, options_.cost(req));

  const std::size_t n = options_.policies.size();
  std::vector<rate_limit_charge> charges(n);
  std::vector<rate_limit_decision> decisions(n);
  for (std::size_t i = 0; i < n; ++i) {
    charges[i].policy = &options_.policies[i];
    charges[i].key = key;
  }
  const std::chrono::microseconds now =
      options_.clock ? options_.clock()
                     : std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now().time_since_epoch());
  // Named locals, not temporaries, in the co_await (a g++ 12 bug).
  const std::span<const rate_limit_charge> charge_span(charges);
  const std::span<rate_limit_decision> decision_span(decisions);
  const result<bool> verdict = co_await store_->acquire(charge_span, cost, now, decision_span);

  if (!verdict) {
    for (const auto& m : metrics_)
      if (m.store_errors != nullptr) m.store_errors->add();
    if (options_.fail_open) co_return http::filter_status::proceed;
    http::set_problem(res, 503, "Service Unavailable", "the rate limiter is unavailable");
    co_return http::filter_status::respond;
  }

  const bool allowed = *verdict;
  const std::size_t pick = most_restrictive(decisions, allowed);
  const rate_limit_policy& policy = options_.policies[pick];
  const rate_limit_decision& decision = decisions[pick];
  for (std::size_t i = 0; i < n; ++i) {
    core::counter* c =
        allowed ? metrics_[i].allowed : (decisions[i].allowed ? nullptr : metrics_[i].limited);
    if (c != nullptr) c->add();
  }

  if (allowed) {
    if (options_.headers_on_success)
      req.set_attribute(attribute_name_, ratelimit_item(policy, decision));
    co_return http::filter_status::proceed;
  }

  (void)res.headers.set("RateLimit-Policy", policy_header_);
  (void)res.headers.set("RateLimit", ratelimit_item(policy, decision));
  nlohmann::json extra;
  extra["policy"] = policy.name;
  if (decision.over_capacity) {
    http::set_problem(res, 429, "Too Many Requests",
                      "the request costs more than the policy ever admits at once", extra);
  } else {
    // Rounded up, and at least 1: "Retry-After: 0" would invite an
    // immediate retry that is still too early.
    const std::int64_t seconds = std::max<std::int64_t>(1, ceil_seconds(decision.retry_after));
    (void)res.headers.set("Retry-After", std::to_string(seconds));
    extra["retry_after"] = seconds;
    http::set_problem(res, 429, "Too Many Requests", "rate limit exceeded", extra);
  }
  co_return http::filter_status::respond;
}

asio::awaitable<void> rate_limiter::after(http::request& req, http::response& res) {
  if (!req.has_attribute(attribute_name_)) co_return;
  // add, not set: both are lists (RFC 8941 §3.1), so two limiters in one
  // chain report side by side.
  (void)res.headers.add("RateLimit-Policy", policy_header_);
  (void)res.headers.add("RateLimit", req.attribute(attribute_name_));
  co_return;
}

}  // namespace trellis::gateway
