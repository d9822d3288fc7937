// Tests of the JSON access log: the fields of a line (through
// http::router, with injected clocks), escaping of hostile strings, the
// RFC 3339 time format, and the file writer — whole lines under
// concurrency, drops, reopen for rotation, configuration errors.
#include "trellis/gateway/access_log.hpp"
#include "support/routed.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address_v4.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "trellis/core/error.hpp"
#include "trellis/http/router.hpp"

namespace trellis::gateway {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// A file path in the test temp dir, removed on destruction.
struct temp_file {
  explicit temp_file(std::string_view name)
      : path(::testing::TempDir() + "access_log_test_" + std::to_string(::getpid()) + "_" +
             std::string(name)) {
    std::remove(path.c_str());
  }
  ~temp_file() { std::remove(path.c_str()); }
  std::vector<std::string> lines() const {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  std::string path;
};

// One request through a router, from a fixed client address.
using exchange = test::routed;

std::unique_ptr<exchange> route(const http::router& r, http::method m, std::string target,
                                std::vector<std::pair<std::string, std::string>> fields = {}) {
  return test::route(r, {.method = m,
                         .target = std::move(target),
                         .headers = std::move(fields),
                         .peer = {asio::ip::address_v4({192, 0, 2, 7}), 40000}});
}

// A steady clock that handlers move by hand.
struct manual_steady {
  std::chrono::steady_clock::time_point now{std::chrono::hours(100)};
  std::function<std::chrono::steady_clock::time_point()> function() {
    return [this] { return now; };
  }
};

const std::chrono::system_clock::time_point k_wall_time{
    std::chrono::milliseconds(1'796'012'345'678)};

// Sets "auth.subject" as an authentication middleware would.
class fake_auth final : public http::middleware {
 public:
  asio::awaitable<http::filter_status> before(http::request& req, http::response&) override {
    req.set_attribute("auth.subject", "ada");
    co_return http::filter_status::proceed;
  }
};

struct rig {
  explicit rig(const std::string& path, std::string route_name = "api") {
    writer = std::make_shared<log_writer>(log_writer_options{.path = path});
    log = std::make_shared<access_log>(
        writer, access_log_options{.route = std::move(route_name),
                                   .clock = clock.function(),
                                   .wall_clock = [] { return k_wall_time; }});
    r.use(log);
  }
  // The lines written so far, parsed.
  std::vector<json> parsed(const temp_file& f) {
    writer->flush();
    std::vector<json> out;
    for (const auto& l : f.lines()) {
      out.push_back(json::parse(l, nullptr, false));
      EXPECT_FALSE(out.back().is_discarded()) << "not JSON: " << l;
    }
    return out;
  }
  manual_steady clock;
  std::shared_ptr<log_writer> writer;
  std::shared_ptr<access_log> log;
  http::router r;
};

TEST(access_log, writes_one_json_line_with_every_field) {
  temp_file f("fields");
  rig t(f.path);
  t.r.use(std::make_shared<fake_auth>());
  t.r.get("/users/{id}", [&](http::request&, http::response& res) -> asio::awaitable<void> {
    t.clock.now += 1234567ns;  // the handler "takes" 1234.567 us
    res.status = 201;
    res.set_text("hello");
    co_return;
  });
  route(t.r, http::method::get, "/users/7?x=%20y",
        {{"User-Agent", "curl/7.88.1"}, {"X-Request-Id", "req-42"}});
  const auto lines = t.parsed(f);
  ASSERT_EQ(lines.size(), 1u);
  const json expected = {
      {"time", "2026-11-30T04:19:05.678Z"},
      {"method", "GET"},
      {"path", "/users/7?x=%20y"},
      {"status", 201},
      {"bytes", 5},
      {"duration_us", 1234},
      {"client", "192.0.2.7"},
      {"request_id", "req-42"},
      {"user_agent", "curl/7.88.1"},
      {"subject", "ada"},
      {"route", "api"},
  };
  EXPECT_EQ(lines[0], expected);
  EXPECT_EQ(f.lines()[0].rfind(R"({"time":"2026-11-30T04:19:05.678Z","method":"GET",)", 0), 0u)
      << "keys keep their documented order: " << f.lines()[0];
}

TEST(access_log, absent_values_are_null_and_the_request_id_may_come_from_the_response) {
  temp_file f("absent");
  rig t(f.path, "");
  t.r.get("/a", [](http::request&, http::response& res) -> asio::awaitable<void> {
    (void)res.headers.set("X-Request-Id", "made-by-proxy");
    res.set_text("");
    co_return;
  });
  route(t.r, http::method::get, "/a");
  route(t.r, http::method::get, "/missing");
  const auto lines = t.parsed(f);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["request_id"], "made-by-proxy");
  EXPECT_TRUE(lines[0]["user_agent"].is_null());
  EXPECT_TRUE(lines[0]["subject"].is_null());
  EXPECT_TRUE(lines[0]["route"].is_null());
  EXPECT_EQ(lines[1]["status"], 404) << "the router's own answers are logged too";
  EXPECT_TRUE(lines[1]["request_id"].is_null());
}

TEST(access_log, a_route_attribute_overrides_the_option) {
  temp_file f("route");
  rig t(f.path, "service");
  t.r.get("/named", [](http::request& req, http::response& res) -> asio::awaitable<void> {
    req.set_attribute("route", "named.get");
    res.set_text("x");
    co_return;
  });
  route(t.r, http::method::get, "/named");
  EXPECT_EQ(t.parsed(f)[0]["route"], "named.get");
}

TEST(access_log, logs_body_bytes_as_sent_and_null_for_a_stream_of_unknown_length) {
  temp_file f("bytes");
  rig t(f.path);
  t.r.get("/text", [](http::request&, http::response& res) -> asio::awaitable<void> {
    res.set_text("0123456789");
    co_return;
  });
  t.r.get("/empty", [](http::request&, http::response& res) -> asio::awaitable<void> {
    res.status = 204;
    co_return;
  });
  t.r.get("/stream", [](http::request&, http::response& res) -> asio::awaitable<void> {
    res.stream = [](http::body_writer& w) -> asio::awaitable<void> { (void)co_await w.write("x"); };
    co_return;
  });
  t.r.get("/sized", [](http::request&, http::response& res) -> asio::awaitable<void> {
    (void)res.headers.set("Content-Length", "1000");
    res.stream = [](http::body_writer& w) -> asio::awaitable<void> { (void)co_await w.write("x"); };
    co_return;
  });
  t.r.get("/boom", [](http::request&, http::response&) -> asio::awaitable<void> {
    throw std::runtime_error("handler bug");
    co_return;
  });
  route(t.r, http::method::get, "/text");
  route(t.r, http::method::head, "/text");
  route(t.r, http::method::get, "/empty");
  route(t.r, http::method::get, "/stream");
  route(t.r, http::method::get, "/sized");
  route(t.r, http::method::get, "/boom");
  const auto lines = t.parsed(f);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0]["bytes"], 10);
  EXPECT_EQ(lines[1]["bytes"], 0) << "HEAD sends no body";
  EXPECT_EQ(lines[2]["bytes"], 0);
  EXPECT_TRUE(lines[3]["bytes"].is_null()) << "not known when the line is written";
  EXPECT_EQ(lines[4]["bytes"], 1000);
  EXPECT_EQ(lines[5]["status"], 500) << "a throwing handler is logged as the 500 it becomes";
  EXPECT_EQ(lines[5]["bytes"], std::string_view("internal server error\n").size());
}

