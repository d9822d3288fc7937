#include "trellis/codec/dns/error.hpp"

#include <string>

namespace trellis::dns {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "trellis.dns"; }
  std::string message(int v) const override {
    switch (static_cast<error>(v)) {
      case error::truncated_message: return "DNS message ends early";
      case error::label_too_long: return "DNS label longer than 63 octets";
      case error::name_too_long: return "DNS name longer than 255 octets";
      case error::bad_label_type: return "reserved DNS label type";
      case error::bad_pointer: return "bad DNS compression pointer";
      case error::pointer_loop: return "DNS compression pointers chain too far";
      case error::bad_rdata: return "malformed record data";
      case error::bad_opt: return "misplaced or duplicate OPT record";
      case error::trailing_data: return "bytes after the last DNS record";
      case error::too_large: return "DNS message larger than 65535 octets";
      case error::bad_name_text: return "malformed domain name text";
      case error::nxdomain: return "name does not exist (NXDOMAIN)";
      case error::nodata: return "no records of that type (NODATA)";
      case error::servfail: return "server failure (SERVFAIL)";
      case error::refused: return "query refused (REFUSED)";
      case error::not_implemented: return "query not implemented by the server (NOTIMP)";
      case error::format_error: return "server could not parse the query (FORMERR)";
      case error::timed_out: return "no answer from any nameserver in time";
      case error::malformed: return "malformed DNS answer";
      case error::no_servers: return "no nameserver configured";
      case error::cname_loop: return "CNAME chain too long or looping";
      case error::bad_query: return "name cannot be queried";
    }
    return "unknown dns error";
  }
};

}  // namespace

const std::error_category& dns_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace trellis::dns
