// Helpers for the balancing-policy tests.
#pragma once

#include <map>
#include <string>

#include "trellis/lb/policy.hpp"

namespace trellis::lb::test {

// The address of each of `count` picks, in order, joined by spaces.
inline std::string sequence(policy& p, int count, const request_context& context = {}) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const host* h = p.pick(context);
    if (!out.empty()) out += ' ';
    out += h != nullptr ? h->address() : "-";
  }
  return out;
}

// How many of `count` picks went to each address.
inline std::map<std::string, int> tally(policy& p, int count, const request_context& context = {}) {
  std::map<std::string, int> out;
  for (int i = 0; i < count; ++i) {
    const host* h = p.pick(context);
    ++out[h != nullptr ? h->address() : "-"];
  }
  return out;
}

}  // namespace trellis::lb::test