TEST(access_log, escapes_quotes_control_characters_and_invalid_utf8) {
  access_entry e;
  e.time = k_wall_time;
  e.method = "GET";
  e.path = "/a\"b\\c";
  e.status = 200;
  const std::string agent = std::string("evil\"} {\x1b[31m\x01\n\t") + "\xff\xc3(" + "ok";
  e.user_agent = agent;
  e.subject = "\xe2\x82\xac";  // a valid three-byte character stays as it is
  const std::string line = format_access_line(e);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line, whatever the input";
  for (char c : line.substr(0, line.size() - 1))
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "a raw control character: " << line;
  EXPECT_NE(line.find("\\u001b"), std::string::npos) << line;
  const json j = json::parse(line);
  EXPECT_EQ(j["path"], "/a\"b\\c");
  EXPECT_EQ(j["user_agent"], "evil\"} {\x1b[31m\x01\n\t\xef\xbf\xbd\xef\xbf\xbd(ok")
      << "each invalid byte becomes U+FFFD";
  EXPECT_EQ(j["subject"], "\xe2\x82\xac");
}

TEST(access_log, formats_rfc3339_utc_with_milliseconds) {
  using std::chrono::milliseconds;
  using tp = std::chrono::system_clock::time_point;
  EXPECT_EQ(format_rfc3339_ms(tp{}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(tp{milliseconds(7)}), "1970-01-01T00:00:00.007Z");
  EXPECT_EQ(format_rfc3339_ms(tp{milliseconds(951'782'400'050)}), "2000-02-29T00:00:00.050Z");
  EXPECT_EQ(format_rfc3339_ms(tp{milliseconds(-1)}), "1969-12-31T23:59:59.999Z");
}

TEST(log_writer, lines_from_many_threads_never_interleave) {
  temp_file f("threads");
  auto writer = std::make_shared<log_writer>(
      log_writer_options{.path = f.path, .max_buffered_bytes = 64 << 20});
  constexpr int k_threads = 4;
  constexpr int k_lines = 2000;
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_lines; ++i) {
        // Lengths vary from 20 to 800 bytes, so that lines straddle the
        // writer's batches and the page cache's pages.
        const std::string pad(static_cast<std::size_t>(i % 61) * 13, 'x');
        const std::string line = "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) +
                                 ",\"pad\":\"" + pad + "\"}\n";
        if (!writer->write_line(line)) ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  writer->flush();
  EXPECT_EQ(refused.load(), 0);
  const auto lines = f.lines();
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(k_threads * k_lines));
  std::set<std::pair<int, int>> seen;
  for (const auto& l : lines) {
    const json j = json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "a torn line: " << l.substr(0, 200);
    seen.emplace(j["t"].get<int>(), j["i"].get<int>());
  }
  EXPECT_EQ(seen.size(), lines.size()) << "every line exactly once";
  EXPECT_EQ(writer->stats().lines, lines.size());
  EXPECT_EQ(writer->stats().dropped, 0u);
}

TEST(log_writer, drops_and_counts_a_line_the_buffer_cannot_take) {
  temp_file f("drop");
  log_writer w({.path = f.path, .max_buffered_bytes = 100});
  EXPECT_FALSE(w.write_line(std::string(101, 'x') + "\n"));
  EXPECT_TRUE(w.write_line("{}\n"));
  w.flush();
  EXPECT_EQ(w.stats().dropped, 1u);
  EXPECT_EQ(w.stats().lines, 1u);
  EXPECT_EQ(f.lines(), std::vector<std::string>{"{}"});
}

TEST(log_writer, reopen_moves_to_a_new_file_after_rotation) {
  temp_file f("rotate");
  temp_file rotated("rotate.1");
  log_writer w({.path = f.path});
  EXPECT_TRUE(w.write_line("{\"n\":1}\n"));
  w.flush();
  ASSERT_EQ(std::rename(f.path.c_str(), rotated.path.c_str()), 0);
  EXPECT_TRUE(w.write_line("{\"n\":2}\n"));
  w.flush();
  EXPECT_EQ(rotated.lines().size(), 2u) << "until reopen, lines follow the renamed file";
  ASSERT_TRUE(w.reopen());
  EXPECT_TRUE(w.write_line("{\"n\":3}\n"));
  w.flush();
  EXPECT_EQ(f.lines(), std::vector<std::string>{"{\"n\":3}"});
  EXPECT_EQ(rotated.lines().size(), 2u);
}

TEST(log_writer, a_file_that_cannot_be_opened_is_a_config_error_naming_the_field) {
  try {
    log_writer w({.path = "/nonexistent-dir-for-trellis-tests/access.log"});
    ADD_FAILURE() << "did not throw";
  } catch (const core::config_error& e) {
    EXPECT_EQ(e.field(), "access_log.path");
    EXPECT_THAT(e.what(), ::testing::HasSubstr("No such file or directory"));
  }
}

TEST(log_writer, standard_output_needs_no_reopen) {
  log_writer w;  // "-": nothing written in this test
  EXPECT_TRUE(w.reopen());
}

}  // namespace
}  // namespace trellis::gateway
