// Forward-proxy settings for the HTTP client, read from the environment the
// way curl and most HTTP clients read it: which proxy a request goes
// through, which hosts bypass it (NO_PROXY), and the Proxy-Authorization
// value for a proxy URL with credentials (RFC 9110 §11.7.1, Basic scheme
// of RFC 7617).
//
// Variables, lower-case winning over upper-case when both are set and
// non-empty (an empty value counts as unset):
//   http_proxy  / HTTP_PROXY    proxy for http:// (and ws://) targets
//   https_proxy / HTTPS_PROXY   proxy for https:// (and wss://) targets
//   no_proxy    / NO_PROXY      hosts that go direct (see proxy_for)
// HTTP_PROXY in upper case is ignored when REQUEST_METHOD is set: a CGI
// program gets every request header as an HTTP_* variable, so a request
// carrying "Proxy: evil:8080" would otherwise route the program's own
// outgoing requests through the attacker ("httpoxy", CVE-2016-5385). curl
// never reads HTTP_PROXY at all; Go applies the same CGI rule as here.
//
// A proxy value without a scheme ("proxy.corp:3128") means http://. A
// proxy URL without a port uses its scheme's default (80, or 443 for an
// https:// proxy), as Go and Python do; curl assumes 1080. A value that is
// not an http:// or https:// URL with a host is ignored with a warning in
// proxy_config::warnings, and the requests it was meant for go direct —
// the caller should log the warnings, since silently going direct can
// break (or leak past) a network policy.
//
// Thread-safety: proxy_config is a value; the functions are pure apart
// from process_env, which reads the process environment (std::getenv: not
// safe against a concurrent setenv).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/codec/url.hpp"
#include "trellis/core/result.hpp"

namespace trellis::http {

// Reads one environment variable: its value, or nullopt when it is unset.
using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;

// The real process environment, through std::getenv.
std::optional<std::string> process_env(std::string_view name);

struct proxy_config {
  std::optional<url> http_proxy;   // for http:// and ws:// targets
  std::optional<url> https_proxy;  // for https:// and wss:// targets (tunnelled with CONNECT)
  // NO_PROXY entries, trimmed and lower-cased, empty ones dropped:
  // "*", "example.com", ".example.com", "example.com:8080", "10.0.0.0/8",
  // "::1", "[::1]:8080".
  std::vector<std::string> no_proxy;
  // Why a variable that was set was not used, one line each (a malformed
  // proxy URL, HTTP_PROXY under CGI). For the caller to log.
  std::vector<std::string> warnings;
};

// Builds the configuration from the variables above, read through
// `lookup`. REQUIRES: `lookup` is callable.
proxy_config proxy_config_from_env(const env_lookup& lookup);

// The proxy a request to `target` goes through: config.http_proxy for
// http and ws targets, config.https_proxy for https and wss, nullptr for
// other schemes, when that proxy is unset, or when NO_PROXY matches. The
// pointer points into `config`.
//
// NO_PROXY matching follows curl (7.86 and later, which added CIDR), with
// two readings taken from Go where curl is narrower: "*" counts anywhere
// in the list (curl: only as the whole value), and entries may name a
// port. Case-insensitive:
//   "*"                   every host goes direct;
//   "example.com"         example.com and its subdomains (a.example.com),
//   ".example.com"        the same (the leading dot changes nothing; "*."
//                         is read as "."); never "badexample.com";
//   "example.com:8080"    the same hosts, only on port 8080 (the target's
//                         effective port);
//   "192.168.1.10", "::1", "[::1]"
//                         that IP address exactly (compared as addresses:
//                         "::1" matches "0:0::1"), on any port;
//   "[::1]:8080", "192.168.1.10:8080"
//                         that address on that port;
//   "10.0.0.0/8", "fd00::/8"
//                         any address in that CIDR block.
// A name entry never matches an IP literal target and the reverse; an
// entry that is none of the above (a bad CIDR prefix, a bad port) matches
// nothing. A trailing '.' on the host or the entry is ignored.
const url* proxy_for(const proxy_config& config, const url& target);

// Whether NO_PROXY entries `no_proxy` (as in proxy_config) send `target`
// direct. proxy_for uses it; exposed for tests and diagnostics.
bool bypasses_proxy(const std::vector<std::string>& no_proxy, const url& target);

// The Proxy-Authorization value for `proxy`: "Basic " +
// base64(user ":" password) from its userinfo, each part percent-decoded
// (RFC 7617 §2). nullopt when the URL has no userinfo; a userinfo without
// ':' is a user with an empty password. Errors: url_error::bad_userinfo
// when the decoded user holds ':' (it would shift the split) or either
// part a control character (RFC 7617 §2 forbids them); the errors of
// percent_decode.
result<std::optional<std::string>> proxy_authorization(const url& proxy);

}  // namespace trellis::http
