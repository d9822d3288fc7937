#include "trellis/gateway/composition.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "trellis/codec/http/serializer.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/core/log.hpp"
#include "trellis/http/json.hpp"

namespace trellis::gateway {

struct composition::call_state {
  composition_call call;
  std::unique_ptr<proxy::reverse_proxy> proxy;
};

namespace {

using json = nlohmann::json;

// What became of one call.
struct outcome {
  int status = 0;  // the answer's status; 0 when none was read
  std::string body;
  std::string error;  // empty: succeeded
  json value;         // the parsed body when it succeeded
};

// Keeps a streamed answer, up to a limit (the proxy streams bodies above
// its buffer_size instead of buffering them).
class collector final : public http::body_writer {
 public:
  collector(std::string& out, std::size_t max) : out_(out), max_(max) {}
  asio::awaitable<std::error_code> write(std::string_view data) override {
    if (data.size() > max_ - std::min(max_, out_.size())) {
      too_large_ = true;
      co_return std::make_error_code(std::errc::message_size);
    }
    out_.append(data);
    co_return std::error_code{};
  }
  void abort() override { cut_ = true; }
  bool too_large() const noexcept { return too_large_; }
  bool cut() const noexcept { return cut_; }

 private:
  std::string& out_;
  std::size_t max_;
  bool too_large_ = false;
  bool cut_ = false;
};

// Placeholders of a path template: the names between braces.
std::vector<std::string> placeholders(std::string_view path) {
  std::vector<std::string> out;
  for (std::size_t open = path.find('{'); open != std::string_view::npos;
       open = path.find('{', open + 1)) {
    const auto close = path.find('}', open);
    if (close == std::string_view::npos) break;
    out.emplace_back(path.substr(open + 1, close - open - 1));
  }
  return out;
}

void check_call(const composition_call& c, std::size_t i, std::set<std::string>& names) {
  const std::string field = "calls[" + std::to_string(i) + "]";
  if (c.name.empty()) throw core::config_error(field + ".name", "must not be empty");
  // The merged document's own members.
  if (c.name == "partial" || c.name == "errors")
    throw core::config_error(field + ".name", "'" + c.name + "' is reserved for failure reports");
  if (!names.insert(c.name).second)
    throw core::config_error(field + ".name", "two calls are named '" + c.name + "'");
  if (!c.cluster) throw core::config_error(field + ".cluster", "is required");
  if (!c.path.starts_with('/'))
    throw core::config_error(field + ".path", "must start with '/', got '" + c.path + "'");
  std::set<std::string> seen;
  const auto params = placeholders(c.path);
  std::size_t braces = 0;
  for (char ch : c.path) braces += (ch == '{' || ch == '}') ? 1 : 0;
  if (braces != params.size() * 2)
    throw core::config_error(field + ".path", "unbalanced '{' or '}' in '" + c.path + "'");
  for (const auto& p : params)
    if (p.empty() || !seen.insert(p).second)
      throw core::config_error(field + ".path", "empty or repeated parameter in '" + c.path + "'");
  if (c.timeout.count() <= 0) throw core::config_error(field + ".timeout", "must be positive");
}

}  // namespace

composition::composition(core::runtime& rt, std::vector<composition_call> calls,
                         composition_options options)
    : options_(std::move(options)) {
  if (calls.empty()) throw core::config_error("calls", "a composition needs at least one call");
  std::set<std::string> names;
  for (std::size_t i = 0; i < calls.size(); ++i) check_call(calls[i], i, names);
  for (auto& c : calls) {
    auto state = std::make_unique<call_state>();
    proxy::reverse_proxy_options o = options_.proxy;
    o.total_timeout = c.timeout;
    o.first_byte_timeout = std::min(o.first_byte_timeout, c.timeout);
    o.connect_timeout = std::min(o.connect_timeout, c.timeout);
    o.pool_wait_timeout = std::min(o.pool_wait_timeout, c.timeout);
    o.cache = {};  // a composed answer is not an edge's to cache call by call
    state->proxy = std::make_unique<proxy::reverse_proxy>(rt, c.cluster, std::move(o));
    state->call = std::move(c);
    calls_.push_back(std::move(state));
  }
}

composition::~composition() = default;

http::handler composition::handler() {
  return [this](http::request& req, http::response& res) { return handle(req, res); };
}

std::optional<std::string> composition::expand(std::string_view path, const http::request& req) {
  std::string out;
  out.reserve(path.size() + 16);
  std::size_t at = 0;
  while (at < path.size()) {
    const auto open = path.find('{', at);
    if (open == std::string_view::npos) {
      out.append(path.substr(at));
      break;
    }
    const auto close = path.find('}', open);
    if (close == std::string_view::npos) return std::nullopt;
    out.append(path.substr(at, open - at));
    const auto name = path.substr(open + 1, close - open - 1);
    if (!req.has_param(name)) return std::nullopt;
    const auto value = req.param(name);
    // A parameter is one path segment of the client's request; inside a
    // call's path it must stay one value, not become "../admin" or
    // "7?role=admin" in the service's eyes.
    if (value.empty() || value.find_first_of("/?#") != std::string_view::npos || value == "." ||
        value == "..")
      return std::nullopt;
    out.append(value);
    at = close + 1;
  }
  return out;
}

namespace {

// One call, from the sub-request to the parsed answer.
asio::awaitable<void> run_call(proxy::reverse_proxy& proxy, const http::request& parent,
                               const composition_options& options, const std::string& target,
                               outcome& out) {
  std::vector<http::header_field> fields;
  fields.push_back(http::header_field{"Accept", "application/json"});
  for (const auto& name : options.forward_headers) {
    const auto v = parent.header(name);
    if (!v.empty()) fields.push_back(http::header_field{name, v});
  }
  const std::string& id_header = options.proxy.request_id_header;
  if (!id_header.empty() && !parent.header(id_header).empty())
    fields.push_back(http::header_field{id_header, parent.header(id_header)});
  http::request_head head;
  head.method = http::method::get;
  head.method_text = "GET";
  head.target = target;
  head.headers = fields;
  head.host = parent.host();
  http::request sub;
  sub.bind(head, nullptr, parent.remote_endpoint(), parent.secure());
  for (const auto& [k, v] : parent.attributes()) sub.set_attribute(k, v);

  http::response res;
  co_await proxy.handle(sub, res);
  out.status = res.status;
  if (res.stream) {
    collector sink(out.body, options.max_body);
    co_await res.stream(sink);
    if (sink.too_large()) {
      out.error = "answer larger than " + std::to_string(options.max_body) + " bytes";
      co_return;
    }
    if (sink.cut()) {
      out.error = "answer cut short";
      co_return;
    }
  } else {
    out.body = std::move(res.body);
  }
  if (out.status < 200 || out.status > 299) {
    out.error = out.status == 504 ? "timed out" : "answered " + std::to_string(out.status);
    co_return;
  }
  auto parsed = http::parse_json(out.body);
  if (!parsed) {
    out.error = "answer is not JSON";
    co_return;
  }
  out.value = std::move(*parsed);
}

}  // namespace

asio::awaitable<void> composition::handle(http::request& req, http::response& res) {
  const std::size_t n = calls_.size();
  std::vector<std::string> targets(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto t = expand(calls_[i]->call.path, req);
    if (!t) {
      http::set_problem(res, 400, "Bad Request",
                        "a path parameter is missing or is not a single segment");
      co_return;
    }
    targets[i] = std::move(*t);
  }

  // Every call at once; this coroutine waits on a timer that the last one
  // to finish cancels. The calls refer to this frame's locals, which is
  // safe because the frame outlives them: it resumes only after all ended.
  const auto ex = co_await asio::this_coro::executor;
  struct join {
    explicit join(const asio::any_io_executor& e, std::size_t count) : timer(e), left(count) {}
    asio::steady_timer timer;
    std::size_t left;
  };
  auto done = std::make_shared<join>(ex, n);
  done->timer.expires_at(asio::steady_timer::time_point::max());
  std::vector<outcome> outcomes(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto finished = [done, &out = outcomes[i], name = calls_[i]->call.name](std::exception_ptr e) {
      if (e) {
        out.error = "internal error";
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& what) {
          core::log::error("composition call failed", {{"call", name}, {"what", what.what()}});
        } catch (...) {
          core::log::error("composition call failed", {{"call", name}});
        }
      }
      if (--done->left == 0) done->timer.cancel();
    };
    auto call = run_call(*calls_[i]->proxy, req, options_, targets[i], outcomes[i]);
    asio::co_spawn(ex, std::move(call), std::move(finished));
  }
  if (done->left > 0) (void)co_await done->timer.async_wait(use_nothrow);

  json doc = json::object();
  json errors = json::object();
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = calls_[i]->call;
    auto& o = outcomes[i];
    if (o.error.empty()) {
      doc[c.name] = std::move(o.value);
      continue;
    }
    if (c.required) {
      // A required resource the service says is not there (404), or that
      // the client may not see (401/403), is the answer; a broken service
      // is the gateway's failure to get it.
      if (o.status >= 400 && o.status < 500) {
        http::set_problem(res, o.status, http::reason_phrase(o.status),
                          "the " + c.name + " call " + o.error);
      } else {
        const int status = o.status == 504 ? 504 : 502;
        http::set_problem(res, status, http::reason_phrase(status),
                          "the " + c.name + " call " + o.error);
      }
      co_return;
    }
    doc[c.name] = nullptr;
    json why = json::object();
    why["status"] = o.status;
    why["error"] = o.error;
    errors[c.name] = std::move(why);
  }
  if (!errors.empty()) {
    doc["partial"] = true;
    doc["errors"] = std::move(errors);
  }
  http::set_json(res, doc, 200);
}

}  // namespace trellis::gateway
