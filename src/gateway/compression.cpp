#include "trellis/gateway/compression.hpp"

#include <charconv>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "trellis/codec/ascii.hpp"
#include "trellis/core/error.hpp"
#include "trellis/http/caching.hpp"

namespace trellis::gateway {

namespace {

using codec::iequals;

// The media type of a Content-Type value, without parameters or the
// whitespace around it: "text/html" of "Text/HTML ; charset=utf-8".
std::string_view media_type(std::string_view content_type) noexcept {
  return codec::trim_ows(content_type.substr(0, content_type.find(';')));
}

// "type/subtype" with both parts tokens, as the options must name them.
bool is_media_range(std::string_view v) noexcept {
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view type = v.substr(0, slash), sub = v.substr(slash + 1);
  return http::is_field_name(type) && (sub == "*" || http::is_field_name(sub));
}

bool type_listed(std::string_view type, const std::vector<std::string>& list) noexcept {
  for (const std::string& entry : list) {
    if (entry.ends_with("/*")) {
      const std::string_view top(entry.data(), entry.size() - 1);  // "text/"
      if (type.size() > top.size() && iequals(type.substr(0, top.size()), top)) return true;
    } else if (iequals(type, entry)) {
      return true;
    }
  }
  return false;
}

std::optional<std::uint64_t> declared_length(const http::fields& headers) noexcept {
  const auto v = headers.get("Content-Length");
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
  return n;
}

// Adds Accept-Encoding to Vary, keeping what is there: one line holding
// the old values and the new one, unless Vary already names it or is "*"
// (which varies on everything already).
void add_vary(http::fields& headers) {
  if (headers.has_token("Vary", "accept-encoding") || headers.has_token("Vary", "*")) return;
  std::string merged;
  for (const std::string_view v : headers.get_all("Vary")) {
    if (codec::trim_ows(v).empty()) continue;
    merged.append(v).append(", ");
  }
  merged += "Accept-Encoding";
  (void)headers.set("Vary", merged);
}

void weaken_etag(http::fields& headers) {
  const auto etag = headers.get("ETag");
  if (etag && etag->starts_with('"')) (void)headers.set("ETag", "W/" + std::string(*etag));
}

// One gzip encoder per worker thread for buffered bodies: compressing one
// is synchronous (no co_await in between), so a thread's encoder is never
// used by two responses at once. Replaced when a middleware with other
// zlib settings asks.
http::content_encoder& worker_encoder(const http::encoder_options& eo) {
  thread_local std::unique_ptr<http::content_encoder> encoder;
  if (encoder && encoder->options().level == eo.level &&
      encoder->options().window_bits == eo.window_bits &&
      encoder->options().mem_level == eo.mem_level) {
    encoder->reset();
  } else {
    encoder = std::make_unique<http::content_encoder>(http::content_coding::gzip, eo);
  }
  return *encoder;
}

// The body_writer a streamed body writes through: each write() becomes
// one compressed, flushed write() on the connection's writer.
class gzip_writer final : public http::body_writer {
 public:
  gzip_writer(http::body_writer& next, http::content_encoder& encoder)
      : next_(next), encoder_(encoder) {}

  asio::awaitable<std::error_code> write(std::string_view data) override {
    if (failed_) co_return failed_;
    if (data.empty()) co_return std::error_code{};  // nothing to say, no flush marker to send
    out_.clear();
    encoder_.encode(data, out_);
    encoder_.flush(out_);  // streaming stays streaming: decodable now, not when zlib likes
    const std::string_view piece = out_;
    failed_ = co_await next_.write(piece);
    co_return failed_;
  }

  void abort() override {
    aborted_ = true;
    next_.abort();
  }

  // Writes the end of the gzip stream, unless the body was cut short.
  asio::awaitable<void> finish() {
    if (aborted_ || failed_) co_return;
    out_.clear();
    encoder_.finish(out_);
    const std::string_view piece = out_;
    failed_ = co_await next_.write(piece);
  }

