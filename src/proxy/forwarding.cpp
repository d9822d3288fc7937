#include "trellis/proxy/forwarding.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <string>

#include "trellis/codec/ascii.hpp"

namespace trellis::proxy {

namespace {

asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

// The text of an address. IPv4, the usual peer, is formatted here:
// asio's to_string goes through inet_ntop, which formats with sprintf, and
// that showed up in every proxied request's cost. At most 15 characters,
// so the string needs no allocation either.
std::string address_text(const asio::ip::address& a) {
  if (!a.is_v4()) return a.to_string();
  const auto bytes = a.to_v4().to_bytes();
  char text[16];
  char* p = text;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) *p++ = '.';
    p = std::to_chars(p, text + sizeof text, bytes[i]).ptr;
  }
  return std::string(text, p);
}

// The fields that describe one connection only (Connection first:
// remove_hop_by_hop relies on it).
constexpr std::string_view hop_by_hop[] = {"Connection", "Keep-Alive",        "Proxy-Connection",
                                           "TE",         "Transfer-Encoding", "Upgrade"};

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

// Replaces the list field `name` (which may span several lines) with one
// line: its elements when `keep`, then `element`. Runs for every proxied
// request, so the value is built in a per-thread buffer that keeps its
// storage: no allocation once warm.
void set_list(http::fields& f, std::string_view name, bool keep, std::string_view element) {
  thread_local std::string value;
  value.clear();
  bool present = false;  // erasing costs more than looking
  for (const auto& line : f) {
    if (!codec::iequals(line.name, name)) continue;
    present = true;
    if (!keep || line.value.empty()) continue;
    value.append(line.value);
    value.append(", ");
  }
  value.append(element);
  if (present) f.erase(name);
  (void)f.add(name, value);
}

}  // namespace

void remove_hop_by_hop(http::fields& f) {
  // One look at every line says which hop-by-hop fields are there, so only
  // those are erased (each erase is a pass over the lines).
  unsigned present = 0;
  for (const auto& line : f) {
    for (std::size_t k = 0; k < std::size(hop_by_hop); ++k)
      if (codec::iequals(line.name, hop_by_hop[k])) present |= 1u << k;
  }
  if (present == 0) return;
  if (present & 1u) {  // Connection: the fields it names go first, while it is there
    // Its values are copied aside (erasing may move the lines they sit in)
    // into a per-thread buffer that keeps its storage.
    thread_local std::string named;
    named.clear();
    for (const auto& line : f) {
      if (!codec::iequals(line.name, "Connection")) continue;
      named.append(line.value);
      named.push_back(',');
    }
    for (std::string_view rest = named; !rest.empty();) {
      const std::size_t comma = rest.find(',');
      const std::string_view token = codec::trim_ows(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (!token.empty()) f.erase(token);
    }
  }
  for (std::size_t k = 0; k < std::size(hop_by_hop); ++k)
    if (present & (1u << k)) f.erase(hop_by_hop[k]);
}

bool is_hop_by_hop(std::string_view name) noexcept {
  return std::any_of(std::begin(hop_by_hop), std::end(hop_by_hop),
                     [&](std::string_view h) { return codec::iequals(name, h); });
}

std::string forwarded_for(const asio::ip::address& a) {
  return address_text(unmapped(a));
}

std::string forwarded_node(const asio::ip::address& a) {
  const auto u = unmapped(a);
  if (u.is_v4()) return address_text(u);
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
    if (const bool there = f.contains("X-Forwarded-Proto"); !trusted || !there) {
      if (there) f.erase("X-Forwarded-Proto");
      (void)f.add("X-Forwarded-Proto", proto);
    }
    if (const bool there = f.contains("X-Forwarded-Host"); !trusted || !there) {
      if (there) f.erase("X-Forwarded-Host");
      if (!d.host.empty()) (void)f.add("X-Forwarded-Host", d.host);
    }
  }
  if (options.forwarded) {
    thread_local std::string element;  // keeps its storage, as set_list's
    element = "for=";
    element += forwarded_node(d.peer);
    if (!d.host.empty()) {
      element += ";host=";
      element += forwarded_value(d.host);
    }
    element += ";proto=";
    element += proto;
    set_list(f, "Forwarded", trusted, element);
  }
  append_via(f, d.version_minor, options.via);
}

}  // namespace trellis::proxy
