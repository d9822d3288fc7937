// auth: who is calling (authentication) and may they (authorization), as
// gateway middleware — the job of Kong's jwt / key-auth / basic-auth
// plugins, Envoy's jwt_authn filter, nginx's auth_basic.
//
// Authentication is split in two ideas:
//   - an `authenticator` looks at one request and answers one of three
//     things: no credentials of its kind; authenticated (a subject, scopes,
//     roles); or invalid credentials (and why). Three come with the
//     library: jwt_bearer (Authorization: Bearer, RFC 6750 §2.1),
//     api_key_auth (a header or, if enabled, a query parameter) and
//     basic_auth (RFC 7617).
//   - the `authenticate` middleware runs a list of them in order; the first
//     that finds credentials decides — a request carrying a bad JWT and a
//     good API key is refused, not rescued by the key, because which
//     credential counts must not be the client's choice. Success stores
//     request attributes for later middleware and the handler:
//       auth.method   jwt | api_key | basic
//       auth.subject  the JWT "sub", the API key's name, the Basic user
//       auth.scopes   space-separated
//       auth.roles    space-separated
//       auth.claim.NAME  JWT claims listed in jwt_bearer_options::claim_attributes
//     Failure answers 401 with one WWW-Authenticate challenge per
//     configured scheme (RFC 9110 §11.6.1; RFC 6750 §3 for Bearer, with
//     error="invalid_token" when a token was refused; RFC 7617 §2 for
//     Basic) and a small application/problem+json body. In optional mode a
//     request without credentials goes on unauthenticated (for routes that
//     serve everyone but personalise for a known caller); bad credentials
//     are still refused.
//
// Authorization is the `require` middleware: all of some scopes, any of
// some roles, some claims equal to values. Not authenticated: 401.
// Authenticated but not allowed: 403 (for JWTs with the RFC 6750 §3.1
// error="insufficient_scope" challenge). The router's middleware applies to
// every route; http::with_middleware() wraps one handler in its own, for
// per-route rules.
//
// Thread-safety: every class here is configured at construction and then
// shared by all workers: authenticate() is const and safe concurrently.
// basic_auth's verification cache is the one mutable piece; it is guarded
// by a mutex (held for a map lookup, never during a PBKDF2 derivation).
// All work is synchronous CPU work on the worker's thread — a PBKDF2
// derivation takes a worker for its whole duration, which is what the
// cache and a rate limit in front are for.
#pragma once

#include <asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "trellis/gateway/jwt.hpp"
#include "trellis/http/message.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

enum class auth_outcome {
  no_credentials,  // nothing of this authenticator's kind on the request
  authenticated,   // credentials present and good
  invalid,         // credentials present and refused
};

// Who a request is, once authenticated.
struct identity {
  std::string method;  // "jwt", "api_key", "basic"
  std::string subject;
  std::vector<std::string> scopes;
  std::vector<std::string> roles;
  std::vector<std::pair<std::string, std::string>> claims;  // become auth.claim.NAME
};

struct auth_result {
  auth_outcome outcome = auth_outcome::no_credentials;
  identity who;        // set when authenticated
  std::string reason;  // set when invalid: one short sentence, sent to the client

  static auth_result none() { return {}; }
  static auth_result ok(identity who) {
    auth_result r;
    r.outcome = auth_outcome::authenticated;
    r.who = std::move(who);
    return r;
  }
  static auth_result fail(std::string reason) {
    auth_result r;
    r.outcome = auth_outcome::invalid;
    r.reason = std::move(reason);
    return r;
  }
};

class authenticator {
 public:
  virtual ~authenticator() = default;
  // Looks at `req` only (never its body). Called on every worker at once.
  virtual auth_result authenticate(const http::request& req) const = 0;
  // This scheme's WWW-Authenticate challenge for `realm`, or "" for a
  // scheme that has none (a session cookie). `failure` is set when this
  // authenticator refused the request's credentials (so Bearer can add
  // error="invalid_token").
  virtual std::string challenge(std::string_view realm, const auth_result* failure) const = 0;
};

