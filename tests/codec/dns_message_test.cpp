#include "trellis/codec/dns/message.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace trellis::dns {
namespace {

using bytes = std::vector<std::uint8_t>;

name N(std::string_view text) {
  return name::from_text(text).value();
}

record rr(std::string_view owner, rtype t, rdata d, std::uint32_t ttl = 300) {
  return record{N(owner), t, rclass::in, ttl, std::move(d)};
}

message every_type_response() {
  auto m = make_response(make_query(0xBEEF, {N("example.test."), rtype::any}));
  m.aa = true;
  m.ra = true;
  m.answers = {
      rr("example.test.", rtype::a, a_data{{192, 0, 2, 1}}),
      rr("example.test.", rtype::a, a_data{{192, 0, 2, 2}}),
      rr("example.test.", rtype::aaaa,
         aaaa_data{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}),
      rr("example.test.", rtype::ns, ns_data{N("ns1.example.test.")}),
      rr("www.example.test.", rtype::cname, cname_data{N("example.test.")}),
      rr("example.test.", rtype::soa,
         soa_data{N("ns1.example.test."), N("hostmaster.example.test."), 2026112801, 7200, 900,
                  1209600, 60}),
      rr("1.2.0.192.in-addr.arpa.", rtype::ptr, ptr_data{N("example.test.")}),
      rr("example.test.", rtype::mx, mx_data{10, N("mail.example.test.")}),
      rr("example.test.", rtype::txt, txt_data{{"v=spf1 -all", "", std::string(255, 'x')}}),
      rr("_http._tcp.example.test.", rtype::srv, srv_data{1, 5, 8080, N("www.example.test.")}),
      rr("example.test.", rtype::caa, caa_data{128, "issue", "ca.example.net"}),
      rr("example.test.", static_cast<rtype>(65), raw_data{{1, 2, 3}}),
  };
  m.authorities = {rr("example.test.", rtype::ns, ns_data{N("ns2.example.test.")})};
  m.additionals = {rr("ns1.example.test.", rtype::a, a_data{{127, 0, 0, 1}})};
  m.edns->options = {{10, {1, 2, 3, 4, 5, 6, 7, 8}}};
  return m;
}

TEST(DnsMessage, QueryBytesMatchRfc1035Layout) {
  auto q = make_query(0x1234, {N("www.example.com."), rtype::a}, 0);
  const auto wire = encode(q).value();
  const bytes expected = {0x12, 0x34, 0x01, 0x00, 0, 1,   0,   0,   0,   0,   0,   0,  // header, RD
                          3,    'w',  'w',  'w',  7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
                          3,    'c',  'o',  'm',  0, 0,   1,   0,   1};
  EXPECT_EQ(wire, expected);
}

TEST(DnsMessage, EveryTypeRoundTrips) {
  const auto m = every_type_response();
  const auto wire = encode(m).value();
  const auto back = decode(wire);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, m);
  // Uncompressed too, and the compressed form is smaller.
  const auto flat = encode(m, {.compress = false}).value();
  EXPECT_EQ(decode(flat).value(), m);
  EXPECT_LT(wire.size(), flat.size());
}

TEST(DnsMessage, CompressesRepeatedSuffixes) {
  auto m = make_response(make_query(1, {N("a.example.test."), rtype::a}, 0));
  m.answers = {rr("a.example.test.", rtype::a, a_data{{1, 2, 3, 4}}),
               rr("b.example.test.", rtype::cname, cname_data{N("c.EXAMPLE.test.")})};
  const auto wire = encode(m).value();
  // Question name at 12; the answer owner is a pointer to it (0xC00C).
  EXPECT_EQ(wire[12 + 16 + 4], 0xC0);
  EXPECT_EQ(wire[12 + 16 + 4 + 1], 0x0C);
  // "b" then a pointer to "example.test." at offset 14; the CNAME target
  // "c" then the same pointer, matched case-insensitively.
  const bytes tail = {1, 'c', 0xC0, 14};
  EXPECT_TRUE(std::search(wire.begin(), wire.end(), tail.begin(), tail.end()) != wire.end());
  EXPECT_EQ(decode(wire).value(), m);
}

