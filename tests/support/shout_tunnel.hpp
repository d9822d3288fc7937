// shout_back: a tiny protocol to switch to in tunnel tests — every byte
// echoed in upper case until the peer finishes sending, then "bye". Used
// as a response::upgrade function on a test server, directly or behind a
// proxy, so a test sees bytes cross a tunnel both ways and a half-close
// travel through it.
#pragma once

#include <asio/awaitable.hpp>
#include <cctype>
#include <string>

#include "trellis/http/message.hpp"

namespace trellis::test {

inline asio::awaitable<void> shout_back(http::tunnel& t) {
  char buf[256];
  for (;;) {
    auto n = co_await t.read_some(buf);
    if (!n || *n == 0) break;
    std::string out(buf, *n);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (co_await t.write(out)) co_return;
  }
  (void)co_await t.write("bye");
}

}  // namespace trellis::test
