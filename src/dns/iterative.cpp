#include "trellis/dns/iterative.hpp"

#include <utility>

#include "trellis/dns/transport.hpp"

namespace trellis::dns {
namespace {

struct server_ref {
  name host;
  std::vector<asio::ip::address> addresses;
};

std::error_code error_of(rcode rc) {
  switch (rc) {
    case rcode::formerr: return error::format_error;
    case rcode::notimp: return error::not_implemented;
    case rcode::refused: return error::refused;
    default: return error::servfail;
  }
}

// What one answer says about the question.
enum class verdict { answer, alias, referral, nxdomain, nodata, lame };

struct reading {
  verdict v = verdict::lame;
  std::vector<record> records;  // alias chain + answer records found in this message
  name next;                    // alias: the name to restart with
  name zone;                    // referral: the delegated zone
  std::vector<server_ref> servers;
};

reading read_response(const message& r, const question& q, const name& zone, std::size_t& cnames,
                      std::size_t max_cnames) {
  reading out;
  if (r.rcode == rcode::nxdomain) {
    out.v = verdict::nxdomain;
    return out;
  }
  // Follow the question's name through the answer section: aliases first,
  // then the records asked for.
  name current = q.qname;
  for (std::size_t guard = 0; guard <= max_cnames + 1; ++guard) {
    bool found = false;
    for (const auto& rec : r.answers) {
      if (rec.owner == current && rec.type == q.qtype && rec.klass == q.qclass) {
        out.records.push_back(rec);
        found = true;
      }
    }
    if (found) {
      out.v = verdict::answer;
      return out;
    }
    const record* alias = nullptr;
    for (const auto& rec : r.answers)
      if (rec.owner == current && rec.type == rtype::cname) alias = &rec;
    if (!alias) break;
    if (++cnames > max_cnames) return out;  // the caller reports cname_loop
    out.records.push_back(*alias);
    current = std::get<cname_data>(alias->data).target;
  }
  if (!(current == q.qname)) {
    out.v = verdict::alias;
    out.next = current;
    return out;
  }

  // A referral: NS records for a zone strictly below the one asked and
  // containing the name. Anything else in the authority section is lame.
  for (const auto& rec : r.authorities) {
    if (rec.type != rtype::ns) continue;
    if (!q.qname.is_subdomain_of(rec.owner) || !rec.owner.is_subdomain_of(zone) ||
        rec.owner == zone)
      continue;
    if (out.v == verdict::referral && !(rec.owner == out.zone)) continue;  // one cut at a time
    out.v = verdict::referral;
    out.zone = rec.owner;
    server_ref s{std::get<ns_data>(rec.data).host, {}};
    // Glue only inside the referring server's zone (its bailiwick).
    if (s.host.is_subdomain_of(zone)) {
      for (const auto& add : r.additionals) {
        if (!(add.owner == s.host)) continue;
        if (const auto* a = std::get_if<a_data>(&add.data))
          s.addresses.emplace_back(asio::ip::address_v4(a->address));
        else if (const auto* aaaa = std::get_if<aaaa_data>(&add.data))
          s.addresses.emplace_back(asio::ip::address_v6(aaaa->address));
      }
    }
    out.servers.push_back(std::move(s));
  }
  if (out.v == verdict::referral) return out;

  bool has_soa = false;
  for (const auto& rec : r.authorities) has_soa |= rec.type == rtype::soa;
  if (r.rcode == rcode::noerror && (r.aa || has_soa)) out.v = verdict::nodata;
  return out;
}

// Note on co_await arguments: g++ 12 destroys a temporary with a
// destructor that is built inside a co_await expression twice, so every
// such argument is a named variable first.
class walker {
 public:
  explicit walker(iterative_options options) : opt_(std::move(options)) {}

  std::vector<trace_step>& trace() { return trace_; }

  struct outcome {
    std::vector<record> answers;
    message final_response;
    std::error_code error;
  };

