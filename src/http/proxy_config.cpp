#include "trellis/http/proxy_config.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/base64.hpp"

namespace trellis::http {
namespace {

// --- reading the variables -----------------------------------------------------------

// A variable's value, with an empty value counted as unset (as curl does).
std::optional<std::string> non_empty(const env_lookup& lookup, std::string_view name) {
  auto v = lookup(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

std::string_view trim_space(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parses a proxy variable's value. Warnings name the variable, never the
// value: it may hold a password.
std::optional<url> parse_proxy(std::string_view variable, std::string_view value,
                               std::vector<std::string>& warnings) {
  value = trim_space(value);
  std::string text(value);
  if (value.find("://") == std::string_view::npos) text = "http://" + text;
  auto u = parse_url(text);
  if (!u) {
    warnings.push_back(std::string(variable) + " ignored: " + u.error().message());
    return std::nullopt;
  }
  if (u->scheme != "http" && u->scheme != "https") {
    warnings.push_back(std::string(variable) + " ignored: proxy scheme \"" + u->scheme +
                       "\" is not http or https");
    return std::nullopt;
  }
  return std::move(*u);
}

std::vector<std::string> split_no_proxy(std::string_view list) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t end = list.find_first_of(", \t", pos);
    if (end == std::string_view::npos) end = list.size();
    const std::string_view entry = list.substr(pos, end - pos);
    if (!entry.empty()) {
      std::string e(entry);
      for (char& c : e) c = codec::ascii_lower(c);
      out.push_back(std::move(e));
    }
    pos = end + 1;
  }
  return out;
}

// --- NO_PROXY matching ---------------------------------------------------------------

// An IPv4 or IPv6 address in network byte order.
struct ip_address {
  int family = 0;  // AF_INET or AF_INET6; 0 when the text is not an address
  std::array<unsigned char, 16> bytes{};
  std::size_t size() const noexcept { return family == AF_INET ? 4 : 16; }
};

ip_address parse_ip(std::string_view text) {
  ip_address a;
  if (text.size() > 45) return a;  // longer than any textual IPv6 address
  const std::string z(text);       // inet_pton wants a NUL-terminated string
  if (inet_pton(AF_INET, z.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, z.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
  }
  return a;
}

// Whether the first `bits` bits of `a` and `b` are equal.
bool same_prefix(const ip_address& a, const ip_address& b, unsigned bits) noexcept {
  if (a.family != b.family) return false;
  const std::size_t whole = bits / 8;
  for (std::size_t i = 0; i < whole; ++i)
    if (a.bytes[i] != b.bytes[i]) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (a.bytes[whole] & mask) == (b.bytes[whole] & mask);
}

// Decimal digits with a value of at most `max` (a port, a prefix length).
std::optional<std::uint32_t> parse_decimal(std::string_view digits, std::uint32_t max) noexcept {
  if (digits.empty() || digits.size() > 5) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

// One NO_PROXY entry taken apart: a host part and an optional port.
struct no_proxy_entry {
  std::string_view host;  // a name, an address or address/bits; brackets removed
  std::optional<std::uint32_t> port;
  bool valid = true;
};

no_proxy_entry split_entry(std::string_view e) {
  no_proxy_entry out;
  if (e.starts_with('[')) {  // "[::1]" or "[::1]:8080"
    const std::size_t close = e.find(']');
    if (close == std::string_view::npos) return {{}, {}, false};
    out.host = e.substr(1, close - 1);
    const std::string_view rest = e.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return {{}, {}, false};
      out.port = parse_decimal(rest.substr(1), 65535);
      if (!out.port) return {{}, {}, false};
    }
    return out;
  }
  const std::size_t colon = e.find(':');
  if (colon == std::string_view::npos || e.find(':', colon + 1) != std::string_view::npos) {
    out.host = e;  // a name, an IPv4 address, or an unbracketed IPv6 address (no port)
    return out;
  }
  out.host = e.substr(0, colon);  // "name:port" or "ipv4:port"
  out.port = parse_decimal(e.substr(colon + 1), 65535);
  if (!out.port) return {{}, {}, false};
  return out;
}

bool entry_matches(std::string_view entry, const url& target, std::string_view host,
                   const ip_address& target_ip) {
  const no_proxy_entry e = split_entry(entry);
  if (!e.valid || e.host.empty()) return false;
  if (e.port && *e.port != target.effective_port()) return false;

  // CIDR: "10.0.0.0/8", "fd00::/8".
  if (const std::size_t slash = e.host.find('/'); slash != std::string_view::npos) {
    const ip_address network = parse_ip(e.host.substr(0, slash));
    if (network.family == 0) return false;
    const auto bits =
        parse_decimal(e.host.substr(slash + 1), static_cast<std::uint32_t>(network.size() * 8));
    return bits && same_prefix(network, target_ip, *bits);
  }
  // An address: exact, compared as bytes.
  if (const ip_address a = parse_ip(e.host); a.family != 0)
    return same_prefix(a, target_ip, static_cast<unsigned>(a.size() * 8));
  // A name: the domain itself and its subdomains.
  if (target_ip.family != 0) return false;
  std::string_view name = e.host;
  if (name.starts_with("*.")) name.remove_prefix(1);
  if (name.starts_with('.')) name.remove_prefix(1);
  if (name.ends_with('.')) name.remove_suffix(1);
  if (name.empty()) return false;
  if (host.size() == name.size()) return codec::iequals(host, name);
  return host.size() > name.size() && host[host.size() - name.size() - 1] == '.' &&
         codec::iequals(host.substr(host.size() - name.size()), name);
}

}  // namespace

std::optional<std::string> process_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

proxy_config proxy_config_from_env(const env_lookup& lookup) {
  proxy_config config;
  const bool is_cgi = non_empty(lookup, "REQUEST_METHOD").has_value();

  if (auto v = non_empty(lookup, "http_proxy")) {
    config.http_proxy = parse_proxy("http_proxy", *v, config.warnings);
  } else if (auto upper = non_empty(lookup, "HTTP_PROXY")) {
    if (is_cgi) {
      config.warnings.emplace_back(
          "HTTP_PROXY ignored: REQUEST_METHOD is set, so it may come from a request's Proxy "
          "header (CGI, httpoxy); use http_proxy");
    } else {
      config.http_proxy = parse_proxy("HTTP_PROXY", *upper, config.warnings);
    }
  }

  if (auto v = non_empty(lookup, "https_proxy")) {
    config.https_proxy = parse_proxy("https_proxy", *v, config.warnings);
  } else if (auto upper = non_empty(lookup, "HTTPS_PROXY")) {
    config.https_proxy = parse_proxy("HTTPS_PROXY", *upper, config.warnings);
  }

  auto no_proxy = non_empty(lookup, "no_proxy");
  if (!no_proxy) no_proxy = non_empty(lookup, "NO_PROXY");
  if (no_proxy) config.no_proxy = split_no_proxy(*no_proxy);
  return config;
}

bool bypasses_proxy(const std::vector<std::string>& no_proxy, const url& target) {
  if (no_proxy.empty()) return false;
  std::string_view host = target.host;
  if (host.ends_with('.')) host.remove_suffix(1);
  ip_address target_ip;
  if (target.host_kind != host_type::name) target_ip = parse_ip(host);
  for (const std::string& entry : no_proxy) {
    if (entry == "*") return true;
    if (entry_matches(entry, target, host, target_ip)) return true;
  }
  return false;
}

const url* proxy_for(const proxy_config& config, const url& target) {
  const std::optional<url>* proxy = nullptr;
  if (target.scheme == "http" || target.scheme == "ws") {
    proxy = &config.http_proxy;
  } else if (target.scheme == "https" || target.scheme == "wss") {
    proxy = &config.https_proxy;
  } else {
    return nullptr;
  }
  if (!proxy->has_value() || bypasses_proxy(config.no_proxy, target)) return nullptr;
  return &**proxy;
}

result<std::optional<std::string>> proxy_authorization(const url& proxy) {
  if (proxy.userinfo.empty()) return std::optional<std::string>();
  const std::string_view userinfo = proxy.userinfo;
  const std::size_t colon = userinfo.find(':');
  auto user = percent_decode(userinfo.substr(0, colon), decode_mode::component);
  if (!user) return unexpected(user.error());
  auto password = percent_decode(
      colon == std::string_view::npos ? std::string_view{} : userinfo.substr(colon + 1),
      decode_mode::component);
  if (!password) return unexpected(password.error());

  auto is_control = [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b < 0x20 || b == 0x7F;
  };
  if (user->find(':') != std::string::npos) return unexpected(url_error::bad_userinfo);
  for (char c : *user + *password)
    if (is_control(c)) return unexpected(url_error::bad_userinfo);

  return std::optional<std::string>("Basic " + codec::base64_encode(*user + ":" + *password));
}

}  // namespace trellis::http
