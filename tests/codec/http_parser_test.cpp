// Tests of the HTTP/1.1 parser (trellis/codec/http/parser.hpp).
//
// Every message, valid or not, is parsed three ways — whole, one byte at a
// time, and split in two at every position — by a driver that behaves like
// a server: unconsumed bytes stay contiguous in one buffer, heads are
// consumed after done, body bytes as parse_body() reports them, reset()
// starts the next message. All three runs must give the same transcript
// (heads, bodies, verdict), which is what makes the parser safe to put
// behind any kind of socket read pattern.
#include "trellis/codec/http/parser.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace http = trellis::http;
using http::error;
using http::framing;
using http::parse_status;
using namespace std::string_literals;

// --- the driver ---------------------------------------------------------------

struct transcript {
  std::vector<std::string> heads;
  std::vector<std::string> bodies;
  std::string tunnel;     // bytes after a tunnel head, untouched
  std::error_code error;  // the verdict; empty when the stream parsed cleanly
  bool operator==(const transcript&) const = default;
};

std::string describe(const http::request_head& h) {
  std::string s =
      "method=" + std::to_string(static_cast<int>(h.method)) +
      " text=" + std::string(h.method_text) + " target=" + std::string(h.target) +
      " minor=" + std::to_string(h.version_minor) + " host=" + std::string(h.host) +
      " framing=" + std::to_string(static_cast<int>(h.framing)) +
      " cl=" + std::to_string(h.content_length) + " ka=" + std::to_string(h.keep_alive) +
      " ec=" + std::to_string(h.expect_continue) + " eu=" + std::to_string(h.expect_unsupported) +
      " up=" + std::to_string(h.upgrade);
  for (const auto& f : h.headers) s += "\n" + std::string(f.name) + ": " + std::string(f.value);
  return s;
}

std::string describe(const http::response_head& h) {
  std::string s = "status=" + std::to_string(h.status) + " reason=" + std::string(h.reason) +
                  " minor=" + std::to_string(h.version_minor) +
                  " framing=" + std::to_string(static_cast<int>(h.framing)) +
                  " cl=" + std::to_string(h.content_length) + " ka=" + std::to_string(h.keep_alive);
  for (const auto& f : h.headers) s += "\n" + std::string(f.name) + ": " + std::string(f.value);
  return s;
}

// Feeds `pieces` in order, then signals the end of the stream.
template <class Parser>
transcript run(Parser& parser, const std::vector<std::string_view>& pieces) {
  transcript t;
  std::string buffered;
  std::string body;
  bool in_body = false;
  bool stopped = false;
  auto pump = [&] {
    for (;;) {
      if (!in_body) {
        const parse_status st = parser.parse_head(buffered);
        if (st == parse_status::need_more) return;
        if (st == parse_status::error) {
          t.error = parser.error();
          stopped = true;
          return;
        }
        t.heads.push_back(describe(parser.head()));
        buffered.erase(0, parser.head_size());
        in_body = true;
        body.clear();
        if (parser.head().framing == framing::tunnel) {
          stopped = true;
          return;
        }
      }
      while (!parser.body_done()) {
        std::string_view data;
        const auto n = parser.parse_body(buffered, data);
        if (!n) {
          t.error = n.error();
          stopped = true;
          return;
        }
        body.append(data);
        buffered.erase(0, *n);
        if (*n == 0) return;
      }
      t.bodies.push_back(body);
      in_body = false;
      parser.reset();
    }
  };
  for (std::string_view piece : pieces) {
    buffered.append(piece);
    if (!stopped) pump();
  }
  if (stopped) {
    if (!t.error) t.tunnel = buffered;
    return t;
  }
  if (const auto r = parser.finish(); !r) {
    t.error = r.error();
  } else if (in_body) {
    t.bodies.push_back(body);
  }
  return t;
}

using parser_factory = std::function<transcript(const std::vector<std::string_view>&)>;

parser_factory requests(http::parser_limits limits = {}) {
  return [limits](const std::vector<std::string_view>& pieces) {
    http::request_parser p(limits);
    return run(p, pieces);
  };
}

parser_factory responses(http::method m = http::method::get, http::parser_limits limits = {}) {
  return [m, limits](const std::vector<std::string_view>& pieces) {
    http::response_parser p(limits);
    p.expect(m);
    return run(p, pieces);
  };
}

// Parses `bytes` whole, byte at a time and split in two at every position
// (every 64th position beyond 4 KiB: the limit tests' heads), requires
// identical transcripts and returns the whole one.
transcript parse_all_ways(const parser_factory& parse, std::string_view bytes) {
  const transcript whole = parse({bytes});
  std::vector<std::string_view> singles;
  for (std::size_t i = 0; i < bytes.size(); ++i) singles.push_back(bytes.substr(i, 1));
  EXPECT_EQ(parse(singles), whole) << "byte-at-a-time differs for:\n" << bytes;
  const std::size_t stride = bytes.size() > 4096 ? 64 : 1;
  for (std::size_t i = 0; i <= bytes.size(); i += stride) {
    const transcript split = parse({bytes.substr(0, i), bytes.substr(i)});
    EXPECT_EQ(split, whole) << "split at " << i << " differs for:\n" << bytes;
    if (split != whole) break;
  }
  return whole;
}

std::error_code request_error(std::string_view bytes, http::parser_limits limits = {}) {
  return parse_all_ways(requests(limits), bytes).error;
}

std::error_code response_error(std::string_view bytes, http::method m = http::method::get,
                               http::parser_limits limits = {}) {
  return parse_all_ways(responses(m, limits), bytes).error;
}

// Parses one complete head in one call.
struct parsed_request {
  explicit parsed_request(std::string bytes_, http::parser_limits limits = {})
      : bytes(std::move(bytes_)), parser(limits) {
    status = parser.parse_head(bytes);
  }
  std::string bytes;
  http::request_parser parser;
  parse_status status;
};

// --- the corpus -----------------------------------------------------------------

const std::string browser_get =
    "GET /search?q=trellis&lang=en HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Referer: https://www.example.com/\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234567890\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Priority: u=0, i\r\n"
    "DNT: 1\r\n"
    "\r\n";

