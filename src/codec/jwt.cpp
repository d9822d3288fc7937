#include "trellis/codec/jwt.hpp"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "trellis/codec/base64.hpp"

namespace trellis::codec {
namespace {

using json = nlohmann::json;

constexpr base64_options k_b64url{.alphabet = base64_alphabet::url, .padding = false};

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.jwt"; }
  std::string message(int v) const override {
    switch (static_cast<jwt_error>(v)) {
      case jwt_error::malformed: return "token is not three '.'-separated segments";
      case jwt_error::bad_base64: return "token segment is not unpadded base64url";
      case jwt_error::bad_json: return "token segment is not well-formed JSON";
      case jwt_error::not_an_object: return "token header or claims are not a JSON object";
      case jwt_error::missing_alg: return "token header has no string \"alg\"";
      case jwt_error::unsupported_crit: return "token header has \"crit\" extensions";
      case jwt_error::too_large: return "token is too large";
      case jwt_error::duplicate_member: return "token JSON has a duplicate member name";
      case jwt_error::too_deep: return "token JSON is nested too deeply";
    }
    return "unknown jwt error";
  }
};

// A SAX handler that builds the DOM as nlohmann's own does, plus three
// refusals its parser does not offer: a duplicate member name, nesting past
// a limit, and a number that overflowed to infinity (which would serialise
// as null, so the token would not mean what it says). nlohmann's parser is
// itself iterative, so deep input cannot overflow the stack; the depth
// limit bounds the work done on hostile input.
class strict_dom final {
 public:
  explicit strict_dom(std::size_t max_depth) : max_depth_(max_depth) {}

  bool null() { return put(json(nullptr)); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(json::number_integer_t v) { return put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return put(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) {
    if (!std::isfinite(v)) return fail(jwt_error::bad_json);
    return put(json(v));
  }
  bool string(json::string_t& v) { return put(json(std::move(v))); }
  bool binary(json::binary_t&) { return fail(jwt_error::bad_json); }  // not in JSON text
  bool start_object(std::size_t) { return open(json::object()); }
  bool key(json::string_t& k) {
    if (stack_.back()->contains(k)) return fail(jwt_error::duplicate_member);
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return fail(jwt_error::bad_json);
  }

  json& root() noexcept { return root_; }
  jwt_error error() const noexcept { return error_; }

 private:
  bool fail(jwt_error e) {
    error_ = e;
    return false;
  }
  // Places `v` in the open container (or as the root); returns where.
  json* place(json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }
  bool put(json v) {
    place(std::move(v));
    return true;
  }
  // Pointers on the stack stay valid: only the innermost open container
  // grows, and every pointer refers to an ancestor of it or to it.
  bool open(json empty) {
    if (stack_.size() >= max_depth_) return fail(jwt_error::too_deep);
    stack_.push_back(place(std::move(empty)));
    return true;
  }

  std::size_t max_depth_;
  json root_;
  std::vector<json*> stack_;
  json::string_t key_;
  jwt_error error_ = jwt_error::bad_json;
};

result<json> parse_segment_json(std::string_view text, std::size_t max_depth) {
  strict_dom dom(max_depth);
  // strict: nothing but whitespace after the value. No comments.
  if (!json::sax_parse(text.begin(), text.end(), &dom)) return unexpected(dom.error());
  return std::move(dom.root());
}

result<std::string> decode_segment(std::string_view segment) {
  auto bytes = base64_decode(segment, k_b64url);
  if (!bytes) return unexpected(jwt_error::bad_base64);
  return std::move(*bytes);
}

result<json> decode_object(std::string_view segment, std::size_t max_depth) {
  auto bytes = decode_segment(segment);
  if (!bytes) return unexpected(bytes.error());
  auto value = parse_segment_json(*bytes, max_depth);
  if (!value) return unexpected(value.error());
  if (!value->is_object()) return unexpected(jwt_error::not_an_object);
  return std::move(*value);
}

// Compact JSON; invalid UTF-8 in a string (only possible in a value built
// by hand, never in one parse_jwt produced) is an error, not a throw.
result<std::string> dump(const json& j) {
  try {
    return j.dump();
  } catch (const json::exception&) {
    return unexpected(jwt_error::bad_json);
  }
}

std::string_view string_member(const json& object, const char* name) noexcept {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return {};
  return it->get_ref<const json::string_t&>();
}

}  // namespace

const std::error_category& jwt_category() noexcept {
  static const category instance;
  return instance;
}

std::string_view jwt_token::alg() const noexcept {
  return header.is_object() ? string_member(header, "alg") : std::string_view{};
}

std::string_view jwt_token::kid() const noexcept {
  return header.is_object() ? string_member(header, "kid") : std::string_view{};
}

result<jwt_token> parse_jwt(std::string_view token, const jwt_parse_options& options) {
  if (token.size() > options.max_size) return unexpected(jwt_error::too_large);
  const std::size_t first = token.find('.');
  if (first == std::string_view::npos) return unexpected(jwt_error::malformed);
  const std::size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos) return unexpected(jwt_error::malformed);
  if (token.find('.', second + 1) != std::string_view::npos)
    return unexpected(jwt_error::malformed);  // four or more: a JWE has five

  jwt_token out;
  auto header = decode_object(token.substr(0, first), options.max_depth);
  if (!header) return unexpected(header.error());
  out.header = std::move(*header);
  const auto alg = out.header.find("alg");
  if (alg == out.header.end() || !alg->is_string()) return unexpected(jwt_error::missing_alg);
  if (out.header.contains("crit")) return unexpected(jwt_error::unsupported_crit);

  auto claims = decode_object(token.substr(first + 1, second - first - 1), options.max_depth);
  if (!claims) return unexpected(claims.error());
  out.claims = std::move(*claims);

  auto signature = decode_segment(token.substr(second + 1));
  if (!signature) return unexpected(signature.error());
  out.signature = std::move(*signature);
  out.signing_input.assign(token.substr(0, second));
  return out;
}

result<std::string> jwt_signing_input(const json& header, const json& claims) {
  if (!header.is_object() || !claims.is_object()) return unexpected(jwt_error::not_an_object);
  const auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string()) return unexpected(jwt_error::missing_alg);
  if (header.contains("crit")) return unexpected(jwt_error::unsupported_crit);
  auto h = dump(header);
  if (!h) return unexpected(h.error());
  auto c = dump(claims);
  if (!c) return unexpected(c.error());
  std::string out = base64_encode(*h, k_b64url);
  out += '.';
  out += base64_encode(*c, k_b64url);
  return out;
}

std::string jwt_assemble(std::string_view signing_input, std::string_view signature) {
  std::string out;
  out.reserve(signing_input.size() + 1 + (signature.size() + 2) / 3 * 4);
  out.append(signing_input);
  out += '.';
  out += base64_encode(signature, k_b64url);
  return out;
}

result<std::string> build_jwt(const json& header, const json& claims, const jwt_signer& sign) {
  auto input = jwt_signing_input(header, claims);
  if (!input) return unexpected(input.error());
  auto signature = sign(*input);
  if (!signature) return unexpected(signature.error());
  return jwt_assemble(*input, *signature);
}

}  // namespace trellis::codec
