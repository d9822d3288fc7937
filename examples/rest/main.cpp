// trellis-rest: an example REST service — an in-memory catalogue of books —
// showing the API design habits docs/rest-api-design.md explains.
//
//   trellis-rest --port 8081 --seed 25
//   curl -s 'localhost:8081/v1/books?limit=2&sort=-year'
//   curl -si localhost:8081/v1/books -H 'Content-Type: application/json'
//        -d '{"title":"Dune","author":"Frank Herbert","year":1965}'    (one line)
//
// Resources live under versioned paths. /v1/books represents a book with
// one "author" string; /v2/books, added later, with an "authors" array.
// Both versions are views of the same store and run side by side, so a v1
// client keeps working while new clients move to v2. v1 is lossy by
// design — a book with two authors shows them joined by ", " — which is
// the kind of change that forces a new version instead of an edit of v1.
//
//   GET    /vN/books         list: ?limit=&cursor= (cursor pagination, the
//                            primary), or ?page=&per_page= (offset, for
//                            comparison); ?author= filters; ?sort=id|-id|
//                            title|-title|year|-year orders
//   POST   /vN/books         create: 201, Location, ETag; 422 lists bad fields
//   GET    /vN/books/{id}    one book, with ETag (If-None-Match -> 304); 404
//   PUT    /vN/books/{id}    replace the whole representation
//   PATCH  /vN/books/{id}    JSON merge patch (RFC 7396), Content-Type
//                            application/merge-patch+json
//   DELETE /vN/books/{id}    204
// PUT, PATCH and DELETE honour If-Match: a client sends the ETag it read,
// and a book changed since then is not overwritten (412) — optimistic
// concurrency, checked and applied under one lock so two writers cannot
// both win. Errors are RFC 9457 problem+json bodies, including the
// router's own 404 and 405.
//
// Thread-safety: the store is shared by every worker thread, so one mutex
// guards it. Each request holds the lock for a map lookup or a sort of the
// catalogue, which is fine for an example; a real service keeps the data in
// a database and lets its transactions do this job.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "trellis/codec/base64.hpp"
#include "trellis/codec/url.hpp"
#include "trellis/core/log.hpp"
#include "trellis/core/runtime.hpp"
#include "trellis/http/json.hpp"
#include "trellis/http/router.hpp"
#include "trellis/http/server.hpp"

namespace {

using namespace trellis;
// Representations are built as ordered_json, so members appear in the
// order written ("id" first); request bodies arrive as nlohmann::json.
using json = nlohmann::ordered_json;
using input = nlohmann::json;

constexpr const char* usage = R"(trellis-rest — an example REST API over an in-memory book catalogue

usage:
  trellis-rest [--address A] [--port P] [--workers N] [--seed N] [--log-level L]

routes  GET    /v1/books         list (?limit=&cursor=, ?page=&per_page=, ?author=, ?sort=)
        POST   /v1/books         create (application/json)
        GET    /v1/books/{id}    read; ETag
        PUT    /v1/books/{id}    replace (If-Match)
        PATCH  /v1/books/{id}    merge patch (application/merge-patch+json, If-Match)
        DELETE /v1/books/{id}    delete (If-Match)
        /v2/books...             the same, with "authors" as an array
options --address A    address to bind (default 127.0.0.1)
        --port P       port (default 8081; 0 picks a free one)
        --workers N    worker threads (default: one per core)
        --seed N       preload N sample books (default 0)
        --log-level L  trace, debug, info (default), warn, error, off
)";

// --- the store ------------------------------------------------------------------

struct book {
  std::uint64_t id = 0;
  std::string title;
  std::vector<std::string> authors;
  std::int64_t year = 0;
  // Bumped by every change; the ETag is made from it, so a stale ETag
  // names an older version.
  std::uint64_t version = 1;
};

// Every writable field of a book, as a validated request supplies them.
struct book_fields {
  std::string title;
  std::vector<std::string> authors;
  std::int64_t year = 0;
};