TEST(DnsMessage, SrvTargetsAreNotCompressed) {
  auto m = make_response(make_query(1, {N("_x._tcp.example.test."), rtype::srv}, 0));
  m.answers = {rr("_x._tcp.example.test.", rtype::srv, srv_data{0, 0, 80, N("example.test.")})};
  const auto wire = encode(m).value();
  const bytes target = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0};
  // The target appears in full at the end (not as a pointer).
  ASSERT_GE(wire.size(), target.size());
  EXPECT_TRUE(
      std::equal(target.begin(), target.end(), wire.end() - static_cast<long>(target.size())));
}

TEST(DnsMessage, EdnsCarriesExtendedRcodeAndDoBit) {
  auto m = make_response(make_query(7, {N("x.test."), rtype::a}));
  m.rcode = rcode::badvers;
  m.edns->dnssec_ok = true;
  m.edns->udp_size = 4096;
  const auto back = decode(encode(m).value()).value();
  EXPECT_EQ(back.rcode, rcode::badvers);
  ASSERT_TRUE(back.edns);
  EXPECT_TRUE(back.edns->dnssec_ok);
  EXPECT_EQ(back.edns->udp_size, 4096);
  EXPECT_TRUE(back.additionals.empty());
  // Without EDNS the rcode does not fit in four bits.
  m.edns.reset();
  EXPECT_EQ(encode(m).error(), error::bad_opt);
}

TEST(DnsMessage, FlagsRoundTrip) {
  message m;
  m.id = 0xFFFF;
  m.qr = m.aa = m.tc = m.rd = m.ra = m.ad = m.cd = true;
  m.opcode = opcode::update;
  m.rcode = rcode::refused;
  const auto wire = encode(m).value();
  EXPECT_EQ(wire[2], 0x80 | (5 << 3) | 0x04 | 0x02 | 0x01);
  EXPECT_EQ(wire[3], 0x80 | 0x20 | 0x10 | 5);
  EXPECT_EQ(decode(wire).value(), m);
  const auto h = peek_header(wire).value();
  EXPECT_EQ(h.id, 0xFFFF);
  EXPECT_TRUE(h.qr);
  EXPECT_TRUE(h.tc);
}

TEST(DnsMessage, TruncationDropsWholeRrsetsAndSetsTc) {
  auto m = make_response(make_query(9, {N("big.test."), rtype::a}));
  for (int i = 0; i < 60; ++i)
    m.answers.push_back(
        rr("big.test.", rtype::a, a_data{{10, 0, 0, static_cast<std::uint8_t>(i)}}));
  const auto full = encode(m).value();
  ASSERT_GT(full.size(), 512u);
  const auto cut = encode(m, {.max_size = 512}).value();
  EXPECT_LE(cut.size(), 512u);
  const auto back = decode(cut).value();
  EXPECT_TRUE(back.tc);
  // The one RRset did not fit, so none of it is sent.
  EXPECT_TRUE(back.answers.empty());
  EXPECT_TRUE(back.edns);  // the OPT record always fits

  // Additional records that do not fit are dropped without TC.
  auto n = make_response(make_query(9, {N("small.test."), rtype::a}));
  n.answers = {rr("small.test.", rtype::a, a_data{{10, 0, 0, 1}})};
  for (int i = 0; i < 40; ++i)
    n.additionals.push_back(
        rr("extra" + std::to_string(i) + ".test.", rtype::a, a_data{{10, 0, 0, 2}}));
  const auto trimmed = decode(encode(n, {.max_size = 512}).value()).value();
  EXPECT_FALSE(trimmed.tc);
  EXPECT_EQ(trimmed.answers.size(), 1u);
  EXPECT_LT(trimmed.additionals.size(), 40u);
  EXPECT_FALSE(trimmed.additionals.empty());
}

TEST(DnsMessage, EncodeRejectsInvalidData) {
  auto m = make_response(make_query(1, {N("x.test."), rtype::txt}, 0));
  m.answers = {rr("x.test.", rtype::txt, txt_data{{std::string(256, 'x')}})};
  EXPECT_EQ(encode(m).error(), error::bad_rdata);
  m.answers = {rr("x.test.", rtype::txt, txt_data{})};
  EXPECT_EQ(encode(m).error(), error::bad_rdata);
  m.answers = {rr("x.test.", rtype::a, mx_data{1, N("x.test.")})};
  EXPECT_EQ(encode(m).error(), error::bad_rdata);
  m.answers = {rr("x.test.", rtype::caa, caa_data{0, "", "v"})};
  EXPECT_EQ(encode(m).error(), error::bad_rdata);
  m.answers = {rr("x.test.", rtype::opt, raw_data{})};
  EXPECT_EQ(encode(m).error(), error::bad_opt);
  // Too large for one message.
  m.answers.clear();
  for (int i = 0; i < 300; ++i)
    m.answers.push_back(rr("x.test.", rtype::txt, txt_data{{std::string(250, 'y')}}));
  std::vector<std::uint8_t> out{42};
  EXPECT_EQ(encode(m, out).error(), error::too_large);
  EXPECT_EQ(out, bytes{42});  // nothing appended on failure
}

