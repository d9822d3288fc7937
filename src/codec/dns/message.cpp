#include "trellis/codec/dns/message.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace trellis::dns {
namespace {

// --- names of types, classes and rcodes -----------------------------------------
struct type_name {
  rtype type;
  std::string_view text;
};
constexpr type_name type_names[] = {
    {rtype::a, "A"},     {rtype::ns, "NS"},   {rtype::cname, "CNAME"}, {rtype::soa, "SOA"},
    {rtype::ptr, "PTR"}, {rtype::mx, "MX"},   {rtype::txt, "TXT"},     {rtype::aaaa, "AAAA"},
    {rtype::srv, "SRV"}, {rtype::opt, "OPT"}, {rtype::ixfr, "IXFR"},   {rtype::axfr, "AXFR"},
    {rtype::any, "ANY"}, {rtype::caa, "CAA"},
};

bool iequal(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto l = [](char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; };
           return l(x) == l(y);
         });
}

// A decimal 16-bit number after `prefix` ("TYPE65" -> 65).
std::optional<std::uint16_t> numbered(std::string_view text, std::string_view prefix) {
  if (text.size() <= prefix.size() || text.size() > prefix.size() + 5 ||
      !iequal(text.substr(0, prefix.size()), prefix))
    return std::nullopt;
  std::uint32_t v = 0;
  for (const char c : text.substr(prefix.size())) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 0xFFFF) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// --- reading ------------------------------------------------------------------
// Compression pointers may chain at most this often: a legitimate name has
// at most 127 labels, each of which could be reached by one pointer.
constexpr int max_pointer_hops = 128;

class reader {
 public:
  explicit reader(std::span<const std::uint8_t> msg) : msg_(msg) {}

  std::size_t pos() const noexcept { return pos_; }
  std::size_t left() const noexcept { return msg_.size() - pos_; }

  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = msg_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>(msg_[pos_] << 8 | msg_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = static_cast<std::uint32_t>(msg_[pos_]) << 24 |
        static_cast<std::uint32_t>(msg_[pos_ + 1]) << 16 |
        static_cast<std::uint32_t>(msg_[pos_ + 2]) << 8 | msg_[pos_ + 3];
    pos_ += 4;
    return true;
  }
  // The octet `ahead` past pos(). REQUIRES: ahead < left().
  std::uint8_t peek(std::size_t ahead) const noexcept { return msg_[pos_ + ahead]; }
  // A name already decoded from `at` (the first question's, which answers
  // point back to): a pointer to it is read as a copy of it.
  void remember(const name& n, std::size_t at) noexcept {
    known_ = &n;
    known_at_ = at;
  }
  bool bytes(std::size_t n, const std::uint8_t*& p) {
    if (left() < n) return false;
    p = msg_.data() + pos_;
    pos_ += n;
    return true;
  }

  // A possibly compressed name starting at pos(); pos() moves past the
  // name's bytes in place (a pointer counts two octets).
  std::error_code read_name(name& out) {
    if (left() >= 1 && msg_[pos_] == 0) {  // the root (an OPT record's owner)
      out = name{};
      ++pos_;
      return {};
    }
    if (known_ && left() >= 2 && msg_[pos_] == (0xC0 | known_at_ >> 8) &&
        msg_[pos_ + 1] == (known_at_ & 0xFF)) {
      // A pointer to the name decoded there, checked then: the same name.
      out = *known_;
      pos_ += 2;
      return {};
    }
    std::array<char, max_name_length> wire;  // assembled here, uncompressed
    std::size_t size = 0;
    std::size_t at = pos_;
    std::size_t resume = 0;    // where pos_ goes after the first pointer
    std::size_t floor = pos_;  // a pointer must point strictly before this
    int hops = 0;
    while (true) {
      if (at >= msg_.size()) return error::truncated_message;
      const std::uint8_t len = msg_[at];
      if (len == 0) {
        wire[size++] = '\0';
        if (!resume) resume = at + 1;
        break;
      }
      if ((len & 0xC0) == 0xC0) {
        if (at + 1 >= msg_.size()) return error::truncated_message;
        const std::size_t target = static_cast<std::size_t>(len & 0x3F) << 8 | msg_[at + 1];
        if (target >= floor) return error::bad_pointer;
        if (++hops > max_pointer_hops) return error::pointer_loop;
        if (!resume) resume = at + 2;
        floor = target;
        at = target;
        continue;
      }
      if (len & 0xC0) return error::bad_label_type;
      if (at + 1 + len > msg_.size()) return error::truncated_message;
      if (size + 1 + len + 1 > max_name_length) return error::name_too_long;
      std::memcpy(wire.data() + size, msg_.data() + at, 1 + len);
      size += 1 + len;
      at += 1 + len;
    }
    pos_ = resume;
    return out.assign_wire(std::string_view(wire.data(), size));
  }

