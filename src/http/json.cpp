#include "trellis/http/json.hpp"

#include <algorithm>
#include <string>

#include "trellis/codec/ascii.hpp"
#include "trellis/codec/http/error.hpp"
#include "trellis/codec/http/serializer.hpp"
#include "trellis/net/error.hpp"

namespace trellis::http {
namespace {

using codec::iequals;
using codec::trim_ows;

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.http.json"; }
  std::string message(int v) const override {
    switch (static_cast<json_error>(v)) {
      case json_error::unsupported_media_type: return "the request body is not declared as JSON";
      case json_error::syntax: return "malformed JSON";
      case json_error::too_deep: return "JSON nested too deeply";
    }
    return "unknown JSON error";
  }
};

// Where a byte offset is, as line and column from 1.
void locate(std::string_view text, std::size_t offset, json_failure& f) {
  offset = std::min(offset, text.size());
  const std::string_view before = text.substr(0, offset);
  f.offset = offset;
  f.line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  const auto nl = before.rfind('\n');
  f.column = offset - (nl == std::string_view::npos ? 0 : nl + 1) + 1;
}

std::string where(const json_failure& f) {
  return "at byte " + std::to_string(f.offset) + " (line " + std::to_string(f.line) + ", column " +
         std::to_string(f.column) + ")";
}

// The offset of the first array or object opened deeper than `limit`, or
// npos. Brackets inside strings do not count. Runs before the parser so
// that a hostile document costs a linear scan, not a deep value.
std::size_t too_deep_at(std::string_view text, std::size_t limit) noexcept {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

// A SAX consumer that builds nothing and records the first error: run only
// after the fast parse has failed, to learn where and why.
class error_finder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    position_ = position;
    message_ = ex.what();
    return false;
  }

  std::size_t position() const noexcept { return position_; }
  // nlohmann's message without its "[json.exception.parse_error.101] " tag
  // and "parse error at line L, column C: " prefix (we give the place
  // ourselves, in bytes too), and cut short: it quotes the last token read,
  // which may be a long string.
  std::string message() const {
    std::string_view m = message_;
    if (const auto tag = m.find("] ");
        m.starts_with("[json.exception.") && tag != std::string_view::npos)
      m.remove_prefix(tag + 2);
    if (m.starts_with("parse error at line ")) {
      if (const auto colon = m.find(": "); colon != std::string_view::npos)
        m.remove_prefix(colon + 2);
    }
    constexpr std::size_t max_message = 240;
    if (m.size() > max_message) return std::string(m.substr(0, max_message)) + "...";
    return std::string(m);
  }

 private:
  std::size_t position_ = 0;
  std::string message_;
};

void fail(json_failure* why, std::error_code code, int status, std::string title,
          std::string detail) {
  if (!why) return;
  why->code = code;
  why->status = status;
  why->title = std::move(title);
  why->detail = std::move(detail);
}

}  // namespace

const std::error_category& json_category() noexcept {
  static const category c;
  return c;
}

bool is_json_media_type(std::string_view content_type) noexcept {
  const std::string_view type = trim_ows(content_type.substr(0, content_type.find(';')));
  const auto slash = type.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == type.size()) return false;
  if (iequals(type, "application/json")) return true;
  const std::string_view subtype = type.substr(slash + 1);
  return subtype.size() > 5 && iequals(subtype.substr(subtype.size() - 5), "+json");
}

result<nlohmann::json> parse_json(std::string_view text, json_failure* why) {
  if (const auto deep = too_deep_at(text, max_json_depth); deep != std::string_view::npos) {
    if (why) {
      locate(text, deep, *why);
      fail(why, json_error::too_deep, 400, "Bad Request",
           "arrays and objects nest deeper than " + std::to_string(max_json_depth) + " levels " +
               where(*why));
    }
    return unexpected(json_error::too_deep);
  }
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!value.is_discarded()) return value;
  if (why) {
    error_finder finder;
    (void)nlohmann::json::sax_parse(text, &finder);
    // nlohmann counts the characters read, so the offending byte is the
    // one before; at the end of the input that is text.size().
    locate(text, finder.position() > 0 ? finder.position() - 1 : 0, *why);
    fail(why, json_error::syntax, 400, "Bad Request",
         "malformed JSON " + where(*why) + ": " + finder.message());
  }
  return unexpected(json_error::syntax);
}

