// What the reverse and the forward proxy share once an upstream response
// head is in: relaying it to the client, and splicing two tunnels.
// Internal to src/proxy.
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>

#include <asio/any_io_executor.hpp>
#include <asio/execution/context.hpp>
#include <asio/query.hpp>
#include <stdexcept>
#include <vector>

#include "trellis/http/client.hpp"
#include "trellis/lb/cluster.hpp"
#include "trellis/http/message.hpp"
#include "trellis/proxy/forwarding.hpp"

namespace trellis::proxy::detail {

// The state, among a proxy's per-worker states, of the worker whose
// executor runs the request (each State has `asio::execution_context*
// context`). Throws std::logic_error for a foreign executor: a bug.
template <class State>
State& state_for(const std::vector<std::unique_ptr<State>>& workers, const asio::any_io_executor& ex) {
  asio::execution_context* ctx = &asio::query(ex, asio::execution::context);
  for (const auto& w : workers)
    if (w->context == ctx) return *w;
  throw std::logic_error("proxy: a request on an executor that is not one of its workers");
}

// Fills `out` with the fields of the request to send upstream: the
// client's, minus hop-by-hop fields, Expect (the proxy answers it itself,
// by reading the body) and a Content-Length that does not frame the body;
// an Upgrade request asks for the upgrade again on this hop; forwarding
// fields set per `forwarding`.
void upstream_fields(const http::request& req, http::fields& out,
                     const forwarding_options& forwarding);

// Copies bytes from `from` to `to` until `from` ends, then ends `to`'s
// sending side too, so a half-close travels through.
asio::awaitable<void> pump(http::tunnel& from, http::tunnel& to);

// Both directions at once, until both have ended.
asio::awaitable<void> splice(http::tunnel& a, http::tunnel& b);

// One request's trip upstream (reverse_proxy::call_upstream): the host
// that answered and the response head, or why none did.
struct upstream_call {
  std::optional<http::client_stream> stream;  // engaged: a response head came
  const lb::host* host = nullptr;             // the host that sent it
  lb::host_set_ptr snapshot;                  // keeps *host alive
  std::error_code error;                      // without a stream: the last attempt's failure
  std::string error_host;
  bool no_host = false;  // no host to pick at all (503)
  // When the request went out and the response head came back (RFC 9111
  // §4.2.3's request_time and response_time).
  std::chrono::system_clock::time_point request_time;
  std::chrono::system_clock::time_point response_time;
};

// Sees a relayed response body on its way to the client, to keep a copy
// of it (the caching proxy's fill). Runs on the request's worker. A
// capture destroyed without finish() saw a body that broke off, or one
// the client stopped reading: it keeps nothing.
class body_capture {
 public:
  virtual ~body_capture() = default;
  virtual void append(std::string_view piece) = 0;
  virtual void finish() = 0;  // the body arrived whole
};

struct relay_settings {
  std::string_view via;                // pseudonym for Via; empty: none
  std::size_t buffer_size = 0;         // bodies up to this are sent whole with the head
  std::string_view request_id_header;  // set on the response when request_id is not empty
  std::string_view request_id;
  std::shared_ptr<body_capture> capture;  // null: the body is not kept
};

// Moves an upstream response into `res`: hop-by-hop fields removed, Via
// added; a 101 becomes an upgrade that splices the two connections (only
// when the client asked to upgrade: 502 otherwise); a body up to
// buffer_size is read whole (a failure then becomes a clean 502), a larger
// one streams at the client's pace (a failure then cuts it short).
// `hold` is called once if anything must outlive the handler (a streamed
// body, a tunnel) and what it returns is kept until then: the caller's
// accounting for the upstream host. `on_broken` hears of an upstream that
// broke its response. settings.capture, when set, sees the body as it
// goes (a response without a body finishes it at once).
asio::awaitable<void> relay_response(http::client_stream stream, http::request& req,
                                     http::response& res, const relay_settings& settings,
                                     const std::function<std::shared_ptr<void>()>& hold,
                                     std::function<void(std::error_code)> on_broken);

}  // namespace trellis::proxy::detail