TEST(DnsMessage, NamesOfTypesClassesAndRcodes) {
  EXPECT_EQ(to_string(rtype::aaaa), "AAAA");
  EXPECT_EQ(to_string(static_cast<rtype>(65)), "TYPE65");
  EXPECT_EQ(parse_rtype("aaaa"), rtype::aaaa);
  EXPECT_EQ(parse_rtype("TYPE65"), static_cast<rtype>(65));
  EXPECT_EQ(parse_rtype("type1"), rtype::a);
  EXPECT_FALSE(parse_rtype("TYPE65536"));
  EXPECT_FALSE(parse_rtype("TYPE"));
  EXPECT_FALSE(parse_rtype("BOGUS"));
  EXPECT_EQ(parse_rclass("in"), rclass::in);
  EXPECT_EQ(parse_rclass("CLASS3"), rclass::ch);
  EXPECT_EQ(to_string(rcode::nxdomain), "NXDOMAIN");
  EXPECT_EQ(to_string(static_cast<rcode>(23)), "RCODE23");
}

// --- malformed input: each class is its own error, never a crash ---------------

bytes header(std::uint16_t qd, std::uint16_t an = 0, std::uint16_t ns = 0, std::uint16_t ar = 0) {
  return {0,
          1,
          0x81,
          0x80,
          static_cast<std::uint8_t>(qd >> 8),
          static_cast<std::uint8_t>(qd),
          static_cast<std::uint8_t>(an >> 8),
          static_cast<std::uint8_t>(an),
          static_cast<std::uint8_t>(ns >> 8),
          static_cast<std::uint8_t>(ns),
          static_cast<std::uint8_t>(ar >> 8),
          static_cast<std::uint8_t>(ar)};
}

