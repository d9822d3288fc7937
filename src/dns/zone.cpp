#include "trellis/dns/zone.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "trellis/codec/dns/text.hpp"

namespace trellis::dns {
namespace {

// RFC 2181 §8: a TTL is an unsigned 31-bit number.
constexpr std::uint32_t max_ttl = 0x7fffffff;
constexpr std::uint32_t max_weight = 65535;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}

std::optional<std::uint64_t> parse_number(std::string_view text, std::uint64_t max) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  for (char c : text)
    if (!is_digit(c)) return std::nullopt;
  std::uint64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  if (v > max) return std::nullopt;
  return v;
}

// A TTL in seconds, or with BIND's units ("1h30m", "2d", "1w").
std::optional<std::uint32_t> parse_ttl(std::string_view text) {
  return parse_duration(text, max_ttl);
}

// Types a zone cannot hold: OPT and the query/meta range (RFC 6895 §3.1).
bool is_meta_type(rtype t) {
  const auto v = static_cast<std::uint16_t>(t);
  return v == 0 || t == rtype::opt || (v >= 128 && v <= 255);
}

bool is_address(rtype t) {
  return t == rtype::a || t == rtype::aaaa;
}

// Printable form of a token for error messages: at most 64 bytes, control
// characters as '?'.
std::string quote(std::string_view s) {
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += c < 0x20 || c >= 0x7f ? '?' : s[i];
  }
  if (s.size() > 64) out += "...";
  return out + "'";
}

// Stands for "no origin yet": relative names made against it are errors.
// Its label holds octets that no sensible zone writes in a name.
const name& no_origin() {
  static const name n = *name::from_text("\\000\\255no-origin\\255\\000.");
  return n;
}

// --- lexer ---------------------------------------------------------------------

struct token {
  std::string text;  // escapes kept; quotes removed
  bool quoted = false;
};

// One logical line: the tokens of a record or directive, parentheses
// already joined.
struct entry {
  std::vector<token> tokens;
  bool blank_owner = false;  // the line started with a blank: owner inherited
  std::size_t line = 0;      // where the entry started
};

bool is_delimiter(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '(' || c == ')' ||
         c == '"';
}

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}

class lexer {
 public:
  lexer(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  // All entries of the text. Throws zone_error.
  std::vector<entry> run() {
    std::vector<entry> out;
    entry cur;
    int depth = 0;
    std::size_t paren_line = 0;
    std::size_t line = 1;
    bool line_start = true;
    std::size_t i = 0;
    const std::size_t n = text_.size();
    auto finish = [&] {
      if (!cur.tokens.empty()) out.push_back(std::move(cur));
      cur = entry{};
    };
    while (i < n) {
      const char c = text_[i];
      if (c == '\n') {
        ++line;
        ++i;
        if (depth == 0) {
          finish();
          line_start = true;
        }
        continue;
      }
      if (line_start) {
        cur.line = line;
        cur.blank_owner = c == ' ' || c == '\t';
        line_start = false;
      }
      if (c == ' ' || c == '\t' || c == '\r') {
        ++i;
      } else if (c == ';') {
        while (i < n && text_[i] != '\n') ++i;
      } else if (c == '(') {
        if (depth > 0) fail(line, "nested '('");
        paren_line = line;
        ++depth;
        ++i;
      } else if (c == ')') {
        if (depth == 0) fail(line, "')' without '('");
        --depth;
        ++i;
      } else if (c == '"') {
        std::size_t j = i + 1;
        while (j < n && text_[j] != '"') {
          if (text_[j] == '\n') fail(line, "quoted string not closed on its line");
          if (is_control(text_[j])) fail(line, "control character in a quoted string (use \\DDD)");
          if (text_[j] == '\\') {
            if (j + 1 >= n || text_[j + 1] == '\n') fail(line, "backslash at the end of a line");
            ++j;
          }
          ++j;
        }
        if (j >= n) fail(line, "quoted string not closed");
        cur.tokens.push_back({std::string(text_.substr(i + 1, j - i - 1)), true});
        i = j + 1;
      } else if (is_control(c)) {
        fail(line, "control character in the zone text");
      } else {
        std::size_t j = i;
        while (j < n && !is_delimiter(text_[j])) {
          if (is_control(text_[j])) fail(line, "control character in the zone text");
          if (text_[j] == '\\') {
            if (j + 1 >= n || text_[j + 1] == '\n' || text_[j + 1] == '\r')
              fail(line, "backslash at the end of a line");
            ++j;
          }
          ++j;
        }
        cur.tokens.push_back({std::string(text_.substr(i, j - i)), false});
        i = j;
      }
    }
    if (depth > 0) fail(paren_line, "'(' not closed");
    finish();
    return out;
  }

 private:
  [[noreturn]] void fail(std::size_t line, const std::string& problem) const {
    throw zone_error(source_, line, problem);
  }
  std::string_view text_;
  const std::string& source_;
};

// --- building ------------------------------------------------------------------

struct pending {
  record rec;
  std::optional<std::uint32_t> weight;
  std::size_t line = 0;
  std::string where;  // a JSON field path, when there are no lines
};

struct node {
  std::vector<rrset> sets;  // empty: an empty non-terminal
  const rrset* get(rtype t) const noexcept {
    for (const auto& s : sets)
      if (s.type == t) return &s;
    return nullptr;
  }
  rrset* get(rtype t) noexcept {
    for (auto& s : sets)
      if (s.type == t) return &s;
    return nullptr;
  }
};

std::uint64_t default_random(std::uint64_t bound) {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_int_distribution<std::uint64_t>(0, bound - 1)(gen);
}

}  // namespace

