#include "trellis/gateway/transform.hpp"

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "trellis/codec/ascii.hpp"
#include "trellis/core/error.hpp"
#include "trellis/http/json.hpp"

namespace trellis::gateway {

namespace {

using codec::iequals;

// Fields that frame the message or belong to one hop (RFC 9110 §7.6.1,
// RFC 9112 §6-7): the server writes them from what it actually sends, so
// a rule that touched them would corrupt the framing or be overridden.
constexpr std::array<std::string_view, 8> k_protected = {
    "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
    "Upgrade",        "Trailer",           "TE",         "Proxy-Connection"};

bool is_protected(std::string_view name) noexcept {
  for (const auto p : k_protected)
    if (iequals(name, p)) return true;
  return false;
}

void check_name(std::string_view name, const std::string& field) {
  if (!http::is_field_name(name))
    throw core::config_error(field, "'" + std::string(name) + "' is not a field name (a token)");
  if (is_protected(name))
    throw core::config_error(
        field, "'" + std::string(name) + "' frames the message; the server writes it");
}

bool is_media_range(std::string_view v) noexcept {
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view type = v.substr(0, slash), sub = v.substr(slash + 1);
  return http::is_field_name(type) && (sub == "*" || http::is_field_name(sub));
}

// Whether the media type of `content_type` (parameters and whitespace
// dropped) is one of `allowed`, ignoring case; "type/*" allows a whole
// top-level type.
bool type_allowed(std::string_view content_type, const std::vector<std::string>& allowed) {
  const std::string_view type = codec::trim_ows(content_type.substr(0, content_type.find(';')));
  for (const std::string& entry : allowed) {
    if (entry.ends_with("/*")) {
      const std::string_view top(entry.data(), entry.size() - 1);  // "text/"
      if (type.size() > top.size() && iequals(type.substr(0, top.size()), top)) return true;
    } else if (iequals(type, entry)) {
      return true;
    }
  }
  return false;
}

}  // namespace

void validate(const transform_options& o, std::string_view prefix) {
  const std::string p(prefix);
  for (std::size_t i = 0; i < o.response_headers.size(); ++i) {
    const header_rule& r = o.response_headers[i];
    const std::string at = p + ".response_headers[" + std::to_string(i) + "]";
    check_name(r.name, at + ".name");
    switch (r.action) {
      case header_action::add:
      case header_action::set:
        if (!http::is_field_value(r.value))
          throw core::config_error(at + ".value", "control characters are not allowed");
        break;
      case header_action::rename: check_name(r.value, at + ".value"); break;
      case header_action::remove: break;
    }
  }
  for (std::size_t i = 0; i < o.allowed_content_types.size(); ++i) {
    if (!is_media_range(o.allowed_content_types[i]))
      throw core::config_error(
          p + ".allowed_content_types[" + std::to_string(i) + "]",
          "'" + o.allowed_content_types[i] + "' is not type/subtype or type/* (no parameters)");
  }
}

void apply_header_rules(const std::vector<header_rule>& rules, http::fields& headers) {
  for (const header_rule& r : rules) {
    switch (r.action) {
      case header_action::add: (void)headers.add(r.name, r.value); break;
      case header_action::set: (void)headers.set(r.name, r.value); break;
      case header_action::remove: headers.erase(r.name); break;
      case header_action::rename: {
        if (!headers.contains(r.name)) break;
        // Copies first: the views die with the erase.
        std::vector<std::string> values;
        for (const std::string_view v : headers.get_all(r.name)) values.emplace_back(v);
        headers.erase(r.name);
        for (const auto& v : values) (void)headers.add(r.value, v);
        break;
      }
    }
  }
}

transform_middleware::transform_middleware(transform_options options)
    : options_(std::move(options)) {
  validate(options_);
  for (const auto& t : options_.allowed_content_types) {
    if (!accept_list_.empty()) accept_list_ += ", ";
    accept_list_ += t;
  }
}

asio::awaitable<http::filter_status> transform_middleware::before(http::request& req,
                                                                  http::response& res) {
  const http::request_head& head = req.head();
  if (options_.max_request_body && head.framing == http::framing::content_length &&
      head.content_length > *options_.max_request_body) {
    const nlohmann::json extensions = {{"max_body", *options_.max_request_body}};
    http::set_problem(res, 413, "Content Too Large",
                      "the request body is larger than this route accepts", extensions);
    // The client may be sending the body already; reading it to keep the
    // connection would be the cost the limit exists to avoid.
    res.close = true;
    co_return http::filter_status::respond;
  }
  if (!options_.allowed_content_types.empty() && req.has_body()) {
    const std::string_view type = req.header("Content-Type");
    if (type.empty() || !type_allowed(type, options_.allowed_content_types)) {
      http::set_problem(res, 415, "Unsupported Media Type",
                        "the request body must be one of: " + accept_list_);
      if (req.method() == http::method::post) (void)res.headers.set("Accept-Post", accept_list_);
      if (req.method() == http::method::patch) (void)res.headers.set("Accept-Patch", accept_list_);
      co_return http::filter_status::respond;
    }
  }
  co_return http::filter_status::proceed;
}

asio::awaitable<void> transform_middleware::after(http::request&, http::response& res) {
  apply_header_rules(options_.response_headers, res.headers);
  co_return;
}

}  // namespace trellis::gateway
