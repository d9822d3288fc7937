#include "trellis/gateway/ip_filter.hpp"

#include <string>
#include <system_error>

#include "trellis/core/log.hpp"
#include "trellis/http/json.hpp"

namespace trellis::gateway {

std::string_view to_string(ip_filter::verdict v) noexcept {
  switch (v) {
    case ip_filter::verdict::allowed: return "allowed";
    case ip_filter::verdict::denied: return "denied";
    case ip_filter::verdict::not_allowed: return "not_allowed";
    case ip_filter::verdict::bad_client_ip: return "bad_client_ip";
  }
  return "unknown";
}

ip_filter::ip_filter(const ip_filter_options& options)
    : allow_(options.allow, "ip_filter.allow"),
      deny_(options.deny, "ip_filter.deny"),
      attribute_(options.client_ip_attribute),
      log_(options.log_refusals) {}

ip_filter::verdict ip_filter::check(const asio::ip::address& a) const noexcept {
  if (deny_.contains(a)) return verdict::denied;
  if (!allow_.empty() && !allow_.contains(a)) return verdict::not_allowed;
  return verdict::allowed;
}

std::optional<asio::ip::address> ip_filter::client_address(const http::request& req) const {
  if (attribute_.empty() || !req.has_attribute(attribute_)) return req.remote_endpoint().address();
  // Strict: a plain address, as make_address reads it. Brackets, ports or
  // a list ("1.2.3.4, 10.0.0.1") mean the setter did not do its job.
  std::error_code ec;
  const std::string text(req.attribute(attribute_));
  auto a = asio::ip::make_address(text, ec);
  if (ec) return std::nullopt;
  return a;
}

http::filter_status ip_filter::judge(const http::request& req, http::response& res) const {
  const auto address = client_address(req);
  const verdict v = address ? check(*address) : verdict::bad_client_ip;
  if (v == verdict::allowed) return http::filter_status::proceed;
  if (log_) {
    const std::string shown =
        address ? address->to_string()
                : "attribute " + attribute_ + "=" + std::string(req.attribute(attribute_));
    core::log::info("ip_filter refused", {{"address", shown},
                                          {"rule", to_string(v)},
                                          {"method", req.method_text()},
                                          {"target", req.target()}});
  }
  // Which rule refused is in the log, not in the answer: a client probing
  // the lists learns nothing beyond "no".
  http::set_problem(res, 403, "Forbidden", "requests from this address are not allowed");
  return http::filter_status::respond;
}

asio::awaitable<http::filter_status> ip_filter::before(http::request& req, http::response& res) {
  co_return judge(req, res);
}

}  // namespace trellis::gateway