struct zone::impl {
  zone_options options;
  name origin;
  record soa;
  std::unordered_map<name, node, name_hash> nodes;
  std::size_t count = 0;
  mutable std::atomic<std::uint64_t> rotation{0};

  const node* find_node(const name& n) const {
    const auto it = nodes.find(n);
    return it == nodes.end() ? nullptr : &it->second;
  }

  // The zone cut at or above `n` (below the apex), or null.
  // REQUIRES: n is in the zone.
  const name* find_cut(const name& n, const rrset** ns) const {
    std::vector<name> names;  // n and its ancestors below the origin, deepest first
    names.reserve(n.label_count() - origin.label_count());
    for (name cur = n; !(cur == origin); cur = cur.parent()) names.push_back(cur);
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      const auto found = nodes.find(*it);
      if (found == nodes.end()) return nullptr;  // nothing exists at or below here
      if (const rrset* set = found->second.get(rtype::ns)) {
        *ns = set;
        return &found->first;
      }
    }
    return nullptr;
  }

  // The wildcard node that covers the non-existent name `n` (RFC 4592 §3.3.1).
  const node* find_wildcard(const name& n) const {
    name encloser = n;
    while (!(encloser == origin)) {
      encloser = encloser.parent();
      if (find_node(encloser)) break;
    }
    auto star = encloser.prepend("*");
    return star ? find_node(*star) : nullptr;
  }

  record negative_soa() const {
    record r = soa;
    r.ttl = std::min(soa.ttl, std::get<soa_data>(soa.data).minimum);
    return r;
  }

  // Appends the records of `set` under `owner`; sets `varies` when the
  // choice or order came from the random source or the rotation counter.
  void append(const name& owner, const rrset& set, std::vector<record>& out,
              const random_source& random, bool& varies) const {
    const std::size_t n = set.records.size();
    auto push = [&](std::size_t i) {
      out.push_back(record{owner, set.type, rclass::in, set.ttl, set.records[i]});
    };
    if (!set.weights.empty()) {
      std::vector<std::size_t> pool;
      std::vector<std::uint64_t> w;
      for (std::size_t i = 0; i < n; ++i)
        if (set.weights[i] > 0) {
          pool.push_back(i);
          w.push_back(set.weights[i]);
        }
      if (pool.empty()) {  // every weight 0: all equally likely
        for (std::size_t i = 0; i < n; ++i) pool.push_back(i);
        w.assign(n, 1);
      }
      std::uint64_t total = 0;
      for (auto x : w) total += x;
      const std::size_t want = std::min(std::max<std::size_t>(options.weighted_answers, 1), n);
      varies = true;
      for (std::size_t k = 0; k < want && !pool.empty(); ++k) {
        std::uint64_t x = (random ? random(total) : default_random(total)) % total;
        std::size_t pick = 0;
        while (x >= w[pick]) x -= w[pick++];
        push(pool[pick]);
        total -= w[pick];
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(pick));
        w.erase(w.begin() + static_cast<std::ptrdiff_t>(pick));
      }
      return;
    }
    std::size_t start = 0;
    if (options.rotate && n > 1 && is_address(set.type)) {
      start = static_cast<std::size_t>(rotation.fetch_add(1, std::memory_order_relaxed) % n);
      varies = true;
    }
    for (std::size_t k = 0; k < n; ++k) push((start + k) % n);
  }

  // A/AAAA the zone holds for `target`, into `out` unless already there.
  void add_addresses(const name& target, std::vector<record>& out) const {
    if (!target.is_subdomain_of(origin)) return;
    const node* nd = find_node(target);
    if (!nd) return;
    for (const rtype t : {rtype::a, rtype::aaaa}) {
      const rrset* set = nd->get(t);
      if (!set) continue;
      const bool have = std::any_of(out.begin(), out.end(), [&](const record& r) {
        return r.type == t && r.owner == target;
      });
      if (have) continue;
      for (const auto& d : set->records) out.push_back(record{target, t, rclass::in, set->ttl, d});
    }
  }

  // Additional-section processing (RFC 1035 §3.3.9, §3.3.11, RFC 2782).
  void add_additionals(const std::vector<record>& from, std::vector<record>& out) const {
    for (const auto& r : from) {
      if (const auto* mx = std::get_if<mx_data>(&r.data)) add_addresses(mx->exchange, out);
      if (const auto* srv = std::get_if<srv_data>(&r.data)) add_addresses(srv->target, out);
      if (const auto* ns = std::get_if<ns_data>(&r.data)) add_addresses(ns->host, out);
    }
  }

  lookup_result lookup(const question& q, const random_source& random) const {
    lookup_result r;
    if (!q.qname.is_subdomain_of(origin)) {
      r.rcode = rcode::refused;
      r.authoritative = false;
      return r;
    }
    const rrset* cut_ns = nullptr;
    if (const name* cut = find_cut(q.qname, &cut_ns)) {  // a referral (RFC 1034 §4.3.2 step 3b)
      r.authoritative = false;
      append(*cut, *cut_ns, r.authorities, random, r.varies);
      add_additionals(r.authorities, r.additionals);
      return r;
    }
    std::vector<name> seen;
    name current = q.qname;
    for (;;) {
      const node* nd = find_node(current);
      if (!nd) nd = find_wildcard(current);
      if (!nd) {
        r.rcode = rcode::nxdomain;
        r.authorities.push_back(negative_soa());
        return r;
      }
      if (q.qtype == rtype::any && !nd->sets.empty()) {
        for (const auto& set : nd->sets) append(current, set, r.answers, random, r.varies);
        add_additionals(r.answers, r.additionals);
        return r;
      }
      if (const rrset* set = nd->get(q.qtype)) {
        const std::size_t first = r.answers.size();
        append(current, *set, r.answers, random, r.varies);
        add_additionals({r.answers.begin() + static_cast<std::ptrdiff_t>(first), r.answers.end()},
                        r.additionals);
        return r;
      }
      const rrset* cname = nd->get(rtype::cname);
      if (!cname || q.qtype == rtype::any) {
        r.authorities.push_back(negative_soa());  // NODATA (RFC 2308 §2.2)
        return r;
      }
      append(current, *cname, r.answers, random, r.varies);
      const name& target = std::get<cname_data>(cname->records.front()).target;
      seen.push_back(current);
      // Stop where the chain leaves the zone (the resolver goes on), enters
      // a child zone, loops, or grows past the limit.
      if (!target.is_subdomain_of(origin)) return r;
      if (std::find(seen.begin(), seen.end(), target) != seen.end()) return r;
      if (seen.size() > options.max_cname_chain) return r;
      const rrset* ignored = nullptr;
      if (find_cut(target, &ignored)) return r;
      current = target;
    }
  }
};

