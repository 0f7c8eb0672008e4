// value_decode_fuzz: codec::decode_value, which LogStore uses for every value
// it reads back from disk (accepted and chosen records).
//
// Checks: no crash; decode_value accepts exactly the serialized proto::Values
// with a known kind, and refuses everything else with an error message; a
// decoded value re-encodes canonically (encode_value(decode(x)) decodes to the
// same value, and encoding that again gives the same bytes).
#include "codec/codec.h"
#include "fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace synod;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string error;
  paxos::ValuePtr v = codec::decode_value(bytes, &error);

  proto::Value p;
  const bool parses = p.ParseFromArray(data, static_cast<int>(size));
  const bool known_kind =
      parses && p.kind() <= static_cast<std::uint32_t>(paxos::ValueKind::kConfig);
  FUZZ_CHECK((v != nullptr) == known_kind, "decode_value %s bytes that parse=%d kind=%u",
             v ? "accepted" : "refused", parses, parses ? p.kind() : 0);
  if (!v) {
    FUZZ_CHECK(!error.empty(), "refused without an error message");
    return 0;
  }
  FUZZ_CHECK(static_cast<int>(v->commands.size()) == p.commands_size(), "commands lost");
  for (int i = 0; i < p.commands_size(); ++i) {
    FUZZ_CHECK(v->commands[static_cast<std::size_t>(i)] == p.commands(i), "command %d differs", i);
  }

  const std::string encoded = codec::encode_value(*v);
  std::string error2;
  paxos::ValuePtr again = codec::decode_value(encoded, &error2);
  FUZZ_CHECK(again != nullptr, "encode_value's output does not decode: %s", error2.c_str());
  FUZZ_CHECK(*again == *v, "the value changed in a round trip");
  FUZZ_CHECK(codec::encode_value(*again) == encoded, "encode_value is not canonical");
  return 0;
}
