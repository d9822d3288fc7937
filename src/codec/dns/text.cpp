#include "trellis/codec/dns/text.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::dns {
namespace {

std::error_code bad_rdata() {
  return make_error_code(error::bad_rdata);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A decimal number of at most `max`, digits only (no sign, no spaces).
template <class T>
std::optional<T> parse_number(std::string_view text, std::uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  for (char c : text)
    if (!is_digit(c)) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v > max) return std::nullopt;
  return static_cast<T>(v);
}

// Zone-file escapes to bytes: \X is X, \DDD is the octet DDD (at most 255).
std::optional<std::string> unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (++i == text.size()) return std::nullopt;  // a lone backslash at the end
    if (is_digit(text[i])) {
      if (i + 2 >= text.size() || !is_digit(text[i + 1]) || !is_digit(text[i + 2]))
        return std::nullopt;
      const int v = (text[i] - '0') * 100 + (text[i + 1] - '0') * 10 + (text[i + 2] - '0');
      if (v > 255) return std::nullopt;
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

void append_quoted(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03u", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
}

void append_hex(std::string& out, std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  for (const std::uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Types whose rdata the codec holds as a struct (everything else is raw).
bool is_struct_type(rtype t) {
  switch (t) {
    case rtype::a:
    case rtype::aaaa:
    case rtype::ns:
    case rtype::cname:
    case rtype::soa:
    case rtype::ptr:
    case rtype::mx:
    case rtype::txt:
    case rtype::srv:
    case rtype::caa: return true;
    default: return false;
  }
}

// RFC 3597 §5: "\# <length> <hex>...", the hex possibly split into several
// words. For a type the codec understands, the octets are decoded as that
// type's rdata (by wrapping them in a one-record message), so the generic
// form and the type's own form give the same value.
result<rdata> parse_generic(rtype type, std::span<const rdata_token> fields) {
  if (fields.size() < 2) return unexpected(bad_rdata());
  auto length = parse_number<std::size_t>(fields[1].text, 65535);
  if (!length) return unexpected(bad_rdata());
  std::vector<std::uint8_t> bytes;
  bytes.reserve(*length);
  for (const auto& f : fields.subspan(2)) {
    if (f.quoted || f.text.size() % 2 != 0) return unexpected(bad_rdata());
    for (std::size_t i = 0; i < f.text.size(); i += 2) {
      const int hi = hex_value(f.text[i]), lo = hex_value(f.text[i + 1]);
      if (hi < 0 || lo < 0) return unexpected(bad_rdata());
      bytes.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    }
  }
  if (bytes.size() != *length) return unexpected(bad_rdata());
  if (!is_struct_type(type)) return rdata{raw_data{std::move(bytes)}};

  std::vector<std::uint8_t> wire = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};  // one answer
  const auto t = static_cast<std::uint16_t>(type);
  const auto n = static_cast<std::uint16_t>(bytes.size());
  const std::uint8_t rr[] = {0,  // root owner
                             static_cast<std::uint8_t>(t >> 8),
                             static_cast<std::uint8_t>(t & 0xff),
                             0,
                             1,  // class IN
                             0,
                             0,
                             0,
                             0,  // TTL
                             static_cast<std::uint8_t>(n >> 8),
                             static_cast<std::uint8_t>(n & 0xff)};
  wire.insert(wire.end(), std::begin(rr), std::end(rr));
  wire.insert(wire.end(), bytes.begin(), bytes.end());
  auto m = decode(wire);
  if (!m || m->answers.size() != 1) return unexpected(bad_rdata());
  return std::move(m->answers.front().data);
}

result<name> parse_name(const rdata_token& t, const name& origin) {
  return name::from_text(t.text, origin);
}

std::optional<std::string> character_string(const rdata_token& t) {
  auto s = unescape(t.text);
  if (!s || s->size() > 255) return std::nullopt;
  return s;
}

}  // namespace

std::optional<std::uint32_t> parse_duration(std::string_view text, std::uint32_t max) {
  if (auto plain = parse_number<std::uint32_t>(text, max)) return plain;
  if (text.empty()) return std::nullopt;
  std::uint64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    if (i == start || i == text.size()) return std::nullopt;  // a unit needs a number; and a unit
    auto n = parse_number<std::uint64_t>(text.substr(start, i - start), max);
    if (!n) return std::nullopt;
    std::uint64_t unit = 0;
    switch (text[i] | 0x20) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      case 'w': unit = 604800; break;
      default: return std::nullopt;
    }
    ++i;
    total += *n * unit;
    if (total > max) return std::nullopt;
  }
  return static_cast<std::uint32_t>(total);
}