bytes operator+(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const bytes q_a_test = {1, 'a', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};

// --- decode_answer: the question checked on the wire, not kept --------------

// decode() less the question section.
message without_questions(message m) {
  m.questions.clear();
  return m;
}

TEST(DnsDecodeAnswer, AnAnswerToTheQuestionDecodesAsDecodeButItsQuestion) {
  const auto m = every_type_response();
  const auto wire = encode(m).value();
  message out;
  bool matched = false;
  ASSERT_FALSE(decode_answer(wire, m.questions[0], out, matched));
  EXPECT_TRUE(matched);
  EXPECT_EQ(out, without_questions(decode(wire).value()));
  // Uncompressed too (records do not point to the question's name).
  const auto flat = encode(m, {.compress = false}).value();
  ASSERT_FALSE(decode_answer(flat, m.questions[0], out, matched));
  EXPECT_TRUE(matched);
  EXPECT_EQ(out, without_questions(decode(flat).value()));
}

TEST(DnsDecodeAnswer, TheQuestionMatchesInAnyCaseAndRecordsKeepTheAnswersSpelling) {
  auto m = make_response(make_query(7, {N("WwW.Example.TEST."), rtype::a}));
  m.answers = {rr("www.example.test.", rtype::a, a_data{{192, 0, 2, 1}})};
  m.answers[0].owner = m.questions[0].qname;  // written as a pointer to the question
  const auto wire = encode(m).value();
  const question asked{N("www.example.test."), rtype::a, rclass::in};
  message out;
  bool matched = false;
  ASSERT_FALSE(decode_answer(wire, asked, out, matched));
  EXPECT_TRUE(matched);
  EXPECT_TRUE(out.questions.empty());
  ASSERT_EQ(out.answers.size(), 1u);
  EXPECT_EQ(out.answers[0].owner.wire(), N("WwW.Example.TEST.").wire())
      << "as the answer spells it";
  EXPECT_EQ(out, without_questions(decode(wire).value()));
}

TEST(DnsDecodeAnswer, AnotherQuestionIsNotDecoded) {
  const question asked{N("a.test."), rtype::a, rclass::in};
  const auto answer_to = [](const question& q) {
    auto m = make_response(make_query(7, q));
    m.answers = {rr("a.test.", rtype::a, a_data{{192, 0, 2, 1}})};
    return encode(m).value();
  };
  message out;
  bool matched = true;
  for (const question& other : {question{N("b.test."), rtype::a, rclass::in},
                                question{N("a.test.b."), rtype::a, rclass::in},
                                question{N("a.test."), rtype::aaaa, rclass::in},
                                question{N("a.test."), rtype::a, rclass::ch}}) {
    matched = true;
    EXPECT_FALSE(decode_answer(answer_to(other), asked, out, matched));
    EXPECT_FALSE(matched);
  }
  // No question, or two.
  matched = true;
  EXPECT_FALSE(decode_answer(header(0), asked, out, matched));
  EXPECT_FALSE(matched);
  matched = true;
  EXPECT_FALSE(decode_answer(header(2) + q_a_test + q_a_test, asked, out, matched));
  EXPECT_FALSE(matched);
  // Another question followed by garbage: not decoded past the question.
  matched = true;
  const question b{N("b.test."), rtype::a, rclass::in};
  EXPECT_FALSE(decode_answer(header(1, 1) + q_a_test + bytes(11, 0xFF), b, out, matched));
  EXPECT_FALSE(matched);
}

TEST(DnsDecodeAnswer, ErrorsAreDecodesErrors) {
  const question asked{N("a.test."), rtype::a, rclass::in};
  message out;
  bool matched = false;
  // The asked question, then a broken record.
  EXPECT_EQ(decode_answer(header(1, 1) + q_a_test + bytes{0xC0}, asked, out, matched),
            decode(header(1, 1) + q_a_test + bytes{0xC0}).error());
  EXPECT_EQ(decode_answer(header(1) + q_a_test + bytes{0}, asked, out, matched),
            error::trailing_data);
  EXPECT_EQ(decode_answer(header(0xFFFF) + q_a_test, asked, out, matched),
            error::truncated_message);
  EXPECT_EQ(decode_answer(header(1) + bytes{0x41, 'a', 0, 0, 1, 0, 1}, asked, out, matched),
            error::bad_label_type);
  // Every proper prefix of an answer fails cleanly.
  auto m = make_response(make_query(7, asked));
  m.answers = {rr("a.test.", rtype::a, a_data{{192, 0, 2, 1}})};
  const auto wire = encode(m).value();
  for (std::size_t n = 0; n < wire.size(); ++n) {
    const std::span<const std::uint8_t> prefix(wire.data(), n);
    EXPECT_TRUE(decode_answer(prefix, asked, out, matched) || !matched) << n;
  }
}

TEST(DnsMessageMalformed, TruncatedAnywhere) {
  const auto wire = encode(every_type_response()).value();
  // Every proper prefix fails cleanly (and none reads past its end: ASan).
  for (std::size_t n = 0; n < wire.size(); ++n) {
    const auto r = decode(std::span(wire.data(), n));
    ASSERT_FALSE(r) << "prefix of " << n << " bytes decoded";
  }
  EXPECT_EQ(decode(std::span(wire.data(), 11)).error(), error::truncated_message);
}

TEST(DnsMessageMalformed, CountsTheInputCannotHold) {
  EXPECT_EQ(decode(header(0xFFFF) + q_a_test).error(), error::truncated_message);
  EXPECT_EQ(decode(header(1, 0xFFFF) + q_a_test).error(), error::truncated_message);
}

TEST(DnsMessageMalformed, TrailingBytes) {
  EXPECT_EQ(decode(header(1) + q_a_test + bytes{0}).error(), error::trailing_data);
}

TEST(DnsMessageMalformed, ForwardAndSelfPointers) {
  // The question name points at itself.
  EXPECT_EQ(decode(header(1) + bytes{0xC0, 12, 0, 1, 0, 1}).error(), error::bad_pointer);
  // ... or forwards, into its own type field.
  EXPECT_EQ(decode(header(1) + bytes{0xC0, 14, 0, 1, 0, 1}).error(), error::bad_pointer);
  // Pointer past the end.
  EXPECT_EQ(decode(header(1) + bytes{0xFF, 0xFF, 0, 1, 0, 1}).error(), error::bad_pointer);
  // A pointer cut in half.
  EXPECT_EQ(decode(header(1) + bytes{0xC0}).error(), error::truncated_message);
}

TEST(DnsMessageMalformed, LongPointerChainsStop) {
  // Record owners each pointing at the previous one: a chain of 200 hops
  // that ends at the question name. Decoding the last owner would follow
  // every link; the decoder gives up after its hop limit.
  const std::uint16_t records = 200;
  bytes wire = header(1, records) + q_a_test;
  std::size_t prev = 12;
  for (int i = 0; i < records; ++i) {
    const std::size_t here = wire.size();
    wire.insert(wire.end(),
                {static_cast<std::uint8_t>(0xC0 | prev >> 8), static_cast<std::uint8_t>(prev), 0, 1,
                 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4});
    prev = here;
  }
  EXPECT_EQ(decode(wire).error(), error::pointer_loop);
}

TEST(DnsMessageMalformed, ReservedLabelTypes) {
  EXPECT_EQ(decode(header(1) + bytes{0x41, 'a', 0, 0, 1, 0, 1}).error(), error::bad_label_type);
  EXPECT_EQ(decode(header(1) + bytes{0x81, 'a', 0, 0, 1, 0, 1}).error(), error::bad_label_type);
}

TEST(DnsMessageMalformed, NameTooLongThroughPointers) {
  // A 63-octet label, then a name of four copies of it via pointers: 256+.
  bytes label(1, 63);
  label.insert(label.end(), 63, 'x');
  bytes wire = header(2);
  wire = wire + label + bytes{0, 0, 1, 0, 1};  // question 1: x63. at offset 12
  // question 2: x63.x63.x63 then pointer to x63. -> 4 labels of 64 + root.
  wire = wire + label + label + label + bytes{0xC0, 12, 0, 1, 0, 1};
  EXPECT_EQ(decode(wire).error(), error::name_too_long);
}

TEST(DnsMessageMalformed, RdataLengthMustMatch) {
  const bytes answer_a5 = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 1, 2, 3, 4, 5};
  EXPECT_EQ(decode(header(1, 1) + q_a_test + answer_a5).error(), error::bad_rdata);
  // A CNAME whose name runs past its RDLENGTH.
  const bytes cname_short = {0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 1, 'b', 0};
  EXPECT_EQ(decode(header(1, 1) + q_a_test + cname_short).error(), error::bad_rdata);
  // RDLENGTH beyond the message.
  const bytes over = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 9, 1, 2, 3, 4};
  EXPECT_EQ(decode(header(1, 1) + q_a_test + over).error(), error::truncated_message);
  // A TXT string longer than what remains of the rdata.
  const bytes txt = {0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 5, 'a', 'b'};
  EXPECT_EQ(decode(header(1, 1) + q_a_test + txt).error(), error::bad_rdata);
  // A CAA tag of length zero.
  const bytes caa = {0xC0, 12, 1, 1, 0, 1, 0, 0, 0, 60, 0, 3, 0, 0, 'v'};
  EXPECT_EQ(decode(header(1, 1) + q_a_test + caa).error(), error::bad_rdata);
}

