// wrk: what a run of the wrk load generator reports, for tests that keep a
// server under load while something happens to it (a backend killed, a
// configuration reloaded) and then check that no request failed.
//
//   test::process wrk({"wrk", "-t1", "-c8", "-d4s", url});
//   ... the event ...
//   const auto s = test::parse_wrk(wrk.out());   // after wrk has ended
//   EXPECT_FALSE(s.socket_errors || s.non_2xx);
#pragma once

#include <cctype>
#include <string>

namespace trellis::test {

// The numbers wrk prints at the end of a run.
struct wrk_summary {
  long requests = -1;          // "<n> requests in <t>"
  bool socket_errors = false;  // "Socket errors: connect c, read r, write w, timeout t"
  bool non_2xx = false;        // "Non-2xx or 3xx responses: n"
};

inline wrk_summary parse_wrk(const std::string& out) {
  wrk_summary s;
  const auto at = out.find(" requests in ");
  if (at != std::string::npos) {
    auto from = at;
    while (from > 0 && std::isdigit(static_cast<unsigned char>(out[from - 1]))) --from;
    if (from < at) s.requests = std::stol(out.substr(from, at - from));
  }
  s.socket_errors = out.find("Socket errors:") != std::string::npos;
  s.non_2xx = out.find("Non-2xx or 3xx responses:") != std::string::npos;
  return s;
}

}  // namespace trellis::test