std::string to_string(const rdata& data) {
  std::string out;
  std::visit(
      [&out](const auto& d) {
        using T = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<T, raw_data>) {
          out = "\\# " + std::to_string(d.bytes.size());
          if (!d.bytes.empty()) {
            out += ' ';
            append_hex(out, d.bytes);
          }
        } else if constexpr (std::is_same_v<T, a_data>) {
          out = std::to_string(d.address[0]) + '.' + std::to_string(d.address[1]) + '.' +
                std::to_string(d.address[2]) + '.' + std::to_string(d.address[3]);
        } else if constexpr (std::is_same_v<T, aaaa_data>) {
          char buf[INET6_ADDRSTRLEN] = {};
          ::inet_ntop(AF_INET6, d.address.data(), buf, sizeof buf);
          out = buf;
        } else if constexpr (std::is_same_v<T, ns_data>) {
          out = d.host.to_string();
        } else if constexpr (std::is_same_v<T, cname_data> || std::is_same_v<T, ptr_data>) {
          out = d.target.to_string();
        } else if constexpr (std::is_same_v<T, soa_data>) {
          out = d.mname.to_string() + ' ' + d.rname.to_string() + ' ' + std::to_string(d.serial) +
                ' ' + std::to_string(d.refresh) + ' ' + std::to_string(d.retry) + ' ' +
                std::to_string(d.expire) + ' ' + std::to_string(d.minimum);
        } else if constexpr (std::is_same_v<T, mx_data>) {
          out = std::to_string(d.preference) + ' ' + d.exchange.to_string();
        } else if constexpr (std::is_same_v<T, txt_data>) {
          for (const auto& s : d.strings) {
            if (!out.empty()) out += ' ';
            append_quoted(out, s);
          }
        } else if constexpr (std::is_same_v<T, srv_data>) {
          out = std::to_string(d.priority) + ' ' + std::to_string(d.weight) + ' ' +
                std::to_string(d.port) + ' ' + d.target.to_string();
        } else if constexpr (std::is_same_v<T, caa_data>) {
          out = std::to_string(d.flags) + ' ' + d.tag + ' ';
          append_quoted(out, d.value);
        }
      },
      data);
  return out;
}

std::string to_string(const record& r) {
  return r.owner.to_string() + '\t' + std::to_string(r.ttl) + '\t' + to_string(r.klass) + '\t' +
         to_string(r.type) + '\t' + to_string(r.data);
}

std::string to_string(const question& q) {
  return ';' + q.qname.to_string() + "\t\t" + to_string(q.qclass) + '\t' + to_string(q.qtype);
}

