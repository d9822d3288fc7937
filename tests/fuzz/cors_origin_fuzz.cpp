// libFuzzer target: parse_origin, the cors
// policy's origin check and cors::add_vary on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "trellis/codec/http/fields.hpp"
#include "trellis/gateway/cors.hpp"

using namespace trellis;

namespace {
const gateway::cors& policy() {
  static const gateway::cors c([] {
    gateway::cors_options o;
    o.allow_origins = {"https://app.example.com", "https://*.example.org", "http://localhost:3000",
                       "http://[::1]:8080"};
    return o;
  }());
  return c;
}
bool has_upper(std::string_view s) {
  for (char ch : s)
    if (ch >= 'A' && ch <= 'Z') return true;
  return false;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto o = gateway::parse_origin(in);
  if (o) {
    const std::string s = o->serialize();
    FUZZ_CHECK(!has_upper(s));
    FUZZ_CHECK(http::is_field_value(s));
    auto again = gateway::parse_origin(s);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *o);
    FUZZ_CHECK(again->serialize() == s);
    FUZZ_CHECK(o->port != 0 || s.find(':', s.find("://") + 3) == std::string::npos ||
               s[s.find("://") + 3] == '[');
  }
  // Allowed implies a valid origin, and case/default-port spelling does not
  // change the verdict.
  const bool allowed = policy().origin_allowed(in);
  if (allowed) {
    FUZZ_CHECK(o.has_value());
    FUZZ_CHECK(policy().origin_allowed(o->serialize()));
  } else if (o) {
    FUZZ_CHECK(!policy().origin_allowed(o->serialize()));
  }
  // add_vary: whatever the tokens and existing Vary, the result is one
  // valid line listing Origin (unless Vary held "*").
  // (Vary is a list of field names; quoted strings, which has_token skips,
  // never belong in it, so inputs with a quote are left out.)
  if (http::is_field_value(in) && in.find('"') == std::string_view::npos) {
    http::fields f;
    (void)f.add("Vary", in);
    gateway::cors::add_vary(f, "Origin");
    FUZZ_CHECK(f.count("Vary") == 1);
    const auto v = *f.get("Vary");
    FUZZ_CHECK(http::has_token(v, "Origin") || http::has_token(in, "*"));
    gateway::cors::add_vary(f, "Origin");
    FUZZ_CHECK(*f.get("Vary") == v);
  }
  return 0;
}