TEST(DnsMessageMalformed, OptOnlyOnceAtRootInAdditional) {
  const bytes opt = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_TRUE(decode(header(1, 0, 0, 1) + q_a_test + opt));
  EXPECT_EQ(decode(header(1, 1) + q_a_test + opt).error(), error::bad_opt);
  EXPECT_EQ(decode(header(1, 0, 0, 2) + q_a_test + opt + opt).error(), error::bad_opt);
  const bytes opt_not_root = {0xC0, 12, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(decode(header(1, 0, 0, 1) + q_a_test + opt_not_root).error(), error::bad_opt);
  const bytes opt_bad_option = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 5, 0, 10, 0, 9, 1};
  EXPECT_EQ(decode(header(1, 0, 0, 1) + q_a_test + opt_bad_option).error(), error::bad_opt);
}

// An OPT record whose owner is the root written as a pointer (to the end of
// the question's name) is read like one written as a single zero octet.
TEST(DnsMessageMalformed, OptOwnerThroughAPointerToTheRoot) {
  const bytes opt_pointer_to_root = {0xC0, 12 + 7, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
  const auto m = decode(header(1, 0, 0, 1) + q_a_test + opt_pointer_to_root);
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE(m->edns);
  EXPECT_EQ(m->edns->udp_size, 0x1000);
  EXPECT_TRUE(m->additionals.empty());
}

// decode(wire, out) gives what decode(wire) gives, whatever `out` held
// before, and keeps the vectors' capacity for the next message.
TEST(DnsMessage, DecodeIntoAMessageReplacesEveryField) {
  const auto full = every_type_response();
  const auto full_wire = encode(full).value();
  auto small = make_response(make_query(7, {N("q1.bench.test."), rtype::a}, 0));
  small.answers = {rr("q1.bench.test.", rtype::a, a_data{{127, 0, 0, 1}})};
  const auto small_wire = encode(small).value();

  message out;
  ASSERT_FALSE(decode(full_wire, out));
  EXPECT_EQ(out, decode(full_wire).value());
  const auto capacity = out.answers.capacity();
  ASSERT_FALSE(decode(small_wire, out));
  EXPECT_EQ(out, small);
  EXPECT_EQ(out, decode(small_wire).value());
  EXPECT_FALSE(out.edns) << "the first message's OPT record does not linger";
  EXPECT_GE(out.answers.capacity(), capacity);
  // An error leaves `out` unspecified but usable: the next decode is whole.
  EXPECT_TRUE(decode(std::span(full_wire).first(full_wire.size() - 1), out));
  ASSERT_FALSE(decode(full_wire, out));
  EXPECT_EQ(out, full);
}

// Answers point back to the question's name; the decoder copies that name
// rather than following the pointer again, and must give the same owner.
TEST(DnsMessage, PointersToTheQuestionNameGiveItsName) {
  auto m = make_response(make_query(9, {N("Mixed.Case.Example."), rtype::a}));
  m.answers = {rr("mixed.case.example.", rtype::a, a_data{{192, 0, 2, 1}}),
               rr("other.case.example.", rtype::a, a_data{{192, 0, 2, 2}}),
               rr("mixed.case.example.", rtype::a, a_data{{192, 0, 2, 3}})};
  const auto wire = encode(m).value();
  const auto back = decode(wire).value();
  ASSERT_EQ(back.answers.size(), 3u);
  // Compressed against the question: the question's spelling comes back.
  EXPECT_EQ(back.answers[0].owner.wire(), N("Mixed.Case.Example.").wire());
  EXPECT_EQ(back.answers[1].owner, N("other.case.example."));
  EXPECT_EQ(back.answers[2].owner.wire(), N("Mixed.Case.Example.").wire());
  EXPECT_EQ(back, m);
}

// --- DNS over TCP framing ---------------------------------------------------------

TEST(DnsTcpFramer, ByteAtATimeGivesTheSameMessages) {
  std::vector<bytes> messages;
  for (std::uint16_t id = 1; id <= 3; ++id) {
    auto m = every_type_response();
    m.id = id;
    messages.push_back(encode(m).value());
  }
  bytes stream;
  for (const auto& m : messages) frame_for_tcp(m, stream);

  tcp_framer whole;
  whole.feed(stream);
  tcp_framer trickle;
  std::vector<bytes> got;
  for (const auto b : stream) {
    trickle.feed(std::span(&b, 1));
    while (auto msg = trickle.next()) got.emplace_back(msg->begin(), msg->end());
  }
  ASSERT_EQ(got, messages);
  for (const auto& m : messages) {
    auto msg = whole.next();
    ASSERT_TRUE(msg);
    EXPECT_EQ(bytes(msg->begin(), msg->end()), m);
    EXPECT_EQ(decode(*msg).value().answers.size(), 12u);
  }
  EXPECT_FALSE(whole.next());
  EXPECT_EQ(trickle.buffered(), 0u);
}

TEST(DnsTcpFramer, WaitsForTheWholeMessage) {
  tcp_framer f;
  const bytes part = {0, 5, 1, 2};
  f.feed(part);
  EXPECT_FALSE(f.next());
  EXPECT_EQ(f.buffered(), 4u);
  const bytes rest = {3, 4, 5, 0};
  f.feed(rest);
  auto m = f.next();
  ASSERT_TRUE(m);
  EXPECT_EQ(bytes(m->begin(), m->end()), (bytes{1, 2, 3, 4, 5}));
  EXPECT_FALSE(f.next());
  EXPECT_EQ(f.buffered(), 1u);
}

}  // namespace
}  // namespace trellis::dns
