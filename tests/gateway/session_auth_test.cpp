// session_auth: a caller authenticated by another scheme is remembered in
// the session under a new id, later requests are authenticated by the
// cookie alone, and logout ends it — on a router, with the memory store.
#include "trellis/gateway/session_auth.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/routed.hpp"

namespace trellis::gateway {
namespace {

using ::testing::HasSubstr;

// A fixed API key "k" for subject "svc" with scope "read".
class key_auth final : public authenticator {
 public:
  auth_result authenticate(const http::request& req) const override {
    if (req.header("X-Key").empty()) return auth_result::none();
    if (req.header("X-Key") != "k") return auth_result::fail("unknown key");
    identity who;
    who.method = "api_key";
    who.subject = "svc";
    who.scopes = {"read", "write"};
    return auth_result::ok(std::move(who));
  }
  std::string challenge(std::string_view, const auth_result*) const override { return "Key"; }
};

struct rig {
  std::shared_ptr<session_middleware> sessions =
      std::make_shared<session_middleware>(std::make_shared<memory_session_store>());
  http::router r;
  rig() {
    auto auth = std::make_shared<authenticate>(std::vector<std::shared_ptr<const authenticator>>{
        std::make_shared<session_authenticator>(sessions), std::make_shared<key_auth>()});
    r.use(sessions);
    r.use(auth);
    r.use(std::make_shared<session_login>(sessions));
    r.get("/who", [](http::request& req, http::response& res) -> asio::awaitable<void> {
      res.set_text(std::string(req.attribute("auth.method")) + " " +
                   std::string(req.attribute("auth.subject")) + " " +
                   std::string(req.attribute("auth.scopes")));
      co_return;
    });
    r.post("/logout", session_logout(sessions));
  }
  std::unique_ptr<test::routed> call(http::method m, std::string target, std::string header = {},
                                     std::string value = {}) {
    test::route_request in{.method = m, .target = std::move(target)};
    if (!header.empty()) in.headers.emplace_back(std::move(header), std::move(value));
    return test::route(r, std::move(in));
  }
};

std::string id_in(const test::routed& x) {
  const std::string c(x.res.headers.get("Set-Cookie").value_or(""));
  const auto eq = c.find('='), semi = c.find(';');
  return eq == std::string::npos ? std::string() : c.substr(eq + 1, semi - eq - 1);
}

TEST(session_auth, a_login_by_another_scheme_is_remembered_and_the_cookie_then_suffices) {
  rig t;
  auto none = t.call(http::method::get, "/who");
  EXPECT_EQ(none->res.status, 401);
  EXPECT_EQ(none->res.headers.get("WWW-Authenticate").value_or(""), "Key")
      << "the session adds no challenge";

  auto login = t.call(http::method::get, "/who", "X-Key", "k");
  EXPECT_EQ(login->res.body, "api_key svc read write");
  const std::string id = id_in(*login);
  ASSERT_TRUE(is_session_id(id)) << login->res.headers.get("Set-Cookie").value_or("");

  auto by_cookie = t.call(http::method::get, "/who", "Cookie", "trellis_session=" + id);
  EXPECT_EQ(by_cookie->res.status, 200);
  EXPECT_EQ(by_cookie->res.body, "session svc read write");
  EXPECT_FALSE(by_cookie->res.headers.contains("Set-Cookie")) << "nothing changed: no write";

  auto out = t.call(http::method::post, "/logout", "Cookie", "trellis_session=" + id);
  EXPECT_EQ(out->res.status, 204);
  EXPECT_THAT(std::string(out->res.headers.get("Set-Cookie").value_or("")), HasSubstr("Max-Age=0"));
  auto after = t.call(http::method::get, "/who", "Cookie", "trellis_session=" + id);
  EXPECT_EQ(after->res.status, 401);
}

TEST(session_auth, bad_credentials_are_not_rescued_by_nor_stored_in_a_session) {
  rig t;
  auto bad = t.call(http::method::get, "/who", "X-Key", "guess");
  EXPECT_EQ(bad->res.status, 401);
  EXPECT_FALSE(bad->res.headers.contains("Set-Cookie"));
}

}  // namespace
}  // namespace trellis::gateway
