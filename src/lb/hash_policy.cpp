// What consistent hashing hashes; see include/trellis/lb/hash_policy.hpp.
#include "trellis/lb/hash_policy.hpp"

#include <vector>

#include "trellis/codec/cookie.hpp"
#include "trellis/core/error.hpp"
#include "trellis/lb/policy.hpp"

namespace trellis::lb {

std::string_view hash_policy::header_needed() const noexcept {
  switch (source) {
    case hash_source::header: return name;
    case hash_source::cookie: return "Cookie";
    case hash_source::client_ip:
    case hash_source::path: break;
  }
  return {};
}

std::optional<std::uint64_t> hash_policy::key(std::string_view client_ip, std::string_view path,
                                              std::string_view header_value) const {
  switch (source) {
    case hash_source::client_ip:
      if (client_ip.empty()) return std::nullopt;
      return hash_key(client_ip);
    case hash_source::path: return hash_key(path);
    case hash_source::header:
      if (header_value.empty()) return std::nullopt;
      return hash_key(header_value);
    case hash_source::cookie: {
      std::vector<http::cookie> cookies;
      if (!http::parse_cookie_header(header_value, cookies)) return std::nullopt;
      const auto value = http::find_cookie(cookies, name);
      if (!value || value->empty()) return std::nullopt;
      return hash_key(*value);
    }
  }
  return std::nullopt;
}

hash_policy parse_hash_policy(std::string_view text) {
  auto named = [&](std::string_view prefix, hash_source source) -> std::optional<hash_policy> {
    if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
    const std::string_view name = text.substr(prefix.size());
    if (name.empty())
      throw core::config_error("lb.hash_on", "\"" + std::string(text) + "\" needs a name");
    return hash_policy{source, std::string(name)};
  };
  if (text == "client_ip") return {hash_source::client_ip, {}};
  if (text == "path") return {hash_source::path, {}};
  if (auto p = named("header:", hash_source::header)) return *p;
  if (auto p = named("cookie:", hash_source::cookie)) return *p;
  throw core::config_error("lb.hash_on", "\"" + std::string(text) +
                                             "\" is not client_ip, path, header:<name> or "
                                             "cookie:<name>");
}

}  // namespace trellis::lb
