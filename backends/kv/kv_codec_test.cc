// The hand-written codec against the generated classes of proto/kv.proto, both
// ways, so the two cannot drift apart.
#include "backends/kv/kv_codec.h"

#include <gtest/gtest.h>

#include <random>

#include "proto/kv.pb.h"

namespace synod::kv {
namespace {

std::string random_bytes(std::mt19937_64& rng, size_t max) {
  std::string s(rng() % (max + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(KvCodec, DecodesWhatTheGeneratedCodeWrites) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; ++i) {
    proto::KvCommand pc;
    pc.set_op(static_cast<proto::KvCommand::Op>(rng() % 10));
    if (rng() % 2) pc.set_key(random_bytes(rng, 20));
    if (rng() % 2) pc.set_value(random_bytes(rng, 300));
    if (rng() % 2) pc.set_expected(random_bytes(rng, 20));
    pc.set_expect_absent(rng() % 2);
    if (rng() % 2) pc.set_delta(static_cast<int64_t>(rng()));
    if (rng() % 2) pc.set_prefix(random_bytes(rng, 5));
    if (rng() % 2) pc.set_limit(static_cast<uint32_t>(rng()));
    for (size_t k = rng() % 4; k > 0; --k) pc.add_keys(random_bytes(rng, 10));
    for (size_t k = rng() % 4; k > 0; --k) pc.add_values(random_bytes(rng, 10));
    pc.set_require_present(rng() % 2);
    std::string bytes = pc.SerializeAsString();

    Command c;
    std::string error;
    ASSERT_TRUE(decode_command(bytes, &c, &error)) << error;
    EXPECT_EQ(c.op, pc.op());
    EXPECT_EQ(c.key, pc.key());
    EXPECT_EQ(c.value, pc.value());
    EXPECT_EQ(c.expected, pc.expected());
    EXPECT_EQ(c.expect_absent, pc.expect_absent());
    EXPECT_EQ(c.delta, pc.delta());
    EXPECT_EQ(c.prefix, pc.prefix());
    EXPECT_EQ(c.limit, pc.limit());
    EXPECT_EQ(c.keys, std::vector<std::string>(pc.keys().begin(), pc.keys().end()));
    EXPECT_EQ(c.values, std::vector<std::string>(pc.values().begin(), pc.values().end()));
    EXPECT_EQ(c.require_present, pc.require_present());
    // And writes the same bytes back.
    EXPECT_EQ(encode_command(c), bytes);
  }
}

TEST(KvCodec, GeneratedCodeReadsWhatItWrites) {
  std::mt19937_64 rng(2);
  for (int i = 0; i < 2000; ++i) {
    Result r;
    r.code = static_cast<Code>(rng() % 5);
    if (rng() % 2) r.value = random_bytes(rng, 300);
    r.found = rng() % 2;
    if (rng() % 2) r.number = static_cast<int64_t>(rng());
    for (size_t k = rng() % 4; k > 0; --k) r.keys.push_back(random_bytes(rng, 10));
    if (rng() % 2) r.error = "error " + std::to_string(rng());  // a string: UTF-8
    for (size_t k = rng() % 4; k > 0; --k) {
      r.entries.push_back(Entry{rng() % 2 == 0, rng() % 2 ? random_bytes(rng, 10) : ""});
    }
    std::string bytes = encode_result(r);

    proto::KvResult pr;
    ASSERT_TRUE(pr.ParseFromString(bytes));
    EXPECT_EQ(static_cast<int>(pr.code()), static_cast<int>(r.code));
    EXPECT_EQ(pr.value(), r.value);
    EXPECT_EQ(pr.found(), r.found);
    EXPECT_EQ(pr.number(), r.number);
    ASSERT_EQ(pr.keys_size(), static_cast<int>(r.keys.size()));
    for (size_t k = 0; k < r.keys.size(); ++k) EXPECT_EQ(pr.keys(static_cast<int>(k)), r.keys[k]);
    EXPECT_EQ(pr.error(), r.error);
    ASSERT_EQ(pr.entries_size(), static_cast<int>(r.entries.size()));
    for (size_t k = 0; k < r.entries.size(); ++k) {
      EXPECT_EQ(pr.entries(static_cast<int>(k)).found(), r.entries[k].found);
      EXPECT_EQ(pr.entries(static_cast<int>(k)).value(), r.entries[k].value);
    }
    // Canonical: the generated serializer produces the very same bytes.
    EXPECT_EQ(pr.SerializeAsString(), bytes);

    Result back;
    std::string error;
    ASSERT_TRUE(decode_result(bytes, &back, &error)) << error;
    EXPECT_EQ(back.keys, r.keys);
    EXPECT_EQ(back.value, r.value);
    EXPECT_EQ(back.number, r.number);
    EXPECT_EQ(back.entries, r.entries);
  }
}

TEST(KvCodec, NegativeAndUnknownValues) {
  proto::KvCommand pc;
  pc.set_op(static_cast<proto::KvCommand::Op>(-7));  // proto3 enums are open
  pc.set_delta(-1);
  Command c;
  std::string error;
  ASSERT_TRUE(decode_command(pc.SerializeAsString(), &c, &error)) << error;
  EXPECT_EQ(c.op, -7);
  EXPECT_EQ(c.delta, -1);
}

TEST(KvCodec, LastFieldWinsAndUnknownFieldsAreSkipped) {
  proto::KvCommand a;
  a.set_key("first");
  proto::KvCommand b;
  b.set_key("second");
  // Concatenated messages merge: the later scalar wins. Field 99 is unknown.
  std::string bytes =
      a.SerializeAsString() + std::string("\x98\x06\x01", 3) + b.SerializeAsString();
  Command c;
  std::string error;
  ASSERT_TRUE(decode_command(bytes, &c, &error)) << error;
  EXPECT_EQ(c.key, "second");
  proto::KvCommand pc;
  ASSERT_TRUE(pc.ParseFromString(bytes));
  EXPECT_EQ(pc.key(), "second");
}

TEST(KvCodec, GarbageIsAnError) {
  Command c;
  std::string error;
  EXPECT_FALSE(decode_command(std::string("\x12\x7f"
                                          "abc",
                                          5),
                              &c, &error));
  EXPECT_EQ(error, "malformed KvCommand: truncated length-delimited field");
  EXPECT_FALSE(decode_command(std::string("\xff\xff\xff\xff\xff\xff", 6), &c, &error));
  EXPECT_TRUE(decode_command("", &c, &error));  // the empty message: GET of ""
}

}  // namespace
}  // namespace synod::kv
