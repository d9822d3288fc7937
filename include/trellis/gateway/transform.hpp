// Transformations: response header rules and request admission checks,
// the "request/response transformer" and "request size limiting" plugins
// of Kong, nginx's add_header / proxy_hide_header, Envoy's
// response_headers_to_add / _to_remove.
//
// On the way out, after() applies an ordered list of rules to the
// response fields (RFC 9110 §5):
//   add     appends a line (another value for a list field, a second
//           Set-Cookie);
//   set     replaces every line of the name with one line;
//   remove  drops every line of the name (Server, X-Powered-By, ...);
//   rename  moves every line of the name to a new name, values and order
//           kept, after the other lines.
// They run for every response that passed through this middleware,
// including the router's own 404/405 and the answers of middleware that
// ran after it, so security headers (Strict-Transport-Security,
// X-Content-Type-Options) are on errors too.
//
// On the way in, before() refuses, without calling the handler:
//   413  a declared Content-Length above max_request_body (RFC 9110
//        §15.5.14), and closes the connection after answering, since the
//        client may already be sending a body nobody will read. A chunked
//        body declares no length: its limit is the server's own
//        (server_options::limits.max_body, enforced as the body is read),
//        which this middleware cannot check in advance;
//   415  a request carrying a body (Content-Length > 0 or chunked, whatever
//        the method) whose Content-Type is absent or not in
//        allowed_content_types (§15.5.16), media types compared without
//        parameters and case-insensitively. A POST answer lists the
//        allowed types in Accept-Post, a PATCH answer in Accept-Patch
//        (RFC 5789 §3.1).
// Request header rewriting and path rewriting for the upstream are the
// reverse proxy's job (proxy/reverse_proxy.hpp), not this one's.
//
// Configuration is checked when the middleware is built: a field name that
// is not a token (§5.1), a value with control characters (§5.5), a rule on
// a field that frames the message (Content-Length, Transfer-Encoding,
// Connection and the other hop-by-hop fields, which are the server's to
// write) or a malformed media type throws core::config_error naming the
// field ("transform.response_headers[2].name").
//
// Thread-safety: the middleware is shared by every worker and holds only
// its immutable options.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/http/router.hpp"

namespace trellis::gateway {

enum class header_action : std::uint8_t { add, set, remove, rename };

struct header_rule {
  header_action action = header_action::set;
  std::string name;
  // add, set: the value. rename: the new name. remove: unused.
  std::string value;

  static header_rule add(std::string name, std::string value) {
    return {header_action::add, std::move(name), std::move(value)};
  }
  static header_rule set(std::string name, std::string value) {
    return {header_action::set, std::move(name), std::move(value)};
  }
  static header_rule remove(std::string name) {
    return {header_action::remove, std::move(name), {}};
  }
  static header_rule rename(std::string from, std::string to) {
    return {header_action::rename, std::move(from), std::move(to)};
  }
};

struct transform_options {
  // Applied to every response, in order.
  std::vector<header_rule> response_headers;
  // Largest Content-Length accepted; beyond it 413. nullopt (the default):
  // no check here, only the server's own max_body (8 MiB by default). A
  // route that takes small JSON documents sets a small limit, so that a
  // large upload is refused before a byte of it is read.
  std::optional<std::uint64_t> max_request_body;
  // Media types a request body may have ("type/subtype", or "type/*").
  // Empty (the default): any, and a body without Content-Type too.
  std::vector<std::string> allowed_content_types;
};

// Throws core::config_error naming the field (see above).
void validate(const transform_options& options, std::string_view prefix = "transform");

// Applies `rules` to `headers`, in order. REQUIRES: rules validated.
void apply_header_rules(const std::vector<header_rule>& rules, http::fields& headers);

class transform_middleware final : public http::middleware {
 public:
  // Throws core::config_error (see validate()).
  explicit transform_middleware(transform_options options);

  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;
  asio::awaitable<void> after(http::request& req, http::response& res) override;

 private:
  transform_options options_;
  std::string accept_list_;  // allowed_content_types joined by ", "
};

}  // namespace trellis::gateway
