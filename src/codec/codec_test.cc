#include "codec/codec.h"

#include <gtest/gtest.h>

namespace synod::codec {
namespace {

paxos::ValuePtr cmds(std::vector<std::string> c) {
  return std::make_shared<const paxos::Value>(
      paxos::Value{paxos::ValueKind::kCommands, std::move(c)});
}

paxos::Message round_trip(const paxos::Message& m) {
  proto::PeerMessage p;
  to_proto(m, &p);
  proto::PeerMessage parsed;
  EXPECT_TRUE(parsed.ParseFromString(p.SerializeAsString()));
  paxos::Message out;
  std::string error;
  EXPECT_TRUE(from_proto(parsed, &out, &error)) << error;
  return out;
}

TEST(Codec, EveryPeerMessageRoundTrips) {
  const paxos::Ballot b{7, 2};
  auto v = cmds({"a", std::string("\0b", 2)});
  std::vector<paxos::Message> all = {
      {1, 2, paxos::Prepare{b, 5}},
      {2, 1, paxos::Promise{b, true, b, 5, 4, {{5, b, v, false}, {6, b, paxos::noop_value(), true}}}},
      {1, 2, paxos::Accept{b, 9, v, 8}},
      {2, 1, paxos::Accepted{b, 9, false, paxos::Ballot{8, 3}, 7}},
      {1, 3, paxos::Heartbeat{b, 8, 99}},
      {3, 1, paxos::HeartbeatReply{b, true, b, 99, 8}},
      {3, 1, paxos::CatchupRequest{2, 40}},
      {1, 3, paxos::CatchupReply{{{2, v}, {3, paxos::noop_value()}}, 40, true, 2}},
  };
  for (const auto& m : all) {
    EXPECT_EQ(paxos::to_string(round_trip(m)), paxos::to_string(m));
  }
  auto accept = std::get<paxos::Accept>(round_trip(all[2]).body);
  EXPECT_TRUE(paxos::same_value(accept.value, v));
}

TEST(Codec, MalformedMessagesAreRefusedWithAReason) {
  proto::PeerMessage empty;
  paxos::Message out;
  std::string error;
  EXPECT_FALSE(from_proto(empty, &out, &error));
  EXPECT_NE(error.find("without a body"), std::string::npos);

  proto::PeerMessage no_value;
  no_value.mutable_accept()->set_slot(1);
  EXPECT_FALSE(from_proto(no_value, &out, &error));
  EXPECT_EQ(error, "missing value");

  proto::PeerMessage bad_kind;
  bad_kind.mutable_accept()->mutable_value()->set_kind(77);
  EXPECT_FALSE(from_proto(bad_kind, &out, &error));
  EXPECT_NE(error.find("unknown value kind"), std::string::npos);
}

// What no correct peer sends: found by fuzzing (fuzz/regressions/peer_message_fuzz).
TEST(Codec, OutOfRangeNumbersAndUnorderedEntriesAreRefused) {
  const paxos::Ballot b{7, 2};
  auto v = cmds({"a"});
  auto refused = [](const paxos::Message& m, const std::string& want) {
    proto::PeerMessage p;
    to_proto(m, &p);
    paxos::Message out;
    std::string error;
    EXPECT_FALSE(from_proto(p, &out, &error)) << paxos::to_string(m);
    EXPECT_NE(error.find(want), std::string::npos) << error;
  };
  const std::uint64_t huge = ~std::uint64_t{0};
  refused({1, 2, paxos::Prepare{paxos::Ballot{huge, 1}, 1}}, "out of range");
  refused({1, 2, paxos::Accept{b, huge, v, 0}}, "out of range");
  refused({1, 2, paxos::Heartbeat{b, std::uint64_t{1} << 62, 1}}, "out of range");
  refused({2, 1, paxos::Promise{b, true, b, 1, huge, {}}}, "out of range");
  // A duplicate slot with two values; a descending pair.
  refused({1, 3, paxos::CatchupReply{{{2, v}, {2, paxos::noop_value()}}, 4, false, 0}},
          "not strictly ascending");
  refused({2, 1, paxos::Promise{b, true, b, 1, 0, {{6, b, v, false}, {5, b, v, false}}}},
          "not strictly ascending");
  refused({1, 3, paxos::CatchupReply{{{0, v}}, 4, false, 0}}, "entry slot 0");
  // The largest accepted values still pass.
  const std::uint64_t max = (std::uint64_t{1} << 62) - 1;
  EXPECT_EQ(paxos::to_string(round_trip({1, 2, paxos::Accept{paxos::Ballot{max, 1}, max, v, max}})),
            paxos::to_string(paxos::Message{1, 2, paxos::Accept{paxos::Ballot{max, 1}, max, v, max}}));
}

TEST(Codec, ValuesAsBytes) {
  auto v = cmds({"x", "y"});
  std::string error;
  auto back = decode_value(encode_value(*v), &error);
  ASSERT_TRUE(back) << error;
  EXPECT_TRUE(paxos::same_value(back, v));
  EXPECT_EQ(decode_value("\xff\xff\xff", &error), nullptr);
}

}  // namespace
}  // namespace synod::codec