 private:
  std::span<const std::uint8_t> msg_;
  std::size_t pos_ = 0;
  const name* known_ = nullptr;
  std::size_t known_at_ = 0;
};

std::error_code read_rdata(reader& r, rtype type, std::size_t rdlen, rdata& out) {
  const std::size_t start = r.pos();
  const std::size_t end = start + rdlen;
  if (r.left() < rdlen) return error::truncated_message;
  auto read_name_in = [&](name& n) -> std::error_code {
    if (auto ec = r.read_name(n)) return ec;
    return r.pos() > end ? std::error_code(error::bad_rdata) : std::error_code{};
  };
  const std::uint8_t* p = nullptr;
  switch (type) {
    case rtype::a: {
      if (rdlen != 4) return error::bad_rdata;
      a_data d;
      r.bytes(4, p);
      std::memcpy(d.address.data(), p, 4);
      out = d;
      break;
    }
    case rtype::aaaa: {
      if (rdlen != 16) return error::bad_rdata;
      aaaa_data d;
      r.bytes(16, p);
      std::memcpy(d.address.data(), p, 16);
      out = d;
      break;
    }
    case rtype::ns:
    case rtype::cname:
    case rtype::ptr: {
      name n;
      if (auto ec = read_name_in(n)) return ec;
      if (type == rtype::ns)
        out = ns_data{std::move(n)};
      else if (type == rtype::cname)
        out = cname_data{std::move(n)};
      else
        out = ptr_data{std::move(n)};
      break;
    }
    case rtype::soa: {
      soa_data d;
      if (auto ec = read_name_in(d.mname)) return ec;
      if (auto ec = read_name_in(d.rname)) return ec;
      if (end - r.pos() != 20) return error::bad_rdata;
      r.u32(d.serial), r.u32(d.refresh), r.u32(d.retry), r.u32(d.expire), r.u32(d.minimum);
      out = std::move(d);
      break;
    }
    case rtype::mx: {
      mx_data d;
      if (rdlen < 3) return error::bad_rdata;
      r.u16(d.preference);
      if (auto ec = read_name_in(d.exchange)) return ec;
      out = std::move(d);
      break;
    }
    case rtype::srv: {
      srv_data d;
      if (rdlen < 7) return error::bad_rdata;
      r.u16(d.priority), r.u16(d.weight), r.u16(d.port);
      if (auto ec = read_name_in(d.target)) return ec;
      out = std::move(d);
      break;
    }
    case rtype::txt: {
      txt_data d;
      if (rdlen == 0) return error::bad_rdata;
      while (r.pos() < end) {
        std::uint8_t len = 0;
        r.u8(len);
        if (end - r.pos() < len) return error::bad_rdata;
        r.bytes(len, p);
        d.strings.emplace_back(reinterpret_cast<const char*>(p), len);
      }
      out = std::move(d);
      break;
    }
    case rtype::caa: {
      caa_data d;
      std::uint8_t taglen = 0;
      if (rdlen < 2) return error::bad_rdata;
      r.u8(d.flags), r.u8(taglen);
      if (taglen == 0 || taglen > 15 || end - r.pos() < taglen) return error::bad_rdata;
      r.bytes(taglen, p);
      d.tag.assign(reinterpret_cast<const char*>(p), taglen);
      const std::size_t vlen = end - r.pos();
      r.bytes(vlen, p);
      d.value.assign(reinterpret_cast<const char*>(p), vlen);
      out = std::move(d);
      break;
    }
    default: {
      raw_data d;
      r.bytes(rdlen, p);
      d.bytes.assign(p, p + rdlen);
      out = std::move(d);
      break;
    }
  }
  return r.pos() == end ? std::error_code{} : std::error_code(error::bad_rdata);
}