const std::string api_post =
    "POST /v1/orders HTTP/1.1\r\n"
    "Host: api.example.com:8443\r\n"
    "Content-Type: application/json\r\n"
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig\r\n"
    "Content-Length: 29\r\n"
    "\r\n"
    "{\"item\":\"book\",\"qty\":2,\"x\":1}";

const std::string chunked_upload =
    "PUT /upload/file.bin HTTP/1.1\r\n"
    "Host: storage.example.com\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Trailer: X-Checksum\r\n"
    "\r\n"
    "5;name=value;flag\r\n"
    "hello\r\n"
    "7 ; quoted = \"a \\\"b\\\" c\"\r\n"
    ", world\r\n"
    "0\r\n"
    "X-Checksum: 7f83b165\r\n"
    "X-Other:\t two words \r\n"
    "\r\n";

const std::string http10_keep_alive =
    "GET /legacy HTTP/1.0\r\n"
    "Connection: Keep-Alive\r\n"
    "\r\n";

const std::string connect_request =
    "CONNECT db.internal:5432 HTTP/1.1\r\n"
    "Host: db.internal:5432\r\n"
    "\r\n"
    "\x16\x03\x01 tunnel bytes";

const std::string websocket_upgrade =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

const std::string absolute_form =
    "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";

const std::string asterisk_form = "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n";

const std::vector<std::string> valid_requests = {
    browser_get,
    api_post,
    chunked_upload,
    http10_keep_alive,
    connect_request,
    websocket_upgrade,
    absolute_form,
    asterisk_form,
    "\r\nGET /after-empty-line HTTP/1.1\r\nHost: a\r\n\r\n",
    "DELETE /items/7 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    // Pipelined: three requests in one stream.
    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
    "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
};