namespace {

class builder {
 public:
  builder(std::string source, zone_options options)
      : source_(std::move(source)), options_(std::move(options)) {}

  [[noreturn]] void fail(const pending& p, const std::string& problem) const {
    if (!p.where.empty()) throw zone_error(source_, 0, p.where + ": " + problem);
    throw zone_error(source_, p.line, problem);
  }

  // The origin from the source itself (JSON's "origin").
  void set_origin(const name& origin) { options_.origin = origin; }

  void add(pending p) {
    if (records_.size() >= options_.max_records)
      fail(p, "more than " + std::to_string(options_.max_records) + " records");
    records_.push_back(std::move(p));
  }

  std::unique_ptr<zone::impl> finish() {
    auto z = std::make_unique<zone::impl>();
    const pending* soa = nullptr;
    for (const auto& p : records_) {
      if (p.rec.type != rtype::soa) continue;
      if (soa) fail(p, "a second SOA record (a zone has exactly one, at its apex)");
      soa = &p;
    }
    if (!soa) throw zone_error(source_, 0, "no SOA record (a zone has exactly one, at its apex)");
    z->origin = options_.origin.value_or(soa->rec.owner);
    if (!(soa->rec.owner == z->origin))
      fail(*soa, "the SOA record must be at the zone apex " + z->origin.to_string() + ", not " +
                     soa->rec.owner.to_string());
    z->soa = soa->rec;
    z->nodes[z->origin];
    for (const auto& p : records_) insert(*z, p);
    z->options = std::move(options_);
    return z;
  }

