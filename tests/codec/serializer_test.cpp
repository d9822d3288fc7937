#include "trellis/codec/http/serializer.hpp"

#include <gtest/gtest.h>

#include <string>

#include "trellis/codec/http/parser.hpp"

namespace trellis::http {
namespace {

TEST(http_serializer, writes_status_lines_with_registered_reasons) {
  std::string out;
  write_status_line(out, 200);
  write_status_line(out, 404, 1);
  write_status_line(out, 299);  // unregistered: empty reason, still a valid line
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nHTTP/1.1 404 Not Found\r\nHTTP/1.1 299 \r\n");
}

TEST(http_serializer, knows_which_responses_carry_a_body) {
  EXPECT_TRUE(response_has_body(200, method::get));
  EXPECT_FALSE(response_has_body(200, method::head));
  EXPECT_FALSE(response_has_body(204, method::get));
  EXPECT_FALSE(response_has_body(304, method::get));
  EXPECT_FALSE(response_has_body(101, method::get));
  EXPECT_FALSE(response_has_body(200, method::connect));  // a tunnel follows
  EXPECT_TRUE(response_has_body(407, method::connect));
}

TEST(http_serializer, writes_chunk_framing_in_hex) {
  std::string out;
  write_chunk_header(out, 26);
  out += "abcdefghijklmnopqrstuvwxyz";
  write_chunk_end(out);
  write_last_chunk(out);
  write_field(out, "Checksum", "x");
  write_end_of_head(out);
  EXPECT_EQ(out, "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nChecksum: x\r\n\r\n");
}

// What the serializer writes, the strict parser reads back unchanged.
TEST(http_serializer, a_serialized_response_parses_back_to_the_same_message) {
  std::string out;
  write_status_line(out, 201);
  write_field(out, "Location", "/v1/books/7");
  write_field(out, "Transfer-Encoding", "chunked");
  write_end_of_head(out);
  write_chunk_header(out, 5);
  out += "hello";
  write_chunk_end(out);
  write_last_chunk(out);
  write_end_of_head(out);

  response_parser p;
  p.expect(method::post);
  ASSERT_EQ(p.parse_head(out), parse_status::done) << p.error().message();
  EXPECT_EQ(p.head().status, 201);
  EXPECT_EQ(p.head().reason, "Created");
  EXPECT_EQ(p.head().find("location"), "/v1/books/7");
  EXPECT_EQ(p.head().framing, framing::chunked);
  std::string body;
  std::string_view rest = std::string_view(out).substr(p.head_size());
  while (!p.body_done()) {
    std::string_view data;
    auto n = p.parse_body(rest, data);
    ASSERT_TRUE(n) << n.error().message();
    body += data;
    rest.remove_prefix(*n);
  }
  EXPECT_EQ(body, "hello");
  EXPECT_TRUE(rest.empty());
}

TEST(http_serializer, writes_request_lines_and_content_length) {
  std::string out;
  write_request_line(out, "GET", "/a?b=c");
  write_content_length(out, 18446744073709551615ull);
  EXPECT_EQ(out, "GET /a?b=c HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n");
}

}  // namespace
}  // namespace trellis::http
