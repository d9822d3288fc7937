// request and response: what a handler sees and fills in.
//
// A request is a view of one parsed request head (RFC 9112 §3, §5) — method,
// target, fields — pointing into the connection's read buffer, plus a way
// to read its body as it arrives. Nothing is copied to build it; the views
// are valid until the handler returns. A response is the handler's answer:
// status, fields and either a buffered body or a stream function that
// writes the body piece by piece once the head is sent.
//
//   co_await [](http::request& req, http::response& res) -> asio::awaitable<void> {
//     auto body = co_await req.read_body();         // the easy path: buffered
//     if (!body) { res.status = http::status_for(body.error()); co_return; }
//     res.set_text("got " + std::to_string(body->size()) + " bytes\n");
//   };
//
// Streaming: read_some() hands out the body in pieces with backpressure
// (the next socket read happens only when the handler asks), so a handler
// can take a 10 GiB upload in constant memory; response::stream writes a
// body of unknown length with chunked framing (or raw, when the handler
// set Content-Length).
//
// Thread-safety: both belong to the connection's worker for the duration
// of one handler call.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "trellis/codec/http/fields.hpp"
#include "trellis/codec/http/parser.hpp"
#include "trellis/core/result.hpp"

namespace trellis::http {

// Where a request's body comes from: implemented by the server connection.
class body_source {
 public:
  // The next piece of the body; an empty view at the end. The view is valid
  // until the next call.
  virtual asio::awaitable<result<std::string_view>> read_some() = 0;

 protected:
  ~body_source() = default;
};

class request {
 public:
  http::method method() const noexcept { return head_->method; }
  std::string_view method_text() const noexcept { return head_->method_text; }
  // The request-target as sent (RFC 9112 §3.2), percent-encoding intact.
  std::string_view target() const noexcept { return head_->target; }
  // The path of the target ("/a/b" of "/a/b?x=1", also of an absolute-form
  // target), still percent-encoded; "*" for OPTIONS *.
  std::string_view path() const noexcept { return path_; }
  // The query after '?', without it; empty if none.
  std::string_view query() const noexcept { return query_; }
  int version_minor() const noexcept { return head_->version_minor; }
  std::string_view host() const noexcept { return head_->host; }
  // The first value of field `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const noexcept { return head_->find(name); }
  std::span<const header_field> headers() const noexcept { return head_->headers; }
  const request_head& head() const noexcept { return *head_; }
  bool has_body() const noexcept {
    return head_->framing == framing::chunked ||
           (head_->framing == framing::content_length && head_->content_length > 0);
  }

  // A path parameter captured by the router ("{id}" in "/users/{id}"), or
  // "" if there is none of that name.
  std::string_view param(std::string_view name) const noexcept {
    for (const auto& [k, v] : params_)
      if (k == name) return v;
    return {};
  }
  // Whether the router captured a parameter of that name (a "*" capture
  // may be empty, which param() alone cannot tell from "no capture").
  bool has_param(std::string_view name) const noexcept {
    for (const auto& [k, v] : params_)
      if (k == name) return true;
    return false;
  }
  // Set by the router. REQUIRES: both views outlive the handler call.
  void set_param(std::string_view name, std::string_view value) {
    params_.emplace_back(name, value);
  }
  std::size_t params_size() const noexcept { return params_.size(); }
  void truncate_params(std::size_t n) { params_.resize(n); }

  // Attributes: named values that middleware attaches to one request for
  // the ones after it and for the handler — the subject a token
  // authenticated, the API key's name, the client address a trusted proxy
  // reported (Envoy's dynamic metadata, Kong's ctx). Owned by the request,
  // cleared when the connection binds the next one. Setting a name again
  // replaces its value.
  void set_attribute(std::string_view name, std::string_view value);
  // The value of attribute `name`, or "" if it was never set.
  std::string_view attribute(std::string_view name) const noexcept {
    for (const auto& [k, v] : attributes_)
      if (k == name) return v;
    return {};
  }
  bool has_attribute(std::string_view name) const noexcept {
    for (const auto& [k, v] : attributes_)
      if (k == name) return true;
    return false;
  }
  // Every attribute, in the order first set (to copy them to a request
  // made on this one's behalf).
  const std::vector<std::pair<std::string, std::string>>& attributes() const noexcept {
    return attributes_;
  }

