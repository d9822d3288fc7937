#include "trellis/dns/config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "trellis/codec/ascii.hpp"

namespace trellis::dns {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Splits a line into whitespace-separated words, stopping at a comment.
std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size() || line[i] == '#' || line[i] == ';') break;
    const std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <class F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    f(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

std::optional<unsigned> parse_uint(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<asio::ip::address> parse_address(std::string_view text) {
  std::error_code ec;
  auto a = asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return a;
}

result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno != 0 ? errno : ENOENT;
    return unexpected(std::error_code(e, std::generic_category()));
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

void apply_resolv_options(resolv_conf& conf, std::string_view words) {
  for (std::string_view w : words_of(words)) {
    const std::size_t colon = w.find(':');
    const std::string_view key = w.substr(0, colon);
    const std::optional<unsigned> value =
        colon == std::string_view::npos ? std::nullopt : parse_uint(w.substr(colon + 1));
    if (key == "ndots" && value) {
      conf.ndots = std::min(*value, 15u);
    } else if (key == "timeout" && value) {
      conf.timeout = std::chrono::seconds(std::clamp(*value, 1u, 30u));
    } else if (key == "attempts" && value) {
      conf.attempts = std::clamp(*value, 1u, 5u);
    } else if (key == "rotate" && colon == std::string_view::npos) {
      conf.rotate = true;
    } else if (key == "edns0" && colon == std::string_view::npos) {
      conf.edns0 = true;
    }
    // Anything else (debug, inet6, single-request, trust-ad...) is ignored.
  }
}

resolv_conf parse_resolv_conf(std::string_view text) {
  resolv_conf conf;
  for_each_line(text, [&](std::string_view line) {
    const auto w = words_of(line);
    if (w.empty()) return;
    if (w[0] == "nameserver" && w.size() >= 2) {
      if (auto a = parse_address(w[1])) conf.nameservers.emplace_back(*a, default_port);
    } else if ((w[0] == "search" || w[0] == "domain") && w.size() >= 2) {
      conf.search.clear();
      const std::size_t last = w[0] == "domain" ? 2 : w.size();
      for (std::size_t i = 1; i < last; ++i) {
        auto n = name::from_text(w[i]);
        if (n && !n->is_root()) conf.search.push_back(std::move(*n));
      }
    } else if (w[0] == "options") {
      const std::size_t start = line.find("options") + 7;
      apply_resolv_options(conf, line.substr(start));
    }
  });
  return conf;
}

result<resolv_conf> load_resolv_conf(const std::string& path, bool use_env) {
  auto text = read_file(path);
  if (!text) return unexpected(text.error());
  resolv_conf conf = parse_resolv_conf(*text);
  if (use_env) {
    if (const char* env = std::getenv("RES_OPTIONS")) apply_resolv_options(conf, env);
  }
  return conf;
}

hosts hosts::parse(std::string_view text) {
  hosts h;
  for_each_line(text, [&](std::string_view line) {
    const auto w = words_of(line);
    if (w.size() < 2) return;
    const auto address = parse_address(w[0]);
    if (!address) return;
    for (std::size_t i = 1; i < w.size(); ++i) {
      auto n = name::from_text(w[i]);
      if (!n || n->is_root()) continue;
      h.add(*n, *address);
    }
  });
  return h;
}

result<hosts> hosts::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) return unexpected(text.error());
  return parse(*text);
}

void hosts::add(const name& n, const asio::ip::address& address) {
  auto& list = by_name_[n];
  if (std::find(list.begin(), list.end(), address) == list.end()) list.push_back(address);
  by_address_.emplace(address, n);  // keeps the first name given for an address
}

std::span<const asio::ip::address> hosts::addresses(const name& n) const {
  auto it = by_name_.find(n);
  if (it == by_name_.end()) return {};
  return it->second;
}

std::optional<name> hosts::name_of(const asio::ip::address& address) const {
  auto it = by_address_.find(address);
  if (it == by_address_.end()) return std::nullopt;
  return it->second;
}

bool is_localhost(const name& n) noexcept {
  const std::size_t labels = n.label_count();
  if (labels == 0) return false;
  return codec::iequals(n.label(labels - 1), "localhost");
}

result<std::vector<name>> search_names(std::string_view host, const resolv_conf& conf) {
  if (host.empty() || host == ".") return unexpected(error::bad_query);
  auto base = name::from_text(host);
  if (!base) return unexpected(error::bad_query);
  std::vector<name> out;
  if (host.back() == '.') {
    out.push_back(std::move(*base));
    return out;
  }
  const auto dots = static_cast<unsigned>(std::count(host.begin(), host.end(), '.'));
  const bool as_is_first = dots >= conf.ndots;
  if (as_is_first) out.push_back(*base);
  for (const name& domain : conf.search) {
    auto n = base->concat(domain);
    if (n && std::find(out.begin(), out.end(), *n) == out.end()) out.push_back(std::move(*n));
  }
  if (!as_is_first && std::find(out.begin(), out.end(), *base) == out.end())
    out.push_back(std::move(*base));
  return out;
}

name reverse_name(const asio::ip::address& address) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string text;
  if (address.is_v4()) {
    const auto b = address.to_v4().to_bytes();
    for (int i = 3; i >= 0; --i) {
      text += std::to_string(b[static_cast<std::size_t>(i)]);
      text += '.';
    }
    text += "in-addr.arpa.";
  } else {
    const auto b = address.to_v6().to_bytes();
    for (int i = 15; i >= 0; --i) {
      const auto byte = b[static_cast<std::size_t>(i)];
      text += hex[byte & 0xf];
      text += '.';
      text += hex[byte >> 4];
      text += '.';
    }
    text += "ip6.arpa.";
  }
  // Always valid: 72 octets at most, labels of one to three characters.
  return name::from_text(text).value();
}

}  // namespace trellis::dns
