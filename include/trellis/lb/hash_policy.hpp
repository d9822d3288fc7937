// What a consistent-hashing policy hashes: the client's IP, a request
// header, a cookie or the path (nginx's `hash $key consistent`, HAProxy's
// `balance source|hdr(name)|uri`, Envoy's hash_policy). The result is the
// request_context::hash that ring_hash and maglev place.
//
// Kept free of the HTTP types so that it stays a pure function of views:
// the proxy asks header_needed() which request header to look up, and
// passes its value with the client address and the path to key(). A
// request that lacks what the policy hashes on (no such header or cookie)
// has no key, and the balancer picks at random for it, as Envoy does —
// pinning every such request to one host would overload it.
//
// Thread-safety: an immutable value after parsing; key() is const and pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trellis::lb {

enum class hash_source : std::uint8_t { client_ip, header, cookie, path };

struct hash_policy {
  hash_source source = hash_source::client_ip;
  // The header or cookie name for source header or cookie; empty otherwise.
  std::string name;

  // The request header whose value key() wants: `name` for a header,
  // "Cookie" for a cookie, "" for client_ip and path.
  std::string_view header_needed() const noexcept;

  // The request's hash key, or nullopt when it has none. `client_ip` is the
  // client's address without its port (so one client keeps its host across
  // connections); `path` excludes the query; `header_value` is the value of
  // header_needed() ("" when absent).
  std::optional<std::uint64_t> key(std::string_view client_ip, std::string_view path,
                                   std::string_view header_value) const;
};

// Parses "client_ip", "path", "header:<name>" or "cookie:<name>". Throws
// core::config_error naming "lb.hash_on" for anything else or an empty
// name.
hash_policy parse_hash_policy(std::string_view text);

}  // namespace trellis::lb