 private:
  http::body_writer& next_;
  http::content_encoder& encoder_;
  std::string out_;
  std::error_code failed_;
  bool aborted_ = false;
};

// The wrapped stream function. A plain coroutine with its arguments copied
// into its frame: the handler's streamer stays alive through the shared
// pointer for as long as the stream runs.
asio::awaitable<void> stream_gzip(std::shared_ptr<const http::response::streamer> inner,
                                  http::encoder_options eo, http::body_writer& next) {
  http::content_encoder encoder(http::content_coding::gzip, eo);
  gzip_writer writer(next, encoder);
  co_await (*inner)(writer);
  co_await writer.finish();
}

}  // namespace

void validate(const compression_options& o, std::string_view prefix) {
  const std::string p(prefix);
  for (std::size_t i = 0; i < o.content_types.size(); ++i) {
    if (!is_media_range(o.content_types[i]))
      throw core::config_error(p + ".content_types[" + std::to_string(i) + "]",
                               "'" + o.content_types[i] + "' is not type/subtype or type/*");
  }
  if (o.encoder.level < 1 || o.encoder.level > 9)
    throw core::config_error(p + ".encoder.level", "must be 1 to 9");
  if (o.encoder.window_bits < 9 || o.encoder.window_bits > 15)
    throw core::config_error(p + ".encoder.window_bits", "must be 9 to 15");
  if (o.encoder.mem_level < 1 || o.encoder.mem_level > 9)
    throw core::config_error(p + ".encoder.mem_level", "must be 1 to 9");
}

std::string_view to_string(compression_verdict v) noexcept {
  switch (v) {
    case compression_verdict::compress: return "compress";
    case compression_verdict::not_accepted: return "not_accepted";
    case compression_verdict::no_body: return "no_body";
    case compression_verdict::partial: return "partial";
    case compression_verdict::already_encoded: return "already_encoded";
    case compression_verdict::no_transform: return "no_transform";
    case compression_verdict::not_compressible: return "not_compressible";
    case compression_verdict::too_small: return "too_small";
    case compression_verdict::incompressible: return "incompressible";
  }
  return "unknown";
}

compression_verdict decide_compression(http::method method,
                                       std::optional<std::string_view> accept_encoding,
                                       const http::response& res,
                                       const compression_options& options) {
  using v = compression_verdict;
  if (method == http::method::head || res.status < 200 || res.status == 204 || res.status == 304 ||
      res.upgrade)
    return v::no_body;
  if (res.status == 206 || res.headers.contains("Content-Range")) return v::partial;
  if (res.headers.contains("Content-Encoding")) return v::already_encoded;
  if (res.headers.contains("Cache-Control") &&
      http::parse_cache_control(http::fields_view(res.headers)).no_transform)
    return v::no_transform;
  const auto type = res.headers.get("Content-Type");
  if (!type) return v::not_compressible;
  const bool listed = options.content_types.empty()
                          ? http::is_compressible(*type)
                          : type_listed(media_type(*type), options.content_types);
  if (!listed) return v::not_compressible;
  if (res.stream) {
    const auto n = declared_length(res.headers);
    if (n && *n < options.min_size) return v::too_small;
  } else if (res.body.size() < options.min_size) {
    return v::too_small;
  }
  if (!accept_encoding || !http::accepts(*accept_encoding, http::content_coding::gzip))
    return v::not_accepted;
  return v::compress;
}

compression_middleware::compression_middleware(compression_options options)
    : options_(std::move(options)) {
  validate(options_);
}

compression_verdict compression_middleware::apply(const http::request& req,
                                                  http::response& res) const {
  // Accept-Encoding may span several lines (RFC 9110 §5.3): one list.
  std::optional<std::string_view> accept;
  std::string joined;
  int lines = 0;
  for (const auto& f : req.headers()) {
    if (!iequals(f.name, "Accept-Encoding")) continue;
    if (lines++ == 0) {
      accept = f.value;
    } else {
      if (lines == 2) joined.assign(*accept);
      joined.append(", ").append(f.value);
      accept = joined;
    }
  }
  const compression_verdict verdict = decide_compression(req.method(), accept, res, options_);
  if (varies(verdict)) add_vary(res.headers);
  if (verdict != compression_verdict::compress) return verdict;

  if (res.stream) {
    auto inner = std::make_shared<const http::response::streamer>(std::move(res.stream));
    res.stream = [inner, eo = options_.encoder](http::body_writer& w) {
      return stream_gzip(inner, eo, w);
    };
  } else {
    http::content_encoder& encoder = worker_encoder(options_.encoder);
    std::string out;
    out.reserve(res.body.size() / 3 + 64);
    encoder.encode(res.body, out);
    encoder.finish(out);
    // Incompressible after all (random bytes labelled text): send it as it
    // is. Vary stays, harmless.
    if (out.size() >= res.body.size()) return compression_verdict::incompressible;
    res.body = std::move(out);
  }
  (void)res.headers.set("Content-Encoding", "gzip");
  res.headers.erase("Content-Length");
  weaken_etag(res.headers);
  return verdict;
}

asio::awaitable<void> compression_middleware::after(http::request& req, http::response& res) {
  (void)apply(req, res);
  co_return;
}

}  // namespace trellis::gateway