  const asio::ip::tcp::endpoint& remote_endpoint() const noexcept { return remote_; }
  bool secure() const noexcept { return secure_; }

  // The next piece of the body (empty view: the end). Sends 100 Continue
  // first when the client asked for it. Errors: the body's framing broke
  // (http::error), it exceeded the body limit (error::body_too_large), or
  // the client was too slow (net::error::timed_out).
  asio::awaitable<result<std::string_view>> read_some();
  // The whole body, up to `max` bytes (error::body_too_large beyond).
  asio::awaitable<result<std::string>> read_body(std::size_t max = SIZE_MAX);

  // Used by the server to bind a request to a parsed head and a body source.
  void bind(const request_head& head, body_source* body, const asio::ip::tcp::endpoint& remote,
            bool is_secure);

 private:
  const request_head* head_ = nullptr;
  body_source* body_ = nullptr;
  std::string_view path_, query_;
  std::vector<std::pair<std::string_view, std::string_view>> params_;
  std::vector<std::pair<std::string, std::string>> attributes_;
  asio::ip::tcp::endpoint remote_;
  bool secure_ = false;
};

// Writes a streamed response body: each write() is one chunk on the wire
// (or raw bytes when the handler set Content-Length), sent before write()
// completes, which is the backpressure.
class body_writer {
 public:
  virtual asio::awaitable<std::error_code> write(std::string_view data) = 0;
  // Cuts the body short: nothing more is written, the chunked body gets no
  // last chunk (or a Content-Length body stays short) and the connection
  // closes, so the client sees an incomplete message rather than a clean
  // one missing its end. For a stream whose source failed midway (a proxy
  // whose upstream broke).
  virtual void abort() = 0;

 protected:
  ~body_writer() = default;
};

// The raw byte stream of a connection once it stops speaking HTTP: after
// a 101 (Switching Protocols) to an Upgrade request, or a 2xx answer to
// CONNECT (RFC 9110 §7.8, §9.3.6). What a response's upgrade function gets
// (a WebSocket server, a CONNECT tunnel, a proxy relaying either), and
// what client_stream::upgraded() gives on the client side.
class tunnel {
 public:
  // Reads into `into`; 0 when the peer has finished sending. Bytes that
  // arrived with the HTTP head come first.
  virtual asio::awaitable<result<std::size_t>> read_some(std::span<char> into) = 0;
  // Writes all of `data` before completing.
  virtual asio::awaitable<std::error_code> write(std::string_view data) = 0;
  // Finishes the sending side (a TCP half-close); reading goes on. Over
  // TLS, where a half-close is not portable, it does nothing: the stream
  // ends when both sides are done.
  virtual void shutdown_send() = 0;

 protected:
  ~tunnel() = default;
};

class response {
 public:
  using streamer = std::function<asio::awaitable<void>(body_writer&)>;
  using upgrader = std::function<asio::awaitable<void>(tunnel&)>;

  int status = 200;
  // Fields the handler sets. The server adds Date, Server, Content-Length or
  // Transfer-Encoding and Connection itself; a Content-Length set here is
  // honoured only for a streamed body.
  http::fields headers;
  std::string body;
  // When set, the server sends the head, then calls stream(writer) to send
  // the body; `body` is ignored.
  streamer stream;
  // Trailer fields sent after a streamed chunked body (RFC 9112 §7.1.2),
  // which the stream function may fill as it goes (a checksum of what it
  // wrote). Framing and routing fields (Content-Length, Transfer-Encoding,
  // Host, Connection, Trailer) are never sent as trailers. Dropped when the
  // body is not chunked: a Content-Length body, an HTTP/1.0 client.
  http::fields trailers;
  // Takes the connection over once the head is sent: set it with status
  // 101 for a request that asked to Upgrade (the handler sets the Upgrade
  // field; the server writes "Connection: upgrade"), or with a 2xx for a
  // CONNECT. The connection closes when the function returns. Ignored
  // (and logged) with any other status or request. No body is sent.
  upgrader upgrade;
  // Close the connection after this response.
  bool close = false;

  // Sets the body and its Content-Type (default text/plain; charset=utf-8).
  void set_text(std::string text, std::string_view content_type = "text/plain; charset=utf-8");
  // Ready for the next request on the connection; keeps buffer capacity.
  void clear() noexcept;
};

// A request handler: fills in the response, may read the body.
using handler = std::function<asio::awaitable<void>(request&, response&)>;

}  // namespace trellis::http