// ---------------------------------------------------------------------------
// JWT bearer tokens.

struct jwt_bearer_options {
  // The claim holding roles: a space-separated string or an array of
  // strings. A value starting with '/' is a JSON Pointer (RFC 6901), for
  // issuers that nest them ("/realm_access/roles").
  std::string roles_claim = "roles";
  // Claims copied to attributes "auth.claim.NAME" for require() and the
  // handler (strings as they are; numbers and booleans as JSON text; other
  // types skipped). Only what is listed: a token's claims are the issuer's
  // vocabulary, not the gateway's.
  std::vector<std::string> claim_attributes{};
  // The clock tokens are checked against. Default: system_clock::now.
  // Tests inject a fixed time.
  std::function<std::chrono::system_clock::time_point()> clock{};
};

// `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme name is
// case-insensitive). Tokens in a query parameter or form body (§2.2-2.3)
// are not accepted: they end up in logs and caches. Scopes come from
// "scope" (a space-separated string, RFC 8693 §4.2) or "scp" (an array or
// string, as some issuers write it).
class jwt_bearer final : public authenticator {
 public:
  // Throws core::config_error: "jwt.verifier" when `verifier` is null,
  // "jwt.roles_claim" when it starts with '/' but is no valid JSON Pointer.
  explicit jwt_bearer(std::shared_ptr<const jwt_verifier> verifier,
                      jwt_bearer_options options = {});
  auth_result authenticate(const http::request& req) const override;
  std::string challenge(std::string_view realm, const auth_result* failure) const override;

 private:
  std::shared_ptr<const jwt_verifier> verifier_;
  jwt_bearer_options options_;
  bool roles_pointer_ = false;  // roles_claim is a JSON Pointer
};

// ---------------------------------------------------------------------------
// API keys.

// One configured key. The key itself is never stored: only its SHA-256,
// so a leaked configuration file or heap dump does not leak usable keys.
struct api_key_entry {
  std::string name;    // becomes auth.subject ("billing-batch", "partner-acme")
  std::string sha256;  // hash_api_key(key): 64 lowercase hex digits
  std::vector<std::string> scopes{};
  std::vector<std::string> roles{};
};

struct api_key_options {
  // The request header carrying the key.
  std::string header = "X-API-Key";
  // Also accept the key as a query parameter. Default off: a query string
  // is part of the URL, and URLs are written to access logs (ours, every
  // proxy's, the browser history), kept in Referer headers and cached —
  // a key there is a key leaked. Turn on only for clients that cannot set
  // headers (a webhook sender, an <img> tag).
  bool allow_query = false;
  std::string query_param = "api_key";
};

// The SHA-256 of `key`, as 64 lowercase hex digits: what api_key_entry
// stores. For generating configuration (keys themselves should be random,
// at least 128 bits: `openssl rand -base64 24`).
std::string hash_api_key(std::string_view key);

class api_key_auth final : public authenticator {
 public:
  // Throws core::config_error naming "api_keys[i].sha256" (not 64 hex
  // digits, or a duplicate) or "api_keys[i].name" (empty).
  explicit api_key_auth(std::vector<api_key_entry> keys, api_key_options options = {});
  auth_result authenticate(const http::request& req) const override;
  // "ApiKey realm=..." — no scheme is registered for API keys; this names
  // the header so a developer reading the 401 knows what to send.
  std::string challenge(std::string_view realm, const auth_result* failure) const override;

 private:
  std::unordered_map<std::string, api_key_entry> by_digest_;  // sha256 -> entry
  api_key_options options_;
};

// ---------------------------------------------------------------------------
// HTTP Basic.

struct basic_user {
  std::string name;  // may not contain ':' (RFC 7617 §2)
  // hash_password(password): "pbkdf2-sha256$ITERATIONS$SALT$HASH".
  std::string password_hash;
  std::vector<std::string> scopes{};
  std::vector<std::string> roles{};
};

