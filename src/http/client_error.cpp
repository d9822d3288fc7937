#include "trellis/http/client_error.hpp"

#include <string>

namespace trellis::http {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.http.client"; }
  std::string message(int v) const override {
    switch (static_cast<client_error>(v)) {
      case client_error::resolve_failed: return "host name did not resolve";
      case client_error::connect_failed: return "could not connect to any address of the host";
      case client_error::tls_handshake_failed: return "TLS handshake failed";
      case client_error::resolve_timeout: return "name resolution timed out";
      case client_error::connect_timeout: return "connect timed out";
      case client_error::tls_timeout: return "TLS handshake timed out";
      case client_error::first_byte_timeout: return "no response before the first-byte deadline";
      case client_error::request_timeout: return "request exceeded its total deadline";
      case client_error::pool_wait_timeout: return "timed out waiting for a pooled connection";
      case client_error::read_timeout: return "the response body stalled past the read deadline";
      case client_error::connection_closed: return "connection closed before a full response";
      case client_error::response_too_large: return "response too large";
      case client_error::too_many_redirects: return "too many redirects";
      case client_error::bad_location: return "redirect without a valid Location";
      case client_error::insecure_redirect: return "redirect from https to http refused";
      case client_error::unsupported_scheme: return "URL scheme is not http or https";
      case client_error::proxy_refused: return "proxy refused the CONNECT request";
      case client_error::bad_url: return "invalid request URL";
    }
    return "unknown http client error";
  }
  // The deadline codes compare equal to std::errc::timed_out, so generic
  // code that checks for the portable condition recognises them.
  bool equivalent(int code, const std::error_condition& cond) const noexcept override {
    switch (static_cast<client_error>(code)) {
      case client_error::resolve_timeout:
      case client_error::connect_timeout:
      case client_error::tls_timeout:
      case client_error::first_byte_timeout:
      case client_error::request_timeout:
      case client_error::pool_wait_timeout:
      case client_error::read_timeout: return cond == std::errc::timed_out;
      default: return default_error_condition(code) == cond;
    }
  }
};

}  // namespace

const std::error_category& client_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace trellis::http
