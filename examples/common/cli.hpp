// What the example programs share: a small command-line parser and a way
// to fail with a message. Deliberately tiny: positional words and
// "--name value" pairs, checked against the names a command accepts.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "trellis/core/log.hpp"

namespace trellis::examples {

// Prints "<program>: <message>" to stderr (after flushing stdout, so the
// two stay in order when redirected together) and exits with status 2.
[[noreturn]] inline void fail(const char* program, const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: %s\n", program, message.c_str());
  std::exit(2);
}

class args {
 public:
  // Parses argv; prints `usage` and exits 0 on -h/--help. Flags listed in
  // `switches` take no value ("--catch-all"); all others take one.
  args(const char* program, int argc, char** argv, const char* usage,
       std::initializer_list<const char*> switches = {})
      : program_(program) {
    for (int i = 1; i < argc; ++i) {
      std::string s = argv[i];
      if (s == "-h" || s == "--help") {
        std::fputs(usage, stdout);
        std::exit(0);
      }
      if (s.rfind("--", 0) == 0) {
        std::string name = s.substr(2);
        bool is_switch = false;
        for (const char* sw : switches) is_switch |= name == sw;
        if (is_switch) {
          flags_.emplace_back(std::move(name), "");
          continue;
        }
        if (i + 1 >= argc) examples::fail(program_, s + " needs a value (see --help)");
        flags_.emplace_back(std::move(name), argv[++i]);
      } else {
        positional_.push_back(std::move(s));
      }
    }
  }

  const std::vector<std::string>& positional() const { return positional_; }

  std::optional<std::string> get(const std::string& name) const {
    for (const auto& [k, v] : flags_)
      if (k == name) return v;
    return std::nullopt;
  }
  // Every value of a flag given more than once ("--upstream A --upstream B").
  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : flags_)
      if (k == name) out.push_back(v);
    return out;
  }
  bool has(const std::string& name) const { return get(name).has_value(); }

  long number(const std::string& name, long fallback, long lo, long hi) const {
    auto v = get(name);
    if (!v) return fallback;
    char* end = nullptr;
    const long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0' || n < lo || n > hi)
      examples::fail(program_, "--" + name + ": expected a number from " + std::to_string(lo) +
                                   " to " + std::to_string(hi) + ", got '" + *v + "'");
    return n;
  }

  // Fails on any flag not in `known`.
  void allow(std::initializer_list<const char*> known) const {
    for (const auto& [k, v] : flags_) {
      bool ok = false;
      for (const char* n : known) ok |= k == n;
      if (!ok) examples::fail(program_, "unknown option --" + k + " (see --help)");
    }
  }

  [[noreturn]] void fail(const std::string& message) const { examples::fail(program_, message); }

  // --log-level L: the least severe level logged (default info).
  void apply_log_level() const {
    auto l = get("log-level");
    if (!l) return;
    core::log::level lv;
    if (!core::log::parse_level(*l, lv))
      fail("--log-level: expected trace, debug, info, warn, error or off");
    core::log::set_level(lv);
  }

  // --address A: the IP address to bind (default `fallback`).
  asio::ip::address address(const char* fallback = "127.0.0.1") const {
    const std::string text = get("address").value_or(fallback);
    std::error_code ec;
    const auto a = asio::ip::make_address(text, ec);
    if (ec) fail("--address: not an IP address: " + text);
    return a;
  }

 private:
  const char* program_;
  std::vector<std::string> positional_;
  std::vector<std::pair<std::string, std::string>> flags_;
};

inline std::string to_string(const asio::ip::tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace trellis::examples