// --- writing ------------------------------------------------------------------
void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v >> 16));
  put16(out, static_cast<std::uint16_t>(v));
}
void patch16(std::vector<std::uint8_t>& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<std::uint8_t>(v >> 8);
  out[at + 1] = static_cast<std::uint8_t>(v);
}

class writer {
 public:
  writer(std::vector<std::uint8_t>& out, std::size_t base, bool compress)
      : out_(out), base_(base), compress_(compress) {}

  std::vector<std::uint8_t>& out() { return out_; }
  std::size_t size() const { return out_.size() - base_; }

  // Writes `n`, replacing its longest already-written suffix by a pointer
  // when `compress` and the writer allow it; remembers its suffixes. The
  // table keeps views into the names of the message being encoded, which
  // outlive the writer.
  void write_name(const name& n, bool compress) {
    const std::string_view w = n.wire();
    std::size_t i = 0;
    while (w[i] != 0) {
      const std::string_view suffix = w.substr(i);
      if (compress && compress_) {
        for (const auto& e : table_) {
          if (iequal(e.suffix, suffix)) {
            put16(out_, static_cast<std::uint16_t>(0xC000 | e.offset));
            return;
          }
        }
      }
      const std::size_t offset = size();
      if (offset < 0x4000) table_.push_back({suffix, static_cast<std::uint16_t>(offset)});
      const auto len = static_cast<unsigned char>(w[i]);
      out_.insert(out_.end(), w.begin() + static_cast<std::ptrdiff_t>(i),
                  w.begin() + static_cast<std::ptrdiff_t>(i + 1 + len));
      i += 1 + len;
    }
    out_.push_back(0);
  }

  // Forgets what was written at or after `mark` (a rolled-back RRset).
  void rollback(std::size_t mark) {
    out_.resize(base_ + mark);
    std::erase_if(table_, [&](const entry& e) { return e.offset >= mark; });
  }

 private:
  struct entry {
    std::string_view suffix;
    std::uint16_t offset;
  };
  std::vector<std::uint8_t>& out_;
  std::size_t base_;
  bool compress_;
  std::vector<entry> table_;
};

template <class T>
const T* as(const record& r) {
  return std::get_if<T>(&r.data);
}

std::error_code write_rdata(writer& w, const record& r) {
  auto& out = w.out();
  if (const auto* raw = as<raw_data>(r)) {
    if (raw->bytes.size() > 0xFFFF) return error::too_large;
    out.insert(out.end(), raw->bytes.begin(), raw->bytes.end());
    return {};
  }
  switch (r.type) {
    case rtype::a:
      if (const auto* d = as<a_data>(r)) {
        out.insert(out.end(), d->address.begin(), d->address.end());
        return {};
      }
      break;
    case rtype::aaaa:
      if (const auto* d = as<aaaa_data>(r)) {
        out.insert(out.end(), d->address.begin(), d->address.end());
        return {};
      }
      break;
    case rtype::ns:
      if (const auto* d = as<ns_data>(r)) return w.write_name(d->host, true), std::error_code{};
      break;
    case rtype::cname:
      if (const auto* d = as<cname_data>(r))
        return w.write_name(d->target, true), std::error_code{};
      break;
    case rtype::ptr:
      if (const auto* d = as<ptr_data>(r)) return w.write_name(d->target, true), std::error_code{};
      break;
    case rtype::soa:
      if (const auto* d = as<soa_data>(r)) {
        w.write_name(d->mname, true);
        w.write_name(d->rname, true);
        put32(out, d->serial), put32(out, d->refresh), put32(out, d->retry);
        put32(out, d->expire), put32(out, d->minimum);
        return {};
      }
      break;
    case rtype::mx:
      if (const auto* d = as<mx_data>(r)) {
        put16(out, d->preference);
        w.write_name(d->exchange, true);
        return {};
      }
      break;
    case rtype::srv:
      if (const auto* d = as<srv_data>(r)) {
        put16(out, d->priority), put16(out, d->weight), put16(out, d->port);
        w.write_name(d->target, false);  // RFC 2782: no compression
        return {};
      }
      break;
    case rtype::txt:
      if (const auto* d = as<txt_data>(r)) {
        if (d->strings.empty()) return error::bad_rdata;
        for (const auto& s : d->strings) {
          if (s.size() > 255) return error::bad_rdata;
          out.push_back(static_cast<std::uint8_t>(s.size()));
          out.insert(out.end(), s.begin(), s.end());
        }
        return {};
      }
      break;
    case rtype::caa:
      if (const auto* d = as<caa_data>(r)) {
        if (d->tag.empty() || d->tag.size() > 15) return error::bad_rdata;
        out.push_back(d->flags);
        out.push_back(static_cast<std::uint8_t>(d->tag.size()));
        out.insert(out.end(), d->tag.begin(), d->tag.end());
        out.insert(out.end(), d->value.begin(), d->value.end());
        return {};
      }
      break;
    default: break;
  }
  return error::bad_rdata;  // the data's alternative does not match the type
}

