#include "trellis/proxy/forwarding.hpp"

#include <algorithm>
#include <vector>

#include "trellis/codec/ascii.hpp"

namespace trellis::proxy {

namespace {

asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A Forwarded parameter value: a token as is, anything else quoted
// (RFC 7239 §4: value = token / quoted-string).
std::string forwarded_value(std::string_view v) {
  if (!v.empty() && std::all_of(v.begin(), v.end(), is_tchar)) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// Joins an existing list value and a new element.
std::string appended(std::optional<std::string_view> existing, std::string_view element) {
  if (!existing || existing->empty()) return std::string(element);
  std::string out(*existing);
  out += ", ";
  out += element;
  return out;
}

// The single value of a list field that may span several lines.
std::optional<std::string> joined(const http::fields& f, std::string_view name) {
  const auto lines = f.get_all(name);
  if (lines.empty()) return std::nullopt;
  std::string out;
  for (std::string_view line : lines) {
    if (line.empty()) continue;
    if (!out.empty()) out += ", ";
    out += line;
  }
  return out;
}

void set_list(http::fields& f, std::string_view name, bool keep, std::string_view element) {
  std::optional<std::string> existing;
  if (keep) existing = joined(f, name);
  f.erase(name);
  const std::string value =
      existing ? appended(std::string_view(*existing), element) : std::string(element);
  (void)f.add(name, value);
}

}  // namespace

void remove_hop_by_hop(http::fields& f) {
  // The fields Connection names go first, while it is still there.
  std::vector<std::string> named;
  for (std::string_view line : f.get_all("Connection")) {
    while (!line.empty()) {
      const std::size_t comma = line.find(',');
      std::string_view token = codec::trim_ows(line.substr(0, comma));
      line = comma == std::string_view::npos ? std::string_view{} : line.substr(comma + 1);
      if (!token.empty()) named.emplace_back(token);
    }
  }
  for (const auto& name : named) f.erase(name);
  for (std::string_view name :
       {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade"})
    f.erase(name);
}

std::string forwarded_for(const asio::ip::address& a) {
  return unmapped(a).to_string();
}

std::string forwarded_node(const asio::ip::address& a) {
  const auto u = unmapped(a);
  if (u.is_v4()) return u.to_string();
  return "\"[" + u.to_string() + "]\"";
}

void append_via(http::fields& f, int version_minor, std::string_view pseudonym) {
  if (pseudonym.empty()) return;
  std::string element = version_minor == 0 ? "1.0 " : "1.1 ";
  element += pseudonym;
  set_list(f, "Via", true, element);
}

void set_forwarding_fields(http::fields& f, const downstream_info& d,
                           const forwarding_options& options) {
  const bool trusted = options.trusted_proxies.contains(d.peer);
  const std::string_view proto = d.secure ? "https" : "http";
  if (options.x_forwarded) {
    set_list(f, "X-Forwarded-For", trusted, forwarded_for(d.peer));
    // Proto and Host describe the original request: a trusted proxy's
    // values stand; otherwise this proxy's view replaces them.
    if (!trusted || !f.contains("X-Forwarded-Proto")) {
      f.erase("X-Forwarded-Proto");
      (void)f.add("X-Forwarded-Proto", proto);
    }
    if (!trusted || !f.contains("X-Forwarded-Host")) {
      f.erase("X-Forwarded-Host");
      if (!d.host.empty()) (void)f.add("X-Forwarded-Host", d.host);
    }
  }
  if (options.forwarded) {
    std::string element = "for=" + forwarded_node(d.peer);
    if (!d.host.empty()) element += ";host=" + forwarded_value(d.host);
    element += ";proto=";
    element += proto;
    set_list(f, "Forwarded", trusted, element);
  }
  append_via(f, d.version_minor, options.via);
}

}  // namespace trellis::proxy
