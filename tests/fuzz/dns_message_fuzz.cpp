// libFuzzer target for the DNS wire codec: decode arbitrary bytes. Beyond
// "no crash, no out-of-bounds read", it checks what callers rely on:
//   - a decoded message encodes again (compressed and not) unless it would
//     exceed 65535 octets, and that encoding decodes to the same message;
//   - encoding under a UDP size limit stays within the limit (or is only the
//     header and question) and still decodes;
//   - decoding into a message that held another one (as the transport
//     does) gives what a fresh decode gives, errors included;
//   - decode_answer, given the question a fully decoded message holds,
//     matches it and decodes the same records (the question section aside);
//   - the TCP framer yields the same messages whatever the split.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fuzz_check.hpp"
#include "trellis/codec/dns/message.hpp"

namespace {

using namespace trellis::dns;

void round_trip(const message& m, bool compress) {
  auto wire = encode(m, {.compress = compress});
  if (!wire) {
    FUZZ_CHECK(wire.error() == error::too_large);
    return;
  }
  auto again = decode(*wire);
  FUZZ_CHECK(again);
  FUZZ_CHECK(*again == m);
}

void limited(const message& m) {
  auto wire = encode(m, {.max_size = 512});
  if (!wire) return;
  auto back = decode(*wire);
  FUZZ_CHECK(back);
  if (wire->size() > 512) {
    // Only what is always written may exceed the limit.
    FUZZ_CHECK(back->answers.empty() && back->authorities.empty() && back->additionals.empty());
  }
}

// decode(wire, out) over a message left by an earlier decode.
void into_place(const std::uint8_t* data, std::size_t size, const trellis::result<message>& fresh) {
  static message reused;  // holds the previous input's message, or part of it
  const std::error_code ec = decode({data, size}, reused);
  FUZZ_CHECK(!ec == static_cast<bool>(fresh));
  if (fresh) {
    FUZZ_CHECK(reused == *fresh);
  } else {
    FUZZ_CHECK(ec == fresh.error());
  }
}

// decode_answer(wire, q) for the one question q the message asks.
void as_answer(const std::uint8_t* data, std::size_t size, const message& fresh) {
  if (fresh.questions.size() != 1) return;
  message out;
  bool matched = false;
  const std::error_code ec = decode_answer({data, size}, fresh.questions[0], out, matched);
  FUZZ_CHECK(!ec);
  FUZZ_CHECK(matched);
  FUZZ_CHECK(out.questions.empty());
  message expected = fresh;
  expected.questions.clear();
  FUZZ_CHECK(out == expected);
}

void framing(const std::uint8_t* data, std::size_t size) {
  tcp_framer whole, split;
  whole.feed({data, size});
  const std::size_t cut = size ? data[0] % (size + 1) : 0;
  split.feed({data, cut});
  std::vector<std::vector<std::uint8_t>> a, b;
  while (auto m = whole.next()) a.emplace_back(m->begin(), m->end());
  while (auto m = split.next()) b.emplace_back(m->begin(), m->end());
  split.feed({data + cut, size - cut});
  while (auto m = split.next()) b.emplace_back(m->begin(), m->end());
  FUZZ_CHECK(a == b);
  FUZZ_CHECK(whole.buffered() == split.buffered());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto m = decode({data, size});
  if (m) {
    round_trip(*m, true);
    round_trip(*m, false);
    limited(*m);
    as_answer(data, size, *m);
  }
  into_place(data, size, m);
  framing(data, size);
  return 0;
}