  asio::awaitable<outcome> walk(question q, std::size_t depth) {
    outcome out;
    std::size_t cnames = 0;
    std::vector<server_ref> roots;
    for (const auto& h : opt_.roots) roots.push_back({h.host, {h.address}});
    if (roots.empty()) {
      out.error = error::no_servers;
      co_return out;
    }

    std::vector<server_ref> servers = roots;
    name zone;  // the root
    while (true) {
      // Where the walk goes next; applied after the loops below, which hold
      // a reference into `servers`.
      bool moved = false;
      std::vector<server_ref> next_servers;
      name next_zone;
      std::error_code last = error::servfail;
      for (std::size_t si = 0; si < servers.size() && !moved; ++si) {
        auto& s = servers[si];
        if (s.addresses.empty()) {
          // A delegation without glue: find the server's address first.
          if (depth + 1 > opt_.max_depth) continue;
          question lookup{s.host, rtype::a};  // named: see the note on co_await arguments
          auto sub = co_await walk(std::move(lookup), depth + 1);
          for (const auto& rec : sub.answers)
            if (const auto* a = std::get_if<a_data>(&rec.data))
              s.addresses.emplace_back(asio::ip::address_v4(a->address));
          if (s.addresses.empty()) {
            last = sub.error ? sub.error : std::error_code(error::servfail);
            continue;
          }
        }
        for (std::size_t ai = 0; ai < s.addresses.size() && !moved; ++ai) {
          if (queries_ >= opt_.max_queries) {
            out.error = error::servfail;
            co_return out;
          }
          ++queries_;
          trace_step step;
          step.depth = depth;
          step.asked = q;
          step.zone = zone;
          step.server_name = s.host;
          step.server = {s.addresses[ai], opt_.port};
          auto ex = co_await query(step.server, q,
                                   {.timeout = opt_.query_timeout,
                                    .recursion_desired = false,
                                    .tcp_only = opt_.tcp_only});
          if (!ex) {
            step.error = last = ex.error();
            trace_.push_back(std::move(step));
            continue;
          }
          step.rtt = ex->rtt;
          step.used_tcp = ex->used_tcp;
          step.response = ex->response;
          const auto& r = ex->response;
          if (r.rcode != rcode::noerror && r.rcode != rcode::nxdomain) {
            step.error = last = error_of(r.rcode);
            trace_.push_back(std::move(step));
            continue;
          }
          auto reading = read_response(r, q, zone, cnames, opt_.max_cnames);
          if (cnames > opt_.max_cnames) {
            step.error = error::cname_loop;
            trace_.push_back(std::move(step));
            out.final_response = r;
            out.error = error::cname_loop;
            co_return out;
          }
          switch (reading.v) {
            case verdict::answer:
              step.result = trace_step::outcome::answer;
              trace_.push_back(std::move(step));
              out.answers.insert(out.answers.end(), reading.records.begin(), reading.records.end());
              out.final_response = r;
              co_return out;
            case verdict::nxdomain:
            case verdict::nodata:
              step.result = reading.v == verdict::nxdomain ? trace_step::outcome::nxdomain
                                                           : trace_step::outcome::nodata;
              trace_.push_back(std::move(step));
              out.final_response = r;
              out.error = reading.v == verdict::nxdomain ? error::nxdomain : error::nodata;
              co_return out;
            case verdict::alias:
              step.result = trace_step::outcome::alias;
              trace_.push_back(std::move(step));
              out.answers.insert(out.answers.end(), reading.records.begin(), reading.records.end());
              q.qname = reading.next;
              next_servers = roots;
              next_zone = name{};
              moved = true;
              break;
            case verdict::referral:
              step.result = trace_step::outcome::referral;
              trace_.push_back(std::move(step));
              next_servers = std::move(reading.servers);
              next_zone = reading.zone;
              moved = true;
              break;
            case verdict::lame:
              step.error = last = error::servfail;
              trace_.push_back(std::move(step));
              break;
          }
        }
      }
      if (!moved) {
        out.error = last;
        co_return out;
      }
      servers = std::move(next_servers);
      zone = std::move(next_zone);
    }
  }

 private:
  iterative_options opt_;
  std::vector<trace_step> trace_;
  std::size_t queries_ = 0;
};

}  // namespace

std::string to_string(trace_step::outcome o) {
  switch (o) {
    case trace_step::outcome::referral: return "referral";
    case trace_step::outcome::answer: return "answer";
    case trace_step::outcome::alias: return "alias";
    case trace_step::outcome::nxdomain: return "nxdomain";
    case trace_step::outcome::nodata: return "nodata";
    case trace_step::outcome::failed: return "failed";
  }
  return "failed";
}

asio::awaitable<iterative_result> resolve_iterative(question q, iterative_options options) {
  walker w(std::move(options));
  auto o = co_await w.walk(q, 0);
  iterative_result r;
  r.asked = std::move(q);
  r.answers = std::move(o.answers);
  r.final_response = std::move(o.final_response);
  r.trace = std::move(w.trace());
  r.error = o.error;
  co_return r;
}

}  // namespace trellis::dns
