// Error codes of DNS (dns::error): the wire codec's "this message is
// malformed" reasons and the resolver's "this name has no answer" outcomes,
// in one category so that a lookup's error says exactly what went wrong.
//
// Codec errors name the first rule a message broke (RFC 1035 §3, §4.1,
// RFC 6891): a decoder that returns one has read no byte outside its input
// and produced nothing. Resolver errors follow the RCODEs of RFC 1035 §4.1.1
// and RFC 2308 (NXDOMAIN is "the name does not exist", NODATA is "the name
// exists but has no record of that type") plus the local failures (timed
// out, no servers). `malformed` is what a resolver reports when a server's
// answer fails to decode; the codec's precise reason goes to the log.
//
// Thread-safety: the category is an immutable singleton; safe everywhere.
#pragma once

#include <system_error>

namespace trellis::dns {

enum class error {
  // --- wire codec (RFC 1035 §4.1, RFC 6891) ---------------------------------
  truncated_message = 1,  // the message ends inside a header, name, record or rdata
  label_too_long,         // a label longer than 63 octets (RFC 1035 §2.3.4)
  name_too_long,          // a name longer than 255 octets in wire form
  bad_label_type,         // label length octet 0x40 or 0x80 (extended/reserved label types)
  bad_pointer,            // a compression pointer outside the message or not strictly backwards
  pointer_loop,           // compression pointers that chain too far (a loop or a bomb)
  bad_rdata,              // rdata length disagrees with its type's layout
  bad_opt,                // OPT record not in the additional section, twice, or not at the root
  trailing_data,          // bytes after the last record the counts announce
  too_large,              // an encoded message larger than 65535 octets
  bad_name_text,          // presentation-format name with a bad escape or an empty label
  // --- resolution outcomes (RFC 1035 §4.1.1, RFC 2308) ----------------------
  nxdomain,         // the name does not exist (RCODE 3)
  nodata,           // the name exists but has no records of the type asked for
  servfail,         // the server failed (RCODE 2), or every server did
  refused,          // the server refused the query (RCODE 5)
  not_implemented,  // the server does not implement the query (RCODE 4)
  format_error,     // the server could not parse our query (RCODE 1)
  timed_out,        // no answer from any server within timeout × attempts
  malformed,        // an answer arrived but failed to decode or did not match the question
  no_servers,       // no nameserver is configured
  cname_loop,       // a CNAME chain longer than the limit, or one that loops
  bad_query,        // a name that cannot be asked (empty label, too long, bad text)
};

const std::error_category& dns_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), dns_category()};
}

}  // namespace trellis::dns

template <>
struct std::is_error_code_enum<trellis::dns::error> : std::true_type {};
