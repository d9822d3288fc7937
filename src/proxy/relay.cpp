#include "relay.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <string>
#include <vector>

#include "trellis/codec/ascii.hpp"
#include "trellis/proxy/forwarding.hpp"

namespace trellis::proxy::detail {

namespace {

// What a streamed body or a tunnel keeps alive after the handler returned.
struct relay_state {
  relay_state(http::client_stream s, std::shared_ptr<void> h, std::string first,
              std::shared_ptr<body_capture> c)
      : stream(std::move(s)), held(std::move(h)), buffered(std::move(first)), capture(std::move(c)) {}
  http::client_stream stream;
  std::shared_ptr<void> held;
  std::string buffered;  // the body read before deciding to stream
  std::shared_ptr<body_capture> capture;
};

void answer_502(http::response& res, const relay_settings& s, std::string text) {
  res.status = 502;
  res.headers.clear();
  res.set_text(std::move(text));
  if (!s.request_id.empty()) (void)res.headers.set(s.request_id_header, s.request_id);
}

}  // namespace

void upstream_fields(const http::request& req, http::fields& out,
                     const forwarding_options& forwarding) {
  const auto lines = req.headers();
  // Room for the client's lines and the forwarding fields added below,
  // so that the copy allocates once.
  std::size_t bytes = 256;
  for (const auto& f : lines) bytes += f.name.size() + f.value.size();
  out.reserve(lines.size() + 8, bytes);
  // Hop-by-hop fields, those Connection names, Expect (answered here) and a
  // Content-Length the body is not framed by are left out as the lines
  // are copied: cheaper than copying them and erasing them after.
  bool connection = false;
  for (const auto& f : lines) connection = connection || codec::iequals(f.name, "Connection");
  const auto named_by_connection = [&](std::string_view name) {
    for (const auto& f : lines)
      if (codec::iequals(f.name, "Connection") && http::has_token(f.value, name)) return true;
    return false;
  };
  const bool framed_by_length = req.head().framing == http::framing::content_length;
  for (const auto& f : lines) {
    if (is_hop_by_hop(f.name) || codec::iequals(f.name, "Expect") ||
        (!framed_by_length && codec::iequals(f.name, "Content-Length")) ||
        (connection && named_by_connection(f.name)))
      continue;
    (void)out.add(f.name, f.value);
  }
  if (req.head().upgrade) {  // asked of the next hop again: the Upgrade is this hop's own
    (void)out.add("Connection", "upgrade");
    (void)out.add("Upgrade", req.header("Upgrade"));
  }
  downstream_info down;
  down.peer = req.remote_endpoint().address();
  down.secure = req.secure();
  down.host = req.host();
  down.version_minor = req.version_minor();
  set_forwarding_fields(out, down, forwarding);
}

asio::awaitable<void> pump(http::tunnel& from, http::tunnel& to) {
  std::vector<char> buffer(16 * 1024);
  for (;;) {
    auto n = co_await from.read_some(buffer);
    if (!n || *n == 0) {
      to.shutdown_send();
      co_return;
    }
    if (auto ec = co_await to.write(std::string_view(buffer.data(), *n))) co_return;
  }
}

asio::awaitable<void> splice(http::tunnel& a, http::tunnel& b) {
  using namespace asio::experimental::awaitable_operators;
  co_await (pump(a, b) && pump(b, a));
}

asio::awaitable<void> relay_response(http::client_stream stream, http::request& req,
                                     http::response& res, const relay_settings& s,
                                     const std::function<std::shared_ptr<void>()>& hold,
                                     std::function<void(std::error_code)> on_broken) {
  http::client_response& head = stream.response();
  res.status = head.status;
  std::string upgrade_to;  // the protocol a 101 switches to
  if (head.status == 101) upgrade_to = head.headers.get("Upgrade").value_or("");
  res.headers = std::move(head.headers);
  remove_hop_by_hop(res.headers);
  append_via(res.headers, head.version_minor, s.via);
  if (!s.request_id.empty()) (void)res.headers.set(s.request_id_header, s.request_id);

  if (head.status == 101) {
    // Switching protocols (a WebSocket, say): bytes both ways until both
    // sides are done. A 101 nobody asked for is the upstream's error.
    http::tunnel* upstream = stream.upgraded();
    if (!req.head().upgrade || upstream == nullptr) {
      answer_502(res, s, "upstream switched protocols unasked\n");
      co_return;
    }
    if (!upgrade_to.empty()) (void)res.headers.set("Upgrade", upgrade_to);
    auto r = std::make_shared<relay_state>(std::move(stream), hold(), std::string(), nullptr);
    res.upgrade = [r, upstream](http::tunnel& downstream) -> asio::awaitable<void> {
      co_await splice(downstream, *upstream);
    };
    co_return;
  }

  if (req.method() == http::method::head || head.status == 204 || head.status == 304 ||
      head.status < 200) {
    // A HEAD's Content-Length describes the body a GET would get: pass it
    // on as is, which a streamed response with no body does.
    if (req.method() == http::method::head && res.headers.contains("Content-Length"))
      res.stream = [](http::body_writer&) -> asio::awaitable<void> { co_return; };
    auto end = co_await stream.read_some();  // gives the connection back
    if (end && s.capture) s.capture->finish();
    co_return;
  }

  // Up to buffer_size: a small body goes out with its head in one write,
  // and a failure can still be answered cleanly.
  std::string buffered;
  for (;;) {
    auto piece = co_await stream.read_some();
    if (!piece) {
      on_broken(piece.error());
      answer_502(res, s, "upstream sent no valid response: " + piece.error().message() + "\n");
      co_return;
    }
    if (piece->empty()) {
      res.headers.erase("Content-Length");  // the server writes the body's own
      if (s.capture) {
        s.capture->append(buffered);
        s.capture->finish();
      }
      res.body = std::move(buffered);
      co_return;
    }
    buffered.append(*piece);
    if (buffered.size() >= s.buffer_size) break;
  }

  // A large body: streamed at the pace of the client. The upstream's
  // Content-Length, if any, stays: the server then checks the body
  // against it.
  auto r = std::make_shared<relay_state>(std::move(stream), hold(), std::move(buffered), s.capture);
  res.stream = [r, on_broken = std::move(on_broken)](http::body_writer& w) -> asio::awaitable<void> {
    if (r->capture) r->capture->append(r->buffered);
    if (auto ec = co_await w.write(r->buffered)) co_return;
    std::string().swap(r->buffered);
    for (;;) {
      auto piece = co_await r->stream.read_some();
      if (!piece) {
        on_broken(piece.error());
        w.abort();  // the client must see an incomplete message
        co_return;
      }
      if (piece->empty()) {
        if (r->capture) r->capture->finish();
        co_return;
      }
      if (r->capture) r->capture->append(*piece);
      if (auto ec = co_await w.write(*piece)) co_return;  // the client left
    }
  };
}

}  // namespace trellis::proxy::detail
