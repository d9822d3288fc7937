#include "trellis/http/message.hpp"

#include "trellis/codec/http/error.hpp"

namespace trellis::http {

void request::set_attribute(std::string_view name, std::string_view value) {
  for (auto& [k, v] : attributes_)
    if (k == name) {
      v.assign(value);
      return;
    }
  attributes_.emplace_back(std::string(name), std::string(value));
}

void request::bind(const request_head& head, body_source* body,
                   const asio::ip::tcp::endpoint& remote, bool is_secure) {
  head_ = &head;
  body_ = body;
  remote_ = remote;
  secure_ = is_secure;
  params_.clear();
  attributes_.clear();
  std::string_view t = head.target;
  // absolute-form (a proxy's request): the path starts after the authority.
  if (!t.empty() && t.front() != '/' && t != "*") {
    const auto scheme_end = t.find("://");
    if (scheme_end != std::string_view::npos) {
      const auto path_start = t.find_first_of("/?", scheme_end + 3);
      t = path_start == std::string_view::npos ? std::string_view("/") : t.substr(path_start);
      if (!t.empty() && t.front() == '?') {
        path_ = "/";
        query_ = t.substr(1);
        return;
      }
    }
  }
  const auto q = t.find('?');
  path_ = t.substr(0, q);
  query_ = q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

asio::awaitable<result<std::string_view>> request::read_some() {
  co_return co_await body_->read_some();
}

asio::awaitable<result<std::string>> request::read_body(std::size_t max) {
  std::string out;
  if (head_->framing == framing::content_length)
    out.reserve(std::min<std::uint64_t>(head_->content_length, max));
  for (;;) {
    auto piece = co_await body_->read_some();
    if (!piece) co_return unexpected(piece.error());
    if (piece->empty()) co_return out;
    if (piece->size() > max - out.size()) co_return unexpected(error::body_too_large);
    out.append(*piece);
  }
}

void response::set_text(std::string text, std::string_view content_type) {
  body = std::move(text);
  (void)headers.set("Content-Type", content_type);
}

void response::clear() noexcept {
  status = 200;
  headers.clear();
  trailers.clear();
  body.clear();
  stream = nullptr;
  upgrade = nullptr;
  close = false;
}

}  // namespace trellis::http
