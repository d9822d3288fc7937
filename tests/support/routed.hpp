// routed: one request through an http::router in-process, without a
// socket — a hand-made request head bound to a request, the router run on
// a private io_context until it has answered (bounded in time). What the
// middleware tests use to check an answer field by field; tests that need
// the server's own behaviour (framing, keep-alive) use a real one.
//
//   auto x = test::route(r, {.target = "/users/7", .headers = {{"Origin", "https://a.test"}}});
//   EXPECT_EQ(x->res.status, 200);
#pragma once

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trellis/codec/http/method.hpp"
#include "trellis/codec/http/parser.hpp"
#include "trellis/http/message.hpp"
#include "trellis/http/router.hpp"

namespace trellis::test {

struct route_request {
  http::method method = http::method::get;
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers{};
  asio::ip::tcp::endpoint peer{};  // the request's remote_endpoint()
  std::string host = "example.test";
  http::framing framing = http::framing::none;  // with content_length, a body the head declares
  std::uint64_t content_length = 0;
  // Request attributes set before routing, as an earlier middleware would.
  std::vector<std::pair<std::string, std::string>> attributes{};
};

// A routed request and its answer. The head's views point into `in`.
struct routed {
  route_request in;
  std::vector<http::header_field> fields;
  http::request_head head;
  http::request req;
  http::response res;
};

// Routes `in` through `r`. Routed may be a struct derived from routed that
// adds what a test reads of the answer. The result must not be moved from:
// the request refers to its head.
template <class Routed = routed>
std::unique_ptr<Routed> route(const http::router& r, route_request in,
                              std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  auto x = std::make_unique<Routed>();
  x->in = std::move(in);
  for (const auto& [n, v] : x->in.headers) x->fields.push_back({n, v});
  x->head.method = x->in.method;
  x->head.method_text = http::to_string(x->in.method);
  x->head.target = x->in.target;
  x->head.host = x->in.host;
  x->head.headers = x->fields;
  x->head.framing = x->in.framing;
  x->head.content_length = x->in.content_length;
  x->req.bind(x->head, nullptr, x->in.peer, false);
  for (const auto& [k, v] : x->in.attributes) x->req.set_attribute(k, v);
  asio::io_context ctx;
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(ctx, r(x->req, x->res), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  ctx.run_for(limit);
  if (failure) std::rethrow_exception(failure);
  EXPECT_TRUE(done) << "routing did not finish within " << limit.count() << " ms";
  return x;
}

}  // namespace trellis::test