const std::vector<std::pair<http::method, std::string>> valid_responses = {
    {http::method::get,
     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"},
    {http::method::head, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"},
    {http::method::get, "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"},
    {http::method::get, "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\nContent-Length: 99\r\n\r\n"},
    {http::method::post,
     "HTTP/1.1 100 Continue\r\n\r\n"
     "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
     "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"},
    {http::method::connect, "HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x03 tls"},
    {http::method::get,
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
     "Upgrade\r\n\r\n\x81\x05"},
    {http::method::get,
     "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>until close</html>"},
    {http::method::get,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nExpires: never\r\n\r\n"},
    {http::method::get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b gzip to eof"},
    {http::method::get, "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n"},
};

// --- valid messages -----------------------------------------------------------

TEST(http_parser, parses_valid_requests_identically_whole_bytewise_and_split) {
  for (const std::string& r : valid_requests) {
    const transcript t = parse_all_ways(requests(), r);
    EXPECT_FALSE(t.error) << t.error.message() << " for:\n" << r;
    EXPECT_FALSE(t.heads.empty()) << r;
  }
}

TEST(http_parser, parses_valid_responses_identically_whole_bytewise_and_split) {
  for (const auto& [m, r] : valid_responses) {
    const transcript t = parse_all_ways(responses(m), r);
    EXPECT_FALSE(t.error) << t.error.message() << " for:\n" << r;
    EXPECT_FALSE(t.heads.empty()) << r;
  }
}

TEST(http_parser, parses_browser_get_with_views_into_the_buffer) {
  parsed_request r(browser_get);
  ASSERT_EQ(r.status, parse_status::done);
  const http::request_head& h = r.parser.head();
  EXPECT_EQ(h.method, http::method::get);
  EXPECT_EQ(h.method_text, "GET");
  EXPECT_EQ(h.target, "/search?q=trellis&lang=en");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.headers.size(), 15u);
  EXPECT_EQ(h.host, "www.example.com");
  EXPECT_EQ(h.framing, framing::none);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.upgrade);
  EXPECT_EQ(h.find("user-agent"),
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
  EXPECT_EQ(h.find("COOKIE").substr(0, 8), "session=");
  EXPECT_EQ(h.find("x-missing"), "");
  EXPECT_EQ(h.headers[0].name, "Host");
  EXPECT_EQ(h.headers[14].name, "DNT");
  EXPECT_EQ(r.parser.head_size(), browser_get.size());
  // Zero-copy: the views point into the caller's bytes.
  EXPECT_GE(h.target.data(), r.bytes.data());
  EXPECT_LT(h.target.data(), r.bytes.data() + r.bytes.size());
  EXPECT_GE(h.headers[3].value.data(), r.bytes.data());
  EXPECT_LT(h.headers[3].value.data(), r.bytes.data() + r.bytes.size());
  EXPECT_TRUE(r.parser.body_done());
}

TEST(http_parser, parses_api_post_body_by_content_length) {
  const transcript t = parse_all_ways(requests(), api_post);
  ASSERT_FALSE(t.error);
  ASSERT_EQ(t.bodies.size(), 1u);
  EXPECT_EQ(t.bodies[0], "{\"item\":\"book\",\"qty\":2,\"x\":1}");
  http::request_parser p;
  ASSERT_EQ(p.parse_head(api_post), parse_status::done);
  EXPECT_EQ(p.head().framing, framing::content_length);
  EXPECT_EQ(p.head().content_length, 29u);
  EXPECT_EQ(p.head().find("content-type"), "application/json");
  std::string_view rest = std::string_view(api_post).substr(p.head_size());
  std::string_view data;
  const auto n = p.parse_body(rest, data);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 29u);
  EXPECT_EQ(data.data(), rest.data());
  EXPECT_TRUE(p.body_done());
}

TEST(http_parser, decodes_chunked_upload_ignoring_extensions_and_validating_trailers) {
  const transcript t = parse_all_ways(requests(), chunked_upload);
  ASSERT_FALSE(t.error) << t.error.message();
  ASSERT_EQ(t.bodies.size(), 1u);
  EXPECT_EQ(t.bodies[0], "hello, world");
  http::request_parser p;
  ASSERT_EQ(p.parse_head(chunked_upload), parse_status::done);
  EXPECT_EQ(p.head().framing, framing::chunked);
}

TEST(http_parser, keeps_http10_connection_alive_only_when_asked) {
  parsed_request a(http10_keep_alive);
  ASSERT_EQ(a.status, parse_status::done);
  EXPECT_EQ(a.parser.head().version_minor, 0);
  EXPECT_TRUE(a.parser.head().keep_alive);
  EXPECT_EQ(a.parser.head().host, "");  // Host is optional in HTTP/1.0
  parsed_request b("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(b.status, parse_status::done);
  EXPECT_FALSE(b.parser.head().keep_alive);
  parsed_request c("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(c.status, parse_status::done);
  EXPECT_FALSE(c.parser.head().keep_alive);
  parsed_request d("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
  ASSERT_EQ(d.status, parse_status::done);
  EXPECT_FALSE(d.parser.head().keep_alive);
}

TEST(http_parser, parses_connect_as_a_tunnel_in_authority_form) {
  const transcript t = parse_all_ways(requests(), connect_request);
  ASSERT_FALSE(t.error);
  EXPECT_EQ(t.tunnel, "\x16\x03\x01 tunnel bytes");
  parsed_request r(connect_request);
  ASSERT_EQ(r.status, parse_status::done);
  EXPECT_EQ(r.parser.head().method, http::method::connect);
  EXPECT_EQ(r.parser.head().target, "db.internal:5432");
  EXPECT_EQ(r.parser.head().framing, framing::tunnel);
  EXPECT_TRUE(r.parser.body_done());
  parsed_request v6("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
  EXPECT_EQ(v6.status, parse_status::done);
}

TEST(http_parser, flags_websocket_upgrade) {
  parsed_request r(websocket_upgrade);
  ASSERT_EQ(r.status, parse_status::done);
  EXPECT_TRUE(r.parser.head().upgrade);
  EXPECT_EQ(r.parser.head().framing, framing::none);
  // Upgrade without the Connection option is not an upgrade.
  parsed_request s("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_EQ(s.status, parse_status::done);
  EXPECT_FALSE(s.parser.head().upgrade);
  // RFC 9110 §7.8: Upgrade is ignored in HTTP/1.0.
  parsed_request u("GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
  ASSERT_EQ(u.status, parse_status::done);
  EXPECT_FALSE(u.parser.head().upgrade);
}

TEST(http_parser, accepts_absolute_and_asterisk_form_targets) {
  parsed_request a(absolute_form);
  ASSERT_EQ(a.status, parse_status::done);
  EXPECT_EQ(a.parser.head().target, "http://example.com:8080/a/b?c=d");
  parsed_request b(asterisk_form);
  ASSERT_EQ(b.status, parse_status::done);
  EXPECT_EQ(b.parser.head().method, http::method::options);
  EXPECT_EQ(b.parser.head().target, "*");
}

TEST(http_parser, reports_expect_continue_and_unsupported_expectations) {
  parsed_request a(
      "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
  ASSERT_EQ(a.status, parse_status::done);
  EXPECT_TRUE(a.parser.head().expect_continue);
  EXPECT_FALSE(a.parser.head().expect_unsupported);
  parsed_request b("PUT / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n");
  ASSERT_EQ(b.status, parse_status::done);
  EXPECT_FALSE(b.parser.head().expect_continue);
  EXPECT_TRUE(b.parser.head().expect_unsupported);
  // RFC 9110 §10.1.1: 100-continue is ignored in an HTTP/1.0 request.
  parsed_request c("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(c.status, parse_status::done);
  EXPECT_FALSE(c.parser.head().expect_continue);
}

TEST(http_parser, keeps_other_methods_case_sensitively) {
  parsed_request a("get / HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(a.status, parse_status::done);
  EXPECT_EQ(a.parser.head().method, http::method::other);
  EXPECT_EQ(a.parser.head().method_text, "get");
  parsed_request b("PURGE /cache/x HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(b.status, parse_status::done);
  EXPECT_EQ(b.parser.head().method, http::method::other);
  EXPECT_EQ(b.parser.head().method_text, "PURGE");
}

TEST(http_parser, trims_value_whitespace_and_allows_obs_text_and_empty_values) {
  parsed_request r(
      "GET / HTTP/1.1\r\nHost: a\r\nX-A: \t spaced out \t \r\nX-Empty:\r\n"
      "X-Blank:   \r\nX-Utf8: caf\xc3\xa9\r\nX-Tab: a\tb\r\n\r\n");
  ASSERT_EQ(r.status, parse_status::done);
  EXPECT_EQ(r.parser.head().find("x-a"), "spaced out");
  EXPECT_EQ(r.parser.head().find("x-empty"), "");
  EXPECT_EQ(r.parser.head().find("x-blank"), "");
  EXPECT_EQ(r.parser.head().find("x-utf8"), "caf\xc3\xa9");
  EXPECT_EQ(r.parser.head().find("x-tab"), "a\tb");
}

TEST(http_parser, accepts_long_names_and_values_with_rarer_characters) {
  // Long enough for the 16-byte scanning loops, with the bytes they hand
  // back to the class table in the middle.
  const std::string name = "X-Very_Long.Header~Name!With#Rare$Token%Chars&And'More*";
  const std::string value =
      "start\tmiddle \xe2\x82\xac obs-text; q=\"quoted\" " + std::string(40, 'v') + "\t~end";
  const std::string head = "GET /p/" + std::string(40, 'x') + "?a=b&c=%20|{}^ HTTP/1.1\r\nHost: " +
                           "very-long.sub_domain.example.com:8443\r\n" + name + ": " + value +
                           "\r\n\r\n";
  const transcript t = parse_all_ways(requests(), head);
  ASSERT_FALSE(t.error) << t.error.message();
  parsed_request r(head);
  ASSERT_EQ(r.status, parse_status::done);
  EXPECT_EQ(r.parser.head().find(name), value);
  EXPECT_EQ(r.parser.head().host, "very-long.sub_domain.example.com:8443");
}

TEST(http_parser, keeps_errors_sticky_until_reset) {
  http::request_parser p;
  const std::string bad = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
  ASSERT_EQ(p.parse_head(bad), parse_status::done);
  std::string_view data;
  const std::string_view body = std::string_view(bad).substr(p.head_size());
  EXPECT_EQ(p.parse_body(body, data).error(), error::bad_chunk);
  EXPECT_EQ(p.parse_body(body, data).error(), error::bad_chunk);
  EXPECT_EQ(p.error(), error::bad_chunk);
  EXPECT_EQ(p.finish().error(), error::bad_chunk);
  p.reset();
  EXPECT_FALSE(p.error());
  EXPECT_EQ(p.parse_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_status::done);
  http::request_parser q;
  ASSERT_EQ(q.parse_head("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), parse_status::error);
  EXPECT_EQ(q.parse_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), parse_status::error);
  EXPECT_EQ(q.error(), error::whitespace_before_colon);
}

TEST(http_parser, skips_at_most_two_leading_empty_lines) {
  EXPECT_FALSE(request_error("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  const auto ec = request_error("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ec, error::bad_request_line);
  EXPECT_EQ(http::status_for(ec), 400);
}

TEST(http_parser, accepts_identical_content_length_values) {
  parsed_request a("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
  ASSERT_EQ(a.status, parse_status::done);
  EXPECT_EQ(a.parser.head().content_length, 5u);
  parsed_request b("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
  ASSERT_EQ(b.status, parse_status::done);
  EXPECT_EQ(b.parser.head().content_length, 5u);
  parsed_request c("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(c.status, parse_status::done);
  EXPECT_EQ(c.parser.head().framing, framing::chunked);
}

TEST(http_parser, parses_pipelined_requests_one_after_another_with_reset) {
  const std::string stream =
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
      "PUT /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
      "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n";
  http::request_parser p;
  std::string_view rest = stream;
  std::vector<std::string> targets;
  std::vector<std::string> bodies;
  while (!rest.empty()) {
    ASSERT_EQ(p.parse_head(rest), parse_status::done);
    targets.emplace_back(p.head().target);
    rest.remove_prefix(p.head_size());
    std::string body;
    while (!p.body_done()) {
      std::string_view data;
      const auto n = p.parse_body(rest, data);
      ASSERT_TRUE(n);
      ASSERT_GT(*n, 0u);
      body.append(data);
      rest.remove_prefix(*n);
    }
    bodies.push_back(body);
    p.reset();
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"/1", "/2", "/3", "/4"}));
  EXPECT_EQ(bodies, (std::vector<std::string>{"", "abc", "xy", ""}));
}

TEST(http_parser, streams_a_10_mib_chunked_body_without_buffering_it) {
  http::parser_limits limits;
  limits.max_body = 16 * 1024 * 1024;
  http::request_parser p(limits);
  const std::string head = "POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_EQ(p.parse_head(head), parse_status::done);
  const std::string payload(64 * 1024, 'z');
  const std::string chunk = "10000\r\n" + payload + "\r\n";
  std::uint64_t total = 0;
  std::uint64_t calls = 0;
  for (int i = 0; i < 160; ++i) {  // 160 x 64 KiB = 10 MiB, fed in 4 KiB reads
    for (std::size_t off = 0; off < chunk.size(); off += 4096) {
      std::string_view piece = std::string_view(chunk).substr(off, 4096);
      while (!piece.empty()) {
        std::string_view data;
        const auto n = p.parse_body(piece, data);
        ASSERT_TRUE(n) << n.error().message();
        ++calls;
        if (!data.empty()) {  // every byte of data is a view into this read
          ASSERT_GE(data.data(), piece.data());
          ASSERT_LE(data.data() + data.size(), piece.data() + piece.size());
        }
        total += data.size();
        piece.remove_prefix(*n);
      }
    }
  }
  std::string_view last = "0\r\n\r\n";
  std::string_view data;
  const auto n = p.parse_body(last, data);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 5u);
  EXPECT_TRUE(p.body_done());
  EXPECT_EQ(total, 10u * 1024 * 1024);
  EXPECT_LT(calls, 3u * 160 * 17);
}

TEST(http_parser, byte_at_a_time_feeding_stays_linear) {
  // A 512 KiB header value fed one byte at a time: a parser that rescanned
  // from the start on every call would do ~1.4e11 byte visits here.
  http::parser_limits limits;
  limits.max_header_bytes = 1 << 20;
  http::request_parser p(limits);
  const std::string bytes =
      "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(512 * 1024, 'v') + "\r\n\r\n";
  const auto t0 = std::chrono::steady_clock::now();
  parse_status st = parse_status::need_more;
  for (std::size_t i = 1; i <= bytes.size() && st == parse_status::need_more; ++i)
    st = p.parse_head(std::string_view(bytes).substr(0, i));
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(st, parse_status::done);
  EXPECT_EQ(p.head().find("x-big").size(), 512u * 1024);
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(http_parser, survives_the_buffer_moving_between_calls) {
  http::request_parser p;
  std::string first = browser_get.substr(0, 200);
  ASSERT_EQ(p.parse_head(first), parse_status::need_more);
  std::string moved = browser_get;  // a different allocation with the same bytes
  first.assign(1000, 'x');          // the old bytes are gone
  ASSERT_EQ(p.parse_head(moved), parse_status::done);
  EXPECT_EQ(p.head().find("cookie").substr(0, 8), "session=");
  EXPECT_GE(p.head().headers[0].name.data(), moved.data());
}

TEST(http_parser, reports_head_again_until_reset) {
  http::request_parser p;
  ASSERT_EQ(p.parse_head(asterisk_form), parse_status::done);
  ASSERT_EQ(p.parse_head(asterisk_form), parse_status::done);
  p.reset();
  EXPECT_EQ(p.parse_head("GET"), parse_status::need_more);
}

TEST(http_parser, finish_reports_truncated_requests) {
  http::request_parser idle;
  EXPECT_TRUE(idle.finish());  // closed between requests: fine
  http::request_parser mid_head;
  ASSERT_EQ(mid_head.parse_head("GET / HT"), parse_status::need_more);
  EXPECT_EQ(mid_head.finish().error(), error::partial_message);
  EXPECT_EQ(request_error("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"),
            error::partial_message);
  EXPECT_EQ(
      request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
      error::partial_message);
}

// --- responses ------------------------------------------------------------------

http::response_head response_of(std::string_view bytes, http::method m = http::method::get) {
  http::response_parser p;
  p.expect(m);
  EXPECT_EQ(p.parse_head(bytes), parse_status::done) << p.error().message();
  return p.head();
}

TEST(http_parser, frames_responses_by_status_and_request_method) {
  EXPECT_EQ(response_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").framing,
            framing::content_length);
  const auto head =
      response_of("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", http::method::head);
  EXPECT_EQ(head.framing, framing::none);
  EXPECT_EQ(head.content_length, 1234u);
  EXPECT_EQ(response_of("HTTP/1.1 204 No Content\r\n\r\n").framing, framing::none);
  EXPECT_EQ(response_of("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").framing,
            framing::none);
  EXPECT_EQ(response_of("HTTP/1.1 200 OK\r\n\r\n", http::method::connect).framing, framing::tunnel);
  EXPECT_EQ(
      response_of("HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n", http::method::connect).framing,
      framing::content_length);
  EXPECT_EQ(response_of("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n").framing,
            framing::tunnel);
  const auto eof = response_of("HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(eof.framing, framing::until_close);
  EXPECT_FALSE(eof.keep_alive);
  EXPECT_EQ(response_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").framing,
            framing::chunked);
  EXPECT_EQ(response_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").framing,
            framing::until_close);
  EXPECT_TRUE(response_of("HTTP/1.1 100 Continue\r\n\r\n").interim());
  EXPECT_FALSE(response_of("HTTP/1.1 101 Switching Protocols\r\n\r\n").interim());
  EXPECT_FALSE(response_of("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_TRUE(response_of("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                  .keep_alive);
}

TEST(http_parser, parses_interim_responses_then_the_final_one) {
  const transcript t = parse_all_ways(responses(http::method::post), valid_responses[4].second);
  ASSERT_FALSE(t.error);
  ASSERT_EQ(t.heads.size(), 3u);
  EXPECT_EQ(t.heads[0].substr(0, 10), "status=100");
  EXPECT_EQ(t.heads[1].substr(0, 10), "status=103");
  EXPECT_EQ(t.heads[2].substr(0, 10), "status=201");
  EXPECT_EQ(t.bodies, (std::vector<std::string>{"", "", "ok"}));
}

TEST(http_parser, ends_until_close_body_at_eof) {
  const transcript t = parse_all_ways(responses(), valid_responses[7].second);
  ASSERT_FALSE(t.error);
  ASSERT_EQ(t.bodies.size(), 1u);
  EXPECT_EQ(t.bodies[0], "<html>until close</html>");
}

TEST(http_parser, reports_truncated_responses_at_eof) {
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
            error::partial_message);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
            error::partial_message);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nContent-"), error::partial_message);
}

TEST(http_parser, accepts_status_line_without_reason) {
  const auto h = response_of("HTTP/1.1 204\r\n\r\n");
  EXPECT_EQ(h.status, 204);
  EXPECT_EQ(h.reason, "");
  EXPECT_EQ(response_of("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n").reason, "");
  EXPECT_EQ(response_of("HTTP/1.1 404 Not\tFound \xe2\x9c\x97\r\nContent-Length: 0\r\n\r\n").reason,
            "Not\tFound \xe2\x9c\x97");
}

TEST(http_parser, rejects_malformed_status_lines) {
  for (const char* bad :
       {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 600 High\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n"}) {
    const auto ec = response_error(bad);
    EXPECT_EQ(ec, error::bad_status_line) << bad;
    EXPECT_EQ(http::status_for(ec), 502);
  }
  EXPECT_EQ(response_error("HTTP/1.1  200 OK\r\n\r\n"), error::bad_status_line);
  EXPECT_EQ(response_error("HTTP/2.0 200 OK\r\n\r\n"), error::unsupported_version);
  EXPECT_EQ(response_error("ICY 200 OK\r\n\r\n"), error::bad_version);
}

TEST(http_parser, rejects_content_length_with_transfer_encoding_in_responses) {
  const auto ec = response_error(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(ec, error::content_length_with_transfer_encoding);
}

TEST(http_parser, rejects_transfer_encoding_in_http10_responses) {
  EXPECT_EQ(response_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            error::bad_transfer_encoding);
}

TEST(http_parser, rejects_chunked_twice_in_responses) {
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            error::bad_transfer_encoding);
}

TEST(http_parser, rejects_conflicting_content_length_in_responses) {
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            error::conflicting_content_length);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            error::bad_content_length);
}

// --- strict rejections: framing -------------------------------------------------

void expect_request_error(std::string_view bytes, error expected, int status) {
  const std::error_code ec = request_error(bytes);
  EXPECT_EQ(ec, expected) << ec.message() << " for:\n" << bytes;
  EXPECT_EQ(http::status_for(ec), status) << bytes;
}

TEST(http_parser, rejects_content_length_with_transfer_encoding) {
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      error::content_length_with_transfer_encoding, 400);
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
      error::content_length_with_transfer_encoding, 400);
}

TEST(http_parser, rejects_duplicate_content_length_with_differing_values) {
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      error::conflicting_content_length, 400);
}

TEST(http_parser, rejects_content_length_list_with_differing_values) {
  expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
                       error::conflicting_content_length, 400);
}

TEST(http_parser, rejects_malformed_content_length) {
  for (const char* v : {"+5", "-1", "1 2", "0x10", "abc", "", "5,", ",5", "5,,5", "1_000", "5;x",
                        "18446744073709551616", "99999999999999999999999"}) {
    expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "s + v + "\r\n\r\n",
                         error::bad_content_length, 400);
  }
}

TEST(http_parser, rejects_content_length_above_max_body_before_reading_it) {
  expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
                       error::body_too_large, 413);
}

TEST(http_parser, rejects_transfer_encoding_not_ending_in_chunked) {
  expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                       error::bad_transfer_encoding, 400);
  expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                       error::bad_transfer_encoding, 400);
  expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
                       error::bad_transfer_encoding, 400);
  expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
                       error::bad_transfer_encoding, 400);
}

TEST(http_parser, rejects_unknown_transfer_codings_with_501) {
  for (const char* te : {"gzip, chunked", "deflate, chunked", "compress, chunked",
                         "identity, chunked", "x-custom;level=1, chunked"}) {
    expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "s + te + "\r\n\r\n",
                         error::unsupported_transfer_encoding, 501);
  }
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
      error::unsupported_transfer_encoding, 501);
}

TEST(http_parser, rejects_chunked_applied_twice) {
  expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                       error::bad_transfer_encoding, 400);
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
      "chunked\r\n\r\n",
      error::bad_transfer_encoding, 400);
}

