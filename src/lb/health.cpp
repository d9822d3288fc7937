// Active health checks: the rise/fall state machine and one bounded probe;
// see include/trellis/lb/health.hpp. The loops that run probes per host
// live in cluster.cpp.
#include "trellis/lb/health.hpp"

#include <asio/this_coro.hpp>
#include <asio/write.hpp>
#include <cmath>
#include <string>

#include "trellis/codec/http/parser.hpp"
#include "trellis/core/awaitable.hpp"
#include "trellis/core/error.hpp"
#include "trellis/net/connect.hpp"
#include "trellis/net/deadline.hpp"
#include "trellis/net/error.hpp"

namespace trellis::lb {
namespace {

void require(bool ok, std::string_view prefix, const char* field, const char* what) {
  if (!ok) throw core::config_error(std::string(prefix) + "." + field, what);
}

// A field value may not carry CR, LF or NUL (RFC 9110 §5.5); a target may
// not carry whitespace or controls either.
bool clean_value(std::string_view s) noexcept {
  for (unsigned char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

bool clean_target(std::string_view s) noexcept {
  for (unsigned char c : s)
    if (c <= ' ' || c == 0x7f) return false;
  return true;
}

}  // namespace

std::string_view to_string(health_check_type type) noexcept {
  switch (type) {
    case health_check_type::none:
      return "none";
    case health_check_type::tcp:
      return "tcp";
    case health_check_type::http:
      return "http";
  }
  return "unknown";
}

void validate(const health_check_options& o, std::string_view prefix) {
  require(o.type == health_check_type::none || o.type == health_check_type::tcp ||
              o.type == health_check_type::http,
          prefix, "type", "must be none, tcp or http");
  require(o.interval.count() > 0, prefix, "interval", "must be greater than 0");
  require(o.timeout.count() > 0, prefix, "timeout", "must be greater than 0");
  require(o.timeout <= o.interval, prefix, "timeout", "must not exceed the interval");
  require(std::isfinite(o.jitter) && o.jitter >= 0 && o.jitter <= 1, prefix, "jitter",
          "must be in [0, 1]");
  require(o.rise >= 1, prefix, "rise", "must be at least 1");
  require(o.fall >= 1, prefix, "fall", "must be at least 1");
  require(!o.path.empty() && o.path.front() == '/' && clean_target(o.path), prefix, "path",
          "must start with '/' and contain no spaces or control characters");
  require(clean_value(o.host_header), prefix, "host_header", "must not contain CR, LF or NUL");
  require(o.expected_status_min >= 100 && o.expected_status_min <= 599, prefix,
          "expected_status_min", "must be in [100, 599]");
  require(o.expected_status_max >= o.expected_status_min && o.expected_status_max <= 599, prefix,
          "expected_status_max", "must be in [expected_status_min, 599]");
}

health_state::health_state(std::uint32_t rise, std::uint32_t fall, bool healthy) noexcept
    : rise_(rise == 0 ? 1 : rise), fall_(fall == 0 ? 1 : fall), healthy_(healthy) {}

health_transition health_state::record(bool passed) noexcept {
  const bool first = !checked_;
  checked_ = true;
  if (passed) {
    failures_ = 0;
    ++passes_;
    // A host with no history comes up on its first pass (see the header).
    if (!healthy_ && (passes_ >= rise_ || first)) {
      healthy_ = true;
      return health_transition::became_healthy;
    }
  } else {
    passes_ = 0;
    ++failures_;
    if (healthy_ && failures_ >= fall_) {
      healthy_ = false;
      return health_transition::became_unhealthy;
    }
  }
  return health_transition::none;
}

std::string check_result::describe() const {
  std::string out = passed ? "passed" : "failed";
  if (status != 0) {
    out += ": status ";
    out += std::to_string(status);
  } else if (error) {
    out += ": ";
    out += error.message();
  }
  return out;
}

asio::awaitable<check_result> run_check(asio::ip::tcp::endpoint target,
                                        const health_check_options& options,
                                        std::string host_header) {
  using clock = std::chrono::steady_clock;
  check_result r;
  const auto started = clock::now();
  // Copied before the first suspension: the caller's options may change
  // (they do not in the cluster, but a probe must not depend on it).
  const health_check_type type = options.type;
  const auto timeout = options.timeout;
  const int expect_min = options.expected_status_min;
  const int expect_max = options.expected_status_max;
  std::string request = "GET " + options.path + " HTTP/1.1\r\nHost: ";
  request += options.host_header.empty() ? host_header : options.host_header;
  request += "\r\nConnection: close\r\nUser-Agent: trellis-health-check\r\nAccept: */*\r\n\r\n";

  net::connect_options connect_options;
  connect_options.timeout = timeout;
  auto connected = co_await net::connect(target, connect_options);
  if (!connected) {
    r.error = connected.error();
    co_return r;
  }
  asio::ip::tcp::socket socket = std::move(*connected);
  if (type == health_check_type::tcp) {
    r.passed = true;
    std::error_code ignored;
    socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    co_return r;
  }

  const auto ex = co_await asio::this_coro::executor;
  net::deadline watchdog(ex, [&socket] {
    std::error_code ignored;
    socket.close(ignored);
  });
  watchdog.expires_at(started + timeout);

  auto [write_ec, written] = co_await asio::async_write(socket, asio::buffer(request), use_nothrow);
  (void)written;
  if (write_ec) {
    r.error = watchdog.expired() ? std::error_code(net::error::timed_out) : write_ec;
    co_return r;
  }

  http::response_parser parser;
  std::string buffer;
  const std::size_t cap = parser.limits().max_header_bytes;
  for (;;) {
    const std::size_t old = buffer.size();
    buffer.resize(old + 4096);
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer.data() + old, 4096),
                                                   use_nothrow);
    buffer.resize(old + n);
    if (watchdog.expired()) {
      r.error = net::error::timed_out;
      co_return r;
    }
    if (n > 0) {
      http::parse_status st = parser.parse_head(buffer);
      // 100 Continue and other interim heads: the final one follows.
      while (st == http::parse_status::done && parser.head().interim()) {
        buffer.erase(0, parser.head_size());
        parser.reset();
        st = buffer.empty() ? http::parse_status::need_more : parser.parse_head(buffer);
      }
      if (st == http::parse_status::error) {
        r.error = parser.error();
        co_return r;
      }
      if (st == http::parse_status::done) {
        r.status = parser.head().status;
        r.passed = r.status >= expect_min && r.status <= expect_max;
        std::error_code ignored;
        socket.close(ignored);
        co_return r;
      }
      if (buffer.size() > cap) {  // the parser reports the limit itself; belt and braces
        r.error = make_error_code(core::errc::buffer_full);
        co_return r;
      }
    }
    if (ec) {
      r.error = ec;
      co_return r;
    }
  }
}

}  // namespace trellis::lb
