// Iterative resolution (RFC 1034 §5.3.3), the study mode: resolve a name the
// way a recursive server does, starting from the root and following
// referrals, and keep the trace of every step.
//
// A stub resolver asks one recursive server and gets the final answer. A
// recursive server does the work itself: it asks a root server, which does
// not know "www.example.test." but refers it to the servers of "test."
// (NS records in the authority section, their addresses as glue in the
// additional section); those refer it to "example.test."'s servers, which
// answer authoritatively (AA). Each step asks with RD clear and moves one
// zone cut closer to the name.
//
// What it handles:
//   - referrals with glue, and without: a server name whose address is not
//     in the referral is resolved first (itself iteratively, from the root,
//     to a bounded depth), as a recursive server must;
//   - CNAME: when the answer is an alias, resolution restarts from the root
//     for the target (unless the same answer already carries the target's
//     records), with a limit on the chain's length;
//   - NXDOMAIN and NODATA (RFC 2308), reported as dns::error nxdomain and
//     nodata, with the trace;
//   - failures: a server that times out, refuses or answers SERVFAIL is
//     skipped for the next one of the same zone; when all fail the step's
//     error ends the resolution.
// Defences: a referral must move strictly closer to the name (a zone
// below the current one that contains the name), or it is ignored as lame —
// so a loop of referrals cannot happen; glue is accepted only for server
// names inside the zone that referred (its bailiwick), so a server cannot
// plant addresses for names it has no authority over; the total number of
// queries is capped.
//
// Every query goes to `options.port` on the server's address: real servers
// listen on 53, and tests run a whole hierarchy (root, "test.", a child zone)
// on loopback addresses 127.0.0.x with a common unprivileged port.
//
// Thread-safety: each call is independent and runs on the caller's executor.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "trellis/codec/dns/message.hpp"
#include "trellis/core/result.hpp"
#include "trellis/dns/transport.hpp"

namespace trellis::dns {

// A server to start from: its name (for the trace) and address.
struct root_hint {
  name host;
  asio::ip::address address;
};

struct iterative_options {
  // The servers of the root zone. Required: there is no built-in list,
  // because trellis's tests and demos never leave the machine.
  std::vector<root_hint> roots;
  // The port every server is asked on.
  std::uint16_t port = 53;
  // Per query. Real resolvers use a few hundred milliseconds to a few
  // seconds; one slow server should not stall the whole walk.
  std::chrono::milliseconds query_timeout{2000};
  // Upper bound on queries for one resolution, NS lookups included; stops
  // runaway walks (long chains, many lame servers).
  std::size_t max_queries = 64;
  // Aliases followed before giving up with dns::error::cname_loop.
  std::size_t max_cnames = 8;
  // Nesting of "resolve a server's name first" (glueless delegations).
  std::size_t max_depth = 4;
  // Ask over TCP only (dig +trace +tcp).
  bool tcp_only = false;
};

// One query of the walk.
struct trace_step {
  enum class outcome {
    referral,  // the server delegated to `zone`'s servers
    answer,    // the records asked for (possibly after an alias in the same answer)
    alias,     // a CNAME for the name: the walk restarts for its target
    nxdomain,  // the name does not exist
    nodata,    // the name exists without records of that type
    failed,    // no usable answer (timeout, SERVFAIL, REFUSED, lame, malformed)
  };
  std::size_t depth = 0;  // 0: the name asked; 1+: resolving a server's name
  question asked;         // what was asked
  name zone;              // the zone the server was asked as (".", "test.", ...)
  name server_name;       // which server
  asio::ip::udp::endpoint server;
  outcome result = outcome::failed;
  std::error_code error;  // for `failed`: why
  message response;       // the answer as received (empty on timeout)
  std::chrono::nanoseconds rtt{0};
  bool used_tcp = false;
};

std::string to_string(trace_step::outcome o);

struct iterative_result {
  question asked;
  // The final records: the CNAME chain (in order) followed by the records
  // of the type asked for.
  std::vector<record> answers;
  // The last server's message (for nxdomain/nodata its authority section
  // holds the zone's SOA).
  message final_response;
  // Every query, in order, those made to find servers' addresses included.
  std::vector<trace_step> trace;
  // Empty on success; otherwise nxdomain, nodata, cname_loop, no_servers,
  // or the last server's failure (timed_out, servfail, refused, ...). A
  // failed walk keeps its trace: that is what study mode is for.
  std::error_code error;
};

// Resolves `q` from options.roots by following referrals.
asio::awaitable<iterative_result> resolve_iterative(question q, iterative_options options);

}  // namespace trellis::dns