 private:
  void insert(zone::impl& z, const pending& p) {
    const record& r = p.rec;
    if (!r.owner.is_subdomain_of(z.origin))
      fail(p, r.owner.to_string() + " is outside the zone " + z.origin.to_string());
    if (p.weight && !is_address(r.type)) fail(p, "only A and AAAA records take a weight");
    node& nd = z.nodes[r.owner];
    const bool is_cname = r.type == rtype::cname;
    for (const auto& s : nd.sets)
      if ((s.type == rtype::cname) != is_cname)
        fail(p, "a CNAME cannot share its name with other records (RFC 1034 §3.6.2): " +
                    r.owner.to_string());
    rrset* set = nd.get(r.type);
    if (!set) {
      nd.sets.push_back(rrset{r.type, r.ttl, {}, {}});
      set = &nd.sets.back();
    } else {
      if (set->ttl != r.ttl)
        fail(p, "TTL " + std::to_string(r.ttl) + " differs from the TTL " +
                    std::to_string(set->ttl) + " of the other " + to_string(r.type) +
                    " records of " + r.owner.to_string() + " (RFC 2181 §5.2)");
      if (set->weights.empty() != !p.weight)
        fail(p, "every " + to_string(r.type) + " record of " + r.owner.to_string() +
                    " must have a weight, or none");
      if (std::find(set->records.begin(), set->records.end(), r.data) != set->records.end())
        return;  // a duplicate: kept once (RFC 2181 §5)
      if (is_cname) fail(p, "more than one CNAME at " + r.owner.to_string());
    }
    set->records.push_back(r.data);
    if (p.weight) set->weights.push_back(*p.weight);
    ++z.count;
    // Every name between the owner and the apex exists (empty non-terminals).
    for (name up = r.owner; !(up == z.origin);) {
      up = up.parent();
      if (!z.nodes.try_emplace(up).second) break;
    }
  }

  std::string source_;
  zone_options options_;
  std::vector<pending> records_;
};

// True when `text` is an absolute name (ends in an unescaped '.').
bool is_absolute(std::string_view text) {
  if (text.empty() || text.back() != '.') return false;
  std::size_t slashes = 0;
  for (std::size_t i = text.size() - 1; i > 0 && text[i - 1] == '\\'; --i) ++slashes;
  return slashes % 2 == 0;
}

std::string describe(std::error_code ec) {
  if (ec == error::bad_rdata) return "bad record data";
  return ec.message();
}

class master_parser {
 public:
  master_parser(std::string_view text, std::string source, const zone_options& options)
      : text_(text), source_(std::move(source)), build_(source_, options) {
    origin_ = options.origin.value_or(no_origin());
  }

  std::unique_ptr<zone::impl> run() {
    for (const entry& e : lexer(text_, source_).run()) {
      line_ = e.line;
      if (!e.blank_owner && !e.tokens[0].quoted && e.tokens[0].text.starts_with('$'))
        directive(e);
      else
        record_line(e);
    }
    return build_.finish();
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw zone_error(source_, line_, problem);
  }

  name make_name(const token& t, const char* what) const {
    if (origin_ == no_origin() && !is_absolute(t.text))
      fail(std::string(what) + " " + quote(t.text) +
           " is relative, and no $ORIGIN is set before it");
    auto n = name::from_text(t.text, origin_);
    if (!n) fail("bad " + std::string(what) + " " + quote(t.text) + ": " + n.error().message());
    return std::move(*n);
  }

