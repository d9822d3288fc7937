// Tests of the trellis-rest example as a real process, driven with curl on
// 127.0.0.1: creation with Location and ETag, cursor and offset pagination
// (and why cursors survive deletions), filtering and sorting, problem+json
// errors (400, 404, 405, 412, 415, 422), optimistic concurrency with
// If-Match, JSON merge patch, and the v1 and v2 representations side by
// side. Each test starts its own service (--port 0; the bound port is read
// from its "listening" log line) with 25 seeded books, and kills it at the
// end whatever happened.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/curl_reply.hpp"
#include "support/process.hpp"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

const std::string rest_binary = std::string(TRELLIS_BIN_DIR) + "/trellis-rest";

using reply = test::curl_reply;
using test::parse_curl;

// One trellis-rest process with `seed` books, on a port of its choosing.
class rest_service {
 public:
  explicit rest_service(int seed)
      : proc_({rest_binary, "--address", "127.0.0.1", "--port", "0", "--workers", "2", "--seed",
               std::to_string(seed)}) {
    if (!proc_.wait_for_output("listening", 10s, /*from_stderr=*/true))
      throw std::runtime_error("trellis-rest did not start: " + proc_.err());
    const auto port = test::logged_port(proc_.err());
    if (!port) throw std::runtime_error("no address in: " + proc_.err());
    port_ = *port;
  }
  ~rest_service() { proc_.wait_or_kill(0ms, 2s); }
  rest_service(const rest_service&) = delete;
  rest_service& operator=(const rest_service&) = delete;

  // One request through curl. `headers` are "Name: value" lines.
  reply call(const std::string& method, const std::string& path, const std::string& body = {},
             const std::vector<std::string>& headers = {}) {
    std::vector<std::string> argv = {"curl", "-sS",  "-i", "--max-time", "10",
                                     "-X",   method, "-H", "Expect:"};
    for (const auto& h : headers) {
      argv.push_back("-H");
      argv.push_back(h);
    }
    if (!body.empty()) {
      argv.push_back("--data-binary");
      argv.push_back(body);
    }
    argv.push_back("http://127.0.0.1:" + std::to_string(port_) + path);
    const auto done = test::run(argv);
    EXPECT_TRUE(done.status.success()) << "curl " << method << " " << path << ": " << done.err;
    return parse_curl(done.out);
  }
  reply get(const std::string& path, const std::vector<std::string>& headers = {}) {
    return call("GET", path, {}, headers);
  }
  reply send_json(const std::string& method, const std::string& path, const json& body,
                  std::vector<std::string> headers = {},
                  const std::string& type = "application/json") {
    headers.push_back("Content-Type: " + type);
    return call(method, path, body.dump(), headers);
  }

 private:
  test::process proc_;
  int port_ = 0;
};

class rest_example : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(rest_binary))
      GTEST_SKIP() << rest_binary << " is not built (configure with TRELLIS_BUILD_EXAMPLES=ON)";
    if (!test::program_exists("curl"))
      GTEST_SKIP() << "needs the `curl` program on PATH (Debian package curl)";
    service_.emplace(25);
  }
  rest_service& api() { return *service_; }

  // The ids of a list response's items, in order.
  static std::vector<std::uint64_t> ids(const json& page) {
    std::vector<std::uint64_t> out;
    for (const auto& item : page["items"]) out.push_back(item["id"].get<std::uint64_t>());
    return out;
  }

 private:
  std::optional<rest_service> service_;
};

void expect_problem(const reply& r, int status, const std::string& title) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  const json p = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(p.is_object()) << r.body;
  EXPECT_EQ(p["type"], "about:blank");
  EXPECT_EQ(p["status"], status);
  EXPECT_EQ(p["title"], title);
  EXPECT_TRUE(p["detail"].is_string() && !p["detail"].get<std::string>().empty()) << r.body;
}