asio::awaitable<result<nlohmann::json>> parse_json_body(request& req, std::size_t max,
                                                        json_failure* why) {
  const std::string_view type = req.header("Content-Type");
  if (!is_json_media_type(type)) {
    fail(why, json_error::unsupported_media_type, 415, "Unsupported Media Type",
         type.empty()
             ? "the request has no Content-Type; send application/json"
             : "Content-Type '" + std::string(type) + "' is not JSON; send application/json");
    co_return unexpected(json_error::unsupported_media_type);
  }
  const auto too_large = [&] {
    fail(why, error::body_too_large, 413, "Content Too Large",
         "the body is larger than " + std::to_string(max) + " bytes");
  };
  if (req.head().framing == framing::content_length && req.head().content_length > max) {
    too_large();
    co_return unexpected(error::body_too_large);
  }
  auto body = co_await req.read_body(max);
  if (!body) {
    if (body.error() == make_error_code(error::body_too_large)) {
      too_large();
    } else {
      // A client too slow to send its body gets 408; broken framing 400.
      const int status =
          body.error() == make_error_code(net::error::timed_out) ? 408 : status_for(body.error());
      fail(why, body.error(), status, std::string(reason_phrase(status)),
           "the request body could not be read: " + body.error().message());
    }
    co_return unexpected(body.error());
  }
  co_return parse_json(*body, why);
}

asio::awaitable<std::optional<nlohmann::json>> read_json(request& req, response& res,
                                                         std::size_t max) {
  json_failure why;
  auto value = co_await parse_json_body(req, max, &why);
  if (value) co_return std::move(*value);
  set_problem(res, why);
  // Only a media-type or syntax failure leaves the connection in a known
  // state: the body was then either untouched (the server discards it) or
  // read to its end.
  if (why.code != make_error_code(json_error::unsupported_media_type) &&
      why.code != make_error_code(json_error::syntax) &&
      why.code != make_error_code(json_error::too_deep))
    res.close = true;
  co_return std::nullopt;
}

namespace {

template <class Json>
std::string serialize(const Json& value) {
  // Replace invalid UTF-8 rather than throw: a value built from client
  // input may hold any bytes.
  std::string out = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  out += '\n';
  return out;
}

}  // namespace

void set_json(response& res, const nlohmann::json& value, int status) {
  res.status = status;
  res.body = serialize(value);
  (void)res.headers.set("Content-Type", "application/json");
}

void set_json(response& res, const nlohmann::ordered_json& value, int status) {
  res.status = status;
  res.body = serialize(value);
  (void)res.headers.set("Content-Type", "application/json");
}

void set_problem(response& res, int status, std::string_view title, std::string_view detail) {
  set_problem(res, status, title, detail, nlohmann::json());
}

namespace {

// The problem body: the four standard members first, in RFC 9457's order,
// then the extensions in theirs.
template <class Json>
void write_problem(response& res, int status, std::string_view title, std::string_view detail,
                   const Json& extensions) {
  nlohmann::ordered_json p = nlohmann::ordered_json::object();
  p["type"] = "about:blank";
  p["title"] = std::string(title);
  p["status"] = status;
  if (!detail.empty()) p["detail"] = std::string(detail);
  if (extensions.is_object()) {
    for (const auto& [k, v] : extensions.items())
      if (!p.contains(k) && k != "detail") p[k] = v;
  }
  res.status = status;
  res.body = serialize(p);
  (void)res.headers.set("Content-Type", "application/problem+json");
}

}  // namespace

void set_problem(response& res, int status, std::string_view title, std::string_view detail,
                 const nlohmann::json& extensions) {
  write_problem(res, status, title, detail, extensions);
}

void set_problem(response& res, const json_failure& failure) {
  nlohmann::ordered_json ext = nlohmann::ordered_json::object();
  if (failure.code == make_error_code(json_error::syntax) ||
      failure.code == make_error_code(json_error::too_deep)) {
    ext["offset"] = failure.offset;
    ext["line"] = failure.line;
    ext["column"] = failure.column;
  }
  write_problem(res, failure.status, failure.title, failure.detail, ext);
}

}  // namespace trellis::http
