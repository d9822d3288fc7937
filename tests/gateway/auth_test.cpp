// Tests of gateway::auth: the authenticate middleware with JWT bearer, API
// key and Basic authenticators, and the require middleware, driven through
// an http::router in-process (hand-made request heads, a private
// io_context bounded in time) for the matrix of outcomes, plus one
// end-to-end run with a real server on loopback and curl.
#include "trellis/gateway/auth.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/http_server.hpp"
#include "support/process.hpp"
#include "support/routed.hpp"
#include "trellis/codec/base64.hpp"
#include "trellis/core/error.hpp"

namespace trellis::gateway {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using std::chrono::system_clock;

const system_clock::time_point k_now =
    system_clock::time_point(std::chrono::seconds(1'700'000'000));
const std::string k_secret = "auth-test-secret-auth-test-secret-0123";

using test::routed;

std::unique_ptr<routed> route(const http::router& r, std::string target,
                              std::vector<std::pair<std::string, std::string>> headers = {},
                              http::method m = http::method::get) {
  return test::route(r, {.method = m,
                         .target = std::move(target),
                         .headers = std::move(headers),
                         .host = "api.test"});
}

// A handler that answers with the auth attributes it sees, as JSON.
http::handler echo_identity() {
  return [](http::request& req, http::response& res) -> asio::awaitable<void> {
    json j = json::object();
    for (const char* name : {"auth.method", "auth.subject", "auth.scopes", "auth.roles",
                             "auth.claim.tenant", "auth.claim.level"})
      if (req.has_attribute(name)) j[name] = std::string(req.attribute(name));
    res.set_text(j.dump(), "application/json");
    co_return;
  };
}

json body_of(const routed& r) {
  return json::parse(r.res.body, nullptr, false);
}

std::vector<std::string> challenges_of(const routed& r) {
  std::vector<std::string> out;
  for (auto v : r.res.headers.get_all("WWW-Authenticate")) out.emplace_back(v);
  return out;
}

jwt_key signing_key() {
  return jwt_key::hmac(k_secret, "test");
}

std::string token(json claims) {
  if (!claims.contains("exp")) claims["exp"] = 1'700'000'600;
  return sign_jwt(claims, signing_key()).value();
}

std::string bearer(const std::string& t) {
  return "Bearer " + t;
}

std::string basic(std::string_view user_pass) {
  return "Basic " + codec::base64_encode(user_pass);
}

std::shared_ptr<jwt_bearer> jwt_auth(jwt_bearer_options o = {}) {
  jwt_key_set keys;
  keys.add(signing_key());
  auto v =
      std::make_shared<jwt_verifier>(std::move(keys), jwt_verify_options{.audiences = {"api"}});
  if (!o.clock) o.clock = [] { return k_now; };
  return std::make_shared<jwt_bearer>(std::move(v), std::move(o));
}

const std::string k_api_key = "k3y-0f-the-batch-job-7f1c2e9a4b";

std::shared_ptr<api_key_auth> key_auth(api_key_options o = {}) {
  return std::make_shared<api_key_auth>(
      std::vector<api_key_entry>{{.name = "batch-job",
                                  .sha256 = hash_api_key(k_api_key),
                                  .scopes = {"orders:read"},
                                  .roles = {"service"}}},
      std::move(o));
}

// Low iteration counts keep the tests fast; production uses the default.
const std::string& alice_hash() {
  static const std::string h = hash_password("wonder land", 1000);
  return h;
}

// A fake steady clock the tests advance by hand.
struct manual_clock {
  std::shared_ptr<std::chrono::steady_clock::time_point> t =
      std::make_shared<std::chrono::steady_clock::time_point>();
  std::function<std::chrono::steady_clock::time_point()> fn() const {
    auto p = t;
    return [p] { return *p; };
  }
};

std::shared_ptr<basic_auth> basic_users(basic_options o = {}) {
  return std::make_shared<basic_auth>(
      std::vector<basic_user>{{.name = "alice",
                               .password_hash = alice_hash(),
                               .scopes = {"orders:read", "orders:write"},
                               .roles = {"admin"}}},
      std::move(o));
}

// The router most tests use: JWT, then API key, then Basic.
struct fixture {
  http::router r;
  std::shared_ptr<basic_auth> basic = basic_users();
  std::shared_ptr<authenticate> auth;
  explicit fixture(authenticate_options o = {.realm = "api"},
                   jwt_bearer_options jo = {.claim_attributes = {"tenant", "level"}}) {
    auth = std::make_shared<authenticate>(
        std::vector<std::shared_ptr<const authenticator>>{jwt_auth(std::move(jo)), key_auth(),
                                                          basic},
        std::move(o));
    r.use(auth);
    r.get("/me", echo_identity());
  }
};

// --- no credentials ---------------------------------------------------------

TEST(gateway_auth, answers_401_with_one_challenge_per_scheme_when_no_credentials) {
  fixture f;
  auto a = route(f.r, "/me");
  EXPECT_EQ(a->res.status, 401);
  EXPECT_EQ(challenges_of(*a),
            (std::vector<std::string>{"Bearer realm=\"api\"",
                                      "ApiKey realm=\"api\", header=\"X-API-Key\"",
                                      "Basic realm=\"api\", charset=\"UTF-8\""}));
  EXPECT_EQ(a->res.headers.get("Content-Type").value_or(""), "application/problem+json");
  const json b = body_of(*a);
  EXPECT_EQ(b["status"], 401);
  EXPECT_EQ(b["detail"], "credentials are required");
  EXPECT_EQ(f.auth->challenges(), challenges_of(*a));
}

TEST(gateway_auth, optional_mode_lets_anonymous_requests_through_but_not_bad_credentials) {
  fixture f({.realm = "api", .optional = true});
  auto a = route(f.r, "/me");
  EXPECT_EQ(a->res.status, 200);
  EXPECT_EQ(body_of(*a), json::object()) << "no auth.* attributes";
  auto b = route(f.r, "/me", {{"Authorization", bearer("not.a.token")}});
  EXPECT_EQ(b->res.status, 401) << "presented credentials must be good";
}

// --- JWT --------------------------------------------------------------------

TEST(gateway_auth, authenticates_a_bearer_jwt_and_sets_the_attributes) {
  fixture f;
  const std::string t = token({{"sub", "user-42"},
                               {"aud", "api"},
                               {"scope", "orders:read  orders:write"},
                               {"roles", {"admin", "ops"}},
                               {"tenant", "acme"},
                               {"level", 3}});
  auto a = route(f.r, "/me", {{"Authorization", bearer(t)}});
  ASSERT_EQ(a->res.status, 200) << a->res.body;
  EXPECT_EQ(body_of(*a), (json{{"auth.method", "jwt"},
                               {"auth.subject", "user-42"},
                               {"auth.scopes", "orders:read orders:write"},
                               {"auth.roles", "admin ops"},
                               {"auth.claim.tenant", "acme"},
                               {"auth.claim.level", "3"}}));
  // The scheme name is case-insensitive (RFC 9110 §11.1).
  EXPECT_EQ(route(f.r, "/me", {{"authorization", "bEaReR " + t}})->res.status, 200);
}

TEST(gateway_auth, reads_scp_arrays_and_roles_from_a_json_pointer) {
  fixture f({.realm = "api"}, {.roles_claim = "/realm_access/roles"});
  const std::string t = token({{"sub", "u"},
                               {"aud", "api"},
                               {"scp", {"a", "b c", 7, "d"}},
                               {"realm_access", {{"roles", "viewer editor"}}}});
  auto a = route(f.r, "/me", {{"Authorization", bearer(t)}});
  ASSERT_EQ(a->res.status, 200) << a->res.body;
  EXPECT_EQ(body_of(*a)["auth.scopes"], "a d")
      << "elements with spaces or of other types are dropped";
  EXPECT_EQ(body_of(*a)["auth.roles"], "viewer editor");
}

TEST(gateway_auth, refuses_a_bad_token_with_an_invalid_token_challenge) {
  fixture f;
  const std::string expired = token({{"sub", "u"}, {"aud", "api"}, {"exp", 1'600'000'000}});
  auto a = route(f.r, "/me", {{"Authorization", bearer(expired)}});
  EXPECT_EQ(a->res.status, 401);
  const auto c = challenges_of(*a);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(
      c[0],
      "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token has expired\"");
  EXPECT_EQ(c[2], "Basic realm=\"api\", charset=\"UTF-8\"") << "the other schemes stay plain";
  EXPECT_EQ(body_of(*a)["detail"], "token has expired");

  const std::string wrong_aud = token({{"sub", "u"}, {"aud", "other"}});
  EXPECT_EQ(challenges_of(*route(f.r, "/me", {{"Authorization", bearer(wrong_aud)}}))[0],
            "Bearer realm=\"api\", error=\"invalid_token\", "
            "error_description=\"token audience is not accepted\"");
  for (const std::string& bad :
       {std::string("Bearer"), std::string("Bearer "), std::string("Bearer a b"),
        std::string("Bearer \"quoted\""), bearer(token({{"aud", "api"}}) + "x")}) {
    auto r = route(f.r, "/me", {{"Authorization", bad}});
    EXPECT_EQ(r->res.status, 401) << bad;
    EXPECT_NE(challenges_of(*r)[0].find("invalid_token"), std::string::npos) << bad;
  }
}

TEST(gateway_auth, refuses_more_than_one_authorization_field) {
  fixture f;
  const std::string t = token({{"sub", "u"}, {"aud", "api"}});
  auto a = route(f.r, "/me", {{"Authorization", bearer(t)}, {"Authorization", basic("alice:x")}});
  EXPECT_EQ(a->res.status, 401);
  EXPECT_EQ(body_of(*a)["detail"], "more than one Authorization field");
}

// --- API keys ---------------------------------------------------------------

TEST(gateway_auth, authenticates_an_api_key_from_its_header) {
  fixture f;
  auto a = route(f.r, "/me", {{"x-api-key", k_api_key}});
  ASSERT_EQ(a->res.status, 200) << a->res.body;
  EXPECT_EQ(body_of(*a), (json{{"auth.method", "api_key"},
                               {"auth.subject", "batch-job"},
                               {"auth.scopes", "orders:read"},
                               {"auth.roles", "service"}}));
  auto b = route(f.r, "/me", {{"X-API-Key", k_api_key + "x"}});
  EXPECT_EQ(b->res.status, 401);
  EXPECT_EQ(body_of(*b)["detail"], "unknown API key");
  EXPECT_EQ(route(f.r, "/me", {{"X-API-Key", ""}})->res.status, 401);
  EXPECT_EQ(route(f.r, "/me", {{"X-API-Key", k_api_key}, {"X-API-Key", k_api_key}})->res.status,
            401)
      << "two keys are ambiguous";
}

TEST(gateway_auth, reads_an_api_key_from_the_query_only_when_enabled) {
  fixture f;
  EXPECT_EQ(route(f.r, "/me?api_key=" + k_api_key)->res.status, 401) << "off by default";
  http::router r;
  r.use(std::make_shared<authenticate>(std::vector<std::shared_ptr<const authenticator>>{
      key_auth({.allow_query = true, .query_param = "key"})}));
  r.get("/me", echo_identity());
  auto a = route(r, "/me?x=1&key=" + k_api_key);
  ASSERT_EQ(a->res.status, 200) << a->res.body;
  EXPECT_EQ(body_of(*a)["auth.subject"], "batch-job");
  EXPECT_EQ(route(r, "/me?key=nope")->res.status, 401);
  EXPECT_EQ(route(r, "/me?key=" + k_api_key + "&key=" + k_api_key)->res.status, 401);
  EXPECT_EQ(route(r, "/me", {{"X-API-Key", k_api_key}})->res.status, 200)
      << "the header still works";
}

TEST(gateway_auth, hashes_api_keys_as_sha256_hex) {
  // SHA-256("abc"), FIPS 180-2 Appendix B.1.
  EXPECT_EQ(hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// --- Basic ------------------------------------------------------------------

TEST(gateway_auth, authenticates_basic_credentials) {
  fixture f;
  auto a = route(f.r, "/me", {{"Authorization", basic("alice:wonder land")}});
  ASSERT_EQ(a->res.status, 200) << a->res.body;
  EXPECT_EQ(body_of(*a), (json{{"auth.method", "basic"},
                               {"auth.subject", "alice"},
                               {"auth.scopes", "orders:read orders:write"},
                               {"auth.roles", "admin"}}));
  for (const std::string& bad : {basic("alice:wonder lan"), basic("alice:"),
                                 basic("bob:wonder land"), basic("alicewonderland"),
                                 std::string("Basic !!!"), std::string("Basic YWxpY2U6d29uZGVy")}) {
    auto r = route(f.r, "/me", {{"Authorization", bad}});
    EXPECT_EQ(r->res.status, 401) << bad;
    EXPECT_EQ(challenges_of(*r).back(), "Basic realm=\"api\", charset=\"UTF-8\"") << bad;
  }
  EXPECT_EQ(body_of(*route(f.r, "/me", {{"Authorization", basic("bob:x")}}))["detail"],
            body_of(*route(f.r, "/me", {{"Authorization", basic("alice:x")}}))["detail"])
      << "an unknown user and a wrong password look the same";
}

TEST(gateway_auth, caches_verified_basic_credentials_until_they_expire) {
  manual_clock clock;
  auto b = basic_users({.cache_ttl = 30s, .cache_entries = 2, .clock = clock.fn()});
  http::router r;
  r.use(std::make_shared<authenticate>(std::vector<std::shared_ptr<const authenticator>>{b}));
  r.get("/me", echo_identity());
  const std::string good = basic("alice:wonder land");
  EXPECT_EQ(route(r, "/me", {{"Authorization", good}})->res.status, 200);
  EXPECT_EQ(b->derivations(), 1u);
  EXPECT_EQ(route(r, "/me", {{"Authorization", good}})->res.status, 200);
  EXPECT_EQ(b->derivations(), 1u) << "served from the cache";
  // Wrong passwords are never cached: each pays a derivation.
  EXPECT_EQ(route(r, "/me", {{"Authorization", basic("alice:nope")}})->res.status, 401);
  EXPECT_EQ(route(r, "/me", {{"Authorization", basic("alice:nope")}})->res.status, 401);
  EXPECT_EQ(b->derivations(), 3u);
  *clock.t += 29s;
  EXPECT_EQ(route(r, "/me", {{"Authorization", good}})->res.status, 200);
  EXPECT_EQ(b->derivations(), 3u);
  *clock.t += 1s;
  EXPECT_EQ(route(r, "/me", {{"Authorization", good}})->res.status, 200);
  EXPECT_EQ(b->derivations(), 4u) << "expired after 30 s: derived again";
  // The cache key covers the password: a near miss is not a hit.
  EXPECT_EQ(route(r, "/me", {{"Authorization", basic("alice:wonder land ")}})->res.status, 401);
}

TEST(gateway_auth, hashes_passwords_in_a_self_describing_format) {
  const std::string h = hash_password("secret", 1000);
  EXPECT_TRUE(h.starts_with("pbkdf2-sha256$1000$")) << h;
  EXPECT_TRUE(verify_password("secret", h));
  EXPECT_FALSE(verify_password("Secret", h));
  EXPECT_NE(hash_password("secret", 1000), h) << "a fresh random salt each time";
  // A known answer: PBKDF2-HMAC-SHA256 with P="passwordPASSWORDpassword",
  // S="saltSALTsaltSALTsaltSALTsaltSALTsalt", c=4096 (the RFC 6070 inputs,
  // with SHA-256) starts 348c89db...; its first 32 bytes are the hash.
  constexpr char kat_hash[] =
      "\x34\x8c\x89\xdb\xcb\xd3\x2b\x2f\x32\xd8\x14\xb8\x11\x6e\x84\xcf"
      "\x2b\x17\x34\x7e\xbc\x18\x00\x18\x1c\x4e\x2a\x1f\xb8\xdd\x53\xe1";
  const codec::base64_options unpadded{.padding = false};
  const std::string kat = "pbkdf2-sha256$4096$" +
                          codec::base64_encode("saltSALTsaltSALTsaltSALTsaltSALTsalt", unpadded) +
                          "$" + codec::base64_encode(std::string_view(kat_hash, 32), unpadded);
  EXPECT_TRUE(verify_password("passwordPASSWORDpassword", kat)) << kat;
  EXPECT_FALSE(verify_password("passwordPASSWORDpassworD", kat));
  // Malformed strings never verify.
  EXPECT_FALSE(verify_password("secret", "pbkdf2-sha256$999$c2FsdHNhbHQ$" + std::string(43, 'A')));
  EXPECT_FALSE(verify_password("secret", "sha256$1000$c2FsdHNhbHQ$AAAA"));
  EXPECT_FALSE(verify_password("secret", ""));
  EXPECT_THROW((void)hash_password("x", 10), std::invalid_argument);
}

// --- first authenticator decides ------------------------------------------------

TEST(gateway_auth, the_first_authenticator_that_finds_credentials_decides) {
  fixture f;  // JWT before API key
  auto a =
      route(f.r, "/me", {{"Authorization", bearer("bad.token.here")}, {"X-API-Key", k_api_key}});
  EXPECT_EQ(a->res.status, 401) << "a bad token is not rescued by a good key";
  http::router r;  // API key first
  r.use(std::make_shared<authenticate>(
      std::vector<std::shared_ptr<const authenticator>>{key_auth(), jwt_auth()}));
  r.get("/me", echo_identity());
  auto b = route(r, "/me", {{"Authorization", bearer("bad.token.here")}, {"X-API-Key", k_api_key}});
  EXPECT_EQ(b->res.status, 200);
  EXPECT_EQ(body_of(*b)["auth.method"], "api_key");
}

// --- require ------------------------------------------------------------------

struct guarded_fixture : fixture {
  guarded_fixture() {
    auto writer = std::make_shared<require>(
        requirement{.scopes = {"orders:read", "orders:write"}, .realm = "api"});
    auto admin = std::make_shared<require>(requirement{.roles = {"admin", "root"}, .realm = "api"});
    auto acme =
        std::make_shared<require>(requirement{.claims = {{"tenant", "acme"}}, .realm = "api"});
    r.post("/orders", http::with_middleware({writer}, echo_identity()));
    r.del("/orders", http::with_middleware({admin}, echo_identity()));
    r.get("/acme", http::with_middleware({acme}, echo_identity()));
  }
};

TEST(gateway_auth, require_checks_all_scopes_any_role_and_claims) {
  guarded_fixture f;
  const std::string full = token({{"sub", "u"},
                                  {"aud", "api"},
                                  {"scope", "orders:read orders:write"},
                                  {"roles", "root"},
                                  {"tenant", "acme"}});
  EXPECT_EQ(
      route(f.r, "/orders", {{"Authorization", bearer(full)}}, http::method::post)->res.status,
      200);
  EXPECT_EQ(
      route(f.r, "/orders", {{"Authorization", bearer(full)}}, http::method::delete_)->res.status,
      200)
      << "any one of the roles";
  EXPECT_EQ(route(f.r, "/acme", {{"Authorization", bearer(full)}})->res.status, 200);

  const std::string reader =
      token({{"sub", "u"}, {"aud", "api"}, {"scope", "orders:read"}, {"tenant", "globex"}});
  auto a = route(f.r, "/orders", {{"Authorization", bearer(reader)}}, http::method::post);
  EXPECT_EQ(a->res.status, 403);
  EXPECT_EQ(challenges_of(*a),
            (std::vector<std::string>{"Bearer realm=\"api\", error=\"insufficient_scope\", "
                                      "scope=\"orders:read orders:write\""}));
  EXPECT_EQ(body_of(*a)["detail"], "a required scope is missing");
  auto b = route(f.r, "/orders", {{"Authorization", bearer(reader)}}, http::method::delete_);
  EXPECT_EQ(b->res.status, 403);
  EXPECT_EQ(challenges_of(*b),
            (std::vector<std::string>{"Bearer realm=\"api\", error=\"insufficient_scope\""}));
  EXPECT_EQ(route(f.r, "/acme", {{"Authorization", bearer(reader)}})->res.status, 403)
      << "tenant claim differs";
  const std::string no_tenant = token({{"sub", "u"}, {"aud", "api"}});
  EXPECT_EQ(route(f.r, "/acme", {{"Authorization", bearer(no_tenant)}})->res.status, 403)
      << "a missing claim never equals";
}

TEST(gateway_auth, require_answers_403_without_a_bearer_challenge_for_other_methods) {
  guarded_fixture f;
  auto a = route(f.r, "/orders", {{"X-API-Key", k_api_key}}, http::method::post);
  EXPECT_EQ(a->res.status, 403);
  EXPECT_TRUE(challenges_of(*a).empty()) << "insufficient_scope is a Bearer error";
  auto b =
      route(f.r, "/orders", {{"Authorization", basic("alice:wonder land")}}, http::method::post);
  EXPECT_EQ(b->res.status, 200) << "Basic user alice has both scopes";
}

TEST(gateway_auth, require_answers_401_when_nobody_authenticated) {
  http::router r;
  r.use(
      std::make_shared<authenticate>(std::vector<std::shared_ptr<const authenticator>>{jwt_auth()},
                                     authenticate_options{.realm = "shop", .optional = true}));
  r.get("/public", echo_identity());
  r.get("/private",
        http::with_middleware(
            {std::make_shared<require>(requirement{.challenges = {"Bearer realm=\"shop\""}})},
            echo_identity()));
  EXPECT_EQ(route(r, "/public")->res.status, 200);
  auto a = route(r, "/private");
  EXPECT_EQ(a->res.status, 401);
  EXPECT_EQ(challenges_of(*a), (std::vector<std::string>{"Bearer realm=\"shop\""}));
  const std::string t = token({{"sub", "u"}, {"aud", "api"}});
  EXPECT_EQ(route(r, "/private", {{"Authorization", bearer(t)}})->res.status, 200);
}

// --- configuration ------------------------------------------------------------

::testing::AssertionResult throws_field(const std::function<void()>& f, std::string_view field) {
  try {
    f();
  } catch (const core::config_error& e) {
    if (e.field() == field) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "names '" << e.field() << "': " << e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw something else: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

TEST(gateway_auth, refuses_bad_configuration_naming_the_field) {
  EXPECT_TRUE(throws_field(
      [] { api_key_auth a(std::vector<api_key_entry>{{.name = "x", .sha256 = "abc"}}); },
      "api_keys[0].sha256"));
  EXPECT_TRUE(throws_field(
      [] {
        api_key_auth a(std::vector<api_key_entry>{{.name = "x", .sha256 = std::string(64, 'A')}});
      },
      "api_keys[0].sha256"))
      << "uppercase hex is refused: one spelling per digest";
  EXPECT_TRUE(throws_field(
      [] {
        api_key_auth a(std::vector<api_key_entry>{{.name = "a", .sha256 = hash_api_key("k")},
                                                  {.name = "b", .sha256 = hash_api_key("k")}});
      },
      "api_keys[1].sha256"));
  EXPECT_TRUE(throws_field(
      [] { api_key_auth a(std::vector<api_key_entry>{{.name = "", .sha256 = hash_api_key("k")}}); },
      "api_keys[0].name"));
  EXPECT_TRUE(throws_field(
      [] { basic_auth b(std::vector<basic_user>{{.name = "a:b", .password_hash = alice_hash()}}); },
      "basic_users[0].name"));
  for (const std::string& bad :
       {std::string("plaintext"),
        std::string("pbkdf2-sha256$100$c2FsdHNhbHQ$") + std::string(43, 'A'),
        std::string("pbkdf2-sha256$01000$c2FsdHNhbHQ$") + std::string(43, 'A'),
        std::string("pbkdf2-sha256$1000$c2FsdA$") + std::string(43, 'A'),
        std::string("pbkdf2-sha256$1000$c2FsdHNhbHQ$AAAA"), alice_hash() + "="}) {
    EXPECT_TRUE(throws_field(
        [&] { basic_auth b(std::vector<basic_user>{{.name = "a", .password_hash = bad}}); },
        "basic_users[0].password_hash"))
        << bad;
  }
  EXPECT_TRUE(
      throws_field([] { authenticate a(std::vector<std::shared_ptr<const authenticator>>{}); },
                   "auth.authenticators"));
  EXPECT_TRUE(throws_field(
      [] { authenticate a(std::vector<std::shared_ptr<const authenticator>>{nullptr}); },
      "auth.authenticators"));
  EXPECT_TRUE(throws_field([] { jwt_bearer j(nullptr); }, "jwt.verifier"));
  EXPECT_TRUE(throws_field([] { (void)jwt_auth({.roles_claim = "/a/~2"}); }, "jwt.roles_claim"));
}

// --- end to end ----------------------------------------------------------------

TEST(gateway_auth, end_to_end_with_a_real_server_and_curl) {
  if (!test::program_exists("curl")) GTEST_SKIP() << "needs curl (Debian package curl)";
  jwt_key_set keys;
  keys.add(signing_key());
  auto verifier = std::make_shared<jwt_verifier>(std::move(keys));
  http::router r;
  // The real clock here: the token is minted for the next ten minutes.
  r.use(std::make_shared<authenticate>(
      std::vector<std::shared_ptr<const authenticator>>{std::make_shared<jwt_bearer>(verifier)},
      authenticate_options{.realm = "e2e"}));
  r.get("/me", echo_identity());
  test::test_server srv(r.to_handler());

  auto anonymous = test::parse_curl(test::run({"curl", "-sS", "-i", srv.url("/me")}).out);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.header("www-authenticate"), "Bearer realm=\"e2e\"");
  EXPECT_EQ(anonymous.parsed()["detail"], "credentials are required");

  const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                       (system_clock::now() + 10min).time_since_epoch())
                       .count();
  const std::string t = sign_jwt({{"sub", "curl-user"}, {"exp", exp}}, signing_key()).value();
  auto ok = test::parse_curl(
      test::run({"curl", "-sS", "-i", "-H", "Authorization: Bearer " + t, srv.url("/me")}).out);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.parsed()["auth.subject"], "curl-user");

  std::string tampered = t;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  auto bad = test::parse_curl(
      test::run({"curl", "-sS", "-i", "-H", "Authorization: Bearer " + tampered, srv.url("/me")})
          .out);
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.header("www-authenticate"),
            "Bearer realm=\"e2e\", error=\"invalid_token\", "
            "error_description=\"token signature does not verify\"");
}

}  // namespace
}  // namespace trellis::gateway