result<rdata> parse_rdata(rtype type, std::span<const rdata_token> fields, const name& origin) {
  if (!fields.empty() && !fields[0].quoted && fields[0].text == "\\#")
    return parse_generic(type, fields);
  const auto count = [&](std::size_t n) { return fields.size() == n; };
  switch (type) {
    case rtype::a: {
      if (!count(1) || fields[0].quoted) return unexpected(bad_rdata());
      // Strict dotted-quad: four decimal octets, no leading zeros beyond "0".
      a_data d;
      std::string_view t = fields[0].text;
      for (int i = 0; i < 4; ++i) {
        const std::size_t dot = i < 3 ? t.find('.') : t.size();
        if (dot == std::string_view::npos) return unexpected(bad_rdata());
        const std::string_view part = t.substr(0, dot);
        if (part.size() > 1 && part[0] == '0') return unexpected(bad_rdata());
        auto v = parse_number<std::uint8_t>(part, 255);
        if (!v) return unexpected(bad_rdata());
        d.address[static_cast<std::size_t>(i)] = *v;
        t.remove_prefix(i < 3 ? dot + 1 : dot);
      }
      return rdata{d};
    }
    case rtype::aaaa: {
      if (!count(1) || fields[0].quoted || fields[0].text.size() >= INET6_ADDRSTRLEN)
        return unexpected(bad_rdata());
      const std::string text(fields[0].text);
      aaaa_data d;
      if (::inet_pton(AF_INET6, text.c_str(), d.address.data()) != 1)
        return unexpected(bad_rdata());
      return rdata{d};
    }
    case rtype::ns:
    case rtype::cname:
    case rtype::ptr: {
      if (!count(1)) return unexpected(bad_rdata());
      auto n = parse_name(fields[0], origin);
      if (!n) return unexpected(n.error());
      if (type == rtype::ns) return rdata{ns_data{std::move(*n)}};
      if (type == rtype::cname) return rdata{cname_data{std::move(*n)}};
      return rdata{ptr_data{std::move(*n)}};
    }
    case rtype::soa: {
      if (!count(7)) return unexpected(bad_rdata());
      soa_data d;
      auto m = parse_name(fields[0], origin);
      if (!m) return unexpected(m.error());
      auto r = parse_name(fields[1], origin);
      if (!r) return unexpected(r.error());
      d.mname = std::move(*m);
      d.rname = std::move(*r);
      auto serial =
          parse_number<std::uint32_t>(fields[2].text, std::numeric_limits<std::uint32_t>::max());
      if (!serial) return unexpected(bad_rdata());
      d.serial = *serial;
      std::uint32_t* timers[] = {&d.refresh, &d.retry, &d.expire, &d.minimum};
      for (std::size_t i = 0; i < 4; ++i) {
        auto v = parse_duration(fields[3 + i].text);
        if (!v) return unexpected(bad_rdata());
        *timers[i] = *v;
      }
      return rdata{std::move(d)};
    }
    case rtype::mx: {
      if (!count(2)) return unexpected(bad_rdata());
      auto pref = parse_number<std::uint16_t>(fields[0].text, 65535);
      if (!pref) return unexpected(bad_rdata());
      auto n = parse_name(fields[1], origin);
      if (!n) return unexpected(n.error());
      return rdata{mx_data{*pref, std::move(*n)}};
    }
    case rtype::txt: {
      if (fields.empty()) return unexpected(bad_rdata());
      txt_data d;
      for (const auto& f : fields) {
        auto s = character_string(f);
        if (!s) return unexpected(bad_rdata());
        d.strings.push_back(std::move(*s));
      }
      return rdata{std::move(d)};
    }
    case rtype::srv: {
      if (!count(4)) return unexpected(bad_rdata());
      srv_data d;
      std::uint16_t* nums[] = {&d.priority, &d.weight, &d.port};
      for (std::size_t i = 0; i < 3; ++i) {
        auto v = parse_number<std::uint16_t>(fields[i].text, 65535);
        if (!v) return unexpected(bad_rdata());
        *nums[i] = *v;
      }
      auto n = parse_name(fields[3], origin);
      if (!n) return unexpected(n.error());
      d.target = std::move(*n);
      return rdata{std::move(d)};
    }
    case rtype::caa: {
      if (!count(3)) return unexpected(bad_rdata());
      caa_data d;
      auto flags = parse_number<std::uint8_t>(fields[0].text, 255);
      if (!flags) return unexpected(bad_rdata());
      d.flags = *flags;
      const std::string_view tag = fields[1].text;
      if (tag.empty() || tag.size() > 15) return unexpected(bad_rdata());
      for (char c : tag) {
        const bool alnum = is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
        if (!alnum) return unexpected(bad_rdata());
      }
      d.tag = std::string(tag);
      auto value = unescape(fields[2].text);
      if (!value) return unexpected(bad_rdata());
      d.value = std::move(*value);
      return rdata{std::move(d)};
    }
    default:
      // Any other type must use the generic form (RFC 3597 §5).
      return unexpected(bad_rdata());
  }
}

}  // namespace trellis::dns