  void directive(const entry& e) {
    const std::string& d = e.tokens[0].text;
    if (iequals(d, "$ORIGIN")) {
      if (e.tokens.size() != 2) fail("$ORIGIN takes one name");
      origin_ = make_name(e.tokens[1], "$ORIGIN name");
    } else if (iequals(d, "$TTL")) {
      if (e.tokens.size() != 2) fail("$TTL takes one TTL");
      auto t = parse_ttl(e.tokens[1].text);
      if (!t) fail("bad $TTL " + quote(e.tokens[1].text) + " (seconds up to 2147483647, or 1h30m)");
      default_ttl_ = *t;
    } else if (iequals(d, "$INCLUDE")) {
      fail("$INCLUDE is not supported: a zone is one file");
    } else if (iequals(d, "$GENERATE")) {
      fail("$GENERATE is not supported");
    } else {
      fail("unknown directive " + quote(d));
    }
  }

  void record_line(const entry& e) {
    std::size_t i = 0;
    name owner;
    if (e.blank_owner) {
      if (!last_owner_) fail("no owner name: the first record must start with one");
      owner = *last_owner_;
    } else {
      owner = make_name(e.tokens[i++], "owner name");
    }
    last_owner_ = owner;

    std::optional<std::uint32_t> ttl, weight;
    bool have_class = false;
    std::optional<rtype> type;
    while (i < e.tokens.size() && !type) {
      const token& t = e.tokens[i++];
      if (t.quoted) fail("expected a TTL, class or type, got the quoted string " + quote(t.text));
      if (is_digit(t.text[0])) {
        if (ttl) fail("two TTLs in one record");
        ttl = parse_ttl(t.text);
        if (!ttl) fail("bad TTL " + quote(t.text) + " (seconds up to 2147483647, or 1h30m)");
      } else if (t.text.size() > 7 && iequals(t.text.substr(0, 7), "weight=")) {
        if (weight) fail("two weights in one record");
        auto w = parse_number(std::string_view(t.text).substr(7), max_weight);
        if (!w) fail("bad weight " + quote(t.text) + " (weight=0 to weight=65535)");
        weight = static_cast<std::uint32_t>(*w);
      } else if (auto c = parse_rclass(t.text); c && !parse_rtype(t.text)) {
        if (have_class) fail("two classes in one record");
        if (*c != rclass::in)
          fail("class " + to_string(*c) + " is not served: only IN (or no class)");
        have_class = true;
      } else if (auto ty = parse_rtype(t.text)) {
        type = *ty;
      } else {
        fail("unknown type " + quote(t.text));
      }
    }
    if (!type) fail("missing record type");
    if (is_meta_type(*type)) fail("type " + to_string(*type) + " cannot be stored in a zone");

    if (ttl) {
      last_ttl_ = *ttl;
    } else if (default_ttl_) {
      ttl = default_ttl_;
    } else if (last_ttl_) {
      ttl = last_ttl_;
    } else {
      fail("no TTL: give one, or set $TTL before this record");
    }

    std::vector<rdata_token> fields;
    for (; i < e.tokens.size(); ++i) fields.push_back({e.tokens[i].text, e.tokens[i].quoted});
    auto data = parse_rdata(*type, fields, origin_);
    if (!data) fail("bad " + to_string(*type) + " data: " + describe(data.error()));
    check_no_origin(*data);
    pending p;
    p.rec = record{owner, *type, rclass::in, *ttl, std::move(*data)};
    p.weight = weight;
    p.line = line_;
    build_.add(std::move(p));
  }

  // Names inside rdata made relative to no origin at all.
  void check_no_origin(const rdata& d) const {
    if (origin_ != no_origin()) return;
    const name* names[2] = {nullptr, nullptr};
    if (auto* x = std::get_if<ns_data>(&d)) names[0] = &x->host;
    if (auto* x = std::get_if<cname_data>(&d)) names[0] = &x->target;
    if (auto* x = std::get_if<ptr_data>(&d)) names[0] = &x->target;
    if (auto* x = std::get_if<mx_data>(&d)) names[0] = &x->exchange;
    if (auto* x = std::get_if<srv_data>(&d)) names[0] = &x->target;
    if (auto* x = std::get_if<soa_data>(&d)) {
      names[0] = &x->mname;
      names[1] = &x->rname;
    }
    for (const name* n : names)
      if (n && n->is_subdomain_of(no_origin()))
        fail("a relative name in the record data, and no $ORIGIN is set before it");
  }