std::error_code write_record(writer& w, const record& r) {
  if (r.type == rtype::opt) return error::bad_opt;  // OPT travels in message::edns
  auto& out = w.out();
  w.write_name(r.owner, true);
  put16(out, static_cast<std::uint16_t>(r.type));
  put16(out, static_cast<std::uint16_t>(r.klass));
  put32(out, r.ttl);
  const std::size_t len_at = out.size();
  put16(out, 0);
  if (auto ec = write_rdata(w, r)) return ec;
  const std::size_t rdlen = out.size() - len_at - 2;
  if (rdlen > 0xFFFF) return error::too_large;
  patch16(out, len_at, static_cast<std::uint16_t>(rdlen));
  return {};
}

std::size_t opt_size(const edns& e) {
  std::size_t n = 11;
  for (const auto& o : e.options) n += 4 + o.data.size();
  return n;
}

bool same_rrset(const record& a, const record& b) {
  return a.type == b.type && a.klass == b.klass && a.owner == b.owner;
}

}  // namespace

std::string to_string(rtype t) {
  for (const auto& e : type_names)
    if (e.type == t) return std::string(e.text);
  return "TYPE" + std::to_string(static_cast<unsigned>(t));
}

std::optional<rtype> parse_rtype(std::string_view text) {
  for (const auto& e : type_names)
    if (iequal(e.text, text)) return e.type;
  if (auto v = numbered(text, "TYPE")) return static_cast<rtype>(*v);
  return std::nullopt;
}

std::string to_string(rclass c) {
  switch (c) {
    case rclass::in: return "IN";
    case rclass::ch: return "CH";
    case rclass::hs: return "HS";
    case rclass::none: return "NONE";
    case rclass::any: return "ANY";
  }
  return "CLASS" + std::to_string(static_cast<unsigned>(c));
}

std::optional<rclass> parse_rclass(std::string_view text) {
  for (const auto c : {rclass::in, rclass::ch, rclass::hs, rclass::none, rclass::any})
    if (iequal(to_string(c), text)) return c;
  if (auto v = numbered(text, "CLASS")) return static_cast<rclass>(*v);
  return std::nullopt;
}

std::string to_string(rcode r) {
  switch (r) {
    case rcode::noerror: return "NOERROR";
    case rcode::formerr: return "FORMERR";
    case rcode::servfail: return "SERVFAIL";
    case rcode::nxdomain: return "NXDOMAIN";
    case rcode::notimp: return "NOTIMP";
    case rcode::refused: return "REFUSED";
    case rcode::badvers: return "BADVERS";
  }
  return "RCODE" + std::to_string(static_cast<unsigned>(r));
}

result<header_view> peek_header(std::span<const std::uint8_t> wire) noexcept {
  if (wire.size() < 12) return unexpected(error::truncated_message);
  auto u16 = [&](std::size_t i) { return static_cast<std::uint16_t>(wire[i] << 8 | wire[i + 1]); };
  return header_view{u16(0), (wire[2] & 0x80) != 0, (wire[2] & 0x02) != 0, u16(4), u16(6), u16(8),
                     u16(10)};
}