TEST(http_parser, rejects_malformed_transfer_encoding_lists) {
  for (const char* te : {"", " , ", "chunked;q=1", "chunked x", "ch@nked", "gzip;=1, chunked",
                         "gzip;a, chunked", "gzip;a=\"open, chunked"}) {
    expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "s + te + "\r\n\r\n",
                         error::bad_transfer_encoding, 400);
  }
}

TEST(http_parser, rejects_transfer_encoding_in_http10) {
  expect_request_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                       error::bad_transfer_encoding, 400);
}

// --- strict rejections: syntax of the head ----------------------------------------

TEST(http_parser, rejects_obs_fold) {
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n", error::obs_fold,
                       400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n",
                       error::obs_fold, 400);
  // Whitespace between the start line and the first field (RFC 9112 §2.2).
  expect_request_error("GET / HTTP/1.1\r\n Host: a\r\n\r\n", error::obs_fold, 400);
}

TEST(http_parser, rejects_bare_cr) {
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", error::bare_cr, 400);
  expect_request_error("GET / HTTP/1.1\rHost: a\r\n\r\n", error::bare_cr, 400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", error::bare_cr, 400);
  expect_request_error("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", error::bare_cr, 400);
}

TEST(http_parser, rejects_bare_lf_line_endings) {
  expect_request_error("GET / HTTP/1.1\nHost: a\r\n\r\n", error::bare_lf, 400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\n\r\n", error::bare_lf, 400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\n\n", error::bare_lf, 400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", error::bare_lf, 400);
  expect_request_error("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", error::bare_lf, 400);
  expect_request_error("GET /\n HTTP/1.1\r\nHost: a\r\n\r\n", error::bare_lf, 400);
}

TEST(http_parser, rejects_whitespace_between_field_name_and_colon) {
  expect_request_error("GET / HTTP/1.1\r\nHost : a\r\n\r\n", error::whitespace_before_colon, 400);
  expect_request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n",
                       error::whitespace_before_colon, 400);
}

TEST(http_parser, rejects_empty_or_invalid_field_names) {
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", error::bad_field_name, 400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", error::bad_field_name, 400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nNa\x80me: 1\r\n\r\n", error::bad_field_name,
                       400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nNo-Colon\r\n\r\n", error::bad_field_name, 400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\n\"q\": 1\r\n\r\n", error::bad_field_name, 400);
}