  std::string_view text_;
  std::string source_;
  builder build_;
  name origin_;
  std::optional<name> last_owner_;
  std::optional<std::uint32_t> default_ttl_, last_ttl_;
  std::size_t line_ = 0;
};

// --- JSON ------------------------------------------------------------------------

using json = nlohmann::json;

class json_parser {
 public:
  json_parser(std::string_view text, std::string source, const zone_options& options)
      : text_(text), source_(std::move(source)), options_(options), build_(source_, options) {}

  std::unique_ptr<zone::impl> run() {
    json doc;
    try {
      doc = json::parse(text_);
    } catch (const json::parse_error& e) {
      std::size_t line = 1;
      const std::size_t upto = std::min<std::size_t>(e.byte, text_.size());
      for (std::size_t i = 0; i + 1 < upto; ++i) line += text_[i] == '\n';
      std::string what = e.what();
      if (const auto p = what.find("parse error"); p != std::string::npos) what = what.substr(p);
      throw zone_error(source_, line, "malformed JSON: " + what);
    } catch (const json::exception& e) {
      // Not a syntax error but a value the library cannot hold, such as a
      // number that overflows a double ("1E999999").
      throw zone_error(source_, 0, std::string("malformed JSON: ") + e.what());
    }
    if (!doc.is_object()) fail("", "the zone must be a JSON object");
    for (const auto& [k, v] : doc.items())
      if (k != "origin" && k != "ttl" && k != "records") fail(k, "unknown member");
    if (!doc.contains("origin") || !doc["origin"].is_string())
      fail("origin", "required, a domain name string");
    const std::string origin_text = doc["origin"].get<std::string>();
    auto origin = name::from_text(origin_text);
    if (!origin) fail("origin", "bad name " + quote(origin_text) + ": " + origin.error().message());
    if (options_.origin && !(*options_.origin == *origin))
      fail("origin", origin->to_string() + " differs from the origin given to the loader, " +
                         options_.origin->to_string());
    origin_ = *origin;
    build_.set_origin(origin_);
    std::optional<std::uint32_t> default_ttl;
    if (doc.contains("ttl")) default_ttl = ttl_of(doc["ttl"], "ttl");
    if (!doc.contains("records") || !doc["records"].is_array())
      fail("records", "required, an array of records");
    std::size_t index = 0;
    for (const auto& r : doc["records"]) {
      record_entry(r, "records[" + std::to_string(index) + "]", default_ttl);
      ++index;
    }
    return build_.finish();
  }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw zone_error(source_, 0, field.empty() ? problem : field + ": " + problem);
  }

