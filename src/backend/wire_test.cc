// The wire helpers on their own. Each backend's codec is also tested against
// the generated protobuf classes (e.g. backends/kv/kv_codec_test.cc).
#include "backend/wire.h"

#include <gtest/gtest.h>

#include <string>

namespace synod::backend::wire {
namespace {

TEST(Wire, VarintRoundTripsAtTheEdges) {
  for (uint64_t v : std::initializer_list<uint64_t>{0, 1, 127, 128, 300, 16383, 16384, 1ull << 35,
                                                    UINT64_MAX - 1, UINT64_MAX}) {
    std::string bytes;
    Writer(&bytes).varint(v);
    Reader r(bytes);
    uint64_t got = 0;
    ASSERT_TRUE(r.varint(&got)) << v;
    EXPECT_EQ(got, v);
    EXPECT_TRUE(r.done());
  }
  std::string bytes;
  Writer(&bytes).varint(UINT64_MAX);
  EXPECT_EQ(bytes.size(), 10u);
}

TEST(Wire, FieldsRoundTrip) {
  std::string bytes;
  Writer w(&bytes);
  w.varint_field(1, 5);
  w.bytes_field(2, std::string("a\0b", 3));
  w.varint_field(300, static_cast<uint64_t>(int64_t{-1}));

  Reader r(bytes);
  uint32_t field = 0, type = 0;
  uint64_t v = 0;
  std::string_view s;
  ASSERT_TRUE(r.next(&field, &type));
  EXPECT_EQ(field, 1u);
  EXPECT_EQ(type, 0u);
  ASSERT_TRUE(r.varint(&v));
  EXPECT_EQ(v, 5u);
  ASSERT_TRUE(r.next(&field, &type));
  EXPECT_EQ(field, 2u);
  EXPECT_EQ(type, 2u);
  ASSERT_TRUE(r.length_delimited(&s));
  EXPECT_EQ(s, std::string_view("a\0b", 3));
  ASSERT_TRUE(r.next(&field, &type));
  EXPECT_EQ(field, 300u);
  ASSERT_TRUE(r.varint(&v));
  EXPECT_EQ(static_cast<int64_t>(v), -1);
  EXPECT_TRUE(r.done());
}

TEST(Wire, SkipsEveryWireType) {
  std::string bytes;
  Writer w(&bytes);
  w.tag(1, WireType::kFixed64);
  bytes.append(8, 'x');
  w.tag(2, WireType::kFixed32);
  bytes.append(4, 'y');
  w.bytes_field(3, "zzz");
  w.varint_field(4, 1000);
  Reader r(bytes);
  uint32_t field = 0, type = 0;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(r.next(&field, &type));
    ASSERT_TRUE(r.skip(type)) << r.error();
  }
  EXPECT_TRUE(r.done());
}

TEST(Wire, MalformedInputIsAnErrorNotACrash) {
  uint32_t field = 0, type = 0;
  uint64_t v = 0;
  std::string_view s;
  {
    const std::string in("\x80", 1);
    Reader r(in);  // truncated varint
    EXPECT_FALSE(r.varint(&v));
    EXPECT_EQ(r.error(), "truncated varint");
  }
  {
    const std::string in(11, '\xff');
    Reader r(in);  // too long
    EXPECT_FALSE(r.varint(&v));
    EXPECT_EQ(r.error(), "varint longer than 10 bytes");
  }
  {
    const std::string in(
        "\x12\x05"
        "ab",
        4);
    Reader r(in);  // length beyond the end
    ASSERT_TRUE(r.next(&field, &type));
    EXPECT_FALSE(r.length_delimited(&s));
  }
  {
    const std::string in("\x00", 1);
    Reader r(in);  // field 0
    EXPECT_FALSE(r.next(&field, &type));
  }
  {
    const std::string in("\x0b", 1);
    Reader r(in);  // group
    EXPECT_FALSE(r.next(&field, &type));
    EXPECT_EQ(r.error(), "groups are not supported");
  }
  {
    const std::string in(
        "\x09"
        "abc",
        4);
    Reader r(in);  // truncated fixed64
    ASSERT_TRUE(r.next(&field, &type));
    EXPECT_FALSE(r.skip(type));
  }
}

}  // namespace
}  // namespace synod::backend::wire