namespace {

// The header's fields into `m` (the counts and the 4-bit RCODE returned),
// the message's containers emptied.
struct counts {
  std::uint16_t qd = 0, an = 0, ns = 0, ar = 0, rc = 0;
};

std::error_code read_header(reader& r, message& m, counts& c) {
  m.questions.clear();
  m.answers.clear();
  m.authorities.clear();
  m.additionals.clear();
  m.edns.reset();
  m.rcode = dns::rcode::noerror;
  std::uint16_t flags = 0;
  if (!r.u16(m.id) || !r.u16(flags) || !r.u16(c.qd) || !r.u16(c.an) || !r.u16(c.ns) ||
      !r.u16(c.ar))
    return error::truncated_message;
  m.qr = flags & 0x8000;
  m.opcode = static_cast<dns::opcode>((flags >> 11) & 0xF);
  m.aa = flags & 0x0400;
  m.tc = flags & 0x0200;
  m.rd = flags & 0x0100;
  m.ra = flags & 0x0080;
  m.ad = flags & 0x0020;
  m.cd = flags & 0x0010;
  c.rc = flags & 0xF;
  // Each question needs at least 5 octets and each record 11: refuse counts
  // the input cannot hold before reserving for them.
  if (static_cast<std::size_t>(c.qd) * 5 + (static_cast<std::size_t>(c.an) + c.ns + c.ar) * 11 >
      r.left())
    return error::truncated_message;
  return {};
}

// The OPT pseudo-record (RFC 6891 §6.1.2) into m.edns, its class and TTL
// already read; r is at its RDLENGTH's end.
std::error_code read_opt(reader& r, message& m, counts& n, std::uint16_t c, std::uint32_t ttl,
                         std::uint16_t rdlen) {
  if (m.edns) return error::bad_opt;
  if (r.left() < rdlen) return error::truncated_message;
  dns::edns& e = m.edns.emplace();
  e.udp_size = c;
  n.rc = static_cast<std::uint16_t>(n.rc | ((ttl >> 24) & 0xFF) << 4);
  e.version = static_cast<std::uint8_t>(ttl >> 16);
  e.dnssec_ok = ttl & 0x8000;
  const std::size_t end = r.pos() + rdlen;
  while (r.pos() < end) {
    edns_option o;
    std::uint16_t olen = 0;
    if (end - r.pos() < 4) return error::bad_opt;
    r.u16(o.code), r.u16(olen);
    if (end - r.pos() < olen) return error::bad_opt;
    const std::uint8_t* p = nullptr;
    r.bytes(olen, p);
    o.data.assign(p, p + olen);
    e.options.push_back(std::move(o));
  }
  return {};
}

std::error_code read_section(reader& r, message& m, counts& n, std::uint16_t count,
                             std::vector<record>& into, bool additional) {
  // The additional section of a response usually holds the OPT record
  // alone, which is not kept there: no room is reserved for it.
  if (!additional) into.reserve(count);
  for (std::uint16_t i = 0; i < count; ++i) {
    if (additional && r.left() >= 3 && r.peek(0) == 0 && r.peek(1) == 0 &&
        r.peek(2) == static_cast<std::uint8_t>(rtype::opt)) {
      // The OPT record, owned by the root as it must be: read without
      // building a record for it.
      std::uint16_t t = 0, c = 0, rdlen = 0;
      std::uint32_t ttl = 0;
      std::uint8_t root = 0;
      if (!r.u8(root) || !r.u16(t) || !r.u16(c) || !r.u32(ttl) || !r.u16(rdlen))
        return error::truncated_message;
      if (auto ec = read_opt(r, m, n, c, ttl, rdlen)) return ec;
      continue;
    }
    // Read in place (a record moved costs its name and its data); an
    // OPT record whose owner is written as a pointer leaves again.
    record& rec = into.emplace_back();
    if (auto ec = r.read_name(rec.owner)) return ec;
    std::uint16_t t = 0, c = 0, rdlen = 0;
    if (!r.u16(t) || !r.u16(c) || !r.u32(rec.ttl) || !r.u16(rdlen))
      return error::truncated_message;
    rec.type = static_cast<rtype>(t);
    rec.klass = static_cast<rclass>(c);
    if (rec.type == rtype::opt) {
      if (!additional || !rec.owner.is_root()) return error::bad_opt;
      const std::uint32_t ttl = rec.ttl;
      into.pop_back();
      if (auto ec = read_opt(r, m, n, c, ttl, rdlen)) return ec;
      continue;
    }
    if (r.left() < rdlen) return error::truncated_message;
    if (auto ec = read_rdata(r, rec.type, rdlen, rec.data)) return ec;
  }
  return {};
}

// The three record sections and the end of the message.
std::error_code read_records(reader& r, message& m, counts& n) {
  if (auto ec = read_section(r, m, n, n.an, m.answers, false)) return ec;
  if (auto ec = read_section(r, m, n, n.ns, m.authorities, false)) return ec;
  if (auto ec = read_section(r, m, n, n.ar, m.additionals, true)) return ec;
  if (r.left() != 0) return error::trailing_data;
  m.rcode = static_cast<dns::rcode>(n.rc);
  return {};
}

}  // namespace