  std::uint32_t ttl_of(const json& v, const std::string& field) const {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() <= max_ttl)
      return static_cast<std::uint32_t>(v.get<std::uint64_t>());
    if (v.is_string())
      if (auto t = parse_ttl(v.get<std::string>())) return *t;
    fail(field, "a TTL: seconds up to 2147483647, or a string such as \"1h30m\"");
  }

  void record_entry(const json& r, const std::string& at, std::optional<std::uint32_t> def_ttl) {
    if (!r.is_object()) fail(at, "a record is a JSON object");
    for (const auto& [k, v] : r.items())
      if (k != "name" && k != "type" && k != "ttl" && k != "class" && k != "data" && k != "weight")
        fail(at + "." + k, "unknown member");
    if (!r.contains("name") || !r["name"].is_string()) fail(at + ".name", "required, a string");
    const std::string owner_text = r["name"].get<std::string>();
    auto owner = name::from_text(owner_text, origin_);
    if (!owner)
      fail(at + ".name", "bad name " + quote(owner_text) + ": " + owner.error().message());

    if (!r.contains("type") || !r["type"].is_string()) fail(at + ".type", "required, a string");
    const std::string type_text = r["type"].get<std::string>();
    auto type = parse_rtype(type_text);
    if (!type) fail(at + ".type", "unknown type " + quote(type_text));
    if (is_meta_type(*type)) fail(at + ".type", to_string(*type) + " cannot be stored in a zone");

    if (r.contains("class")) {
      const auto& c = r["class"];
      if (!c.is_string() || !iequals(c.get<std::string>(), "IN"))
        fail(at + ".class", "only \"IN\" is served");
    }
    std::uint32_t ttl = 0;
    if (r.contains("ttl"))
      ttl = ttl_of(r["ttl"], at + ".ttl");
    else if (def_ttl)
      ttl = *def_ttl;
    else
      fail(at + ".ttl", "required when the zone has no \"ttl\"");

    std::optional<std::uint32_t> weight;
    if (r.contains("weight")) {
      const auto& w = r["weight"];
      if (!w.is_number_unsigned() || w.get<std::uint64_t>() > max_weight)
        fail(at + ".weight", "a number from 0 to 65535");
      if (!is_address(*type)) fail(at + ".weight", "only A and AAAA records take a weight");
      weight = static_cast<std::uint32_t>(w.get<std::uint64_t>());
    }

    if (!r.contains("data")) fail(at + ".data", "required");
    const auto& data = r["data"];
    std::vector<token> tokens;
    if (data.is_string()) {
      // One string of rdata in master-file syntax: lexed as one line.
      const std::string text = data.get<std::string>();
      std::vector<entry> lines;
      try {
        lines = lexer(text, source_).run();
      } catch (const zone_error& e) {
        fail(at + ".data", e.problem());
      }
      if (lines.size() > 1) fail(at + ".data", "one line of record data");
      if (!lines.empty()) tokens = std::move(lines.front().tokens);
    } else if (data.is_array()) {
      const bool strings = *type == rtype::txt || *type == rtype::caa;
      for (const auto& f : data) {
        if (f.is_number_unsigned()) {
          tokens.push_back({std::to_string(f.get<std::uint64_t>()), false});
        } else if (f.is_string()) {
          std::string v = f.get<std::string>();
          if (strings) {  // literal: escape what the rdata parser unescapes
            std::string esc;
            for (char c : v) {
              if (c == '\\' || c == '"') esc += '\\';
              esc += c;
            }
            v = std::move(esc);
          }
          tokens.push_back({std::move(v), strings});
        } else {
          fail(at + ".data", "array elements are strings or numbers");
        }
      }
    } else {
      fail(at + ".data", "a string of record data, or an array of its fields");
    }
    std::vector<rdata_token> fields;
    for (const auto& t : tokens) fields.push_back({t.text, t.quoted});
    auto parsed = parse_rdata(*type, fields, origin_);
    if (!parsed)
      fail(at + ".data", "bad " + to_string(*type) + " data: " + describe(parsed.error()));
    pending p;
    p.rec = record{std::move(*owner), *type, rclass::in, ttl, std::move(*parsed)};
    p.weight = weight;
    p.where = at;
    build_.add(std::move(p));
  }

  std::string_view text_;
  std::string source_;
  const zone_options& options_;
  builder build_;
  name origin_;
};

}  // namespace

zone::zone(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
zone::zone(zone&&) noexcept = default;
zone& zone::operator=(zone&&) noexcept = default;
zone::~zone() = default;

zone zone::parse_master(std::string_view text, std::string_view source, zone_options options) {
  return zone(master_parser(text, std::string(source), options).run());
}

zone zone::parse_json(std::string_view text, std::string_view source, zone_options options) {
  return zone(json_parser(text, std::string(source), options).run());
}

zone zone::load(const std::string& path, zone_options options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw zone_error(path, 0, "cannot open the zone file");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw zone_error(path, 0, "cannot read the zone file");
  const std::string text = s.str();
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0)
    return parse_json(text, path, std::move(options));
  return parse_master(text, path, std::move(options));
}

const name& zone::origin() const noexcept {
  return impl_->origin;
}
const record& zone::soa() const noexcept {
  return impl_->soa;
}
std::size_t zone::size() const noexcept {
  return impl_->count;
}

const rrset* zone::find(const name& owner, rtype type) const noexcept {
  const node* nd = impl_->find_node(owner);
  return nd ? nd->get(type) : nullptr;
}

lookup_result zone::lookup(const question& q, const random_source& random) const {
  return impl_->lookup(q, random);
}

message zone::answer(const message& query, const random_source& random) const {
  message m = make_response(query);
  impl_->lookup(query.questions.at(0), random).move_into(m);
  return m;
}

const zone* find_zone(std::span<const zone> zones, const name& qname) noexcept {
  const zone* best = nullptr;
  for (const auto& z : zones)
    if (qname.is_subdomain_of(z.origin()) &&
        (!best || z.origin().label_count() > best->origin().label_count()))
      best = &z;
  return best;
}

}  // namespace trellis::dns
