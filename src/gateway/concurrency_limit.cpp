#include "trellis/gateway/concurrency_limit.hpp"

#include <cassert>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "trellis/core/error.hpp"
#include "trellis/http/json.hpp"

namespace trellis::gateway {

void validate(const concurrency_limit_options& options, std::string_view prefix) {
  if (options.max_in_flight < 1)
    throw core::config_error(std::string(prefix) + ".max_in_flight", "must be >= 1");
}

namespace {
const concurrency_limit_options& checked(const concurrency_limit_options& o) {
  validate(o);
  return o;
}
}  // namespace

concurrency_limiter::concurrency_limiter(concurrency_limit_options options)
    : options_(checked(options)) {}

bool concurrency_limiter::try_acquire() noexcept {
  std::uint32_t current = in_flight_.load(std::memory_order_relaxed);
  // Raise the count only from a value below the limit. Acquire on success
  // pairs with release() so that what the previous holder did happens
  // before what this one does (not needed by the limiter itself, but
  // cheap, and what a user of a semaphore expects).
  while (current < options_.max_in_flight) {
    if (in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
      admitted_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void concurrency_limiter::release() noexcept {
  [[maybe_unused]] const std::uint32_t before = in_flight_.fetch_sub(1, std::memory_order_release);
  assert(before > 0 && "release() without a matching try_acquire()");
}

concurrency_limit_middleware::concurrency_limit_middleware(
    std::shared_ptr<concurrency_limiter> limiter, concurrency_limit_middleware_options options)
    : limiter_(std::move(limiter)),
      options_(std::move(options)),
      attribute_("concurrency_limit:" + options_.name) {}

asio::awaitable<http::filter_status> concurrency_limit_middleware::before(http::request& req,
                                                                          http::response& res) {
  if (limiter_->try_acquire()) {
    req.set_attribute(attribute_, "1");
    co_return http::filter_status::proceed;
  }
  const nlohmann::json extensions = {{"upstream", options_.name}, {"limit", limiter_->limit()}};
  http::set_problem(res, 503, "Service Unavailable", "too many requests in flight to this upstream",
                    extensions);
  co_return http::filter_status::respond;
}

asio::awaitable<void> concurrency_limit_middleware::after(http::request& req, http::response&) {
  // Only a request that took a slot gives one back, and only once.
  if (req.attribute(attribute_) != "1") co_return;
  req.set_attribute(attribute_, "");
  limiter_->release();
}

}  // namespace trellis::gateway