TEST_F(rest_example, create_answers_201_with_location_etag_and_the_book) {
  const auto r = api().send_json("POST", "/v1/books",
                                 {{"title", "Dune"}, {"author", "Frank Herbert"}, {"year", 1965}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("location"), "/v1/books/26");
  EXPECT_EQ(r.header("etag"), "\"v1\"");
  EXPECT_EQ(r.body, "{\"id\":26,\"title\":\"Dune\",\"author\":\"Frank Herbert\",\"year\":1965}\n");

  const auto again = api().get(r.header("location"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, r.body);
  EXPECT_EQ(again.header("etag"), "\"v1\"");
}

TEST_F(rest_example, a_cursor_pages_through_all_25_books_once_each) {
  std::vector<std::uint64_t> seen;
  std::string path = "/v1/books?limit=10";
  int pages = 0;
  for (; pages < 10; ++pages) {  // bounded: 3 pages expected
    const auto r = api().get(path);
    ASSERT_EQ(r.status, 200) << r.body;
    const json page = r.parsed();
    for (auto id : ids(page)) seen.push_back(id);
    if (page["next_cursor"].is_null()) {
      EXPECT_EQ(r.header("link"), "") << "no next link on the last page";
      break;
    }
    const std::string cursor = page["next_cursor"];
    EXPECT_EQ(r.header("link"), "</v1/books?limit=10&cursor=" + cursor + ">; rel=\"next\"");
    path = "/v1/books?limit=10&cursor=" + cursor;
  }
  EXPECT_EQ(pages + 1, 3) << "25 books in pages of 10";
  ASSERT_EQ(seen.size(), 25u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST_F(rest_example, a_cursor_neither_skips_nor_repeats_when_earlier_books_are_deleted) {
  const json first = api().get("/v1/books?limit=10").parsed();
  EXPECT_EQ(ids(first).back(), 10u);
  const json offset_first = api().get("/v1/books?page=1&per_page=10").parsed();
  EXPECT_EQ(ids(offset_first).back(), 10u);

  // Someone deletes a book the client has already seen.
  ASSERT_EQ(api().call("DELETE", "/v1/books/3").status, 204);

  const json second =
      api().get("/v1/books?limit=10&cursor=" + first["next_cursor"].get<std::string>()).parsed();
  EXPECT_EQ(ids(second).front(), 11u) << "the cursor resumes right after book 10";
  // Offset pagination moved every later book up one place: book 11 is now
  // on page 1 and the client never sees it.
  const json offset_second = api().get("/v1/books?page=2&per_page=10").parsed();
  EXPECT_EQ(ids(offset_second).front(), 12u);
  EXPECT_EQ(offset_second["total"], 24);
}

TEST_F(rest_example, filters_by_author_and_sorts) {
  auto r = api().get("/v1/books?author=jane%20austen");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ids(r.parsed()), (std::vector<std::uint64_t>{1, 5, 10, 11}));

  r = api().get("/v1/books?author=Jane+Austen&sort=-year");
  EXPECT_EQ(ids(r.parsed()), (std::vector<std::uint64_t>{10, 5, 1, 11}));

  r = api().get("/v1/books?sort=title&limit=3");
  const json page = r.parsed();
  EXPECT_EQ(page["items"][0]["title"], "Dracula");
  EXPECT_EQ(page["items"][1]["title"], "Emma");
  EXPECT_EQ(page["items"][2]["title"], "Frankenstein");

  // A sorted, filtered listing pages with its cursor too.
  r = api().get("/v1/books?author=H.%20G.%20Wells&sort=-year&limit=2");
  const json wells = r.parsed();
  EXPECT_EQ(ids(wells), (std::vector<std::uint64_t>{9, 12}));
  r = api().get("/v1/books?author=H.%20G.%20Wells&sort=-year&limit=2&cursor=" +
                wells["next_cursor"].get<std::string>());
  EXPECT_EQ(ids(r.parsed()), (std::vector<std::uint64_t>{6}));
}

TEST_F(rest_example, bad_query_parameters_are_400_problems) {
  expect_problem(api().get("/v1/books?limit=0"), 400, "Bad Request");
  expect_problem(api().get("/v1/books?limit=abc"), 400, "Bad Request");
  expect_problem(api().get("/v1/books?sort=price"), 400, "Bad Request");
  expect_problem(api().get("/v1/books?cursor=not-a-cursor"), 400, "Bad Request");
  expect_problem(api().get("/v1/books?color=red"), 400, "Bad Request");
  expect_problem(api().get("/v1/books?page=1&limit=5"), 400, "Bad Request");
  const std::string cursor = api().get("/v1/books?limit=5&sort=year").parsed()["next_cursor"];
  const auto r = api().get("/v1/books?limit=5&cursor=" + cursor);
  expect_problem(r, 400, "Bad Request");
  EXPECT_NE(r.body.find("sort=year"), std::string::npos) << "the cursor names its sort: " << r.body;
}

TEST_F(rest_example, a_missing_book_is_a_404_problem) {
  auto r = api().get("/v1/books/999");
  expect_problem(r, 404, "Not Found");
  EXPECT_EQ(r.parsed()["detail"], "there is no book /v1/books/999");
  expect_problem(api().get("/v1/books/abc"), 404, "Not Found");
  expect_problem(api().get("/v1/books/007"), 404, "Not Found");
  expect_problem(api().get("/v1/nothing-here"), 404, "Not Found");
}

TEST_F(rest_example, an_unrouted_method_is_a_405_problem_with_allow) {
  const auto r = api().call("DELETE", "/v1/books");
  expect_problem(r, 405, "Method Not Allowed");
  EXPECT_EQ(r.header("allow"), "GET, HEAD, POST, OPTIONS");
}

TEST_F(rest_example, invalid_fields_are_a_422_listing_each_one) {
  const auto r =
      api().send_json("POST", "/v1/books", {{"id", 5}, {"year", "1965"}, {"authors", {"x"}}});
  expect_problem(r, 422, "Unprocessable Content");
  const json p = r.parsed();
  std::set<std::string> fields;
  for (const auto& e : p["errors"]) {
    fields.insert(e["field"].get<std::string>());
    EXPECT_FALSE(e["message"].get<std::string>().empty());
  }
  EXPECT_EQ(fields, (std::set<std::string>{"id", "title", "author", "year", "authors"}));
  EXPECT_EQ(p["detail"], "5 fields are invalid");
  EXPECT_EQ(api().get("/v1/books/26").status, 404) << "nothing was created";
}

TEST_F(rest_example, malformed_json_is_a_400_with_the_position_and_other_types_a_415) {
  auto r =
      api().call("POST", "/v1/books", "{\"title\": \"Dune\",}", {"Content-Type: application/json"});
  expect_problem(r, 400, "Bad Request");
  EXPECT_EQ(r.parsed()["offset"], 17);
  EXPECT_NE(r.parsed()["detail"].get<std::string>().find("expected string literal"),
            std::string::npos)
      << r.body;

  r = api().call("POST", "/v1/books", "title=Dune",
                 {"Content-Type: application/x-www-form-urlencoded"});
  expect_problem(r, 415, "Unsupported Media Type");
}

TEST_F(rest_example, if_match_prevents_lost_updates) {
  const auto original = api().get("/v1/books/2");
  const std::string etag = original.header("etag");
  ASSERT_EQ(etag, "\"v1\"");
  json changed = original.parsed();
  changed["year"] = 1852;

  // Two clients read version 1; the first write wins...
  auto r = api().send_json("PUT", "/v1/books/2", changed, {"If-Match: " + etag});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("etag"), "\"v2\"");
  EXPECT_EQ(r.parsed()["year"], 1852);
  // ...and the second, still holding version 1, is refused.
  changed["year"] = 1999;
  expect_problem(api().send_json("PUT", "/v1/books/2", changed, {"If-Match: " + etag}), 412,
                 "Precondition Failed");
  expect_problem(api().call("DELETE", "/v1/books/2", {}, {"If-Match: " + etag}), 412,
                 "Precondition Failed");
  EXPECT_EQ(api().get("/v1/books/2").parsed()["year"], 1852)
      << "the refused writes changed nothing";

  // A weak tag never passes If-Match; the current strong one does.
  expect_problem(api().call("DELETE", "/v1/books/2", {}, {"If-Match: W/\"v2\""}), 412,
                 "Precondition Failed");
  r = api().call("DELETE", "/v1/books/2", {}, {"If-Match: \"v2\""});
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  expect_problem(api().get("/v1/books/2"), 404, "Not Found");
  expect_problem(api().call("DELETE", "/v1/books/2"), 404, "Not Found");
}

TEST_F(rest_example, put_replaces_the_whole_representation) {
  auto r = api().send_json("PUT", "/v1/books/1",
                           {{"title", "Pride & Prejudice"}, {"author", "Jane Austen"}});
  expect_problem(r, 422, "Unprocessable Content");
  EXPECT_EQ(r.parsed()["errors"][0]["field"], "year") << "PUT needs every field";
  r = api().send_json("PUT", "/v1/books/1",
                      {{"id", 2}, {"title", "T"}, {"author", "A"}, {"year", 1}});
  expect_problem(r, 422, "Unprocessable Content");
  EXPECT_EQ(r.parsed()["errors"][0]["field"], "id");
  r = api().send_json("PUT", "/v1/books/1",
                      {{"title", "Pride & Prejudice"}, {"author", "Jane Austen"}, {"year", 1813}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(
      r.body,
      "{\"id\":1,\"title\":\"Pride & Prejudice\",\"author\":\"Jane Austen\",\"year\":1813}\n");
  expect_problem(
      api().send_json("PUT", "/v1/books/404", {{"title", "T"}, {"author", "A"}, {"year", 1}}), 404,
      "Not Found");
}

TEST_F(rest_example, merge_patch_changes_only_the_named_members) {
  auto r = api().send_json("PATCH", "/v1/books/4", {{"year", 1831}}, {"If-Match: \"v1\""},
                           "application/merge-patch+json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "{\"id\":4,\"title\":\"Frankenstein\",\"author\":\"Mary Shelley\",\"year\":1831}\n");
  EXPECT_EQ(r.header("etag"), "\"v2\"");

  // null removes a member: a required one makes the result invalid.
  r = api().send_json("PATCH", "/v1/books/4", {{"title", nullptr}}, {},
                      "application/merge-patch+json");
  expect_problem(r, 422, "Unprocessable Content");
  EXPECT_EQ(r.parsed()["errors"][0]["field"], "title");

  // A plain JSON body is not a merge patch.
  r = api().send_json("PATCH", "/v1/books/4", {{"year", 1818}});
  expect_problem(r, 415, "Unsupported Media Type");
  EXPECT_EQ(r.header("accept-patch"), "application/merge-patch+json");

  expect_problem(api().send_json("PATCH", "/v1/books/4", {{"year", 1}}, {"If-Match: \"v1\""},
                                 "application/merge-patch+json"),
                 412, "Precondition Failed");
  EXPECT_EQ(api().get("/v1/books/4").parsed()["year"], 1831);
}

TEST_F(rest_example, if_none_match_with_the_current_etag_gives_304) {
  auto r = api().get("/v2/books/7", {"If-None-Match: \"v1\""});
  EXPECT_EQ(r.status, 304);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.header("etag"), "\"v1\"");
  EXPECT_EQ(api().get("/v2/books/7", {"If-None-Match: \"v0\""}).status, 200);
}

TEST_F(rest_example, v1_and_v2_show_the_same_book_in_their_own_shapes) {
  auto v1 = api().get("/v1/books/3");
  auto v2 = api().get("/v2/books/3");
  EXPECT_EQ(v1.body,
            "{\"id\":3,\"title\":\"Good Omens\",\"author\":\"Terry Pratchett, Neil "
            "Gaiman\",\"year\":1990}\n");
  EXPECT_EQ(v2.body,
            "{\"id\":3,\"title\":\"Good Omens\",\"authors\":[\"Terry Pratchett\",\"Neil "
            "Gaiman\"],\"year\":1990}\n");

  // Created through v2, seen through v1.
  auto r = api().send_json(
      "POST", "/v2/books",
      {{"title", "The Talisman"}, {"authors", {"Stephen King", "Peter Straub"}}, {"year", 1984}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("location"), "/v2/books/26");
  EXPECT_EQ(api().get("/v1/books/26").parsed()["author"], "Stephen King, Peter Straub");

  // Each version validates its own shape.
  r = api().send_json("POST", "/v2/books", {{"title", "T"}, {"author", "A"}, {"year", 1}});
  expect_problem(r, 422, "Unprocessable Content");
  EXPECT_NE(r.body.find("\"authors\""), std::string::npos) << r.body;
  r = api().send_json("POST", "/v2/books",
                      {{"title", "T"}, {"authors", json::array()}, {"year", 1}});
  expect_problem(r, 422, "Unprocessable Content");

  // Lists follow the version too.
  const json list = api().get("/v2/books?limit=1&sort=-year").parsed();
  EXPECT_EQ(list["items"][0]["authors"], (json{"Terry Pratchett", "Neil Gaiman"}));
}

}  // namespace
}  // namespace trellis