TEST(http_parser, rejects_invalid_method_tokens) {
  expect_request_error("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_method, 400);
  expect_request_error("G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_method, 400);
  expect_request_error(" / HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_method, 400);
  expect_request_error("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_method, 400);
  expect_request_error("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s, error::bad_method, 400);
}

TEST(http_parser, rejects_control_characters_in_field_values) {
  for (const std::string& v : {"a\0b"s, "a\x01"s,
                               "\x0b"s
                               "chunked",
                               "x\x1f"s, "del\x7f"s}) {
    expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nX-V: " + v + "\r\n\r\n",
                         error::bad_field_value, 400);
  }
  expect_request_error(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b"
      "chunked\r\n\r\n",
      error::bad_field_value, 400);
}

TEST(http_parser, rejects_bad_request_targets) {
  expect_request_error("GET  HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("GET * HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("GET relative/path HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("GET 1http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", error::bad_target, 400);
  expect_request_error("CONNECT user@example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n",
                       error::bad_target, 400);
}

TEST(http_parser, rejects_incomplete_request_lines) {
  expect_request_error("GET /\r\nHost: a\r\n\r\n", error::bad_request_line, 400);
  expect_request_error("GET\r\n\r\n", error::bad_request_line, 400);
}

TEST(http_parser, rejects_malformed_http_versions_with_400) {
  for (const char* v : {"HTTP/1.x", "http/1.1", "HTTP/1.1 ", "HTTP/10.0", "HTTP/1", "HTTP/1.",
                        "HTTP1.1", "HTTP/1.1x", "HTTP/ 1.1"}) {
    expect_request_error("GET / "s + v + "\r\nHost: a\r\n\r\n", error::bad_version, 400);
  }
}

TEST(http_parser, rejects_unsupported_http_versions_with_505) {
  for (const char* v : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"}) {
    expect_request_error("GET / "s + v + "\r\nHost: a\r\n\r\n", error::unsupported_version, 505);
  }
}

TEST(http_parser, rejects_http11_request_without_host) {
  expect_request_error("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", error::missing_host, 400);
}

TEST(http_parser, rejects_more_than_one_host) {
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", error::duplicate_host, 400);
  expect_request_error("GET / HTTP/1.1\r\nHost: a\r\nhOsT: a\r\n\r\n", error::duplicate_host, 400);
}

TEST(http_parser, rejects_host_values_with_invalid_characters) {
  for (const char* h : {"exa mple.com", "user@example.com", "a/b", "example.com:80x", "[::1", "a]b",
                        "\"quoted\"", "a:1:2", "caf\xc3\xa9.com"}) {
    expect_request_error("GET / HTTP/1.1\r\nHost: "s + h + "\r\n\r\n", error::bad_host, 400);
  }
  for (const char* h :
       {"", "example.com", "example.com:8080", "[::1]:443", "10.0.0.1", "xn--caf-dma.com"}) {
    EXPECT_FALSE(request_error("GET / HTTP/1.1\r\nHost: "s + h + "\r\n\r\n")) << h;
  }
}

// --- strict rejections: chunked bodies ---------------------------------------------

const std::string chunked_head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

std::error_code chunked_error(std::string_view body, http::parser_limits limits = {}) {
  return request_error(chunked_head + std::string(body), limits);
}

void expect_chunked_error(std::string_view body, error expected, int status = 400) {
  const std::error_code ec = chunked_error(body);
  EXPECT_EQ(ec, expected) << ec.message() << " for:\n" << body;
  EXPECT_EQ(http::status_for(ec), status) << body;
}

TEST(http_parser, rejects_chunk_sizes_that_are_not_hex) {
  for (const char* b : {"0x5\r\nhello\r\n0\r\n\r\n", "g\r\n", "\r\n", "-5\r\n", "+5\r\n",
                        " 5\r\nhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n"}) {
    expect_chunked_error(b, error::bad_chunk);
  }
}

TEST(http_parser, rejects_chunk_size_overflow) {
  expect_chunked_error("10000000000000000\r\n", error::bad_chunk);
  const auto ec = chunked_error("FFFFFFFFFFFFFFFF\r\n");
  EXPECT_EQ(ec, error::body_too_large);  // fits in 64 bits, but over max_body
  EXPECT_EQ(http::status_for(ec), 413);
  EXPECT_FALSE(chunked_error("000000000000000000000005\r\nhello\r\n0\r\n\r\n"));
}

TEST(http_parser, rejects_missing_crlf_after_chunk_data) {
  expect_chunked_error("5\r\nhelloX\r\n0\r\n\r\n", error::bad_chunk);
  expect_chunked_error("5\r\nhello\n0\r\n\r\n", error::bad_chunk);
  expect_chunked_error("5\r\nhello\r0\r\n\r\n", error::bad_chunk);
  expect_chunked_error("3\r\nhello\r\n0\r\n\r\n", error::bad_chunk);
}

TEST(http_parser, accepts_chunk_extensions_per_rfc9112_grammar) {
  for (const char* b :
       {"5;a\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\n\r\n",
        "5 ; a = b ; c\r\nhello\r\n0\r\n\r\n", "5;a=\"x y;z\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"q\\\"uote\"\r\nhello\r\n0\r\n\r\n", "5\t;\ta\r\nhello\r\n0\r\n\r\n",
        "5;a=\"\"\r\nhello\r\n0;last=1\r\n\r\n"}) {
    EXPECT_FALSE(chunked_error(b)) << b;
  }
}

TEST(http_parser, rejects_malformed_chunk_extensions) {
  for (const char* b : {"5;\r\nhello\r\n0\r\n\r\n", "5;=b\r\n", "5;a=\r\n", "5 \r\nhello\r\n",
                        "5;a b\r\n", "5;a=b c\r\n", "5;a=\"open\r\n", "5;a=\"x\"y\r\n", "5;a@b\r\n",
                        "5;a=\"\x01\"\r\n", "5;a=b \r\n", "5;a \r\n"}) {
    expect_chunked_error(b, error::bad_chunk_extension);
  }
}

TEST(http_parser, rejects_bare_lf_inside_chunk_extensions) {
  // Kestrel CVE-2025-55315, Go CVE-2025-22871: when one hop ends the chunk
  // line at a bare LF and the next does not, they disagree on where the
  // next request starts.
  expect_chunked_error("2;\nxx\r\n0\r\n\r\n", error::bad_chunk_extension);
  expect_chunked_error("2;a\nxx\r\n0\r\n\r\n", error::bad_chunk_extension);
  expect_chunked_error("2;a=b\nxx\r\n0\r\n\r\n", error::bad_chunk_extension);
  expect_chunked_error("2;a=\"b\nc\"\r\nxx\r\n0\r\n\r\n", error::bad_chunk_extension);
  expect_chunked_error("2;a=\"b\r\nc\"\r\nxx\r\n0\r\n\r\n", error::bad_chunk_extension);
  expect_chunked_error("2;a\rxx\r\n0\r\n\r\n", error::bad_chunk);
}

TEST(http_parser, accepts_trailer_fields_and_validates_them) {
  EXPECT_FALSE(chunked_error("0\r\nX-Checksum: abc\r\nX-B:\r\n\r\n"));
  expect_chunked_error("0\r\nX Bad: 1\r\n\r\n", error::bad_trailer);
  expect_chunked_error("0\r\nX-A: 1\r\n folded\r\n\r\n", error::bad_trailer);
  expect_chunked_error("0\r\nX-A: 1\n\r\n", error::bad_trailer);
  expect_chunked_error("0\r\nX-A: a\x01\r\n\r\n", error::bad_trailer);
  expect_chunked_error("0\r\n\n", error::bad_trailer);
  expect_chunked_error("0\r\nNoColon\r\n\r\n", error::bad_trailer);
}

TEST(http_parser, rejects_framing_and_routing_fields_in_trailers) {
  for (const char* name : {"Content-Length", "transfer-encoding", "HOST", "Connection", "TE",
                           "Trailer", "Upgrade", "Keep-Alive"}) {
    expect_chunked_error("0\r\n"s + name + ": 1\r\n\r\n", error::bad_trailer);
  }
}

TEST(http_parser, rejects_chunked_total_above_max_body) {
  http::parser_limits limits;
  limits.max_body = 10;
  EXPECT_FALSE(chunked_error("6\r\naaaaaa\r\n4\r\nbbbb\r\n0\r\n\r\n", limits));
  const auto ec = chunked_error("6\r\naaaaaa\r\n5\r\nbbbbb\r\n0\r\n\r\n", limits);
  EXPECT_EQ(ec, error::body_too_large);
  EXPECT_EQ(http::status_for(ec), 413);
}

// --- limits: one byte under passes, one byte over fails ------------------------------

TEST(http_parser, enforces_max_request_line) {
  http::parser_limits limits;
  limits.max_request_line = 64;
  const std::string prefix = "GET /";
  const std::string suffix = " HTTP/1.1";
  const std::string at = prefix + std::string(64 - prefix.size() - suffix.size(), 'a') + suffix;
  ASSERT_EQ(at.size(), 64u);
  EXPECT_FALSE(request_error(at + "\r\nHost: a\r\n\r\n", limits));
  const std::string over = prefix + std::string(65 - prefix.size() - suffix.size(), 'a') + suffix;
  auto ec = request_error(over + "\r\nHost: a\r\n\r\n", limits);
  EXPECT_EQ(ec, error::uri_too_long);
  EXPECT_EQ(http::status_for(ec), 414);
  // Known as soon as the limit is crossed, without waiting for the line end.
  http::request_parser p(limits);
  EXPECT_EQ(p.parse_head("GET /" + std::string(100, 'a')), parse_status::error);
  EXPECT_EQ(p.error(), error::uri_too_long);
  // With the default limit.
  ec = request_error("GET /" + std::string(8 * 1024, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ec, error::uri_too_long);
}

TEST(http_parser, enforces_max_header_bytes) {
  http::parser_limits limits;
  limits.max_header_bytes = 256;
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX-Fill: ";
  const std::string end = "\r\n\r\n";
  const std::string at = start + std::string(256 - start.size() - end.size(), 'f') + end;
  ASSERT_EQ(at.size(), 256u);
  EXPECT_FALSE(request_error(at, limits));
  const std::string over = start + std::string(257 - start.size() - end.size(), 'f') + end;
  const auto ec = request_error(over, limits);
  EXPECT_EQ(ec, error::header_too_large);
  EXPECT_EQ(http::status_for(ec), 431);
  // The default: 16 KiB of cookies is one byte too many.
  EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\nCookie: " + std::string(16 * 1024, 'c') +
                          "\r\n\r\n"),
            error::header_too_large);
}

TEST(http_parser, enforces_max_header_count) {
  http::parser_limits limits;
  limits.max_header_count = 5;
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 4; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_FALSE(request_error(head + "\r\n", limits));
  const auto ec = request_error(head + "X-4: v\r\n\r\n", limits);
  EXPECT_EQ(ec, error::too_many_headers);
  EXPECT_EQ(http::status_for(ec), 431);
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(request_error(many + "\r\n"), error::too_many_headers);
}

TEST(http_parser, enforces_max_body_on_content_length) {
  http::parser_limits limits;
  limits.max_body = 100;
  EXPECT_FALSE(request_error(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b'), limits));
  const auto ec =
      request_error("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", limits);
  EXPECT_EQ(ec, error::body_too_large);
  EXPECT_EQ(http::status_for(ec), 413);
}

TEST(http_parser, enforces_max_body_on_until_close_responses) {
  http::parser_limits limits;
  limits.max_body = 10;
  EXPECT_FALSE(response_error("HTTP/1.1 200 OK\r\n\r\n0123456789", http::method::get, limits));
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\n\r\n0123456789X", http::method::get, limits),
            error::body_too_large);
}

TEST(http_parser, enforces_max_chunk_line) {
  http::parser_limits limits;
  limits.max_chunk_line = 16;
  const std::string at = "1;" + std::string(14, 'e');  // 16 bytes
  EXPECT_FALSE(chunked_error(at + "\r\nx\r\n0\r\n\r\n", limits));
  EXPECT_EQ(chunked_error(at + "e\r\nx\r\n0\r\n\r\n", limits), error::bad_chunk);
  EXPECT_EQ(chunked_error(std::string(17, '0') + "\r\n\r\n", limits), error::bad_chunk);
}

TEST(http_parser, enforces_max_trailer_bytes) {
  http::parser_limits limits;
  limits.max_trailer_bytes = 32;
  const std::string prefix = "X-T: ";
  const std::string at = prefix + std::string(32 - prefix.size() - 4, 't') + "\r\n\r\n";
  ASSERT_EQ(at.size(), 32u);
  EXPECT_FALSE(chunked_error("0\r\n" + at, limits));
  const std::string over = prefix + std::string(33 - prefix.size() - 4, 't') + "\r\n\r\n";
  const auto ec = chunked_error("0\r\n" + over, limits);
  EXPECT_EQ(ec, error::trailer_too_large);
  EXPECT_EQ(http::status_for(ec), 431);
}

TEST(http_parser, refuses_limits_above_one_gib) {
  http::parser_limits limits;
  limits.max_header_bytes = std::size_t{1} << 31;
  EXPECT_ANY_THROW(http::request_parser{limits});
}

// --- errors and methods ---------------------------------------------------------------

TEST(http_error, maps_each_error_to_the_status_a_server_answers) {
  EXPECT_EQ(http::http_category().name(), std::string("trellis.http"));
  EXPECT_EQ(http::status_for(error::bad_method), 400);
  EXPECT_EQ(http::status_for(error::bare_lf), 400);
  EXPECT_EQ(http::status_for(error::partial_message), 400);
  EXPECT_EQ(http::status_for(error::uri_too_long), 414);
  EXPECT_EQ(http::status_for(error::header_too_large), 431);
  EXPECT_EQ(http::status_for(error::too_many_headers), 431);
  EXPECT_EQ(http::status_for(error::trailer_too_large), 431);
  EXPECT_EQ(http::status_for(error::body_too_large), 413);
  EXPECT_EQ(http::status_for(error::unsupported_transfer_encoding), 501);
  EXPECT_EQ(http::status_for(error::unsupported_version), 505);
  EXPECT_EQ(http::status_for(error::bad_status_line), 502);
  EXPECT_EQ(http::status_for(std::make_error_code(std::errc::io_error)), 500);
  std::vector<std::string> messages;
  for (int e = static_cast<int>(error::bad_request_line);
       e <= static_cast<int>(error::partial_message); ++e) {
    const std::string m = http::make_error_code(static_cast<error>(e)).message();
    EXPECT_NE(m, "unknown http error") << e;
    for (const auto& seen : messages) EXPECT_NE(m, seen);
    messages.push_back(m);
  }
}

TEST(http_method, parses_case_sensitively_and_knows_safety_and_idempotence) {
  EXPECT_EQ(http::parse_method("GET"), http::method::get);
  EXPECT_EQ(http::parse_method("DELETE"), http::method::delete_);
  EXPECT_EQ(http::parse_method("PATCH"), http::method::patch);
  EXPECT_EQ(http::parse_method("get"), http::method::other);
  EXPECT_EQ(http::parse_method("PROPFIND"), http::method::other);
  for (auto m : {http::method::get, http::method::head, http::method::post, http::method::put,
                 http::method::delete_, http::method::connect, http::method::options,
                 http::method::trace, http::method::patch})
    EXPECT_EQ(http::parse_method(http::to_string(m)), m);
  EXPECT_EQ(http::to_string(http::method::other), "");
  EXPECT_TRUE(http::is_safe(http::method::get));
  EXPECT_TRUE(http::is_safe(http::method::options));
  EXPECT_FALSE(http::is_safe(http::method::put));
  EXPECT_FALSE(http::is_safe(http::method::other));
  EXPECT_TRUE(http::is_idempotent(http::method::put));
  EXPECT_TRUE(http::is_idempotent(http::method::delete_));
  EXPECT_FALSE(http::is_idempotent(http::method::post));
  EXPECT_FALSE(http::is_idempotent(http::method::patch));
  EXPECT_FALSE(http::is_idempotent(http::method::connect));
  static_assert(http::parse_method("HEAD") == http::method::head);
}

}  // namespace
