// libFuzzer target: decode_session_record on arbitrary bytes — what a
// session store hands back is data the gateway did not check when it was
// written (another process, an operator with redis-cli, a corrupted
// disk). Decoding must never crash, and a record that decodes must encode
// to text that decodes to the same record.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "trellis/gateway/session.hpp"

using namespace trellis;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = gateway::decode_session_record(in);
  if (!r) return 0;
  FUZZ_CHECK(r->data.is_object());
  const std::string text = gateway::encode_session_record(*r);
  auto again = gateway::decode_session_record(text);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->created == r->created);
  FUZZ_CHECK(again->last_seen == r->last_seen);
  FUZZ_CHECK(again->data == r->data);
  FUZZ_CHECK(gateway::encode_session_record(*again) == text);
  return 0;
}