std::error_code decode(std::span<const std::uint8_t> wire, message& m) {
  reader r(wire);
  counts n;
  if (auto ec = read_header(r, m, n)) return ec;
  m.questions.reserve(n.qd);
  for (std::uint16_t i = 0; i < n.qd; ++i) {
    // Read straight into the vector's element: a question moved costs its name.
    question& q = m.questions.emplace_back();
    const std::size_t at = r.pos();
    if (auto ec = r.read_name(q.qname)) return ec;
    // The vector has its room reserved: the element stays where it is.
    if (i == 0 && at < 0x4000) r.remember(q.qname, at);
    std::uint16_t t = 0, c = 0;
    if (!r.u16(t) || !r.u16(c)) return error::truncated_message;
    q.qtype = static_cast<rtype>(t);
    q.qclass = static_cast<rclass>(c);
  }
  return read_records(r, m, n);
}

std::error_code decode_answer(std::span<const std::uint8_t> wire, const question& asked,
                              message& m, bool& matched) {
  matched = false;
  reader r(wire);
  counts n;
  if (auto ec = read_header(r, m, n)) return ec;
  if (n.qd != 1) return {};  // not an answer to one question
  const std::size_t at = r.pos();
  const std::string_view mine = asked.qname.wire();
  name theirs;  // the question's name as the answer writes it, when not as asked
  const std::uint8_t* p = nullptr;
  if (r.left() >= mine.size() && std::memcmp(wire.data() + at, mine.data(), mine.size()) == 0) {
    // The name as sent (the usual echo): the asked one, already checked,
    // octet for octet.
    r.bytes(mine.size(), p);
    r.remember(asked.qname, at);
  } else {
    // Another spelling: compressed, another case, or another name.
    if (auto ec = r.read_name(theirs)) return ec;
    if (!(theirs == asked.qname)) return {};
    r.remember(theirs, at);
  }
  std::uint16_t t = 0, c = 0;
  if (!r.u16(t) || !r.u16(c)) return error::truncated_message;
  if (static_cast<rtype>(t) != asked.qtype || static_cast<rclass>(c) != asked.qclass) return {};
  matched = true;
  return read_records(r, m, n);
}

result<message> decode(std::span<const std::uint8_t> wire) {
  message m;
  if (auto ec = decode(wire, m)) return unexpected(ec);
  return m;
}

