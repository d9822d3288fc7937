#include "trellis/gateway/session_auth.hpp"

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace trellis::gateway {

namespace {

using json = nlohmann::json;

// "a b c" -> ["a", "b", "c"]: the attributes' space-separated lists.
std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

std::vector<std::string> strings(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& v : j)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

}  // namespace

session_authenticator::session_authenticator(std::shared_ptr<const session_middleware> sessions)
    : sessions_(std::move(sessions)) {}

auth_result session_authenticator::authenticate(const http::request& req) const {
  const session* s = sessions_->find(req);
  if (s == nullptr) return auth_result::none();
  const json* who = s->find(std::string(session_auth_key));
  if (who == nullptr || !who->is_object()) return auth_result::none();
  const auto subject = who->find("subject");
  if (subject == who->end() || !subject->is_string() || subject->get<std::string>().empty())
    return auth_result::none();
  identity id;
  id.method = "session";
  id.subject = subject->get<std::string>();
  if (auto it = who->find("scopes"); it != who->end()) id.scopes = strings(*it);
  if (auto it = who->find("roles"); it != who->end()) id.roles = strings(*it);
  return auth_result::ok(std::move(id));
}

std::string session_authenticator::challenge(std::string_view, const auth_result*) const {
  return {};
}

session_login::session_login(std::shared_ptr<const session_middleware> sessions)
    : sessions_(std::move(sessions)) {}

asio::awaitable<http::filter_status> session_login::before(http::request& req, http::response&) {
  const std::string_view method = req.attribute("auth.method");
  const std::string_view subject = req.attribute("auth.subject");
  if (method.empty() || method == "session" || subject.empty())
    co_return http::filter_status::proceed;
  session& s = sessions_->get(req);
  const json* stored = s.find(std::string(session_auth_key));
  if (stored != nullptr && stored->is_object() && stored->value("subject", "") == subject)
    co_return http::filter_status::proceed;  // already this login: no write, no new id
  s.regenerate();
  s.set(std::string(session_auth_key), json{{"method", std::string(method)},
                                            {"subject", std::string(subject)},
                                            {"scopes", words(req.attribute("auth.scopes"))},
                                            {"roles", words(req.attribute("auth.roles"))}});
  co_return http::filter_status::proceed;
}

http::handler session_logout(std::shared_ptr<const session_middleware> sessions) {
  return [sessions = std::move(sessions)](http::request& req,
                                          http::response& res) -> asio::awaitable<void> {
    sessions->get(req).destroy();
    res.status = 204;
    co_return;
  };
}

}  // namespace trellis::gateway
