#include "trellis/http/redirect.hpp"

#include <string_view>
#include <utility>

namespace trellis::http {
namespace {

// Fields that describe the body (RFC 9110 §8, the Fetch standard's
// "request-body-header names") or its framing (RFC 9112 §6): meaningless,
// and for framing dangerous, once the body is dropped.
constexpr std::string_view k_body_fields[] = {
    "Content-Type",     "Content-Length",   "Transfer-Encoding", "Content-Encoding",
    "Content-Language", "Content-Location", "Trailer",           "Expect",
};

// Fields that carry credentials for the origin (or, for
// Proxy-Authorization, for the proxy the client chose for that origin).
constexpr std::string_view k_credential_fields[] = {
    "Authorization",
    "Cookie",
    "Proxy-Authorization",
};

// Whether the method is rewritten to GET (and the body dropped).
bool becomes_get(int status, std::string_view method) noexcept {
  switch (status) {
    case 301:
    case 302: return method == "POST";
    case 303: return method != "HEAD";
    default: return false;  // 307, 308 keep the method
  }
}

}  // namespace

result<redirect_decision> decide_redirect(const redirect_request& current, int status,
                                          std::optional<std::string_view> location,
                                          std::size_t redirects_followed,
                                          const redirect_options& options) {
  redirect_decision decision;
  if (!options.follow || !is_followed_redirect(status)) return decision;

  if (!location || location->empty()) return unexpected(client_error::bad_location);
  auto target = resolve_reference(current.target, *location);
  if (!target) return unexpected(client_error::bad_location);
  if (target->scheme != "http" && target->scheme != "https")
    return unexpected(client_error::unsupported_scheme);
  if (current.target.scheme == "https" && target->scheme == "http" && !options.allow_https_to_http)
    return unexpected(client_error::insecure_redirect);
  if (redirects_followed >= options.max_redirects)
    return unexpected(client_error::too_many_redirects);

  redirect_request& next = decision.next;
  next.headers = current.headers;
  next.has_body = current.has_body;
  if (becomes_get(status, current.method)) {
    next.method = "GET";
    next.has_body = false;
    for (std::string_view name : k_body_fields) next.headers.erase(name);
  } else {
    next.method = current.method;
  }

  decision.cross_origin = target->origin() != current.target.origin();
  if (decision.cross_origin) {
    for (std::string_view name : k_credential_fields) next.headers.erase(name);
    target->userinfo.clear();
  }
  // Host names the old authority; the caller writes the new one.
  next.headers.erase("Host");

  next.target = std::move(*target);
  decision.action = redirect_action::follow;
  return decision;
}

}  // namespace trellis::http
