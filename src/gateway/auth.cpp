#include "trellis/gateway/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "trellis/codec/base64.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/core/error.hpp"
#include "trellis/http/json.hpp"

namespace trellis::gateway {

using json = nlohmann::json;

namespace {

constexpr std::uint32_t k_min_iterations = 1000;
constexpr std::uint32_t k_max_iterations = 10'000'000;
constexpr std::size_t k_hash_size = 32;  // PBKDF2 output: one SHA-256 block
constexpr std::size_t k_salt_size = 16;  // what hash_password makes
constexpr std::size_t k_min_salt_size = 8;
constexpr std::string_view k_hash_prefix = "pbkdf2-sha256$";
constexpr codec::base64_options k_b64_unpadded{.alphabet = codec::base64_alphabet::standard,
                                               .padding = false};

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_spaces(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const std::size_t sp = s.find(' ');
    const std::string_view word = s.substr(0, sp);
    if (!word.empty()) out.emplace_back(word);
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

bool contains(const std::vector<std::string>& words, std::string_view w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

// A quoted-string (RFC 9110 §5.6.4) holding `s`: '"' and '\' escaped,
// control characters dropped (they could not be sent in a field anyway).
std::string quote_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) continue;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E
// — printable ASCII without '"' and '\' — so no escaping is needed.
std::string description(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u <= 0x7e && c != '"' && c != '\\') out += c;
  }
  out += '"';
  return out;
}

std::string sha256(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> d{};
  EVP_Digest(data.data(), data.size(), d.data(), nullptr, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    out += digits[u >> 4];
    out += digits[u & 15];
  }
  return out;
}

bool is_lower_hex(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The Authorization field of a request, split into scheme and credentials
// (RFC 9110 §11.6.2). More than one Authorization line is refused by
// whichever scheme finds it first: which one is "the" credential would be
// a guess, and two components guessing differently is how bypasses happen.
struct authorization {
  bool present = false;
  bool repeated = false;
  std::string_view scheme;
  std::string_view credentials;
};

authorization authorization_of(const http::request& req) {
  authorization a;
  for (const auto& f : req.headers()) {
    if (!iequals(f.name, "authorization")) continue;
    if (a.present) {
      a.repeated = true;
      break;
    }
    a.present = true;
    const std::string_view v = trim(f.value);
    const std::size_t sp = v.find(' ');
    a.scheme = v.substr(0, sp);
    a.credentials = sp == std::string_view::npos ? std::string_view{} : trim(v.substr(sp + 1));
  }
  return a;
}

// b64token (RFC 6750 §2.1): 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
bool is_b64token(std::string_view s) noexcept {
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  for (; i < s.size(); ++i)
    if (s[i] != '=') return false;
  return true;
}

// Strings from a claim value: a space-separated string, or an array of
// strings (elements with a space, or not strings, are skipped: they
// cannot be told apart in a space-separated attribute).
std::vector<std::string> words_of(const json& v) {
  if (v.is_string()) return split_spaces(v.get_ref<const std::string&>());
  std::vector<std::string> out;
  if (!v.is_array()) return out;
  for (const auto& e : v) {
    if (!e.is_string()) continue;
    const auto& s = e.get_ref<const std::string&>();
    if (!s.empty() && s.find(' ') == std::string::npos) out.push_back(s);
  }
  return out;
}

// A 401 with one challenge per authenticator and a problem body.
void unauthorized(http::response& res, const std::vector<std::string>& challenges,
                  std::string_view detail) {
  res.status = 401;
  // A scheme without a challenge of its own (a session) adds none.
  for (const auto& c : challenges)
    if (!c.empty()) (void)res.headers.add("WWW-Authenticate", c);
  http::set_problem(res, 401, "Unauthorized", detail);
}

struct parsed_hash {
  std::uint32_t iterations = 0;
  std::string salt;
  std::string hash;
};

std::optional<parsed_hash> parse_password_hash(std::string_view s) {
  if (!s.starts_with(k_hash_prefix)) return std::nullopt;
  s.remove_prefix(k_hash_prefix.size());
  const std::size_t d1 = s.find('$');
  if (d1 == std::string_view::npos) return std::nullopt;
  const std::size_t d2 = s.find('$', d1 + 1);
  if (d2 == std::string_view::npos) return std::nullopt;
  parsed_hash out;
  const std::string_view iter = s.substr(0, d1);
  const auto [end, ec] = std::from_chars(iter.data(), iter.data() + iter.size(), out.iterations);
  if (ec != std::errc() || end != iter.data() + iter.size() || iter.starts_with('0'))
    return std::nullopt;
  if (out.iterations < k_min_iterations || out.iterations > k_max_iterations) return std::nullopt;
  auto salt = codec::base64_decode(s.substr(d1 + 1, d2 - d1 - 1), k_b64_unpadded);
  auto hash = codec::base64_decode(s.substr(d2 + 1), k_b64_unpadded);
  if (!salt || !hash || salt->size() < k_min_salt_size || hash->size() != k_hash_size)
    return std::nullopt;
  out.salt = std::move(*salt);
  out.hash = std::move(*hash);
  return out;
}

std::string pbkdf2(std::string_view password, std::string_view salt, std::uint32_t iterations) {
  std::string out(k_hash_size, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                    static_cast<int>(out.size()), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// jwt_bearer

jwt_bearer::jwt_bearer(std::shared_ptr<const jwt_verifier> verifier, jwt_bearer_options options)
    : verifier_(std::move(verifier)), options_(std::move(options)) {
  if (!verifier_) throw core::config_error("jwt.verifier", "a JWT verifier is required");
  if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
  if (options_.roles_claim.starts_with('/')) {
    try {
      (void)json::json_pointer(options_.roles_claim);
    } catch (const json::exception& e) {
      throw core::config_error("jwt.roles_claim", std::string("not a JSON Pointer: ") + e.what());
    }
    roles_pointer_ = true;
  }
}

auth_result jwt_bearer::authenticate(const http::request& req) const {
  const authorization a = authorization_of(req);
  if (!a.present || !iequals(a.scheme, "bearer")) {
    if (a.repeated) return auth_result::fail("more than one Authorization field");
    return auth_result::none();
  }
  if (a.repeated) return auth_result::fail("more than one Authorization field");
  if (!is_b64token(a.credentials)) return auth_result::fail("malformed Bearer credentials");
  auto t = verifier_->verify(a.credentials, options_.clock());
  if (!t) return auth_result::fail(t.error().message());

  const json& claims = t->claims;
  identity who;
  who.method = "jwt";
  if (const auto sub = claims.find("sub"); sub != claims.end() && sub->is_string())
    who.subject = sub->get<std::string>();
  if (const auto scope = claims.find("scope"); scope != claims.end()) {
    who.scopes = words_of(*scope);
  } else if (const auto scp = claims.find("scp"); scp != claims.end()) {
    who.scopes = words_of(*scp);
  }
  if (roles_pointer_) {
    const json::json_pointer ptr(options_.roles_claim);
    if (claims.contains(ptr)) who.roles = words_of(claims.at(ptr));
  } else if (const auto roles = claims.find(options_.roles_claim); roles != claims.end()) {
    who.roles = words_of(*roles);
  }
  for (const auto& name : options_.claim_attributes) {
    const auto c = claims.find(name);
    if (c == claims.end()) continue;
    if (c->is_string()) {
      who.claims.emplace_back(name, c->get<std::string>());
    } else if (c->is_number() || c->is_boolean()) {
      who.claims.emplace_back(name, c->dump());
    }
  }
  return auth_result::ok(std::move(who));
}

std::string jwt_bearer::challenge(std::string_view realm, const auth_result* failure) const {
  std::string c = "Bearer realm=" + quote_string(realm);
  if (failure) c += ", error=\"invalid_token\", error_description=" + description(failure->reason);
  return c;
}

// ---------------------------------------------------------------------------
// api_key_auth

std::string hash_api_key(std::string_view key) {
  return hex(sha256(key));
}

api_key_auth::api_key_auth(std::vector<api_key_entry> keys, api_key_options options)
    : options_(std::move(options)) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string field = "api_keys[" + std::to_string(i) + "]";
    api_key_entry& k = keys[i];
    if (k.name.empty()) throw core::config_error(field + ".name", "an API key needs a name");
    if (k.sha256.size() != 64 || !is_lower_hex(k.sha256))
      throw core::config_error(field + ".sha256",
                               "must be 64 lowercase hex digits (hash_api_key of the key)");
    std::string digest = k.sha256;
    if (!by_digest_.emplace(std::move(digest), std::move(k)).second)
      throw core::config_error(field + ".sha256", "the same key is configured twice");
  }
  if (options_.header.empty() && !options_.allow_query)
    throw core::config_error("api_key.header", "no header and no query parameter to read");
}

// Why a hash-table lookup of the digest is not a timing oracle for the key:
// the table compares SHA-256(presented key) with stored digests, and the
// time it takes may depend on how many leading bytes match. An attacker
// who could measure that learns about the *digest* of their guess, not
// about the key: to move one byte closer they would need a key whose
// SHA-256 starts with chosen bytes, which is a preimage search — and even
// a full digest match found that way is worthless without a key that
// hashes to it. Keys are random (>= 128 bits), so there is nothing to
// guess incrementally either. This is also why a plain, fast, unsalted
// hash is right here, unlike for passwords: the input has full entropy.
auth_result api_key_auth::authenticate(const http::request& req) const {
  std::string_view key;
  bool found = false;
  if (!options_.header.empty()) {
    for (const auto& f : req.headers()) {
      if (!iequals(f.name, options_.header)) continue;
      if (found) return auth_result::fail("more than one API key");
      key = trim(f.value);
      found = true;
    }
  }
  std::optional<http::query_params> params;
  if (!found && options_.allow_query && !req.query().empty()) {
    auto parsed = http::query_params::parse(req.query());
    if (parsed) {
      params = std::move(*parsed);
      const auto all = params->get_all(options_.query_param);
      if (all.size() > 1) return auth_result::fail("more than one API key");
      if (all.size() == 1) {
        key = all.front();
        found = true;
      }
    }
  }
  if (!found) return auth_result::none();
  if (key.empty()) return auth_result::fail("empty API key");
  const auto it = by_digest_.find(hash_api_key(key));
  if (it == by_digest_.end()) return auth_result::fail("unknown API key");
  identity who;
  who.method = "api_key";
  who.subject = it->second.name;
  who.scopes = it->second.scopes;
  who.roles = it->second.roles;
  return auth_result::ok(std::move(who));
}

std::string api_key_auth::challenge(std::string_view realm, const auth_result*) const {
  std::string c = "ApiKey realm=" + quote_string(realm);
  if (!options_.header.empty()) c += ", header=" + quote_string(options_.header);
  return c;
}

// ---------------------------------------------------------------------------
// basic_auth

std::string hash_password(std::string_view password, std::uint32_t iterations) {
  if (iterations < k_min_iterations || iterations > k_max_iterations)
    throw std::invalid_argument("hash_password: iterations outside 1000..10000000");
  std::string salt(k_salt_size, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1)
    throw std::runtime_error("hash_password: no randomness available");
  return std::string(k_hash_prefix) + std::to_string(iterations) + "$" +
         codec::base64_encode(salt, k_b64_unpadded) + "$" +
         codec::base64_encode(pbkdf2(password, salt, iterations), k_b64_unpadded);
}

bool verify_password(std::string_view password, std::string_view hash) {
  const auto h = parse_password_hash(hash);
  return h && equal_constant_time(pbkdf2(password, h->salt, h->iterations), h->hash);
}

struct basic_auth::user {
  std::string name;
  parsed_hash hash;
  std::vector<std::string> scopes;
  std::vector<std::string> roles;
};

// The cache of recently verified credentials, and why it is acceptable.
//
// PBKDF2 with 600 000 iterations is meant to be slow, and Basic sends the
// password with every request: deriving each time would cost a core a
// third of a second per request. So a successful verification is
// remembered for a short while, keyed by SHA-256("user:password") (RFC
// 7617 forbids ':' in the user name, so the key is unambiguous).
//   - Only successes are cached: wrong passwords always pay the full
//     derivation, so the cache neither speeds up guessing nor can be
//     flooded by an attacker (entries need valid credentials).
//   - The cost: while an entry lives, the process's memory holds a fast
//     hash of a real password, which someone able to read that memory
//     could brute-force far quicker than the PBKDF2 hash. Such an attacker
//     can usually read the plaintext passwords of in-flight requests
//     anyway; the short expiry and size bound keep the exposure small.
//   - Lookups compare digests, not passwords, for the reason given at
//     api_key_auth::authenticate.
// This is the trade-off Apache's mod_authn_socache and many API gateways
// make. Set cache_ttl to 0 to pay the derivation every time instead.
class basic_auth::cache {
 public:
  cache(std::size_t capacity, std::chrono::seconds ttl) : capacity_(capacity), ttl_(ttl) {}

  // The user index cached for `key`, if fresh.
  std::optional<std::size_t> find(const std::string& key,
                                  std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    const auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    if (now >= it->second.expires) {
      order_.erase(it->second.position);
      map_.erase(it);
      return std::nullopt;
    }
    return it->second.user;
  }

  void insert(const std::string& key, std::size_t user, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (const auto it = map_.find(key); it != map_.end()) {
      it->second.expires = now + ttl_;
      return;
    }
    if (map_.size() >= capacity_) {
      // Oldest first: entries are inserted in expiry order, so this also
      // drops expired ones before fresh ones.
      map_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(key);
    map_.emplace(key, entry{user, now + ttl_, std::prev(order_.end())});
  }

 private:
  struct entry {
    std::size_t user;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator position;
  };
  std::mutex mutex_;
  std::size_t capacity_;
  std::chrono::seconds ttl_;
  std::unordered_map<std::string, entry> map_;
  std::list<std::string> order_;  // keys, oldest first
};

basic_auth::basic_auth(std::vector<basic_user> users, basic_options options)
    : options_(std::move(options)) {
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string field = "basic_users[" + std::to_string(i) + "]";
    basic_user& u = users[i];
    if (u.name.empty() || u.name.find(':') != std::string::npos)
      throw core::config_error(field + ".name", "must be non-empty and without ':' (RFC 7617 §2)");
    for (const auto& other : users_)
      if (other.name == u.name) throw core::config_error(field + ".name", "duplicate user");
    auto h = parse_password_hash(u.password_hash);
    if (!h)
      throw core::config_error(field + ".password_hash",
                               "not a \"pbkdf2-sha256$ITERATIONS$SALT$HASH\" string with "
                               "1000..10000000 iterations (make one with hash_password)");
    users_.push_back(
        user{std::move(u.name), std::move(*h), std::move(u.scopes), std::move(u.roles)});
  }
  if (!options_.clock) options_.clock = [] { return std::chrono::steady_clock::now(); };
  if (options_.cache_ttl.count() > 0 && options_.cache_entries > 0)
    cache_ = std::make_unique<cache>(options_.cache_entries, options_.cache_ttl);
}

basic_auth::~basic_auth() = default;

auth_result basic_auth::authenticate(const http::request& req) const {
  const authorization a = authorization_of(req);
  if (!a.present || !iequals(a.scheme, "basic")) {
    if (a.repeated) return auth_result::fail("more than one Authorization field");
    return auth_result::none();
  }
  if (a.repeated) return auth_result::fail("more than one Authorization field");
  auto decoded = codec::base64_decode(a.credentials);
  if (!decoded) return auth_result::fail("malformed Basic credentials");
  const std::string& pair = *decoded;
  const std::size_t colon = pair.find(':');
  if (colon == std::string::npos) return auth_result::fail("malformed Basic credentials");
  const std::string_view name = std::string_view(pair).substr(0, colon);
  const std::string_view password = std::string_view(pair).substr(colon + 1);

  auto found = [&](std::size_t i) {
    identity who;
    who.method = "basic";
    who.subject = users_[i].name;
    who.scopes = users_[i].scopes;
    who.roles = users_[i].roles;
    return auth_result::ok(std::move(who));
  };
  const auto now = options_.clock();
  std::string key;
  if (cache_) {
    key = sha256(pair);
    if (const auto hit = cache_->find(key, now)) return found(*hit);
  }
  // The same message for an unknown user and a wrong password, and the
  // same work: an unknown user still pays a derivation (against a random
  // salt and hash), so response time does not reveal which names exist.
  static constexpr std::string_view k_refused = "unknown user or wrong password";
  const auto u =
      std::find_if(users_.begin(), users_.end(), [&](const user& x) { return x.name == name; });
  ++derivations_;
  if (u == users_.end()) {
    const std::uint32_t iterations = users_.empty() ? 600'000 : users_.front().hash.iterations;
    (void)pbkdf2(password, "trellis-no-such-user", iterations);
    return auth_result::fail(std::string(k_refused));
  }
  if (!equal_constant_time(pbkdf2(password, u->hash.salt, u->hash.iterations), u->hash.hash))
    return auth_result::fail(std::string(k_refused));
  const auto index = static_cast<std::size_t>(u - users_.begin());
  if (cache_) cache_->insert(key, index, now);
  return found(index);
}

std::string basic_auth::challenge(std::string_view realm, const auth_result*) const {
  return "Basic realm=" + quote_string(realm) + ", charset=\"UTF-8\"";
}

// ---------------------------------------------------------------------------
// authenticate

authenticate::authenticate(std::vector<std::shared_ptr<const authenticator>> chain,
                           authenticate_options options)
    : chain_(std::move(chain)), options_(std::move(options)) {
  if (chain_.empty())
    throw core::config_error("auth.authenticators", "at least one authenticator is required");
  for (const auto& a : chain_)
    if (!a) throw core::config_error("auth.authenticators", "null authenticator");
}

std::vector<std::string> authenticate::challenges() const {
  std::vector<std::string> out;
  for (const auto& a : chain_)
    if (auto c = a->challenge(options_.realm, nullptr); !c.empty()) out.push_back(std::move(c));
  return out;
}

http::filter_status authenticate::decide(http::request& req, http::response& res) const {
  for (const auto& a : chain_) {
    auth_result r = a->authenticate(req);
    if (r.outcome == auth_outcome::no_credentials) continue;
    if (r.outcome == auth_outcome::authenticated) {
      const identity& who = r.who;
      req.set_attribute("auth.method", who.method);
      req.set_attribute("auth.subject", who.subject);
      req.set_attribute("auth.scopes", join(who.scopes));
      req.set_attribute("auth.roles", join(who.roles));
      for (const auto& [name, value] : who.claims) req.set_attribute("auth.claim." + name, value);
      return http::filter_status::proceed;
    }
    // The first authenticator that found credentials decides: a refused
    // credential is not retried with the next scheme.
    std::vector<std::string> challenges;
    for (const auto& b : chain_)
      challenges.push_back(b->challenge(options_.realm, b == a ? &r : nullptr));
    unauthorized(res, challenges, r.reason);
    return http::filter_status::respond;
  }
  if (options_.optional) return http::filter_status::proceed;
  unauthorized(res, challenges(), "credentials are required");
  return http::filter_status::respond;
}

asio::awaitable<http::filter_status> authenticate::before(http::request& req, http::response& res) {
  co_return decide(req, res);
}

// ---------------------------------------------------------------------------
// require

require::require(requirement r) : r_(std::move(r)) {
  if (r_.challenges.empty()) r_.challenges.push_back("Bearer realm=" + quote_string(r_.realm));
}

http::filter_status require::decide(http::request& req, http::response& res) const {
  if (!req.has_attribute("auth.method")) {
    unauthorized(res, r_.challenges, "credentials are required");
    return http::filter_status::respond;
  }
  const std::vector<std::string> scopes = split_spaces(req.attribute("auth.scopes"));
  const bool scopes_ok = std::all_of(r_.scopes.begin(), r_.scopes.end(),
                                     [&](const std::string& s) { return contains(scopes, s); });
  bool roles_ok = r_.roles.empty();
  if (!roles_ok) {
    const std::vector<std::string> roles = split_spaces(req.attribute("auth.roles"));
    roles_ok = std::any_of(r_.roles.begin(), r_.roles.end(),
                           [&](const std::string& r) { return contains(roles, r); });
  }
  bool claims_ok = true;
  for (const auto& [name, value] : r_.claims) {
    const std::string attr = "auth.claim." + name;
    if (!req.has_attribute(attr) || req.attribute(attr) != value) claims_ok = false;
  }
  if (scopes_ok && roles_ok && claims_ok) return http::filter_status::proceed;

  res.status = 403;
  if (req.attribute("auth.method") == "jwt") {
    // RFC 6750 §3.1: the token is fine but does not grant enough; "scope"
    // tells the client which scopes a new token needs.
    std::string c = "Bearer realm=" + quote_string(r_.realm) + ", error=\"insufficient_scope\"";
    if (!r_.scopes.empty()) c += ", scope=" + quote_string(join(r_.scopes));
    (void)res.headers.add("WWW-Authenticate", c);
  }
  const char* why = !scopes_ok  ? "a required scope is missing"
                    : !roles_ok ? "none of the required roles is held"
                                : "a required claim does not match";
  http::set_problem(res, 403, "Forbidden", why);
  return http::filter_status::respond;
}

asio::awaitable<http::filter_status> require::before(http::request& req, http::response& res) {
  co_return decide(req, res);
}

}  // namespace trellis::gateway