// A PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) hash of `password` with a random
// 16-byte salt: "pbkdf2-sha256$<iterations>$<salt>$<hash>", salt and the
// 32-byte hash in unpadded standard base64 (RFC 4648 §4). The default
// 600 000 iterations is OWASP's 2023 figure for this hash: ~0.2-0.5 s on
// one core, which is the point — a stolen hash file costs an attacker as
// much per guess. REQUIRES: 1000 <= iterations <= 10 000 000.
std::string hash_password(std::string_view password, std::uint32_t iterations = 600'000);

// Whether `password` matches `hash` (constant-time comparison). False also
// for a hash string that is not in hash_password's format.
bool verify_password(std::string_view password, std::string_view hash);

struct basic_options {
  // How long a verified user:password stays in the cache. Short: a
  // changed password is picked up on restart anyway, but a cached
  // credential is one an attacker with memory access could brute-force
  // fast (see basic_auth). 0 disables the cache.
  std::chrono::seconds cache_ttl{60};
  // At most this many cached credentials; the oldest goes first.
  std::size_t cache_entries = 1024;
  // The cache's clock. Default: steady_clock::now. Tests inject one.
  std::function<std::chrono::steady_clock::time_point()> clock{};
};

class basic_auth final : public authenticator {
 public:
  // Throws core::config_error naming "basic_users[i].name" (empty, has
  // ':', duplicate) or "basic_users[i].password_hash" (not a
  // hash_password string, or iterations outside 1000..10 000 000).
  explicit basic_auth(std::vector<basic_user> users, basic_options options = {});
  ~basic_auth() override;
  auth_result authenticate(const http::request& req) const override;
  // Basic realm="...", charset="UTF-8" (RFC 7617 §2, §2.1).
  std::string challenge(std::string_view realm, const auth_result* failure) const override;

  // How many PBKDF2 derivations authentication has run (cache misses,
  // unknown users and wrong passwords): the CPU the cache did not save.
  std::uint64_t derivations() const noexcept { return derivations_.load(); }

 private:
  class cache;
  struct user;
  std::vector<user> users_;
  basic_options options_;
  std::unique_ptr<cache> cache_;
  mutable std::atomic<std::uint64_t> derivations_{0};
};

// ---------------------------------------------------------------------------
// The middleware.

struct authenticate_options {
  // The protection space named in every challenge (RFC 9110 §11.5).
  std::string realm = "trellis";
  // Let requests without any credentials through, unauthenticated (no
  // auth.* attributes). Invalid credentials are refused either way.
  bool optional = false;
};

class authenticate final : public http::middleware {
 public:
  // Throws core::config_error("auth.authenticators") when `chain` is empty
  // or holds a null.
  explicit authenticate(std::vector<std::shared_ptr<const authenticator>> chain,
                        authenticate_options options = {});
  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;

  // The challenges a 401 carries, one per authenticator: what to give
  // require's requirement::challenges so its 401s say the same.
  std::vector<std::string> challenges() const;

 private:
  http::filter_status decide(http::request& req, http::response& res) const;

  std::vector<std::shared_ptr<const authenticator>> chain_;
  authenticate_options options_;
};

// What a route requires of an authenticated caller.
struct requirement {
  std::vector<std::string> scopes{};  // every one of these
  std::vector<std::string> roles{};   // at least one of these (none listed: no check)
  // Attribute "auth.claim.NAME" must equal the value (list NAME in
  // jwt_bearer_options::claim_attributes so it is set).
  std::vector<std::pair<std::string, std::string>> claims{};
  // The WWW-Authenticate challenges of a 401 (authenticate::challenges()).
  // Empty: Bearer realm="trellis".
  std::vector<std::string> challenges{};
  std::string realm = "trellis";  // for the 403's insufficient_scope challenge
};

class require final : public http::middleware {
 public:
  explicit require(requirement r);
  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;

 private:
  http::filter_status decide(http::request& req, http::response& res) const;
  requirement r_;
};

}  // namespace trellis::gateway
