// curl_reply: what `curl -i` printed, parsed — for tests that drive an
// example program with curl and check status, fields and a JSON body.
//
//   auto r = test::parse_curl(test::run({"curl", "-sS", "-i", url}).out);
//   EXPECT_EQ(r.status, 200);
//   EXPECT_EQ(r.header("content-type"), "application/json");
//   EXPECT_EQ(r.parsed()["id"], 7);
//
// Thread-safety: plain values.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace trellis::test {

struct curl_reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names; the last line of a name wins
  std::string body;

  std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  nlohmann::json parsed() const {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << body;
    return j;
  }
};

// Parses what `curl -i` prints: the status line, the field lines, a blank
// line and the body. Records a test failure for anything else.
inline curl_reply parse_curl(const std::string& out) {
  curl_reply r;
  const auto end = out.find("\r\n\r\n");
  if (end == std::string::npos || out.rfind("HTTP/1.1 ", 0) != 0) {
    ADD_FAILURE() << "not an HTTP response: " << out.substr(0, 200);
    return r;
  }
  r.status = std::stoi(out.substr(9, 3));
  std::size_t pos = out.find("\r\n") + 2;
  while (pos < end) {
    const auto eol = out.find("\r\n", pos);
    const std::string line = out.substr(pos, eol - pos);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    pos = eol + 2;
  }
  r.body = out.substr(end + 4);
  return r;
}

}  // namespace trellis::test