enum class outcome { ok, not_found, precondition_failed, invalid };

// The catalogue, shared by all workers: every member function takes the lock.
class book_store {
 public:
  book insert(book_fields f) {
    std::lock_guard lock(mutex_);
    book b{next_id_++, std::move(f.title), std::move(f.authors), f.year, 1};
    books_.emplace(b.id, b);
    return b;
  }

  std::optional<book> find(std::uint64_t id) const {
    std::lock_guard lock(mutex_);
    const auto it = books_.find(id);
    if (it == books_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<book> all() const {
    std::lock_guard lock(mutex_);
    std::vector<book> out;
    out.reserve(books_.size());
    for (const auto& [id, b] : books_) out.push_back(b);
    return out;
  }

  // Under one lock: checks that the book exists and that `if_match` (an
  // If-Match value, empty when absent) names its current version, then
  // lets `change` compute the new fields from the current book. `change`
  // returns nullopt to refuse (outcome::invalid). The updated book is
  // copied to `out`.
  outcome modify(std::uint64_t id, std::string_view if_match,
                 const std::function<std::optional<book_fields>(const book&)>& change, book& out);

  outcome erase(std::uint64_t id, std::string_view if_match);

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, book> books_;
  std::uint64_t next_id_ = 1;
};

std::string etag_of(const book& b) {
  return "\"v" + std::to_string(b.version) + "\"";
}

// If-Match (RFC 9110 §13.1.1): "*" or a list of entity-tags, compared
// strongly: a weak tag (W/"...") never matches.
bool if_match_passes(std::string_view if_match, const book& b) {
  if (if_match.empty()) return true;
  const std::string etag = etag_of(b);
  std::size_t i = 0;
  while (i < if_match.size()) {
    while (i < if_match.size() && (if_match[i] == ' ' || if_match[i] == '\t' || if_match[i] == ','))
      ++i;
    if (i >= if_match.size()) break;
    if (if_match[i] == '*') return true;
    const bool weak = if_match.compare(i, 2, "W/") == 0;
    if (weak) i += 2;
    if (i >= if_match.size() || if_match[i] != '"') return false;
    const auto close = if_match.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    if (!weak && if_match.substr(i, close - i + 1) == etag) return true;
    i = close + 1;
  }
  return false;
}

outcome book_store::modify(std::uint64_t id, std::string_view if_match,
                           const std::function<std::optional<book_fields>(const book&)>& change,
                           book& out) {
  std::lock_guard lock(mutex_);
  const auto it = books_.find(id);
  if (it == books_.end()) return outcome::not_found;
  if (!if_match_passes(if_match, it->second)) return outcome::precondition_failed;
  auto fields = change(it->second);
  if (!fields) return outcome::invalid;
  book& b = it->second;
  b.title = std::move(fields->title);
  b.authors = std::move(fields->authors);
  b.year = fields->year;
  ++b.version;
  out = b;
  return outcome::ok;
}

outcome book_store::erase(std::uint64_t id, std::string_view if_match) {
  std::lock_guard lock(mutex_);
  const auto it = books_.find(id);
  if (it == books_.end()) return outcome::not_found;
  if (!if_match_passes(if_match, it->second)) return outcome::precondition_failed;
  books_.erase(it);
  return outcome::ok;
}

// --- representations ----------------------------------------------------------------

enum class api { v1, v2 };

std::string_view prefix(api v) {
  return v == api::v1 ? "/v1" : "/v2";
}

std::string join_authors(const std::vector<std::string>& authors) {
  std::string out;
  for (const auto& a : authors) {
    if (!out.empty()) out += ", ";
    out += a;
  }
  return out;
}

json represent(const book& b, api v) {
  json j = json::object();
  j["id"] = b.id;
  j["title"] = b.title;
  if (v == api::v1)
    j["author"] = join_authors(b.authors);
  else
    j["authors"] = b.authors;
  j["year"] = b.year;
  return j;
}

// Checks a full representation sent by a client (POST, PUT, or the result
// of a merge patch) and collects every problem, one entry per field, so a
// client can fix them all at once. `id`: the resource's id, which the body
// may repeat but not change; 0 on create, where "id" is not accepted.
std::optional<book_fields> validate(const input& body, api v, std::uint64_t id, json& errors) {
  errors = json::array();
  const auto problem = [&](std::string_view field, std::string_view message) {
    errors.push_back({{"field", field}, {"message", message}});
  };
  if (!body.is_object()) {
    problem("", "the body must be a JSON object");
    return std::nullopt;
  }
  book_fields f;
  const char* author_field = v == api::v1 ? "author" : "authors";
  if (body.contains("id")) {
    const input& j = body["id"];
    if (id == 0)
      problem("id", "is assigned by the server");
    else if (!j.is_number_unsigned() || j.get<std::uint64_t>() != id)
      problem("id", "cannot be changed");
  }

  constexpr std::size_t max_text = 200;
  if (!body.contains("title")) {
    problem("title", "is required");
  } else if (!body["title"].is_string() || body["title"].get_ref<const std::string&>().empty()) {
    problem("title", "must be a non-empty string");
  } else if (body["title"].get_ref<const std::string&>().size() > max_text) {
    problem("title", "must be at most 200 bytes");
  } else {
    f.title = body["title"].get<std::string>();
  }

  if (!body.contains(author_field)) {
    problem(author_field, "is required");
  } else if (v == api::v1) {
    const input& a = body["author"];
    if (!a.is_string() || a.get_ref<const std::string&>().empty())
      problem("author", "must be a non-empty string");
    else if (a.get_ref<const std::string&>().size() > max_text)
      problem("author", "must be at most 200 bytes");
    else
      f.authors = {a.get<std::string>()};
  } else {
    const input& a = body["authors"];
    constexpr std::size_t max_authors = 20;
    bool ok = a.is_array() && !a.empty() && a.size() <= max_authors;
    for (const auto& name : a.is_array() ? a : input::array())
      ok = ok && name.is_string() && !name.get_ref<const std::string&>().empty() &&
           name.get_ref<const std::string&>().size() <= max_text;
    if (ok)
      f.authors = a.get<std::vector<std::string>>();
    else
      problem("authors", "must be an array of 1 to 20 non-empty strings");
  }

  if (!body.contains("year")) {
    problem("year", "is required");
  } else if (!body["year"].is_number_integer()) {
    problem("year", "must be an integer");
  } else {
    const auto year = body["year"].get<std::int64_t>();
    if (year < -3000 || year > 2100)
      problem("year", "must be between -3000 and 2100");
    else
      f.year = year;
  }

  for (const auto& [key, value] : body.items()) {
    if (key != "id" && key != "title" && key != "year" && key != author_field)
      problem(key, v == api::v1 && key == "authors"
                       ? "unknown field (v1 has \"author\"; \"authors\" is v2)"
                   : v == api::v2 && key == "author"
                       ? "unknown field (v2 has \"authors\", an array)"
                       : "unknown field");
  }
  if (!errors.empty()) return std::nullopt;
  return f;
}

void validation_failed(http::response& res, const json& errors) {
  const std::size_t n = errors.size();
  http::set_problem(res, 422, "Unprocessable Content",
                    n == 1 ? "1 field is invalid" : std::to_string(n) + " fields are invalid",
                    input{{"errors", errors}});
}

void not_found(http::response& res, api v, std::string_view id) {
  http::set_problem(res, 404, "Not Found",
                    "there is no book " + std::string(prefix(v)) + "/books/" + std::string(id));
}

void precondition_failed(http::response& res) {
  http::set_problem(
      res, 412, "Precondition Failed",
      "the book has changed since the ETag in If-Match was read; GET it again and retry");
}

void bad_query(http::response& res, std::string detail) {
  http::set_problem(res, 400, "Bad Request", detail);
}

// The {id} of the path as a number; nullopt for anything else ("abc",
// "01", "-1", too large), which is then simply a resource that is not there.
std::optional<std::uint64_t> parse_id(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id == 0) return std::nullopt;
  return id;
}

void send_book(http::response& res, const book& b, api v, int status = 200) {
  http::set_json(res, represent(b, v), status);
  (void)res.headers.set("ETag", etag_of(b));
}

// --- pagination -------------------------------------------------------------------------
//
// Cursor (keyset) pagination is the primary mode. A cursor names the last
// item a page showed — its sort key and id — and the next page starts
// strictly after that item in the sort order. Inserting or deleting books
// while a client pages through therefore never makes it skip or repeat an
// item, and finding the next page costs a seek in an index rather than
// counting past `offset` rows. Offset pagination (?page=&per_page=) is kept
// for comparison: it can jump to page 7 and report a total, but when an
// item before the current page is deleted, every later item moves up one
// place and the client misses one.
//
// The cursor is opaque to clients — base64url of {"s":sort,"k":key,"i":id} —
// so the server may change what is in it without breaking anyone.

struct sort_order {
  std::string name = "id";  // as given: "id", "-year", ...
  enum class field { id, title, year } by = field::id;
  bool descending = false;
};

std::optional<sort_order> parse_sort(std::string_view text) {
  sort_order s;
  s.name = std::string(text);
  s.descending = !text.empty() && text.front() == '-';
  if (s.descending) text.remove_prefix(1);
  if (text == "id")
    s.by = sort_order::field::id;
  else if (text == "title")
    s.by = sort_order::field::title;
  else if (text == "year")
    s.by = sort_order::field::year;
  else
    return std::nullopt;
  return s;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A position in the sort order: the sort key (as JSON: number or string)
// and the id that breaks ties.
struct position {
  json key;
  std::uint64_t id = 0;
};

position position_of(const book& b, const sort_order& s) {
  switch (s.by) {
    case sort_order::field::title: return {lowercase(b.title), b.id};
    case sort_order::field::year: return {b.year, b.id};
    case sort_order::field::id: break;
  }
  return {b.id, b.id};
}

// Whether `a` comes before `b`: by key (reversed when descending), then by
// id, always ascending, so that the order is total and a cursor is exact.
bool before(const position& a, const position& b, const sort_order& s) {
  if (a.key != b.key) return s.descending ? b.key < a.key : a.key < b.key;
  return a.id < b.id;
}

// Cursors are base64url without padding (RFC 4648 §5): safe in a query.
constexpr codec::base64_options cursor_coding{.alphabet = codec::base64_alphabet::url,
                                              .padding = false};

std::string make_cursor(const book& b, const sort_order& s) {
  const position p = position_of(b, s);
  return codec::base64_encode(json{{"s", s.name}, {"k", p.key}, {"i", p.id}}.dump(), cursor_coding);
}

// The position a cursor names, or an error message for a 400.
std::optional<position> read_cursor(std::string_view cursor, const sort_order& s,
                                    std::string& error) {
  const auto text = codec::base64_decode(cursor, cursor_coding);
  const json j = text ? json::parse(*text, nullptr, false) : json();
  if (!text || !j.is_object() || !j.contains("s") || !j["s"].is_string() || !j.contains("k") ||
      !j.contains("i") || !j["i"].is_number_unsigned()) {
    error = "the cursor is not one this server issued";
    return std::nullopt;
  }
  if (j["s"] != s.name) {
    error = "the cursor was issued for sort=" + j["s"].get<std::string>() +
            "; repeat that sort to use it";
    return std::nullopt;
  }
  return position{j["k"], j["i"].get<std::uint64_t>()};
}

// A query parameter as a number in [lo, hi]; fallback when absent.
std::optional<std::int64_t> number_param(const http::query_params& q, std::string_view name,
                                         std::int64_t fallback, std::int64_t lo, std::int64_t hi,
                                         http::response& res) {
  const auto text = q.get(name);
  if (!text) return fallback;
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || n < lo ||
      n > hi) {
    bad_query(res, std::string(name) + " must be an integer from " + std::to_string(lo) + " to " +
                       std::to_string(hi));
    return std::nullopt;
  }
  return n;
}

// --- handlers -------------------------------------------------------------------------------

asio::awaitable<void> list_books(book_store& store, api v, http::request& req,
                                 http::response& res) {
  auto q = http::query_params::parse(req.query());
  if (!q) {
    bad_query(res, "the query string is malformed: " + q.error().message());
    co_return;
  }
  for (const auto& [key, value] : *q) {
    if (key != "limit" && key != "cursor" && key != "page" && key != "per_page" &&
        key != "author" && key != "sort") {
      bad_query(res, "unknown query parameter '" + std::string(key) +
                         "'; known: limit, cursor, page, per_page, author, sort");
      co_return;
    }
  }
  const bool offset_mode = q->contains("page") || q->contains("per_page");
  if (offset_mode && (q->contains("cursor") || q->contains("limit"))) {
    bad_query(res, "use either limit and cursor, or page and per_page");
    co_return;
  }
  const auto sort = parse_sort(q->get("sort").value_or("id"));
  if (!sort) {
    bad_query(res, "sort must be one of id, -id, title, -title, year, -year");
    co_return;
  }

  std::vector<book> books = store.all();
  if (const auto author = q->get("author")) {
    const std::string wanted = lowercase(*author);
    std::erase_if(books, [&](const book& b) {
      return std::none_of(b.authors.begin(), b.authors.end(),
                          [&](const std::string& a) { return lowercase(a) == wanted; });
    });
  }
  std::sort(books.begin(), books.end(), [&](const book& a, const book& b) {
    return before(position_of(a, *sort), position_of(b, *sort), *sort);
  });

  json items = json::array();
  json page = json::object();
  if (offset_mode) {
    const auto number = number_param(*q, "page", 1, 1, 1'000'000, res);
    const auto per_page = number ? number_param(*q, "per_page", 10, 1, 100, res) : std::nullopt;
    if (!number || !per_page) co_return;
    const auto first = static_cast<std::size_t>((*number - 1) * *per_page);
    for (std::size_t i = first; i < books.size() && i < first + static_cast<std::size_t>(*per_page);
         ++i)
      items.push_back(represent(books[i], v));
    page = {{"items", std::move(items)},
            {"page", *number},
            {"per_page", *per_page},
            {"total", books.size()}};
  } else {
    const auto limit = number_param(*q, "limit", 10, 1, 100, res);
    if (!limit) co_return;
    auto it = books.begin();
    if (const auto cursor = q->get("cursor")) {
      std::string error;
      const auto after = read_cursor(*cursor, *sort, error);
      if (!after) {
        bad_query(res, error);
        co_return;
      }
      it = std::find_if(books.begin(), books.end(), [&](const book& b) {
        return before(*after, position_of(b, *sort), *sort);
      });
    }
    const book* last = nullptr;
    for (; it != books.end() && items.size() < static_cast<std::size_t>(*limit); ++it) {
      items.push_back(represent(*it, v));
      last = &*it;
    }
    json next = nullptr;
    if (last && it != books.end()) {
      next = make_cursor(*last, *sort);
      // The same link as a header (RFC 8288), with the client's filter and
      // sort repeated, for clients that follow links generically.
      std::string link = std::string(prefix(v)) + "/books?limit=" + std::to_string(*limit) +
                         "&cursor=" + next.get<std::string>();
      if (const auto author = q->get("author"))
        link += "&author=" + http::encode_component(*author, http::component::query);
      if (q->contains("sort")) link += "&sort=" + sort->name;
      (void)res.headers.set("Link", "<" + link + ">; rel=\"next\"");
    }
    page = {{"items", std::move(items)}, {"next_cursor", std::move(next)}};
  }
  http::set_json(res, page);
}

asio::awaitable<void> get_book(book_store& store, api v, http::request& req, http::response& res) {
  const auto id = parse_id(req.param("id"));
  const auto b = id ? store.find(*id) : std::nullopt;
  if (!b) {
    not_found(res, v, req.param("id"));
    co_return;
  }
  // A client that has this version already gets 304 and no body.
  const auto inm = req.header("If-None-Match");
  if (!inm.empty() && (inm == "*" || inm.find(etag_of(*b)) != std::string_view::npos)) {
    res.status = 304;
    (void)res.headers.set("ETag", etag_of(*b));
    co_return;
  }
  send_book(res, *b, v);
}

asio::awaitable<void> create_book(book_store& store, api v, http::request& req,
                                  http::response& res) {
  auto body = co_await http::read_json(req, res);
  if (!body) co_return;
  json errors;
  auto fields = validate(*body, v, 0, errors);
  if (!fields) {
    validation_failed(res, errors);
    co_return;
  }
  const book b = store.insert(std::move(*fields));
  send_book(res, b, v, 201);
  (void)res.headers.set("Location", std::string(prefix(v)) + "/books/" + std::to_string(b.id));
}

// What PUT and PATCH share: the lookup, the early If-Match check, and the
// answer for each outcome of book_store::modify.
asio::awaitable<void> write_book(book_store& store, api v, http::request& req, http::response& res,
                                 bool patch) {
  const auto id = parse_id(req.param("id"));
  const auto current = id ? store.find(*id) : std::nullopt;
  if (!current) {
    not_found(res, v, req.param("id"));
    co_return;
  }
  const std::string if_match(req.header("If-Match"));
  // Checked here too so that a stale client is told before it uploads a
  // body; the check that counts is the one under the store's lock.
  if (!if_match_passes(if_match, *current)) {
    precondition_failed(res);
    co_return;
  }
  if (patch) {
    const std::string_view type = req.header("Content-Type");
    const std::string_view media = type.substr(0, type.find(';'));
    if (lowercase(media) != "application/merge-patch+json") {
      http::set_problem(res, 415, "Unsupported Media Type",
                        "PATCH takes a JSON merge patch (RFC 7396): send Content-Type "
                        "application/merge-patch+json");
      (void)res.headers.set("Accept-Patch", "application/merge-patch+json");
      co_return;
    }
  }
  auto body = co_await http::read_json(req, res);
  if (!body) co_return;

  json errors;
  book updated;
  const outcome o = store.modify(
      *id, if_match,
      [&](const book& b) -> std::optional<book_fields> {
        // PUT: the body is the new representation. PATCH: the body is
        // merged into the current one (null removes a member, objects
        // merge, anything else replaces), and the result must be a valid
        // representation like a PUT body.
        input doc = *body;
        if (patch) {
          doc = input(represent(b, v));
          doc.merge_patch(*body);
        }
        return validate(doc, v, b.id, errors);
      },
      updated);
  switch (o) {
    case outcome::ok: send_book(res, updated, v); break;
    case outcome::not_found: not_found(res, v, req.param("id")); break;
    case outcome::precondition_failed: precondition_failed(res); break;
    case outcome::invalid: validation_failed(res, errors); break;
  }
}

asio::awaitable<void> delete_book(book_store& store, api v, http::request& req,
                                  http::response& res) {
  const auto id = parse_id(req.param("id"));
  const outcome o = id ? store.erase(*id, req.header("If-Match")) : outcome::not_found;
  if (o == outcome::not_found)
    not_found(res, v, req.param("id"));
  else if (o == outcome::precondition_failed)
    precondition_failed(res);
  else
    res.status = 204;
  co_return;
}

// Turns the router's own plain-text 404 and 405 answers into problem+json,
// so that every error of the API has the same shape.
class problem_errors final : public http::middleware {
 public:
  asio::awaitable<void> after(http::request& req, http::response& res) override {
    const auto type = res.headers.get("Content-Type");
    const bool plain = type && type->starts_with("text/plain");
    if (plain && res.status == 404)
      http::set_problem(res, 404, "Not Found", "no resource at " + std::string(req.path()));
    else if (plain && res.status == 405)
      http::set_problem(
          res, 405, "Method Not Allowed",
          std::string(req.method_text()) + " is not supported here; see the Allow header");
    co_return;
  }
};

void add_routes(http::router& r, book_store& store, api v) {
  using handler_fn = asio::awaitable<void> (*)(book_store&, api, http::request&, http::response&);
  const auto bind = [&store, v](handler_fn f) {
    return
        [&store, v, f](http::request& req, http::response& res) { return f(store, v, req, res); };
  };
  auto g = r.group(prefix(v));
  g.get("/books", bind(list_books));
  g.post("/books", bind(create_book));
  g.get("/books/{id}", bind(get_book));
  g.put("/books/{id}", [&store, v](http::request& req, http::response& res) {
    return write_book(store, v, req, res, false);
  });
  g.patch("/books/{id}", [&store, v](http::request& req, http::response& res) {
    return write_book(store, v, req, res, true);
  });
  g.del("/books/{id}", bind(delete_book));
}

// Sample data for --seed: real books first (Good Omens has two authors,
// to show v1 and v2 apart), then numbered ones.
void seed(book_store& store, long n) {
  struct sample {
    const char* title;
    std::vector<std::string> authors;
    int year;
  };
  const std::vector<sample> samples = {
      {"Pride and Prejudice", {"Jane Austen"}, 1813},
      {"Moby-Dick", {"Herman Melville"}, 1851},
      {"Good Omens", {"Terry Pratchett", "Neil Gaiman"}, 1990},
      {"Frankenstein", {"Mary Shelley"}, 1818},
      {"Emma", {"Jane Austen"}, 1815},
      {"The Time Machine", {"H. G. Wells"}, 1895},
      {"Dracula", {"Bram Stoker"}, 1897},
      {"Middlemarch", {"George Eliot"}, 1871},
      {"The War of the Worlds", {"H. G. Wells"}, 1898},
      {"Persuasion", {"Jane Austen"}, 1817},
      {"Sense and Sensibility", {"Jane Austen"}, 1811},
      {"The Invisible Man", {"H. G. Wells"}, 1897},
  };
  for (long i = 0; i < n; ++i) {
    if (static_cast<std::size_t>(i) < samples.size()) {
      const auto& s = samples[static_cast<std::size_t>(i)];
      store.insert({s.title, s.authors, s.year});
    } else {
      store.insert({"Sample Book " + std::to_string(i + 1),
                    {"Author " + std::to_string(i % 7 + 1)},
                    1900 + i % 120});
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const examples::args a("trellis-rest", argc, argv, usage);
  a.allow({"address", "port", "workers", "seed", "log-level"});
  if (!a.positional().empty())
    a.fail("unexpected argument '" + a.positional()[0] + "' (see --help)");
  a.apply_log_level();
  const auto address = a.address();
  const auto port = static_cast<unsigned short>(a.number("port", 8081, 0, 65535));
  const auto workers = static_cast<std::size_t>(a.number("workers", 0, 0, 1024));
  const long seed_count = a.number("seed", 0, 0, 100'000);

  book_store store;
  seed(store, seed_count);

  http::router routes;
  routes.use(std::make_shared<problem_errors>());
  add_routes(routes, store, api::v1);
  add_routes(routes, store, api::v2);

  // The runtime before the server: the server registers drain hooks with
  // the runtime's workers and removes them when it is destroyed, so the
  // runtime must outlive it.
  core::runtime rt({.workers = workers});
  http::server srv(routes.to_handler());
  auto bound = srv.listen(rt, {address, port});
  if (!bound)
    a.fail("cannot listen on " + examples::to_string({address, port}) + ": " +
           bound.error().message());
  core::log::info("listening", {{"address", examples::to_string(*bound)},
                                {"workers", rt.size()},
                                {"books", static_cast<std::uint64_t>(seed_count)}});
  rt.run();
  core::log::info("stopped");
  return 0;
}
