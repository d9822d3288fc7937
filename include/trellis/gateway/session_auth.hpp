// session_auth: a login kept in a server-side session — how a browser
// stays signed in at the gateway without sending its password or token on
// every request (the study guide's "stateless HTTP, stateful apps").
//
// Two pieces around the session middleware (session.hpp) and authenticate
// (auth.hpp), in a route's chain in this order:
//
//   session_middleware   loads the session named by the cookie
//   authenticate         [session_authenticator, basic_auth, ...]
//   session_login        a request authenticated by anything but the
//                        session stores who it is in the session
//
//   - session_authenticator is an authenticator like the others: a request
//     whose session holds a login is authenticated as that subject, with
//     its scopes and roles (auth.method "session"); without one it has no
//     credentials of this kind, and the next authenticator is asked.
//   - session_login runs after authentication: when the request was
//     authenticated by another scheme (a Basic password, a token) and the
//     session does not already hold that subject, it records the identity
//     ("auth": {"method", "subject", "scopes", "roles"}) and regenerates
//     the session id — the fixation defence: an id that existed before the
//     login (planted by an attacker, or anonymous) is never the id of the
//     logged-in session. The client gets the new cookie with the answer.
//   - session_logout is a handler that destroys the session (the store
//     forgets it, the cookie is expired) and answers 204.
//
// What is stored is the identity, not the credential: the password or
// token is never written to the session. The session's own expiry (idle
// and absolute) then bounds the login, and revoking it is deleting one
// record — which a JWT cannot offer before its "exp".
//
// Thread-safety: all three are shared by every worker; the session
// middleware's per-request state is the only mutable state they touch.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "trellis/gateway/auth.hpp"
#include "trellis/gateway/session.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {

// The session key the identity is stored under.
inline constexpr std::string_view session_auth_key = "auth";

class session_authenticator final : public authenticator {
 public:
  // REQUIRES: sessions is not null and runs before the authenticate
  // middleware this authenticator is part of.
  explicit session_authenticator(std::shared_ptr<const session_middleware> sessions);
  auth_result authenticate(const http::request& req) const override;
  // Sessions have no WWW-Authenticate scheme: the login happens through
  // another scheme, whose challenge is sent.
  std::string challenge(std::string_view realm, const auth_result* failure) const override;

 private:
  std::shared_ptr<const session_middleware> sessions_;
};

class session_login final : public http::middleware {
 public:
  explicit session_login(std::shared_ptr<const session_middleware> sessions);
  asio::awaitable<http::filter_status> before(http::request& req, http::response& res) override;

 private:
  std::shared_ptr<const session_middleware> sessions_;
};

// A handler that logs the session out: destroyed, cookie expired, 204.
// REQUIRES: `sessions` runs before it (http::with_middleware).
http::handler session_logout(std::shared_ptr<const session_middleware> sessions);

}  // namespace trellis::gateway