result<std::size_t> encode(const message& m, std::vector<std::uint8_t>& out,
                           const encode_options& options) {
  const auto rc = static_cast<std::uint16_t>(m.rcode);
  if (rc > 0xF && !m.edns) return unexpected(error::bad_opt);
  if (rc > 0xFFF) return unexpected(error::bad_opt);
  if (m.questions.size() > 0xFFFF || m.answers.size() > 0xFFFF || m.authorities.size() > 0xFFFF ||
      m.additionals.size() > 0xFFFE)
    return unexpected(error::too_large);

  const std::size_t base = out.size();
  writer w(out, base, options.compress);
  std::uint16_t flags = static_cast<std::uint16_t>(
      (m.qr ? 0x8000 : 0) | (static_cast<unsigned>(m.opcode) & 0xF) << 11 | (m.aa ? 0x0400 : 0) |
      (m.tc ? 0x0200 : 0) | (m.rd ? 0x0100 : 0) | (m.ra ? 0x0080 : 0) | (m.ad ? 0x0020 : 0) |
      (m.cd ? 0x0010 : 0) | (rc & 0xF));
  put16(out, m.id);
  put16(out, flags);
  put16(out, static_cast<std::uint16_t>(m.questions.size()));
  for (int i = 0; i < 3; ++i) put16(out, 0);  // an, ns, ar: patched below

  for (const auto& q : m.questions) {
    w.write_name(q.qname, true);
    put16(out, static_cast<std::uint16_t>(q.qtype));
    put16(out, static_cast<std::uint16_t>(q.qclass));
  }

  const std::size_t reserve = m.edns ? opt_size(*m.edns) : 0;
  const std::size_t limit = options.max_size ? options.max_size : 0xFFFF;
  bool truncated = false;
  std::uint16_t counts[3] = {0, 0, 0};
  const std::vector<record>* sections[3] = {&m.answers, &m.authorities, &m.additionals};
  for (int s = 0; s < 3 && !truncated; ++s) {
    const auto& recs = *sections[s];
    std::size_t i = 0;
    while (i < recs.size()) {
      // One RRset at a time: a set is kept or dropped whole (RFC 2181 §5).
      const std::size_t mark = w.size();
      std::size_t j = i;
      do {
        if (auto ec = write_record(w, recs[j])) {
          out.resize(base);
          return unexpected(ec);
        }
        ++j;
      } while (j < recs.size() && same_rrset(recs[i], recs[j]));
      if (w.size() + reserve > limit) {
        w.rollback(mark);
        if (options.max_size == 0) {
          out.resize(base);
          return unexpected(error::too_large);
        }
        truncated = true;
        if (s < 2) flags |= 0x0200;  // required data lost: the client retries over TCP
        break;
      }
      counts[s] = static_cast<std::uint16_t>(counts[s] + (j - i));
      i = j;
    }
  }

  std::uint16_t arcount = counts[2];
  if (m.edns) {
    const auto& e = *m.edns;
    out.push_back(0);  // root owner
    put16(out, static_cast<std::uint16_t>(rtype::opt));
    put16(out, e.udp_size);
    put32(out, static_cast<std::uint32_t>(rc >> 4) << 24 |
                   static_cast<std::uint32_t>(e.version) << 16 | (e.dnssec_ok ? 0x8000u : 0u));
    std::size_t rdlen = 0;
    for (const auto& o : e.options) rdlen += 4 + o.data.size();
    if (rdlen > 0xFFFF) {
      out.resize(base);
      return unexpected(error::too_large);
    }
    put16(out, static_cast<std::uint16_t>(rdlen));
    for (const auto& o : e.options) {
      put16(out, o.code);
      put16(out, static_cast<std::uint16_t>(o.data.size()));
      out.insert(out.end(), o.data.begin(), o.data.end());
    }
    ++arcount;
  }
  if (w.size() > 0xFFFF) {
    out.resize(base);
    return unexpected(error::too_large);
  }
  patch16(out, base + 2, flags);
  patch16(out, base + 6, counts[0]);
  patch16(out, base + 8, counts[1]);
  patch16(out, base + 10, arcount);
  return w.size();
}

result<std::vector<std::uint8_t>> encode(const message& m, const encode_options& options) {
  std::vector<std::uint8_t> out;
  out.reserve(512);
  auto n = encode(m, out, options);
  if (!n) return unexpected(n.error());
  return out;
}

message make_query(std::uint16_t id, const question& q, std::uint16_t udp_size,
                   bool recursion_desired) {
  message m;
  m.id = id;
  m.rd = recursion_desired;
  m.questions.push_back(q);
  if (udp_size) m.edns = dns::edns{.udp_size = udp_size};
  return m;
}

message make_response(const message& query) {
  message m;
  m.id = query.id;
  m.qr = true;
  m.opcode = query.opcode;
  m.rd = query.rd;
  m.cd = query.cd;
  m.questions = query.questions;
  if (query.edns) m.edns = dns::edns{};
  return m;
}

void tcp_framer::feed(std::span<const std::uint8_t> bytes) {
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

std::optional<std::span<const std::uint8_t>> tcp_framer::next() {
  if (buffered() < 2) return std::nullopt;
  const std::size_t len = static_cast<std::size_t>(buf_[pos_] << 8 | buf_[pos_ + 1]);
  if (buffered() < 2 + len) return std::nullopt;
  std::span<const std::uint8_t> msg(buf_.data() + pos_ + 2, len);
  pos_ += 2 + len;
  return msg;
}

void frame_for_tcp(std::span<const std::uint8_t> wire, std::vector<std::uint8_t>& out) {
  put16(out, static_cast<std::uint16_t>(wire.size()));
  out.insert(out.end(), wire.begin(), wire.end());
}

}  // namespace trellis::dns
