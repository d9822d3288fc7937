#include "trellis/codec/http/error.hpp"

#include <string>

namespace trellis::http {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.http"; }
  std::string message(int v) const override {
    switch (static_cast<error>(v)) {
      case error::bad_request_line: return "malformed request line";
      case error::bad_method: return "method is not a token";
      case error::bad_target: return "malformed request-target";
      case error::bad_version: return "malformed HTTP version";
      case error::unsupported_version: return "HTTP version not supported";
      case error::bad_status_line: return "malformed status line";
      case error::uri_too_long: return "request line too long";
      case error::bare_cr: return "CR not followed by LF";
      case error::bare_lf: return "LF without CR (lines must end with CRLF)";
      case error::obs_fold: return "obsolete line folding";
      case error::bad_field_name: return "malformed field name";
      case error::whitespace_before_colon: return "whitespace between field name and colon";
      case error::bad_field_value: return "control character in field value";
      case error::header_too_large: return "header section too large";
      case error::too_many_headers: return "too many header fields";
      case error::missing_host: return "HTTP/1.1 request without Host";
      case error::duplicate_host: return "more than one Host field";
      case error::bad_host: return "malformed Host value";
      case error::bad_content_length: return "malformed Content-Length";
      case error::conflicting_content_length: return "conflicting Content-Length values";
      case error::content_length_with_transfer_encoding:
        return "both Content-Length and Transfer-Encoding";
      case error::bad_transfer_encoding: return "invalid Transfer-Encoding";
      case error::unsupported_transfer_encoding: return "unsupported transfer coding";
      case error::body_too_large: return "body too large";
      case error::bad_chunk: return "malformed chunk";
      case error::bad_chunk_extension: return "malformed chunk extension";
      case error::bad_trailer: return "malformed or forbidden trailer field";
      case error::trailer_too_large: return "trailer section too large";
      case error::partial_message: return "stream ended inside a message";
    }
    return "unknown http error";
  }
};

}  // namespace

const std::error_category& http_category() noexcept {
  static const category instance;
  return instance;
}

int status_for(std::error_code ec) noexcept {
  if (!ec || ec.category() != http_category()) return 500;
  switch (static_cast<error>(ec.value())) {
    case error::uri_too_long: return 414;
    case error::header_too_large:
    case error::too_many_headers:
    case error::trailer_too_large: return 431;
    case error::body_too_large: return 413;
    case error::unsupported_transfer_encoding: return 501;
    case error::unsupported_version: return 505;
    case error::bad_status_line: return 502;
    default: return 400;
  }
}

}  // namespace trellis::http
